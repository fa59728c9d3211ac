# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup operation: zfs send -> chunks -> MAC -> compress -> age -> SHA-256 -> store.

Plain functions over settings; returns a result dict. Importable without Ansible.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import quote

from ansible_collections.offsite.zfs.plugins.module_utils import attempts as upload_attempts
from ansible_collections.offsite.zfs.plugins.module_utils import (
    catalog,
    codec,
    holds,
    hostid,
    ledger,
    lineage,
    locks,
    signing,
    status_bases,
)
from ansible_collections.offsite.zfs.plugins.module_utils.chunks import (
    ChunkSource,
    HashingWriter,
    StreamReader,
    chunk_mac,
    digest_only,
)
from ansible_collections.offsite.zfs.plugins.module_utils.common import (
    TOOL_VERSION,
    OffsiteError,
    human_bytes,
    private_dir,
    run_temp_dir,
    validate_snapshot,
    write_private_file,
)
from ansible_collections.offsite.zfs.plugins.module_utils.manifest import ChunkRecord, Manifest, SnapshotRef
from ansible_collections.offsite.zfs.plugins.module_utils.policy import DatasetSettings
from ansible_collections.offsite.zfs.plugins.module_utils.progress import Progress
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store, StoreError, last_error
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import (
    CREATED_BY_PROPERTY,
    SendPlan,
    Snapshot,
    Zfs,
)


class StreamChanged(Exception):
    """The re-read stream differs from what the interrupted run uploaded."""

    def __init__(self, index: int) -> None:
        super().__init__("chunk %d differs" % index)
        self.index = index


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


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


# -- the resume journal ---------------------------------------------------------------------
def journal_path(settings: DatasetSettings, provider: str, backup_id: str) -> str:
    name = quote("%s/%s/%s" % (settings.namespace, settings.dataset, backup_id), safe="") + ".json"
    return os.path.join(settings.state_dir, "journal", provider, name)


def load_journal(path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path, "r", encoding="utf-8") as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def save_journal(path: str, journal: Dict[str, Any]) -> None:
    write_private_file(path, json.dumps(journal, sort_keys=True).encode("utf-8"))


