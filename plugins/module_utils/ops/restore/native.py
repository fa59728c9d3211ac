# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Native chains: a catalog chain of manifests whose links stream their chunks into the receive.

Private to the collection: not an API for other collections.

`find_native` picks the first provider (in the given order) holding a complete, intact chain that
ends at the snapshot (or the newest). A `NativeLink` is one backup of it: per chunk get -> check ->
decrypt -> decompress -> keyed digest -> the receive's sink, through decoder.ChunkDecoder. With a
spool directory (spool: true) each chunk is downloaded ahead into it (fetcher.Prefetcher) and its
size and SHA-256 are checked before a byte of it is decrypted; without, it streams from the provider
and is checked at its end. Either way the receive holds the stream's tail back until the link has
returned (receive.py), so a chunk with a wrong size, SHA-256 or keyed digest makes ZFS discard the
whole receive. Codes: size_mismatch, digest_mismatch, decrypt_failed, mac_mismatch (the ones
offsite_status reports for the same damage), receive_failed, no_backup.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ansible_collections.offsite.zfs.plugins.module_utils import catalog, lineage
from ansible_collections.offsite.zfs.plugins.module_utils.chunks import chunk_mac
from ansible_collections.offsite.zfs.plugins.module_utils.common import human_bytes, run_temp_dir
from ansible_collections.offsite.zfs.plugins.module_utils.decoder import ChunkDecoder
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError, ZfsError
from ansible_collections.offsite.zfs.plugins.module_utils.fetcher import Prefetcher
from ansible_collections.offsite.zfs.plugins.module_utils.keys import Keys
from ansible_collections.offsite.zfs.plugins.module_utils.manifest import ChunkRecord
from ansible_collections.offsite.zfs.plugins.module_utils.signing import Trust
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import MODIFIED, NO_SPACE


@dataclass
class NativeChain:
    """A chain of native backups on one provider, oldest first (a ChainSource, see sources.py)."""

    store: Store
    chain: List[catalog.Backup]
    skipped: List[str] = field(default_factory=list)  # why the providers before it could not restore
    lineages: List[Dict[str, Any]] = field(default_factory=list)  # lineage.summary of the provider's backups
    namespace: str = ""
    keys: Keys = field(default_factory=Keys)
    spool_dir: Optional[str] = None  # chunks are downloaded ahead into it (spool: true), else streamed
    legacy = False
    resumes = True  # every link knows its guid: a staging dataset is continued after its newest link
    detected = ""

    def __post_init__(self) -> None:
        self.links = [NativeLink(self, backup) for backup in self.chain]

    def know_guids(self) -> None:
        """Every manifest names its snapshot's guid."""

    def start(self, dataset: str, target: str) -> Dict[str, Any]:
        final = self.chain[-1].manifest
        return {"changed": False, "dataset": dataset, "target": target, "namespace": self.namespace,
                "provider": self.store.name, "snapshot": final.snapshot.name, "guid": final.snapshot.guid,
                "chain": [b.backup_id for b in self.chain], "skipped_providers": self.skipped,
                "lineage": lineage.label(lineage.lineage_of(self.chain[-1])), "lineages": self.lineages}

    def planned(self, todo: List["NativeLink"]) -> Dict[str, Any]:
        return {"plan": [link.plan_entry() for link in todo], "estimated_bytes": sum(link.bytes for link in todo)}

    def would(self, result: Dict[str, Any], todo: List["NativeLink"]) -> str:
        return "would restore %s@%s from %s into %s: %d backups, %s" % (
            result["dataset"], self.chain[-1].manifest.snapshot.name, self.store.name, result["target"], len(todo),
            human_bytes(result["estimated_bytes"]))

    def prepare(self, todo: List["NativeLink"]) -> None:
        """Open every key and check every manifest before a single byte reaches ZFS."""
        for link in todo:
            self.keys.backup_key(link.backup.manifest)

    def finished(self, result: Dict[str, Any], received: List[Dict[str, Any]], total: int) -> Dict[str, Any]:
        return {"msg": "restored %s@%s from %s into %s: %d backups, %s" % (
            result["dataset"], self.chain[-1].manifest.snapshot.name, self.store.name, result["target"],
            len(received), human_bytes(total)) + lineage.note(result["lineage"], self.lineages)}


