"""The rebuilt host, end to end on a real pool and a real rclone remote: the scheduled policy run
after a rebuild neither buries nor prunes the real data, and restore of the latest gets it back."""

from __future__ import annotations

import time
from pathlib import Path

import harness

from ansible_collections.offsite.zfs.plugins.module_utils._wiring import status_report
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.converge import converge
from ansible_collections.offsite.zfs.plugins.module_utils.ops.prune.run import prune_dataset


def destroy_when_idle(dataset: str, seconds: float = 60.0) -> None:
    """The host dies with its pool: our holds (holds.py) go with it, so release them first. zfs-fuse answers
    "dataset is busy" for a while after heavy I/O: retry until a deadline."""
    names = harness.run(["zfs", "list", "-H", "-o", "name", "-t", "snapshot", "-r", dataset], check=False).stdout
    for name in names.split():
        harness.run(["zfs", "release", "offsite:local", name], check=False)
    deadline = time.time() + seconds
    while True:
        proc = harness.run(["zfs", "destroy", "-r", dataset], check=False)
        if proc.returncode == 0:
            return
        assert "busy" in proc.stderr and time.time() < deadline, proc.stderr
        time.sleep(0.2)


def backup_dirs(remote: Path, dataset: str) -> list:
    base = remote / "testhost" / dataset
    return sorted(p.name for p in base.iterdir() if p.name.startswith("@")) if base.exists() else []


def test_a_rebuilt_host_keeps_its_history_and_restores_the_real_data(lab):
    ds = lab.pool.create("data")
    harness.write_data(lab.pool.mountpoint(ds), 1, 256 << 10)
    real = harness.tree_digest(lab.pool.mountpoint(ds))
    lab.config["datasets"] = {ds: {"every": "1d", "keep": {"last": 1}}}
    start = time.time()
    first = converge(lab.settings, [ds], now=start)
    assert first["failed_datasets"] == [], first["msg"]
    assert len(backup_dirs(lab.remotes["local"], ds)) == 1

    # The host dies and is rebuilt: the dataset is created again, empty. The scheduled run comes first.
    destroy_when_idle(ds)
    lab.pool.create("data")
    scheduled = converge(lab.settings, [ds], now=start + 86400 + 600)
    assert scheduled["failed_datasets"] == [ds]
    entry = scheduled["datasets"][ds]["providers"]["local"]
    assert entry["error_code"] == "new_lineage", entry
    assert "share none with its 1 backup on local in namespace testhost" in entry["message"]
    assert len(backup_dirs(lab.remotes["local"], ds)) == 1, "nothing was uploaded"

    restored = lab.restore(ds, target=lab.pool.name + "/restored")
    assert restored["lineage"] == "original" and restored["changed"] is True
    assert harness.tree_digest(lab.pool.mountpoint(lab.pool.name + "/restored")) == real

    # The operator decides the new dataset replaces the old one: a separate lineage, which keep never
    # lets prune the old one's backups.
    lab.config["datasets"][ds]["new_lineage"] = True
    renewed = converge(lab.settings, [ds], now=start + 2 * 86400 + 600)
    assert renewed["failed_datasets"] == [], renewed["msg"]
    new_entry = renewed["datasets"][ds]["providers"]["local"]
    assert new_entry["status"] == "uploaded" and new_entry["kind"] == "full"
    assert new_entry["lineage"] != "original"
    pruned = prune_dataset(lab.settings(ds), check_mode=False)
    assert pruned["providers"]["local"]["deleted"] == [], pruned
    assert len(backup_dirs(lab.remotes["local"], ds)) == 2

    status = status_report(lab.config, {"datasets": [ds]})
    rows = status["datasets"][ds]["providers"]["local"]["lineages"]
    assert [r["label"] for r in rows] == ["original", new_entry["lineage"]]

    latest = lab.restore(ds, target=lab.pool.name + "/newest")
    assert latest["lineage"] == new_entry["lineage"]
    assert "other lineages: original up to @%s" % first["datasets"][ds]["snapshot"] in latest["msg"]
    old = lab.restore(ds, snapshot=first["datasets"][ds]["snapshot"], target=lab.pool.name + "/old")
    assert old["lineage"] == "original"
    assert harness.tree_digest(lab.pool.mountpoint(lab.pool.name + "/old")) == real


