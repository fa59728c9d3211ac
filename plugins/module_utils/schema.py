# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The policy schema's validation, with errors that name the path (the schema itself: _schema_data.py).

Private to the collection: not an API for other collections.

Errors read `datasets["tank/photos"].keep.daily: must be >= 0`: the path of the bad field, then the
rule it breaks. jsonschema is used when importable (always on the controller); the few checks
that need no library (provider references) run everywhere.
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict, List

from ansible_collections.offsite.zfs.plugins.module_utils._schema_data import SCHEMA as POLICY_SCHEMA

try:
    import jsonschema
    HAS_JSONSCHEMA = True
except ImportError:  # pragma: no cover - depends on the host
    HAS_JSONSCHEMA = False

SCHEMA = POLICY_SCHEMA  # the data, in _schema_data.py

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TYPE_NAMES = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "true or false", "null": "empty"}


def show(name: Any) -> str:
    """A user-given key, quoted, escaped (no newline can reach a message) and shortened."""
    text = str(name)
    return json.dumps(text if len(text) <= 60 else text[:57] + "...", ensure_ascii=False)


def format_path(parts: Any) -> str:
    """['datasets', 'tank/photos', 'keep', 'daily'] -> 'datasets["tank/photos"].keep.daily'."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += "[%d]" % part
        elif _IDENT.fullmatch(str(part)):
            text += (".%s" % part) if text else str(part)
        else:
            text += "[%s]" % show(part)
    return text or "(top level)"


def _key(name: Any) -> str:
    """A key as is when it is a plain word, else quoted and escaped."""
    return str(name) if _IDENT.fullmatch(str(name)) else show(name)


def _describe_type(value: Any) -> str:
    if isinstance(value, list):
        return " or ".join(_TYPE_NAMES.get(v, v) for v in value)
    return _TYPE_NAMES.get(value, str(value))


def _rule(error: Any) -> str:
    """The rule an error breaks, in words."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    validator = error.validator
    value = error.validator_value
    if "x-rule" in schema and validator not in ("additionalProperties", "required", "minItems"):
        return schema["x-rule"]
    if validator == "minimum":
        return "must be >= %s" % value
    if validator == "maximum":
        return "must be <= %s" % value
    if validator == "type":
        return "must be %s" % _describe_type(value)
    if validator == "enum":
        return "must be one of %s" % ", ".join(str(v).lower() if isinstance(v, bool) else str(v) for v in value)
    if validator == "const":
        return "must be %s" % value
    if validator == "minLength":
        return "must not be empty"
    if validator == "maxLength":
        return "must be at most %d characters" % value
    if validator == "minItems":
        return "must have at least %d item%s" % (value, "" if value == 1 else "s")
    if validator == "required":
        missing = [key for key in value if isinstance(error.instance, dict) and key not in error.instance]
        return "is missing the required key %s" % (missing[0] if missing else value[0])
    if validator == "additionalProperties":
        known = sorted((schema.get("properties") or {}).keys())
        extra = sorted(k for k in (error.instance or {}) if k not in (schema.get("properties") or {}))
        return "has an unknown key %s%s" % (_key(extra[0]) if extra else "?",
                                            "; known keys are %s" % ", ".join(known) if known else "")
    if validator == "pattern":
        return "must match %s" % value
    if validator == "not":
        return "is not allowed"
    return error.message


def _mismatch(error: Any) -> bool:
    """Whether the error says the value is of another kind altogether (so its branch does not apply)."""
    if error.relative_path:
        return False
    if error.validator in ("type", "enum", "const"):
        return True
    if error.validator in ("anyOf", "oneOf") and error.context:
        branches: Dict[Any, List[Any]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        return all(any(_mismatch(e) for e in subs) for subs in branches.values())
    return False


def _leaf_errors(error: Any) -> List[Any]:
    """For anyOf: the errors inside the branch whose type matched, when the value is a mapping or list
    (or the anyOf has no rule of its own); else the anyOf error itself."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator not in ("anyOf", "oneOf") or not error.context:
        return [error]
    if "x-rule" in schema and not isinstance(error.instance, (dict, list)):
        return [error]
    branches: Dict[Any, List[Any]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    matched = [subs for subs in branches.values() if not any(_mismatch(e) for e in subs)]
    if not matched:
        return [error]
    leaves: List[Any] = []
    for sub in matched[0]:
        leaves.extend(_leaf_errors(sub))
    return leaves


def _anyof_rule(error: Any) -> str:
    kinds = []
    for sub in error.context or []:
        if sub.validator == "type":
            kinds.append(_describe_type(sub.validator_value))
        elif sub.validator == "enum":
            kinds.append("one of %s" % ", ".join(str(v) for v in sub.validator_value))
    return "must be %s" % " or ".join(dict.fromkeys(kinds)) if kinds else error.message


def schema_errors(config: Any) -> List[str]:
    """Every schema violation as 'path: rule', sorted by path (needs jsonschema)."""
    validator = jsonschema.Draft202012Validator(SCHEMA)
    messages = []
    for error in validator.iter_errors(config):
        for leaf in _leaf_errors(error):
            path = format_path(list(leaf.absolute_path))
            schema = leaf.schema if isinstance(leaf.schema, dict) else {}
            if "propertyNames" in leaf.absolute_schema_path:
                messages.append("%s: the key %s %s" % (path, show(leaf.instance), _name_rule(leaf)))
                continue
            if leaf.validator in ("anyOf", "oneOf") and "x-rule" not in schema:
                rule = _anyof_rule(leaf)
            else:
                rule = _rule(leaf)
            messages.append("%s: %s" % (path, rule))
    return sorted(dict.fromkeys(messages))


def _name_rule(error: Any) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    if "x-rule" in schema:
        return schema["x-rule"]
    parent = error.parent
    while parent is not None:
        if isinstance(parent.schema, dict) and "x-rule" in parent.schema:
            return parent.schema["x-rule"]
        parent = parent.parent
    return "is not allowed (%s)" % error.message


def reference_errors(config: Any) -> List[str]:
    """Checks a schema cannot express: provider lists name defined providers."""
    if not isinstance(config, dict):
        return []
    defined = set((config.get("providers") or {}) if isinstance(config.get("providers"), dict) else {})
    messages = []
    sections = [(["defaults"], config.get("defaults"))]
    datasets = config.get("datasets")
    if isinstance(datasets, dict):
        sections += [(["datasets", name], spec) for name, spec in datasets.items()]
    for path, spec in sections:
        if not isinstance(spec, dict) or not isinstance(spec.get("providers"), list):
            continue
        for index, name in enumerate(spec["providers"]):
            if isinstance(name, str) and name not in defined and name not in ("all", "auto"):
                messages.append("%s: names the provider %s, which is not defined under providers%s" % (
                    format_path(path + ["providers", index]), _key(name),
                    " (defined: %s)" % ", ".join(sorted(defined)) if defined else ""))
    return messages


def errors(config: Any) -> List[str]:
    """Every problem of a policy, 'path: rule' each; [] when it is valid.

    Without jsonschema only the reference checks run (config.check_structure covers the basics).
    """
    found = schema_errors(config) if HAS_JSONSCHEMA else []
    if not found:
        found = reference_errors(config)
    return found
