"""Status health rules over an in-memory provider and a scripted zfs: offsite_status's run_status
(through _wiring.status_report) with stores= and zfs= injected, and the per-rule helpers (status_bases,
ops/status/drills.py, the pure rules of ops/status/health.py)."""

from __future__ import annotations

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils import _wiring, catalog, status_bases
from ansible_collections.offsite.zfs.plugins.module_utils.common import human_bytes
from ansible_collections.offsite.zfs.plugins.module_utils.ops.status import drills, health
from ansible_collections.offsite.zfs.tests.unit.doubles import backups
from ansible_collections.offsite.zfs.tests.unit.doubles.memory_store import MemoryStore
from ansible_collections.offsite.zfs.tests.unit.doubles.world import World


@pytest.fixture
def world(tmp_path):
    return World(tmp_path)


def _run(world, stores=None, **dataset_settings):
    return _wiring.status_report(world.config(**dataset_settings), {}, zfs=world.zfs, stores=stores or world.stores,
                                 now=world.now)


def _codes(result, dataset="tank/data"):
    return sorted((p["code"], p["severity"]) for p in result["datasets"][dataset]["problems"])


def test_a_backed_up_held_fresh_dataset_is_ok(world):
    s1, s2 = world.snap("s1"), world.snap("s2")
    world.back_up("b2", s1)
    world.back_up("b2", s2, s1)
    result = _run(world, max_age="36h")
    assert result["health"] == "ok" and result["problems"] == [], result["problems"]
    entry = result["datasets"]["tank/data"]
    assert entry["latest"]["snapshot"] == "s2" and entry["chain_length"] == 2
    assert result["msg"] == "host1: 1 datasets ok, 2 backups, %s stored" % human_bytes(
        result["summary"]["stored_bytes"])


def test_a_newer_local_snapshot_is_not_backed_up_yet(world):
    s1 = world.snap("s1")
    world.back_up("b2", s1)
    world.snap("s2")
    world.snap("s3")
    result = _run(world)
    assert _codes(result) == [("not_backed_up", "warning")]
    assert result["datasets"]["tank/data"]["not_backed_up"] == {"b2": ["s2", "s3"]}


def test_damage_in_the_newest_chain_is_critical_and_in_an_older_backup_a_warning(world):
    s1, s2, s3 = world.snap("s1"), world.snap("s2"), world.snap("s3")
    world.back_up("b2", s1, missing=[1])  # an old full, superseded by the full of s2
    world.back_up("b2", s2)
    world.back_up("b2", s3, s2)
    assert _codes(_run(world)) == [("chunk_missing", "warning")]
    world.stores["b2"].delete("%s/%s" % (catalog_dir(world, s3, s2), "chunk-000000.zst.age"))
    result = _run(world)
    assert ("chunk_missing", "critical") in _codes(result) and result["health"] == "critical"
    assert result["datasets"]["tank/data"]["latest"]["snapshot"] == "s2", "the newest restorable one"


def catalog_dir(world, snap, base=None):
    return catalog.backup_dir(backups.NAMESPACE, world.dataset, backups.manifest(snap, base).backup_id)


def test_an_incremental_without_its_base_is_a_broken_chain_and_nothing_restorable_is_critical(world):
    s1, s2 = world.snap("s1"), world.snap("s2")
    world.back_up("b2", s2, s1)
    result = _run(world)
    assert _codes(result) == [("broken_chain", "critical"), ("no_backup", "critical")]
    assert "backups but none that can be restored" in [p for p in result["problems"]
                                                       if p["code"] == "no_backup"][0]["message"]


def test_stale_is_critical_on_every_provider_and_a_warning_when_another_is_fresh(tmp_path):
    world = World(tmp_path, providers=("b2", "s3"))
    old = world.snap("old", creation=1_767_225_600)
    new = world.snap("new", creation=old.creation + 5 * 86400)
    world.now = new.creation + 3 * 86400
    world.back_up("b2", old)
    world.back_up("s3", old)
    assert ("stale", "critical") in _codes(_run(world, max_age="1d"))
    world.back_up("s3", new, old)
    world.now = new.creation + 3600
    result = _run(world, max_age="1d")
    assert _codes(result) == [("not_backed_up", "warning"), ("stale", "warning")]
    assert result["datasets"]["tank/data"]["latest"]["provider"] == "s3"


def test_an_upload_that_stopped_before_its_manifest_is_a_warning_with_its_age(world):
    s1, s2 = world.snap("s1"), world.snap("s2")
    world.back_up("b2", s1)
    backups.place(world.stores["b2"], backups.manifest(s2, s1), with_manifest=False)
    world.now += 7200
    (found,) = [p for p in _run(world)["problems"] if p["code"] == "incomplete_upload"]
    assert found["severity"] == "warning" and found["age_seconds"] == 7200 and found["running"] is False
    assert "run the backup again to resume it" in found["message"]


