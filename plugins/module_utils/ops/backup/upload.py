# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fan-out: one `zfs send`, one MAC, compression and encryption pass per chunk, every provider at once.

A pass reads the stream once for a group of providers (journal.group_targets). For each
chunk it computes the keyed digest; a provider whose journal already holds the chunk checks it; the
others get the chunk encrypted once, either as one spool file uploaded by each provider's own pool
(spool.Spool, which also drops a provider that falls past the spool bound) or, with
`spool: false`, streamed into one `rclone rcat` per provider. A provider that fails, is dropped or
finds a changed stream leaves the pass; the others go on. `upload_group` then restarts, retries
(streaming: a new pass for those providers alone) or reports them.

Private to the collection: not an API for other collections.
"""

from __future__ import annotations

import io
import os
from typing import Any, Callable, Dict, List, Optional

from ansible_collections.offsite.zfs.plugins.module_utils import rclone_errors
from ansible_collections.offsite.zfs.plugins.module_utils.chunks import StreamReader, chunk_mac, digest_only
from ansible_collections.offsite.zfs.plugins.module_utils.common import private_dir, run_temp_dir
from ansible_collections.offsite.zfs.plugins.module_utils.encoder import ChunkEncoder, Encoded
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.manifest import ChunkRecord
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.journal import (
    ACTIVE,
    CHANGED,
    DONE,
    DROPPED,
    FAILED,
    Target,
    now,
)
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.spool import Spool
from ansible_collections.offsite.zfs.plugins.module_utils.store import StoreError


class _Tee(io.RawIOBase):
    """Writes each piece to every provider's upload pipe; a pipe that breaks is left out from then on."""

    def __init__(self, sinks: Dict[str, Any]) -> None:
        super().__init__()
        self.sinks = dict(sinks)
        self.broken: Dict[str, str] = {}

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        for name, sink in list(self.sinks.items()):
            try:
                sink.write(data)
            except OSError as exc:
                self.broken[name] = exc.strerror or type(exc).__name__
                del self.sinks[name]
        return len(data)


def _stream_chunk(need: List[Target], index: int, encoder: ChunkEncoder, stream: StreamReader, limit: int,
                  mac: Any) -> Encoded:
    """Encode one chunk straight into one `rclone rcat` per provider; failures are marked on the target."""
    children = {}
    for target in need:
        obj = target.object_name(index)
        try:
            children[target.name] = (target, obj, target.store.open_put_stream(target.bdir + "/" + obj))
        except OffsiteError as exc:
            target.state, target.error = FAILED, exc
    tee = _Tee({name: child.stdin for name, (_t, _o, child) in children.items()})
    try:
        encoded = encoder.encode(stream, limit, mac, tee)
    except BaseException:
        for _target, _obj, child in children.values():
            child.close()  # kill and reap
        raise
    for name, (target, obj, child) in children.items():
        rc = child.finish()  # close its input: the end of the object
        if rc != 0:
            target.state, target.error = FAILED, child.error()
        elif name in tee.broken:
            target.state, target.error = FAILED, StoreError("Provider %s could not upload %s: the upload stream "
                                                            "broke (%s)." % (target.name, obj, tee.broken[name]),
                                                            "provider_failed")
        child.close()
    return encoded


