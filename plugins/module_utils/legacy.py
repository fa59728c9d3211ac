# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Legacy: backups made by the old `offsite` bash tool, read in place (docs/legacy.md).

The old tool wrote, below its remote root, one folder per dataset (`/` replaced by `_`):

    tank_data/full-<snapshot>-x000.zfs.gz.age         zfs send | split -b SIZE --filter 'gzip | age -r R | rclone rcat'
    tank_data/incr-<snapshot>-x001.zfs.gz.age         (one object per split piece, NNN = the piece number)
    tank_data/tank_data:<snapshot>-s000-b0.zfs.gz.age  later versions: shards, b = the shard's byte offset in the stream

Concatenating the gunzipped, decrypted pieces in piece order gives the `zfs send` stream.
Those backups have no manifest and no digests. What this module can still check: every
piece is contiguous (no missing number, shard offsets add up, split pieces but the last
have equal sizes), age authenticates every piece, gzip ends cleanly, and the stream's own
BEGIN record (read from the first piece) gives the snapshot's guid, its base's guid, its
creation time and its original name, so chains are linked by guid, exactly like native
backups, never guessed from names. ZFS verifies the stream's checksum when it receives it.
"""

from __future__ import annotations

import hashlib
import io
import re
import secrets
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils import catalog, codec, locks, signing
from ansible_collections.offsite.zfs.plugins.module_utils.chunks import DigestReader, chunk_mac
from ansible_collections.offsite.zfs.plugins.module_utils.common import (
    TOOL_VERSION,
    OffsiteError,
    human_bytes,
    validate_dataset,
    validate_snapshot,
)
from ansible_collections.offsite.zfs.plugins.module_utils.manifest import ChunkRecord, Manifest, SnapshotRef
from ansible_collections.offsite.zfs.plugins.module_utils.policy import DatasetSettings
from ansible_collections.offsite.zfs.plugins.module_utils.progress import Progress
from ansible_collections.offsite.zfs.plugins.module_utils.restore import (
    STAGING_SUFFIX,
    Keys,
    abort_receive,
    receive_error,
    receive_staged,
    run_restore,
)
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store, StoreError, last_error
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import PARTIAL_PROPERTY, Zfs

SUFFIX = ".zfs.gz.age"
_SPLIT = re.compile(r"^(?P<kind>full|incr)-(?P<snapshot>.+)-x(?P<index>[0-9]+)\.zfs\.gz\.age$")
_SHARD = re.compile(r"^(?P<folder>[^:/]+):(?P<snapshot>.+)-s(?P<index>[0-9]+)-b(?P<offset>[0-9]+)\.zfs\.gz\.age$")
DRR_MAGIC = 0x2F5BACBAC
HEADER_BYTES = 312  # dmu_replay_record up to the end of drr_toname


def folder_for(dataset: str) -> str:
    """The old tool's folder: the dataset name with / replaced by _."""
    return validate_dataset(dataset).replace("/", "_")


@dataclass
class StreamHeader:
    """The BEGIN record of a zfs send stream."""

    toguid: str
    fromguid: str  # "0" for a full stream
    creation: int
    toname: str  # the original dataset@snapshot
    objset_type: int = 2  # DMU_OST_ZFS = 2 (file system), DMU_OST_ZVOL = 1 (volume)

    @property
    def full(self) -> bool:
        return self.fromguid == "0"

    @property
    def dataset_type(self) -> str:
        return "volume" if self.objset_type == 1 else "filesystem"


def parse_header(data: bytes) -> StreamHeader:
    """Parse the DRR_BEGIN record at the start of a zfs send stream (either byte order)."""
    if len(data) >= HEADER_BYTES:
        for order in ("<", ">"):
            drr_type, _payload, magic = struct.unpack(order + "IIQ", data[:16])
            if drr_type == 0 and magic == DRR_MAGIC:
                _version, creation, objset_type, _flags, toguid, fromguid = struct.unpack(
                    order + "QQIIQQ", data[16:56])
                toname = data[56:HEADER_BYTES].split(b"\0", 1)[0].decode("utf-8", "replace")
                return StreamHeader(str(toguid), str(fromguid), creation, toname, objset_type)
    raise ValueError("not a zfs send stream")


