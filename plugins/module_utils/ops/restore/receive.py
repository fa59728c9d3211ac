# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Receiving a chain: the links' plaintext into `zfs receive`, through the staging name, for every source.

Private to the collection: not an API for other collections.

`receive_link` starts `zfs receive` (a _proc.Child) and hands the link (native.py, legacy.py) a sink
that holds back the last MiB of the stream (sinks.HoldbackWriter): the tail, with the stream's END
record, reaches ZFS only when the link has returned, that is when every check of the link passed. A
link that fails leaves the tail held back and the receive is aborted, so ZFS discards it. A failed
receive is judged by its kinds (zfs.py), never its text: one whose only failure is mounting the
mountpoint the stream carries (send -p) is in. The link words the failure, in its own messages.

`receive_staged` runs the links into the target or its staging name (target.py): the staging dataset
is marked with the target's name after the first link, renamed to the target when every link is in,
and destroyed (when it is ours) on any failure, so nothing half-received is left under either name.
The one exception loses nothing: when every link is in but ZFS keeps refusing the rename as busy
(zfs-fuse can, for minutes, under load), the staging dataset is kept with its mark, and the error
(`target_busy`) says so; a rerun finds the whole chain in it and only renames it.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, cast

from ansible_collections.offsite.zfs.plugins.module_utils import _proc
from ansible_collections.offsite.zfs.plugins.module_utils.chunks import widen_pipe
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError, ZfsError
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.target import STAGING_SUFFIX, TargetPlan
from ansible_collections.offsite.zfs.plugins.module_utils.sinks import HoldbackWriter
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import BUSY, MOUNT_FAILED, PARTIAL_PROPERTY, Zfs

# How long the staging dataset's final rename waits out a busy answer (seconds): everything is received by then.
RENAME_PATIENCE = 120.0


def why_stopped(proc: _proc.Child) -> Optional[ZfsError]:
    """Why `zfs receive` stopped reading: its classified error, or None when it did not exit."""
    try:
        proc.wait(timeout=30)
    except _proc.TimeoutExpired:
        return None
    return cast(ZfsError, proc.error())  # zfs.receive's classifier: receive_failure()


def receive_link(zfs: Zfs, link: Any, target: str, force: bool, progress: Any) -> Dict[str, Any]:
    """One link into `zfs receive target` (with -F when force); the link's entry of the result."""
    proc = zfs.receive(target, force=force)
    widen_pipe(proc.stdin)
    sink = HoldbackWriter(proc.stdin)
    ok = False
    try:
        try:
            entry = link.receive(sink, progress)
        except (BrokenPipeError, ConnectionResetError):
            raise link.stopped(target, why_stopped(proc))
        try:
            sink.flush()  # every check passed: the end of the stream may go in
        except (BrokenPipeError, ConnectionResetError):
            pass  # zfs receive stopped: its exit status and message say why, below
        if proc.finish() != 0:
            failure = cast(ZfsError, proc.error())
            if not (MOUNT_FAILED in failure.kinds and zfs.exists("%s@%s" % (target, link.stream_snapshot))):
                raise link.failed(target, failure)
            # Received, but the mountpoint it carries (send -p) is busy: the caller sets mountpoint and mounts.
        ok = True
    finally:
        if not ok:
            proc.abort()  # a truncated stream: ZFS discards it
        proc.close()
    return entry


def apply_properties(zfs: Zfs, name: str, properties: Dict[str, Optional[str]]) -> None:
    """Set each property (or inherit it when the value is None) on name."""
    for key, value in properties.items():
        if value is None:
            zfs.inherit_property(name, key)
        else:
            zfs.set_property(name, key, value)


def receive_staged(zfs: Zfs, target: str, receive_into: str, links: List[Any],
                   receive_one: Callable[[int, Any], Dict[str, Any]],
                   properties: Optional[Dict[str, Optional[str]]] = None) -> List[Dict[str, Any]]:
    """Receive every link with receive_one(position, link) into receive_into, then finish the staging.

    When receive_into is the staging name, it is marked after the first link, renamed to target when
    every link is in, and destroyed (if it is ours) on any failure, so nothing half-received remains.
    """
    staging = target + STAGING_SUFFIX
    received = []
    try:
        for position, link in enumerate(links):
            received.append(receive_one(position, link))
            if properties:
                apply_properties(zfs, receive_into, properties)
            if receive_into == staging and position == 0:
                zfs.set_property(staging, PARTIAL_PROPERTY, target)
        if receive_into == staging:
            rename_staging(zfs, staging, target)
    except BaseException as exc:
        kept = isinstance(exc, OffsiteError) and exc.code == "target_busy"  # whole: a rerun only renames it
        if receive_into == staging and not kept and zfs.exists(staging):
            try:
                if zfs.get(staging, PARTIAL_PROPERTY) in (target, "-", ""):
                    zfs.destroy(staging, recursive=True)
            except OffsiteError:
                pass
        raise
    return received


def rename_staging(zfs: Zfs, staging: str, target: str, patience: float = RENAME_PATIENCE) -> None:
    """Rename the whole received staging dataset to target, then drop its mark. `target_busy` when ZFS still
    answers busy after `patience` seconds: the staging dataset keeps its mark, and receive_staged spares it."""
    try:
        zfs.rename(staging, target, patience=patience)
    except ZfsError as exc:
        if BUSY not in exc.kinds:
            raise
        raise OffsiteError("Every snapshot was received into %s, but ZFS still refused to rename it to %s after %d s, "
                           "so it is kept: run the restore again to finish, or rename it yourself. %s"
                           % (staging, target, patience, exc), "target_busy", kept=staging)
    try:
        zfs.inherit_property(target, PARTIAL_PROPERTY)
    except OffsiteError:
        pass  # the target is whole; a mark left on it is read by nothing (target.py reads staging names only)
    mount_restored(zfs, target)  # received with -u and renamed unmounted; a mount that fails is the caller's to report


def mount_restored(zfs: Zfs, name: str) -> Optional[str]:
    """Mount a restored file system when it can be; the reason when it cannot."""
    try:
        if zfs.get(name, "mounted") == "yes" or zfs.get(name, "canmount") != "on":
            return None
        if zfs.get(name, "mountpoint") in ("none", "legacy", "-"):
            return None
        zfs.mount(name)
    except OffsiteError as exc:
        return exc.message
    return None


def receive_chain(zfs: Zfs, target: str, plan: TargetPlan, links: List[Any], provider: str, progress: Any,
                  properties: Optional[Dict[str, Optional[str]]] = None) -> List[Dict[str, Any]]:
    """The planned links, one `zfs receive` each (the first with -F when the plan forces), staged as planned."""
    def receive_one(position: int, link: Any) -> Dict[str, Any]:
        progress.phase(provider, link.units, link.bytes)
        progress.log("receiving %s from %s into %s" % (link.label, provider, plan.receive_into))
        return receive_link(zfs, link, plan.receive_into, plan.force and position == 0, progress)

    return receive_staged(zfs, target, plan.receive_into, links, receive_one, properties)
