"""Restore drills (issue 18) on a real pool and rclone remotes: one that passes, one on a corrupted chunk."""

from __future__ import annotations

import os

import harness

from ansible_collections.offsite.zfs.plugins.module_utils._wiring import status_report
from ansible_collections.offsite.zfs.plugins.module_utils.drill_state import load_records
from ansible_collections.offsite.zfs.plugins.module_utils.keys import load_keys
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.drill import run_drills


def drills(lab, datasets, **kwargs):
    keys = load_keys(None, str(lab.key.path), None)
    return run_drills(lab.settings, datasets, keys=keys, **kwargs)


def scratch_left(lab) -> list:
    pools = harness.run(["zpool", "list", "-H", "-o", "name"], check=False).stdout.split()
    markers = list((lab.tmp / "state" / "scratch").glob("offsite-scratch-*")) if (
        lab.tmp / "state" / "scratch").exists() else []
    return [p for p in pools if p.startswith("offsite-scratch-") and any(p in str(m) for m in markers)] + markers


def test_a_drill_passes_then_a_corrupted_chunk_fails_and_shows_in_status(lab):
    ds = lab.pool.create("data")
    mount = lab.pool.mountpoint(ds)
    harness.write_data(mount, 5, 300 << 10)
    (mount / "small.txt").write_text("small\n")
    os.chmod(mount / "small.txt", 0o640)
    lab.pool.snapshot(ds, "s1")
    lab.backup(ds, "s1")
    (mount / "later.txt").write_text("later\n")
    lab.pool.snapshot(ds, "s2")
    lab.backup(ds, "s2")
    lab.config["datasets"] = {ds: {"drill_every": "1d"}}

    before = status_report(lab.config, {})
    assert [p["code"] for p in before["datasets"][ds]["problems"]] == ["drill_overdue"]

    passed = drills(lab, [ds], files=None)
    record = passed["drills"][0]
    assert passed["failed_drills"] == [] and record["result"] == "passed", record
    assert record["snapshot"] == "s2" and record["chain"] == 2 and record["bytes"] > 300 << 10
    assert record["files"]["checked"] is True, "the live snapshot's files (.zfs/snapshot or a clone) were compared"
    assert record["files"]["mismatch_count"] == 0 and record["files"]["compared"] == 3, record["files"]
    assert scratch_left(lab) == [], "the scratch place is gone"
    assert harness.run(["zfs", "list", "-H", "-o", "name", "-r", lab.pool.name]).stdout.split() == [
        lab.pool.name, ds], "the clone of the live snapshot is gone too"
    assert os.stat(lab.tmp / "state" / "drills.json").st_mode & 0o777 == 0o600
    shown = status_report(lab.config, {})["datasets"][ds]
    assert shown["drills"]["local"]["result"] == "passed" and shown["drills"]["local"]["bytes"] == record["bytes"]
    assert shown["problems"] == [] and shown["health"] == "ok"

    base = lab.remotes["local"] / "testhost" / ds
    newest = next(p for p in base.iterdir() if "+from+" in p.name)  # the incremental of s2
    victim = sorted(p for p in newest.iterdir() if p.name.startswith("chunk-"))[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    failed = drills(lab, [ds], files=5)
    record = failed["drills"][0]
    assert record["result"] == "failed" and record["error_code"] == "digest_mismatch", record
    assert failed["failed_drills"] == ["%s on local" % ds]
    assert victim.name in record["message"]
    assert scratch_left(lab) == [], "a failed drill destroys its scratch place too"
    assert load_records(str(lab.tmp / "state"))["%s|local" % ds]["result"] == "failed"
    shown = status_report(lab.config, {})["datasets"][ds]
    assert shown["drills"]["local"]["result"] == "failed"
    assert [p["code"] for p in shown["problems"]] == ["drill_failed"] and shown["health"] == "warning"
    assert lab.pool.snapshots(ds) == ["s1", "s2"], "the live dataset is untouched"


def test_the_drill_playbook(lab, ansible):
    ds = lab.pool.create("data")
    harness.write_data(lab.pool.mountpoint(ds), 8, 100 << 10)
    lab.pool.snapshot(ds, "s1")
    lab.backup(ds, "s1")
    proc = ansible.run_playbook("offsite.zfs.drill", {
        "offsite_config_path": str(lab.config_path), "offsite_datasets": [ds],
        "offsite_identity_file": str(lab.key.path)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "1 drills passed" in proc.stdout
    assert load_records(str(lab.tmp / "state"))["%s|local" % ds]["result"] == "passed"
