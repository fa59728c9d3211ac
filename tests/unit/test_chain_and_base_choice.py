"""Chain resolution (catalog), the provider a restore reads from (ops/restore/native.py: find_native), and the base
a backup sends from (ops/backup/plan.py: choose_base, already_present; holds.bookmark_base), over data: no rclone,
no zfs."""

from __future__ import annotations

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils import catalog, holds
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup import plan as backup_op
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.native import find_native
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import Bookmark
from ansible_collections.offsite.zfs.tests.unit.doubles import backups
from ansible_collections.offsite.zfs.tests.unit.doubles.memory_store import MemoryStore
from ansible_collections.offsite.zfs.tests.unit.doubles.scripted_zfs import ScriptedZfs


@pytest.fixture
def zfs() -> ScriptedZfs:
    return ScriptedZfs()


def _snaps(zfs: ScriptedZfs, count: int, dataset: str = "tank/data") -> list:
    return [zfs.add_snapshot(dataset, "s%d" % i) for i in range(1, count + 1)]


def _ids(chain):
    return [b.backup_id for b in chain] if chain is not None else None


# -- catalog.resolve_chain -------------------------------------------------------------------
def test_a_chain_runs_from_the_full_through_every_incremental(zfs):
    s = _snaps(zfs, 4)
    found = backups.chain(s)
    assert _ids(catalog.resolve_chain(found, str(s[3].guid))) == _ids(found)
    assert _ids(catalog.resolve_chain(found, str(s[1].guid))) == _ids(found[:2])


def test_the_shortest_chain_wins(zfs):
    s = _snaps(zfs, 4)
    found = backups.chain(s) + [backups.backup(s[2])]  # a second, full backup of s3
    assert _ids(catalog.resolve_chain(found, str(s[3].guid))) == [found[-1].backup_id, found[3].backup_id]


def test_a_damaged_link_breaks_the_chain_unless_damage_is_ignored(zfs):
    s = _snaps(zfs, 3)
    found = [backups.backup(s[0]), backups.backup(s[1], s[0], missing=[0]), backups.backup(s[2], s[1])]
    assert catalog.resolve_chain(found, str(s[2].guid)) is None
    assert len(catalog.resolve_chain(found, str(s[2].guid), intact_only=False)) == 3
    wrong = [backups.backup(s[0], wrong_size=[1]), found[1]]
    assert catalog.resolve_chain(wrong, str(s[0].guid)) is None


def test_an_incomplete_backup_or_a_missing_base_gives_no_chain(zfs):
    s = _snaps(zfs, 3)
    assert catalog.resolve_chain([backups.backup(s[0], complete=False)], str(s[0].guid)) is None
    assert catalog.resolve_chain([backups.backup(s[2], s[1])], str(s[2].guid)) is None
    assert catalog.resolve_chain([], str(s[0].guid)) is None


def test_a_cycle_of_incrementals_ends(zfs):
    a, b = _snaps(zfs, 2)
    assert catalog.resolve_chain([backups.backup(a, b), backups.backup(b, a)], str(a.guid)) is None


def test_the_latest_backup_is_the_newest_snapshot_by_creation_then_txg_never_by_name(zfs):
    zz = zfs.add_snapshot("tank/data", "zz-oldest", creation=1000, createtxg=10)
    aa = zfs.add_snapshot("tank/data", "aa-newest", creation=3000, createtxg=30)
    same = zfs.add_snapshot("tank/data", "mm", creation=3000, createtxg=40)
    found = [backups.backup(zz), backups.backup(aa), backups.backup(zz, complete=False)]
    assert catalog.latest_backup(found).snapshot_name == "aa-newest"
    assert catalog.latest_backup(found + [backups.backup(same)]).snapshot_name == "mm"
    assert catalog.latest_backup([backups.backup(zz, complete=False)]) is None


def test_split_path_ends_the_dataset_at_the_first_at_sign():
    assert catalog.split_path("tank/data/child/@s+1+full/chunk-000001.zst.age") == (
        "tank/data/child", "s+1+full", "chunk-000001.zst.age")
    assert catalog.split_path("@s/x") is None and catalog.split_path("tank/@s") is None
    assert catalog.split_path("tank/data/no-backup-dir") is None


# -- native.find_native: which provider a restore reads from -------------------------------------
def _store_with(name, manifests, missing=None):
    store = MemoryStore(name)
    for made in manifests:
        backups.place(store, made, missing=(missing or {}).get(made.backup_id, ()))
    return store


