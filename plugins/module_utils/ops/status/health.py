# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Status health rules: given what was collected, the problems (codes, severities) and the health. Pure.

Private to the collection: not an API for other collections.

No I/O at all: every function reads listings, manifests, snapshots and clocks it is given
(collect.py gathers them) and returns problems: dicts with `code` (errors.CODES, the one vocabulary),
`severity` (info, warning, critical), `dataset`, `provider`, `backup`, `message` and details.

- critical: no restorable backup on any reporting provider; the newest restorable backup is older
  than `max_age` on every provider; a damaged chunk or a broken chain in the chain of a
  provider's newest backup; a provider that cannot be listed.
- warning: the same on some providers only, damage in older backups, incomplete uploads
  (not running), orphan objects, unreadable manifests, local snapshots not yet backed up.
- ok: nothing of the above. (An upload that is running right now is only `info`.)
The health of a dataset (and of the host) is the worst severity among its problems; info counts as ok.
"""

from __future__ import annotations

import calendar
import re
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils import catalog, signing
from ansible_collections.offsite.zfs.plugins.module_utils.common import human_bytes, human_duration
from ansible_collections.offsite.zfs.plugins.module_utils.ops.status._chains import Chains

SEVERITIES = ("info", "warning", "critical")
HEALTH_RANK = {"ok": 0, "warning": 1, "critical": 2}
DAMAGE_CODES = ("chunk_missing", "size_mismatch", "digest_mismatch", "decrypt_failed", "mac_mismatch",
                "broken_chain", "download_failed")
LIST_LIMIT = 20  # objects or snapshots listed in one problem
_MTIME_RE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?$")


def problem(code: str, severity: str, dataset: Optional[str], provider: Optional[str], backup: Optional[str],
            message: str, **extra: Any) -> Dict[str, Any]:
    entry = {"code": code, "severity": severity, "dataset": dataset, "provider": provider, "backup": backup,
             "message": message}
    entry.update(extra)
    return entry


def worst(healths: List[str]) -> str:
    return max(healths or ["ok"], key=lambda h: HEALTH_RANK.get(h, 0))


def health_of(problems: List[Dict[str, Any]]) -> str:
    return worst([p["severity"] for p in problems if p["severity"] in HEALTH_RANK])


def parse_mtime(text: str) -> Optional[float]:
    """An rclone ModTime (RFC 3339, nanoseconds, Z or +hh:mm) as epoch seconds."""
    match = _MTIME_RE.match(text or "")
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    epoch = float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))
    if match.group(7):
        epoch += float("0" + match.group(7))
    zone = match.group(8)
    if zone and zone != "Z":
        sign = -1 if zone[0] == "+" else 1
        digits = zone[1:].replace(":", "")
        epoch += sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return epoch


def last_modified(backup: catalog.Backup) -> Optional[float]:
    """When the newest object of a backup directory was written (one remote's ModTimes share a format)."""
    stamps = [o.mtime for o in backup.objects.values() if o.mtime]
    return parse_mtime(max(stamps)) if stamps else None


# -- one backup -------------------------------------------------------------------------------------------
def incomplete_problems(ds: str, provider: str, backup: catalog.Backup, label: str, listed_bytes: int,
                        running: bool, now: float) -> List[Dict[str, Any]]:
    """A backup directory without a manifest: refused or unreadable, or an upload stopped (or running now)."""
    if backup.manifest_error:
        refused = backup.manifest_code in signing.CODES  # forged, replayed or unsigned: never trusted
        return [problem(backup.manifest_code, "critical" if refused else "warning", ds, provider, backup.backup_id,
                        backup.manifest_error if refused else "%s; back %s up again and delete the damaged backup "
                        "directory." % (backup.manifest_error.rstrip("."), label))]
    written = last_modified(backup)
    age = round(now - written, 1) if written is not None else None
    if running:
        return [problem("incomplete_upload", "info", ds, provider, backup.backup_id,
                        "The upload of %s to %s is running now (%d objects, %s so far)." % (
                            label, provider, len(backup.objects), human_bytes(listed_bytes)),
                        age_seconds=age, objects=len(backup.objects), bytes=listed_bytes, running=True)]
    return [problem("incomplete_upload", "warning", ds, provider, backup.backup_id,
                    "The upload of %s to %s stopped before its manifest was written (%d objects, %s, last written "
                    "%s ago); run the backup again to resume it, or prune it." % (
                        label, provider, len(backup.objects), human_bytes(listed_bytes), human_duration(age)),
                    age_seconds=age, objects=len(backup.objects), bytes=listed_bytes, running=False)]


def listing_problems(ds: str, provider: str, backup: catalog.Backup, label: str, chains: Chains,
                     severity: str) -> List[Dict[str, Any]]:
    """What the listing shows of a backup with a manifest: missing or wrong-sized chunks, a broken chain,
    objects its manifest does not name. severity: of damage (critical in the newest backup's chain)."""
    found: List[Dict[str, Any]] = []
    manifest = backup.manifest
    where = "backup %s of %s on %s" % (backup.backup_id, ds, provider)
    missing = backup.missing_objects()
    wrong = backup.size_mismatches()
    if missing:
        found.append(problem("chunk_missing", severity, ds, provider, backup.backup_id,
                             "%d chunk object%s of %s %s missing (%s); back %s up again." % (
                                 len(missing), "s" if len(missing) > 1 else "", where,
                                 "are" if len(missing) > 1 else "is", ", ".join(missing[:5]), label),
                             objects=missing[:LIST_LIMIT], count=len(missing)))
    if wrong:
        sizes = {c.object: c.stored_bytes for c in manifest.chunks}
        found.append(problem("size_mismatch", severity, ds, provider, backup.backup_id,
                             "%d chunk object%s of %s %s the wrong size (%s: %d bytes, the manifest says %d); "
                             "back %s up again." % (
                                 len(wrong), "s" if len(wrong) > 1 else "", where,
                                 "have" if len(wrong) > 1 else "has", wrong[0], backup.objects[wrong[0]].size,
                                 sizes[wrong[0]], label),
                             objects=wrong[:LIST_LIMIT], count=len(wrong)))
    if manifest.kind == "incremental" and chains.any(manifest.base.guid) is None:
        found.append(problem("broken_chain", severity, ds, provider, backup.backup_id,
                             "%s is incremental from %s, but %s holds no complete backup of that snapshot "
                             "(guid %s): it cannot be restored; take a full backup." % (
                                 where[0].upper() + where[1:], manifest.base.name, provider, manifest.base.guid)))
    referenced = {c.object for c in manifest.chunks} | {catalog.MANIFEST, signing.SIGNATURE}
    extra = sorted(name for name in backup.objects if name not in referenced)
    if extra:
        found.append(problem("orphan_object", "warning", ds, provider, backup.backup_id,
                             "%d object%s in %s %s not referenced by its manifest (%s); delete %s." % (
                                 len(extra), "s" if len(extra) > 1 else "", where,
                                 "are" if len(extra) > 1 else "is", ", ".join(extra[:5]),
                                 "them" if len(extra) > 1 else "it"),
                             objects=extra[:LIST_LIMIT], count=len(extra),
                             bytes=sum(backup.objects[n].size for n in extra)))
    return found


def verify_problems(ds: str, provider: str, backup_id: str, findings: List[Dict[str, Any]],
                    severity: str) -> List[Dict[str, Any]]:
    """The chunk verifier's findings (digest or decrypt level) as problems."""
    return [problem(f["code"], severity, ds, provider, backup_id, f["message"], chunk=f["chunk"], object=f["object"])
            for f in findings]


# -- one dataset on one provider --------------------------------------------------------------------------
def fresh(age_seconds: Optional[float], max_age: Optional[float]) -> Optional[bool]:
    """Whether the newest restorable backup is within max_age (None: no max_age to judge by)."""
    if max_age is None:
        return None
    return bool(age_seconds is not None and age_seconds <= max_age)


def pending(local: Sequence[Any], backed_guids: Iterable[str], latest_created: Optional[float]) -> List[Any]:
    """Local snapshots newer than the newest one backed up (by guid, else by creation time)."""
    backed = set(backed_guids)
    last = max([i for i, s in enumerate(local) if str(s.guid) in backed] or [-1])
    if last < 0 and latest_created is not None:  # the backed-up snapshots are gone locally: compare times
        return [s for s in local if s.creation > latest_created]
    return [s for s in local[last + 1:] if str(s.guid) not in backed]


def not_backed_up(ds: str, provider: str, snaps: Sequence[Any]) -> List[Dict[str, Any]]:
    if not snaps:
        return []
    return [problem("not_backed_up", "warning", ds, provider, None,
                    "%d snapshot%s of %s %s not backed up to %s yet (newest: %s); run offsite_backup." % (
                        len(snaps), "s" if len(snaps) > 1 else "", ds, "are" if len(snaps) > 1 else "is", provider,
                        snaps[-1].name),
                    snapshots=[s.name for s in snaps][-LIST_LIMIT:], count=len(snaps))]


# -- one dataset, one host ---------------------------------------------------------------------------------
def latest_of(per_provider: Dict[str, Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The newest restorable backup of a dataset over its providers."""
    latests = [r["latest"] for r in per_provider.values() if r["latest"]]
    return max(latests, key=lambda item: (item["created_epoch"] or 0)) if latests else None


def dataset_problems(ds: str, reporting: Sequence[str], expected: Sequence[str],
                     per_provider: Dict[str, Dict[str, Any]], max_age: Optional[float],
                     is_configured: bool) -> List[Dict[str, Any]]:
    """no_backup and stale per provider (critical when no provider has better), no_backup on none at all."""
    found: List[Dict[str, Any]] = []
    latest = latest_of(per_provider)
    fresh_somewhere = any(r["fresh"] for r in per_provider.values())
    for name in reporting:
        report = per_provider[name]
        if report["latest"] is None and (name in expected or report["backup_count"]):
            found.append(problem(
                "no_backup", "warning" if latest else "critical", ds, name, None,
                "%s has %s of %s; %s." % (
                    name, "backups but none that can be restored" if report["backup_count"] else "no backup",
                    ds, "another provider has one" if latest else "run offsite_backup for it")))
        elif report["fresh"] is False:
            found.append(problem(
                "stale", "warning" if fresh_somewhere else "critical", ds, name, report["latest"]["backup_id"],
                "The newest restorable backup of %s on %s is %s old (snapshot %s), older than max_age %s; "
                "check that backups run." % (ds, name, human_duration(report["latest"]["age_seconds"]),
                                             report["latest"]["snapshot"], human_duration(max_age)),
                age_seconds=report["latest"]["age_seconds"], max_age_seconds=max_age))
    if not reporting and is_configured:
        found.append(problem("no_backup", "critical", ds, None, None,
                             "No provider holds a backup of %s; run offsite_backup for it." % ds))
    return found


def foreign_host(ds: str, provider: str, why: str) -> Dict[str, Any]:
    """Another host's backups in this host's namespace (why: hostid.describe)."""
    return problem("foreign_host", "critical", ds, provider, None, "%s on %s: %s." % (ds, provider, why))


def ledger_problems(ds: str, provider: str, findings: Sequence[Tuple[str, str, Optional[str], str]]
                    ) -> List[Dict[str, Any]]:
    """The ledger's findings (vanished or rolled-back backups, a reset ledger) as problems."""
    return [problem(code, severity, ds, provider, backup_id, message)
            for code, severity, backup_id, message in findings]


def provider_failed(provider: str, why: str) -> Dict[str, Any]:
    return problem("provider_failed", "critical", None, provider, None,
                   "Provider %s could not be listed, so its backups are unknown: %s" % (provider, why))


def dataset_of(path: str, datasets: Sequence[str]) -> Optional[str]:
    """The deepest of these datasets the path is below."""
    best = None
    for ds in datasets:
        if path.startswith(ds + "/") and (best is None or len(ds) > len(best)):
            best = ds
    return best


def stray_problems(listings: Dict[str, catalog.Listing], known: Sequence[str], namespace: str,
                   limit: Optional[Sequence[str]]) -> List[Tuple[Optional[str], Dict[str, Any]]]:
    """(dataset or None, problem) for the objects outside any backup directory, per provider and dataset."""
    found: List[Tuple[Optional[str], Dict[str, Any]]] = []
    for name, listing in listings.items():
        groups: Dict[Optional[str], List[Any]] = {}
        for obj in listing.stray:
            groups.setdefault(dataset_of(obj.path, known), []).append(obj)
        for ds, objs in groups.items():
            if limit is not None and ds not in limit:
                continue
            paths = sorted(o.path for o in objs)
            found.append((ds, problem("orphan_object", "warning", ds, name, None,
                                      "%d object%s below %s/%s on %s %s outside any backup directory (%s); delete "
                                      "%s." % (len(paths), "s" if len(paths) > 1 else "", namespace, ds or "", name,
                                               "are" if len(paths) > 1 else "is", ", ".join(paths[:5]),
                                               "them" if len(paths) > 1 else "it"),
                                      objects=paths[:LIST_LIMIT], count=len(paths), bytes=sum(o.size for o in objs))))
    return found


def nothing_offsite(namespace: str) -> Dict[str, Any]:
    """No backup of this host anywhere: never "ok" with nothing offsite."""
    return problem("nothing_offsite", "critical", None, None, None,
                   "No provider holds any backup of this host (namespace %s): nothing of it is offsite; list its "
                   "datasets in the policy and run offsite_backup." % namespace)
