# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The process layer: every child process (zfs, zpool, rclone, ssh-keygen, umount, age) runs through here.

Private to the collection: not an API for other collections. The ONLY module_utils file importing subprocess.

`Child` owns one process: argv list (never a shell), env, pass_fds, stdin/stdout (PIPE, DEVNULL, an fd or
a file; raw pipes); stderr read on a thread into a bounded `StderrTail` (first quarter and last three
quarters of `stderr_limit`, 64 KiB), so a chatty child never blocks; a failure becomes ONE typed error
through the caller's `classify(returncode, stderr)` (the only place message text is read: zfs.py,
store.py/rclone_errors.py); kill + wait on every exit path (`close()`, the context manager, `run()` on a
timeout, an exception, KeyboardInterrupt). Each command is logged as shlex-quoted argv, never its
environment (where secrets travel), to the hook of `log_to()` (Progress sets it for a run) or `log=`;
secret-looking `key=value` values of an rclone connection string are masked.

Porting a hand-driven Popen (fanout, restore's receive path, age_cli):

    with _proc.Child(argv, stdin=_proc.PIPE, env=env, pass_fds=fds, classify=classify) as child:
        child.stdin.write(data)       # or read child.stdout
        child.check()                 # close stdin, wait, raise classify(rc, stderr) unless rc in ok
    # leaving the block any other way (an exception, a return before check) kills and reaps the child

Popen's surface stays for unported code: stdin, stdout, stderr.read() (waits for its end; the kept bytes),
pid, returncode, wait(timeout) (raises TimeoutExpired), kill(). `abort(grace)`: close stdin, wait up to
grace, kill (zfs receive discards a truncated stream). `run(argv, input=, timeout=, ok=, check=)`: one
call, a `Result` (returncode, stdout, stderr, timed_out) or the classified error (a timeout kills: -9).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, List, Optional, Sequence, Union

from ansible_collections.offsite.zfs.plugins.module_utils._stderr import STDERR_LIMIT, StderrTail
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError

PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL
TimeoutExpired = subprocess.TimeoutExpired

Classifier = Callable[[int, bytes], BaseException]
Log = Callable[[str], None]

_loggers: List[Log] = []
_loggers_lock = threading.Lock()
# rclone connection strings (":s3,secret_access_key=...:bucket") may carry secrets in argv; mask their values.
_SECRET_PAIR = re.compile(r"(?i)([,:][a-z0-9_]*(?:secret|pass|token|key)[a-z0-9_]*=)[^,:]*")


def command_line(argv: Sequence[str]) -> str:
    """argv as one shell-quoted line for the log, with secret-looking connection-string values masked."""
    return " ".join(shlex.quote(_SECRET_PAIR.sub(r"\1***", str(arg))) for arg in argv)


def log_to(log: Log) -> Callable[[], None]:
    """Send every command to log (innermost wins) until the returned function is called."""
    with _loggers_lock:
        _loggers.append(log)

    def undo() -> None:
        with _loggers_lock:
            if log in _loggers:
                _loggers.remove(log)
    return undo


@contextmanager
def logging_to(log: Log) -> Iterator[None]:
    """log_to() for the length of a with block."""
    undo = log_to(log)
    try:
        yield
    finally:
        undo()


def _emit(log: Optional[Log], message: str) -> None:
    if log is None:
        with _loggers_lock:
            log = _loggers[-1] if _loggers else None
    if log is None:
        return
    try:
        log(message)
    except Exception:  # a closed or failing log never fails the command
        pass


def first_line(stderr: Union[bytes, str], default: str = "no message") -> str:
    """The first non-empty line of a child's stderr."""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return default


def _default_classify(argv: Sequence[str]) -> Classifier:
    def classify(returncode: int, stderr: bytes) -> BaseException:
        return OffsiteError("The command %s failed (exit %d): %s." % (
            os.path.basename(str(argv[0])), returncode, first_line(stderr).rstrip(".")), "command_failed")
    return classify


class Child:
    """One child process, owned: see the module docstring. Use as a context manager."""

    def __init__(self, argv: Sequence[str], *, stdin: Any = DEVNULL, stdout: Any = PIPE,
                 env: Optional[dict] = None, pass_fds: Sequence[int] = (), classify: Optional[Classifier] = None,
                 missing: Optional[Callable[[], BaseException]] = None, stderr_limit: int = STDERR_LIMIT,
                 log: Optional[Log] = None, cwd: Optional[str] = None) -> None:
        self.argv = [str(a) for a in argv]
        self._classify = classify or _default_classify(self.argv)
        self._log = log
        self._closed = False
        self.started = time.monotonic()
        _emit(log, "run: %s" % command_line(self.argv))
        try:
            self._popen = subprocess.Popen(self.argv, stdin=stdin, stdout=stdout, stderr=PIPE, env=env,
                                           pass_fds=tuple(pass_fds), bufsize=0, cwd=cwd)
        except FileNotFoundError:
            if missing is not None:
                raise missing()
            raise
        self.stderr = StderrTail(self._popen.stderr, stderr_limit)  # type: ignore[arg-type]
        self._popen.stderr = None  # read by the thread only; communicate() leaves it alone

    # -- Popen's surface -------------------------------------------------------------------
    @property
    def stdin(self) -> Any:
        return self._popen.stdin

    @property
    def stdout(self) -> Any:
        return self._popen.stdout

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> Optional[int]:
        return self._popen.returncode

    def wait(self, timeout: Optional[float] = None) -> int:
        """Wait for the exit (TimeoutExpired after timeout seconds, as Popen); stderr is read to its end."""
        rc = self._popen.wait(timeout)
        self.stderr.join(None if timeout is None else max(timeout, 5.0))
        return rc

    def kill(self) -> None:
        """SIGKILL, unless the child has already been reaped."""
        if self._popen.returncode is None:
            try:
                self._popen.kill()
            except OSError:
                pass

    def _note(self, what: str) -> None:
        _emit(self._log, "%s after %.1fs: %s" % (what, time.monotonic() - self.started, command_line(self.argv[:2])))

    # -- owning it ---------------------------------------------------------------------------
    def _close_stdin(self) -> None:
        """Close stdin (a child that stopped reading makes that a broken pipe: nothing to do then)."""
        if self._popen.stdin is not None and not self._popen.stdin.closed:
            try:
                self._popen.stdin.close()
            except (OSError, ValueError):
                pass

    def finish(self, timeout: Optional[float] = None) -> int:
        """Close stdin (end of input), wait for the exit and the end of stderr; the return code."""
        self._close_stdin()
        return self.wait(timeout)

    def error(self) -> BaseException:
        """The classified error of the finished child (logged: exit code and time)."""
        rc = self._popen.returncode
        self._note("exit %s" % rc)
        return self._classify(rc if rc is not None else -1, self.stderr.value())

    def check(self, ok: Sequence[int] = (0,), timeout: Optional[float] = None) -> int:
        """finish(), then raise the classified error unless the return code is in ok."""
        rc = self.finish(timeout)
        if rc not in ok:
            raise self.error()
        return rc

    def abort(self, grace: float = 120.0) -> None:
        """End a child by closing its input (zfs receive then discards a partial stream), else kill it."""
        self._close_stdin()
        try:
            self.wait(grace)
        except TimeoutExpired:
            pass
        self.close()

    def close(self) -> None:
        """Kill the child if it still runs, reap it, close its pipes. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        if self._popen.poll() is None:
            self._note("killed")
            self.kill()
        for pipe in (self._popen.stdin, self._popen.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass
        self._popen.wait()
        self.stderr.join(5.0)

    def __enter__(self) -> "Child":
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()


@dataclass
class Result:
    argv: List[str]
    returncode: int
    stdout: bytes
    stderr: bytes
    timed_out: bool = False

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")


def run(argv: Sequence[str], *, input: Optional[bytes] = None, env: Optional[dict] = None,
        pass_fds: Sequence[int] = (), timeout: Optional[float] = None, ok: Sequence[int] = (0,), check: bool = True,
        classify: Optional[Classifier] = None, missing: Optional[Callable[[], BaseException]] = None,
        stdout: Any = PIPE, stderr_limit: int = STDERR_LIMIT, log: Optional[Log] = None) -> Result:
    """One call: input (if any) written to stdin, stdout collected, killed after timeout seconds.

    check: raise classify(returncode, stderr) unless the return code is in ok (a timeout gives -9).
    """
    child = Child(argv, stdin=PIPE if input is not None else DEVNULL, stdout=stdout, env=env, pass_fds=pass_fds,
                  classify=classify, missing=missing, stderr_limit=stderr_limit, log=log)
    timed_out = False
    try:
        try:
            out, _err = child._popen.communicate(input, timeout)
        except TimeoutExpired:
            timed_out = True
            child.kill()
            out, _err = child._popen.communicate()
            child._note("timed out (%gs), killed" % timeout)
        rc = child.wait()
    finally:
        child.close()
    result = Result(child.argv, rc, out or b"", child.stderr.value(), timed_out)
    if check and rc not in ok:
        raise child.error()
    return result
