# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Convergence: bring each dataset of the policy to "backed up recently enough, everywhere".

For each dataset: a snapshot `<prefix>-<UTC timestamp>` is taken only when the newest one this
collection took is in an earlier slot of `every` (slots start at `at`, see module_utils/schedule.py);
the newest such snapshot is backed up to every selected provider that lacks it, full or incremental
per `full_every`. Nothing due and nothing missing: changed=false, and no command but listings runs.
Twice in a row, the second run changes nothing.

Policy logic only: the backups go through run.run_backup (this package); a recursive dataset's tree
is backed up by the `tree_backup` that _wiring.policy_run gives it; prune (and the drill) are added
by _wiring.timer_run, never imported here.

Private to the collection: not an API for other collections.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils import catalog, locks, schedule, snapshot_managers
from ansible_collections.offsite.zfs.plugins.module_utils.common import human_duration
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.plan import already_present
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.run import run_backup
from ansible_collections.offsite.zfs.plugins.module_utils.settings import DatasetSettings, FullEvery
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import CREATED_BY_PROPERTY, Snapshot, Zfs

_STAMP = re.compile(r"^\d{8}T\d{6}Z$")


def snapshot_name(prefix: str, now: float) -> str:
    return "%s-%s" % (prefix, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)))


def is_policy_snapshot(name: str, prefix: str) -> bool:
    return name.startswith(prefix + "-") and bool(_STAMP.match(name[len(prefix) + 1:]))


def due(snaps: Sequence[Snapshot], prefix: str, every: float, now: float,
        plan: Optional[schedule.Schedule] = None) -> Tuple[bool, Optional[Snapshot], str]:
    """Whether a new policy snapshot is due, the newest existing one, and why (slots: module_utils/schedule.py)."""
    ours = [s for s in snaps if is_policy_snapshot(s.name, prefix)]
    latest = max(ours, key=lambda s: s.createtxg) if ours else None
    if latest is None:
        return True, None, "no %s-* snapshot yet" % prefix
    is_due, why = schedule.due(plan or schedule.make(float(every)), latest.creation, now)
    return is_due, latest, "the newest snapshot %s is %s" % (latest.name, why)


def full_reason(backups: Sequence[catalog.Backup], full_every: FullEvery, now: float) -> Optional[str]:
    """Why the next backup to this provider must be full (None: an incremental is fine)."""
    usable = [b for b in backups if b.intact]
    latest = catalog.latest_backup(usable)
    if latest is None:
        return "the provider has no backup of this dataset yet"
    chain = catalog.resolve_chain(usable, latest.manifest.snapshot.guid) or []
    if full_every.incrementals is not None:
        limit = full_every.incrementals
        incrementals = max(0, len(chain) - 1)
        if incrementals >= limit:
            return "the newest chain has %d incrementals (full_every: {incrementals: %d})" % (incrementals, limit)
        return None
    seconds = full_every.seconds or 0.0
    fulls = [b for b in usable if b.manifest.kind == "full"]
    newest = max((b.manifest.snapshot.creation for b in fulls), default=None)
    if newest is None:
        return "the provider has no full backup of this dataset"
    if now - newest >= seconds:
        return "the newest full backup is %s old (full_every %s)" % (
            human_duration(now - newest), human_duration(seconds))
    return None


def converge_dataset(settings: DatasetSettings, check_mode: bool = False, now: Optional[float] = None,
                     zfs: Optional[Zfs] = None, stores: Optional[Dict[str, Store]] = None,
                     tree_backup: Optional[Callable[..., Dict[str, Any]]] = None) -> Dict[str, Any]:
    """Converge one dataset: snapshot when due, back the newest policy snapshot up where it is missing.

    One policy run per dataset at a time (a timer and an Ansible run never both take the snapshot).
    """
    lock = None
    if not check_mode:
        lock = locks.acquire(settings.state_dir, "converge", settings.dataset,
                             "policy run for %s" % settings.dataset, {"dataset": settings.dataset})
    try:
        return _converge_dataset(settings, check_mode, now, zfs, stores, tree_backup)
    finally:
        if lock is not None:
            lock.release()


