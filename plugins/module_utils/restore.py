# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The restore operation: resolve the chain, then per chunk get -> check -> decrypt -> decompress -> receive.

A new target is received under a staging name (`<target>.offsite-partial`) and renamed
when the whole chain is in, so a failure never leaves a new or half-received dataset
under the target's name; the staging dataset is destroyed on failure (after kill -9 a
rerun continues from it).
"""

from __future__ import annotations

import io
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from ansible_collections.offsite.zfs.plugins.module_utils import _proc, catalog, lineage, locks
from ansible_collections.offsite.zfs.plugins.module_utils.chunks import chunk_mac, widen_pipe
from ansible_collections.offsite.zfs.plugins.module_utils.common import (
    OffsiteError,
    human_bytes,
    run_temp_dir,
    validate_dataset,
    validate_provider,
    validate_snapshot,
)
from ansible_collections.offsite.zfs.plugins.module_utils.decoder import ChunkDecoder
from ansible_collections.offsite.zfs.plugins.module_utils.errors import ZfsError
from ansible_collections.offsite.zfs.plugins.module_utils.fetcher import Prefetcher
from ansible_collections.offsite.zfs.plugins.module_utils.keys import Keys, load_keys  # noqa: F401 (re-exported)
from ansible_collections.offsite.zfs.plugins.module_utils.manifest import ChunkRecord
from ansible_collections.offsite.zfs.plugins.module_utils.policy import DatasetSettings
from ansible_collections.offsite.zfs.plugins.module_utils.progress import Progress
from ansible_collections.offsite.zfs.plugins.module_utils.signing import Trust
from ansible_collections.offsite.zfs.plugins.module_utils.sinks import HoldbackWriter
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import (
    MODIFIED,
    MOUNT_FAILED,
    NO_SPACE,
    PARTIAL_PROPERTY,
    Zfs,
)

STAGING_SUFFIX = ".offsite-partial"


# -- finding what to restore ------------------------------------------------------------------
@dataclass
class Source:
    store: Store
    chain: List[catalog.Backup]
    skipped: List[str] = field(default_factory=list)
    lineages: List[Dict[str, Any]] = field(default_factory=list)  # lineage.summary of the store's backups


def find_source(stores: List[Store], namespace: str, dataset: str, snapshot: Optional[str],
                work_dir: Optional[str], trust: Optional[Trust] = None) -> Source:
    """The first store (in the given order) holding a complete, intact chain for the snapshot."""
    reasons = []
    for store in stores:
        try:
            listing = catalog.list_backups(store, namespace, dataset, work_dir=work_dir, trust=trust)
        except OffsiteError as exc:
            reasons.append("%s: %s" % (store.name, exc.message))
            continue
        backups = listing.for_dataset(dataset)
        if snapshot is None:
            candidates = sorted([b for b in backups if b.complete], key=lambda b: (
                b.manifest.snapshot.creation, b.manifest.snapshot.createtxg), reverse=True)
        else:
            candidates = [b for b in backups if b.complete and b.manifest.snapshot.name == snapshot]
        if not candidates:
            damaged = [b.manifest_error.rstrip(".") for b in backups
                       if b.manifest_error and (snapshot is None or b.snapshot_name == snapshot)]
            reasons.append("%s has no complete backup of %s%s%s" % (
                store.name, dataset, "@" + snapshot if snapshot else "",
                " (%s%s)" % (damaged[0][:1].lower(), damaged[0][1:]) if damaged else ""))
            continue
        target = candidates[0]
        chain = catalog.resolve_chain(backups, target.manifest.snapshot.guid)
        if not chain:
            broken = catalog.resolve_chain(backups, target.manifest.snapshot.guid, intact_only=False)
            if broken:
                missing = [(b.backup_id, b.missing_objects() or b.size_mismatches()) for b in broken if not b.intact]
                reasons.append("%s holds the chain of %s@%s but backup %s is missing or has wrong-sized objects "
                               "(%s)" % (store.name, dataset, target.manifest.snapshot.name, missing[0][0],
                                         ", ".join(missing[0][1][:3])))
            else:
                reasons.append("%s has %s@%s but not the backups it is based on (broken chain)" % (
                    store.name, dataset, target.manifest.snapshot.name))
            continue
        return Source(store, chain, reasons, lineage.summary(backups))
    raise OffsiteError("No provider can restore %s%s: %s." % (
        dataset, "@" + snapshot if snapshot else "", "; ".join(reasons) or "no provider is selected"), "no_backup")


# -- moving bytes ------------------------------------------------------------------------------
class ReceiveSink(io.RawIOBase):
    """Decrypted bytes -> decompress -> MAC -> zfs receive's stdin."""

    def __init__(self, pipe: Any, decompressor: Any, mac: Any) -> None:
        super().__init__()
        self._pipe = pipe
        self._decompressor = decompressor
        self._mac = mac
        self.plain_bytes = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._decompressor.feed(data, self._emit)  # bounded pieces: a run of zeros is tiny compressed
        return len(data)

    def _emit(self, plain: bytes) -> None:
        self._mac.update(plain)
        self.plain_bytes += len(plain)
        view = memoryview(plain)
        while len(view):
            written = self._pipe.write(view)
            view = view[written:] if written is not None else view[len(view):]


