"""The default namespace (module_utils/namespaces.py): unique by default, the 1.0 short name kept only for this
host's own backups, the decision remembered."""

from __future__ import annotations

import json
import os
import stat
from types import SimpleNamespace

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils import namespaces
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError

MINE, THEIRS = "a" * 32, "b" * 32


@pytest.fixture(autouse=True)
def _fresh():
    namespaces.forget()
    yield
    namespaces.forget()


def _names(monkeypatch, hostname, fqdn):
    monkeypatch.setattr(namespaces.socket, "gethostname", lambda: hostname)
    monkeypatch.setattr(namespaces.socket, "getfqdn", lambda name="": fqdn)


def test_the_unique_name_is_host_name_else_an_fqdn_that_extends_the_short_name(monkeypatch):
    _names(monkeypatch, "web1", "web1.a.example")
    assert namespaces.short_name() == "web1"
    assert namespaces.unique_name() == "web1.a.example"
    assert namespaces.unique_name("web1.inventory") == "web1.inventory"
    _names(monkeypatch, "web1", "localhost")  # a resolver that knows nothing must not merge the fleet
    assert namespaces.unique_name() == "web1"
    _names(monkeypatch, "web1.b.example", "localhost.localdomain")  # the host name itself is the FQDN
    assert namespaces.short_name() == "web1" and namespaces.unique_name() == "web1.b.example"
    with pytest.raises(OffsiteError):
        namespaces.unique_name("not a name")


def _backup(dataset, guid, host_id):
    return SimpleNamespace(dataset=dataset, complete=True,
                           manifest=SimpleNamespace(host_id=host_id, snapshot=SimpleNamespace(guid=guid)))


def test_ours_is_this_hosts_id_or_an_id_less_backup_of_a_local_snapshot():
    local = {"tank/a": {"11", "12"}}
    backups = [_backup("tank/a", "11", MINE), _backup("tank/a", "99", THEIRS), _backup("tank/a", "12", ""),
               _backup("tank/a", "13", ""), _backup("tank/b", "11", ""),
               SimpleNamespace(dataset="tank/a", complete=False, manifest=None)]
    found = namespaces.ours(backups, MINE, lambda ds: local.get(ds, set()))
    assert found == [backups[0], backups[2]]
    assert namespaces.ours(backups, "", lambda ds: set()) == [], "no id yet, no local guid: nothing is ours"


class FakeStore:
    def __init__(self, name, objects, backups=(), fail=False):
        self.name, self.objects, self.backups, self.fail = name, objects, list(backups), fail
        self.listed = []

    def list(self, prefix, max_depth=None):
        self.listed.append(prefix)
        if self.fail:
            raise OffsiteError("unreachable", "provider_failed")
        return self.objects.get(prefix, [])


def _patch_listing(monkeypatch):
    def list_backups(store, namespace, dataset=None, **kwargs):
        store.listed.append(namespace + " (manifests)")
        if store.fail:
            raise OffsiteError("unreachable", "provider_failed")
        return SimpleNamespace(backups={(b.dataset, str(i)): b for i, b in enumerate(store.backups)})
    monkeypatch.setattr(namespaces.catalog, "list_backups", list_backups)


def _no_guids(dataset):
    del dataset
    return set()


def test_decide_keeps_the_short_name_only_for_this_hosts_backups(monkeypatch):
    _patch_listing(monkeypatch)
    none = _no_guids
    legacy = FakeStore("b2", {"web1": ["x"]}, [_backup("tank/a", "11", MINE)])
    namespace, warning, settled = namespaces.decide("web1.a.example", "web1", [legacy], MINE, none)
    assert (namespace, settled) == ("web1", True)
    assert "Using the namespace web1" in warning and "web1.a.example" in warning and "1 on b2" in warning
    other = FakeStore("b2", {"web1": ["x"]}, [_backup("tank/a", "11", THEIRS)])
    assert namespaces.decide("web1.a.example", "web1", [other], MINE, none) == ("web1.a.example", "", False), \
        "another web1's backups never pull this host into their namespace"
    moved = FakeStore("b2", {"web1.a.example": ["y"], "web1": ["x"]}, [_backup("tank/a", "11", MINE)])
    assert namespaces.decide("web1.a.example", "web1", [moved], MINE, none) == ("web1.a.example", "", True)
    assert moved.listed == ["web1.a.example"], "the new namespace has backups: the old one is not even listed"
    down = FakeStore("s3", {}, fail=True)
    assert namespaces.decide("web1.a.example", "web1", [down, legacy], MINE, none)[::2] == ("web1", False), \
        "an unreachable provider leaves the decision unsettled (not remembered)"


def test_default_remembers_a_settled_decision_in_the_state_dir(monkeypatch, tmp_path):
    _patch_listing(monkeypatch)
    _names(monkeypatch, "web1", "web1.a.example")
    state = tmp_path / "state"
    state.mkdir()
    (state / "host-id").write_text(MINE + "\n")
    store = FakeStore("b2", {"web1": ["x"]}, [_backup("tank/a", "11", MINE)])
    providers = {"b2": SimpleNamespace(remote="b2:bucket")}
    namespace, warning = namespaces.default(None, str(state), providers, stores={"b2": store})
    assert namespace == "web1" and warning
    assert namespaces.notes() == [warning]
    recorded = json.loads((state / namespaces.FILE).read_text())
    assert recorded == {"unique": "web1.a.example", "short": "web1", "namespace": "web1"}
    assert stat.S_IMODE(os.stat(state / namespaces.FILE).st_mode) == 0o600
    calls = len(store.listed)
    assert namespaces.default(None, str(state), providers, stores={"b2": store}) == (namespace, warning)
    namespaces.forget()
    again, note = namespaces.default(None, str(state), providers, stores={"b2": store})
    assert again == "web1" and "recorded in the state_dir's namespace.json" in note
    assert len(store.listed) == calls, "neither the same run nor a later one lists again"
    # host_name changes the unique name: the record is for another decision
    fresh = FakeStore("b2", {})
    assert namespaces.default("web1.inventory", str(state), providers, stores={"b2": fresh}) == (
        "web1.inventory", "")


def test_no_provider_or_a_short_unique_name_needs_no_listing(monkeypatch, tmp_path):
    _names(monkeypatch, "nas", "localhost")
    assert namespaces.default(None, str(tmp_path), {"b2": SimpleNamespace(remote="b2:x")}) == ("nas", "")
    _names(monkeypatch, "nas", "nas.example")
    assert namespaces.default(None, str(tmp_path), {}) == ("nas.example", "")
    assert not (tmp_path / namespaces.FILE).exists()
