# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Legacy chains: backups of the old `offsite` bash tool, as a source restore receives like any other.

Private to the collection: not an API for other collections.

The layers do the reading: legacy_layout (object names -> backups per format F1-F8), legacy_chain
(listing, stream headers, chains linked by the guids inside the streams), legacy_read (one backup's
plaintext stream with every check its format allows) and legacy_stream (BEGIN/END records). This file
finds the chain on the first provider that has one (`find_legacy`) and gives each backup the link
surface of native.py: a `LegacyLink` writes its stream into the receive's sink and checks that the
stream ended with its END record and the guid it was linked by. Legacy backups have no manifest and
no digests (VERIFICATION says what is checked). Codes: chunk_corrupt, chunk_mismatch, receive_failed,
no_backup, no_keys (and wrong_key, from legacy_read).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils.common import human_bytes
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError, ZfsError
from ansible_collections.offsite.zfs.plugins.module_utils.legacy_chain import (
    describe,
    list_legacy,
    read_final_guid,
    resolve_legacy_chain,
)
from ansible_collections.offsite.zfs.plugins.module_utils.legacy_layout import LegacySet, folder_for
from ansible_collections.offsite.zfs.plugins.module_utils.legacy_read import checked_end, read_stream
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store

VERIFICATION = ("legacy backups have no manifest and no digests: age authentication of every piece, gzip ends, "
                "piece numbering and sizes, shard offsets, the stream's BEGIN and END records and the zfs stream "
                "checksum are the only checks")

Found = List[Tuple[Store, List[LegacySet]]]


class LegacyChain:
    """A chain of the old tool's backups on one provider, full first (a ChainSource, see sources.py)."""

    legacy = True
    resumes = False  # a -I stream's guid is known only once it was read: a staging dataset is received again

    def __init__(self, store: Store, chain: List[LegacySet], identities: List[Any], spool_dir: Optional[str],
                 detected: str = "") -> None:
        self.store = store
        self.chain = chain
        self.identities = identities
        self.spool_dir = spool_dir  # many small pieces are downloaded into it in batches
        self.detected = detected  # why a restore with legacy auto chose it (no native backup)
        self.links = [LegacyLink(self, backup) for backup in chain]

    def know_guids(self) -> None:
        """What an existing target holds is matched by guid: -I streams keep theirs in their tail."""
        for backup in self.chain:
            read_final_guid(self.store, backup, self.identities, self.spool_dir)

    def start(self, dataset: str, target: str) -> Dict[str, Any]:
        final = self.chain[-1]
        result: Dict[str, Any] = {
            "changed": False, "dataset": dataset, "target": target, "legacy": True, "verification": VERIFICATION,
            "provider": self.store.name, "snapshot": final.header.snapshot or final.snapshot,
            "guid": final.final_guid or None, "chain": [b.name for b in self.chain],
            "original_name": final.header.toname}
        if self.detected:
            result["legacy_detected"] = self.detected
        return result

    def planned(self, todo: List["LegacyLink"]) -> Dict[str, Any]:
        return {"plan": [link.plan_entry() for link in todo]}

    def would(self, result: Dict[str, Any], todo: List["LegacyLink"]) -> str:
        names = [p.name for link in todo for p in link.backup.pieces]
        shown = ", ".join(names[:5]) + (f" ... {names[-1]}" if len(names) > 6 else
                                        (", " + names[-1] if len(names) == 6 else ""))
        return (f"would restore the legacy backup {self.chain[-1].name} of {result['dataset']} from "
                f"{self.store.name} into {result['target']}: {len(todo)} streams, reading {len(names)} pieces "
                f"({shown}), {human_bytes(sum(link.bytes for link in todo))} stored")

    def prepare(self, todo: List["LegacyLink"]) -> None:
        """Nothing to open: the identity is checked on the first piece."""

    def finished(self, result: Dict[str, Any], received: List[Dict[str, Any]], total: int) -> Dict[str, Any]:
        final = self.chain[-1]
        return {"guid": final.final_guid or None,
                "msg": f"restored the legacy backup {final.name} of {result['dataset']} from {self.store.name} into "
                       f"{result['target']}: {len(received)} streams, {human_bytes(total)}"}


