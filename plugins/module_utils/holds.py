# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keeping the base of the next incremental: one hold (and, where the pool can, one bookmark) per

Private to the collection: not an API for other collections.

(dataset, provider), moved forward by each backup.

A snapshot manager (sanoid, zfs-auto-snapshot, znapzend) destroys snapshots on its own schedule.
A held snapshot cannot be destroyed (`zfs destroy` answers "dataset is busy"), so the next backup
stays incremental. Where the pool has the OpenZFS `bookmarks` feature, the backed-up snapshot is
also bookmarked: if the snapshot is gone anyway, the next backup sends from the bookmark
(`zfs send -i ds#bm ds@new`), which links to the provider's chain by guid.

The hold tag is `offsite:<provider>`. zfs-fuse cannot list holds (`zfs holds` lacks its helper),
so the snapshot that carries our tag is known from our own record, one small JSON file per
(dataset, provider) under `<state_dir>/holds/`; `userrefs` counts the holds. The zfs argv is
built in zfs.py only; this file decides.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence
from urllib.parse import quote

from ansible_collections.offsite.zfs.plugins.module_utils import catalog
from ansible_collections.offsite.zfs.plugins.module_utils.common import write_private_file
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import Bookmark, Snapshot, Zfs

TAG_PREFIX = "offsite:"
BOOKMARK_PREFIX = "offsite-"


def tag_for(provider: str) -> str:
    return TAG_PREFIX + provider


def bookmark_name(provider: str, guid: int) -> str:
    """One bookmark name per (provider, snapshot): offsite-<provider>-<guid as 16 hex digits>."""
    return "%s%s-%016x" % (BOOKMARK_PREFIX, provider, guid)


@dataclass
class BaseRecord:
    """What we placed for one (dataset, provider): the hold tag on snapshot, and the bookmark (if any)."""

    dataset: str
    provider: str
    tag: str
    snapshot: str
    guid: str
    createtxg: int = 0
    held: bool = False
    bookmark: str = ""


def record_path(state_dir: str, namespace: str, dataset: str, provider: str) -> str:
    name = quote("%s/%s" % (namespace, dataset), safe="") + ".json"
    return os.path.join(state_dir, "holds", provider, name)


def load_record(state_dir: str, namespace: str, dataset: str, provider: str) -> Optional[BaseRecord]:
    try:
        with open(record_path(state_dir, namespace, dataset, provider), "r", encoding="utf-8") as handle:
            data = json.load(handle)
        return BaseRecord(**{k: data[k] for k in BaseRecord.__dataclass_fields__ if k in data})
    except (OSError, ValueError, TypeError):
        return None


def save_record(state_dir: str, namespace: str, record: BaseRecord) -> None:
    path = record_path(state_dir, namespace, record.dataset, record.provider)
    write_private_file(path, json.dumps(asdict(record), sort_keys=True).encode("utf-8"))


def forget_record(state_dir: str, namespace: str, dataset: str, provider: str) -> None:
    try:
        os.unlink(record_path(state_dir, namespace, dataset, provider))
    except OSError:
        pass


# -- after a backup: move the hold (and the bookmark) forward ----------------------------------------
def move_base(zfs: Zfs, state_dir: str, namespace: str, provider: str, snapshot: Snapshot,
              local: Sequence[Snapshot], bookmarks: bool = True, newer_stays: bool = True) -> Dict[str, Any]:
    """Hold snapshot (just backed up to provider) with our tag, bookmark it where the pool can, then release
    the previous base. An older snapshot backed up after a newer one leaves the newer base in place.

    Returns what was done, for the result: tag, snapshot, held, bookmark, released (previous snapshot).
    """
    dataset = snapshot.dataset
    tag = tag_for(provider)
    old = load_record(state_dir, namespace, dataset, provider)
    txg = {str(s.guid): s.createtxg for s in local}
    if newer_stays and old is not None and old.guid != str(snapshot.guid) and \
            txg.get(old.guid, -1) > snapshot.createtxg:
        return {"tag": tag, "snapshot": old.snapshot, "held": old.held, "bookmark": old.bookmark or None,
                "released": None, "note": "kept on the newer base %s" % old.snapshot}
    zfs.hold(tag, snapshot.full_name)  # first the new hold, then the old one goes: never a moment without
    mark = ""
    if bookmarks and zfs.bookmarks_supported(dataset):
        mark = bookmark_name(provider, snapshot.guid)
        if not any(b.bookmark == mark for b in zfs.bookmarks(dataset)):
            zfs.bookmark(snapshot, mark)
    record = BaseRecord(dataset, provider, tag, snapshot.name, str(snapshot.guid), snapshot.createtxg, True, mark)
    save_record(state_dir, namespace, record)
    released = None
    if old is not None and old.guid != record.guid:
        released = _let_go(zfs, old, keep_bookmark=mark == old.bookmark)
    return {"tag": tag, "snapshot": snapshot.name, "held": True, "bookmark": mark or None, "released": released}


