# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Policy: load the host config file (the declarative policy format) and resolve settings.

The file at /etc/offsite/offsite.yml holds the same format as the `offsite_policy`
variable of the role (schemas/policy.schema.json): recipients, providers, defaults and
per-dataset settings. Module parameters override what the file says.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils import namespaces, rclone_errors
from ansible_collections.offsite.zfs.plugins.module_utils.common import (
    OffsiteError,
    parse_duration,
    parse_size,
    validate_dataset,
    validate_namespace,
    validate_provider,
)
from ansible_collections.offsite.zfs.plugins.module_utils.schema import errors as schema_errors
from ansible_collections.offsite.zfs.plugins.module_utils.signing import Trust, trust_from
from ansible_collections.offsite.zfs.plugins.module_utils.store import Provider

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - depends on the host
    HAS_YAML = False

DEFAULT_CONFIG = "/etc/offsite/offsite.yml"
DEFAULT_STATE_DIR = "/var/lib/offsite"
DEFAULT_LOG_DIR = "/var/log/offsite"
DEFAULT_SPOOL_DIR = "/var/tmp/offsite"
DEFAULT_CHUNK_SIZE = 256 * 1024 * 1024
DEFAULT_PARALLEL = 2
DEFAULT_SNAPSHOT_PREFIX = "offsite"

TOP_KEYS = {"recipients", "providers", "namespace", "state_dir", "log_dir", "rclone", "zfs", "defaults", "datasets",
            "signers", "allow_unsigned", "signing_key"}
TOP_KEYS |= {"host_name"}  # the default namespace (module_utils/namespaces.py)
SETTING_KEYS = {"providers", "chunk_size", "compression", "spool", "send", "every", "full_every", "max_age", "keep",
                "snapshot_prefix", "recursive", "exclude", "prune_incomplete_after", "prune_local_snapshots",
                "snapshot_pattern", "hold_base"}
SETTING_KEYS |= {"drill_every", "verify_coverage"}  # drills (drill.py), sampled verify (verify_sample.py)
SETTING_KEYS |= {"at", "slack"}  # the schedule of every (module_utils/schedule.py)
SETTING_KEYS |= {"new_lineage"}  # module_utils/lineage.py
PROVIDER_KEYS = {"remote", "parallel_uploads", "retries", "retry_delay", "rclone_config", "env", "bwlimit",
                 "connect_timeout", "io_timeout", "low_level_retries", "call_timeout", "unreachable_budget"}
PROVIDER_KEYS |= {"require_mount"}  # module_utils/mounts.py
PROVIDER_KEYS |= {"append_only"}  # module_utils/attempts.py


