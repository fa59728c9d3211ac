# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The zfs layer's base: the records (Snapshot, Bookmark, Capabilities), the error kinds, and the plumbing.

Private to the collection: not an API for other collections. Import everything from zfs.py.

Every zfs and zpool child runs through `ZfsBase._run` / `_probe` / `_zpool` (and the streams in
_zfs_streams.py), over _proc. A failure becomes a ZfsError whose `kind` is read here from the
return code and stderr, once (`classify`), for zfs-fuse's and OpenZFS's wording alike; callers
decide on `kind`/`kinds`, never on message text.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, FrozenSet, Optional, Sequence, Tuple, Union

from ansible_collections.offsite.zfs.plugins.module_utils import _proc
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError, ZfsError

# Property set by this collection on snapshots it creates.
CREATED_BY_PROPERTY = "offsite.zfs:created"
# Property set on a dataset while a restore receives into it.
PARTIAL_PROPERTY = "offsite.zfs:partial"

# The kinds of a zfs/zpool failure (ZfsError.kind).
TAG_EXISTS = "tag_exists"  # zfs hold: the snapshot already has this tag
NO_SUCH_TAG = "no_such_tag"  # zfs release: the tag is not on the snapshot
MODIFIED = "modified"  # zfs receive: the target changed since its last snapshot (force rolls back)
NO_SPACE = "no_space"  # out of space, or a quota
MOUNT_FAILED = "mount_failed"  # "cannot mount": received or created, but not mounted
NOT_MOUNTED = "not_mounted"  # unmount of what is not mounted
EXISTS = "exists"  # the dataset, snapshot or pool already exists
NOT_FOUND = "not_found"  # the dataset, snapshot, bookmark or pool does not exist
BUSY = "busy"  # dataset or pool busy (a hold, a mount in use, zfs-fuse right after heavy I/O)
PERMISSION = "permission"  # permission denied
UNSUPPORTED = "unsupported"  # this ZFS has no such command, option or property
FAILED = "failed"  # anything else

# (kind, pattern in stderr), most specific first: the first match is `kind`, every match is in `kinds`.
_PATTERNS: Tuple[Tuple[str, str], ...] = (
    (TAG_EXISTS, r"tag already exists"),
    (NO_SUCH_TAG, r"no such tag"),
    (MODIFIED, r"modified"),
    (NO_SPACE, r"\bspace\b|quota"),
    (MOUNT_FAILED, r"cannot mount"),
    (NOT_MOUNTED, r"not currently mounted|not mounted"),
    (EXISTS, r"already exists|destination '?\S+'? exists"),
    (NOT_FOUND, r"does not exist|could not find|no such pool"),
    (BUSY, r"\bbusy\b"),
    (PERMISSION, r"permission denied"),
    (UNSUPPORTED, r"unrecognized command|invalid option|not supported|unsupported|bad property list"),
)
KINDS = tuple(kind for kind, _pattern in _PATTERNS) + (FAILED,)


def classify(returncode: int, stderr: Union[bytes, str]) -> Tuple[str, FrozenSet[str]]:
    """(kind, every kind) of a failed zfs/zpool call, from its stderr (zfs-fuse and OpenZFS wording)."""
    text = (stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr).lower()
    found = [kind for kind, pattern in _PATTERNS if re.search(pattern, text)]
    return (found[0] if found else FAILED), frozenset(found or (FAILED,))


def reason_of(returncode: int, stderr: Union[bytes, str], tool: str = "zfs") -> str:
    """The first line zfs printed, else "zfs exited N"."""
    return _proc.first_line(stderr, "%s exited %d" % (tool, returncode))


def zfs_error(what: str, returncode: int, stderr: Union[bytes, str], tool: str = "zfs") -> ZfsError:
    """`Could not <what>: <first line>`, classified."""
    kind, kinds = classify(returncode, stderr)
    reason = reason_of(returncode, stderr, tool)
    return ZfsError("Could not %s: %s" % (what, reason), "zfs_failed", kind=kind, kinds=kinds, reason=reason,
                    returncode=returncode)


