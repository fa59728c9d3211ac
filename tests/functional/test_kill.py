"""kill -9 at random points (issue 5): backups resume and restores never leave a half-received target.

Each trial runs the operation in a child process (tests/functional/child.py) and kills it
once an observable condition holds (its lock is held, its journal records k chunks, its
staging dataset holds the first link): seeded, so a failure can be replayed.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import harness
import pytest
from faulty_rclone import Rule, Wrapper
from reliability import journal_chunks, kill9, same_tree, spawn, wait_for

from ansible_collections.offsite.zfs.plugins.module_utils import locks
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.target import STAGING_SUFFIX
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import PARTIAL_PROPERTY

TRIALS_PER_TEST = 5


def _receivers(name: str) -> list:
    """PIDs of `zfs receive` processes whose argv names this dataset."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = Path("/proc/%s/cmdline" % pid).read_bytes().split(b"\0")
        except OSError:
            continue
        if b"receive" in argv and name.encode() in argv:
            found.append(int(pid))
    return found


@pytest.mark.parametrize("seed", [1, 2])
def test_kill9_backup_at_random_points_then_rerun(lab, seed):
    """TRIALS_PER_TEST seeded trials per seed (10 in all), full and incremental, spooled and streaming."""
    rng = random.Random(seed)
    ds = lab.pool.create("data")
    mount = lab.pool.mountpoint(ds)
    state = lab.tmp / "state"
    for trial in range(TRIALS_PER_TEST):
        snap = "s%d" % trial
        harness.write_data(mount, seed * 100 + trial, 640 << 10, "file%d.bin" % trial)
        lab.pool.snapshot(ds, snap)
        spool = rng.random() < 0.6
        parallel = rng.choice([1, 2])
        point = rng.choice(["lock", "chunks", "chunks"])
        k = rng.randint(1, 6)
        label = "trial %d (seed %d): kill at %s%s, spool=%s, parallel=%d" % (
            trial, seed, point, " %d" % k if point == "chunks" else "", spool, parallel)
        params = {"spool": spool, "parallel_uploads": parallel}
        child = spawn(lab, "backup", ds, lab.tmp, params=params, kwargs={"snapshot": snap}, name="t%d" % trial)
        if point == "lock":
            wait_for(lambda c=child: any(h.get("pid") == c.pid for h in locks.held_locks(str(state))),
                     "the lock (%s)" % label, child=child)
        else:
            wait_for(lambda n=k: journal_chunks(state) >= n, "%d chunks (%s)" % (k, label), child=child)
        kill9(child)
        done = journal_chunks(state)
        result = lab.backup(ds, snap, spool=spool, parallel_uploads=parallel)
        entry = result["providers"]["local"]
        assert not result["failed_providers"], (label, entry)
        assert entry["kind"] == ("full" if trial == 0 else "incremental"), label
        if point == "chunks":
            assert entry["status"] == "resumed" and entry["chunks_resumed"] >= min(k, done), (label, entry)
        assert journal_chunks(state) == 0, "the journal is gone once the manifest is written"
        assert locks.held_locks(str(state)) == []
    target = lab.pool.name + "/copy"
    restored = lab.restore(ds, target=target)
    assert len(restored["chain"]) == TRIALS_PER_TEST
    assert same_tree(lab, ds, target)


def _chain(lab, seed: int) -> str:
    ds = lab.pool.create("data")
    mount = lab.pool.mountpoint(ds)
    for number in (1, 2, 3):
        harness.write_data(mount, seed + number, 384 << 10, "f%d.bin" % number)
        lab.pool.snapshot(ds, "s%d" % number)
        assert lab.backup(ds, "s%d" % number)["providers"]["local"]["status"] == "uploaded"
    return ds


def _gate_downloads(lab, match: str, after: int) -> Path:
    gate = lab.tmp / "gate-open"
    wrapper = Wrapper.create(lab.tmp / "bin", lab.rclone, [Rule(verbs=["cat"], match=match, after=after, every=1,
                                                                action="gate", gate=str(gate))])
    lab.config["rclone"] = str(wrapper.path)
    return gate


def test_kill9_during_the_first_link_leaves_no_target_and_a_rerun_succeeds(lab):
    ds = _chain(lab, 400)
    target = lab.pool.name + "/copy"
    staging = target + STAGING_SUFFIX
    real = lab.config["rclone"]
    gate = _gate_downloads(lab, "+full/", after=3)
    child = spawn(lab, "restore", ds, lab.tmp, kwargs={"snapshot": "s3", "target": target})
    calls = Path(lab.tmp / "bin" / "rclone-calls.log")
    wait_for(lambda: '"gate"' in calls.read_text(), "the restore to be in the middle of the full backup",
             child=child)
    assert not lab.pool.exists(target)
    kill9(child)
    gate.touch()
    # zfs receive sees its stream end and discards the partial receive.
    wait_for(lambda: not _receivers(staging), "the orphaned zfs receive to exit")
    assert not lab.pool.exists(target)
    lab.config["rclone"] = real
    result = lab.restore(ds, "s3", target=target)
    assert [r["snapshot"] for r in result["received"]] == ["s1", "s2", "s3"]
    assert same_tree(lab, ds, target)
    assert not lab.pool.exists(staging)


def test_kill9_after_the_first_link_resumes_from_staging(lab):
    ds = _chain(lab, 410)
    target = lab.pool.name + "/copy"
    staging = target + STAGING_SUFFIX
    real = lab.config["rclone"]
    gate = _gate_downloads(lab, "+from+s1/", after=1)
    child = spawn(lab, "restore", ds, lab.tmp, kwargs={"snapshot": "s3", "target": target})
    wait_for(lambda: lab.pool.exists(staging) and harness.run(
        ["zfs", "get", "-H", "-o", "value", PARTIAL_PROPERTY, staging], check=False).stdout.strip() == target,
        "the staging dataset to hold the first link", child=child)
    assert not lab.pool.exists(target), "the target name never holds a half-received chain"
    kill9(child)
    gate.touch()
    wait_for(lambda: not _receivers(staging), "the orphaned zfs receive to exit")
    assert not lab.pool.exists(target)
    assert lab.pool.snapshots(staging) == ["s1"], "the staging dataset keeps the first link"
    lab.config["rclone"] = real
    result = lab.restore(ds, "s3", target=target)
    assert result.get("resumed_from_staging") is True
    assert [r["snapshot"] for r in result["received"]] == ["s2", "s3"]
    assert same_tree(lab, ds, target)
    assert not lab.pool.exists(staging)
    assert lab.restore(ds, "s3", target=target)["changed"] is False