@dataclass
class Piece:
    key: str  # object path below the provider's remote
    index: int
    size: int  # stored (encrypted) bytes
    offset: Optional[int] = None  # shards: plaintext stream offset


@dataclass
class LegacyBackup:
    """One stream of the old tool: its pieces, and (once read with a key) its BEGIN record."""

    dataset: str
    snapshot: str
    layout: str  # "split" or "shard"
    kind: str  # "full", "incremental", or "unknown" (shards: known once the header is read)
    pieces: List[Piece] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)
    header: Optional[StreamHeader] = None

    @property
    def name(self) -> str:
        first = self.pieces[0].key.rsplit("/", 1)[-1] if self.pieces else self.snapshot
        return first[:-len(SUFFIX)] if first.endswith(SUFFIX) else first

    @property
    def stored_bytes(self) -> int:
        return sum(p.size for p in self.pieces)

    @property
    def complete(self) -> bool:
        """As far as the object names can tell: pieces numbered from 0 without a gap."""
        return bool(self.pieces) and not self.problems

    def describe(self) -> Dict[str, Any]:
        return {"name": self.name, "dataset": self.dataset, "snapshot": self.snapshot, "layout": self.layout,
                "kind": self.kind, "pieces": len(self.pieces), "stored_bytes": self.stored_bytes,
                "complete": self.complete, "problems": list(self.problems),
                "guid": self.header.toguid if self.header else None,
                "base_guid": (None if self.header.full else self.header.fromguid) if self.header else None,
                "creation": self.header.creation if self.header else None}


def _natural(text: str) -> List[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"([0-9]+)", text)]


def list_legacy(store: Store, dataset: str) -> List[LegacyBackup]:
    """The old tool's backups of dataset on store (one listing call), ordered by snapshot name.

    Needs no key. `kind` of a shard backup is "unknown" until read_headers() reads its stream header.
    """
    folder = folder_for(dataset)
    groups: Dict[Tuple[str, str, str], LegacyBackup] = {}
    for obj in store.list(folder, max_depth=1):
        name = obj.path.rsplit("/", 1)[-1]
        match = _SPLIT.match(name)
        if match:
            kind = "full" if match.group("kind") == "full" else "incremental"
            group = groups.setdefault(("split", kind, match.group("snapshot")),
                                      LegacyBackup(dataset, match.group("snapshot"), "split", kind))
            group.pieces.append(Piece(f"{folder}/{name}", int(match.group("index")), obj.size))
            continue
        match = _SHARD.match(name)
        if match and match.group("folder") == folder:
            group = groups.setdefault(("shard", "", match.group("snapshot")),
                                      LegacyBackup(dataset, match.group("snapshot"), "shard", "unknown"))
            group.pieces.append(Piece(f"{folder}/{name}", int(match.group("index")), obj.size,
                                      int(match.group("offset"))))
    backups = []
    for backup in groups.values():
        backup.pieces.sort(key=lambda p: p.index)
        numbers = [p.index for p in backup.pieces]
        if numbers != list(range(len(numbers))):
            missing = sorted(set(range(max(numbers) + 1)) - set(numbers))
            backup.problems.append(f"piece {missing[0] if missing else numbers[0]} of {backup.name} is missing"
                                   if missing else f"{backup.name} has a piece number twice")
        if backup.layout == "shard":
            offsets = [p.offset or 0 for p in backup.pieces]
            if offsets[0] != 0 or any(b <= a for a, b in zip(offsets, offsets[1:])):
                backup.problems.append(f"the shard offsets of {backup.name} do not start at 0 and increase")
        backups.append(backup)
    backups.sort(key=lambda b: (_natural(b.snapshot), b.kind != "full"))
    return backups


# -- reading streams ------------------------------------------------------------------------------------
class _Enough(Exception):
    pass


