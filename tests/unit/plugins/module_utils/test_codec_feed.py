"""Bounded decompression (codec decompressors' feed): a run of zeros never becomes one huge piece."""

from __future__ import annotations

import os

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils import codec

pytest.importorskip("zstandard")


def _pack(algorithm: str, data: bytes, members: int = 1) -> bytes:
    out = b""
    step = len(data) // members + 1
    for start in range(0, len(data), step):  # several frames / gzip members, as resumed streams can hold
        comp = codec.compressor(algorithm, level=3)
        out += comp.compress(data[start:start + step]) + comp.flush()
    return out


@pytest.mark.parametrize("algorithm", ["zstd", "gzip", "none"])
@pytest.mark.parametrize("members", [1, 3])
def test_feed_round_trips_in_bounded_pieces(algorithm: str, members: int) -> None:
    data = os.urandom(300000) + bytes(24 << 20) + b"end of stream\n" * 1000
    packed = _pack(algorithm, data, members)
    pieces = []
    dec = codec.decompressor(algorithm)
    for start in range(0, len(packed), 65536):
        dec.feed(memoryview(packed)[start:start + 65536], pieces.append)
    assert b"".join(pieces) == data
    assert max(len(p) for p in pieces) <= codec.OUTPUT_PIECE


@pytest.mark.parametrize("algorithm", ["zstd", "gzip"])
def test_a_small_input_of_zeros_is_emitted_piece_by_piece(algorithm: str) -> None:
    packed = _pack(algorithm, bytes(64 << 20))
    assert len(packed) < 1 << 20  # the whole 64 MiB fits in one small write
    sizes = []
    codec.decompressor(algorithm).feed(packed, lambda piece: sizes.append(len(piece)))
    assert sum(sizes) == 64 << 20
    assert max(sizes) <= codec.OUTPUT_PIECE
