# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host config file: the one rule for loading it, its structure, its datasets and providers.

Private to the collection: not an API for other collections.

The file (default /etc/offsite/offsite.yml) holds the policy format of schemas/policy.schema.json,
the same as the role's `offsite_policy` variable (optionally wrapped in `offsite_policy:`). Every
module, the timer script (roles/offsite/files/offsite-converge), status and drill load it with
`load()`; settings.py turns it into typed settings per dataset.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence

from ansible_collections.offsite.zfs.plugins.module_utils import rclone_errors
from ansible_collections.offsite.zfs.plugins.module_utils.common import (
    parse_duration,
    validate_dataset,
    validate_provider,
)
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.schema import errors as schema_errors
from ansible_collections.offsite.zfs.plugins.module_utils.store import Provider

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - depends on the host
    HAS_YAML = False

DEFAULT_CONFIG = "/etc/offsite/offsite.yml"
DEFAULT_PARALLEL = 2

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


def load(path: Optional[str], needed: bool = False) -> Dict[str, Any]:
    """The parsed config file. The one rule for loading it:

    - The file at `path` is read when it exists (PyYAML; unreadable or invalid YAML is `bad_config`).
    - A missing file is an error (`bad_config`, "does not exist") when it was named (any path but the
      default /etc/offsite/offsite.yml) or when the run needs it (`needed`: a policy run, in
      offsite_backup's policy mode or the timer, has nothing to do without its datasets).
    - Otherwise a missing default file, or no path at all, is the empty config: the module parameters
      say everything (a one-off backup, a restore of another host's backups, a status, ...).

    The structure is checked where settings are resolved (settings.resolve), with the module parameters.
    """
    if not path:
        return {}
    if not os.path.exists(path):
        if needed or path != DEFAULT_CONFIG:
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


def dataset_entry(config: Dict[str, Any], dataset: Optional[str]) -> Dict[str, Any]:
    """`defaults`, overlaid by the dataset's own entry (for a child, its nearest configured parent's).

    Raw values, for settings.py to parse; keep rules merge rule by rule. dataset None: defaults only.
    """
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


def configured(config: Dict[str, Any]) -> List[str]:
    """The datasets the policy lists under `datasets`, in its order."""
    return [name for name in (config.get("datasets") or {}) if isinstance(name, str)]


def policy_datasets(config: Dict[str, Any], wanted: Optional[Sequence[str]] = None) -> List[str]:
    """The datasets of a policy run: all in the policy, or the named ones (each in the policy or below one)."""
    names = list((config.get("datasets") or {}).keys())
    if not wanted:
        return names
    for name in wanted:
        if not any(name == c or name.startswith(c + "/") for c in names):
            raise OffsiteError("The dataset %s is not in the policy (datasets: %s); add it under datasets or back "
                               "it up with dataset=%s and no policy." % (
                                   name, ", ".join(names) or "none", name), "not_in_policy")
    return list(wanted)


def make_provider(name: str, spec: Dict[str, Any], rclone: str) -> Provider:
    """One provider definition of the file (or of the providers parameter) as a store.Provider."""
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
