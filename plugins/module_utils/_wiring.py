# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wiring: module parameters -> config and settings -> operations, in one place.

Private to the collection: not an API for other collections.

One entry per module, `(params, check_mode) -> result` (OPERATIONS), called by _module.run_module:
each loads the config file once (config.load), resolves settings (resolve.from_params) and calls the
operations. A policy run (converge, with recursive entries through the tree code) is wired once,
`policy_run`, for offsite_backup's policy mode and for the timer script
roles/offsite/files/offsite-converge (`timer_run`). Nothing here imports Ansible: the timer runs it
without. Errors are OffsiteError, raised; layers never import this file.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils.common import (
    split_snapshot_spec,
    validate_dataset,
    validate_provider,
)
from ansible_collections.offsite.zfs.plugins.module_utils.config import configured, load, policy_datasets
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.keys import load_keys
from ansible_collections.offsite.zfs.plugins.module_utils.ops.adopt import adopt_legacy
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.converge import converge
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.run import run_backup
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.tree import run_tree_backup
from ansible_collections.offsite.zfs.plugins.module_utils.ops.prune import report as prune_report
from ansible_collections.offsite.zfs.plugins.module_utils.ops.prune.run import prune_dataset
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.drill import run_drills
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.paths import run_path_restore
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.receive import mount_restored
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.run import run_restore
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.tree import run_tree_restore
from ansible_collections.offsite.zfs.plugins.module_utils.ops.status.run import run_status
from ansible_collections.offsite.zfs.plugins.module_utils.ops.verify.check import verify_backup
from ansible_collections.offsite.zfs.plugins.module_utils.ops.verify.sample import run_sampled
from ansible_collections.offsite.zfs.plugins.module_utils.resolve import from_params
from ansible_collections.offsite.zfs.plugins.module_utils.schema import errors as schema_errors
from ansible_collections.offsite.zfs.plugins.module_utils.selection import tree_of, validate_properties
from ansible_collections.offsite.zfs.plugins.module_utils.settings import DatasetSettings, Keep
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import Zfs

Params = Dict[str, Any]
SettingsFor = Callable[[str], DatasetSettings]


def settings_for(config: Dict[str, Any], params: Params, single_provider: bool = False,
                 passphrase: Optional[str] = None) -> SettingsFor:
    """dataset -> its settings, from one loaded config and the module parameters."""
    return lambda name: from_params(config, params, name, single_provider, passphrase)


def _target(params: Params) -> Tuple[str, Optional[str]]:
    """The dataset and snapshot of `dataset` (pool/fs or pool/fs@snap) and `snapshot`, which must agree."""
    dataset, spec_snapshot = split_snapshot_spec(params["dataset"])
    if params["snapshot"] and spec_snapshot and params["snapshot"] != spec_snapshot:
        raise OffsiteError("dataset names snapshot %s but snapshot says %s; give one." % (
            spec_snapshot, params["snapshot"]), "bad_value")
    return dataset, params["snapshot"] or spec_snapshot


# -- policy runs: offsite_backup's policy mode and the timer --------------------------------------------
def policy_run(names: Sequence[str], settings_of: SettingsFor, check_mode: bool) -> Dict[str, Any]:
    """Converge these datasets of the policy; a recursive entry backs up its tree, each child on its own."""
    def tree_backup(root: str, **kwargs: Any) -> Dict[str, Any]:
        return run_tree_backup(settings_of, root, **kwargs)

    return converge(settings_of, names, check_mode=check_mode, tree_backup=tree_backup)


def timer_run(config_path: str, wanted: Sequence[str], check_mode: bool = False, prune: bool = False,
              drill_identity_file: Optional[str] = None) -> Dict[str, Any]:
    """The timer's run (offsite-converge): the policy run, then (asked for) a prune and one restore drill."""
    config = load(config_path, needed=True)
    names = policy_datasets(config, wanted)
    settings_of = settings_for(config, {"config": config_path})
    result = policy_run(names, settings_of, check_mode)
    if prune and not result["failed_datasets"]:
        covered = [d for name in names for d in tree_of(settings_of(name))]
        result["prune"] = {name: prune_dataset(settings_of(name), check_mode) for name in covered}
        for name, entry in result["prune"].items():
            if entry["failed_providers"]:
                result["failed_datasets"].append(name)
    if drill_identity_file and not check_mode:
        result["drill"] = run_drills(settings_of, names, keys=load_keys(None, drill_identity_file, None), sample=1)
    return result


