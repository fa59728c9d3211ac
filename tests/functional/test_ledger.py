"""The host's ledger (issue 17): status notices a deleted and a rolled-back backup, and a reset ledger.

The provider is changed through real rclone (local backend and `rclone serve s3`), as someone
holding the bucket's credentials would.
"""

from __future__ import annotations

import os
import shutil
import stat

import pytest
from unmounted import UnmountedPool

from ansible_collections.offsite.zfs.plugins.module_utils import catalog, ledger
from ansible_collections.offsite.zfs.plugins.module_utils._wiring import status_report
from ansible_collections.offsite.zfs.plugins.module_utils.ops.prune.run import prune_dataset
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store


@pytest.fixture
def pool(zfs_daemon, tmp_path):
    created = UnmountedPool(tmp_path)
    yield created
    created.destroy()


@pytest.fixture(params=["local", "s3"])
def ledger_lab(request, lab):
    if request.param == "s3":
        lab.add_s3(request.getfixturevalue("s3"))
    lab.config["defaults"]["providers"] = [request.param]
    lab.provider = request.param
    return lab


def _found(lab, *codes):
    problems = status_report(lab.config, {})["problems"]
    return [(p["code"], p["severity"], p["backup"]) for p in problems if p["code"] in codes]


def _backups(lab, *names):
    ds = lab.pool.create("data")
    ids = []
    for name in names:
        lab.pool.snapshot(ds, name)
        ids.append(lab.backup(ds, name, full=True)["providers"][lab.provider]["backup_id"])
    return ds, ids


CODES = ("backup_vanished", "manifest_changed", "ledger_reset")


def test_status_flags_a_deleted_and_a_rolled_back_backup(ledger_lab):
    lab = ledger_lab
    ds, (first, second) = _backups(lab, "s1", "s2")
    path = ledger.path_of(lab.config["state_dir"], "testhost", lab.provider, ds)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    assert _found(lab, *CODES) == []
    store = Store(lab.settings(ds).providers[lab.provider])
    second_dir = catalog.backup_dir("testhost", ds, second)
    older = store.get_bytes(second_dir + "/manifest.json")
    # Rollback: s2 is backed up again (a new manifest), then someone puts the older manifest back.
    store.purge(second_dir)
    assert ("backup_vanished", "critical", second) in _found(lab, *CODES)
    lab.backup(ds, "s2", full=True)
    assert _found(lab, *CODES) == []
    store.put_bytes(second_dir + "/manifest.json", older)
    assert _found(lab, *CODES) == [("manifest_changed", "critical", second)]
    # Deletion of the whole backup directory of s1.
    store.purge(catalog.backup_dir("testhost", ds, first))
    found = _found(lab, *CODES)
    assert ("backup_vanished", "critical", first) in found and ("manifest_changed", "critical", second) in found
    report = status_report(lab.config, {})
    assert report["datasets"][ds]["health"] == "critical"
    message = next(p["message"] for p in report["problems"] if p["code"] == "backup_vanished")
    assert first in message and lab.provider in message


def test_a_reset_ledger_is_reported_and_the_next_backup_starts_a_new_one(ledger_lab):
    lab = ledger_lab
    ds, (first,) = _backups(lab, "s1")
    shutil.rmtree(os.path.join(lab.config["state_dir"], "ledger"))  # the state directory was replaced
    assert [(c, s) for c, s, _b in _found(lab, *CODES)] == [("ledger_reset", "warning")]
    lab.pool.snapshot(ds, "s2")
    lab.backup(ds, "s2")
    assert _found(lab, *CODES) == []
    Store(lab.settings(ds).providers[lab.provider]).purge(catalog.backup_dir("testhost", ds, first))
    assert ("backup_vanished", "critical", first) in _found(lab, *CODES)  # seeded from the listing


def test_the_hosts_own_prune_is_not_a_disappearance(ledger_lab):
    lab = ledger_lab
    ds, (first, second) = _backups(lab, "s1", "s2")
    result = prune_dataset(lab.settings(ds), check_mode=False, keep={"last": 1})
    assert [d["backup_id"] for d in result["providers"][lab.provider]["deleted"]] == [first], result
    assert _found(lab, *CODES) == []
