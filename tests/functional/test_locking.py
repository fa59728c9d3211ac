"""Locking (issue 5): one flock per dataset and provider for backups, per target for restores.

A backup is held in the middle of its upload by a gate in the fault-injecting rclone
(tests/functional/faulty_rclone.py): uploads wait until the test creates the gate file.
The tests synchronise on observable conditions (the lock is held), never on sleeps.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import harness
import pytest
from faulty_rclone import UPLOAD_VERBS, Rule, Wrapper
from reliability import finish, kill9, manifests, same_tree, spawn, wait_for

from ansible_collections.offsite.zfs.plugins.module_utils import locks
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.ops.prune import run as prune
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store


def _gated(lab, verbs, match: str = "", after: int = 1) -> Path:
    """Route rclone through a wrapper whose matching calls wait for the returned gate file."""
    gate = lab.tmp / "gate-open"
    wrapper = Wrapper.create(lab.tmp / "bin", lab.rclone, [Rule(verbs=verbs, match=match, after=after, every=1,
                                                                action="gate", gate=str(gate))])
    lab.config["rclone"] = str(wrapper.path)
    return gate


def _holder(lab, pid: int):
    """The lock held by pid, once it is held."""
    return next((h for h in locks.held_locks(str(lab.tmp / "state")) if h.get("pid") == pid), None)


def _dataset(lab, name: str, seed: int, size: int = 384 << 10) -> str:
    ds = lab.pool.create(name)
    harness.write_data(lab.pool.mountpoint(ds), seed, size)
    lab.pool.snapshot(ds, "s1")
    return ds


def test_same_dataset_and_provider_twice_fails_at_once_other_provider_runs(lab):
    ds = _dataset(lab, "data", 201)
    other = lab.add_local("other")
    gate = _gated(lab, UPLOAD_VERBS, match=str(lab.remotes["local"]))
    child = spawn(lab, "backup", ds, lab.tmp, kwargs={"snapshot": "s1"}, params={"providers": "local"})
    try:
        held = wait_for(lambda: _holder(lab, child.pid), "the first backup to hold its lock", child=child)
        assert held["dataset"] == ds and held["provider"] == "local"
        # The same dataset to the same provider: refused at once, naming the holder.
        second = lab.backup(ds, "s1", providers="local")
        entry = second["providers"]["local"]
        assert second["failed_providers"] == ["local"] and entry["error_code"] == "locked"
        assert re.fullmatch(r"another offsite backup of %s to local is running \(PID %d, since \d\d:\d\d:\d\d\); "
                            r"wait for it or stop it\." % (re.escape(ds), child.pid), entry["message"]), entry
        assert child.poll() is None, "the second backup did not wait for the first"
        # A prune of the same dataset on the same provider takes the same lock: refused as well.
        settings = lab.settings(ds)
        with pytest.raises(OffsiteError) as caught:
            prune.prune_provider(settings, Store(settings.providers["local"]), {"last": 1}, 86400.0, False)
        assert caught.value.code == "locked" and "PID %d" % child.pid in caught.value.message
        # The same dataset to another provider runs while the first is still going.
        parallel = lab.backup(ds, "s1", providers="other")
        assert parallel["providers"]["other"]["status"] == "uploaded"
        assert len(manifests(other)) == 1
        assert child.poll() is None and _holder(lab, child.pid) is not None
    finally:
        gate.touch()
    result = finish(child)
    assert result["_rc"] == 0 and result["providers"]["local"]["status"] == "uploaded"
    assert locks.held_locks(str(lab.tmp / "state")) == []


def test_kill9_releases_the_lock_and_the_leftover_lock_file_is_harmless(lab, monkeypatch):
    ds = _dataset(lab, "data", 202)
    gate = _gated(lab, UPLOAD_VERBS)
    calls = lab.tmp / "bin" / "rclone-calls.log"
    child = spawn(lab, "backup", ds, lab.tmp, kwargs={"snapshot": "s1"})
    held = wait_for(lambda: _holder(lab, child.pid), "the backup to hold its lock", child=child)
    wait_for(lambda: '"gate"' in calls.read_text(), "an upload to be under way", child=child)
    kill9(child)
    # The upload the dead run started inherited its lock: until it ends, a rerun cannot race it.
    monkeypatch.setattr(locks, "DEAD_HOLDER_WAIT", 0.3)
    refused = lab.backup(ds, "s1")["providers"]["local"]
    assert refused["error_code"] == "locked" and "is still finishing" in refused["message"]
    assert "PID %d" % child.pid in refused["message"], refused["message"]
    gate.touch()  # the orphaned upload finishes, and with it the lock
    wait_for(lambda: locks.held_locks(str(lab.tmp / "state")) == [], "the orphaned upload to end")
    # The lock file stays behind, still naming the dead holder: nobody holds it, and it is harmless.
    lock_file = Path(held["lock"])
    assert lock_file.exists() and json.loads(lock_file.read_text())["pid"] == child.pid
    result = lab.backup(ds, "s1")
    assert result["providers"]["local"]["status"] in ("uploaded", "resumed"), result
    target = lab.pool.name + "/copy"
    lab.restore(ds, "s1", target=target)
    assert same_tree(lab, ds, target)


def test_restore_lock_is_per_target(lab):
    ds = _dataset(lab, "data", 203)
    assert lab.backup(ds, "s1")["providers"]["local"]["status"] == "uploaded"
    real_rclone = lab.config["rclone"]
    gate = _gated(lab, ["cat"], after=2)
    target = lab.pool.name + "/copy"
    child = spawn(lab, "restore", ds, lab.tmp, kwargs={"snapshot": "s1", "target": target})
    try:
        wait_for(lambda: _holder(lab, child.pid), "the restore to hold its lock", child=child)
        lab.config["rclone"] = real_rclone
        with pytest.raises(OffsiteError) as caught:
            lab.restore(ds, "s1", target=target)
        assert caught.value.code == "locked"
        assert re.fullmatch(r"another offsite restore to %s is running \(PID %d, since \d\d:\d\d:\d\d\); wait for "
                            r"it or stop it\." % (re.escape(target), child.pid), caught.value.message)
        # Another target restores while the first is still going.
        elsewhere = lab.pool.name + "/elsewhere"
        assert lab.restore(ds, "s1", target=elsewhere)["changed"] is True
        assert same_tree(lab, ds, elsewhere)
        assert child.poll() is None and not lab.pool.exists(target)
    finally:
        gate.touch()
    assert finish(child)["_rc"] == 0
    assert same_tree(lab, ds, target)


def test_four_backups_of_different_datasets_in_parallel(lab):
    datasets = [_dataset(lab, "d%d" % n, 210 + n, 256 << 10) for n in range(4)]
    children = [spawn(lab, "backup", ds, lab.tmp, kwargs={"snapshot": "s1"}, name="spec%d" % n)
                for n, ds in enumerate(datasets)]
    results = [finish(child) for child in children]
    assert [r["_rc"] for r in results] == [0, 0, 0, 0], results
    assert all(r["providers"]["local"]["status"] == "uploaded" for r in results)
    assert len(manifests(lab.remotes["local"])) == 4
    target = lab.pool.name + "/copy3"
    lab.restore(datasets[3], "s1", target=target)
    assert same_tree(lab, datasets[3], target)
