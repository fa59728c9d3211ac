# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prune, applied: one dataset's backups on each provider and, when asked, its local snapshots.

Private to the collection: not an API for other collections.

`prune_dataset` runs `prune_provider` per selected provider under that provider's backup lock
(so backups wait): list, refuse another host's backups, plan (plan.py, per lineage), then delete
each doomed backup manifest first (an interrupted prune leaves an incomplete upload, never a backup
that looks complete with chunks missing), incomplete uploads untouched for `prune_incomplete_after`
(and their resume journals, journals.py), abandoned attempts of append-only uploads; the host's
ledger forgets what was deleted. An append-only provider is planned, never pruned, from here. Our
hold follows the newest base a provider still has (holds.py). Local snapshots: plan.plan_local, a
held snapshot left alone. What offsite_prune reports of all this: report.py.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import re
import time
from typing import Any, Dict, List, Optional, Sequence

from ansible_collections.offsite.zfs.plugins.module_utils import (
    attempts,
    catalog,
    costs,
    holds,
    hostid,
    ledger,
    lineage,
    locks,
)
from ansible_collections.offsite.zfs.plugins.module_utils.common import human_duration, parse_duration
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.journals import journal_path
from ansible_collections.offsite.zfs.plugins.module_utils.ops.prune.plan import (
    Item,
    LocalSnapshot,
    chains,
    plan,
    plan_local,
    protected_local,
    to_item,
)
from ansible_collections.offsite.zfs.plugins.module_utils.settings import DatasetSettings, Keep
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import CREATED_BY_PROPERTY, Zfs

_MTIME = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?(Z|[+-]\d\d:?\d\d)?$")


def parse_mtime(text: str) -> Optional[float]:
    """rclone's ModTime (RFC 3339, any precision and offset) as epoch seconds."""
    match = _MTIME.match(text or "")
    if not match:
        return None
    year, month, day, hour, minute, second, zone = match.groups()
    when = datetime.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                             tzinfo=datetime.timezone.utc).timestamp()
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        when -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return when


