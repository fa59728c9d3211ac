"""The hold and bookmark decisions (holds.py, status_bases.py and their hooks in ops/backup/plan.py), with a
scripted zfs: bookmarks cannot run on this machine's zfs-fuse, so the OpenZFS answers are played by a
model of one dataset (snapshots, holds, bookmarks, the pool's bookmarks feature) that logs each call.
The zfs argv itself is tested in test_zfs_holds.py; holds run for real in tests/functional/test_holds.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import jsonschema
import pytest

from ansible_collections.offsite.zfs.plugins.module_utils import catalog, holds, resolve, status_bases
from ansible_collections.offsite.zfs.plugins.module_utils.manifest import ChunkRecord, Manifest, SnapshotRef, parse
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.plan import ProviderRun
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.run import _NullProgress
from ansible_collections.offsite.zfs.plugins.module_utils.settings import DatasetSettings
from ansible_collections.offsite.zfs.plugins.module_utils.store import RemoteObject
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import Bookmark, Capabilities, Snapshot, Zfs

DS = "tank/ds"
ROOT = Path(__file__).resolve().parents[4]


class ModelZfs(Zfs):
    """One dataset's snapshots, user holds and bookmarks; every call logged as (verb, name)."""

    def __init__(self, snaps: List[Snapshot], feature: bool = True) -> None:
        super().__init__("zfs")
        self.snaps = {s.name: s for s in snaps}
        self.held: Set[Tuple[str, str]] = set()
        self.marks: Dict[str, Bookmark] = {}
        self.feature = feature
        self.calls: List[Tuple[str, str]] = []

    def capabilities(self) -> Capabilities:
        return Capabilities(send_flags="", receive_flags="", written=False)

    def exists(self, name: str) -> bool:
        return name == DS

    def snapshots(self, dataset: str) -> List[Snapshot]:
        return sorted(self.snaps.values(), key=lambda s: s.createtxg)

    def get(self, name: str, prop: str) -> str:
        return {"referenced": "65536", "type": "filesystem"}[prop]

    def origin(self, name: str) -> Tuple[int, int]:
        return 1, 1  # the dataset is older than its snapshots (not recreated)

    def hold(self, tag: str, name: str) -> bool:
        self.calls.append(("hold", "%s %s" % (tag, name)))
        new = (tag, name) not in self.held
        self.held.add((tag, name))
        return new

    def release(self, tag: str, name: str) -> bool:
        self.calls.append(("release", "%s %s" % (tag, name)))
        had = (tag, name) in self.held
        self.held.discard((tag, name))
        return had

    def userrefs(self, name: str) -> int:
        return sum(1 for _tag, held in self.held if held == name)

    def bookmarks_supported(self, dataset: str) -> bool:
        return self.feature

    def bookmarks(self, dataset: str) -> List[Bookmark]:
        assert self.feature, "bookmarks listed on a pool without the feature"
        return sorted(self.marks.values(), key=lambda b: b.createtxg)

    def bookmark(self, snapshot: Snapshot, name: str) -> None:
        assert self.feature, "a bookmark on a pool without the feature"
        self.calls.append(("bookmark", "%s#%s" % (snapshot.dataset, name)))
        self.marks[name] = Bookmark(snapshot.dataset, "", snapshot.guid, snapshot.createtxg, snapshot.creation,
                                    bookmark=name)

    def destroy_bookmark(self, dataset: str, name: str) -> None:
        self.calls.append(("destroy", "%s#%s" % (dataset, name)))
        del self.marks[name]

    def destroy_snapshot(self, name: str) -> None:
        """What a snapshot manager does (the model does not enforce holds: the functional test does)."""
        del self.snaps[name]


def snap(name: str, guid: int, txg: int) -> Snapshot:
    return Snapshot(DS, name, guid, txg, 1700000000 + txg)