class _PlainSink(io.RawIOBase):
    """Decrypted bytes -> gunzip -> SHA-256 -> a sink (zfs receive's stdin), or the first bytes only."""

    def __init__(self, pipe: Any = None, keep: int = 0, mac: Any = None) -> None:
        super().__init__()
        self._pipe = pipe
        self._mac = mac
        self._gunzip = codec.decompressor("gzip")
        self._keep = keep
        self.head = b""
        self.sha256 = hashlib.sha256()
        self.plain_bytes = 0

    def writable(self) -> bool:
        return True

    @property
    def ended(self) -> bool:
        return self._gunzip.eof

    def write(self, data: Any) -> int:
        self._gunzip.feed(data, self._emit)  # bounded pieces, as restore does
        return len(data)

    def _emit(self, plain: bytes) -> None:
        self.sha256.update(plain)
        if self._mac is not None:
            self._mac.update(plain)
        self.plain_bytes += len(plain)
        if self._keep:
            self.head += plain[:self._keep - len(self.head)]
            if len(self.head) >= self._keep:
                raise _Enough()
        if self._pipe is not None:
            view = memoryview(plain)
            while len(view):
                written = self._pipe.write(view)
                view = view[written:] if written is not None else view[len(view):]


def _decrypt_piece(store: Store, piece: Piece, sink: _PlainSink, identities: List[Any], label: str,
                   cipher: Optional[List[DigestReader]] = None) -> None:
    """rclone cat -> age decrypt -> sink. Raises OffsiteError naming the piece. cipher receives the reader."""
    child = store.open_get_stream(piece.key)
    reader: Any = child.stdout
    if cipher is not None:
        reader = DigestReader(child.stdout)
        cipher.append(reader)
    broken: Optional[BaseException] = None
    try:
        codec.decrypt_stream(reader, sink, identities)
    except _Enough:
        child.kill()
    except (BrokenPipeError, ConnectionResetError) as exc:
        child.kill()  # nobody reads its output any more
        broken = exc
    except Exception as exc:
        child.kill()
        child.wait()
        if "No matching keys" in str(exc):
            raise OffsiteError(f"None of the given identities can decrypt the legacy backup {label} on {store.name}: "
                               f"the key is wrong, or it is not the one the old tool encrypted to.", "wrong_key")
        raise OffsiteError(f"Piece {piece.key} of {label} on {store.name} failed age authentication or gunzip "
                           f"({exc}): it is damaged, or was not encrypted for this key.", "chunk_corrupt")
    finally:
        err = child.stderr.read()
        rc = child.wait()
    if broken is not None:
        raise broken
    if sink._keep:
        return
    if rc != 0:
        raise StoreError(f"Provider {store.name} could not download {piece.key}: {last_error(err)}",
                         "provider_failed")
    if not sink.ended:
        raise OffsiteError(f"Piece {piece.key} of {label} on {store.name} ends in the middle of its gzip stream: "
                           f"it is truncated.", "chunk_corrupt")


def read_header(store: Store, backup: LegacyBackup, identities: List[Any]) -> StreamHeader:
    """Download only the start of the first piece and parse the stream's BEGIN record."""
    if backup.header is None:
        sink = _PlainSink(keep=HEADER_BYTES)
        _decrypt_piece(store, backup.pieces[0], sink, identities, backup.name)
        try:
            backup.header = parse_header(sink.head)
        except ValueError:
            raise OffsiteError(f"The legacy backup {backup.name} on {store.name} does not start with a zfs send "
                               f"stream; it is not a backup of the old tool.", "bad_manifest")
        kind = "full" if backup.header.full else "incremental"
        if backup.kind not in ("unknown", kind):
            backup.problems.append(f"{backup.name} is named {backup.kind} but holds an {kind} stream")
        backup.kind = kind
    return backup.header