def prune_provider(settings: DatasetSettings, store: Store, keep: Any, incomplete_after: float, check_mode: bool,
                   now: Optional[float] = None) -> Dict[str, Any]:
    """Prune one dataset's backups on one provider, holding its backup lock (so backups wait).

    keep: the rules to apply (a settings.Keep or its mapping), which may differ from the policy's.
    """
    dataset, name = settings.dataset, store.name
    keep = Keep.parse(keep)
    now = time.time() if now is None else now
    entry: Dict[str, Any] = {"provider": name, "changed": False, "kept": [], "deleted": [], "damaged": [],
                             "incomplete_deleted": [], "incomplete_kept": [], "abandoned_deleted": []}
    lock = locks.acquire(settings.state_dir, "backup", "%s@%s" % (dataset, name),
                         "backup or prune of %s on %s" % (dataset, name),
                         {"dataset": dataset, "provider": name, "operation": "prune"})
    try:
        if check_mode:
            lock.release()  # only probing: a backup running now is what the check reports
        listing = catalog.list_backups(store, settings.namespace, dataset,
                                       work_dir=settings.spool_dir if os.path.isdir(settings.spool_dir) else None,
                                       trust=settings.trust)
        backups = listing.for_dataset(dataset)
        complete = [b for b in backups if b.complete]
        own = hostid.get(settings.state_dir, create=not check_mode)
        others = hostid.foreign(complete, own)
        if others:  # never apply this host's keep rules to another host's backups
            raise OffsiteError("Prune of %s on %s refused: %s." % (
                dataset, name, hostid.describe(settings.namespace, others, own)), "foreign_host")
        decision = lineage.plan_per_lineage(lambda some: [to_item(b) for b in some], complete, keep.rules(), plan)
        entry["cost"] = costs.provider_cost(backups, decision.keep, dataclasses.replace(settings, keep=keep))
        by_id = {b.backup_id: b for b in backups}
        for backup_id, reasons in sorted(decision.keep.items()):
            entry["kept"].append({"backup_id": backup_id, "snapshot": by_id[backup_id].snapshot_name,
                                  "reasons": reasons})
        for backup_id, why in sorted(decision.damaged.items()):
            entry["damaged"].append({"backup_id": backup_id, "snapshot": by_id[backup_id].snapshot_name,
                                     "reason": why})
        doomed = sorted((by_id[i] for i in decision.delete), key=lambda b: (
            b.manifest.snapshot.creation, b.manifest.snapshot.createtxg), reverse=True)
        for backup in doomed:
            entry["deleted"].append({"backup_id": backup.backup_id, "snapshot": backup.snapshot_name,
                                     "reason": decision.delete[backup.backup_id]})
        for backup in backups:
            if backup.complete or catalog.MANIFEST in backup.objects:
                if not backup.complete:
                    entry["damaged"].append({"backup_id": backup.backup_id, "snapshot": backup.snapshot_name,
                                             "reason": backup.manifest_error or "unreadable manifest"})
                continue
            times = [t for t in (parse_mtime(o.mtime) for o in backup.objects.values()) if t is not None]
            age = now - max(times) if times else None
            record = {"backup_id": backup.backup_id, "snapshot": backup.snapshot_name,
                      "objects": len(backup.objects), "age_seconds": int(age) if age is not None else None}
            if age is not None and age > incomplete_after:
                record["reason"] = "incomplete upload, untouched for %s (more than %s)" % (
                    human_duration(age), human_duration(incomplete_after))
                entry["incomplete_deleted"].append(record)
            else:
                record["reason"] = "incomplete upload, touched %s ago (may still be resumed)" % (
                    human_duration(age) if age is not None else "an unknown time")
                entry["incomplete_kept"].append(record)
        entry["abandoned_deleted"] = abandoned_attempts(complete, decision.delete, now, incomplete_after)
        entry["_items"] = [to_item(b) for b in complete if b.backup_id in decision.keep]
        entry["changed"] = bool(entry["deleted"] or entry["incomplete_deleted"] or entry["abandoned_deleted"])
        entry["status"] = ("planned" if check_mode else "pruned") if entry["changed"] else "unchanged"
        if check_mode:
            return entry
        for record in entry["deleted"]:
            bdir = catalog.backup_dir(settings.namespace, dataset, record["backup_id"])
            # The manifest first: an interrupted prune leaves an incomplete upload, never a backup
            # that looks complete with chunks missing.
            store.delete(bdir + "/" + catalog.MANIFEST)
            store.purge(bdir)
        for record in entry["incomplete_deleted"]:
            store.purge(catalog.backup_dir(settings.namespace, dataset, record["backup_id"]))
            _forget_journal(settings, name, record["backup_id"])
        for record in entry["abandoned_deleted"]:
            store.delete(catalog.backup_dir(settings.namespace, dataset, record["backup_id"]) + "/" + record["object"])
        ledger.forget(settings.state_dir, settings.namespace, name, dataset, [r["backup_id"] for r in entry["deleted"]])
        return entry
    finally:
        lock.release()


def abandoned_attempts(complete: Sequence[catalog.Backup], doomed: Dict[str, str], now: float,
                       incomplete_after: float) -> List[Dict[str, Any]]:
    """Objects of abandoned upload attempts (append-only providers) in kept backups, old enough to go."""
    records = []
    for backup in complete:
        if backup.backup_id in doomed:
            continue  # the whole directory goes
        for obj in attempts.abandoned(backup):
            when = parse_mtime(obj.mtime)
            if when is not None and now - when > incomplete_after:
                records.append({"backup_id": backup.backup_id, "snapshot": backup.snapshot_name,
                                "object": obj.path.rsplit("/", 1)[-1],
                                "reason": "abandoned upload attempt, untouched for %s" % human_duration(now - when)})
    return records


def _forget_journal(settings: DatasetSettings, provider: str, backup_id: str) -> None:
    try:
        os.unlink(journal_path(settings, provider, backup_id))
    except OSError:
        pass


def local_snapshots(zfs: Zfs, dataset: str, prefix: str) -> List[LocalSnapshot]:
    """The dataset's snapshots, with whether this collection made them (prefix and property)."""
    snaps = zfs.snapshots(dataset)
    marked = {name for name, value in zfs.snapshot_property(dataset, CREATED_BY_PROPERTY).items() if value == "true"}
    return [LocalSnapshot(s.name, s.creation, s.createtxg, s.name.startswith(prefix + "-") and s.name in marked)
            for s in snaps]


