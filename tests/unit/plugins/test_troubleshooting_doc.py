"""docs/troubleshooting.md lists every error message and every code the collection can produce.

Every OffsiteError (and subclass) raised in plugins/ is found with the ast module; its message, with
each %-placeholder or expression shown as "…", must appear in docs/troubleshooting.md under the
section of its error code. When this test fails it prints the lines to add.

The codes are one vocabulary, errors.CODES (code -> what it means, what to do): every code
module_utils raises or reports as a status problem is in it, and the doc has a section for each code
in it, headed "### `code`: <what it means>", and no other.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils.errors import CODES

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "troubleshooting.md"


def template(node: ast.AST) -> Optional[str]:
    """The message text of an expression: literals kept, placeholders and expressions as '…'."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        left = template(node.left)
        return None if left is None else re.sub(r"%(\([a-z_]+\))?[-#0 +]*\d*(\.\d+)?[sdrfix]", "…", left)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        first, second = template(node.left), template(node.right)
        return (first if first is not None else "…") + (second if second is not None else "…")
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "…" for v in node.values)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        base = template(node.func.value)
        return None if base is None else re.sub(r"\{[^}]*\}", "…", base)
    return None


def error_classes(trees: List[ast.AST]) -> set:
    names = {"OffsiteError"}
    changed = True
    while changed:
        changed = False
        for tree in trees:
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name not in names and any(
                        getattr(base, "id", getattr(base, "attr", None)) in names for base in node.bases):
                    names.add(node.name)
                    changed = True
    return names


@functools.lru_cache(maxsize=None)  # noqa: UP033  (functools.cache: Python 3.9+)
def _parsed(folder: str) -> Tuple[Tuple[Path, ast.AST], ...]:
    return tuple((p, ast.parse(p.read_text(encoding="utf-8"))) for p in sorted((ROOT / folder).rglob("*.py")))


def raised_messages() -> List[Tuple[str, Optional[str], str]]:
    paths = [p for p, _tree in _parsed("plugins")]
    trees = [tree for _p, tree in _parsed("plugins")]
    classes = error_classes(trees)
    found = []
    for path, tree in zip(paths, trees):
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            if getattr(node.func, "id", getattr(node.func, "attr", None)) not in classes:
                continue
            codes = ["error"]
            if len(node.args) > 1 and _strings(node.args[1]):
                codes = _strings(node.args[1])  # `"a" if ... else "b"`: the message is listed under both
            for keyword in node.keywords:
                if keyword.arg == "code" and _strings(keyword.value):
                    codes = _strings(keyword.value)
            for code in codes:
                found.append((code, template(node.args[0]), "%s:%d" % (path.relative_to(ROOT), node.lineno)))
    return found


