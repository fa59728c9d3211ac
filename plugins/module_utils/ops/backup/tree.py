# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tree backup: a dataset (or a whole pool) and every descendant, each its own chain, at one recursive snapshot.

Private to the collection: not an API for other collections.

Backup takes ONE recursive snapshot (`zfs snapshot -r`, one point in time for the whole
tree) and runs run_backup for every descendant filesystem and volume that is not
excluded: each child has its own chain and its own base selection, so a child created
later starts with a full backup and a child destroyed locally keeps its remote backups.
In a policy run each child also gets its own `full_every` decision per provider.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence

from ansible_collections.offsite.zfs.plugins.module_utils.common import (
    validate_dataset,
    validate_snapshot,
)
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.converge import backup_where_missing
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.run import run_backup
from ansible_collections.offsite.zfs.plugins.module_utils.selection import is_excluded, validate_patterns, with_failures
from ansible_collections.offsite.zfs.plugins.module_utils.settings import DatasetSettings
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import CREATED_BY_PROPERTY, Zfs

SettingsFor = Callable[[str], DatasetSettings]


def run_tree_backup(settings_for: SettingsFor, root: str, snapshot: Optional[str] = None, create: bool = False,
                    full: bool = False, exclude: Optional[Sequence[str]] = None, check_mode: bool = False,
                    zfs: Optional[Zfs] = None, stores: Optional[Dict[str, Store]] = None,
                    policy_now: Optional[float] = None) -> Dict[str, Any]:
    """Back up root and every descendant filesystem and volume at one recursive snapshot.

    policy_now (policy runs): each child goes to each provider that lacks the snapshot, full or
    incremental per the child's own full_every at that time, as a non-recursive policy dataset does.
    """
    validate_dataset(root)
    patterns = validate_patterns(exclude)
    if snapshot is not None:
        validate_snapshot(snapshot)
    root_settings = settings_for(root)
    zfs = zfs or Zfs(root_settings.zfs)
    if not zfs.exists(root):
        raise OffsiteError(f"The dataset {root} does not exist on this host.", "no_dataset")
    tree = zfs.children(root)
    included = [d for d in tree if not is_excluded(d, root, patterns)]
    excluded = [d for d in tree if d not in included]
    held = zfs.snapshot_names_below(root)
    created = False
    if snapshot is None:
        if create:
            raise OffsiteError(f"create needs a snapshot name (snapshot=NAME or dataset={root}@NAME).", "bad_value")
        local = zfs.snapshots(root)
        if not local:
            raise OffsiteError(f"The dataset {root} has no snapshot; pass snapshot=NAME create=true to take a "
                               f"recursive one.", "no_snapshot")
        snapshot = local[-1].name
    elif snapshot not in held.get(root, set()):
        if not create:
            raise OffsiteError(f"The snapshot {root}@{snapshot} does not exist on this host; pass create=true to "
                               f"take it recursively.", "no_snapshot")
        if not check_mode:
            # One point in time for the whole tree, excluded children included (ZFS snapshots whole trees).
            zfs.create_snapshot(root, snapshot, recursive=True, properties={CREATED_BY_PROPERTY: "true"})
            held = zfs.snapshot_names_below(root)
        created = True
    with_properties = "p" in zfs.capabilities().send_flags
    result: Dict[str, Any] = {
        "changed": created, "dataset": root, "snapshot": snapshot, "snapshot_created": created, "recursive": True,
        "namespace": root_settings.namespace, "datasets": {}, "failed_datasets": [], "excluded": excluded,
        "skipped": {},
    }
    for dataset in included:
        if not (created and check_mode) and snapshot not in held.get(dataset, set()):
            result["skipped"][dataset] = (f"{dataset} has no snapshot {snapshot} (it was created after that "
                                          f"recursive snapshot); the next recursive snapshot includes it")
            continue
        try:
            settings = settings_for(dataset)
            if with_properties and "properties" not in settings.send_options:
                # Properties travel with the tree (send -p) where this ZFS can send them.
                settings.send_options["properties"] = True
            if policy_now is None:
                entry = run_backup(settings, snapshot=snapshot, create=created and check_mode, full=full,
                                   check_mode=check_mode, zfs=zfs, stores=stores)
            else:
                entry = _policy_child(settings, snapshot, policy_now, check_mode, zfs, stores)
        except OffsiteError as exc:
            entry = {"changed": False, "dataset": dataset, "msg": f"{dataset}@{snapshot}: {exc.message}",
                     "error_code": exc.code}
            result["failed_datasets"].append(dataset)
        else:
            if entry.get("failed_providers"):
                result["failed_datasets"].append(dataset)
        result["datasets"][dataset] = entry
        result["changed"] = result["changed"] or bool(entry.get("changed"))
    done = len(result["datasets"]) - len(result["failed_datasets"])
    result["msg"] = (f"{root}@{snapshot} recursively: {done} datasets {'planned' if check_mode else 'backed up'}, "
                     f"{len(result['failed_datasets'])} failed, {len(excluded)} excluded, "
                     f"{len(result['skipped'])} skipped")
    return with_failures(result)


def _policy_child(settings: DatasetSettings, snapshot: str, now: float, check_mode: bool, zfs: Zfs,
                  stores: Optional[Dict[str, Store]]) -> Dict[str, Any]:
    """One child of a recursive policy dataset, backed up where missing, full per its own full_every."""
    target = next((s for s in zfs.snapshots(settings.dataset) if s.name == snapshot), None)
    entry = backup_where_missing(settings, snapshot, target, now, check_mode, zfs, stores)
    entry.update(dataset=settings.dataset, snapshot=snapshot, namespace=settings.namespace)
    statuses = ", ".join("%s %s" % (name, e.get("status")) for name, e in entry["providers"].items())
    entry["msg"] = "%s@%s -> %s" % (settings.dataset, snapshot, statuses or "no provider selected")
    if entry["failed_providers"]:
        entry["msg"] = "; ".join(entry["providers"][n]["message"] for n in entry["failed_providers"])
    return entry
