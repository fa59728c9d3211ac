# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ZFS: datasets, snapshots, properties, mounts, clones, scratch pools, holds, bookmarks, send/receive streams.

Private to the collection: not an API for other collections.

The ONLY place that builds zfs and zpool argv (with its private parts: _zfs_base.py for the records,
the error kinds and the plumbing, _zfs_streams.py for send plans, estimates and the send/receive
children, _zfs_holds.py for holds and bookmarks). Everything is imported from here.

Works with OpenZFS 2.x and with older ZFS such as Debian's zfs-fuse (pool version 23,
no `written`, no `send -n -v -P`, no -w/-c/-L/-e): features are detected, never assumed.

Errors: a failed call raises ZfsError (errors.py; code zfs_failed, receive_failed for a receive) with
`kind` and `kinds` classified from zfs's stderr by `classify` (KINDS: tag_exists, no_such_tag, modified,
no_space, mount_failed, not_mounted, exists, not_found, busy, permission, unsupported, failed) and
`reason` (its first line). `receive_failure(returncode, stderr)` classifies a finished receive.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Set, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils._holders import in_use_by
from ansible_collections.offsite.zfs.plugins.module_utils._zfs_base import (  # re-exported: see __all__
    BUSY,
    CREATED_BY_PROPERTY,
    EXISTS,
    FAILED,
    KINDS,
    MODIFIED,
    MOUNT_FAILED,
    NO_SPACE,
    NO_SUCH_TAG,
    NOT_FOUND,
    NOT_MOUNTED,
    PARTIAL_PROPERTY,
    PERMISSION,
    TAG_EXISTS,
    UNSUPPORTED,
    Bookmark,
    Capabilities,
    Snapshot,
    classify,
    receive_failure,
    send_failure,
    zfs_error,
)
from ansible_collections.offsite.zfs.plugins.module_utils._zfs_holds import HoldsMixin
from ansible_collections.offsite.zfs.plugins.module_utils._zfs_streams import (  # re-exported: see __all__
    SEND_OPTIONS,
    SendPlan,
    StreamsMixin,
)
from ansible_collections.offsite.zfs.plugins.module_utils.common import validate_dataset, validate_snapshot
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError, ZfsError

__all__ = ["Zfs", "ZfsError", "Snapshot", "Bookmark", "Capabilities", "SendPlan", "SEND_OPTIONS",
           "CREATED_BY_PROPERTY", "PARTIAL_PROPERTY", "KINDS", "BUSY", "EXISTS", "FAILED", "MODIFIED", "MOUNT_FAILED",
           "NO_SPACE", "NO_SUCH_TAG", "NOT_FOUND", "NOT_MOUNTED", "PERMISSION", "TAG_EXISTS", "UNSUPPORTED",
           "classify", "receive_failure", "send_failure", "zfs_error"]


