# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""offsite_status: what a host has offsite, how fresh, how healthy, and what is running now.

Private to the collection: not an API for other collections.

`run_status` wires the three parts: collect.py reads (one listing and one manifest download per
provider, the ledger, local snapshots, running operations), health.py judges (pure rules: problems
with codes and severities, freshness against `max_age`, chain lengths, worst/health_of) and
report.py builds the result; drills.py, local.py (datasets with nothing offsite) and legacy.py
(`legacy: true`) add theirs. Nothing is changed. Checking chunks (verify `digest`/`decrypt`, and
`sample`) is ops/verify's: _wiring.py passes its functions in (`verify_backup`, `run_sampled`), as
it passes `settings_for`.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

from ansible_collections.offsite.zfs.plugins.module_utils import hostid, ledger, status_bases
from ansible_collections.offsite.zfs.plugins.module_utils.common import parse_duration, validate_dataset
from ansible_collections.offsite.zfs.plugins.module_utils.drill_state import load_records
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.ops.status import (
    collect,
    drills,
    health,
    legacy,
    local,
    report,
)
from ansible_collections.offsite.zfs.plugins.module_utils.settings import DatasetSettings
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import Zfs

LEVELS = ("none", "objects", "digest", "decrypt")  # the verify option; ops/verify checks chunks at the last two
# A dataset name only used to resolve host-wide settings (providers, namespace, state_dir).
HOST_SCOPE = "offsite-status-host-scope"


@dataclass
class Options:
    """The status parameters, checked."""

    verify: str
    sample: Any  # sampled verification over time (ops/verify's run_sampled), or None
    per_backup_verify: str  # "objects" when sampling, else verify
    max_age: Optional[float]  # overrides each dataset's max_age
    limit: Optional[List[str]]  # report these datasets only


def options(params: Dict[str, Any], keys: Any, verify_backup: Optional[Callable[..., Any]],
            run_sampled: Optional[Callable[..., Any]]) -> Options:
    verify = params.get("verify") or "none"
    if verify not in LEVELS:
        raise OffsiteError("verify must be one of %s, not %r." % (", ".join(LEVELS), verify), "bad_value")
    if verify == "decrypt" and (keys is None or not (keys.identities or keys.passphrase)):
        raise OffsiteError("verify=decrypt needs a key: pass identity, identity_file or passphrase.", "no_keys")
    sample = params.get("sample")
    if sample not in (None, "") and verify not in ("digest", "decrypt"):
        raise OffsiteError("sample needs verify=digest or verify=decrypt.", "bad_value")
    per_backup_verify = "objects" if sample not in (None, "") else verify
    if per_backup_verify in ("digest", "decrypt") and verify_backup is None:
        raise OffsiteError("verify=%s needs verify_backup, the chunk verifier: call run_status through "
                           "_wiring.status_report, as offsite_status does." % verify, "bad_value")
    if per_backup_verify != verify and run_sampled is None:
        raise OffsiteError("sample needs run_sampled, the sampled verifier: call run_status through "
                           "_wiring.status_report, as offsite_status does.", "bad_value")
    max_age = params.get("max_age")
    limit = params.get("datasets")
    if isinstance(limit, str):
        limit = [limit]
    return Options(verify=verify, sample=sample, per_backup_verify=per_backup_verify,
                   max_age=parse_duration(max_age, "max_age") if max_age not in (None, "") else None,
                   limit=[validate_dataset(d) for d in limit] if limit else None)


