# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Status of legacy backups: what the old bash tool left at each provider's remote root (offsite_status legacy=true).

Private to the collection: not an API for other collections.

One listing of each provider's root (a few levels deep) finds the old tool's folders; every backup in
them is listed per format with what could be checked and what could not, and every object that looks
like the old tool's but does not parse is reported with the reason. With an identity, the start of
each backup's stream is read (its kind, guid, base guid and original name). Nothing is changed.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.legacy_chain import LIST_DEPTH, describe, read_header
from ansible_collections.offsite.zfs.plugins.module_utils.legacy_layout import (
    FORMATS,
    LegacySet,
    folder_for,
    parse_layout,
    resolve_split,
)
from ansible_collections.offsite.zfs.plugins.module_utils.legacy_read import probe_age
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store

NOT_CHECKED = ("the content of each piece (age, gzip, sizes, offsets after decompression, END record): offsite_adopt "
               "or a restore reads it; a missing last piece cannot be seen in the names, since no format stores a "
               "piece count")


def _checked(backup: LegacySet, with_header: bool) -> List[str]:
    checked = ["object names parse as " + backup.format]
    if backup.format not in ("F1", "F2"):
        checked.append("piece numbers start at 1 without a gap or a repeat")
    if backup.format in ("F7", "F8"):
        checked.append("shard offsets start at 0 and increase with the shard numbers")
    if backup.format in ("F3", "F4") and len(backup.pieces) > 1:
        checked.append("F3 or F4 told apart by the age header of x002")
    if backup.format == "F3":
        checked.append("slices before the last have one size")
    if with_header and backup.header is not None:
        checked.append("the stream header (kind, guid, base guid, original name)")
    return checked


def _folder_report(store: Store, folder: str, dataset: Optional[str], objects: List[Any], identities: List[Any]
                   ) -> Dict[str, Any]:
    layout = parse_layout(dataset or folder, list(objects))
    backups = []
    for backup in layout.sets:
        if backup.format == "F3/F4" and len(backup.pieces) > 1:
            try:
                resolve_split(backup, probe_age(store, backup.pieces[1].key))
            except OffsiteError as exc:
                backup.notes.append(f"x002 could not be read to tell F3 from F4: {exc.message}")
        elif backup.format == "F3/F4":
            resolve_split(backup, None)
        if identities and backup.complete:
            try:
                read_header(store, backup, identities)
            except OffsiteError as exc:
                backup.problems.append(exc.message)
        entry = describe(backup)
        entry.pop("piece_names")
        entry.update(first_piece=backup.pieces[0].name if backup.pieces else None,
                     last_piece=backup.pieces[-1].name if backup.pieces else None,
                     written_by=FORMATS.get(backup.format, "F3 or F4: " + FORMATS["F3"] + ", or " + FORMATS["F4"]),
                     checked=_checked(backup, bool(identities)),
                     not_checked=[NOT_CHECKED] + ([] if identities and backup.header is not None else
                                                  ["the stream header (pass an identity and legacy=true)"]))
        backups.append(entry)
    return {"folder": folder, "dataset": dataset, "backups": backups,
            "unparsed": [{"key": u.key, "bytes": u.size, "reason": u.reason} for u in layout.unparsed]}


def legacy_report(stores: Dict[str, Store], datasets: List[str], keys: Any = None,
                  skip_folders: Optional[List[str]] = None) -> Dict[str, Any]:
    """Per provider, the old tool's folders below its root with their backups and unparsed objects."""
    identities = list(keys.identities) if keys is not None else []
    by_folder = {folder_for(ds): ds for ds in datasets}
    providers: Dict[str, Any] = {}
    counts: Dict[str, int] = {}
    problems: List[Dict[str, Any]] = []
    for name, store in stores.items():
        try:
            listing = store.list("", max_depth=LIST_DEPTH)
        except OffsiteError as exc:
            providers[name] = {"listed": False, "message": exc.message, "folders": []}
            problems.append({"code": "provider_failed", "provider": name, "message": exc.message})
            continue
        folders: Dict[str, List[Any]] = {}
        for obj in listing:
            folder, _sep, rest = obj.path.partition("/")
            if rest and folder not in (skip_folders or []):
                folders.setdefault(folder, []).append((rest, obj.size))
        reports = []
        for folder, objects in sorted(folders.items()):
            report = _folder_report(store, folder, by_folder.get(folder), objects, identities)
            if not report["backups"] and not report["unparsed"]:
                continue
            reports.append(report)
            for entry in report["backups"]:
                counts[entry["format"]] = counts.get(entry["format"], 0) + 1
                for text in entry["problems"]:
                    problems.append({"code": "legacy_incomplete", "provider": name, "dataset": report["dataset"],
                                     "folder": folder, "backup": entry["name"], "message": text})
            for item in report["unparsed"]:
                problems.append({"code": "legacy_unparsed", "provider": name, "dataset": report["dataset"],
                                 "folder": folder, "key": item["key"],
                                 "message": f"{item['key']} on {name} looks like an object of the old tool but was "
                                            f"not read: {item['reason']}."})
        providers[name] = {"listed": True, "folders": reports}
    total = sum(counts.values())
    msg = (f"{total} legacy backups of the old tool ({', '.join(f'{v} {k}' for k, v in sorted(counts.items()))})"
           if total else "no legacy backups of the old tool") + (f", {len(problems)} problems" if problems else "")
    return {"providers": providers, "backups_by_format": counts, "backups": total, "problems": problems, "msg": msg}