def test_restore_reads_the_first_provider_that_holds_an_intact_chain(zfs, tmp_path):
    s = _snaps(zfs, 3)
    full, one, two = backups.manifest(s[0]), backups.manifest(s[1], s[0]), backups.manifest(s[2], s[1])
    broken = _store_with("first", [full, one, two], missing={one.backup_id: [1]})
    partial = _store_with("second", [one, two])
    good = _store_with("third", [full, one, two])
    source = find_native([broken, partial, good], backups.NAMESPACE, "tank/data", None, str(tmp_path))
    assert source.store is good and _ids(source.chain) == [full.backup_id, one.backup_id, two.backup_id]
    assert source.skipped[0].startswith("first holds the chain of tank/data@s3 but backup %s is missing"
                                        % one.backup_id)
    assert source.skipped[1] == "second has tank/data@s3 but not the backups it is based on (broken chain)"


def test_restore_of_a_named_snapshot_takes_its_chain_only(zfs, tmp_path):
    s = _snaps(zfs, 3)
    made = [backups.manifest(s[0]), backups.manifest(s[1], s[0]), backups.manifest(s[2], s[1])]
    source = find_native([_store_with("b2", made)], backups.NAMESPACE, "tank/data", "s2", str(tmp_path))
    assert _ids(source.chain) == [made[0].backup_id, made[1].backup_id]


def test_no_provider_can_restore_says_why_for_each(zfs, tmp_path):
    s = _snaps(zfs, 1)
    empty = MemoryStore("empty")
    failing = MemoryStore("down")
    failing.fail("list", 1, b"ERROR : dial tcp 10.0.0.1:443: connect: connection refused")
    with pytest.raises(OffsiteError) as caught:
        find_native([empty, failing, _store_with("b2", [backups.manifest(s[0])])], backups.NAMESPACE,
                    "tank/data", "nope", str(tmp_path))
    assert caught.value.code == "no_backup"
    message = caught.value.message
    assert message.startswith("No provider can restore tank/data@nope: empty has no complete backup of")
    assert "down: Provider down cannot be reached at 10.0.0.1:443: connection refused" in message
    assert "b2 has no complete backup of tank/data@nope" in message


# -- backup: what to send ------------------------------------------------------------------------
def test_the_base_is_the_newest_older_local_snapshot_with_a_restorable_chain(zfs):
    s = _snaps(zfs, 4)
    found = backups.chain(s[:3])
    assert backup_op.choose_base(s, s[3], found) == s[2]
    assert backup_op.choose_base(s, s[1], found) == s[0], "never a snapshot as new as the target"
    assert backup_op.choose_base(s, s[0], found) is None


def test_a_base_whose_chain_is_damaged_is_passed_over(zfs):
    s = _snaps(zfs, 4)
    found = [backups.backup(s[0]), backups.backup(s[1], s[0]), backups.backup(s[2], s[1], missing=[0])]
    assert backup_op.choose_base(s, s[3], found) == s[1]
    assert backup_op.choose_base(s, s[3], [backups.backup(s[2], s[1])]) is None, "no full below it"


def test_a_local_snapshot_that_was_never_backed_up_is_no_base(zfs):
    s = _snaps(zfs, 3)
    assert backup_op.choose_base([s[0], s[2]], s[2], [backups.backup(s[1])]) is None


def test_already_present_needs_a_complete_restorable_backup_of_that_guid(zfs):
    s = _snaps(zfs, 2)
    found = backups.chain(s)
    assert backup_op.already_present(found, s[1], full=False) is found[1]
    assert backup_op.already_present(found, s[1], full=True) is None, "full=true wants a full backup of it"
    assert backup_op.already_present(found + [backups.backup(s[1])], s[1], full=True).manifest.kind == "full"
    assert backup_op.already_present([backups.backup(s[1], s[0])], s[1], full=False) is None, "broken chain"
    assert backup_op.already_present([backups.backup(s[0], complete=False)], s[0], full=False) is None


def test_when_the_base_snapshot_is_gone_its_bookmark_is_the_base(zfs):
    s = _snaps(zfs, 3)
    found = backups.chain(s[:2])
    zfs.add_bookmark(s[1], holds.bookmark_name("b2", s[1].guid))
    zfs.remove_snapshot("tank/data", "s2")
    base = holds.bookmark_base(zfs, s[2], found)
    assert isinstance(base, Bookmark) and base.guid == s[1].guid and base.name == "s2"
    assert holds.manifest_base_fields(base)["base_kind"] == "bookmark"
    assert holds.bookmark_base(ScriptedZfs(bookmarks=False), s[2], found) is None
