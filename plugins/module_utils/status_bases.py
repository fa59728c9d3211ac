# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Is the base of the next incremental safe? For offsite_status and for a backup's check mode.

Private to the collection: not an API for other collections.

Per (dataset, provider), the base is the newest snapshot with a restorable chain on the provider.
It is safe when it is held (`userrefs` > 0: a snapshot manager's `zfs destroy` fails busy) or
bookmarked (the next backup can send from the bookmark). Otherwise it is at risk; once it is gone,
the next backup is incremental from an older backed-up snapshot still here, or from a bookmark,
or, failing both, FULL. These rules say so before it happens. Pure decisions over zfs reads.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from ansible_collections.offsite.zfs.plugins.module_utils import catalog, holds
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import Bookmark, Snapshot, Zfs


def kind_of(base: Optional[Snapshot]) -> Optional[str]:
    if base is None:
        return None
    return "bookmark" if isinstance(base, Bookmark) else "snapshot"


def newest_restorable(backups: Sequence[catalog.Backup]) -> Optional[catalog.Backup]:
    """The provider's newest backup with an intact chain: what the next incremental builds on."""
    usable = [b for b in backups if b.complete and b.intact]
    restorable = [b for b in usable if catalog.resolve_chain(usable, b.manifest.snapshot.guid)]
    return catalog.latest_backup(restorable)


def _bookmarked(zfs: Zfs, dataset: str) -> Optional[Dict[str, str]]:
    """guid -> bookmark name, or None where the pool has no bookmarks."""
    try:
        if not zfs.bookmarks_supported(dataset):
            return None
        return {str(b.guid): b.bookmark for b in zfs.bookmarks(dataset)}
    except OffsiteError:
        return None


def assess(zfs: Zfs, dataset: str, provider: str, local: Sequence[Snapshot], backups: Sequence[catalog.Backup],
           record: Optional[holds.BaseRecord] = None) -> Optional[Dict[str, Any]]:
    """The base of the next incremental to provider, and how safe it is. None: the provider has nothing yet."""
    newest = newest_restorable(backups)
    if newest is None:
        return None
    ref = newest.manifest.snapshot
    marks = _bookmarked(zfs, dataset)
    snap = next((s for s in local if str(s.guid) == ref.guid), None)
    info: Dict[str, Any] = {"snapshot": ref.name, "guid": ref.guid, "present": snap is not None, "userrefs": None,
                            "our_hold": None, "bookmark": (marks or {}).get(ref.guid), "bookmarks_supported":
                            marks is not None, "at_risk": False, "next_backup": "incremental", "from": ref.name,
                            "reason": None}
    if snap is not None:
        try:
            info["userrefs"] = zfs.userrefs(snap.full_name)
        except OffsiteError:
            info["userrefs"] = None
        if record is not None and record.guid == ref.guid and record.held and info["userrefs"]:
            info["our_hold"] = record.tag
        if not info["userrefs"] and not info["bookmark"]:
            info["at_risk"] = True
            info["reason"] = ("%s@%s, the base of the next incremental backup to %s, has no hold and no bookmark: "
                              "a snapshot manager may destroy it, and the next backup would then be full; a backup "
                              "run places the hold %s (or run `zfs hold %s %s@%s`)" % (
                                  dataset, ref.name, provider, holds.tag_for(provider), holds.tag_for(provider),
                                  dataset, ref.name))
        return info
    info["at_risk"] = True
    if info["bookmark"]:
        info["from"] = "#" + info["bookmark"]
        info["reason"] = ("%s@%s, the newest snapshot backed up to %s, is gone; the next backup sends incrementally "
                          "from the bookmark %s#%s" % (dataset, ref.name, provider, dataset, info["bookmark"]))
        return info
    known = {b.manifest.snapshot.guid for b in backups if b.complete}
    older = [s for s in local if str(s.guid) in known and catalog.resolve_chain(list(backups), str(s.guid))]
    if older:
        fallback = max(older, key=lambda s: s.createtxg)
        info["from"] = fallback.name
        info["reason"] = ("%s@%s, the newest snapshot backed up to %s, is gone; the next backup is incremental from "
                          "the older %s" % (dataset, ref.name, provider, fallback.name))
        return info
    info["next_backup"] = "full"
    info["from"] = None
    info["reason"] = ("%s@%s, the newest snapshot backed up to %s, is gone from this host and %s, so the next backup "
                      "to %s will be FULL; hold the base (the default hold_base: true) so that a snapshot manager "
                      "cannot destroy it" % (
                          dataset, ref.name, provider,
                          "no bookmark of it is left" if marks is not None else
                          "this pool has no bookmarks", provider))
    return info


def backup_plan_notes(zfs: Zfs, snapshot: Snapshot, base: Optional[Snapshot], local: Sequence[Snapshot],
                      backups: List[catalog.Backup], full: bool, provider: str) -> Dict[str, Any]:
    """For a backup's check mode: base_at_risk, base_risk (why) and base_note (appended to its message)."""
    if full:
        return {"base_at_risk": False, "base_risk": None, "base_note": ""}
    earlier = [b for b in backups if b.complete and b.manifest.snapshot.createtxg < snapshot.createtxg] or list(
        backups)
    info = assess(zfs, snapshot.dataset, provider, [s for s in local if s.createtxg < snapshot.createtxg], earlier)
    if info is None:
        return {"base_at_risk": False, "base_risk": None, "base_note": ""}
    note = ""
    if base is None and info["next_backup"] == "full":
        note = "; full, because %s" % info["reason"].split(", so the next backup")[0]
    elif isinstance(base, Bookmark):
        note = "; from the bookmark %s (the snapshot %s is gone)" % (base.full_name, base.name)
    elif info["at_risk"]:
        note = "; warning: %s" % info["reason"]
    return {"base_at_risk": bool(info["at_risk"]), "base_risk": info["reason"], "base_note": note}


def status_problems(zfs: Optional[Zfs], dataset: str, local: Optional[Sequence[Snapshot]],
                    backups_for: Dict[str, List[catalog.Backup]], per_provider: Dict[str, Dict[str, Any]],
                    state_dir: str, namespace: str, hold_wanted: bool = True) -> List[Dict[str, Any]]:
    """offsite_status: set per_provider[p]["base"] and return the base_at_risk / full_backup_next problems."""
    problems: List[Dict[str, Any]] = []
    if zfs is None or local is None:
        return problems
    for provider, backups in backups_for.items():
        if provider not in per_provider:
            continue
        record = holds.load_record(state_dir, namespace, dataset, provider)
        try:
            info = assess(zfs, dataset, provider, local, backups, record)
        except OffsiteError:
            continue
        per_provider[provider]["base"] = info
        if info is None or not info["at_risk"]:
            continue
        if info["next_backup"] == "full":
            code, severity = "full_backup_next", "warning"
        elif info["present"]:
            code, severity = "base_at_risk", "warning" if hold_wanted else "info"
        else:
            code, severity = "base_gone", "info"
        problems.append({"code": code, "severity": severity, "dataset": dataset, "provider": provider,
                         "backup": None, "message": info["reason"] + ".",
                         "snapshot": info["snapshot"], "next_backup": info["next_backup"]})
    return problems
