# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Codec: streaming compression (zstd, gzip, none) and age encryption (pyrage).

Private to the collection: not an API for other collections.

No I/O of its own: callers hand in readers and writers. Every chunk is one independent
compressed frame inside one independent age file, so each chunk decrypts on its own.

Passphrase mode: pyrage can stream only to public-key recipients, so a passphrase
backup gets a fresh X25519 identity whose secret is sealed with the passphrase (age
scrypt) and stored in the manifest; the chunks are encrypted to its public key.
"""

from __future__ import annotations

import base64
import io
import re
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional, Sequence

from ansible_collections.offsite.zfs.plugins.module_utils._zstd_frames import ZstdFrames
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError

try:
    import pyrage
    from pyrage import ssh as age_ssh
    from pyrage import x25519 as age_x25519
    HAS_PYRAGE = True
    PYRAGE_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - depends on the host
    HAS_PYRAGE = False
    PYRAGE_IMPORT_ERROR = exc

try:
    import zstandard
    HAS_ZSTANDARD = True
    ZSTANDARD_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - depends on the host
    HAS_ZSTANDARD = False
    ZSTANDARD_IMPORT_ERROR = exc

COMPRESSIONS = ("zstd", "gzip", "none")
SUFFIX = {"zstd": ".zst", "gzip": ".gz", "none": ""}


def require_pyrage() -> None:
    if not HAS_PYRAGE:
        raise OffsiteError("The Python library pyrage is missing on this host; apply the role "
                           "offsite.zfs.offsite, which installs it into its own virtualenv (pip into a system "
                           "Python fails under PEP 668).", "missing_library")


# -- compression ------------------------------------------------------------------------
class _NoCompression:
    def compress(self, data: bytes) -> bytes:
        return bytes(data)

    def flush(self) -> bytes:
        return b""


# Decompressed output is handed on in pieces of at most this size: a few bytes of zstd or gzip
# input that encode a long run of zeros must not become hundreds of MiB in memory at once.
OUTPUT_PIECE = 1 << 20


class _NoDecompression:
    def feed(self, data: Any, emit: Callable[[bytes], None]) -> None:
        if len(data):
            emit(bytes(data))


ZSTD_JOB_SIZE = 2 << 20


def compressors(algorithm: str, level: int = 3, threads: int = 0) -> Callable[[], Any]:
    """A factory of streaming compressors (compress(bytes), flush() -> bytes), one per chunk, each chunk
    one independent frame; zstd's share one context while every frame is finished (_zstd_frames.py)."""
    if algorithm == "zstd":
        if not HAS_ZSTANDARD:
            raise OffsiteError("The Python library zstandard is missing on this host; apply the role "
                               "offsite.zfs.offsite (it installs it into its own virtualenv), or choose "
                               "compression gzip.", "missing_library")
        if threads > 0:
            # zstd's workers compress outside the GIL. Jobs of 2 MiB: the library's default for level 3 (8 MiB
            # and more) costs ~50 MiB more memory and twice the CPU in allocations, for the same ratio.
            params = zstandard.ZstdCompressionParameters.from_level(level, threads=threads, job_size=ZSTD_JOB_SIZE)
            return ZstdFrames(lambda: zstandard.ZstdCompressor(compression_params=params))
        return ZstdFrames(lambda: zstandard.ZstdCompressor(level=level))
    if algorithm == "gzip":
        gzip_level = max(1, min(9, level))
        return lambda: zlib.compressobj(gzip_level, zlib.DEFLATED, 31)
    if algorithm == "none":
        return _NoCompression
    raise OffsiteError("Unknown compression %r: use zstd, gzip or none." % algorithm, "bad_value")


def compressor(algorithm: str, level: int = 3, threads: int = 0) -> Any:
    """One streaming compressor with compress(bytes) and flush() -> bytes."""
    return compressors(algorithm, level, threads)()


class _ZstdStreamDecompressor:
    """zstd decompression of one chunk that may hold one or more frames."""

    def __init__(self) -> None:
        self._dctx = zstandard.ZstdDecompressor()
        self._writer: Any = None
        self._emit: Optional[Callable[[bytes], None]] = None

    def write(self, data: Any) -> int:  # the stream writer's output
        if self._emit is not None:
            self._emit(bytes(data))
        return len(data)

    def feed(self, data: Any, emit: Callable[[bytes], None]) -> None:
        """Decompress data (any number of frames), passing the output to emit in bounded pieces."""
        self._emit = emit
        if self._writer is None:
            self._writer = self._dctx.stream_writer(self, write_size=OUTPUT_PIECE, closefd=False)
        self._writer.write(data)


class _GzipDecompressor:
    def __init__(self) -> None:
        self._obj = zlib.decompressobj(31)

    @property
    def eof(self) -> bool:
        return self._obj.eof

    def feed(self, data: Any, emit: Callable[[bytes], None]) -> None:
        """Decompress data, passing the output to emit in pieces of at most OUTPUT_PIECE bytes.

        Concatenated gzip members (as `cat a.gz b.gz` makes) are one stream."""
        pending = bytes(data)
        while pending:
            out = self._obj.decompress(pending, OUTPUT_PIECE)
            if out:
                emit(out)
            if self._obj.eof:
                pending = self._obj.unused_data
                if pending:
                    self._obj = zlib.decompressobj(31)
            else:
                pending = self._obj.unconsumed_tail