# -- one provider -----------------------------------------------------------------------------
class ProviderRun:
    """One backup of one snapshot to one provider."""

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

    def run(self) -> Dict[str, Any]:
        settings = self.settings
        name = self.store.name
        lock = None
        if not self.check_mode:
            lock = locks.acquire(settings.state_dir, "backup", "%s@%s" % (settings.dataset, name),
                                 "backup of %s to %s" % (settings.dataset, name),
                                 {"dataset": settings.dataset, "provider": name})
            self.store.pass_fds = (lock.fd,)  # uploads hold the lock too, even after kill -9 of this process
        try:
            listing = catalog.list_backups(self.store, settings.namespace, settings.dataset,
                                           work_dir=settings.spool_dir if os.path.isdir(settings.spool_dir) else None,
                                           trust=settings.trust)
            backups = listing.for_dataset(settings.dataset)
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
                self._keep_base()
                return self.result
            base = None if self.full else choose_base(self.local, self.snapshot, backups)
            if base is None and not self.full:  # the snapshot is gone: a bookmark of it still links by guid
                base = holds.bookmark_base(self.zfs, self.snapshot, backups)
            # A bookmark of a backed-up snapshot ties this dataset to its backups as a snapshot does.
            known = list(self.local) + ([base] if base is not None and base not in self.local else [])
            self.lineage = lineage.for_backup(settings.dataset, name, settings.namespace, known, backups,
                                              bool((settings.policy or {}).get("new_lineage")),
                                              origin=self.zfs.origin(settings.dataset))
            self.result["lineage"] = lineage.label(self.lineage)
            backup_id = catalog.make_backup_id(self.snapshot.name, self.snapshot.guid, base.name if base else None)
            plan = self.zfs.send_plan(self.snapshot, base, settings.send_options)
            estimate, method = self.zfs.estimate(plan)
            est_chunks = max(1, int(math.ceil(estimate / float(settings.chunk_size))))
            self.result.update(backup_id=backup_id, kind="incremental" if base else "full",
                               base=base.name if base else None, base_guid=str(base.guid) if base else None,
                               send_flags=plan.flags, estimated_bytes=estimate, estimate_method=method,
                               estimated_chunks=est_chunks, base_kind=status_bases.kind_of(base))
            if self.check_mode:
                self.result.update(status_bases.backup_plan_notes(self.zfs, self.snapshot, base, self.local,
                                                                  backups, self.full, name))
                self.result.update(status="planned", changed=True, message="would upload %s %s backup of %s@%s%s to %s "
                                   "(about %s in ~%d chunks)" % (
                                       "an" if base else "a", self.result["kind"], settings.dataset,
                                       self.snapshot.name,
                                       " from %s" % base.name if base else "", name, human_bytes(estimate),
                                       est_chunks) + self.result.get("base_note", ""))
                return self.result
            self._upload(backup_id, plan, base, estimate, method, est_chunks, backups)
            self._keep_base()
            return self.result
        finally:
            if lock is not None:
                self.store.pass_fds = ()
                lock.release()

    def _keep_base(self) -> None:
        """Hold (and bookmark) what was just backed up, the base of the next incremental (holds.py)."""
        if not self.check_mode and (self.settings.policy or {}).get("hold_base", True):
            kept = holds.keep_base_safely(self.zfs, self.settings.state_dir, self.settings.namespace,
                                          self.store.name, self.snapshot, self.local)
            self.result["base_hold"] = kept
            if kept.get("error"):
                self.result["message"] = "%s; warning: %s" % (self.result.get("message", ""), kept["error"])

    # -- the upload, with resume --------------------------------------------------------
    def _new_journal(self, backup_id: str, plan: SendPlan, encryption: codec.Encryption) -> Dict[str, Any]:
        return {
            "backup_id": backup_id,
            "key": secrets.token_hex(32),
            "chunk_size": self.settings.chunk_size,
            "compression": {"algorithm": self.settings.compression, "level": self.settings.compression_level},
            "send_flags": plan.flags,
            "encryption": {"kind": encryption.kind, "recipients": sorted(encryption.recipient_strings)
                           if encryption.kind == "recipients" else [],
                           "wrapped_identity": encryption.wrapped_identity},
            "started": _now(),
            "chunks": {},
        }

    def _compatible(self, journal: Dict[str, Any], fresh: Dict[str, Any]) -> bool:
        keys = ("backup_id", "chunk_size", "compression", "send_flags")
        if any(journal.get(k) != fresh.get(k) for k in keys):
            return False
        old, new = journal.get("encryption") or {}, fresh.get("encryption") or {}
        if old.get("kind") != new.get("kind"):
            return False
        if new.get("kind") == "recipients" and old.get("recipients") != new.get("recipients"):
            return False
        return isinstance(journal.get("chunks"), dict) and isinstance(journal.get("key"), str)

    def _upload(self, backup_id: str, plan: SendPlan, base: Optional[Snapshot], estimate: int, method: str,
                est_chunks: int, backups: List[catalog.Backup]) -> None:
        settings = self.settings
        jpath = journal_path(settings, self.store.name, backup_id)
        journal = load_journal(jpath)
        encryption = codec.encryption_for_backup(
            settings.recipients, settings.passphrase,
            (journal or {}).get("encryption", {}).get("wrapped_identity") if journal else None)
        fresh = self._new_journal(backup_id, plan, encryption)
        notes = []
        bdir = catalog.backup_dir(settings.namespace, settings.dataset, backup_id)
        existing = next((b for b in backups if b.backup_id == backup_id), None)
        append_only = self.store.provider.append_only
        if append_only and existing is not None:
            upload_attempts.check_writable(self.store.name, bdir, existing.objects)
        if journal is None or not self._compatible(journal, fresh):
            if journal is not None:
                notes.append("settings changed since the interrupted upload, so it starts over")
            elif existing is not None and existing.objects:
                notes.append("found %d objects of an earlier upload with no local journal, so it starts over"
                             % len(existing.objects))
            if existing is not None and existing.objects and append_only:
                notes.append(upload_attempts.KEPT_NOTE)
            elif existing is not None and existing.objects:
                self.store.purge(bdir)
                existing = None
            journal = fresh
            save_journal(jpath, journal)
        remote = dict(existing.objects) if existing is not None else {}
        attempts = 0
        restarted = False
        while True:
            try:
                manifest_chunks, resumed = self._stream(backup_id, plan, journal, jpath, remote, encryption,
                                                        est_chunks, estimate)
                break
            except StreamChanged as exc:
                if restarted:
                    raise OffsiteError("The zfs send stream of %s@%s changed again while uploading to %s; the "
                                       "stream is not deterministic on this host." % (
                                           settings.dataset, self.snapshot.name, self.store.name), "stream_changed")
                restarted = True
                notes.append("the stream differs from the interrupted upload at chunk %d, so the backup started "
                             "over" % exc.index)
                self.progress.log("stream differs from the interrupted upload at chunk %d; starting over" % exc.index)
                if append_only:
                    remote = {o.path: o for o in self.store.list(bdir, max_depth=1)}
                else:
                    self.store.purge(bdir)
                    remote = {}
                journal = self._new_journal(backup_id, plan, encryption)
                save_journal(jpath, journal)
            except StoreError as exc:
                attempts += 1
                if settings.spool or attempts > self.store.provider.retries:
                    raise
                # Streaming mode cannot replay a chunk: re-read the stream and resume after a backoff.
                delay = min(60.0, self.store.provider.retry_delay * (2 ** (attempts - 1)))
                self.progress.log("upload failed (%s); resuming in %.1fs" % (exc.message, delay))
                self.store.retry_log.append("stream upload failed (%s); resumed" % exc.message)
                self.store.sleep(delay)
                remote = {o.path: o for o in self.store.list(bdir, max_depth=1)}
        key = bytes.fromhex(journal["key"])
        manifest = Manifest(
            backup_id=backup_id,
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
                        "sealed_key": codec.seal(key, encryption.recipients)},
            chunk_size=settings.chunk_size,
            lineage=getattr(self, "lineage", ""),
            host_id=getattr(self, "host_id", ""),
            chunks=manifest_chunks,
            estimate={"bytes": estimate, "method": method},
            host=socket.gethostname(),
            tool_version=TOOL_VERSION,
            started=journal.get("started", ""),
            finished=_now(),
        )
        manifest.seal_with(key)
        listed = self._check_uploaded(bdir, manifest_chunks)
        if append_only:  # the signature and the manifest are written once each
            upload_attempts.check_writable(self.store.name, bdir, listed)
        manifest_bytes = manifest.to_json()
        signature = signing.sign_checked(settings.trust, settings.namespace, settings.dataset, backup_id,
                                         manifest_bytes)
        if signature is not None:  # before the manifest: its presence means complete
            self.store.put_bytes(bdir + "/" + signing.SIGNATURE, signature)
        self.store.put_bytes(bdir + "/" + catalog.MANIFEST, manifest_bytes)
        ledger.record(settings.state_dir, settings.namespace, self.store.name, settings.dataset, backup_id,
                      hashlib.sha256(manifest_bytes).hexdigest(), backups)
        try:
            os.unlink(jpath)
        except OSError:
            pass
        status = "resumed" if resumed else "uploaded"
        msg = "uploaded %s %s backup of %s@%s%s to %s: %d chunks, %s stored" % (
            "an" if manifest.kind == "incremental" else "a", manifest.kind, settings.dataset, self.snapshot.name,
            " from %s" % base.name if base else "", self.store.name, len(manifest_chunks),
            human_bytes(manifest.stored_bytes))
        if resumed:
            msg += " (%d chunks reused from the interrupted run)" % resumed
        if notes:
            msg += "; " + "; ".join(notes)
        self.result.update(status=status, changed=True, signed=signature is not None, chunks=len(manifest_chunks),
                           chunks_resumed=resumed,
                           bytes_plain=manifest.plain_bytes, bytes_stored=manifest.stored_bytes,
                           restarted=restarted, notes=notes, message=msg)

    def _check_uploaded(self, bdir: str, records: List[ChunkRecord]) -> Dict[str, int]:
        listed = {o.path: o.size for o in self.store.list(bdir, max_depth=1)}
        for record in records:
            if listed.get(record.object) != record.stored_bytes:
                raise OffsiteError("Chunk %s of %s@%s is not on %s with the size that was uploaded (%s listed, %d "
                                   "expected); run the backup again." % (
                                       record.object, self.settings.dataset, self.snapshot.name, self.store.name,
                                       listed.get(record.object), record.stored_bytes), "upload_incomplete")
        return listed

    def _stream(self, backup_id: str, plan: SendPlan, journal: Dict[str, Any], jpath: str,
                remote: Dict[str, Any], encryption: codec.Encryption, est_chunks: int,
                estimate: int) -> Tuple[List[ChunkRecord], int]:
        settings = self.settings
        key = bytes.fromhex(journal["key"])
        bdir = catalog.backup_dir(settings.namespace, settings.dataset, backup_id)
        suffix = codec.SUFFIX[settings.compression]
        if self.store.provider.append_only:  # each pass writes names no earlier pass used
            journal["attempt"] = upload_attempts.next_attempt(journal, remote)
            save_journal(jpath, journal)
        self.progress.phase(self.store.name, est_chunks, estimate)
        proc = self.zfs.send(plan)
        stream = StreamReader(proc.stdout)
        stderr_box: List[bytes] = []
        err_thread = threading.Thread(target=lambda: stderr_box.append(proc.stderr.read()), daemon=True)
        err_thread.start()
        records: Dict[int, ChunkRecord] = {}
        resumed = 0
        lock = threading.Lock()
        parallel = self.store.provider.parallel_uploads if settings.spool else 1
        pool = ThreadPoolExecutor(max_workers=parallel) if settings.spool else None
        in_flight: List[Tuple[int, Future]] = []
        spool_dir = None
        if settings.spool:
            private_dir(settings.spool_dir)
            spool_dir = run_temp_dir(settings.spool_dir, "backup")
        done_bytes = 0
        ok = False

        def record_done(record: ChunkRecord) -> None:
            with lock:
                records[record.index] = record
                journal["chunks"][str(record.index)] = asdict(record)
                save_journal(jpath, journal)

        def upload_file(record: ChunkRecord, path: str) -> None:
            try:
                self.store.put_file(bdir + "/" + record.object, path)
            finally:
                try:
                    os.unlink(path)
                except OSError:
                    pass
            record_done(record)

        def wait_oldest() -> None:
            _index, future = in_flight.pop(0)
            future.result()

        try:
            index = 0
            while not stream.at_eof():
                mac = chunk_mac(key, backup_id, index)
                prior = journal["chunks"].get(str(index))
                obj = remote.get(prior["object"]) if prior else None
                if prior and obj is not None and obj.size == prior["stored_bytes"]:
                    count = digest_only(stream, settings.chunk_size, mac)
                    if count != prior["plain_bytes"] or mac.hexdigest() != prior["plain_mac"]:
                        raise StreamChanged(index)
                    records[index] = ChunkRecord(**prior)
                    resumed += 1
                    done_bytes += count
                    self.progress.chunk(index + 1, done_bytes, "already uploaded")
                    index += 1
                    continue
                object_name = upload_attempts.chunk_object(index, suffix, int(journal.get("attempt", 1)))
                source = ChunkSource(stream, settings.chunk_size,
                                     codec.compressor(settings.compression, settings.compression_level,
                                                      settings.compression_threads), mac)
                if settings.spool:
                    while len(in_flight) >= parallel:
                        wait_oldest()
                    path = os.path.join(spool_dir, object_name)
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                    try:
                        with os.fdopen(fd, "wb", buffering=1 << 20) as handle:
                            writer = HashingWriter(handle)
                            codec.encrypt_stream(source, writer, encryption.recipients)
                    except OSError as exc:
                        raise OffsiteError("Could not write chunk %d of %s@%s to the spool directory %s: %s; free "
                                           "space there or set spool_dir elsewhere." % (
                                               index, settings.dataset, self.snapshot.name, settings.spool_dir,
                                               exc.strerror), "spool_failed")
                    record = ChunkRecord(index, object_name, source.plain_bytes, mac.hexdigest(), writer.count,
                                         writer.sha256.hexdigest())
                    in_flight.append((index, pool.submit(upload_file, record, path)))
                else:
                    child = self.store.open_put_stream(bdir + "/" + object_name)
                    writer = HashingWriter(child.stdin)
                    try:
                        codec.encrypt_stream(source, writer, encryption.recipients)
                        child.stdin.close()
                    except (BrokenPipeError, OSError, Exception) as exc:
                        child.kill()
                        child.wait()
                        if isinstance(exc, (BrokenPipeError, OSError)):
                            raise StoreError("Provider %s could not upload %s: the upload stream broke." % (
                                self.store.name, object_name), "provider_failed")
                        raise
                    err = child.stderr.read()
                    if child.wait() != 0:
                        raise StoreError("Provider %s could not upload %s: %s" % (
                            self.store.name, object_name, last_error(err)), "provider_failed")
                    record = ChunkRecord(index, object_name, source.plain_bytes, mac.hexdigest(), writer.count,
                                         writer.sha256.hexdigest())
                    record_done(record)
                done_bytes += source.plain_bytes
                self.progress.chunk(index + 1, done_bytes)
                index += 1
            while in_flight:
                wait_oldest()
            rc = proc.wait()
            err_thread.join()
            if rc != 0:
                message = (stderr_box[0] if stderr_box else b"").decode("utf-8", "replace").strip().splitlines()
                raise OffsiteError("zfs send of %s@%s failed: %s" % (
                    settings.dataset, self.snapshot.name, message[0] if message else "exit %d" % rc), "zfs_failed")
            ok = True
        finally:
            if not ok:
                try:
                    proc.kill()
                except OSError:
                    pass
                stream.close()
                for _index, future in in_flight:
                    try:
                        future.result()
                    except Exception:
                        pass
                proc.wait()
            if pool is not None:
                pool.shutdown(wait=True)
            if spool_dir:
                for leftover in os.listdir(spool_dir):
                    try:
                        os.unlink(os.path.join(spool_dir, leftover))
                    except OSError:
                        pass
                os.rmdir(spool_dir)
        ordered = [records[i] for i in sorted(records)]
        if [r.index for r in ordered] != list(range(len(ordered))):
            raise OffsiteError("Internal error: chunks of %s are not contiguous." % backup_id, "internal")
        return ordered, resumed


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
        for name in settings.selected:
            store = (stores or {}).get(name) or Store(settings.providers[name])
            store.log = progress.log  # retries say in the log what they wait for
            progress.log("provider %s: backing up %s@%s" % (name, settings.dataset, snap.name))
            run = ProviderRun(settings, store, zfs, progress, snap, local, full, check_mode, dataset_type)
            started = time.time()
            try:
                entry = run.run()
            except OffsiteError as exc:
                entry = dict(run.result)
                entry.update(status="failed", changed=False, message="%s@%s to %s failed: %s" % (
                    settings.dataset, snap.name, name, exc.message), error_code=exc.code)
                if exc.code == "locked":
                    entry["message"] = exc.message
                result["failed_providers"].append(name)
            except Exception as exc:  # one provider's surprise must not stop the others
                entry = dict(run.result)
                entry.update(status="failed", changed=False, error_code="internal",
                             message="%s@%s to %s failed unexpectedly: %s: %s" % (
                                 settings.dataset, snap.name, name, type(exc).__name__, exc))
                result["failed_providers"].append(name)
            entry["seconds"] = round(time.time() - started, 3)
            if entry.get("bytes_plain") and entry.get("status") in ("uploaded", "resumed"):
                entry["rate_bytes_per_second"] = int(entry["bytes_plain"] / max(entry["seconds"], 1e-3))
            if store.retry_log:
                entry["retries"] = list(store.retry_log)
            progress.log("provider %s: %s" % (name, entry.get("message", entry.get("status"))))
            result["providers"][name] = entry
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


class _NullProgress:
    log_path = None

    def log(self, message: str) -> None:
        pass

    def phase(self, *args: Any) -> None:
        pass

    def chunk(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self, outcome: str) -> None:
        pass
