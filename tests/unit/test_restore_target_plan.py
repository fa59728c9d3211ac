"""Restore target planning: where a chain is received and from which link, decided before any byte moves.

First through run.run_restore in check mode (no lock, no stream) with a memory provider and a scripted
zfs; then target.plan_target itself, the one rule, for a native and a legacy chain of the same
snapshots; then which source run_restore chooses (native, legacy, legacy auto).
"""

from __future__ import annotations

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.legacy_layout import LegacySet, Piece
from ansible_collections.offsite.zfs.plugins.module_utils.legacy_stream import StreamHeader
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.legacy import LegacyChain
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.native import find_native
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.run import run_restore
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.target import (
    STAGING_SUFFIX,
    TargetPlan,
    plan_target,
)
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import PARTIAL_PROPERTY
from ansible_collections.offsite.zfs.tests.unit.doubles import backups
from ansible_collections.offsite.zfs.tests.unit.doubles.world import World


@pytest.fixture
def world(tmp_path):
    made = World(tmp_path)
    made.s = [made.snap("s%d" % i) for i in (1, 2, 3)]
    made.m = [made.back_up("b2", made.s[0]), made.back_up("b2", made.s[1], made.s[0]),
              made.back_up("b2", made.s[2], made.s[1])]
    return made.settled()


def _plan(world, target, **kwargs):
    return run_restore(world.settings(), target=target, check_mode=True, zfs=world.zfs, stores=world.stores,
                       **kwargs)


def _planned(result):
    return [p["snapshot"] for p in result["plan"]]


def _local(world, target, names):
    """The target dataset with some of the backed-up snapshots (same guids) already received."""
    world.zfs.add_dataset(target)
    by_name = {s.name: s for s in world.s}
    for name in names:
        snap = by_name.get(name)
        world.zfs.add_snapshot(target, name, guid=snap.guid if snap else None)


def test_a_new_target_receives_the_whole_chain_into_the_staging_name(world):
    world.zfs.add_dataset("tank/restored")
    world.settled()
    result = _plan(world, "tank/restored/data")
    assert _planned(result) == ["s1", "s2", "s3"] and result["changed"] is True
    assert result["chain"] == [m.backup_id for m in world.m] and result["provider"] == "b2"
    assert result["estimated_bytes"] == sum(m.plain_bytes for m in world.m)
    assert result["msg"].startswith("would restore tank/data@s3 from b2 into tank/restored/data: 3 backups")
    assert world.zfs.calls == [], "check mode changes nothing"


def test_a_named_snapshot_is_restored_with_its_own_chain(world):
    world.zfs.add_dataset("tank/restored")
    assert _planned(_plan(world, "tank/restored/data", snapshot="s2")) == ["s1", "s2"]


def test_a_target_that_holds_the_snapshot_needs_nothing(world):
    _local(world, "tank/copy", ["s1", "s2", "s3"])
    result = _plan(world, "tank/copy")
    assert result["changed"] is False and result["received"] == [] and "already holds s3" in result["msg"]


def test_a_target_at_an_earlier_link_continues_after_it(world):
    _local(world, "tank/copy", ["s1", "s2"])
    assert _planned(_plan(world, "tank/copy")) == ["s3"]


def test_a_target_with_newer_snapshots_of_its_own_is_refused_unless_forced(world):
    _local(world, "tank/copy", ["s1", "local-only"])
    with pytest.raises(OffsiteError) as caught:
        _plan(world, "tank/copy")
    assert caught.value.code == "target_diverged" and "newer than s1" in caught.value.message
    assert _planned(_plan(world, "tank/copy", force=True)) == ["s2", "s3"]


def test_a_target_that_shares_no_snapshot_is_refused_unless_forced(world):
    _local(world, "tank/other", ["unrelated"])
    with pytest.raises(OffsiteError) as caught:
        _plan(world, "tank/other")
    assert caught.value.code == "target_exists"
    assert _planned(_plan(world, "tank/other", force=True)) == ["s1", "s2", "s3"]


def test_a_missing_parent_or_a_pool_name_is_refused(world):
    with pytest.raises(OffsiteError) as caught:
        _plan(world, "tank/missing/data")
    assert caught.value.code == "no_parent" and "tank/missing" in caught.value.message
    world.zfs.add_dataset("pool2")
    with pytest.raises(OffsiteError) as caught:
        _plan(world, "pool2")
    assert caught.value.code == "target_exists"  # an existing pool: it shares no snapshot


