"""module_utils/_deps: which interpreter the modules re-execute in, and the one-sentence failure.

The real respawn over SSH on a system Python is proven by tests/functional/test_fleet_ssh.py; here the
choice of interpreter and the message, with ansible-core's respawn functions replaced.
"""

from __future__ import annotations

import sys

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils import _deps


class Failed(Exception):
    pass


class FakeModule:
    def __init__(self, config):
        self.params = {"config": config}
        self.failed = None

    def fail_json(self, **kwargs):
        self.failed = kwargs
        raise Failed(kwargs["msg"])


def test_the_marker_beside_the_config_names_the_interpreter(tmp_path, monkeypatch):
    monkeypatch.delenv("OFFSITE_VENV", raising=False)
    config = tmp_path / "etc" / "offsite.yml"
    assert _deps.candidates(str(config)) == ["/opt/offsite/venv/bin/python"]
    config.parent.mkdir()
    (config.parent / "offsite-python").write_text("/srv/venv/bin/python\n")
    assert _deps.candidates(str(config)) == ["/srv/venv/bin/python"]
    monkeypatch.setenv("OFFSITE_VENV", "/elsewhere")
    assert _deps.candidates(str(tmp_path / "other.yml")) == ["/elsewhere/bin/python"]


def test_nothing_happens_when_the_libraries_import(monkeypatch):
    monkeypatch.setattr(_deps, "respawn_module", lambda path: pytest.fail("must not respawn"))
    _deps.require_libraries(FakeModule(None))  # the test venv has pyrage, zstandard and PyYAML


def test_missing_libraries_respawn_in_the_recorded_venv(tmp_path, monkeypatch):
    venv_python = tmp_path / "venv" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.symlink_to(sys.executable)
    (tmp_path / "offsite-python").write_text("%s\n" % venv_python)
    monkeypatch.setattr(_deps, "missing_libraries", lambda: ["pyrage"])
    monkeypatch.setattr(_deps, "has_respawned", lambda: False)

    def respawn(path):
        raise SystemExit(path)

    monkeypatch.setattr(_deps, "respawn_module", respawn)
    with pytest.raises(SystemExit) as exited:
        _deps.require_libraries(FakeModule(str(tmp_path / "offsite.yml")))
    assert exited.value.code == str(venv_python)


@pytest.mark.parametrize("respawned", [False, True])
def test_without_a_venv_one_sentence_says_to_apply_the_role(tmp_path, monkeypatch, respawned):
    monkeypatch.setattr(_deps, "missing_libraries", lambda: ["pyrage", "yaml"])
    monkeypatch.setattr(_deps, "has_respawned", lambda: respawned)
    monkeypatch.setenv("OFFSITE_VENV", str(tmp_path / "no-venv"))
    monkeypatch.setattr(_deps, "respawn_module", lambda path: pytest.fail("nothing to respawn in"))
    module = FakeModule(str(tmp_path / "offsite.yml"))
    with pytest.raises(Failed):
        _deps.require_libraries(module)
    assert module.failed["error_code"] == "missing_library"
    message = module.failed["msg"]
    assert message.startswith("The Python libraries pyrage, PyYAML are missing for %s" % sys.executable)
    assert "apply the role offsite.zfs.offsite" in message and message.count(". ") == 0
