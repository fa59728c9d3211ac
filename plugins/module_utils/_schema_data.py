# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The policy JSON Schema as data: a copy of schemas/policy.schema.json (tests/unit/test_schema.py compares).

Private to the collection: not an API for other collections. schema.py validates with it.
"""

from __future__ import annotations

from typing import Any, Dict

_DURATION = {
    "x-rule": "must be a duration like 90s, 30m, 36h, 1d or 2w (or a number of seconds)",
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": "^\\s*\\d+(\\.\\d+)?\\s*(s|m|h|d|w)\\s*$"},
    ],
}

# Keep in sync with schemas/policy.schema.json (tests/unit/test_schema.py checks they are equal).
SCHEMA: Dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://offsite.zfs/schemas/policy.schema.json",
    "title": "offsite.zfs policy",
    "description": "The host config file /etc/offsite/offsite.yml and the role variable offsite_policy.",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "recipients": {
            "description": "age recipients (public keys) every backup is encrypted to.",
            "type": "array",
            "items": {"type": "string", "minLength": 1,
                      "pattern": "^(?![\\s\\S]*\\n)(age1[0-9a-z]+|ssh-(ed25519|rsa) [A-Za-z0-9+/=]+( .*)?)$",
                      "x-rule": "must be an age recipient (age1...) or an SSH public key (ssh-ed25519 ...)"},
        },
        "providers": {
            "description": "Named backup destinations.",
            "type": "object",
            "propertyNames": {"$ref": "#/$defs/provider_name"},
            "additionalProperties": {"$ref": "#/$defs/provider"},
        },
        "namespace": {
            "description": "Top-level folder for this host's backups on every provider.",
            "type": "string",
            "pattern": "^(?![\\s\\S]*\\n)[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$",
            "x-rule": "must be up to 128 letters, digits and _ . : -, not starting with - or .",
        },
        "host_name": {
            "description": "This host's name in the fleet, unique (the role sets inventory_hostname); the namespace "
                           "defaults to it, else to the host's FQDN (docs/policy.md, host identity).",
            "type": "string",
            "pattern": "^(?![\\s\\S]*\\n)[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$",
            "x-rule": "must be up to 128 letters, digits and _ . : -, not starting with - or .",
        },
        "state_dir": {"type": "string", "minLength": 1},
        "log_dir": {"type": "string", "minLength": 1},
        "signers": {
            "description": "Per namespace, the SSH public keys trusted to sign its manifests (docs/security.md).",
            "type": "object",
            "additionalProperties": {"type": "array", "minItems": 1, "items": {
                "type": "string", "pattern": "^(?![\\s\\S]*\\n)(ssh-|ecdsa-|sk-)[a-z0-9@.-]+ [A-Za-z0-9+/=]+( .*)?$",
                "x-rule": "must be an SSH public key line (ssh-ed25519 AAAA...)"}},
        },
        "allow_unsigned": {"type": "boolean"},
        "signing_key": {"type": "string", "minLength": 1},
        "rclone": {"type": "string", "minLength": 1},
        "zfs": {"type": "string", "minLength": 1},
        "defaults": {"$ref": "#/$defs/settings"},
        "datasets": {
            "description": "Datasets to back up, each with settings that override defaults.",
            "type": "object",
            "propertyNames": {"$ref": "#/$defs/dataset_name"},
            "additionalProperties": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/settings"}]},
        },
    },
    "$defs": {
        "provider_name": {
            "type": "string",
            "pattern": "^(?![\\s\\S]*\\n)[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$",
            "not": {"enum": ["all", "auto"]},
            "x-rule": "is not a valid provider name (up to 64 letters, digits, _ and -; not all or auto)",
        },
        "dataset_name": {
            "type": "string",
            "maxLength": 255,
            "pattern": "^(?![\\s\\S]*\\n)[A-Za-z0-9_][A-Za-z0-9_.:-]*(/[A-Za-z0-9_][A-Za-z0-9_.:-]*)*$",
            "x-rule": "is not a valid dataset name (like tank/data: letters, digits and _ . : - separated by /)",
        },
        "duration": _DURATION,
        "size": {
            "x-rule": "must be a size like 64KiB, 256MiB or 1GiB (or a number of bytes)",
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": "^\\s*\\d+(\\.\\d+)?\\s*([KMGTPkmgtp][iI]?)?[bB]?\\s*$"},
            ],
        },
        "provider": {
            "type": "object",
            "additionalProperties": False,
            "required": ["remote"],
            "properties": {
                "remote": {"type": "string", "minLength": 1, "pattern": "^[^-\\n]",
                           "x-rule": "must be an rclone path like b2:bucket/offsite or /srv/mirror"},
                "parallel_uploads": {"type": "integer", "minimum": 1, "maximum": 64},
                "retries": {"type": "integer", "minimum": 0, "maximum": 100},
                "retry_delay": {"$ref": "#/$defs/duration"},
                "connect_timeout": {"$ref": "#/$defs/duration"},
                "io_timeout": {"$ref": "#/$defs/duration"},
                "call_timeout": {"$ref": "#/$defs/duration"},
                "unreachable_budget": {"$ref": "#/$defs/duration"},
                "low_level_retries": {"type": "integer", "minimum": 1, "maximum": 100},
                "bwlimit": {"type": "string", "minLength": 1,
                            "pattern": "^[A-Za-z0-9.:, -]+$",
                            "x-rule": "must be an rclone bandwidth limit like 10M, 10M:off or \"08:00,2M 23:00,off\""},
                "rclone_config": {"type": "string", "minLength": 1},
                "require_mount": {"type": "string", "pattern": "^/", "x-rule": "must be an absolute path"},
                "append_only": {"type": "boolean"},
                "env": {
                    "type": "object",
                    "propertyNames": {"pattern": "^(?![\\s\\S]*\\n)RCLONE_[A-Z0-9_]+$",
                                      "x-rule": "is not an rclone environment variable (RCLONE_...)"},
                    "additionalProperties": {"type": ["string", "number", "boolean"]},
                },
            },
        },
        "keep": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "last": {"type": "integer", "minimum": 0},
                "hourly": {"type": "integer", "minimum": 0},
                "daily": {"type": "integer", "minimum": 0},
                "weekly": {"type": "integer", "minimum": 0},
                "monthly": {"type": "integer", "minimum": 0},
                "yearly": {"type": "integer", "minimum": 0},
            },
        },
        "settings": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "providers": {
                    "x-rule": "must be all or a list of provider names",
                    "anyOf": [
                        {"const": "all"},
                        {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/provider_name"}},
                    ],
                },
                "chunk_size": {"$ref": "#/$defs/size"},
                "compression": {
                    "anyOf": [
                        {"enum": ["zstd", "gzip", "none"]},
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "algorithm": {"enum": ["zstd", "gzip", "none"]},
                                "level": {"type": "integer", "minimum": 1, "maximum": 22},
                                "threads": {"type": "integer", "minimum": 0},
                            },
                        },
                    ],
                },
                "spool": {
                    "anyOf": [
                        {"type": "boolean"},
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {"enabled": {"type": "boolean"}, "dir": {"type": "string", "minLength": 1}},
                        },
                    ],
                },
                "send": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        key: {"enum": [True, False, "auto"]}
                        for key in ("raw", "compressed", "large_blocks", "embedded", "properties")
                    },
                },
                "every": {"$ref": "#/$defs/duration"},
                "at": {
                    "type": "string",
                    "pattern": "^(?![\\s\\S]*\\n)([01]?[0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?( ?(Z|UTC))?$",
                    "x-rule": "must be a time of day like 02:00 (host local time) or 02:00Z (UTC)",
                },
                "slack": {"$ref": "#/$defs/duration"},
                "new_lineage": {"type": "boolean"},
                "full_every": {
                    "x-rule": "must be a duration like 30d or {incrementals: N}",
                    "anyOf": [
                        {"$ref": "#/$defs/duration"},
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["incrementals"],
                            "properties": {"incrementals": {"type": "integer", "minimum": 0}},
                        },
                    ],
                },
                "max_age": {"$ref": "#/$defs/duration"},
                "drill_every": {"$ref": "#/$defs/duration"},
                "verify_coverage": {"$ref": "#/$defs/duration"},
                "keep": {"$ref": "#/$defs/keep"},
                "snapshot_prefix": {
                    "type": "string",
                    "pattern": "^(?![\\s\\S]*\\n)[A-Za-z0-9_][A-Za-z0-9_.:-]{0,200}$",
                    "x-rule": "must be letters, digits and _ . : - (not starting with - or .)",
                },
                "snapshot_pattern": {
                    "type": "string",
                    "pattern": "^(?![\\s\\S]*\\n)[A-Za-z0-9_*?\\[][A-Za-z0-9_.:*?\\[\\]!-]{0,200}$",
                    "x-rule": "must be a shell-style pattern (* ? [..]) over letters, digits and _ . : -",
                },
                "hold_base": {"type": "boolean"},
                "recursive": {"type": "boolean"},
                "exclude": {"type": "array", "items": {"type": "string", "minLength": 1}},
                "prune_incomplete_after": {"$ref": "#/$defs/duration"},
                "prune_local_snapshots": {"type": "boolean"},
            },
        },
    },
}