def sections() -> dict:
    """error code -> the text of its section in the doc."""
    text = DOC.read_text(encoding="utf-8")
    parts = re.split(r"^### `([a-z_]+)`", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def headings() -> Dict[str, str]:
    """error code -> the words after the code in its section's heading."""
    text = DOC.read_text(encoding="utf-8")
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^### `([a-z_]+)`: (.*)$", text, flags=re.M)}


_SEVERITIES = {"info", "warning", "critical"}
_CODE = re.compile(r"^[a-z][a-z0-9_]*$")


def _strings(node: ast.AST) -> List[str]:
    """The string constants an expression can be: a literal, either branch of `a if c else b`, a tuple's items."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _strings(node.body) + _strings(node.orelse)
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [v for e in node.elts for v in _strings(e)]
    return []


def _code_name(name: str) -> bool:
    return name in ("code", "CODE") or name.endswith(("_code", "_CODE", "CODES"))


def used_codes() -> Dict[str, Set[str]]:
    """Every code module_utils raises or reports: error-class calls (code argument), status problems
    (`problem(code, ...)`, {"code": ...} entries, (code, severity, ...) findings), and values given to a
    name like code / CODE / *_code / *CODES. code -> where."""
    found: Dict[str, Set[str]] = {}
    paths = [p for p, _tree in _parsed("plugins/module_utils")]
    trees = [tree for _p, tree in _parsed("plugins/module_utils")]
    classes = error_classes([tree for _p, tree in _parsed("plugins")])
    for path, tree in zip(paths, trees):
        if path.name == "errors.py":
            continue  # the vocabulary itself
        for node in ast.walk(tree):
            hits: List[str] = []
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", None))
                if name == "problem" and node.args:
                    hits += _strings(node.args[0])
                if name in classes and len(node.args) > 1:
                    hits += _strings(node.args[1])
                hits += [v for kw in node.keywords if kw.arg in ("code", "error_code") for v in _strings(kw.value)]
            elif isinstance(node, ast.Dict):
                hits += [v for k, val in zip(node.keys, node.values)
                         if isinstance(k, ast.Constant) and k.value in ("code", "error_code") for v in _strings(val)]
            elif isinstance(node, ast.Tuple) and len(node.elts) >= 2:
                first, second = _strings(node.elts[0]), _strings(node.elts[1])
                if second and set(second) <= _SEVERITIES and not set(first) & _SEVERITIES:
                    hits += first
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name) and _code_name(target.id):
                        hits += _strings(node.value)
                    elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                        hits += [v for t, val in zip(target.elts, node.value.elts)
                                 if isinstance(t, ast.Name) and _code_name(t.id) for v in _strings(val)]
            for code in hits:
                if _CODE.match(code):
                    found.setdefault(code, set()).add("%s:%d" % (path.relative_to(ROOT), node.lineno))
    return found


def test_the_scan_finds_the_errors_it_should():
    found = raised_messages()
    assert len(found) > 50
    assert any(code == "bad_name" and text and text.startswith("The dataset name") for code, text, _where in found)
    assert any(code == "provider_failed" for code, _text, _where in found), "StoreError (a subclass) was not scanned"


def test_every_message_is_in_troubleshooting_under_its_code():
    docs = sections()
    missing = []
    for code, text, where in raised_messages():
        assert text is not None, "%s: the message is not a string literal the docs can list" % where
        if text not in docs.get(code, ""):
            missing.append("%s (%s), under ### `%s`:\n- %s" % (where, code, code, text))
    assert not missing, "docs/troubleshooting.md lacks %d error messages:\n%s" % (len(missing), "\n".join(missing))


def test_every_documented_code_has_advice():
    for code, body in sections().items():
        advice = body.split("Messages:", 1)[0].strip()
        assert len(advice) > 40, "the section of %s says nothing about what to do" % code


def test_the_code_scan_finds_raised_and_reported_codes():
    used = used_codes()
    for code in ("bad_name", "zfs_failed", "provider_unreachable",  # raised
                 "stale", "digest_mismatch", "ledger_reset", "full_backup_next", "nothing_offsite"):  # reported
        assert code in used, code


def test_every_code_used_is_in_the_vocabulary():
    missing = {code: sorted(where)[:3] for code, where in used_codes().items() if code not in CODES}
    assert not missing, "add these codes to errors.CODES (meaning, what to do): %s" % missing


def test_every_code_in_the_vocabulary_has_its_section_and_meaning():
    shown = headings()
    lacking = ["### `%s`: %s" % (code, meaning) for code, (meaning, _todo) in CODES.items() if code not in shown]
    assert not lacking, "docs/troubleshooting.md lacks sections:\n%s" % "\n".join(lacking)
    differ = ["%s: doc %r, CODES %r" % (c, shown[c], CODES[c][0]) for c in CODES if shown[c] != CODES[c][0]]
    assert not differ, "the heading says what CODES says the code means:\n%s" % "\n".join(differ)
    stale = sorted(set(shown) - set(CODES))
    assert not stale, "sections for codes the collection does not use: %s" % stale
    assert all(meaning and todo for meaning, todo in CODES.values())
