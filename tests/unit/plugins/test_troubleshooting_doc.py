"""docs/troubleshooting.md lists every error message the collection can produce.

Every OffsiteError (and subclass) raised in plugins/ is found with the ast module; its message, with
each %-placeholder or expression shown as "…", must appear in docs/troubleshooting.md under the
section of its error code. When this test fails it prints the lines to add.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import List, Optional, Tuple

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


def raised_messages() -> List[Tuple[str, Optional[str], str]]:
    paths = sorted((ROOT / "plugins").rglob("*.py"))
    trees = [ast.parse(p.read_text(encoding="utf-8")) for p in paths]
    classes = error_classes(trees)
    found = []
    for path, tree in zip(paths, trees):
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            if getattr(node.func, "id", getattr(node.func, "attr", None)) not in classes:
                continue
            code = "error"
            if len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                code = node.args[1].value
            for keyword in node.keywords:
                if keyword.arg == "code" and isinstance(keyword.value, ast.Constant):
                    code = keyword.value.value
            found.append((code, template(node.args[0]), "%s:%d" % (path.relative_to(ROOT), node.lineno)))
    return found


def sections() -> dict:
    """error code -> the text of its section in the doc."""
    text = DOC.read_text(encoding="utf-8")
    parts = re.split(r"^### `([a-z_]+)`", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


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
