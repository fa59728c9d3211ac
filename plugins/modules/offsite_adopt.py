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
author:
  - offsite.zfs developers (@offsite-zfs)
extends_documentation_fragment:
  - offsite.zfs.common
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
  identity:
    description:
      - The text of the age identity the old tool encrypted to (C(AGE-SECRET-KEY-1...)). Never logged,
        never written to disk.
    type: str
  identity_file:
    description:
      - Path of that age identity file on the managed node.
    type: path
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

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.offsite.zfs.plugins.module_utils._deps import require_libraries
from ansible_collections.offsite.zfs.plugins.module_utils.common import OffsiteError, validate_dataset
from ansible_collections.offsite.zfs.plugins.module_utils.module_args import (
    COMMON_ARGS,
    settings_from_params,
    with_notes,
)

try:
    from ansible_collections.offsite.zfs.plugins.module_utils.codec import HAS_PYRAGE, PYRAGE_IMPORT_ERROR
    from ansible_collections.offsite.zfs.plugins.module_utils.legacy import adopt_legacy
    from ansible_collections.offsite.zfs.plugins.module_utils.restore import load_keys
    IMPORT_ERROR = None
except ImportError:  # pragma: no cover
    IMPORT_ERROR = traceback.format_exc()
    HAS_PYRAGE = False
    PYRAGE_IMPORT_ERROR = None


def main() -> None:
    argument_spec = dict(
        dataset=dict(type="str", required=True),
        identity=dict(type="str", no_log=True),
        identity_file=dict(type="path"),
    )
    argument_spec.update(COMMON_ARGS)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    require_libraries(module)
    if IMPORT_ERROR:
        module.fail_json(msg="offsite.zfs could not load its module_utils.", exception=IMPORT_ERROR)
    if not HAS_PYRAGE:
        module.fail_json(msg=missing_required_lib("pyrage"), exception=str(PYRAGE_IMPORT_ERROR))
    params = module.params
    try:
        dataset = validate_dataset(params["dataset"])
        settings = settings_from_params(params, dataset)
        keys = load_keys(params["identity"], params["identity_file"], None)
        result = adopt_legacy(settings, keys, check_mode=module.check_mode)
    except OffsiteError as exc:
        module.fail_json(msg=exc.message, error_code=exc.code, changed=False)
    if result["failed_providers"]:
        module.fail_json(**with_notes(result))
    module.exit_json(**with_notes(result))


if __name__ == "__main__":
    main()
