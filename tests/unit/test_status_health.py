"""Status health rules over an in-memory provider and a scripted zfs: offsite_status's run_status
(through _wiring.status_report) with stores= and zfs= injected, and the per-rule helpers (status_bases,
ops/status/drills.py, the pure rules of ops/status/health.py)."""

from __future__ import annotations

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils import _wiring, catalog, status_bases
from ansible_collections.offsite.zfs.plugins.module_utils.common import human_bytes
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.ops.status import drills, health, report
from ansible_collections.offsite.zfs.plugins.module_utils.ops.status import run as status_run
from ansible_collections.offsite.zfs.plugins.module_utils.ops.status._chains import Chains
from ansible_collections.offsite.zfs.plugins.module_utils.ops.verify import check as verify
from ansible_collections.offsite.zfs.plugins.module_utils.store import RemoteObject
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import Snapshot
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


# -- the pure rules (ops/status/health.py, _chains.py, report.py): no store, no zfs, no clock --------------
def _snaps(*names, creation=1_767_225_600):
    return [Snapshot("tank/data", name, 0xA0 + i, 100 + i, creation + 3600 * i) for i, name in enumerate(names)]


def test_an_rclone_modtime_is_read_with_its_fraction_and_zone():
    assert health.parse_mtime("2026-01-01T00:00:00Z") == 1_767_225_600
    assert health.parse_mtime("2026-01-01T01:00:00.25+01:00") == 1_767_225_600.25
    assert health.parse_mtime("2025-12-31T19:00:00-0500") == 1_767_225_600
    assert health.parse_mtime("2026-01-01T00:00:00") == 1_767_225_600, "no zone: UTC"
    assert health.parse_mtime("yesterday") is None and health.parse_mtime("") is None


def test_fresh_is_unknown_without_max_age_and_false_without_a_restorable_backup():
    assert health.fresh(3600.0, None) is None
    assert health.fresh(3600.0, 3600.0) is True and health.fresh(3600.1, 3600.0) is False
    assert health.fresh(None, 3600.0) is False


def test_pending_snapshots_follow_the_newest_backed_up_guid_or_else_the_newest_backup_time():
    s1, s2, s3 = _snaps("s1", "s2", "s3")
    assert [s.name for s in health.pending([s1, s2, s3], [str(s1.guid)], s1.creation)] == ["s2", "s3"]
    assert health.pending([s1, s2, s3], [str(s3.guid)], s3.creation) == []
    # The backed-up snapshots are gone here: what is newer than the newest backup is pending.
    assert [s.name for s in health.pending([s2, s3], ["999"], s2.creation)] == ["s3"]
    assert [s.name for s in health.pending([s2, s3], [], None)] == ["s2", "s3"], "nothing backed up: all"
    (found,) = health.not_backed_up("tank/data", "b2", [s2, s3])
    assert (found["code"], found["severity"], found["count"], found["snapshots"]) == (
        "not_backed_up", "warning", 2, ["s2", "s3"])
    assert "(newest: s3)" in found["message"] and health.not_backed_up("tank/data", "b2", []) == []


def test_damage_in_the_newest_chain_and_restorability_by_chain():
    s1, s2, s3 = _snaps("s1", "s2", "s3")
    listed = [backups.backup(s1), backups.backup(s2, s1, missing=[0]), backups.backup(s3, s2)]
    chains = Chains(listed)
    assert chains.newest_chain_ids() == {b.backup_id for b in listed}
    assert chains.restorable([]) == {listed[0].backup_id: 1}, "s2 lacks a chunk, so s3 has no intact chain"
    (missing,) = health.listing_problems("tank/data", "b2", listed[1], "tank/data@s2", chains, "critical")
    assert (missing["code"], missing["severity"], missing["objects"]) == ("chunk_missing", "critical",
                                                                          [catalog.chunk_object(0, ".zst")])
    whole = [backups.backup(s1), backups.backup(s2, s1), backups.backup(s3, s2)]
    assert Chains(whole).restorable([whole[1].backup_id]) == {whole[0].backup_id: 1}, "a damaged link breaks s3"
    assert Chains(whole).restorable([]) == {whole[0].backup_id: 1, whole[1].backup_id: 2, whole[2].backup_id: 3}
    assert Chains([]).newest_chain_ids() == set()


