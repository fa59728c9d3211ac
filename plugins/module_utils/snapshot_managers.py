# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backing up the snapshots a snapshot manager (sanoid, zfs-auto-snapshot, znapzend) takes.

Private to the collection: not an API for other collections.

With the policy option `snapshot_pattern` (a shell-style pattern such as `autosnap_*_hourly`), a
policy run takes no snapshot of its own: it backs up the newest existing snapshot whose name
matches. Those snapshots are not ours, so offsite_prune never destroys them; the manager prunes
them, and our hold keeps the base of the next incremental (holds.py).
"""

from __future__ import annotations

import fnmatch
from typing import Optional, Sequence, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import Snapshot


def newest_matching(snaps: Sequence[Snapshot], pattern: str, dataset: str) -> Tuple[bool, Optional[Snapshot], str]:
    """(due, snapshot, why) like converge.due: never due (we take nothing), the newest match by createtxg."""
    matches = [s for s in snaps if fnmatch.fnmatchcase(s.name, pattern)]
    if not matches:
        raise OffsiteError("No snapshot of %s matches snapshot_pattern %s, so there is nothing to back up; check "
                           "that the snapshot manager (sanoid, zfs-auto-snapshot) snapshots %s, or fix the pattern."
                           % (dataset, pattern, dataset), "no_snapshot")
    newest = max(matches, key=lambda s: s.createtxg)
    return False, newest, "the newest snapshot matching %s is %s" % (pattern, newest.name)
