"""Faults on real pools and real rclone (issue 5): flaky, broken and slow remotes, full disks.

Remote faults come from tests/functional/faulty_rclone.py, used as the providers' rclone
binary: it delegates to the real rclone and injects failures deterministically.
"""

from __future__ import annotations

import json
import re

import harness
import pytest
from faulty_rclone import UPLOAD_VERBS, Rule, Wrapper
from reliability import journal_chunks, manifests, one_sentence, random_file, same_tree

from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError


def _source(lab, seed: int, size: int = 1 << 20) -> str:
    ds = lab.pool.create("data")
    harness.write_data(lab.pool.mountpoint(ds), seed, size)
    lab.pool.snapshot(ds, "s1")
    return ds


def _wrap(lab, rules) -> Wrapper:
    wrapper = Wrapper.create(lab.tmp / "bin", lab.rclone, rules)
    lab.config["rclone"] = str(wrapper.path)
    return wrapper


def _uploads(wrapper: Wrapper) -> list:
    return [c for c in wrapper.calls() if c["argv"][0] in UPLOAD_VERBS]


def test_every_third_upload_fails_and_the_backup_completes(lab):
    ds = _source(lab, 101, 640 << 10)
    wrapper = _wrap(lab, [Rule(verbs=UPLOAD_VERBS, every=3, action="fail")])
    result = lab.backup(ds, "s1", parallel_uploads=2)
    entry = result["providers"]["local"]
    assert entry["status"] == "uploaded", entry
    uploads = _uploads(wrapper)
    failed = [c for c in uploads if c["fault"]]
    assert len(failed) == len(uploads) // 3 and len(failed) >= 3
    assert len(entry["retries"]) == len(failed), "every failure was retried with backoff"
    # (a retried call is itself an upload call, so now and then a retry fails too: "retry 2 in ...")
    assert all(re.search(r"^upload of \S+ failed .*; retry [12] in [0-9.]+s$", line) for line in entry["retries"])
    lab.restore(ds, "s1", target=lab.pool.name + "/copy")
    assert same_tree(lab, ds, lab.pool.name + "/copy")


def test_exponential_backoff_between_repeated_failures(lab):
    ds = _source(lab, 102, 256 << 10)
    # The first upload fails three times in a row, then everything works.
    wrapper = _wrap(lab, [Rule(verbs=UPLOAD_VERBS, every=1, count=3, action="fail")])
    lab.config["providers"]["local"]["retry_delay"] = 0.1
    entry = lab.backup(ds, "s1", parallel_uploads=1)["providers"]["local"]
    assert entry["status"] == "uploaded"
    delays = [float(line.rsplit(" in ", 1)[1].rstrip("s")) for line in entry["retries"]]
    assert len(delays) == 3 == len(wrapper.faults())
    # 0.1 * 2**n with +-25% jitter: 0.075-0.125, 0.15-0.25, 0.3-0.5
    for attempt, delay in enumerate(delays):
        assert 0.1 * 2 ** attempt * 0.74 <= delay <= 0.1 * 2 ** attempt * 1.26, delays


@pytest.mark.parametrize("spool", [True, False], ids=["spool", "streaming"])
def test_connection_reset_mid_chunk_is_retried(lab, spool):
    ds = _source(lab, 103, 640 << 10)
    wrapper = _wrap(lab, [Rule(verbs=UPLOAD_VERBS, every=4, action="reset", bytes=20000)])
    entry = lab.backup(ds, "s1", spool=spool)["providers"]["local"]
    assert entry["status"] in ("uploaded", "resumed"), entry
    assert len(wrapper.faults()) >= 2, "resets were injected"
    assert entry["retries"], "the resets were retried"
    # The partial objects the resets left were overwritten: the manifest's sizes match.
    target = lab.pool.name + "/copy"
    lab.restore(ds, "s1", target=target)
    assert same_tree(lab, ds, target)


def test_slow_remote_completes(lab):
    ds = _source(lab, 104, 384 << 10)
    wrapper = _wrap(lab, [Rule(verbs=UPLOAD_VERBS + ["lsjson", "copy", "cat"], every=1, action="slow",
                               delay=0.1)])
    entry = lab.backup(ds, "s1", spool=False)["providers"]["local"]
    assert entry["status"] == "uploaded"
    assert len(wrapper.faults()) == len(wrapper.calls()) > entry["chunks"]
    target = lab.pool.name + "/copy"
    lab.restore(ds, "s1", target=target)
    assert same_tree(lab, ds, target)


