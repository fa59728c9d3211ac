"""The one receive path of restore (ops/restore/receive.py), for any link: native or legacy.

A fake `zfs receive` child reads a real pipe. Proven here in milliseconds: the tail of a link's stream
reaches ZFS only when the link returned (its checks passed), a failing link leaves it held back and the
receive aborted; a failed receive is judged by its kinds and worded by the link; receive_staged marks,
renames, and destroys its staging dataset on failure.
"""

from __future__ import annotations

import os
import threading

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.receive import receive_link, receive_staged
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.target import STAGING_SUFFIX, plan_target
from ansible_collections.offsite.zfs.plugins.module_utils.sinks import HOLD_BACK
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import PARTIAL_PROPERTY, receive_failure, zfs_error
from ansible_collections.offsite.zfs.tests.unit.doubles.scripted_zfs import ScriptedZfs


class FakeReceive:
    """`zfs receive target`: reads its stdin (a real pipe) to the end; exits with returncode and stderr."""

    def __init__(self, target: str, returncode: int = 0, stderr: bytes = b"") -> None:
        read_end, write_end = os.pipe()
        self.stdin = os.fdopen(write_end, "wb", buffering=0)
        self.target = target
        self.returncode = returncode
        self.stderr_bytes = stderr
        self.got = bytearray()
        self.aborted = False
        self._reader = threading.Thread(target=self._read, args=(read_end,), daemon=True)
        self._reader.start()

    def _read(self, fd: int) -> None:
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            for block in iter(lambda: pipe.read(1 << 16), b""):
                self.got += block

    def finish(self, timeout=None) -> int:
        self.stdin.close()
        self._reader.join()
        return self.returncode

    def wait(self, timeout=None) -> int:
        return self.returncode

    def error(self):
        return receive_failure(self.returncode, self.stderr_bytes, target=self.target)

    def abort(self, grace: float = 120.0) -> None:
        self.aborted = True
        self.finish()

    def close(self) -> None:
        if not self.stdin.closed:
            self.stdin.close()
        self._reader.join()


class Zfs(ScriptedZfs):
    def __init__(self, **receive) -> None:
        super().__init__()
        self.receive_kwargs = receive
        self.receives = []

    def receive(self, target, force=False, no_mount=True, properties=None):
        child = FakeReceive(target, **self.receive_kwargs)
        self.receives.append((target, force, child))
        return child


class Link:
    """A link of either kind: writes its stream, then its checks pass or raise (as native/legacy links do)."""

    def __init__(self, data: bytes, fail: bool = False) -> None:
        self.data, self.fail = data, fail
        self.stream_snapshot = "s1"

    def receive(self, sink, progress):
        for start in range(0, len(self.data), 1 << 16):
            sink.write(self.data[start:start + (1 << 16)])
        if self.fail:
            raise OffsiteError("the last piece is from another backup", "chunk_mismatch")
        return {"bytes": len(self.data)}

    def stopped(self, target, failure):
        return OffsiteError("stopped: %s" % (failure.reason if failure else "it did not exit"), "receive_failed")

    def failed(self, target, failure):
        return OffsiteError("failed: %s (%s)" % (failure.reason, failure.kind), "receive_failed")


def test_a_link_that_passes_its_checks_reaches_zfs_whole():
    zfs = Zfs()
    data = os.urandom(HOLD_BACK + 300_000)
    assert receive_link(zfs, Link(data), "tank/copy", True, None) == {"bytes": len(data)}
    target, force, child = zfs.receives[0]
    assert (target, force, bytes(child.got), child.aborted) == ("tank/copy", True, data, False)


def test_a_link_whose_checks_fail_never_hands_zfs_the_end_of_its_stream():
    zfs = Zfs()
    data = os.urandom(HOLD_BACK + 300_000)
    with pytest.raises(OffsiteError) as caught:
        receive_link(zfs, Link(data, fail=True), "tank/copy", False, None)
    child = zfs.receives[0][2]
    assert caught.value.code == "chunk_mismatch" and child.aborted
    assert bytes(child.got) == data[:len(child.got)] and len(data) - len(child.got) >= HOLD_BACK


