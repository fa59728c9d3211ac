# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verify stored backups without receiving anything into ZFS.

Private to the collection: not an API for other collections.

Levels (each includes the ones before it):

- ``objects``: every chunk object is listed with the manifest's size (from the one listing).
- ``digest``: every chunk object is downloaded and its SHA-256 compared with the manifest; no key needed.
- ``decrypt``: the manifest's MAC is checked with the per-backup key, and every chunk is decrypted,
  decompressed and its keyed plaintext digest compared with the manifest. The plaintext is discarded.

Decryption is restore's own plaintext path (decoder.ChunkDecoder, keys.Keys) with a sink that
discards instead of `zfs receive`; the same damage has the same code as in a restore.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from ansible_collections.offsite.zfs.plugins.module_utils import catalog
from ansible_collections.offsite.zfs.plugins.module_utils.chunks import BLOCK_SIZE, DigestReader, chunk_mac
from ansible_collections.offsite.zfs.plugins.module_utils.decoder import ChunkDecoder
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError, StoreError
from ansible_collections.offsite.zfs.plugins.module_utils.keys import Keys
from ansible_collections.offsite.zfs.plugins.module_utils.manifest import ChunkRecord
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store, last_error

LEVELS = ("none", "objects", "digest", "decrypt")


class _Discard:
    """Where verified plaintext goes: nowhere."""

    def write(self, data: Any) -> int:
        return len(data)


def _download(store: Store, key: str) -> Dict[str, Any]:
    """Download the object, counting and hashing it (digest level): size, sha256, or error."""
    with store.open_get_stream(key) as child:  # killed and reaped on any exception
        reader = DigestReader(child.stdout)
        while reader.read(BLOCK_SIZE):
            pass
        rc = child.wait()
        err = child.stderr.read()
    if rc != 0:
        return {"error": last_error(err)}
    return {"stored_bytes": reader.count, "sha256": reader.sha256.hexdigest()}


def check_chunk(store: Store, bdir: str, record: ChunkRecord, algorithm: str = "none",
                identities: Optional[List[Any]] = None, key: Optional[bytes] = None,
                backup_id: str = "") -> Optional[Dict[str, str]]:
    """Download one chunk object and check it; None when it is good, else {code, reason}.

    Without identities only the size and SHA-256 of the stored object are checked.
    """
    decoded = None
    mac = None
    if identities is not None and key is not None:
        mac = chunk_mac(key, backup_id, record.index)
        try:
            decoded = ChunkDecoder(identities, algorithm).decode(store, bdir + "/" + record.object,
                                                                 record.stored_bytes, mac, _Discard())
        except StoreError as exc:
            return {"code": "download_failed", "reason": "could not be downloaded: %s" % exc.message.rstrip(".")}
        got = {"stored_bytes": decoded.stored_bytes, "sha256": decoded.sha256}
    else:
        got = _download(store, bdir + "/" + record.object)
        if "error" in got:
            return {"code": "download_failed", "reason": "could not be downloaded: %s" % got["error"]}
    if got["stored_bytes"] != record.stored_bytes:
        return {"code": "size_mismatch",
                "reason": "has %d bytes, the manifest says %d" % (got["stored_bytes"], record.stored_bytes)}
    if got["sha256"] != record.stored_sha256:
        return {"code": "digest_mismatch", "reason": "does not match the SHA-256 in the manifest"}
    if decoded is not None and decoded.error:
        return {"code": "decrypt_failed", "reason": "failed age authentication or decompression (%s)" % decoded.error}
    if decoded is not None and mac is not None and (
            decoded.plain_bytes != record.plain_bytes or mac.hexdigest() != record.plain_mac):
        return {"code": "mac_mismatch",
                "reason": "decrypts to data whose keyed digest does not match the manifest (it belongs to another "
                          "backup or position)"}
    return None


def verify_backup(store: Store, namespace: str, backup: catalog.Backup, level: str,
                  keys: Optional[Keys] = None) -> List[Dict[str, Any]]:
    """Check one complete backup at `digest` or `decrypt` level; a list of findings.

    Each finding: {code, message, chunk (index or None), object}. Chunks the listing already
    shows as missing or of the wrong size are skipped (status reports those).
    """
    manifest = backup.manifest
    if manifest is None or level not in ("digest", "decrypt"):
        return []
    label = "%s@%s" % (manifest.dataset, manifest.snapshot.name)
    findings: List[Dict[str, Any]] = []
    identities = None
    key = None
    if level == "decrypt":
        keys = keys or Keys()
        try:
            key = keys.backup_key(manifest)
            identities = keys.chunk_identities(manifest)
        except OffsiteError as exc:
            code = "mac_mismatch" if exc.code == "tampered" else "decrypt_failed"
            findings.append({"code": code, "chunk": None, "object": catalog.MANIFEST,
                             "message": "Backup %s of %s on %s cannot be verified with the given key: %s" % (
                                 backup.backup_id, label, store.name, exc.message)})
            return findings
    bdir = catalog.backup_dir(namespace, manifest.dataset, manifest.backup_id)
    skip = set(backup.missing_objects()) | set(backup.size_mismatches())
    for record in manifest.chunks:
        if record.object in skip:
            continue
        found = check_chunk(store, bdir, record, manifest.compression.get("algorithm", "none"), identities, key,
                            manifest.backup_id)
        if found:
            findings.append({"code": found["code"], "chunk": record.index, "object": record.object,
                             "message": "Chunk %d (%s) of %s on %s %s; back the snapshot up again or restore from "
                                        "another provider." % (record.index, record.object, label, store.name,
                                                               found["reason"])})
    return findings
