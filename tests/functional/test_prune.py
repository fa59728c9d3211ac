"""offsite_prune on real pools and real remotes (local directory and rclone serve s3)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import harness
import pytest

from ansible_collections.offsite.zfs.plugins.module_utils import locks
from ansible_collections.offsite.zfs.plugins.module_utils.common import human_bytes as harness_bytes
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.converge import converge_dataset
from ansible_collections.offsite.zfs.plugins.module_utils.ops.prune.run import prune_dataset


def fill(lab, dataset: str, seed: int, size: int = 256 << 10, name: str = "data.bin") -> None:
    harness.write_data(lab.pool.mountpoint(dataset), seed, size, name)


def remote_ids(lab, provider: str, ds: str, s3=None) -> list:
    if provider == "s3":
        base = s3.root / "bucket" / lab.pool.name / "testhost" / ds
    else:
        base = lab.remotes[provider] / "testhost" / ds
    return sorted(p.name[1:] for p in base.iterdir() if p.name.startswith("@")) if base.exists() else []


def make_history(lab, ds: str, provider: str) -> dict:
    """s1 full, s2 and s3 incremental, s4 full, s5 incremental: backup ids by snapshot."""
    ids = {}
    for number in range(1, 6):
        fill(lab, ds, 100 + number, name="f%d.bin" % number)
        lab.pool.snapshot(ds, "s%d" % number)
        result = lab.backup(ds, "s%d" % number, providers=[provider], full=number == 4)
        ids["s%d" % number] = result["providers"][provider]["backup_id"]
    return ids


@pytest.mark.parametrize("provider", ["local", "s3"])
def test_prune_keeps_the_chain_of_what_it_keeps_and_check_mode_deletes_nothing(lab, request, provider):
    s3 = None
    if provider == "s3":
        s3 = request.getfixturevalue("s3")
        lab.add_s3(s3)
    ds = lab.pool.create("data")
    ids = make_history(lab, ds, provider)
    assert ids["s4"].endswith("+full") and ids["s5"].endswith("+from+s4")
    settings = lab.settings(ds, providers=[provider])
    before = remote_ids(lab, provider, ds, s3)
    assert len(before) == 5

    plan = prune_dataset(settings, check_mode=True, keep={"last": 1})
    entry = plan["providers"][provider]
    assert plan["changed"] is True and entry["status"] == "planned"
    assert sorted(d["backup_id"] for d in entry["deleted"]) == sorted([ids["s1"], ids["s2"], ids["s3"]])
    assert all(d["reason"] == "not selected by keep (last 1)" for d in entry["deleted"])
    kept = {k["backup_id"]: k["reasons"] for k in entry["kept"]}
    assert kept == {ids["s5"]: ["newest", "last 1 (#1)"], ids["s4"]: ["base of kept s5"]}
    assert remote_ids(lab, provider, ds, s3) == before, "check mode deleted something"

    done = prune_dataset(settings, check_mode=False, keep={"last": 1})
    assert done["changed"] is True and done["providers"][provider]["status"] == "pruned"
    assert remote_ids(lab, provider, ds, s3) == sorted([ids["s4"], ids["s5"]])
    # What is kept still restores, byte for byte.
    expected = harness.tree_digest(lab.pool.mountpoint(ds))
    restored = lab.restore(ds, "s5", target=lab.pool.name + "/back", provider=provider)
    assert restored["chain"] == [ids["s4"], ids["s5"]]
    assert harness.tree_digest(lab.pool.mountpoint(lab.pool.name + "/back")) == expected
    # Idempotent.
    again = prune_dataset(settings, check_mode=False, keep={"last": 1})
    assert again["changed"] is False and again["providers"][provider]["status"] == "unchanged"


def test_no_keep_rules_delete_nothing_and_a_middle_snapshot_keeps_its_chain(lab):
    ds = lab.pool.create("data")
    ids = make_history(lab, ds, "local")
    settings = lab.settings(ds)
    assert prune_dataset(settings, check_mode=False, keep={})["changed"] is False
    assert len(remote_ids(lab, "local", ds)) == 5
    # last 4 keeps s2..s5, and s2 needs s1: nothing at all can go.
    result = prune_dataset(settings, check_mode=False, keep={"last": 4})
    assert result["changed"] is False
    kept = {k["backup_id"]: k["reasons"] for k in result["providers"]["local"]["kept"]}
    assert sorted(kept[ids["s1"]]) == ["base of kept s2", "base of kept s3"]


def _fake_incomplete(lab, ds: str, name: str, age: float) -> Path:
    """A leftover upload without manifest, its objects last touched `age` seconds ago."""
    bdir = lab.remotes["local"] / "testhost" / ds / ("@%s+00000000000000aa+full" % name)
    bdir.mkdir(parents=True)
    chunk = bdir / "chunk-000000.zst.age"
    chunk.write_bytes(os.urandom(1000))
    stamp = time.time() - age
    os.utime(chunk, (stamp, stamp))
    return bdir


def test_abandoned_uploads_go_recent_ones_stay_and_a_held_lock_skips_the_provider(lab):
    ds = lab.pool.create("data")
    fill(lab, ds, 7)
    lab.pool.snapshot(ds, "s1")
    lab.backup(ds, "s1")
    old = _fake_incomplete(lab, ds, "old", 3 * 86400)
    fresh = _fake_incomplete(lab, ds, "fresh", 600)
    settings = lab.settings(ds)
    # A backup of this dataset to this provider is running: prune must leave the provider alone.
    held = locks.acquire(settings.state_dir, "backup", "%s@local" % ds, "backup of %s to local" % ds)
    try:
        blocked = prune_dataset(settings, check_mode=False, keep={"last": 5}, incomplete_after="2d")
    finally:
        held.release()
    assert blocked["failed_providers"] == ["local"]
    assert blocked["providers"]["local"]["status"] == "locked"
    assert "is running (PID %d" % os.getpid() in blocked["providers"]["local"]["message"]
    assert old.exists()
    plan = prune_dataset(settings, check_mode=True, keep={"last": 5}, incomplete_after="2d")
    entry = plan["providers"]["local"]
    assert [r["backup_id"] for r in entry["incomplete_deleted"]] == [old.name[1:]]
    assert entry["incomplete_deleted"][0]["reason"].startswith("incomplete upload, untouched for 3d (more than 2d)")
    assert [r["backup_id"] for r in entry["incomplete_kept"]] == [fresh.name[1:]]
    assert old.exists()
    prune_dataset(settings, check_mode=False, keep={"last": 5}, incomplete_after="2d")
    assert not old.exists() and fresh.exists()
    assert len(remote_ids(lab, "local", ds)) == 2  # the real backup and the fresh upload


def test_local_snapshots_only_ours_and_never_the_next_base(lab):
    ds = lab.pool.create("data")
    lab.config["datasets"] = {ds: {"every": "1d", "keep": {"last": 1}, "prune_local_snapshots": True}}
    start = time.time()
    names = []
    for step in range(3):
        fill(lab, ds, 30 + step, name="g%d.bin" % step)
        result = converge_dataset(lab.settings(ds), now=start + step * 2 * 86400)
        assert result["snapshot_created"] is True
        names.append(result["snapshot"])
    lab.pool.snapshot(ds, "manual")  # the user's own: never touched
    # A snapshot with our prefix but without our property is not ours either.
    harness.run(["zfs", "snapshot", "%s@offsite-20000101T000000Z" % ds])
    settings = lab.settings(ds)
    plan = prune_dataset(settings, check_mode=True)
    local = plan["local"]
    assert sorted(d["snapshot"] for d in local["deleted"]) == sorted(names[:2])
    assert [k["snapshot"] for k in local["kept"]] == [names[2]]
    assert "base of the next incremental to local" in local["kept"][0]["reasons"]
    assert set(local["ignored"]) == {"manual", "offsite-20000101T000000Z"}
    assert set(lab.pool.snapshots(ds)) >= set(names)
    # Remotely the chain full <- incr <- incr is kept whole: the newest needs both.
    assert plan["providers"]["local"]["deleted"] == []
    prune_dataset(settings, check_mode=False)
    assert sorted(lab.pool.snapshots(ds)) == sorted([names[2], "manual", "offsite-20000101T000000Z"])
    # The next converge is still incremental from the kept snapshot.
    fill(lab, ds, 40, name="h.bin")
    after = converge_dataset(lab.settings(ds), now=start + 8 * 86400)
    assert after["providers"]["local"]["kind"] == "incremental"
    assert after["providers"]["local"]["base"] == names[2]


def test_offsite_prune_module_check_mode(lab, ansible):
    ds = lab.pool.create("data")
    ids = make_history(lab, ds, "local")
    lab.config["datasets"] = {ds: {"keep": {"last": 1}}}
    config = str(lab.config_path)
    plan = ansible.module("offsite_prune", {"config": config}, check=True)
    assert plan["_rc"] == 0, plan
    assert plan["changed"] is True
    assert sorted(plan["deleted"]) == sorted("local %s %s: not selected by keep (last 1)" % (ds, ids[s])
                                             for s in ("s1", "s2", "s3"))
    assert len(remote_ids(lab, "local", ds)) == 5
    # What the keep rules cost (docs/policy.md): stored now, after the plan, and the steady state.
    base = lab.remotes["local"] / "testhost" / ds
    on_disk = {d.name[1:]: sum(f.stat().st_size for f in d.iterdir()) for d in base.iterdir()}
    cost = plan["cost"]["local"]
    assert (cost["stored_bytes"], cost["full_copies"], cost["backups"]) == (sum(on_disk.values()), 2, 5), cost
    assert (cost["stored_bytes_after"], cost["full_copies_after"]) == (on_disk[ids["s4"]] + on_disk[ids["s5"]], 1)
    assert (cost["held_full_copies"], cost["held_incrementals"]) == (1, 1), "last 1: one chain, one incremental"
    one = plan["datasets"][ds]["providers"]["local"]["cost"]  # the dataset's own figures, with the sizes used
    assert cost["estimated_stored_bytes"] == one["full_bytes"] + one["incremental_bytes"] > 0
    assert "local stores %s in 2 full copies now" % harness_bytes(cost["stored_bytes"]) in plan["msg"], plan["msg"]
    validated = ansible.module("offsite_policy_validate", {"policy": lab.config, "sizes": {ds: "1GiB"}})
    assert validated["_rc"] == 0, validated
    assert validated["cost"]["local"]["full_copies"] == 1 and validated["cost"]["local"]["datasets"][ds][
        "estimated_stored_bytes"] == (1 << 30) + 0
    assert "local holds about 1 full copies (about 1.0 GiB)" in validated["msg"], validated["msg"]
    done = ansible.module("offsite_prune", {"config": config})
    assert done["_rc"] == 0 and done["changed"] is True
    assert remote_ids(lab, "local", ds) == sorted([ids["s4"], ids["s5"]])
    again = ansible.module("offsite_prune", {"config": config})
    assert again["changed"] is False
    bad = ansible.module("offsite_prune", {"config": config, "dataset": ds, "keep": {"daily": -1}})
    assert bad["_rc"] != 0 and bad["msg"] == "keep is not valid: keep.daily: must be >= 0."
