# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ScriptedZfs: a test double of plugins/module_utils/zfs.py's Zfs, datasets and snapshots in dicts.

The read side answers from what the test scripted: snapshots (guid, createtxg, creation,
referenced), dataset type and properties, bookmarks, user holds, and the capabilities a zfs
advertises. The small writes that operations make beside a stream (snapshot, hold, release,
bookmark, set, inherit, destroy, rename) change that state and are recorded in `calls`. A send
stream exists only where the test scripted its bytes (`script_send`): it comes through a real
pipe, as `zfs send`'s stdout does. receive, the scratch pools and the raw `_run`/`_probe`/`_zpool`
raise, so a unit test that reaches one fails naming the seam instead of running a real zfs.

Errors carry the codes of the real class (no_dataset, no_snapshot, zfs_failed) and, for zfs_failed,
the ZfsError kind the real zfs.classify gives the same text (busy, not_found, exists, tag_exists).
"""

from __future__ import annotations

import io
import os
import select
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils.common import (
    validate_dataset,
    validate_snapshot,
)
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import (
    Bookmark,
    Capabilities,
    SendPlan,
    Snapshot,
    Zfs,
    ZfsError,
    send_failure,
    zfs_error,
)


def _failed(what: str, stderr: str) -> ZfsError:
    """What Zfs._run raises for this stderr: `Could not <what>: <stderr>`, classified by the real code."""
    return zfs_error(what, 1, stderr)


# What OpenZFS 2.x advertises (zfs send/receive usage), and what zfs-fuse does.
OPENZFS_SEND = "DLPRbcehnpvw"
OPENZFS_RECEIVE = "AFMdehnosuv"
ZFS_FUSE_SEND = "DRpv"
ZFS_FUSE_RECEIVE = "Fdnuv"


class SendChild:
    """A scripted `zfs send`: its bytes through a real pipe (the backup reads stdout's file descriptor),
    stderr, wait, kill. A writer thread feeds the pipe; kill stops it, so no thread outlives the test."""

    def __init__(self, data: bytes, returncode: int = 0, stderr: bytes = b"", dataset: str = "",
                 snapshot: str = "") -> None:
        self._label = (dataset, snapshot)
        read_fd, self._write_fd = os.pipe()
        self.stdout = os.fdopen(read_fd, "rb", buffering=0)
        self.stderr = io.BytesIO(stderr)
        self.stdin = None
        self.pid = -1
        self.returncode: Optional[int] = None
        self._exit = returncode
        self._killed = threading.Event()
        self._thread = threading.Thread(target=self._feed, args=(data,), name="scripted-zfs-send", daemon=True)
        self._thread.start()

    def _feed(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view and not self._killed.is_set():
                # A bounded wait for room in the pipe, so that kill is seen while the reader has stopped.
                if select.select([], [self._write_fd], [], 0.05)[1]:
                    view = view[os.write(self._write_fd, view[:65536]):]
        except OSError:
            pass
        finally:
            os.close(self._write_fd)

    def kill(self) -> None:
        if self.returncode is None and self._thread.is_alive():
            self._killed.set()
            self._exit = -9

    terminate = kill

    def poll(self) -> Optional[int]:
        return None if self._thread.is_alive() else self.wait()

    def wait(self, timeout: Optional[float] = None) -> int:
        self._thread.join(timeout)
        if self.returncode is None and not self._thread.is_alive():
            self.returncode = self._exit
        return self.returncode if self.returncode is not None else -1

    # _proc.Child's surface: finish, error (the real zfs layer's send_failure), check, close
    def finish(self, timeout: Optional[float] = None) -> int:
        return self.wait(timeout)

    def error(self) -> BaseException:
        return send_failure(self.returncode if self.returncode is not None else -1, self.stderr.getvalue(),
                            *self._label)

    def check(self, ok: Sequence[int] = (0,), timeout: Optional[float] = None) -> int:
        rc = self.finish(timeout)
        if rc not in ok:
            raise self.error()
        return rc

    def close(self) -> None:
        self.kill()
        self.wait()
        self.stdout.close()


@dataclass
class _Dataset:
    name: str
    kind: str
    creation: int
    createtxg: int
    props: Dict[str, str] = field(default_factory=dict)


@dataclass
class _Snap:
    snapshot: Snapshot
    props: Dict[str, str] = field(default_factory=dict)
    holds: List[str] = field(default_factory=list)


class ScriptedZfs(Zfs):
    """zfs as a test scripts it. `calls` records the writes: (verb, name, detail)."""

    def __init__(self, send_flags: str = OPENZFS_SEND, receive_flags: str = OPENZFS_RECEIVE, written: bool = True,
                 bookmarks: bool = True, start: int = 1_767_225_600) -> None:
        super().__init__("scripted-zfs")
        self._caps = Capabilities(send_flags=send_flags, receive_flags=receive_flags, written=written)
        self._bookmarks_ok = bookmarks
        self._datasets: Dict[str, _Dataset] = {}
        self._snaps: Dict[str, Dict[str, _Snap]] = {}  # dataset -> name -> snapshot
        self._marks: Dict[str, Dict[str, Bookmark]] = {}
        self._txg = 100
        self._streams: Dict[Tuple[str, Optional[str]], Tuple[bytes, int, bytes]] = {}
        self.sends: List[SendChild] = []
        self._clock = start
        self.calls: List[Tuple[str, str, Any]] = []
        self.rename_errors: List[ZfsError] = []  # raised by the next renames, in order (zfs-fuse busy)

    # -- scripting --------------------------------------------------------------------
    def _tick(self, creation: Optional[int], txg: Optional[int]) -> Tuple[int, int]:
        """(creation, createtxg): what is given, else one hour and one txg after the newest so far."""
        if txg is None:
            self._txg += 1
            txg = self._txg
        self._txg = max(self._txg, txg)
        if creation is None:
            self._clock += 3600
            creation = self._clock
        self._clock = max(self._clock, creation)
        return creation, txg

    def add_dataset(self, name: str, kind: str = "filesystem", **props: str) -> str:
        validate_dataset(name)
        creation, txg = self._tick(None, None)
        self._datasets[name] = _Dataset(name, kind, creation, txg, dict(props))
        self._snaps.setdefault(name, {})
        self._marks.setdefault(name, {})
        return name

    def add_snapshot(self, dataset: str, name: str, guid: Optional[int] = None, createtxg: Optional[int] = None,
                     creation: Optional[int] = None, referenced: int = 1 << 20, held: Sequence[str] = (),
                     **props: str) -> Snapshot:
        """A snapshot, newer than every one before it unless createtxg/creation say otherwise."""
        validate_snapshot(name)
        if dataset not in self._datasets:
            self.add_dataset(dataset)
        when, txg = self._tick(creation, createtxg)
        snap = Snapshot(dataset, name, guid if guid is not None else 0x1000 + txg, txg, when, referenced)
        self._snaps[dataset][name] = _Snap(snap, dict(props), list(held))
        return snap

    def add_bookmark(self, snapshot: Snapshot, name: str) -> Bookmark:
        mark = Bookmark(snapshot.dataset, "", snapshot.guid, snapshot.createtxg, snapshot.creation, bookmark=name)
        self._marks.setdefault(snapshot.dataset, {})[name] = mark
        return mark

    def script_send(self, snapshot: Snapshot, data: bytes, base: Optional[Snapshot] = None, returncode: int = 0,
                    stderr: bytes = b"") -> None:
        """What `zfs send [-i base] snapshot` writes (and how it exits)."""
        self._streams[(snapshot.full_name, base.full_name if base is not None else None)] = (data, returncode, stderr)

    def remove_snapshot(self, dataset: str, name: str) -> None:
        """A snapshot manager destroyed it (not recorded as a call of ours)."""
        del self._snaps[dataset][name]

    # -- the read side ----------------------------------------------------------------
    def capabilities(self) -> Capabilities:
        return self._caps

    def _find(self, name: str) -> Tuple[Optional[_Dataset], Optional[_Snap]]:
        if "@" in name:
            ds, _sep, snap = name.partition("@")
            return self._datasets.get(ds), self._snaps.get(ds, {}).get(snap)
        return self._datasets.get(name), None

    def exists(self, name: str) -> bool:
        if "#" in name:
            ds, _sep, mark = name.partition("#")
            return mark in self._marks.get(ds, {})
        dataset, snap = self._find(name)
        return snap is not None if "@" in name else dataset is not None

    def get(self, name: str, prop: str) -> str:
        dataset, snap = self._find(name)
        if dataset is None or ("@" in name and snap is None):
            raise _failed("read %s of %s" % (prop, name), "cannot open '%s': dataset does not exist" % name)
        if snap is not None:
            builtin = {"type": "snapshot", "guid": str(snap.snapshot.guid), "createtxg": str(snap.snapshot.createtxg),
                       "creation": str(snap.snapshot.creation), "referenced": str(snap.snapshot.referenced),
                       "userrefs": str(len(snap.holds))}
            return builtin.get(prop, snap.props.get(prop, "-"))
        builtin = {"type": dataset.kind, "creation": str(dataset.creation), "createtxg": str(dataset.createtxg),
                   "mounted": "yes" if dataset.kind == "filesystem" else "-"}
        return dataset.props.get(prop, builtin.get(prop, "-"))

    def origin(self, name: str) -> Optional[Tuple[int, int]]:
        dataset = self._datasets.get(name)
        return (dataset.creation, dataset.createtxg) if dataset is not None else None

    def dataset_type(self, name: str) -> str:
        return self.get(name, "type")

    def children(self, dataset: str) -> List[str]:
        if dataset not in self._datasets:
            raise _failed("list the datasets under %s" % dataset, "cannot open '%s': dataset does not exist" % dataset)
        return sorted(n for n in self._datasets if n == dataset or n.startswith(dataset + "/"))

    def property_source(self, name: str, prop: str) -> str:
        dataset, snap = self._find(name)
        props = snap.props if snap is not None else dataset.props if dataset is not None else None
        if props is None:
            raise _failed("read the %s of %s" % (prop, name), "cannot open '%s': dataset does not exist" % name)
        return "local" if prop in props else "default"

    def snapshot_property(self, dataset: str, prop: str) -> Dict[str, str]:
        if dataset not in self._datasets:
            raise _failed("read %s of the snapshots of %s" % (prop, dataset),
                          "cannot open '%s': dataset does not exist" % dataset)
        return {n: self.get("%s@%s" % (dataset, n), prop) for n in self._snaps[dataset]}

    def snapshot_names_below(self, root: str) -> Dict[str, set]:
        self.children(root)  # fails as zfs does for a missing root
        return {ds: set(snaps) for ds, snaps in self._snaps.items()
                if (ds == root or ds.startswith(root + "/")) and snaps}

    def snapshot_guids_below(self, root: str) -> Dict[str, set]:
        if not any(n == root or n.startswith(root + "/") for n in self._datasets):
            raise _failed("list the snapshots of pool %s" % root, "cannot open '%s': dataset does not exist" % root)
        return {ds: {str(s.snapshot.guid) for s in snaps.values()} for ds, snaps in self._snaps.items()
                if (ds == root or ds.startswith(root + "/")) and snaps}

    def pool_exists(self, pool: str) -> bool:
        return "/" not in pool and pool in self._datasets

    def snapshots(self, dataset: str) -> List[Snapshot]:
        validate_dataset(dataset)
        if dataset not in self._datasets:
            raise OffsiteError("The dataset %s does not exist on this host." % dataset, "no_dataset")
        return sorted((s.snapshot for s in self._snaps[dataset].values()), key=lambda s: s.createtxg)

    def bookmarks_supported(self, dataset: str) -> bool:
        return self._bookmarks_ok

    def bookmarks(self, dataset: str) -> List[Bookmark]:
        validate_dataset(dataset)
        return sorted(self._marks.get(dataset, {}).values(), key=lambda b: b.createtxg)

    def userrefs(self, name: str) -> int:
        value = self.get(name, "userrefs")
        return int(value) if value.isdigit() else 0

    def holds(self, name: str) -> Optional[List[str]]:
        _dataset, snap = self._find(name)
        return list(snap.holds) if snap is not None else None

    def estimate(self, plan: SendPlan) -> Tuple[int, str]:
        return plan.snapshot.referenced, "referenced"

    # -- the writes beside a stream -------------------------------------------------------
    def create_snapshot(self, dataset: str, name: str, recursive: bool = False,
                        properties: Optional[Dict[str, str]] = None) -> None:
        self.calls.append(("snapshot", "%s@%s" % (dataset, name), dict(properties or {})))
        if name in self._snaps.get(dataset, {}):
            raise _failed("create the snapshot %s@%s" % (dataset, name), "dataset already exists")
        self.add_snapshot(dataset, name, **dict(properties or {}))

    def set_property(self, name: str, key: str, value: str, recursive: bool = False) -> None:
        self.calls.append(("set", name, "%s=%s" % (key, value)))
        dataset, snap = self._find(name)
        (snap.props if snap is not None else dataset.props)[key] = value  # type: ignore[union-attr]

    def inherit_property(self, name: str, key: str) -> None:
        self.calls.append(("inherit", name, key))
        dataset, snap = self._find(name)
        (snap.props if snap is not None else dataset.props).pop(key, None)  # type: ignore[union-attr]

    def destroy(self, name: str, recursive: bool = False) -> None:
        self.calls.append(("destroy", name, recursive))
        if "@" in name:
            ds, _sep, snap = name.partition("@")
            held = self._snaps[ds][snap].holds
            if held:
                raise _failed("destroy %s" % name, "dataset is busy")
            del self._snaps[ds][snap]
            return
        for child in [n for n in self._datasets if n == name or n.startswith(name + "/")]:
            del self._datasets[child]
            self._snaps.pop(child, None)
            self._marks.pop(child, None)

    def create(self, name: str, properties: Optional[Dict[str, str]] = None, what: str = "") -> None:
        self.calls.append(("create", name, dict(properties or {})))
        if name in self._datasets:
            raise _failed(what or "create the dataset %s" % name, "dataset already exists")
        self.add_dataset(name, **dict(properties or {}))

    def clone(self, snapshot: str, name: str, properties: Optional[Dict[str, str]] = None) -> None:
        self.calls.append(("clone", snapshot, name))
        if self._find(snapshot)[1] is None:
            raise _failed("clone %s" % snapshot, "dataset does not exist")
        self.add_dataset(name, **dict(properties or {}))

    def mount(self, name: str, busy_retries: int = 0) -> None:
        self.calls.append(("mount", name, None))
        if name not in self._datasets:
            raise _failed("mount %s" % name, "cannot open '%s': dataset does not exist" % name)
        self._datasets[name].props["mounted"] = "yes"

    def rename(self, old: str, new: str, patience: float = 0.0) -> None:
        self.calls.append(("rename", old, new))
        if self.rename_errors:
            raise self.rename_errors.pop(0)
        self._datasets[new] = self._datasets.pop(old)
        self._datasets[new].name = new
        self._snaps[new] = {n: _Snap(Snapshot(new, n, s.snapshot.guid, s.snapshot.createtxg, s.snapshot.creation,
                                              s.snapshot.referenced), s.props, s.holds)
                            for n, s in self._snaps.pop(old, {}).items()}
        self._marks[new] = self._marks.pop(old, {})

    def hold(self, tag: str, name: str) -> bool:
        self.calls.append(("hold", name, tag))
        _dataset, snap = self._find(name)
        if snap is None:
            raise _failed("hold %s with tag %s" % (name, tag), "dataset does not exist")
        if tag in snap.holds:
            return False
        snap.holds.append(tag)
        return True

    def release(self, tag: str, name: str) -> bool:
        self.calls.append(("release", name, tag))
        _dataset, snap = self._find(name)
        if snap is None or tag not in snap.holds:
            return False
        snap.holds.remove(tag)
        return True

    def bookmark(self, snapshot: Snapshot, name: str) -> None:
        self.calls.append(("bookmark", snapshot.full_name, name))
        self.add_bookmark(snapshot, name)

    def destroy_bookmark(self, dataset: str, name: str) -> None:
        self.calls.append(("destroy_bookmark", "%s#%s" % (dataset, name), None))
        self._marks.get(dataset, {}).pop(name, None)

    # -- no streams, no raw argv ------------------------------------------------------------
    def _no(self, what: str) -> OffsiteError:
        return OffsiteError("ScriptedZfs has no %s: this path needs a real zfs (a functional test) or a seam"
                            % what, "scripted_zfs")

    def send(self, plan: SendPlan) -> Any:
        self.calls.append(("send", plan.snapshot.full_name, plan.base.full_name if plan.base is not None else None))
        scripted = self._streams.get((plan.snapshot.full_name, plan.base.full_name if plan.base is not None else None))
        if scripted is None:
            raise self._no("send stream of %s (script_send it)" % " ".join(plan.argv("zfs")[1:]))
        child = SendChild(*scripted, dataset=plan.snapshot.dataset, snapshot=plan.snapshot.name)
        self.sends.append(child)
        return child

    def receive(self, target: str, force: bool = False, no_mount: bool = True,
                properties: Optional[Dict[str, str]] = None) -> Any:
        raise self._no("receive stream")

    def create_pool(self, pool: str, vdev: str, properties: Dict[str, str], what: str) -> None:
        raise self._no("scratch pool (zpool create %s)" % pool)

    def destroy_pool(self, pool: str, retries: int = 8) -> None:
        raise self._no("scratch pool (zpool destroy %s)" % pool)

    def _run(self, args: Sequence[str], what: str, busy_retries: int = 0) -> str:
        raise self._no("raw zfs argv (%s)" % " ".join(args))

    def _probe(self, args: Sequence[str]) -> Any:
        raise self._no("raw zfs argv (%s)" % " ".join(args))

    def _zpool(self, args: Sequence[str], what: str = "", retries: int = 0, check: bool = True) -> Any:
        raise self._no("raw zpool argv (%s)" % " ".join(args))
