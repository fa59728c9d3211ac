# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The restore operation: one snapshot's chain, native or the old tool's, into a target dataset.

Private to the collection: not an API for other collections.

`run_restore` checks the arguments, takes the target's restore lock, finds the chain (sources.py),
plans the target once (target.py), stops there in check mode, and otherwise receives the links
(receive.py) with one progress log and state file per run. A new target is received under its
staging name and renamed when the whole chain is in, so a failure never leaves a new or
half-received dataset under the target's name (after kill -9 a rerun continues from it).
"""

from __future__ import annotations

import time
from typing import Any, Dict, Optional

from ansible_collections.offsite.zfs.plugins.module_utils import locks
from ansible_collections.offsite.zfs.plugins.module_utils.common import validate_dataset, validate_snapshot
from ansible_collections.offsite.zfs.plugins.module_utils.keys import Keys
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.receive import receive_chain
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.sources import (
    ChainSource,
    find_source,
    select_stores,
)
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.target import check_target_name, plan_target
from ansible_collections.offsite.zfs.plugins.module_utils.progress import Progress
from ansible_collections.offsite.zfs.plugins.module_utils.settings import DatasetSettings
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import Zfs

Properties = Optional[Dict[str, Optional[str]]]


def run_restore(settings: DatasetSettings, snapshot: Optional[str] = None, target: Optional[str] = None,
                provider: str = "auto", keys: Optional[Keys] = None, force: bool = False, check_mode: bool = False,
                zfs: Optional[Zfs] = None, stores: Optional[Dict[str, Store]] = None, properties: Properties = None,
                legacy: Optional[bool] = False) -> Dict[str, Any]:
    """Restore the chain of snapshot (the newest when None) into target (the dataset itself when None).

    legacy: False restores native backups, True the old tool's, None (auto) the old tool's when no provider
    holds a native backup (the result's legacy_detected says so). properties: set (value) or inherit (None)
    on the target after every received link (mountpoint overrides).
    """
    zfs = zfs or Zfs(settings.zfs)
    if snapshot is not None:
        validate_snapshot(snapshot)
    target = validate_dataset(target or settings.dataset)
    check_target_name(target)
    store_list = select_stores(settings, provider, stores)
    lock = None
    if not check_mode:
        lock = locks.acquire(settings.state_dir, "restore", target, "restore to %s" % target,
                             {"dataset": settings.dataset, "target": target})
    try:
        source = find_source(settings, store_list, snapshot, keys or Keys(), legacy, check_mode, target)
        if isinstance(source, dict):
            return source  # check mode: legacy backups, which the identity would link
        if zfs.exists(target):
            source.know_guids()
        return restore_chain(settings, zfs, source, target, force, check_mode, properties)
    finally:
        if lock is not None:
            lock.release()


def restore_chain(settings: DatasetSettings, zfs: Zfs, source: ChainSource, target: str, force: bool,
                  check_mode: bool, properties: Properties = None) -> Dict[str, Any]:
    """Plan the target for the source's chain and receive what it lacks (nothing in check mode)."""
    result = source.start(settings.dataset, target)
    links = source.links
    plan = plan_target(zfs, links, target, force, check_mode, resumes=source.resumes, legacy=source.legacy)
    if plan.start is None:
        final = links[-1]
        result.update(received=[], msg="%s already holds %s (guid %s); nothing to restore." % (
            target, final.snapshot, final.guid))
        return result
    if plan.resumed:
        result["resumed_from_staging"] = True
    todo = links[plan.start:]
    result.update(source.planned(todo))
    result["changed"] = True
    if check_mode:
        result["msg"] = source.would(result, todo)
        return result
    source.prepare(todo)
    progress = Progress(settings.log_dir, settings.state_dir, "restore", target)
    result["log_file"] = progress.log_path
    outcome = "failed"
    started = time.time()
    try:
        received = receive_chain(zfs, target, plan, todo, source.store.name, progress, properties)
        outcome = "finished"
    finally:
        progress.close(outcome)
    seconds = max(time.time() - started, 1e-3)
    total = sum(r["bytes"] for r in received)
    result.update(received=received, bytes=total, seconds=round(seconds, 3), rate_bytes_per_second=int(total / seconds))
    result.update(source.finished(result, received, total))
    return result
