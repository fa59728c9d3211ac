# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The zfs layer's holds and bookmarks: what keeps a chain's base from a snapshot manager (holds.py decides).

Private to the collection: not an API for other collections. Import everything from zfs.py.
"""

from __future__ import annotations

import re
from typing import List, Optional

from ansible_collections.offsite.zfs.plugins.module_utils._zfs_base import (
    NO_SUCH_TAG,
    NOT_FOUND,
    TAG_EXISTS,
    Bookmark,
    Snapshot,
    ZfsBase,
)
from ansible_collections.offsite.zfs.plugins.module_utils.common import validate_dataset, validate_snapshot
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError, ZfsError


class HoldsMixin(ZfsBase):
    """hold, release, userrefs, holds, bookmarks_supported, bookmark, bookmarks, destroy_bookmark."""

    def hold(self, tag: str, name: str) -> bool:
        """Place the user hold tag on the snapshot name; False when it was already there."""
        try:
            self._run(["hold", tag, name], "hold %s with tag %s" % (name, tag), busy_retries=3)
        except ZfsError as exc:
            if TAG_EXISTS in exc.kinds:
                return False
            raise
        return True

    def release(self, tag: str, name: str) -> bool:
        """Release the user hold tag from name; False when the snapshot or the tag is not there."""
        try:
            self._run(["release", tag, name], "release the hold %s on %s" % (tag, name), busy_retries=3)
        except ZfsError as exc:
            if exc.kinds & {NO_SUCH_TAG, NOT_FOUND}:
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
        for line in proc.text.splitlines():
            parts = line.split("\t")
            if len(parts) >= 2 and parts[0] == name:
                tags.append(parts[1])
        return tags

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
                proc = self._zpool(["get", "-H", "-o", "value", "feature@bookmarks", pool], check=False)
                supported = proc.returncode == 0 and proc.text.strip() in ("enabled", "active")
            except (OSError, OffsiteError):
                supported = False
        self._bookmark_pools[pool] = supported
        return supported

    def bookmark(self, snapshot: Snapshot, name: str) -> None:
        """Bookmark snapshot as dataset#name."""
        validate_snapshot(name)
        self._run(["bookmark", snapshot.full_name, "%s#%s" % (snapshot.dataset, name)],
                  "bookmark %s as %s#%s" % (snapshot.full_name, snapshot.dataset, name))

    def bookmarks(self, dataset: str) -> List[Bookmark]:
        """The bookmarks of dataset, oldest first (name is left empty: only the manifests know the snapshot's)."""
        validate_dataset(dataset)
        out = self._run(["list", "-H", "-p", "-t", "bookmark", "-d", "1", "-o", "name,guid,createtxg,creation",
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
        self._run(["destroy", "%s#%s" % (dataset, name)], "destroy the bookmark %s#%s" % (dataset, name))
