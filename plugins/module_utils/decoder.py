# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decoder: one stored chunk -> SHA-256 -> age -> decompression -> keyed digest -> a sink, streamed.

Private to the collection: not an API for other collections.

Every stage runs beside the others, with no temp file:

    rclone cat ──► feeder thread (SHA-256, size) ──► age --decrypt ──► zstd -d ──► this thread (HMAC) ──► sink

- the feeder thread downloads the object into age's stdin, hashing it as it passes; when the
  download breaks it resumes at the byte it reached (`rclone cat --offset`), within the provider's
  retries;
- the `age` CLI decrypts in its own process, authenticating every 64 KiB (Debian's `age`; with no
  CLI, or an identity that has no text form, pyrage decrypts in this process instead);
- the `zstd` CLI decompresses in its own process when it is installed (else zstandard here);
- this thread MACs the plaintext and writes it on.

Nothing reaches the sink that age did not authenticate, and the caller checks the size, the
SHA-256 and the keyed digest when a chunk ends: restore holds back the tail of each backup's stream
until its last chunk is checked (HoldbackWriter), so a bad chunk makes `zfs receive` discard it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils import _proc, age_cli, codec
from ansible_collections.offsite.zfs.plugins.module_utils.chunks import BLOCK_SIZE, DigestReader, widen_pipe
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError, StoreError
from ansible_collections.offsite.zfs.plugins.module_utils.fetcher import Feeder
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store

ZSTD_ENV = "OFFSITE_ZSTD"  # the zstd binary to decompress with, or "library" for zstandard in-process


@dataclass
class Decoded:
    """What one chunk came to: plaintext bytes written, the stored object's size and SHA-256, and why
    age or the decompressor refused it ('' when they did not: damaged, or not for these identities)."""

    plain_bytes: int
    stored_bytes: int
    sha256: str
    error: str = ""


def find_zstd() -> Optional[str]:
    value = os.environ.get(ZSTD_ENV, "")
    if value in ("library", "none"):
        return None
    if value:
        return value if os.access(value, os.X_OK) else None
    return shutil.which("zstd")


