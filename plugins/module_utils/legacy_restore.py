# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Legacy restore: a chain of the old tool's backups received through restore's staging (receive_staged).

legacy_chain finds and links the backups, legacy_read gives each one's plaintext stream with its checks;
this file plans the target, names the pieces check mode would read, and feeds `zfs receive`.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils import _proc, locks
from ansible_collections.offsite.zfs.plugins.module_utils.common import (
    OffsiteError,
    human_bytes,
    validate_dataset,
    validate_snapshot,
)
from ansible_collections.offsite.zfs.plugins.module_utils.legacy_chain import (
    describe,
    list_legacy,
    read_final_guid,
    resolve_legacy_chain,
)
from ansible_collections.offsite.zfs.plugins.module_utils.legacy_layout import LegacySet, folder_for
from ansible_collections.offsite.zfs.plugins.module_utils.legacy_read import read_stream
from ansible_collections.offsite.zfs.plugins.module_utils.legacy_stream import end_guid
from ansible_collections.offsite.zfs.plugins.module_utils.policy import DatasetSettings
from ansible_collections.offsite.zfs.plugins.module_utils.progress import Progress
from ansible_collections.offsite.zfs.plugins.module_utils.restore import (
    STAGING_SUFFIX,
    Keys,
    receive_staged,
    run_restore,
)
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import (
    MOUNT_FAILED,
    PARTIAL_PROPERTY,
    Zfs,
    receive_failure,
)

VERIFICATION = ("legacy backups have no manifest and no digests: age authentication of every piece, gzip ends, "
                "piece numbering and sizes, shard offsets, the stream's BEGIN and END records and the zfs stream "
                "checksum are the only checks")


def _spool(settings: DatasetSettings) -> Optional[str]:
    """Where many small pieces are downloaded in batches (created when missing)."""
    return settings.spool_dir or None


def _stopped(proc: _proc.Child) -> str:
    """Why zfs receive stopped reading: the first line it wrote (or why there is none)."""
    try:
        rc = proc.wait(30)
    except _proc.TimeoutExpired:
        return "it did not exit"
    return receive_failure(rc, proc.stderr.read()).reason


def _receive(zfs: Zfs, store: Store, backup: LegacySet, identities: List[Any], target: str, force: bool,
             progress: Any, spool_dir: Optional[str]) -> Dict[str, Any]:
    proc = zfs.receive(target, force=force)
    ok = False
    try:
        try:
            tracker = read_stream(store, backup, identities, write=proc.stdin.write, spool_dir=spool_dir,
                                  on_piece=progress.chunk)
        except (BrokenPipeError, ConnectionResetError):
            raise OffsiteError(f"zfs receive into {target} stopped while the legacy backup {backup.name} was being "
                               f"written: {_stopped(proc)}", "receive_failed")
        try:
            guid = end_guid(tracker.tail, backup.header)
        except ValueError as exc:
            raise OffsiteError(f"The stream of the legacy backup {backup.name} on {store.name} is incomplete ({exc}): "
                               f"its last pieces are missing or the last piece {backup.pieces[-1].key} is truncated; "
                               f"nothing was restored from it.", "chunk_corrupt")
        expected = backup.final_guid or guid
        if guid not in ("0", expected):
            raise OffsiteError(f"The last piece {backup.pieces[-1].key} of {backup.name} on {store.name} ends the "
                               f"stream of the snapshot with guid {guid}, not {expected}: it is from another "
                               f"backup.", "chunk_mismatch")
        backup.final_guid = backup.final_guid or guid
        rc = proc.finish()
        failure = receive_failure(rc, proc.stderr.read()) if rc != 0 else None
        if failure is not None and not (  # received, and only the mountpoint it carries is busy: not a failure
                MOUNT_FAILED in failure.kinds and zfs.exists(f"{target}@{backup.header.snapshot or backup.snapshot}")):
            raise OffsiteError(f"zfs receive of the legacy backup {backup.name} into {target} failed: "
                               f"{failure.reason}", "receive_failed")
        ok = True
    finally:
        if not ok:
            proc.abort(120)  # a truncated stream makes ZFS discard the partial receive
        proc.close()
    return {"name": backup.name, "format": backup.format, "snapshot": backup.snapshot, "kind": backup.kind,
            "pieces": len(backup.pieces), "bytes": tracker.plain_bytes}


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
    identities = list((keys or Keys()).identities)
    reasons = []
    found: List[Tuple[Store, List[LegacySet]]] = []
    for store in _stores(settings, provider, stores):
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
                              "verification": VERIFICATION}
    if not identities:
        if not check_mode:
            raise OffsiteError(f"Restoring the legacy backups of {dataset} needs the age identity they were "
                               f"encrypted to: pass identity or identity_file.", "no_keys")
        store, backups = found[0]
        result.update(changed=True, provider=store.name, backups=[describe(b) for b in backups],
                      msg=f"would restore a legacy backup of {dataset} from {store.name} into {target}; the chain "
                          f"is linked by the guids in the streams, which need the identity to read")
        return result
    chain: List[LegacySet] = []
    source = None
    for store, backups in found:
        try:
            chain = resolve_legacy_chain(store, backups, snapshot, identities, _spool(settings))
            source = store
            break
        except OffsiteError as exc:
            if exc.code == "wrong_key":
                raise
            reasons.append(exc.message)
    if source is None:
        raise OffsiteError(f"No provider can restore the legacy backups of {dataset}: {' '.join(reasons)}",
                           "no_backup")
    if zfs.exists(target):  # what the target holds is matched by guid: -I streams keep theirs in their tail
        for backup in chain:
            read_final_guid(source, backup, identities, _spool(settings))
    final = chain[-1]
    result.update(provider=source.name, snapshot=final.header.snapshot or final.snapshot, guid=final.final_guid or None,
                  chain=[b.name for b in chain], original_name=final.header.toname)
    lock = None if check_mode else locks.acquire(settings.state_dir, "restore", target, f"restore to {target}",
                                                 {"dataset": dataset, "target": target})
    try:
        return _restore_chain(settings, zfs, source, chain, target, identities, force, check_mode, properties,
                              result)
    finally:
        if lock is not None:
            lock.release()


