# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups as data for unit tests: manifests and catalog.Backup records, and placing them in a store.

No encryption happens: digests and the sealed key are placeholders. What catalog, prune, status
and restore planning read (snapshot refs, kind, base, chunk objects and sizes, lineage, host id)
is real.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional

from ansible_collections.offsite.zfs.plugins.module_utils import catalog
from ansible_collections.offsite.zfs.plugins.module_utils.manifest import ChunkRecord, Manifest, SnapshotRef
from ansible_collections.offsite.zfs.plugins.module_utils.settings import DatasetSettings
from ansible_collections.offsite.zfs.plugins.module_utils.store import RemoteObject, Store
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import Snapshot

NAMESPACE = "host1"
HEX = "ab" * 32


def ref(snap: Snapshot) -> SnapshotRef:
    return SnapshotRef(snap.name, str(snap.guid), snap.createtxg, snap.creation)


def manifest(snap: Snapshot, base: Optional[Snapshot] = None, chunks: int = 2, chunk_bytes: int = 1000,
             namespace: str = NAMESPACE, host_id: str = "", lineage: str = "",
             dataset_type: str = "filesystem", bookmark: str = "") -> Manifest:
    backup_id = catalog.make_backup_id(snap.name, snap.guid, base.name if base is not None else None)
    records = [ChunkRecord(i, catalog.chunk_object(i, ".zst"), chunk_bytes * 2, HEX, chunk_bytes, HEX)
               for i in range(chunks)]
    return Manifest(backup_id=backup_id, namespace=namespace, dataset=snap.dataset, snapshot=ref(snap),
                    kind="incremental" if base is not None else "full",
                    base=ref(base) if base is not None else None, send_flags=[],
                    compression={"algorithm": "zstd", "level": 3},
                    encryption={"kind": "recipients", "recipients": [], "wrapped_identity": None,
                                "sealed_key": "sealed"},
                    chunk_size=1 << 16, chunks=records, host="test", tool_version="1.0.0",
                    dataset_type=dataset_type, lineage=lineage, host_id=host_id,
                    base_kind="bookmark" if bookmark else "snapshot", base_bookmark=bookmark)


def backup(snap: Snapshot, base: Optional[Snapshot] = None, missing: Iterable[int] = (),
           wrong_size: Iterable[int] = (), complete: bool = True, mtime: str = "2026-01-01T00:00:00.000000000Z",
           **fields: object) -> catalog.Backup:
    """A catalog.Backup as list_backups would give it: objects listed, the manifest parsed."""
    made = manifest(snap, base, **fields)  # type: ignore[arg-type]
    found = catalog.Backup(snap.dataset, made.backup_id, manifest=made if complete else None)
    gone, bad = set(missing), set(wrong_size)
    for record in made.chunks:
        if record.index in gone:
            continue
        size = record.stored_bytes + (1 if record.index in bad else 0)
        found.objects[record.object] = RemoteObject("@%s/%s" % (made.backup_id, record.object), size, mtime)
    if complete:
        found.objects[catalog.MANIFEST] = RemoteObject("@%s/%s" % (made.backup_id, catalog.MANIFEST), 900, mtime)
    return found


def place(store: Store, made: Manifest, missing: Iterable[int] = (), with_manifest: bool = True) -> str:
    """Upload a backup's chunk objects (of the manifest's sizes) and its manifest.json; the backup dir."""
    bdir = catalog.backup_dir(made.namespace, made.dataset, made.backup_id)
    gone = set(missing)
    for record in made.chunks:
        if record.index not in gone:
            store.put_bytes("%s/%s" % (bdir, record.object), b"c" * record.stored_bytes)
    if with_manifest:
        store.put_bytes("%s/%s" % (bdir, catalog.MANIFEST), made.to_json())
    return bdir


def chain(snaps: List[Snapshot]) -> List[catalog.Backup]:
    """A full of the first snapshot and an incremental from each snapshot to the next."""
    found = [backup(snaps[0])]
    for older, newer in zip(snaps, snaps[1:]):
        found.append(backup(newer, older))
    return found


def settings_for(tmp: str, stores: Iterable[Store], dataset: str = "tank/data", **fields: object) -> DatasetSettings:
    """DatasetSettings for unit tests: the stores' providers, every directory below tmp."""
    providers = {s.name: s.provider for s in stores}
    values: Dict[str, Any] = {"recipients": [], "state_dir": "%s/state" % tmp, "log_dir": "%s/log" % tmp,
                              "spool_dir": "%s/spool" % tmp, "selected": list(providers)}
    values.update(fields)
    return DatasetSettings(dataset=dataset, namespace=NAMESPACE, providers=providers, **values)
