"""offsite_status on real pools and real rclone remotes (issue 3): every problem kind, produced for real."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import harness
import pytest

from ansible_collections.offsite.zfs.plugins.module_utils import progress
from ansible_collections.offsite.zfs.plugins.module_utils._wiring import status_report
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.keys import load_keys


def fill(lab, dataset: str, seed: int, size: int = 256 << 10, name: str = "data.bin") -> None:
    harness.write_data(lab.pool.mountpoint(dataset), seed, size, name)


def snap_and_backup(lab, ds: str, name: str, seed: int, size: int = 256 << 10) -> Dict[str, Any]:
    fill(lab, ds, seed, size, "file-%s.bin" % name)
    lab.pool.snapshot(ds, name)
    return lab.backup(ds, name)["providers"]["local"]


def bdir(lab, ds: str, backup_id: str) -> Path:
    return lab.remotes["local"] / "testhost" / ds / ("@" + backup_id)


def status(lab, keys: Any = None, **params: Any) -> Dict[str, Any]:
    return status_report(lab.config, params, keys=keys)


def codes(result: Dict[str, Any], dataset: Any = "*", code: Any = None) -> List[Dict[str, Any]]:
    return [p for p in result["problems"] if (dataset == "*" or p["dataset"] == dataset)
            and (code is None or p["code"] == code)]


def counting_rclone(lab, tmp_path: Path) -> Path:
    """A real rclone behind a wrapper that records each subcommand, to count remote calls."""
    log = tmp_path / "rclone-calls.log"
    wrapper = tmp_path / "rclone-counting"
    wrapper.write_text("#!/bin/sh\necho \"$1\" >> '%s'\nexec '%s' \"$@\"\n" % (log, lab.rclone))
    wrapper.chmod(0o700)
    lab.config["rclone"] = str(wrapper)
    return log


def test_healthy_chain_freshness_and_one_listing_per_provider(lab, tmp_path):
    ds = lab.pool.create("data")
    other = lab.pool.create("other")
    never = lab.pool.create("never")
    ids = [snap_and_backup(lab, ds, "s%d" % n, n)["backup_id"] for n in (1, 2, 3)]
    snap_and_backup(lab, other, "o1", 9)
    fill(lab, ds, 4, name="late.bin")
    lab.pool.snapshot(ds, "s4")
    lab.config["defaults"]["max_age"] = "0s"
    lab.config["datasets"] = {ds: {"max_age": "1d"}, other: {}, never: {}}
    log = counting_rclone(lab, tmp_path)

    result = status(lab)

    calls = log.read_text().split()
    assert sorted(calls) == ["copy", "lsjson"], "one listing and one manifest download per provider: %s" % calls
    assert result["changed"] is False and result["running"] == []
    entry = result["datasets"][ds]
    local = entry["providers"]["local"]
    assert [b["backup_id"] for b in local["backups"]] == sorted(ids)
    by_snap = {b["snapshot"]: b for b in local["backups"]}
    assert [by_snap[s]["kind"] for s in ("s1", "s2", "s3")] == ["full", "incremental", "incremental"]
    assert by_snap["s3"]["base"] == "s2" and by_snap["s3"]["chain_length"] == 3
    assert all(b["complete"] and b["restorable"] and b["chunks"] >= 1 for b in local["backups"])
    assert all(b["stream_bytes"] > 0 and b["stored_bytes"] > 0 for b in local["backups"])
    assert entry["latest"]["snapshot"] == "s3" and entry["chain_length"] == 3
    assert 0 <= entry["age_seconds"] < 3600
    on_disk = sum(p.stat().st_size for p in (lab.remotes["local"] / "testhost" / ds).rglob("*") if p.is_file())
    assert entry["stored_bytes"] == local["stored_bytes"] == on_disk
    assert entry["not_backed_up"] == {"local": ["s4"]}
    assert [p["code"] for p in entry["problems"]] == ["not_backed_up"]
    assert entry["health"] == "warning"
    # defaults.max_age 0s applies to `other`; `data` has its own 1d objective.
    stale = codes(result, other, "stale")
    assert len(stale) == 1 and stale[0]["severity"] == "critical" and stale[0]["provider"] == "local"
    assert result["datasets"][other]["health"] == "critical"
    missing = codes(result, never, "no_backup")
    assert len(missing) == 1 and missing[0]["severity"] == "critical"
    assert result["datasets"][never]["configured"] is True and result["datasets"][never]["local"] is True
    assert result["health"] == "critical"
    assert result["summary"]["datasets_by_health"] == {"ok": 0, "warning": 1, "critical": 2}

    # A max_age parameter overrides the config file: now `data` is stale too.
    again = status(lab, max_age="0s", datasets=[ds])
    assert list(again["datasets"]) == [ds]
    assert [p["severity"] for p in codes(again, ds, "stale")] == ["critical"]
    with pytest.raises(OffsiteError) as caught:
        status(lab, max_age="soon")
    assert caught.value.code == "bad_value" and "max_age" in caught.value.message


def test_every_damage_kind_is_reported_with_its_code(lab):
    chain = lab.pool.create("chain")
    ids = [snap_and_backup(lab, chain, "s%d" % n, 20 + n)["backup_id"] for n in (1, 2, 3)]
    broken = lab.pool.create("broken")
    b_id = snap_and_backup(lab, broken, "b1", 30, 1 << 20)["backup_id"]
    badman = lab.pool.create("badman")
    m_id = snap_and_backup(lab, badman, "m1", 31)["backup_id"]
    flipped = lab.pool.create("flipped")
    f_id = snap_and_backup(lab, flipped, "f1", 32)["backup_id"]

    # chain: the middle manifest deleted -> an incomplete upload, and s3 loses its base.
    (bdir(lab, chain, ids[1]) / "manifest.json").unlink()
    # broken: one chunk deleted, one truncated, one unreferenced object added.
    chunks = sorted(bdir(lab, broken, b_id).glob("chunk-*"))
    chunks[1].unlink()
    with open(chunks[2], "r+b") as handle:
        handle.truncate(100)
    (bdir(lab, broken, b_id) / "leftover.tmp").write_bytes(b"x" * 10)
    # badman: a manifest that is not JSON.
    (bdir(lab, badman, m_id) / "manifest.json").write_text("{not json")
    # flipped: one byte flipped, same size (only a digest check can see it).
    victim = sorted(bdir(lab, flipped, f_id).glob("chunk-*"))[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    # Strays outside any backup directory: below a dataset, and at the namespace root.
    (lab.remotes["local"] / "testhost" / chain / "stray.txt").write_text("stray")
    (lab.remotes["local"] / "testhost" / "rootjunk.bin").write_bytes(b"junk")

    result = status(lab)

    incomplete = codes(result, chain, "incomplete_upload")
    assert len(incomplete) == 1 and incomplete[0]["backup"] == ids[1]
    assert incomplete[0]["severity"] == "warning" and incomplete[0]["running"] is False
    assert 0 <= incomplete[0]["age_seconds"] < 3600 and incomplete[0]["objects"] >= 1
    broken_chain = codes(result, chain, "broken_chain")
    assert len(broken_chain) == 1 and broken_chain[0]["backup"] == ids[2]
    assert broken_chain[0]["severity"] == "critical", "it is the newest backup's chain"
    chain_entry = result["datasets"][chain]
    assert chain_entry["latest"]["snapshot"] == "s1" and chain_entry["chain_length"] == 1
    assert chain_entry["health"] == "critical"
    stray = [p for p in codes(result, chain, "orphan_object") if p["backup"] is None]
    assert len(stray) == 1 and stray[0]["objects"] == ["%s/stray.txt" % chain]

    missing = codes(result, broken, "chunk_missing")
    assert len(missing) == 1 and missing[0]["objects"] == [chunks[1].name] and missing[0]["backup"] == b_id
    wrong = codes(result, broken, "size_mismatch")
    assert len(wrong) == 1 and wrong[0]["objects"] == [chunks[2].name]
    orphan = codes(result, broken, "orphan_object")
    assert len(orphan) == 1 and orphan[0]["objects"] == ["leftover.tmp"] and orphan[0]["bytes"] == 10
    assert codes(result, broken, "no_backup")[0]["severity"] == "critical"
    assert result["datasets"][broken]["providers"]["local"]["backups"][0]["restorable"] is False
    assert result["datasets"][broken]["latest"] is None

    bad = codes(result, badman, "bad_manifest")
    assert len(bad) == 1 and bad[0]["backup"] == m_id and "not a valid" in bad[0]["message"]

    assert codes(result, flipped) == [], "a flipped byte is invisible to a listing"
    host = [p for p in result["host_problems"] if p["code"] == "orphan_object"]
    assert len(host) == 1 and host[0]["objects"] == ["rootjunk.bin"] and host[0]["dataset"] is None
    assert result["health"] == "critical"
    for entry in result["problems"]:
        assert set(entry) >= {"code", "severity", "dataset", "provider", "backup", "message"}
        assert entry["message"].endswith(".")

    # verify=objects reports what the listing shows; verify=digest downloads and finds the flipped byte.
    objects = status(lab, verify="objects", datasets=[flipped])
    assert codes(objects, flipped) == []
    digest = status(lab, verify="digest", datasets=[flipped, broken])
    found = codes(digest, flipped, "digest_mismatch")
    assert len(found) == 1 and found[0]["object"] == victim.name and found[0]["chunk"] == 0
    assert found[0]["severity"] == "critical"
    assert digest["datasets"][flipped]["latest"] is None, "a backup with a bad chunk is not restorable"
    entry = digest["datasets"][flipped]["providers"]["local"]["backups"][0]
    assert entry["verified"] == "digest" and entry["verify_failures"] == 1
    assert not codes(digest, broken, "digest_mismatch"), "missing and truncated chunks are not downloaded"


def test_verify_decrypt_checks_keys_macs_and_plaintext(lab, tmp_path):
    ds = lab.pool.create("data")
    first = snap_and_backup(lab, ds, "s1", 40)["backup_id"]
    second = snap_and_backup(lab, ds, "s2", 41)["backup_id"]
    pp = lab.pool.create("pp")  # and a passphrase-mode backup
    fill(lab, pp, 42)
    lab.pool.snapshot(pp, "p1")
    lab.backup(pp, "p1", recipients=[], passphrase="correct horse")
    everything_before = harness.run(["zfs", "list", "-H", "-o", "name", "-t", "all", "-r", lab.pool.name]).stdout
    keys = load_keys(None, str(lab.key.path), None)

    good = status(lab, keys=keys, verify="decrypt", datasets=[ds])
    assert good["problems"] == [] and good["health"] == "ok"
    assert all(b["verified"] == "decrypt" and b["verify_failures"] == 0
               for b in good["datasets"][ds]["providers"]["local"]["backups"])

    wrong = status(lab, keys=load_keys(None, str(harness.AgeKey(tmp_path, "other").path), None), verify="decrypt",
                   datasets=[ds])
    failed = codes(wrong, ds, "decrypt_failed")
    assert sorted(p["backup"] for p in failed) == sorted([first, second])
    assert wrong["datasets"][ds]["health"] == "critical"

    with pytest.raises(OffsiteError) as caught:
        status(lab, verify="decrypt")
    assert caught.value.code == "no_keys"

    # The passphrase-mode backup: the passphrase opens it, the identity alone does not.
    both = status(lab, keys=load_keys(None, str(lab.key.path), "correct horse"), verify="decrypt")
    assert both["problems"] == [] and both["datasets"][pp]["providers"]["local"]["backups"][0]["verified"] == "decrypt"
    only_key = codes(status(lab, keys=keys, verify="decrypt", datasets=[pp]), pp)
    assert sorted(p["code"] for p in only_key) == ["decrypt_failed", "no_backup"], "not restorable with these keys"
    assert "passphrase" in codes({"problems": only_key}, pp, "decrypt_failed")[0]["message"]

    # An edited manifest still parses, but its MAC no longer matches: only the key (and, without a key, this
    # host's ledger of the manifests it wrote) can tell.
    path = bdir(lab, ds, second) / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["host"] = "somewhere-else"
    path.write_text(json.dumps(manifest))
    assert [p["code"] for p in codes(status(lab, verify="digest", datasets=[ds]), ds)] == ["manifest_changed"]
    tampered = codes(status(lab, keys=keys, verify="decrypt", datasets=[ds]), ds, "mac_mismatch")
    assert len(tampered) == 1 and tampered[0]["backup"] == second and tampered[0]["severity"] == "critical"

    everything_after = harness.run(["zfs", "list", "-H", "-o", "name", "-t", "all", "-r", lab.pool.name]).stdout
    assert everything_after == everything_before and "%s@s2" % ds in everything_after, "nothing was received"


def _journal_chunks(lab) -> int:
    total = 0
    for path in (lab.tmp / "state" / "journal").rglob("*.json"):
        try:
            total = max(total, len(json.loads(path.read_text()).get("chunks", {})))
        except ValueError:
            continue
    return total


def test_running_backup_then_killed_backup(lab, tmp_path):
    ds = lab.pool.create("data")
    fill(lab, ds, 50, 4 << 20)
    lab.pool.snapshot(ds, "s1")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"operation": "backup", "config": lab.config, "dataset": ds,
                                "params": {"parallel_uploads": 1}, "kwargs": {"snapshot": "s1"}}))
    child = subprocess.Popen([sys.executable, str(Path(harness.__file__).parent / "child.py"), str(spec)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        # Until chunks are uploaded and the progress state (written at most every 0.5 s) shows them.
        while _journal_chunks(lab) < 4 or not any(
                (state.get("chunk") or 0) >= 1 for state in progress.running_states(str(lab.tmp / "state"))):
            assert child.poll() is None, "the backup ended before it could be observed"
            assert time.time() < deadline
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGSTOP)  # hold it mid-run, alive, with its lock

        during = status(lab)
        running = [r for r in during["running"] if r["pid"] == child.pid]
        assert len(running) == 1
        op = running[0]
        assert op["operation"] == "backup" and op["dataset"] == ds and op["provider"] == "local"
        assert op["chunk"] >= 1 and op["chunks_estimated"] >= op["chunk"] and op["bytes"] > 0
        assert op["started"] and "backup of %s to local" % ds in op["message"]
        upload = codes(during, ds, "incomplete_upload")
        assert len(upload) == 1 and upload[0]["severity"] == "info" and upload[0]["running"] is True

        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        after = status(lab)
        assert after["running"] == []
        upload = codes(after, ds, "incomplete_upload")
        assert len(upload) == 1 and upload[0]["severity"] == "warning" and upload[0]["running"] is False
        assert upload[0]["age_seconds"] is not None and upload[0]["age_seconds"] >= 0
        assert after["datasets"][ds]["not_backed_up"] == {"local": ["s1"]}
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()


def test_namespace_reports_another_hosts_backups(lab):
    ds = lab.pool.create("data")
    snap_and_backup(lab, ds, "s1", 60)
    lab.config["namespace"] = "otherhost"
    lab.config["datasets"] = {lab.pool.name + "/mine": {}}
    own = status(lab)
    assert sorted(own["datasets"]) == [ds, lab.pool.name + "/mine"] and own["namespace"] == "otherhost"
    assert [p["code"] for p in own["datasets"][ds]["problems"]] == ["nothing_offsite"], \
        "in otherhost's view, data has snapshots and nothing offsite"
    theirs = status(lab, namespace="testhost")
    assert theirs["namespace"] == "testhost"
    assert list(theirs["datasets"]) == [ds], "another host's namespace: this host's config says nothing about it"
    entry = theirs["datasets"][ds]
    assert entry["latest"]["snapshot"] == "s1" and entry["health"] == "ok"
    assert entry["not_backed_up"] is None and entry["local"] is None


def test_a_provider_that_cannot_be_listed_is_critical_and_the_others_still_report(lab):
    ds = lab.pool.create("data")
    snap_and_backup(lab, ds, "s1", 70)
    lab.config["providers"]["broken"] = {"remote": "nosuchremote:bucket", "retries": 0, "retry_delay": 0.01}
    result = status(lab)
    failed = [p for p in result["host_problems"] if p["code"] == "provider_failed"]
    assert len(failed) == 1 and failed[0]["provider"] == "broken" and failed[0]["severity"] == "critical"
    assert result["providers"]["broken"]["listed"] is False and result["providers"]["local"]["listed"] is True
    assert result["datasets"][ds]["latest"]["snapshot"] == "s1" and result["datasets"][ds]["health"] == "ok"
    assert result["health"] == "critical" and result["msg"].startswith("testhost: critical: Provider broken")
