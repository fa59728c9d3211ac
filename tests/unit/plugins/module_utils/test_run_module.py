"""run_module (module_utils/_module.py): what every module does around its one operation, with a fake
AnsibleModule; and that every module is an argument spec plus one call, whose operation _wiring knows."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any, Dict

import pytest
import yaml

from ansible_collections.offsite.zfs.plugins import module_utils
from ansible_collections.offsite.zfs.plugins.module_utils import _module, _wiring, codec, namespaces
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError

ROOT = Path(__file__).resolve().parents[4]
MODULES = sorted(p for p in (ROOT / "plugins" / "modules").glob("offsite_*.py")
                 if p.stem != "offsite_policy_validate")  # an action plugin: nothing runs on the host


class Ended(Exception):
    pass


class FakeModule:
    """What run_module uses of an AnsibleModule; exit_json and fail_json end it, as the real ones do."""

    def __init__(self, check_mode: bool = False, diff: bool = False, **params: Any) -> None:
        self.params: Dict[str, Any] = dict({"config": None}, **params)
        self.check_mode = check_mode
        self._diff = diff
        self.ended: Dict[str, Any] = {}

    def exit_json(self, **result: Any) -> None:
        self.ended = dict(result, _how="exit")
        raise Ended()

    def fail_json(self, **result: Any) -> None:
        self.ended = dict(result, _how="fail")
        raise Ended()


def run(monkeypatch, operation, module: FakeModule = None, notes=()) -> Dict[str, Any]:
    monkeypatch.setattr(namespaces, "notes", lambda: list(notes))
    monkeypatch.setitem(_wiring.OPERATIONS, "probe", operation)
    module = module or FakeModule()
    with pytest.raises(Ended):
        _module.run_module(module, "probe")
    return module.ended


def test_a_result_ends_the_module_with_the_namespace_notes_as_warnings(monkeypatch):
    seen = []

    def operation(params, check_mode):
        seen.append((params["config"], check_mode))
        return {"changed": True, "msg": "done", "warnings": ["earlier"]}

    ended = run(monkeypatch, operation, FakeModule(check_mode=True), notes=["kept the 1.0 namespace"])
    assert seen == [(None, True)]
    assert ended == {"_how": "exit", "changed": True, "msg": "done", "warnings": ["earlier", "kept the 1.0 namespace"]}


def test_an_offsite_error_is_one_sentence_with_its_code_and_changed_false(monkeypatch):
    def operation(params, check_mode):
        raise OffsiteError("The provider b2 is not configured.", "unknown_provider")

    assert run(monkeypatch, operation, notes=["note"]) == {
        "_how": "fail", "msg": "The provider b2 is not configured.", "error_code": "unknown_provider", "changed": False}


def test_an_error_after_some_work_carries_what_was_done(monkeypatch):
    def operation(params, check_mode):
        error = OffsiteError("Prune of tank/b on b2 refused.", "foreign_host")
        error.details["partial"] = {"changed": True, "datasets": {"tank/a": {}}, "failed_datasets": []}
        raise error

    ended = run(monkeypatch, operation)
    assert ended == {"_how": "fail", "changed": True, "datasets": {"tank/a": {}}, "failed_datasets": [],
                     "msg": "Prune of tank/b on b2 refused.", "error_code": "foreign_host"}


@pytest.mark.parametrize("key", ["failed_providers", "failed_datasets", "failed_drills"])
def test_a_failed_provider_dataset_or_drill_fails_with_the_whole_result(monkeypatch, key):
    result = {"changed": True, "msg": "b2 failed", key: ["x"]}
    assert run(monkeypatch, lambda params, check_mode: dict(result)) == dict(result, _how="fail")
    quiet = {"changed": False, "msg": "fine", key: []}
    assert run(monkeypatch, lambda params, check_mode: dict(quiet)) == dict(quiet, _how="exit")


def test_the_diff_is_returned_in_diff_mode_only(monkeypatch):
    def operation(params, check_mode):
        return {"changed": False, "msg": "m", "diff": [{"before": "a\n", "after": ""}]}

    assert "diff" not in run(monkeypatch, operation)
    assert run(monkeypatch, operation, FakeModule(diff=True))["diff"] == [{"before": "a\n", "after": ""}]


def test_without_pyrage_an_operation_that_needs_it_fails_naming_the_library(monkeypatch):
    monkeypatch.setattr(codec, "HAS_PYRAGE", False)
    monkeypatch.setattr(_wiring, "needs_pyrage", lambda operation, params: True)
    ended = run(monkeypatch, lambda params, check_mode: pytest.fail("must not run"))
    assert ended["_how"] == "fail" and "pyrage" in ended["msg"]
    monkeypatch.setattr(_wiring, "needs_pyrage", lambda operation, params: False)
    assert run(monkeypatch, lambda params, check_mode: {"changed": False, "msg": "m"})["_how"] == "exit"


def test_which_operations_need_pyrage():
    assert not _wiring.needs_pyrage("prune", {})
    assert _wiring.needs_pyrage("backup", {}) and _wiring.needs_pyrage("restore", {})
    status = {"verify": "digest", "legacy": False, "identity": None, "identity_file": None}
    assert not _wiring.needs_pyrage("status", status)
    assert _wiring.needs_pyrage("status", dict(status, verify="decrypt"))
    assert _wiring.needs_pyrage("status", dict(status, legacy=True, identity_file="/root/key"))


def test_module_utils_that_do_not_import_fail_in_one_sentence(monkeypatch):
    monkeypatch.delattr(module_utils, "_wiring", raising=False)
    monkeypatch.setitem(sys.modules, _wiring.__name__, None)
    module = FakeModule()
    with pytest.raises(Ended):
        _module.run_module(module, "backup")
    assert module.ended["_how"] == "fail" and module.ended["msg"] == "offsite.zfs could not load its module_utils."
    assert "ModuleNotFoundError" in module.ended["exception"], "the traceback goes with it"


def test_the_libraries_are_required_first(monkeypatch):
    calls = []
    monkeypatch.setattr(_module, "require_libraries", lambda module: calls.append("libraries"))
    run(monkeypatch, lambda params, check_mode: calls.append("operation") or {"changed": False, "msg": "m"})
    assert calls == ["libraries", "operation"]


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_every_module_is_an_argument_spec_plus_one_call(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    main = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "main")
    assert len(main.body) == 2, "%s: main() builds the AnsibleModule and calls run_module, nothing else" % path.stem
    call = main.body[1].value
    assert isinstance(call, ast.Call) and getattr(call.func, "id", None) == "run_module", path.stem
    assert call.args[1].value in _wiring.OPERATIONS, path.stem
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert "OffsiteError" not in imported and "traceback" not in imported, "%s handles no errors itself" % path.stem


def test_policy_mode_and_the_timer_share_one_policy_run(tmp_path, monkeypatch):
    path = tmp_path / "offsite.yml"
    path.write_text("namespace: host1\ndatasets:\n  tank/a: {}\n  tank/b: {}\n")
    runs = []
    monkeypatch.setattr(_wiring, "policy_run", lambda names, settings_of, check_mode: runs.append(
        (list(names), check_mode)) or {"changed": False, "datasets": {}, "failed_datasets": [], "msg": ""})
    params = {"config": str(path), "policy": True, "datasets": None, "dataset": "tank/b", "snapshot": None,
              "create": False, "full": False, "recursive": None, "exclude": None, "passphrase": None}
    _wiring.backup(params, True)
    _wiring.timer_run(str(path), [], check_mode=False)
    assert runs == [(["tank/b"], True), (["tank/a", "tank/b"], False)]


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_the_shared_specs_a_module_takes_are_the_doc_fragments_it_extends(path: Path):
    """Declared once (_module.SHARED), documented once (offsite.zfs.common[.name]): the two lists agree."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    call = next(node for node in ast.walk(tree) if isinstance(node, ast.Call) and getattr(node.func, "id", None)
                == "spec")
    taken = {arg.value for arg in call.args}
    assert taken <= set(_module.SHARED), path.stem
    documented = {"common" if f == "offsite.zfs.common" else f[len("offsite.zfs.common."):]
                  for f in yaml.safe_load(path.read_text(encoding="utf-8").split('DOCUMENTATION = r"""')[1].split(
                      '"""')[0])["extends_documentation_fragment"] if f.startswith("offsite.zfs.common")}
    assert documented == taken & {"common", "keys", "passphrase", "allow_unsigned"}, path.stem
