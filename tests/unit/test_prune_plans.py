"""Prune plans by example: which backups and local snapshots keep rules keep, and why; what a prune of a
memory provider deletes, in which order. (test_prune_properties.py holds the invariants.)"""

from __future__ import annotations

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils import attempts, catalog, holds
from ansible_collections.offsite.zfs.plugins.module_utils.ops.prune import plan, report, run
from ansible_collections.offsite.zfs.plugins.module_utils.ops.prune.plan import Item, LocalSnapshot
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import CREATED_BY_PROPERTY
from ansible_collections.offsite.zfs.tests.unit.doubles import backups
from ansible_collections.offsite.zfs.tests.unit.doubles.world import World

DAY = 86400
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z, a Thursday


def _daily_chain(days):
    """One snapshot a day at noon: a full on day 0, then incrementals each from the day before."""
    items = []
    for day in range(days):
        kind = "full" if day == 0 else "incremental"
        items.append(Item("d%d" % day, "g%d" % day, "d%d" % day, T0 + day * DAY + DAY // 2, day + 1, kind,
                          "g%d" % (day - 1) if day else None))
    return items


def test_no_keep_rules_keep_everything():
    decision = plan.plan(_daily_chain(3), {})
    assert decision.delete == {} and set(decision.keep) == {"d0", "d1", "d2"}
    assert decision.keep["d0"] == ["no keep rules"]


def test_last_keeps_the_newest_and_the_chain_that_restores_them():
    decision = plan.plan(_daily_chain(5), {"last": 2})
    assert decision.keep["d4"] == ["newest", "last 2 (#1)"]
    assert sorted(decision.keep["d3"]) == ["base of kept d4", "last 2 (#2)"]
    assert sorted(decision.keep["d0"]) == ["base of kept d3", "base of kept d4"], "a kept chain keeps its full"
    assert decision.delete == {}


def test_snapshots_outside_the_rules_go_when_their_own_fulls_make_them_unneeded():
    items = [Item("full-%d" % day, "g%d" % day, "d%d" % day, T0 + day * DAY, day + 1) for day in range(5)]
    decision = plan.plan(items, {"last": 2})
    assert set(decision.keep) == {"full-4", "full-3"}
    assert decision.delete == {"full-%d" % d: "not selected by keep (last 2)" for d in range(3)}


def test_daily_and_weekly_keep_the_newest_of_each_period():
    items = [Item("full-%d-%d" % (day, day * 10 + hour), "g%d" % (day * 10 + hour), "d%d" % day,
                  T0 + day * DAY + hour * 3600, day * 10 + hour) for day in range(14) for hour in (1, 20)]
    decision = plan.plan(items, {"daily": 3, "weekly": 2})
    kept = sorted(decision.keep)
    assert kept == sorted(["full-13-150", "full-12-140", "full-11-130", "full-10-120"]), kept
    # 2026-01-01 is a Thursday: day 10 (Jan 11) is the newest of ISO week 2 (Jan 5-11), day 13 of week 3.
    assert decision.keep["full-10-120"] == ["weekly 2026-W02"] and "daily 2026-01-14" in decision.keep["full-13-150"]


def test_a_damaged_backup_is_left_for_inspection_and_a_chain_through_it_is_not_restorable():
    items = _daily_chain(3)
    items[1].intact = False
    decision = plan.plan(items, {"last": 1})
    assert "d1" in decision.damaged and decision.keep == {"d0": ["newest", "last 1 (#1)"]}
    assert decision.delete == {"d2": "cannot be restored: no complete chain leads to d2"}


