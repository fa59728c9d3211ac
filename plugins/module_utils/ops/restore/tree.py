# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tree restore: a dataset (or a whole pool) and every backed-up descendant, to one snapshot, parents first.

Private to the collection: not an API for other collections.

Restore lists the backups below the root on the remote, and runs run_restore for each
dataset, parents before children, every one to the same snapshot name, each into
`<target>/<path below the root>`. Every child restore is atomic (staging name, then
rename), so a failed child is absent and named in the result while the others are
complete; the descendants of a dataset that could not be restored are skipped.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils import catalog
from ansible_collections.offsite.zfs.plugins.module_utils.common import (
    human_bytes,
    validate_dataset,
    validate_snapshot,
)
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.keys import Keys
from ansible_collections.offsite.zfs.plugins.module_utils.manifest import Manifest
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.native import find_native
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.receive import mount_restored
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.run import run_restore
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.sources import listing_dir, select_stores
from ansible_collections.offsite.zfs.plugins.module_utils.selection import (
    is_below,
    is_excluded,
    tree_order,
    validate_patterns,
    with_failures,
)
from ansible_collections.offsite.zfs.plugins.module_utils.settings import DatasetSettings
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import Zfs

SettingsFor = Callable[[str], DatasetSettings]
# Properties that exist only on file systems: never set on a restored volume.
FILESYSTEM_ONLY = ("mountpoint", "canmount", "sharenfs", "sharesmb", "atime", "exec", "setuid", "devices",
                   "readonly", "snapdir", "aclinherit", "aclmode", "xattr", "recordsize")


def remote_tree(stores: Sequence[Store], namespace: str, root: str, work_dir: Optional[str] = None
                ) -> Tuple[Dict[str, Dict[str, Manifest]], List[str]]:
    """dataset -> {snapshot name -> manifest} of the complete backups at or below root on any of the stores.

    One listing (and one manifest download) per store, over the whole namespace.
    """
    found: Dict[str, Dict[str, Manifest]] = {}
    notes = []
    for store in stores:
        try:
            listing = catalog.list_backups(store, namespace, None, work_dir=work_dir)
        except OffsiteError as exc:
            notes.append(f"{store.name}: {exc.message}")
            continue
        for (dataset, _backup_id), backup in listing.backups.items():
            if backup.complete and is_below(dataset, root):
                found.setdefault(dataset, {}).setdefault(backup.manifest.snapshot.name, backup.manifest)
    return found, notes


def _newest(manifests: Sequence[Manifest]) -> Manifest:
    return max(manifests, key=lambda m: (m.snapshot.creation, m.snapshot.createtxg))


