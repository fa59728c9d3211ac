#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: offsite_drill
short_description: Prove that backups restore, by restoring them into a scratch place
version_added: 1.1.0
description:
  - For each dataset and provider (or the O(sample) drilled longest ago), receives the latest backup's whole
    chain into a scratch place (a file-backed pool in O(scratch_dir), or a dataset on O(scratch_pool)), with
    every chunk's size, SHA-256, age authentication and keyed digest checked on the way.
  - Checks that the received snapshot's guid is the one in the manifest and, when the live snapshot still exists
    and its files can be read (C(<mountpoint>/.zfs/snapshot/<snapshot>)), that a sample of its files
    (O(files), or all) has the same content, size, mode, owner and mtime in the copy.
  - The scratch place is destroyed on every exit; one left by a run killed with C(-9) is destroyed by the next
    run. The live datasets are never touched.
  - Records each drill (when, result, seconds, bytes) in C(<state_dir>/drills.json) (mode 0600);
    M(offsite.zfs.offsite_status) shows the last drill per dataset and provider, and warns when it failed or is
    older than C(drill_every) of the policy. See C(docs/restore-drills.md).
  - Fails when a drill fails (RV(failed_drills)); the other drills still run.
author:
  - offsite.zfs developers (@offsite-zfs)
extends_documentation_fragment:
  - offsite.zfs.common
  - offsite.zfs.common.keys
  - offsite.zfs.common.passphrase
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - ansible.builtin.action_common_attributes.actiongroups
attributes:
  check_mode:
    support: full
    details: Lists the dataset and provider pairs that would be drilled.
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
  datasets:
    description:
      - The datasets to drill (as backed up). Defaults to every dataset under C(datasets) in the config file.
    type: list
    elements: str
  sample:
    description:
      - Drill only this many dataset and provider pairs, the ones drilled longest ago (never drilled first), so
        that repeated runs go round all of them.
    type: int
  files:
    description:
      - How many entries of the live snapshot to compare with the copy (chosen at random, seeded by the
        snapshot's guid). V(0) compares none; see O(all_files).
    type: int
    default: 100
  all_files:
    description:
      - Compare every entry of the live snapshot with the copy.
    type: bool
    default: false
  scratch_pool:
    description:
      - An existing pool (or a dataset in one, not a drilled dataset) to receive into. Mutually exclusive with
        O(scratch_dir).
    type: str
  scratch_dir:
    description:
      - A directory for a file-backed scratch pool (a sparse file). Defaults to the spool directory.
    type: path
"""

EXAMPLES = r"""
- name: Drill every dataset on every provider, comparing 100 files with the live snapshot
  offsite.zfs.offsite_drill:
    identity_file: /root/offsite.key
    scratch_dir: /var/tmp

- name: Drill two dataset/provider pairs per run, the ones drilled longest ago
  offsite.zfs.offsite_drill:
    sample: 2
    scratch_pool: scratch
    identity: "{{ vault_offsite_identity }}"
"""

RETURN = r"""
drills:
  description:
    - One record per drill, C(dataset), C(provider), C(snapshot), C(guid), C(result) (V(passed) or V(failed)),
      C(started), C(seconds), C(bytes), C(files) (what was compared), and C(message) and C(error_code) when it
      failed.
  returned: success, not in check mode
  type: list
  elements: dict
  sample: [{"dataset": "tank/data", "provider": "b2", "result": "passed", "seconds": 12.5, "bytes": 1048576}]
failed_drills:
  description: The drills that failed, as C(<dataset> on <provider>).
  returned: not in check mode
  type: list
  elements: str
  sample: []
bytes:
  description: Stream bytes received by all drills.
  returned: not in check mode
  type: int
  sample: 1048576
plan:
  description: In check mode, the dataset and provider pairs that would be drilled.
  returned: check mode
  type: list
  elements: dict
  sample: [{"dataset": "tank/data", "provider": "b2"}]
msg:
  description: A one-line summary, or the reason of the first failed drill.
  returned: always
  type: str
  sample: 2 drills passed (1.0 MiB received)
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.offsite.zfs.plugins.module_utils._module import run_module, spec


def main() -> None:
    module = AnsibleModule(argument_spec=spec(
        "common", "keys", "passphrase", "scratch",
        files=dict(type="int", default=100),
        all_files=dict(type="bool", default=False),
        datasets=dict(type="list", elements="str"),
        sample=dict(type="int"),
    ), supports_check_mode=True, mutually_exclusive=[("scratch_pool", "scratch_dir")])
    run_module(module, "drill")


if __name__ == "__main__":
    main()
