"""The default namespace is unique (host_name / FQDN); a host whose backups are in its 1.0 short-name namespace
keeps that one and says so; another host with the same short name never joins it (real zfs, rclone, ansible)."""

from __future__ import annotations

import json
from pathlib import Path

import harness
import pytest
import yaml

from ansible_collections.offsite.zfs.plugins.module_utils import namespaces
from ansible_collections.offsite.zfs.plugins.module_utils._wiring import status_report
from ansible_collections.offsite.zfs.plugins.module_utils.ops.prune.run import prune_dataset


@pytest.fixture(autouse=True)
def _fresh_decisions():
    namespaces.forget()
    yield
    namespaces.forget()


def _namespaces(remote: Path):
    return sorted(p.name for p in remote.iterdir())


def test_a_host_keeps_its_short_name_namespace_and_another_host_gets_its_own(lab, ansible):
    short = namespaces.short_name()
    unique = short + ".a.example.test"
    ds = lab.pool.create("data")
    harness.write_data(lab.pool.mountpoint(ds), 3, 64 << 10)
    # Before: backups in the short-name namespace (the 1.0 default), with this host's id.
    lab.config["namespace"] = short
    assert lab.backup(ds, snapshot="s1", create=True)["failed_providers"] == []
    del lab.config["namespace"]
    lab.config["host_name"] = unique

    settings = lab.settings(ds)
    assert settings.namespace == short and unique in settings.namespace_note
    second = lab.backup(ds, snapshot="s2", create=True)
    assert second["namespace"] == short and second["providers"]["local"]["kind"] == "incremental", second
    assert _namespaces(lab.remotes["local"]) == [short], "nothing was written below the new default"
    assert namespaces.notes() and "holds this host's backups (1 on local)" in namespaces.notes()[0]
    recorded = json.loads((Path(lab.config["state_dir"]) / "namespace.json").read_text())
    assert recorded["namespace"] == short
    status = status_report(lab.config, {})
    assert status["namespace"] == short and status["datasets"][ds]["backup_count"] == 2
    assert not [p for p in status["problems"] if p["code"] in ("foreign_host", "nothing_offsite")], status["msg"]

    # Through ansible: the module says so in a warning.
    result = ansible.module("offsite_status", {"config": str(lab.config_path)})
    assert result["namespace"] == short, result
    assert "Using the namespace %s" % short in result["_stdout"] + result["_stderr"]

    # Another host with the same short name (its own state dir: its own id) does not join it.
    namespaces.forget()
    config_a = dict(lab.config)
    lab.config = dict(lab.config, state_dir=str(lab.tmp / "state-b"), host_name=short + ".b.example.test")
    other = lab.backup(ds, snapshot="b1", create=True)
    assert other["namespace"] == short + ".b.example.test" and other["failed_providers"] == [], other["msg"]
    assert other["providers"]["local"]["kind"] == "full"
    assert namespaces.notes() == []
    pruned = prune_dataset(lab.settings(ds), check_mode=False, keep={"last": 1})
    assert pruned["failed_providers"] == [] and pruned["providers"]["local"]["deleted"] == []
    assert sorted(_namespaces(lab.remotes["local"])) == sorted([short, short + ".b.example.test"])
    lab.config = config_a
    namespaces.forget()
    assert lab.settings(ds).namespace == short, "host a stays where its history is"


def test_the_role_writes_the_inventory_name_as_host_name_unless_the_policy_names_one(lab, ansible, tmp_path):
    policy_vars = json.loads(json.dumps(lab.config))
    del policy_vars["namespace"]
    config_path = tmp_path / "etc" / "offsite.yml"
    playbook = tmp_path / "site.yml"
    playbook.write_text("- hosts: all\n  gather_facts: false\n  roles: [offsite.zfs.offsite]\n")
    extra = {"offsite_policy": policy_vars, "offsite_config_path": str(config_path),
             "offsite_install_dependencies": False, "offsite_signing": False}
    run = ansible.run_playbook(playbook, extra_vars=extra)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    written = yaml.safe_load(config_path.read_text())
    assert written["host_name"] == "localhost" and "namespace" not in written
    assert dict(written, host_name=None) == dict(policy_vars, host_name=None)
    policy_vars["namespace"] = "nas1"
    run = ansible.run_playbook(playbook, extra_vars=extra)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "host_name" not in yaml.safe_load(config_path.read_text()), "the policy's namespace says it all"


def test_the_delegated_prune_acts_as_the_backup_host_in_its_namespace(lab, ansible, tmp_path):
    del lab.config["namespace"]
    lab.config["host_name"] = "nas1.example.test"
    ds = lab.pool.create("data")
    for number in (1, 2):
        harness.write_data(lab.pool.mountpoint(ds), number, 64 << 10, "f%d.bin" % number)
        done = lab.backup(ds, snapshot="s%d" % number, create=True, full=True)
        assert done["namespace"] == "nas1.example.test" and done["failed_providers"] == [], done["msg"]
    namespaces.forget()
    assert lab.settings(ds).namespace == "nas1.example.test"  # settled: recorded for the prune host to read
    state = Path(lab.config["state_dir"])
    assert json.loads((state / "namespace.json").read_text())["namespace"] == "nas1.example.test"
    prune_config = harness.write_config(tmp_path / "prune.yml", dict(lab.config, state_dir=str(tmp_path / "unused")))
    prune_state = tmp_path / "prune-state"
    run = ansible.run_playbook(Path("offsite.zfs.prune"), extra_vars={
        "offsite_prune_host": "localhost", "offsite_prune_config_path": str(prune_config),
        "offsite_state_dir": str(state), "offsite_prune_state_dir": str(prune_state), "offsite_keep": {"last": 1},
        "offsite_datasets": [ds]})
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert (prune_state / "host-id").read_text() == (state / "host-id").read_text(), "the prune acts as the host"
    left = sorted(p.name for p in (lab.remotes["local"] / "nas1.example.test" / ds).iterdir())
    assert len(left) == 1 and left[0].startswith("@s2+"), left
