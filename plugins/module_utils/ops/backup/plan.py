# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What to send, per provider: every decision of a backup before a chunk moves.

`resolve_snapshot` (the snapshot to back up, taken when asked), `choose_base` (the newest local
snapshot older than it with a restorable chain on the provider), `already_present` (idempotency),
and `ProviderRun`: one backup of one snapshot to one provider. `prepare` takes the provider's
backup lock, lists its backups, refuses other hosts' backups, and decides: present, or the base
(a bookmark when the base snapshot is gone), the lineage, the send plan, the estimate, and in
check mode the plan and its notes. `keep_base` holds (and bookmarks) what the provider now holds,
the base of the next incremental: after `present` here, after the manifest in manifest.finish.

Private to the collection: not an API for other collections.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils import (
    catalog,
    holds,
    hostid,
    lineage,
    locks,
    status_bases,
)
from ansible_collections.offsite.zfs.plugins.module_utils.common import human_bytes, validate_snapshot
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.progress import Progress
from ansible_collections.offsite.zfs.plugins.module_utils.settings import DatasetSettings
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import CREATED_BY_PROPERTY, Snapshot, Zfs


# -- choosing what to send ----------------------------------------------------------------
def choose_base(local: List[Snapshot], target: Snapshot, backups: List[catalog.Backup]) -> Optional[Snapshot]:
    """Newest local snapshot older than target, same guid, with a complete restorable chain on the provider."""
    for snap in reversed(local):
        if snap.createtxg >= target.createtxg:
            continue
        if catalog.resolve_chain(backups, str(snap.guid)):
            return snap
    return None


def already_present(backups: List[catalog.Backup], target: Snapshot, full: bool) -> Optional[catalog.Backup]:
    for backup in backups:
        if backup.complete and backup.manifest.snapshot.guid == str(target.guid):
            if not full or backup.manifest.kind == "full":
                if catalog.resolve_chain(backups, str(target.guid)):
                    return backup
    return None


def resolve_snapshot(zfs: Zfs, settings: DatasetSettings, snapshot: Optional[str], create: bool,
                     check_mode: bool, recursive: bool = False) -> Tuple[Optional[Snapshot], bool, List[Snapshot]]:
    """The snapshot to back up (creating it when asked), whether it was created, and the local snapshots."""
    dataset = settings.dataset
    if snapshot is not None:
        validate_snapshot(snapshot)  # before any zfs command runs
    local = zfs.snapshots(dataset)
    if snapshot is None:
        if create:
            raise OffsiteError("create needs a snapshot name (snapshot=NAME or dataset=%s@NAME)." % dataset,
                               "bad_value")
        if not local:
            raise OffsiteError("The dataset %s has no snapshot; pass snapshot=NAME create=true to take one."
                               % dataset, "no_snapshot")
        return local[-1], False, local
    validate_snapshot(snapshot)
    for snap in local:
        if snap.name == snapshot:
            return snap, False, local
    if not create:
        raise OffsiteError("The snapshot %s@%s does not exist on this host; pass create=true to take it."
                           % (dataset, snapshot), "no_snapshot")
    if check_mode:
        return None, True, local
    zfs.create_snapshot(dataset, snapshot, recursive=recursive, properties={CREATED_BY_PROPERTY: "true"})
    local = zfs.snapshots(dataset)
    return next(s for s in local if s.name == snapshot), True, local


