# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resume journals, one per provider and backup, and the providers that share one stream.

A journal (`<state_dir>/journal/<provider>/<ns/dataset/id>.json`, 0600) holds the backup's MAC key,
its encryption, the attempt number on append-only providers, and the record of every chunk that
provider holds. Providers uploading the same backup (same id and send flags) share one `zfs send`
when they share the MAC key and the encryption: a fresh upload takes the key of an interrupted one,
so after a killed fan-out run every journal still has the same key and the rerun is one send again.
The journal file itself (path, load, save) is the layer journals.py; prune forgets journals there.

Private to the collection: not an API for other collections.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import asdict
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils import attempts as upload_attempts
from ansible_collections.offsite.zfs.plugins.module_utils import catalog, codec
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.journals import journal_path, load_journal, save_journal
from ansible_collections.offsite.zfs.plugins.module_utils.manifest import ChunkRecord
from ansible_collections.offsite.zfs.plugins.module_utils.settings import DatasetSettings

# A target's state in a pass over the stream.
ACTIVE = "active"
DONE = "done"
FAILED = "failed"  # an upload failed (error holds why)
CHANGED = "changed"  # a chunk it already holds differs from the re-read stream
DROPPED = "dropped"  # it fell more than the spool bound behind the others


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def new_journal(settings: DatasetSettings, backup_id: str, flags: List[str], encryption: codec.Encryption,
                key: Optional[str] = None, started: Optional[str] = None) -> Dict[str, Any]:
    return {
        "backup_id": backup_id,
        "key": key or secrets.token_hex(32),
        "chunk_size": settings.chunk_size,
        "compression": {"algorithm": settings.compression, "level": settings.compression_level},
        "send_flags": flags,
        "encryption": {"kind": encryption.kind, "recipients": sorted(encryption.recipient_strings)
                       if encryption.kind == "recipients" else [],
                       "wrapped_identity": encryption.wrapped_identity},
        "started": started or now(),
        "chunks": {},
    }


def compatible(journal: Dict[str, Any], fresh: Dict[str, Any]) -> bool:
    keys = ("backup_id", "chunk_size", "compression", "send_flags")
    if any(journal.get(k) != fresh.get(k) for k in keys):
        return False
    old, new = journal.get("encryption") or {}, fresh.get("encryption") or {}
    if old.get("kind") != new.get("kind"):
        return False
    if new.get("kind") == "recipients" and old.get("recipients") != new.get("recipients"):
        return False
    return isinstance(journal.get("chunks"), dict) and isinstance(journal.get("key"), str)


