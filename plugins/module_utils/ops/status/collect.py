# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What offsite_status reads: every piece of I/O of a status run, and nothing it decides.

Private to the collection: not an API for other collections.

Per provider, ONE `rclone lsjson -R` of the namespace and ONE `rclone copy` of its manifests
(catalog.list_backups); the datasets found there, in the config file and in this host's ledger;
the operations running now (progress state files and held locks); a dataset's local snapshots;
at verify levels `digest` and `decrypt`, the findings of the chunk verifier that run.py was given
(ops/verify, injected: status does not import it). Nothing is changed. The rules over all this are
health.py's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils import catalog, hostid, ledger, locks, progress
from ansible_collections.offsite.zfs.plugins.module_utils.common import validate_dataset
from ansible_collections.offsite.zfs.plugins.module_utils.config import configured as configured_datasets
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.ops.status.report import iso, running_message
from ansible_collections.offsite.zfs.plugins.module_utils.resolve import default_namespace
from ansible_collections.offsite.zfs.plugins.module_utils.settings import DatasetSettings
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import Snapshot, Zfs

# verify_backup(store, namespace, backup, level, keys) -> findings ({code, message, chunk, object})
VerifyBackup = Callable[[Store, str, catalog.Backup, str, Any], List[Dict[str, Any]]]


@dataclass
class Seen:
    """What a status run read once for the whole host."""

    namespace: str
    own_namespace: str  # this host's own namespace (the report may be of another host's)
    compare_local: bool
    state_dir: str
    provider_names: List[str]
    listings: Dict[str, catalog.Listing]  # the providers that could be listed
    store_for: Dict[str, Store]
    failed: Dict[str, str]  # provider -> why it could not be listed
    found: Dict[str, Set[str]]  # dataset -> the providers holding backups of it
    configured: List[str]  # the config file's datasets, when they are this namespace's
    recorded: List[str]  # the datasets this host's ledger knows
    running: List[Dict[str, Any]]
    running_backups: Set[Tuple[Any, Any]]  # (dataset, provider) of the backups running now
    zfs: Optional[Zfs]
    host_id: str  # this host's id ("" before its first backup)


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
        entry["message"] = running_message(entry)
    return found


def list_providers(host: DatasetSettings, names: Sequence[str], stores: Optional[Dict[str, Store]]
                   ) -> Tuple[Dict[str, catalog.Listing], Dict[str, Store], Dict[str, str]]:
    """(listings, stores, provider -> why it could not be listed) of the namespace on these providers."""
    work_dir = host.spool_dir if os.path.isdir(host.spool_dir) else None
    listings: Dict[str, catalog.Listing] = {}
    store_for: Dict[str, Store] = {}
    failed: Dict[str, str] = {}
    for name in names:
        store = (stores or {}).get(name) or Store(host.providers[name])
        store_for[name] = store
        try:
            listings[name] = catalog.list_backups(store, host.namespace, work_dir=work_dir, trust=host.trust)
        except OffsiteError as exc:
            failed[name] = exc.message
    return listings, store_for, failed


def datasets_found(listings: Dict[str, catalog.Listing]) -> Dict[str, Set[str]]:
    """dataset -> providers with backups of it. A directory that is no dataset name goes to the strays."""
    found: Dict[str, Set[str]] = {}
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
    return found


def gather(config: Dict[str, Any], host: DatasetSettings, selected_only: bool, compare_local: Optional[bool],
           stores: Optional[Dict[str, Store]], zfs: Optional[Zfs]) -> Seen:
    """Everything host-wide: namespaces, listings, the datasets to report, running operations, zfs.

    selected_only: the `providers` parameter was given (else every configured provider is listed);
    compare_local: None for the default (true when the namespace is this host's own).
    """
    namespace = host.namespace
    own_namespace = default_namespace(config, host.providers, host.state_dir, host.zfs)[0]
    if compare_local is None:
        compare_local = namespace == own_namespace
    provider_names = host.selected if selected_only else list(host.providers)
    listings, store_for, failed = list_providers(host, provider_names, stores)
    # Configured datasets are this host's: they say nothing about another host's namespace.
    configured = configured_datasets(config) if compare_local or namespace == own_namespace else []
    found = datasets_found(listings)
    recorded = ledger.datasets(host.state_dir, namespace, list(listings)) if compare_local else []
    running = running_operations(host.state_dir)
    running_backups = {(r.get("dataset"), name) for r in running if r.get("operation") == "backup"
                       for name in (list(r.get("providers") or {}) or [r.get("provider")])}  # a fan-out: each
    if zfs is None and compare_local:
        zfs = Zfs(host.zfs)
    return Seen(namespace=namespace, own_namespace=own_namespace, compare_local=compare_local,
                state_dir=host.state_dir, provider_names=provider_names, listings=listings, store_for=store_for,
                failed=failed, found=found, configured=configured, recorded=recorded, running=running,
                running_backups=running_backups, zfs=zfs, host_id=hostid.read(host.state_dir) or "")


def local_snapshots(zfs: Optional[Zfs], dataset: str) -> Tuple[Optional[bool], Optional[List[Snapshot]]]:
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


def verify_findings(verify_backup: Optional[VerifyBackup], store: Optional[Store], namespace: str,
                    backups: Sequence[catalog.Backup], level: str, keys: Any) -> Dict[str, List[Dict[str, Any]]]:
    """backup id -> the chunk verifier's findings, for every backup with a manifest (levels digest, decrypt)."""
    if level not in ("digest", "decrypt") or store is None or verify_backup is None:
        return {}
    return {b.backup_id: verify_backup(store, namespace, b, level, keys) for b in backups if b.manifest is not None}
