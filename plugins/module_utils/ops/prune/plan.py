# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prune plans: which backups and local snapshots the keep rules keep, and why. Pure, property-tested.

Private to the collection: not an API for other collections.

Rules (restic-style): the newest restorable snapshot is always kept (it is the base of the next
incremental); `last: N` keeps the N newest; `hourly/daily/weekly/monthly/yearly: N` keep the newest
snapshot of each of the N most recent hours/days/ISO weeks/months/years (UTC) that have one. A kept
snapshot keeps the whole chain that restores it, so no kept backup ever loses its base. Without any
keep rule nothing is deleted. Local snapshots: only ours (prefix and property) are considered, and
each provider's base of the next incremental and what is not backed up yet are protected.

No I/O here: run.py lists, deletes and destroys (tests/unit/test_prune_properties.py, test_prune_plans.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils import catalog
from ansible_collections.offsite.zfs.plugins.module_utils.settings import RULES

_PERIODS = {
    "hourly": "%Y-%m-%dT%H",
    "daily": "%Y-%m-%d",
    "weekly": "%G-W%V",
    "monthly": "%Y-%m",
    "yearly": "%Y",
}


@dataclass
class Item:
    """One complete backup on one provider, as far as pruning cares."""

    backup_id: str
    guid: str
    snapshot: str
    created: int
    txg: int
    kind: str = "full"
    base_guid: Optional[str] = None
    intact: bool = True


@dataclass
class Decision:
    keep: Dict[str, List[str]] = field(default_factory=dict)  # backup_id -> reasons
    delete: Dict[str, str] = field(default_factory=dict)  # backup_id -> reason
    damaged: Dict[str, str] = field(default_factory=dict)  # backup_id -> why it is left alone


def rules_of(keep: Optional[Dict[str, Any]]) -> Dict[str, int]:
    """The keep rules that select something, in a fixed order."""
    keep = keep or {}
    return {rule: int(keep[rule]) for rule in RULES if isinstance(keep.get(rule), int) and keep[rule] > 0}


def describe_rules(rules: Dict[str, int]) -> str:
    return ", ".join("%s %d" % (rule, count) for rule, count in rules.items()) or "no rules"


def chains(items: Sequence[Item]) -> Dict[str, List[Item]]:
    """guid -> the shortest chain [full, incr, ...] of intact items restoring that snapshot (restorable only)."""
    by_guid: Dict[str, List[Item]] = {}
    for item in items:
        if item.intact:
            by_guid.setdefault(item.guid, []).append(item)
    memo: Dict[str, Optional[List[Item]]] = {}

    def walk(target: str) -> Optional[List[Item]]:
        if target in memo:
            return memo[target]
        memo[target] = None  # cycle guard
        best: Optional[List[Item]] = None
        for item in sorted(by_guid.get(target, []), key=lambda i: i.backup_id):
            if item.kind == "full":
                candidate: Optional[List[Item]] = [item]
            else:
                parent = walk(item.base_guid) if item.base_guid else None
                candidate = parent + [item] if parent else None
            if candidate and (best is None or len(candidate) < len(best)):
                best = candidate
        memo[target] = best
        return best

    found = {}
    for guid in by_guid:
        chain = walk(guid)
        if chain:
            found[guid] = chain
    return found


def chain_of(items: Sequence[Item], guid: str) -> Optional[List[Item]]:
    """The shortest chain [full, incr, ...] of intact items restoring the snapshot with this guid."""
    return chains(items).get(guid)


def _newest_first(entries: Sequence[Tuple[str, int, int]]) -> List[Tuple[str, int, int]]:
    """(key, created, txg) newest first."""
    return sorted(entries, key=lambda e: (e[1], e[2], e[0]), reverse=True)


def select(entries: Sequence[Tuple[str, int, int]], rules: Dict[str, int]) -> Dict[str, List[str]]:
    """Which keys (snapshots) the rules keep, with the reasons. entries: (key, created epoch, txg)."""
    ordered = _newest_first(entries)
    chosen: Dict[str, List[str]] = {}
    if not ordered:
        return chosen
    chosen.setdefault(ordered[0][0], []).append("newest")
    for position, entry in enumerate(ordered[:rules.get("last", 0)]):
        key = entry[0]
        chosen.setdefault(key, []).append("last %d (#%d)" % (rules["last"], position + 1))
    for rule, fmt in _PERIODS.items():
        wanted = rules.get(rule, 0)
        seen: List[str] = []
        for key, created, _txg in ordered:
            if len(seen) >= wanted:
                break
            bucket = time.strftime(fmt, time.gmtime(created))
            if bucket in seen:
                continue
            seen.append(bucket)
            chosen.setdefault(key, []).append("%s %s" % (rule, bucket))
    return chosen


def plan(items: Sequence[Item], keep: Optional[Dict[str, Any]]) -> Decision:
    """Which backups of one dataset on one provider to keep and which to delete, and why."""
    decision = Decision()
    rules = rules_of(keep)
    for item in items:
        if not item.intact:
            decision.damaged[item.backup_id] = "damaged (chunks missing or of the wrong size): left for inspection"
    healthy = [i for i in items if i.intact]
    if not rules:
        for item in healthy:
            decision.keep[item.backup_id] = ["no keep rules"]
        return decision
    restorable = chains(healthy)
    first = {}
    for item in healthy:
        first.setdefault(item.guid, item)
    chosen = select([(g, first[g].created, first[g].txg) for g in restorable], rules)
    for guid, reasons in chosen.items():
        chain = restorable[guid]
        target = chain[-1]
        decision.keep.setdefault(target.backup_id, []).extend(reasons)
        for link in chain[:-1]:
            why = "base of kept %s" % target.snapshot
            if why not in decision.keep.setdefault(link.backup_id, []):
                decision.keep[link.backup_id].append(why)
    for item in healthy:
        if item.backup_id in decision.keep:
            continue
        if item.guid not in restorable:
            decision.delete[item.backup_id] = "cannot be restored: no complete chain leads to %s" % item.snapshot
        elif item.guid in chosen:
            decision.delete[item.backup_id] = "redundant: %s is kept through %s" % (
                item.snapshot, restorable[item.guid][-1].backup_id)
        else:
            decision.delete[item.backup_id] = "not selected by keep (%s)" % describe_rules(rules)
    return decision


@dataclass
class LocalSnapshot:
    name: str
    created: int
    txg: int
    ours: bool  # prefix matches and the created-by property is set


def plan_local(snaps: Sequence[LocalSnapshot], keep: Optional[Dict[str, Any]],
               protected: Dict[str, str]) -> Tuple[Dict[str, List[str]], Dict[str, str]]:
    """Local snapshots this collection made: (kept name -> reasons, deleted name -> reason).

    Snapshots not ours are never considered. protected: name -> why it must stay (the base of a
    provider's next incremental, or not yet backed up).
    """
    ours = [s for s in snaps if s.ours]
    rules = rules_of(keep)
    kept: Dict[str, List[str]] = {}
    deleted: Dict[str, str] = {}
    if not rules:
        return {s.name: ["no keep rules"] for s in ours}, {}
    chosen = select([(s.name, s.created, s.txg) for s in ours], rules)
    for snap in ours:
        reasons = list(chosen.get(snap.name, []))
        if snap.name in protected:
            reasons.append(protected[snap.name])
        if reasons:
            kept[snap.name] = reasons
        else:
            deleted[snap.name] = "not selected by keep (%s) and backed up" % describe_rules(rules)
    return kept, deleted


def to_item(backup: catalog.Backup) -> Item:
    manifest = backup.manifest
    return Item(backup_id=backup.backup_id, guid=manifest.snapshot.guid, snapshot=manifest.snapshot.name,
                created=int(manifest.snapshot.creation), txg=int(manifest.snapshot.createtxg), kind=manifest.kind,
                base_guid=manifest.base.guid if manifest.base else None, intact=backup.intact)


def protected_local(snaps: Sequence[LocalSnapshot], provider_items: Dict[str, List[Item]],
                    guids: Dict[str, str]) -> Dict[str, str]:
    """Local snapshots that must stay: each provider's newest restorable snapshot (the next incremental's
    base) and every snapshot newer than it (not backed up there yet). guids: snapshot name -> guid."""
    protected: Dict[str, str] = {}
    by_guid = {guid: name for name, guid in guids.items()}
    txg = {s.name: s.txg for s in snaps}
    for provider, items in sorted(provider_items.items()):
        found = chains(items)
        newest = max((i for i in items if i.guid in found), key=lambda i: (i.created, i.txg), default=None)
        if newest is None:
            for snap in snaps:
                protected.setdefault(snap.name, "not backed up to %s yet" % provider)
            continue
        local_name = by_guid.get(newest.guid)
        if local_name is None:
            continue  # the newest backup's snapshot is gone locally: the next backup is full anyway
        protected.setdefault(local_name, "base of the next incremental to %s" % provider)
        for snap in snaps:
            if txg[snap.name] > txg[local_name]:
                protected.setdefault(snap.name, "not backed up to %s yet" % provider)
    return protected