def test_an_incremental_without_its_base_and_unreferenced_objects():
    s1, s2 = _snaps("s1", "s2")
    orphaned = backups.backup(s2, s1)
    orphaned.objects["leftover.tmp"] = RemoteObject("@x/leftover.tmp", 7, "")
    found = health.listing_problems("tank/data", "b2", orphaned, "tank/data@s2", Chains([orphaned]), "warning")
    assert [(p["code"], p["severity"]) for p in found] == [("broken_chain", "warning"), ("orphan_object", "warning")]
    assert found[0]["message"].startswith("Backup %s of tank/data on b2 is incremental from s1" % orphaned.backup_id)
    assert (found[1]["objects"], found[1]["bytes"]) == (["leftover.tmp"], 7)


def test_a_backup_without_manifest_refused_unreadable_stopped_or_running():
    (s1,) = _snaps("s1")
    forged = backups.backup(s1, complete=False)
    forged.manifest_error, forged.manifest_code = "The signature of the manifest does not verify.", "bad_signature"
    (refused,) = health.incomplete_problems("tank/data", "b2", forged, "tank/data@s1", 0, False, 0.0)
    assert (refused["code"], refused["severity"], refused["message"]) == (
        "bad_signature", "critical", forged.manifest_error)
    forged.manifest_code = "bad_manifest"
    (unreadable,) = health.incomplete_problems("tank/data", "b2", forged, "tank/data@s1", 0, False, 0.0)
    assert unreadable["severity"] == "warning" and unreadable["message"].endswith(
        "; back tank/data@s1 up again and delete the damaged backup directory.")
    stopped = backups.backup(s1, complete=False, mtime="2026-01-01T00:00:00Z")
    now = 1_767_225_600 + 7200.0
    (old,) = health.incomplete_problems("tank/data", "b2", stopped, "tank/data@s1", 2000, False, now)
    assert (old["code"], old["severity"], old["age_seconds"], old["running"]) == (
        "incomplete_upload", "warning", 7200.0, False)
    (running,) = health.incomplete_problems("tank/data", "b2", stopped, "tank/data@s1", 2000, True, now)
    assert running["severity"] == "info" and health.health_of([running]) == "ok"


def test_verifier_findings_take_the_damage_severity():
    finding = {"code": "digest_mismatch", "message": "chunk 1 differs", "chunk": 1, "object": "chunk-000001.zst.age"}
    (found,) = health.verify_problems("tank/data", "b2", "s1+a0+full", [finding], "critical")
    assert (found["code"], found["severity"], found["backup"], found["chunk"]) == (
        "digest_mismatch", "critical", "s1+a0+full", 1)
    assert "digest_mismatch" in health.DAMAGE_CODES


def _provider(latest_age=None, count=1, fresh=None):
    latest = None if latest_age is None else {"backup_id": "s1+a0+full", "snapshot": "s1", "age_seconds": latest_age,
                                              "created_epoch": 1000.0 - latest_age, "chain_length": 1}
    return {"latest": latest, "backup_count": count, "fresh": fresh}


