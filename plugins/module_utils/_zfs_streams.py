# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The zfs layer's streams: send plans and size estimates, `zfs send` and `zfs receive` children.

Private to the collection: not an API for other collections. Import everything from zfs.py.

`Zfs.send(plan)` and `Zfs.receive(target, ...)` hand out _proc.Child objects that own the process
(stdout of send / stdin of receive, a bounded stderr, kill+wait on close). `check()` raises a
ZfsError: for send `zfs send of DATASET@SNAP failed: ...` (code zfs_failed), for receive
`receive_failure()`'s (code receive_failed; `kind` modified, no_space, mount_failed, exists, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils import _proc
from ansible_collections.offsite.zfs.plugins.module_utils._zfs_base import (
    Bookmark,
    Snapshot,
    ZfsBase,
    receive_failure,
    send_failure,
)
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError

SEND_OPTIONS = {
    "raw": "w",
    "compressed": "c",
    "large_blocks": "L",
    "embedded": "e",
    "properties": "p",
}


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


class StreamsMixin(ZfsBase):
    """send_plan, estimate, send, receive."""

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

    def estimate(self, plan: SendPlan) -> Tuple[int, str]:
        """Estimated stream bytes and how they were estimated."""
        caps = self.capabilities()
        if caps.send_estimate:
            argv = plan.argv(self.binary)
            argv[2:2] = ["-n", "-v", "-P"]
            proc = _proc.run(argv, check=False)
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

    def send(self, plan: SendPlan) -> _proc.Child:
        """`zfs send`: read child.stdout; child.check() raises `zfs send of DATASET@SNAP failed: ...`."""
        snap = plan.snapshot
        return _proc.Child(plan.argv(self.binary), missing=self._missing,
                           classify=lambda rc, err: send_failure(rc, err, snap.dataset, snap.name))

    def receive(self, target: str, force: bool = False, no_mount: bool = True,
                properties: Optional[Dict[str, str]] = None) -> _proc.Child:
        """`zfs receive target`: write child.stdin; child.check() raises receive_failure()'s ZfsError."""
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
        return _proc.Child(argv, stdin=_proc.PIPE, stdout=_proc.DEVNULL, missing=self._missing,
                           classify=lambda rc, err: receive_failure(rc, err, target=target))
