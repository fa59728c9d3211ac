# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Progress: events go to a log file per run and to a small state file status reads.

Private to the collection: not an API for other collections.

The log file is opened in append mode and written line by line, never to a terminal,
so runs in the background (cron, systemd, Ansible async) are safe. While a run's Progress is open,
every command the process layer starts (_proc: zfs, zpool, rclone, ssh-keygen, ...) is logged to
it, as argv (never its environment).
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any, Dict, List, Optional

from ansible_collections.offsite.zfs.plugins.module_utils import _proc
from ansible_collections.offsite.zfs.plugins.module_utils.common import (
    files_in,
    human_bytes,
    pid_alive,
    private_dir,
    write_private_file,
)


def _stamp(when: Optional[float] = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when if when is not None else time.time()))


class Progress:
    """One run's progress: log lines, and a state file while the run is going."""

    def __init__(self, log_dir: str, state_dir: str, operation: str, dataset: str) -> None:
        self.operation = operation
        self.dataset = dataset
        self.started = time.time()
        private_dir(log_dir)
        safe = dataset.replace("/", "_")
        self.log_path = os.path.join(log_dir, "%s-%s-%s-%d.log" % (
            operation, safe, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.started)), os.getpid()))
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._log = os.fdopen(fd, "a", encoding="utf-8", buffering=1)
        self.state_path = os.path.join(private_dir(os.path.join(state_dir, "running")), "%s-%d-%s.json" % (
            operation, os.getpid(), safe))
        self.state: Dict[str, Any] = {
            "operation": operation, "dataset": dataset, "pid": os.getpid(), "started": _stamp(self.started),
            "log": self.log_path, "provider": None, "chunk": 0, "chunks_estimated": 0, "bytes": 0,
            "bytes_estimated": 0, "rate": 0.0,
        }
        self._phase_start = self.started
        self._last_state_write = 0.0
        self._lock = threading.RLock()  # upload threads report too
        self._providers: Dict[str, Dict[str, Any]] = {}
        self.log("%s of %s started (PID %d)" % (operation, dataset, os.getpid()))
        self._unlog = _proc.log_to(self.log)  # every command of the run goes to its log

    def log(self, message: str) -> None:
        with self._lock:
            self._log.write("%s %s\n" % (_stamp(), message))

    def phase(self, provider: Optional[str], chunks_estimated: int, bytes_estimated: int) -> None:
        """A stream pass starts (for provider, one of the pass's providers)."""
        with self._lock:
            self._phase_start = time.time()
            if provider is not None:
                self._providers[provider] = {"chunk": 0, "bytes": 0, "rate": 0.0, "started": self._phase_start}
            names = sorted(self._providers) if self._providers else []
            self.state.update(provider=", ".join(names) if names else provider, chunk=0,
                              chunks_estimated=chunks_estimated, bytes=0, bytes_estimated=bytes_estimated, rate=0.0)
            self._write_state(force=True)

    def provider_chunk(self, provider: str, number: int, plain_bytes: int, note: str = "") -> None:
        """One chunk is on provider (uploaded, or already there): its own count, bytes and rate."""
        with self._lock:
            entry = self._providers.setdefault(provider, {"chunk": 0, "bytes": 0, "rate": 0.0,
                                                          "started": time.time()})
            entry["chunk"] = max(entry["chunk"], number)
            entry["bytes"] += plain_bytes
            entry["rate"] = round(entry["bytes"] / max(time.time() - entry["started"], 1e-6), 1)
            self.log("provider %s: chunk %d %s (%s on it, %s/s)" % (
                provider, number, note or "uploaded", human_bytes(entry["bytes"]), human_bytes(entry["rate"])))
            self._write_state()

    def chunk(self, number: int, done_bytes: int, note: str = "") -> None:
        with self._lock:
            self._chunk(number, done_bytes, note)

    def _chunk(self, number: int, done_bytes: int, note: str = "") -> None:
        elapsed = max(time.time() - self._phase_start, 1e-6)
        rate = done_bytes / elapsed
        total = self.state.get("chunks_estimated") or 0
        estimated = self.state.get("bytes_estimated") or 0
        eta = ""
        if estimated > done_bytes and rate > 0:
            eta = ", ETA %ds" % int((estimated - done_bytes) / rate)
        self.state.update(chunk=number, bytes=done_bytes, rate=round(rate, 1))
        self.log("Processing chunk %d of ~%d%s: %s done, %s/s%s" % (
            number, max(total, number), " (%s)" % note if note else "", human_bytes(done_bytes),
            human_bytes(rate), eta))
        self._write_state()

    def _write_state(self, force: bool = False) -> None:
        now = time.time()
        if force or now - self._last_state_write >= 0.5:
            self._last_state_write = now
            self.state["updated"] = _stamp(now)
            self.state["providers"] = {name: {k: v for k, v in entry.items() if k != "started"}
                                       for name, entry in sorted(self._providers.items())}
            write_private_file(self.state_path, json.dumps(self.state).encode("utf-8"))

    def close(self, outcome: str) -> None:
        with self._lock:
            self._close(outcome)

    def _close(self, outcome: str) -> None:
        self._unlog()
        self.log("%s of %s %s after %.1fs" % (self.operation, self.dataset, outcome, time.time() - self.started))
        try:
            os.unlink(self.state_path)
        except OSError:
            pass
        self._log.close()


def running_states(state_dir: str) -> List[Dict[str, Any]]:
    """State files of runs whose process is still alive."""
    found = []
    for path in files_in(os.path.join(state_dir, "running"), ".json"):  # not the temp file of one being replaced
        try:
            with open(path, "r", encoding="utf-8") as handle:
                state = json.load(handle)
        except (OSError, ValueError):
            continue
        pid = state.get("pid")
        if isinstance(pid, int) and pid_alive(pid):
            found.append(state)
    return found
