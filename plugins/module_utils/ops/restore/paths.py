# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restoring selected paths: plan the chain, receive it into a scratch place, copy the paths out, destroy it.

Private to the collection: not an API for other collections.

The live dataset is never touched: the chain goes through run.run_restore into the scratch place's
dataset (see scratch.py), which is mounted read-only; extract.py matches and copies the paths.
"""

from __future__ import annotations

import os
import time
from typing import Any, Dict, Optional, Sequence

from ansible_collections.offsite.zfs.plugins.module_utils import extract, scratch
from ansible_collections.offsite.zfs.plugins.module_utils.common import (
    human_bytes,
    validate_snapshot,
)
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.keys import Keys
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.native import NativeChain, find_native
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.run import run_restore
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.sources import listing_dir, select_stores
from ansible_collections.offsite.zfs.plugins.module_utils.settings import DatasetSettings
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import Zfs


def plan_source(settings: DatasetSettings, snapshot: Optional[str], provider: Optional[str],
                stores: Optional[Dict[str, Store]] = None) -> NativeChain:
    """The chain to receive, checked to be a file system's."""
    if snapshot is not None:
        validate_snapshot(snapshot)
    source = find_native(select_stores(settings, provider, stores), settings.namespace, settings.dataset,
                         snapshot, listing_dir(settings))
    final = source.chain[-1].manifest
    if final.dataset_type == "volume":
        raise OffsiteError("%s is a volume: restoring paths needs a file system; restore the whole volume with "
                           "target instead." % settings.dataset, "volume_paths")
    return source


def receive_into_scratch(settings: DatasetSettings, source: NativeChain, place: scratch.Place, keys: Optional[Keys],
                         zfs: Zfs, stores: Optional[Dict[str, Store]]) -> Dict[str, Any]:
    """The whole chain into the scratch place's dataset (run.run_restore), then mounted read-only."""
    final = source.chain[-1].manifest
    received = run_restore(settings, snapshot=final.snapshot.name, target=place.target,
                           provider=source.store.name, keys=keys, zfs=zfs,
                           stores=dict(stores or {}, **{source.store.name: source.store}),
                           properties={"mountpoint": "none"})
    scratch.mount_readonly(zfs, place)
    return received


def run_path_restore(settings: DatasetSettings, paths: Sequence[Any], dest: Optional[str] = None,
                     snapshot: Optional[str] = None, provider: str = "auto", keys: Optional[Keys] = None,
                     force: bool = False, list_only: bool = False, check_mode: bool = False,
                     scratch_pool: Optional[str] = None, scratch_dir: Optional[str] = None,
                     zfs: Optional[Zfs] = None, stores: Optional[Dict[str, Store]] = None) -> Dict[str, Any]:
    zfs = zfs or Zfs(settings.zfs)
    dataset = settings.dataset
    patterns = extract.validate_patterns(paths)
    if scratch_pool and scratch_dir:
        raise OffsiteError("Pass scratch_pool or scratch_dir, not both.", "bad_scratch")
    if not scratch_pool and not scratch_dir:
        scratch_dir = settings.spool_dir  # the spool directory is the default home of the file-backed pool
    if not list_only:
        if dest is None:
            raise OffsiteError("Restoring paths of %s needs dest, the directory to copy them into (or pass "
                               "list=true to see what matches)." % dataset, "bad_dest")
        extract.check_dest(dest, force)
    if scratch_dir and not scratch_pool and not os.path.isdir(scratch_dir) and scratch_dir == settings.spool_dir:
        os.makedirs(scratch_dir, mode=0o700, exist_ok=True)
    if not check_mode:
        scratch.cleanup_stale(zfs, settings.state_dir)  # what killed runs left, even if this run fails next
    source = plan_source(settings, snapshot, provider, stores)
    final = source.chain[-1].manifest
    stream_bytes = sum(b.manifest.plain_bytes for b in source.chain)
    where = scratch.plan(zfs, dataset, stream_bytes, scratch_pool, scratch_dir)
    result: Dict[str, Any] = {
        "changed": False, "dataset": dataset, "namespace": settings.namespace, "provider": source.store.name,
        "snapshot": final.snapshot.name, "guid": final.snapshot.guid, "chain": [b.backup_id for b in source.chain],
        "skipped_providers": source.skipped, "paths": ["/" + p for p in patterns], "copied_to": dest,
        "scratch": where, "estimated_bytes": stream_bytes,
    }
    if check_mode:
        result["changed"] = not list_only
        result["msg"] = "would receive %s@%s from %s (%d backups, %s) into a scratch %s in %s (needs about %s, %s " \
                        "free), then %s %s" % (
                            dataset, final.snapshot.name, source.store.name, len(source.chain),
                            human_bytes(stream_bytes), "dataset" if scratch_pool else "file-backed pool",
                            where["where"], human_bytes(where["needed_bytes"]), human_bytes(where["free_bytes"]),
                            "list" if list_only else "copy to %s" % dest, ", ".join(result["paths"]))
        return result
    started = time.time()
    with scratch.scratch_place(zfs, settings.state_dir, dataset, stream_bytes, scratch_pool, scratch_dir) as place:
        result["scratch"] = dict(where, name=place.root)
        received = receive_into_scratch(settings, source, place, keys, zfs, stores)
        result["received_bytes"] = received.get("bytes", 0)
        matched, unmatched = extract.match(place.mount_dir, patterns)
        result["unmatched"] = unmatched
        if list_only:
            result["matches"] = extract.describe(place.mount_dir, matched)
            result["msg"] = "%d paths of %s@%s match %s" % (
                len(matched), dataset, final.snapshot.name, ", ".join(result["paths"]))
        else:
            if unmatched:
                raise OffsiteError("Nothing in %s@%s matches %s; nothing was copied (list=true shows what "
                                   "matches)." % (dataset, final.snapshot.name, ", ".join(unmatched)), "no_match")
            copied = extract.copy_out(place.mount_dir, matched, str(dest))
            result.update(copied)
            result["changed"] = True
            result["msg"] = "restored %d paths of %s@%s from %s into %s: %d files, %d directories, %s" % (
                len(matched), dataset, final.snapshot.name, source.store.name, dest, copied["files"],
                copied["directories"], human_bytes(copied["bytes"]))
    result["seconds"] = round(time.time() - started, 3)
    return result
