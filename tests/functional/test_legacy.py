"""Backups of the old `offsite` bash tool (issue 8), made here with its exact pipeline, restored in place."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Dict, Optional

import harness
import pytest

from ansible_collections.offsite.zfs.plugins.module_utils.common import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.legacy import (
    DRR_MAGIC,
    adopt_legacy,
    list_legacy,
    parse_header,
    restore_any,
    run_legacy_restore,
)
from ansible_collections.offsite.zfs.plugins.module_utils.restore import load_keys
from ansible_collections.offsite.zfs.plugins.module_utils.store import Provider, Store

PIECE = 64 * 1024


def old_tool(lab, remote: str, dataset: str, snapshot: str, base: Optional[str] = None, shards: bool = False,
             env: Optional[Dict[str, str]] = None) -> None:
    """The old tool's pipeline: zfs send | split -b | gzip | age -r | rclone rcat, with its object names."""
    folder = dataset.replace("/", "_")
    send = "zfs send -i %s@%s %s@%s" % (dataset, base, dataset, snapshot) if base else "zfs send %s@%s" % (
        dataset, snapshot)
    if shards:
        # Later versions: <dataset_>/<dataset_>:<snapshot>-sNNN-b<offset>.zfs.gz.age
        # split runs the filter with $SHELL: keep it POSIX (expr strips the leading zeros of 008).
        number = 'n=$(expr "${FILE##*x}" + 0); '
        name = '"$FOLDER:$SNAP-s$(printf %03d "$n")-b$((n * PIECE)).zfs.gz.age"'
        prefix = "x"
    else:
        # <dataset_>/<full|incr>-<snapshot>-xNNN.zfs.gz.age
        number = ""
        name = '"$FILE.zfs.gz.age"'
        prefix = "%s-%s-x" % ("incr" if base else "full", snapshot)
    script = (
        "set -euo pipefail\n"
        "%s | split -b $PIECE -d -a 3 --filter '"
        '%sgzip | age -r "$RECIPIENT" | "$RCLONE" rcat "$REMOTE/$FOLDER/"%s'
        "' - %s\n" % (send, number, name, prefix))
    harness.run(["bash", "-c", script], env=dict(
        os.environ, SHELL="/bin/sh", PIECE=str(PIECE),
        RECIPIENT=lab.key.public, RCLONE=lab.rclone, REMOTE=remote, FOLDER=folder,
        SNAP=snapshot, **(env or {})))


def fill(lab, dataset: str, seed: int, name: str = "data.bin", size: int = 160 << 10) -> None:
    harness.write_data(lab.pool.mountpoint(dataset), seed, size, name)


def legacy_lab(lab) -> Path:
    """The old tool's remote root, configured as the only provider."""
    root = lab.tmp / "old-remote"
    root.mkdir()
    lab.config["providers"] = {"old": {"remote": str(root), "retry_delay": 0.05, "retries": 1}}
    return root


def restore(lab, dataset: str, identity_file: Optional[str] = None, legacy: Optional[bool] = True,
            **kwargs) -> dict:
    keys = load_keys(None, identity_file or str(lab.key.path), None)
    settings = lab.settings(dataset, _single_provider=True)
    if legacy is None:
        return restore_any(settings, legacy=None, keys=keys, **kwargs)
    return run_legacy_restore(settings, keys=keys, **kwargs)


def test_split_pieces_chain_restores_byte_identical(lab):
    root = legacy_lab(lab)
    ds = lab.pool.create("data")
    digests = {}
    for number in (1, 2, 3):
        fill(lab, ds, number, "file%d.bin" % number)
        lab.pool.snapshot(ds, "daily-%d" % number)
        digests[number] = harness.tree_digest(lab.pool.mountpoint(ds))
        old_tool(lab, str(root), ds, "daily-%d" % number, base="daily-%d" % (number - 1) if number > 1 else None)
    folder = root / ds.replace("/", "_")
    assert (folder / "full-daily-1-x000.zfs.gz.age").exists() and (folder / "incr-daily-3-x000.zfs.gz.age").exists()
    listed = list_legacy(Store(lab.settings(ds).providers["old"]), ds)
    assert [(b.snapshot, b.kind, b.complete) for b in listed] == [
        ("daily-1", "full", True), ("daily-2", "incremental", True), ("daily-3", "incremental", True)]
    assert len(listed[0].pieces) >= 3, "the full stream is split into several pieces"

    # No native backup: auto-detection restores the latest (by the stream headers), the whole chain.
    latest = restore(lab, ds, legacy=None, target=lab.pool.name + "/latest")
    assert latest["legacy"] is True and "legacy_detected" in latest
    assert latest["snapshot"] == "daily-3" and latest["chain"] == [
        "full-daily-1-x000", "incr-daily-2-x000", "incr-daily-3-x000"]
    assert harness.tree_digest(lab.pool.mountpoint(lab.pool.name + "/latest")) == digests[3]
    # A middle snapshot, then forward from it (only the missing stream), then idempotent.
    middle = restore(lab, ds, snapshot="daily-2", target=lab.pool.name + "/middle")
    assert len(middle["received"]) == 2
    assert harness.tree_digest(lab.pool.mountpoint(lab.pool.name + "/middle")) == digests[2]
    forward = restore(lab, ds, snapshot="daily-3", target=lab.pool.name + "/middle")
    assert [r["snapshot"] for r in forward["received"]] == ["daily-3"]
    assert harness.tree_digest(lab.pool.mountpoint(lab.pool.name + "/middle")) == digests[3]
    assert restore(lab, ds, snapshot="daily-3", target=lab.pool.name + "/middle")["changed"] is False
    # Check mode without a key lists what is there and changes nothing.
    settings = lab.settings(ds, _single_provider=True)
    plan = run_legacy_restore(settings, target=lab.pool.name + "/plan", check_mode=True)
    assert plan["changed"] is True and len(plan["backups"]) == 3
    assert not lab.pool.exists(lab.pool.name + "/plan")