def run_status(config: Dict[str, Any], params: Optional[Dict[str, Any]], settings_for: Callable[[str], DatasetSettings],
               keys: Any = None, zfs: Optional[Zfs] = None, stores: Optional[Dict[str, Store]] = None,
               now: Optional[float] = None, verify_backup: Optional[collect.VerifyBackup] = None,
               run_sampled: Optional[Callable[..., Dict[str, Any]]] = None) -> Dict[str, Any]:
    """Report backups, freshness, problems, health and running operations. Changes nothing.

    config: the parsed config file (policy format). params (all optional): datasets (list: limit the
    report), providers (given: only the selected ones are listed), verify (none, objects, digest,
    decrypt), sample, max_age (36h, 1d, ...), compare_local (default: true when the namespace is this
    host's own), legacy. settings_for: dataset -> its settings (the other parameters: providers,
    namespace, state_dir ... are resolved there). keys: a keys.Keys for verify=decrypt. verify_backup,
    run_sampled: ops/verify's, for verify digest/decrypt and for sample.
    """
    params = dict(params or {})
    now = time.time() if now is None else now
    opts = options(params, keys, verify_backup, run_sampled)
    resolved: Dict[str, DatasetSettings] = {}

    def settings_of(dataset: str) -> DatasetSettings:
        if dataset not in resolved:
            resolved[dataset] = settings_for(dataset)
        return resolved[dataset]

    host = settings_of(HOST_SCOPE)
    seen = collect.gather(config, host, params.get("providers") is not None, params.get("compare_local"), stores,
                          zfs)
    host_problems = [health.provider_failed(name, why) for name, why in seen.failed.items()]
    names = opts.limit if opts.limit is not None else sorted(set(seen.configured) | set(seen.found)
                                                             | set(seen.recorded))
    datasets = {ds: _dataset(seen, ds, settings_of(ds), opts, keys, verify_backup, now) for ds in names}

    drills.add_drills(load_records(host.state_dir), datasets, settings_of, now)
    sampled = None
    if opts.per_backup_verify != opts.verify:
        sampled = run_sampled(host.state_dir, opts.sample, opts.verify, seen.listings, seen.store_for, seen.namespace,
                              keys, datasets, settings_of, now, health.problem, health.health_of)
    if opts.limit is None and seen.compare_local:  # snapshots here, nothing offsite, not excluded (local.py)
        guids = [b.guid for listing in seen.listings.values() for b in listing.backups.values() if b.complete]
        for ds, count in local.unprotected(seen.zfs, config, datasets, set(seen.configured) | set(seen.found),
                                           guids).items():
            datasets[ds] = local.entry(ds, health.problem(local.CODE, "warning", ds, None, None,
                                                          local.message(ds, count), snapshots=count))
    # Objects outside any backup directory.
    for ds, found in health.stray_problems(seen.listings, sorted(set(names) | set(seen.found)), seen.namespace,
                                           opts.limit):
        if ds in datasets:
            report.add_problem(datasets[ds], found)
        else:
            host_problems.append(found)
    if opts.limit is None and seen.compare_local and not any(d["backup_count"] for d in datasets.values()):
        host_problems.append(health.nothing_offsite(seen.namespace))
    result = report.result(socket.gethostname(), seen.namespace, opts.verify, sampled, now, datasets, host_problems,
                           seen.running, seen.provider_names, seen.listings)
    if params.get("legacy"):  # the old bash tool's backups below each provider's root (legacy.py)
        result["legacy"] = legacy.legacy_report({n: s for n, s in seen.store_for.items() if n in seen.listings},
                                                names, keys, [seen.namespace])
    return result


def _dataset(seen: collect.Seen, ds: str, settings: DatasetSettings, opts: Options, keys: Any,
             verify_backup: Optional[collect.VerifyBackup], now: float) -> Dict[str, Any]:
    """One dataset's entry: per reporting provider, then the base, the ledger, no_backup and stale."""
    max_age = settings.max_age if opts.max_age is None else opts.max_age
    is_configured = ds in seen.configured or opts.limit is not None
    expected = [p for p in settings.selected if p in seen.listings] if is_configured else []
    reporting = [p for p in seen.provider_names
                 if p in seen.listings and (p in expected or p in seen.found.get(ds, ()))]
    exists, snaps = collect.local_snapshots(seen.zfs, ds) if seen.compare_local else (None, None)
    problems: List[Dict[str, Any]] = []
    per_provider: Dict[str, Dict[str, Any]] = {}
    for name in reporting:
        backups = seen.listings[name].for_dataset(ds)
        findings = collect.verify_findings(verify_backup, seen.store_for.get(name), seen.namespace, backups,
                                           opts.per_backup_verify, keys)
        per_provider[name], found = report.provider_report(
            ds, name, backups, opts.per_backup_verify, findings, (ds, name) in seen.running_backups, snaps, now,
            max_age)
        problems.extend(found)
        others = hostid.foreign(backups, seen.host_id)
        if others and seen.namespace == seen.own_namespace:  # this host's namespace, not one it was asked to report
            problems.append(health.foreign_host(ds, name, hostid.describe(seen.namespace, others, seen.host_id)))
    problems.extend(status_bases.status_problems(
        seen.zfs, ds, snaps, {n: seen.listings[n].for_dataset(ds) for n in reporting}, per_provider, seen.state_dir,
        seen.namespace, settings.hold_base))
    for name in seen.listings if seen.compare_local else ():  # this host's ledger: vanished or rolled-back backups
        problems.extend(health.ledger_problems(ds, name, ledger.check(settings.state_dir, seen.namespace, name, ds,
                                                                      seen.listings[name].for_dataset(ds))))
    problems.extend(health.dataset_problems(ds, reporting, expected, per_provider, max_age, is_configured))
    return report.dataset_entry(ds, ds in seen.configured, exists, max_age, per_provider, snaps, problems)
