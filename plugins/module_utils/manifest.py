# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The manifest record and its JSON (schemas/manifest.schema.json). No I/O.

Private to the collection: not an API for other collections.

A manifest is plain JSON so that status and verification work without a key. Secrets
in it are sealed with age: the per-backup MAC key (`encryption.sealed_key`) and, in
passphrase mode, the per-backup identity (`encryption.wrapped_identity`). The `mac`
field authenticates the whole manifest with the per-backup key, so edited sizes,
digests or object names are refused at restore time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError

FORMAT = "offsite.zfs/manifest"
VERSION = 1
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_OBJECT = re.compile(r"^chunk-[0-9]{6,}(-a[0-9]+)?(\.zst|\.gz)?\.age$")  # -aK: attempt K (attempts.py)


@dataclass
class ChunkRecord:
    index: int
    object: str
    plain_bytes: int
    plain_mac: str
    stored_bytes: int
    stored_sha256: str


@dataclass
class SnapshotRef:
    name: str
    guid: str
    createtxg: int = 0
    creation: int = 0


@dataclass
class Manifest:
    backup_id: str
    namespace: str
    dataset: str
    snapshot: SnapshotRef
    kind: str  # "full" or "incremental"
    base: Optional[SnapshotRef]
    send_flags: List[str]
    compression: Dict[str, Any]
    encryption: Dict[str, Any]
    chunk_size: int
    chunks: List[ChunkRecord] = field(default_factory=list)
    estimate: Dict[str, Any] = field(default_factory=dict)
    host: str = ""
    tool_version: str = ""
    started: str = ""
    finished: str = ""
    dataset_type: str = "filesystem"
    mac: str = ""
    base_kind: str = "snapshot"  # or "bookmark": the incremental was sent from dataset#base_bookmark
    base_bookmark: str = ""
    lineage: str = ""  # "" is the dataset's first lineage; module_utils/lineage.py
    host_id: str = ""  # the writing host's id (module_utils/hostid.py); "" before 1.1

    @property
    def plain_bytes(self) -> int:
        return sum(c.plain_bytes for c in self.chunks)

    @property
    def stored_bytes(self) -> int:
        return sum(c.stored_bytes for c in self.chunks)

    def body(self) -> Dict[str, Any]:
        """Everything but the mac, as the JSON object."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "backup_id": self.backup_id,
            "namespace": self.namespace,
            "dataset": self.dataset,
            "dataset_type": self.dataset_type,
            "snapshot": asdict(self.snapshot),
            "kind": self.kind,
            "base": _base_body(self.base, self.base_kind, self.base_bookmark),
            "send": {"flags": list(self.send_flags)},
            "compression": dict(self.compression),
            "encryption": dict(self.encryption),
            "chunk_size": self.chunk_size,
            "chunks": [asdict(c) for c in self.chunks],
            "totals": {"chunks": len(self.chunks), "plain_bytes": self.plain_bytes,
                       "stored_bytes": self.stored_bytes},
            "estimate": dict(self.estimate),
            "host": self.host,
            "tool_version": self.tool_version,
            "started": self.started,
            "finished": self.finished,
            **({"lineage": self.lineage} if self.lineage else {}),  # absent in 1.0.0 manifests (same mac)
            **({"host_id": self.host_id} if self.host_id else {}),
        }

    def compute_mac(self, key: bytes) -> str:
        canonical = json.dumps(self.body(), sort_keys=True, separators=(",", ":")).encode("utf-8")
        return hmac.new(key, b"offsite.zfs manifest v1\x00" + canonical, hashlib.sha256).hexdigest()

    def seal_with(self, key: bytes) -> None:
        self.mac = self.compute_mac(key)

    def check_mac(self, key: bytes) -> bool:
        return bool(self.mac) and hmac.compare_digest(self.mac, self.compute_mac(key))

    def to_json(self) -> bytes:
        data = self.body()
        data["mac"] = self.mac
        return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode("utf-8")


def _base_body(base: Optional[SnapshotRef], kind: str, bookmark: str) -> Optional[Dict[str, Any]]:
    """The base object; kind and bookmark only for a bookmark base (older manifests keep their exact MAC)."""
    if base is None:
        return None
    body = asdict(base)
    if kind == "bookmark":
        body.update(kind="bookmark", bookmark=bookmark)
    return body


def _need(data: Dict[str, Any], key: str, kind: Any, where: str) -> Any:
    if key not in data:
        raise ValueError("%s has no %s" % (where, key))
    value = data[key]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError("%s.%s is not an integer" % (where, key))
    if kind is not int and not isinstance(value, kind):
        raise ValueError("%s.%s has the wrong type" % (where, key))
    return value


def _snapshot_ref(data: Any, where: str) -> SnapshotRef:
    if not isinstance(data, dict):
        raise ValueError("%s is not an object" % where)
    guid = _need(data, "guid", str, where)
    if not guid.isdigit():
        raise ValueError("%s.guid is not a decimal number" % where)
    return SnapshotRef(_need(data, "name", str, where), guid, int(data.get("createtxg", 0)),
                       int(data.get("creation", 0)))


def parse(raw: bytes, where: str = "manifest") -> Manifest:
    """Parse and check a manifest; raise OffsiteError (code bad_manifest) naming what is wrong."""
    try:
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError("it is not a JSON object")
        if data.get("format") != FORMAT:
            raise ValueError("format is not %s" % FORMAT)
        if data.get("version") != VERSION:
            raise ValueError("version %r is not supported by this collection" % data.get("version"))
        kind = _need(data, "kind", str, "manifest")
        if kind not in ("full", "incremental"):
            raise ValueError("kind must be full or incremental")
        base = _snapshot_ref(data["base"], "base") if data.get("base") else None
        if (kind == "incremental") != (base is not None):
            raise ValueError("an incremental backup needs a base and a full one has none")
        chunks = []
        for position, item in enumerate(_need(data, "chunks", list, "manifest")):
            where_chunk = "chunks[%d]" % position
            if not isinstance(item, dict):
                raise ValueError("%s is not an object" % where_chunk)
            record = ChunkRecord(_need(item, "index", int, where_chunk), _need(item, "object", str, where_chunk),
                                 _need(item, "plain_bytes", int, where_chunk),
                                 _need(item, "plain_mac", str, where_chunk),
                                 _need(item, "stored_bytes", int, where_chunk),
                                 _need(item, "stored_sha256", str, where_chunk))
            if record.index != position:
                raise ValueError("%s has index %d" % (where_chunk, record.index))
            if not _OBJECT.match(record.object):
                raise ValueError("%s.object %r is not a chunk object name" % (where_chunk, record.object))
            if not _HEX64.match(record.plain_mac) or not _HEX64.match(record.stored_sha256):
                raise ValueError("%s has a digest that is not 64 hex digits" % where_chunk)
            if record.plain_bytes < 0 or record.stored_bytes < 0:
                raise ValueError("%s has a negative size" % where_chunk)
            chunks.append(record)
        compression = _need(data, "compression", dict, "manifest")
        if compression.get("algorithm") not in ("zstd", "gzip", "none"):
            raise ValueError("compression.algorithm is unknown")
        encryption = _need(data, "encryption", dict, "manifest")
        if encryption.get("kind") not in ("recipients", "passphrase") or not isinstance(
                encryption.get("sealed_key"), str):
            raise ValueError("encryption is incomplete")
        manifest = Manifest(
            backup_id=_need(data, "backup_id", str, "manifest"),
            namespace=_need(data, "namespace", str, "manifest"),
            dataset=_need(data, "dataset", str, "manifest"),
            snapshot=_snapshot_ref(data.get("snapshot"), "snapshot"),
            kind=kind,
            base=base,
            send_flags=list(_need(data, "send", dict, "manifest").get("flags", [])),
            compression=compression,
            encryption=encryption,
            chunk_size=_need(data, "chunk_size", int, "manifest"),
            chunks=chunks,
            estimate=dict(data.get("estimate") or {}),
            host=str(data.get("host", "")),
            tool_version=str(data.get("tool_version", "")),
            started=str(data.get("started", "")),
            finished=str(data.get("finished", "")),
            dataset_type=str(data.get("dataset_type", "filesystem")),
            mac=str(data.get("mac", "")),
            base_kind="bookmark" if base is not None and data["base"].get("kind") == "bookmark" else "snapshot",
            base_bookmark=str(data["base"].get("bookmark", "")) if base is not None else "",
            lineage=str(data.get("lineage", "")),
            host_id=str(data.get("host_id", "")),
        )
        totals = data.get("totals") or {}
        if totals and (totals.get("chunks") != len(chunks) or totals.get("plain_bytes") != manifest.plain_bytes
                       or totals.get("stored_bytes") != manifest.stored_bytes):
            raise ValueError("totals do not add up to the chunks")
        return manifest
    except OffsiteError:
        raise
    except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
        raise OffsiteError("The %s is not a valid offsite.zfs manifest: %s." % (where, exc), "bad_manifest")
