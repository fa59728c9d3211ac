# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scratch place: where a chain is received to read files out of it, then destroyed.

Private to the collection: not an API for other collections.

Either a dataset `<scratch_pool>/offsite-scratch-<id>` on a pool the user names, or a file-backed pool
`offsite-scratch-<id>` whose vdev is a sparse file in a directory with room. A marker file
`<state_dir>/scratch/<id>.json` (0600) is written BEFORE anything is created and removed after
everything is destroyed; it names the owner's PID and process start, so the next run destroys what a
run killed with -9 left (its pool, dataset, vdev file and mount directory), and never what a live run
is using. The scratch dataset also carries the user property offsite.zfs:scratch=<id>.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
import uuid
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional

from ansible_collections.offsite.zfs.plugins.module_utils import _proc
from ansible_collections.offsite.zfs.plugins.module_utils._scratch_markers import (
    PREFIX,
    Place,
    load_all,
    marker,
    marker_dir,
    owner_alive,
    process_start,
    save,
)
from ansible_collections.offsite.zfs.plugins.module_utils.common import (
    human_bytes,
    private_dir,
    validate_dataset,
)
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import Zfs

SCRATCH_PROPERTY = "offsite.zfs:scratch"
MIN_POOL_BYTES = 128 << 20  # zpool needs 64 MiB per vdev; metadata and slop on top
SLACK_BYTES = 64 << 20


def needed_bytes(stream_bytes: int) -> int:
    """Room a received chain needs: its stream bytes plus a quarter and a fixed slack for metadata."""
    return int(stream_bytes * 1.25) + SLACK_BYTES


# -- planning -------------------------------------------------------------------------------------------
def plan(zfs: Zfs, dataset: str, stream_bytes: int, scratch_pool: Optional[str],
         scratch_dir: Optional[str]) -> Dict[str, Any]:
    """Where the scratch place would go and whether it has room; raises when it has not."""
    need = needed_bytes(stream_bytes)
    if scratch_pool:
        validate_dataset(scratch_pool)
        if scratch_pool == dataset or scratch_pool.startswith(dataset + "/"):
            raise OffsiteError("The scratch pool %s is %s or inside it; the live dataset is never touched, so "
                               "name another pool or dataset as scratch_pool." % (scratch_pool, dataset),
                               "bad_scratch")
        if not zfs.exists(scratch_pool):
            raise OffsiteError("The scratch pool %s does not exist; name an existing pool (or a dataset in one) "
                               "as scratch_pool, or pass scratch_dir." % scratch_pool, "bad_scratch")
        free = int(zfs.get(scratch_pool, "available") or 0)
        where = scratch_pool
    else:
        if not scratch_dir or not os.path.isabs(scratch_dir):
            raise OffsiteError("scratch_dir must be an absolute directory (for a file-backed scratch pool); got "
                               "%r." % scratch_dir, "bad_scratch")
        if not os.path.isdir(scratch_dir):
            raise OffsiteError("The scratch directory %s does not exist; create it or pass another scratch_dir or "
                               "a scratch_pool." % scratch_dir, "bad_scratch")
        free = shutil.disk_usage(scratch_dir).free
        where = scratch_dir
    if free < need:
        raise OffsiteError("The scratch place %s has %s free, but receiving the chain of %s needs about %s; pass a "
                           "scratch_pool or scratch_dir with more room." % (
                               where, human_bytes(free), dataset, human_bytes(need)), "scratch_space")
    return {"kind": "dataset" if scratch_pool else "pool", "where": where, "needed_bytes": need,
            "free_bytes": free}


