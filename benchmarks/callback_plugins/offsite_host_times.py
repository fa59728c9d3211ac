# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark helper (benchmarks/fleet.py): each host's wall time per task, appended as JSON lines."""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: offsite_host_times
type: aggregate
short_description: Record each host's time per task (benchmarks only)
description:
  - Appends one JSON line per finished host task to the file named by E(OFFSITE_HOST_TIMES).
options: {}
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "offsite_host_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._started = {}
        self._path = os.environ.get("OFFSITE_HOST_TIMES")

    def v2_runner_on_start(self, host, task) -> None:
        self._started[(host.get_name(), task._uuid)] = time.time()

    def _done(self, result, status: str) -> None:
        key = (result._host.get_name(), result._task._uuid)
        start = self._started.pop(key, None)
        if start is None or not self._path:
            return
        with open(self._path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"host": key[0], "task": result._task.get_name(), "status": status,
                                  "seconds": time.time() - start}) + "\n")

    def v2_runner_on_ok(self, result) -> None:
        self._done(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False) -> None:
        self._done(result, "failed")

    def v2_runner_on_unreachable(self, result) -> None:
        self._done(result, "unreachable")

    def v2_runner_on_skipped(self, result) -> None:
        self._done(result, "skipped")
