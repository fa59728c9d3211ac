"""One zfs send fans out to every provider (issue 15), on real pools and real remotes (local, rclone's S3).

zfs runs through faulty_rclone's wrapper (name="zfs", no rules: it records and delegates to the real
zfs), so the tests count the sends. Budget: about 2 minutes for the file on this (shared, loaded) machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import harness
from faulty_rclone import Rule, Wrapper
from reliability import same_tree

from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.converge import converge_dataset
from ansible_collections.offsite.zfs.plugins.module_utils.ops.status import collect


def _source(lab, seed: int, size: int = 2 << 20) -> str:
    ds = lab.pool.create("data")
    harness.write_data(lab.pool.mountpoint(ds), seed, size)
    lab.pool.snapshot(ds, "s1")
    return ds


def _count_sends(lab) -> Wrapper:
    wrapper = Wrapper.create(lab.tmp / "zbin", shutil.which("zfs"), [], name="zfs")
    lab.config["zfs"] = str(wrapper.path)
    return wrapper


def _sends(wrapper: Wrapper) -> int:
    """Real sends: not the usage probe (no snapshot) and not the size estimate (-n)."""
    return sum(1 for c in wrapper.calls() if c["argv"][:1] == ["send"] and "-n" not in c["argv"]
               and any("@" in a for a in c["argv"]))


def _wrap_rclone(lab, rules) -> Wrapper:
    wrapper = Wrapper.create(lab.tmp / "bin", lab.rclone, rules)
    lab.config["rclone"] = str(wrapper.path)
    return wrapper


def _journal(lab, provider: str) -> int:
    most = 0
    for path in (lab.tmp / "state" / "journal" / provider).rglob("*.json"):
        try:
            most = max(most, len(json.loads(path.read_text()).get("chunks", {})))
        except (OSError, ValueError):
            continue
    return most


def _bdir(remote: Path, ds: str) -> str:
    found = sorted(p.name for p in (remote / "testhost" / ds).iterdir())
    assert len(found) == 1, found
    return found[0]


def test_one_send_feeds_local_and_s3_with_identical_manifests(lab, s3):
    lab.add_s3(s3)
    ds = _source(lab, 301)
    zfs = _count_sends(lab)
    result = lab.backup(ds, "s1", providers="all")
    local, other = result["providers"]["local"], result["providers"]["s3"]
    assert local["status"] == other["status"] == "uploaded", result
    assert _sends(zfs) == 1 == result["zfs_sends"], "one zfs send for both providers"
    bdir = _bdir(lab.remotes["local"], ds)
    on_local = (lab.remotes["local"] / "testhost" / ds / bdir / "manifest.json").read_bytes()
    remote = lab.config["providers"]["s3"]["remote"]
    on_s3 = subprocess.run([lab.rclone, "cat", "%s/testhost/%s/%s/manifest.json" % (remote, ds, bdir)],
                           env=dict(os.environ, **s3.env("S3TS3")), stdout=subprocess.PIPE, check=True).stdout
    assert on_local == on_s3, "the same manifest: same id, chunk objects, digests, sealed key"
    assert hashlib.sha256(on_local).hexdigest() == local["manifest_sha256"] == other["manifest_sha256"]
    log = Path(result["log_file"]).read_text()
    assert "provider s3: chunk 2 uploaded" in log and "provider local: chunk 2 uploaded" in log
    assert "Processing chunk 3 of ~" in log
    lab.restore(ds, "s1", target=lab.pool.name + "/from-s3", provider="s3")
    assert same_tree(lab, ds, lab.pool.name + "/from-s3")


def test_each_provider_resumes_its_own_chunks_after_kill9(lab, tmp_path):
    lab.add_local("mirror")
    ds = _source(lab, 302, 4 << 20)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"operation": "backup", "config": lab.config, "dataset": ds,
                                "params": {"providers": "all", "parallel_uploads": 1},
                                "kwargs": {"snapshot": "s1"}}))
    child = subprocess.Popen([sys.executable, str(Path(harness.__file__).parent / "child.py"), str(spec)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while _journal(lab, "local") < 4 or _journal(lab, "mirror") < 4:
        assert child.poll() is None, "the backup ended before it could be interrupted"
        assert time.time() < deadline
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.communicate()
    held = {name: _journal(lab, name) for name in ("local", "mirror")}
    zfs = _count_sends(lab)
    result = lab.backup(ds, "s1", providers="all")
    assert _sends(zfs) == 1, "the rerun reads the stream once for both"
    for name in ("local", "mirror"):
        entry = result["providers"][name]
        assert entry["status"] == "resumed", entry
        assert entry["chunks_resumed"] >= min(held[name], 4) - 1, (entry, held)
        lab.restore(ds, "s1", target="%s/%s" % (lab.pool.name, name), provider=name)
        assert same_tree(lab, ds, "%s/%s" % (lab.pool.name, name))


def test_a_provider_failing_mid_run_fails_alone_and_resumes_next_run(lab):
    flaky = lab.add_local("flaky", retries=1)
    ds = _source(lab, 303)
    wrapper = _wrap_rclone(lab, [Rule(verbs=["copyto"], action="fail", match=str(flaky), after=4)])
    zfs = _count_sends(lab)
    result = lab.backup(ds, "s1", providers="all")
    assert result["failed_providers"] == ["flaky"], result
    assert result["providers"]["local"]["status"] == "uploaded"
    bad = result["providers"]["flaky"]
    assert bad["status"] == "failed" and bad["error_code"] == "provider_failed", bad
    assert "Provider flaky could not upload" in bad["message"] and "fault injection" in bad["message"]
    assert _sends(zfs) == 1
    assert wrapper.faults(), "the fault fired"
    wrapper.set_rules([])
    again = lab.backup(ds, "s1", providers="all")
    assert again["providers"]["local"]["status"] == "present"
    assert again["providers"]["flaky"]["status"] == "resumed", again
    assert again["providers"]["flaky"]["chunks_resumed"] >= 3
    assert _sends(zfs) == 2, "the catch-up read the stream for flaky alone"
    lab.restore(ds, "s1", target=lab.pool.name + "/copy", provider="flaky")
    assert same_tree(lab, ds, lab.pool.name + "/copy")


def test_a_provider_past_the_spool_bound_is_deferred_and_caught_up(lab):
    slow = lab.add_local("slow", parallel_uploads=1)
    ds = _source(lab, 304)
    gate = lab.tmp / "gate"
    _wrap_rclone(lab, [Rule(verbs=["copyto"], action="gate", gate=str(gate), match=str(slow), after=1)])
    zfs = _count_sends(lab)
    box = {}
    runner = threading.Thread(target=lambda: box.update(lab.backup(ds, "s1", providers="all")))
    runner.start()
    try:
        deadline = time.time() + 120
        while not list(lab.remotes["local"].rglob("manifest.json")):  # local finishes while slow is stuck
            assert runner.is_alive() and time.time() < deadline
            time.sleep(0.02)
        running = collect.running_operations(str(lab.tmp / "state"))
        assert running and set(running[0]["providers"]) == {"local", "slow"}, running
        assert "slow chunk" in running[0]["message"], running[0]["message"]
    finally:
        gate.touch()
        runner.join(120)
    result = box
    assert result["providers"]["local"]["status"] == "uploaded", result
    slow_entry = result["providers"]["slow"]
    assert slow_entry["status"] == "deferred" and slow_entry["error_code"] == "provider_deferred", slow_entry
    assert "past the spool bound of 4 chunks" in slow_entry["message"], slow_entry["message"]
    assert "slow" in result["failed_providers"]
    assert not list(slow.rglob("manifest.json"))
    assert not list((lab.tmp / "spool").rglob("chunk-*")), "the spool is cleaned"
    again = lab.backup(ds, "s1", providers="all")
    assert again["providers"]["local"]["status"] == "present"
    assert again["providers"]["slow"]["status"] == "resumed", again
    assert _sends(zfs) == 2
    lab.restore(ds, "s1", target=lab.pool.name + "/copy", provider="slow")
    assert same_tree(lab, ds, lab.pool.name + "/copy")


def test_streaming_fan_out_retries_a_broken_provider_alone(lab):
    flaky = lab.add_local("flaky")
    ds = _source(lab, 305, 1 << 20)
    wrapper = _wrap_rclone(lab, [Rule(verbs=["rcat"], action="reset", match=str(flaky), after=3, count=1,
                                      bytes=20000)])
    zfs = _count_sends(lab)
    result = lab.backup(ds, "s1", providers="all", spool=False)
    assert result["spool_bound_bytes"] == 0
    assert result["providers"]["local"]["status"] == "uploaded", result
    entry = result["providers"]["flaky"]
    assert entry["status"] == "resumed" and entry["chunks_resumed"] >= 3, entry
    assert any("stream upload failed" in line for line in entry["retries"]), entry
    assert len(wrapper.faults()) == 1
    assert _sends(zfs) == 2, "one shared send, then one for the broken provider alone"
    for name in ("local", "flaky"):
        lab.restore(ds, "s1", target="%s/%s" % (lab.pool.name, name), provider=name)
        assert same_tree(lab, ds, "%s/%s" % (lab.pool.name, name))


def test_policy_convergence_fans_out_too(lab):
    lab.add_local("second")
    ds = lab.pool.create("data")
    harness.write_data(lab.pool.mountpoint(ds), 306, 512 << 10)
    lab.config["datasets"] = {ds: {"every": "1d", "full_every": "30d"}}
    zfs = _count_sends(lab)
    first = converge_dataset(lab.settings(ds), now=time.time())
    assert {p: e["status"] for p, e in first["providers"].items()} == {"local": "uploaded", "second": "uploaded"}
    assert list(first["providers"]) == ["local", "second"] and first["failed_providers"] == []
    assert _sends(zfs) == 1, "the scheduled path shares one send as well"
    assert first["providers"]["local"]["manifest_sha256"] == first["providers"]["second"]["manifest_sha256"]