def decompressor(algorithm: str) -> Any:
    """A streaming decompressor: feed(data, emit) passes the output on in pieces of at most 1 MiB."""
    if algorithm == "zstd":
        if not HAS_ZSTANDARD:
            raise OffsiteError("The Python library zstandard is missing on this host; apply the role "
                               "offsite.zfs.offsite (it installs it into its own virtualenv) to restore zstd "
                               "backups.", "missing_library")
        return _ZstdStreamDecompressor()
    if algorithm == "gzip":
        return _GzipDecompressor()
    if algorithm == "none":
        return _NoDecompression()
    raise OffsiteError("Unknown compression %r in the manifest." % algorithm, "bad_manifest")


# -- keys -------------------------------------------------------------------------------
_AGE_SECRET = re.compile(r"AGE-SECRET-KEY-1[0-9A-Z]+")


def parse_recipients(values: Sequence[str]) -> List[Any]:
    """age recipients from strings: age1... (X25519) and ssh-ed25519/ssh-rsa public keys."""
    require_pyrage()
    parsed = []
    for value in values:
        text = str(value).strip()
        try:
            if text.startswith("age1"):
                parsed.append(age_x25519.Recipient.from_str(text))
            elif text.startswith("ssh-"):
                parsed.append(age_ssh.Recipient.from_str(text))
            else:
                raise ValueError("unknown kind")
        except Exception:
            shown = text if len(text) < 24 else text[:20] + "..."
            raise OffsiteError("The recipient %r is not an age public key (age1...) or an SSH public key "
                               "(ssh-ed25519 ..., ssh-rsa ...)." % shown, "bad_recipient")
    return parsed


def parse_identities(text: str, source: str = "the identity") -> List[Any]:
    """age identities from the text of an identity file: AGE-SECRET-KEY-1... lines or an SSH private key."""
    require_pyrage()
    identities: List[Any] = []
    if "-----BEGIN" in text:
        try:
            identities.append(age_ssh.Identity.from_buffer(text.encode("utf-8")))
        except Exception:
            raise OffsiteError("%s holds an SSH private key that age cannot use (it must be an unencrypted "
                               "ed25519 or RSA key)." % source.capitalize(), "bad_identity")
        return identities
    for match in _AGE_SECRET.findall(text):
        try:
            identities.append(age_x25519.Identity.from_str(match))
        except Exception:
            raise OffsiteError("%s holds an AGE-SECRET-KEY line that is not a valid age key." % source.capitalize(),
                               "bad_identity")
    if not identities:
        raise OffsiteError("%s holds no age secret key (AGE-SECRET-KEY-1...) and no SSH private key."
                           % source.capitalize(), "bad_identity")
    return identities


# -- encryption ---------------------------------------------------------------------------
@dataclass
class Encryption:
    """What a backup encrypts to, and what the manifest records about it."""

    kind: str  # "recipients" or "passphrase"
    recipients: List[Any] = field(default_factory=list)
    recipient_strings: List[str] = field(default_factory=list)
    wrapped_identity: Optional[str] = None  # passphrase mode: the per-backup identity, sealed with the passphrase


def encryption_for_backup(recipients: Sequence[str], passphrase: Optional[str],
                          wrapped_identity: Optional[str] = None) -> Encryption:
    """Recipients mode, or passphrase mode (reusing wrapped_identity when resuming)."""
    require_pyrage()
    if recipients:
        return Encryption("recipients", parse_recipients(recipients), [str(r).strip() for r in recipients])
    if not passphrase:
        raise OffsiteError("No recipients and no passphrase are configured: add age recipients (public keys) to "
                           "the config file or pass recipients.", "no_keys")
    if wrapped_identity:
        identity = unwrap_identity(wrapped_identity, passphrase)
    else:
        identity = age_x25519.Identity.generate()
        wrapped_identity = base64.b64encode(pyrage.passphrase.encrypt(str(identity).encode(), passphrase)).decode()
    public = identity.to_public()
    return Encryption("passphrase", [public], [str(public)], wrapped_identity)


def unwrap_identity(wrapped: str, passphrase: str) -> Any:
    require_pyrage()
    try:
        secret = pyrage.passphrase.decrypt(base64.b64decode(wrapped), passphrase)
        return age_x25519.Identity.from_str(secret.decode().strip())
    except Exception:
        raise OffsiteError("The passphrase does not open this backup's key; check the passphrase.", "wrong_key")


def seal(data: bytes, recipients: Sequence[Any]) -> str:
    """age-encrypt a small secret to recipients; base64 text for the manifest."""
    require_pyrage()
    return base64.b64encode(pyrage.encrypt(data, list(recipients))).decode()


def unseal(sealed: str, identities: Sequence[Any]) -> bytes:
    require_pyrage()
    try:
        return pyrage.decrypt(base64.b64decode(sealed), list(identities))
    except Exception:
        raise OffsiteError("None of the given identities can decrypt this backup: the key is wrong, or it is not "
                           "one of the recipients the backup was made for.", "wrong_key")


# pyrage reads its input 8 KiB at a time: a buffer in C in front of a reader written in Python (a RawIOBase
# such as chunks.ChunkSource) turns 128 calls into Python per MiB into one.
ENCRYPT_READ_BUFFER = 1 << 20


def encrypt_stream(reader: Any, writer: Any, recipients: Sequence[Any]) -> None:
    require_pyrage()
    if isinstance(reader, io.RawIOBase):
        reader = io.BufferedReader(reader, ENCRYPT_READ_BUFFER)
    pyrage.encrypt_io(reader, writer, list(recipients))


def decrypt_stream(reader: Any, writer: Any, identities: Sequence[Any]) -> None:
    require_pyrage()
    pyrage.decrypt_io(reader, writer, list(identities))