def manifest_of(s: Snapshot, base: Optional[Snapshot] = None) -> Manifest:
    records = [ChunkRecord(0, catalog.chunk_object(0, ".zst"), 10, "a" * 64, 20, "b" * 64)]
    manifest = Manifest(backup_id=catalog.make_backup_id(s.name, s.guid, base.name if base else None),
                        namespace="host1", dataset=DS,
                        snapshot=SnapshotRef(s.name, str(s.guid), s.createtxg, s.creation),
                        kind="incremental" if base else "full",
                        base=SnapshotRef(base.name, str(base.guid), base.createtxg, base.creation) if base else None,
                        send_flags=[], compression={"algorithm": "zstd", "level": 3},
                        encryption={"kind": "recipients", "recipients": [], "wrapped_identity": None,
                                    "sealed_key": "c2VhbGVk"}, chunk_size=65536, chunks=records,
                        **holds.manifest_base_fields(base))
    manifest.seal_with(b"k" * 32)
    return manifest


def backup_of(manifest: Manifest) -> catalog.Backup:
    backup = catalog.Backup(DS, manifest.backup_id, manifest=manifest)
    for chunk in manifest.chunks:
        backup.objects[chunk.object] = RemoteObject(chunk.object, chunk.stored_bytes)
    return backup


class ListingStore:
    """Just enough of a Store for a check-mode ProviderRun: the listing and the manifests of backups."""

    def __init__(self, backups: List[catalog.Backup]) -> None:
        self.name = "local"
        self.backups = backups
        self.pass_fds = ()
        self.retry_log: List[str] = []

    def list(self, prefix: str = "", max_depth: Optional[int] = None) -> List[RemoteObject]:
        out = []
        for backup in self.backups:
            out.append(RemoteObject("@%s/%s" % (backup.backup_id, catalog.MANIFEST), 100))
            out.extend(RemoteObject("@%s/%s" % (backup.backup_id, o), obj.size) for o, obj in backup.objects.items())
        return out

    def fetch(self, prefix: str, dest: str, include: List[str], max_depth: Optional[int] = None) -> None:
        for backup in self.backups:
            folder = os.path.join(dest, "@" + backup.backup_id)
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, catalog.MANIFEST), "wb") as handle:
                handle.write(backup.manifest.to_json())


def settings(tmp_path: Path) -> DatasetSettings:
    config = {"recipients": ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"], "namespace": "host1",
              "state_dir": str(tmp_path / "state"), "log_dir": str(tmp_path / "log"),
              "providers": {"local": {"remote": str(tmp_path / "remote")}}}
    return resolve.resolve(config, DS, {})


H1, H2, H3 = snap("h1", 0xA1, 10), snap("h2", 0xA2, 20), snap("h3", 0xA3, 30)


# -- after a backup ------------------------------------------------------------------------------------
def test_backup_holds_then_bookmarks_then_releases_the_old_base(tmp_path):
    zfs = ModelZfs([H1, H2])
    state = str(tmp_path)
    first = holds.move_base(zfs, state, "host1", "local", H1, zfs.snapshots(DS))
    assert first == {"tag": "offsite:local", "snapshot": "h1", "held": True,
                     "bookmark": "offsite-local-00000000000000a1", "released": None}
    second = holds.move_base(zfs, state, "host1", "local", H2, zfs.snapshots(DS))
    assert second["released"] == "h1" and second["bookmark"] == "offsite-local-00000000000000a2"
    assert zfs.calls == [
        ("hold", "offsite:local tank/ds@h1"), ("bookmark", "tank/ds#offsite-local-00000000000000a1"),
        ("hold", "offsite:local tank/ds@h2"), ("bookmark", "tank/ds#offsite-local-00000000000000a2"),
        ("release", "offsite:local tank/ds@h1"), ("destroy", "tank/ds#offsite-local-00000000000000a1")]
    assert zfs.held == {("offsite:local", "tank/ds@h2")}
    record = holds.load_record(state, "host1", DS, "local")
    assert (record.snapshot, record.guid, record.held, record.bookmark) == (
        "h2", str(0xA2), True, "offsite-local-00000000000000a2")
    assert oct(os.stat(holds.record_path(state, "host1", DS, "local")).st_mode & 0o777) == "0o600"


def test_no_bookmark_on_a_pool_without_the_feature(tmp_path):
    zfs = ModelZfs([H1, H2], feature=False)
    holds.move_base(zfs, str(tmp_path), "host1", "local", H1, zfs.snapshots(DS))
    moved = holds.move_base(zfs, str(tmp_path), "host1", "local", H2, zfs.snapshots(DS))
    assert moved["bookmark"] is None
    assert [verb for verb, _name in zfs.calls] == ["hold", "hold", "release"]


