# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Selection: which datasets of a tree an operation covers (exclude patterns, parents first), and tree results.

Private to the collection: not an API for other collections.

Layer: used by the tree backup and restore (ops/backup/tree.py, ops/restore/tree.py), the policy's
dataset list (prune, status) and the unprotected-dataset check (ops/status/local.py).
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any, Dict, List, Optional, Sequence

from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.settings import DatasetSettings
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import Zfs

_PROPERTY = re.compile(r"^[a-z][a-z0-9_.:-]{0,255}$")


def validate_patterns(patterns: Optional[Sequence[Any]]) -> List[str]:
    """exclude entries: dataset names or fnmatch patterns, relative to the root or absolute."""
    result = []
    for pattern in patterns or []:
        if not isinstance(pattern, str) or not pattern.strip("/ ") or any(c in pattern for c in "\n\r\t\0@"):
            raise OffsiteError(f"The exclude entry {pattern!r} is not a dataset name or pattern like cache, "
                               f"tank/cache or */tmp.", "bad_value")
        result.append(pattern.strip("/"))
    return result


def is_excluded(dataset: str, root: str, patterns: Sequence[str]) -> bool:
    """True when dataset, or an ancestor of it below root, matches a pattern (absolute or relative to root).

    The root itself is never excluded; excluding a dataset excludes everything below it.
    """
    if dataset == root or not patterns:
        return False
    relative = dataset[len(root) + 1:].split("/")
    for depth in range(1, len(relative) + 1):
        rel = "/".join(relative[:depth])
        full = f"{root}/{rel}"
        if any(fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(full, p) for p in patterns):
            return True
    return False


def validate_properties(properties: Optional[Dict[str, Any]]) -> Dict[str, str]:
    """Properties to set on restored datasets: ZFS property names, one-line values."""
    result = {}
    for key, value in (properties or {}).items():
        key = str(key)
        text = str(value)
        if not _PROPERTY.match(key) or "\n" in text or "\0" in text or not text:
            raise OffsiteError(f"The property {key}={text!r} cannot be set on restored datasets: use a ZFS property "
                               f"name and a one-line value.", "bad_value")
        result[key] = text
    return result


def is_below(dataset: str, root: str) -> bool:
    return dataset == root or dataset.startswith(root + "/")


def tree_order(datasets: Sequence[str]) -> List[str]:
    """Parents before children (depth-first by name components)."""
    return sorted(set(datasets), key=lambda name: name.split("/"))


def with_failures(result: Dict[str, Any]) -> Dict[str, Any]:
    """The tree's result, its message followed by each failed dataset's own."""
    if result["failed_datasets"]:
        result["msg"] += "; " + "; ".join(
            f"{d}: {result['datasets'][d].get('msg')}" for d in result["failed_datasets"])
    return result


def tree_of(settings: DatasetSettings, zfs: Optional[Zfs] = None) -> List[str]:
    """The datasets a policy entry covers: itself, and with `recursive` every descendant not excluded."""
    if not settings.recursive:
        return [settings.dataset]
    zfs = zfs or Zfs(settings.zfs)
    if not zfs.exists(settings.dataset):
        return [settings.dataset]
    patterns = validate_patterns(list(settings.exclude))
    return [d for d in zfs.children(settings.dataset) if not is_excluded(d, settings.dataset, patterns)]