def prune_dataset(settings: DatasetSettings, check_mode: bool, zfs: Optional[Zfs] = None,
                  stores: Optional[Dict[str, Store]] = None, keep: Any = None, incomplete_after: Any = None,
                  local: Optional[bool] = None, now: Optional[float] = None) -> Dict[str, Any]:
    """Prune one dataset on every selected provider (and, when asked, its local snapshots).

    keep, incomplete_after (a duration) and local override the policy's keep, prune_incomplete_after and
    prune_local_snapshots (offsite_prune's parameters).
    """
    keep = settings.keep if keep is None else Keep.parse(keep)
    threshold = settings.prune_incomplete_after if incomplete_after is None else parse_duration(
        incomplete_after, "prune_incomplete_after")
    local = settings.prune_local_snapshots if local is None else local
    result: Dict[str, Any] = {"dataset": settings.dataset, "changed": False, "providers": {},
                              "failed_providers": [], "keep": keep.rules()}
    items: Dict[str, List[Item]] = {}
    for name in settings.selected:
        store = (stores or {}).get(name) or Store(settings.providers[name])
        append_only = settings.providers[name].append_only
        try:
            # An append-only provider cannot delete from here: plan only (its kept backups still protect the
            # local snapshots), and leave the deletions to the host with delete rights (docs/security.md).
            entry = prune_provider(settings, store, keep, threshold, check_mode or append_only, now)
            if append_only:
                entry = _left_for_prune_host(settings.dataset, entry)
        except OffsiteError as exc:
            entry = {"provider": name, "changed": False, "status": "locked" if exc.code == "locked" else "failed",
                     "message": "pruning %s on %s: %s" % (settings.dataset, name, exc.message),
                     "error_code": exc.code}
            result["failed_providers"].append(name)
        result["providers"][name] = entry
        result["changed"] = result["changed"] or entry["changed"]
        kept_items = entry.pop("_items", None)
        if kept_items is not None:
            items[name] = kept_items
            if entry.get("deleted") and not check_mode:  # our hold follows the newest base still there
                moved = holds.follow_prune_safely(zfs or Zfs(settings.zfs), settings, name, list(chains(kept_items)))
                if moved:
                    entry["base_hold"] = moved
    if local:
        result["local"] = _prune_local(settings, zfs or Zfs(settings.zfs), keep.rules(), items, check_mode,
                                       bool(result["failed_providers"]))
        result["changed"] = result["changed"] or bool(result["local"].get("deleted"))
    return result


def _left_for_prune_host(dataset: str, entry: Dict[str, Any]) -> Dict[str, Any]:
    """The plan of an append-only provider: nothing deleted here, what the keep rules would delete listed."""
    left = entry["deleted"] + entry["incomplete_deleted"] + entry["abandoned_deleted"]
    message = ("%s on %s: append-only, nothing deleted from this host; %d to delete from the host with delete "
               "rights (playbooks/prune.yml offsite_prune_host)" % (dataset, entry["provider"], len(left)))
    entry.update(status="append_only", changed=False, left_for_prune_host=left, deleted=[], incomplete_deleted=[],
                 abandoned_deleted=[], message=message)
    return entry


def _prune_local(settings: DatasetSettings, zfs: Zfs, keep: Dict[str, Any], items: Dict[str, List[Item]],
                 check_mode: bool, provider_failed: bool) -> Dict[str, Any]:
    prefix = settings.snapshot_prefix
    outcome: Dict[str, Any] = {"kept": [], "deleted": [], "ignored": []}
    if provider_failed:
        outcome["message"] = "local snapshots left alone: a provider could not be pruned"
        return outcome
    snaps = local_snapshots(zfs, settings.dataset, prefix)
    guids = {s.name: str(s.guid) for s in zfs.snapshots(settings.dataset)}
    protected = protected_local(snaps, items, guids)
    kept, deleted = plan_local(snaps, keep, protected)
    outcome["kept"] = [{"snapshot": n, "reasons": r} for n, r in sorted(kept.items())]
    outcome["deleted"] = [{"snapshot": n, "reason": r} for n, r in sorted(deleted.items())]
    outcome["ignored"] = [s.name for s in snaps if not s.ours]
    held = holds.held_among(zfs, settings.dataset, [r["snapshot"] for r in outcome["deleted"]])
    for record in [r for r in outcome["deleted"] if r["snapshot"] in held]:  # destroy would fail "busy"
        outcome["deleted"].remove(record)
        outcome["kept"].append({"snapshot": record["snapshot"], "reasons": [
            "held (%d user holds; see zfs holds or docs/snapshot-managers.md): left alone" % held[record["snapshot"]]]})
    if not check_mode:
        for record in outcome["deleted"]:
            zfs.destroy("%s@%s" % (settings.dataset, record["snapshot"]))
    return outcome