def test_backing_up_an_older_snapshot_leaves_the_newer_base_held(tmp_path):
    zfs = ModelZfs([H1, H2])
    holds.move_base(zfs, str(tmp_path), "host1", "local", H2, zfs.snapshots(DS))
    kept = holds.move_base(zfs, str(tmp_path), "host1", "local", H1, zfs.snapshots(DS))
    assert kept["snapshot"] == "h2" and kept["released"] is None
    assert zfs.held == {("offsite:local", "tank/ds@h2")}


def test_a_failed_hold_is_a_warning_not_a_failed_backup(tmp_path):
    zfs = ModelZfs([H1])

    def refuse(tag, name):
        raise holds.OffsiteError("Could not hold %s with tag %s: permission denied" % (name, tag), "zfs_failed")

    zfs.hold = refuse
    kept = holds.keep_base_safely(zfs, str(tmp_path), "host1", "local", H1, [H1])
    assert kept["held"] is False and "next backup would then be full" in kept["error"]


# -- the base of the next backup ---------------------------------------------------------------------------
def run_check(tmp_path: Path, zfs: ModelZfs, target: Snapshot, backups: List[catalog.Backup]) -> Dict:
    run = ProviderRun(settings(tmp_path), ListingStore(backups), zfs, _NullProgress(), target, zfs.snapshots(DS),
                      full=False, check_mode=True)
    try:
        assert run.prepare() is False  # check mode: the plan is the result, nothing to upload
        return run.result
    finally:
        run.release()


def test_base_is_the_bookmark_when_the_snapshot_is_gone(tmp_path):
    zfs = ModelZfs([H1, H2])
    holds.move_base(zfs, str(tmp_path), "host1", "local", H1, zfs.snapshots(DS))
    zfs.destroy_snapshot("h1")  # a pruner took it anyway (say, our hold was released by hand)
    result = run_check(tmp_path, zfs, H2, [backup_of(manifest_of(H1))])
    assert result["kind"] == "incremental" and result["base"] == "h1" and result["base_kind"] == "bookmark"
    assert result["base_guid"] == str(0xA1)
    assert result["backup_id"] == catalog.make_backup_id("h2", 0xA2, "h1")
    assert "from the bookmark tank/ds#offsite-local-00000000000000a1" in result["message"]


def test_a_snapshot_base_is_preferred_to_a_bookmark(tmp_path):
    zfs = ModelZfs([H1, H2])
    holds.move_base(zfs, str(tmp_path), "host1", "local", H1, zfs.snapshots(DS))
    result = run_check(tmp_path, zfs, H2, [backup_of(manifest_of(H1))])
    assert result["base_kind"] == "snapshot" and result["base_at_risk"] is False
    assert "warning" not in result["message"]


def test_without_bookmarks_the_gone_base_means_full_and_check_mode_says_why(tmp_path):
    zfs = ModelZfs([H1, H2], feature=False)
    zfs.destroy_snapshot("h1")
    result = run_check(tmp_path, zfs, H2, [backup_of(manifest_of(H1))])
    assert result["kind"] == "full" and result["base_kind"] is None and result["base_at_risk"] is True
    assert "full, because tank/ds@h1, the newest snapshot backed up to local, is gone from this host and this " \
           "pool has no bookmarks" in result["message"]


def test_a_bookmark_of_a_snapshot_the_provider_does_not_have_is_not_a_base(tmp_path):
    zfs = ModelZfs([H1, H2])
    holds.move_base(zfs, str(tmp_path), "host1", "local", H1, zfs.snapshots(DS))
    zfs.destroy_snapshot("h1")
    other = snap("x1", 0xB1, 5)
    assert holds.bookmark_base(zfs, H2, [backup_of(manifest_of(other))]) is None
    assert holds.bookmark_base(zfs, snap("h0", 0xA0, 9), [backup_of(manifest_of(H1))]) is None, "newer than target"


def test_unheld_base_is_at_risk_in_check_mode(tmp_path):
    zfs = ModelZfs([H1, H2], feature=False)
    result = run_check(tmp_path, zfs, H2, [backup_of(manifest_of(H1))])
    assert result["kind"] == "incremental" and result["base_at_risk"] is True
    assert "has no hold and no bookmark" in result["message"]