def test_no_backup_and_stale_are_critical_only_where_no_provider_has_better():
    both_stale = {"b2": _provider(90000.0, fresh=False), "s3": _provider(90000.0, fresh=False)}
    found = health.dataset_problems("tank/data", ["b2", "s3"], ["b2", "s3"], both_stale, 86400.0, True)
    assert [(p["code"], p["severity"], p["provider"]) for p in found] == [
        ("stale", "critical", "b2"), ("stale", "critical", "s3")]
    assert found[0]["max_age_seconds"] == 86400.0 and "older than max_age 1d" in found[0]["message"]
    one_fresh = {"b2": _provider(90000.0, fresh=False), "s3": _provider(60.0, fresh=True)}
    found = health.dataset_problems("tank/data", ["b2", "s3"], ["b2", "s3"], one_fresh, 86400.0, True)
    assert [(p["code"], p["severity"]) for p in found] == [("stale", "warning")]
    empty = {"b2": _provider(count=0), "s3": _provider(60.0)}
    (found,) = health.dataset_problems("tank/data", ["b2", "s3"], ["b2", "s3"], empty, None, True)
    assert (found["code"], found["severity"]) == ("no_backup", "warning")
    assert found["message"] == "b2 has no backup of tank/data; another provider has one."
    assert health.dataset_problems("tank/data", ["b2"], [], {"b2": _provider(count=0)}, None, False) == [], \
        "a provider not expected to hold the dataset and holding nothing says nothing"
    (nowhere,) = health.dataset_problems("tank/data", [], [], {}, None, True)
    assert (nowhere["code"], nowhere["severity"], nowhere["provider"]) == ("no_backup", "critical", None)
    assert health.dataset_problems("tank/data", [], [], {}, None, False) == []


def test_the_latest_of_a_dataset_is_the_newest_over_its_providers():
    assert health.latest_of({"b2": _provider(500.0), "s3": _provider(60.0), "gcs": _provider()})["age_seconds"] == 60.0
    assert health.latest_of({"gcs": _provider()}) is None


def test_stray_objects_belong_to_the_deepest_dataset_or_to_the_host():
    listing = catalog.Listing("b2", "host1")
    listing.stray = [RemoteObject("tank/data/child/x", 3, ""), RemoteObject("tank/data/y", 4, ""),
                     RemoteObject("tank/data/z", 5, ""), RemoteObject("other/w", 6, "")]
    known = ["tank/data", "tank/data/child"]
    assert health.dataset_of("tank/data/child/x", known) == "tank/data/child"
    assert health.dataset_of("other/w", known) is None
    found = health.stray_problems({"b2": listing}, known, "host1", None)
    assert [(ds, p["count"], p["bytes"]) for ds, p in found] == [
        ("tank/data/child", 1, 3), ("tank/data", 2, 9), (None, 1, 6)]
    assert found[1][1]["message"] == ("2 objects below host1/tank/data on b2 are outside any backup directory "
                                      "(tank/data/y, tank/data/z); delete them.")
    assert [ds for ds, _p in health.stray_problems({"b2": listing}, known, "host1", ["tank/data"])] == [
        "tank/data"], "a limited report leaves out the other datasets and the host's strays"


def test_host_problems_and_the_ledger_findings():
    failed = health.provider_failed("b2", "connection refused")
    assert (failed["code"], failed["severity"], failed["dataset"]) == ("provider_failed", "critical", None)
    assert failed["message"] == "Provider b2 could not be listed, so its backups are unknown: connection refused"
    assert health.nothing_offsite("host1")["severity"] == "critical"
    assert health.foreign_host("tank/data", "b2", "why")["message"] == "tank/data on b2: why."
    (vanished,) = health.ledger_problems("tank/data", "b2", [("backup_vanished", "critical", "s1+a0+full", "gone")])
    assert (vanished["code"], vanished["provider"], vanished["backup"]) == ("backup_vanished", "b2", "s1+a0+full")


# -- the result's words (ops/status/report.py) ---------------------------------------------------------------
def test_a_backup_id_says_snapshot_guid_kind_and_base():
    assert report.id_parts("s2+a1+from+s1") == {"snapshot": "s2", "guid": str(0xA1), "kind": "incremental",
                                                "base": "s1"}
    assert report.id_parts("s1+a0+full")["kind"] == "full"
    assert report.id_parts("odd")["guid"] is None and report.id_parts("s+zz+full")["guid"] is None