def resolve_legacy_chain(store: Store, backups: List[LegacyBackup], snapshot: Optional[str],
                         identities: List[Any]) -> List[LegacyBackup]:
    """[full, incremental, ...] ending at snapshot (or the newest), linked by the guids of the stream headers."""
    usable = [b for b in backups if b.complete]
    for backup in usable:
        read_header(store, backup, identities)
    usable = [b for b in usable if b.complete]  # reading a header can reveal a problem
    if snapshot is not None:
        candidates = [b for b in usable if b.snapshot == snapshot]
    else:
        candidates = list(usable)
    if not candidates:
        reasons = [p for b in backups for p in b.problems]
        raise OffsiteError(f"Provider {store.name} has no complete legacy backup of {backups[0].dataset}"
                           f"{'@' + snapshot if snapshot else ''}{': ' + '; '.join(reasons[:3]) if reasons else ''}.",
                           "no_backup")
    by_guid: Dict[str, List[LegacyBackup]] = {}
    for backup in usable:
        by_guid.setdefault(backup.header.toguid, []).append(backup)

    def chain_for(backup: LegacyBackup, seen: Tuple[str, ...]) -> Optional[List[LegacyBackup]]:
        if backup.header.full:
            return [backup]
        if backup.header.fromguid in seen:
            return None
        best = None
        for base in by_guid.get(backup.header.fromguid, []):
            chain = chain_for(base, seen + (backup.header.toguid,))
            if chain and (best is None or len(chain) < len(best)):
                best = chain
        return best + [backup] if best else None

    chains = [(c, chain_for(c, ())) for c in candidates]
    good = [(c, chain) for c, chain in chains if chain]
    if not good:
        first = candidates[-1]
        raise OffsiteError(f"The legacy backup {first.name} on {store.name} is incremental from the snapshot with "
                           f"guid {first.header.fromguid}, and no complete legacy backup of that snapshot is in the "
                           f"folder {folder_for(first.dataset)}; the chain is broken.", "no_backup")
    if snapshot is not None:
        return min((item[1] for item in good), key=len)
    # The newest: by creation time, then by chain length (snapshots taken in the same second).
    return max(good, key=lambda item: (item[0].header.creation, len(item[1])))[1]


# -- restoring -------------------------------------------------------------------------------------------
def _receive(zfs: Zfs, store: Store, backup: LegacyBackup, identities: List[Any], target: str, force: bool,
             progress: Any) -> Dict[str, Any]:
    proc = zfs.receive(target, force=force)
    err_box: List[bytes] = []
    err_thread = threading.Thread(target=lambda: err_box.append(proc.stderr.read()), daemon=True)
    err_thread.start()
    done = 0
    sizes: List[int] = []
    ok = False
    try:
        for position, piece in enumerate(backup.pieces):
            if piece.offset is not None and piece.offset != done:
                raise OffsiteError(f"Shard {piece.key} of {backup.name} starts at byte {piece.offset} but the shards "
                                   f"before it hold {done} bytes: a shard is missing or was replaced.",
                                   "chunk_mismatch")
            sink = _PlainSink(proc.stdin)
            try:
                _decrypt_piece(store, piece, sink, identities, backup.name)
            except (BrokenPipeError, ConnectionResetError):
                raise OffsiteError(f"zfs receive into {target} stopped while piece {piece.key} was being written: "
                                   f"{receive_error(proc, err_thread, err_box)}", "receive_failed")
            sizes.append(sink.plain_bytes)
            if backup.layout == "split" and position > 0 and sizes[position - 1] != sizes[0]:
                raise OffsiteError(f"Piece {backup.pieces[position - 1].key} of {backup.name} holds "
                                   f"{sizes[position - 1]} bytes but the first piece {sizes[0]}: split pieces before "
                                   f"the last have one size, so a piece is missing or was replaced.",
                                   "chunk_mismatch")
            done += sink.plain_bytes
            progress.chunk(position + 1, done)
        proc.stdin.close()
        rc = proc.wait()
        err_thread.join()
        text = (err_box[0] if err_box else b"").decode("utf-8", "replace")
        if rc != 0 and "cannot mount" in text and zfs.exists(
                f"{target}@{backup.header.toname.partition('@')[2] if backup.header else backup.snapshot}"):
            rc = 0  # received; only the mountpoint it carries is busy
        if rc != 0:
            lines = text.strip().splitlines()
            raise OffsiteError(f"zfs receive of the legacy backup {backup.name} into {target} failed: "
                               f"{lines[0] if lines else f'exit {rc}'}", "receive_failed")
        ok = True
    finally:
        if not ok:
            abort_receive(proc)
    return {"name": backup.name, "snapshot": backup.snapshot, "kind": backup.kind, "pieces": len(backup.pieces),
            "bytes": done}


