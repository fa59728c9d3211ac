"""The test doubles keep to the interfaces they stand in for (tests/unit/doubles/).

MemoryStore must replace every Store call that would run rclone, and ScriptedZfs every Zfs call that
would run zfs, with the same parameter names; a new method on either real class fails here until
its double handles it. What they do is held to the real classes by the store contract
(test_memory_store_contract.py, tests/functional/test_store_conformance.py).
"""

from __future__ import annotations

import inspect

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils import rclone_errors
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store, StoreError
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import Zfs
from ansible_collections.offsite.zfs.tests.unit.doubles.memory_store import MemoryStore
from ansible_collections.offsite.zfs.tests.unit.doubles.scripted_zfs import ScriptedZfs

STORE_IO = {"put_file", "copy", "put_bytes", "open_put_stream", "open_get_stream", "get_bytes", "list", "fetch",
            "delete", "purge"}
STORE_PURE = {"name", "path", "env", "bounds", "argv", "failure", "retry"}
ZFS_PURE = {"snapshot", "send_plan", "zpool_binary"}  # built on the other calls, no child of their own


def _public(cls: type) -> set:
    return {n for n in dir(cls) if not n.startswith("_")}


def _params(func: object) -> list:
    return list(inspect.signature(func).parameters)  # type: ignore[arg-type]


def test_memory_store_replaces_every_store_call_that_runs_rclone():
    assert _public(Store) == STORE_IO | STORE_PURE, "a new Store method: teach MemoryStore and the contract"
    for name in STORE_IO:
        assert name in MemoryStore.__dict__, name
        assert _params(getattr(MemoryStore, name)) == _params(getattr(Store, name)), name


def test_scripted_zfs_replaces_every_zfs_call_that_runs_zfs():
    for name in _public(Zfs) - ZFS_PURE:
        assert name in ScriptedZfs.__dict__, "Zfs.%s runs zfs: ScriptedZfs must answer it" % name
        assert _params(getattr(ScriptedZfs, name)) == _params(getattr(Zfs, name)), name
    for name in ("_run", "_probe", "_zpool"):
        assert name in ScriptedZfs.__dict__


def test_memory_store_failures_go_through_the_real_retry_and_classification():
    store = MemoryStore("b2", retries=3, retry_delay=1.0)
    store.add("x/obj", b"data")
    store.fail("get_bytes", 1, b"ERROR : Post \"https://s3.example:443/x\": connection reset", times=2)
    assert store.get_bytes("x/obj") == b"data"
    assert len(store.sleeps) == 2 and 0.75 <= store.sleeps[0] <= 1.25 and 1.5 <= store.sleeps[1] <= 2.5
    assert len(store.retry_log) == 2 and store.calls == [("get_bytes", "x/obj")] * 3


def test_a_missing_object_fails_as_the_real_store_does():
    store = MemoryStore("b2", retries=2, retry_delay=1.0)
    with pytest.raises(StoreError) as caught:
        store.get_bytes("no/such/object")
    assert caught.value.kind == rclone_errors.NOT_FOUND and caught.value.code == "provider_failed"
    assert caught.value.message.startswith("Provider b2 could not download no/such/object")
    assert "(after 3 attempts)" in caught.value.message and len(store.sleeps) == 2


def test_refused_credentials_are_not_retried():
    store = MemoryStore("b2", retries=5)
    store.fail("list", 1, b"ERROR : AccessDenied: Access Denied\n\tstatus code: 403")
    with pytest.raises(StoreError) as caught:
        store.list("ns")
    assert caught.value.code == "provider_auth" and caught.value.kind == rclone_errors.AUTH and store.sleeps == []


def test_a_failing_put_stream_reads_its_input_then_exits_with_the_error():
    store = MemoryStore("b2")
    store.fail("open_put_stream", 1, b"ERROR : chunk: Failed to copy: 500 Internal Server Error")
    child = store.open_put_stream("a/chunk")
    child.stdin.write(b"bytes")
    child.stdin.close()
    assert child.wait() == 1 and b"500" in child.stderr.read() and store.objects == {}
    child = store.open_put_stream("a/chunk")
    child.stdin.write(b"bytes")
    with pytest.raises(RuntimeError):
        child.wait()  # a real rcat would block: the caller forgot to close stdin


def test_scripted_zfs_answers_like_zfs():
    zfs = ScriptedZfs()
    zfs.add_dataset("tank/data", "volume")
    late = zfs.add_snapshot("tank/data", "late", createtxg=500, creation=1_800_000_000)
    early = zfs.add_snapshot("tank/data", "early", createtxg=200, creation=1_700_000_000, held=["keep"])
    assert [s.name for s in zfs.snapshots("tank/data")] == ["early", "late"]
    assert zfs.snapshot("tank/data", "late") == late and zfs.dataset_type("tank/data") == "volume"
    assert zfs.userrefs(early.full_name) == 1 and zfs.holds(early.full_name) == ["keep"]
    assert zfs.get(late.full_name, "guid") == str(late.guid) and zfs.get("tank/data", "offsite.zfs:x") == "-"
    with pytest.raises(OffsiteError) as caught:
        zfs.snapshots("tank/none")
    assert caught.value.code == "no_dataset"
    with pytest.raises(OffsiteError) as caught:
        zfs.snapshot("tank/data", "gone")
    assert caught.value.code == "no_snapshot"
    with pytest.raises(OffsiteError) as caught:
        zfs.destroy(early.full_name)
    assert "busy" in caught.value.message
    with pytest.raises(OffsiteError) as caught:
        zfs.send(zfs.send_plan(late, early, {}))
    assert caught.value.code == "scripted_zfs"


def test_scripted_capabilities_drive_the_send_flags():
    modern, fuse = ScriptedZfs(), ScriptedZfs(send_flags="DRpv", receive_flags="Fdnuv", written=False)
    snap = modern.add_snapshot("tank/data", "s1")
    assert modern.send_plan(snap, None, {}).flags == ["-c", "-L", "-e"]
    assert fuse.send_plan(snap, None, {}).flags == []
    with pytest.raises(OffsiteError) as caught:
        fuse.send_plan(snap, None, {"raw": True})
    assert caught.value.code == "unsupported"