class LegacyLink:
    """One stream of the old tool: its pieces, decrypted and gunzipped, into the receive's sink."""

    def __init__(self, source: LegacyChain, backup: LegacySet) -> None:
        self.source = source
        self.backup = backup
        self.name = backup.name
        self.label = f"the legacy backup {backup.name} ({backup.format})"
        self.snapshot = backup.snapshot
        self.kind = backup.kind
        self.bytes = backup.stored_bytes
        self.units = len(backup.pieces)

    @property
    def guid(self) -> str:
        """The final snapshot's guid ("" while a -I stream's tail is unread); learnt when the stream is received."""
        return self.backup.final_guid

    @property
    def stream_snapshot(self) -> str:
        return self.backup.header.snapshot or self.backup.snapshot

    def plan_entry(self) -> Dict[str, Any]:
        backup = self.backup
        return {"name": backup.name, "format": backup.format, "snapshot": backup.snapshot, "kind": backup.kind,
                "pieces": len(backup.pieces), "stored_bytes": backup.stored_bytes,
                "piece_names": [p.name for p in backup.pieces]}

    def receive(self, sink: Any, progress: Any) -> Dict[str, Any]:
        """The stream into sink, piece by piece, then its END record checked; this link's entry."""
        backup, store = self.backup, self.source.store
        tracker = read_stream(store, backup, self.source.identities, write=sink.write, spool_dir=self.source.spool_dir,
                              on_piece=progress.chunk)
        checked_end(tracker, backup, store, "nothing was restored from it")
        return {"name": backup.name, "format": backup.format, "snapshot": backup.snapshot, "kind": backup.kind,
                "pieces": len(backup.pieces), "bytes": tracker.plain_bytes}

    def stopped(self, target: str, failure: Optional[ZfsError]) -> OffsiteError:
        why = "it did not exit" if failure is None else failure.reason
        return OffsiteError(f"zfs receive into {target} stopped while the legacy backup {self.name} was being "
                            f"written: {why}", "receive_failed")

    def failed(self, target: str, failure: ZfsError) -> OffsiteError:
        return OffsiteError(f"zfs receive of the legacy backup {self.name} into {target} failed: {failure.reason}",
                            "receive_failed")


def list_found(stores: List[Store], dataset: str) -> Tuple[Found, List[str]]:
    """(store, its legacy backups) for every store that has some, and why the others have none."""
    found: Found = []
    reasons: List[str] = []
    for store in stores:
        try:
            backups = list_legacy(store, dataset)
        except OffsiteError as exc:
            reasons.append(f"{store.name}: {exc.message}")
            continue
        if backups:
            found.append((store, backups))
        else:
            reasons.append(f"{store.name} has no folder {folder_for(dataset)} of the old tool")
    return found, reasons


def unlinked(found: Found, dataset: str, target: str) -> Dict[str, Any]:
    """Check mode without the identity: what is there (the chain is linked by guids the identity reads)."""
    store, backups = found[0]
    return {"changed": True, "dataset": dataset, "target": target, "legacy": True, "verification": VERIFICATION,
            "provider": store.name, "backups": [describe(b) for b in backups],
            "msg": f"would restore a legacy backup of {dataset} from {store.name} into {target}; the chain is linked "
                   f"by the guids in the streams, which need the identity to read"}


def find_legacy(found: Found, reasons: List[str], dataset: str, snapshot: Optional[str], identities: List[Any],
                spool_dir: Optional[str], detected: str = "") -> LegacyChain:
    """The chain ending at snapshot (or the newest) on the first provider that has a complete one."""
    if not found:
        raise OffsiteError(f"No provider holds a legacy backup of {dataset}: {'; '.join(reasons)}.", "no_backup")
    if not identities:
        raise OffsiteError(f"Restoring the legacy backups of {dataset} needs the age identity they were "
                           f"encrypted to: pass identity or identity_file.", "no_keys")
    for store, backups in found:
        try:
            chain = resolve_legacy_chain(store, backups, snapshot, identities, spool_dir)
        except OffsiteError as exc:
            if exc.code == "wrong_key":
                raise
            reasons.append(exc.message)
            continue
        return LegacyChain(store, chain, identities, spool_dir, detected)
    raise OffsiteError(f"No provider can restore the legacy backups of {dataset}: {' '.join(reasons)}", "no_backup")
