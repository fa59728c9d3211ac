# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resolving settings: config file + module parameters -> one dataset's typed DatasetSettings.

Private to the collection: not an API for other collections.

`resolve()` checks the config (config.check_structure), parses the dataset's policy once
(settings.DatasetPolicy) and lays the parameters over the file: file defaults < the dataset's entry
< module parameters. `from_params()` is the same from an Ansible module's parameters (providers given
inline, `provider_env`); _wiring.py and status call it. Also here: the provider selection and this
host's default namespace.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils import namespaces
from ansible_collections.offsite.zfs.plugins.module_utils.common import (
    parse_size,
    validate_dataset,
    validate_namespace,
    validate_provider,
)
from ansible_collections.offsite.zfs.plugins.module_utils.config import check_structure, dataset_entry, make_provider
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.settings import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_LOG_DIR,
    DEFAULT_SPOOL_DIR,
    DEFAULT_STATE_DIR,
    DatasetPolicy,
    DatasetSettings,
)
from ansible_collections.offsite.zfs.plugins.module_utils.signing import trust_from
from ansible_collections.offsite.zfs.plugins.module_utils.store import Provider


def default_namespace(config: Dict[str, Any], providers: Dict[str, Provider], state_dir: str, zfs: str = "zfs"
                      ) -> Tuple[str, str]:
    """This host's own namespace when none is set, and a note when it is the 1.0 short-name one."""
    if config.get("namespace"):
        return validate_namespace(config["namespace"]), ""
    return namespaces.default(config.get("host_name"), state_dir, providers, zfs)


def selection(value: Any, available: Dict[str, Provider], single: bool = False) -> List[str]:
    """Resolve a provider selection: a name, a list of names, 'all', or (restore) 'auto'."""
    if value is None or value == "all" or value == ["all"]:
        names = list(available)
    elif isinstance(value, str):
        names = [n.strip() for n in value.split(",") if n.strip()]
    elif isinstance(value, (list, tuple)):
        names = [str(n) for n in value]
    else:
        raise OffsiteError("providers must be a provider name, a list of names, or all.", "bad_value")
    if not available:
        raise OffsiteError("No provider is configured: define providers in the config file or pass providers.",
                           "no_provider")
    for name in names:
        if name == "auto" and single:
            continue
        validate_provider(name)
        if name not in available:
            raise OffsiteError("The provider %s is not configured; configured providers: %s." % (
                name, ", ".join(sorted(available))), "unknown_provider")
    return names


def resolve(config: Dict[str, Any], dataset: str, params: Dict[str, Any], source: str = "the config file"
            ) -> DatasetSettings:
    """Settings for one dataset: file defaults < file dataset entry < module parameters."""
    check_structure(config, source)
    validate_dataset(dataset)
    rclone = params.get("rclone") or config.get("rclone") or "rclone"
    provider_defs = dict(config.get("providers") or {})
    param_providers = params.get("providers")
    selected_value = None
    if isinstance(param_providers, dict):
        provider_defs.update(param_providers)
        selected_value = list(param_providers)
    elif param_providers is not None:
        selected_value = param_providers
    providers = {name: make_provider(name, spec, rclone) for name, spec in provider_defs.items()}
    entry = dataset_entry(config, dataset)
    policy = DatasetPolicy.parse(entry, dataset)
    if selected_value is None:
        selected_value = policy.wanted_providers
    for provider in providers.values():
        if params.get("parallel_uploads"):
            provider.parallel_uploads = int(params["parallel_uploads"])
    state_dir = params.get("state_dir") or config.get("state_dir") or DEFAULT_STATE_DIR
    zfs = params.get("zfs") or config.get("zfs") or "zfs"
    namespace, namespace_note = params.get("namespace"), ""
    if not namespace:
        namespace, namespace_note = default_namespace(config, providers, state_dir, zfs)
    validate_namespace(namespace)
    compression = entry.get("compression") or {}
    if isinstance(compression, str):
        compression = {"algorithm": compression}
    algorithm = params.get("compression") or compression.get("algorithm", "zstd")
    if algorithm not in ("zstd", "gzip", "none"):
        raise OffsiteError("Unknown compression %r: use zstd, gzip or none." % algorithm, "bad_value")
    level = params.get("compression_level")
    if level is None:
        level = compression.get("level", 3 if algorithm == "zstd" else 6)
    spool = entry.get("spool") or {}
    if isinstance(spool, bool):
        spool = {"enabled": spool}
    spool_enabled = params.get("spool") if params.get("spool") is not None else spool.get("enabled", True)
    chunk_size = parse_size(params.get("chunk_size") or entry.get("chunk_size") or DEFAULT_CHUNK_SIZE,
                            "chunk_size")
    if chunk_size < 4096:
        raise OffsiteError("chunk_size must be at least 4KiB.", "bad_value")
    send_options = dict(entry.get("send") or {})
    send_options.update(params.get("send_options") or {})
    recipients = params.get("recipients")
    if recipients is None:
        recipients = config.get("recipients") or []
    if isinstance(recipients, str):
        recipients = [recipients]
    return DatasetSettings(
        **{f.name: getattr(policy, f.name) for f in dataclasses.fields(DatasetPolicy)},
        dataset=dataset,
        namespace=namespace,
        providers=providers,
        selected=selection(selected_value, providers, single=bool(params.get("_single_provider"))),
        recipients=list(recipients),
        passphrase=params.get("passphrase"),
        chunk_size=chunk_size,
        compression=algorithm,
        compression_level=int(level),
        compression_threads=_threads(params.get("compression_threads"), compression.get("threads")),
        spool=bool(spool_enabled),
        spool_dir=params.get("spool_dir") or spool.get("dir") or DEFAULT_SPOOL_DIR,
        send_options=send_options,
        state_dir=state_dir,
        log_dir=params.get("log_dir") or config.get("log_dir") or DEFAULT_LOG_DIR,
        zfs=zfs,
        trust=trust_from(config, params),
        namespace_note=namespace_note,
    )


_PARAM_KEYS = ("namespace", "state_dir", "log_dir", "spool", "spool_dir", "rclone", "chunk_size", "compression",
               "compression_level", "compression_threads", "parallel_uploads", "send_options", "recipients",
               "allow_unsigned")


def from_params(config: Dict[str, Any], params: Dict[str, Any], dataset: str, single_provider: bool = False,
                passphrase: Optional[str] = None) -> DatasetSettings:
    """The settings of one dataset from a loaded config and module parameters (config < parameters).

    Providers given as definitions join the file's; `provider_env` (rclone secrets, never logged) goes into
    the named providers' environment; secrets in `providers` itself are refused.
    """
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
    resolved: Dict[str, Any] = {key: params.get(key) for key in _PARAM_KEYS}
    resolved.update(providers=providers, passphrase=passphrase, _single_provider=single_provider,
                    _config_dir=os.path.dirname(config_path) if config_path else None)  # the signing key's
    return resolve(config, dataset, resolved, source="The config file %s" % config_path)


def _threads(param: Any, configured: Any) -> Optional[int]:
    """zstd worker threads: the parameter, else the config's, else None (encoder.auto_threads decides)."""
    value = param if param is not None else configured
    return None if value is None else int(value)
