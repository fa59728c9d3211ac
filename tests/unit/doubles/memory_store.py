# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""MemoryStore: a test double of plugins/module_utils/store.py's Store, objects kept in a dict.

It is a Store (a subclass): name, path, retry, failure, retry_log, log, pass_fds and the Provider
settings are the real ones, so retries, backoff and the sentences of errors are the real code.
Only the calls that would run rclone are replaced. A failure is raised through Store.failure
with the exit code and stderr line rclone gives, so it is classified (kind, code) by the real
rclone_errors.classify. tests/functional/test_store_conformance.py runs one contract
(store_contract.py) against this double and against the real Store on a local directory and on
`rclone serve s3`; where the real backends differ from each other, the double behaves like the
local one (a missing object is an error) and the contract says so.

Faults: `fail(op, returncode, stderr, times)` makes the next `times` calls of op (put_file, copy,
put_bytes, open_put_stream, open_get_stream, get_bytes, list, fetch, delete, purge) fail as rclone
would; `calls` records every call (op, key) so a test can assert what an operation did.
"""

from __future__ import annotations

import fnmatch
import io
import os
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils.store import Provider, RemoteObject, Store

# What rclone prints for the situations the double reproduces (the last line is what last_error shows).
NOT_FOUND = (3, b"Failed to cat with 2 errors: last error was: directory not found")
DELETE_NOT_FOUND = (4, b"Failed to deletefile: object not found")


@dataclass
class _Object:
    data: bytes
    mtime: float


def rclone_time(epoch: float) -> str:
    """An rclone ModTime: RFC 3339 in UTC with nanoseconds, as lsjson prints it."""
    whole = int(epoch)
    nanos = int(round((epoch - whole) * 1e9))
    if nanos >= 1000000000:
        whole, nanos = whole + 1, nanos - 1000000000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + ".%09dZ" % nanos


def _matches(pattern: str, relative: str) -> bool:
    """rclone's --include for the plain globs callers use: no "/" matches the file name at any depth,
    a leading "/" anchors at the root, otherwise the pattern matches the path's end."""
    if set(pattern) & set("[]{}") or "**" in pattern:
        raise NotImplementedError("MemoryStore does not emulate the rclone filter %r" % pattern)
    if pattern.startswith("/"):
        return fnmatch.fnmatchcase(relative, pattern[1:])
    parts = relative.split("/")
    width = pattern.count("/") + 1
    return len(parts) >= width and fnmatch.fnmatchcase("/".join(parts[-width:]), pattern)


class _PutStream:
    """stdin of a memory `rclone rcat`: the object is stored when stdin is closed, never when killed,
    and never when the child was told to fail (it then exits with that code after reading its input)."""

    def __init__(self, store: "MemoryStore", key: str, doomed: bool = False) -> None:
        self._store = store
        self._key = key
        self._buffer = io.BytesIO()
        self._doomed = doomed
        self.closed = False
        self.killed = False

    def write(self, data: bytes) -> int:
        if self.closed:
            raise ValueError("write to closed file")
        if self.killed:
            raise BrokenPipeError(32, "Broken pipe")
        return self._buffer.write(bytes(data))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if not self.closed and not self.killed and not self._doomed:
            self._store._objects[self._key] = _Object(self._buffer.getvalue(), self._store.clock_time())
        self.closed = True


class _Stderr(io.BytesIO):
    def value(self) -> bytes:
        return self.getvalue()


