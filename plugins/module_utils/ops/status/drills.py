# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The last restore drill per dataset and provider in offsite_status, and its health rules. Pure.

Private to the collection: not an API for other collections.

Given the records of `<state_dir>/drills.json` (drill_state.load_records; the drill writes them).
Per dataset entry: `drills: {provider: {when, result, seconds, bytes, snapshot, message}}`. Problems:
`drill_failed` (warning) when the last drill failed, `drill_overdue` (warning) when the policy sets
`drill_every` and the last drill is older, or none exists.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional

from ansible_collections.offsite.zfs.plugins.module_utils.common import human_duration
from ansible_collections.offsite.zfs.plugins.module_utils.ops.status.health import health_of, problem
from ansible_collections.offsite.zfs.plugins.module_utils.settings import DatasetPolicy


def _iso(epoch: Optional[float]) -> Optional[str]:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)) if epoch else None


def drill_problems(dataset: str, providers: List[str], records: Dict[str, Dict[str, Any]],
                   drill_every: Optional[float], now: float) -> List[Dict[str, Any]]:
    found = []
    for name in providers:
        record = records.get("%s|%s" % (dataset, name))
        if record and record.get("result") != "passed":
            found.append(problem("drill_failed", "warning", dataset, name, None,
                                 "The last restore drill of %s from %s failed (%s): %s" % (
                                     dataset, name, _iso(record.get("started")),
                                     record.get("message") or "no reason recorded"),
                                 error_code=record.get("error_code")))
        if drill_every:
            age = now - float(record.get("started") or 0) if record else None
            if age is None or age > drill_every:
                found.append(problem(
                    "drill_overdue", "warning", dataset, name, None,
                    "%s of %s from %s; drill_every is %s: run offsite_drill." % (
                        "No restore drill has been run" if age is None else
                        "The last restore drill was %s ago" % human_duration(age), dataset, name,
                        human_duration(drill_every)), age_seconds=age, drill_every_seconds=drill_every))
    return found


def add_drills(records: Dict[str, Dict[str, Any]], datasets: Dict[str, Dict[str, Any]],
               policy_for: Callable[[str], DatasetPolicy], now: float) -> None:
    """Add `drills` to every dataset entry of a status report, with their problems and the new health."""
    for ds, entry in datasets.items():
        providers = sorted(entry.get("providers") or {})
        entry["drills"] = {}
        for name in providers:
            record = records.get("%s|%s" % (ds, name))
            if record:
                entry["drills"][name] = {
                    "when": _iso(record.get("started")), "epoch": record.get("started"),
                    "result": record.get("result"), "seconds": record.get("seconds"),
                    "bytes": record.get("bytes"), "snapshot": record.get("snapshot"),
                    "files": record.get("files"), "message": record.get("message")}
        found = drill_problems(ds, providers, records, policy_for(ds).drill_every, now)
        if found:
            entry["problems"].extend(found)
            entry["health"] = health_of(entry["problems"])