def test_a_provider_that_cannot_be_listed_is_critical(tmp_path):
    world = World(tmp_path, providers=("b2", "down"))
    s1 = world.snap("s1")
    world.back_up("b2", s1)
    world.stores["down"].fail("list", 1, b"ERROR : dial tcp 10.1.1.1:443: connect: connection refused")
    result = _run(world)
    assert [(p["code"], p["severity"], p["provider"]) for p in result["host_problems"]] == [
        ("provider_failed", "critical", "down")]
    assert result["health"] == "critical" and result["providers"]["down"]["listed"] is False


def test_nothing_offsite_is_never_ok(world):
    world.snap("s1")
    result = _run(world)
    assert ("nothing_offsite", "critical") in [(p["code"], p["severity"]) for p in result["host_problems"]]
    assert result["health"] == "critical"


def test_objects_outside_any_backup_directory_are_orphans(world):
    s1 = world.snap("s1")
    world.back_up("b2", s1)
    world.stores["b2"].put_bytes("host1/tank/data/stray.bin", b"x" * 10)
    (found,) = [p for p in _run(world)["problems"] if p["code"] == "orphan_object"]
    assert found["dataset"] == "tank/data" and found["bytes"] == 10 and found["severity"] == "warning"


def test_another_hosts_backups_in_this_namespace_are_critical(world):
    s1 = world.snap("s1")
    world.back_up("b2", s1, host_id="f" * 32)
    assert ("foreign_host", "critical") in _codes(_run(world))


# -- the base of the next incremental (status_bases) ------------------------------------------------
def test_an_unheld_base_is_at_risk_and_a_held_or_bookmarked_one_is_not(world):
    s1 = world.snap("s1")
    world.back_up("b2", s1, hold=False)
    assert ("base_at_risk", "warning") in _codes(_run(world))
    assert ("base_at_risk", "info") in _codes(_run(world, hold_base=False))
    world.zfs.add_bookmark(s1, "offsite-b2")
    assert _codes(_run(world)) == []


def test_when_the_base_is_gone_the_next_backup_is_from_an_older_one_a_bookmark_or_full(world):
    s1, s2 = world.snap("s1"), world.snap("s2")
    world.back_up("b2", s1)
    world.back_up("b2", s2, s1)
    backed = world.stores["b2"]
    listed = catalog.list_backups(backed, backups.NAMESPACE, "tank/data").for_dataset("tank/data")
    world.zfs.remove_snapshot("tank/data", "s2")
    info = status_bases.assess(world.zfs, "tank/data", "b2", world.zfs.snapshots("tank/data"), listed)
    assert (info["next_backup"], info["from"], info["at_risk"]) == ("incremental", "s1", True)
    mark = world.zfs.add_bookmark(s2, "offsite-b2-s2")
    info = status_bases.assess(world.zfs, "tank/data", "b2", world.zfs.snapshots("tank/data"), listed)
    assert info["from"] == "#" + mark.bookmark
    world.zfs.destroy_bookmark("tank/data", mark.bookmark)
    world.zfs.release("offsite-b2", s1.full_name)
    world.zfs.remove_snapshot("tank/data", "s1")
    assert ("full_backup_next", "warning") in _codes(_run(world))
    assert status_bases.assess(world.zfs, "tank/data", "b2", [], []) is None


# -- drills (ops/status/drills.py) ----------------------------------------------------------------------------
def test_a_failed_or_overdue_drill_is_a_warning():
    records = {"tank/data|b2": {"result": "failed", "started": 1000.0, "message": "receive failed"},
               "tank/data|s3": {"result": "passed", "started": 1000.0}}
    found = drills.drill_problems("tank/data", ["b2", "s3", "gcs"], records, 86400.0, 1000.0 + 2 * 86400)
    assert [(p["code"], p["provider"]) for p in found] == [
        ("drill_failed", "b2"), ("drill_overdue", "b2"), ("drill_overdue", "s3"), ("drill_overdue", "gcs")]
    assert found[3]["message"].startswith("No restore drill has been run of tank/data from gcs")
    assert drills.drill_problems("tank/data", ["s3"], records, None, 1e12) == []


def test_health_is_the_worst_severity_and_info_counts_as_ok():
    assert health.health_of([]) == "ok"
    assert health.health_of([{"severity": "info"}]) == "ok"
    assert health.health_of([{"severity": "warning"}, {"severity": "critical"}, {"severity": "info"}]) == "critical"
    assert health.worst(["ok", "warning"]) == "warning"


def test_a_memory_store_is_enough_for_status_without_zfs(world):
    s1 = world.snap("s1")
    world.back_up("b2", s1)
    result = _wiring.status_report(world.config(), {"compare_local": False}, stores=world.stores, now=world.now)
    assert result["health"] == "ok" and result["datasets"]["tank/data"]["local"] is None
    assert isinstance(world.stores["b2"], MemoryStore)
