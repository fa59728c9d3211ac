# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Legacy adopt: native manifests for verified backups of the old tool, of every format.

Private to the collection: not an API for other collections.

Every piece is downloaded, decrypted and gunzipped (nothing reaches ZFS) with all the checks of a
restore, including the stream's END record. A native chunk is one gzip stream in one age file, which
is what a piece of F1, F2 (one chunk), F4-F8 already is, so those pieces are copied unchanged
(server-side where the backend can). F3 pieces are slices of one age stream: their concatenation is
one such file, uploaded as a single chunk. The manifest is written last.
"""

from __future__ import annotations

import hashlib
import secrets
import socket
import time
from typing import Any, Dict, List, Optional

from ansible_collections.offsite.zfs.plugins.module_utils import catalog, codec, hostid, signing
from ansible_collections.offsite.zfs.plugins.module_utils.chunks import DigestReader, chunk_mac
from ansible_collections.offsite.zfs.plugins.module_utils.common import TOOL_VERSION, validate_snapshot
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.keys import Keys
from ansible_collections.offsite.zfs.plugins.module_utils.legacy_chain import list_legacy, read_final_guid, read_header
from ansible_collections.offsite.zfs.plugins.module_utils.legacy_layout import LegacySet, Piece
from ansible_collections.offsite.zfs.plugins.module_utils.legacy_read import checked_end, read_stream
from ansible_collections.offsite.zfs.plugins.module_utils.manifest import ChunkRecord, Manifest, SnapshotRef
from ansible_collections.offsite.zfs.plugins.module_utils.settings import DatasetSettings
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _verify(store: Store, settings: DatasetSettings, backup: LegacySet, key: bytes, backup_id: str,
            identities: List[Any], one_chunk: bool) -> List[ChunkRecord]:
    """Read the whole stream with every check; one record per chunk (per piece, or one for F3)."""
    records: List[ChunkRecord] = []
    state: Dict[str, Any] = {"mac": chunk_mac(key, backup_id, 0), "plain": 0, "readers": []}
    shared = hashlib.sha256()

    def wrap(piece: Piece, reader: Any) -> Any:
        counting = DigestReader(reader, shared if one_chunk else None)
        state["readers"].append(counting)
        return counting

    def write(data: Any) -> int:
        state["mac"].update(data)
        state["plain"] += len(data)
        return len(data)

    def on_piece(number: int, _done: int) -> None:
        reader = state["readers"][-1]
        index = len(records)
        if reader.count != backup.pieces[index].size:
            raise OffsiteError(f"Piece {backup.pieces[index].key} of {backup.name} on {store.name} is {reader.count} "
                               f"bytes but was listed with {backup.pieces[index].size}: it changed while being "
                               f"adopted.", "chunk_mismatch")
        records.append(ChunkRecord(index, catalog.chunk_object(index, ".gz"), state["plain"],
                                   state["mac"].hexdigest(), reader.count, reader.sha256.hexdigest()))
        state["mac"] = chunk_mac(key, backup_id, index + 1)
        state["plain"] = 0

    tracker = read_stream(store, backup, identities, write=write, spool_dir=None,
                          on_piece=None if one_chunk else on_piece, wrap=wrap)
    checked_end(tracker, backup, store, "it cannot be adopted")
    if one_chunk:
        count = sum(r.count for r in state["readers"])
        records.append(ChunkRecord(0, catalog.chunk_object(0, ".gz"), state["plain"], state["mac"].hexdigest(),
                                   count, shared.hexdigest()))
    return records


def _join_upload(store: Store, backup: LegacySet, key: str, record: ChunkRecord) -> None:
    """F3: the slices, concatenated, are one age file: stream them into one object, checking its SHA-256."""
    sha = hashlib.sha256()
    with store.open_put_stream(key) as put:  # a failed download kills the upload: no partial object is left
        for piece in backup.pieces:
            with store.open_get_stream(piece.key) as child:
                while True:
                    data = child.stdout.read(1 << 20)
                    if not data:
                        break
                    sha.update(data)
                    put.stdin.write(data)
                child.check()  # store.failure("download <piece>")
        put.check()  # store.failure("upload <key>")
    if sha.hexdigest() != record.stored_sha256:
        raise OffsiteError(f"The pieces of {backup.name} on {store.name} changed while being adopted; run the "
                           f"adoption again.", "chunk_mismatch")


def _adopt_one(store: Store, settings: DatasetSettings, backup: LegacySet, base: Optional[SnapshotRef],
               backup_id: str, identities: List[Any], recipients: List[str]) -> Manifest:
    started = _now()
    key = secrets.token_bytes(32)
    bdir = catalog.backup_dir(settings.namespace, settings.dataset, backup_id)
    one_chunk = backup.format == "F3"
    records = _verify(store, settings, backup, key, backup_id, identities, one_chunk)
    if one_chunk:
        _join_upload(store, backup, f"{bdir}/{records[0].object}", records[0])
    else:
        for record, piece in zip(records, backup.pieces):
            store.copy(piece.key, f"{bdir}/{record.object}")
    listed = {o.path: o.size for o in store.list(bdir, max_depth=1)}
    for record in records:
        if listed.get(record.object) != record.stored_bytes:
            raise OffsiteError(f"The copy {record.object} of {backup.name} on {store.name} does not have the size of "
                               f"its piece; run the adoption again.", "upload_incomplete")
    header = backup.header
    done = sum(r.plain_bytes for r in records)
    manifest = Manifest(
        backup_id=backup_id, namespace=settings.namespace, dataset=settings.dataset,
        dataset_type=header.dataset_type,
        snapshot=SnapshotRef(backup.snapshot, backup.final_guid, 0, header.creation),
        kind="incremental" if base else "full", base=base, send_flags=["-I"] if header.compound else [],
        compression={"algorithm": "gzip", "level": 6},
        encryption={"kind": "recipients", "recipients": recipients, "wrapped_identity": None,
                    "sealed_key": codec.seal(key, codec.parse_recipients(recipients))},
        chunk_size=max([r.plain_bytes for r in records] or [0]), chunks=records,
        estimate={"bytes": done, "method": f"adopted from the old tool's {backup.name} ({backup.format})"},
        host=socket.gethostname(), tool_version=TOOL_VERSION, started=started, finished=_now(),
        host_id=hostid.get(settings.state_dir))
    manifest.seal_with(key)
    raw = manifest.to_json()
    signature = signing.sign_checked(settings.trust, settings.namespace, settings.dataset, backup_id, raw)
    if signature is not None:  # adopted backups are signed like new ones, before the manifest
        store.put_bytes(f"{bdir}/{signing.SIGNATURE}", signature)
    store.put_bytes(f"{bdir}/{catalog.MANIFEST}", raw)
    return manifest


def _order(backups: List[LegacySet]) -> List[LegacySet]:
    """Bases before the backups that need them (by guid), then by creation."""
    by_guid = {b.final_guid: b for b in backups if b.final_guid}

    def depth(backup: LegacySet) -> int:
        steps, seen = 0, set()
        while not backup.header.full and backup.header.fromguid in by_guid and backup.header.fromguid not in seen:
            seen.add(backup.header.fromguid)
            backup = by_guid[backup.header.fromguid]
            steps += 1
        return steps
    return sorted(backups, key=lambda b: (depth(b), b.header.creation))


def _adopt_provider(settings: DatasetSettings, store: Store, identities: List[Any], recipients: List[str],
                    check_mode: bool, entries: List[Dict[str, Any]]) -> bool:
    """Adopt on one provider, appending one entry per backup; True when something changed."""
    changed = False
    dataset = settings.dataset
    listed = list_legacy(store, dataset)
    for backup in listed:
        read_header(store, backup, identities)
        if backup.complete and backup.header is not None and backup.header.compound:
            read_final_guid(store, backup, identities, None)
    backups = [b for b in listed if b.complete and b.header is not None and b.final_guid]
    for backup in listed:
        if backup not in backups:
            entries.append({"name": backup.name, "format": backup.format, "snapshot": backup.snapshot,
                            "kind": backup.kind, "pieces": len(backup.pieces), "status": "skipped",
                            "message": f"{backup.name} cannot be adopted: {'; '.join(backup.problems)}."})
    by_guid = {b.final_guid: b for b in sorted(backups, key=lambda b: b.kind != "full")}
    listing = catalog.list_backups(store, settings.namespace, dataset)
    native = {b.backup_id: b for b in listing.for_dataset(dataset) if b.complete}
    native_refs = {b.manifest.snapshot.guid: b.manifest.snapshot for b in native.values()}
    for backup in _order(backups):
        entry: Dict[str, Any] = {"name": backup.name, "format": backup.format, "snapshot": backup.snapshot,
                                 "kind": backup.kind, "pieces": len(backup.pieces)}
        entries.append(entry)
        try:
            validate_snapshot(backup.snapshot)
            base: Optional[SnapshotRef] = None
            if not backup.header.full:
                source = by_guid.get(backup.header.fromguid)
                base = (SnapshotRef(source.snapshot, source.final_guid, 0, source.header.creation)
                        if source else native_refs.get(backup.header.fromguid))
                if base is None:
                    raise OffsiteError(f"{backup.name} is incremental from the snapshot with guid "
                                       f"{backup.header.fromguid}, which has no backup here; it cannot be adopted.",
                                       "no_backup")
            backup_id = catalog.make_backup_id(backup.snapshot, int(backup.final_guid), base.name if base else None)
            entry["backup_id"] = backup_id
            if backup_id in native:
                entry.update(status="present", message=f"{backup.name} is already adopted as {backup_id}.")
            elif check_mode:
                entry.update(status="planned", message=f"would verify {len(backup.pieces)} pieces of {backup.name} "
                                                       f"({backup.format}) and adopt it as {backup_id}")
                changed = True
            else:
                manifest = _adopt_one(store, settings, backup, base, backup_id, identities, recipients)
                native_refs[manifest.snapshot.guid] = manifest.snapshot
                entry.update(status="adopted", chunks=len(manifest.chunks), bytes_plain=manifest.plain_bytes,
                             message=f"verified every piece of {backup.name} ({backup.format}) and adopted it as "
                                     f"{backup_id}")
                changed = True
        except OffsiteError as exc:
            entry.update(status="failed", message=exc.message, error_code=exc.code)
    return changed


def adopt_legacy(settings: DatasetSettings, keys: Keys, check_mode: bool = False,
                 stores: Optional[Dict[str, Store]] = None) -> Dict[str, Any]:
    """Give every complete legacy backup of the dataset a native copy and manifest, after verifying every piece."""
    dataset = settings.dataset
    identities = list(keys.identities)
    if not identities:
        raise OffsiteError(f"Adopting the legacy backups of {dataset} needs the age identity they were encrypted "
                           f"to (every piece is decrypted to verify it): pass identity or identity_file.", "no_keys")
    recipients = list(dict.fromkeys(list(settings.recipients) + [
        str(identity.to_public()) for identity in identities if hasattr(identity, "to_public")]))
    if not recipients:
        raise OffsiteError(f"Adopting the legacy backups of {dataset} needs recipients to seal the new manifests' "
                           f"keys to: configure recipients or pass an age identity.", "no_keys")
    result: Dict[str, Any] = {"changed": False, "dataset": dataset, "namespace": settings.namespace, "providers": {},
                              "failed_providers": []}
    for name in settings.selected:
        store = (stores or {}).get(name) or Store(settings.providers[name])
        entries: List[Dict[str, Any]] = []
        result["providers"][name] = {"provider": name, "backups": entries}
        try:
            if _adopt_provider(settings, store, identities, recipients, check_mode, entries):
                result["changed"] = True
        except OffsiteError as exc:
            result["providers"][name].update(status="failed", message=exc.message, error_code=exc.code)
        if result["providers"][name].get("status") == "failed" or any(e["status"] == "failed" for e in entries):
            result["failed_providers"].append(name)
    counts: Dict[str, int] = {}
    for entry in (e for p in result["providers"].values() for e in p["backups"]):
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    result["msg"] = f"legacy backups of {dataset}: " + (", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
                                                        or "none found")
    failures = [e["message"] for p in result["providers"].values() for e in p["backups"] if e["status"] == "failed"]
    failures += [p["message"] for p in result["providers"].values() if p.get("status") == "failed"]
    if failures:
        result["msg"] += "; " + "; ".join(failures)
    return result
