# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Legacy chain: the old tool's backups of a dataset on one provider, and chains linked by stream guids.

Private to the collection: not an API for other collections.

Listing needs no key: one `rclone lsjson` of the folder, plus, for each F3/F4 set of more than one
piece, the first 21 bytes of x002 (an age header there means F4). Linking needs the identity: the start
of each backup's stream (its BEGIN records) is read, and for `zfs send -I` streams, whose final
snapshot's guid is only in their tail, the whole stream is read once when a chain needs it. Names are
never used to link a chain.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.legacy_layout import (
    Layout,
    LegacySet,
    folder_for,
    parse_layout,
    resolve_split,
)
from ansible_collections.offsite.zfs.plugins.module_utils.legacy_read import probe_age, read_stream
from ansible_collections.offsite.zfs.plugins.module_utils.legacy_stream import StreamHeader, end_guid, parse_header
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store

LIST_DEPTH = 4  # the junk object's key holds log text, whose "/" make folders


def list_layout(store: Store, dataset: str) -> Layout:
    """Every legacy backup of dataset on store, by format (F3/F4 told apart), and what does not parse."""
    folder = folder_for(dataset)
    objects = [(o.path, o.size) for o in store.list(folder, max_depth=LIST_DEPTH)]
    layout = parse_layout(dataset, objects)
    for backup in layout.sets:
        if backup.format == "F3/F4":
            resolve_split(backup, probe_age(store, backup.pieces[1].key) if len(backup.pieces) > 1 else None)
    return layout


def list_legacy(store: Store, dataset: str) -> List[LegacySet]:
    """The old tool's backups of dataset on store, ordered by snapshot name (no key needed)."""
    return list_layout(store, dataset).sets


def read_header(store: Store, backup: LegacySet, identities: List[Any]) -> Optional[StreamHeader]:
    """Read the start of the backup's stream; a backup whose start is not a zfs send stream gets a problem."""
    if backup.header is not None or not backup.complete:
        return backup.header
    tracker = read_stream(store, backup, identities, head_only=True)
    try:
        header = parse_header(tracker.head)
    except ValueError:
        if backup.format == "F2":
            backup.problems.append(f"{backup.name} holds only the last 1 GiB chunk of a larger stream (the old tool's "
                                   f"split --filter overwrote the earlier ones): it cannot be restored")
        else:
            backup.problems.append(f"{backup.name} does not start with a zfs send stream: it is not a backup of the "
                                   f"old tool, or its first piece was replaced")
        return None
    backup.header = header
    if not header.compound:
        backup.final_guid = header.toguid
    kind = "full" if header.full else "incremental"
    if backup.kind not in ("unknown", kind):
        backup.problems.append(f"{backup.name} is named {backup.kind} but holds an {kind} stream")
    backup.kind = kind
    if backup.format == "F2":
        backup.notes.append(f"{backup.name} starts the stream, so the stream fit in one chunk and the object is all "
                            f"of it (its END record is checked when it is read)")
    return header


def read_final_guid(store: Store, backup: LegacySet, identities: List[Any], spool_dir: Optional[str]) -> str:
    """The final snapshot's guid of a compound (zfs send -I) stream: the whole stream is read for its tail."""
    if not backup.final_guid and backup.header is not None:
        tracker = read_stream(store, backup, identities, spool_dir=spool_dir)
        try:
            backup.final_guid = end_guid(tracker.tail, backup.header)
        except ValueError as exc:
            backup.problems.append(f"the stream of {backup.name} is incomplete ({exc}): its last pieces are missing "
                                   f"or the last piece {backup.pieces[-1].name} is truncated")
    return backup.final_guid


def resolve_legacy_chain(store: Store, backups: List[LegacySet], snapshot: Optional[str], identities: List[Any],
                         spool_dir: Optional[str] = None) -> List[LegacySet]:
    """[full, incremental, ...] ending at snapshot (or the newest), linked by the guids inside the streams."""
    for backup in backups:
        if backup.complete:
            read_header(store, backup, identities)
    usable = [b for b in backups if b.complete and b.header is not None]
    if snapshot is not None:
        candidates = [b for b in usable if snapshot in (b.snapshot, b.header.snapshot)]
    else:
        candidates = list(usable)
    if not candidates:
        reasons = [p for b in backups for p in b.problems]
        raise OffsiteError(f"Provider {store.name} has no complete legacy backup of {backups[0].dataset}"
                           f"{'@' + snapshot if snapshot else ''}{': ' + '; '.join(reasons[:3]) if reasons else ''}.",
                           "no_backup")

    def bases(guid: str) -> List[LegacySet]:
        found = [b for b in usable if b.final_guid == guid]
        if found:
            return found
        for b in usable:  # compound streams: their final guid is only in their tail
            if b.header.compound and not b.final_guid and b.complete:
                if read_final_guid(store, b, identities, spool_dir) == guid:
                    found.append(b)
        return found

    def chain_for(backup: LegacySet, seen: Tuple[str, ...]) -> Optional[List[LegacySet]]:
        if backup.header.full:
            return [backup]
        if backup.header.fromguid in seen:
            return None
        best = None
        for base in bases(backup.header.fromguid):
            chain = chain_for(base, seen + (backup.header.fromguid,))
            if chain and (best is None or len(chain) < len(best)):
                best = chain
        return best + [backup] if best else None

    good = [(c, chain) for c, chain in ((c, chain_for(c, ())) for c in candidates) if chain]
    if not good:
        first = candidates[-1]
        raise OffsiteError(f"The legacy backup {first.name} on {store.name} is incremental from the snapshot with "
                           f"guid {first.header.fromguid}, and no complete legacy backup of that snapshot is in the "
                           f"folder {folder_for(first.dataset)}; the chain is broken.", "no_backup")
    if snapshot is not None:
        return min((item[1] for item in good), key=len)
    # The newest: by creation time (a -I stream's first snapshot, so at equal times the -I stream, whose
    # last snapshot is newer), then by chain length.
    return max(good, key=lambda item: (item[0].header.creation, item[0].header.compound, len(item[1])))[1]


def describe(backup: LegacySet) -> Dict[str, Any]:
    """A JSON-ready summary of one legacy backup."""
    header = backup.header
    return {"name": backup.name, "dataset": backup.dataset, "snapshot": backup.snapshot, "format": backup.format,
            "layout": backup.format, "kind": backup.kind, "pieces": len(backup.pieces),
            "stored_bytes": backup.stored_bytes, "complete": backup.complete, "problems": list(backup.problems),
            "notes": list(backup.notes), "guid": backup.final_guid or None,
            "base_guid": (None if header.full else header.fromguid) if header else None,
            "creation": header.creation if header else None,
            "original_name": header.toname if header else None,
            "piece_names": [p.name for p in backup.pieces]}
