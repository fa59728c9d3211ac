# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup operation: zfs send -> chunks -> MAC -> compress -> age -> SHA-256 -> every provider.

Per provider a ProviderRun decides (lock, listing, present?, base, plan); the providers that upload
share one zfs send and one compression and encryption pass per chunk (upload_journal.py groups them,
fanout.py moves the chunks); then each writes its own manifest. Plain functions over settings;
returns a result dict. Importable without Ansible.
"""

from __future__ import annotations

import hashlib
import math
import os
import socket
import time
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils import attempts as upload_attempts
from ansible_collections.offsite.zfs.plugins.module_utils import (
    catalog,
    codec,
    fanout,
    holds,
    hostid,
    ledger,
    lineage,
    locks,
    signing,
    status_bases,
    upload_journal,
)
from ansible_collections.offsite.zfs.plugins.module_utils.common import (
    TOOL_VERSION,
    OffsiteError,
    human_bytes,
    validate_snapshot,
)
from ansible_collections.offsite.zfs.plugins.module_utils.manifest import ChunkRecord, Manifest, SnapshotRef
from ansible_collections.offsite.zfs.plugins.module_utils.policy import DatasetSettings
from ansible_collections.offsite.zfs.plugins.module_utils.progress import Progress
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import CREATED_BY_PROPERTY, Snapshot, Zfs


# -- choosing what to send ----------------------------------------------------------------
def choose_base(local: List[Snapshot], target: Snapshot, backups: List[catalog.Backup]) -> Optional[Snapshot]:
    """Newest local snapshot older than target, same guid, with a complete restorable chain on the provider."""
    for snap in reversed(local):
        if snap.createtxg >= target.createtxg:
            continue
        if catalog.resolve_chain(backups, str(snap.guid)):
            return snap
    return None


def already_present(backups: List[catalog.Backup], target: Snapshot, full: bool) -> Optional[catalog.Backup]:
    for backup in backups:
        if backup.complete and backup.manifest.snapshot.guid == str(target.guid):
            if not full or backup.manifest.kind == "full":
                if catalog.resolve_chain(backups, str(target.guid)):
                    return backup
    return None


# -- one provider -----------------------------------------------------------------------------
class ProviderRun:
    """One backup of one snapshot to one provider: the decisions, then (after the shared upload) the manifest."""

    def __init__(self, settings: DatasetSettings, store: Store, zfs: Zfs, progress: Progress,
                 snapshot: Snapshot, local: List[Snapshot], full: bool, check_mode: bool,
                 dataset_type: str = "filesystem") -> None:
        self.settings = settings
        self.store = store
        self.zfs = zfs
        self.progress = progress
        self.snapshot = snapshot
        self.local = local
        self.full = full
        self.check_mode = check_mode
        self.dataset_type = dataset_type
        self.result: Dict[str, Any] = {"provider": store.name, "status": "pending"}
        self.error: Optional[OffsiteError] = None  # set by the shared upload (fanout.py)
        self.lock: Optional[locks.Lock] = None
        self.started = time.time()
        self.seconds: Optional[float] = None
        self.backup_id = ""
        self.backups: List[catalog.Backup] = []

    def run(self) -> Dict[str, Any]:
        """This provider alone: prepare, upload, finish (the fan-out does the same for several)."""
        try:
            if self.prepare():
                upload([self], self.zfs, self.progress, self.settings)
                if self.error is not None:
                    raise self.error
            return self.result
        finally:
            self.release()

    def release(self) -> None:
        if self.lock is not None:
            self.store.pass_fds = ()
            self.lock.release()
            self.lock = None

    def prepare(self) -> bool:
        """Lock, list, decide. True when chunks must be uploaded; else the result is final (present, planned)."""
        settings = self.settings
        name = self.store.name
        if not self.check_mode:
            self.lock = locks.acquire(settings.state_dir, "backup", "%s@%s" % (settings.dataset, name),
                                      "backup of %s to %s" % (settings.dataset, name),
                                      {"dataset": settings.dataset, "provider": name})
            self.store.pass_fds = (self.lock.fd,)  # uploads hold the lock too, even after kill -9 of this process
        listing = catalog.list_backups(self.store, settings.namespace, settings.dataset,
                                       work_dir=settings.spool_dir if os.path.isdir(settings.spool_dir) else None,
                                       trust=settings.trust)
        backups = self.backups = listing.for_dataset(settings.dataset)
        self.host_id = hostid.get(settings.state_dir, create=not self.check_mode)
        others = hostid.foreign(backups, self.host_id)
        if others:
            raise OffsiteError("Backup of %s to %s refused: %s." % (
                settings.dataset, name, hostid.describe(settings.namespace, others, self.host_id)), "foreign_host")
        present = already_present(backups, self.snapshot, self.full)
        if present is not None:
            self.result.update(status="present", changed=False, backup_id=present.backup_id,
                               kind=present.manifest.kind,
                               base=present.manifest.base.name if present.manifest.base else None,
                               chunks=len(present.manifest.chunks), bytes_plain=present.manifest.plain_bytes,
                               bytes_stored=present.manifest.stored_bytes,
                               message="%s@%s is already backed up to %s." % (
                                   settings.dataset, self.snapshot.name, name))
            self.keep_base()
            return False
        base = None if self.full else choose_base(self.local, self.snapshot, backups)
        if base is None and not self.full:  # the snapshot is gone: a bookmark of it still links by guid
            base = holds.bookmark_base(self.zfs, self.snapshot, backups)
        # A bookmark of a backed-up snapshot ties this dataset to its backups as a snapshot does.
        known = list(self.local) + ([base] if base is not None and base not in self.local else [])
        self.lineage = lineage.for_backup(settings.dataset, name, settings.namespace, known, backups,
                                          settings.new_lineage,
                                          origin=self.zfs.origin(settings.dataset))
        self.result["lineage"] = lineage.label(self.lineage)
        self.base = base
        self.backup_id = catalog.make_backup_id(self.snapshot.name, self.snapshot.guid, base.name if base else None)
        self.plan = self.zfs.send_plan(self.snapshot, base, settings.send_options)
        self.estimate, self.method = self.zfs.estimate(self.plan)
        self.est_chunks = max(1, int(math.ceil(self.estimate / float(settings.chunk_size))))
        self.result.update(backup_id=self.backup_id, kind="incremental" if base else "full",
                           base=base.name if base else None, base_guid=str(base.guid) if base else None,
                           send_flags=self.plan.flags, estimated_bytes=self.estimate, estimate_method=self.method,
                           estimated_chunks=self.est_chunks, base_kind=status_bases.kind_of(base))
        if self.check_mode:
            self.result.update(status_bases.backup_plan_notes(self.zfs, self.snapshot, base, self.local,
                                                              backups, self.full, name))
            self.result.update(status="planned", changed=True, message="would upload %s %s backup of %s@%s%s to %s "
                               "(about %s in ~%d chunks)" % (
                                   "an" if base else "a", self.result["kind"], settings.dataset,
                                   self.snapshot.name,
                                   " from %s" % base.name if base else "", name, human_bytes(self.estimate),
                                   self.est_chunks) + self.result.get("base_note", ""))
            return False
        return True

    def keep_base(self) -> None:
        """Hold (and bookmark) what was just backed up, the base of the next incremental (holds.py)."""
        if not self.check_mode and self.settings.hold_base:
            kept = holds.keep_base_safely(self.zfs, self.settings.state_dir, self.settings.namespace,
                                          self.store.name, self.snapshot, self.local)
            self.result["base_hold"] = kept
            if kept.get("error"):
                self.result["message"] = "%s; warning: %s" % (self.result.get("message", ""), kept["error"])

    # -- after the chunks: the manifest ----------------------------------------------------------
    def finish(self, target: upload_journal.Target, finished: str, sealed: Dict[str, str]) -> None:
        """Check the listing, write signature and manifest, record, forget the journal, hold the base.

        `sealed` caches the age-sealed MAC key per key, so providers sharing a pass get one manifest.
        """
        settings, base, plan = self.settings, self.base, self.plan
        bdir, journal, encryption = target.bdir, target.journal, target.encryption
        manifest_chunks = target.ordered()
        if journal["key"] not in sealed:
            sealed[journal["key"]] = codec.seal(bytes.fromhex(journal["key"]), encryption.recipients)
        key = bytes.fromhex(journal["key"])
        manifest = Manifest(
            backup_id=self.backup_id,
            namespace=settings.namespace,
            dataset=settings.dataset,
            dataset_type=self.dataset_type,
            snapshot=SnapshotRef(self.snapshot.name, str(self.snapshot.guid), self.snapshot.createtxg,
                                 self.snapshot.creation),
            kind="incremental" if base else "full",
            base=SnapshotRef(base.name, str(base.guid), base.createtxg, base.creation) if base else None,
            **holds.manifest_base_fields(base),
            send_flags=list(plan.flags),
            compression={"algorithm": settings.compression, "level": settings.compression_level},
            encryption={"kind": encryption.kind,
                        "recipients": encryption.recipient_strings if encryption.kind == "recipients" else [],
                        "wrapped_identity": encryption.wrapped_identity,
                        "sealed_key": sealed[journal["key"]]},
            chunk_size=settings.chunk_size,
            lineage=getattr(self, "lineage", ""),
            host_id=getattr(self, "host_id", ""),
            chunks=manifest_chunks,
            estimate={"bytes": self.estimate, "method": self.method},
            host=socket.gethostname(),
            tool_version=TOOL_VERSION,
            started=journal.get("started", ""),
            finished=finished,
        )
        manifest.seal_with(key)
        listed = self._check_uploaded(bdir, manifest_chunks)
        if target.append_only:  # the signature and the manifest are written once each
            upload_attempts.check_writable(self.store.name, bdir, listed)
        manifest_bytes = manifest.to_json()
        signature = signing.sign_checked(settings.trust, settings.namespace, settings.dataset, self.backup_id,
                                         manifest_bytes)
        if signature is not None:  # before the manifest: its presence means complete
            self.store.put_bytes(bdir + "/" + signing.SIGNATURE, signature)
        self.store.put_bytes(bdir + "/" + catalog.MANIFEST, manifest_bytes)
        ledger.record(settings.state_dir, settings.namespace, self.store.name, settings.dataset, self.backup_id,
                      hashlib.sha256(manifest_bytes).hexdigest(), self.backups)
        try:
            os.unlink(target.jpath)
        except OSError:
            pass
        resumed = target.resumed
        msg = "uploaded %s %s backup of %s@%s%s to %s: %d chunks, %s stored" % (
            "an" if manifest.kind == "incremental" else "a", manifest.kind, settings.dataset, self.snapshot.name,
            " from %s" % base.name if base else "", self.store.name, len(manifest_chunks),
            human_bytes(manifest.stored_bytes))
        if resumed:
            msg += " (%d chunks reused from the interrupted run)" % resumed
        if target.notes:
            msg += "; " + "; ".join(target.notes)
        self.result.update(status="resumed" if resumed else "uploaded", changed=True, signed=signature is not None,
                           chunks=len(manifest_chunks), chunks_resumed=resumed,
                           bytes_plain=manifest.plain_bytes, bytes_stored=manifest.stored_bytes,
                           manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(),
                           restarted=target.restarted, notes=target.notes, message=msg)
        self.seconds = round(time.time() - self.started, 3)
        self.keep_base()

    def _check_uploaded(self, bdir: str, records: List[ChunkRecord]) -> Dict[str, int]:
        listed = {o.path: o.size for o in self.store.list(bdir, max_depth=1)}
        for record in records:
            if listed.get(record.object) != record.stored_bytes:
                raise OffsiteError("Chunk %s of %s@%s is not on %s with the size that was uploaded (%s listed, %d "
                                   "expected); run the backup again." % (
                                       record.object, self.settings.dataset, self.snapshot.name, self.store.name,
                                       listed.get(record.object), record.stored_bytes), "upload_incomplete")
        return listed


def upload(runs: List[ProviderRun], zfs: Zfs, progress: Any, settings: DatasetSettings) -> int:
    """Upload for every prepared run, one zfs send per group that shares a stream. Returns the sends."""
    sealed: Dict[str, str] = {}
    groups = upload_journal.group_targets(runs, settings)
    if len(groups) > 1:
        progress.log("%d streams: %s" % (len(groups), "; ".join(
            "%s (%s)" % (", ".join(t.name for t in group), group[0].run.backup_id) for group in groups)))

    def finish(target: upload_journal.Target, finished: str) -> None:
        target.run.finish(target, finished, sealed)
    return sum(fanout.upload_group(group, zfs, progress, finish) for group in groups)


# -- the operation ------------------------------------------------------------------------------
def resolve_snapshot(zfs: Zfs, settings: DatasetSettings, snapshot: Optional[str], create: bool,
                     check_mode: bool, recursive: bool = False) -> Tuple[Optional[Snapshot], bool, List[Snapshot]]:
    """The snapshot to back up (creating it when asked), whether it was created, and the local snapshots."""
    dataset = settings.dataset
    if snapshot is not None:
        validate_snapshot(snapshot)  # before any zfs command runs
    local = zfs.snapshots(dataset)
    if snapshot is None:
        if create:
            raise OffsiteError("create needs a snapshot name (snapshot=NAME or dataset=%s@NAME)." % dataset,
                               "bad_value")
        if not local:
            raise OffsiteError("The dataset %s has no snapshot; pass snapshot=NAME create=true to take one."
                               % dataset, "no_snapshot")
        return local[-1], False, local
    validate_snapshot(snapshot)
    for snap in local:
        if snap.name == snapshot:
            return snap, False, local
    if not create:
        raise OffsiteError("The snapshot %s@%s does not exist on this host; pass create=true to take it."
                           % (dataset, snapshot), "no_snapshot")
    if check_mode:
        return None, True, local
    zfs.create_snapshot(dataset, snapshot, recursive=recursive, properties={CREATED_BY_PROPERTY: "true"})
    local = zfs.snapshots(dataset)
    return next(s for s in local if s.name == snapshot), True, local


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
