# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Status: what a host has offsite, how fresh, how healthy, and what is running now.

Per provider, ONE `rclone lsjson -R` of the namespace and ONE `rclone copy` of its
manifests (catalog.list_backups) give everything the default level reports; verify
levels `digest` and `decrypt` then download chunks (verify.py). Nothing is changed.

Health, per dataset and for the host (the worst of its datasets and host problems):

- critical: no restorable backup on any reporting provider; the newest restorable backup is older
  than `max_age` on every provider; a damaged chunk or a broken chain in the chain of a
  provider's newest backup; a provider that cannot be listed.
- warning: the same on some providers only, damage in older backups, incomplete uploads
  (not running), orphan objects, unreadable manifests, local snapshots not yet backed up.
- ok: nothing of the above. (An upload that is running right now is only `info`.)

Importable and callable without Ansible: ``run_status(config_dict, params_dict)``.
"""

from __future__ import annotations

import calendar
import os
import re
import socket
import time
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils import (
    catalog,
    hostid,
    ledger,
    lineage,
    locks,
    progress,
    signing,
    status_bases,
    status_local,
)
from ansible_collections.offsite.zfs.plugins.module_utils.common import (
    OffsiteError,
    human_bytes,
    human_duration,
    parse_duration,
    validate_dataset,
)
from ansible_collections.offsite.zfs.plugins.module_utils.config import configured as configured_datasets
from ansible_collections.offsite.zfs.plugins.module_utils.ops.verify.check import LEVELS, verify_backup
from ansible_collections.offsite.zfs.plugins.module_utils.ops.verify.sample import run_sampled
from ansible_collections.offsite.zfs.plugins.module_utils.resolve import default_namespace, from_params
from ansible_collections.offsite.zfs.plugins.module_utils.settings import DatasetSettings
from ansible_collections.offsite.zfs.plugins.module_utils.status_drills import add_drills
from ansible_collections.offsite.zfs.plugins.module_utils.status_legacy import legacy_report
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import Snapshot, Zfs

SEVERITIES = ("info", "warning", "critical")
HEALTH_RANK = {"ok": 0, "warning": 1, "critical": 2}
DAMAGE_CODES = ("chunk_missing", "size_mismatch", "digest_mismatch", "decrypt_failed", "mac_mismatch",
                "broken_chain", "download_failed")
# A dataset name only used to resolve host-wide settings (providers, namespace, state_dir).
_HOST_SCOPE = "offsite-status-host-scope"
_MTIME_RE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?$")
_LIST_LIMIT = 20


# -- small helpers ------------------------------------------------------------------------------
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


def iso(epoch: Optional[float]) -> Optional[str]:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


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


# -- running operations ---------------------------------------------------------------------------
def running_operations(state_dir: str) -> List[Dict[str, Any]]:
    """Operations running on this host, from their progress state files and held locks."""
    found: List[Dict[str, Any]] = []
    by_pid: Dict[Any, Dict[str, Any]] = {}
    for state in progress.running_states(state_dir):
        entry = {
            "operation": state.get("operation"), "dataset": state.get("dataset"), "provider": state.get("provider"),
            "chunk": state.get("chunk"), "chunks_estimated": state.get("chunks_estimated"),
            "bytes": state.get("bytes"), "bytes_estimated": state.get("bytes_estimated"),
            "rate_bytes_per_second": state.get("rate"), "started": state.get("started"),
            "updated": state.get("updated"), "pid": state.get("pid"), "log_file": state.get("log"),
            "providers": state.get("providers") or {},
        }
        found.append(entry)
        by_pid[entry["pid"]] = entry
    for held in locks.held_locks(state_dir):
        entry = by_pid.get(held.get("pid"))
        if entry is None:
            started = held.get("started")
            entry = {"operation": held.get("operation"), "dataset": held.get("dataset"),
                     "provider": held.get("provider"), "chunk": None, "chunks_estimated": None, "bytes": None,
                     "bytes_estimated": None, "rate_bytes_per_second": None,
                     "started": iso(started) if isinstance(started, (int, float)) else None, "updated": None,
                     "pid": held.get("pid"), "log_file": None}
            found.append(entry)
            by_pid[entry["pid"]] = entry
        entry.setdefault("locks", []).append(held.get("scope"))
        if entry.get("provider") is None and held.get("provider"):
            entry["provider"] = held.get("provider")
    for entry in found:
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
        entry["message"] = "%s (PID %s, since %s)" % (what, entry.get("pid"), entry.get("started") or "unknown")
    return found


# -- one dataset on one provider ------------------------------------------------------------------
def _backup_entry(backup: catalog.Backup) -> Dict[str, Any]:
    listed = sum(o.size for o in backup.objects.values())
    entry: Dict[str, Any] = {"backup_id": backup.backup_id, "complete": backup.complete,
                             "objects": len(backup.objects), "listed_bytes": listed,
                             "last_upload": iso(last_modified(backup)), "signed": backup.signed}
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


class _Chains:
    """Chain resolution for one dataset on one provider, memoised by guid."""

    def __init__(self, backups: List[catalog.Backup]) -> None:
        self.backups = backups
        # Backup.intact walks every chunk: decide it once per backup, not once per chain lookup.
        self._intact_backups = [b for b in backups if b.complete and b.intact]
        self._intact_ids = {b.backup_id for b in self._intact_backups}
        self._intact: Dict[str, Optional[List[catalog.Backup]]] = {}
        self._any: Dict[str, Optional[List[catalog.Backup]]] = {}

    def is_intact(self, backup: catalog.Backup) -> bool:
        return backup.backup_id in self._intact_ids

    def intact(self, guid: str) -> Optional[List[catalog.Backup]]:
        if guid not in self._intact:
            self._intact[guid] = catalog.resolve_chain(self._intact_backups, guid, intact_only=False)
        return self._intact[guid]

    def any(self, guid: str) -> Optional[List[catalog.Backup]]:
        if guid not in self._any:
            self._any[guid] = catalog.resolve_chain(self.backups, guid, intact_only=False)
        return self._any[guid]

    def own_chain(self, backup: catalog.Backup, intact_only: bool) -> Optional[List[catalog.Backup]]:
        """The chain ending at this very backup (not another one of the same snapshot)."""
        manifest = backup.manifest
        if manifest is None or (intact_only and not self.is_intact(backup)):
            return None
        if manifest.kind == "full":
            return [backup]
        base = self.intact(manifest.base.guid) if intact_only else self.any(manifest.base.guid)
        return base + [backup] if base else None


def _provider_report(ds: str, provider: str, store: Optional[Store], listing: catalog.Listing, namespace: str,
                     verify: str, keys: Any, running_backup: bool, local: Optional[List[Snapshot]], now: float,
                     max_age: Optional[float]) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    backups = listing.for_dataset(ds)
    chains = _Chains(backups)
    problems: List[Dict[str, Any]] = []
    entries = []
    newest = catalog.latest_backup(backups)
    newest_chain_ids = set()
    if newest is not None:
        chain = chains.own_chain(newest, intact_only=False) or [newest]
        newest_chain_ids = {b.backup_id for b in chain}
    for backup in backups:
        entry = _backup_entry(backup)
        entries.append(entry)
        label = "%s@%s" % (ds, entry["snapshot"])
        where = "backup %s of %s on %s" % (backup.backup_id, ds, provider)
        damage_severity = "critical" if backup.backup_id in newest_chain_ids else "warning"
        if backup.manifest is None:
            if backup.manifest_error:
                refused = backup.manifest_code in signing.CODES  # forged, replayed or unsigned: never trusted
                problems.append(problem(backup.manifest_code, "critical" if refused else "warning", ds, provider,
                                        backup.backup_id, backup.manifest_error if refused else
                                        "%s; back %s up again and delete the damaged backup directory." % (
                                            backup.manifest_error.rstrip("."), label)))
                continue
            written = last_modified(backup)
            age = round(now - written, 1) if written is not None else None
            if running_backup:
                problems.append(problem("incomplete_upload", "info", ds, provider, backup.backup_id,
                                        "The upload of %s to %s is running now (%d objects, %s so far)." % (
                                            label, provider, len(backup.objects), human_bytes(entry["listed_bytes"])),
                                        age_seconds=age, objects=len(backup.objects), bytes=entry["listed_bytes"],
                                        running=True))
            else:
                problems.append(problem("incomplete_upload", "warning", ds, provider, backup.backup_id,
                                        "The upload of %s to %s stopped before its manifest was written (%d objects, "
                                        "%s, last written %s ago); run the backup again to resume it, or prune it." % (
                                            label, provider, len(backup.objects), human_bytes(entry["listed_bytes"]),
                                            human_duration(age)),
                                        age_seconds=age, objects=len(backup.objects), bytes=entry["listed_bytes"],
                                        running=False))
            continue
        manifest = backup.manifest
        missing = backup.missing_objects()
        wrong = backup.size_mismatches()
        if missing:
            problems.append(problem("chunk_missing", damage_severity, ds, provider, backup.backup_id,
                                    "%d chunk object%s of %s %s missing (%s); back %s up again." % (
                                        len(missing), "s" if len(missing) > 1 else "", where,
                                        "are" if len(missing) > 1 else "is", ", ".join(missing[:5]), label),
                                    objects=missing[:_LIST_LIMIT], count=len(missing)))
        if wrong:
            sizes = {c.object: c.stored_bytes for c in manifest.chunks}
            problems.append(problem("size_mismatch", damage_severity, ds, provider, backup.backup_id,
                                    "%d chunk object%s of %s %s the wrong size (%s: %d bytes, the manifest says %d); "
                                    "back %s up again." % (
                                        len(wrong), "s" if len(wrong) > 1 else "", where,
                                        "have" if len(wrong) > 1 else "has", wrong[0], backup.objects[wrong[0]].size,
                                        sizes[wrong[0]], label),
                                    objects=wrong[:_LIST_LIMIT], count=len(wrong)))
        if manifest.kind == "incremental" and chains.any(manifest.base.guid) is None:
            problems.append(problem("broken_chain", damage_severity, ds, provider, backup.backup_id,
                                    "%s is incremental from %s, but %s holds no complete backup of that snapshot "
                                    "(guid %s): it cannot be restored; take a full backup." % (
                                        where[0].upper() + where[1:], manifest.base.name, provider,
                                        manifest.base.guid)))
        referenced = {c.object for c in manifest.chunks} | {catalog.MANIFEST, signing.SIGNATURE}
        extra = sorted(name for name in backup.objects if name not in referenced)
        if extra:
            problems.append(problem("orphan_object", "warning", ds, provider, backup.backup_id,
                                    "%d object%s in %s %s not referenced by its manifest (%s); delete %s." % (
                                        len(extra), "s" if len(extra) > 1 else "", where,
                                        "are" if len(extra) > 1 else "is", ", ".join(extra[:5]),
                                        "them" if len(extra) > 1 else "it"),
                                    objects=extra[:_LIST_LIMIT], count=len(extra),
                                    bytes=sum(backup.objects[n].size for n in extra)))
        if verify in ("digest", "decrypt") and store is not None:
            findings = verify_backup(store, namespace, backup, verify, keys)
            entry["verified"] = verify
            entry["verify_failures"] = len(findings)
            for finding in findings:
                problems.append(problem(finding["code"], damage_severity, ds, provider, backup.backup_id,
                                        finding["message"], chunk=finding["chunk"], object=finding["object"]))
        elif verify in ("none", "objects"):
            entry["verified"] = "listing"
    # Restorability and chain lengths (after verification: damage found by it counts).
    damaged = {p["backup"] for p in problems if p["code"] in DAMAGE_CODES}
    for backup, entry in zip(backups, entries):
        if not backup.complete:
            continue
        chain = chains.own_chain(backup, intact_only=True)
        if chain and not any(b.backup_id in damaged for b in chain):
            entry["restorable"] = True
            entry["chain_length"] = len(chain)
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
        "fresh": None if max_age is None else bool(latest and latest["age_seconds"] is not None
                                                   and latest["age_seconds"] <= max_age),
        "not_backed_up": None,
    }
    if local is not None:
        backed = {b.manifest.snapshot.guid for b in backups if b.complete}
        last = max([i for i, s in enumerate(local) if str(s.guid) in backed] or [-1])
        if last < 0 and latest is not None:  # the backed-up snapshots are gone locally: compare times
            pending = [s for s in local if s.creation > (latest["created_epoch"] or 0)]
        else:
            pending = [s for s in local[last + 1:] if str(s.guid) not in backed]
        report["not_backed_up"] = [s.name for s in pending]
        if pending:
            problems.append(problem("not_backed_up", "warning", ds, provider, None,
                                    "%d snapshot%s of %s %s not backed up to %s yet (newest: %s); run offsite_backup."
                                    % (len(pending), "s" if len(pending) > 1 else "", ds,
                                       "are" if len(pending) > 1 else "is", provider, pending[-1].name),
                                    snapshots=[s.name for s in pending][-_LIST_LIMIT:], count=len(pending)))
    return report, problems


# -- the operation ------------------------------------------------------------------------------
def _local_snapshots(zfs: Optional[Zfs], dataset: str) -> Tuple[Optional[bool], Optional[List[Snapshot]]]:
    """(exists, snapshots) of a local dataset; (None, None) when this host has no ZFS."""
    if zfs is None:
        return None, None
    try:
        return True, zfs.snapshots(dataset)
    except OffsiteError as exc:
        if exc.code == "no_dataset":
            return False, None
        if exc.code == "zfs_missing":
            return None, None
        raise


def _dataset_of(path: str, datasets: List[str]) -> Optional[str]:
    best = None
    for ds in datasets:
        if path.startswith(ds + "/") and (best is None or len(ds) > len(best)):
            best = ds
    return best


def run_status(config: Dict[str, Any], params: Optional[Dict[str, Any]] = None, keys: Any = None,
               zfs: Optional[Zfs] = None, stores: Optional[Dict[str, Store]] = None,
               now: Optional[float] = None) -> Dict[str, Any]:
    """Report backups, freshness, problems, health and running operations. Changes nothing.

    config: the parsed config file (policy format). params (all optional): datasets (list: limit the
    report), providers (name, list, all, or definitions), provider_env, namespace (report another
    host's backups), verify (none, objects, digest, decrypt), max_age (36h, 1d, ...), state_dir,
    rclone, spool_dir, compare_local (default: true when namespace is this host's own), config (path,
    for messages). keys: a restore.Keys for verify=decrypt.
    """
    params = dict(params or {})
    now = time.time() if now is None else now
    verify = params.get("verify") or "none"
    if verify not in LEVELS:
        raise OffsiteError("verify must be one of %s, not %r." % (", ".join(LEVELS), verify), "bad_value")
    if verify == "decrypt" and (keys is None or not (keys.identities or keys.passphrase)):
        raise OffsiteError("verify=decrypt needs a key: pass identity, identity_file or passphrase.", "no_keys")
    sample = params.get("sample")  # sampled verification over time (verify_sample.py)
    if sample not in (None, "") and verify not in ("digest", "decrypt"):
        raise OffsiteError("sample needs verify=digest or verify=decrypt.", "bad_value")
    per_backup_verify = "objects" if sample not in (None, "") else verify
    max_age_param = params.get("max_age")
    if max_age_param not in (None, ""):
        max_age_param = parse_duration(max_age_param, "max_age")
    limit = params.get("datasets")
    if isinstance(limit, str):
        limit = [limit]
    limit = [validate_dataset(d) for d in limit] if limit else None

    resolved: Dict[str, DatasetSettings] = {}

    def settings_for(dataset: str) -> DatasetSettings:
        if dataset not in resolved:
            resolved[dataset] = from_params(config, params, dataset)
        return resolved[dataset]

    host = settings_for(_HOST_SCOPE)
    namespace = host.namespace
    own_namespace = default_namespace(config, host.providers, host.state_dir, host.zfs)[0]
    compare_local = params.get("compare_local")
    if compare_local is None:
        compare_local = namespace == own_namespace
    provider_names = host.selected if params.get("providers") is not None else list(host.providers)
    work_dir = host.spool_dir if os.path.isdir(host.spool_dir) else None

    host_problems: List[Dict[str, Any]] = []
    listings: Dict[str, catalog.Listing] = {}
    store_for: Dict[str, Store] = {}
    for name in provider_names:
        store = (stores or {}).get(name) or Store(host.providers[name])
        store_for[name] = store
        try:
            listings[name] = catalog.list_backups(store, namespace, work_dir=work_dir, trust=host.trust)
        except OffsiteError as exc:
            host_problems.append(problem("provider_failed", "critical", None, name, None,
                                         "Provider %s could not be listed, so its backups are unknown: %s" % (
                                             name, exc.message)))

    # Configured datasets are this host's: they say nothing about another host's namespace.
    configured = configured_datasets(config) if compare_local or \
        namespace == own_namespace else []
    found: Dict[str, set] = {}
    for name, listing in listings.items():
        for ds in listing.datasets():
            try:
                validate_dataset(ds)
            except OffsiteError:
                for key, backup in list(listing.backups.items()):
                    if key[0] == ds:
                        listing.stray.extend(backup.objects.values())
                        del listing.backups[key]
                continue
            found.setdefault(ds, set()).add(name)
    recorded = ledger.datasets(host.state_dir, namespace, list(listings)) if compare_local else []
    names = limit if limit is not None else sorted(set(configured) | set(found) | set(recorded))

    running = running_operations(host.state_dir)
    running_backups = {(r.get("dataset"), name) for r in running if r.get("operation") == "backup"
                       for name in (list(r.get("providers") or {}) or [r.get("provider")])}  # a fan-out: each
    if zfs is None and compare_local:
        zfs = Zfs(host.zfs)

    datasets: Dict[str, Dict[str, Any]] = {}
    for ds in names:
        settings = settings_for(ds)
        ds_max_age = settings.max_age if max_age_param in (None, "") else max_age_param
        is_configured = ds in configured or limit is not None
        expected = [p for p in settings.selected if p in listings] if is_configured else []
        reporting = [p for p in provider_names if p in listings and (p in expected or p in found.get(ds, ()))]
        exists, local = _local_snapshots(zfs, ds) if compare_local else (None, None)
        ds_problems: List[Dict[str, Any]] = []
        per_provider: Dict[str, Dict[str, Any]] = {}
        for name in reporting:
            report, found_problems = _provider_report(
                ds, name, store_for.get(name), listings[name], namespace, per_backup_verify, keys,
                (ds, name) in running_backups, local, now, ds_max_age)
            per_provider[name] = report
            ds_problems.extend(found_problems)
            others = hostid.foreign(listings[name].for_dataset(ds), hostid.read(host.state_dir) or "")
            if others and namespace == own_namespace:  # this host's namespace, not one it was asked to report
                ds_problems.append(problem("foreign_host", "critical", ds, name, None, "%s on %s: %s." % (
                    ds, name, hostid.describe(namespace, others, hostid.read(host.state_dir) or ""))))
        ds_problems.extend(status_bases.status_problems(
            zfs, ds, local, {n: listings[n].for_dataset(ds) for n in reporting}, per_provider, host.state_dir,
            namespace, settings.hold_base))
        for name in listings if compare_local else ():  # this host's ledger: vanished or rolled-back backups
            for code, severity, backup_id, message in ledger.check(settings.state_dir, namespace, name, ds,
                                                                   listings[name].for_dataset(ds)):
                ds_problems.append(problem(code, severity, ds, name, backup_id, message))
        latests = [r["latest"] for r in per_provider.values() if r["latest"]]
        latest = max(latests, key=lambda item: (item["created_epoch"] or 0)) if latests else None
        fresh_somewhere = any(r["fresh"] for r in per_provider.values())
        for name in reporting:
            report = per_provider[name]
            if report["latest"] is None and (name in expected or report["backup_count"]):
                ds_problems.append(problem(
                    "no_backup", "warning" if latest else "critical", ds, name, None,
                    "%s has %s of %s; %s." % (
                        name, "backups but none that can be restored" if report["backup_count"] else "no backup",
                        ds, "another provider has one" if latest else "run offsite_backup for it")))
            elif report["fresh"] is False:
                ds_problems.append(problem(
                    "stale", "warning" if fresh_somewhere else "critical", ds, name, report["latest"]["backup_id"],
                    "The newest restorable backup of %s on %s is %s old (snapshot %s), older than max_age %s; "
                    "check that backups run." % (ds, name, human_duration(report["latest"]["age_seconds"]),
                                                 report["latest"]["snapshot"], human_duration(ds_max_age)),
                    age_seconds=report["latest"]["age_seconds"], max_age_seconds=ds_max_age))
        if not reporting and is_configured:
            ds_problems.append(problem("no_backup", "critical", ds, None, None,
                                       "No provider holds a backup of %s; run offsite_backup for it." % ds))
        datasets[ds] = {
            "dataset": ds, "configured": ds in configured, "local": exists, "max_age_seconds": ds_max_age,
            "providers": per_provider, "latest": latest,
            "age_seconds": latest["age_seconds"] if latest else None,
            "chain_length": latest["chain_length"] if latest else None,
            "stored_bytes": sum(r["stored_bytes"] for r in per_provider.values()),
            "backup_count": sum(r["backup_count"] for r in per_provider.values()),
            "not_backed_up": {n: r["not_backed_up"] for n, r in per_provider.items()} if local is not None else None,
            "problems": ds_problems, "health": health_of(ds_problems),
        }

    add_drills(host.state_dir, datasets, settings_for, now, problem, health_of)
    sampled = run_sampled(host.state_dir, sample, verify, listings, store_for, namespace, keys, datasets,
                          settings_for, now, problem, health_of) if per_backup_verify != verify else None

    if limit is None and compare_local:  # snapshots here, nothing offsite, not excluded (status_local.py)
        guids = [b.guid for listing in listings.values() for b in listing.backups.values() if b.complete]
        for ds, count in status_local.unprotected(zfs, config, datasets, set(configured) | set(found),
                                                  guids).items():
            datasets[ds] = status_local.entry(ds, problem(status_local.CODE, "warning", ds, None, None,
                                                          status_local.message(ds, count), snapshots=count))

    # Objects outside any backup directory.
    known = sorted(set(names) | set(found))
    for name, listing in listings.items():
        groups: Dict[Optional[str], List[Any]] = {}
        for obj in listing.stray:
            groups.setdefault(_dataset_of(obj.path, known), []).append(obj)
        for ds, objs in groups.items():
            if limit is not None and ds not in limit:
                continue
            paths = sorted(o.path for o in objs)
            entry = problem("orphan_object", "warning", ds, name, None,
                            "%d object%s below %s/%s on %s %s outside any backup directory (%s); delete %s." % (
                                len(paths), "s" if len(paths) > 1 else "", namespace, ds or "", name,
                                "are" if len(paths) > 1 else "is", ", ".join(paths[:5]),
                                "them" if len(paths) > 1 else "it"),
                            objects=paths[:_LIST_LIMIT], count=len(paths), bytes=sum(o.size for o in objs))
            if ds in datasets:
                datasets[ds]["problems"].append(entry)
                datasets[ds]["health"] = health_of(datasets[ds]["problems"])
            else:
                host_problems.append(entry)

    if limit is None and compare_local and not any(d["backup_count"] for d in datasets.values()):
        host_problems.append(problem("nothing_offsite", "critical", None, None, None,  # never "ok" with nothing
                                     "No provider holds any backup of this host (namespace %s): nothing of it is "
                                     "offsite; list its datasets in the policy and run offsite_backup." % namespace))
    all_problems = list(host_problems)
    for entry in datasets.values():
        all_problems.extend(entry["problems"])
    providers_summary = {}
    for name in provider_names:
        listing = listings.get(name)
        providers_summary[name] = {
            "listed": listing is not None,
            "stored_bytes": sum(o.size for b in listing.backups.values() for o in b.objects.values())
            + sum(o.size for o in listing.stray) if listing else None,
            "objects": sum(len(b.objects) for b in listing.backups.values()) + len(listing.stray) if listing else None,
            "backups": len(listing.backups) if listing else None,
        }
    health = worst([d["health"] for d in datasets.values()] + [health_of(host_problems)])
    counts: Dict[str, int] = {}
    for entry in all_problems:
        counts[entry["code"]] = counts.get(entry["code"], 0) + 1
    summary = {
        "datasets": len(datasets),
        "datasets_by_health": {h: sum(1 for d in datasets.values() if d["health"] == h) for h in HEALTH_RANK},
        "backups": sum(d["backup_count"] for d in datasets.values()),
        "stored_bytes": sum(p["stored_bytes"] or 0 for p in providers_summary.values()),
        "problems": len(all_problems),
        "problems_by_severity": {s: sum(1 for p in all_problems if p["severity"] == s) for s in SEVERITIES},
        "problems_by_code": counts,
        "running": len(running),
    }
    critical = [p for p in all_problems if p["severity"] == "critical"]
    warnings = [p for p in all_problems if p["severity"] == "warning"]
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
            namespace, len(datasets), summary["backups"], human_bytes(summary["stored_bytes"]))
    result = {
        "changed": False,
        "host": socket.gethostname(),
        "namespace": namespace,
        "verify": verify,
        "sampled": sampled,
        "generated": iso(now),
        "generated_epoch": round(now, 3),
        "health": health,
        "datasets": datasets,
        "providers": providers_summary,
        "problems": all_problems,
        "host_problems": host_problems,
        "running": running,
        "summary": summary,
        "msg": msg,
    }
    if params.get("legacy"):  # the old bash tool's backups below each provider's root (status_legacy.py)
        result["legacy"] = legacy_report({n: s for n, s in store_for.items() if n in listings}, names, keys,
                                         [namespace])
    return result
