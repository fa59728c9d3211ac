"""Every format the old bash tool wrote (F1-F8, docs/legacy.md), made with its own commands, restored
byte-identical through ansible; damaged sets refused by the piece's name (issue 14)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import harness
import old_tool
import pytest
import yaml

from ansible_collections.offsite.zfs.plugins.module_utils.common import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.legacy import adopt_legacy, list_layout, run_legacy_restore
from ansible_collections.offsite.zfs.plugins.module_utils.restore import load_keys
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
    return run_legacy_restore(lab.settings(dataset, _single_provider=True), keys=keys, **kwargs)


def test_every_format_restores_byte_identical_through_ansible(lab, ansible):
    root = legacy_root(lab)
    cases = {  # format -> (script, piece size, extra env)
        "F1": ("F1", 0, {}), "F1-staging": ("F1", 0, {"NO_MOVETO": "1"}), "F2": ("F2", 1 << 20, {}),
        "F4": ("F4", 16 << 10, {}), "F4-rcat": ("F4-rcat", 16 << 10, {}), "F5": ("F5", 16 << 10, {}),
        "F6": ("F6", 16 << 10, {}), "F7": ("F7", 16 << 10, {})}
    expected = {}
    items = []
    for number, (case, (script, size, env)) in enumerate(cases.items()):
        ds = lab.pool.create("src/" + case.lower())
        expected[case] = fill(lab, ds, 40 + number)
        lab.pool.snapshot(ds, SNAP)
        old_tool.write(lab, script, str(root), ds, SNAP, size=size, env=env)
        items.append({"dataset": ds, "target": "%s/r-%s" % (lab.pool.name, case.lower())})
    formats = {}
    for item, case in zip(items, cases):
        layout = list_layout(store_of(lab), item["dataset"])
        assert len(layout.sets) == 1 and not layout.unparsed, (case, layout)
        formats[case] = (layout.sets[0].format, len(layout.sets[0].pieces), layout.sets[0].pieces[0].number)
    assert {case: f[0] for case, f in formats.items()} == {
        "F1": "F1", "F1-staging": "F1", "F2": "F2", "F4": "F4", "F4-rcat": "F4", "F5": "F5", "F6": "F6", "F7": "F7"}
    assert all(f[2] == 1 for f in formats.values()), "the old tool numbers from 1"
    assert all(f[1] > 3 for case, f in formats.items() if case not in ("F1", "F1-staging", "F2")), formats

    plan = restore_playbook(lab, ansible, items[3:4], check=True)
    assert "would restore the legacy backup" in plan and "x001.zfs.gz.age" in plan, "check mode names pieces"
    assert not lab.pool.exists(items[3]["target"])
    restore_playbook(lab, ansible, items)
    for item, case in zip(items, cases):
        assert harness.tree_digest(lab.pool.mountpoint(item["target"])) == expected[case], case


def test_f3_and_f4_incremental_chains_linked_by_guid_restore_through_ansible(lab, ansible):
    root = legacy_root(lab)
    items, expected = [], {}
    for fmt in ("F3", "F4-rcat"):
        ds = lab.pool.create("chain-" + fmt.lower().replace("-", ""))
        snaps = ["auto-20250716-18000%d" % n for n in (1, 2, 3)]
        for number, snap in enumerate(snaps):
            digest = fill(lab, ds, 60 + number, size=48 << 10, name="file%d.bin" % number)
            lab.pool.snapshot(ds, snap)
            old_tool.write(lab, fmt, str(root), ds, snap, prev=snaps[number - 1] if number else None, size=8 << 10)
            expected[(ds, snap)] = digest
        layout = list_layout(store_of(lab), ds)
        assert [(b.format, b.kind) for b in layout.sets] == [
            (fmt[:2], "full"), (fmt[:2], "incremental"), (fmt[:2], "incremental")], layout.sets
        items.append({"dataset": ds, "target": "%s/r-%s" % (lab.pool.name, ds.rsplit("/", 1)[1])})
        # A middle snapshot, linked by the guids inside the -I streams, then forward to the newest.
        middle = legacy_restore(lab, ds, snapshot=snaps[1], target=items[-1]["target"])
        assert [r["snapshot"] for r in middle["received"]] == snaps[:2]
        assert harness.tree_digest(lab.pool.mountpoint(items[-1]["target"])) == expected[(ds, snaps[1])]
    restore_playbook(lab, ansible, items)  # the latest, forward from what the targets hold
    for item in items:
        assert harness.tree_digest(lab.pool.mountpoint(item["target"])) == expected[
            (item["dataset"], "auto-20250716-180003")]
        assert len(lab.pool.snapshots(item["target"])) == 3


def test_f8_stream_of_more_than_999_shards_restores_through_ansible(lab, ansible):
    root = legacy_root(lab)
    ds = lab.pool.create("many")
    expected = fill(lab, ds, 80, size=24 << 10)
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


def _refused(lab, ds, target, code=None):
    with pytest.raises(OffsiteError) as caught:
        legacy_restore(lab, ds, target=target)
    assert not lab.pool.exists(target) and not lab.pool.exists(target + ".offsite-partial")
    if code:
        assert caught.value.code == code, caught.value.message
    return caught.value.message


def test_damaged_sets_are_refused_naming_the_piece(lab):
    root = legacy_root(lab)
    made = {}
    for fmt in ("F3", "F4", "F7"):
        ds = lab.pool.create("bad-" + fmt.lower())
        for number, snap in enumerate(("auto-1", "auto-2")):
            # F3: slices larger than one 64 KiB age chunk, so that age's failure falls in one or two slices.
            fill(lab, ds, 90 + number, size=(320 if fmt == "F3" else 64) << 10, name="f%d.bin" % number)
            lab.pool.snapshot(ds, snap)
            old_tool.write(lab, fmt, str(root), ds, snap, size=(96 if fmt == "F3" else 8) << 10)  # two fulls
        made[fmt] = (ds, root / ds.replace("/", "_"))
    target = lab.pool.name + "/damaged"
    # F4: a missing middle piece is seen in the names.
    ds, folder = made["F4"]
    (folder / "full-auto-2-x003.zfs.gz.age").rename(lab.tmp / "x003")
    message = _refused(lab, ds, target, "no_backup")
    assert "piece x003 of full-auto-2 is missing" in message
    # F4: a truncated middle piece fails its age authentication.
    (lab.tmp / "x003").rename(folder / "full-auto-2-x003.zfs.gz.age")
    victim = folder / "full-auto-2-x002.zfs.gz.age"
    good = victim.read_bytes()
    victim.write_bytes(good[:-100])
    message = _refused(lab, ds, target, "chunk_corrupt")
    assert "full-auto-2-x002.zfs.gz.age" in message
    # F4: a piece from another backup (the first piece of auto-1) in the middle of auto-2.
    victim.write_bytes((folder / "full-auto-1-x001.zfs.gz.age").read_bytes())
    message = _refused(lab, ds, target, "chunk_mismatch")
    assert "full-auto-2-x002.zfs.gz.age" in message and "another backup" in message
    victim.write_bytes(good)
    assert legacy_restore(lab, ds, snapshot="auto-2", target=target)["changed"] is True
    # F3: a truncated middle slice is seen in the listing sizes; a slice of another stream fails age.
    ds, folder = made["F3"]
    victim = folder / "full-auto-2-x002.zfs.gz.age"
    good = victim.read_bytes()
    victim.write_bytes(good[:-10])
    assert "x002" in _refused(lab, ds, target + "3", "no_backup")
    victim.write_bytes((folder / "full-auto-1-x002.zfs.gz.age").read_bytes())
    message = _refused(lab, ds, target + "3", "chunk_corrupt")
    assert "full-auto-2-x002.zfs.gz.age" in message and "x004" not in message, message
    # F7: a shard from another backup breaks the offsets; a missing last shard fails at the END record.
    ds, folder = made["F7"]
    shards = sorted(folder.glob("*auto-2-s*"))
    other = sorted(folder.glob("*auto-1-s*"))
    saved = shards[1].read_bytes()
    shards[1].write_bytes(other[-1].read_bytes())
    message = _refused(lab, ds, target + "7", "chunk_mismatch")
    assert shards[2].name in message or shards[1].name in message, message
    shards[1].write_bytes(saved)
    shards[-1].unlink()
    message = _refused(lab, ds, target + "7", "chunk_corrupt")
    assert "incomplete" in message and shards[-2].name in message


def test_f2_is_unrecoverable_unless_the_stream_fit_in_one_chunk(lab):
    root = legacy_root(lab)
    ds = lab.pool.create("f2")
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
    datasets = {}
    for number, fmt in enumerate(("F1", "F3", "F4", "F5", "F6", "F7", "F8")):
        ds = lab.pool.create("st-" + fmt.lower())
        datasets[fmt] = (ds, fill(lab, ds, 100 + number, size=32 << 10))
        lab.pool.snapshot(ds, SNAP)
        old_tool.write(lab, fmt, str(root), ds, SNAP, size=8 << 10, env={"STAGE_ONLY": "1"})
    folder = root / datasets["F5"][0].replace("/", "_")
    (folder / "full-auto-9-s000.zfs.gz.age").write_bytes(b"x")  # numbered from 0: not the old tool's
    (folder / "tank:auto-9-s001-b0.zfs.gz.age").write_bytes(b"x")
    (folder / ("[INFO] Creating snapshot\nfull-auto-9-x001.zfs.gz.age")).write_bytes(b"x")  # the junk object
    lab.config["datasets"] = {ds: {} for ds, _ in datasets.values()}
    result = ansible.module("offsite_status", {"config": str(lab.config_path), "legacy": True,
                                               "identity_file": str(lab.key.path)})
    assert result["_rc"] == 0, result.get("msg")
    legacy = result["legacy"]
    assert legacy["backups_by_format"] == {"F1": 1, "F3": 1, "F4": 1, "F5": 2, "F6": 1, "F7": 1, "F8": 1}, legacy
    entries = {e["format"] + ":" + e["snapshot"]: e for f in legacy["providers"]["old"]["folders"]
               for e in f["backups"]}
    assert all(e["kind"] == "full" and e["guid"] for k, e in entries.items() if k.endswith(SNAP))
    assert "numbered 0" in entries["F5:auto-9"]["problems"][0]
    unparsed = {p["key"].rsplit("/", 1)[-1]: p for p in legacy["problems"] if p["code"] == "legacy_unparsed"}
    assert "fewer than 10 digits" in unparsed["tank:auto-9-s001-b0.zfs.gz.age"]["message"]
    assert any("junk object" in p["message"] for p in unparsed.values())
    assert all(e["checked"] and e["not_checked"] for e in entries.values())

    keys = load_keys(None, str(lab.key.path), None)
    for fmt in ("F1", "F3", "F8"):
        ds, digest = datasets[fmt]
        adopted = adopt_legacy(lab.settings(ds), keys)
        assert [e["status"] for e in adopted["providers"]["old"]["backups"]] == ["adopted"], adopted
        restored = lab.restore(ds, SNAP, target="%s/ad-%s" % (lab.pool.name, fmt.lower()), provider="old")
        assert "legacy" not in restored
        assert harness.tree_digest(lab.pool.mountpoint("%s/ad-%s" % (lab.pool.name, fmt.lower()))) == digest
    report = ansible.module("offsite_status", {"config": str(lab.config_path)})
    assert report["datasets"][datasets["F8"][0]]["backup_count"] == 1, report["datasets"][datasets["F8"][0]]


def test_f7_on_s3_wrong_key_and_flipped_byte_are_refused_then_restores_with_a_mountpoint(lab, s3, ansible, tmp_path):
    lab.config["providers"] = {}
    lab.add_s3(s3, "old")
    lab.config["providers"]["old"]["retries"] = 1
    remote = lab.config["providers"]["old"]["remote"]
    ds = lab.pool.create("s3")
    expected = fill(lab, ds, 7, size=64 << 10)
    lab.pool.snapshot(ds, SNAP)
    old_tool.write(lab, "F7", remote, ds, SNAP, size=16 << 10, env=s3.env("S3TOLD"))
    listed = list_layout(Store(lab.settings(ds).providers["old"]), ds).sets
    assert [(b.format, b.pieces[1].offset) for b in listed] == [("F7", 16 << 10)]

    other = harness.AgeKey(tmp_path, "other")
    with pytest.raises(OffsiteError) as caught:
        run_legacy_restore(lab.settings(ds, _single_provider=True), keys=load_keys(None, str(other.path), None),
                           target=lab.pool.name + "/wrong")
    assert caught.value.code == "wrong_key" and not lab.pool.exists(lab.pool.name + "/wrong")

    bucket = s3.root / "bucket" / lab.pool.name / ds.replace("/", "_")
    victim = sorted(bucket.iterdir())[2]
    good = victim.read_bytes()
    data = bytearray(good)
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    message = _refused(lab, ds, lab.pool.name + "/flipped", "chunk_corrupt")
    assert victim.name in message
    victim.write_bytes(good)

    target = lab.pool.name + "/s3-restored"
    mountpoint = tmp_path / "restored-here"
    result = ansible.module("offsite_restore", {
        "dataset": ds, "target": target, "config": str(lab.config_path), "identity_file": str(lab.key.path),
        "mountpoint": str(mountpoint)})
    assert result["_rc"] == 0 and result["legacy"] is True and "mount_error" not in result, result.get("msg")
    assert lab.pool.mountpoint(target) == mountpoint and harness.tree_digest(mountpoint) == expected
