# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Store: one provider = one rclone path. Put, get, list, delete, with retries.

rclone runs as a child process with an argv list; provider secrets travel in the
child's environment (RCLONE_CONFIG_* variables), never in argv.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, TypeVar

from ansible_collections.offsite.zfs.plugins.module_utils.common import OffsiteError

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
    append_only: bool = False  # backup never deletes or overwrites here (attempts.py); prune runs elsewhere


@dataclass
class RemoteObject:
    path: str
    size: int
    mtime: str = ""


class StoreError(OffsiteError):
    pass


def last_error(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    for line in reversed(lines):
        if "ERROR" in line or "Failed" in line or "error" in line:
            return line[-400:]
    return lines[-1][-400:] if lines else "no message"


class Store:
    """A provider's rclone remote, rooted at `provider.remote`."""

    def __init__(self, provider: Provider, sleep: Callable[[float], None] = time.sleep) -> None:
        if provider.remote.startswith("-") or "\n" in provider.remote or not provider.remote.strip():
            raise OffsiteError("The remote %r of provider %s is not a valid rclone path."
                               % (provider.remote, provider.name), "bad_value")
        self.provider = provider
        self.sleep = sleep
        self.retry_log: List[str] = []
        # File descriptors the rclone children inherit: the operation's lock, so that uploads a killed
        # run started keep the lock until they end (see locks.py).
        self.pass_fds: tuple = ()

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

    def argv(self, *args: str) -> List[str]:
        return [self.provider.rclone] + list(args)

    def _run(self, args: List[str], what: str, data: Optional[bytes] = None,
             ok_codes: tuple = (0,)) -> subprocess.CompletedProcess:
        try:
            proc = subprocess.run(self.argv(*args), input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=self.env(), check=False, pass_fds=self.pass_fds,
                                  stdin=None if data is not None else subprocess.DEVNULL)
        except FileNotFoundError:
            raise StoreError("The rclone command (%s) was not found; install rclone on this host."
                             % self.provider.rclone, "rclone_missing")
        if proc.returncode not in ok_codes:
            raise StoreError("Provider %s could not %s: %s" % (self.name, what, last_error(proc.stderr)),
                             "provider_failed", returncode=proc.returncode)
        return proc

    def retry(self, func: Callable[[], T], what: str) -> T:
        """Run func, retrying StoreError with exponential backoff and jitter."""
        attempt = 0
        while True:
            try:
                return func()
            except StoreError as exc:
                if exc.code == "rclone_missing" or attempt >= self.provider.retries:
                    if attempt:
                        exc.message = "%s (after %d attempts)" % (exc.message, attempt + 1)
                    raise
                delay = min(60.0, self.provider.retry_delay * (2 ** attempt)) * (0.75 + random.random() / 2)
                self.retry_log.append("%s failed (%s); retry %d in %.1fs" % (what, exc.message, attempt + 1, delay))
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
            self._run(args + [local_path, self.path(key)], "upload %s" % key)
        self.retry(once, "upload of %s" % key)

    def copy(self, source: str, key: str) -> None:
        """Copy an object to another key on this remote (server-side where the backend can)."""
        def once() -> None:
            self._run(["copyto", "--retries", "1", self.path(source), self.path(key)], "copy %s to %s" % (source, key))
        self.retry(once, "copy of %s" % source)

    def put_bytes(self, key: str, data: bytes) -> None:
        def once() -> None:
            self._run(["rcat", self.path(key)], "upload %s" % key, data=data)
        self.retry(once, "upload of %s" % key)

    def open_put_stream(self, key: str) -> subprocess.Popen:
        """An `rclone rcat` child whose stdin receives the object's bytes."""
        try:
            return subprocess.Popen(self.argv("rcat", self.path(key)), stdin=subprocess.PIPE,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=self.env(), bufsize=0,
                                    pass_fds=self.pass_fds)
        except FileNotFoundError:
            raise StoreError("The rclone command (%s) was not found; install rclone on this host."
                             % self.provider.rclone, "rclone_missing")

    def open_get_stream(self, key: str) -> subprocess.Popen:
        """An `rclone cat` child whose stdout gives the object's bytes."""
        try:
            return subprocess.Popen(self.argv("cat", self.path(key)), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env(), bufsize=0)
        except FileNotFoundError:
            raise StoreError("The rclone command (%s) was not found; install rclone on this host."
                             % self.provider.rclone, "rclone_missing")

    def get_bytes(self, key: str) -> bytes:
        def once() -> bytes:
            return self._run(["cat", self.path(key)], "download %s" % key).stdout
        return self.retry(once, "download of %s" % key)

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
            self._run(["purge", self.path(prefix)], "delete %s" % prefix, ok_codes=(0, 3, 4))
        self.retry(once, "deletion of %s" % prefix)
