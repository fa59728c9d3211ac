# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Legacy read: the plaintext `zfs send` stream of one old-tool backup, with every check its format allows.

Private to the collection: not an API for other collections.

F1, F2 and F4-F8: every piece is its own age file holding one gzip stream; the plaintexts concatenate.
F3: the pieces are slices of ONE age stream (of one gzip stream); they are decrypted as one.
Pieces are streamed with `rclone cat`, or, when there are many small ones (an F8 set of thousands of
10 MiB shards, or tiny test shards), downloaded in bounded batches with one `rclone copy` into a private
spool directory. Every failure names the piece.
"""

from __future__ import annotations

import io
import os
import shutil
from typing import Any, Callable, Iterator, List, Optional, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils import codec
from ansible_collections.offsite.zfs.plugins.module_utils.common import run_temp_dir
from ansible_collections.offsite.zfs.plugins.module_utils.errors import WRONG_KEY, OffsiteError, decrypt_failure_kind
from ansible_collections.offsite.zfs.plugins.module_utils.legacy_layout import LegacySet, Piece
from ansible_collections.offsite.zfs.plugins.module_utils.legacy_stream import (
    MAX_PAYLOAD,
    RECORD,
    StreamTracker,
    end_guid,
    head_bytes_needed,
    is_begin,
)
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store, StoreError

AGE_MAGIC = b"age-encryption.org/v1"
AGE_CHUNK = 64 << 10  # plaintext bytes per age STREAM chunk
BATCH_PIECES = 256
BATCH_BYTES = 64 << 20
SMALL_PIECE = 4 << 20
EQUAL_SIZES = ("F4", "F5")  # split -b cut the raw stream: every piece but the last has one size


class _Enough(Exception):
    pass


def probe_age(store: Store, key: str) -> bool:
    """Whether the object starts with the age header (reads its first 21 bytes only)."""
    data = b""
    with store.open_get_stream(key) as child:  # killed once the header is read
        while len(data) < len(AGE_MAGIC):
            more = child.stdout.read(len(AGE_MAGIC) - len(data))
            if not more:
                break
            data += more
    return data == AGE_MAGIC


class _Sink(io.RawIOBase):
    """Decrypted bytes of one gzip stream -> gunzip -> the stream tracker; keeps the start of its plaintext."""

    def __init__(self, tracker: StreamTracker, stop: Optional[Callable[[], bool]]) -> None:
        super().__init__()
        self._gunzip = codec.decompressor("gzip")
        self._tracker = tracker
        self._stop = stop
        self.start = b""
        self.plain_bytes = 0
        self.decrypted = 0

    def writable(self) -> bool:
        return True

    @property
    def ended(self) -> bool:
        return self._gunzip.eof

    def write(self, data: Any) -> int:
        self.decrypted += len(data)
        self._gunzip.feed(data, self._emit)
        return len(data)

    def _emit(self, plain: bytes) -> None:
        if len(self.start) < RECORD:
            self.start += plain[:RECORD - len(self.start)]
        self.plain_bytes += len(plain)
        self._tracker.feed(plain)
        if self._stop is not None and self._stop():
            raise _Enough()


class _Joined(io.RawIOBase):
    """F3: the pieces' bytes one after the other, remembering which piece is being read."""

    def __init__(self, opened: Iterator[Tuple[Piece, Any]]) -> None:
        super().__init__()
        self._opened = opened
        self._reader: Any = None
        self.piece: Optional[Piece] = None
        self.head = b""  # the start of the age file: its header
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while True:
            if self._reader is None:
                try:
                    self.piece, self._reader = next(self._opened)
                except StopIteration:
                    return 0
            data = self._reader.read(len(buffer))
            if data:
                buffer[:len(data)] = data
                if len(self.head) < 4096:
                    self.head += data[:4096 - len(self.head)]
                self.count += len(data)
                return len(data)
            self._reader = None