def test_two_hosts_in_one_namespace_never_touch_each_others_backups(lab):
    # Two hosts = two state dirs (two host ids) with the same namespace on one remote.
    ds = lab.pool.create("data")
    harness.write_data(lab.pool.mountpoint(ds), 2, 128 << 10)
    first = lab.backup(ds, snapshot="a1", create=True)
    assert first["failed_providers"] == [], first["msg"]
    assert lab.backup(ds, snapshot="a2", create=True, full=True)["failed_providers"] == []
    host_a = (Path(lab.config["state_dir"]) / "host-id").read_text().strip()
    config_a = dict(lab.config)
    lab.config = dict(lab.config, state_dir=str(lab.tmp / "state-b"))
    refused = lab.backup(ds, snapshot="b1", create=True)
    entry = refused["providers"]["local"]
    assert entry["error_code"] == "foreign_host", entry
    host_b = (lab.tmp / "state-b" / "host-id").read_text().strip()
    assert host_a != host_b and host_a in entry["message"] and host_b in entry["message"]
    assert "namespace testhost holds 2 backups of it written by another host" in entry["message"]
    pruned = prune_dataset(lab.settings(ds), check_mode=False, keep={"last": 1})
    assert pruned["failed_providers"] == ["local"] and pruned["providers"]["local"]["error_code"] == "foreign_host"
    assert len(backup_dirs(lab.remotes["local"], ds)) == 2, "host b deleted nothing of host a's"
    status = status_report(lab.config, {"datasets": [ds]})
    flagged = [p for p in status["datasets"][ds]["problems"] if p["code"] == "foreign_host"]
    assert flagged and flagged[0]["severity"] == "critical" and host_a in flagged[0]["message"]
    lab.config = config_a
    assert lab.backup(ds, snapshot="b1")["failed_providers"] == [], "host a goes on as before"
    status_a = status_report(lab.config, {"datasets": [ds]})
    assert not [p for p in status_a["datasets"][ds]["problems"] if p["code"] == "foreign_host"]
    own_prune = prune_dataset(lab.settings(ds), check_mode=False, keep={"last": 1})
    assert len(own_prune["providers"]["local"]["deleted"]) == 1, "host a prunes its own backups"


def test_a_provider_on_an_unmounted_disk_fails_clearly_and_writes_nothing(lab):
    ds = lab.pool.create("data")
    harness.write_data(lab.pool.mountpoint(ds), 5, 64 << 10)
    disk = lab.tmp / "usb"
    disk.mkdir()
    lab.add_local("usb", require_mount=str(disk))
    lab.config["providers"]["usb"]["remote"] = str(disk / "offsite")
    result = lab.backup(ds, snapshot="s1", create=True)
    assert result["failed_providers"] == ["usb"]
    assert result["providers"]["usb"]["error_code"] == "not_mounted"
    assert "requires %s to be mounted" % disk in result["providers"]["usb"]["message"]
    assert result["providers"]["local"]["status"] == "uploaded", "the other provider is not held up"
    assert list(disk.iterdir()) == [], "nothing was written below the mount point"


def test_a_host_with_nothing_offsite_is_never_ok(lab):
    ds = lab.pool.create("data")
    lab.pool.snapshot(ds, "local-only")
    lab.config["datasets"] = {}
    status = status_report(lab.config, {})
    assert status["health"] == "critical"
    assert [p["code"] for p in status["host_problems"]] == ["nothing_offsite"]
    assert "No provider holds any backup of this host (namespace testhost)" in status["host_problems"][0]["message"]
    lab.backup(ds, snapshot="local-only")
    assert "nothing_offsite" not in [p["code"] for p in status_report(lab.config, {})["host_problems"]]