def receive_failure(returncode: int, stderr: Union[bytes, str], label: str = "", target: str = "") -> ZfsError:
    """A failed `zfs receive`: kind (modified, no_space, mount_failed, exists, ...) and reason (its first line,
    or "exit N"). MOUNT_FAILED in kinds means the stream may be in and only the mount failed: check the
    snapshot exists before calling it a failure."""
    kind, kinds = classify(returncode, stderr)
    reason = _proc.first_line(stderr, "exit %d" % returncode)
    return ZfsError("zfs receive of %s into %s failed: %s" % (label, target, reason), "receive_failed", kind=kind,
                    kinds=kinds, reason=reason, returncode=returncode)


def send_failure(returncode: int, stderr: Union[bytes, str], dataset: str, snapshot: str) -> ZfsError:
    """A failed `zfs send` (the message fan-out gives)."""
    kind, kinds = classify(returncode, stderr)
    reason = _proc.first_line(stderr, "exit %d" % returncode)
    return ZfsError("zfs send of %s@%s failed: %s" % (dataset, snapshot, reason), "zfs_failed", kind=kind,
                    kinds=kinds, reason=reason, returncode=returncode)


@dataclass
class Snapshot:
    dataset: str
    name: str
    guid: int
    createtxg: int
    creation: int
    referenced: int = 0

    @property
    def full_name(self) -> str:
        return "%s@%s" % (self.dataset, self.name)


@dataclass
class Bookmark(Snapshot):
    """A bookmark used as an incremental base: name is the snapshot it was made of, bookmark its own name."""

    bookmark: str = ""

    @property
    def full_name(self) -> str:
        return "%s#%s" % (self.dataset, self.bookmark)


class Capabilities:
    """What this ZFS can do. Each part is probed once, when first asked: a restore probes `receive` only,
    a backup `send` (and `written` only when it estimates an incremental)."""

    def __init__(self, send_flags: Optional[str] = None, receive_flags: Optional[str] = None,
                 written: Optional[bool] = None, probe: Optional[Callable[[str], Any]] = None) -> None:
        self._known: Dict[str, Any] = {"send_flags": send_flags, "receive_flags": receive_flags, "written": written}
        self._probe = probe

    def _part(self, name: str) -> Any:
        if self._known[name] is None:
            if self._probe is None:
                raise ValueError("capability %s is neither known nor probed" % name)
            self._known[name] = self._probe(name)
        return self._known[name]

    @property
    def send_flags(self) -> str:
        return str(self._part("send_flags"))

    @property
    def receive_flags(self) -> str:
        return str(self._part("receive_flags"))

    @property
    def written(self) -> bool:
        return bool(self._part("written"))

    @property
    def send_estimate(self) -> bool:
        return all(flag in self.send_flags for flag in "nP")


def _usage_flags(text: str, verb: str) -> str:
    letters = set()
    for line in text.splitlines():
        if verb in line:
            for group in re.findall(r"\[-([A-Za-z]+)\]", line):
                letters.update(group)
    return "".join(sorted(letters))