def _open_pieces(store: Store, pieces: List[Piece], spool_dir: Optional[str]) -> Iterator[Tuple[Piece, Any]]:
    """(piece, a reader of its stored bytes), in order; checks each download's exit status and size."""
    tmp = None
    if spool_dir is not None and len(pieces) > 8 and sum(p.size for p in pieces) / len(pieces) < SMALL_PIECE:
        try:
            tmp = run_temp_dir(spool_dir, "legacy")
        except OSError:
            tmp = None  # no spool space: stream every piece
    if tmp is None:
        for piece in pieces:
            with store.open_get_stream(piece.key) as child:  # killed when the reader stops early
                yield piece, child.stdout
                child.stdout.read()
                child.check()  # store.failure("download <key>")
        return
    try:
        start = 0
        while start < len(pieces):
            end, total = start, 0
            while end < len(pieces) and end - start < BATCH_PIECES and (total < BATCH_BYTES or end == start):
                total += pieces[end].size
                end += 1
            group = pieces[start:end]
            _fetch(store, group, tmp)
            for piece in group:
                path = os.path.join(tmp, piece.name)
                if not os.path.exists(path):
                    raise StoreError(f"Provider {store.name} could not download {piece.key}: it is gone.",
                                     "provider_failed")
                with open(path, "rb", buffering=1 << 20) as handle:
                    yield piece, handle
                os.unlink(path)
            start = end
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fetch(store: Store, group: List[Piece], dest: str) -> None:
    folder = group[0].key.rsplit("/", 1)[0]
    listing = os.path.join(dest, ".pieces")
    with open(listing, "w", encoding="utf-8") as handle:
        handle.write("".join(p.name + "\n" for p in group))
    args = ["copy", "--retries", "1", "--no-traverse", "--files-from-raw", listing, store.path(folder), dest]
    try:
        store.retry(lambda: store._run(args, f"download {len(group)} pieces below {folder}"),
                    f"download of {group[0].name}..{group[-1].name}")
    finally:
        os.unlink(listing)


def _decrypt_error(exc: Exception, store: Store, backup: LegacySet, piece: Piece, where: str = "") -> OffsiteError:
    if decrypt_failure_kind(exc) == WRONG_KEY:
        return OffsiteError(f"None of the given identities can decrypt the legacy backup {backup.name} on "
                            f"{store.name}: the key is wrong, or it is not the one the old tool encrypted to.",
                            "wrong_key")
    return OffsiteError(f"Piece {piece.key} of {backup.name} on {store.name} failed age authentication or gunzip "
                        f"({exc}){where}: it is damaged, truncated or from another backup, or was not encrypted for "
                        f"this key.", "chunk_corrupt")


def read_stream(store: Store, backup: LegacySet, identities: List[Any], write: Any = None, head_only: bool = False,
                spool_dir: Optional[str] = None, on_piece: Optional[Callable[[int, int], None]] = None,
                wrap: Optional[Callable[[Piece, Any], Any]] = None) -> StreamTracker:
    """Decrypt and gunzip the backup's stream into write (zfs receive's stdin), checking it piece by piece.

    head_only: stop as soon as the stream's header is read (returns the tracker with .head).
    """
    tracker = StreamTracker(write, keep=RECORD + MAX_PAYLOAD + RECORD if head_only else RECORD)
    stop = (lambda: len(tracker.head) >= RECORD and len(tracker.head) >= head_bytes_needed(tracker.head)
            or tracker.plain_bytes >= tracker.keep) if head_only else None
    base = _open_pieces(store, backup.pieces, None if head_only else spool_dir)
    opened = base if wrap is None else ((piece, wrap(piece, reader)) for piece, reader in base)
    try:
        if backup.format == "F3":
            _read_joined(store, backup, identities, tracker, stop, opened)
        else:
            _read_pieces(store, backup, identities, tracker, stop, opened, on_piece)
    except _Enough:
        pass
    finally:
        base.close()
    return tracker


def _decrypt(reader: Any, sink: Any, identities: List[Any]) -> Optional[Exception]:
    """Decrypt reader into sink: None, or pyrage's failure (ours, and a gone reader, pass on)."""
    try:
        codec.decrypt_stream(reader, sink, identities)
    except (_Enough, OffsiteError, BrokenPipeError, ConnectionResetError):
        raise
    except Exception as exc:  # pyrage: authentication failed, truncated, not for this key
        return exc
    return None


