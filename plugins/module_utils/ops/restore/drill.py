# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore drills: prove that the latest backup of each dataset restores, from each provider.

Private to the collection: not an API for other collections.

A drill receives the latest backup's whole chain into a scratch place (scratch.py, through
paths.receive_into_scratch, so every chunk's size, SHA-256, age authentication and keyed
digest are checked on the way), checks that the received snapshot's guid is the manifest's, and, when
the live snapshot still exists and its files can be read (`<mountpoint>/.zfs/snapshot/<snap>`),
compares a sample of its files (or all) with the copy: content, size, mode, owner and mtime.
The outcome of the last drill per (dataset, provider) is kept in `<state_dir>/drills.json` (0600),
which `offsite_status` reads (status_drills.py).
"""

from __future__ import annotations

import hashlib
import os
import random
import stat
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

from ansible_collections.offsite.zfs.plugins.module_utils import scratch
from ansible_collections.offsite.zfs.plugins.module_utils.common import (
    human_bytes,
)
from ansible_collections.offsite.zfs.plugins.module_utils.drill_state import load_records, save_record
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.keys import Keys
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore import paths
from ansible_collections.offsite.zfs.plugins.module_utils.settings import DatasetSettings
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import Zfs

DEFAULT_FILES = 100


def _digest(path: str) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _entries(root: str) -> List[str]:
    found = []
    for dirpath, dirs, names in os.walk(root):
        if dirpath == root and ".zfs" in dirs:
            dirs.remove(".zfs")
        for name in dirs + names:
            found.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(found)


def compare_trees(live: str, copy: str, files: Optional[int], seed: str) -> Dict[str, Any]:
    """Compare a sample (files=None: all) of the live snapshot's entries with the copy's."""
    entries = _entries(live)
    chosen = entries if files is None or files >= len(entries) else sorted(
        random.Random(seed).sample(entries, files))
    mismatches: List[str] = []
    compared_bytes = 0
    for rel in chosen:
        a = os.path.join(live, rel)
        b = os.path.join(copy, rel)
        try:
            sa, sb = os.lstat(a), os.lstat(b)
        except FileNotFoundError:
            mismatches.append("/%s is missing from the copy" % rel)
            continue
        what = []
        if stat.S_IFMT(sa.st_mode) != stat.S_IFMT(sb.st_mode) or stat.S_IMODE(sa.st_mode) != stat.S_IMODE(sb.st_mode):
            what.append("mode")
        if (sa.st_uid, sa.st_gid) != (sb.st_uid, sb.st_gid):
            what.append("owner")
        if stat.S_ISREG(sa.st_mode):
            if sa.st_mtime_ns != sb.st_mtime_ns:
                what.append("mtime")
            if sa.st_size != sb.st_size or _digest(a) != _digest(b):
                what.append("content")
            compared_bytes += sa.st_size
        elif stat.S_ISLNK(sa.st_mode) and os.readlink(a) != os.readlink(b):
            what.append("link target")
        if what:
            mismatches.append("/%s differs (%s)" % (rel, ", ".join(what)))
    return {"entries": len(entries), "compared": len(chosen), "compared_bytes": compared_bytes,
            "mismatches": mismatches[:20], "mismatch_count": len(mismatches)}


def live_snapshot_dir(zfs: Zfs, dataset: str, snapshot: str, guid: str, state_dir: str,
                      place: scratch.Place) -> Optional[str]:
    """The readable files of the live snapshot with this guid: its .zfs/snapshot directory, else a read-only
    clone of it that the scratch place owns (ZFS without .zfs, such as zfs-fuse); None when it is gone."""
    try:
        if not zfs.exists(dataset) or zfs.get(dataset, "type") != "filesystem":
            return None
        if not [s for s in zfs.snapshots(dataset) if s.name == snapshot and str(s.guid) == guid]:
            return None
        if zfs.get(dataset, "mounted") == "yes":
            path = os.path.join(zfs.get(dataset, "mountpoint"), ".zfs", "snapshot", snapshot)
            if os.path.isdir(path):
                return path
    except OffsiteError:
        return None
    return scratch.clone_readonly(zfs, state_dir, place, "%s@%s" % (dataset, snapshot))


def drill_one(settings: DatasetSettings, provider: str, keys: Optional[Keys], files: Optional[int],
              scratch_pool: Optional[str], scratch_dir: Optional[str], zfs: Zfs,
              stores: Optional[Dict[str, Store]] = None, now: Callable[[], float] = time.time) -> Dict[str, Any]:
    """One drill; its record (saved in the state). Failures are recorded, never raised."""
    started = now()
    record: Dict[str, Any] = {"dataset": settings.dataset, "provider": provider, "started": round(started, 3),
                              "result": "failed", "bytes": 0}
    if not scratch_pool and not scratch_dir:
        scratch_dir = settings.spool_dir  # like a path restore: the spool directory holds the scratch pool
        os.makedirs(scratch_dir, mode=0o700, exist_ok=True)
    try:
        source = paths.plan_source(settings, None, provider, stores)
        final = source.chain[-1].manifest
        record.update(snapshot=final.snapshot.name, guid=final.snapshot.guid, chain=len(source.chain))
        stream_bytes = sum(b.manifest.plain_bytes for b in source.chain)
        with scratch.scratch_place(zfs, settings.state_dir, settings.dataset, stream_bytes, scratch_pool,
                                   scratch_dir) as place:
            record["scratch"] = place.root
            received = paths.receive_into_scratch(settings, source, place, keys, zfs, stores)
            record["bytes"] = received.get("bytes", 0)
            got = [s for s in zfs.snapshots(place.target) if s.name == final.snapshot.name]
            if not got or str(got[0].guid) != final.snapshot.guid:
                raise OffsiteError("The drill of %s from %s received snapshot %s with guid %s, but the manifest "
                                   "says %s; the backup does not restore what it claims." % (
                                       settings.dataset, provider, final.snapshot.name,
                                       got[0].guid if got else "none", final.snapshot.guid), "drill_guid")
            live = live_snapshot_dir(zfs, settings.dataset, final.snapshot.name, final.snapshot.guid,
                                     settings.state_dir, place)
            if live is None:
                record["files"] = {"checked": False, "reason": "the live snapshot is gone"}
            else:
                compared = compare_trees(live, place.mount_dir, files, final.snapshot.guid)
                record["files"] = dict(compared, checked=True)
                if compared["mismatch_count"]:
                    raise OffsiteError("The drill of %s from %s restored %s@%s, but %d of %d compared files differ "
                                       "from the live snapshot (%s)." % (
                                           settings.dataset, provider, settings.dataset, final.snapshot.name,
                                           compared["mismatch_count"], compared["compared"],
                                           compared["mismatches"][0]), "drill_mismatch")
        record["result"] = "passed"
    except OffsiteError as exc:
        record["message"] = exc.message
        record["error_code"] = exc.code
    record["seconds"] = round(now() - started, 3)
    record["finished"] = round(now(), 3)
    save_record(settings.state_dir, record)
    return record


def run_drills(settings_for: Callable[[str], DatasetSettings], datasets: Sequence[str],
               providers: Optional[Sequence[str]] = None, keys: Optional[Keys] = None,
               files: Optional[int] = DEFAULT_FILES, sample: Optional[int] = None,
               scratch_pool: Optional[str] = None, scratch_dir: Optional[str] = None, check_mode: bool = False,
               zfs: Optional[Zfs] = None, stores: Optional[Dict[str, Store]] = None) -> Dict[str, Any]:
    """Drill every (dataset, provider) pair, or `sample` of them (the ones drilled longest ago first)."""
    if not datasets:
        raise OffsiteError("No dataset to drill: pass datasets, or list them in the policy.", "bad_value")
    if files is not None and files < 0:
        raise OffsiteError("files must be 0 or more (or all); got %d." % files, "bad_value")
    pairs = []
    first = settings_for(datasets[0])
    zfs = zfs or Zfs(first.zfs)
    for ds in datasets:
        settings = settings_for(ds)
        names = list(providers or settings.selected or list(settings.providers))
        for name in names:
            if name not in settings.providers:
                raise OffsiteError("The provider %s is not configured; configured providers: %s." % (
                    name, ", ".join(sorted(settings.providers)) or "none"), "unknown_provider")
            pairs.append((ds, name, settings))
    records = load_records(first.state_dir)
    pairs.sort(key=lambda p: records.get("%s|%s" % (p[0], p[1]), {}).get("started", 0))
    if sample is not None:
        pairs = pairs[:max(1, sample)]
    if check_mode:
        return {"changed": False, "plan": [{"dataset": d, "provider": p} for d, p, _s in pairs],
                "msg": "would drill %d dataset/provider pairs" % len(pairs)}
    done = [drill_one(s, p, keys, files, scratch_pool, scratch_dir, zfs, stores) for d, p, s in pairs]
    failed = ["%s on %s" % (r["dataset"], r["provider"]) for r in done if r["result"] != "passed"]
    result: Dict[str, Any] = {"changed": True, "drills": done, "failed_drills": failed,
                              "bytes": sum(r.get("bytes", 0) for r in done)}
    if failed:
        first_failed = next(r for r in done if r["result"] != "passed")
        result["msg"] = "%d of %d drills failed: %s" % (len(failed), len(done), first_failed.get("message", ""))
    else:
        result["msg"] = "%d drills passed (%s received)" % (len(done), human_bytes(result["bytes"]))
    return result