def test_shards_on_s3_restore_and_damage_is_refused(lab, s3, tmp_path):
    lab.config["providers"] = {}
    lab.add_s3(s3, "old")
    remote_name = "S3TOLD"
    remote = lab.config["providers"]["old"]["remote"]
    lab.config["providers"]["old"]["retries"] = 1
    ds = lab.pool.create("shards")
    fill(lab, ds, 7, size=300 << 10)
    lab.pool.snapshot(ds, "s1")
    old_tool(lab, remote, ds, "s1", shards=True, env=s3.env(remote_name))
    store = Store(lab.settings(ds).providers["old"])
    listed = list_legacy(store, ds)
    assert len(listed) == 1 and listed[0].layout == "shard" and listed[0].kind == "unknown"
    assert [p.offset for p in listed[0].pieces][:3] == [0, PIECE, 2 * PIECE]
    result = restore(lab, ds, target=lab.pool.name + "/copy")
    assert result["plan"][0]["kind"] == "full", "the kind comes from the stream header"
    assert harness.tree_digest(lab.pool.mountpoint(lab.pool.name + "/copy")) == harness.tree_digest(
        lab.pool.mountpoint(ds))

    # A wrong key is named before anything is received.
    other = harness.AgeKey(tmp_path, "other")
    with pytest.raises(OffsiteError) as caught:
        restore(lab, ds, identity_file=str(other.path), target=lab.pool.name + "/wrong")
    assert caught.value.code == "wrong_key" and not lab.pool.exists(lab.pool.name + "/wrong")

    # A flipped byte in a shard: age refuses it, nothing is left behind.
    bucket = s3.root / "bucket" / lab.pool.name / ds.replace("/", "_")
    shards = sorted(bucket.iterdir())
    victim = shards[2]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    with pytest.raises(OffsiteError) as caught:
        restore(lab, ds, target=lab.pool.name + "/damaged")
    assert caught.value.code == "chunk_corrupt" and "s002" in caught.value.message
    assert not lab.pool.exists(lab.pool.name + "/damaged")
    assert not lab.pool.exists(lab.pool.name + "/damaged.offsite-partial")

    # A missing shard: the listing names the gap, nothing is received.
    store.delete(list_legacy(store, ds)[0].pieces[2].key)  # through S3: rclone serve s3 caches its listing
    assert list_legacy(store, ds)[0].problems
    with pytest.raises(OffsiteError) as caught:
        restore(lab, ds, target=lab.pool.name + "/gap")
    assert caught.value.code == "no_backup" and "piece 2" in caught.value.message
    assert not lab.pool.exists(lab.pool.name + "/gap")


def test_stream_header_parser_reads_both_byte_orders_and_refuses_other_data():
    for order in "<>":
        data = struct.pack(order + "IIQQQIIQQ", 0, 0, DRR_MAGIC, 1, 1795307076, 2, 0, 11, 22)
        header = parse_header(data + b"tank/data@s1".ljust(256, b"\0"))
        fields = (header.toguid, header.fromguid, header.creation, header.toname)
        assert fields == ("11", "22", 1795307076, "tank/data@s1")
        assert not header.full and header.dataset_type == "filesystem"
    with pytest.raises(ValueError):
        parse_header(b"\0" * 400)
    with pytest.raises(ValueError):
        parse_header(b"short")


