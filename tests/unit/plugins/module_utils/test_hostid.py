"""Host identity (module_utils/hostid.py): created once, 0600, stable; other hosts' backups are told apart."""

from __future__ import annotations

import os
import stat
from types import SimpleNamespace

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils import hostid
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError


def test_the_id_is_created_once_private_and_stable(tmp_path):
    state = str(tmp_path / "state")
    assert hostid.read(state) is None
    assert hostid.get(state, create=False) == "", "check mode creates nothing"
    assert not os.path.exists(hostid.path_of(state))
    first = hostid.get(state)
    assert len(first) == 32 and int(first, 16) >= 0
    assert stat.S_IMODE(os.stat(hostid.path_of(state)).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    assert hostid.get(state) == first == hostid.read(state)
    assert [p for p in os.listdir(state) if p.startswith(".tmp")] == []


def test_a_damaged_id_file_is_refused(tmp_path):
    (tmp_path / "host-id").write_text("not an id\n")
    with pytest.raises(OffsiteError) as caught:
        hostid.get(str(tmp_path))
    assert caught.value.code == "bad_config" and "move it away" in caught.value.message


def _backup(host_id, host="web1.b.example"):
    return SimpleNamespace(manifest=SimpleNamespace(host_id=host_id, host=host))


def test_foreign_backups_are_those_with_another_hosts_id():
    mine, theirs = "a" * 32, "b" * 32
    backups = [_backup(mine), _backup(""), _backup(theirs), SimpleNamespace(manifest=None)]
    assert hostid.foreign(backups, mine) == [backups[2]]
    assert hostid.foreign(backups, "") == [backups[0], backups[2]], "a host without an id wrote none of them"
    text = hostid.describe("web1", [backups[2]], mine)
    assert text.startswith("namespace web1 holds 1 backup of it written by another host (web1.b.example, host id "
                           + theirs + "), not by this one (")
    assert "host id " + mine in text and "its own namespace" in text
