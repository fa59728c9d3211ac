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

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.offsite.zfs.plugins.module_utils import costs
from ansible_collections.offsite.zfs.plugins.module_utils._deps import require_libraries
from ansible_collections.offsite.zfs.plugins.module_utils.common import OffsiteError, validate_dataset
from ansible_collections.offsite.zfs.plugins.module_utils.module_args import (
    COMMON_ARGS,
    settings_from_config,
    with_notes,
)
from ansible_collections.offsite.zfs.plugins.module_utils.policy import load_file

try:
    from ansible_collections.offsite.zfs.plugins.module_utils.converge import policy_datasets
    from ansible_collections.offsite.zfs.plugins.module_utils.prune import prune_dataset, tree_of
    IMPORT_ERROR = None
except ImportError:  # pragma: no cover
    IMPORT_ERROR = traceback.format_exc()


def deletions(dataset: str, entry: dict) -> list:
    lines = []
    for provider, result in (entry.get("providers") or {}).items():
        for record in result.get("deleted", []) + result.get("incomplete_deleted", []):
            lines.append("%s %s %s: %s" % (provider, dataset, record["backup_id"], record["reason"]))
        for record in result.get("abandoned_deleted", []):
            lines.append("%s %s %s/%s: %s" % (
                provider, dataset, record["backup_id"], record["object"], record["reason"]))
    for record in (entry.get("local") or {}).get("deleted", []):
        lines.append("local %s@%s: %s" % (dataset, record["snapshot"], record["reason"]))
    return lines


def diffs(dataset: str, entry: dict) -> list:
    out = []
    for provider, result in (entry.get("providers") or {}).items():
        if "kept" not in result:
            continue
        kept = ["@%s" % r["backup_id"] for r in result["kept"] + result.get("damaged", [])
                + result.get("incomplete_kept", [])]
        gone = ["@%s  (delete: %s)" % (r["backup_id"], r["reason"])
                for r in result["deleted"] + result.get("incomplete_deleted", [])]
        out.append({"before_header": "%s:%s" % (provider, dataset), "after_header": "%s:%s" % (provider, dataset),
                    "before": "".join(line + "\n" for line in sorted(kept + gone)),
                    "after": "".join(line + "\n" for line in sorted(kept))})
    local = entry.get("local")
    if local and (local.get("kept") or local.get("deleted")):
        kept = ["%s@%s" % (dataset, r["snapshot"]) for r in local["kept"]]
        gone = ["%s@%s  (destroy: %s)" % (dataset, r["snapshot"], r["reason"]) for r in local["deleted"]]
        out.append({"before_header": "local:%s" % dataset, "after_header": "local:%s" % dataset,
                    "before": "".join(line + "\n" for line in sorted(kept + gone)),
                    "after": "".join(line + "\n" for line in sorted(kept))})
    return out


def main() -> None:
    argument_spec = dict(
        dataset=dict(type="str"),
        datasets=dict(type="list", elements="str"),
        keep=dict(type="dict"),
        prune_incomplete_after=dict(type="str"),
        local_snapshots=dict(type="bool"),
    )
    argument_spec.update(COMMON_ARGS)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    require_libraries(module)
    if IMPORT_ERROR:
        module.fail_json(msg="offsite.zfs could not load its module_utils.", exception=IMPORT_ERROR)
    params = module.params
    result = {"changed": False, "datasets": {}, "failed_datasets": [], "deleted": []}
    diff = []
    try:
        config = load_file(params["config"], params["config"] != "/etc/offsite/offsite.yml")
        wanted = list(params["datasets"] or []) + ([params["dataset"]] if params["dataset"] else [])
        for name in wanted:
            validate_dataset(name)
        names = wanted if wanted and params["keep"] is not None else policy_datasets(config, wanted)
        if params["keep"] is not None:
            from ansible_collections.offsite.zfs.plugins.module_utils.schema import errors
            problems = [p.replace("defaults.keep", "keep", 1) for p in errors({"defaults": {"keep": params["keep"]}})]
            if problems:
                raise OffsiteError("keep is not valid: %s." % problems[0], "bad_value")
        expanded = []
        for name in names:
            expanded += [d for d in tree_of(settings_from_config(config, params, name)) if d not in expanded]
        for name in expanded:
            settings = settings_from_config(config, params, name)
            entry = prune_dataset(settings, module.check_mode, keep=params["keep"],
                                  incomplete_after=params["prune_incomplete_after"], local=params["local_snapshots"])
            result["datasets"][name] = entry
            result["deleted"] += deletions(name, entry)
            diff += diffs(name, entry)
            if entry["failed_providers"]:
                result["failed_datasets"].append(name)
            result["changed"] = result["changed"] or entry["changed"]
    except OffsiteError as exc:
        result.update(msg=exc.message, error_code=exc.code)
        module.fail_json(**with_notes(result))
    parts = []
    for name, entry in result["datasets"].items():
        for provider, pentry in entry["providers"].items():
            if pentry.get("status") in ("locked", "failed", "append_only"):
                parts.append(pentry["message"])
            else:
                parts.append("%s on %s: %s %d, kept %d" % (
                    name, provider, "would delete" if module.check_mode else "deleted",
                    len(pentry["deleted"]) + len(pentry["incomplete_deleted"]), len(pentry["kept"])))
        if entry.get("local"):
            parts.append("%s locally: %s %d snapshots" % (name, "would destroy" if module.check_mode else "destroyed",
                                                          len(entry["local"]["deleted"])))
    result["cost"] = costs.by_provider(result["datasets"])
    if module.check_mode:
        parts += [costs.describe(provider, cost) for provider, cost in result["cost"].items()]
    result["msg"] = "; ".join(parts) or "The policy names no dataset to prune."
    if module._diff:
        result["diff"] = diff
    if result["failed_datasets"]:
        module.fail_json(**with_notes(result))
    module.exit_json(**with_notes(result))


if __name__ == "__main__":
    main()