def _stores(settings: DatasetSettings, provider: Optional[str], stores: Optional[Dict[str, Store]]) -> List[Store]:
    names = list(settings.providers) if provider in (None, "auto") else [provider]
    if provider not in (None, "auto") and provider not in settings.providers:
        raise OffsiteError(f"The provider {provider} is not configured; configured providers: "
                           f"{', '.join(sorted(settings.providers)) or 'none'}.", "unknown_provider")
    if not names:
        raise OffsiteError("No provider is configured: define providers in the config file or pass providers.",
                           "no_provider")
    return [(stores or {}).get(n) or Store(settings.providers[n]) for n in names]


def run_legacy_restore(settings: DatasetSettings, snapshot: Optional[str] = None, target: Optional[str] = None,
                       provider: str = "auto", keys: Optional[Keys] = None, force: bool = False,
                       check_mode: bool = False, zfs: Optional[Zfs] = None, stores: Optional[Dict[str, Store]] = None,
                       properties: Optional[Dict[str, Optional[str]]] = None) -> Dict[str, Any]:
    """Restore a backup of the old tool: same arguments and result shape as restore.run_restore."""
    zfs = zfs or Zfs(settings.zfs)
    dataset = settings.dataset
    if snapshot is not None:
        validate_snapshot(snapshot)
    target = validate_dataset(target or dataset)
    keys = keys or Keys()
    identities = list(keys.identities)
    store_list = _stores(settings, provider, stores)
    reasons = []
    found: List[Tuple[Store, List[LegacyBackup]]] = []
    for store in store_list:
        try:
            backups = list_legacy(store, dataset)
        except OffsiteError as exc:
            reasons.append(f"{store.name}: {exc.message}")
            continue
        if backups:
            found.append((store, backups))
        else:
            reasons.append(f"{store.name} has no folder {folder_for(dataset)} of the old tool")
    if not found:
        raise OffsiteError(f"No provider holds a legacy backup of {dataset}: {'; '.join(reasons)}.", "no_backup")
    result: Dict[str, Any] = {"changed": False, "dataset": dataset, "target": target, "legacy": True,
                              "verification": "legacy backups have no manifest and no digests: age authentication "
                                              "of every piece, piece continuity and the zfs stream checksum are "
                                              "the only checks"}
    if not identities:
        if not check_mode:
            raise OffsiteError(f"Restoring the legacy backups of {dataset} needs the age identity they were "
                               f"encrypted to: pass identity or identity_file.", "no_keys")
        store, backups = found[0]
        result.update(changed=True, provider=store.name, backups=[b.describe() for b in backups],
                      msg=f"would restore a legacy backup of {dataset} from {store.name} into {target}; the chain "
                          f"is linked by the guids in the stream headers, which need the identity to read")
        return result
    chain: List[LegacyBackup] = []
    source = None
    for store, backups in found:
        try:
            chain = resolve_legacy_chain(store, backups, snapshot, identities)
            source = store
            break
        except OffsiteError as exc:
            if exc.code == "wrong_key":
                raise
            reasons.append(exc.message)
    if source is None:
        raise OffsiteError(f"No provider can restore the legacy backups of {dataset}: {' '.join(reasons)}",
                           "no_backup")
    final = chain[-1]
    result.update(provider=source.name, snapshot=final.snapshot,
                  guid=final.header.toguid, chain=[b.name for b in chain], original_name=final.header.toname)
    lock = None if check_mode else locks.acquire(settings.state_dir, "restore", target, f"restore to {target}",
                                                 {"dataset": dataset, "target": target})
    try:
        return _restore_chain(settings, zfs, source, chain, target, identities, force, check_mode, properties,
                              result)
    finally:
        if lock is not None:
            lock.release()


