"""Manifest parse/MAC and catalog layout and chain resolution (no I/O)."""

from __future__ import annotations

import hashlib
import json

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils import catalog
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.manifest import (
    ChunkRecord,
    Manifest,
    SnapshotRef,
    parse,
)
from ansible_collections.offsite.zfs.plugins.module_utils.store import RemoteObject

KEY = b"k" * 32


def make_manifest(snapshot="s1", guid="11", base=None, base_guid=None, chunks=2, creation=100):
    base_ref = SnapshotRef(base, base_guid, 1, creation - 1) if base else None
    backup_id = catalog.make_backup_id(snapshot, int(guid), base)
    records = [ChunkRecord(i, catalog.chunk_object(i, ".zst"), 65536, hashlib.sha256(b"p%d" % i).hexdigest(),
                           1000 + i, hashlib.sha256(b"s%d" % i).hexdigest()) for i in range(chunks)]
    manifest = Manifest(backup_id=backup_id, namespace="host1", dataset="tank/data",
                        snapshot=SnapshotRef(snapshot, guid, 2, creation), kind="incremental" if base else "full",
                        base=base_ref, send_flags=[], compression={"algorithm": "zstd", "level": 3},
                        encryption={"kind": "recipients", "sealed_key": "c2VhbGVk"}, chunk_size=65536,
                        chunks=records)
    manifest.seal_with(KEY)
    return manifest


def as_backup(manifest, drop=()):
    backup = catalog.Backup(manifest.dataset, manifest.backup_id, manifest=manifest)
    for chunk in manifest.chunks:
        if chunk.object not in drop:
            backup.objects[chunk.object] = RemoteObject(chunk.object, chunk.stored_bytes)
    return backup


def test_manifest_round_trips_through_json_and_keeps_its_mac():
    manifest = make_manifest(base="s0", base_guid="10")
    parsed = parse(manifest.to_json())
    assert parsed == manifest
    assert parsed.check_mac(KEY)
    assert not parsed.check_mac(b"x" * 32)
    assert parsed.plain_bytes == 2 * 65536


def test_edited_manifest_fails_its_mac():
    data = json.loads(make_manifest().to_json())
    data["chunks"][0]["stored_bytes"] += 1
    data["totals"]["stored_bytes"] += 1
    edited = parse(json.dumps(data).encode())
    assert not edited.check_mac(KEY)


@pytest.mark.parametrize("change,words", [
    (lambda d: d.update(format="other"), "format"),
    (lambda d: d.update(version=99), "version"),
    (lambda d: d.update(kind="differential"), "kind"),
    (lambda d: d.update(base={"name": "s0", "guid": "10"}), "base"),
    (lambda d: d["chunks"][1].update(index=5), "index"),
    (lambda d: d["chunks"][0].update(object="../../etc/passwd"), "chunk object name"),
    (lambda d: d["chunks"][0].update(plain_mac="zz"), "64 hex"),
    (lambda d: d["totals"].update(chunks=7), "totals"),
    (lambda d: d["compression"].update(algorithm="lz4"), "compression"),
    (lambda d: d["snapshot"].update(guid="0x12"), "guid"),
])
def test_bad_manifests_are_refused_with_a_reason(change, words):
    data = json.loads(make_manifest().to_json())
    change(data)
    with pytest.raises(OffsiteError) as info:
        parse(json.dumps(data).encode(), "manifest of tank/data@s1 on b2")
    assert info.value.code == "bad_manifest"
    assert "manifest of tank/data@s1 on b2" in info.value.message
    assert words in info.value.message


def test_manifest_that_is_not_json_is_refused():
    with pytest.raises(OffsiteError, match="not a valid offsite.zfs manifest"):
        parse(b"\xff\xfe not json")


def test_backup_ids_and_object_names():
    assert catalog.make_backup_id("daily", 255, None) == "daily+00000000000000ff+full"
    assert catalog.make_backup_id("d2", 1, "d1") == "d2+0000000000000001+from+d1"
    assert catalog.backup_dir("h", "tank/data", "x+full") == "h/tank/data/@x+full"
    assert catalog.chunk_object(7, ".zst") == "chunk-000007.zst.age"


@pytest.mark.parametrize("path,expected", [
    ("tank/data/@id/chunk-000001.zst.age", ("tank/data", "id", "chunk-000001.zst.age")),
    ("tank/@id/manifest.json", ("tank", "id", "manifest.json")),
    ("tank/data/child/@x+full/manifest.json", ("tank/data/child", "x+full", "manifest.json")),
    ("@id/manifest.json", None),
    ("tank/data/@id", None),
    ("tank/data/manifest.json", None),
])
def test_split_path(path, expected):
    assert catalog.split_path(path) == expected


def test_resolve_chain_follows_guids_and_prefers_the_shortest():
    full = make_manifest("s1", "11")
    incr2 = make_manifest("s2", "12", base="s1", base_guid="11")
    incr3 = make_manifest("s3", "13", base="s2", base_guid="12")
    incr3_direct = make_manifest("s3", "13", base="s1", base_guid="11")
    backups = [as_backup(m) for m in (full, incr2, incr3)]
    chain = catalog.resolve_chain(backups, "13")
    assert [b.backup_id for b in chain] == [full.backup_id, incr2.backup_id, incr3.backup_id]
    chain = catalog.resolve_chain(backups + [as_backup(incr3_direct)], "13")
    assert [b.backup_id for b in chain] == [full.backup_id, incr3_direct.backup_id]


def test_resolve_chain_skips_broken_links_and_missing_chunks():
    full = make_manifest("s1", "11")
    incr = make_manifest("s2", "12", base="s1", base_guid="11")
    assert catalog.resolve_chain([as_backup(incr)], "12") is None
    damaged = as_backup(full, drop=[full.chunks[0].object])
    assert not damaged.intact and damaged.missing_objects() == [full.chunks[0].object]
    assert catalog.resolve_chain([damaged, as_backup(incr)], "12") is None
    chain = catalog.resolve_chain([damaged, as_backup(incr)], "12", intact_only=False)
    assert [b.snapshot_name for b in chain] == ["s1", "s2"]


def test_resolve_chain_survives_a_cycle():
    a = make_manifest("a", "21", base="b", base_guid="22")
    b = make_manifest("b", "22", base="a", base_guid="21")
    assert catalog.resolve_chain([as_backup(a), as_backup(b)], "21") is None


def test_latest_backup_is_by_creation_not_by_name():
    older = make_manifest("zzz", "31", creation=100)
    newer = make_manifest("aaa", "32", creation=200)
    incomplete = catalog.Backup("tank/data", "newest+0000000000000021+full")
    latest = catalog.latest_backup([as_backup(older), as_backup(newer), incomplete])
    assert latest.snapshot_name == "aaa"
    assert catalog.latest_backup([incomplete]) is None
