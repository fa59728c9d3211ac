"""Decryption in a child process (age_cli): the age CLI reads what pyrage writes and refuses damage."""

from __future__ import annotations

import io
import os
import shutil
from typing import List

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils import age_cli, codec

pyrage = pytest.importorskip("pyrage")
needs_cli = pytest.mark.skipif(shutil.which("age") is None, reason="the age CLI is not installed")


class Collect(io.RawIOBase):
    def __init__(self) -> None:
        super().__init__()
        self.pieces: List[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self.pieces.append(bytes(data))
        return len(data)


def _encrypted(tmp_path, data: bytes):
    identity = pyrage.x25519.Identity.generate()
    out = io.BytesIO()
    codec.encrypt_stream(io.BytesIO(data), out, [identity.to_public()])
    path = tmp_path / "chunk.zst.age"
    path.write_bytes(out.getvalue())
    return identity, path


def test_identity_text_is_only_for_x25519_keys(monkeypatch) -> None:
    identity = pyrage.x25519.Identity.generate()
    assert age_cli.identity_text([identity]) == str(identity) + "\n"
    assert age_cli.identity_text([]) is None
    assert age_cli.identity_text([identity, "ssh-private-key-object"]) is None
    monkeypatch.setenv(age_cli.AGE_ENV, "pyrage")
    assert age_cli.find_age() is None
    monkeypatch.setenv(age_cli.AGE_ENV, "/nonexistent/age")
    assert age_cli.find_age() is None


@needs_cli
def test_the_cli_decrypts_what_pyrage_wrote_in_bounded_blocks(tmp_path) -> None:
    data = os.urandom(3 << 20) + bytes(2 << 20)
    identity, path = _encrypted(tmp_path, data)
    sink = Collect()
    assert age_cli.decrypt_file(shutil.which("age"), str(path), age_cli.identity_text([identity]), sink,
                                block_size=1 << 20) == len(data)
    assert b"".join(sink.pieces) == data
    assert max(len(p) for p in sink.pieces) <= 1 << 20


@needs_cli
def test_damage_and_a_wrong_key_are_refused(tmp_path) -> None:
    identity, path = _encrypted(tmp_path, os.urandom(200000))
    raw = bytearray(path.read_bytes())
    raw[len(raw) - 100] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(age_cli.AgeCliError) as caught:
        age_cli.decrypt_file(shutil.which("age"), str(path), age_cli.identity_text([identity]), Collect())
    assert "authenticate" in str(caught.value) or "decrypt" in str(caught.value)
    other = pyrage.x25519.Identity.generate()
    with pytest.raises(age_cli.AgeCliError):
        age_cli.decrypt_file(shutil.which("age"), str(path), age_cli.identity_text([other]), Collect())


@needs_cli
def test_a_sink_that_fails_ends_the_child(tmp_path) -> None:
    identity, path = _encrypted(tmp_path, os.urandom(4 << 20))

    class Broken(Collect):
        def write(self, data) -> int:  # type: ignore[override]
            raise BrokenPipeError("receive stopped")

    with pytest.raises(BrokenPipeError):
        age_cli.decrypt_file(shutil.which("age"), str(path), age_cli.identity_text([identity]), Broken())
