# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sampled verification over time: `offsite_status verify=digest|decrypt sample=10%` (or `sample=2GiB`).

Private to the collection: not an API for other collections.

Each run checks only part of the chunks (check.check_chunk), chosen least-recently-verified first
(never-verified first, then by name), so with a percentage p every chunk is verified within
ceil(100 / p) runs while the set of chunks stays the same. When each chunk was last verified is kept in
`<state_dir>/verify-sample.json` (0600). Per dataset and provider, `coverage` says how many chunks
there are, how many were ever verified and how long ago the least recently verified one was
("every chunk verified in the last N days"); the policy's `verify_coverage` (a duration) is the
objective, and a `coverage_low` problem (warning) says when it is not met.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils import catalog
from ansible_collections.offsite.zfs.plugins.module_utils.common import (
    human_duration,
    parse_size,
    write_private_file,
)
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.ops.verify.check import check_chunk
from ansible_collections.offsite.zfs.plugins.module_utils.settings import DatasetPolicy

STATE_FILE = "verify-sample.json"
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def parse_sample(value: Any) -> Tuple[Optional[float], Optional[int]]:
    """'10%' -> (10.0, None); '2GiB' -> (None, bytes)."""
    text = str(value)
    match = _PERCENT.match(text)
    if match:
        percent = float(match.group(1))
        if not 0 < percent <= 100:
            raise OffsiteError("sample must be a percentage above 0 and at most 100, or a byte budget like 2GiB; "
                               "got %s." % text, "bad_value")
        return percent, None
    try:
        budget = parse_size(text, "sample")
    except OffsiteError:
        raise OffsiteError("sample must be a percentage above 0 and at most 100, or a byte budget like 2GiB; "
                           "got %s." % text, "bad_value")
    if budget <= 0:
        raise OffsiteError("sample must be a percentage above 0 and at most 100, or a byte budget like 2GiB; "
                           "got %s." % text, "bad_value")
    return None, budget


def _load(state_dir: str) -> Dict[str, float]:
    try:
        with open(os.path.join(state_dir, STATE_FILE), "r", encoding="utf-8") as handle:
            data = json.load(handle)
        chunks = data.get("chunks")
        return {str(k): float(v) for k, v in chunks.items()} if isinstance(chunks, dict) else {}
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


def _save(state_dir: str, chunks: Dict[str, float]) -> None:
    write_private_file(os.path.join(state_dir, STATE_FILE),
                       json.dumps({"version": 1, "chunks": chunks}, sort_keys=True).encode())


def choose(keys_sizes: List[Tuple[str, int]], last: Dict[str, float], percent: Optional[float],
           budget: Optional[int]) -> List[str]:
    """The chunks to verify this run: least recently verified first, ceil(p% of all) or up to the budget."""
    order = sorted(keys_sizes, key=lambda item: (last.get(item[0], -1.0), item[0]))
    if percent is not None:
        return [k for k, _s in order[:min(len(order), math.ceil(len(order) * percent / 100.0))]]
    chosen, used = [], 0
    for key, size in order:
        if chosen and used + size > (budget or 0):
            break
        chosen.append(key)
        used += size
    return chosen