def test_listing_names_gaps_and_bad_offsets_without_a_key(tmp_path, rclone):
    folder = tmp_path / "old" / "tank_data"
    folder.mkdir(parents=True)
    for name in ("full-daily-1-x000.zfs.gz.age", "full-daily-1-x001.zfs.gz.age", "incr-daily-2-x000.zfs.gz.age",
                 "incr-daily-2-x002.zfs.gz.age", "tank_data:weekly-1-s000-b0.zfs.gz.age",
                 "tank_data:weekly-1-s001-b65536.zfs.gz.age", "tank_data:weekly-2-s000-b10.zfs.gz.age",
                 "notes.txt", "tank_other:x-s000-b0.zfs.gz.age"):
        (folder / name).write_bytes(b"age")
    store = Store(Provider("old", str(tmp_path / "old"), rclone=rclone))
    listed = {b.snapshot: b for b in list_legacy(store, "tank/data")}
    assert sorted(listed) == ["daily-1", "daily-2", "weekly-1", "weekly-2"]
    assert listed["daily-1"].complete and listed["daily-1"].kind == "full" and len(listed["daily-1"].pieces) == 2
    assert not listed["daily-2"].complete and "piece 1 of incr-daily-2-x000 is missing" in listed["daily-2"].problems
    assert listed["weekly-1"].complete and listed["weekly-1"].layout == "shard"
    assert listed["weekly-1"].kind == "unknown", "a shard name does not say full or incremental"
    assert not listed["weekly-2"].complete, "the first shard must start at byte 0"
    assert json.loads(json.dumps(listed["daily-1"].describe()))["pieces"] == 2
    assert list_legacy(store, "tank/none") == []


def test_offsite_restore_module_restores_old_tool_backup(lab, ansible, tmp_path):
    root = legacy_lab(lab)
    ds = lab.pool.create("mod")
    fill(lab, ds, 11)
    lab.pool.snapshot(ds, "old-1")
    old_tool(lab, str(root), ds, "old-1")
    target = lab.pool.name + "/mod-restored"
    mountpoint = tmp_path / "restored-here"
    result = ansible.module("offsite_restore", {
        "dataset": ds, "target": target, "config": str(lab.config_path), "identity_file": str(lab.key.path),
        "mountpoint": str(mountpoint)})
    assert result["_rc"] == 0, result.get("msg")
    assert result["changed"] is True and result["legacy"] is True and "mount_error" not in result
    assert lab.pool.mountpoint(target) == mountpoint
    assert harness.tree_digest(mountpoint) == harness.tree_digest(lab.pool.mountpoint(ds))


def test_adopt_verifies_every_piece_and_writes_native_backups(lab):
    root = legacy_lab(lab)
    ds = lab.pool.create("adopt")
    for number in (1, 2):
        fill(lab, ds, 20 + number, "file%d.bin" % number)
        lab.pool.snapshot(ds, "a%d" % number)
        old_tool(lab, str(root), ds, "a%d" % number, base="a1" if number == 2 else None)
    expected = harness.tree_digest(lab.pool.mountpoint(ds))
    settings = lab.settings(ds)
    keys = load_keys(None, str(lab.key.path), None)
    native_dir = root / "testhost" / ds
    plan = adopt_legacy(settings, keys, check_mode=True)
    assert [e["status"] for e in plan["providers"]["old"]["backups"]] == ["planned", "planned"]
    assert not native_dir.exists(), "check mode writes nothing"
    result = adopt_legacy(settings, keys)
    entries = result["providers"]["old"]["backups"]
    assert [(e["snapshot"], e["status"]) for e in entries] == [("a1", "adopted"), ("a2", "adopted")]
    assert entries[1]["backup_id"].endswith("+from+a1")
    assert all((native_dir / ("@" + e["backup_id"]) / "manifest.json").exists() for e in entries)
    assert (root / ds.replace("/", "_") / "full-a1-x000.zfs.gz.age").exists(), "legacy objects are kept"
    assert adopt_legacy(settings, keys)["changed"] is False
    # Now a native backup: restored by the native pipeline (digests, keyed MACs), linked by guid.
    restored = lab.restore(ds, "a2", target=lab.pool.name + "/adopted", provider="old")
    assert "legacy" not in restored and len(restored["chain"]) == 2
    assert harness.tree_digest(lab.pool.mountpoint(lab.pool.name + "/adopted")) == expected

    # A damaged piece is refused at adoption, by name, and nothing is written for that backup.
    fill(lab, ds, 30, "file3.bin")
    lab.pool.snapshot(ds, "a3")
    old_tool(lab, str(root), ds, "a3", base="a2")
    victim = root / ds.replace("/", "_") / "incr-a3-x001.zfs.gz.age"
    data = bytearray(victim.read_bytes())
    data[-40] ^= 0x01
    victim.write_bytes(bytes(data))
    failed = adopt_legacy(settings, keys)
    assert failed["failed_providers"] == ["old"]
    bad = next(e for e in failed["providers"]["old"]["backups"] if e["snapshot"] == "a3")
    assert bad["status"] == "failed" and victim.name in bad["message"]
    assert not any(p.name.startswith("@a3+") for p in native_dir.iterdir())
