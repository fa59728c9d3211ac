"""age_cli: which age CLI to use, and identities as the text it reads (encoder/decoder tests run it)."""

from __future__ import annotations

import io
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
