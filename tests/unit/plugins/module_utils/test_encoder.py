"""The chunk encoder: the age CLI path and the pyrage path write the same format, digests included."""

from __future__ import annotations

import hashlib
import io
import os
import shutil

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils import age_cli, codec, encoder
from ansible_collections.offsite.zfs.plugins.module_utils.chunks import chunk_mac
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError

pyrage = pytest.importorskip("pyrage")
needs_cli = pytest.mark.skipif(shutil.which("age") is None, reason="the age CLI is not installed")

DATA = os.urandom(3 << 20) + b"a log line that repeats\n" * 100000 + bytes(1 << 20)


def _encode(monkeypatch, age: str, algorithm: str = "zstd", threads: int = 0, limit: int = 4 << 20):
    monkeypatch.setenv(age_cli.AGE_ENV, age)
    identity = pyrage.x25519.Identity.generate()
    encryption = codec.Encryption("recipients", [identity.to_public()], [str(identity.to_public())])
    enc = encoder.ChunkEncoder(algorithm, 3, threads, encryption)
    stream = io.BytesIO(DATA)
    out = io.BytesIO()
    mac = chunk_mac(b"k" * 32, "backup-id", 0)
    result = enc.encode(stream, limit, mac, out)
    return enc, identity, stream, out.getvalue(), mac, result


def _plain(identity, stored: bytes, algorithm: str) -> bytes:
    pieces = []
    decrypted = pyrage.decrypt(stored, [identity])
    codec.decompressor(algorithm).feed(decrypted, pieces.append)
    return b"".join(pieces)


@needs_cli
@pytest.mark.parametrize("threads", [0, 1])
def test_the_cli_path_writes_an_age_file_pyrage_opens_with_digests_of_what_it_wrote(monkeypatch, threads):
    enc, identity, stream, stored, mac, result = _encode(monkeypatch, shutil.which("age"), threads=threads)
    assert enc.mode == "age-cli"
    assert result.plain_bytes == 4 << 20 and stream.tell() == 4 << 20, "reads exactly one chunk of the stream"
    assert result.stored_bytes == len(stored) and result.sha256 == hashlib.sha256(stored).hexdigest()
    assert _plain(identity, stored, "zstd") == DATA[:4 << 20]
    expected = chunk_mac(b"k" * 32, "backup-id", 0)
    expected.update(DATA[:4 << 20])
    assert mac.hexdigest() == expected.hexdigest()


@pytest.mark.parametrize("algorithm", ["zstd", "gzip", "none"])
def test_the_pyrage_path_is_the_same_format(monkeypatch, algorithm):
    enc, identity, _stream, stored, _mac, result = _encode(monkeypatch, "pyrage", algorithm, limit=len(DATA) + 5)
    assert enc.mode == "pyrage"
    assert result.plain_bytes == len(DATA)
    assert result.sha256 == hashlib.sha256(stored).hexdigest()
    assert _plain(identity, stored, algorithm) == DATA


def test_an_age_that_fails_is_one_sentence(monkeypatch, tmp_path):
    broken = tmp_path / "age"
    broken.write_text("#!/bin/sh\ncat > /dev/null\necho 'age: error: something is off' >&2\nexit 1\n")
    broken.chmod(0o755)
    with pytest.raises(OffsiteError) as caught:
        _encode(monkeypatch, str(broken))
    assert caught.value.code == "age_failed"
    assert caught.value.message == "age could not encrypt a chunk: age: error: something is off"


def test_auto_threads_uses_a_worker_only_where_there_is_a_second_core(monkeypatch):
    assert encoder.auto_threads(0) == 0 and encoder.auto_threads(3) == 3
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert encoder.auto_threads(None) == 0
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert encoder.auto_threads(None) == 1
