# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host's ledger of completed backups, to notice backups that disappear or are rolled back.

Private to the collection: not an API for other collections.

One file per provider and dataset, `<state_dir>/ledger/<provider>/<namespace/dataset, quoted>.json`
(mode 0600, directories 0700), written only by the host's own backups (and its own prunes):

    {"format": "offsite.zfs/ledger", "version": 1, "started": "...", "seeded": [...],
     "backups": {"<backup id>": {"manifest_sha256": "...", "recorded": "..."}}}

`offsite_status` compares it with the listing: a backup the ledger holds whose manifest is gone is
`backup_vanished`, one whose manifest.json has other bytes (an older manifest put back, or a
replacement) is `manifest_changed`; both are critical. The ledger is never deleted by the collection;
when it is missing while the provider holds backups (the state directory was replaced or wiped, or the
host was upgraded from 1.0.0), status reports `ledger_reset`, and the next backup records the backups
it lists as the new starting point. No I/O but the ledger files.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple
from urllib.parse import quote, unquote

from ansible_collections.offsite.zfs.plugins.module_utils.common import write_private_file

FORMAT = "offsite.zfs/ledger"
Finding = Tuple[str, str, Optional[str], str]  # code, severity, backup id, message


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def path_of(state_dir: str, namespace: str, provider: str, dataset: str) -> str:
    return os.path.join(state_dir, "ledger", provider, quote("%s/%s" % (namespace, dataset), safe="") + ".json")


def datasets(state_dir: str, namespace: str, providers: Sequence[str]) -> List[str]:
    """The datasets of a namespace that have a ledger on one of these providers."""
    found = set()
    prefix = namespace + "/"
    for provider in providers:
        try:
            names = os.listdir(os.path.join(state_dir, "ledger", provider))
        except OSError:
            continue
        for name in names:
            full = unquote(name[:-5]) if name.endswith(".json") else ""
            if full.startswith(prefix):
                found.add(full[len(prefix):])
    return sorted(found)


def load(path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path, "r", encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("backups"), dict):
        return None
    return data


def _save(path: str, data: Dict[str, Any]) -> None:
    write_private_file(path, json.dumps(data, indent=1, sort_keys=True).encode("utf-8"))


def record(state_dir: str, namespace: str, provider: str, dataset: str, backup_id: str, manifest_sha256: str,
           listed: Sequence[Any] = ()) -> None:
    """Add a completed backup. A new ledger starts with the complete backups listed (its starting point)."""
    path = path_of(state_dir, namespace, provider, dataset)
    data = load(path)
    if data is None:
        data = {"format": FORMAT, "version": 1, "started": _now(), "seeded": [], "backups": {}}
        for backup in listed:
            if backup.complete and backup.manifest_sha256 and backup.backup_id != backup_id:
                data["backups"][backup.backup_id] = {"manifest_sha256": backup.manifest_sha256,
                                                     "recorded": data["started"], "seeded": True}
                data["seeded"].append(backup.backup_id)
    data["backups"][backup_id] = {"manifest_sha256": manifest_sha256, "recorded": _now()}
    _save(path, data)


def forget(state_dir: str, namespace: str, provider: str, dataset: str, backup_ids: Sequence[str]) -> None:
    """Drop backups this host pruned itself."""
    path = path_of(state_dir, namespace, provider, dataset)
    data = load(path)
    if data is None or not any(b in data["backups"] for b in backup_ids):
        return
    for backup_id in backup_ids:
        data["backups"].pop(backup_id, None)
    _save(path, data)


def check(state_dir: str, namespace: str, provider: str, dataset: str, backups: Sequence[Any]) -> List[Finding]:
    """Compare the ledger with a listing (catalog.Backup objects of this dataset on this provider)."""
    path = path_of(state_dir, namespace, provider, dataset)
    data = load(path)
    listed = {b.backup_id: b for b in backups}
    if data is None:
        complete = [b for b in backups if b.manifest_sha256]
        if not complete:
            return []
        return [("ledger_reset", "warning", None,
                 "This host has no ledger of the backups of %s on %s (%s), but %s holds %d; its state directory "
                 "was replaced or reset (or the host was upgraded), so a deleted or rolled-back backup made before "
                 "now cannot be noticed; the next backup starts a new ledger." % (
                     dataset, provider, path, provider, len(complete)))]
    findings: List[Finding] = []
    for backup_id, entry in sorted(data["backups"].items()):
        backup = listed.get(backup_id)
        if backup is None or backup.manifest_sha256 is None:
            findings.append(("backup_vanished", "critical", backup_id,
                             "Backup %s of %s, which this host completed on %s (recorded %s), is gone from the "
                             "provider%s; someone with write access deleted it: find out who, and back %s up again."
                             % (backup_id, dataset, provider, entry.get("recorded", "?"),
                                " (only some of its objects are left)" if backup is not None else "", dataset)))
        elif backup.manifest_sha256 != entry.get("manifest_sha256"):
            findings.append(("manifest_changed", "critical", backup_id,
                             "The manifest of backup %s of %s on %s is not the one this host wrote (recorded %s): "
                             "it was rolled back to an older one or replaced; find out who can write to the "
                             "provider, and back %s up again." % (
                                 backup_id, dataset, provider, entry.get("recorded", "?"), dataset)))
    return findings
