# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lineages: the backups of one dataset that belong to one life of it. No I/O.

Private to the collection: not an API for other collections.

A dataset destroyed and created again (a rebuilt host, a recreated pool) has snapshots that share
no guid with the backups at its remote path: it is a new lineage. Backing it up into the old
history would let `latest` pick the (often empty) new data and let keep rules prune the good
history, so a backup refuses unless the policy says `new_lineage: true` for the dataset; then the
new backups carry a lineage id (the UTC time the lineage started) in their manifests. Backups
without one (every 1.0.0 backup) are the dataset's original lineage. Prune applies keep to each
lineage on its own, so a new lineage never prunes an old one; restore reports the lineage it took.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError

ORIGINAL = ""


def label(lineage: str) -> str:
    return lineage or "original"


def lineage_of(backup: Any) -> str:
    manifest = getattr(backup, "manifest", None)
    if manifest is None:
        return ORIGINAL
    return getattr(manifest, "lineage", "") or ORIGINAL


def new_id(now: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))


def split(backups: Sequence[Any]) -> Dict[str, List[Any]]:
    """Complete backups by lineage id (insertion order: as listed)."""
    groups: Dict[str, List[Any]] = {}
    for backup in backups:
        if backup.complete:
            groups.setdefault(lineage_of(backup), []).append(backup)
    return groups


def _guids(backup: Any) -> set:
    manifest = backup.manifest
    found = {manifest.snapshot.guid}
    if manifest.base is not None:
        found.add(manifest.base.guid)
    return found


def _newest(backups: Sequence[Any]) -> Any:
    return max(backups, key=lambda b: (b.manifest.snapshot.creation, b.manifest.snapshot.createtxg))


def summary(backups: Sequence[Any]) -> List[Dict[str, Any]]:
    """One entry per lineage: id, label, backup count, oldest and newest snapshot (newest lineage last)."""
    rows = []
    for lineage, members in split(backups).items():
        newest = _newest(members)
        oldest = min(members, key=lambda b: (b.manifest.snapshot.creation, b.manifest.snapshot.createtxg))
        rows.append({"lineage": lineage, "label": label(lineage), "backups": len(members),
                     "oldest_snapshot": oldest.manifest.snapshot.name,
                     "newest_snapshot": newest.manifest.snapshot.name,
                     "newest_creation": int(newest.manifest.snapshot.creation)})
    return sorted(rows, key=lambda r: r["newest_creation"])


def note(taken: str, rows: Sequence[Dict[str, Any]]) -> str:
    """'' with one lineage; else which one a restore took and the others (restore those by snapshot name)."""
    others = [r for r in rows if r["label"] != taken]
    if not others:
        return ""
    return "; from lineage %s (other lineages: %s; restore one of those with snapshot=NAME)" % (
        taken, ", ".join("%s up to @%s" % (r["label"], r["newest_snapshot"]) for r in others))


def for_backup(dataset: str, provider: str, namespace: str, local: Sequence[Any], backups: Sequence[Any],
               allow_new: bool, now: Optional[float] = None, origin: Optional[Tuple[int, int]] = None) -> str:
    """The lineage id a new backup of dataset to provider records; OffsiteError new_lineage when it must refuse.

    No backup yet: the original lineage. A local snapshot is (or is the base of) a backup: that
    backup's lineage. Otherwise the local dataset is a new lineage: refused, or with allow_new a
    fresh id.
    """
    complete = [b for b in backups if b.complete and b.manifest is not None]
    if not complete:
        return ORIGINAL
    local_guids = {str(s.guid) for s in local}
    matching = [b for b in complete if _guids(b) & local_guids]
    if matching:
        return lineage_of(_newest(matching))
    newest = _newest(complete)
    if origin is not None and origin[0] <= int(newest.manifest.snapshot.creation) \
            and origin[1] <= int(newest.manifest.snapshot.createtxg):
        # The dataset is older than its newest backed-up snapshot: the same dataset, whose backed-up
        # snapshots a pruner destroyed (the next backup is full), not a recreated one.
        return lineage_of(newest)
    if allow_new:
        return new_id(time.time() if now is None else now)
    raise OffsiteError(
        "The snapshots of %s on this host share none with its %d backup%s on %s in namespace %s (newest %s@%s, "
        "from host %s): the dataset was recreated (a rebuilt host?) or the backups are another host's. Nothing "
        "was uploaded. Restore the old data first (offsite_restore to a new dataset, then rename it), or set "
        "new_lineage: true for %s in the policy to back it up as a separate lineage that never prunes the old one." % (
            dataset, len(complete), "" if len(complete) == 1 else "s", provider, namespace, dataset,
            newest.manifest.snapshot.name, newest.manifest.host or "unknown", dataset), "new_lineage")


def plan_per_lineage(items_of: Callable[[List[Any]], List[Any]], backups: Sequence[Any], keep: Any,
                     plan: Callable[[List[Any], Any], Any]) -> Any:
    """prune.plan applied to each lineage on its own, the decisions merged (one Decision)."""
    merged = None
    for members in split(backups).values():
        decision = plan(items_of(members), keep)
        if merged is None:
            merged = decision
            continue
        merged.keep.update(decision.keep)
        merged.delete.update(decision.delete)
        merged.damaged.update(decision.damaged)
    return merged if merged is not None else plan([], keep)
