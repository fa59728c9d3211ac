# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup operation: zfs send -> chunks -> MAC -> compress -> age -> SHA-256 -> every provider.

`run_backup`: per provider a plan.ProviderRun decides (lock, listing, present?, base, plan); the
providers that upload share one zfs send and one compression and encryption pass per chunk
(journal.group_targets groups them, upload.upload_group moves the chunks); then manifest.finish
writes each provider's manifest. Here: the order of those steps, one provider's failure kept from
the others, and the result dict with one entry per provider. Plain functions over settings;
importable without Ansible.

Private to the collection: not an API for other collections.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional

from ansible_collections.offsite.zfs.plugins.module_utils import codec, signing
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.journal import Target, group_targets
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.manifest import finish
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.plan import ProviderRun, resolve_snapshot
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.upload import upload_group
from ansible_collections.offsite.zfs.plugins.module_utils.progress import Progress
from ansible_collections.offsite.zfs.plugins.module_utils.settings import DatasetSettings
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import Snapshot, Zfs


def upload(runs: List[ProviderRun], zfs: Zfs, progress: Any, settings: DatasetSettings) -> int:
    """Upload for every prepared run, one zfs send per group that shares a stream. Returns the sends."""
    sealed: Dict[str, str] = {}
    groups = group_targets(runs, settings)
    if len(groups) > 1:
        progress.log("%d streams: %s" % (len(groups), "; ".join(
            "%s (%s)" % (", ".join(t.name for t in group), group[0].run.backup_id) for group in groups)))

    def on_done(target: Target, finished: str) -> None:
        finish(target.run, target, finished, sealed)
    return sum(upload_group(group, zfs, progress, on_done) for group in groups)


# -- the operation ------------------------------------------------------------------------------
def run_backup(settings: DatasetSettings, snapshot: Optional[str] = None, create: bool = False, full: bool = False,
               check_mode: bool = False, zfs: Optional[Zfs] = None,
               stores: Optional[Dict[str, Store]] = None) -> Dict[str, Any]:
    """Back up one snapshot of one dataset to every selected provider. Returns the result dict."""
    zfs = zfs or Zfs(settings.zfs)
    if not check_mode:
        codec.encryption_for_backup(settings.recipients, settings.passphrase)  # fail early on bad keys
        signing.sign_checked(settings.trust, settings.namespace, settings.dataset, "preflight", b"")
    elif settings.recipients:
        codec.parse_recipients(settings.recipients)
    snap, created, local = resolve_snapshot(zfs, settings, snapshot, create, check_mode)
    dataset_type = zfs.dataset_type(settings.dataset)
    result: Dict[str, Any] = {
        "changed": False, "dataset": settings.dataset, "namespace": settings.namespace,
        "snapshot": snap.name if snap else snapshot, "guid": str(snap.guid) if snap else None,
        "snapshot_created": created, "providers": {}, "failed_providers": [],
        "chunk_size": settings.chunk_size, "compression": settings.compression,
        "spool_bound_bytes": settings.spool_bound,
    }
    if snap is None:  # check mode, snapshot to be created
        result["changed"] = True
        for name in settings.selected:
            result["providers"][name] = {"provider": name, "status": "planned", "kind": "unknown",
                                         "message": "would create %s@%s and back it up to %s" % (
                                             settings.dataset, snapshot, name)}
        result["msg"] = "would create %s@%s and back it up to %s" % (
            settings.dataset, snapshot, ", ".join(settings.selected))
        return result
    progress = None
    if not check_mode:
        progress = Progress(settings.log_dir, settings.state_dir, "backup", settings.dataset)
        result["log_file"] = progress.log_path
    else:
        progress = _NullProgress()
    outcome = "failed"
    try:
        runs = []
        for name in settings.selected:
            store = (stores or {}).get(name) or Store(settings.providers[name])
            store.log = progress.log  # retries say in the log what they wait for
            progress.log("provider %s: backing up %s@%s" % (name, settings.dataset, snap.name))
            run = ProviderRun(settings, store, zfs, progress, snap, local, full, check_mode, dataset_type)
            runs.append(run)
            try:
                if run.prepare():
                    continue  # uploaded below, with the others that need it
            except Exception as exc:  # one provider's failure must not stop the others
                run.error = _as_offsite(exc)
            run.seconds = round(time.time() - run.started, 3)
            run.release()
        uploading = [r for r in runs if r.error is None and r.result.get("status") == "pending"]
        try:
            if uploading:
                result["zfs_sends"] = upload(uploading, zfs, progress, settings)
        except Exception as exc:
            for run in uploading:
                run.error = run.error or _as_offsite(exc)
        finally:
            for run in uploading:
                run.release()
        for run in runs:
            entry = _entry(run, settings, snap)
            progress.log("provider %s: %s" % (run.store.name, entry.get("message", entry.get("status"))))
            result["providers"][run.store.name] = entry
            if entry["status"] in ("failed", "deferred"):
                result["failed_providers"].append(run.store.name)
            if entry.get("changed"):
                result["changed"] = True
        outcome = "failed" if result["failed_providers"] else "finished"
    finally:
        progress.close(outcome)
    result["changed"] = result["changed"] or created
    parts = ["%s: %s" % (n, e.get("status")) for n, e in result["providers"].items()]
    result["msg"] = "%s@%s -> %s" % (settings.dataset, snap.name, ", ".join(parts))
    if result["failed_providers"]:
        result["msg"] = "; ".join(result["providers"][n]["message"] for n in result["failed_providers"])
    return result


def _as_offsite(exc: Exception) -> OffsiteError:
    if isinstance(exc, OffsiteError):
        return exc
    return OffsiteError("an unexpected %s: %s" % (type(exc).__name__, exc), "internal")


def _entry(run: ProviderRun, settings: DatasetSettings, snap: Snapshot) -> Dict[str, Any]:
    """The provider's result entry: its result, or its failure (deferred: dropped past the spool bound)."""
    name = run.store.name
    entry = dict(run.result)
    exc = run.error
    if exc is not None:
        status = "deferred" if exc.code == "provider_deferred" else "failed"
        entry.update(status=status, changed=False, error_code=exc.code,
                     message="%s@%s to %s %s: %s" % (settings.dataset, snap.name, name, status, exc.message))
        if exc.code == "locked":
            entry["message"] = exc.message
        elif exc.code == "internal":
            entry["message"] = "%s@%s to %s failed unexpectedly: %s" % (
                settings.dataset, snap.name, name, exc.message)
    entry["seconds"] = run.seconds if run.seconds is not None else round(time.time() - run.started, 3)
    if entry.get("bytes_plain") and entry.get("status") in ("uploaded", "resumed"):
        entry["rate_bytes_per_second"] = int(entry["bytes_plain"] / max(entry["seconds"], 1e-3))
    if run.store.retry_log:
        entry["retries"] = list(run.store.retry_log)
    return entry


class _NullProgress:
    log_path = None

    def log(self, message: str) -> None:
        pass

    def phase(self, *args: Any) -> None:
        pass

    def chunk(self, *args: Any, **kwargs: Any) -> None:
        pass

    def provider_chunk(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self, outcome: str) -> None:
        pass