def _converge_dataset(settings: DatasetSettings, check_mode: bool, now: Optional[float], zfs: Optional[Zfs],
                      stores: Optional[Dict[str, Store]],
                      tree_backup: Optional[Callable[..., Dict[str, Any]]]) -> Dict[str, Any]:
    now = time.time() if now is None else now
    prefix = settings.snapshot_prefix
    zfs = zfs or Zfs(settings.zfs)
    dataset = settings.dataset
    if settings.snapshot_pattern:  # a snapshot manager's snapshots: back up its newest, take none
        is_due, latest, why = snapshot_managers.newest_matching(zfs.snapshots(dataset), settings.snapshot_pattern,
                                                                dataset)
    else:
        plan = settings.schedule(dataset)
        is_due, latest, why = due(zfs.snapshots(dataset), prefix, settings.every, now, plan)
    result: Dict[str, Any] = {"dataset": dataset, "due": is_due, "reason": why, "snapshot_created": False,
                              "changed": False, "providers": {}, "failed_providers": []}
    target_name = snapshot_name(prefix, now) if is_due else latest.name
    result["snapshot"] = target_name
    if settings.recursive and tree_backup is not None:
        # The tree code takes the recursive snapshot and backs up every child; present means unchanged.
        outcome = tree_backup(dataset, snapshot=target_name, create=is_due, check_mode=check_mode,
                              exclude=list(settings.exclude), policy_now=now)
        outcome.update(due=is_due, reason=why, snapshot=target_name)
        return outcome
    if is_due and not check_mode:
        zfs.create_snapshot(dataset, target_name, properties={CREATED_BY_PROPERTY: "true"})
        result["snapshot_created"] = True
        result["changed"] = True
    snaps = zfs.snapshots(dataset)
    target = next((s for s in snaps if s.name == target_name), None)
    missing = backup_where_missing(settings, target_name, target, now, check_mode, zfs, stores)
    result["providers"] = missing["providers"]
    result["failed_providers"] = missing["failed_providers"]
    result["changed"] = result["changed"] or missing["changed"]
    return result


def backup_where_missing(settings: DatasetSettings, target_name: str, target: Optional[Snapshot], now: float,
                         check_mode: bool, zfs: Zfs, stores: Optional[Dict[str, Store]] = None) -> Dict[str, Any]:
    """Back target_name up to each selected provider that lacks it, full or incremental per settings.full_every.

    target is None in check mode when the snapshot would be taken now. Returns providers (one entry
    each: present, planned, uploaded, resumed or failed), failed_providers and changed.
    """
    dataset = settings.dataset
    result: Dict[str, Any] = {"providers": {}, "failed_providers": [], "changed": False}
    work_dir = settings.spool_dir if os.path.isdir(settings.spool_dir) else None
    uploads: Dict[bool, List[Tuple[str, Store, Any]]] = {}  # full? -> the providers that need that backup
    for name in settings.selected:
        store = (stores or {}).get(name) or Store(settings.providers[name])
        try:
            backups = catalog.list_backups(store, settings.namespace, dataset, work_dir=work_dir,
                                           trust=settings.trust).for_dataset(dataset)
            present = already_present(backups, target, False) if target is not None else None
            if present is not None:
                result["providers"][name] = {"provider": name, "status": "present", "changed": False,
                                             "backup_id": present.backup_id, "kind": present.manifest.kind,
                                             "message": "%s@%s is already backed up to %s." % (
                                                 dataset, target_name, name)}
                continue
            reason = full_reason(backups, settings.full_every, now)
            if target is None:  # check mode, the snapshot would be taken now
                result["providers"][name] = {
                    "provider": name, "status": "planned", "changed": True, "kind": "full" if reason else "incremental",
                    "full_reason": reason, "message": "would take %s@%s and upload a%s backup to %s" % (
                        dataset, target_name, " full" if reason else "n incremental", name)}
                result["changed"] = True
                continue
            uploads.setdefault(bool(reason), []).append((name, store, reason))
            continue
        except OffsiteError as exc:
            entry = {"provider": name, "status": "failed", "changed": False, "error_code": exc.code,
                     "message": "%s@%s to %s failed: %s" % (dataset, target_name, name, exc.message)}
        _add(result, name, entry)
    # The providers that need the same kind of backup share one zfs send (upload.py).
    for full, group in sorted(uploads.items()):
        names = [name for name, _store, _reason in group]
        try:
            outcome = run_backup(dataclasses.replace(settings, selected=names), snapshot=target_name, full=full,
                                 check_mode=check_mode, zfs=zfs, stores={name: store for name, store, _r in group})
        except OffsiteError as exc:
            outcome = {"providers": {name: {"provider": name, "status": "failed", "changed": False,
                                            "error_code": exc.code, "message": "%s@%s to %s failed: %s" % (
                                                dataset, target_name, name, exc.message)} for name in names}}
        for name, _store, reason in group:
            entry = outcome["providers"][name]
            entry["full_reason"] = reason
            if outcome.get("log_file"):
                entry["log_file"] = outcome["log_file"]
            _add(result, name, entry)
    result["providers"] = {name: result["providers"][name] for name in settings.selected
                           if name in result["providers"]}
    return result