# -- one provider -----------------------------------------------------------------------------
class ProviderRun:
    """One backup of one snapshot to one provider: the decisions (the manifest: manifest.finish)."""

    def __init__(self, settings: DatasetSettings, store: Store, zfs: Zfs, progress: Progress,
                 snapshot: Snapshot, local: List[Snapshot], full: bool, check_mode: bool,
                 dataset_type: str = "filesystem") -> None:
        self.settings = settings
        self.store = store
        self.zfs = zfs
        self.progress = progress
        self.snapshot = snapshot
        self.local = local
        self.full = full
        self.check_mode = check_mode
        self.dataset_type = dataset_type
        self.result: Dict[str, Any] = {"provider": store.name, "status": "pending"}
        self.error: Optional[OffsiteError] = None  # set by the shared upload (upload.py)
        self.lock: Optional[locks.Lock] = None
        self.started = time.time()
        self.seconds: Optional[float] = None
        self.backup_id = ""
        self.backups: List[catalog.Backup] = []

    def release(self) -> None:
        if self.lock is not None:
            self.store.pass_fds = ()
            self.lock.release()
            self.lock = None

    def prepare(self) -> bool:
        """Lock, list, decide. True when chunks must be uploaded; else the result is final (present, planned)."""
        settings = self.settings
        name = self.store.name
        if not self.check_mode:
            self.lock = locks.acquire(settings.state_dir, "backup", "%s@%s" % (settings.dataset, name),
                                      "backup of %s to %s" % (settings.dataset, name),
                                      {"dataset": settings.dataset, "provider": name})
            self.store.pass_fds = (self.lock.fd,)  # uploads hold the lock too, even after kill -9 of this process
        listing = catalog.list_backups(self.store, settings.namespace, settings.dataset,
                                       work_dir=settings.spool_dir if os.path.isdir(settings.spool_dir) else None,
                                       trust=settings.trust)
        backups = self.backups = listing.for_dataset(settings.dataset)
        self.host_id = hostid.get(settings.state_dir, create=not self.check_mode)
        others = hostid.foreign(backups, self.host_id)
        if others:
            raise OffsiteError("Backup of %s to %s refused: %s." % (
                settings.dataset, name, hostid.describe(settings.namespace, others, self.host_id)), "foreign_host")
        present = already_present(backups, self.snapshot, self.full)
        if present is not None:
            self.result.update(status="present", changed=False, backup_id=present.backup_id,
                               kind=present.manifest.kind,
                               base=present.manifest.base.name if present.manifest.base else None,
                               chunks=len(present.manifest.chunks), bytes_plain=present.manifest.plain_bytes,
                               bytes_stored=present.manifest.stored_bytes,
                               message="%s@%s is already backed up to %s." % (
                                   settings.dataset, self.snapshot.name, name))
            self.keep_base()
            return False
        base = None if self.full else choose_base(self.local, self.snapshot, backups)
        if base is None and not self.full:  # the snapshot is gone: a bookmark of it still links by guid
            base = holds.bookmark_base(self.zfs, self.snapshot, backups)
        # A bookmark of a backed-up snapshot ties this dataset to its backups as a snapshot does.
        known = list(self.local) + ([base] if base is not None and base not in self.local else [])
        self.lineage = lineage.for_backup(settings.dataset, name, settings.namespace, known, backups,
                                          settings.new_lineage,
                                          origin=self.zfs.origin(settings.dataset))
        self.result["lineage"] = lineage.label(self.lineage)
        self.base = base
        self.backup_id = catalog.make_backup_id(self.snapshot.name, self.snapshot.guid, base.name if base else None)
        self.plan = self.zfs.send_plan(self.snapshot, base, settings.send_options)
        self.estimate, self.method = self.zfs.estimate(self.plan)
        self.est_chunks = max(1, int(math.ceil(self.estimate / float(settings.chunk_size))))
        self.result.update(backup_id=self.backup_id, kind="incremental" if base else "full",
                           base=base.name if base else None, base_guid=str(base.guid) if base else None,
                           send_flags=self.plan.flags, estimated_bytes=self.estimate, estimate_method=self.method,
                           estimated_chunks=self.est_chunks, base_kind=status_bases.kind_of(base))
        if self.check_mode:
            self.result.update(status_bases.backup_plan_notes(self.zfs, self.snapshot, base, self.local,
                                                              backups, self.full, name))
            self.result.update(status="planned", changed=True, message="would upload %s %s backup of %s@%s%s to %s "
                               "(about %s in ~%d chunks)" % (
                                   "an" if base else "a", self.result["kind"], settings.dataset,
                                   self.snapshot.name,
                                   " from %s" % base.name if base else "", name, human_bytes(self.estimate),
                                   self.est_chunks) + self.result.get("base_note", ""))
            return False
        return True

    def keep_base(self) -> None:
        """Hold (and bookmark) what was just backed up, the base of the next incremental (holds.py)."""
        if not self.check_mode and self.settings.hold_base:
            kept = holds.keep_base_safely(self.zfs, self.settings.state_dir, self.settings.namespace,
                                          self.store.name, self.snapshot, self.local)
            self.result["base_hold"] = kept
            if kept.get("error"):
                self.result["message"] = "%s; warning: %s" % (self.result.get("message", ""), kept["error"])
