# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The default namespace: a name unique in the fleet, and the safe way on from the 1.0 short-name default.

Private to the collection: not an API for other collections.

Without `namespace` in the parameters or the policy, a host's namespace is its `host_name` (a policy
key; the role sets it to inventory_hostname), else its FQDN. socket.getfqdn() is taken only when it
extends the short host name: a resolver that answers `localhost` would put every host in one folder.
1.0.0 defaulted to the short host name, so two `web1` in different domains shared one folder.

Migration: when the unique name differs from the short name, no provider holds anything below the
unique name, and the short-name namespace holds backups of this host (a manifest carrying this
host's id, or, for 1.0.0 backups that carry none, a snapshot guid one of this host's local snapshots
has), the host keeps the short-name namespace and says so in a warning naming both. The decision is
remembered in `<state_dir>/namespace.json` (later runs list nothing); setting `namespace` moves on.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils import catalog, hostid
from ansible_collections.offsite.zfs.plugins.module_utils.common import validate_namespace
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import Zfs

FILE = "namespace.json"
_DECIDED: Dict[Tuple[Any, ...], Tuple[str, str]] = {}  # one decision per process (resolve runs per dataset)


def short_name() -> str:
    """The 1.0.0 default: the host name up to its first dot."""
    return socket.gethostname().split(".")[0] or "localhost"


def unique_name(host_name: Optional[str] = None) -> str:
    """host_name (validated), else the FQDN when the resolver gives one that extends the short name."""
    if host_name:
        return validate_namespace(host_name)
    short = short_name()
    for candidate in (socket.gethostname(), socket.getfqdn()):
        if candidate.startswith(short + ".") and len(candidate) > len(short) + 1:
            try:
                return validate_namespace(candidate.rstrip("."))
            except OffsiteError:
                continue
    return validate_namespace(short)


def _cached(state_dir: str, unique: str, short: str) -> Optional[str]:
    try:
        with open(os.path.join(state_dir, FILE), "r", encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("unique") != unique or data.get("short") != short:
        return None
    chosen = data.get("namespace")
    return chosen if chosen in (unique, short) else None


def _remember(state_dir: str, unique: str, short: str, chosen: str) -> None:
    """Best effort, and only into an existing state dir (a check-mode run on a new host creates none)."""
    if not os.path.isdir(state_dir):
        return
    path = os.path.join(state_dir, FILE)
    tmp = path + ".tmp-%d" % os.getpid()
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"unique": unique, "short": short, "namespace": chosen}, handle)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def ours(backups: Sequence[Any], own_id: str, local_guids: Callable[[str], set]) -> List[Any]:
    """The complete backups this host wrote: its host id, or no id and a guid of a local snapshot."""
    found = []
    for backup in backups:
        manifest = backup.manifest
        if manifest is None:
            continue
        if manifest.host_id:
            if own_id and manifest.host_id == own_id:
                found.append(backup)
        elif manifest.snapshot.guid in local_guids(backup.dataset):
            found.append(backup)
    return found


def _local_guids(zfs_binary: str) -> Callable[[str], set]:
    memo: Dict[str, set] = {}
    zfs = Zfs(zfs_binary)

    def guids(dataset: str) -> set:
        if dataset not in memo:
            try:
                memo[dataset] = {str(s.guid) for s in zfs.snapshots(dataset)}
            except (OffsiteError, OSError):
                memo[dataset] = set()
        return memo[dataset]
    return guids


def decide(unique: str, short: str, stores: Sequence[Any], own_id: str,
           local_guids: Callable[[str], set]) -> Tuple[str, str, bool]:
    """(namespace, warning, settled): the rule above over the providers' listings; settled when every
    provider answered and one of them holds backups in the chosen namespace (then it is remembered)."""
    certain = True
    for store in stores:
        try:
            if store.list(unique):
                return unique, "", True
        except OffsiteError:
            certain = False
    found: Dict[str, int] = {}
    for store in stores:
        try:
            listing = catalog.list_backups(store, short)
        except OffsiteError:
            certain = False
            continue
        mine = ours([b for b in listing.backups.values() if b.complete], own_id, local_guids)
        if mine:
            found[store.name] = len(mine)
    if not found:
        return unique, "", False
    where = ", ".join("%d on %s" % (count, name) for name, count in sorted(found.items()))
    return short, ("Using the namespace %s (this host's short name, the default before 1.1): it holds this host's "
                   "backups (%s) and the namespace %s (the new default, host_name or FQDN) holds none. Set "
                   "namespace: %s in the policy to keep it, or namespace: %s and run a full backup to move "
                   "(docs/policy.md, host identity)." % (short, where, unique, short, unique)), certain


def default(host_name: Optional[str], state_dir: str, providers: Dict[str, Any], zfs_binary: str = "zfs",
            stores: Optional[Dict[str, Any]] = None) -> Tuple[str, str]:
    """This host's default namespace and a warning when it keeps the short-name one (see above)."""
    unique, short = unique_name(host_name), short_name()
    if unique == short or not providers:
        return unique, ""
    key = (unique, short, state_dir, zfs_binary, tuple(sorted((n, p.remote) for n, p in providers.items())))
    if key in _DECIDED:
        return _DECIDED[key]
    cached = _cached(state_dir, unique, short)
    if cached is not None:
        decided = (cached, "" if cached == unique else _kept(short, unique))
    else:
        store_list = [(stores or {}).get(n) or Store(p) for n, p in sorted(providers.items())]
        namespace, warning, settled = decide(unique, short, store_list, hostid.read(state_dir) or "",
                                             _local_guids(zfs_binary))
        if settled:
            _remember(state_dir, unique, short, namespace)
        decided = (namespace, warning)
    _DECIDED[key] = decided
    return decided


def _kept(short: str, unique: str) -> str:
    return ("Using the namespace %s (this host's short name, the default before 1.1), which holds this host's "
            "backups, instead of the new default %s (recorded in the state_dir's %s). Set namespace: %s in the "
            "policy to keep it, or namespace: %s and run a full backup to move (docs/policy.md, host identity)."
            % (short, unique, FILE, short, unique))


def notes() -> List[str]:
    """The warnings of this process's decisions (the modules return them as Ansible warnings)."""
    return sorted({warning for _namespace, warning in _DECIDED.values() if warning})


def forget() -> None:
    """Drop this process's decisions (tests)."""
    _DECIDED.clear()