def run_tree_restore(settings_for: SettingsFor, root: str, snapshot: Optional[str] = None,
                     target: Optional[str] = None, provider: str = "auto", keys: Optional[Keys] = None,
                     force: bool = False, check_mode: bool = False, exclude: Optional[Sequence[str]] = None,
                     mountpoint: Optional[str] = None, properties: Optional[Dict[str, str]] = None,
                     zfs: Optional[Zfs] = None, stores: Optional[Dict[str, Store]] = None) -> Dict[str, Any]:
    """Restore root and every backed-up descendant to one snapshot, parents first, under target."""
    validate_dataset(root)
    target = validate_dataset(target or root)
    patterns = validate_patterns(exclude)
    if snapshot is not None:
        validate_snapshot(snapshot)
    if mountpoint is not None and not (mountpoint in ("none", "legacy", "received") or mountpoint.startswith("/")):
        raise OffsiteError(f"The mountpoint {mountpoint!r} must be an absolute path, none, legacy or received.",
                           "bad_value")
    if mountpoint is None and target != root:
        mountpoint = "inherit"  # a copy under a new name mounts below its new parent, never over the live tree
    root_settings = settings_for(root)
    zfs = zfs or Zfs(root_settings.zfs)
    if mountpoint == "inherit" and zfs.exists(target) and zfs.property_source(target, "mountpoint") == "local":
        mountpoint = zfs.get(target, "mountpoint")  # an existing root (a pool) keeps its own mountpoint
    store_map = {store.name: store for store in select_stores(root_settings, provider, stores)}
    names = list(store_map)
    work_dir = listing_dir(root_settings)
    found, notes = remote_tree(list(store_map.values()), root_settings.namespace, root, work_dir)
    excluded = [d for d in found if is_excluded(d, root, patterns)]
    for dataset in excluded:
        del found[dataset]
    if not found:
        raise OffsiteError(f"No provider holds a complete backup of {root} or a dataset below it in namespace "
                           f"{root_settings.namespace}{': ' + '; '.join(notes) if notes else ''}.", "no_backup")
    if snapshot is None:
        pool = list(found[root].values()) if root in found else [m for d in found.values() for m in d.values()]
        snapshot = _newest(pool).snapshot.name
    result: Dict[str, Any] = {
        "changed": False, "dataset": root, "target": target, "snapshot": snapshot, "recursive": True,
        "namespace": root_settings.namespace, "datasets": {}, "failed_datasets": [], "excluded": sorted(excluded),
        "skipped": {}, "plan": [], "notes": notes,
    }
    not_restored: List[str] = []  # datasets whose target will not exist: their descendants are skipped
    for dataset in tree_order(found):
        dest = target + dataset[len(root):]
        manifest = found[dataset].get(snapshot)
        parent_dest = dest.rpartition("/")[0]
        blocker = next((d for d in not_restored if dataset.startswith(d + "/")), None)
        if blocker is not None and not zfs.exists(parent_dest):
            result["skipped"][dataset] = f"{dataset} was not restored because {blocker} was not"
            not_restored.append(dataset)
            continue
        if manifest is None:
            result["skipped"][dataset] = (f"{dataset} has no backup of snapshot {snapshot} (it was created after "
                                          f"that snapshot, or excluded then)")
            not_restored.append(dataset)
            continue
        kind = manifest.dataset_type
        props: Dict[str, Optional[str]] = dict(properties or {})
        if mountpoint is not None and mountpoint != "received":
            # The root gets the new mountpoint; children inherit below it, so nothing mounts over the live tree.
            props["mountpoint"] = mountpoint if dataset == root and mountpoint != "inherit" else None
        if kind == "volume":
            props = {k: v for k, v in props.items() if k not in FILESYSTEM_ONLY}
        settings = settings_for(dataset)
        try:
            if check_mode and parent_dest and not zfs.exists(parent_dest) and any(
                    p["target"] == parent_dest for p in result["plan"]):
                # The parent is itself planned: run_restore cannot check a target whose parent does not exist yet.
                source = find_native([store_map[n] for n in names], settings.namespace, dataset, snapshot, work_dir)
                entry: Dict[str, Any] = {
                    "changed": True, "dataset": dataset, "target": dest, "provider": source.store.name,
                    "snapshot": snapshot, "chain": [b.backup_id for b in source.chain],
                    "estimated_bytes": sum(b.manifest.plain_bytes for b in source.chain),
                    "msg": f"would restore {dataset}@{snapshot} from {source.store.name} into {dest} after its "
                           f"parent: {len(source.chain)} backups"}
            else:
                entry = run_restore(settings, snapshot=snapshot, target=dest, provider=provider, keys=keys,
                                    force=force, check_mode=check_mode, zfs=zfs, stores=store_map,
                                    properties=props or None)
                if not check_mode and kind != "volume":
                    problem = mount_restored(zfs, dest)
                    if problem:
                        entry["mount_error"] = problem
        except OffsiteError as exc:
            entry = {"changed": False, "dataset": dataset, "target": dest, "msg": exc.message,
                     "error_code": exc.code}
            result["failed_datasets"].append(dataset)
            not_restored.append(dataset)
        entry["dataset_type"] = kind
        result["datasets"][dataset] = entry
        result["plan"].append({"dataset": dataset, "target": dest, "type": kind,
                               "status": "failed" if dataset in result["failed_datasets"] else
                               ("planned" if check_mode and entry.get("changed") else
                                "restored" if entry.get("changed") else "present")})
        result["changed"] = result["changed"] or bool(entry.get("changed"))
    restored = sum(1 for p in result["plan"] if p["status"] in ("restored", "planned"))
    total = sum(e.get("bytes", e.get("estimated_bytes", 0)) or 0 for e in result["datasets"].values())
    result["msg"] = (f"{'would restore' if check_mode else 'restored'} {root}@{snapshot} recursively into {target}: "
                     f"{restored} datasets ({human_bytes(total)}), {len(result['failed_datasets'])} failed, "
                     f"{len(result['skipped'])} skipped, {len(excluded)} excluded")
    return with_failures(result)