def receive_backup(zfs: Zfs, store: Store, backup: catalog.Backup, keys: Keys, target: str, force: bool,
                   spool_dir: Optional[str], progress: Any, namespace: str) -> Dict[str, Any]:
    """Stream one backup (one link) into `zfs receive target`: decoder.py, every stage in its own process or thread.

    With spool_dir (spool: true) each chunk is downloaded ahead into it and its size and SHA-256 are checked
    before a byte of it is decrypted (fetcher.py); without, it streams straight from the provider and is
    checked at its end. Either way the tail of the stream is held back until its last chunk is checked, so
    that a chunk with a wrong size, SHA-256 or keyed digest makes ZFS discard the whole receive.
    """
    manifest = backup.manifest
    key = keys.backup_key(manifest)
    label = "%s@%s" % (manifest.dataset, manifest.snapshot.name)
    bdir = catalog.backup_dir(namespace, manifest.dataset, manifest.backup_id)
    decoder = ChunkDecoder(keys.chunk_identities(manifest), manifest.compression["algorithm"])
    proc = zfs.receive(target, force=force)  # a _proc.Child; check() raises zfs.receive_failure's ZfsError
    widen_pipe(proc.stdin)
    sink = HoldbackWriter(proc.stdin)
    tmp = run_temp_dir(spool_dir, "restore") if spool_dir else None
    fetcher = Prefetcher(store, bdir, manifest.chunks, tmp) if tmp else None
    ok = False
    done = 0
    try:
        for record in manifest.chunks:
            where = (record.index, record.object, label, store.name)
            mac = chunk_mac(key, manifest.backup_id, record.index)
            try:
                if fetcher is not None:
                    fetched = fetcher.next()
                    try:
                        _check_stored(record, fetched.stored_bytes, fetched.sha256, where)
                        decoded = decoder.decode_file(fetched.path, mac, sink)
                    finally:
                        os.unlink(fetched.path)
                else:
                    decoded = decoder.decode(store, bdir + "/" + record.object, record.stored_bytes, mac, sink)
                    _check_stored(record, decoded.stored_bytes, decoded.sha256, where)
            except (BrokenPipeError, ConnectionResetError):
                raise _receive_stopped(proc, target, label, record.index)
            if decoded.error:
                raise OffsiteError("Chunk %d (%s) of %s on %s failed age authentication or decompression (%s): it "
                                   "is damaged, or was not encrypted for this key." % (where + (decoded.error,)),
                                   "decrypt_failed")
            if decoded.plain_bytes != record.plain_bytes or mac.hexdigest() != record.plain_mac:
                raise OffsiteError("Chunk %d (%s) of %s on %s does not match its keyed digest: it belongs to another "
                                   "backup or position, or was altered; refusing to restore it." % where,
                                   "mac_mismatch")
            done += record.plain_bytes
            progress.chunk(record.index + 1, done)
        try:
            sink.flush()  # every chunk is checked: the end of the stream may go in
        except (BrokenPipeError, ConnectionResetError):
            pass  # zfs receive stopped: its exit status and message say why, below
        rc = proc.finish()
        if rc != 0:
            failure = proc.error()
            if not (MOUNT_FAILED in failure.kinds and zfs.exists("%s@%s" % (target, manifest.snapshot.name))):
                raise OffsiteError("zfs receive of %s into %s failed: %s%s" % (
                    label, target, _reason(failure), _receive_advice(failure, target)), "receive_failed")
            # Received, but the mountpoint it carries (send -p) is busy: the caller sets mountpoint and mounts.
        ok = True
    finally:
        if fetcher is not None:
            fetcher.close()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        if not ok:
            proc.abort()  # a truncated stream: ZFS discards it
        proc.close()
    return {"backup_id": manifest.backup_id, "snapshot": manifest.snapshot.name, "kind": manifest.kind,
            "chunks": len(manifest.chunks), "bytes": done}