# -- one entry per module --------------------------------------------------------------------------------
def backup(params: Params, check_mode: bool) -> Dict[str, Any]:
    """offsite_backup: one snapshot (or a tree) to the providers, or the policy (policy mode)."""
    if params["policy"] or params["datasets"] or not params["dataset"]:
        return _backup_policy(params, check_mode)
    dataset, snapshot = _target(params)
    settings_of = settings_for(load(params["config"]), params, passphrase=params["passphrase"])
    settings = settings_of(dataset)
    recursive = settings.recursive if params["recursive"] is None else params["recursive"]
    if recursive:
        exclude = list(settings.exclude) if params["exclude"] is None else params["exclude"]
        return run_tree_backup(settings_of, dataset, snapshot=snapshot, create=params["create"], full=params["full"],
                               exclude=exclude, check_mode=check_mode)
    return run_backup(settings, snapshot=snapshot, create=params["create"], full=params["full"],
                      check_mode=check_mode)


def _backup_policy(params: Params, check_mode: bool) -> Dict[str, Any]:
    """Policy mode: converge the configured datasets (snapshot when due, back up where missing)."""
    for option in ("snapshot", "create", "full", "recursive", "exclude"):
        if params[option]:
            raise OffsiteError("%s cannot be combined with policy mode; the policy decides it (or pass dataset "
                               "without policy)." % option, "bad_value")
    config = load(params["config"], needed=True)
    wanted = list(params["datasets"] or [])
    if params["dataset"]:
        dataset, snap = split_snapshot_spec(params["dataset"])
        if snap:
            raise OffsiteError("In policy mode, dataset names a dataset, not a snapshot (%s)." % params["dataset"],
                               "bad_value")
        wanted.append(dataset)
    names = policy_datasets(config, wanted)
    return policy_run(names, settings_for(config, params, passphrase=params["passphrase"]), check_mode)


def restore(params: Params, check_mode: bool) -> Dict[str, Any]:
    """offsite_restore: a snapshot's chain (or a tree, or single paths) from a provider."""
    dataset, snapshot = _target(params)
    provider = params["provider"]
    if provider != "auto":
        validate_provider(provider)
    settings_of = settings_for(load(params["config"]), params, single_provider=True)
    settings = settings_of(dataset)
    keys = None
    if not check_mode or params["identity"] or params["identity_file"]:
        keys = load_keys(params["identity"], params["identity_file"], params["passphrase"])
        if not keys.identities and not keys.passphrase:
            raise OffsiteError("Restoring needs a key: pass identity, identity_file or passphrase.", "no_keys")
    properties = validate_properties(params["properties"])
    if params["paths"] is not None:
        return run_path_restore(settings, params["paths"], dest=params["dest"], snapshot=snapshot, provider=provider,
                                keys=keys, force=params["force"], list_only=params["list"], check_mode=check_mode,
                                scratch_pool=params["scratch_pool"], scratch_dir=params["scratch_dir"])
    if params["recursive"]:
        if params["legacy"]:
            raise OffsiteError("Legacy backups of the old tool are restored one dataset at a time; set "
                               "recursive=false.", "bad_value")
        return run_tree_restore(settings_of, dataset, snapshot=snapshot, target=params["target"], provider=provider,
                                keys=keys, force=params["force"], check_mode=check_mode, exclude=params["exclude"],
                                mountpoint=params["mountpoint"], properties=properties)
    if params["mountpoint"]:
        properties["mountpoint"] = validate_properties({"mountpoint": params["mountpoint"]})["mountpoint"]
    result = run_restore(settings, legacy=params["legacy"], snapshot=snapshot, target=params["target"],
                         provider=provider, keys=keys, force=params["force"], check_mode=check_mode,
                         properties=properties or None)
    if result.get("changed") and not check_mode:
        # A stream sent with -p can carry a mountpoint that is in use here: say so instead of hiding it.
        problem = mount_restored(Zfs(settings.zfs), result["target"])
        if problem:
            result["mount_error"] = problem
    return result


def status(params: Params, check_mode: bool) -> Dict[str, Any]:
    """offsite_status: the report (changes nothing, the same in check mode)."""
    del check_mode
    keys = None
    if needs_pyrage("status", params):
        keys = load_keys(params["identity"], params["identity_file"], params["passphrase"])
    return status_report(load(params["config"]), params, keys=keys)