@dataclass
class DatasetSettings:
    """Everything one backup of one dataset needs, resolved from file + parameters."""

    dataset: str
    namespace: str
    providers: Dict[str, Provider]
    selected: List[str]
    recipients: List[str]
    passphrase: Optional[str] = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    compression: str = "zstd"
    compression_level: int = 3
    compression_threads: int = 0
    spool: bool = True
    spool_dir: str = DEFAULT_SPOOL_DIR
    send_options: Dict[str, Any] = field(default_factory=dict)
    state_dir: str = DEFAULT_STATE_DIR
    log_dir: str = DEFAULT_LOG_DIR
    zfs: str = "zfs"
    policy: Dict[str, Any] = field(default_factory=dict)
    trust: Trust = field(default_factory=Trust)  # signers, allow_unsigned, signing_key (signing.py)
    namespace_note: str = ""  # why a defaulted namespace is the 1.0 short-name one (namespaces.py)

    @property
    def spool_bound(self) -> int:
        """The most temp space a backup uses: (sum of the providers' parallel_uploads + 1) chunks plus framing.

        One send feeds every selected provider (fanout_spool.py); a spooled chunk stays until the slowest
        provider has it. For one provider this is (parallel_uploads + 1) chunks, as before the fan-out.
        """
        if not self.spool:
            return 0
        parallel = sum(max(1, self.providers[p].parallel_uploads) for p in self.selected) or DEFAULT_PARALLEL
        return (parallel + 1) * (self.chunk_size + self.chunk_size // 1000 + 65536)


def load_file(path: Optional[str], required: bool) -> Dict[str, Any]:
    """The parsed config file, or {} when the default file does not exist."""
    if not path:
        return {}
    if not os.path.exists(path):
        if required:
            raise OffsiteError("The config file %s does not exist." % path, "bad_config")
        return {}
    if not HAS_YAML:
        raise OffsiteError("The Python library PyYAML is missing on this host; install it to read %s." % path,
                           "missing_library")
    try:
        with open(path, "r", encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except PermissionError:
        raise OffsiteError("The config file %s cannot be read: permission denied (run as root or fix its mode)."
                           % path, "bad_config")
    except OSError as exc:
        raise OffsiteError("The config file %s cannot be read: %s." % (path, exc.strerror), "bad_config")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = " at line %d" % (mark.line + 1) if mark is not None else ""
        raise OffsiteError("The config file %s is not valid YAML%s." % (path, where), "bad_config")
    if data is None:
        return {}
    if isinstance(data, dict) and "offsite_policy" in data and len(data) == 1:
        data = data["offsite_policy"]
    if not isinstance(data, dict):
        raise OffsiteError("The config file %s must hold a mapping (recipients, providers, ...)." % path,
                           "bad_config")
    return data


def check_structure(config: Dict[str, Any], source: str) -> None:
    """The checks every host makes even without jsonschema (the controller validates the full schema)."""
    problems = schema_errors(config)
    if problems:
        more = " (and %d more problems)" % (len(problems) - 1) if len(problems) > 1 else ""
        raise OffsiteError("%s is not valid: %s%s." % (source, problems[0], more), "bad_config", problems=problems)
    unknown = set(config) - TOP_KEYS
    if unknown:
        raise OffsiteError("%s has an unknown key %s; known keys are %s." % (
            source, sorted(unknown)[0], ", ".join(sorted(TOP_KEYS))), "bad_config")
    recipients = config.get("recipients", [])
    if not isinstance(recipients, list) or not all(isinstance(r, str) for r in recipients):
        raise OffsiteError("%s: recipients must be a list of public keys." % source, "bad_config")
    providers = config.get("providers", {})
    if not isinstance(providers, dict):
        raise OffsiteError("%s: providers must be a mapping of name to {remote: ...}." % source, "bad_config")
    for name, spec in providers.items():
        validate_provider(name)
        if not isinstance(spec, dict) or not isinstance(spec.get("remote"), str):
            raise OffsiteError("%s: providers.%s needs a remote (an rclone path like b2:bucket/offsite)."
                               % (source, name), "bad_config")
        extra = set(spec) - PROVIDER_KEYS
        if extra:
            raise OffsiteError("%s: providers.%s has an unknown key %s." % (source, name, sorted(extra)[0]),
                               "bad_config")
    for section in ("defaults",):
        value = config.get(section, {})
        if not isinstance(value, dict):
            raise OffsiteError("%s: %s must be a mapping." % (source, section), "bad_config")
        extra = set(value) - SETTING_KEYS
        if extra:
            raise OffsiteError("%s: %s has an unknown key %s." % (source, section, sorted(extra)[0]), "bad_config")
    datasets = config.get("datasets", {})
    if not isinstance(datasets, dict):
        raise OffsiteError("%s: datasets must be a mapping of dataset name to settings." % source, "bad_config")
    for name, spec in datasets.items():
        validate_dataset(name)
        if spec is not None and not isinstance(spec, dict):
            raise OffsiteError("%s: datasets[%s] must be a mapping." % (source, name), "bad_config")
        extra = set(spec or {}) - SETTING_KEYS
        if extra:
            raise OffsiteError("%s: datasets[%s] has an unknown key %s." % (source, name, sorted(extra)[0]),
                               "bad_config")


def make_provider(name: str, spec: Dict[str, Any], rclone: str) -> Provider:
    validate_provider(name)
    if not isinstance(spec, dict) or not isinstance(spec.get("remote"), str) or not spec["remote"]:
        raise OffsiteError("Provider %s needs a remote (an rclone path like b2:bucket/offsite or /srv/mirror)."
                           % name, "bad_config")
    try:
        return Provider(
            name=name,
            remote=spec["remote"],
            parallel_uploads=max(1, int(spec.get("parallel_uploads", DEFAULT_PARALLEL))),
            retries=max(0, int(spec.get("retries", 5))),
            retry_delay=parse_duration(spec.get("retry_delay", 2), "retry_delay of provider %s" % name),
            rclone_config=spec.get("rclone_config"),
            env={str(k): str(v) for k, v in (spec.get("env") or {}).items()},
            rclone=rclone,
            **provider_bounds(name, spec),
            require_mount=spec.get("require_mount") or None,
            append_only=spec.get("append_only", False) is True,
        )
    except (TypeError, ValueError):
        raise OffsiteError("Provider %s has a setting of the wrong type." % name, "bad_config")


def provider_bounds(name: str, spec: Dict[str, Any]) -> Dict[str, Any]:
    """The provider's rclone bounds (timeouts, low-level retries, bandwidth) that the spec sets."""
    bounds: Dict[str, Any] = {}
    for key in ("connect_timeout", "io_timeout", "call_timeout", "unreachable_budget"):
        if spec.get(key) is not None:
            seconds = parse_duration(spec[key], "%s of provider %s" % (key, name))
            if seconds <= 0:
                raise OffsiteError("The %s of provider %s must be longer than 0s." % (key, name), "bad_value")
            bounds[key] = seconds
    if spec.get("low_level_retries") is not None:
        bounds["low_level_retries"] = max(1, int(spec["low_level_retries"]))
    if spec.get("bwlimit") not in (None, ""):
        value = str(spec["bwlimit"]).strip()
        if not rclone_errors.valid_bwlimit(value):
            raise OffsiteError("The bwlimit %r of provider %s is not an rclone bandwidth limit like 10M, 10M:off or "
                               "\"08:00,2M 23:00,off\"." % (value, name), "bad_value")
        bounds["bwlimit"] = value
    return bounds


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
    elif isinstance(value, list):
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


def merged(config: Dict[str, Any], dataset: Optional[str]) -> Dict[str, Any]:
    """defaults, overlaid by the dataset's own settings (and, for a child, its nearest configured parent)."""
    result = dict(config.get("defaults") or {})
    datasets = config.get("datasets") or {}
    if dataset is not None:
        spec = None
        name = dataset
        while name:
            if name in datasets:
                spec = datasets[name] or {}
                break
            name = name.rpartition("/")[0]
        for key, value in (spec or {}).items():
            if key == "keep" and isinstance(value, dict) and isinstance(result.get("keep"), dict):
                result["keep"] = dict(result["keep"], **value)
            else:
                result[key] = value
    return result


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
    settings = merged(config, dataset)
    if selected_value is None:
        selected_value = settings.get("providers")
    for provider in providers.values():
        if params.get("parallel_uploads"):
            provider.parallel_uploads = int(params["parallel_uploads"])
    state_dir = params.get("state_dir") or config.get("state_dir") or DEFAULT_STATE_DIR
    zfs = params.get("zfs") or config.get("zfs") or "zfs"
    namespace, namespace_note = params.get("namespace"), ""
    if not namespace:
        namespace, namespace_note = default_namespace(config, providers, state_dir, zfs)
    validate_namespace(namespace)
    compression = settings.get("compression") or {}
    if isinstance(compression, str):
        compression = {"algorithm": compression}
    algorithm = params.get("compression") or compression.get("algorithm", "zstd")
    if algorithm not in ("zstd", "gzip", "none"):
        raise OffsiteError("Unknown compression %r: use zstd, gzip or none." % algorithm, "bad_value")
    level = params.get("compression_level")
    if level is None:
        level = compression.get("level", 3 if algorithm == "zstd" else 6)
    spool = settings.get("spool") or {}
    if isinstance(spool, bool):
        spool = {"enabled": spool}
    spool_enabled = params.get("spool") if params.get("spool") is not None else spool.get("enabled", True)
    spool_dir = params.get("spool_dir") or spool.get("dir") or DEFAULT_SPOOL_DIR
    chunk_size = parse_size(params.get("chunk_size") or settings.get("chunk_size") or DEFAULT_CHUNK_SIZE,
                            "chunk_size")
    if chunk_size < 4096:
        raise OffsiteError("chunk_size must be at least 4KiB.", "bad_value")
    send_options = dict(settings.get("send") or {})
    send_options.update(params.get("send_options") or {})
    recipients = params.get("recipients")
    if recipients is None:
        recipients = config.get("recipients") or []
    if isinstance(recipients, str):
        recipients = [recipients]
    return DatasetSettings(
        dataset=dataset,
        namespace=namespace,
        providers=providers,
        selected=selection(selected_value, providers, single=bool(params.get("_single_provider"))),
        recipients=list(recipients),
        passphrase=params.get("passphrase"),
        chunk_size=chunk_size,
        compression=algorithm,
        compression_level=int(level),
        compression_threads=int(params.get("compression_threads") or compression.get("threads", 0) or 0),
        spool=bool(spool_enabled),
        spool_dir=spool_dir,
        send_options=send_options,
        state_dir=state_dir,
        log_dir=params.get("log_dir") or config.get("log_dir") or DEFAULT_LOG_DIR,
        zfs=zfs,
        policy=settings,
        trust=trust_from(config, params),
        namespace_note=namespace_note,
    )