# -- the manifest ------------------------------------------------------------------------------------------
def test_manifest_records_a_bookmark_base_with_its_guid_and_snapshot_bases_stay_byte_identical():
    mark = Bookmark(DS, "h1", 0xA1, 10, 1700000010, bookmark="offsite-local-00000000000000a1")
    manifest = manifest_of(H2, mark)
    data = json.loads(manifest.to_json())
    assert data["base"] == {"name": "h1", "guid": str(0xA1), "createtxg": 10, "creation": 1700000010,
                            "kind": "bookmark", "bookmark": "offsite-local-00000000000000a1"}
    schema = json.loads((ROOT / "schemas" / "manifest.schema.json").read_text())
    jsonschema.validate(data, schema)
    parsed = parse(manifest.to_json())
    assert (parsed.base_kind, parsed.base_bookmark, parsed.base.guid) == (
        "bookmark", "offsite-local-00000000000000a1", str(0xA1))
    assert parsed.check_mac(b"k" * 32)
    chain = catalog.resolve_chain([backup_of(manifest_of(H1)), backup_of(parsed)], str(0xA2), intact_only=False)
    assert [b.manifest.snapshot.name for b in chain] == ["h1", "h2"], "the chain links through the bookmark by guid"
    plain = json.loads(manifest_of(H2, H1).to_json())
    assert "kind" not in plain["base"], "a snapshot base keeps the 1.0.0 manifest form (and its MAC)"
    jsonschema.validate(plain, schema)
    assert parse(manifest_of(H2, H1).to_json()).base_kind == "snapshot"


# -- status --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case,expected", [
    ("held", (False, "incremental", None)),
    ("unheld", (True, "incremental", "base_at_risk")),
    ("bookmark_only", (True, "incremental", "base_gone")),
    ("older_left", (True, "incremental", "base_gone")),
    ("gone", (True, "full", "full_backup_next")),
])
def test_status_names_the_base_at_risk(tmp_path, case, expected):
    zfs = ModelZfs([H1, H2, H3], feature=case == "bookmark_only")
    backups = [backup_of(manifest_of(H1)), backup_of(manifest_of(H2, H1))]
    if case in ("held", "bookmark_only"):
        holds.move_base(zfs, str(tmp_path), "host1", "local", H2, zfs.snapshots(DS))
    if case in ("bookmark_only", "gone", "older_left"):
        zfs.destroy_snapshot("h2")
    if case == "gone":
        zfs.destroy_snapshot("h1")
    per_provider: Dict[str, Dict] = {"local": {}}
    problems = status_bases.status_problems(zfs, DS, zfs.snapshots(DS), {"local": backups}, per_provider,
                                            str(tmp_path), "host1")
    base = per_provider["local"]["base"]
    assert (base["at_risk"], base["next_backup"], problems[0]["code"] if problems else None) == expected
    if case == "held":
        assert base["our_hold"] == "offsite:local" and base["userrefs"] == 1
    if case == "older_left":
        assert base["from"] == "h1" and problems[0]["severity"] == "info"
    if case == "gone":
        assert problems[0]["severity"] == "warning"
        assert problems[0]["message"].startswith("tank/ds@h2, the newest snapshot backed up to local, is gone")
        assert "the next backup to local will be FULL" in problems[0]["message"]


# -- prune -----------------------------------------------------------------------------------------------
def test_prune_that_removes_the_held_base_moves_the_hold_to_the_newest_base_left(tmp_path):
    zfs = ModelZfs([H1, H2, H3])
    holds.move_base(zfs, str(tmp_path), "host1", "local", H3, zfs.snapshots(DS))
    moved = holds.follow_prune(zfs, str(tmp_path), "host1", DS, "local", [str(0xA1), str(0xA2)], zfs.snapshots(DS))
    assert moved == {"released": "h3", "held": "h2"}
    assert zfs.held == {("offsite:local", "tank/ds@h2")}
    assert holds.follow_prune(zfs, str(tmp_path), "host1", DS, "local", [str(0xA2)], zfs.snapshots(DS)) is None
    gone = holds.follow_prune(zfs, str(tmp_path), "host1", DS, "local", [], zfs.snapshots(DS))
    assert gone == {"released": "h2", "held": None} and not zfs.held and not zfs.marks
    assert holds.load_record(str(tmp_path), "host1", DS, "local") is None
