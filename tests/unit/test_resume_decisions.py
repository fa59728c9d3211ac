"""Resume decisions of a backup: which journal chunks are reused, when an upload starts over, and what an
append-only provider keeps. run_backup runs for real (chunking, zstd, age, SHA-256, journal, manifest)
against a memory provider and a scripted zfs whose send stream comes through a pipe: a few hundred KiB
in 64 KiB chunks, in milliseconds.

The per-chunk reuse rule is inline in ops/backup/upload.py's Pass._chunk (journal entry present, object listed
with the journal's stored size, then the re-read stream must give the same plaintext MAC); these tests
reach it through run_backup, the smallest seam that exists today.
"""

from __future__ import annotations

import os
import random

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils import attempts, catalog
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup import journal as upload_journal
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup import run as backup_op
from ansible_collections.offsite.zfs.plugins.module_utils.signing import Trust
from ansible_collections.offsite.zfs.tests.unit.doubles import backups
from ansible_collections.offsite.zfs.tests.unit.doubles.world import World

pyrage = pytest.importorskip("pyrage")
CHUNK = 64 * 1024
COUNT = 6


def _noise(seed, size):
    """Incompressible bytes, the same every run."""
    return random.Random(seed).getrandbits(8 * size).to_bytes(size, "little")


@pytest.fixture
def world(tmp_path):
    made = World(tmp_path, parallel_uploads=1)
    made.snap1 = made.snap("s1")
    made.data = _noise(13, CHUNK * (COUNT - 1) + 1000)
    made.zfs.script_send(made.snap1, made.data)
    made.recipient = str(pyrage.x25519.Identity.generate().to_public())
    return made


def _settings(world, **fields):
    values = dict(recipients=[world.recipient], chunk_size=CHUNK, trust=Trust(signing_key=str(world.tmp / "none")))
    values.update(fields)
    return world.settings(**values)


def _backup(world, **fields):
    world.settled()
    result = backup_op.run_backup(_settings(world, **fields), "s1", zfs=world.zfs, stores=world.stores)
    return result["providers"]["b2"]


def _uploaded(world):
    """The chunk indexes this run uploaded, in order (put_file in spool mode, rcat streams otherwise)."""
    return [int(key.rsplit("/chunk-", 1)[1][:6]) for op, key in world.stores["b2"].calls
            if op in ("put_file", "open_put_stream")]


def _bdir(world):
    return catalog.backup_dir(backups.NAMESPACE, "tank/data", catalog.make_backup_id("s1", world.snap1.guid, None))


def _interrupted(world, after=3, **fields):
    world.stores["b2"].fail("put_file", after=after)
    entry = _backup(world, **fields)
    assert entry["status"] == "failed" and entry["error_code"] == "provider_failed"
    assert _uploaded(world) == list(range(after + 1))
    return entry


def test_an_interrupted_upload_resumes_after_the_chunks_it_journaled(world):
    _interrupted(world)
    entry = _backup(world)
    assert entry["status"] == "resumed" and entry["chunks_resumed"] == 3 and entry["chunks"] == COUNT
    assert _uploaded(world) == [3, 4, 5]
    assert ("purge", _bdir(world)) not in world.stores["b2"].calls
    assert "(3 chunks reused from the interrupted run)" in entry["message"]
    listed = catalog.list_backups(world.stores["b2"], backups.NAMESPACE, "tank/data").for_dataset("tank/data")
    assert len(listed) == 1 and listed[0].intact and listed[0].manifest.plain_bytes == len(world.data)


def test_a_journaled_chunk_that_is_gone_or_of_another_size_is_uploaded_again(world):
    _interrupted(world, after=4)
    store = world.stores["b2"]
    store.delete("%s/%s" % (_bdir(world), catalog.chunk_object(1, ".zst")))
    store.add("%s/%s" % (_bdir(world), catalog.chunk_object(3, ".zst")), b"truncated")
    entry = _backup(world)
    assert entry["status"] == "resumed" and entry["chunks_resumed"] == 2, "chunks 0 and 2 only"
    assert _uploaded(world) == [1, 3, 4, 5]


def test_a_stream_that_differs_from_the_journal_starts_the_upload_over(world):
    _interrupted(world)
    changed = bytearray(world.data)
    changed[CHUNK + 5] ^= 0xFF  # chunk 1
    world.zfs.script_send(world.snap1, bytes(changed))
    entry = _backup(world)
    assert entry["status"] == "uploaded" and entry["restarted"] is True and entry["chunks_resumed"] == 0
    assert "the stream differs from the interrupted upload at chunk 1, so the backup started over" in entry["notes"]
    assert ("purge", _bdir(world)) in world.stores["b2"].calls and _uploaded(world) == list(range(COUNT))


