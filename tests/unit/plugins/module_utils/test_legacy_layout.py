"""The old tool's object names, every pattern and variant of legacy-formats.md (pure, fast)."""

from __future__ import annotations

import struct

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils.legacy_layout import parse_layout, resolve_split
from ansible_collections.offsite.zfs.plugins.module_utils.legacy_stream import (
    DRR_MAGIC,
    RECORD,
    StreamHeader,
    end_guid,
    head_bytes_needed,
    parse_header,
)

DS = "tank/data"
E = ".zfs.gz.age"


def parse(*names, size=100):
    layout = parse_layout(DS, [(n, size) for n in names])
    return {(b.format, b.snapshot): b for b in layout.sets}, layout.unparsed


def test_f8_and_f7_offsets_numbering_from_one_and_past_999():
    names = ["tank_data:auto-20250719-113000-s%03d-b%020d%s" % (n, (n - 1) * 300, E) for n in range(1, 1003)]
    sets, unparsed = parse(*names)
    backup = sets[("F8", "auto-20250719-113000")]
    assert not unparsed and backup.complete and len(backup.pieces) == 1002
    assert [p.number for p in backup.pieces[998:1001]] == [999, 1000, 1001]
    assert backup.pieces[999].label == "s1000-b%020d" % (999 * 300)
    # F7: %010d, and an offset of 10^10 or more prints 11 digits (wider than the field).
    sets, _unparsed = parse("tank_data:auto-1-s001-b0000000000" + E, "tank_data:auto-1-s002-b9999999999" + E,
                            "tank_data:auto-1-s003-b19999999998" + E)
    f7 = sets[("F7", "auto-1")]
    assert f7.complete and [p.offset for p in f7.pieces] == [0, 9999999999, 19999999998]


def test_same_prefix_as_f7_and_f8_is_two_backups_and_kind_is_unknown():
    sets, _unparsed = parse("tank_data:now-s001-b0000000000" + E, "tank_data:now-s001-b00000000000000000000" + E)
    assert sorted(sets) == [("F7", "now"), ("F8", "now")]
    assert all(b.kind == "unknown" and b.complete for b in sets.values())


def test_dataset_prefix_is_removed_as_known_prefix_not_at_the_first_colon():
    layout = parse_layout("tank/a:b", [("tank_a:b:snap:1-s001" + E, 10), ("tank_a:b:snap:1-s002" + E, 10)])
    assert [(b.format, b.snapshot, b.complete) for b in layout.sets] == [("F6", "snap:1", True)]


def test_f5_f6_shards_and_gaps_are_named():
    sets, _unparsed = parse("full-auto-20250718-112800-s001" + E, "full-auto-20250718-112800-s003" + E,
                            "tank_data:auto-2-s001" + E)
    f5 = sets[("F5", "auto-20250718-112800")]
    assert f5.kind == "full" and not f5.complete
    assert f5.problems == ["piece s002 of full-auto-20250718-112800 is missing"]
    assert sets[("F6", "auto-2")].complete and sets[("F6", "auto-2")].notes, "an F6 set is one shard: noted"


def test_f3_f4_split_names_told_apart_by_the_second_piece():
    names = ["full-auto-20250716-180000-x%03d%s" % (n, E) for n in (1, 2, 3)] + ["incr-auto-2-x001" + E]
    layout = parse_layout(DS, [(n, 1000 if "x003" not in n else 10) for n in names])
    sets = {(b.kind, b.snapshot): b for b in layout.sets}
    full, incr = sets[("full", "auto-20250716-180000")], sets[("incremental", "auto-2")]
    assert full.format == incr.format == "F3/F4"
    resolve_split(full, True)
    resolve_split(incr, None)
    assert (full.format, incr.format) == ("F4", "F3/F4"), "a single piece is the same in both"
    other = parse_layout(DS, [(n, 1000 if "x002" not in n else 900) for n in names[:3]]).sets[0]
    resolve_split(other, False)
    assert other.format == "F3" and "x002" in other.problems[0], "F3 slices before the last have one size"