def test_remote_failing_for_good_fails_that_provider_and_stays_resumable(lab):
    ds = _source(lab, 105, 768 << 10)
    flaky = lab.add_local("flaky", retries=2, parallel_uploads=1)
    wrapper = _wrap(lab, [Rule(verbs=UPLOAD_VERBS, match=str(flaky), after=5, every=1, action="fail")])
    result = lab.backup(ds, "s1", providers="all")
    assert result["failed_providers"] == ["flaky"], result["msg"]
    assert result["providers"]["local"]["status"] == "uploaded", "the other provider is not affected"
    entry = result["providers"]["flaky"]
    assert entry["status"] == "failed" and entry["error_code"] == "provider_failed"
    assert ds in entry["message"] and "flaky" in entry["message"] and "after 3 attempts" in entry["message"]
    assert manifests(flaky) == [], "nothing looks complete on the failing provider"
    assert journal_chunks(lab.tmp / "state") == 5
    # The remote comes back: the rerun reuses the five uploaded chunks.
    wrapper.set_rules([])
    again = lab.backup(ds, "s1", providers="flaky")
    entry = again["providers"]["flaky"]
    assert entry["status"] == "resumed" and entry["chunks_resumed"] == 5, entry
    target = lab.pool.name + "/copy"
    lab.restore(ds, "s1", target=target, provider="flaky")
    assert same_tree(lab, ds, target)


def test_spool_directory_full_fails_clearly_and_marks_nothing_complete(lab):
    ds = lab.pool.create("data")
    random_file(lab.pool.mountpoint(ds), 106, 1 << 20)
    lab.pool.snapshot(ds, "s1")
    spool_ds = lab.pool.create("spool", "-o", "quota=256K")
    spool_dir = str(lab.pool.mountpoint(spool_ds))
    lab.config["defaults"]["spool"] = {"dir": spool_dir}
    result = lab.backup(ds, "s1", chunk_size="512KiB")
    entry = result["providers"]["local"]
    assert result["failed_providers"] == ["local"]
    assert entry["error_code"] == "spool_failed"
    assert spool_dir in entry["message"] and "free space" in entry["message"] and ds + "@s1" in entry["message"]
    assert one_sentence(entry["message"])
    assert manifests(lab.remotes["local"]) == []
    assert journal_chunks(lab.tmp / "state") == 0
    assert not any(lab.pool.mountpoint(spool_ds).rglob("chunk-*")), "the spool was cleaned up"
    # With room to spool, the same backup goes through.
    lab.config["defaults"]["spool"] = {"dir": str(lab.tmp / "spool")}
    assert lab.backup(ds, "s1", chunk_size="512KiB")["providers"]["local"]["status"] == "uploaded"


def test_pool_full_on_receive_fails_clearly_and_leaves_the_target_untouched(lab):
    ds = lab.pool.create("data")
    harness.write_data(lab.pool.mountpoint(ds), 107, 128 << 10, "small.bin")
    lab.pool.snapshot(ds, "s1")
    random_file(lab.pool.mountpoint(ds), 108, 3 << 20)
    lab.pool.snapshot(ds, "s2")
    assert lab.backup(ds, "s1")["providers"]["local"]["status"] == "uploaded"
    assert lab.backup(ds, "s2")["providers"]["local"]["kind"] == "incremental"
    small = lab.pool.create("small", "-o", "quota=1M")
    # A new target: nothing is left under its name or the staging name.
    fresh = small + "/fresh"
    with pytest.raises(OffsiteError) as caught:
        lab.restore(ds, "s2", target=fresh)
    assert caught.value.code == "receive_failed", caught.value.message
    assert fresh in caught.value.message and one_sentence(caught.value.message)
    assert not lab.pool.exists(fresh) and not lab.pool.exists(fresh + ".offsite-partial")
    # An existing target that holds s1: the failed incremental leaves it as it was.
    target = small + "/copy"
    lab.restore(ds, "s1", target=target)
    before = harness.tree_digest(lab.pool.mountpoint(target))
    with pytest.raises(OffsiteError) as caught:
        lab.restore(ds, "s2", target=target)
    assert caught.value.code == "receive_failed" and target in caught.value.message
    assert lab.pool.snapshots(target) == ["s1"]
    assert harness.tree_digest(lab.pool.mountpoint(target)) == before


def test_fault_wrapper_records_every_call(lab):
    """The wrapper itself: it delegates to real rclone and logs argv (used by the hostile-input tests)."""
    wrapper = _wrap(lab, [])
    ds = _source(lab, 109, 128 << 10)
    lab.backup(ds, "s1")
    verbs = [c["argv"][0] for c in wrapper.calls()]
    assert "lsjson" in verbs and "copyto" in verbs and "rcat" in verbs
    assert not wrapper.faults()
    assert json.loads(manifests(lab.remotes["local"])[0].read_text())["dataset"] == ds
