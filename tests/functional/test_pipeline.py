"""The pipeline end to end on a real pool and real rclone remotes (issue 2)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import harness
import pytest

from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError


def fill(lab, dataset: str, seed: int, size: int = 1 << 20, name: str = "data.bin") -> None:
    harness.write_data(lab.pool.mountpoint(dataset), seed, size, name)


def backup_dirs(remote: Path, dataset: str) -> list:
    base = remote / "testhost" / dataset
    return sorted(p.name for p in base.iterdir() if p.name.startswith("@")) if base.exists() else []


def test_full_backup_and_restore_are_byte_identical(lab):
    ds = lab.pool.create("data")
    fill(lab, ds, 1, 3 << 20)
    lab.pool.snapshot(ds, "s1")
    result = lab.backup(ds, "s1")
    entry = result["providers"]["local"]
    assert entry["status"] == "uploaded" and entry["kind"] == "full"
    assert entry["chunks"] > 10, "a stream of several chunks"
    assert result["changed"] is True
    manifest = json.loads((lab.remotes["local"] / "testhost" / ds / ("@" + entry["backup_id"]) /
                           "manifest.json").read_text())
    assert manifest["totals"]["chunks"] == entry["chunks"]
    assert manifest["snapshot"]["guid"] == result["guid"]
    import jsonschema
    schema = json.loads((harness.ROOT / "schemas" / "manifest.schema.json").read_text())
    jsonschema.validate(manifest, schema, cls=jsonschema.Draft202012Validator)
    restored = lab.restore(ds, "s1", target=lab.pool.name + "/copy")
    assert restored["changed"] is True
    assert harness.tree_digest(lab.pool.mountpoint(ds)) == harness.tree_digest(
        lab.pool.mountpoint(lab.pool.name + "/copy"))


def test_restore_without_the_age_cli_decrypts_in_process(lab, monkeypatch):
    """OFFSITE_AGE=pyrage (or no `age` on PATH): chunks are decrypted with pyrage, with the same result."""
    monkeypatch.setenv("OFFSITE_AGE", "pyrage")
    ds = lab.pool.create("data")
    fill(lab, ds, 2, 2 << 20)
    lab.pool.snapshot(ds, "s1")
    lab.backup(ds, "s1")
    lab.restore(ds, "s1", target=lab.pool.name + "/inproc")
    assert harness.tree_digest(lab.pool.mountpoint(ds)) == harness.tree_digest(
        lab.pool.mountpoint(lab.pool.name + "/inproc"))


def test_second_backup_is_unchanged_and_check_mode_changes_nothing(lab):
    ds = lab.pool.create("data")
    fill(lab, ds, 2)
    lab.pool.snapshot(ds, "s1")
    plan = lab.backup(ds, "s1", check_mode=True)
    assert plan["providers"]["local"]["status"] == "planned"
    assert plan["providers"]["local"]["kind"] == "full"
    assert plan["providers"]["local"]["estimated_chunks"] >= 1
    assert backup_dirs(lab.remotes["local"], ds) == []
    assert lab.backup(ds, "s1")["changed"] is True
    again = lab.backup(ds, "s1")
    assert again["changed"] is False
    assert again["providers"]["local"]["status"] == "present"


def test_incremental_chain_restores_every_snapshot(lab):
    ds = lab.pool.create("data")
    digests = {}
    for number in range(1, 5):
        fill(lab, ds, 10 + number, 512 << 10, "file%d.bin" % number)
        lab.pool.snapshot(ds, "s%d" % number)
        digests["s%d" % number] = harness.tree_digest(lab.pool.mountpoint(ds))
        result = lab.backup(ds, "s%d" % number)
        entry = result["providers"]["local"]
        if number == 1:
            assert entry["kind"] == "full"
        else:
            assert entry["kind"] == "incremental" and entry["base"] == "s%d" % (number - 1)
    import jsonschema
    schema = json.loads((harness.ROOT / "schemas" / "manifest.schema.json").read_text())
    manifests = list(lab.remotes["local"].rglob("manifest.json"))
    assert len(manifests) == 4
    for path in manifests:
        jsonschema.validate(json.loads(path.read_text()), schema, cls=jsonschema.Draft202012Validator)
    # The latest, into a new target: the whole chain of 4.
    latest = lab.restore(ds, target=lab.pool.name + "/latest")
    assert latest["snapshot"] == "s4" and len(latest["chain"]) == 4
    assert harness.tree_digest(lab.pool.mountpoint(lab.pool.name + "/latest")) == digests["s4"]
    # A middle snapshot.
    middle = lab.restore(ds, "s2", target=lab.pool.name + "/middle")
    assert len(middle["received"]) == 2
    assert harness.tree_digest(lab.pool.mountpoint(lab.pool.name + "/middle")) == digests["s2"]
    # Then forward from the middle: only what the target lacks.
    forward = lab.restore(ds, "s4", target=lab.pool.name + "/middle")
    assert [r["snapshot"] for r in forward["received"]] == ["s3", "s4"]
    assert harness.tree_digest(lab.pool.mountpoint(lab.pool.name + "/middle")) == digests["s4"]
    # Idempotent.
    assert lab.restore(ds, "s4", target=lab.pool.name + "/middle")["changed"] is False


def test_full_true_forces_a_full_backup(lab):
    ds = lab.pool.create("data")
    fill(lab, ds, 3)
    lab.pool.snapshot(ds, "s1")
    lab.backup(ds, "s1")
    fill(lab, ds, 4, name="more.bin")
    lab.pool.snapshot(ds, "s2")
    result = lab.backup(ds, "s2", full=True)
    assert result["providers"]["local"]["kind"] == "full"
    assert lab.restore(ds, "s2", target=lab.pool.name + "/r")["chain"] == [
        result["providers"]["local"]["backup_id"]]


def test_base_must_be_complete_on_that_provider(lab):
    ds = lab.pool.create("data")
    lab.add_local("second")
    fill(lab, ds, 5)
    lab.pool.snapshot(ds, "s1")
    lab.backup(ds, "s1", providers=["local"])
    fill(lab, ds, 6, name="b.bin")
    lab.pool.snapshot(ds, "s2")
    result = lab.backup(ds, "s2", providers="all")
    assert result["providers"]["local"]["kind"] == "incremental"
    assert result["providers"]["second"]["kind"] == "full"


def test_providers_all_and_restore_auto_with_one_provider_missing_the_backup(lab, s3):
    lab.add_s3(s3)
    lab.add_local("mirror")
    ds = lab.pool.create("data")
    fill(lab, ds, 7, 2 << 20)
    lab.pool.snapshot(ds, "s1")
    result = lab.backup(ds, "s1", providers="all")
    assert set(result["providers"]) == {"local", "mirror", "s3"}
    assert all(e["status"] == "uploaded" for e in result["providers"].values())
    # A second snapshot only on s3 and mirror: auto must skip local for s2.
    fill(lab, ds, 8, name="b.bin")
    lab.pool.snapshot(ds, "s2")
    lab.backup(ds, "s2", providers=["s3", "mirror"])
    restored = lab.restore(ds, "s2", target=lab.pool.name + "/auto")
    assert restored["provider"] == "s3"  # the first configured provider (after local) that holds it
    assert any("local" in reason for reason in restored["skipped_providers"])
    assert harness.tree_digest(lab.pool.mountpoint(ds)) == harness.tree_digest(
        lab.pool.mountpoint(lab.pool.name + "/auto"))
    # And straight from the real S3 API.
    from_s3 = lab.restore(ds, "s2", target=lab.pool.name + "/s3copy", provider="s3")
    assert from_s3["provider"] == "s3"
    assert harness.tree_digest(lab.pool.mountpoint(ds)) == harness.tree_digest(
        lab.pool.mountpoint(lab.pool.name + "/s3copy"))


def test_one_failing_provider_does_not_stop_the_others(lab):
    ds = lab.pool.create("data")
    lab.config["providers"]["broken"] = {"remote": "nosuchremote:bucket", "retries": 1, "retry_delay": 0.01}
    fill(lab, ds, 9)
    lab.pool.snapshot(ds, "s1")
    result = lab.backup(ds, "s1", providers="all")
    assert result["failed_providers"] == ["broken"]
    assert result["providers"]["local"]["status"] == "uploaded"
    assert "broken" in result["providers"]["broken"]["message"]


def _chunk_files(remote: Path, ds: str, backup_dir: str) -> list:
    return sorted((remote / "testhost" / ds / backup_dir).glob("chunk-*"))


def test_corrupted_chunk_fails_restore_and_leaves_nothing(lab):
    ds = lab.pool.create("data")
    fill(lab, ds, 11, 1 << 20)
    lab.pool.snapshot(ds, "s1")
    lab.backup(ds, "s1")
    bdir = backup_dirs(lab.remotes["local"], ds)[0]
    victim = _chunk_files(lab.remotes["local"], ds, bdir)[3]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    target = lab.pool.name + "/corrupt"
    with pytest.raises(OffsiteError) as caught:
        lab.restore(ds, "s1", target=target)
    assert caught.value.code == "digest_mismatch", "the code offsite_status verify: digest reports for it"
    assert victim.name in caught.value.message
    assert not lab.pool.exists(target) and not lab.pool.exists(target + ".offsite-partial")


def test_a_corrupted_chunk_is_told_by_its_digest_whatever_the_spool(lab):
    ds = lab.pool.create("data")
    fill(lab, ds, 12, 1 << 20)
    lab.pool.snapshot(ds, "s1")
    lab.backup(ds, "s1")
    bdir = backup_dirs(lab.remotes["local"], ds)[0]
    victim = _chunk_files(lab.remotes["local"], ds, bdir)[2]
    data = bytearray(victim.read_bytes())
    data[200] ^= 0x01
    victim.write_bytes(bytes(data))
    target = lab.pool.name + "/stream"
    for spool in (True, False):  # spooled: checked before decryption; streamed: the whole object is hashed too
        with pytest.raises(OffsiteError) as caught:
            lab.restore(ds, "s1", target=target, spool=spool)
        assert caught.value.code == "digest_mismatch", caught.value.message
        assert "chunk-000002" in caught.value.message
        assert not lab.pool.exists(target) and not lab.pool.exists(target + ".offsite-partial")


def test_missing_chunk_is_named_before_anything_is_received(lab):
    ds = lab.pool.create("data")
    fill(lab, ds, 13)
    lab.pool.snapshot(ds, "s1")
    lab.backup(ds, "s1")
    bdir = backup_dirs(lab.remotes["local"], ds)[0]
    victim = _chunk_files(lab.remotes["local"], ds, bdir)[1]
    victim.unlink()
    with pytest.raises(OffsiteError) as caught:
        lab.restore(ds, "s1", target=lab.pool.name + "/missing")
    assert caught.value.code == "no_backup"
    assert victim.name in caught.value.message
    assert not lab.pool.exists(lab.pool.name + "/missing")


def test_wrong_identity_is_refused_before_receiving(lab, tmp_path):
    ds = lab.pool.create("data")
    fill(lab, ds, 14)
    lab.pool.snapshot(ds, "s1")
    lab.backup(ds, "s1")
    other = harness.AgeKey(tmp_path, "other")
    with pytest.raises(OffsiteError) as caught:
        lab.restore(ds, "s1", target=lab.pool.name + "/wrong", identity_file=str(other.path))
    assert caught.value.code == "wrong_key"
    assert not lab.pool.exists(lab.pool.name + "/wrong")


def test_unknown_provider_and_hostile_names_are_rejected_before_any_command(lab):
    ds = lab.pool.create("data")
    lab.pool.snapshot(ds, "s1")
    with pytest.raises(OffsiteError) as caught:
        lab.backup(ds, "s1", providers="nosuch")
    assert caught.value.code == "unknown_provider" and "nosuch" in caught.value.message
    for name in ("tank/data; rm -rf /", "-rf", "tank/../etc", "tank/da\nta", "tank/dätä", "x" * 300):
        with pytest.raises(OffsiteError) as caught:
            lab.backup(name, "s1")
        assert caught.value.code == "bad_name"


def test_passphrase_mode_round_trip(lab):
    ds = lab.pool.create("data")
    fill(lab, ds, 15)
    lab.pool.snapshot(ds, "s1")
    result = lab.backup(ds, "s1", recipients=[], passphrase="correct horse battery staple")
    assert result["providers"]["local"]["status"] == "uploaded"
    with pytest.raises(OffsiteError) as caught:
        lab.restore(ds, "s1", target=lab.pool.name + "/pp", passphrase="wrong")
    assert caught.value.code == "wrong_key"
    lab.restore(ds, "s1", target=lab.pool.name + "/pp", passphrase="correct horse battery staple")
    assert harness.tree_digest(lab.pool.mountpoint(ds)) == harness.tree_digest(
        lab.pool.mountpoint(lab.pool.name + "/pp"))


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_other_compressions(lab, compression):
    ds = lab.pool.create("data")
    fill(lab, ds, 16)
    lab.pool.snapshot(ds, "s1")
    lab.backup(ds, "s1", compression=compression)
    lab.restore(ds, "s1", target=lab.pool.name + "/c")
    assert harness.tree_digest(lab.pool.mountpoint(ds)) == harness.tree_digest(
        lab.pool.mountpoint(lab.pool.name + "/c"))


def test_streaming_mode_uses_no_spool(lab):
    ds = lab.pool.create("data")
    fill(lab, ds, 17)
    lab.pool.snapshot(ds, "s1")
    result = lab.backup(ds, "s1", spool=False)
    assert result["spool_bound_bytes"] == 0
    assert not (lab.tmp / "spool").exists() or not any((lab.tmp / "spool").iterdir())
    lab.restore(ds, "s1", target=lab.pool.name + "/st", spool=False)
    assert harness.tree_digest(lab.pool.mountpoint(ds)) == harness.tree_digest(
        lab.pool.mountpoint(lab.pool.name + "/st"))


def test_restore_refuses_to_overwrite_an_unrelated_dataset(lab):
    ds = lab.pool.create("data")
    fill(lab, ds, 18)
    lab.pool.snapshot(ds, "s1")
    lab.backup(ds, "s1")
    other = lab.pool.create("other")
    fill(lab, other, 19, name="keep.bin")
    before = harness.tree_digest(lab.pool.mountpoint(other))
    with pytest.raises(OffsiteError) as caught:
        lab.restore(ds, "s1", target=other)
    assert caught.value.code == "target_exists"
    assert harness.tree_digest(lab.pool.mountpoint(other)) == before


def _spawn_backup(lab, ds: str, snapshot: str, tmp: Path) -> subprocess.Popen:
    spec = {"operation": "backup", "config": lab.config, "dataset": ds,
            "params": {"parallel_uploads": 1}, "kwargs": {"snapshot": snapshot}}
    path = tmp / "spec.json"
    path.write_text(json.dumps(spec))
    return subprocess.Popen([sys.executable, str(Path(harness.__file__).parent / "child.py"), str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _journal_chunks(lab) -> int:
    total = 0
    for path in (lab.tmp / "state" / "journal").rglob("*.json"):
        try:
            total = max(total, len(json.loads(path.read_text()).get("chunks", {})))
        except ValueError:
            continue
    return total


def test_resume_after_kill_reuses_uploaded_chunks(lab, tmp_path):
    ds = lab.pool.create("data")
    fill(lab, ds, 20, 4 << 20)
    lab.pool.snapshot(ds, "s1")
    child = _spawn_backup(lab, ds, "s1", tmp_path)
    deadline = time.time() + 120
    while _journal_chunks(lab) < 8:
        assert child.poll() is None, "the backup ended before it could be interrupted"
        assert time.time() < deadline
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    bdir = backup_dirs(lab.remotes["local"], ds)
    assert len(bdir) == 1
    assert not (lab.remotes["local"] / "testhost" / ds / bdir[0] / "manifest.json").exists()
    result = lab.backup(ds, "s1")
    entry = result["providers"]["local"]
    assert entry["status"] == "resumed"
    assert entry["chunks_resumed"] >= 8
    lab.restore(ds, "s1", target=lab.pool.name + "/resumed")
    assert harness.tree_digest(lab.pool.mountpoint(ds)) == harness.tree_digest(
        lab.pool.mountpoint(lab.pool.name + "/resumed"))


def test_resume_with_a_changed_stream_starts_over(lab, tmp_path):
    ds = lab.pool.create("data")
    fill(lab, ds, 21, 2 << 20)
    lab.pool.snapshot(ds, "s1")
    child = _spawn_backup(lab, ds, "s1", tmp_path)
    deadline = time.time() + 120
    while _journal_chunks(lab) < 4:
        assert child.poll() is None
        assert time.time() < deadline
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    # Corrupt the journal's record of chunk 0: as if the stream had produced other bytes.
    journal = next((lab.tmp / "state" / "journal").rglob("*.json"))
    data = json.loads(journal.read_text())
    data["chunks"]["0"]["plain_mac"] = "0" * 64
    journal.write_text(json.dumps(data))
    result = lab.backup(ds, "s1")
    entry = result["providers"]["local"]
    assert entry["restarted"] is True
    assert any("started over" in note for note in entry["notes"])
    lab.restore(ds, "s1", target=lab.pool.name + "/over")
    assert harness.tree_digest(lab.pool.mountpoint(ds)) == harness.tree_digest(
        lab.pool.mountpoint(lab.pool.name + "/over"))


def test_progress_log_names_chunks(lab):
    ds = lab.pool.create("data")
    fill(lab, ds, 22)
    lab.pool.snapshot(ds, "s1")
    result = lab.backup(ds, "s1")
    text = Path(result["log_file"]).read_text()
    assert "Processing chunk 3 of ~" in text
    assert oct(os.stat(result["log_file"]).st_mode & 0o777) == "0o600"