def test_f2_f1_staging_and_lookalikes_are_reported():
    sets, unparsed = parse("full-auto-1-$FILE" + E, "incr-auto-2" + E, "tank_data-auto-3" + E, "full-auto-3" + E,
                           "tank_data-auto-4" + E, "tank_data:x-s000-b0" + E, "full-daily-1-x000" + E,
                           "other:auto-1-s001" + E, "notes.txt", "log text\n[INFO] tank_data@auto-5-x001" + E,
                           "[INFO] x\u240afull-auto-6-x001" + E,
                           "sub/dir/full-x" + E)
    assert sets[("F2", "auto-1")].notes and sets[("F2", "auto-1")].kind == "full"
    assert sets[("F1", "auto-2")].kind == "incremental" and sets[("F1", "auto-2")].complete
    staging = sets[("F1", "auto-4")]
    assert staging.staging and staging.kind == "unknown" and staging.complete
    assert not [b for b in sets.values() if b.staging and b.snapshot == "auto-3" and b.complete], \
        "a staging copy next to its moved object is not a second backup"
    assert sets[("F3/F4", "daily-1")].problems[0].startswith("piece full-daily-1-x000" + E + " is numbered 0")
    reasons = {u.key.split("/", 1)[1]: u.reason for u in unparsed}
    assert "fewer than 10 digits" in reasons["tank_data:x-s000-b0" + E]
    assert "does not start with full- or tank_data:" in reasons["other:auto-1-s001" + E]
    assert "junk object" in reasons["log text\n[INFO] tank_data@auto-5-x001" + E]
    assert "junk object" in reasons["sub/dir/full-x" + E]
    assert "junk object" in reasons["[INFO] x\u240afull-auto-6-x001" + E], "as rclone lists a line break"
    assert "notes.txt" not in reasons


def test_f7_shard_numbers_and_offsets_out_of_order_or_not_from_zero():
    sets, _unparsed = parse("tank_data:a-s001-b0000000100" + E, "tank_data:a-s002-b0000000200" + E)
    assert "starts at byte 100" in sets[("F7", "a")].problems[0]
    sets, _unparsed = parse("tank_data:b-s001-b0000000000" + E, "tank_data:b-s002-b0000000000" + E)
    assert "not in the same order" in sets[("F7", "b")].problems[0]
    sets, _unparsed = parse("tank_data:c-s001" + E, "tank_data:c-s0001" + E)
    assert "twice" in sets[("F6", "c")].problems[0]


def _record(order, drr_type, *words):
    return struct.pack(order + "II", drr_type, 0) + struct.pack(order + "5Q", *words).ljust(RECORD - 8, b"\0")


@pytest.mark.parametrize("order", "<>")
def test_stream_records_plain_and_compound(order):
    begin = struct.pack(order + "IIQQQIIQQ", 0, 0, DRR_MAGIC, 1, 17, 2, 0, 11, 0) + b"tank/d@s1".ljust(256, b"\0")
    header = parse_header(begin)
    assert (header.toguid, header.full, header.snapshot, header.compound) == ("11", True, "s1", False)
    assert end_guid(b"x" * 50 + _record(order, 5, 1, 2, 3, 4, 11), header) == "11"
    with pytest.raises(ValueError):
        end_guid(begin, header)
    # zfs send -I: a compound BEGIN (no guids), a payload, the first sub-stream's BEGIN; END(guid), END(0) last.
    payload = b"\1" * 24
    compound = struct.pack(order + "IIQQQIIQQ", 0, len(payload), DRR_MAGIC, 2, 0, 0, 0, 0, 0) + \
        b"tank/d@s3".ljust(256, b"\0")
    sub = struct.pack(order + "IIQQQIIQQ", 0, 0, DRR_MAGIC, 1, 20, 2, 0, 12, 11) + b"tank/d@s2".ljust(256, b"\0")
    data = compound + payload + _record(order, 5, 9, 9, 9, 9, 0) + sub
    assert head_bytes_needed(data[:RECORD]) == len(data)
    header = parse_header(data)
    assert (header.compound, header.fromguid, header.toguid, header.snapshot) == (True, "11", "", "s3")
    assert end_guid(_record(order, 5, 1, 2, 3, 4, 13) + _record(order, 5, 0, 0, 0, 0, 0), header) == "13"
    with pytest.raises(ValueError):
        end_guid(_record(order, 5, 1, 2, 3, 4, 13), header)
    assert isinstance(header, StreamHeader)