def _restore_chain(settings: DatasetSettings, zfs: Zfs, store: Store, chain: List[LegacyBackup], target: str,
                   identities: List[Any], force: bool, check_mode: bool,
                   properties: Optional[Dict[str, Optional[str]]], result: Dict[str, Any]) -> Dict[str, Any]:
    final = chain[-1]
    staging = target + STAGING_SUFFIX
    receive_into = target
    start = 0
    use_force = False
    if zfs.exists(target):
        local = zfs.snapshots(target)
        held = {str(s.guid) for s in local}
        if final.header.toguid in held:
            result.update(received=[], msg=f"{target} already holds {final.snapshot} (guid {final.header.toguid}); "
                                           f"nothing to restore.")
            return result
        common = [i for i, b in enumerate(chain) if b.header.toguid in held]
        if common:
            start = common[-1] + 1
            if str(local[-1].guid) != chain[start - 1].header.toguid:
                if not force:
                    raise OffsiteError(f"The target {target} has snapshots newer than {chain[start - 1].snapshot} "
                                       f"that the legacy chain does not hold; restore to another target or pass "
                                       f"force=true to roll them back.", "target_diverged")
                use_force = True
        elif not force:
            raise OffsiteError(f"The target {target} exists and holds none of the snapshots of this legacy chain; "
                               f"restore to another target, or pass force=true to overwrite it.", "target_exists")
        else:
            use_force = True
    else:
        parent = target.rpartition("/")[0]
        if not parent:
            raise OffsiteError(f"The target {target} is a pool name; restore into a dataset inside a pool.",
                               "bad_target")
        if not zfs.exists(parent):
            raise OffsiteError(f"The parent {parent} of the target {target} does not exist; create it first.",
                               "no_parent")
        if zfs.exists(staging):
            if zfs.get(staging, PARTIAL_PROPERTY) != target:
                raise OffsiteError(f"A dataset named {staging} exists and was not made by an offsite restore; rename "
                                   f"or destroy it.", "target_exists")
            if not check_mode:
                zfs.destroy(staging, recursive=True)  # a legacy restore does not resume: start over
        receive_into = staging
    todo = chain[start:]
    result["plan"] = [{"name": b.name, "snapshot": b.snapshot, "kind": b.kind, "pieces": len(b.pieces),
                       "stored_bytes": b.stored_bytes} for b in todo]
    result["changed"] = True
    if check_mode:
        result["msg"] = (f"would restore the legacy backup {final.name} of {result['dataset']} from {store.name} "
                         f"into {target}: {len(todo)} streams, {human_bytes(sum(b.stored_bytes for b in todo))} "
                         f"stored")
        return result
    progress = Progress(settings.log_dir, settings.state_dir, "restore", target)
    result["log_file"] = progress.log_path
    outcome = "failed"
    started = time.time()

    def receive_one(position: int, backup: LegacyBackup) -> Dict[str, Any]:
        progress.phase(store.name, len(backup.pieces), backup.stored_bytes)
        progress.log(f"receiving the legacy backup {backup.name} from {store.name} into {receive_into}")
        return _receive(zfs, store, backup, identities, receive_into, use_force and position == 0, progress)

    try:
        received = receive_staged(zfs, target, receive_into, todo, receive_one, properties)
        outcome = "finished"
    finally:
        progress.close(outcome)
    total = sum(r["bytes"] for r in received)
    seconds = max(time.time() - started, 1e-3)
    result.update(received=received, bytes=total, seconds=round(seconds, 3), rate_bytes_per_second=int(total / seconds),
                  msg=f"restored the legacy backup {final.name} of {result['dataset']} from {store.name} into "
                      f"{target}: {len(received)} streams, {human_bytes(total)}")
    return result