def status_report(config: Dict[str, Any], params: Optional[Params] = None, keys: Any = None,
                  **kwargs: Any) -> Dict[str, Any]:
    """The status report of a parsed config file (offsite_status, and Python callers: docs/monitoring.md):
    run_status with the settings of these parameters and ops/verify's chunk verifiers. kwargs: zfs, stores, now."""
    params = dict(params or {})
    return run_status(config, params, settings_for(config, params), keys=keys, verify_backup=verify_backup,
                      run_sampled=run_sampled, **kwargs)


def prune(params: Params, check_mode: bool) -> Dict[str, Any]:
    """offsite_prune: keep rules per dataset and provider; an error carries what was pruned before it."""
    result: Dict[str, Any] = {"changed": False, "datasets": {}, "failed_datasets": [], "deleted": []}
    diff: List[Dict[str, str]] = []
    try:
        config = load(params["config"])
        wanted = list(params["datasets"] or []) + ([params["dataset"]] if params["dataset"] else [])
        for name in wanted:
            validate_dataset(name)
        names = wanted if wanted and params["keep"] is not None else policy_datasets(config, wanted)
        keep = None
        if params["keep"] is not None:
            problems = schema_errors({"defaults": {"keep": params["keep"]}})
            if problems:
                raise OffsiteError("keep is not valid: %s." % problems[0].replace("defaults.keep", "keep", 1),
                                   "bad_value")
            keep = Keep.parse(params["keep"])
        settings_of = settings_for(config, params)
        expanded: List[str] = []
        for name in names:
            expanded += [d for d in tree_of(settings_of(name)) if d not in expanded]
        for name in expanded:
            entry = prune_dataset(settings_of(name), check_mode, keep=keep,
                                  incomplete_after=params["prune_incomplete_after"], local=params["local_snapshots"])
            result["datasets"][name] = entry
            result["deleted"] += prune_report.deletions(name, entry)
            diff += prune_report.diffs(name, entry)
            if entry["failed_providers"]:
                result["failed_datasets"].append(name)
            result["changed"] = result["changed"] or entry["changed"]
    except OffsiteError as exc:
        exc.details["partial"] = result
        raise
    return prune_report.finish(result, diff, check_mode)


def drill(params: Params, check_mode: bool) -> Dict[str, Any]:
    """offsite_drill: the latest chains into a scratch place, checked against the live snapshots."""
    config = load(params["config"])
    names = [validate_dataset(d) for d in (params["datasets"] or configured(config))]
    keys = None
    if not check_mode:
        keys = load_keys(params["identity"], params["identity_file"], params["passphrase"])
        if not keys.identities and not keys.passphrase:
            raise OffsiteError("A drill needs a key: pass identity, identity_file or passphrase.", "no_keys")
    providers = None
    if isinstance(params["providers"], str) and params["providers"] != "all":
        providers = [params["providers"]]
    elif isinstance(params["providers"], list):
        providers = [str(p) for p in params["providers"]]
    return run_drills(settings_for(config, params), names, providers=providers, keys=keys,
                      files=None if params["all_files"] else params["files"], sample=params["sample"],
                      scratch_pool=params["scratch_pool"], scratch_dir=params["scratch_dir"], check_mode=check_mode)


def adopt(params: Params, check_mode: bool) -> Dict[str, Any]:
    """offsite_adopt: the old tool's backups of a dataset as native ones, verified first."""
    dataset = validate_dataset(params["dataset"])
    settings = from_params(load(params["config"]), params, dataset)
    return adopt_legacy(settings, load_keys(params["identity"], params["identity_file"], None), check_mode=check_mode)


OPERATIONS: Dict[str, Callable[[Params, bool], Dict[str, Any]]] = {
    "backup": backup, "restore": restore, "status": status, "prune": prune, "drill": drill, "adopt": adopt}


def needs_pyrage(operation: str, params: Params) -> bool:
    """Whether the operation encrypts or decrypts (age, pyrage): all but prune, and status only to decrypt."""
    if operation == "prune":
        return False
    if operation == "status":
        return params["verify"] == "decrypt" or bool(params["legacy"] and (params["identity"] or
                                                                           params["identity_file"]))
    return True
