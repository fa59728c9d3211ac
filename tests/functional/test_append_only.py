"""Append-only providers (issue 17): a remote that refuses the backup host's deletes (sftp to a loopback sshd).

Full backup, an interrupted incremental (a partial object left behind), the resumed run under a new
attempt with nothing deleted, a byte-identical restore, then prune from the controller's own
credentials (root's local path to the same directory) removing the abandoned attempt.
"""

from __future__ import annotations

import os
import subprocess

import pytest
import sftp_server
from faulty_rclone import Rule, Wrapper
from harness import tree_digest, write_data

pytestmark = pytest.mark.skipif(sftp_server.missing() is not None, reason=str(sftp_server.missing()))


@pytest.fixture
def server():
    created = sftp_server.SftpServer()
    yield created
    created.stop()


def test_append_only_backup_resume_restore_and_prune_from_the_controller(lab, server):
    env = server.env("aohost")
    wrapper = Wrapper.create(lab.tmp / "faults", lab.rclone)
    lab.config["providers"] = {
        "host": {"remote": "aohost:%s" % server.root, "append_only": True, "retry_delay": 0.05, "retries": 0,
                 "env": env},
        "controller": {"remote": str(server.root), "retry_delay": 0.05},
    }
    lab.config["rclone"] = str(wrapper.path)
    ds = lab.pool.create("data")
    write_data(lab.pool.mountpoint(ds), 1, 200 * 1024)
    lab.pool.snapshot(ds, "s1")
    first = lab.backup(ds, "s1", providers=["host"], spool=False)
    assert first["providers"]["host"]["status"] == "uploaded", first

    # The backup host's credentials cannot delete (asserted with rclone itself).
    objects = sorted(p.name for p in server.root.rglob("chunk-*"))
    some = next(server.root.rglob("chunk-000000*"))
    proc = subprocess.run([lab.rclone, "deletefile", "aohost:%s" % some], env=dict(os.environ, **env),
                          capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "permission denied" in proc.stderr, proc.stderr
    assert some.exists()

    # Interrupted: the 3rd chunk upload of the incremental breaks, leaving a partial object.
    write_data(lab.pool.mountpoint(ds), 2, 300 * 1024, name="more.bin")
    lab.pool.snapshot(ds, "s2")
    wrapper.set_rules([Rule(verbs=["rcat"], action="reset", after=2, count=1, bytes=1000)])
    broken = lab.backup(ds, "s2", providers=["host"], spool=False)
    assert broken["failed_providers"] == ["host"], broken
    before = {p.relative_to(server.root): p.stat().st_size for p in server.root.rglob("*") if p.is_file()}

    wrapper.set_rules([])
    resumed = lab.backup(ds, "s2", providers=["host"], spool=False)
    entry = resumed["providers"]["host"]
    assert entry["status"] == "resumed" and entry["chunks_resumed"] == 2, entry
    after = {p.relative_to(server.root): p.stat().st_size for p in server.root.rglob("*") if p.is_file()}
    assert all(after.get(k) == v for k, v in before.items()), "an object was deleted or overwritten"
    assert any("-a2." in str(k) for k in after), sorted(after)
    verbs = {(c.get("argv") or [""])[0] for c in wrapper.calls()}
    assert not verbs & {"deletefile", "purge", "delete"}, verbs
    assert objects  # the full backup's chunks are all still there
    assert all(any(p.name == o for p in server.root.rglob(o)) for o in objects)

    target = lab.pool.name + "/back"
    restored = lab.restore(ds, "s2", target=target, provider="host")
    assert restored["guid"]
    assert tree_digest(lab.pool.mountpoint(target)) == tree_digest(lab.pool.mountpoint(ds))

    # Prune on the backup host (the timer prunes by default): the append-only provider is planned, not pruned.
    from ansible_collections.offsite.zfs.plugins.module_utils.ops.prune.run import prune_dataset
    seen = len(wrapper.calls())
    planned = prune_dataset(lab.settings(ds, providers=["host"]), False, incomplete_after=0, keep={"last": 1})
    left = planned["providers"]["host"]
    assert left["status"] == "append_only" and left["left_for_prune_host"] and not left["abandoned_deleted"], planned
    assert planned["failed_providers"] == [] and planned["changed"] is False
    assert not {(c.get("argv") or [""])[0] for c in wrapper.calls()[seen:]} & {"deletefile", "purge", "delete"}

    # Prune from the controller's full-rights remote: the abandoned attempt's partial object goes.
    pruned = prune_dataset(lab.settings(ds, providers=["controller"]), False, incomplete_after=0,
                           keep={"last": 1})
    gone = pruned["providers"]["controller"]
    assert gone.get("abandoned_deleted"), pruned
    left = {p.relative_to(server.root) for p in server.root.rglob("*") if p.is_file()}
    for record in gone["abandoned_deleted"]:
        assert not any(str(k).endswith(record["object"]) and record["backup_id"] in str(k) for k in left)