def test_an_interrupted_restore_resumes_from_its_staging_dataset(world):
    world.zfs.add_dataset("tank/restored")
    staging = "tank/restored/data" + STAGING_SUFFIX
    _local(world, staging, ["s1"])
    world.zfs.set_property(staging, PARTIAL_PROPERTY, "tank/restored/data")
    result = _plan(world, "tank/restored/data")
    assert result["resumed_from_staging"] is True and _planned(result) == ["s2", "s3"]


def test_a_staging_name_that_a_restore_did_not_make_is_refused(world):
    world.zfs.add_dataset("tank/restored")
    world.zfs.add_dataset("tank/restored/data" + STAGING_SUFFIX)
    with pytest.raises(OffsiteError) as caught:
        _plan(world, "tank/restored/data")
    assert caught.value.code == "target_exists" and "not made by an offsite restore" in caught.value.message


def test_provider_selection_is_checked_before_anything_is_read(world):
    with pytest.raises(OffsiteError) as caught:
        _plan(world, "tank/copy", provider="gcs")
    assert caught.value.code == "unknown_provider" and world.stores["b2"].calls == []
    with pytest.raises(OffsiteError) as caught:
        _plan(world, "tank/" + "x" * 250)
    assert caught.value.code == "bad_name"


# -- plan_target: the one rule, proven for a native and a legacy chain of the same snapshots ---------------
def _native_chain(world):
    return find_native(list(world.stores.values()), backups.NAMESPACE, world.dataset, None, str(world.tmp))


def _legacy_chain(world):
    """The old tool's F1 objects of the same snapshots (full, then -i incrementals), linked by their guids."""
    sets, base = [], "0"
    for number, snap in enumerate(world.s):
        prefix = "%s-%s" % ("full" if number == 0 else "incr", snap.name)
        header = StreamHeader(toguid=str(snap.guid), fromguid=base, creation=snap.creation,
                              toname="%s@%s" % (world.dataset, snap.name))
        sets.append(LegacySet(world.dataset, "F1", prefix, snap.name, "full" if number == 0 else "incremental",
                              pieces=[Piece("tank_data/%s.zfs.gz.age" % prefix, 1, 4096)], header=header,
                              final_guid=str(snap.guid)))
        base = str(snap.guid)
    return LegacyChain(world.stores["b2"], sets, [], None)


@pytest.fixture(params=["native", "legacy"])
def chain(request, world):
    return _native_chain(world) if request.param == "native" else _legacy_chain(world)


def _target_plan(world, chain, target, force=False, check_mode=False):
    return plan_target(world.zfs, chain.links, target, force, check_mode, resumes=chain.resumes, legacy=chain.legacy)


def test_both_chains_have_the_same_links(world):
    native, legacy = _native_chain(world), _legacy_chain(world)
    assert [(n.guid, n.snapshot, n.kind) for n in native.links] == [(x.guid, x.snapshot, x.kind) for x in legacy.links]
    assert not native.legacy and legacy.legacy and native.resumes and not legacy.resumes


def test_plan_a_new_target_is_staged_from_the_first_link(world, chain):
    world.zfs.add_dataset("tank/restored")
    world.settled()
    plan = _target_plan(world, chain, "tank/restored/data")
    assert plan == TargetPlan(0, "tank/restored/data" + STAGING_SUFFIX) and plan.staged
    assert world.zfs.calls == []


def test_plan_a_target_holding_the_final_snapshot_needs_nothing(world, chain):
    _local(world, "tank/copy", ["s1", "s2", "s3"])
    assert _target_plan(world, chain, "tank/copy") == TargetPlan(None, "tank/copy")


def test_plan_continues_after_the_newest_link_the_target_holds(world, chain):
    _local(world, "tank/copy", ["s1", "s2"])
    plan = _target_plan(world, chain, "tank/copy")
    assert plan == TargetPlan(2, "tank/copy") and not plan.staged


def test_plan_a_diverged_target_needs_force_in_the_chains_own_words(world, chain):
    _local(world, "tank/copy", ["s1", "local-only"])
    with pytest.raises(OffsiteError) as caught:
        _target_plan(world, chain, "tank/copy")
    words = "the legacy chain" if chain.legacy else "the backup chain"
    assert caught.value.code == "target_diverged" and "newer than s1 that %s does not" % words in caught.value.message
    assert _target_plan(world, chain, "tank/copy", force=True) == TargetPlan(1, "tank/copy", force=True)


def test_plan_an_unrelated_target_needs_force_in_the_chains_own_words(world, chain):
    _local(world, "tank/other", ["unrelated"])
    with pytest.raises(OffsiteError) as caught:
        _target_plan(world, chain, "tank/other")
    words = "this legacy chain" if chain.legacy else "this backup chain"
    assert caught.value.code == "target_exists" and words in caught.value.message
    assert _target_plan(world, chain, "tank/other", force=True) == TargetPlan(0, "tank/other", force=True)


