# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ZFS: snapshots, guids, capabilities, send/receive child processes, size estimates.

Works with OpenZFS 2.x and with older ZFS such as Debian's zfs-fuse (pool version 23,
no `written`, no `send -n -v -P`, no -w/-c/-L/-e): features are detected, never assumed.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils.common import (
    OffsiteError,
    validate_dataset,
    validate_snapshot,
)

# Property set by this collection on snapshots it creates.
CREATED_BY_PROPERTY = "offsite.zfs:created"
# Property set on a dataset while a restore receives into it.
PARTIAL_PROPERTY = "offsite.zfs:partial"

SEND_OPTIONS = {
    "raw": "w",
    "compressed": "c",
    "large_blocks": "L",
    "embedded": "e",
    "properties": "p",
}


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


@dataclass
class Capabilities:
    send_flags: str = ""
    receive_flags: str = ""
    written: bool = False

    @property
    def send_estimate(self) -> bool:
        return all(flag in self.send_flags for flag in "nP")


@dataclass
class SendPlan:
    snapshot: Snapshot
    base: Optional[Snapshot]
    flags: List[str] = field(default_factory=list)

    def argv(self, zfs: str) -> List[str]:
        argv = [zfs, "send"] + self.flags
        if self.base is not None:
            argv += ["-i", self.base.full_name]
        argv.append(self.snapshot.full_name)
        return argv


def _usage_flags(text: str, verb: str) -> str:
    letters = set()
    for line in text.splitlines():
        if verb in line:
            for group in re.findall(r"\[-([A-Za-z]+)\]", line):
                letters.update(group)
    return "".join(sorted(letters))