class MemoryChild:
    """What _proc.Child gives the callers of open_put_stream / open_get_stream: stdin, stdout, stderr,
    wait, poll, kill, returncode, finish, check, error, close, abort and the context manager; error()
    is the store's classified StoreError. The exit status is decided when the child is made, or by kill
    while it still has input to read or output to give."""

    def __init__(self, stdin: Optional[_PutStream], stdout: Optional[io.BytesIO], returncode: int,
                 stderr: bytes = b"", classify: Optional[Callable[[int, bytes], BaseException]] = None) -> None:
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = _Stderr(stderr)
        self._exit = returncode
        self._classify = classify
        self.returncode: Optional[int] = None
        self.pid = -1

    def finish(self, timeout: Optional[float] = None) -> int:
        if self.stdin is not None and not self.stdin.closed:
            self.stdin.close()
        return self.wait(timeout)

    def error(self) -> BaseException:
        assert self._classify is not None, "a memory child made without its store's classifier"
        return self._classify(self.returncode if self.returncode is not None else -1, self.stderr.getvalue())

    def check(self, ok: Tuple[int, ...] = (0,), timeout: Optional[float] = None) -> int:
        rc = self.finish(timeout)
        if rc not in ok:
            raise self.error()
        return rc

    def close(self) -> None:
        self.kill()
        if self.returncode is None:
            self.returncode = self._exit

    def abort(self, grace: float = 120.0) -> None:
        self.finish()

    def __enter__(self) -> "MemoryChild":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _busy(self) -> bool:
        if self.stdin is not None:
            return not self.stdin.closed and not self.stdin.killed
        return self.stdout is not None and self.stdout.tell() < len(self.stdout.getbuffer())

    def poll(self) -> Optional[int]:
        if self.returncode is None and self.stdin is not None and self._busy():
            return None  # an rcat still reading its input
        return self.wait()

    def wait(self, timeout: Optional[float] = None) -> int:
        if self.returncode is None:
            if self.stdin is not None and self._busy():
                # A real rcat would block here until stdin is closed: a caller bug, said at once.
                raise RuntimeError("wait() on a memory rcat whose stdin is still open")
            self.returncode = self._exit
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None and self._busy():
            if self.stdin is not None:
                self.stdin.killed = True
            self.returncode = -9

    terminate = kill