def _check_stored(record: ChunkRecord, stored_bytes: int, sha256: str, where: tuple) -> None:
    """The stored object is what the manifest says (size, SHA-256), else one sentence."""
    if stored_bytes != record.stored_bytes:
        raise OffsiteError("Chunk %d (%s) of %s on %s is corrupt: its size is %d, the manifest says %d; restore from "
                           "another provider or an older snapshot." % (where + (stored_bytes, record.stored_bytes)),
                           "size_mismatch")
    if sha256 != record.stored_sha256:
        raise OffsiteError("Chunk %d (%s) of %s on %s is corrupt: its SHA-256 does not match the manifest; restore "
                           "from another provider or an older snapshot." % where, "digest_mismatch")


def _reason(failure: ZfsError) -> str:
    """zfs receive's own first line, with the hint force=true gives where the target changed."""
    reason = failure.reason or failure.message
    if failure.kind == MODIFIED:
        reason += " (pass force=true to roll back the changes made to it since its last snapshot)"
    return reason


def _receive_advice(failure: ZfsError, target: str) -> str:
    """What to do after a failed receive, ending the sentence."""
    if NO_SPACE in failure.kinds:
        pool = target.split("/", 1)[0]
        return "; free space in pool %s or raise the quota above %s, then run the restore again." % (pool, target)
    return "." if not _reason(failure).rstrip().endswith(".") else ""


def _receive_stopped(proc: Any, target: str, label: str, index: int) -> OffsiteError:
    """zfs receive stopped reading while a chunk was written: why, in one sentence."""
    try:
        proc.wait(timeout=30)
    except _proc.TimeoutExpired:
        return OffsiteError("zfs receive into %s stopped while chunk %d of %s was being written: it did not exit." % (
            target, index, label), "receive_failed")
    failure = proc.error()
    return OffsiteError("zfs receive into %s stopped while chunk %d of %s was being written: %s%s" % (
        target, index, label, _reason(failure), _receive_advice(failure, target)), "receive_failed")


def apply_properties(zfs: Zfs, name: str, properties: Dict[str, Optional[str]]) -> None:
    """Set each property (or inherit it when the value is None) on name."""
    for key, value in properties.items():
        if value is None:
            zfs.inherit_property(name, key)
        else:
            zfs.set_property(name, key, value)


