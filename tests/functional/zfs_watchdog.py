"""A watchdog for the zfs-fuse daemon the functional tests share.

zfs-fuse (Debian's ZFS for machines without the kernel module) can stop answering: every
`zfs`/`zpool` call then blocks forever, and so does every test after it. Seen once in CI, where
each remaining test then ran into its timeout until the job was killed. The harness bounds each
zfs/zpool call it makes (ZFS_CALL_TIMEOUT). When one runs out, `wedged` records what the daemon
was doing, restarts it (kill, unmount its FUSE mounts, start it again with the same command line,
which imports the pools again) and bumps a machine-wide generation number. conftest.py then runs a test
that failed while the generation changed once more, on the fresh daemon; the report names it.

Kernel ZFS (/dev/zfs) is never restarted: there the watchdog only bounds the calls.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import List, Optional

ZFS_CALL_TIMEOUT = float(os.environ.get("OFFSITE_TEST_ZFS_TIMEOUT", "120"))
LOCK = Path("/tmp/offsite-zfs-fuse.lock")  # the same lock ZfsDaemon.start takes
GENERATION = Path("/tmp/offsite-zfs-fuse.generation")
STARTED_DAEMON = Path("/tmp/offsite-zfs-fuse.started-by-tests")  # written by harness.ZfsDaemon
REPORT = Path(__file__).resolve().parents[2] / ".tmp" / "results" / "zfs-fuse-restarts.txt"


class ZfsWedged(AssertionError):
    """A zfs/zpool call outlived ZFS_CALL_TIMEOUT; the daemon was restarted."""


def generation() -> int:
    try:
        return int(GENERATION.read_text().strip() or "0")
    except (OSError, ValueError):
        return 0


def restartable() -> bool:
    return not os.path.exists("/dev/zfs")


def _daemon_pid() -> Optional[int]:
    proc = subprocess.run(["pgrep", "-x", "zfs-fuse"], stdout=subprocess.PIPE, text=True, check=False)
    pids = [int(p) for p in proc.stdout.split()]
    return pids[0] if pids else None


def _cmdline(pid: int) -> List[str]:
    with open("/proc/%d/cmdline" % pid, "rb") as handle:
        return [part.decode() for part in handle.read().split(b"\0") if part]


def _diagnose(argv: List[str], pid: Optional[int]) -> str:
    lines = ["%s: %s did not answer within %.0f s" % (
        time.strftime("%H:%M:%S"), " ".join(argv), ZFS_CALL_TIMEOUT)]
    if pid:
        try:
            threads = len(os.listdir("/proc/%d/task" % pid))
            rss = [line for line in Path("/proc/%d/status" % pid).read_text().splitlines()
                   if line.startswith("VmRSS")]
            lines.append("zfs-fuse pid %d: %d threads, %s" % (pid, threads, rss[0] if rss else "rss ?"))
        except OSError as exc:
            lines.append("zfs-fuse pid %d: %s" % (pid, exc))
    ps = subprocess.run(["ps", "-eo", "pid,stat,etimes,wchan:24,args"], stdout=subprocess.PIPE, text=True,
                        check=False).stdout.splitlines()
    lines += [line[:200] for line in ps if " zfs" in line or " zpool" in line]
    mounts = [line for line in Path("/proc/mounts").read_text().splitlines() if " fuse" in line]
    lines.append("%d zfs-fuse mounts" % len(mounts))
    return "\n".join(lines)


def _fuse_mountpoints() -> List[str]:
    points = []
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2].startswith("fuse") and not fields[0].startswith("/"):
            points.append(fields[1].replace("\\040", " "))
    return sorted(points, key=len, reverse=True)  # children first


def _restart(pid: int) -> None:
    argv = _cmdline(pid)
    os.kill(pid, signal.SIGKILL)
    deadline = time.time() + 30
    while os.path.exists("/proc/%d" % pid) and time.time() < deadline:
        time.sleep(0.1)
    for point in _fuse_mountpoints():
        subprocess.run(["umount", "-l", point], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    # The pool cache stays: the new daemon imports every pool again, so tests that did not touch
    # ZFS while it was down go on.
    if "--pidfile" in argv[:-1]:  # zfs-fuse refuses to start while the dead daemon's pidfile is there
        Path(argv[argv.index("--pidfile") + 1]).unlink(missing_ok=True)
    subprocess.run(argv, check=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        if subprocess.run(["zpool", "list", "-H"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          check=False, timeout=ZFS_CALL_TIMEOUT).returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError("zfs-fuse did not answer after its restart")


def _record_new_pid(old: int) -> None:
    """Keep harness.stop_started_daemon pointed at the daemon that now runs."""
    try:
        if int(STARTED_DAEMON.read_text().strip()) != old:
            return
    except (OSError, ValueError):
        return
    new = _daemon_pid()
    if new:
        STARTED_DAEMON.write_text(str(new))


def wedged(argv: List[str], seen_generation: int) -> ZfsWedged:
    """Record and restart a daemon that stopped answering; the caller raises what this returns."""
    with open(LOCK, "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if generation() != seen_generation:  # another worker restarted it meanwhile
            return ZfsWedged("%s did not answer; zfs-fuse was restarted meanwhile" % argv)
        pid = _daemon_pid()
        note = _diagnose(argv, pid)
        if restartable() and pid:
            _restart(pid)
            _record_new_pid(pid)
            note += "\nzfs-fuse restarted (pid %s)" % _daemon_pid()
        GENERATION.write_text(str(seen_generation + 1))
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        with open(REPORT, "a", encoding="utf-8") as handle:
            handle.write(note + "\n\n")
    return ZfsWedged(note)


def run_bounded(argv: List[str], **kwargs: object) -> subprocess.CompletedProcess:
    """subprocess.run for zfs/zpool: text, captured, and never longer than ZFS_CALL_TIMEOUT."""
    seen = generation()
    try:
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False,
                              timeout=ZFS_CALL_TIMEOUT, **kwargs)  # type: ignore[arg-type]
    except subprocess.TimeoutExpired:
        raise wedged(argv, seen) from None
