"""Lineages (no I/O): detection of a recreated dataset, per-lineage keep, the manifest field."""

from __future__ import annotations

import hashlib
import json

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils import catalog, lineage
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.manifest import ChunkRecord, Manifest, SnapshotRef, parse
from ansible_collections.offsite.zfs.plugins.module_utils.ops.prune import plan
from ansible_collections.offsite.zfs.plugins.module_utils.store import RemoteObject
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import Snapshot

KEY = b"k" * 32


def make_manifest(snapshot="s1", guid="11", base=None, base_guid=None, creation=100):
    base_ref = SnapshotRef(base, base_guid, 1, creation - 1) if base else None
    records = [ChunkRecord(0, catalog.chunk_object(0, ".zst"), 65536, hashlib.sha256(b"p").hexdigest(),
                           1000, hashlib.sha256(b"s").hexdigest())]
    manifest = Manifest(backup_id=catalog.make_backup_id(snapshot, int(guid), base), namespace="nas1",
                        dataset="tank/data", snapshot=SnapshotRef(snapshot, guid, 2, creation),
                        kind="incremental" if base else "full", base=base_ref, send_flags=[],
                        compression={"algorithm": "zstd", "level": 3},
                        encryption={"kind": "recipients", "sealed_key": "c2VhbGVk"}, chunk_size=65536,
                        chunks=records)
    manifest.seal_with(KEY)
    return manifest


def as_backup(manifest):
    found = catalog.Backup(manifest.dataset, manifest.backup_id, manifest=manifest)
    for chunk in manifest.chunks:
        found.objects[chunk.object] = RemoteObject(chunk.object, chunk.stored_bytes)
    return found


def backup(snapshot, guid, creation, base=None, base_guid=None, lineage_id=""):
    manifest = make_manifest(snapshot, guid, base=base, base_guid=base_guid, creation=creation)
    manifest.lineage = lineage_id
    manifest.host = "nas1"
    manifest.seal_with(KEY)
    return as_backup(manifest)


def snap(name, guid, txg):
    return Snapshot(dataset="tank/data", name=name, guid=guid, createtxg=txg, creation=txg)


OLD = [backup("a1", "11", 100), backup("a2", "12", 200, "a1", "11"), backup("a3", "13", 300, "a2", "12")]


def test_first_backup_is_the_original_lineage():
    assert lineage.for_backup("tank/data", "b2", "nas1", [snap("x", 99, 1)], [], allow_new=False) == ""


def test_a_local_snapshot_in_the_backups_continues_their_lineage():
    local = [snap("a3", 13, 3), snap("a4", 14, 4)]
    assert lineage.for_backup("tank/data", "b2", "nas1", local, OLD, allow_new=False) == ""
    renewed = OLD + [backup("n1", "21", 400, lineage_id="20261201T000000Z")]
    assert lineage.for_backup("tank/data", "b2", "nas1", [snap("n1", 21, 9)], renewed, False) == "20261201T000000Z"


def test_a_recreated_dataset_is_refused_with_one_sentence():
    rebuilt = [snap("offsite-20261201T020000Z", 777, 2)]
    with pytest.raises(OffsiteError) as caught:
        lineage.for_backup("tank/data", "b2", "nas1", rebuilt, OLD, allow_new=False)
    assert caught.value.code == "new_lineage"
    message = caught.value.message
    assert message.startswith("The snapshots of tank/data on this host share none with its 3 backups on b2 "
                              "in namespace nas1 (newest tank/data@a3, from host nas1)")
    assert "Nothing was uploaded" in message and "new_lineage: true for tank/data" in message


def test_new_lineage_true_starts_a_separate_lineage_named_by_its_start():
    rebuilt = [snap("offsite-20261201T020000Z", 777, 2)]
    got = lineage.for_backup("tank/data", "b2", "nas1", rebuilt, OLD, allow_new=True, now=1796090400)
    assert got == "20261201T020000Z"


def test_keep_rules_of_a_new_lineage_never_prune_the_old_one():
    new = [backup("n1", "21", 1000, lineage_id="L2"), backup("n2", "22", 1100, "n1", "21", lineage_id="L2"),
           backup("n3", "23", 1200, lineage_id="L2")]
    everything = OLD + new
    items = [plan.to_item(b) for b in everything]
    mixed = plan.plan(items, {"last": 1})
    assert {b.backup_id for b in OLD} <= set(mixed.delete), "one plan over both lineages deletes the old data"
    decision = lineage.plan_per_lineage(lambda some: [plan.to_item(b) for b in some], everything,
                                        {"last": 1}, plan.plan)
    kept = set(decision.keep)
    assert OLD[2].backup_id in kept and new[2].backup_id in kept
    assert OLD[0].backup_id in kept and OLD[1].backup_id in kept, "the chain of the old lineage's newest stays"
    assert set(decision.delete) == {new[0].backup_id, new[1].backup_id}


def test_summary_and_restore_note_name_both_lineages():
    everything = OLD + [backup("n1", "21", 1000, lineage_id="L2")]
    rows = lineage.summary(everything)
    assert [(r["label"], r["backups"], r["oldest_snapshot"], r["newest_snapshot"]) for r in rows] == [
        ("original", 3, "a1", "a3"), ("L2", 1, "n1", "n1")]
    assert lineage.note("L2", rows) == ("; from lineage L2 (other lineages: original up to @a3; restore one of "
                                        "those with snapshot=NAME)")
    assert lineage.note("original", rows[:1]) == ""


def test_lineage_is_in_the_manifest_and_absent_from_old_ones():
    old = make_manifest()
    assert "lineage" not in json.loads(old.to_json())
    assert parse(old.to_json()).lineage == "" and parse(old.to_json()).check_mac(KEY)
    new = make_manifest()
    new.lineage = "20261201T020000Z"
    new.seal_with(KEY)
    parsed = parse(new.to_json())
    assert parsed.lineage == "20261201T020000Z" and parsed.check_mac(KEY)
    parsed.lineage = "other"
    assert not parsed.check_mac(KEY), "the lineage is covered by the manifest's mac"


def test_a_dataset_whose_backed_up_snapshots_were_pruned_is_not_a_new_lineage():
    """A pruner destroyed every backed-up snapshot: the dataset is older than the newest one backed up
    (creation and createtxg), so the next backup is a full one of the same lineage, not a refusal."""
    later = [snap("a9", 19, 900)]
    assert lineage.for_backup("tank/data", "b2", "nas1", later, OLD, allow_new=False, origin=(50, 1)) == ""


@pytest.mark.parametrize("origin", [(400, 1), (50, 5)], ids=["created later (new pool)", "later txg (same pool)"])
def test_a_dataset_made_after_its_newest_backed_up_snapshot_is_a_new_lineage(origin):
    rebuilt = [snap("offsite-20261201T020000Z", 777, 2)]
    with pytest.raises(OffsiteError) as caught:
        lineage.for_backup("tank/data", "b2", "nas1", rebuilt, OLD, allow_new=False, origin=origin)
    assert caught.value.code == "new_lineage"
