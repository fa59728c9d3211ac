# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Catalog: the remote layout, listing backups, chain resolution by guid, latest.

Private to the collection: not an API for other collections.

Layout below a provider's remote:

    <namespace>/<dataset path>/@<backup id>/manifest.json     written last: present == complete
    <namespace>/<dataset path>/@<backup id>/chunk-000000.zst.age

`@` cannot occur in a ZFS dataset name, so the first path component that starts with
`@` ends the dataset path: datasets map one-to-one, children included. A backup id is
`<snapshot>+<guid as 16 hex digits>+full` or `<snapshot>+<guid>+from+<base snapshot>`
(`+` cannot occur in a ZFS name either).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils.common import run_temp_dir
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.manifest import Manifest, parse
from ansible_collections.offsite.zfs.plugins.module_utils.signing import SIGNATURE, Trust
from ansible_collections.offsite.zfs.plugins.module_utils.signing import check as check_signature
from ansible_collections.offsite.zfs.plugins.module_utils.store import RemoteObject, Store

MANIFEST = "manifest.json"


def dataset_prefix(namespace: str, dataset: str) -> str:
    return "%s/%s" % (namespace, dataset)


def make_backup_id(snapshot: str, guid: int, base: Optional[str]) -> str:
    if base is None:
        return "%s+%016x+full" % (snapshot, guid)
    return "%s+%016x+from+%s" % (snapshot, guid, base)


def backup_dir(namespace: str, dataset: str, backup_id: str) -> str:
    return "%s/@%s" % (dataset_prefix(namespace, dataset), backup_id)


def chunk_object(index: int, suffix: str) -> str:
    return "chunk-%06d%s.age" % (index, suffix)


@dataclass
class Backup:
    """One backup directory on one provider: its manifest (if complete) and its objects."""

    dataset: str
    backup_id: str
    objects: Dict[str, RemoteObject] = field(default_factory=dict)
    manifest: Optional[Manifest] = None
    manifest_error: Optional[str] = None
    manifest_code: str = "bad_manifest"  # or signing.CODES when the signature is refused
    manifest_sha256: Optional[str] = None  # of manifest.json as listed (the ledger compares it)
    signed: bool = False

    @property
    def complete(self) -> bool:
        return self.manifest is not None

    @property
    def snapshot_name(self) -> str:
        return self.backup_id.split("+", 1)[0]

    @property
    def guid(self) -> Optional[str]:
        return self.manifest.snapshot.guid if self.manifest else None

    def missing_objects(self) -> List[str]:
        if not self.manifest:
            return []
        return [c.object for c in self.manifest.chunks if c.object not in self.objects]

    def size_mismatches(self) -> List[str]:
        if not self.manifest:
            return []
        return [c.object for c in self.manifest.chunks
                if c.object in self.objects and self.objects[c.object].size != c.stored_bytes]

    @property
    def intact(self) -> bool:
        """Complete, and every chunk object listed with the manifest's size."""
        return self.complete and not self.missing_objects() and not self.size_mismatches()


@dataclass
class Listing:
    """Everything one provider holds below one namespace (or one dataset)."""

    provider: str
    namespace: str
    backups: Dict[Tuple[str, str], Backup] = field(default_factory=dict)
    stray: List[RemoteObject] = field(default_factory=list)  # objects outside any backup directory

    def for_dataset(self, dataset: str) -> List[Backup]:
        return [b for (ds, _backup_id), b in sorted(self.backups.items()) if ds == dataset]

    def datasets(self) -> List[str]:
        return sorted({ds for ds, _backup_id in self.backups})


def split_path(path: str) -> Optional[Tuple[str, str, str]]:
    """'tank/data/@id/chunk-000001.zst.age' -> ('tank/data', 'id', 'chunk-000001.zst.age')."""
    parts = path.split("/")
    for position, part in enumerate(parts):
        if part.startswith("@"):
            if position == 0 or position == len(parts) - 1:
                return None
            return "/".join(parts[:position]), part[1:], "/".join(parts[position + 1:])
    return None


