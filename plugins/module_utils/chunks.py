# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Chunks: cut a byte stream into fixed-size chunk readers; digest bytes as they pass.

Private to the collection: not an API for other collections.

The keyed plaintext digest of a chunk is HMAC-SHA256(key, label || backup id || index
|| plaintext): it binds the bytes to their place in their backup, so a chunk moved
between positions or backups fails verification, and without the key the provider
learns nothing it could test a guess against.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import queue
import struct
import threading
from typing import Any, Optional

BLOCK_SIZE = 1 << 20  # read and process the stream in 1 MiB blocks
_F_SETPIPE_SZ = 1031  # Linux fcntl: set a pipe's capacity
_LABEL = b"offsite.zfs chunk v1\x00"


def chunk_mac(key: bytes, backup_id: str, index: int) -> "hmac.HMAC":
    mac = hmac.new(key, digestmod=hashlib.sha256)
    mac.update(_LABEL + backup_id.encode("utf-8") + b"\x00" + struct.pack(">Q", index))
    return mac


def widen_pipe(fileobj: Any, size: int = BLOCK_SIZE) -> None:
    """Ask Linux for a pipe of `size` bytes (default 64 KiB): fewer, larger reads and writes.

    Best effort: other systems, or a limit in /proc/sys/fs/pipe-max-size, leave it as it is.
    """
    try:
        import fcntl
        fcntl.fcntl(fileobj.fileno(), _F_SETPIPE_SZ, size)
    except (ImportError, OSError, ValueError, AttributeError):
        pass


class StreamReader:
    """Reads a pipe in large blocks on a background thread (the read releases the GIL).

    At most `depth` blocks wait in memory. `read(n)` returns up to n bytes, b"" at end.
    """

    def __init__(self, fileobj: Any, block_size: int = BLOCK_SIZE, depth: int = 4) -> None:
        self._fd = fileobj.fileno()
        widen_pipe(fileobj, block_size)
        self._block_size = block_size
        self._queue: "queue.Queue[Optional[bytes]]" = queue.Queue(maxsize=depth)
        self._leftover = b""
        self._eof = False
        self.error: Optional[BaseException] = None
        self.total = 0
        self._stop = False
        self._thread = threading.Thread(target=self._pump, name="offsite-stream-reader", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        try:
            while not self._stop:
                block = os.read(self._fd, self._block_size)
                if not block:
                    break
                self._queue.put(block)
        except BaseException as exc:  # surfaced to the consumer
            self.error = exc
        finally:
            self._queue.put(None)

    def read(self, size: int) -> bytes:
        if self._leftover:
            data, self._leftover = self._leftover[:size], self._leftover[size:]
            self.total += len(data)
            return data
        if self._eof:
            return b""
        block = self._queue.get()
        if block is None:
            self._eof = True
            if self.error is not None:
                raise self.error
            return b""
        if len(block) > size:
            block, self._leftover = block[:size], block[size:]
        self.total += len(block)
        return block

    def at_eof(self) -> bool:
        """True when no byte is left (blocks until that is known)."""
        if self._leftover:
            return False
        if self._eof:
            return True
        block = self._queue.get()
        if block is None:
            self._eof = True
            if self.error is not None:
                raise self.error
            return True
        self._leftover = block
        return False

    def close(self) -> None:
        """Stop reading; drain so the pumping thread can end."""
        self._stop = True
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.1)
            except queue.Empty:
                pass
        self._thread.join()


class ChunkSource(io.RawIOBase):
    """Up to `limit` plaintext bytes of a stream, MAC'd and compressed, as a readable file.

    The encryptor reads from it; nothing but one block and its compressed form is held.
    """

    def __init__(self, stream: StreamReader, limit: int, compressor: Any, mac: Any) -> None:
        super().__init__()
        self._stream = stream
        self._remaining = limit
        self._compressor = compressor
        self._mac = mac
        self._pending = memoryview(b"")
        self._finished = False
        self.plain_bytes = 0

    def readable(self) -> bool:
        return True

    def _refill(self) -> None:
        while not len(self._pending) and not self._finished:
            block = self._stream.read(min(BLOCK_SIZE, self._remaining)) if self._remaining > 0 else b""
            if not block:
                self._pending = memoryview(self._compressor.flush())
                self._finished = True
                return
            self._remaining -= len(block)
            self.plain_bytes += len(block)
            self._mac.update(block)
            self._pending = memoryview(self._compressor.compress(block))

    def readinto(self, buffer: Any) -> int:
        self._refill()
        count = min(len(buffer), len(self._pending))
        if count:
            buffer[:count] = self._pending[:count]
            self._pending = self._pending[count:]
        return count


def digest_only(stream: StreamReader, limit: int, mac: Any) -> int:
    """Read up to limit bytes of the stream into mac (resume: nothing is compressed or sent)."""
    total = 0
    while total < limit:
        block = stream.read(min(BLOCK_SIZE, limit - total))
        if not block:
            break
        mac.update(block)
        total += len(block)
    return total


class HashingWriter(io.RawIOBase):
    """Passes bytes to a file-like sink, counting them and computing their SHA-256."""

    def __init__(self, sink: Any) -> None:
        super().__init__()
        self._sink = sink
        self.sha256 = hashlib.sha256()
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.sha256.update(data)
        view = memoryview(data)
        while len(view):
            written = self._sink.write(view)
            if written is None:  # buffered sinks write everything
                break
            view = view[written:]
        self.count += len(data)
        return len(data)


class DigestReader(io.RawIOBase):
    """Reads from a file-like source, counting the bytes and computing their SHA-256 as they pass."""

    def __init__(self, raw: Any, sha256: Any = None) -> None:
        """sha256: a hash object to update (one shared by several readers), else a new one."""
        super().__init__()
        self._raw = raw
        self.sha256 = sha256 if sha256 is not None else hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        if not data:
            return 0
        buffer[:len(data)] = data
        self.sha256.update(data)
        self.count += len(data)
        return len(data)