def _add(result: Dict[str, Any], name: str, entry: Dict[str, Any]) -> None:
    result["providers"][name] = entry
    if entry.get("status") in ("failed", "deferred"):
        result["failed_providers"].append(name)
    result["changed"] = result["changed"] or bool(entry.get("changed"))


def converge(settings_for: Callable[[str], DatasetSettings], datasets: Sequence[str], check_mode: bool = False,
             now: Optional[float] = None, zfs: Optional[Zfs] = None,
             tree_backup: Optional[Callable[..., Dict[str, Any]]] = None) -> Dict[str, Any]:
    """Converge every named dataset; one dataset's failure does not stop the others.

    tree_backup(dataset, snapshot=, create=, check_mode=, exclude=, policy_now=) backs up a recursive dataset's
    tree (tree.run_tree_backup, given by _wiring.policy_run), each child full or incremental per its own full_every.
    """
    now = time.time() if now is None else now
    result: Dict[str, Any] = {"changed": False, "datasets": {}, "failed_datasets": []}
    for dataset in datasets:
        try:
            settings = settings_for(dataset)
            entry = converge_dataset(settings, check_mode=check_mode, now=now, zfs=zfs,
                                     tree_backup=tree_backup)
        except OffsiteError as exc:
            entry = {"dataset": dataset, "changed": False, "failed": True, "error_code": exc.code,
                     "message": exc.message, "providers": {}, "failed_providers": []}
        result["datasets"][dataset] = entry
        if entry.get("failed") or entry.get("failed_providers") or entry.get("failed_datasets"):
            result["failed_datasets"].append(dataset)
        result["changed"] = result["changed"] or bool(entry.get("changed"))
    result["msg"] = summary(result)
    return result


def summary(result: Dict[str, Any]) -> str:
    parts: List[str] = []
    for dataset, entry in result["datasets"].items():
        if entry.get("failed") and entry.get("message"):
            parts.append("%s: %s" % (dataset, entry["message"]))
            continue
        if entry.get("failed_providers"):
            parts.extend(entry["providers"][p].get("message", "%s failed" % p) for p in entry["failed_providers"])
            continue
        statuses = ", ".join("%s %s" % (p, e.get("status")) for p, e in (entry.get("providers") or {}).items())
        parts.append("%s@%s: %s%s" % (dataset, entry.get("snapshot"), "new snapshot; " if entry.get(
            "snapshot_created") else "", statuses or "nothing to do"))
    if not parts:
        return "The policy names no dataset; add some under datasets."
    return "; ".join(parts)
