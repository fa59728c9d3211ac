"""The chunk decoder, streamed: rclone -> SHA-256 -> age -> zstd -> HMAC -> sink, on real CLIs and a local remote."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from pathlib import Path
from typing import List

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils import age_cli, codec, decoder, sinks
from ansible_collections.offsite.zfs.plugins.module_utils.chunks import chunk_mac
from ansible_collections.offsite.zfs.plugins.module_utils.store import Provider, Store, StoreError

pyrage = pytest.importorskip("pyrage")
RCLONE = shutil.which("rclone")
needs_tools = pytest.mark.skipif(not (RCLONE and shutil.which("age") and shutil.which("zstd")),
                                 reason="rclone, age and zstd are needed")

DATA = os.urandom(2 << 20) + b"2026-12-05 host app: GET /items 200\n" * 60000 + bytes(3 << 20)


class Sink(io.RawIOBase):
    def __init__(self) -> None:
        super().__init__()
        self.pieces: List[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self.pieces.append(bytes(data))
        return len(data)


def _stored(tmp_path: Path, algorithm: str = "zstd"):
    identity = pyrage.x25519.Identity.generate()
    compressed = io.BytesIO()
    comp = codec.compressor(algorithm, 3)
    compressed.write(comp.compress(DATA) + comp.flush())
    out = io.BytesIO()
    codec.encrypt_stream(io.BytesIO(compressed.getvalue()), out, [identity.to_public()])
    remote = tmp_path / "remote"
    (remote / "b").mkdir(parents=True)
    (remote / "b" / "chunk").write_bytes(out.getvalue())
    provider = Provider("local", str(remote), rclone=RCLONE or "rclone", retries=2, retry_delay=0.01)
    return identity, out.getvalue(), Store(provider)


def _decode(monkeypatch, tmp_path, age: str, zstd: str = "", algorithm: str = "zstd", made=None, store=None):
    monkeypatch.setenv(age_cli.AGE_ENV, age)
    monkeypatch.setenv(decoder.ZSTD_ENV, zstd or "library")
    identity, data, default_store = made or _stored(tmp_path, algorithm)
    dec = decoder.ChunkDecoder([identity], algorithm)
    mac = chunk_mac(b"k" * 32, "id", 0)
    sink = Sink()
    result = dec.decode(store or default_store, "b/chunk", len(data), mac, sink)
    return dec, data, mac, sink, result


def _mac_of(data: bytes) -> str:
    mac = chunk_mac(b"k" * 32, "id", 0)
    mac.update(data)
    return mac.hexdigest()


@needs_tools
@pytest.mark.parametrize("zstd", [True, False])
def test_the_cli_pipeline_gives_the_plaintext_its_mac_and_the_stored_digest(monkeypatch, tmp_path, zstd):
    dec, stored, mac, sink, result = _decode(monkeypatch, tmp_path, shutil.which("age"),
                                             shutil.which("zstd") if zstd else "")
    assert dec.mode == ("age-cli+zstd-cli" if zstd else "age-cli")
    assert b"".join(sink.pieces) == DATA and result.plain_bytes == len(DATA)
    assert max(len(p) for p in sink.pieces) <= 1 << 20, "bounded pieces"
    assert (result.stored_bytes, result.sha256, result.error) == (len(stored), hashlib.sha256(stored).hexdigest(), "")
    assert mac.hexdigest() == _mac_of(DATA)


@pytest.mark.skipif(RCLONE is None, reason="rclone is needed")
@pytest.mark.parametrize("algorithm", ["zstd", "gzip", "none"])
def test_pyrage_in_process_is_the_fallback(monkeypatch, tmp_path, algorithm):
    dec, stored, mac, sink, result = _decode(monkeypatch, tmp_path, "pyrage", algorithm=algorithm)
    assert dec.mode == "pyrage"
    assert b"".join(sink.pieces) == DATA and mac.hexdigest() == _mac_of(DATA)
    assert result.sha256 == hashlib.sha256(stored).hexdigest() and result.error == ""


@needs_tools
@pytest.mark.parametrize("age", ["cli", "pyrage"])
def test_a_damaged_object_is_reported_with_the_digest_of_what_was_stored(monkeypatch, tmp_path, age):
    monkeypatch.setenv(age_cli.AGE_ENV, shutil.which("age") if age == "cli" else "pyrage")
    identity, data, store = _stored(tmp_path)
    path = tmp_path / "remote" / "b" / "chunk"
    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 1
    path.write_bytes(bytes(damaged))
    result = decoder.ChunkDecoder([identity], "zstd").decode(store, "b/chunk", len(data), chunk_mac(b"k", "id", 0),
                                                             Sink())
    assert result.stored_bytes == len(data), "the whole object is read, so its digest tells it is damaged"
    assert result.sha256 == hashlib.sha256(bytes(damaged)).hexdigest() != hashlib.sha256(data).hexdigest()
    assert result.error, "age refused the damaged 64 KiB piece"


@needs_tools
def test_a_broken_download_resumes_at_its_offset(monkeypatch, tmp_path):
    # An rclone that dies after 1 MiB the first time it is asked for the object; the real one after that.
    state = tmp_path / "failed-once"
    fake = tmp_path / "rclone"
    fake.write_text('#!/bin/bash\nif [ "$1" = cat ] && [ ! -e %s ]; then touch %s; "%s" "$@" | head -c 1048576; '
                    'echo "ERROR : read: connection reset by peer" >&2; exit 1; fi\nexec "%s" "$@"\n'
                    % (state, state, RCLONE, RCLONE))
    fake.chmod(0o755)
    made = _stored(tmp_path)
    store = Store(Provider("flaky", str(tmp_path / "remote"), rclone=str(fake), retries=2, retry_delay=0.01))
    logged: List[str] = []
    store.log = logged.append
    dec, data, mac, sink, result = _decode(monkeypatch, tmp_path, shutil.which("age"), shutil.which("zstd"),
                                           made=made, store=store)
    assert state.exists() and store.retry_log, "the first download failed and was retried"
    assert b"".join(sink.pieces) == DATA and result.sha256 == hashlib.sha256(data).hexdigest()


@needs_tools
def test_a_download_that_keeps_failing_is_a_store_error(monkeypatch, tmp_path):
    identity, data, _store = _stored(tmp_path)
    monkeypatch.setenv(age_cli.AGE_ENV, shutil.which("age"))
    store = Store(Provider("gone", str(tmp_path / "nowhere"), rclone=RCLONE, retries=1, retry_delay=0.01))
    with pytest.raises(StoreError) as caught:
        decoder.ChunkDecoder([identity], "zstd").decode(store, "b/chunk", len(data), chunk_mac(b"k", "id", 0), Sink())
    assert caught.value.message.startswith("Provider gone could not download b/chunk")


def test_holdback_keeps_the_tail_until_flush(tmp_path):
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "wb", buffering=0) as pipe:
        holdback = sinks.HoldbackWriter(pipe, hold=10)
        for piece in (b"a" * 6, b"b" * 6, b"c" * 6, b"d" * 3):
            holdback.write(piece)
        os.set_blocking(read_end, False)
        assert os.read(read_end, 100) == b"a" * 6, "at least the last 10 bytes stay back"
        holdback.flush()
    assert os.read(read_end, 100) == b"b" * 6 + b"c" * 6 + b"d" * 3
    os.close(read_end)


@pytest.mark.skipif(RCLONE is None, reason="rclone is needed")
def test_a_download_stops_soon_after_the_size_the_manifest_gives(tmp_path):
    from ansible_collections.offsite.zfs.plugins.module_utils import fetcher
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "big").write_bytes(os.urandom(8 << 20))
    got: List[bytes] = []
    download = fetcher.Download(Store(Provider("local", str(remote), rclone=RCLONE)), "big", got.append, limit=1 << 20)
    download.run()
    assert (1 << 20) < download.count < (8 << 20), "stopped once past the limit, not at the end"
    assert download.count == sum(map(len, got))