def _plan_target(zfs: Zfs, chain: List[LegacySet], target: str, force: bool, check_mode: bool
                 ) -> Tuple[Optional[int], str, bool]:
    """(first link to receive, or None when the target holds the final snapshot; receive into; force)."""
    held_guids = {str(s.guid) for s in zfs.snapshots(target)} if zfs.exists(target) else None
    if held_guids is not None:
        local = zfs.snapshots(target)
        if chain[-1].final_guid and chain[-1].final_guid in held_guids:
            return None, target, False
        common = [i for i, b in enumerate(chain) if b.final_guid and b.final_guid in held_guids]
        if common:
            start = common[-1] + 1
            if str(local[-1].guid) != chain[start - 1].final_guid:
                if not force:
                    raise OffsiteError(f"The target {target} has snapshots newer than {chain[start - 1].snapshot} "
                                       f"that the legacy chain does not hold; restore to another target or pass "
                                       f"force=true to roll them back.", "target_diverged")
                return start, target, True
            return start, target, False
        if not force:
            raise OffsiteError(f"The target {target} exists and holds none of the snapshots of this legacy chain; "
                               f"restore to another target, or pass force=true to overwrite it.", "target_exists")
        return 0, target, True
    parent = target.rpartition("/")[0]
    if not parent:
        raise OffsiteError(f"The target {target} is a pool name; restore into a dataset inside a pool.", "bad_target")
    if not zfs.exists(parent):
        raise OffsiteError(f"The parent {parent} of the target {target} does not exist; create it first.", "no_parent")
    staging = target + STAGING_SUFFIX
    if zfs.exists(staging):
        if zfs.get(staging, PARTIAL_PROPERTY) != target:
            raise OffsiteError(f"A dataset named {staging} exists and was not made by an offsite restore; rename "
                               f"or destroy it.", "target_exists")
        if not check_mode:
            zfs.destroy(staging, recursive=True)  # a legacy restore does not resume: start over
    return 0, staging, False


def _restore_chain(settings: DatasetSettings, zfs: Zfs, store: Store, chain: List[LegacySet], target: str,
                   identities: List[Any], force: bool, check_mode: bool,
                   properties: Optional[Dict[str, Optional[str]]], result: Dict[str, Any]) -> Dict[str, Any]:
    final = chain[-1]
    start, receive_into, use_force = _plan_target(zfs, chain, target, force, check_mode)
    if start is None:
        result.update(received=[], msg=f"{target} already holds {final.snapshot} (guid {final.final_guid}); "
                                       f"nothing to restore.")
        return result
    todo = chain[start:]
    result["plan"] = [{"name": b.name, "format": b.format, "snapshot": b.snapshot, "kind": b.kind,
                       "pieces": len(b.pieces), "stored_bytes": b.stored_bytes,
                       "piece_names": [p.name for p in b.pieces]} for b in todo]
    result["changed"] = True
    if check_mode:
        names = [p.name for b in todo for p in b.pieces]
        shown = ", ".join(names[:5]) + (f" ... {names[-1]}" if len(names) > 6 else
                                        (", " + names[-1] if len(names) == 6 else ""))
        result["msg"] = (f"would restore the legacy backup {final.name} of {result['dataset']} from {store.name} "
                         f"into {target}: {len(todo)} streams, reading {len(names)} pieces ({shown}), "
                         f"{human_bytes(sum(b.stored_bytes for b in todo))} stored")
        return result
    progress = Progress(settings.log_dir, settings.state_dir, "restore", target)
    result["log_file"] = progress.log_path
    outcome = "failed"
    started = time.time()

    def receive_one(position: int, backup: LegacySet) -> Dict[str, Any]:
        progress.phase(store.name, len(backup.pieces), backup.stored_bytes)
        progress.log(f"receiving the legacy backup {backup.name} ({backup.format}) from {store.name} into "
                     f"{receive_into}")
        return _receive(zfs, store, backup, identities, receive_into, use_force and position == 0, progress,
                        _spool(settings))

    try:
        received = receive_staged(zfs, target, receive_into, todo, receive_one, properties)
        outcome = "finished"
    finally:
        progress.close(outcome)
    total = sum(r["bytes"] for r in received)
    seconds = max(time.time() - started, 1e-3)
    result.update(received=received, bytes=total, seconds=round(seconds, 3), rate_bytes_per_second=int(total / seconds),
                  guid=final.final_guid or None,
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
