# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which processes keep a mounted file system busy: the words a "dataset is busy" error lacks.

Private to the collection: not an API for other collections.

Reads /proc (Linux): a process whose working directory, root or an open
file lies under the mountpoint keeps it from being unmounted, so zfs rename, destroy and zpool destroy
answer busy. Elsewhere, or without the right to read another user's /proc entries, it finds nothing
and says nothing.
"""

from __future__ import annotations

import os
from typing import List

_LIMIT = 5  # holders named in one message


def _under(link: str, path: str) -> bool:
    try:
        target = os.readlink(link)
    except OSError:
        return False
    return target == path or target.startswith(path.rstrip("/") + "/")


def _holds(pid: str, path: str) -> bool:
    base = os.path.join("/proc", pid)
    if _under(os.path.join(base, "cwd"), path) or _under(os.path.join(base, "root"), path):
        return True
    try:
        fds = os.listdir(os.path.join(base, "fd"))
    except OSError:
        return False
    return any(_under(os.path.join(base, "fd", fd), path) for fd in fds)


def _command(pid: str) -> str:
    try:
        with open(os.path.join("/proc", pid, "comm")) as handle:
            return handle.read().strip()
    except OSError:
        return "?"


def holders(path: str) -> List[str]:
    """'pid N (command)' for each process (up to a few) with its cwd, root or an open file under path."""
    if not path.startswith("/") or path == "/" or not os.path.isdir("/proc"):
        return []
    found: List[str] = []
    try:
        pids = sorted((p for p in os.listdir("/proc") if p.isdigit()), key=int)
    except OSError:
        return []
    for pid in pids:
        if pid != str(os.getpid()) and _holds(pid, path):
            found.append("pid %s (%s)" % (pid, _command(pid)))
            if len(found) >= _LIMIT:
                break
    return found


def in_use_by(path: str) -> str:
    """A sentence naming what keeps path busy, or '' when nothing can be named."""
    named = holders(path)
    return " %s is in use by %s." % (path, ", ".join(named)) if named else ""