def _read_joined(store: Store, backup: LegacySet, identities: List[Any], tracker: StreamTracker, stop: Any,
                 opened: Iterator[Tuple[Piece, Any]]) -> None:
    joined = _Joined(opened)
    sink = _Sink(tracker, stop)
    failure = _decrypt(joined, sink, identities)
    if failure is not None:
        pieces = _failing_pieces(backup, joined.head, sink.decrypted)
        where = (f" in the 64 KiB age chunk that spans {', '.join(p.name for p in pieces[1:])}" if len(pieces) > 1
                 else "")
        raise _decrypt_error(failure, store, backup, pieces[0], where)
    if not sink.ended:
        raise OffsiteError(f"The last piece {backup.pieces[-1].key} of {backup.name} on {store.name} ends in the "
                           f"middle of its gzip stream: it is truncated.", "chunk_corrupt")


def _failing_pieces(backup: LegacySet, head: bytes, decrypted: int) -> List[Piece]:
    """F3: the slices holding the age STREAM chunk after the decrypted bytes (64 KiB + 16 B tag each)."""
    end = head.find(b"\n", head.find(b"\n--- ") + 1)
    if end < 0:
        return [backup.pieces[0]]
    start = end + 1 + 16 + (decrypted // AGE_CHUNK) * (AGE_CHUNK + 16)  # header, nonce, good chunks
    stop = start + AGE_CHUNK + 16
    hit, offset = [], 0
    for piece in backup.pieces:
        if offset < stop and offset + piece.size > start:
            hit.append(piece)
        offset += piece.size
    hit = hit or [backup.pieces[-1]]
    return hit[:1] + hit if len(hit) > 1 else hit


def _read_pieces(store: Store, backup: LegacySet, identities: List[Any], tracker: StreamTracker, stop: Any,
                 opened: Iterator[Tuple[Piece, Any]], on_piece: Optional[Callable[[int, int], None]]) -> None:
    first_size: Optional[int] = None
    for position, (piece, reader) in enumerate(opened):
        if piece.offset is not None and piece.offset != tracker.plain_bytes:
            raise OffsiteError(f"Shard {piece.key} of {backup.name} starts at byte {piece.offset} but the shards "
                               f"before it hold {tracker.plain_bytes} bytes: a shard is missing, truncated or was "
                               f"replaced.", "chunk_mismatch")
        sink = _Sink(tracker, stop)
        failure = _decrypt(reader, sink, identities)
        if failure is not None:
            raise _decrypt_error(failure, store, backup, piece)
        if not sink.ended:
            raise OffsiteError(f"Piece {piece.key} of {backup.name} on {store.name} ends in the middle of its gzip "
                               f"stream: it is truncated.", "chunk_corrupt")
        if position > 0 and len(sink.start) >= RECORD and is_begin(sink.start):
            raise OffsiteError(f"Piece {piece.key} of {backup.name} on {store.name} starts a zfs send stream of its "
                               f"own: it is the first piece of another backup, not piece {piece.number} of this one.",
                               "chunk_mismatch")
        last = position == len(backup.pieces) - 1
        if backup.format in EQUAL_SIZES and len(backup.pieces) > 1:
            if first_size is None:
                first_size = sink.plain_bytes
            elif (not last and sink.plain_bytes != first_size) or (last and sink.plain_bytes > first_size):
                raise OffsiteError(f"Piece {piece.key} of {backup.name} holds {sink.plain_bytes} bytes but the first "
                                   f"piece {first_size}: split cut every piece but the last to one size, so it is "
                                   f"truncated or from another backup.", "chunk_mismatch")
        if on_piece is not None:
            on_piece(position + 1, tracker.plain_bytes)


def checked_end(tracker: StreamTracker, backup: LegacySet, store: Store, undone: str) -> str:
    """The guid in the END record of a stream read to its end, checked against the backup's; sets final_guid.
    undone ends the sentence of an incomplete stream ("nothing was restored from it")."""
    try:
        guid = end_guid(tracker.tail, backup.header)
    except ValueError as exc:
        raise OffsiteError(f"The stream of the legacy backup {backup.name} on {store.name} is incomplete ({exc}): its "
                           f"last pieces are missing or the last piece {backup.pieces[-1].key} is truncated; "
                           f"{undone}.", "chunk_corrupt")
    expected = backup.final_guid or guid
    if guid not in ("0", expected):
        raise OffsiteError(f"The last piece {backup.pieces[-1].key} of {backup.name} on {store.name} ends the stream "
                           f"of the snapshot with guid {guid}, not {expected}: it is from another backup.",
                           "chunk_mismatch")
    backup.final_guid = expected
    return guid