class Zfs(HoldsMixin, StreamsMixin):
    """The host's zfs command. Every call is an argv list; names are validated first."""

    # -- datasets and snapshots ----------------------------------------------------
    def exists(self, name: str) -> bool:
        proc = self._probe(["list", "-H", "-o", "name", name])
        return proc.returncode == 0 and proc.text.strip() == name

    def origin(self, name: str) -> Optional[Tuple[int, int]]:
        """When the dataset itself was made: (creation, createtxg); None when zfs cannot say."""
        try:
            out = self._run(["get", "-H", "-p", "-o", "value", "creation,createtxg", name],
                            "read the creation of %s" % name)
            creation, createtxg = (int(v) for v in out.split())
        except (OffsiteError, ValueError):
            return None
        return creation, createtxg

    def dataset_type(self, name: str) -> str:
        return self.get(name, "type")

    def property_source(self, name: str, prop: str) -> str:
        """Where the value of prop comes from: local, default, inherited from ..., received, -."""
        return self._run(["get", "-H", "-o", "source", prop, name], "read the %s of %s" % (prop, name)).strip()

    def children(self, dataset: str) -> List[str]:
        """Every filesystem and volume at or below dataset, parents first."""
        out = self._run(["list", "-H", "-o", "name,type", "-r", dataset], "list the datasets under %s" % dataset)
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
        props: Dict[str, Dict[str, str]] = {}
        for snap, prop, value in self._snapshot_values(dataset, "guid,createtxg,creation,referenced",
                                                       "list the snapshots of %s" % dataset):
            props.setdefault(snap, {})[prop] = value
        snaps = []
        for snap, values in props.items():
            try:
                snaps.append(Snapshot(dataset, snap, int(values["guid"]), int(values["createtxg"]),
                                      int(values["creation"]), int(values.get("referenced", "0") or 0)))
            except (KeyError, ValueError):
                continue
        snaps.sort(key=lambda s: s.createtxg)
        return snaps

    def _snapshot_values(self, dataset: str, props: str, what: str) -> List[Tuple[str, str, str]]:
        """(snapshot name, property, value) of the snapshots of dataset itself, via `zfs get -r -d 1`
        (which zfs-fuse and OpenZFS both have)."""
        out = self._run(["get", "-H", "-p", "-r", "-d", "1", "-o", "name,property,value", props, dataset], what)
        found = []
        for line in out.splitlines():
            parts = line.split("\t")
            if len(parts) != 3 or "@" not in parts[0]:
                continue
            ds, _sep, snap = parts[0].partition("@")
            if ds == dataset:
                found.append((snap, parts[1], parts[2]))
        return found

    def snapshot_property(self, dataset: str, prop: str) -> Dict[str, str]:
        """snapshot name -> the value of prop, for every snapshot of dataset (not of its children)."""
        return {snap: value for snap, _prop, value in self._snapshot_values(
            dataset, prop, "read %s of the snapshots of %s" % (prop, dataset))}

    def snapshot_names_below(self, root: str) -> Dict[str, Set[str]]:
        """dataset -> the names of its snapshots, for root and every dataset below it."""
        out = self._run(["list", "-H", "-t", "snapshot", "-o", "name", "-r", root],
                        "list the snapshots below %s" % root)
        names: Dict[str, Set[str]] = {}
        for line in out.splitlines():
            dataset, _at, snap = line.strip().partition("@")
            if snap:
                names.setdefault(dataset, set()).add(snap)
        return names

    def snapshot_guids_below(self, root: str) -> Dict[str, Set[str]]:
        """dataset -> the guids of its snapshots, for root (a pool) and every dataset below it."""
        # `zfs get` (not `zfs list -p`, which older ZFS such as zfs-fuse lacks); datasets are skipped below
        out = self._run(["get", "-H", "-p", "-r", "-o", "name,value", "guid", root],
                        "list the snapshots of pool %s" % root)
        found: Dict[str, Set[str]] = {}
        for line in out.splitlines():
            name, _tab, guid = line.strip().partition("\t")
            if "@" in name:
                found.setdefault(name.split("@", 1)[0], set()).add(guid.strip())
        return found

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
            self._run(args, "create the snapshot %s@%s" % (dataset, name))
        except OffsiteError:
            if not properties:
                raise
            # Older ZFS has no `snapshot -o`: create, then set the properties.
            self._run([a for a in args if a != "-o" and "=" not in a], "create the snapshot %s@%s" % (dataset, name))
            for key, value in properties.items():
                self.set_property("%s@%s" % (dataset, name), key, value, recursive=recursive)

    def create(self, name: str, properties: Optional[Dict[str, str]] = None, what: str = "") -> None:
        """zfs create -o key=value ... name."""
        validate_dataset(name)
        args = ["create"] + [a for k, v in (properties or {}).items() for a in ("-o", "%s=%s" % (k, v))]
        self._run(args + [name], what or "create the dataset %s" % name)

    def clone(self, snapshot: str, name: str, properties: Optional[Dict[str, str]] = None) -> None:
        """zfs clone the snapshot as name with properties (older ZFS, without clone -o: clone, then set them)."""
        props = properties or {}
        try:
            self._run(["clone"] + [a for k, v in props.items() for a in ("-o", "%s=%s" % (k, v))] + [snapshot, name],
                      "clone %s" % snapshot)
        except OffsiteError:
            if not props or self.exists(name):
                raise
            self._run(["clone", snapshot, name], "clone %s" % snapshot)
            for key, value in props.items():
                self.set_property(name, key, value)

    def set_property(self, name: str, key: str, value: str, recursive: bool = False) -> None:
        targets = [name]
        if recursive and "@" in name:
            ds, snap = name.split("@", 1)
            targets = ["%s@%s" % (child, snap) for child in self.children(ds)]
        for target in targets:
            # Changing mountpoint remounts: zfs-fuse may answer busy for a moment after a receive.
            self._run(["set", "%s=%s" % (key, value), target], "set %s on %s" % (key, target), busy_retries=3)

    def inherit_property(self, name: str, key: str) -> None:
        self._run(["inherit", key, name], "inherit %s on %s" % (key, name), busy_retries=3)

    def mount(self, name: str, busy_retries: int = 0) -> None:
        self._run(["mount", name], "mount %s" % name, busy_retries=busy_retries)

    def destroy(self, name: str, recursive: bool = False) -> None:
        """Destroy name (forcing an unmount: only ever called on datasets this collection made)."""
        args = ["destroy", "-f"] + (["-r"] if recursive else []) + [name]
        self._run(args, "destroy %s" % name, busy_retries=5)

    def rename(self, old: str, new: str, patience: float = 0.0) -> None:
        """zfs rename old new. A busy answer is retried: after unmounting old, for at least `patience` seconds
        (zfs-fuse can refuse a just-received dataset for a long while under load). A rename still refused
        busy names the processes that keep old's mountpoint busy, when there are any."""
        try:
            self._run(["rename", old, new], "rename %s to %s" % (old, new), busy_retries=2)
            return
        except ZfsError as exc:
            if BUSY not in exc.kinds:
                raise
        # zfs-fuse keeps a just-received file system busy: unmount, rename, mount again. A rename that failed
        # busy may already have left it unmounted (it unmounts first, then cannot remount under load).
        if self.get(old, "mounted") == "yes":
            try:
                self._run(["unmount", old], "unmount %s" % old, busy_retries=5)
            except ZfsError as exc:
                if NOT_MOUNTED not in exc.kinds:
                    raise self._named_holders(exc, old)
        try:
            self._run(["rename", old, new], "rename %s to %s" % (old, new), busy_retries=5, patience=patience)
        except ZfsError as exc:
            raise self._named_holders(exc, old)
        try:
            self.mount(new)
        except OffsiteError:
            pass  # canmount=off, mountpoint=none or legacy: nothing to mount

    def _named_holders(self, exc: ZfsError, name: str) -> ZfsError:
        """exc, naming the processes that keep name's mountpoint busy when it is a busy answer."""
        if BUSY not in exc.kinds:
            return exc
        try:
            mountpoint = self.get(name, "mountpoint")
        except OffsiteError:
            return exc
        words = in_use_by(mountpoint)
        if words:
            exc.message += "." + words
            exc.args = (exc.message,)
        return exc

    # -- pools (the scratch places of path restores and drills) ------------------------
    def pool_exists(self, pool: str) -> bool:
        proc = self._zpool(["list", "-H", "-o", "name", pool], check=False)
        return proc.returncode == 0 and proc.text.strip() == pool

    def create_pool(self, pool: str, vdev: str, properties: Dict[str, str], what: str) -> None:
        """zpool create -m none -O key=value ... pool vdev (a file-backed pool)."""
        args = ["create", "-m", "none"] + [a for k, v in properties.items() for a in ("-O", "%s=%s" % (k, v))]
        self._zpool(args + [pool, vdev], what)

    def destroy_pool(self, pool: str, retries: int = 8) -> None:
        self._zpool(["destroy", "-f", pool], "destroy the scratch pool %s" % pool, retries=retries)