def restore_any(settings: DatasetSettings, legacy: Optional[bool] = None, **kwargs: Any) -> Dict[str, Any]:
    """run_restore, or run_legacy_restore when legacy is true, or when it is None (auto) and no native backup exists."""
    if legacy:
        return run_legacy_restore(settings, **kwargs)
    try:
        return run_restore(settings, **kwargs)
    except OffsiteError as exc:
        if legacy is False or exc.code != "no_backup":
            raise
        native_error = exc
    try:
        stores = _stores(settings, kwargs.get("provider"), kwargs.get("stores"))
        if not any(list_legacy(store, settings.dataset) for store in stores):
            raise native_error
    except OffsiteError:
        raise native_error
    result = run_legacy_restore(settings, **kwargs)
    result["legacy_detected"] = f"no native backup: {native_error.message}"
    return result


# -- adopting: native manifests for verified legacy backups ---------------------------------------------------
def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _adopt_one(store: Store, settings: DatasetSettings, backup: LegacyBackup, base: Optional[SnapshotRef],
               backup_id: str, identities: List[Any], recipients: List[str]) -> Manifest:
    """Verify every piece (download, age, gunzip, continuity), copy it as a chunk, then write the manifest."""
    started = _now()
    key = secrets.token_bytes(32)
    bdir = catalog.backup_dir(settings.namespace, settings.dataset, backup_id)
    records: List[ChunkRecord] = []
    done = 0
    for index, piece in enumerate(backup.pieces):
        if piece.offset is not None and piece.offset != done:
            raise OffsiteError(f"Shard {piece.key} of {backup.name} starts at byte {piece.offset} but the shards "
                               f"before it hold {done} bytes: a shard is missing or was replaced.", "chunk_mismatch")
        mac = chunk_mac(key, backup_id, index)
        sink = _PlainSink(mac=mac)
        cipher: List[DigestReader] = []
        _decrypt_piece(store, piece, sink, identities, backup.name, cipher)
        if backup.layout == "split" and 0 < index < len(backup.pieces) and records and \
                records[-1].plain_bytes != records[0].plain_bytes:
            raise OffsiteError(f"Piece {backup.pieces[index - 1].key} of {backup.name} holds "
                               f"{records[-1].plain_bytes} bytes but the first piece {records[0].plain_bytes}: a "
                               f"piece is missing or was replaced.", "chunk_mismatch")
        if cipher[0].count != piece.size:
            raise OffsiteError(f"Piece {piece.key} of {backup.name} on {store.name} is {cipher[0].count} bytes but "
                               f"was listed with {piece.size}: it changed while being adopted.", "chunk_mismatch")
        obj = catalog.chunk_object(index, ".gz")
        records.append(ChunkRecord(index, obj, sink.plain_bytes, mac.hexdigest(), cipher[0].count,
                                   cipher[0].sha256.hexdigest()))
        done += sink.plain_bytes
    for record, piece in zip(records, backup.pieces):
        store.copy(piece.key, f"{bdir}/{record.object}")
    listed = {o.path: o.size for o in store.list(bdir, max_depth=1)}
    for record in records:
        if listed.get(record.object) != record.stored_bytes:
            raise OffsiteError(f"The copy {record.object} of {backup.name} on {store.name} does not have the size of "
                               f"its piece; run the adoption again.", "upload_incomplete")
    header = backup.header
    manifest = Manifest(
        backup_id=backup_id, namespace=settings.namespace, dataset=settings.dataset,
        dataset_type=header.dataset_type,
        snapshot=SnapshotRef(backup.snapshot, header.toguid, 0, header.creation),
        kind="incremental" if base else "full", base=base, send_flags=[],
        compression={"algorithm": "gzip", "level": 6},
        encryption={"kind": "recipients", "recipients": recipients, "wrapped_identity": None,
                    "sealed_key": codec.seal(key, codec.parse_recipients(recipients))},
        chunk_size=max([r.plain_bytes for r in records] or [0]), chunks=records,
        estimate={"bytes": done, "method": f"adopted from the old tool's {backup.name} ({backup.layout})"},
        host=socket.gethostname(), tool_version=TOOL_VERSION, started=started, finished=_now())
    manifest.seal_with(key)
    raw = manifest.to_json()
    signature = signing.sign_checked(settings.trust, settings.namespace, settings.dataset, backup_id, raw)
    if signature is not None:  # adopted backups are signed like new ones, before the manifest
        store.put_bytes(f"{bdir}/{signing.SIGNATURE}", signature)
    store.put_bytes(f"{bdir}/{catalog.MANIFEST}", raw)
    return manifest


