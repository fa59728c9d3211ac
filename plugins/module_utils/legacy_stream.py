# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Legacy stream records: what the old tool's plaintext `zfs send` streams say about themselves (pure).

Private to the collection: not an API for other collections.

The BEGIN record (the first 312 bytes) gives the snapshot's guid, its base's guid, its creation time and
its original `dataset@snapshot`. The old tool's incrementals use `zfs send -I`, a compound stream: its
first BEGIN holds no guids, the first sub-stream's BEGIN (after the header's payload and the END record
that closes the header) holds the base's
guid, and the final snapshot's guid is in the END record of the last sub-stream, just before the
stream's closing END record. The END records at the tail also show whether the stream is complete.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Optional, Tuple

DRR_MAGIC = 0x2F5BACBAC
RECORD = 312  # one dmu_replay_record
HEADER_BYTES = RECORD
DRR_BEGIN, DRR_END = 0, 5
COMPOUND = 2  # DMU_COMPOUNDSTREAM, in the low bits of drr_versioninfo
MAX_PAYLOAD = 1 << 20  # a compound header's packed nvlist; larger is not a stream of the old tool
TAIL_BYTES = 2 * RECORD


@dataclass
class StreamHeader:
    """What the start of a zfs send stream says; toguid is "" for a compound stream until its tail is read."""

    toguid: str
    fromguid: str  # "0" for a full stream
    creation: int
    toname: str  # the original dataset@snapshot
    objset_type: int = 2  # DMU_OST_ZFS = 2 (file system), DMU_OST_ZVOL = 1 (volume)
    compound: bool = False
    order: str = "<"

    @property
    def full(self) -> bool:
        return self.fromguid == "0"

    @property
    def dataset_type(self) -> str:
        return "volume" if self.objset_type == 1 else "filesystem"

    @property
    def snapshot(self) -> str:
        return self.toname.partition("@")[2]


def _begin(data: bytes, order: Optional[str] = None) -> Optional[Tuple[str, Tuple[int, ...], str]]:
    """(order, (versioninfo, creation, type, flags, toguid, fromguid), toname) of a BEGIN record, or None."""
    if len(data) < RECORD:
        return None
    for candidate in ((order,) if order else ("<", ">")):
        drr_type, _payload, magic = struct.unpack(candidate + "IIQ", data[:16])
        if drr_type == DRR_BEGIN and magic == DRR_MAGIC:
            fields = struct.unpack(candidate + "QQIIQQ", data[16:56])
            return candidate, fields, data[56:RECORD].split(b"\0", 1)[0].decode("utf-8", "replace")
    return None


def is_begin(data: bytes) -> bool:
    return _begin(data) is not None


def head_bytes_needed(data: bytes) -> int:
    """How many bytes of the stream's start parse_header needs (more than RECORD for a compound stream)."""
    begin = _begin(data)
    if begin is None or begin[1][0] & 3 != COMPOUND:
        return RECORD
    payload = struct.unpack(begin[0] + "I", data[4:8])[0]
    return RECORD + min(payload, MAX_PAYLOAD) + 2 * RECORD


def parse_header(data: bytes) -> StreamHeader:
    """Parse the start of a zfs send stream (either byte order, plain or compound)."""
    begin = _begin(data)
    if begin is None:
        raise ValueError("not a zfs send stream")
    order, (versioninfo, creation, objset_type, _flags, toguid, fromguid), toname = begin
    if versioninfo & 3 != COMPOUND:
        return StreamHeader(str(toguid), str(fromguid), creation, toname, objset_type, False, order)
    payload = struct.unpack(order + "I", data[4:8])[0]
    if payload > MAX_PAYLOAD:
        raise ValueError("a compound stream header that is too large")
    at = RECORD + payload
    if len(data) >= at + RECORD and struct.unpack(order + "I", data[at:at + 4])[0] == DRR_END:
        at += RECORD  # the END record that closes the compound header (its checksum)
    sub = _begin(data[at:at + RECORD], order)
    if sub is None:
        raise ValueError("a compound stream without a sub-stream")
    _v, sub_creation, sub_type, _f, _to, sub_from = sub[1]
    return StreamHeader("", str(sub_from), sub_creation, toname, sub_type, True, order)


def end_guid(tail: bytes, header: StreamHeader) -> str:
    """The final snapshot's guid from the stream's last records; ValueError when the stream does not end there.

    A plain stream ends with END(toguid); a compound one with END(toguid of the last sub-stream), END(0).
    Streams of ZFS versions whose END record has no toguid give "0" (unknown).
    """
    order = header.order
    if len(tail) < RECORD:
        raise ValueError("the stream is shorter than one record")
    last = tail[-RECORD:]
    drr_type, payload = struct.unpack(order + "II", last[:8])
    if drr_type != DRR_END or payload != 0:
        raise ValueError("the stream does not end with its END record")
    if not header.compound:
        return str(struct.unpack(order + "Q", last[40:48])[0])
    if any(last[8:48]) or len(tail) < 2 * RECORD:
        raise ValueError("the compound stream does not end with its closing END record")
    inner = tail[-2 * RECORD:-RECORD]
    drr_type, payload = struct.unpack(order + "II", inner[:8])
    if drr_type != DRR_END or payload != 0:
        raise ValueError("the last sub-stream does not end with its END record")
    return str(struct.unpack(order + "Q", inner[40:48])[0])


class StreamTracker:
    """Counts the plaintext of one stream as it passes, keeping its start and its last two records."""

    def __init__(self, write: Any = None, keep: int = 0) -> None:
        self._write = write
        self.keep = keep
        self.head = b""
        self.tail = b""
        self.plain_bytes = 0

    def feed(self, plain: bytes) -> None:
        if len(self.head) < self.keep:
            self.head += plain[:self.keep - len(self.head)]
        self.tail = (self.tail + plain)[-TAIL_BYTES:] if len(plain) < TAIL_BYTES else plain[-TAIL_BYTES:]
        self.plain_bytes += len(plain)
        if self._write is not None:
            view = memoryview(plain)
            while len(view):
                written = self._write(view)
                view = view[written:] if written is not None else view[len(view):]


def describe_header(header: Optional[StreamHeader]) -> Any:
    if header is None:
        return {"guid": None, "base_guid": None, "creation": None, "original_name": None}
    return {"guid": header.toguid or None, "base_guid": None if header.full else header.fromguid,
            "creation": header.creation, "original_name": header.toname,
            "stream": "compound (zfs send -I)" if header.compound else "plain"}
