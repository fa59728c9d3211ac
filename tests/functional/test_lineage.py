"""The rebuilt host, end to end on a real pool and a real rclone remote: the scheduled policy run
after a rebuild neither buries nor prunes the real data, and restore of the latest gets it back."""

from __future__ import annotations

import time
from pathlib import Path

import harness

from ansible_collections.offsite.zfs.plugins.module_utils.converge import converge
from ansible_collections.offsite.zfs.plugins.module_utils.prune import prune_dataset
from ansible_collections.offsite.zfs.plugins.module_utils.status import run_status


def destroy_when_idle(dataset: str, seconds: float = 60.0) -> None:
    """zfs-fuse answers "dataset is busy" for a while after heavy I/O: retry until a deadline."""
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

    status = run_status(lab.config, {"datasets": [ds]})
    rows = status["datasets"][ds]["providers"]["local"]["lineages"]
    assert [r["label"] for r in rows] == ["original", new_entry["lineage"]]

    latest = lab.restore(ds, target=lab.pool.name + "/newest")
    assert latest["lineage"] == new_entry["lineage"]
    assert "other lineages: original up to @%s" % first["datasets"][ds]["snapshot"] in latest["msg"]
    old = lab.restore(ds, snapshot=first["datasets"][ds]["snapshot"], target=lab.pool.name + "/old")
    assert old["lineage"] == "original"
    assert harness.tree_digest(lab.pool.mountpoint(lab.pool.name + "/old")) == real
