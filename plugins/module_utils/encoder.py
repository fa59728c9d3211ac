# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Encoder: one chunk of plaintext -> keyed digest -> compression -> age -> SHA-256 -> a sink.

Private to the collection: not an API for other collections.

The bytes of a chunk pass three stages that each want a core of their own (docs/benchmarks.md,
"where the time goes"): zstd, age and the two digests. Here they overlap:

- this thread reads the stream, feeds the keyed digest (HMAC; hashlib releases the GIL) and hands
  each block to zstd, which with a worker thread (`threads` >= 1) compresses outside the GIL;
- the `age` CLI encrypts in its own process (the Debian package `age`; pyrage, which holds the GIL
  for the whole chunk, is the fallback when the CLI is missing or OFFSITE_AGE=pyrage);
- a drain thread reads age's output, computes its SHA-256 and writes it to the sink (a spool file,
  or the upload pipes of every provider).

The stored bytes are the same format either way: one zstd (or gzip) frame inside one age v1 file
per chunk, to the same recipients; restore reads both.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any, List, Optional

from ansible_collections.offsite.zfs.plugins.module_utils import _proc, age_cli, codec
from ansible_collections.offsite.zfs.plugins.module_utils.chunks import (
    BLOCK_SIZE,
    ChunkSource,
    HashingWriter,
    widen_pipe,
)
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError


@dataclass
class Encoded:
    """What one encoded chunk came to."""

    plain_bytes: int
    stored_bytes: int
    sha256: str


def auto_threads(threads: Optional[int]) -> int:
    """zstd worker threads: the setting, else one worker where there is a second core (0 = inline)."""
    if threads is not None and threads >= 0:
        return threads
    return 1 if (os.cpu_count() or 1) >= 2 else 0


class _Drain(threading.Thread):
    """Reads a child's stdout to the end: SHA-256 and count of the bytes, each block written to sink."""

    def __init__(self, fd: int, sink: Any) -> None:
        super().__init__(name="offsite-encode-drain", daemon=True)
        self.fd = fd
        self.sink = HashingWriter(sink)
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        try:
            while True:
                block = os.read(self.fd, BLOCK_SIZE)
                if not block:
                    return
                self.sink.write(block)
        except BaseException as exc:  # handed to the encoding thread
            self.error = exc


def _write_all(fd: int, data: Any) -> None:
    view = memoryview(data)
    while len(view):
        view = view[os.write(fd, view):]


class ChunkEncoder:
    """Encodes chunks for one backup: its compression and its recipients.

    `encode(stream, limit, mac, sink)` reads up to limit bytes of the stream (a chunks.StreamReader),
    MACs them, and writes the stored object to sink; the result says how many bytes went in and out.
    """

    def __init__(self, algorithm: str, level: int, threads: Optional[int], encryption: codec.Encryption) -> None:
        self.algorithm = algorithm
        self.level = level
        self.threads = auto_threads(threads)
        self.encryption = encryption
        self.age = age_cli.find_age()
        self.mode = "age-cli" if self.age else "pyrage"
        self._compressors = codec.compressors(algorithm, level, self.threads)  # one zstd context per backup

    def _compressor(self) -> Any:
        return self._compressors()

    def encode(self, stream: Any, limit: int, mac: Any, sink: Any) -> Encoded:
        if self.age is None:
            return self._encode_inline(stream, limit, mac, sink)
        return self._encode_cli(stream, limit, mac, sink)

    # -- pyrage in this process (the fallback) ------------------------------------------------------
    def _encode_inline(self, stream: Any, limit: int, mac: Any, sink: Any) -> Encoded:
        source = ChunkSource(stream, limit, self._compressor(), mac)
        writer = HashingWriter(sink)
        codec.encrypt_stream(source, writer, self.encryption.recipients)
        return Encoded(source.plain_bytes, writer.count, writer.sha256.hexdigest())

    # -- the age CLI in a child process -------------------------------------------------------------
    def _argv(self) -> List[str]:
        argv = [str(self.age), "--encrypt"]
        for recipient in self.encryption.recipient_strings:
            argv += ["-r", recipient]  # public keys only: nothing secret in argv
        return argv

    def _failure(self, returncode: int, stderr: bytes) -> OffsiteError:
        line = _proc.first_line(stderr, "it exited with %d" % returncode)
        return OffsiteError("age could not encrypt a chunk: %s" % line, "age_failed")

    def _missing(self) -> OffsiteError:
        return OffsiteError("The age command %s cannot be run; install age or set OFFSITE_AGE=pyrage." % self.age,
                            "age_failed")

    def _encode_cli(self, stream: Any, limit: int, mac: Any, sink: Any) -> Encoded:
        child = _proc.Child(self._argv(), stdin=_proc.PIPE, classify=self._failure, missing=self._missing)
        with child:  # leaving it any other way than below kills and reaps age
            widen_pipe(child.stdin)
            widen_pipe(child.stdout)
            drain = _Drain(child.stdout.fileno(), sink)
            drain.start()
            try:
                plain = self._feed(child.stdin.fileno(), stream, limit, mac)
                child.stdin.close()
                drain.join()
            except BaseException:
                child.kill()  # its output ends, so the drain ends, before the pipes close
                drain.join(timeout=30)
                raise
            rc = child.wait()
            if drain.error is not None:
                raise drain.error
            if rc != 0:
                raise child.error()
        counted = drain.sink
        return Encoded(plain, counted.count, counted.sha256.hexdigest())

    def _feed(self, infd: int, stream: Any, limit: int, mac: Any) -> int:
        """MAC and compress up to limit bytes of the stream into age's stdin; the plaintext count."""
        compressor = self._compressor()
        plain = 0
        try:
            while plain < limit:
                block = stream.read(min(BLOCK_SIZE, limit - plain))
                if not block:
                    break
                plain += len(block)
                mac.update(block)
                out = compressor.compress(block)
                if out:
                    _write_all(infd, out)
            _write_all(infd, compressor.flush())
        except BrokenPipeError:
            pass  # age stopped: its exit status and stderr say why
        return plain
