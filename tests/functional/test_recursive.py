"""Whole pools and dataset trees (issue 8): one recursive snapshot, one chain per child, tree restores."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path
from typing import Dict

import harness
import pytest

from ansible_collections.offsite.zfs.plugins.module_utils.keys import load_keys
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.tree import run_tree_backup
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.tree import run_tree_restore
from ansible_collections.offsite.zfs.plugins.module_utils.selection import is_excluded
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import Zfs


def own_digest(directory: Path) -> Dict[str, str]:
    """Relative path -> SHA-256 of the files of one file system (nested mounts are other datasets)."""
    result = {}
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if not os.path.ismount(os.path.join(root, d))]
        for name in files:
            path = Path(root) / name
            if path.is_file() and not path.is_symlink():
                result[str(path.relative_to(directory))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return result


def prop(name: str, key: str) -> str:
    return harness.run(["zfs", "get", "-H", "-o", "value", key, name]).stdout.strip()


def prop_source(name: str, key: str) -> str:
    return harness.run(["zfs", "get", "-H", "-o", "source", key, name]).stdout.strip()


def fill(lab, dataset: str, seed: int, name: str = "data.bin", size: int = 96 << 10) -> None:
    harness.write_data(lab.pool.mountpoint(dataset), seed, size, name)


def make_tree(lab) -> Dict[str, str]:
    """pool/{home/{alice, bob/projects}, cache}: four levels below the pool, the pool root included."""
    pool = lab.pool.name
    names = {"root": pool}
    for key, rel in (("home", "home"), ("alice", "home/alice"), ("bob", "home/bob"),
                     ("projects", "home/bob/projects"), ("cache", "cache")):
        names[key] = lab.pool.create(rel)
    harness.run(["zfs", "set", "com.example:owner=alice", names["alice"]])
    for seed, key in enumerate(("root", "home", "alice", "bob", "projects", "cache")):
        fill(lab, names[key], 100 + seed)
    return names


def settings_for(lab):
    return lab.settings


def keys(lab):
    return load_keys(None, str(lab.key.path), None)


def digests(lab, names: Dict[str, str], keys_: tuple) -> Dict[str, Dict[str, str]]:
    return {k: own_digest(lab.pool.mountpoint(names[k])) for k in keys_}


def remote_backups(lab, dataset: str) -> list:
    base = lab.remotes["local"] / "testhost" / dataset
    return sorted(p.name for p in base.iterdir() if p.name.startswith("@")) if base.exists() else []


def test_exclude_patterns_match_names_relative_or_absolute_and_descendants():
    assert is_excluded("tank/cache", "tank", ["cache"])
    assert is_excluded("tank/cache/deep", "tank", ["cache"])
    assert is_excluded("tank/home/bob/tmp", "tank", ["*/tmp"])
    assert is_excluded("tank/home/bob", "tank", ["tank/home/b*"])
    assert not is_excluded("tank/home/bobby2", "tank", ["home/bob"])
    assert not is_excluded("tank", "tank", ["*"]), "the root itself is never excluded"


def test_recursive_backup_incremental_and_restore_tree_to_new_root(lab, tmp_path):
    pool = lab.pool.name
    names = make_tree(lab)
    backed = ("root", "home", "alice", "bob", "projects")
    first = run_tree_backup(settings_for(lab), pool, "r1", create=True, exclude=["cache"])
    assert first["snapshot_created"] is True and first["failed_datasets"] == []
    assert set(first["datasets"]) == {names[k] for k in backed}
    assert first["excluded"] == [names["cache"]]
    for dataset, entry in first["datasets"].items():
        assert entry["providers"]["local"]["status"] == "uploaded", dataset
        assert entry["providers"]["local"]["kind"] == "full", dataset
    # One recursive snapshot: every dataset (the excluded one too) has r1, with the same creation txg.
    txgs = {prop(names[k] + "@r1", "createtxg") for k in backed + ("cache",)}
    assert len(txgs) == 1
    assert remote_backups(lab, names["cache"]) == [], "an excluded child is absent from the remote"
    r1 = digests(lab, names, backed)

    # Changes in several children, and a new child: the next run is incremental where it can be.
    fill(lab, names["alice"], 200, "new.bin")
    fill(lab, names["bob"], 201, "data.bin")
    names["srv"] = lab.pool.create("srv")
    fill(lab, names["srv"], 202)
    plan = run_tree_backup(settings_for(lab), pool, "r2", create=True, exclude=["cache"], check_mode=True)
    assert plan["snapshot_created"] is True and not lab.pool.exists(pool + "@r2"), "check mode changes nothing"
    assert plan["datasets"][names["alice"]]["providers"]["local"]["status"] == "planned"
    second = run_tree_backup(settings_for(lab), pool, "r2", create=True, exclude=["cache"])
    assert second["failed_datasets"] == []
    kinds = {d: e["providers"]["local"]["kind"] for d, e in second["datasets"].items()}
    bases = {d: e["providers"]["local"]["base"] for d, e in second["datasets"].items()}
    assert kinds[names["srv"]] == "full", "a new child is picked up with a full backup"
    for key in backed:
        assert kinds[names[key]] == "incremental" and bases[names[key]] == "r1", key
    r2 = digests(lab, names, backed + ("srv",))
    assert r2["alice"] != r1["alice"] and r2["bob"] != r1["bob"]

    # Restore the whole tree under a new root: latest snapshot, every child at r2, bytes identical.
    target = pool + "/restored"
    restored = run_tree_restore(settings_for(lab), pool, target=target, keys=keys(lab))
    assert restored["snapshot"] == "r2" and restored["failed_datasets"] == []
    assert [p["dataset"] for p in restored["plan"]] == sorted(
        [names[k] for k in backed + ("srv",)], key=lambda n: n.split("/")), "parents before children"
    assert not lab.pool.exists(target + "/cache")
    for key in backed + ("srv",):
        copy = target + names[key][len(pool):]
        assert own_digest(lab.pool.mountpoint(copy)) == r2[key], key
        # Mounted below the new root, never over the live tree.
        assert str(lab.pool.mountpoint(copy)).startswith(str(lab.pool.mnt / "restored")), key
        assert prop(copy, "mounted") == "yes", key
    assert own_digest(lab.pool.mountpoint(names["alice"])) == r2["alice"], "the live tree is untouched"
    if "p" in Zfs().capabilities().send_flags:
        # Properties travel with the backup (send -p).
        assert prop(target + "/home/alice", "com.example:owner") == "alice"
        assert prop_source(target + "/home/alice", "com.example:owner") == "received"
    again = run_tree_restore(settings_for(lab), pool, target=target, keys=keys(lab))
    assert again["changed"] is False

    # An older snapshot of the whole tree, with the mountpoint overridden: every child at r1.
    mnt = tmp_path / "r1-mnt"
    older = run_tree_restore(settings_for(lab), pool, snapshot="r1", target=pool + "/old", keys=keys(lab),
                             mountpoint=str(mnt))
    assert older["failed_datasets"] == []
    assert names["srv"] in older["skipped"], "srv has no r1 backup"
    assert lab.pool.mountpoint(pool + "/old") == mnt
    assert lab.pool.mountpoint(pool + "/old/home/bob/projects") == mnt / "home" / "bob" / "projects"
    for key in backed:
        assert own_digest(lab.pool.mountpoint(pool + "/old" + names[key][len(pool):])) == r1[key], key


def destroy_when_idle(dataset: str, seconds: float = 60.0) -> None:
    """zfs-fuse answers "dataset is busy" for a while after heavy I/O: retry until a deadline."""
    deadline = time.time() + seconds
    while True:
        proc = harness.run(["zfs", "destroy", "-r", dataset], check=False)
        if proc.returncode == 0:
            return
        assert "busy" in proc.stderr and time.time() < deadline, proc.stderr
        time.sleep(0.2)


def test_destroyed_child_keeps_remote_backups_and_failed_child_is_named(lab):
    pool = lab.pool.name
    names = make_tree(lab)
    run_tree_backup(settings_for(lab), pool, "r1", create=True)
    assert len(remote_backups(lab, names["cache"])) == 1
    # Each child's backed-up snapshot is held (the base of its next incremental): release it to destroy.
    assert "dataset is busy" in harness.run(["zfs", "destroy", "-r", names["cache"]], check=False).stderr
    harness.run(["zfs", "release", "offsite:local", names["cache"] + "@r1"])
    destroy_when_idle(names["cache"])
    fill(lab, names["alice"], 300, "more.bin")
    second = run_tree_backup(settings_for(lab), pool, "r2", create=True)
    assert names["cache"] not in second["datasets"]
    assert len(remote_backups(lab, names["cache"])) == 1, "a child destroyed locally keeps its remote backups"

    # Damage one chunk of bob's full backup: bob fails by name, its child is skipped, the rest is restored.
    bob_dir = lab.remotes["local"] / "testhost" / names["bob"]
    full = next(p for p in bob_dir.iterdir() if p.name.endswith("+full"))
    victim = sorted(full.glob("chunk-*"))[1]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    target = pool + "/dr"
    plan = run_tree_restore(settings_for(lab), pool, target=target, keys=keys(lab), check_mode=True)
    assert plan["changed"] is True and not lab.pool.exists(target)
    assert {p["status"] for p in plan["plan"]} == {"planned"}
    assert any(p["target"] == target + "/home/bob/projects" for p in plan["plan"])
    result = run_tree_restore(settings_for(lab), pool, target=target, keys=keys(lab))
    assert result["failed_datasets"] == [names["bob"]]
    assert names["bob"] in result["msg"] and victim.name in result["datasets"][names["bob"]]["msg"]
    assert names["projects"] in result["skipped"]
    assert not lab.pool.exists(target + "/home/bob") and not lab.pool.exists(target + "/home/bob.offsite-partial")
    assert names["cache"] in result["skipped"], "cache has no backup of r2: skipped, not failed"
    assert own_digest(lab.pool.mountpoint(target + "/home/alice")) == own_digest(
        lab.pool.mountpoint(names["alice"]))


def wait_for_device(path: Path, seconds: float = 30.0) -> Path:
    """Poll until udev has created the volume's device node."""
    deadline = time.time() + seconds
    while not path.exists():
        assert time.time() < deadline, "%s did not appear" % path
        time.sleep(0.05)
    return path


