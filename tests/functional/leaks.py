"""Where a secret could leak, for the secrets tests: every process's argv while a run goes on, and files.

ArgvSampler reads /proc/*/cmdline on a thread again and again and keeps each distinct argv, so a secret
on any command line of ansible, ssh, sudo, the modules' Python or rclone is seen. files() lists the
regular files below some directories (for scanning what a run wrote).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Iterable, List, Set


class ArgvSampler(threading.Thread):
    """Reads every process's argv again and again; remembers each distinct one."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: Set[bytes] = set()
        self.rounds = 0
        self._done = threading.Event()

    def run(self) -> None:
        own = str(os.getpid())
        while not self._done.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or pid == own:
                    continue
                try:
                    with open("/proc/%s/cmdline" % pid, "rb") as handle:
                        self.seen.add(handle.read())
                except OSError:
                    continue
            self.rounds += 1

    def stop(self) -> None:
        self._done.set()
        self.join()

    def __enter__(self) -> "ArgvSampler":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def files(*roots: Path, skip: Iterable[Path] = ()) -> List[Path]:
    """Regular files (not symlinks) below roots, except those below a path in skip."""
    skipped = [str(p) for p in skip]
    found = []
    for root in roots:
        for path in root.rglob("*"):
            if any(str(path) == s or str(path).startswith(s + os.sep) for s in skipped):
                continue
            if path.is_file() and not path.is_symlink():
                found.append(path)
    return found