def run_sampled(state_dir: str, sample: Any, level: str, listings: Dict[str, catalog.Listing],
                store_for: Dict[str, Any], namespace: str, keys: Any, datasets: Dict[str, Dict[str, Any]],
                policy_for: Callable[[str], DatasetPolicy], now: float, problem: Callable[..., Dict[str, Any]],
                health_of: Callable[[List[Dict[str, Any]]], str]) -> Dict[str, Any]:
    """Verify this run's share of the chunks of the reported datasets; add findings and coverage to them."""
    percent, budget = parse_sample(sample)
    last = _load(state_dir)
    where: Dict[str, Tuple[str, str, catalog.Backup, Any]] = {}
    sizes: List[Tuple[str, int]] = []
    for name, listing in listings.items():
        for ds in datasets:
            for backup in listing.for_dataset(ds):
                if backup.manifest is None:
                    continue
                skip = set(backup.missing_objects()) | set(backup.size_mismatches())
                bdir = catalog.backup_dir(namespace, ds, backup.manifest.backup_id)
                for record in backup.manifest.chunks:
                    if record.object in skip:
                        continue
                    key = "%s|%s/%s" % (name, bdir, record.object)
                    where[key] = (name, ds, backup, record)
                    sizes.append((key, record.stored_bytes))
    chosen = choose(sizes, last, percent, budget)
    opened: Dict[str, Any] = {}
    checked_bytes = 0
    for key in chosen:
        name, ds, backup, record = where[key]
        manifest = backup.manifest
        identities = secret = None
        if level == "decrypt":
            if backup.backup_id not in opened:
                try:
                    opened[backup.backup_id] = (keys.chunk_identities(manifest), keys.backup_key(manifest))
                except OffsiteError as exc:
                    opened[backup.backup_id] = exc
            got = opened[backup.backup_id]
            if isinstance(got, OffsiteError):
                _add(datasets[ds], problem("decrypt_failed", "warning", ds, name, backup.backup_id,
                                           "Backup %s of %s on %s cannot be verified with the given key: %s" % (
                                               backup.backup_id, ds, name, got.message)), health_of)
                continue
            identities, secret = got
        bdir = catalog.backup_dir(namespace, ds, manifest.backup_id)
        found = check_chunk(store_for[name], bdir, record, manifest.compression.get("algorithm", "none"),
                            identities, secret, manifest.backup_id)
        checked_bytes += record.stored_bytes
        if found:
            _add(datasets[ds], problem(found["code"], "critical", ds, name, backup.backup_id,
                                       "Chunk %d (%s) of %s@%s on %s %s; back the snapshot up again or restore from "
                                       "another provider." % (record.index, record.object, ds,
                                                              manifest.snapshot.name, name, found["reason"]),
                                       chunk=record.index, object=record.object, sampled=True), health_of)
            last.pop(key, None)  # a bad chunk stays first in line until it is good again
        else:
            last[key] = now
    kept = {k: v for k, v in last.items() if k in where}
    _save(state_dir, kept)
    for ds, entry in datasets.items():
        objective = policy_for(ds).verify_coverage
        entry["coverage"] = {}
        for name in sorted(entry.get("providers") or {}):
            keys_here = [k for k, w in where.items() if w[0] == name and w[1] == ds]
            stamps = [kept[k] for k in keys_here if k in kept]
            never = len(keys_here) - len(stamps)
            oldest = None if never or not stamps else now - min(stamps)
            entry["coverage"][name] = {
                "chunks": len(keys_here), "verified": len(stamps), "never_verified": never,
                "all_verified_within_seconds": round(oldest, 1) if oldest is not None else None,
                "text": ("every chunk verified in the last %s" % human_duration(max(oldest, 60.0))
                         if oldest is not None else "%d of %d chunks never verified" % (never, len(keys_here)))}
            if objective and keys_here and (oldest is None or oldest > objective):
                _add(entry, problem("coverage_low", "warning", ds, name, None,
                                    "Sampled verification of %s on %s has not met verify_coverage %s: %s; run "
                                    "offsite_status with verify and sample more often or with a larger sample." % (
                                        ds, name, human_duration(objective), entry["coverage"][name]["text"]),
                                    objective_seconds=objective), health_of)
    return {"sample": str(sample), "chunks": len(sizes), "checked": len(chosen), "checked_bytes": checked_bytes,
            "runs_for_full_coverage": math.ceil(100.0 / percent) if percent else None}


def _add(entry: Dict[str, Any], found: Dict[str, Any], health_of: Callable[[List[Dict[str, Any]]], str]) -> None:
    entry["problems"].append(found)
    entry["health"] = health_of(entry["problems"])