def test_a_second_backup_of_a_kept_snapshot_is_redundant():
    items = _daily_chain(2) + [Item("d1-again", "g1", "d1", T0 + DAY + DAY // 2, 2, "incremental", "g0")]
    decision = plan.plan(items, {"last": 1})
    assert set(decision.keep) == {"d0", "d1"} and decision.delete == {
        "d1-again": "redundant: d1 is kept through d1"}


# -- local snapshots --------------------------------------------------------------------------
def test_local_pruning_only_touches_our_snapshots_and_never_a_protected_one():
    snaps = [LocalSnapshot("offsite-%d" % d, T0 + d * DAY, d + 1, True) for d in range(4)]
    snaps.append(LocalSnapshot("sanoid-daily", T0, 99, False))
    kept, deleted = plan.plan_local(snaps, {"last": 1}, {"offsite-1": "base of the next incremental to b2"})
    assert kept == {"offsite-3": ["newest", "last 1 (#1)"], "offsite-1": ["base of the next incremental to b2"]}
    assert set(deleted) == {"offsite-0", "offsite-2"} and "sanoid-daily" not in deleted


def test_the_base_of_each_providers_next_incremental_and_anything_newer_is_protected():
    snaps = [LocalSnapshot("offsite-%d" % d, T0 + d * DAY, d + 1, True) for d in range(4)]
    guids = {s.name: "g%d" % i for i, s in enumerate(snaps)}
    items = {"b2": _daily_chain(2), "s3": _daily_chain(3)}
    protected = plan.protected_local(snaps, items, guids)
    assert protected == {"offsite-1": "base of the next incremental to b2", "offsite-2": "not backed up to b2 yet",
                         "offsite-3": "not backed up to b2 yet"}
    assert plan.protected_local(snaps, {"gcs": []}, guids) == {s.name: "not backed up to gcs yet" for s in snaps}


# -- applying a plan to a memory provider ------------------------------------------------------------
@pytest.fixture
def world(tmp_path):
    made = World(tmp_path)
    made.s = [made.snap("offsite-%d" % d, creation=T0 + d * DAY) for d in range(4)]
    made.m = [made.back_up("b2", made.s[0])] + [made.back_up("b2", made.s[d], made.s[d - 1]) for d in (1, 2)]
    made.m.append(made.back_up("b2", made.s[3]))  # a new full: the first chain is no longer needed
    return made.settled()


def _prune(world, keep, check_mode=False, now=None, **kwargs):
    return run.prune_dataset(world.settings(), check_mode, zfs=world.zfs, stores=world.stores, keep=keep,
                             local=False, now=world.now if now is None else now, **kwargs)


def test_check_mode_plans_and_deletes_nothing(world):
    result = _prune(world, {"last": 1}, check_mode=True)
    entry = result["providers"]["b2"]
    assert entry["status"] == "planned" and [r["snapshot"] for r in entry["deleted"]] == [
        "offsite-2", "offsite-1", "offsite-0"], "newest first"
    assert [op for op, _key in world.stores["b2"].calls if op in ("delete", "purge")] == []


def test_a_prune_deletes_each_manifest_before_its_directory(world):
    result = _prune(world, {"last": 1})
    assert result["changed"] is True and result["providers"]["b2"]["status"] == "pruned"
    writes = [(op, key.rsplit("/@", 1)[1]) for op, key in world.stores["b2"].calls if op in ("delete", "purge")]
    assert writes[:2] == [("delete", world.m[2].backup_id + "/manifest.json"), ("purge", world.m[2].backup_id)]
    left = catalog.list_backups(world.stores["b2"], backups.NAMESPACE, "tank/data").for_dataset("tank/data")
    assert [b.backup_id for b in left] == [world.m[3].backup_id]


def test_incomplete_uploads_go_only_when_untouched_for_longer_than_the_threshold(world):
    fresh, stale = world.snap("offsite-4"), world.snap("offsite-5")
    store = world.stores["b2"]
    fresh_dir = backups.place(store, backups.manifest(fresh, world.s[3]), with_manifest=False)
    stale_dir = backups.place(store, backups.manifest(stale, world.s[3]), with_manifest=False)
    for obj in store.list(stale_dir):
        store.set_mtime("%s/%s" % (stale_dir, obj.path), world.now - 3 * DAY)
    entry = _prune(world, {"last": 4}, incomplete_after="2d")["providers"]["b2"]
    assert [r["snapshot"] for r in entry["incomplete_deleted"]] == ["offsite-5"]
    assert [r["snapshot"] for r in entry["incomplete_kept"]] == ["offsite-4"]
    assert "may still be resumed" in entry["incomplete_kept"][0]["reason"]
    assert not store.list(stale_dir) and store.list(fresh_dir)


def test_objects_of_abandoned_append_only_attempts_go_when_old(world):
    store = world.stores["b2"]
    bdir = catalog.backup_dir(backups.NAMESPACE, "tank/data", world.m[3].backup_id)
    old = attempts.chunk_object(0, ".zst", 1).replace("chunk-000000", "chunk-000000-a2")
    store.add("%s/%s" % (bdir, old), b"x", mtime=world.now - 5 * DAY)
    store.add("%s/%s" % (bdir, "chunk-000001-a2.zst.age"), b"x", mtime=world.now - 3600)
    entry = _prune(world, {"last": 4})["providers"]["b2"]
    assert [r["object"] for r in entry["abandoned_deleted"]] == [old]


def test_another_hosts_backups_are_never_pruned(world):
    world.back_up("b2", world.snap("offsite-9"), world.s[3], host_id="e" * 32)
    entry = _prune(world, {"last": 1})["providers"]["b2"]
    assert entry["status"] == "failed" and entry["error_code"] == "foreign_host"
    assert [op for op, _key in world.stores["b2"].calls if op in ("delete", "purge")] == []


def test_local_snapshot_pruning_runs_on_the_scripted_zfs(world):
    """run.local_snapshots reads our property through Zfs.snapshot_property (it once built its own argv)."""
    for snap in world.s:
        world.zfs.set_property(snap.full_name, CREATED_BY_PROPERTY, "true")
        if snap is not world.s[3]:
            world.zfs.release(holds.tag_for("b2"), snap.full_name)  # a real backup moves the hold along
    world.snap("manual-1")  # not ours: never touched
    world.settled()
    result = run.prune_dataset(world.settings(), False, zfs=world.zfs, stores=world.stores, keep={"last": 1},
                               local=True, now=world.now)
    local = result["local"]
    assert [r["snapshot"] for r in local["deleted"]] == ["offsite-0", "offsite-1", "offsite-2"]
    assert [r["snapshot"] for r in local["kept"]] == ["offsite-3"] and local["ignored"] == ["manual-1"]
    destroyed = [name for verb, name, _detail in world.zfs.calls if verb == "destroy"]
    assert destroyed == ["tank/data@offsite-0", "tank/data@offsite-1", "tank/data@offsite-2"]
    assert [s.name for s in world.zfs.snapshots("tank/data")] == ["offsite-3", "manual-1"]


def test_the_report_lists_each_deletion_diffs_what_stays_and_sums_up(world):
    """ops/prune/report.py over a real plan: the deleted lines, the diff per provider, the one-line summary."""
    entry = _prune(world, {"last": 1}, check_mode=True)
    lines = report.deletions("tank/data", entry)
    assert lines and all(line.startswith("b2 tank/data offsite-") for line in lines), lines
    assert lines[0].endswith(": " + entry["providers"]["b2"]["deleted"][0]["reason"])
    (diff,) = report.diffs("tank/data", entry)
    assert diff["before_header"] == diff["after_header"] == "b2:tank/data"
    assert diff["after"].count("\n") == len(entry["providers"]["b2"]["kept"])
    assert diff["before"].count("(delete: ") == len(lines)
    result = report.finish({"datasets": {"tank/data": entry}}, [diff], check_mode=True)
    assert result["msg"].startswith("tank/data on b2: would delete %d, kept %d; b2 stores " % (
        len(lines), len(entry["providers"]["b2"]["kept"]))), result["msg"]
    assert set(result["cost"]) == {"b2"} and result["diff"] == [diff]
    assert report.finish({"datasets": {}}, [], False)["msg"] == "The policy names no dataset to prune."
