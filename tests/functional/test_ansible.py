"""The modules through real `ansible` and `ansible-playbook` runs, from a built and installed tarball."""

from __future__ import annotations

import json
from pathlib import Path

import harness


def test_adhoc_backup_incremental_and_restore(lab, ansible):
    ds = lab.pool.create("data")
    harness.write_data(lab.pool.mountpoint(ds), 31, 1 << 20)
    lab.pool.snapshot(ds, "daily-1")
    config = str(lab.config_path)
    first = ansible.module("offsite_backup", {"dataset": ds + "@daily-1", "config": config})
    assert first["_rc"] == 0, first["_stdout"]
    assert first["changed"] is True
    assert first["providers"]["local"]["kind"] == "full"
    # create=true takes the snapshot; the backup is incremental from daily-1.
    harness.write_data(lab.pool.mountpoint(ds), 32, 256 << 10, "more.bin")
    second = ansible.module("offsite_backup", {"dataset": ds, "snapshot": "before-upgrade", "create": True,
                                               "config": config})
    assert second["_rc"] == 0, second["_stdout"]
    assert second["snapshot_created"] is True
    assert second["providers"]["local"]["kind"] == "incremental"
    assert second["providers"]["local"]["base"] == "daily-1"
    assert "before-upgrade" in lab.pool.snapshots(ds)
    # Idempotent.
    again = ansible.module("offsite_backup", {"dataset": ds + "@before-upgrade", "config": config})
    assert again["_rc"] == 0 and again["changed"] is False
    # Restore the latest to another target (the old --as).
    target = lab.pool.name + "/recovered"
    restored = ansible.module("offsite_restore", {"dataset": ds, "target": target, "config": config,
                                                  "identity_file": str(lab.key.path)})
    assert restored["_rc"] == 0, restored["_stdout"]
    assert restored["snapshot"] == "before-upgrade" and len(restored["chain"]) == 2
    assert harness.tree_digest(lab.pool.mountpoint(ds)) == harness.tree_digest(lab.pool.mountpoint(target))
    again = ansible.module("offsite_restore", {"dataset": ds, "target": target, "config": config,
                                               "identity_file": str(lab.key.path)})
    assert again["_rc"] == 0 and again["changed"] is False


def test_check_mode_plans_and_changes_nothing(lab, ansible):
    ds = lab.pool.create("data")
    harness.write_data(lab.pool.mountpoint(ds), 33, 512 << 10)
    lab.pool.snapshot(ds, "s1")
    config = str(lab.config_path)
    plan = ansible.module("offsite_backup", {"dataset": ds + "@s1", "config": config}, check=True)
    assert plan["_rc"] == 0, plan["_stdout"]
    assert plan["providers"]["local"]["status"] == "planned"
    assert plan["providers"]["local"]["estimated_bytes"] > 0
    assert not any((lab.remotes["local"]).rglob("manifest.json"))
    created = ansible.module("offsite_backup", {"dataset": ds, "snapshot": "new", "create": True,
                                                "config": config}, check=True)
    assert created["_rc"] == 0 and created["changed"] is True
    assert "new" not in lab.pool.snapshots(ds)
    ansible.module("offsite_backup", {"dataset": ds + "@s1", "config": config})
    restore_plan = ansible.module("offsite_restore", {"dataset": ds, "target": lab.pool.name + "/plan",
                                                      "config": config}, check=True)
    assert restore_plan["_rc"] == 0, restore_plan["_stdout"]
    assert restore_plan["plan"][0]["kind"] == "full"
    assert not lab.pool.exists(lab.pool.name + "/plan")


def test_errors_are_one_clear_sentence(lab, ansible):
    ds = lab.pool.create("data")
    lab.pool.snapshot(ds, "s1")
    config = str(lab.config_path)
    unknown = ansible.module("offsite_backup", {"dataset": ds + "@s1", "config": config, "providers": "b2"})
    assert unknown["_rc"] != 0 and unknown["failed"] is True
    assert unknown["msg"].startswith("The provider b2 is not configured")
    hostile = ansible.module("offsite_backup", {"dataset": "tank/data; rm -rf /", "config": config})
    assert hostile["failed"] is True and "not valid" in hostile["msg"]
    missing = ansible.module("offsite_backup", {"dataset": ds + "@nosuch", "config": config})
    assert missing["failed"] is True and "does not exist" in missing["msg"]
    no_key = ansible.module("offsite_restore", {"dataset": ds, "target": lab.pool.name + "/x", "config": config})
    assert no_key["failed"] is True and "identity" in no_key["msg"]
    bad_config = ansible.module("offsite_backup", {"dataset": ds + "@s1", "config": str(lab.tmp / "nope.yml")})
    assert bad_config["failed"] is True and "does not exist" in bad_config["msg"]


def test_playbook_backup_and_restore_drill(lab, ansible, tmp_path):
    ds = lab.pool.create("data")
    harness.write_data(lab.pool.mountpoint(ds), 34, 1 << 20)
    lab.pool.snapshot(ds, "s1")
    lab.add_local("mirror")
    playbook = tmp_path / "drill.yml"
    playbook.write_text("""
- name: Offsite backup and restore drill
  hosts: all
  gather_facts: false
  module_defaults:
    group/offsite.zfs.offsite:
      config: "{{ cfg }}"
  tasks:
    - name: Back up to every provider
      offsite.zfs.offsite_backup:
        dataset: "{{ ds }}@s1"
        providers: all
      register: backup
    - name: Restore from whichever provider has it
      offsite.zfs.offsite_restore:
        dataset: "{{ ds }}"
        target: "{{ target }}"
        provider: auto
        identity_file: "{{ key }}"
      register: restore
    - name: Record the results
      ansible.builtin.copy:
        content: "{{ {'backup': backup, 'restore': restore} | to_json }}"
        dest: "{{ out }}"
        mode: "0600"
""")
    out = tmp_path / "out.json"
    proc = ansible.run_playbook(playbook, {"cfg": str(lab.config_path), "ds": ds, "target": lab.pool.name + "/drill",
                                           "key": str(lab.key.path), "out": str(out)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(out.read_text())
    assert set(data["backup"]["providers"]) == {"local", "mirror"}
    assert data["restore"]["provider"] == "local"
    assert harness.tree_digest(lab.pool.mountpoint(ds)) == harness.tree_digest(
        lab.pool.mountpoint(lab.pool.name + "/drill"))


def test_ansible_doc_renders(ansible):
    for module in ("offsite_backup", "offsite_restore"):
        proc = harness.run([str(Path(ansible.ansible).parent / "ansible-doc") if Path(
            ansible.ansible).is_absolute() else "ansible-doc", "offsite.zfs.%s" % module], env=ansible.env())
        assert "OPTIONS" in proc.stdout and "dataset" in proc.stdout and "RETURN VALUES" in proc.stdout
