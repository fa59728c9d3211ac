# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the keep rules cost: full copies held, incrementals held, stored bytes. Pure, no I/O.

Private to the collection: not an API for other collections.

The formula of docs/policy.md ("What the keep rules cost"): with D the span the keep rules reach
back, F the interval between full backups (`full_every`, or (N + 1) x `every` for `{incrementals: N}`),
S the stored size of a full backup and s that of one incremental:

- full copies held: about D / F + 1 (rounded), never more than the snapshots the rules keep (the sum of
  their counts);
- incrementals held: at most D / every, and at most (F / every - 1) per full copy;
- stored per provider: full copies x S + incrementals x s.

`provider_cost` adds what one provider holds now and what it holds after the prune's plan.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Iterable, Optional, Sequence

from ansible_collections.offsite.zfs.plugins.module_utils.common import human_bytes, parse_size
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.settings import DAY, DatasetPolicy, FullEvery, policy_of

# The period of each keep rule; `last` counts snapshots, one per `every`.
PERIODS = {"hourly": 3600.0, "daily": DAY, "weekly": 7 * DAY, "monthly": 30.44 * DAY, "yearly": 365.25 * DAY}


def reach(rules: Dict[str, int], every: float) -> float:
    """D: how far back in time the keep rules reach, in seconds (a rule's period is at least every)."""
    spans = [count * (every if rule == "last" else max(every, PERIODS[rule])) for rule, count in rules.items()]
    return max(spans) if spans else 0.0


def full_interval(full_every: FullEvery, every: float) -> float:
    """F: seconds between full backups."""
    if full_every.incrementals is not None:
        return (full_every.incrementals + 1) * every
    return max(full_every.seconds or 0.0, every)


def plan(policy: DatasetPolicy, full_bytes: Optional[int] = None, incremental_bytes: Optional[int] = None
         ) -> Dict[str, Any]:
    """The steady state one provider reaches for one dataset under its policy (every, full_every, keep)."""
    every = max(policy.every or DAY, 1.0)  # every: 0 (a snapshot each run) is costed as the default, 1d
    rules = policy.keep.rules()
    out: Dict[str, Any] = {"keep": rules, "every_seconds": every, "reach_seconds": None, "full_every_seconds": None,
                           "full_copies": None, "incrementals": None, "estimated_stored_bytes": None}
    interval = full_interval(policy.full_every, every)
    out["full_every_seconds"] = interval
    if not rules:  # nothing is ever deleted: the copies grow without bound
        return out
    span = reach(rules, every)
    kept_at_most = sum(rules.values())  # the newest snapshot is among them (last, hourly, daily, ... pick it)
    copies = min(int(span / interval + 0.5) + 1, kept_at_most)
    per_chain = max(math.ceil(interval / every) - 1, 0)
    incrementals = max(min(math.ceil(span / every), copies * per_chain), 0)
    out.update(reach_seconds=span, full_copies=copies, incrementals=incrementals)
    if full_bytes is not None:
        out["estimated_stored_bytes"] = int(copies * full_bytes + incrementals * (incremental_bytes or 0))
    return out


def _stored(backup: Any) -> int:
    return sum(int(getattr(o, "size", 0) or 0) for o in (getattr(backup, "objects", None) or {}).values())


def sizes(backups: Sequence[Any]) -> Dict[str, Optional[int]]:
    """S (the newest full backup's stored bytes) and s (the mean incremental's), from complete backups."""
    complete = [b for b in backups if getattr(b, "manifest", None) is not None]
    fulls = [b for b in complete if b.manifest.kind == "full"]
    incrementals = [b.manifest.stored_bytes for b in complete if b.manifest.kind != "full"]
    newest = max(fulls, key=lambda b: (b.manifest.snapshot.creation, b.manifest.snapshot.createtxg), default=None)
    return {"full": newest.manifest.stored_bytes if newest is not None else None,
            "incremental": int(sum(incrementals) / len(incrementals)) if incrementals else None}


def provider_cost(backups: Sequence[Any], kept_ids: Iterable[str], policy: DatasetPolicy) -> Dict[str, Any]:
    """One dataset on one provider: stored bytes and full copies now, after the prune, and in the steady state."""
    kept = set(kept_ids)
    complete = [b for b in backups if getattr(b, "manifest", None) is not None]
    size = sizes(backups)
    steady = plan(policy, size["full"], size["incremental"])
    return {
        "stored_bytes": sum(_stored(b) for b in backups),
        "full_copies": sum(1 for b in complete if b.manifest.kind == "full"),
        "backups": len(complete),
        "stored_bytes_after": sum(_stored(b) for b in complete if b.backup_id in kept),
        "full_copies_after": sum(1 for b in complete if b.backup_id in kept and b.manifest.kind == "full"),
        "full_bytes": size["full"],
        "incremental_bytes": size["incremental"],
        "held_full_copies": steady["full_copies"],
        "held_incrementals": steady["incrementals"],
        "estimated_stored_bytes": steady["estimated_stored_bytes"],
    }


