#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: offsite_prune
short_description: Apply retention (keep) to offsite backups, chain-aware
version_added: 1.0.0
description:
  - Applies the policy's C(keep) rules (C(last), C(hourly), C(daily), C(weekly), C(monthly), C(yearly)) to each
    provider's backups of each dataset, separately per provider.
  - Chain-aware, never deletes a backup that a kept backup depends on. A kept snapshot keeps the full backup and
    every incremental its restore needs. The newest restorable snapshot is always kept (it is the base of the
    next incremental). Without keep rules nothing is deleted.
  - Removes abandoned incomplete uploads (no manifest) whose objects nobody touched for C(prune_incomplete_after)
    (default 2d). Damaged backups (chunks missing, unreadable manifest) are listed, never deleted.
  - Holds the same lock per dataset and provider as C(offsite_backup), so a prune and a backup of the same
    dataset to the same provider never run at once; a provider whose lock is held is reported and skipped.
  - Optionally (O(local_snapshots), or C(prune_local_snapshots) in the policy) destroys local snapshots that
    this collection took (name C(<snapshot_prefix>-...) and user property C(offsite.zfs:created=true)) that the
    keep rules no longer select; never others, never a provider's newest restorable snapshot, never one not
    yet backed up to every provider.
  - In check mode, and with C(--diff), lists exactly what would be deleted and why.
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
    details: Lists what would be deleted (RV(deleted)) and changes nothing.
  diff_mode:
    support: full
    details: Per dataset and provider, the backups before and after, each deleted one with its reason.
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
      - One dataset to prune. Defaults to every dataset of the policy (see O(datasets)).
      - A dataset whose policy says C(recursive) is pruned with every descendant not in its C(exclude).
    type: str
  datasets:
    description:
      - The datasets to prune. Defaults to every dataset under C(datasets) in the config file.
    type: list
    elements: str
  keep:
    description:
      - "Retention rules overriding the policy's C(keep) for every pruned dataset, for example
        C({last: 3, daily: 7, weekly: 4, monthly: 12})."
    type: dict
  prune_incomplete_after:
    description:
      - How long an incomplete upload must be untouched before it counts as abandoned, like C(2d) or C(36h).
      - Defaults to C(prune_incomplete_after) of the policy, else C(2d).
    type: str
  local_snapshots:
    description:
      - Also prune local snapshots this collection took. Defaults to C(prune_local_snapshots) of the policy,
        else V(false).
    type: bool
"""

EXAMPLES = r"""
- name: What would be pruned, and why
  offsite.zfs.offsite_prune:
  check_mode: true
  diff: true
  register: plan

- name: Prune every dataset of the policy
  offsite.zfs.offsite_prune:

- name: Prune one dataset with explicit rules, local snapshots too
  offsite.zfs.offsite_prune:
    dataset: tank/photos
    keep: {last: 3, daily: 30}
    local_snapshots: true
"""

RETURN = r"""
cost:
  description:
    - Per provider, what the keep rules cost there, summed over the pruned datasets (docs/policy.md, What the
      keep rules cost). In check mode the message says it too.
    - C(stored_bytes) and C(full_copies), stored now; C(stored_bytes_after) and C(full_copies_after), after
      this prune (its plan in check mode); C(backups), complete backups now; C(datasets).
    - C(held_full_copies) and C(held_incrementals), what the keep rules hold in the steady state (about
      D / F + 1 full copies), and C(estimated_stored_bytes), that times the newest full backup's stored size
      plus the incrementals times their mean size; V(null) when a dataset has no keep rules (nothing is ever
      deleted) or no full backup yet.
    - Each provider entry under RV(datasets) has the same figures for its dataset as C(cost), plus
      C(full_bytes) and C(incremental_bytes), the sizes the estimate used.
  returned: always
  type: dict
  version_added: 1.1.0
  sample: {"b2": {"datasets": 1, "stored_bytes": 1073741824, "full_copies": 4, "backups": 40,
           "stored_bytes_after": 805306368, "full_copies_after": 3, "held_full_copies": 7,
           "held_incrementals": 365, "estimated_stored_bytes": 2147483648}}
deleted:
  description: "Every deletion (done, or planned in check mode), as C(<provider> <dataset> <backup id>: <reason>)
    (C(local <dataset>@<snapshot>: <reason>) for local snapshots)."
  returned: always
  type: list
  elements: str
  sample: ["b2 tank/data offsite-20261001T031500Z+03d1a2b3c4d5e6f7+full: not selected by keep (last 3, daily 7)"]
datasets:
  description:
    - Per dataset, C(providers) (per provider C(status) V(pruned), V(planned), V(unchanged), V(locked),
      V(failed) or V(append_only); C(kept) with C(reasons); C(deleted) with C(reason); C(damaged);
      C(incomplete_deleted); C(incomplete_kept); C(abandoned_deleted), objects of abandoned upload attempts on
      append-only providers) and, with local snapshots, C(local) (C(kept), C(deleted), C(ignored)).
    - A provider set C(append_only) is never pruned from the backup host (its credentials cannot delete),
      status V(append_only), nothing deleted, and C(left_for_prune_host) lists what the keep rules would delete
      there; prune it from a host with delete rights (playbooks/prune.yml C(offsite_prune_host)).
  returned: always
  type: dict
  sample: {"tank/data": {"changed": true, "providers": {"b2": {"status": "pruned", "deleted": []}}}}
failed_datasets:
  description: Datasets on which some provider could not be pruned.
  returned: always
  type: list
  elements: str
  sample: []
msg:
  description: A one-line summary.
  returned: always
  type: str
  sample: "tank/data: b2 deleted 2, kept 9"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.offsite.zfs.plugins.module_utils._module import run_module, spec


def main() -> None:
    module = AnsibleModule(argument_spec=spec(
        "common",
        dataset=dict(type="str"),
        datasets=dict(type="list", elements="str"),
        keep=dict(type="dict"),
        prune_incomplete_after=dict(type="str"),
        local_snapshots=dict(type="bool"),
    ), supports_check_mode=True)
    run_module(module, "prune")


if __name__ == "__main__":
    main()