class NativeLink:
    """One backup of a native chain: its chunks, checked, into the receive's sink."""

    def __init__(self, source: NativeChain, backup: catalog.Backup) -> None:
        manifest = backup.manifest
        self.source = source
        self.backup = backup
        self.name = backup.backup_id
        self.label = backup.backup_id
        self.guid = manifest.snapshot.guid
        self.snapshot = manifest.snapshot.name
        self.stream_snapshot = manifest.snapshot.name  # what the stream creates on the target
        self.kind = manifest.kind
        self.bytes = manifest.plain_bytes
        self.units = len(manifest.chunks)
        self.at = 0  # the chunk being written

    def plan_entry(self) -> Dict[str, Any]:
        return {"backup_id": self.name, "snapshot": self.snapshot, "kind": self.kind, "chunks": self.units,
                "bytes": self.bytes}

    def receive(self, sink: Any, progress: Any) -> Dict[str, Any]:
        """Every chunk into sink, each checked (size, SHA-256, age, keyed digest); this link's entry."""
        source, manifest = self.source, self.backup.manifest
        store = source.store
        key = source.keys.backup_key(manifest)
        label = "%s@%s" % (manifest.dataset, manifest.snapshot.name)
        bdir = catalog.backup_dir(source.namespace, manifest.dataset, manifest.backup_id)
        decoder = ChunkDecoder(source.keys.chunk_identities(manifest), manifest.compression["algorithm"])
        tmp = run_temp_dir(source.spool_dir, "restore") if source.spool_dir else None
        fetcher = Prefetcher(store, bdir, manifest.chunks, tmp) if tmp else None
        done = 0
        try:
            for record in manifest.chunks:
                self.at = record.index
                where = (record.index, record.object, label, store.name)
                mac = chunk_mac(key, manifest.backup_id, record.index)
                if fetcher is not None:
                    fetched = fetcher.next()
                    try:
                        _check_stored(record, fetched.stored_bytes, fetched.sha256, where)
                        decoded = decoder.decode_file(fetched.path, mac, sink)
                    finally:
                        os.unlink(fetched.path)
                else:
                    decoded = decoder.decode(store, bdir + "/" + record.object, record.stored_bytes, mac, sink)
                    _check_stored(record, decoded.stored_bytes, decoded.sha256, where)
                if decoded.error:
                    raise OffsiteError("Chunk %d (%s) of %s on %s failed age authentication or decompression (%s): "
                                       "it is damaged, or was not encrypted for this key." % (where + (decoded.error,)),
                                       "decrypt_failed")
                if decoded.plain_bytes != record.plain_bytes or mac.hexdigest() != record.plain_mac:
                    raise OffsiteError("Chunk %d (%s) of %s on %s does not match its keyed digest: it belongs to "
                                       "another backup or position, or was altered; refusing to restore it." % where,
                                       "mac_mismatch")
                done += record.plain_bytes
                progress.chunk(record.index + 1, done)
        finally:
            if fetcher is not None:
                fetcher.close()
            if tmp:
                shutil.rmtree(tmp, ignore_errors=True)
        return {"backup_id": manifest.backup_id, "snapshot": manifest.snapshot.name, "kind": manifest.kind,
                "chunks": len(manifest.chunks), "bytes": done}

    def _label(self) -> str:
        return "%s@%s" % (self.backup.manifest.dataset, self.snapshot)

    def stopped(self, target: str, failure: Optional[ZfsError]) -> OffsiteError:
        """zfs receive stopped reading while a chunk was written: why, in one sentence."""
        if failure is None:
            return OffsiteError("zfs receive into %s stopped while chunk %d of %s was being written: it did not "
                                "exit." % (target, self.at, self._label()), "receive_failed")
        return OffsiteError("zfs receive into %s stopped while chunk %d of %s was being written: %s%s" % (
            target, self.at, self._label(), _reason(failure), _receive_advice(failure, target)), "receive_failed")

    def failed(self, target: str, failure: ZfsError) -> OffsiteError:
        return OffsiteError("zfs receive of %s into %s failed: %s%s" % (
            self._label(), target, _reason(failure), _receive_advice(failure, target)), "receive_failed")