def list_backups(store: Store, namespace: str, dataset: Optional[str] = None, work_dir: Optional[str] = None,
                 load_manifests: bool = True, trust: Optional[Trust] = None) -> Listing:
    """One listing call (and one manifest download call) for a namespace or one dataset."""
    prefix = namespace if dataset is None else dataset_prefix(namespace, dataset)
    max_depth = None if dataset is None else 2
    objects = store.list(prefix, max_depth=max_depth)
    listing = Listing(store.name, namespace)
    for obj in objects:
        if dataset is None:
            split = split_path(obj.path)
        else:
            parts = obj.path.split("/")
            split = None
            if len(parts) == 2 and parts[0].startswith("@") and len(parts[0]) > 1:
                split = (dataset, parts[0][1:], parts[1])
        if split is None:
            listing.stray.append(obj)
            continue
        ds, backup_id, name = split
        backup = listing.backups.setdefault((ds, backup_id), Backup(ds, backup_id))
        backup.objects[name] = obj
    if load_manifests and any(MANIFEST in b.objects for b in listing.backups.values()):
        _load_manifests(store, prefix, listing, dataset, max_depth, work_dir, trust)
    return listing


def _load_manifests(store: Store, prefix: str, listing: Listing, dataset: Optional[str], max_depth: Optional[int],
                    work_dir: Optional[str], trust: Optional[Trust] = None) -> None:
    tmp = run_temp_dir(work_dir, "offsite-manifests") if work_dir else tempfile.mkdtemp(
        prefix="offsite-manifests-%d-" % os.getpid())
    try:
        store.fetch(prefix, tmp, [MANIFEST, SIGNATURE], max_depth=max_depth)
        for (ds, backup_id), backup in listing.backups.items():
            if MANIFEST not in backup.objects:
                continue
            rel = ("@%s/%s" % (backup_id, MANIFEST)) if dataset is not None else (
                "%s/@%s/%s" % (ds, backup_id, MANIFEST))
            local = os.path.join(tmp, rel)
            where = "manifest of %s@%s on %s" % (ds, backup.snapshot_name, store.name)
            try:
                with open(local, "rb") as handle:
                    raw = handle.read()
            except OSError:
                backup.manifest_error = "the %s could not be downloaded" % where
                continue
            backup.manifest_sha256 = hashlib.sha256(raw).hexdigest()
            try:
                manifest = parse(raw, where)
            except OffsiteError as exc:
                backup.manifest_error = exc.message
                continue
            if manifest.backup_id != backup_id or manifest.dataset != ds:
                backup.manifest_error = ("The %s names backup %s of %s, not this one; it was moved or tampered with."
                                         % (where, manifest.backup_id, manifest.dataset))
                continue
            refused = _signature_problem(trust, listing.namespace, ds, backup, raw, local, where)
            if refused is not None:
                backup.manifest_error, backup.manifest_code = refused.message, refused.code
                continue
            backup.manifest = manifest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _signature_problem(trust: Optional[Trust], namespace: str, ds: str, backup: Backup, raw: bytes, local: str,
                       where: str) -> Optional[OffsiteError]:
    signature = None
    if SIGNATURE in backup.objects:
        try:
            with open(os.path.join(os.path.dirname(local), SIGNATURE), "rb") as handle:
                signature = handle.read()
        except OSError:
            signature = None
    backup.signed = signature is not None
    return check_signature(trust, namespace, ds, backup.backup_id, raw, signature, where)


def complete_backups(backups: Iterable[Backup]) -> List[Backup]:
    return [b for b in backups if b.complete]


def resolve_chain(backups: Sequence[Backup], guid: str, intact_only: bool = True) -> Optional[List[Backup]]:
    """The shortest chain [full, incr, ...] ending at the snapshot with this guid, or None."""
    by_guid: Dict[str, List[Backup]] = {}
    for backup in backups:
        if backup.complete and (not intact_only or backup.intact):  # intact walks every chunk: only when asked
            by_guid.setdefault(backup.manifest.snapshot.guid, []).append(backup)
    memo: Dict[str, Optional[List[Backup]]] = {}

    def chain_for(target: str, depth: int) -> Optional[List[Backup]]:
        if target in memo:
            return memo[target]
        if depth > 100000:
            return None
        memo[target] = None  # guards against cycles
        best: Optional[List[Backup]] = None
        for backup in by_guid.get(target, []):
            manifest = backup.manifest
            if manifest.kind == "full":
                candidate: Optional[List[Backup]] = [backup]
            else:
                parent = chain_for(manifest.base.guid, depth + 1)
                candidate = parent + [backup] if parent else None
            if candidate and (best is None or len(candidate) < len(best)):
                best = candidate
        memo[target] = best
        return best

    return chain_for(guid, 0)


def latest_backup(backups: Sequence[Backup]) -> Optional[Backup]:
    """The complete backup of the newest snapshot, by creation time then txg (never by name)."""
    complete = [b for b in backups if b.complete]
    if not complete:
        return None
    return max(complete, key=lambda b: (b.manifest.snapshot.creation, b.manifest.snapshot.createtxg))