def receive_staged(zfs: Zfs, target: str, receive_into: str, links: List[Any],
                   receive_one: Callable[[int, Any], Dict[str, Any]],
                   properties: Optional[Dict[str, Optional[str]]] = None) -> List[Dict[str, Any]]:
    """Receive every link with receive_one(position, link) into receive_into, then finish the staging.

    When receive_into is the staging name, it is marked after the first link, renamed to target when
    every link is in, and destroyed (if it is ours) on any failure, so nothing half-received remains.
    """
    staging = target + STAGING_SUFFIX
    received = []
    try:
        for position, link in enumerate(links):
            received.append(receive_one(position, link))
            if properties:
                apply_properties(zfs, receive_into, properties)
            if receive_into == staging and position == 0:
                zfs.set_property(staging, PARTIAL_PROPERTY, target)
        if receive_into == staging:
            zfs.inherit_property(staging, PARTIAL_PROPERTY)
            zfs.rename(staging, target)
    except BaseException:
        if receive_into == staging and zfs.exists(staging):
            try:
                if zfs.get(staging, PARTIAL_PROPERTY) in (target, "-", ""):
                    zfs.destroy(staging, recursive=True)
            except OffsiteError:
                pass
        raise
    return received


# -- the operation --------------------------------------------------------------------------------
def run_restore(settings: DatasetSettings, snapshot: Optional[str] = None, target: Optional[str] = None,
                provider: str = "auto", keys: Optional[Keys] = None, force: bool = False, check_mode: bool = False,
                zfs: Optional[Zfs] = None, stores: Optional[Dict[str, Store]] = None,
                properties: Optional[Dict[str, Optional[str]]] = None) -> Dict[str, Any]:
    """properties: set (value) or inherit (None) on the target after every received link (mountpoint overrides)."""
    zfs = zfs or Zfs(settings.zfs)
    dataset = settings.dataset
    if snapshot is not None:
        validate_snapshot(snapshot)
    target = validate_dataset(target or dataset)
    if len(target) + len(STAGING_SUFFIX) > 255:
        raise OffsiteError("The target name %s is too long to stage a restore under." % target, "bad_name")
    keys = keys or Keys()
    if provider not in (None, "auto"):
        validate_provider(provider)  # a hostile name is refused as such, never echoed into another message
    names = list(settings.providers) if provider in (None, "auto") else [provider]
    if provider not in (None, "auto") and provider not in settings.providers:
        raise OffsiteError("The provider %s is not configured; configured providers: %s." % (
            provider, ", ".join(sorted(settings.providers)) or "none"), "unknown_provider")
    if not names:
        raise OffsiteError("No provider is configured: define providers in the config file or pass providers.",
                           "no_provider")
    store_list = [(stores or {}).get(n) or Store(settings.providers[n]) for n in names]
    lock = None
    if not check_mode:
        lock = locks.acquire(settings.state_dir, "restore", target, "restore to %s" % target,
                             {"dataset": dataset, "target": target})
    try:
        return _restore_locked(settings, zfs, store_list, snapshot, target, keys, force, check_mode, properties)
    finally:
        if lock is not None:
            lock.release()


