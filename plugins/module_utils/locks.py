# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Locks: one fcntl.flock per operation scope.

Private to the collection: not an API for other collections.

The kernel releases a flock when its process dies (kill -9, reboot), so there is no
stale-lock guessing: a leftover lock file is harmless. The holder writes its PID and
start time into the file so that the next one can name it in the error message.
A backup's rclone children inherit its lock (Store.pass_fds): after kill -9 the lock
is held until the uploads the dead run started have ended, so a rerun can never race them.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from typing import Any, Dict, List, Optional
from urllib.parse import quote

from ansible_collections.offsite.zfs.plugins.module_utils.common import files_in, pid_alive, private_dir
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError


def lock_path(state_dir: str, operation: str, scope: str) -> str:
    return os.path.join(state_dir, "locks", "%s-%s.lock" % (operation, quote(scope, safe="")))


class Lock:
    """A held lock; release() or use as a context manager."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd = fd

    def release(self) -> None:
        if self.fd >= 0:
            try:
                os.ftruncate(self.fd, 0)
            except OSError:
                pass
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "Lock":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def read_holder(path: str) -> Dict[str, Any]:
    try:
        with open(path, "r", encoding="utf-8") as handle:
            data = json.loads(handle.read() or "{}")
            return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def acquire(state_dir: str, operation: str, scope: str, description: str,
            details: Optional[Dict[str, Any]] = None) -> Lock:
    """Take the lock at once or raise OffsiteError naming the holder.

    description completes "another offsite <description> is running", e.g.
    "backup of tank/data to b2".
    """
    path = lock_path(state_dir, operation, scope)
    private_dir(os.path.dirname(path))
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = read_holder(path)
        pid = holder.get("pid")
        if isinstance(pid, int) and not pid_alive(pid) and _wait_for_orphans(fd):
            return _take(fd, path, operation, scope, details)
        os.close(fd)
        since = holder.get("started")
        when = time.strftime("%H:%M:%S", time.localtime(since)) if isinstance(since, (int, float)) else "unknown"
        if isinstance(pid, int) and not pid_alive(pid):
            # The holder died (kill -9) but children it started (an upload) still hold the lock.
            raise OffsiteError("another offsite %s is still finishing: its process (PID %d, since %s) has ended but "
                               "commands it started have not; run again in a moment." % (description, pid, when),
                               "locked", pid=pid)
        raise OffsiteError("another offsite %s is running (PID %s, since %s); wait for it or stop it."
                           % (description, holder.get("pid", "unknown"), when), "locked",
                           pid=holder.get("pid"))
    return _take(fd, path, operation, scope, details)


def _take(fd: int, path: str, operation: str, scope: str, details: Optional[Dict[str, Any]]) -> Lock:
    info = {"pid": os.getpid(), "started": time.time(), "operation": operation, "scope": scope}
    info.update(details or {})
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode("utf-8"), 0)
    return Lock(path, fd)


# After kill -9 of a holder, the commands it started (its uploads inherit the lock) get this many
# seconds to end before a new run gives up.
DEAD_HOLDER_WAIT = 60.0


def _wait_for_orphans(fd: int) -> bool:
    """The holder is dead: wait (bounded) for its children to let go of the lock; True once it is ours."""
    deadline = time.time() + DEAD_HOLDER_WAIT
    while time.time() < deadline:
        time.sleep(0.1)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            continue
    return False


def held_locks(state_dir: str) -> List[Dict[str, Any]]:
    """Locks currently held by live processes, with what their holders wrote."""
    found = []
    for path in files_in(os.path.join(state_dir, "locks"), ".lock"):
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
                continue  # nobody holds it
            except BlockingIOError:
                pass
        finally:
            os.close(fd)
        holder = read_holder(path)
        holder["lock"] = path
        found.append(holder)
    return found