class Target:
    """One provider's side of a shared upload: its journal, the objects it holds, its chunk records."""

    def __init__(self, run: Any, jpath: str, journal: Dict[str, Any], encryption: codec.Encryption) -> None:
        self.run = run  # plan.ProviderRun
        self.store = run.store
        self.name = run.store.name
        self.jpath = jpath
        self.journal = journal
        self.encryption = encryption
        self.bdir = catalog.backup_dir(run.settings.namespace, run.settings.dataset, run.backup_id)
        self.remote: Dict[str, Any] = {}
        self.notes: List[str] = []
        self.records: Dict[int, ChunkRecord] = {}
        self.resumed = 0
        self.state = ACTIVE
        self.error: Optional[OffsiteError] = None
        self.changed_at = -1
        self.attempts = 0  # stream passes that failed (spool: false re-reads the stream)
        self.restarted = False
        self.pending = 0  # spool files queued or uploading for this provider (spool.Spool)
        self.jobs: List[Any] = []
        self.uploaded = 0
        self.uploaded_bytes = 0
        self.lock = threading.Lock()

    @property
    def append_only(self) -> bool:
        return bool(self.store.provider.append_only)

    def setup(self, old: Optional[Dict[str, Any]], fresh: bool) -> None:
        """What the provider holds of this backup; a fresh journal purges an earlier partial upload."""
        existing = next((b for b in self.run.backups if b.backup_id == self.run.backup_id), None)
        if self.append_only and existing is not None:
            upload_attempts.check_writable(self.name, self.bdir, existing.objects)
        if fresh:
            if old is not None:
                self.notes.append("settings changed since the interrupted upload, so it starts over")
            elif existing is not None and existing.objects:
                self.notes.append("found %d objects of an earlier upload with no local journal, so it starts over"
                                  % len(existing.objects))
            if existing is not None and existing.objects and self.append_only:
                self.notes.append(upload_attempts.KEPT_NOTE)
            elif existing is not None and existing.objects:
                self.store.purge(self.bdir)
                existing = None
            save_journal(self.jpath, self.journal)
        self.remote = dict(existing.objects) if existing is not None else {}

    def refresh(self) -> None:
        self.remote = {o.path: o for o in self.store.list(self.bdir, max_depth=1)}

    def restart(self) -> None:
        """The stream differs from what this provider holds: start its upload over (same key)."""
        self.restarted = True
        self.notes.append("the stream differs from the interrupted upload at chunk %d, so the backup started "
                          "over" % self.changed_at)
        if self.append_only:
            self.refresh()
        else:
            self.store.purge(self.bdir)
            self.remote = {}
        self.journal = new_journal(self.run.settings, self.run.backup_id, list(self.run.plan.flags),
                                   self.encryption, key=self.journal["key"])
        save_journal(self.jpath, self.journal)

    def begin_pass(self) -> None:
        self.state = ACTIVE
        self.error = None
        self.records = {}
        self.resumed = 0
        if self.append_only:  # each pass writes names no earlier pass used
            self.journal["attempt"] = upload_attempts.next_attempt(self.journal, self.remote)
            save_journal(self.jpath, self.journal)

    def held(self, index: int) -> Optional[Dict[str, Any]]:
        """The journal's record of chunk index when the provider still lists it with the recorded size."""
        prior = self.journal["chunks"].get(str(index))
        obj = self.remote.get(prior["object"]) if prior else None
        if prior and obj is not None and obj.size == prior["stored_bytes"]:
            return prior
        return None

    def object_name(self, index: int) -> str:
        suffix = codec.SUFFIX[self.run.settings.compression]
        return upload_attempts.chunk_object(index, suffix, int(self.journal.get("attempt", 1)))

    def record(self, record: ChunkRecord) -> None:
        with self.lock:
            self.records[record.index] = record
            self.journal["chunks"][str(record.index)] = asdict(record)
            save_journal(self.jpath, self.journal)

    def ordered(self) -> List[ChunkRecord]:
        ordered = [self.records[i] for i in sorted(self.records)]
        if [r.index for r in ordered] != list(range(len(ordered))):
            raise OffsiteError("Internal error: chunks of %s are not contiguous." % self.run.backup_id, "internal")
        return ordered


def group_targets(runs: List[Any], settings: DatasetSettings) -> List[List[Target]]:
    """The providers that can share one stream, as lists of targets (set up, journals saved).

    A run whose setup fails gets `error` set and joins no group.
    """
    by_plan: Dict[Tuple[str, Tuple[str, ...]], List[Any]] = {}
    for run in runs:
        by_plan.setdefault((run.backup_id, tuple(run.plan.flags)), []).append(run)
    groups: List[List[Target]] = []
    for plan_runs in by_plan.values():
        keyed: Dict[Tuple[str, str], List[Target]] = {}
        fresh_runs: List[Tuple[Any, str, Optional[Dict[str, Any]]]] = []
        for run in plan_runs:
            jpath = journal_path(settings, run.store.name, run.backup_id)
            journal = load_journal(jpath)
            try:
                wrapped = ((journal or {}).get("encryption") or {}).get("wrapped_identity")
                encryption = codec.encryption_for_backup(settings.recipients, settings.passphrase, wrapped)
                fresh = new_journal(settings, run.backup_id, list(run.plan.flags), encryption)
                if journal is None or not compatible(journal, fresh):
                    fresh_runs.append((run, jpath, journal))
                    continue
                target = Target(run, jpath, journal, encryption)
                target.setup(journal, fresh=False)
                keyed.setdefault((journal["key"], wrapped or ""), []).append(target)
            except OffsiteError as exc:
                run.error = exc
        if fresh_runs:
            if keyed:  # join the first interrupted upload: same key, same encryption, one stream
                first = next(iter(keyed))
                encryption, key, started = keyed[first][0].encryption, first[0], keyed[first][0].journal["started"]
            else:
                encryption = codec.encryption_for_backup(settings.recipients, settings.passphrase)
                key, started = secrets.token_hex(32), now()
                first = (key, encryption.wrapped_identity or "")
            for run, jpath, old in fresh_runs:
                journal = new_journal(settings, run.backup_id, list(run.plan.flags), encryption, key, started)
                target = Target(run, jpath, journal, encryption)
                try:
                    target.setup(old, fresh=True)
                except OffsiteError as exc:
                    run.error = exc
                    continue
                keyed.setdefault(first, []).append(target)
        groups.extend(group for group in keyed.values() if group)
    return groups