def _restore_locked(settings: DatasetSettings, zfs: Zfs, store_list: List[Store], snapshot: Optional[str],
                    target: str, keys: Keys, force: bool, check_mode: bool,
                    properties: Optional[Dict[str, Optional[str]]] = None) -> Dict[str, Any]:
    dataset = settings.dataset
    work_dir = settings.spool_dir if os.path.isdir(settings.spool_dir) else None
    source = find_source(store_list, settings.namespace, dataset, snapshot, work_dir, settings.trust)
    chain = source.chain
    final = chain[-1].manifest
    result: Dict[str, Any] = {
        "changed": False, "dataset": dataset, "target": target, "namespace": settings.namespace,
        "provider": source.store.name, "snapshot": final.snapshot.name, "guid": final.snapshot.guid,
        "chain": [b.backup_id for b in chain], "skipped_providers": source.skipped,
        "lineage": lineage.label(lineage.lineage_of(chain[-1])), "lineages": source.lineages,
    }
    staging = target + STAGING_SUFFIX
    target_exists = zfs.exists(target)
    receive_into = target
    start = 0
    use_force = False
    if target_exists:
        held = {str(s.guid): s for s in zfs.snapshots(target)}
        if final.snapshot.guid in held:
            result["msg"] = "%s already holds %s (guid %s); nothing to restore." % (
                target, final.snapshot.name, final.snapshot.guid)
            result["received"] = []
            return result
        local = zfs.snapshots(target)
        common = [i for i, b in enumerate(chain) if b.manifest.snapshot.guid in held]
        if common:
            start = common[-1] + 1
            latest_local = local[-1] if local else None
            if latest_local is None or str(latest_local.guid) != chain[start - 1].manifest.snapshot.guid:
                if not force:
                    raise OffsiteError("The target %s has snapshots newer than %s that the backup chain does not "
                                       "hold; restore to another target or pass force=true to roll them back."
                                       % (target, chain[start - 1].manifest.snapshot.name), "target_diverged")
                use_force = True
        else:
            if not force:
                raise OffsiteError("The target %s exists and holds none of the snapshots of this backup chain; "
                                   "restore to another target, or pass force=true to overwrite it." % target,
                                   "target_exists")
            use_force = True
    else:
        parent = target.rpartition("/")[0]
        if parent and not zfs.exists(parent):
            raise OffsiteError("The parent %s of the target %s does not exist; create it first." % (parent, target),
                               "no_parent")
        if not parent:
            raise OffsiteError("The target %s is a pool name; restore into a dataset inside a pool." % target,
                               "bad_target")
        receive_into = staging
        if zfs.exists(staging):
            if zfs.get(staging, PARTIAL_PROPERTY) == target:
                held = {str(s.guid) for s in zfs.snapshots(staging)}
                common = [i for i, b in enumerate(chain) if b.manifest.snapshot.guid in held]
                start = common[-1] + 1 if common else 0
                result["resumed_from_staging"] = True
                if not common and not check_mode:
                    zfs.destroy(staging, recursive=True)
            else:
                raise OffsiteError("A dataset named %s exists and was not made by an offsite restore; rename or "
                                   "destroy it." % staging, "target_exists")
    todo = chain[start:]
    result["plan"] = [{"backup_id": b.backup_id, "snapshot": b.manifest.snapshot.name, "kind": b.manifest.kind,
                       "chunks": len(b.manifest.chunks), "bytes": b.manifest.plain_bytes} for b in todo]
    result["estimated_bytes"] = sum(b.manifest.plain_bytes for b in todo)
    result["changed"] = True
    if check_mode:
        result["msg"] = "would restore %s@%s from %s into %s: %d backups, %s" % (
            dataset, final.snapshot.name, source.store.name, target, len(todo), human_bytes(result["estimated_bytes"]))
        return result
    # Open every key and check every manifest before a single byte reaches ZFS.
    for backup in todo:
        keys.backup_key(backup.manifest)
    progress = Progress(settings.log_dir, settings.state_dir, "restore", target)
    result["log_file"] = progress.log_path
    outcome = "failed"
    started = time.time()

    def receive_one(position: int, backup: catalog.Backup) -> Dict[str, Any]:
        progress.phase(source.store.name, len(backup.manifest.chunks), backup.manifest.plain_bytes)
        progress.log("receiving %s from %s into %s" % (backup.backup_id, source.store.name, receive_into))
        return receive_backup(zfs, source.store, backup, keys, receive_into, use_force and position == 0,
                              settings.spool_dir if settings.spool else None, progress, settings.namespace)

    try:
        received = receive_staged(zfs, target, receive_into, todo, receive_one, properties)
        outcome = "finished"
    finally:
        progress.close(outcome)
    seconds = max(time.time() - started, 1e-3)
    total = sum(r["bytes"] for r in received)
    result.update(received=received, bytes=total, seconds=round(seconds, 3),
                  rate_bytes_per_second=int(total / seconds),
                  msg="restored %s@%s from %s into %s: %d backups, %s" % (
                      dataset, final.snapshot.name, source.store.name, target, len(received), human_bytes(total))
                  + lineage.note(result["lineage"], source.lineages))
    return result
