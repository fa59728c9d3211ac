"""Holds on the base of the next incremental, on a real zfs-fuse pool (pool version 23 has holds).

The sequence from issue 16: back up ds@h1; a pruner's `zfs destroy ds@h1` fails busy; back up ds@h2,
which stays incremental, and the hold has moved (userrefs of h1 = 0, of h2 = 1).
"""

from __future__ import annotations

import harness

from ansible_collections.offsite.zfs.plugins.module_utils._wiring import status_report
from ansible_collections.offsite.zfs.plugins.module_utils.holds import load_record
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.tree import run_tree_backup
from ansible_collections.offsite.zfs.plugins.module_utils.ops.prune.run import prune_dataset


def userrefs(name: str) -> int:
    return int(harness.run(["zfs", "get", "-H", "-p", "-o", "value", "userrefs", name]).stdout.strip())


def destroy(name: str) -> harness.subprocess.CompletedProcess:
    return harness.run(["zfs", "destroy", name], check=False)


def fill(lab, ds: str, seed: int, name: str) -> None:
    harness.write_data(lab.pool.mountpoint(ds), seed, 96 << 10, name)


def test_held_base_survives_a_pruner_and_the_hold_moves_forward(lab):
    ds = lab.pool.create("data")
    fill(lab, ds, 1, "a.bin")
    lab.pool.snapshot(ds, "h1")
    first = lab.backup(ds, "h1")["providers"]["local"]
    assert first["kind"] == "full"
    assert first["base_hold"] == {"tag": "offsite:local", "snapshot": "h1", "held": True, "bookmark": None,
                                  "released": None}
    assert userrefs(ds + "@h1") == 1
    proc = destroy(ds + "@h1")  # what sanoid or zfs-auto-snapshot would run
    assert proc.returncode != 0 and "dataset is busy" in proc.stderr
    assert "h1" in lab.pool.snapshots(ds)

    fill(lab, ds, 2, "b.bin")
    lab.pool.snapshot(ds, "h2")
    second = lab.backup(ds, "h2")["providers"]["local"]
    assert second["kind"] == "incremental" and second["base"] == "h1"
    assert second["base_hold"]["released"] == "h1"
    assert userrefs(ds + "@h1") == 0 and userrefs(ds + "@h2") == 1
    record = load_record(str(lab.tmp / "state"), "testhost", ds, "local")
    assert record is not None and record.snapshot == "h2" and record.held
    # h1 is no longer the base: the pruner may take it now, and the next backup is still incremental.
    assert destroy(ds + "@h1").returncode == 0
    fill(lab, ds, 3, "c.bin")
    lab.pool.snapshot(ds, "h3")
    third = lab.backup(ds, "h3")["providers"]["local"]
    assert third["kind"] == "incremental" and third["base"] == "h2"
    assert userrefs(ds + "@h2") == 0 and userrefs(ds + "@h3") == 1
    # Backing up the same snapshot again changes nothing and keeps exactly one hold.
    again = lab.backup(ds, "h3")["providers"]["local"]
    assert again["status"] == "present" and userrefs(ds + "@h3") == 1


def test_each_provider_holds_with_its_own_tag(lab):
    lab.add_local("second")
    ds = lab.pool.create("data")
    fill(lab, ds, 4, "a.bin")
    lab.pool.snapshot(ds, "s1")
    lab.backup(ds, "s1")
    assert userrefs(ds + "@s1") == 2
    fill(lab, ds, 5, "b.bin")
    lab.pool.snapshot(ds, "s2")
    lab.backup(ds, "s2", providers=["second"])  # only one provider moves on
    assert userrefs(ds + "@s1") == 1, "local's base s1 keeps its hold"
    assert userrefs(ds + "@s2") == 1
    assert lab.backup(ds, "s2", providers=["local"])["providers"]["local"]["kind"] == "incremental"
    assert userrefs(ds + "@s1") == 0 and userrefs(ds + "@s2") == 2


