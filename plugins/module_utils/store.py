# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Store: one provider = one rclone path. Put, get, list, delete, with retries.

Private to the collection: not an API for other collections.

rclone runs as a child process through _proc (an argv list, logged without its environment);
provider secrets travel in the child's environment (RCLONE_CONFIG_* variables), never in argv.
Every failure is classified here, at the edge, by rclone_errors.classify into a StoreError whose
`kind` (not_found, unreachable, auth, timeout, retryable) callers decide on; no caller reads
rclone's message text. The streams (`open_put_stream`, `open_get_stream`) are _proc.Child objects:
Popen's surface (stdin/stdout, stderr.read(), wait, kill), plus `check()` raising the classified
StoreError and kill+wait when used as a context manager.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, TypeVar

from ansible_collections.offsite.zfs.plugins.module_utils import _proc, mounts, rclone_errors
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError, StoreError

T = TypeVar("T")


@dataclass
class Provider:
    """One configured backup destination."""

    name: str
    remote: str
    parallel_uploads: int = 2
    retries: int = 5
    retry_delay: float = 2.0
    rclone_config: Optional[str] = None
    env: Dict[str, str] = field(default_factory=dict)
    rclone: str = "rclone"
    # Bounds on every rclone call (docs/providers.md): rclone's own connect and idle-IO timeouts and
    # low-level retries, our wall-clock limit for calls that move no chunk (listings, manifests,
    # deletions), and how long an unreachable endpoint is retried before the provider fails.
    connect_timeout: float = 15.0
    io_timeout: float = 60.0
    low_level_retries: int = 2
    call_timeout: float = 300.0
    unreachable_budget: float = 60.0
    bwlimit: Optional[str] = None
    require_mount: Optional[str] = None  # module_utils/mounts.py
    append_only: bool = False  # backup never deletes or overwrites here (attempts.py); prune runs elsewhere


# rclone exit codes that mean "not there" (directory, object); no retry helps those listings.
NOT_FOUND_CODES = (3, 4)


@dataclass
class RemoteObject:
    path: str
    size: int
    mtime: str = ""


__all__ = ["NOT_FOUND_CODES", "Provider", "RemoteObject", "Store", "StoreError", "last_error"]


