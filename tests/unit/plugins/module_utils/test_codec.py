"""Compression and age encryption round trips (plugins/module_utils/codec.py)."""

from __future__ import annotations

import io
import os

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils import codec
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError

pyrage = pytest.importorskip("pyrage")
DATA = (b"log line status=ok\n" * 5000) + os.urandom(70000) + bytes(30000)


@pytest.mark.parametrize("algorithm", ["zstd", "gzip", "none"])
def test_compression_round_trip_in_pieces(algorithm):
    comp = codec.compressor(algorithm, level=3)
    packed = b"".join(comp.compress(DATA[i:i + 4096]) for i in range(0, len(DATA), 4096)) + comp.flush()
    if algorithm != "none":
        assert len(packed) < len(DATA)
    dec = codec.decompressor(algorithm)
    pieces = []
    for i in range(0, len(packed), 1000):
        dec.feed(packed[i:i + 1000], pieces.append)
    assert b"".join(pieces) == DATA


@pytest.mark.parametrize("algorithm,threads", [("zstd", 1), ("zstd", 0), ("gzip", 0), ("none", 0)])
def test_compressors_of_one_backup_make_independent_chunks(algorithm, threads):
    """The factory shares zstd's context across chunks; each chunk is still a whole frame of its own."""
    make = codec.compressors(algorithm, 3, threads)
    chunks = [DATA, DATA[::-1][:123457], b""]
    packed = []
    for data in chunks:
        comp = make()
        packed.append(b"".join(comp.compress(data[i:i + 65536]) for i in range(0, len(data), 65536)) + comp.flush())
    for data, stored in zip(reversed(chunks), reversed(packed)):  # any chunk decodes alone, in any order
        dec = codec.decompressor(algorithm)
        pieces = []
        dec.feed(stored, pieces.append)
        assert b"".join(pieces) == data
    if algorithm == "zstd":
        assert packed[0][:4] == packed[1][:4] == b"\x28\xb5\x2f\xfd"  # a frame's magic at the start of each


def test_a_chunk_left_mid_frame_takes_its_zstd_context_with_it():
    """A failed chunk's unfinished frame: reusing its multithreaded context crashed python-zstandard (a
    segfault within a few rounds of this loop); the next chunk gets a fresh context, a finished one is kept."""
    make = codec.compressors("zstd", 3, 1)
    big = os.urandom(3 << 20) + b"x" * (5 << 20)
    for _round in range(20):
        left = make()
        left.compress(big)  # the encoding failed here: no flush
        comp = make()
        stored = comp.compress(DATA) + comp.flush()
        pieces = []
        codec.decompressor("zstd").feed(stored, pieces.append)
        assert b"".join(pieces) == DATA
    context = make._context
    make().flush()
    make()
    assert make._context is context  # after finished frames: the same context


def test_unknown_compression_is_refused():
    with pytest.raises(OffsiteError, match="zstd, gzip or none"):
        codec.compressor("lz4")
    with pytest.raises(OffsiteError) as info:
        codec.decompressor("lz4")
    assert info.value.code == "bad_manifest"


def test_age_stream_round_trip_with_recipients():
    identity = pyrage.x25519.Identity.generate()
    enc = codec.encryption_for_backup([str(identity.to_public())], None)
    assert enc.kind == "recipients"
    sealed = io.BytesIO()
    codec.encrypt_stream(io.BytesIO(DATA), sealed, enc.recipients)
    assert DATA[:64] not in sealed.getvalue()
    out = io.BytesIO()
    codec.decrypt_stream(io.BytesIO(sealed.getvalue()), out, codec.parse_identities(str(identity)))
    assert out.getvalue() == DATA


def test_seal_with_the_wrong_key_is_one_sentence():
    right = pyrage.x25519.Identity.generate()
    wrong = pyrage.x25519.Identity.generate()
    sealed = codec.seal(b"secret", [right.to_public()])
    assert codec.unseal(sealed, [right]) == b"secret"
    with pytest.raises(OffsiteError) as info:
        codec.unseal(sealed, [wrong])
    assert info.value.code == "wrong_key"


def test_passphrase_mode_reuses_its_wrapped_identity():
    first = codec.encryption_for_backup([], "correct horse")
    again = codec.encryption_for_backup([], "correct horse", first.wrapped_identity)
    assert first.kind == "passphrase" and again.recipient_strings == first.recipient_strings
    with pytest.raises(OffsiteError, match="passphrase does not open"):
        codec.unwrap_identity(first.wrapped_identity, "wrong")


def test_no_keys_at_all_is_refused():
    with pytest.raises(OffsiteError) as info:
        codec.encryption_for_backup([], None)
    assert info.value.code == "no_keys"


@pytest.mark.parametrize("text", ["age1notakey", "hello", "ssh-ed25519 AAAAbroken"])
def test_bad_recipients_are_named(text):
    with pytest.raises(OffsiteError) as info:
        codec.parse_recipients([text])
    assert info.value.code == "bad_recipient"


def test_identity_file_without_keys_is_refused():
    with pytest.raises(OffsiteError, match="no age secret key"):
        codec.parse_identities("# just a comment\n", "the identity file /root/k")