class ZfsBase:
    """The host's zfs (and the zpool beside it): plumbing and capability detection."""

    def __init__(self, binary: str = "zfs") -> None:
        self.binary = binary
        self._caps: Optional[Capabilities] = None
        self._sleep: Callable[[float], None] = time.sleep  # between busy retries (unit tests pass a no-op)
        self._bookmark_pools: dict = {}

    def _missing(self) -> OffsiteError:
        return OffsiteError("The zfs command (%s) was not found; install ZFS (OpenZFS or zfs-fuse) on this host."
                            % self.binary, "zfs_missing")

    def _run(self, args: Sequence[str], what: str, busy_retries: int = 0, patience: float = 0.0) -> str:
        """zfs ARGS; its stdout, or a ZfsError `Could not <what>: ...`. A busy answer is retried, bounded:
        at least busy_retries times, and for at least `patience` seconds."""
        attempt = 0
        deadline = time.monotonic() + patience
        while True:
            try:
                return _proc.run([self.binary] + list(args), missing=self._missing,
                                 classify=lambda rc, err: zfs_error(what, rc, err)).text
            except ZfsError as error:
                # Right after heavy I/O a dataset can be briefly busy (zfs-fuse especially): retry, bounded.
                if BUSY not in error.kinds or (attempt >= busy_retries and time.monotonic() >= deadline):
                    raise
            attempt += 1
            self._sleep(min(2.0, 0.1 * (2 ** attempt)))

    def _probe(self, args: Sequence[str]) -> _proc.Result:
        """Run zfs without raising on failure: the caller reads the return code and the output."""
        return _proc.run([self.binary] + list(args), check=False)

    def get(self, name: str, prop: str) -> str:
        return self._run(["get", "-H", "-p", "-o", "value", prop, name], "read %s of %s" % (prop, name)).strip()

    def zpool_binary(self) -> str:
        """zpool beside this zfs when it has a directory (tests script both), else zpool from PATH."""
        folder = os.path.dirname(self.binary)
        return os.path.join(folder, "zpool") if folder else "zpool"

    def _zpool(self, args: Sequence[str], what: str = "", retries: int = 0, check: bool = True) -> _proc.Result:
        """zpool ARGS (check: a ZfsError `Could not <what>: ...`; a busy answer is retried, bounded)."""
        attempt = 0
        while True:
            try:
                return _proc.run([self.zpool_binary()] + list(args), check=check, missing=lambda: OffsiteError(
                    "The zpool command (%s) was not found; install ZFS or pass scratch_pool." % self.zpool_binary(),
                    "zfs_missing"), classify=lambda rc, err: zfs_error(what, rc, err, "zpool"))
            except ZfsError as error:
                if attempt >= retries or BUSY not in error.kinds:
                    raise
            attempt += 1
            self._sleep(min(2.0, 0.1 * (2 ** attempt)))  # zfs-fuse: busy for a moment after heavy I/O

    def capabilities(self) -> Capabilities:
        if self._caps is None:
            self._caps = Capabilities(probe=self._capability)
        return self._caps

    def _capability(self, name: str) -> Any:
        """One part of Capabilities: the flags of `zfs send` or `zfs receive` from their usage, or `written`."""
        if name == "written":
            return self._has_written()
        verb = "send" if name == "send_flags" else "receive"
        try:
            proc = self._probe([verb])
        except FileNotFoundError:
            raise self._missing()
        flags = _usage_flags((proc.stdout + proc.stderr).decode("utf-8", "replace"), verb)
        if verb == "receive" and "u" not in flags and self._accepts(verb, "u"):
            flags = "".join(sorted(flags + "u"))  # zfs-fuse has `receive -u` but leaves it out of its usage
        return flags

    def _accepts(self, verb: str, flag: str) -> bool:
        """Whether `zfs VERB -FLAG` (and no operand) is refused for its operand, not for the flag."""
        proc = self._probe([verb, "-" + flag])
        text = (proc.stdout + proc.stderr).decode("utf-8", "replace").lower()
        return "invalid option" not in text and "missing" in text

    def _has_written(self) -> bool:
        """Whether this ZFS has the `written` property. Only the size estimate uses it, so this never fails:
        the property table of `zfs get`'s usage, else any pool that answers (pools may come and go meanwhile)."""
        usage = self._probe(["get"])
        if re.search(r"^\s+written\s", (usage.stdout + usage.stderr).decode("utf-8", "replace"), re.MULTILINE):
            return True
        for pool in self._probe(["list", "-H", "-o", "name", "-d", "0"]).text.split():
            probe = self._probe(["get", "-H", "-o", "property", "all", pool])
            if probe.returncode == 0:
                return "written" in probe.text.split()
        return False
