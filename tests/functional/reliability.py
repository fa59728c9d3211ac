"""Helpers shared by the reliability tests (issue 5): child processes, polling, data."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import harness

CHILD = Path(__file__).resolve().parent / "child.py"


def random_file(directory: Path, seed: int, size: int, name: str = "random.bin") -> Path:
    """Incompressible, deterministic data (so chunk sizes are predictable)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


def spawn(lab: Any, operation: str, dataset: str, spec_dir: Path, params: Optional[Dict[str, Any]] = None,
          kwargs: Optional[Dict[str, Any]] = None, identity_file: Optional[str] = None,
          name: str = "spec") -> subprocess.Popen:
    """Run a backup or restore in a child process (tests/functional/child.py)."""
    spec = {"operation": operation, "config": lab.config, "dataset": dataset, "params": params or {},
            "kwargs": kwargs or {}, "identity_file": identity_file or str(lab.key.path)}
    if operation in ("restore", "restore_paths"):
        spec["params"] = dict(spec["params"], _single_provider=True)
    spec_dir.mkdir(parents=True, exist_ok=True)
    path = spec_dir / ("%s.json" % name)
    path.write_text(json.dumps(spec))
    return subprocess.Popen([sys.executable, str(CHILD), str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(child: subprocess.Popen, timeout: float = 120) -> Dict[str, Any]:
    """Wait for a child; its JSON result (with _rc)."""
    out, err = child.communicate(timeout=timeout)
    try:
        result = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise AssertionError("child printed no result (rc %s): %s %s" % (child.returncode, out[-2000:], err[-2000:]))
    result["_rc"] = child.returncode
    return result


def kill9(child: subprocess.Popen) -> None:
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    for stream in (child.stdout, child.stderr):
        if stream:
            stream.close()


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 120,
             child: Optional[subprocess.Popen] = None) -> Any:
    """Poll condition until it is true (its value is returned); fail on deadline or if child ends."""
    deadline = time.time() + timeout
    while True:
        value = condition()
        if value:
            return value
        if child is not None and child.poll() is not None:
            raise AssertionError("the child ended (rc %s) before %s: %s" % (
                child.returncode, what, (child.stderr.read() if child.stderr else "")[-2000:]))
        if time.time() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(0.02)


def journal_chunks(state_dir: Path) -> int:
    """The most chunks any resume journal below state_dir records."""
    most = 0
    for path in (state_dir / "journal").rglob("*.json"):
        try:
            most = max(most, len(json.loads(path.read_text()).get("chunks", {})))
        except (OSError, ValueError):
            continue
    return most


def manifests(remote: Path) -> List[Path]:
    return sorted(remote.rglob("manifest.json"))


def same_tree(lab: Any, source: str, copy: str) -> bool:
    return harness.tree_digest(lab.pool.mountpoint(source)) == harness.tree_digest(lab.pool.mountpoint(copy))


def one_sentence(message: str) -> bool:
    """One clear sentence: a single line, no traceback, ends with a full stop."""
    return bool(message) and "\n" not in message and "Traceback" not in message and message.rstrip().endswith(".")