def test_zvol_in_tree_round_trips_block_device_bytes(lab):
    pool = lab.pool.name
    volume = pool + "/vol"
    proc = subprocess.run(["zfs", "create", "-V", "4M", volume], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, check=False)
    if proc.returncode != 0:
        pytest.skip("this ZFS cannot create volumes (zfs-fuse has no zvols: %s)"
                    % (proc.stderr.strip().splitlines() or ["zfs create -V failed"])[-1])
    device = wait_for_device(Path("/dev/zvol") / volume)
    payload = os.urandom(1 << 20)
    with open(device, "r+b") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    result = run_tree_backup(settings_for(lab), pool, "v1", create=True)
    assert result["datasets"][volume]["failed_providers"] == []
    restored = run_tree_restore(settings_for(lab), pool, target=pool + "/copy", keys=keys(lab))
    assert restored["datasets"][volume]["dataset_type"] == "volume"
    with open(wait_for_device(Path("/dev/zvol") / pool / "copy" / "vol"), "rb") as handle:
        assert handle.read(len(payload)) == payload


def test_whole_pool_backup_and_restore_one_task_each(lab, ansible, tmp_path):
    pool = lab.pool.name
    for seed, rel in enumerate(("apps", "apps/db", "scratch")):
        fill(lab, lab.pool.create(rel), 400 + seed)
    fill(lab, pool, 410)
    # The policy says: this pool is backed up recursively, without scratch.
    lab.config["datasets"] = {pool: {"recursive": True, "exclude": ["scratch"]}}
    config = str(lab.config_path)
    backup = ansible.module("offsite_backup", {"dataset": pool, "snapshot": "p1", "create": True, "config": config})
    assert backup["_rc"] == 0, backup.get("msg")
    assert sorted(backup["datasets"]) == [pool, pool + "/apps", pool + "/apps/db"]
    assert backup["excluded"] == [pool + "/scratch"]
    args = {"dataset": pool, "recursive": True, "target": pool + "/dr", "mountpoint": str(tmp_path / "dr"),
            "config": config, "identity_file": str(lab.key.path)}
    plan = ansible.module("offsite_restore", args, check=True)
    assert plan["_rc"] == 0 and plan["changed"] is True, plan.get("msg")
    assert [p["target"] for p in plan["plan"]] == [pool + "/dr", pool + "/dr/apps", pool + "/dr/apps/db"]
    assert not lab.pool.exists(pool + "/dr")
    restored = ansible.module("offsite_restore", args)
    assert restored["_rc"] == 0 and restored["failed_datasets"] == [], restored.get("msg")
    assert lab.pool.mountpoint(pool + "/dr/apps/db") == tmp_path / "dr" / "apps" / "db"
    for rel in ("", "/apps", "/apps/db"):
        assert own_digest(lab.pool.mountpoint(pool + "/dr" + rel)) == own_digest(lab.pool.mountpoint(pool + rel))


def test_whole_pool_restores_into_a_new_pool(lab, tmp_path):
    pool = lab.pool.name
    for seed, rel in enumerate(("home", "home/x")):
        fill(lab, lab.pool.create(rel), 500 + seed)
    fill(lab, pool, 510)
    run_tree_backup(settings_for(lab), pool, "p1", create=True)
    other = harness.Pool(tmp_path / "second")
    try:
        mnt = other.mountpoint(other.name)
        refused = run_tree_restore(settings_for(lab), pool, target=other.name, keys=keys(lab), check_mode=True)
        assert refused["failed_datasets"] == [pool], "an existing pool root is overwritten only with force"
        assert refused["datasets"][pool]["error_code"] == "target_exists"
        result = run_tree_restore(settings_for(lab), pool, target=other.name, keys=keys(lab), force=True)
        assert result["failed_datasets"] == [] and len(result["datasets"]) == 3
        assert other.mountpoint(other.name) == mnt, "the new pool keeps its own mountpoint"
        for rel in ("", "/home", "/home/x"):
            assert own_digest(other.mountpoint(other.name + rel)) == own_digest(lab.pool.mountpoint(pool + rel))
    finally:
        other.destroy()
