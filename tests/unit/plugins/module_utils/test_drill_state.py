"""Drills without ZFS (issue 18): tree comparison, the state file, status health rules, stale scratch markers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils import drill_state, scratch
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore import drill
from ansible_collections.offsite.zfs.plugins.module_utils.ops.status import drills
from ansible_collections.offsite.zfs.plugins.module_utils.settings import DatasetPolicy
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import Zfs


def make_tree(root: Path) -> None:
    (root / "d").mkdir(parents=True)
    (root / "d" / "a.txt").write_text("a")
    (root / "b.bin").write_bytes(b"\0" * 1000)
    os.symlink("d/a.txt", root / "link")
    os.utime(root / "d" / "a.txt", (1_500_000_000, 1_500_000_000))


def test_compare_trees_finds_content_mode_and_missing(tmp_path: Path):
    live, copy = tmp_path / "live", tmp_path / "copy"
    make_tree(live)
    shutil.copytree(live, copy, symlinks=True)
    same = drill.compare_trees(str(live), str(copy), None, "1")
    assert same["mismatch_count"] == 0 and same["compared"] == same["entries"] == 4
    (copy / "b.bin").write_bytes(b"\1" + b"\0" * 999)
    os.utime(copy / "b.bin", ns=(os.lstat(live / "b.bin").st_atime_ns, os.lstat(live / "b.bin").st_mtime_ns))
    os.chmod(copy / "d" / "a.txt", 0o600)
    os.utime(copy / "d" / "a.txt", (1_500_000_000, 1_500_000_000))
    os.unlink(copy / "link")
    found = drill.compare_trees(str(live), str(copy), None, "1")
    assert found["mismatch_count"] == 3
    assert "/b.bin differs (content)" in found["mismatches"]
    assert "/d/a.txt differs (mode)" in found["mismatches"]
    assert "/link is missing from the copy" in found["mismatches"]
    sample = drill.compare_trees(str(live), str(copy), 2, "guid")
    assert sample["compared"] == 2 and sample == drill.compare_trees(str(live), str(copy), 2, "guid"), \
        "the sample is the same for the same seed"


def test_records_are_private_and_status_shows_them(tmp_path: Path):
    state = tmp_path / "state"
    drill_state.save_record(str(state), {
        "dataset": "tank/a", "provider": "b2", "result": "passed", "started": 1000.0, "seconds": 2.5, "bytes": 10})
    drill_state.save_record(str(state), {
        "dataset": "tank/a", "provider": "s3", "result": "failed", "started": 1000.0, "seconds": 1.0, "bytes": 0,
        "message": "Chunk 1 is corrupt.", "error_code": "chunk_corrupt"})
    assert os.stat(drill_state.state_path(str(state))).st_mode & 0o777 == 0o600
    datasets = {"tank/a": {"providers": {"b2": {}, "s3": {}, "gcs": {}}, "problems": [], "health": "ok"}}
    drills.add_drills(drill_state.load_records(str(state)), datasets, lambda d: DatasetPolicy(drill_every=3600.0),
                      1000.0 + 7200)
    entry = datasets["tank/a"]
    assert entry["drills"]["b2"]["result"] == "passed" and entry["drills"]["b2"]["seconds"] == 2.5
    assert entry["drills"]["s3"]["result"] == "failed" and "gcs" not in entry["drills"]
    codes = sorted((p["code"], p["provider"]) for p in entry["problems"])
    assert codes == [("drill_failed", "s3"), ("drill_overdue", "b2"), ("drill_overdue", "gcs"),
                     ("drill_overdue", "s3")]
    assert entry["health"] == "warning"
    fresh = {"tank/a": {"providers": {"b2": {}}, "problems": [], "health": "ok"}}
    drills.add_drills(drill_state.load_records(str(state)), fresh, lambda d: DatasetPolicy(drill_every=86400.0),
                      1000.0 + 7200)
    assert fresh["tank/a"]["problems"] == [] and fresh["tank/a"]["health"] == "ok"
    none = {"tank/a": {"providers": {"b2": {}}, "problems": [], "health": "ok"}}
    drills.add_drills(drill_state.load_records(str(state)), none, lambda d: DatasetPolicy(), 1e12)
    assert none["tank/a"]["problems"] == [], "without drill_every age is no problem"


def test_a_killed_runs_marker_is_cleaned_and_a_live_ones_is_kept(tmp_path: Path):
    if not shutil.which("zpool"):
        pytest.skip("no zpool command")
    state = tmp_path / "state"
    (state / "scratch").mkdir(parents=True)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    vdev = tmp_path / "offsite-scratch-deadbeef0000.img"
    vdev.write_bytes(b"")
    mnt = state / "scratch" / "offsite-scratch-deadbeef0000" / "mnt"
    mnt.mkdir(parents=True)
    dead = scratch.Place("offsite-scratch-deadbeef0000", "pool", "offsite-scratch-deadbeef0000",
                         "offsite-scratch-deadbeef0000", str(vdev), str(mnt), child.pid, "1", 0.0)
    alive = scratch.Place("offsite-scratch-a11ve0000000", "pool", "offsite-scratch-a11ve0000000",
                          "offsite-scratch-a11ve0000000", None, str(tmp_path / "m2"), os.getpid(),
                          scratch.process_start(os.getpid()), 0.0)
    for place in (dead, alive):
        (state / "scratch" / (place.id + ".json")).write_text(json.dumps(place.__dict__))
    assert scratch.cleanup_stale(Zfs(), str(state)) == [dead.id]
    assert not vdev.exists() and not mnt.parent.exists()
    assert sorted(p.name for p in (state / "scratch").iterdir()) == [alive.id + ".json"]