def last_error(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    for line in reversed(lines):
        if "ERROR" in line or "Failed" in line or "error" in line:
            return line[-400:]
    return lines[-1][-400:] if lines else "no message"


class Store:
    """A provider's rclone remote, rooted at `provider.remote`."""

    def __init__(self, provider: Provider, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if provider.remote.startswith("-") or "\n" in provider.remote or not provider.remote.strip():
            raise OffsiteError("The remote %r of provider %s is not a valid rclone path."
                               % (provider.remote, provider.name), "bad_value")
        self.provider = provider
        self.sleep = sleep
        self.clock = clock
        self.retry_log: List[str] = []
        # File descriptors the rclone children inherit: the operation's lock, so that uploads a killed
        # run started keep the lock until they end (see locks.py).
        self.pass_fds: tuple = ()
        # Where retries are told (the run's log file); set by the operation.
        self.log: Callable[[str], None] = lambda message: None

    # -- plumbing -------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.provider.name

    def path(self, key: str = "") -> str:
        root = self.provider.remote
        if not key:
            return root
        if root.endswith(":") or root.endswith("/"):
            return root + key
        return root + "/" + key

    def env(self) -> Dict[str, str]:
        env = dict(os.environ)
        env.update({str(k): str(v) for k, v in self.provider.env.items()})
        if self.provider.rclone_config:
            env["RCLONE_CONFIG"] = self.provider.rclone_config
        return env

    def bounds(self) -> List[str]:
        """The flags that bound every call: connect and idle-IO timeouts, low-level retries, bandwidth."""
        flags = ["--contimeout", "%gs" % self.provider.connect_timeout, "--timeout", "%gs" % self.provider.io_timeout,
                 "--low-level-retries", str(self.provider.low_level_retries)]
        if self.provider.bwlimit:
            flags += ["--bwlimit", self.provider.bwlimit]
        return flags

    def argv(self, verb: str, *args: str) -> List[str]:
        """rclone VERB, the bounding flags, then the arguments (the paths stay last)."""
        mounts.check(self.provider.name, getattr(self.provider, "require_mount", None))
        return [self.provider.rclone, verb] + self.bounds() + list(args)

    def failure(self, what: str, returncode: int, stderr: bytes) -> StoreError:
        """One sentence for a failed call, naming the provider, the endpoint and the cause."""
        text = stderr.decode("utf-8", "replace")
        found = rclone_errors.classify(returncode, text)
        where = " at %s" % found.endpoint if found.endpoint else ""
        if found.kind == rclone_errors.UNREACHABLE:
            return StoreError("Provider %s cannot be reached%s: %s, so it could not %s; check the endpoint, the "
                              "network and the firewall (%s)." % (self.name, where, found.cause, what,
                                                                  last_error(stderr)),
                              "provider_unreachable", kind=found.kind, returncode=returncode)
        if found.kind == rclone_errors.AUTH:
            return StoreError("Provider %s%s refused the credentials or permissions, so it could not %s; check the "
                              "provider's keys and their rights (%s)." % (self.name, where, what, last_error(stderr)),
                              "provider_auth", kind=found.kind, returncode=returncode)
        if found.kind == rclone_errors.TIMEOUT:
            return StoreError("Provider %s%s did not finish a call to %s within %ss (call_timeout); the call was "
                              "stopped." % (self.name, where, what, "%g" % self.provider.call_timeout),
                              "provider_failed", kind=found.kind, returncode=returncode)
        return StoreError("Provider %s could not %s: %s" % (self.name, what, last_error(stderr)),
                          "provider_failed", kind=found.kind, returncode=returncode)

    def _missing(self) -> StoreError:
        return StoreError("The rclone command (%s) was not found; install rclone on this host."
                          % self.provider.rclone, "rclone_missing", kind=rclone_errors.AUTH)

    def _run(self, args: List[str], what: str, data: Optional[bytes] = None,
             ok_codes: tuple = (0,), timeout: Optional[float] = -1.0) -> _proc.Result:
        """One rclone call, killed after `timeout` seconds (default: the provider's call_timeout; None: no limit).

        A call killed by the limit is classified with return code -9 (rclone_errors: timeout)."""
        limit = self.provider.call_timeout if timeout is not None and timeout < 0 else timeout
        return _proc.run(self.argv(*args), input=data, env=self.env(), pass_fds=self.pass_fds, timeout=limit,
                         ok=ok_codes, classify=lambda rc, err: self.failure(what, rc, err), missing=self._missing)

    def retry(self, func: Callable[[], T], what: str) -> T:
        """Run func, retrying StoreError with exponential backoff and jitter.

        Refused credentials and a missing rclone are not retried; an unreachable endpoint is retried
        only for the provider's unreachable_budget, so a dead provider fails within a few minutes.
        """
        attempt = 0
        started = self.clock()
        first_unreachable: Optional[float] = None
        while True:
            try:
                return func()
            except StoreError as exc:
                now = self.clock()
                if exc.kind == rclone_errors.UNREACHABLE and first_unreachable is None:
                    first_unreachable = started if attempt == 0 else now
                out_of_time = (first_unreachable is not None
                               and now - first_unreachable >= self.provider.unreachable_budget)
                if exc.code == "rclone_missing" or exc.kind == rclone_errors.AUTH or out_of_time \
                        or attempt >= self.provider.retries:
                    if attempt:
                        exc.message = "%s (after %d attempts)" % (exc.message, attempt + 1)
                    raise
                delay = min(60.0, self.provider.retry_delay * (2 ** attempt)) * (0.75 + random.random() / 2)
                if first_unreachable is not None:
                    delay = min(delay, max(0.0, self.provider.unreachable_budget - (now - first_unreachable)))
                note = "%s failed (%s); retry %d in %.1fs" % (what, exc.message, attempt + 1, delay)
                self.retry_log.append(note)
                self.log("provider %s: %s" % (self.name, note))
                attempt += 1
                self.sleep(delay)

    # -- operations -------------------------------------------------------------------
    def put_file(self, key: str, local_path: str) -> None:
        args = ["copyto", "--retries", "1", "--no-check-dest"]
        if ":" not in self.provider.remote.split("/", 1)[0]:
            # A local directory: rclone would MD5 both files to verify a local copy (1.2 CPU s per 256 MiB,
            # docs/benchmarks.md); the manifest's SHA-256 of every object is the check that counts.
            args.append("--ignore-checksum")

        def once() -> None:
            self._run(args + [local_path, self.path(key)], "upload %s" % key, timeout=None)  # bounded by io_timeout
        self.retry(once, "upload of %s" % key)

    def copy(self, source: str, key: str) -> None:
        """Copy an object to another key on this remote (server-side where the backend can)."""
        def once() -> None:
            self._run(["copyto", "--retries", "1", self.path(source), self.path(key)], "copy %s to %s" % (source, key),
                      timeout=None)
        self.retry(once, "copy of %s" % source)

    def put_bytes(self, key: str, data: bytes) -> None:
        def once() -> None:
            self._run(["rcat", self.path(key)], "upload %s" % key, data=data)
        self.retry(once, "upload of %s" % key)

    def open_put_stream(self, key: str) -> _proc.Child:
        """An `rclone rcat` child whose stdin receives the object's bytes; check() raises the StoreError."""
        return _proc.Child(self.argv("rcat", self.path(key)), stdin=_proc.PIPE, stdout=_proc.DEVNULL, env=self.env(),
                           pass_fds=self.pass_fds, classify=lambda rc, err: self.failure("upload %s" % key, rc, err),
                           missing=lambda: StoreError("The rclone command (%s) was not found; install rclone on this "
                                                      "host." % self.provider.rclone, "rclone_missing"))

    def open_get_stream(self, key: str, offset: int = 0) -> _proc.Child:
        """An `rclone cat` child whose stdout gives the object's bytes (from offset on: a resumed download);
        check() raises the StoreError."""
        args = (["--offset", str(offset)] if offset else []) + [self.path(key)]
        return _proc.Child(self.argv("cat", *args), env=self.env(),
                           classify=lambda rc, err: self.failure("download %s" % key, rc, err),
                           missing=lambda: StoreError("The rclone command (%s) was not found; install rclone on this "
                                                      "host." % self.provider.rclone, "rclone_missing"))

    def get_bytes(self, key: str) -> bytes:
        def once() -> bytes:
            data = self._run(["cat", self.path(key)], "download %s" % key).stdout
            if not data and not self._exists(key):  # on a bucket `rclone cat` of a missing object is an empty dir
                raise self.failure("download %s" % key, 3, b"object not found")
            return data
        return self.retry(once, "download of %s" % key)

    def _exists(self, key: str) -> bool:
        parent, _sep, name = key.rpartition("/")
        return any(o.path == name for o in self.list(parent, max_depth=1))

    def list(self, prefix: str = "", max_depth: Optional[int] = None) -> List[RemoteObject]:
        """Every object below prefix, in one `rclone lsjson -R` call. A missing prefix is empty."""
        args = ["lsjson", "-R", "--files-only", "--no-mimetype"]
        if max_depth is not None:
            args += ["--max-depth", str(max_depth)]
        args.append(self.path(prefix))

        def once() -> List[RemoteObject]:
            proc = self._run(args, "list %s" % (prefix or "the remote"), ok_codes=(0, 3))
            if proc.returncode == 3:  # directory not found
                return []
            try:
                entries = json.loads(proc.stdout.decode("utf-8") or "[]")
            except ValueError:
                raise StoreError("Provider %s returned a listing that is not JSON." % self.name, "provider_failed")
            return [RemoteObject(e["Path"], int(e.get("Size", 0)), e.get("ModTime", "")) for e in entries]
        return self.retry(once, "listing of %s" % (prefix or "the remote"))

    def fetch(self, prefix: str, dest: str, include: List[str], max_depth: Optional[int] = None) -> None:
        """Copy the objects below prefix matching include into the local directory dest, in one call."""
        args = ["copy", "--retries", "1"]
        for pattern in include:
            args += ["--include", pattern]
        if max_depth is not None:
            args += ["--max-depth", str(max_depth)]
        args += [self.path(prefix), dest]

        def once() -> None:
            self._run(args, "download manifests below %s" % (prefix or "the remote"), ok_codes=(0, 3))
        self.retry(once, "download of manifests below %s" % prefix)

    def delete(self, key: str) -> None:
        def once() -> None:
            self._run(["deletefile", self.path(key)], "delete %s" % key)
        self.retry(once, "deletion of %s" % key)

    def purge(self, prefix: str) -> None:
        """Delete everything below prefix (a backup directory). Missing is fine."""
        def once() -> None:
            proc = self._run(["purge", "--retries", "1", self.path(prefix)], "delete %s" % prefix,
                             ok_codes=(0, 1, 3, 4))
            # A local remote says 1 ("failed to remove directories") for a missing prefix: fine if nothing is left.
            if proc.returncode == 1 and self.list(prefix):
                raise self.failure("delete %s" % prefix, proc.returncode, proc.stderr)
        self.retry(once, "deletion of %s" % prefix)
