"""The fan-out spool's bound and drop rule (ops/backup/spool.py), with stores whose uploads the test releases."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import List, Optional

from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.manifest import ChunkRecord
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup import spool as fanout_spool
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.journal import ACTIVE, DROPPED, FAILED
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.spool import Spool


class FakeTarget:
    """Just what the spool touches: a name, a store with parallel_uploads and put_file, the counters."""

    def __init__(self, name: str, gate: Optional[threading.Event] = None, fail: bool = False,
                 seconds: float = 0.0) -> None:
        self.name = name
        self.seconds = seconds
        self.gate = gate
        self.fail = fail
        self.store = SimpleNamespace(provider=SimpleNamespace(parallel_uploads=1), put_file=self.put_file)
        self.bdir = "ns/ds/id"
        self.state = ACTIVE
        self.error: Optional[OffsiteError] = None
        self.pending = 0
        self.jobs: List[object] = []
        self.uploaded = 0
        self.recorded: List[int] = []

    def put_file(self, key: str, path: str) -> None:
        assert os.path.exists(path), "a spool file is removed only after every provider has it"
        if self.gate is not None:
            self.gate.wait(30)
        if self.seconds:
            time.sleep(self.seconds)  # a slow link (the work of the upload, not a synchronisation)
        if self.fail:
            raise OffsiteError("Provider %s could not upload %s: broken" % (self.name, key), "provider_failed")

    def record(self, record: ChunkRecord) -> None:
        self.recorded.append(record.index)
        self.uploaded += 1


def _chunk(directory: Path, index: int) -> str:
    path = directory / ("chunk-%06d" % index)
    path.write_bytes(b"x" * 10)
    return str(path)


def _record(index: int) -> ChunkRecord:
    return ChunkRecord(index, "chunk-%06d.zst" % index, 10, "0" * 64, 10, "0" * 64)


def test_a_provider_that_holds_the_others_back_is_dropped_and_the_spool_stays_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(fanout_spool, "STALL_MIN", 0.3)
    tmp_path = tmp_path / "spool"
    tmp_path.mkdir()
    gate = threading.Event()
    fast, slow = FakeTarget("fast"), FakeTarget("slow", gate=gate)
    spool = Spool(str(tmp_path), [fast, slow], 1 << 20, lambda target, record: None, lambda message: None)
    assert spool.limit == 3, "sum of parallel_uploads + 1"
    written = []
    for index in range(6):
        need = spool.room([fast, slow])
        if not need:
            break
        assert len(spool.files) <= spool.limit - 1
        spool.add(_chunk(tmp_path, index), [(t, _record(index)) for t in need])
        written.append(need)
    gate.set()
    spool.drain()
    spool.close()
    assert slow.state == DROPPED and slow.error.code == "provider_deferred", slow.error
    assert "past the spool bound of 3 chunks" in slow.error.message and "finished no upload for" in slow.error.message
    assert fast.state == ACTIVE and fast.recorded == list(range(6)), "the fast provider got every chunk"
    assert slow.recorded == [0], "only the upload that was running when it was dropped finished"
    assert spool.high_water <= spool.limit - 1
    assert not tmp_path.exists(), "every spool file and the directory are gone"


def test_a_lone_provider_is_never_dropped_and_a_failed_one_leaves_the_others_going(tmp_path):
    (tmp_path / "pair").mkdir()
    (tmp_path / "solo").mkdir()
    ok, broken = FakeTarget("ok"), FakeTarget("broken", fail=True)
    spool = Spool(str(tmp_path / "pair"), [ok, broken], 1 << 20, lambda target, record: None, lambda message: None)
    for index in range(5):
        need = spool.room([ok, broken])
        spool.add(_chunk(tmp_path / "pair", index), [(t, _record(index)) for t in need])
    spool.drain()
    spool.close()
    assert broken.state == FAILED and "broken" in broken.error.message
    assert ok.recorded == list(range(5))
    alone = FakeTarget("alone", gate=threading.Event())
    solo = Spool(str(tmp_path / "solo"), [alone], 1 << 20, lambda target, record: None, lambda message: None)
    solo.add(_chunk(tmp_path / "solo", 0), [(alone, _record(0))])
    waiter = threading.Thread(target=lambda: solo.room([alone]))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive() and alone.state == ACTIVE, "one provider waits for room, it is never dropped"
    alone.gate.set()
    waiter.join(30)
    solo.drain()
    solo.close()
    assert alone.recorded == [0]


def test_a_slower_provider_that_keeps_uploading_paces_the_others_and_is_not_dropped(tmp_path):
    (tmp_path / "s").mkdir()
    fast, slow = FakeTarget("fast"), FakeTarget("slow", seconds=0.05)
    spool = Spool(str(tmp_path / "s"), [fast, slow], 1 << 20, lambda target, record: None, lambda message: None)
    for index in range(12):
        need = spool.room([fast, slow])
        assert len(spool.files) <= spool.limit - 1
        spool.add(_chunk(tmp_path / "s", index), [(t, _record(index)) for t in need])
    spool.drain()
    spool.close()
    assert slow.state == fast.state == ACTIVE
    assert slow.recorded == fast.recorded == list(range(12))
    assert spool.high_water <= spool.limit - 1


def _fake_rclone(path: Path, body: str) -> str:
    path.write_text("#!/bin/bash\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


def test_a_streamed_upload_error_is_classified_and_the_other_provider_gets_its_chunk(tmp_path):
    import io

    from pyrage import x25519

    from ansible_collections.offsite.zfs.plugins.module_utils import codec
    from ansible_collections.offsite.zfs.plugins.module_utils.chunks import chunk_mac
    from ansible_collections.offsite.zfs.plugins.module_utils.encoder import ChunkEncoder
    from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup import upload as fanout
    from ansible_collections.offsite.zfs.plugins.module_utils.store import Provider, Store

    good_dir = tmp_path / "good"
    good_dir.mkdir()
    good = _fake_rclone(tmp_path / "good-rclone", 'cat > "%s/$(basename "${@: -1}")"' % good_dir)
    dead = _fake_rclone(tmp_path / "dead-rclone", 'echo "2026/12/02 ERROR : Failed to rcat: Put '
                        '\\"http://127.0.0.1:9/bucket/x\\": dial tcp 127.0.0.1:9: connect: connection refused" >&2; '
                        'exit 1')
    targets = []
    for name, binary in (("good", good), ("dead", dead)):
        target = SimpleNamespace(name=name, store=Store(Provider(name, "remote-%s:" % name, rclone=binary)),
                                 bdir="ns/ds/id", state=ACTIVE, error=None)
        target.object_name = lambda index: "chunk-%06d.zst" % index
        targets.append(target)
    identity = x25519.Identity.generate()
    encryption = codec.Encryption("recipients", [identity.to_public()], [str(identity.to_public())])
    encoded = fanout._stream_chunk(targets, 0, ChunkEncoder("zstd", 3, 0, encryption),
                                   io.BytesIO(b"plain bytes " * 5000), 1 << 20, chunk_mac(b"k" * 32, "id", 0))
    good_target, dead_target = targets
    assert good_target.state == ACTIVE and good_target.error is None
    assert encoded.plain_bytes == 60000
    assert (good_dir / "chunk-000000.zst").stat().st_size == encoded.stored_bytes > 0
    assert dead_target.state == FAILED and dead_target.error.code == "provider_unreachable", dead_target.error
    assert "Provider dead cannot be reached at http://127.0.0.1:9: connection refused" in dead_target.error.message