def test_changed_settings_start_the_upload_over(world):
    _interrupted(world)
    entry = _backup(world, compression="gzip")
    assert entry["notes"] == ["settings changed since the interrupted upload, so it starts over"]
    assert entry["chunks_resumed"] == 0 and ("purge", _bdir(world)) in world.stores["b2"].calls


def test_objects_without_a_local_journal_are_removed_and_the_upload_starts_over(world):
    _interrupted(world)
    os.unlink(upload_journal.journal_path(_settings(world), "b2", catalog.make_backup_id("s1", world.snap1.guid, None)))
    entry = _backup(world)
    assert entry["notes"] == ["found 3 objects of an earlier upload with no local journal, so it starts over"]
    assert entry["chunks_resumed"] == 0 and _uploaded(world) == list(range(COUNT))


def test_an_append_only_provider_keeps_what_it_has_and_writes_new_names(tmp_path, world):
    store = world.stores["b2"]
    store.provider.append_only = True
    _interrupted(world)
    entry = _backup(world)
    assert entry["status"] == "resumed" and entry["chunks_resumed"] == 3
    assert [op for op, _key in store.calls if op in ("delete", "purge")] == []
    names = sorted(n.rsplit("/", 1)[1] for n in store.objects if "/chunk-" in n)
    assert names == ["chunk-00000%d.zst.age" % i for i in range(3)] + [
        "chunk-00000%d-a2.zst.age" % i for i in range(3, COUNT)], "reused names stay, new ones are attempt 2"


def test_streaming_mode_resumes_within_the_run_after_a_broken_upload(tmp_path):
    world = World(tmp_path, retries=1)
    snap = world.snap("s1")
    world.zfs.script_send(snap, _noise(5, CHUNK * 3 + 10))
    world.snap1, world.recipient = snap, str(pyrage.x25519.Identity.generate().to_public())
    world.stores["b2"].fail("open_put_stream", 1, b"ERROR : chunk: Failed to copy: 503 Slow Down", after=2)
    entry = _backup(world, spool=False)
    assert entry["status"] == "resumed" and entry["chunks_resumed"] == 2 and entry["chunks"] == 4
    assert _uploaded(world) == [0, 1, 2, 2, 3] and len(world.stores["b2"].sleeps) == 1
    assert all(child.wait() is not None for child in world.zfs.sends)


# -- the pure pieces -------------------------------------------------------------------------------
def test_the_next_attempt_is_one_no_object_in_the_directory_uses_yet():
    assert attempts.next_attempt({}, []) == 1
    assert attempts.next_attempt({"attempt": 1}, ["chunk-000000.zst.age"]) == 2
    assert attempts.next_attempt({"attempt": 2}, ["chunk-000000.zst.age", "chunk-000004-a5.zst.age"]) == 6
    assert attempts.chunk_object(7, ".zst", 1) == "chunk-000007.zst.age"
    assert attempts.chunk_object(7, ".zst", 3) == "chunk-000007-a3.zst.age"


def test_a_journal_is_compatible_only_with_the_same_backup_format(world):
    journal = {"backup_id": "s1+x+full", "chunk_size": CHUNK, "compression": {"algorithm": "zstd", "level": 3},
               "send_flags": ["-c"], "encryption": {"kind": "recipients", "recipients": ["age1a"]}, "key": "00",
               "chunks": {}}
    assert upload_journal.compatible(journal, dict(journal))
    for key, value in (("chunk_size", CHUNK * 2), ("send_flags", []), ("backup_id", "s1+y+full"),
                       ("compression", {"algorithm": "zstd", "level": 9})):
        assert not upload_journal.compatible(journal, dict(journal, **{key: value})), key
    other = {"kind": "recipients", "recipients": ["age1b"]}
    assert not upload_journal.compatible(journal, dict(journal, encryption=other))
    assert upload_journal.compatible(dict(journal, encryption={"kind": "passphrase"}), dict(journal, encryption={
        "kind": "passphrase", "recipients": ["other"]})), "passphrase mode reuses its wrapped identity"
    assert not upload_journal.compatible(dict(journal, chunks=[]), journal)
