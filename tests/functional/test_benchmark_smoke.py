"""Smoke run of the benchmark (benchmarks/bench.py --quick): it works end to end, on a few MiB.

Nothing here is timed: the benchmark's numbers are for docs/benchmarks.md, not for CI.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import harness

BENCH = harness.ROOT / "benchmarks" / "bench.py"


def test_benchmark_quick_mode_measures_every_variant(tmp_path: Path, zfs_daemon: harness.ZfsDaemon) -> None:
    out = tmp_path / "results.json"
    doc = tmp_path / "bench.md"
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--providers", "local", "--skip-ansible",
                           "--workdir", str(tmp_path), "--json", str(out), "--doc", str(doc)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())
    seen = {(r["op"], r["variant"]) for r in rows}
    for op in ("backup", "restore"):
        for variant in ("A", "B bash", "C raw"):
            assert (op, variant) in seen, (op, variant)
    assert ("send", "zfs send") in seen
    if shutil.which("restic"):  # scripts/bootstrap.sh installs it; the peer of issue 15
        assert ("backup", "R restic") in seen and ("restore", "R restic") in seen
    backups = {r["variant"]: r for r in rows if r["op"] == "backup"}
    assert backups["A"]["bytes"] > 4 << 20
    assert 0 < backups["A"]["stored"] < backups["C raw"]["stored"], "A compresses"
    assert all(r["cpu"] > 0 and r["seconds"] > 0 for r in rows if r["op"] in ("backup", "restore"))
    memory = [r for r in rows if r["op"] == "memory"]
    assert len(memory) == 2 and all(0 < r["peak_python_rss"] and r["peak_spool"] > 0 for r in memory)
    status = [r for r in rows if r["op"] == "status"]
    assert status and status[0]["backups"] == 20 and status[0]["objects"] == 220
    text = doc.read_text()
    assert "<!-- bench:results:begin -->" in text and "| backup | A | local |" in text
    # The work directory and the pool are gone.
    assert not list(tmp_path.glob("offsite-bench-*"))
