# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore target planning: where a chain is received and from which link, decided once, before a byte moves.

Private to the collection: not an API for other collections.

`plan_target` is the one rule for every chain, native or legacy: links are matched by the guid of the
snapshot each one ends at, never by name.

- The target exists and holds the final snapshot: nothing to receive.
- It holds a link's snapshot: the links after the newest one it holds are received; when it has newer
  snapshots of its own that the chain does not hold, only with force (the first link is received with
  `-F`, which rolls them back), else `target_diverged`.
- It holds none: only with force (overwritten), else `target_exists`.
- It does not exist: its parent must, and it must not be a pool name. The chain is received under the
  staging name `<target>.offsite-partial` and renamed at the end (receive.py). A staging dataset an
  earlier run left (marked with the target's name) is continued after the newest link it holds when
  the chain can resume, else destroyed and received again; an unmarked one is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Sequence

from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import PARTIAL_PROPERTY, Zfs

STAGING_SUFFIX = ".offsite-partial"


@dataclass
class TargetPlan:
    """Where and from which link a chain is received."""

    start: Optional[int]  # the first link to receive; None when the target holds the final snapshot
    receive_into: str  # the target, or its staging name
    force: bool = False  # receive the first link with -F
    resumed: bool = False  # continues in a staging dataset an interrupted restore left

    @property
    def staged(self) -> bool:
        return self.receive_into.endswith(STAGING_SUFFIX)


def check_target_name(target: str) -> None:
    """A target whose staging name would be too long for ZFS is refused before anything is read."""
    if len(target) + len(STAGING_SUFFIX) > 255:
        raise OffsiteError("The target name %s is too long to stage a restore under." % target, "bad_name")


def _common(guids: Sequence[str], held: set) -> List[int]:
    """Positions of the links whose snapshot is held (a link whose guid is not known yet matches nothing)."""
    return [i for i, guid in enumerate(guids) if guid and guid in held]


def plan_target(zfs: Zfs, links: Sequence[Any], target: str, force: bool, check_mode: bool,
                resumes: bool = True, legacy: bool = False) -> TargetPlan:
    """Plan receiving links (each with .guid and .snapshot, oldest first) into target; see the module docstring.

    resumes: a staging dataset is continued (native chains), or destroyed and received again (legacy
    chains, whose -I streams may not know their guids yet). legacy only words the refusals.
    """
    guids = [str(link.guid or "") for link in links]
    names = [str(link.snapshot) for link in links]
    if zfs.exists(target):
        local = zfs.snapshots(target)
        held = {str(s.guid) for s in local}
        if guids[-1] and guids[-1] in held:
            return TargetPlan(None, target)
        common = _common(guids, held)
        if not common:
            if not force:
                raise _unrelated(target, legacy)
            return TargetPlan(0, target, force=True)
        start = common[-1] + 1
        if not local or str(local[-1].guid) != guids[start - 1]:
            if not force:
                raise _diverged(target, names[start - 1], legacy)
            return TargetPlan(start, target, force=True)
        return TargetPlan(start, target)
    parent = target.rpartition("/")[0]
    if not parent:
        raise OffsiteError("The target %s is a pool name; restore into a dataset inside a pool." % target,
                           "bad_target")
    if not zfs.exists(parent):
        raise OffsiteError("The parent %s of the target %s does not exist; create it first." % (parent, target),
                           "no_parent")
    staging = target + STAGING_SUFFIX
    if not zfs.exists(staging):
        return TargetPlan(0, staging)
    if zfs.get(staging, PARTIAL_PROPERTY) != target:
        raise OffsiteError("A dataset named %s exists and was not made by an offsite restore; rename or destroy "
                           "it." % staging, "target_exists")
    common = _common(guids, {str(s.guid) for s in zfs.snapshots(staging)}) if resumes else []
    if not common and not check_mode:
        zfs.destroy(staging, recursive=True)  # nothing of it to continue from: start over
    return TargetPlan(common[-1] + 1 if common else 0, staging, resumed=resumes)


def _unrelated(target: str, legacy: bool) -> OffsiteError:
    if legacy:
        return OffsiteError("The target %s exists and holds none of the snapshots of this legacy chain; restore to "
                            "another target, or pass force=true to overwrite it." % target, "target_exists")
    return OffsiteError("The target %s exists and holds none of the snapshots of this backup chain; restore to "
                        "another target, or pass force=true to overwrite it." % target, "target_exists")


def _diverged(target: str, after: str, legacy: bool) -> OffsiteError:
    if legacy:
        return OffsiteError("The target %s has snapshots newer than %s that the legacy chain does not hold; restore "
                            "to another target or pass force=true to roll them back." % (target, after),
                            "target_diverged")
    return OffsiteError("The target %s has snapshots newer than %s that the backup chain does not hold; restore to "
                        "another target or pass force=true to roll them back." % (target, after), "target_diverged")
