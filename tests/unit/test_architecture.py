"""The layering of plugins/module_utils (docs/design.md, "Layers and who may import whom"), read from the imports.

- a layer (module_utils/*.py) never imports an operation (ops/) or the wiring (_wiring.py, _module.py);
- an operation (ops/<name>/ or ops/<name>.py) imports layers and its own package, never another operation;
- only _wiring.py composes operations; the modules reach them through _module.run_module only;
- the layers import each other without cycles;
- no module_utils file is over 300 lines, and each says what it owns and that it is private.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

ROOT = Path(__file__).resolve().parents[2]
MODULE_UTILS = ROOT / "plugins" / "module_utils"
MODULES = ROOT / "plugins" / "modules"
PREFIX = "ansible_collections.offsite.zfs.plugins.module_utils"
WIRING = {"_wiring", "_module"}
MAX_LINES = 300
PRIVATE = "Private to the collection: not an API for other collections."


def _name(path: Path) -> str:
    """module_utils/ops/backup/run.py -> ops.backup.run"""
    return ".".join(path.relative_to(MODULE_UTILS).with_suffix("").parts)


def _files() -> Dict[str, Path]:
    return {_name(p): p for p in MODULE_UTILS.rglob("*.py") if p.name != "__init__.py"}


def _imports(path: Path, known: Set[str]) -> Set[str]:
    """The module_utils modules a file imports (from X import Y counts Y when Y is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PREFIX):
            base = node.module[len(PREFIX):].lstrip(".")
            for alias in node.names:
                full = (base + "." + alias.name).lstrip(".")
                found.add(full if full in known else base)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PREFIX + "."):
                    found.add(alias.name[len(PREFIX) + 1:])
    return {name for name in found if name}


def _operation(name: str) -> str:
    """ops.backup.run -> ops.backup; ops.adopt -> ops.adopt; a layer -> ''."""
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] == "ops" else ""


GRAPH = {name: _imports(path, set(_files())) for name, path in _files().items()}


def test_layers_never_import_operations_or_the_wiring():
    bad = ["%s imports %s" % (name, dep) for name, deps in GRAPH.items()
           if not _operation(name) and name not in WIRING
           for dep in deps if _operation(dep) or dep in WIRING]
    assert not bad, "a layer may import only layers:\n" + "\n".join(sorted(bad))


def test_operations_import_layers_and_their_own_package_only():
    bad = ["%s imports %s" % (name, dep) for name, deps in GRAPH.items() if _operation(name)
           for dep in deps if (_operation(dep) and _operation(dep) != _operation(name)) or dep in WIRING]
    assert not bad, "an operation may not import another (compose them in _wiring.py):\n" + "\n".join(sorted(bad))


def test_only_the_wiring_composes_operations_and_modules_go_through_run_module():
    composers = sorted(name for name, deps in GRAPH.items() if not _operation(name) and any(map(_operation, deps)))
    assert composers == ["_wiring"], composers
    for module in sorted(MODULES.glob("*.py")):
        used = _imports(module, set(GRAPH))
        assert not [d for d in used if _operation(d)], "%s imports an operation: go through _module" % module.name


def test_the_layers_have_no_import_cycle():
    layers = {name: {d for d in deps if not _operation(d) and d not in WIRING}
              for name, deps in GRAPH.items() if not _operation(name) and name not in WIRING}
    state: Dict[str, int] = {}
    cycle: List[str] = []

    def visit(node: str, path: List[str]) -> bool:
        state[node] = 1
        for dep in sorted(layers.get(node, ())):
            if state.get(dep) == 1:
                cycle.extend(path + [node, dep])
                return True
            if state.get(dep) is None and visit(dep, path + [node]):
                return True
        state[node] = 2
        return False
    for name in sorted(layers):
        if state.get(name) is None and visit(name, []):
            break
    assert not cycle, "import cycle among layers: " + " -> ".join(cycle)


def test_no_file_is_long_and_each_says_what_it_owns_and_that_it_is_private():
    long = ["%s: %d lines" % (name, len(path.read_text().splitlines())) for name, path in _files().items()
            if len(path.read_text().splitlines()) > MAX_LINES]
    assert not long, "split these (one job a file):\n" + "\n".join(sorted(long))
    unmarked = [name for name, path in _files().items()
                if not ast.get_docstring(ast.parse(path.read_text())) or PRIVATE not in path.read_text()]
    assert not unmarked, "open with a docstring and the line %r: %s" % (PRIVATE, sorted(unmarked))
