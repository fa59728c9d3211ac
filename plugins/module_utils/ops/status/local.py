# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Local datasets with nothing offsite: snapshots on this host, no backup on any provider, not excluded.

Private to the collection: not an API for other collections.

`offsite_status` reports each one as a dataset of its own with the problem `nothing_offsite`
(warning), so neither the host nor the fleet report is "ok" while data with snapshots has no copy
anywhere. Looked at: every dataset on the pools the policy's datasets (and the backups found) are
on; a dataset the status already reports (configured, or with backups) is judged by the other rules.
A dataset that shares a snapshot guid with a backup found (a restored copy) is a copy of data that
is offsite. Excluded on purpose: a dataset (or an ancestor) matching `defaults.exclude` (dataset
names or fnmatch patterns, absolute), or a descendant of a `recursive` entry that its `exclude`
leaves out.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Dict, Iterable, List, Optional, Set

from ansible_collections.offsite.zfs.plugins.module_utils.config import configured
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.selection import is_excluded
from ansible_collections.offsite.zfs.plugins.module_utils.settings import policy_of
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import Zfs

CODE = "nothing_offsite"


def snapshot_guids(zfs: Zfs, pools: Iterable[str]) -> Dict[str, Set[str]]:
    """dataset -> the guids of its snapshots, over the given pools (a pool that is not there has none)."""
    found: Dict[str, Set[str]] = {}
    for pool in sorted(set(pools)):
        try:
            below = zfs.snapshot_guids_below(pool)
        except OffsiteError:
            continue
        for dataset, guids in below.items():
            found.setdefault(dataset, set()).update(guids)
    return found


def _matches(dataset: str, patterns: List[str]) -> bool:
    parts = dataset.split("/")
    return any(fnmatch.fnmatchcase("/".join(parts[:depth]), p) for depth in range(1, len(parts) + 1)
               for p in patterns)


def excluded(dataset: str, config: Dict[str, Any]) -> bool:
    """True when the policy leaves the dataset out on purpose (see the module docstring)."""
    patterns = [p.strip("/") for p in policy_of(config, None).exclude]
    if patterns and _matches(dataset, patterns):
        return True
    for root in configured(config):
        if not dataset.startswith(root + "/"):
            continue
        policy = policy_of(config, root)
        if policy.recursive and is_excluded(dataset, root, [p.strip("/") for p in policy.exclude]):
            return True
    return False


def entry(dataset: str, found: Dict[str, Any]) -> Dict[str, Any]:
    """The status entry of such a dataset (the shape of every dataset entry), with its one problem."""
    return {"dataset": dataset, "configured": False, "local": True, "max_age_seconds": None, "providers": {},
            "latest": None, "age_seconds": None, "chain_length": None, "stored_bytes": 0, "backup_count": 0,
            "not_backed_up": {}, "problems": [found], "health": found["severity"]}


def unprotected(zfs: Optional[Zfs], config: Dict[str, Any], reported: Iterable[str], known: Iterable[str],
                offsite_guids: Iterable[str] = ()) -> Dict[str, int]:
    """dataset -> snapshot count, for the local datasets with nothing offsite that the report lacks.

    reported: the datasets the status already has; known: the datasets whose pools are looked at;
    offsite_guids: the snapshot guids of the backups found (a restored copy of a backed-up dataset shares
    them: its data is offsite).
    """
    if zfs is None:
        return {}
    pools = {name.split("/", 1)[0] for name in known if name}
    skip, offsite = set(reported), {str(g) for g in offsite_guids}
    return {ds: len(guids) for ds, guids in sorted(snapshot_guids(zfs, pools).items())
            if ds not in skip and guids and not guids & offsite and not excluded(ds, config)}


def message(dataset: str, count: int) -> str:
    return ("%s has %d snapshot%s on this host but no backup on any provider, and the policy neither lists nor "
            "excludes it: nothing of it is offsite; add it to the policy's datasets (or, on purpose, to "
            "defaults.exclude) and run offsite_backup." % (dataset, count, "" if count == 1 else "s"))
