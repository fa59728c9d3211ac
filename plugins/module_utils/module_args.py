# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument specs shared by the modules, and turning parameters into settings.

The options here are documented once, in the doc fragment offsite.zfs.common.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

from ansible_collections.offsite.zfs.plugins.module_utils import namespaces
from ansible_collections.offsite.zfs.plugins.module_utils.common import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.policy import (
    DEFAULT_CONFIG,
    DatasetSettings,
    load_file,
    resolve,
)

COMMON_ARGS: Dict[str, Dict[str, Any]] = {
    "config": {"type": "path", "default": DEFAULT_CONFIG},
    "providers": {"type": "raw"},
    "provider_env": {"type": "dict", "no_log": True},
    "recipients": {"type": "list", "elements": "str"},
    "namespace": {"type": "str"},
    "state_dir": {"type": "path"},
    "log_dir": {"type": "path"},
    "spool": {"type": "bool"},
    "spool_dir": {"type": "path"},
    "rclone": {"type": "path"},
}

BACKUP_TUNING_ARGS: Dict[str, Dict[str, Any]] = {
    "chunk_size": {"type": "str"},
    "compression": {"type": "str", "choices": ["zstd", "gzip", "none"]},
    "compression_level": {"type": "int"},
    "compression_threads": {"type": "int"},
    "parallel_uploads": {"type": "int"},
    "send_options": {"type": "dict"},
}


def with_notes(result: Dict[str, Any]) -> Dict[str, Any]:
    """The module result with this run's namespace notes (namespaces.py) as Ansible warnings."""
    notes = namespaces.notes()
    if not notes:
        return result
    warnings = list(result.get("warnings") or [])
    return dict(result, warnings=warnings + [n for n in notes if n not in warnings])


def settings_from_params(params: Dict[str, Any], dataset: str, single_provider: bool = False,
                         passphrase: Optional[str] = None) -> DatasetSettings:
    """Resolve the settings of one dataset: config file < module parameters."""
    config_path = params.get("config")
    required = bool(config_path) and config_path != DEFAULT_CONFIG
    config = load_file(config_path, required)
    return settings_from_config(config, params, dataset, single_provider, passphrase)


def settings_from_config(config: Dict[str, Any], params: Dict[str, Any], dataset: str, single_provider: bool = False,
                         passphrase: Optional[str] = None) -> DatasetSettings:
    """Resolve the settings of one dataset from an already loaded config: config < module parameters."""
    config_path = params.get("config")
    providers = params.get("providers")
    if isinstance(providers, dict):
        for name, spec in providers.items():
            if isinstance(spec, dict) and "env" in spec:
                raise OffsiteError("Put rclone secrets for provider %s in provider_env (never logged) or in the "
                                   "config file, not in providers." % name, "bad_value")
    env = params.get("provider_env") or {}
    if env:
        merged = {}
        base = dict(config.get("providers") or {})
        if isinstance(providers, dict):
            base.update(providers)
        for name, values in env.items():
            if name not in base:
                raise OffsiteError("provider_env names the provider %s, which is not configured." % name,
                                   "unknown_provider")
            if not isinstance(values, dict):
                raise OffsiteError("provider_env.%s must be a mapping of RCLONE_* variables." % name, "bad_value")
            spec = dict(base[name])
            spec["env"] = dict(spec.get("env") or {}, **{str(k): str(v) for k, v in values.items()})
            merged[name] = spec
        config = dict(config)
        config["providers"] = dict(base, **merged)
        if isinstance(providers, dict):
            providers = {n: config["providers"][n] for n in providers}
    resolved_params = {key: params.get(key) for key in (
        "namespace", "state_dir", "log_dir", "spool", "spool_dir", "rclone", "chunk_size", "compression",
        "compression_level", "compression_threads", "parallel_uploads", "send_options", "recipients",
        "allow_unsigned")}
    resolved_params["providers"] = providers
    resolved_params["passphrase"] = passphrase
    resolved_params["_single_provider"] = single_provider
    resolved_params["_config_dir"] = os.path.dirname(config_path) if config_path else None  # the signing key's
    return resolve(config, dataset, resolved_params, source="The config file %s" % config_path)