def test_a_failed_receive_is_worded_by_the_link_and_judged_by_its_kind():
    zfs = Zfs(returncode=1, stderr=b"cannot receive incremental stream: destination tank/copy has been modified")
    with pytest.raises(OffsiteError) as caught:
        receive_link(zfs, Link(b"x" * 1000), "tank/copy", False, None)
    assert caught.value.message.startswith("failed: cannot receive incremental stream") and "(modified)" in \
        caught.value.message
    zfs = Zfs(returncode=1, stderr=b"cannot mount '/data': directory is not empty")
    with pytest.raises(OffsiteError):  # the mount failed and the snapshot is not there: a failure
        receive_link(zfs, Link(b"x" * 1000), "tank/copy", False, None)
    zfs.add_dataset("tank/copy")
    zfs.add_snapshot("tank/copy", "s1")  # the snapshot is in: only the mountpoint it carries is busy
    assert receive_link(zfs, Link(b"x" * 1000), "tank/copy", False, None) == {"bytes": 1000}


def test_receive_staged_renames_the_staging_dataset_or_destroys_it():
    zfs = ScriptedZfs()
    zfs.add_dataset("tank")

    def receive_into(staging):
        def receive_one(position, link):
            if position == 0:
                zfs.add_dataset(staging)  # what the first `zfs receive` creates
            if link == "bad":
                raise OffsiteError("bad link", "mac_mismatch")
            return {"link": link}
        return receive_one

    staging = "tank/copy" + STAGING_SUFFIX
    received = receive_staged(zfs, "tank/copy", staging, ["a", "b"], receive_into(staging), {"mountpoint": "none"})
    assert received == [{"link": "a"}, {"link": "b"}]
    assert zfs.exists("tank/copy") and not zfs.exists(staging) and zfs.get("tank/copy", "mountpoint") == "none"
    assert ("set", staging, PARTIAL_PROPERTY + "=tank/copy") in zfs.calls
    assert zfs.calls[-2:] == [("rename", staging, "tank/copy"), ("inherit", "tank/copy", PARTIAL_PROPERTY)]
    other = "tank/other" + STAGING_SUFFIX
    with pytest.raises(OffsiteError):
        receive_staged(zfs, "tank/other", other, ["a", "bad"], receive_into(other))
    assert not zfs.exists(other) and not zfs.exists("tank/other") and ("destroy", other, True) in zfs.calls


class _Link:
    def __init__(self, snapshot: str, guid: str) -> None:
        self.snapshot, self.guid = snapshot, guid


def test_a_rename_zfs_keeps_refusing_busy_keeps_the_whole_copy_and_a_rerun_only_renames_it():
    zfs = ScriptedZfs()
    zfs.add_dataset("tank")
    staging = "tank/copy" + STAGING_SUFFIX
    links = [_Link("s1", "101"), _Link("s2", "102")]

    def receive_one(position, link):
        if position == 0:
            zfs.add_dataset(staging)
        zfs.add_snapshot(staging, link.snapshot, guid=int(link.guid))
        return {"link": link.snapshot}

    busy = zfs_error("rename %s to tank/copy" % staging, 1, "cannot rename '%s': dataset is busy" % staging)
    zfs.rename_errors.append(busy)
    with pytest.raises(OffsiteError) as caught:
        receive_staged(zfs, "tank/copy", staging, links, receive_one)
    assert caught.value.code == "target_busy" and caught.value.details["kept"] == staging
    assert caught.value.message.startswith("Every snapshot was received into %s, but ZFS still refused to rename "
                                           "it to tank/copy after 120 s, so it is kept" % staging)
    assert caught.value.message.endswith("dataset is busy")
    assert zfs.exists(staging) and zfs.get(staging, PARTIAL_PROPERTY) == "tank/copy" and not zfs.exists("tank/copy")
    assert not any(call[0] == "destroy" for call in zfs.calls)

    plan = plan_target(zfs, links, "tank/copy", force=False, check_mode=False)
    assert (plan.start, plan.receive_into, plan.resumed) == (2, staging, True)
    assert receive_staged(zfs, "tank/copy", staging, links[plan.start:], receive_one) == []
    assert zfs.exists("tank/copy") and not zfs.exists(staging)
    assert [s.name for s in zfs.snapshots("tank/copy")] == ["s1", "s2"]
    assert zfs.get("tank/copy", PARTIAL_PROPERTY) in ("-", "")


def test_a_rename_that_fails_otherwise_still_destroys_the_staging_dataset():
    zfs = ScriptedZfs()
    zfs.add_dataset("tank")
    staging = "tank/copy" + STAGING_SUFFIX

    def receive_one(position, link):
        zfs.add_dataset(staging)
        return {}

    zfs.rename_errors.append(zfs_error("rename", 1, "cannot rename: permission denied"))
    with pytest.raises(OffsiteError) as caught:
        receive_staged(zfs, "tank/copy", staging, ["a"], receive_one)
    assert caught.value.code == "zfs_failed" and not zfs.exists(staging)