def _let_go(zfs: Zfs, old: BaseRecord, keep_bookmark: bool = False) -> Optional[str]:
    """Release our hold on the old base and destroy our old bookmark; the name released, if it was held."""
    released = None
    if old.held and zfs.release(old.tag, "%s@%s" % (old.dataset, old.snapshot)):
        released = old.snapshot
    if old.bookmark and not keep_bookmark:
        try:
            zfs.destroy_bookmark(old.dataset, old.bookmark)
        except OffsiteError:
            pass  # already gone (destroyed by hand): nothing of ours is left
    return released


def keep_base_safely(zfs: Zfs, state_dir: str, namespace: str, provider: str, snapshot: Snapshot,
                     local: Sequence[Snapshot]) -> Dict[str, Any]:
    """move_base that never fails the backup: the data is offsite already; a failed hold is a warning."""
    try:
        return move_base(zfs, state_dir, namespace, provider, snapshot, local)
    except OffsiteError as exc:
        return {"tag": tag_for(provider), "snapshot": snapshot.name, "held": False, "bookmark": None,
                "released": None, "error": "could not hold %s for %s (%s); a snapshot manager may destroy it and "
                "the next backup would then be full" % (snapshot.full_name, provider, exc.message)}


# -- after a prune: the hold follows the newest base the provider still has -----------------------------
def follow_prune(zfs: Zfs, state_dir: str, namespace: str, dataset: str, provider: str,
                 restorable_guids: Sequence[str], local: Sequence[Snapshot]) -> Optional[Dict[str, Any]]:
    """After pruning provider: if our held base is no longer restorable there, release it and hold the newest
    local snapshot that still is (if any). None when nothing had to change."""
    old = load_record(state_dir, namespace, dataset, provider)
    if old is None or old.guid in restorable_guids:
        return None
    candidates = [s for s in local if str(s.guid) in restorable_guids]
    if candidates:
        moved = move_base(zfs, state_dir, namespace, provider, max(candidates, key=lambda s: s.createtxg), local,
                          newer_stays=False)
        return {"released": old.snapshot, "held": moved["snapshot"]}
    released = _let_go(zfs, old)
    forget_record(state_dir, namespace, dataset, provider)
    return {"released": released or old.snapshot, "held": None}


def follow_prune_safely(zfs: Zfs, settings: Any, provider: str,
                        restorable_guids: Sequence[str]) -> Optional[Dict[str, Any]]:
    """follow_prune for offsite_prune: a dataset that is not on this host, or a zfs error, changes nothing."""
    if load_record(settings.state_dir, settings.namespace, settings.dataset, provider) is None:
        return None
    try:
        local = zfs.snapshots(settings.dataset)
        return follow_prune(zfs, settings.state_dir, settings.namespace, settings.dataset, provider,
                            restorable_guids, local)
    except OffsiteError as exc:
        return {"error": "could not move the hold of %s for %s: %s" % (settings.dataset, provider, exc.message)}


def release_all(zfs: Zfs, state_dir: str, namespace: str, dataset: str, providers: Sequence[str]) -> List[str]:
    """Release every hold and bookmark we placed on dataset for these providers (the snapshots released)."""
    done = []
    for provider in providers:
        old = load_record(state_dir, namespace, dataset, provider)
        if old is not None:
            released = _let_go(zfs, old)
            if released:
                done.append(released)
            forget_record(state_dir, namespace, dataset, provider)
    return done


# -- the bookmark as a base ------------------------------------------------------------------------------
def bookmark_base(zfs: Zfs, target: Snapshot, backups: List[catalog.Backup]) -> Optional[Bookmark]:
    """The newest bookmark older than target whose guid has a restorable chain on the provider (any bookmark:
    the guid links), named after the snapshot it was made of. None on pools without bookmarks."""
    if not zfs.bookmarks_supported(target.dataset):
        return None
    names = {b.manifest.snapshot.guid: b.manifest.snapshot.name for b in backups if b.complete}
    for mark in reversed(zfs.bookmarks(target.dataset)):
        if mark.createtxg >= target.createtxg or str(mark.guid) not in names:
            continue
        if catalog.resolve_chain(backups, str(mark.guid)):
            mark.name = names[str(mark.guid)]
            return mark
    return None


def manifest_base_fields(base: Optional[Snapshot]) -> Dict[str, str]:
    """The manifest's record of a bookmark base (the chain links by guid either way)."""
    if isinstance(base, Bookmark):
        return {"base_kind": "bookmark", "base_bookmark": base.bookmark}
    return {}


# -- local snapshot pruning: never fail on a held snapshot ---------------------------------------------------
def held_among(zfs: Zfs, dataset: str, names: Sequence[str]) -> Dict[str, int]:
    """name -> number of user holds, for the snapshots of names that have any (their destroy would be busy)."""
    held = {}
    for name in names:
        try:
            refs = zfs.userrefs("%s@%s" % (dataset, name))
        except OffsiteError:
            continue
        if refs:
            held[name] = refs
    return held
