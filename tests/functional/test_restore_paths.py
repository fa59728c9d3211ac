"""Restoring selected paths (issue 18): through a scratch place, out of the middle of a chain, on real pools."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Dict

import harness
import pytest
from faulty_rclone import Rule, Wrapper
from reliability import finish, kill9, spawn, wait_for

from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.keys import load_keys
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.paths import run_path_restore


def snapshot_of(directory: Path) -> Dict[str, tuple]:
    """Relative path -> (type, content digest or link, mode, uid, gid, mtime_ns) for everything below."""
    found = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            path = Path(root) / name
            st = os.lstat(path)
            if path.is_symlink():
                what = ("link", os.readlink(path))
            elif path.is_dir():
                what = ("dir", "")
            else:
                what = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
            mtime = st.st_mtime_ns if not path.is_symlink() else 0
            found[str(path.relative_to(directory))] = what + (st.st_mode, st.st_uid, st.st_gid, mtime)
    return found


def restore_paths(lab, dataset: str, paths, dest=None, **kwargs):
    keys = load_keys(None, str(lab.key.path), None)
    return run_path_restore(lab.settings(dataset, _single_provider=True), paths, dest=str(dest) if dest else None,
                            keys=keys, **kwargs)


def scratch_pools() -> list:
    out = harness.run(["zpool", "list", "-H", "-o", "name"], check=False).stdout.split()
    return [name for name in out if name.startswith("offsite-scratch-")]


def mounts_below(path: Path) -> list:
    return [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()
            if line.split()[1].startswith(str(path))]


def make_chain(lab):
    """s1 (full), s2, s3 (incrementals); returns the dataset, and what docs/ and top.bin were at s2."""
    ds = lab.pool.create("data")
    mount = lab.pool.mountpoint(ds)
    docs = mount / "docs"
    (docs / "sub").mkdir(parents=True)
    harness.write_data(mount, 1, 300 << 10, "top.bin")
    (docs / "a.txt").write_text("version 1\n")
    lab.pool.snapshot(ds, "s1")
    lab.backup(ds, "s1")
    (docs / "a.txt").write_text("version 2\n")
    os.chmod(docs / "a.txt", 0o640)
    os.chown(docs / "a.txt", 1234, 2345)
    (docs / "sub" / "b.bin").write_bytes(os.urandom(70000))
    os.chmod(docs / "sub", 0o750)
    os.symlink("../a.txt", docs / "sub" / "link")
    os.link(docs / "a.txt", docs / "hard.txt")
    os.utime(docs / "a.txt", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    os.utime(docs / "sub", (1_500_000_000, 1_500_000_000))
    os.utime(docs, (1_400_000_000, 1_400_000_000))
    (mount / "notes-1.md").write_text("one")
    (mount / "notes-2.md").write_text("two")
    (mount / "other.md").write_text("other")
    at_s2 = {"docs": snapshot_of(docs), "top": snapshot_of(mount)["top.bin"],
             "docs_meta": os.lstat(docs)}
    lab.pool.snapshot(ds, "s2")
    lab.backup(ds, "s2")
    (docs / "a.txt").write_text("version 3\n")
    (docs / "sub" / "b.bin").unlink()
    (mount / "top.bin").unlink()
    lab.pool.snapshot(ds, "s3")
    lab.backup(ds, "s3")
    return ds, at_s2


def test_file_and_directory_from_the_middle_of_a_chain(lab):
    ds, at_s2 = make_chain(lab)
    live_before = snapshot_of(lab.pool.mountpoint(ds))
    dest = lab.tmp / "got"
    result = restore_paths(lab, ds, ["docs", "/top.bin"], dest, snapshot="s2")
    assert result["changed"] is True and result["snapshot"] == "s2", result
    assert len(result["chain"]) == 2, "the full backup and the first incremental"
    assert result["scratch"]["kind"] == "pool", result["scratch"]
    assert snapshot_of(dest / "docs") == at_s2["docs"], "contents, modes, owners and times as at s2"
    assert snapshot_of(dest)["top.bin"] == at_s2["top"]
    meta = os.lstat(dest / "docs")
    assert (meta.st_mode, meta.st_mtime_ns) == (at_s2["docs_meta"].st_mode, at_s2["docs_meta"].st_mtime_ns)
    assert os.lstat(dest / "docs" / "hard.txt").st_ino == os.lstat(dest / "docs" / "a.txt").st_ino
    assert result["files"] == 3 and result["symlinks"] == 1 and result["hardlinks"] == 1, result
    assert result["bytes"] == (300 << 10) + 70000 + len("version 2\n")
    assert {c["path"] for c in result["copied"]} == {"/docs", "/top.bin"}
    assert snapshot_of(lab.pool.mountpoint(ds)) == live_before, "the live dataset is untouched"
    assert lab.pool.snapshots(ds) == ["s1", "s2", "s3"]
    assert result["scratch"]["name"] not in scratch_pools(), "the scratch pool is destroyed"
    assert not list((lab.tmp / "state" / "scratch").glob("offsite-scratch-*")), "and its marker"
    assert not list((lab.tmp / "spool").glob("offsite-scratch-*.img")), "and its vdev file"


def test_glob_on_a_scratch_pool_list_and_check_mode(lab):
    ds, _at_s2 = make_chain(lab)
    scratch_parent = lab.pool.create("scratch")
    plan = restore_paths(lab, ds, ["notes-*.md"], lab.tmp / "plan", snapshot="s2", check_mode=True,
                         scratch_pool=scratch_parent)
    assert plan["changed"] is True and plan["scratch"]["kind"] == "dataset"
    assert plan["scratch"]["needed_bytes"] > plan["estimated_bytes"] > 0
    assert not (lab.tmp / "plan").exists()
    assert harness.run(["zfs", "list", "-H", "-o", "name", "-r", scratch_parent]).stdout.split() == [scratch_parent]
    listed = restore_paths(lab, ds, ["notes-*.md", "missing/*"], list_only=True, scratch_pool=scratch_parent)
    assert listed["changed"] is False
    assert [m["path"] for m in listed["matches"]] == ["/notes-1.md", "/notes-2.md"]
    assert listed["unmatched"] == ["missing/*"]
    dest = lab.tmp / "notes"
    got = restore_paths(lab, ds, ["notes-*.md"], dest, scratch_pool=scratch_parent)
    assert sorted(p.name for p in dest.iterdir()) == ["notes-1.md", "notes-2.md"]
    assert (dest / "notes-2.md").read_text() == "two" and got["snapshot"] == "s3"
    assert harness.run(["zfs", "list", "-H", "-o", "name", "-r", scratch_parent]).stdout.split() == [scratch_parent]
    with pytest.raises(OffsiteError) as info:
        restore_paths(lab, ds, ["notes-*.md"], dest, scratch_pool=scratch_parent)
    assert info.value.code == "dest_not_empty"
    again = restore_paths(lab, ds, ["notes-1.md"], dest, scratch_pool=scratch_parent, force=True)
    assert again["files"] == 1
    with pytest.raises(OffsiteError) as info:
        restore_paths(lab, ds, ["nothing-here*"], lab.tmp / "none", scratch_pool=scratch_parent)
    assert info.value.code == "no_match" and not (lab.tmp / "none").exists()
    with pytest.raises(OffsiteError) as info:
        restore_paths(lab, ds, ["../etc/passwd"], lab.tmp / "x")
    assert info.value.code == "bad_path"
    with pytest.raises(OffsiteError) as info:
        restore_paths(lab, ds, ["docs"], lab.tmp / "x", scratch_pool=ds)
    assert info.value.code == "bad_scratch"
    assert harness.run(["zfs", "list", "-H", "-o", "name", "-r", scratch_parent]).stdout.split() == [scratch_parent]


def test_not_enough_room_is_said_before_anything_is_made(lab):
    ds = lab.pool.create("data")
    harness.write_data(lab.pool.mountpoint(ds), 3, 200 << 10)
    lab.pool.snapshot(ds, "s1")
    lab.backup(ds, "s1")
    small = lab.pool.create("small", "-o", "quota=1M")
    with pytest.raises(OffsiteError) as info:
        restore_paths(lab, ds, ["data.bin"], lab.tmp / "x", scratch_pool=small)
    assert info.value.code == "scratch_space" and small in info.value.message


def test_kill9_during_a_path_restore_is_cleaned_up_by_the_next_run(lab, tmp_path):
    ds = lab.pool.create("data")
    harness.write_data(lab.pool.mountpoint(ds), 7, 400 << 10)
    lab.pool.snapshot(ds, "s1")
    lab.backup(ds, "s1")
    gate = tmp_path / "gate"
    wrapper = Wrapper.create(tmp_path / "faults", lab.rclone,
                             rules=[Rule(verbs=["cat"], action="gate", gate=str(gate), match="chunk-000002", count=1)])
    lab.config["rclone"] = str(wrapper.path)
    dest = tmp_path / "got"
    child = spawn(lab, "restore_paths", ds, tmp_path, kwargs={"paths": ["data.bin"], "dest": str(dest)})
    markers = lab.tmp / "state" / "scratch"
    wait_for(lambda: list(markers.glob("offsite-scratch-*.json")) and wrapper.faults(),
             "a download held while the chain is received into the scratch place", child=child)
    place = list(markers.glob("offsite-scratch-*.json"))[0].stem
    assert place in scratch_pools(), "the scratch pool exists while the chain is received"
    kill9(child)
    for pid in _receivers(place):
        wait_for(lambda p=pid: not Path("/proc/%d" % p).exists(), "zfs receive to end")
    assert place in scratch_pools(), "kill -9 left the scratch pool behind"
    gate.write_text("open")
    lab.config["rclone"] = lab.rclone
    result = finish(spawn(lab, "restore_paths", ds, tmp_path, kwargs={"paths": ["data.bin"], "dest": str(dest)},
                          name="again"))
    assert result["_rc"] == 0, result
    assert place not in scratch_pools(), "the next run destroyed what the killed run left"
    assert not mounts_below(lab.tmp / "state"), "nothing is left mounted"
    assert not list(markers.glob("offsite-scratch-*")), "every marker and mount directory is gone"
    assert not list((lab.tmp / "spool").glob("offsite-scratch-*.img"))
    assert harness.tree_digest(dest) == harness.tree_digest(lab.pool.mountpoint(ds))


def _receivers(name: str) -> list:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                argv = Path("/proc/%s/cmdline" % pid).read_bytes()
            except OSError:
                continue
            if b"receive" in argv and name.encode() in argv:
                found.append(int(pid))
    return found


def test_get_a_file_back_with_ansible(lab, ansible):
    ds = lab.pool.create("data")
    mount = lab.pool.mountpoint(ds)
    (mount / "etc").mkdir()
    (mount / "etc" / "app.conf").write_text("key=1\n")
    os.chmod(mount / "etc" / "app.conf", 0o600)
    lab.pool.snapshot(ds, "s1")
    lab.backup(ds, "s1")
    (mount / "etc" / "app.conf").unlink()
    dest = lab.tmp / "back"
    args = {"dataset": ds + "@s1", "paths": ["etc/app.conf"], "dest": str(dest), "config": str(lab.config_path),
            "identity_file": str(lab.key.path)}
    planned = ansible.module("offsite_restore", args, check=True)
    assert planned["changed"] is True and not planned["failed"], planned
    assert "would receive" in planned["msg"] and not dest.exists()
    got = ansible.module("offsite_restore", args)
    assert got["changed"] is True and not got["failed"], got
    assert (dest / "etc" / "app.conf").read_text() == "key=1\n"
    assert os.lstat(dest / "etc" / "app.conf").st_mode & 0o777 == 0o600
    assert got["files"] == 1 and got["copied"] == [{"path": "/etc/app.conf", "files": 1, "bytes": 6}]
    refused = ansible.module("offsite_restore", dict(args, target=lab.pool.name + "/x"))
    assert refused["failed"] and "mutually exclusive" in refused["msg"]
