# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What offsite_status returns: the entries per backup, provider and dataset, the summary and the message.

Private to the collection: not an API for other collections.

Pure: builds the result's dicts from what collect.py gathered and the problems health.py found
(`provider_report` runs the per-backup rules in order, so each backup's problems stay together).
The keys of these dicts are the module's documented return values (docs/monitoring.md); the
fleet report (plugins/filter/offsite_report.py) reads them.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils import catalog, lineage
from ansible_collections.offsite.zfs.plugins.module_utils.common import human_bytes
from ansible_collections.offsite.zfs.plugins.module_utils.ops.status import health
from ansible_collections.offsite.zfs.plugins.module_utils.ops.status._chains import Chains


def iso(epoch: Optional[float]) -> Optional[str]:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def id_parts(backup_id: str) -> Dict[str, Any]:
    """What a backup id says without its manifest: snapshot, guid, kind, base."""
    parts = backup_id.split("+")
    info: Dict[str, Any] = {"snapshot": parts[0], "guid": None, "kind": None, "base": None}
    if len(parts) >= 3:
        try:
            info["guid"] = str(int(parts[1], 16))
        except ValueError:
            pass
        if parts[2] == "full":
            info["kind"] = "full"
        elif parts[2] == "from" and len(parts) >= 4:
            info["kind"] = "incremental"
            info["base"] = "+".join(parts[3:])
    return info


def running_message(entry: Dict[str, Any]) -> str:
    """One line for an operation running now: what, where, how far, PID and start."""
    what = "%s of %s" % (entry["operation"], entry["dataset"])
    if entry.get("provider"):
        what += " %s %s" % ("to" if entry["operation"] == "backup" else "from", entry["provider"])
    if entry.get("chunk") is not None:
        what += ": chunk %d of ~%d, %s, %s/s" % (
            entry["chunk"] or 0, max(entry.get("chunks_estimated") or 0, entry["chunk"] or 0),
            human_bytes(entry.get("bytes") or 0), human_bytes(entry.get("rate_bytes_per_second") or 0))
    if len(entry.get("providers") or {}) > 1:  # a fan-out: each provider's own progress
        what += " (%s)" % "; ".join("%s chunk %s, %s/s" % (name, each.get("chunk"), human_bytes(
            each.get("rate") or 0)) for name, each in sorted(entry["providers"].items()))
    return "%s (PID %s, since %s)" % (what, entry.get("pid"), entry.get("started") or "unknown")


# -- one dataset on one provider ------------------------------------------------------------------
def backup_entry(backup: catalog.Backup) -> Dict[str, Any]:
    listed = sum(o.size for o in backup.objects.values())
    entry: Dict[str, Any] = {"backup_id": backup.backup_id, "complete": backup.complete,
                             "objects": len(backup.objects), "listed_bytes": listed,
                             "last_upload": iso(health.last_modified(backup)), "signed": backup.signed}
    manifest = backup.manifest
    if manifest is None:
        info = id_parts(backup.backup_id)
        entry.update(snapshot=info["snapshot"], guid=info["guid"], kind=info["kind"], base=info["base"],
                     base_guid=None, created=None, created_epoch=None, stream_bytes=None, stored_bytes=listed,
                     chunks=None, intact=False, restorable=False, chain_length=None, started=None, finished=None,
                     host=None)
        return entry
    entry.update(snapshot=manifest.snapshot.name, guid=manifest.snapshot.guid, kind=manifest.kind,
                 base=manifest.base.name if manifest.base else None,
                 base_guid=manifest.base.guid if manifest.base else None,
                 created=iso(manifest.snapshot.creation) if manifest.snapshot.creation else None,
                 created_epoch=manifest.snapshot.creation or None, stream_bytes=manifest.plain_bytes,
                 stored_bytes=manifest.stored_bytes, chunks=len(manifest.chunks), intact=backup.intact,
                 restorable=False, chain_length=None, started=manifest.started or None,
                 finished=manifest.finished or None, host=manifest.host or None,
                 compression=manifest.compression.get("algorithm"), encryption=manifest.encryption.get("kind"))
    return entry


def provider_report(ds: str, provider: str, backups: List[catalog.Backup], verify: str,
                    findings: Dict[str, List[Dict[str, Any]]], running_backup: bool, local: Optional[List[Any]],
                    now: float, max_age: Optional[float]) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """The report of one dataset on one provider and its problems (health.py's rules, backup by backup).

    findings: backup id -> the chunk verifier's findings, for the backups it checked (verify digest/decrypt).
    """
    chains = Chains(backups)
    problems: List[Dict[str, Any]] = []
    entries = []
    newest_chain = chains.newest_chain_ids()
    for backup in backups:
        entry = backup_entry(backup)
        entries.append(entry)
        label = "%s@%s" % (ds, entry["snapshot"])
        if backup.manifest is None:
            problems.extend(health.incomplete_problems(ds, provider, backup, label, entry["listed_bytes"],
                                                       running_backup, now))
            continue
        damage = "critical" if backup.backup_id in newest_chain else "warning"
        problems.extend(health.listing_problems(ds, provider, backup, label, chains, damage))
        if backup.backup_id in findings:
            entry["verified"] = verify
            entry["verify_failures"] = len(findings[backup.backup_id])
            problems.extend(health.verify_problems(ds, provider, backup.backup_id, findings[backup.backup_id],
                                                   damage))
        elif verify in ("none", "objects"):
            entry["verified"] = "listing"
    # Restorability and chain lengths (after verification: damage found by it counts).
    lengths = chains.restorable(p["backup"] for p in problems if p["code"] in health.DAMAGE_CODES)
    for backup, entry in zip(backups, entries):
        if backup.backup_id in lengths:
            entry["restorable"] = True
            entry["chain_length"] = lengths[backup.backup_id]
    restorable = [(b, e) for b, e in zip(backups, entries) if e["restorable"]]
    latest = None
    if restorable:
        backup, entry = max(restorable, key=lambda pair: (
            pair[0].manifest.snapshot.creation, pair[0].manifest.snapshot.createtxg))
        created = backup.manifest.snapshot.creation
        latest = {"backup_id": backup.backup_id, "snapshot": entry["snapshot"], "guid": entry["guid"],
                  "created": entry["created"], "created_epoch": created,
                  "age_seconds": round(now - created, 1) if created else None, "chain_length": entry["chain_length"],
                  "provider": provider}
    report: Dict[str, Any] = {
        "provider": provider,
        "backups": entries,
        "backup_count": len(entries),
        "complete_count": sum(1 for e in entries if e["complete"]),
        "restorable_count": len(restorable),
        "lineages": lineage.summary(backups),
        "latest": latest,
        "chain_length": latest["chain_length"] if latest else None,
        "stored_bytes": sum(e["listed_bytes"] for e in entries),
        "stream_bytes": sum(e["stream_bytes"] or 0 for e in entries if e["complete"]),
        "fresh": health.fresh(latest["age_seconds"] if latest else None, max_age),
        "not_backed_up": None,
    }
    if local is not None:
        waiting = health.pending(local, (b.manifest.snapshot.guid for b in backups if b.complete),
                                 (latest["created_epoch"] or 0) if latest is not None else None)
        report["not_backed_up"] = [s.name for s in waiting]
        problems.extend(health.not_backed_up(ds, provider, waiting))
    return report, problems


# -- a dataset, the host ----------------------------------------------------------------------------
def dataset_entry(ds: str, configured: bool, exists: Optional[bool], max_age: Optional[float],
                  per_provider: Dict[str, Dict[str, Any]], local: Optional[List[Any]],
                  problems: List[Dict[str, Any]]) -> Dict[str, Any]:
    latest = health.latest_of(per_provider)
    return {
        "dataset": ds, "configured": configured, "local": exists, "max_age_seconds": max_age,
        "providers": per_provider, "latest": latest,
        "age_seconds": latest["age_seconds"] if latest else None,
        "chain_length": latest["chain_length"] if latest else None,
        "stored_bytes": sum(r["stored_bytes"] for r in per_provider.values()),
        "backup_count": sum(r["backup_count"] for r in per_provider.values()),
        "not_backed_up": {n: r["not_backed_up"] for n, r in per_provider.items()} if local is not None else None,
        "problems": problems, "health": health.health_of(problems),
    }


def add_problem(entry: Dict[str, Any], found: Dict[str, Any]) -> None:
    """One more problem of a dataset entry, and its health again."""
    entry["problems"].append(found)
    entry["health"] = health.health_of(entry["problems"])


def providers_summary(provider_names: Sequence[str], listings: Dict[str, catalog.Listing]) -> Dict[str, Any]:
    summary = {}
    for name in provider_names:
        listing = listings.get(name)
        summary[name] = {
            "listed": listing is not None,
            "stored_bytes": sum(o.size for b in listing.backups.values() for o in b.objects.values())
            + sum(o.size for o in listing.stray) if listing else None,
            "objects": sum(len(b.objects) for b in listing.backups.values()) + len(listing.stray) if listing else None,
            "backups": len(listing.backups) if listing else None,
        }
    return summary


def message(namespace: str, problems: List[Dict[str, Any]], datasets: int, summary: Dict[str, Any]) -> str:
    """The one line: the first critical problem, else the first warning, else what is offsite."""
    critical = [p for p in problems if p["severity"] == "critical"]
    warnings = [p for p in problems if p["severity"] == "warning"]
    if critical:
        msg = "%s: critical: %s" % (namespace, critical[0]["message"])
        if len(critical) + len(warnings) > 1:
            msg += " (and %d more problems)" % (len(critical) + len(warnings) - 1)
    elif warnings:
        msg = "%s: warning: %s" % (namespace, warnings[0]["message"])
        if len(warnings) > 1:
            msg += " (and %d more problems)" % (len(warnings) - 1)
    else:
        msg = "%s: %d datasets ok, %d backups, %s stored" % (
            namespace, datasets, summary["backups"], human_bytes(summary["stored_bytes"]))
    return msg


def result(host: str, namespace: str, verify: str, sampled: Optional[Dict[str, Any]], now: float,
           datasets: Dict[str, Dict[str, Any]], host_problems: List[Dict[str, Any]], running: List[Dict[str, Any]],
           provider_names: Sequence[str], listings: Dict[str, catalog.Listing]) -> Dict[str, Any]:
    """offsite_status's result: datasets, providers, every problem, health, summary and msg."""
    all_problems = list(host_problems)
    for entry in datasets.values():
        all_problems.extend(entry["problems"])
    providers = providers_summary(provider_names, listings)
    counts: Dict[str, int] = {}
    for entry in all_problems:
        counts[entry["code"]] = counts.get(entry["code"], 0) + 1
    summary = {
        "datasets": len(datasets),
        "datasets_by_health": {h: sum(1 for d in datasets.values() if d["health"] == h) for h in health.HEALTH_RANK},
        "backups": sum(d["backup_count"] for d in datasets.values()),
        "stored_bytes": sum(p["stored_bytes"] or 0 for p in providers.values()),
        "problems": len(all_problems),
        "problems_by_severity": {s: sum(1 for p in all_problems if p["severity"] == s) for s in health.SEVERITIES},
        "problems_by_code": counts,
        "running": len(running),
    }
    return {
        "changed": False,
        "host": host,
        "namespace": namespace,
        "verify": verify,
        "sampled": sampled,
        "generated": iso(now),
        "generated_epoch": round(now, 3),
        "health": health.worst([d["health"] for d in datasets.values()] + [health.health_of(host_problems)]),
        "datasets": datasets,
        "providers": providers,
        "problems": all_problems,
        "host_problems": host_problems,
        "running": running,
        "summary": summary,
        "msg": message(namespace, all_problems, len(datasets), summary),
    }
