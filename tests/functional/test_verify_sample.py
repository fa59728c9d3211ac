"""Sampled verification over time (issue 18): full coverage in ceil(100/p) runs, and a corrupted chunk found."""

from __future__ import annotations

import math

from reliability import random_file

from ansible_collections.offsite.zfs.plugins.module_utils._wiring import status_report


def status(lab, ds, sample="25%"):
    return status_report(lab.config, {"verify": "digest", "sample": sample, "datasets": [ds]})


def test_sampled_digest_verify_covers_every_chunk_and_finds_a_corrupted_one(lab):
    ds = lab.pool.create("data")
    random_file(lab.pool.mountpoint(ds), 9, 600 << 10)
    lab.pool.snapshot(ds, "s1")
    lab.backup(ds, "s1", compression="none")
    lab.config["datasets"] = {ds: {"verify_coverage": "1d"}}
    chunks = sorted((lab.remotes["local"] / "testhost" / ds).glob("*/chunk-*"))
    assert len(chunks) >= 8
    runs = math.ceil(100 / 25)
    checked = []
    for run in range(runs):
        report = status(lab, ds)
        coverage = report["datasets"][ds]["coverage"]["local"]
        checked.append(report["sampled"]["checked"])
        assert report["sampled"]["chunks"] == len(chunks) and report["sampled"]["runs_for_full_coverage"] == runs
        codes = [p["code"] for p in report["datasets"][ds]["problems"]]
        if run < runs - 1:
            assert coverage["never_verified"] > 0 and codes == ["coverage_low"], (run, coverage, codes)
    assert sum(checked) >= len(chunks) and all(c == math.ceil(len(chunks) / 4) for c in checked)
    assert coverage["never_verified"] == 0 and coverage["verified"] == len(chunks), coverage
    assert coverage["text"].startswith("every chunk verified in the last")
    assert report["datasets"][ds]["problems"] == [] and report["datasets"][ds]["health"] == "ok"

    victim = chunks[len(chunks) // 2]
    data = bytearray(victim.read_bytes())
    data[10] ^= 0x01
    victim.write_bytes(bytes(data))
    seen = []
    for _run in range(runs):
        report = status(lab, ds)
        found = [p for p in report["datasets"][ds]["problems"] if p["code"] == "digest_mismatch"]
        seen.append(bool(found))
        if found:
            assert found[0]["object"] == victim.name and found[0]["sampled"] is True
            assert report["datasets"][ds]["health"] == "critical"
    assert any(seen), "found within %d runs" % runs
    assert all(seen[seen.index(True):]), "and reported again by every later run until it is fixed"
    assert report["datasets"][ds]["coverage"]["local"]["never_verified"] == 1, "the bad chunk is not covered"
    assert "coverage_low" in [p["code"] for p in report["datasets"][ds]["problems"]]

    budget = status(lab, ds, sample="128KiB")["sampled"]
    assert budget["checked_bytes"] <= 128 << 10 and budget["checked"] >= 1
