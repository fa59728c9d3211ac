"""Every module's EXAMPLES are valid tasks that use only documented options (with correct types for
choices), and every module documents attributes truthfully against its code."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
MODULES = sorted((ROOT / "plugins" / "modules").glob("offsite_*.py"))


def section(path: Path, name: str):
    text = path.read_text(encoding="utf-8")
    match = re.search(r"\b" + name + r' = r"""\n(.*?)"""', text, re.S)
    assert match, "%s has no %s" % (path.name, name)
    return yaml.safe_load(match.group(1))


def options_of(path: Path) -> dict:
    """The module's options with those of the collection's doc fragments (offsite.zfs.NAME[.VAR])."""
    doc = section(path, "DOCUMENTATION")
    options = dict(doc.get("options") or {})
    for fragment in doc.get("extends_documentation_fragment") or []:
        parts = fragment.split(".")
        if parts[:2] != ["offsite", "zfs"]:
            continue
        source = ROOT / "plugins" / "doc_fragments" / ("%s.py" % parts[2])
        options.update(section(source, parts[3].upper() if len(parts) > 3 else "DOCUMENTATION")["options"])
    return options


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_examples_use_documented_options(path: Path):
    examples = section(path, "EXAMPLES")
    assert isinstance(examples, list) and examples, "%s has no example tasks" % path.stem
    options = options_of(path)
    fqcn = "offsite.zfs.%s" % path.stem
    used = 0
    for task in examples:
        assert task.get("name"), "%s: every example task has a name" % path.stem
        if fqcn not in task:
            continue
        used += 1
        args = task[fqcn] or {}
        for key, value in args.items():
            assert key in options, "%s example %r uses undocumented option %s" % (path.stem, task["name"], key)
            choices = options[key].get("choices")
            if choices and isinstance(value, str) and "{{" not in value:
                assert value in choices, "%s example %r: %s=%s is not one of %s" % (
                    path.stem, task["name"], key, value, choices)
        for key, spec in options.items():
            if spec.get("required") and key not in args:
                pytest.fail("%s example %r lacks the required option %s" % (path.stem, task["name"], key))
    assert used, "%s: no example calls %s" % (path.stem, fqcn)


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_check_mode_attribute_matches_the_code(path: Path):
    attributes = section(path, "DOCUMENTATION").get("attributes") or {}
    support = (attributes.get("check_mode") or {}).get("support")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    declared = any(isinstance(node, ast.keyword) and node.arg == "supports_check_mode"
                   and isinstance(node.value, ast.Constant) and node.value.value is True for node in ast.walk(tree))
    action = ROOT / "plugins" / "action" / path.name
    if action.exists():  # an action plugin supports check mode unless it says otherwise (ActionBase)
        declared = declared or "_supports_check_mode = False" not in action.read_text(encoding="utf-8")
    assert support in ("full", "partial", "none"), path.stem
    assert (support != "none") == declared, "%s: check_mode support %s but the code %s check mode" % (
        path.stem, support, "supports" if declared else "does not support")