def test_without_holds_a_pruner_forces_a_full_backup_and_status_and_check_mode_say_so_first(lab):
    lab.config["defaults"]["hold_base"] = False
    ds = lab.pool.create("data")
    fill(lab, ds, 6, "a.bin")
    lab.pool.snapshot(ds, "h1")
    assert lab.backup(ds, "h1")["providers"]["local"].get("base_hold") is None
    assert userrefs(ds + "@h1") == 0
    status = status_report(lab.config, {})
    base = status["datasets"][ds]["providers"]["local"]["base"]
    assert base["at_risk"] and base["present"] and base["next_backup"] == "incremental"
    codes = {p["code"]: p for p in status["datasets"][ds]["problems"]}
    assert codes["base_at_risk"]["severity"] == "info"  # hold_base: false is the user's choice

    assert destroy(ds + "@h1").returncode == 0  # nothing held it
    fill(lab, ds, 7, "b.bin")
    lab.pool.snapshot(ds, "h2")
    status = status_report(lab.config, {})
    base = status["datasets"][ds]["providers"]["local"]["base"]
    assert base["present"] is False and base["next_backup"] == "full"
    problem = next(p for p in status["datasets"][ds]["problems"] if p["code"] == "full_backup_next")
    assert problem["severity"] == "warning" and "will be FULL" in problem["message"] and "@h1" in problem["message"]
    assert status["datasets"][ds]["health"] == "warning"

    plan = lab.backup(ds, "h2", check_mode=True)["providers"]["local"]
    assert plan["kind"] == "full" and plan["base_at_risk"] is True
    assert "full, because" in plan["message"] and "h1" in plan["message"]


def test_status_with_the_hold_is_ok_and_names_the_hold(lab):
    ds = lab.pool.create("data")
    fill(lab, ds, 8, "a.bin")
    lab.pool.snapshot(ds, "h1")
    lab.backup(ds, "h1")
    status = status_report(lab.config, {})
    entry = status["datasets"][ds]
    assert entry["providers"]["local"]["base"]["our_hold"] == "offsite:local"
    assert entry["providers"]["local"]["base"]["at_risk"] is False
    assert not [p for p in entry["problems"] if p["code"] in ("base_at_risk", "full_backup_next")]
    # Someone releases our hold by hand: status names the risk before anything is lost.
    harness.run(["zfs", "release", "offsite:local", ds + "@h1"])
    status = status_report(lab.config, {})
    problem = next(p for p in status["datasets"][ds]["problems"] if p["code"] == "base_at_risk")
    assert problem["severity"] == "warning" and "zfs hold offsite:local %s@h1" % ds in problem["message"]
    plan = lab.backup(ds, "h1", check_mode=True)["providers"]["local"]
    assert plan["status"] == "present"


def test_recursive_tree_holds_each_child(lab):
    pool = lab.pool.name
    alice = lab.pool.create("home/alice")
    bob = lab.pool.create("home/bob")
    fill(lab, alice, 9, "a.bin")
    fill(lab, bob, 10, "b.bin")
    run_tree_backup(lab.settings, pool + "/home", "r1", create=True)
    for ds in (pool + "/home", alice, bob):
        assert userrefs(ds + "@r1") == 1, ds
    fill(lab, alice, 11, "c.bin")
    second = run_tree_backup(lab.settings, pool + "/home", "r2", create=True)
    assert second["datasets"][alice]["providers"]["local"]["kind"] == "incremental"
    for ds in (pool + "/home", alice, bob):
        assert userrefs(ds + "@r1") == 0 and userrefs(ds + "@r2") == 1, ds


def test_local_prune_leaves_a_held_snapshot_alone_with_a_reason(lab):
    lab.config["defaults"]["prune_local_snapshots"] = True
    ds = lab.pool.create("data")
    for number in (1, 2, 3):
        fill(lab, ds, 20 + number, "f%d.bin" % number)
        lab.backup(ds, "offsite-2026010%dT000000Z" % number, create=True)
    old = ds + "@offsite-20260101T000000Z"
    harness.run(["zfs", "hold", "mine", old])  # the admin's own hold
    try:
        result = prune_dataset(lab.settings(ds), check_mode=False, keep={"last": 1})
        local = result["local"]
        assert [d["snapshot"] for d in local["deleted"]] == ["offsite-20260102T000000Z"]
        kept = {k["snapshot"]: k["reasons"] for k in local["kept"]}
        assert kept["offsite-20260101T000000Z"][0].startswith("held (1 user holds")
        assert "offsite-20260101T000000Z" in lab.pool.snapshots(ds)
        assert userrefs(ds + "@offsite-20260103T000000Z") == 1, "our base keeps its hold"
    finally:
        harness.run(["zfs", "release", "mine", old])