def _check_stored(record: ChunkRecord, stored_bytes: int, sha256: str, where: tuple) -> None:
    """The stored object is what the manifest says (size, SHA-256), else one sentence."""
    if stored_bytes != record.stored_bytes:
        raise OffsiteError("Chunk %d (%s) of %s on %s is corrupt: its size is %d, the manifest says %d; restore from "
                           "another provider or an older snapshot." % (where + (stored_bytes, record.stored_bytes)),
                           "size_mismatch")
    if sha256 != record.stored_sha256:
        raise OffsiteError("Chunk %d (%s) of %s on %s is corrupt: its SHA-256 does not match the manifest; restore "
                           "from another provider or an older snapshot." % where, "digest_mismatch")


def _reason(failure: ZfsError) -> str:
    """zfs receive's own first line, with the hint force=true gives where the target changed."""
    reason = failure.reason or failure.message
    if failure.kind == MODIFIED:
        reason += " (pass force=true to roll back the changes made to it since its last snapshot)"
    return reason


def _receive_advice(failure: ZfsError, target: str) -> str:
    """What to do after a failed receive, ending the sentence."""
    if NO_SPACE in failure.kinds:
        pool = target.split("/", 1)[0]
        return "; free space in pool %s or raise the quota above %s, then run the restore again." % (pool, target)
    return "." if not _reason(failure).rstrip().endswith(".") else ""


def find_native(stores: List[Store], namespace: str, dataset: str, snapshot: Optional[str],
                work_dir: Optional[str], trust: Optional[Trust] = None, keys: Optional[Keys] = None,
                spool_dir: Optional[str] = None) -> NativeChain:
    """The first store (in the given order) holding a complete, intact chain for the snapshot (the newest: None)."""
    reasons = []
    for store in stores:
        try:
            listing = catalog.list_backups(store, namespace, dataset, work_dir=work_dir, trust=trust)
        except OffsiteError as exc:
            reasons.append("%s: %s" % (store.name, exc.message))
            continue
        backups = listing.for_dataset(dataset)
        if snapshot is None:
            candidates = sorted([b for b in backups if b.complete], key=lambda b: (
                b.manifest.snapshot.creation, b.manifest.snapshot.createtxg), reverse=True)
        else:
            candidates = [b for b in backups if b.complete and b.manifest.snapshot.name == snapshot]
        if not candidates:
            damaged = [b.manifest_error.rstrip(".") for b in backups
                       if b.manifest_error and (snapshot is None or b.snapshot_name == snapshot)]
            reasons.append("%s has no complete backup of %s%s%s" % (
                store.name, dataset, "@" + snapshot if snapshot else "",
                " (%s%s)" % (damaged[0][:1].lower(), damaged[0][1:]) if damaged else ""))
            continue
        target = candidates[0]
        chain = catalog.resolve_chain(backups, target.manifest.snapshot.guid)
        if not chain:
            broken = catalog.resolve_chain(backups, target.manifest.snapshot.guid, intact_only=False)
            if broken:
                missing = [(b.backup_id, b.missing_objects() or b.size_mismatches()) for b in broken if not b.intact]
                reasons.append("%s holds the chain of %s@%s but backup %s is missing or has wrong-sized objects "
                               "(%s)" % (store.name, dataset, target.manifest.snapshot.name, missing[0][0],
                                         ", ".join(missing[0][1][:3])))
            else:
                reasons.append("%s has %s@%s but not the backups it is based on (broken chain)" % (
                    store.name, dataset, target.manifest.snapshot.name))
            continue
        return NativeChain(store, chain, reasons, lineage.summary(backups), namespace, keys or Keys(), spool_dir)
    raise OffsiteError("No provider can restore %s%s: %s." % (
        dataset, "@" + snapshot if snapshot else "", "; ".join(reasons) or "no provider is selected"), "no_backup")
