#!/usr/bin/python
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: offsite_adopt
short_description: Adopt backups of the old offsite bash tool as native backups, after verifying them
version_added: 1.0.0
description:
  - Finds the backups the old C(offsite) bash tool left at a provider's remote root, in any of the eight
    formats it wrote (F1 to F8 in C(docs/legacy.md); for example
    C(<dataset with / as _>/full-<snapshot>-x001.zfs.gz.age) pieces and
    C(<dataset_>/<dataset_>:<snapshot>-s001-b00000000000000000000.zfs.gz.age) shards).
  - Pieces that are each one gzip stream in one age file are copied unchanged as chunks; the slices of the
    one age stream of F3 (C(zfs-backup-simple.sh)) are joined into one chunk.
  - Downloads, decrypts and gunzips every piece of every complete legacy backup of O(dataset) to verify it
    (age authentication, gzip end, piece continuity; nothing reaches ZFS), links the backups by the guids in
    their stream headers, then copies each piece (server-side where the backend can) as a chunk of a native
    backup and writes its manifest with keyed digests, so status, prune and restore treat it like a native
    backup.
  - The legacy objects are not changed or deleted. A backup already adopted is C(changed=false).
  - O(identity) or O(identity_file) is the age identity the old tool encrypted to.
author:
  - offsite.zfs developers (@offsite-zfs)
extends_documentation_fragment:
  - offsite.zfs.common
  - offsite.zfs.common.keys
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - ansible.builtin.action_common_attributes.actiongroups
attributes:
  check_mode:
    support: full
    details: Lists what would be adopted after reading the stream headers; copies and writes nothing.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
  action:
    support: none
  async:
    support: full
  bypass_host_loop:
    support: none
  action_group:
    support: full
    membership:
    - offsite.zfs.offsite
options:
  dataset:
    description:
      - The dataset whose legacy backups to adopt, C(pool/fs).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Adopt the old tool's backups of tank/data on the old remote
  offsite.zfs.offsite_adopt:
    dataset: tank/data
    providers:
      old: {remote: "b2:acme-backups/offsite"}
    identity_file: /root/offsite.key
"""

RETURN = r"""
providers:
  description:
    - Per provider, C(backups) lists every complete legacy backup with C(name), C(snapshot), C(kind),
      C(format), C(backup_id), C(status) (V(adopted), V(present), V(planned) or V(failed)) and a one-sentence
      C(message); a legacy backup that cannot be adopted (incomplete, or an F2 object holding only the last
      chunk) is listed with V(skipped) and the reason.
  returned: always
  type: dict
  sample: {"old": {"backups": [{"name": "full-daily-1-x001", "status": "adopted",
                                "backup_id": "daily-1+c0ffee0123456789+full"}]}}
failed_providers:
  description: Providers where some legacy backup could not be adopted.
  returned: always
  type: list
  elements: str
  sample: []
msg:
  description: A one-line summary, or the reasons for failures.
  returned: always
  type: str
  sample: "legacy backups of tank/data: 3 adopted"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.offsite.zfs.plugins.module_utils._module import run_module, spec


def main() -> None:
    module = AnsibleModule(argument_spec=spec("common", "keys", dataset=dict(type="str", required=True)),
                           supports_check_mode=True)
    run_module(module, "adopt")


if __name__ == "__main__":
    main()