def test_plan_refuses_a_missing_parent_and_a_pool_name(world, chain):
    with pytest.raises(OffsiteError) as caught:
        _target_plan(world, chain, "tank/missing/data")
    assert caught.value.code == "no_parent"
    with pytest.raises(OffsiteError) as caught:
        _target_plan(world, chain, "pool3")
    assert caught.value.code == "bad_target" and "is a pool name" in caught.value.message


def test_plan_a_staging_dataset_is_resumed_by_native_chains_and_started_over_by_legacy_ones(world, chain):
    world.zfs.add_dataset("tank/restored")
    staging = "tank/restored/data" + STAGING_SUFFIX
    _local(world, staging, ["s1"])
    world.zfs.set_property(staging, PARTIAL_PROPERTY, "tank/restored/data")
    world.settled()
    checked = _target_plan(world, chain, "tank/restored/data", check_mode=True)
    assert world.zfs.calls == [] and world.zfs.exists(staging), "check mode destroys nothing"
    plan = _target_plan(world, chain, "tank/restored/data")
    if chain.legacy:  # an -I stream's guid may be unknown until it is read: receive everything again
        assert checked == plan == TargetPlan(0, staging) and not world.zfs.exists(staging)
    else:
        assert checked == plan == TargetPlan(1, staging, resumed=True) and world.zfs.exists(staging)


def test_plan_refuses_a_staging_name_no_restore_made(world, chain):
    world.zfs.add_dataset("tank/restored")
    world.zfs.add_dataset("tank/restored/data" + STAGING_SUFFIX)
    with pytest.raises(OffsiteError) as caught:
        _target_plan(world, chain, "tank/restored/data")
    assert caught.value.code == "target_exists" and "not made by an offsite restore" in caught.value.message


def test_plan_a_link_whose_guid_is_not_read_yet_matches_nothing(world):
    legacy = _legacy_chain(world)
    legacy.chain[2].final_guid = ""  # a -I stream's final guid is in its tail
    _local(world, "tank/copy", ["s1", "s2"])
    assert _target_plan(world, legacy, "tank/copy") == TargetPlan(2, "tank/copy")
    world.zfs.add_snapshot("tank/copy", "s3", guid=world.s[2].guid)
    with pytest.raises(OffsiteError) as caught:  # why run_restore reads those tails when the target exists
        _target_plan(world, legacy, "tank/copy")
    assert caught.value.code == "target_diverged"


# -- which source: native, legacy, or legacy when no native backup exists (legacy auto) ---------------------
@pytest.fixture
def old_world(tmp_path):
    """No native backup; the old tool's F1 object of tank/data on the provider."""
    made = World(tmp_path)
    made.stores["b2"].add("tank_data/full-auto-20250716-110000.zfs.gz.age", b"x" * 300)
    made.zfs.add_dataset("tank/restored")
    return made.settled()


def test_legacy_auto_restores_the_old_tools_backup_when_no_native_one_exists(old_world):
    result = run_restore(old_world.settings(), target="tank/restored/data", check_mode=True, legacy=None,
                         zfs=old_world.zfs, stores=old_world.stores)
    assert result["legacy"] is True and result["changed"] is True and result["provider"] == "b2"
    assert result["legacy_detected"].startswith("no native backup: No provider can restore tank/data")
    assert [b["name"] for b in result["backups"]] == ["full-auto-20250716-110000"]
    assert "need the identity to read" in result["msg"] and old_world.zfs.calls == []


def test_native_only_and_legacy_only_say_what_is_missing(old_world, world):
    with pytest.raises(OffsiteError) as caught:
        run_restore(old_world.settings(), target="tank/restored/data", check_mode=True, zfs=old_world.zfs,
                    stores=old_world.stores)
    assert caught.value.code == "no_backup" and caught.value.message.startswith("No provider can restore tank/data")
    with pytest.raises(OffsiteError) as caught:
        run_restore(world.settings(), target="tank/copy", check_mode=True, legacy=True, zfs=world.zfs,
                    stores=world.stores)
    assert caught.value.code == "no_backup" and caught.value.message == (
        "No provider holds a legacy backup of tank/data: b2 has no folder tank_data of the old tool.")
    with pytest.raises(OffsiteError) as caught:
        run_restore(old_world.settings(), target="tank/restored/data", legacy=True, zfs=old_world.zfs,
                    stores=old_world.stores)
    assert caught.value.code == "no_keys" and "needs the age identity" in caught.value.message