class MemoryStore(Store):
    """A provider whose objects live in memory. `objects` (key -> bytes) and `calls` are for tests."""

    def __init__(self, name: str = "mem", remote: Optional[str] = None, retries: int = 0,
                 sleep: Optional[Callable[[float], None]] = None, clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], float] = time.time, append_only: bool = False, **provider: object) -> None:
        sleeps: List[float] = []
        super().__init__(Provider(name=name, remote=remote or "memory:%s" % name, retries=retries,
                                  append_only=append_only, **provider),  # type: ignore[arg-type]
                         sleep=sleep if sleep is not None else sleeps.append, clock=clock)
        self.sleeps = sleeps  # the backoff delays asked for, when no sleep is given
        self.clock_time = now
        self._objects: Dict[str, _Object] = {}
        self._faults: Dict[str, List[Optional[Tuple[int, bytes]]]] = {}
        self.calls: List[Tuple[str, str]] = []

    # -- for tests -------------------------------------------------------------------
    @property
    def objects(self) -> Dict[str, bytes]:
        return {key: obj.data for key, obj in sorted(self._objects.items())}

    def add(self, key: str, data: bytes, mtime: Optional[float] = None) -> None:
        """Place an object without a call being recorded (the state a test starts from)."""
        self._objects[self._key(key)] = _Object(bytes(data), self.clock_time() if mtime is None else mtime)

    def set_mtime(self, key: str, epoch: float) -> None:
        self._objects[self._key(key)].mtime = epoch

    def fail(self, op: str, returncode: int = 1, stderr: bytes = b"ERROR : connection reset by peer",
             times: int = 1, after: int = 0) -> None:
        """After `after` good calls, the next `times` calls of op fail as rclone would with this exit code
        and stderr."""
        if not hasattr(Store, op):
            raise AttributeError("Store has no operation %s" % op)
        self._faults.setdefault(op, []).extend([None] * after + [(returncode, stderr)] * times)

    def _fault(self, op: str) -> Optional[Tuple[int, bytes]]:
        queued = self._faults.get(op)
        return queued.pop(0) if queued else None

    # -- plumbing --------------------------------------------------------------------
    @staticmethod
    def _key(key: str) -> str:
        if key.startswith("/") or "//" in key or key.endswith("/") or not key:
            raise ValueError("MemoryStore: %r is not an object key" % key)
        return key

    def _enter(self, op: str, key: str, what: str) -> None:
        self.calls.append((op, key))
        fault = self._fault(op)
        if fault is not None:
            raise self.failure(what, fault[0], fault[1])

    def _below(self, prefix: str, max_depth: Optional[int]) -> List[Tuple[str, str, _Object]]:
        """(key, path relative to prefix, object) below prefix, sorted; depth 1 = directly in it."""
        lead = prefix.rstrip("/") + "/" if prefix else ""
        found = []
        for key, obj in sorted(self._objects.items()):
            if not key.startswith(lead):
                continue
            relative = key[len(lead):]
            if max_depth is not None and relative.count("/") + 1 > max_depth:
                continue
            found.append((key, relative, obj))
        return found

    def _missing(self, what: str, code: Tuple[int, bytes] = NOT_FOUND) -> Exception:
        return self.failure(what, code[0], code[1])

    # -- operations (the same names, arguments and results as Store) -------------------
    def put_file(self, key: str, local_path: str) -> None:
        def once() -> None:
            self._enter("put_file", key, "upload %s" % key)
            try:
                with open(local_path, "rb") as handle:
                    data = handle.read()
            except OSError:
                raise self._missing("upload %s" % key)
            self._objects[self._key(key)] = _Object(data, self.clock_time())
        self.retry(once, "upload of %s" % key)

    def copy(self, source: str, key: str) -> None:
        def once() -> None:
            self._enter("copy", source, "copy %s to %s" % (source, key))
            found = self._objects.get(self._key(source))
            if found is None:
                raise self._missing("copy %s to %s" % (source, key))
            self._objects[self._key(key)] = _Object(found.data, self.clock_time())
        self.retry(once, "copy of %s" % source)

    def put_bytes(self, key: str, data: bytes) -> None:
        def once() -> None:
            self._enter("put_bytes", key, "upload %s" % key)
            self._objects[self._key(key)] = _Object(bytes(data), self.clock_time())
        self.retry(once, "upload of %s" % key)

    def open_put_stream(self, key: str) -> MemoryChild:  # type: ignore[override]
        self.calls.append(("open_put_stream", key))
        fault = self._fault("open_put_stream")
        if fault is not None:  # rclone reads its input, then fails: the bytes go nowhere
            return MemoryChild(_PutStream(self, self._key(key), doomed=True), None, fault[0], fault[1],
                               classify=self._classifier("upload %s" % key))
        return MemoryChild(_PutStream(self, self._key(key)), None, 0, classify=self._classifier("upload %s" % key))

    def open_get_stream(self, key: str, offset: int = 0) -> MemoryChild:  # type: ignore[override]
        self.calls.append(("open_get_stream", key))
        fault = self._fault("open_get_stream")
        if fault is not None:
            return MemoryChild(None, io.BytesIO(b""), fault[0], fault[1],
                               classify=self._classifier("download %s" % key))
        found = self._objects.get(self._key(key))
        if found is None:
            return MemoryChild(None, io.BytesIO(b""), NOT_FOUND[0], NOT_FOUND[1],
                               classify=self._classifier("download %s" % key))
        return MemoryChild(None, io.BytesIO(found.data[offset:]), 0, classify=self._classifier("download %s" % key))

    def _classifier(self, what: str) -> Callable[[int, bytes], BaseException]:
        return lambda returncode, stderr: self.failure(what, returncode, stderr)

    def get_bytes(self, key: str) -> bytes:
        def once() -> bytes:
            self._enter("get_bytes", key, "download %s" % key)
            found = self._objects.get(self._key(key))
            if found is None:
                raise self._missing("download %s" % key)
            return found.data
        return self.retry(once, "download of %s" % key)

    def list(self, prefix: str = "", max_depth: Optional[int] = None) -> List[RemoteObject]:
        def once() -> List[RemoteObject]:
            self._enter("list", prefix, "list %s" % (prefix or "the remote"))
            return [RemoteObject(relative, len(obj.data), rclone_time(obj.mtime))
                    for _key, relative, obj in self._below(prefix, max_depth)]
        return self.retry(once, "listing of %s" % (prefix or "the remote"))

    def fetch(self, prefix: str, dest: str, include: List[str], max_depth: Optional[int] = None) -> None:
        def once() -> None:
            self._enter("fetch", prefix, "download manifests below %s" % (prefix or "the remote"))
            for _key, relative, obj in self._below(prefix, max_depth):
                if not any(_matches(pattern, relative) for pattern in include):
                    continue
                local = os.path.join(dest, *relative.split("/"))
                os.makedirs(os.path.dirname(local), exist_ok=True)
                with open(local, "wb") as handle:
                    handle.write(obj.data)
        self.retry(once, "download of manifests below %s" % prefix)

    def delete(self, key: str) -> None:
        def once() -> None:
            self._enter("delete", key, "delete %s" % key)
            if self._objects.pop(self._key(key), None) is None:
                raise self._missing("delete %s" % key, DELETE_NOT_FOUND)
        self.retry(once, "deletion of %s" % key)

    def purge(self, prefix: str) -> None:
        def once() -> None:
            self._enter("purge", prefix, "delete %s" % prefix)
            for key, _relative, _obj in self._below(prefix, None):
                del self._objects[key]
        self.retry(once, "deletion of %s" % prefix)