def test_the_message_names_the_first_critical_problem_then_warnings_then_what_is_offsite():
    warn = health.problem("stale", "warning", "tank/a", "b2", None, "A is old")
    crit = health.problem("no_backup", "critical", "tank/b", "b2", None, "B has none")
    info = health.problem("incomplete_upload", "info", "tank/c", "b2", None, "C is running")
    summary = {"backups": 3, "stored_bytes": 2048}
    assert report.message("h", [warn, crit, info], 2, summary) == "h: critical: B has none (and 1 more problems)"
    assert report.message("h", [warn, info], 2, summary) == "h: warning: A is old"
    assert report.message("h", [info], 2, summary) == "h: 2 datasets ok, 3 backups, %s stored" % human_bytes(2048)


def test_a_running_fan_out_names_each_providers_progress():
    entry = {"operation": "backup", "dataset": "tank/data", "provider": None, "chunk": 3, "chunks_estimated": 2,
             "bytes": 3 << 20, "rate_bytes_per_second": 1 << 20, "pid": 42, "started": None,
             "providers": {"s3": {"chunk": 2, "rate": 0}, "b2": {"chunk": 3, "rate": 1 << 20}}}
    text = report.running_message(entry)
    assert text.startswith("backup of tank/data: chunk 3 of ~3, ") and "(b2 chunk 3, " in text
    assert text.endswith("(PID 42, since unknown)")
    restore = {"operation": "restore", "dataset": "tank/data", "provider": "b2", "pid": 7, "started": "T"}
    assert report.running_message(restore) == "restore of tank/data from b2 (PID 7, since T)"


# -- run_status's options and what it is given ---------------------------------------------------------------
def test_the_verify_levels_are_ops_verifys_and_verifiers_must_be_given(world):
    assert status_run.LEVELS == verify.LEVELS
    config = world.config()
    settings_for = _wiring.settings_for(config, {})
    with pytest.raises(OffsiteError, match="verify must be one of") as bad:
        status_run.run_status(config, {"verify": "all"}, settings_for)
    assert bad.value.code == "bad_value"
    with pytest.raises(OffsiteError, match="^verify=digest needs verify_backup, the chunk verifier"):
        status_run.run_status(config, {"verify": "digest"}, settings_for, stores=world.stores)
    with pytest.raises(OffsiteError, match="^sample needs run_sampled, the sampled verifier"):
        status_run.run_status(config, {"verify": "digest", "sample": "10%"}, settings_for, stores=world.stores,
                              verify_backup=verify.verify_backup)
    with pytest.raises(OffsiteError, match="needs a key") as no_keys:
        status_run.run_status(config, {"verify": "decrypt"}, settings_for)
    assert no_keys.value.code == "no_keys"


def test_run_status_resolves_settings_only_through_settings_for(world):
    s1 = world.snap("s1")
    world.back_up("b2", s1)
    asked = []
    config = world.config()
    plain = _wiring.settings_for(config, {})

    def settings_for(name):
        asked.append(name)
        return plain(name)

    result = status_run.run_status(config, {}, settings_for, zfs=world.zfs, stores=world.stores, now=world.now)
    assert result["health"] == "ok" and sorted(asked) == sorted(set(asked)), "each dataset resolved once"
    assert set(asked) == {status_run.HOST_SCOPE, "tank/data"}


def test_the_pure_parts_do_no_io():
    """health.py, _chains.py, report.py and drills.py import no layer that reads or writes anything."""
    import ast
    from pathlib import Path

    folder = Path(health.__file__).parent
    io = {"os", "subprocess", "socket", "shutil", "store", "zfs", "locks", "progress", "ledger", "hostid",
          "drill_state", "config", "resolve", "_proc"}
    for name in ("health.py", "_chains.py", "report.py", "drills.py"):
        tree = ast.parse((folder / name).read_text(encoding="utf-8"))
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {a.name.rsplit(".", 1)[-1] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported |= {(node.module or "").rsplit(".", 1)[-1]} | {a.name for a in node.names}
        assert not imported & io, "%s imports %s" % (name, sorted(imported & io))