class ChunkDecoder:
    """Decodes the chunks of one backup: its identities and its compression."""

    def __init__(self, identities: Sequence[Any], algorithm: str) -> None:
        self.identities = list(identities)
        self.algorithm = algorithm
        age = age_cli.find_age()
        self.identity_text = age_cli.identity_text(self.identities) if age else None
        self.age = age if self.identity_text is not None else None
        self.zstd = find_zstd() if (self.age and algorithm == "zstd") else None
        self.mode = ("age-cli" if self.age else "pyrage") + ("+zstd-cli" if self.zstd else "")

    def decode(self, store: Store, key: str, size: int, mac: Any, sink: Any) -> Decoded:
        """Download, decrypt and decompress the object key (size bytes, per the manifest) into sink, streamed."""
        if self.age is None:
            return self._decode_inline(store, key, mac, sink)
        return self._decode_cli(mac, sink, store=store, key=key, size=size)

    def decode_file(self, path: str, mac: Any, sink: Any) -> Decoded:
        """Decrypt and decompress a downloaded (and checked) object into sink (fetcher.py); its stored size and
        SHA-256 are the fetcher's to tell, so they are left 0 and '' here."""
        if self.age is None:
            with open(path, "rb", buffering=1 << 20) as handle:
                plain, error = self._decrypt_inline(handle, mac, sink, (BrokenPipeError, ConnectionResetError))
            return Decoded(plain, 0, "", error)
        return self._decode_cli(mac, sink, path=path)

    # -- pyrage in this process (the fallback) ----------------------------------------------------------
    def _decode_inline(self, store: Store, key: str, mac: Any, sink: Any) -> Decoded:
        with store.open_get_stream(key) as child:
            widen_pipe(child.stdout)
            reader = DigestReader(child.stdout)
            plain, error = self._decrypt_inline(reader, mac, sink, (BrokenPipeError, ConnectionResetError, StoreError))
            if error:
                while reader.read(BLOCK_SIZE):  # the rest still counts for the size and SHA-256
                    pass
            child.check()
        return Decoded(plain, reader.count, reader.sha256.hexdigest(), error)

    def _decrypt_inline(self, reader: Any, mac: Any, sink: Any, passed_on: Tuple[type, ...]) -> Tuple[int, str]:
        """pyrage and the decompressor in this thread: (plaintext bytes, why decryption failed or '')."""
        plain = [0]
        decompressor = codec.decompressor(self.algorithm)

        def emit(data: bytes) -> None:
            mac.update(data)
            plain[0] += len(data)
            sink.write(data)

        try:
            codec.decrypt_stream(reader, _Emit(lambda data: decompressor.feed(data, emit)), self.identities)
        except passed_on:
            raise
        except Exception as exc:  # pyrage: authentication failed, truncated, not for this key
            return plain[0], str(exc) or type(exc).__name__
        return plain[0], ""

    # -- age (and zstd) in child processes ----------------------------------------------------------
    def _decode_cli(self, mac: Any, sink: Any, path: Optional[str] = None, store: Optional[Store] = None,
                    key: str = "", size: int = 0) -> Decoded:
        """age (and zstd) on the file at path, or on the object key streamed in by a feeder thread."""
        read_end, write_end = os.pipe()
        try:
            os.write(write_end, str(self.identity_text).encode("utf-8"))  # below the pipe's capacity
        finally:
            os.close(write_end)
        children: List[_proc.Child] = []
        feeder: Optional[Feeder] = None
        try:
            try:
                argv = [str(self.age), "--decrypt", "-i", "/dev/fd/%d" % read_end] + ([path] if path else [])
                age = _proc.Child(argv, stdin=_proc.PIPE if path is None else _proc.DEVNULL, pass_fds=(read_end,),
                                  missing=self._missing)
            finally:
                os.close(read_end)
            children.append(age)
            out = age.stdout
            if self.zstd:
                unzstd = _proc.Child([self.zstd, "-d", "-c", "-q"], stdin=age.stdout, missing=self._missing)
                children.append(unzstd)
                age.stdout.close()  # the zstd child holds it now
                out = unzstd.stdout
            widen_pipe(out)
            if path is None:
                if store is None:
                    raise ValueError("decode needs a store when it reads no file")
                widen_pipe(age.stdin)
                feeder = Feeder(store, key, os.dup(age.stdin.fileno()), size)
                age.stdin.close()
                feeder.start()
            try:
                plain = self._drain(out.fileno(), mac, sink)
            except BaseException:
                if feeder is not None:
                    feeder.stop()
                for child in children:
                    child.kill()
                if feeder is not None:
                    feeder.join(timeout=30)
                raise
            if feeder is not None:
                feeder.join()
            failures = [f for f in (self._failure(child) for child in children) if f]
            if feeder is not None and feeder.error is not None:
                raise feeder.error
        finally:
            for child in children:
                child.close()
        if feeder is None:
            return Decoded(plain, 0, "", failures[0] if failures else "")
        return Decoded(plain, feeder.download.count, feeder.download.sha256.hexdigest(),
                       failures[0] if failures else "")

    def _missing(self) -> OffsiteError:
        return OffsiteError("The age command %s or the zstd command %s cannot be run; install them or set "
                            "OFFSITE_AGE=pyrage." % (self.age, self.zstd or "-"), "age_failed")

    def _drain(self, fd: int, mac: Any, sink: Any) -> int:
        plain = 0
        decompressor = None if self.zstd else codec.decompressor(self.algorithm)

        def emit(data: bytes) -> None:
            mac.update(data)
            sink.write(data)

        while True:
            block = os.read(fd, BLOCK_SIZE)
            if not block:
                break
            if decompressor is None:
                plain += len(block)
                emit(block)
            else:
                counted = _Count(emit)
                decompressor.feed(block, counted)
                plain += counted.total
        return plain

    @staticmethod
    def _failure(child: _proc.Child) -> str:
        """'' when the child exited 0, else the first line it wrote to stderr."""
        if child.wait() == 0:
            return ""
        text = child.stderr.value().decode("utf-8", "replace").replace("age: error: ", "").replace("zstd: ", "")
        lines = [line for line in text.strip().splitlines() if line.strip() and "report unexpected" not in line]
        return lines[0] if lines else "%s exited with %d" % (os.path.basename(child.argv[0]), child.returncode)


class _Emit:
    """A writable for pyrage's output that hands each piece to a function."""

    def __init__(self, handle: Callable[[bytes], None]) -> None:
        self.handle = handle

    def write(self, data: Any) -> int:
        self.handle(bytes(data))
        return len(data)


class _Count:
    def __init__(self, emit: Callable[[bytes], None]) -> None:
        self.emit = emit
        self.total = 0

    def __call__(self, data: bytes) -> None:
        self.total += len(data)
        self.emit(data)