class Pass:
    """One read of the stream for a group of targets that share the MAC key and the encryption."""

    def __init__(self, targets: List[Target], zfs: Any, progress: Any,
                 on_upload: Callable[[Target, ChunkRecord], None], on_done: Callable[[Target, str], None]) -> None:
        self.targets = targets
        self.zfs = zfs
        self.progress = progress
        self.on_upload = on_upload
        self.on_done = on_done  # a provider has every chunk: write its manifest (before slower ones end)
        first = targets[0].run
        self.settings = first.settings
        self.backup_id = first.backup_id
        self.plan = first.plan
        self.snapshot = first.snapshot
        self.key = bytes.fromhex(targets[0].journal["key"])
        self.encryption = targets[0].encryption
        self.encoder = ChunkEncoder(self.settings.compression, self.settings.compression_level,
                                    self.settings.compression_threads, self.encryption)

    def run(self) -> None:
        """Every target ends DONE, FAILED, CHANGED or DROPPED; a failure of the send itself raises."""
        settings = self.settings
        for target in self.targets:
            target.begin_pass()
        proc = self.zfs.send(self.plan)  # a _proc.Child: check() raises `zfs send of ... failed: ...`
        stream = StreamReader(proc.stdout)
        spool: Optional[Spool] = None
        spool_dir = None
        if settings.spool:
            private_dir(settings.spool_dir)
            spool_dir = run_temp_dir(settings.spool_dir, "backup")
            spool = Spool(spool_dir, self.targets, settings.chunk_size, self.on_upload, self.progress.log)
        ok = False
        done_bytes = 0
        index = 0
        try:
            while not stream.at_eof():
                live = [t for t in self.targets if t.state == ACTIVE]
                if not live:
                    break  # nobody needs the rest of the stream
                done_bytes += self._chunk(index, stream, live, spool, spool_dir)
                self.progress.chunk(index + 1, done_bytes)
                index += 1
            finished = stream.at_eof()
            if spool is not None:
                spool.drain()  # the providers still in the pass; a dropped one's running uploads may go on
            if finished:
                proc.check()
                stamp = now()  # one stamp: the providers done in this pass get the same manifest
                for target in self.targets:
                    if target.state == ACTIVE:
                        target.state = DONE
                for target in self.targets:
                    if target.state == DONE:
                        self.on_done(target, stamp)
            ok = finished
        finally:
            if spool is not None:
                if not ok:
                    spool.abort()
                spool.close()
            if not ok:
                proc.kill()
                stream.close()  # the reader thread ends: the child's output is gone
            proc.close()

    def _chunk(self, index: int, stream: StreamReader, live: List[Target], spool: Optional[Spool],
               spool_dir: Optional[str]) -> int:
        settings = self.settings
        mac = chunk_mac(self.key, self.backup_id, index)
        held = {t.name: t.held(index) for t in live}
        need = [t for t in live if held[t.name] is None]
        if need and spool is not None:
            need = spool.room(need)
        encoded: Optional[Encoded] = None
        if not need:
            count = digest_only(stream, settings.chunk_size, mac)
        else:
            if spool is not None:
                path = os.path.join(spool_dir, "chunk-%06d" % index)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                try:
                    with os.fdopen(fd, "wb", buffering=1 << 20) as handle:
                        encoded = self.encoder.encode(stream, settings.chunk_size, mac, handle)
                except OSError as exc:
                    raise OffsiteError("Could not write chunk %d of %s@%s to the spool directory %s: %s; free "
                                       "space there or set spool_dir elsewhere." % (
                                           index, settings.dataset, self.snapshot.name, settings.spool_dir,
                                           exc.strerror), "spool_failed")
            else:
                encoded = _stream_chunk(need, index, self.encoder, stream, settings.chunk_size, mac)
            count = encoded.plain_bytes
        digest = mac.hexdigest()
        for target in live:
            prior = held[target.name]
            if prior is None or target.state != ACTIVE:
                continue
            if count != prior["plain_bytes"] or digest != prior["plain_mac"]:
                target.state, target.changed_at = CHANGED, index
                self.progress.log("provider %s: the stream differs from the interrupted upload at chunk %d"
                                  % (target.name, index))
                continue
            target.records[index] = ChunkRecord(**prior)
            target.resumed += 1
            self.progress.provider_chunk(target.name, index + 1, prior["plain_bytes"], "already uploaded")
        if encoded is None:
            return count
        assignments = [(t, ChunkRecord(index, t.object_name(index), count, digest, encoded.stored_bytes,
                                       encoded.sha256)) for t in need]
        if spool is not None:
            spool.add(path, assignments)
        else:
            for target, record in assignments:
                if target.state == ACTIVE:
                    target.record(record)
                    self.on_upload(target, record)
        return count


def upload_group(group: List[Target], zfs: Any, progress: Any, finish: Callable[[Target, str], None]) -> int:
    """Passes over the stream until every target is finished (finish called) or has run.error set.

    Returns the number of passes (zfs sends)."""
    active = list(group)
    settings = group[0].run.settings

    def on_upload(target: Target, record: ChunkRecord) -> None:
        with target.lock:
            target.uploaded += 1
            target.uploaded_bytes += record.plain_bytes
        progress.provider_chunk(target.name, record.index + 1, record.plain_bytes)

    def on_done(target: Target, stamp: str) -> None:
        try:
            finish(target, stamp)
        except OffsiteError as exc:
            target.run.error = exc
        except Exception as exc:  # one provider's surprise must not stop the others
            target.run.error = OffsiteError("the upload failed unexpectedly: %s: %s" % (
                type(exc).__name__, exc), "internal")

    passes = 0
    while active:
        passes += 1
        for target in active:
            progress.phase(target.name, target.run.est_chunks, target.run.estimate)
        try:
            Pass(active, zfs, progress, on_upload, on_done).run()
        except Exception as exc:  # the shared pass failed (zfs send, spool): its providers fail, not the run
            if not isinstance(exc, OffsiteError):
                exc = OffsiteError("the upload failed unexpectedly: %s: %s" % (type(exc).__name__, exc), "internal")
            for target in active:
                if target.state != DONE:
                    target.run.error = exc
            return passes
        again = []
        for target in active:
            try:
                if target.state == DONE:
                    continue  # finished in the pass (on_done)
                if target.state == CHANGED:
                    if target.restarted:
                        raise OffsiteError("The zfs send stream of %s@%s changed again while uploading to %s; the "
                                           "stream is not deterministic on this host." % (
                                               settings.dataset, target.run.snapshot.name, target.name),
                                           "stream_changed")
                    target.restart()
                    again.append(target)
                elif target.state == DROPPED:
                    target.run.error = target.error
                elif _retry_stream(target, settings, progress):
                    again.append(target)
                else:
                    target.run.error = target.error
            except OffsiteError as exc:
                target.run.error = exc
        active = again
    return passes


def _retry_stream(target: Target, settings: Any, progress: Any) -> bool:
    """Streaming mode cannot replay a chunk: re-read the stream for this provider after a backoff."""
    exc = target.error
    target.attempts += 1
    if settings.spool or not isinstance(exc, StoreError) or exc.kind == rclone_errors.AUTH \
            or target.attempts > target.store.provider.retries:
        return False
    delay = min(60.0, target.store.provider.retry_delay * (2 ** (target.attempts - 1)))
    progress.log("provider %s: upload failed (%s); resuming in %.1fs" % (target.name, exc.message, delay))
    target.store.retry_log.append("stream upload failed (%s); resumed" % exc.message)
    target.store.sleep(delay)
    target.refresh()
    return True