class Zfs:
    """The host's zfs command. Every call is an argv list; names are validated first."""

    def __init__(self, binary: str = "zfs") -> None:
        self.binary = binary
        self._caps: Optional[Capabilities] = None
        self._bookmark_pools: Dict[str, bool] = {}

    # -- plumbing -------------------------------------------------------------------
    def run(self, args: Sequence[str], what: str, busy_retries: int = 0) -> str:
        attempt = 0
        while True:
            try:
                proc = subprocess.run([self.binary] + list(args), stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
            except FileNotFoundError:
                raise OffsiteError("The zfs command (%s) was not found; install ZFS (OpenZFS or zfs-fuse) on this "
                                   "host." % self.binary, "zfs_missing")
            # Right after heavy I/O a dataset can be briefly busy (zfs-fuse especially): retry, bounded.
            if proc.returncode != 0 and attempt < busy_retries and b"busy" in proc.stderr:
                attempt += 1
                time.sleep(min(2.0, 0.1 * (2 ** attempt)))
                continue
            break
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise OffsiteError("Could not %s: %s" % (what, err[0] if err else "zfs exited %d" % proc.returncode),
                               "zfs_failed")
        return proc.stdout.decode("utf-8", "replace")

    def capabilities(self) -> Capabilities:
        if self._caps is None:
            caps = Capabilities()
            for verb in ("send", "receive"):
                try:
                    proc = self._probe([verb])
                except FileNotFoundError:
                    raise OffsiteError("The zfs command (%s) was not found; install ZFS (OpenZFS or zfs-fuse) "
                                       "on this host." % self.binary, "zfs_missing")
                text = (proc.stdout + proc.stderr).decode("utf-8", "replace")
                flags = _usage_flags(text, verb)
                if verb == "send":
                    caps.send_flags = flags
                else:
                    caps.receive_flags = flags
            caps.written = self._has_written()
            self._caps = caps
        return self._caps

    def _has_written(self) -> bool:
        """Whether this ZFS has the `written` property. Only the size estimate uses it, so this never fails:
        the property table of `zfs get`'s usage, else any pool that answers (pools may come and go meanwhile)."""
        usage = self._probe(["get"])
        if re.search(r"^\s+written\s", (usage.stdout + usage.stderr).decode("utf-8", "replace"), re.MULTILINE):
            return True
        for pool in self._probe(["list", "-H", "-o", "name", "-d", "0"]).stdout.decode("utf-8", "replace").split():
            probe = self._probe(["get", "-H", "-o", "property", "all", pool])
            if probe.returncode == 0:
                return "written" in probe.stdout.decode("utf-8", "replace").split()
        return False

    def _probe(self, args: Sequence[str]) -> "subprocess.CompletedProcess[bytes]":
        """Run zfs without raising on failure: the caller reads the return code and the output."""
        return subprocess.run([self.binary] + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, check=False)

    # -- datasets and snapshots ----------------------------------------------------
    def exists(self, name: str) -> bool:
        proc = self._probe(["list", "-H", "-o", "name", name])
        return proc.returncode == 0 and proc.stdout.decode().strip() == name

    def get(self, name: str, prop: str) -> str:
        return self.run(["get", "-H", "-p", "-o", "value", prop, name], "read %s of %s" % (prop, name)).strip()

    def origin(self, name: str) -> Optional[Tuple[int, int]]:
        """When the dataset itself was made: (creation, createtxg); None when zfs cannot say."""
        try:
            out = self.run(["get", "-H", "-p", "-o", "value", "creation,createtxg", name],
                           "read the creation of %s" % name)
            creation, createtxg = (int(v) for v in out.split())
        except (OffsiteError, ValueError):
            return None
        return creation, createtxg

    def dataset_type(self, name: str) -> str:
        return self.get(name, "type")

    def children(self, dataset: str) -> List[str]:
        """Every filesystem and volume at or below dataset, parents first."""
        out = self.run(["list", "-H", "-o", "name,type", "-r", dataset], "list the datasets under %s" % dataset)
        names = []
        for line in out.splitlines():
            parts = line.split("\t")
            if len(parts) == 2 and parts[1] in ("filesystem", "volume"):
                names.append(parts[0])
        return names

    def snapshots(self, dataset: str) -> List[Snapshot]:
        """Snapshots of dataset (not of its children), oldest first by createtxg."""
        validate_dataset(dataset)
        if not self.exists(dataset):
            raise OffsiteError("The dataset %s does not exist on this host." % dataset, "no_dataset")
        out = self.run(["get", "-H", "-p", "-r", "-d", "1", "-o", "name,property,value",
                        "guid,createtxg,creation,referenced", dataset],
                       "list the snapshots of %s" % dataset)
        props: Dict[str, Dict[str, str]] = {}
        for line in out.splitlines():
            parts = line.split("\t")
            if len(parts) != 3 or "@" not in parts[0]:
                continue
            ds, _sep, snap = parts[0].partition("@")
            if ds != dataset:
                continue
            props.setdefault(snap, {})[parts[1]] = parts[2]
        snaps = []
        for snap, values in props.items():
            try:
                snaps.append(Snapshot(dataset, snap, int(values["guid"]), int(values["createtxg"]),
                                      int(values["creation"]), int(values.get("referenced", "0") or 0)))
            except (KeyError, ValueError):
                continue
        snaps.sort(key=lambda s: s.createtxg)
        return snaps

    def snapshot(self, dataset: str, name: str) -> Snapshot:
        validate_snapshot(name)
        for snap in self.snapshots(dataset):
            if snap.name == name:
                return snap
        raise OffsiteError("The snapshot %s@%s does not exist on this host." % (dataset, name), "no_snapshot")

    def create_snapshot(self, dataset: str, name: str, recursive: bool = False,
                        properties: Optional[Dict[str, str]] = None) -> None:
        validate_dataset(dataset)
        validate_snapshot(name)
        args = ["snapshot"]
        if recursive:
            args.append("-r")
        for key, value in (properties or {}).items():
            args += ["-o", "%s=%s" % (key, value)]
        args.append("%s@%s" % (dataset, name))
        try:
            self.run(args, "create the snapshot %s@%s" % (dataset, name))
        except OffsiteError:
            if not properties:
                raise
            # Older ZFS has no `snapshot -o`: create, then set the properties.
            self.run([a for a in args if a != "-o" and "=" not in a], "create the snapshot %s@%s" % (dataset, name))
            for key, value in properties.items():
                self.set_property("%s@%s" % (dataset, name), key, value, recursive=recursive)

    def set_property(self, name: str, key: str, value: str, recursive: bool = False) -> None:
        targets = [name]
        if recursive and "@" in name:
            ds, snap = name.split("@", 1)
            targets = ["%s@%s" % (child, snap) for child in self.children(ds)]
        for target in targets:
            # Changing mountpoint remounts: zfs-fuse may answer busy for a moment after a receive.
            self.run(["set", "%s=%s" % (key, value), target], "set %s on %s" % (key, target), busy_retries=3)

    def inherit_property(self, name: str, key: str) -> None:
        self.run(["inherit", key, name], "inherit %s on %s" % (key, name), busy_retries=3)

    def destroy(self, name: str, recursive: bool = False) -> None:
        """Destroy name (forcing an unmount: only ever called on datasets this collection made)."""
        args = ["destroy", "-f"] + (["-r"] if recursive else []) + [name]
        self.run(args, "destroy %s" % name, busy_retries=5)

    def rename(self, old: str, new: str) -> None:
        try:
            self.run(["rename", old, new], "rename %s to %s" % (old, new), busy_retries=2)
            return
        except OffsiteError as exc:
            if "busy" not in exc.message:
                raise
        # zfs-fuse keeps a just-received file system busy: unmount, rename, mount again. A rename that failed
        # busy may already have left it unmounted (it unmounts first, then cannot remount under load).
        if self.get(old, "mounted") == "yes":
            try:
                self.run(["unmount", old], "unmount %s" % old, busy_retries=5)
            except OffsiteError as exc:
                if "not currently mounted" not in exc.message:
                    raise
        self.run(["rename", old, new], "rename %s to %s" % (old, new), busy_retries=5)
        try:
            self.run(["mount", new], "mount %s" % new)
        except OffsiteError:
            pass  # canmount=off, mountpoint=none or legacy: nothing to mount

    # -- send and receive ------------------------------------------------------------
    def send_plan(self, snapshot: Snapshot, base: Optional[Snapshot], options: Dict[str, object]) -> SendPlan:
        caps = self.capabilities()
        flags = []
        for option, letter in SEND_OPTIONS.items():
            wanted = options.get(option, "auto")
            if wanted is True or wanted == "yes" or wanted == "true":
                if letter not in caps.send_flags:
                    raise OffsiteError("This host's zfs send has no -%s, so send option %s cannot be used; set it to "
                                       "auto or false." % (letter, option), "unsupported")
                flags.append("-" + letter)
            elif (wanted == "auto" and option in ("compressed", "large_blocks", "embedded")
                  and letter in caps.send_flags):
                flags.append("-" + letter)
        return SendPlan(snapshot, base, flags)

    def estimate(self, plan: SendPlan) -> tuple[int, str]:
        """Estimated stream bytes and how they were estimated."""
        caps = self.capabilities()
        if caps.send_estimate:
            argv = plan.argv(self.binary)
            argv[2:2] = ["-n", "-v", "-P"]
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  check=False)
            text = (proc.stdout + proc.stderr).decode("utf-8", "replace")
            match = re.search(r"^size\s+(\d+)", text, re.MULTILINE)
            if proc.returncode == 0 and match:
                return int(match.group(1)), "zfs send -nvP"
        snap = plan.snapshot
        if plan.base is not None and caps.written and not isinstance(plan.base, Bookmark):
            value = self.get(snap.full_name, "written@%s" % plan.base.name)
            if value.isdigit():
                return int(value), "written@base"
        referenced = int(self.get(snap.full_name, "referenced") or 0)
        if plan.base is None:
            return referenced, "referenced"
        return referenced, "referenced (upper bound; this ZFS has no written property)"

    def send(self, plan: SendPlan) -> subprocess.Popen:
        return subprocess.Popen(plan.argv(self.binary), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, bufsize=0)

    def receive(self, target: str, force: bool = False, no_mount: bool = True,
                properties: Optional[Dict[str, str]] = None) -> subprocess.Popen:
        caps = self.capabilities()
        argv = [self.binary, "receive"]
        if force:
            argv.append("-F")
        if no_mount and "u" in caps.receive_flags:
            argv.append("-u")
        if properties and "o" in caps.receive_flags:
            for key, value in properties.items():
                argv += ["-o", "%s=%s" % (key, value)]
        argv.append(target)
        return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                bufsize=0)

    # -- holds and bookmarks (chains that survive snapshot managers: holds.py decides) ----------
    def hold(self, tag: str, name: str) -> bool:
        """Place the user hold tag on the snapshot name; False when it was already there."""
        try:
            self.run(["hold", tag, name], "hold %s with tag %s" % (name, tag), busy_retries=3)
        except OffsiteError as exc:
            if "tag already exists" in exc.message:
                return False
            raise
        return True

    def release(self, tag: str, name: str) -> bool:
        """Release the user hold tag from name; False when the snapshot or the tag is not there."""
        try:
            self.run(["release", tag, name], "release the hold %s on %s" % (tag, name), busy_retries=3)
        except OffsiteError as exc:
            if any(text in exc.message for text in ("no such tag", "does not exist", "could not find")):
                return False
            raise
        return True

    def userrefs(self, name: str) -> int:
        """How many user holds name has (the userrefs property; 0 where this ZFS does not know it)."""
        value = self.get(name, "userrefs")
        return int(value) if value.isdigit() else 0

    def holds(self, name: str) -> Optional[List[str]]:
        """The hold tags on name, or None where `zfs holds` cannot list them (zfs-fuse lacks its helper)."""
        proc = self._probe(["holds", "-H", name])
        if proc.returncode != 0:
            return None
        tags = []
        for line in proc.stdout.decode("utf-8", "replace").splitlines():
            parts = line.split("\t")
            if len(parts) >= 2 and parts[0] == name:
                tags.append(parts[1])
        return tags

    def zpool_binary(self) -> str:
        """zpool beside this zfs when it has a directory (tests script both), else zpool from PATH."""
        folder = os.path.dirname(self.binary)
        return os.path.join(folder, "zpool") if folder else "zpool"

    def bookmarks_supported(self, dataset: str) -> bool:
        """Whether this zfs has `zfs bookmark` and the dataset's pool has the bookmarks feature enabled."""
        pool = dataset.split("/", 1)[0]
        cached = self._bookmark_pools.get(pool)
        if cached is not None:
            return cached
        usage = self._probe(["bookmark"])  # usage text: OpenZFS lists the verb, zfs-fuse has no such command
        text = (usage.stdout + usage.stderr).decode("utf-8", "replace")
        supported = bool(re.search(r"^\s+bookmark\s", text, re.MULTILINE))
        if supported:
            try:
                proc = self._probe_zpool(["get", "-H", "-o", "value", "feature@bookmarks", pool])
                supported = proc.returncode == 0 and proc.stdout.decode().strip() in ("enabled", "active")
            except OSError:
                supported = False
        self._bookmark_pools[pool] = supported
        return supported

    def _probe_zpool(self, args: Sequence[str]) -> "subprocess.CompletedProcess[bytes]":
        return subprocess.run([self.zpool_binary()] + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, check=False)

    def bookmark(self, snapshot: Snapshot, name: str) -> None:
        """Bookmark snapshot as dataset#name."""
        validate_snapshot(name)
        self.run(["bookmark", snapshot.full_name, "%s#%s" % (snapshot.dataset, name)],
                 "bookmark %s as %s#%s" % (snapshot.full_name, snapshot.dataset, name))

    def bookmarks(self, dataset: str) -> List[Bookmark]:
        """The bookmarks of dataset, oldest first (name is left empty: only the manifests know the snapshot's)."""
        validate_dataset(dataset)
        out = self.run(["list", "-H", "-p", "-t", "bookmark", "-d", "1", "-o", "name,guid,createtxg,creation",
                        dataset], "list the bookmarks of %s" % dataset)
        marks = []
        for line in out.splitlines():
            parts = line.split("\t")
            if len(parts) != 4 or "#" not in parts[0]:
                continue
            ds, _sep, mark = parts[0].partition("#")
            if ds != dataset:
                continue
            try:
                marks.append(Bookmark(ds, "", int(parts[1]), int(parts[2]), int(parts[3]), bookmark=mark))
            except ValueError:
                continue
        marks.sort(key=lambda b: b.createtxg)
        return marks

    def destroy_bookmark(self, dataset: str, name: str) -> None:
        self.run(["destroy", "%s#%s" % (dataset, name)], "destroy the bookmark %s#%s" % (dataset, name))