SUMMED = ("stored_bytes", "full_copies", "backups", "stored_bytes_after", "full_copies_after", "held_full_copies",
          "held_incrementals", "estimated_stored_bytes")


def total(entries: Iterable[Dict[str, Any]]) -> Dict[str, Any]:
    """Per provider, the sums over its datasets (None where a dataset's figure is unbounded or unknown)."""
    out: Dict[str, Any] = {key: 0 for key in SUMMED}
    out["datasets"] = 0
    for entry in entries:
        out["datasets"] += 1
        for key in SUMMED:
            if out[key] is None or entry.get(key) is None:
                out[key] = None
            else:
                out[key] += entry[key]
    return out


def by_provider(datasets: Dict[str, Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """offsite_prune's per-provider totals over its datasets' provider entries (those that were listed)."""
    found: Dict[str, list] = {}
    for entry in datasets.values():
        for provider, result in (entry.get("providers") or {}).items():
            if result.get("cost"):
                found.setdefault(provider, []).append(result["cost"])
    return {provider: total(entries) for provider, entries in sorted(found.items())}


def describe(provider: str, cost: Dict[str, Any]) -> str:
    """One clause: what the provider stores now and what the keep rules hold."""
    text = "%s stores %s in %d full copies now, %s in %d after this prune" % (
        provider, human_bytes(cost["stored_bytes"]), cost["full_copies"], human_bytes(cost["stored_bytes_after"]),
        cost["full_copies_after"])
    if cost.get("held_full_copies") is None:
        return text + "; without keep rules for every dataset the copies grow without bound"
    text += "; the keep rules hold about %d full copies" % cost["held_full_copies"]
    if cost.get("estimated_stored_bytes") is not None:
        text += " (about %s)" % human_bytes(cost["estimated_stored_bytes"])
    return text


def _size_of(value: Any, dataset: str) -> Dict[str, Optional[int]]:
    if isinstance(value, dict):
        full, incremental = value.get("full"), value.get("incremental")
    else:
        full, incremental = value, None
    return {"full": parse_size(full, "sizes.%s.full" % dataset) if full is not None else None,
            "incremental": parse_size(incremental, "sizes.%s.incremental" % dataset) if incremental is not None
            else None}


def policy_cost(config: Dict[str, Any], sizes_given: Optional[Dict[str, Any]] = None) -> Dict[str, Dict[str, Any]]:
    """Per provider, the steady state of every dataset of a (valid) policy that backs up there.

    sizes_given: dataset -> the stored size of one full backup (SIZE) or {full: SIZE, incremental: SIZE}, for
    the estimate; the stored bytes now are on the providers only (offsite_prune in check mode reports them).
    """
    sizes_given = sizes_given or {}
    if not isinstance(sizes_given, dict):
        raise OffsiteError("sizes must be a mapping of dataset to a size (1TiB) or to a mapping with the keys full "
                           "and incremental.",
                           "bad_value")
    providers = sorted(config.get("providers") or {})
    out: Dict[str, Dict[str, Any]] = {name: {"datasets": {}} for name in providers}
    for dataset in sorted(config.get("datasets") or {}):
        policy = policy_of(config, dataset)
        chosen = policy.wanted_providers or providers
        size = _size_of(sizes_given.get(dataset), dataset)
        steady = plan(policy, size["full"], size["incremental"])
        for name in chosen:
            if name in out:
                out[name]["datasets"][dataset] = steady
    for entry in out.values():
        rows = list(entry["datasets"].values())
        for key in ("full_copies", "incrementals", "estimated_stored_bytes"):
            values = [row[key] for row in rows]
            entry[key] = None if any(v is None for v in values) else sum(values)
    return out


def describe_policy(cost: Dict[str, Dict[str, Any]]) -> str:
    """One clause per provider for offsite_policy_validate's message."""
    parts = []
    for provider, entry in cost.items():
        if not entry["datasets"]:
            continue
        if entry["full_copies"] is None:
            parts.append("%s: a dataset without keep rules grows without bound" % provider)
            continue
        text = "%s holds about %d full copies" % (provider, entry["full_copies"])
        if entry["estimated_stored_bytes"] is not None:
            text += " (about %s)" % human_bytes(entry["estimated_stored_bytes"])
        parts.append(text)
    return "; ".join(parts)
