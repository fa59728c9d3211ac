"""Restore target planning: where a chain is received and from which link, decided before any byte moves.

Driven through restore.run_restore in check mode (no lock, no stream) with a memory provider and a
scripted zfs; the planning itself is inline in restore._restore_locked (no pure function yet).
"""

from __future__ import annotations

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils.common import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.run import run_restore
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.target import STAGING_SUFFIX
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import PARTIAL_PROPERTY
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