def _depth(backup: LegacyBackup, by_guid: Dict[str, LegacyBackup]) -> int:
    depth = 0
    seen = set()
    while backup.header and not backup.header.full and backup.header.fromguid in by_guid:
        if backup.header.fromguid in seen:
            break
        seen.add(backup.header.fromguid)
        backup = by_guid[backup.header.fromguid]
        depth += 1
    return depth


def adopt_legacy(settings: DatasetSettings, keys: Keys, check_mode: bool = False,
                 stores: Optional[Dict[str, Store]] = None) -> Dict[str, Any]:
    """Give every complete legacy backup of the dataset a native copy and manifest, after verifying every piece.

    On each selected provider, every piece is downloaded, decrypted and gunzipped (nothing reaches ZFS),
    then copied (server-side where the backend can) to `<namespace>/<dataset>/@<backup id>/chunk-NNNNNN.gz.age`
    and described by a manifest with keyed digests, so status, prune and restore treat it like a native
    backup. The legacy objects are left as they are. Bases are adopted before the backups that need them.
    """
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
            backups = [b for b in list_legacy(store, dataset) if b.complete]
            for backup in backups:
                read_header(store, backup, identities)
            backups = [b for b in backups if b.complete]
            by_guid = {b.header.toguid: b for b in sorted(backups, key=lambda b: b.kind != "full")}
            listing = catalog.list_backups(store, settings.namespace, dataset)
            native = {b.backup_id: b for b in listing.for_dataset(dataset) if b.complete}
            native_refs = {b.manifest.snapshot.guid: b.manifest.snapshot for b in native.values()}
            for backup in sorted(backups, key=lambda b: (_depth(b, by_guid), b.header.creation)):
                entry: Dict[str, Any] = {"name": backup.name, "snapshot": backup.snapshot, "kind": backup.kind}
                entries.append(entry)
                base: Optional[SnapshotRef] = None
                try:
                    validate_snapshot(backup.snapshot)
                    if not backup.header.full:
                        source = by_guid.get(backup.header.fromguid)
                        base = (SnapshotRef(source.snapshot, source.header.toguid, 0, source.header.creation)
                                if source else native_refs.get(backup.header.fromguid))
                        if base is None:
                            raise OffsiteError(f"{backup.name} is incremental from the snapshot with guid "
                                               f"{backup.header.fromguid}, which has no backup here; it cannot be "
                                               f"adopted.", "no_backup")
                    backup_id = catalog.make_backup_id(backup.snapshot, int(backup.header.toguid),
                                                       base.name if base else None)
                    entry["backup_id"] = backup_id
                    if backup_id in native:
                        entry.update(status="present", message=f"{backup.name} is already adopted as {backup_id}.")
                    elif check_mode:
                        entry.update(status="planned", message=f"would verify {len(backup.pieces)} pieces of "
                                                               f"{backup.name} and adopt it as {backup_id}")
                        result["changed"] = True
                    else:
                        manifest = _adopt_one(store, settings, backup, base, backup_id, identities, recipients)
                        native_refs[manifest.snapshot.guid] = manifest.snapshot
                        entry.update(status="adopted", chunks=len(manifest.chunks), bytes_plain=manifest.plain_bytes,
                                     message=f"verified every piece of {backup.name} and adopted it as {backup_id}")
                        result["changed"] = True
                except OffsiteError as exc:
                    entry.update(status="failed", message=exc.message, error_code=exc.code)
                    if name not in result["failed_providers"]:
                        result["failed_providers"].append(name)
        except OffsiteError as exc:
            result["providers"][name].update(status="failed", message=exc.message, error_code=exc.code)
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
