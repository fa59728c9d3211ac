"""Every format the old bash tool wrote (F1-F8, docs/legacy.md), made with its own commands, restored
byte-identical through ansible; damaged sets refused by the piece's name (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict

import harness
import old_tool
import pytest
import yaml

from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.keys import load_keys
from ansible_collections.offsite.zfs.plugins.module_utils.legacy_chain import list_layout
from ansible_collections.offsite.zfs.plugins.module_utils.ops.adopt import adopt_legacy
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.run import run_restore
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store

SNAP = "auto-20250718-154800"


def legacy_root(lab) -> Path:
    root = lab.tmp / "old-remote"
    root.mkdir(exist_ok=True)
    lab.config["providers"] = {"old": {"remote": str(root), "retry_delay": 0.05, "retries": 1}}
    return root


def fill(lab, dataset: str, seed: int, size: int = 96 << 10, name: str = "data.bin") -> Dict[str, str]:
    harness.write_data(lab.pool.mountpoint(dataset), seed, size, name)
    return harness.tree_digest(lab.pool.mountpoint(dataset))


def restore_playbook(lab, ansible, items, check: bool = False):
    playbook = lab.tmp / "restore.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False,
        "tasks": [{"name": "Restore the old tool's backup", "offsite.zfs.offsite_restore": {
            "dataset": "{{ item.dataset }}", "target": "{{ item.target }}", "config": str(lab.config_path),
            "identity_file": str(lab.key.path)}, "loop": items, "register": "restored"},
            {"name": "Show", "ansible.builtin.debug": {"var": "restored"}}]}]))
    proc = ansible.run_playbook(playbook, args=["--check"] if check else None)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return proc.stdout


def store_of(lab) -> Store:
    return Store(lab.settings("x/y").providers["old"])


def legacy_restore(lab, dataset: str, **kwargs) -> dict:
    keys = load_keys(None, str(lab.key.path), None)
    return run_restore(lab.settings(dataset, _single_provider=True), keys=keys, legacy=True, **kwargs)


def test_every_format_restores_byte_identical_through_ansible(lab, ansible):
    """One folder holding a backup of every format (as a user who ran several old versions has)."""
    root = legacy_root(lab)
    ds = lab.pool.name  # the pool's root file system: zfs-fuse is slow to create and mount datasets
    cases = {  # snapshot -> (script, piece size, extra env)
        "auto-20250716-110000": ("F1", 0, {}), "auto-20250716-110001": ("F1", 0, {"NO_MOVETO": "1"}),
        "auto-20250716-174600": ("F2", 1 << 20, {}), "auto-20250716-210800": ("F4", 16 << 10, {}),
        "auto-20250717-211300": ("F4-rcat", 16 << 10, {}), "auto-20250718-112800": ("F5", 16 << 10, {}),
        "auto-20250718-122600": ("F6", 16 << 10, {}), "auto-20250718-154800": ("F7", 16 << 10, {})}
    expected = {}
    for number, (snap, (script, size, env)) in enumerate(cases.items()):
        expected[snap] = fill(lab, ds, 40 + number, name="file%d.bin" % number)
        lab.pool.snapshot(ds, snap)
        old_tool.write(lab, script, str(root), ds, snap, size=size, env=env)
    layout = list_layout(store_of(lab), ds)
    assert not layout.unparsed, layout.unparsed
    found = {b.snapshot: (b.format, len(b.pieces), b.pieces[0].number, b.staging) for b in layout.sets}
    assert {snap: f[0] for snap, f in found.items()} == {snap: c[0][:2] for snap, c in cases.items()}, found
    assert found["auto-20250716-110001"][3] is True, "the staging key of a failed moveto"
    assert all(f[2] == 1 for f in found.values()), "the old tool numbers from 1"
    assert all(f[1] > 3 for snap, f in found.items() if cases[snap][0] not in ("F1", "F2")), found

    items = [{"dataset": "%s@%s" % (ds, snap), "target": "%s/r%d" % (ds, n)} for n, snap in enumerate(cases)]
    plan = restore_playbook(lab, ansible, items[3:4], check=True)
    assert "would restore the legacy backup" in plan and "x001.zfs.gz.age" in plan, "check mode names pieces"
    assert not lab.pool.exists(items[3]["target"])
    restore_playbook(lab, ansible, items)
    for item, snap in zip(items, cases):
        assert harness.tree_digest(lab.pool.mountpoint(item["target"])) == expected[snap], cases[snap]


def test_f3_and_f4_incremental_chains_linked_by_guid_restore_through_ansible(lab, ansible):
    root = legacy_root(lab)
    ds = lab.pool.name
    items, expected, seed = [], {}, 60
    for fmt, letter in (("F3", "a"), ("F4-rcat", "b")):
        snaps = ["%s-20250716-18000%d" % (letter, n) for n in (1, 2, 3)]
        for number, snap in enumerate(snaps):
            seed += 1
            expected[snap] = fill(lab, ds, seed, size=48 << 10, name="file%d.bin" % seed)
            lab.pool.snapshot(ds, snap)
            old_tool.write(lab, fmt, str(root), ds, snap, prev=snaps[number - 1] if number else None,
                           size=(2 if fmt == "F3" else 8) << 10)
        listed = [(b.format if len(b.pieces) > 1 else fmt[:2], b.kind)  # one piece: "F3/F4", the same in both
                  for b in list_layout(store_of(lab), ds).sets if b.snapshot in snaps]
        assert listed == [(fmt[:2], "full"), (fmt[:2], "incremental"), (fmt[:2], "incremental")], listed
        items.append({"dataset": "%s@%s" % (ds, snaps[2]), "target": "%s/r-%s" % (ds, fmt[:2].lower()),
                      "snapshot": snaps[2], "middle": snaps[1], "first": snaps[0]})
    for item in items:  # restores come after every digest: the targets mount inside the pool's root
        # A middle snapshot, linked by the guids inside the -I streams; then forward to the newest.
        middle = legacy_restore(lab, ds, snapshot=item["middle"], target=item["target"])
        assert [r["snapshot"] for r in middle["received"]] == [item["first"], item["middle"]]
        assert harness.tree_digest(lab.pool.mountpoint(item["target"])) == expected[item["middle"]]
    restore_playbook(lab, ansible, [{"dataset": i["dataset"], "target": i["target"]} for i in items])  # forward
    for item in items:
        assert harness.tree_digest(lab.pool.mountpoint(item["target"])) == expected[item["snapshot"]]
        assert len(lab.pool.snapshots(item["target"])) == 3
    latest = legacy_restore(lab, ds, target=ds + "/latest")
    assert latest["chain"] == ["full-b-20250716-180001-x001", "incr-b-20250716-180002-x001",
                               "incr-b-20250716-180003-x001"], latest["chain"]


def test_f8_stream_of_more_than_999_shards_restores_through_ansible(lab, ansible):
    root = legacy_root(lab)
    ds = lab.pool.name
    expected = fill(lab, ds, 80, size=48 << 10)  # a stream of about 58 KB: some 1200 shards of 48 bytes
    lab.pool.snapshot(ds, SNAP)
    old_tool.write(lab, "F8", str(root), ds, SNAP, size=48, env={"STAGE_ONLY": "1"})
    backup = list_layout(store_of(lab), ds).sets[0]
    assert backup.format == "F8" and backup.complete and len(backup.pieces) > 999
    assert backup.pieces[999].name == "%s:%s-s1000-b%020d.zfs.gz.age" % (ds.replace("/", "_"), SNAP, 999 * 48)
    target = lab.pool.name + "/many-restored"
    result = ansible.module("offsite_restore", {"dataset": ds, "target": target, "config": str(lab.config_path),
                                                "identity_file": str(lab.key.path)})
    assert result["_rc"] == 0 and result["legacy"] is True, result.get("msg")
    assert result["received"][0]["pieces"] == len(backup.pieces)
    assert harness.tree_digest(lab.pool.mountpoint(target)) == expected


def _refused(lab, ds, target, code=None, snapshot=None):
    with pytest.raises(OffsiteError) as caught:
        legacy_restore(lab, ds, target=target, snapshot=snapshot)
    assert not lab.pool.exists(target) and not lab.pool.exists(target + ".offsite-partial")
    if code:
        assert caught.value.code == code, caught.value.message
    return caught.value.message


def test_damaged_sets_are_refused_naming_the_piece(lab):
    root = legacy_root(lab)
    ds = lab.pool.name
    folder = root / ds
    for fmt, snaps in (("F3", ("f3-1", "f3-2")), ("F4", ("auto-1", "auto-2")), ("F7", ("f7-1", "f7-2"))):
        for number, snap in enumerate(snaps):
            # F3: slices larger than one 64 KiB age chunk, so that age's failure falls in one or two slices.
            fill(lab, ds, 90 + number, size=(320 if fmt == "F3" else 64) << 10, name="f%d.bin" % number)
            lab.pool.snapshot(ds, snap)
            old_tool.write(lab, fmt, str(root), ds, snap, size=(96 if fmt == "F3" else 8) << 10)  # all full
    target = lab.pool.name + "/damaged"
    # F4: a missing middle piece is seen in the names.
    (folder / "full-auto-2-x003.zfs.gz.age").rename(lab.tmp / "x003")
    message = _refused(lab, ds, target, "no_backup", "auto-2")
    assert "piece x003 of full-auto-2 is missing" in message
    # F4: a truncated middle piece fails its age authentication.
    (lab.tmp / "x003").rename(folder / "full-auto-2-x003.zfs.gz.age")
    victim = folder / "full-auto-2-x002.zfs.gz.age"
    good = victim.read_bytes()
    victim.write_bytes(good[:-100])
    message = _refused(lab, ds, target, "chunk_corrupt", "auto-2")
    assert "full-auto-2-x002.zfs.gz.age" in message
    # F4: a piece from another backup (the first piece of auto-1) in the middle of auto-2.
    victim.write_bytes((folder / "full-auto-1-x001.zfs.gz.age").read_bytes())
    message = _refused(lab, ds, target, "chunk_mismatch", "auto-2")
    assert "full-auto-2-x002.zfs.gz.age" in message and "another backup" in message
    victim.write_bytes(good)
    assert legacy_restore(lab, ds, snapshot="auto-2", target=target)["plan"][0]["format"] == "F4"
    # F3: a truncated middle slice is seen in the listing sizes; a slice of another stream fails age.
    victim = folder / "full-f3-2-x002.zfs.gz.age"
    good = victim.read_bytes()
    victim.write_bytes(good[:-10])
    assert "x002" in _refused(lab, ds, target + "3", "no_backup", "f3-2")
    victim.write_bytes((folder / "full-f3-1-x002.zfs.gz.age").read_bytes())
    message = _refused(lab, ds, target + "3", "chunk_corrupt", "f3-2")
    assert "full-f3-2-x002.zfs.gz.age" in message and "x004" not in message, message
    # F7: a shard from another backup breaks the offsets; a missing last shard fails at the END record.
    shards = sorted(folder.glob("*:f7-2-s*"))
    other = sorted(folder.glob("*:f7-1-s*"))
    saved = shards[1].read_bytes()
    shards[1].write_bytes(other[-1].read_bytes())
    message = _refused(lab, ds, target + "7", "chunk_mismatch", "f7-2")
    assert shards[2].name in message or shards[1].name in message, message
    shards[1].write_bytes(saved)
    shards[-1].unlink()
    message = _refused(lab, ds, target + "7", "chunk_corrupt", "f7-2")
    assert "incomplete" in message and shards[-2].name in message


def test_f2_is_unrecoverable_unless_the_stream_fit_in_one_chunk(lab):
    root = legacy_root(lab)
    ds = lab.pool.name
    expected = fill(lab, ds, 95)
    lab.pool.snapshot(ds, "auto-1")
    old_tool.write(lab, "F2", str(root), ds, "auto-1", size=16 << 10)  # several chunks: only the last survives
    folder = root / ds.replace("/", "_")
    assert [p.name for p in folder.iterdir()] == ["full-auto-1-$FILE.zfs.gz.age"]
    message = _refused(lab, ds, lab.pool.name + "/f2-tail", "no_backup")
    assert "holds only the last 1 GiB chunk" in message
    (folder / "full-auto-1-$FILE.zfs.gz.age").unlink()
    old_tool.write(lab, "F2", str(root), ds, "auto-1", size=1 << 20)
    assert legacy_restore(lab, ds, target=lab.pool.name + "/f2-whole")["changed"] is True
    assert harness.tree_digest(lab.pool.mountpoint(lab.pool.name + "/f2-whole")) == expected


def test_status_lists_every_format_and_reports_lookalikes_then_adopt_puts_them_in_the_report(lab, ansible):
    root = legacy_root(lab)
    ds = lab.pool.name
    snaps = {}
    for number, fmt in enumerate(("F1", "F3", "F4", "F5", "F6", "F7", "F8")):
        snap = "%s-20250719-11300%d" % (fmt.lower(), number)
        snaps[fmt] = (snap, fill(lab, ds, 100 + number, size=32 << 10, name="s%d.bin" % number))
        lab.pool.snapshot(ds, snap)
        old_tool.write(lab, fmt, str(root), ds, snap, size=8 << 10, env={"STAGE_ONLY": "1"})
    folder = root / ds
    (folder / "full-auto-9-s000.zfs.gz.age").write_bytes(b"x")  # numbered from 0: not the old tool's
    (folder / "tank:auto-9-s001-b0.zfs.gz.age").write_bytes(b"x")
    (folder / ("[INFO] Creating snapshot\nfull-auto-9-x001.zfs.gz.age")).write_bytes(b"x")  # the junk object
    lab.config["datasets"] = {ds: {}}
    result = ansible.module("offsite_status", {"config": str(lab.config_path), "legacy": True,
                                               "identity_file": str(lab.key.path)})
    assert result["_rc"] == 0, result.get("msg")
    legacy = result["legacy"]
    assert legacy["backups_by_format"] == {"F1": 1, "F3": 1, "F4": 1, "F5": 2, "F6": 1, "F7": 1, "F8": 1}, legacy
    entries = {e["snapshot"]: e for f in legacy["providers"]["old"]["folders"] for e in f["backups"]}
    assert all(entries[snap]["kind"] == "full" and entries[snap]["guid"] for snap, _kind in snaps.values())
    assert "numbered 0" in entries["auto-9"]["problems"][0]
    unparsed = {p["key"].rsplit("/", 1)[-1]: p for p in legacy["problems"] if p["code"] == "legacy_unparsed"}
    assert "fewer than 10 digits" in unparsed["tank:auto-9-s001-b0.zfs.gz.age"]["message"]
    assert any("junk object" in p["message"] for p in unparsed.values()), unparsed
    assert all(e["checked"] and e["not_checked"] for e in entries.values())

    keys = load_keys(None, str(lab.key.path), None)
    adopted = adopt_legacy(lab.settings(ds), keys)
    statuses = {e["snapshot"]: e["status"] for e in adopted["providers"]["old"]["backups"]}
    assert statuses == dict({snap: "adopted" for snap, _kind in snaps.values()}, **{"auto-9": "skipped"}), adopted
    own_id = (Path(lab.config["state_dir"]) / "host-id").read_text().strip()
    manifests = [json.loads(p.read_text()) for p in root.glob("testhost/**/manifest.json")]
    assert len(manifests) == 7 and {m["host_id"] for m in manifests} == {own_id}, "adopted backups carry the host id"
    for fmt in ("F3", "F8"):
        snap, digest = snaps[fmt]
        target = "%s/ad-%s" % (ds, fmt.lower())
        restored = lab.restore(ds, snap, target=target, provider="old")
        assert "legacy" not in restored and harness.tree_digest(lab.pool.mountpoint(target)) == digest
    report = ansible.module("offsite_status", {"config": str(lab.config_path)})
    assert report["datasets"][ds]["backup_count"] == 7, report["datasets"][ds]

    # docs/cutover.md: the first native backup after adopt is an incremental from the newest adopted snapshot
    fill(lab, ds, 200, size=32 << 10, name="native.bin")
    first = lab.backup(ds, "native-1", create=True)["providers"]["old"]
    assert first["kind"] == "incremental" and first["base"] == snaps["F8"][0], first
    lab.restore(ds, "native-1", target="%s/native" % ds, provider="old")
    for name in ("native.bin", "s6.bin", "s0.bin"):  # the new file, and files of the adopted chain's base
        wrote = (lab.pool.mountpoint(ds) / name).read_bytes()
        assert (lab.pool.mountpoint("%s/native" % ds) / name).read_bytes() == wrote, name


def test_f7_on_s3_wrong_key_and_flipped_byte_are_refused_then_restores_with_a_mountpoint(lab, s3, ansible, tmp_path):
    lab.config["providers"] = {}
    lab.add_s3(s3, "old")
    lab.config["providers"]["old"]["retries"] = 1
    remote = lab.config["providers"]["old"]["remote"]
    ds = lab.pool.name
    expected = fill(lab, ds, 7, size=64 << 10)
    lab.pool.snapshot(ds, SNAP)
    old_tool.write(lab, "F7", remote, ds, SNAP, size=16 << 10, env=s3.env("S3TOLD"))
    listed = list_layout(Store(lab.settings(ds).providers["old"]), ds).sets
    assert [(b.format, b.pieces[1].offset) for b in listed] == [("F7", 16 << 10)]

    other = harness.AgeKey(tmp_path, "other")
    with pytest.raises(OffsiteError) as caught:
        run_restore(lab.settings(ds, _single_provider=True), keys=load_keys(None, str(other.path), None), legacy=True,
                    target=lab.pool.name + "/wrong")
    assert caught.value.code == "wrong_key" and not lab.pool.exists(lab.pool.name + "/wrong")

    bucket = s3.root / "bucket" / lab.pool.name / ds
    victim = sorted(bucket.iterdir())[2]
    good = victim.read_bytes()
    data = bytearray(good)
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    message = _refused(lab, ds, lab.pool.name + "/flipped", "chunk_corrupt")
    assert victim.name in message
    victim.write_bytes(good)

    target = ds + "/s3-restored"
    mountpoint = tmp_path / "restored-here"
    result = ansible.module("offsite_restore", {
        "dataset": ds, "target": target, "config": str(lab.config_path), "identity_file": str(lab.key.path),
        "mountpoint": str(mountpoint)})
    assert result["_rc"] == 0 and result["legacy"] is True and "mount_error" not in result, result.get("msg")
    assert lab.pool.mountpoint(target) == mountpoint and harness.tree_digest(mountpoint) == expected