# -- life cycle -------------------------------------------------------------------------------------------
def create(zfs: Zfs, state_dir: str, dataset: str, stream_bytes: int, scratch_pool: Optional[str],
           scratch_dir: Optional[str]) -> Place:
    """Clean up what killed runs left, check the room, write the marker, then make the scratch place."""
    cleanup_stale(zfs, state_dir)
    where = plan(zfs, dataset, stream_bytes, scratch_pool, scratch_dir)
    place_id = PREFIX + uuid.uuid4().hex[:12]
    work = private_dir(os.path.join(marker_dir(state_dir), place_id))
    mount_dir = os.path.join(work, "mnt")
    if scratch_pool:
        place = Place(place_id, "dataset", scratch_pool + "/" + place_id, scratch_pool.split("/", 1)[0], None,
                      mount_dir, os.getpid(), process_start(os.getpid()), time.time())
    else:
        vdev = os.path.join(str(scratch_dir), place_id + ".img")
        place = Place(place_id, "pool", place_id, place_id, vdev, mount_dir, os.getpid(),
                      process_start(os.getpid()), time.time())
    save(state_dir, place)  # the marker first: a kill -9 from here on is cleaned up by the next run
    try:
        if place.kind == "pool":
            size = max(MIN_POOL_BYTES, where["needed_bytes"])
            fd = os.open(str(place.vdev), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.ftruncate(fd, size)
            finally:
                os.close(fd)
            zfs.create_pool(place.pool, str(place.vdev), {"atime": "off", SCRATCH_PROPERTY: place_id},
                            "create the scratch pool %s in %s" % (place.pool, scratch_dir))
        else:
            zfs.create(place.root, {"mountpoint": "none", "canmount": "off", SCRATCH_PROPERTY: place_id},
                       "create the scratch dataset %s" % place.root)
    except BaseException:
        destroy(zfs, state_dir, place)
        raise
    return place


def mount_readonly(zfs: Zfs, place: Place) -> str:
    """Mount the received copy read-only on the place's private directory; its path."""
    os.makedirs(place.mount_dir, mode=0o700, exist_ok=True)
    target = place.target
    zfs.set_property(target, "readonly", "on")
    zfs.set_property(target, "canmount", "on")
    zfs.set_property(target, "mountpoint", place.mount_dir)
    if zfs.get(target, "mounted") != "yes":
        try:
            zfs.mount(target, busy_retries=5)
        except OffsiteError as exc:
            if zfs.get(target, "mounted") != "yes":
                raise OffsiteError("The scratch copy %s cannot be mounted (%s); nothing can be read from it." % (
                    target, exc.message.rstrip(".")), "scratch_mount")
    return place.mount_dir


def clone_readonly(zfs: Zfs, state_dir: str, place: Place, snapshot: str) -> str:
    """Mount a live snapshot read-only through a clone next to it (for ZFS without .zfs/snapshot); its path.

    The clone is recorded in the marker before it is made and destroyed with the place.
    """
    name = "%s/%s-live%d" % (snapshot.split("/", 1)[0].split("@", 1)[0], place.id, len(place.clones))
    mount_dir = "%s-live%d" % (place.mount_dir, len(place.clones))
    place.clones.append(name)
    save(state_dir, place)
    os.makedirs(mount_dir, mode=0o700, exist_ok=True)
    props = {SCRATCH_PROPERTY: place.id, "readonly": "on", "mountpoint": mount_dir}
    zfs.clone(snapshot, name, props)
    if zfs.get(name, "mounted") != "yes":
        zfs.mount(name, busy_retries=5)
    return mount_dir


def _mounted_below(path: str) -> List[str]:
    found = []
    try:
        with open("/proc/self/mounts", "r", encoding="utf-8") as handle:
            for line in handle:
                parts = line.split()
                if len(parts) > 1:
                    point = parts[1].replace("\\040", " ")
                    if point == path or point.startswith(path.rstrip("/") + "/"):
                        found.append(point)
    except OSError:
        pass
    return found


def _umount(point: str) -> None:
    """Lazily unmount what is left mounted below our directory (best effort: its outcome is not needed)."""
    try:
        _proc.run(["umount", "-l", point], stdout=_proc.DEVNULL, check=False)
    except OSError:
        pass


def destroy(zfs: Zfs, state_dir: str, place: Place) -> None:
    """Destroy everything of the place (pool or dataset, vdev file, mount directory), then its marker."""
    for clone in place.clones:
        if zfs.exists(clone):
            if zfs.get(clone, SCRATCH_PROPERTY) != place.id:
                raise OffsiteError("The dataset %s does not carry the scratch marker %s; it was left alone." % (
                    clone, place.id), "scratch_cleanup")
            zfs.destroy(clone, recursive=True)
    if place.kind == "pool":
        if zfs.pool_exists(place.pool):
            if zfs.exists(place.pool) and zfs.get(place.pool, SCRATCH_PROPERTY) != place.id:
                raise OffsiteError("The pool %s does not carry the scratch marker %s; it was left alone." % (
                    place.pool, place.id), "scratch_cleanup")
            zfs.destroy_pool(place.pool, retries=8)
        if place.vdev and os.path.exists(place.vdev):
            os.unlink(place.vdev)
    else:
        for name in (place.root,):
            if zfs.exists(name):
                if zfs.get(name, SCRATCH_PROPERTY) != place.id:
                    raise OffsiteError("The dataset %s does not carry the scratch marker %s; it was left alone." % (
                        name, place.id), "scratch_cleanup")
                zfs.destroy(name, recursive=True)
    for point in reversed(_mounted_below(place.mount_dir)):
        _umount(point)
    for point in [p for c in range(len(place.clones)) for p in _mounted_below("%s-live%d" % (place.mount_dir, c))]:
        _umount(point)
    shutil.rmtree(os.path.dirname(place.mount_dir), ignore_errors=True)
    try:
        os.unlink(marker(state_dir, place.id))
    except FileNotFoundError:
        pass


def cleanup_stale(zfs: Zfs, state_dir: str) -> List[str]:
    """Destroy the scratch places of runs that are gone (kill -9, reboot); their ids."""
    cleaned = []
    for place in load_all(state_dir):
        if owner_alive(place):
            continue
        try:
            destroy(zfs, state_dir, place)
            cleaned.append(place.id)
        except OffsiteError:
            continue  # reported again by the next run; never destroys what is not marked as ours
    return cleaned


@contextmanager
def scratch_place(zfs: Zfs, state_dir: str, dataset: str, stream_bytes: int, scratch_pool: Optional[str],
                  scratch_dir: Optional[str]) -> Iterator[Place]:
    """A scratch place destroyed on every exit: return, exception, SIGTERM/SIGHUP (kill -9: the next run)."""
    previous: Dict[int, Any] = {}

    def stop(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    try:
        for signum in (signal.SIGTERM, signal.SIGHUP):
            previous[signum] = signal.signal(signum, stop)
    except ValueError:
        previous = {}  # not the main thread: signals stay as they are
    place = create(zfs, state_dir, dataset, stream_bytes, scratch_pool, scratch_dir)
    try:
        yield place
    finally:
        try:
            destroy(zfs, state_dir, place)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
