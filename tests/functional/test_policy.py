"""Policy convergence on a real pool and remotes, and through real ansible-playbook runs (role, playbooks)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import harness

from ansible_collections.offsite.zfs.plugins.module_utils.config import load
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.converge import converge, converge_dataset
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.tree import run_tree_backup
from ansible_collections.offsite.zfs.plugins.module_utils.selection import tree_of

STAMP = re.compile(r"^offsite-\d{8}T\d{6}Z$")


def fill(lab, dataset: str, seed: int, size: int = 256 << 10, name: str = "data.bin") -> None:
    harness.write_data(lab.pool.mountpoint(dataset), seed, size, name)


def backup_ids(remote: Path, dataset: str) -> list:
    base = remote / "testhost" / dataset
    return sorted(p.name[1:] for p in base.iterdir() if p.name.startswith("@")) if base.exists() else []


def test_converge_snapshots_only_when_due_and_a_second_run_changes_nothing(lab):
    ds = lab.pool.create("data")
    lab.add_local("second")
    fill(lab, ds, 1)
    lab.pool.snapshot(ds, "manual")  # the user's own snapshot does not count as the policy's
    lab.config["datasets"] = {ds: {"every": "1d", "full_every": "30d"}}
    start = time.time()
    first = converge_dataset(lab.settings(ds), now=start)
    assert first["due"] is True and first["changed"] is True and first["snapshot_created"] is True
    assert STAMP.match(first["snapshot"])
    assert {p: e["status"] for p, e in first["providers"].items()} == {"local": "uploaded", "second": "uploaded"}
    assert first["providers"]["local"]["kind"] == "full"
    second = converge_dataset(lab.settings(ds), now=start + 60)
    assert second["due"] is False and second["changed"] is False and second["snapshot_created"] is False
    assert second["snapshot"] == first["snapshot"]
    assert {e["status"] for e in second["providers"].values()} == {"present"}
    assert sorted(lab.pool.snapshots(ds)) == sorted(["manual", first["snapshot"]])
    # A day later it is due again: a new snapshot, incremental from the first.
    fill(lab, ds, 2, name="more.bin")
    third = converge_dataset(lab.settings(ds), now=start + 86400 + 600)
    assert third["due"] is True and third["snapshot"] != first["snapshot"]
    assert third["providers"]["local"]["kind"] == "incremental"
    assert third["providers"]["local"]["base"] == first["snapshot"]
    assert len(backup_ids(lab.remotes["second"], ds)) == 2


def test_at_sets_the_time_of_day_a_daily_snapshot_is_due(lab):
    # every: 1d at a time two hours from now: a run then is due, though the newest snapshot is only 2h old
    # (the 1.0.0 rule, age >= every, said not due for another 22h).
    ds = lab.pool.create("data")
    fill(lab, ds, 4)
    start = time.time()
    at = time.strftime("%H:%MZ", time.gmtime(start + 7200))
    lab.config["datasets"] = {ds: {"every": "1d", "at": at, "providers": ["local"]}}
    first = converge_dataset(lab.settings(ds), now=start)
    assert first["due"] is True and first["snapshot_created"] is True
    second = converge_dataset(lab.settings(ds), now=start + 60)
    assert second["due"] is False and "(every 1d at %s; next due from " % at in second["reason"]
    third = converge_dataset(lab.settings(ds), now=start + 7200 + 60)
    assert third["due"] is True and third["snapshot_created"] is True, third["reason"]
    assert third["providers"]["local"]["kind"] == "incremental"


def test_a_provider_that_missed_the_newest_snapshot_catches_up_without_a_new_snapshot(lab):
    ds = lab.pool.create("data")
    fill(lab, ds, 3)
    lab.config["datasets"] = {ds: {"providers": ["local"]}}
    start = time.time()
    first = converge_dataset(lab.settings(ds), now=start)
    lab.add_local("late")
    lab.config["datasets"] = {ds: {"providers": ["local", "late"]}}
    catch_up = converge_dataset(lab.settings(ds), now=start + 120)
    assert catch_up["due"] is False and catch_up["changed"] is True
    assert catch_up["providers"]["local"]["status"] == "present"
    assert catch_up["providers"]["late"]["status"] == "uploaded"
    assert catch_up["providers"]["late"]["full_reason"] == "the provider has no backup of this dataset yet"
    assert catch_up["snapshot"] == first["snapshot"]


def test_full_every_incrementals_caps_the_chain(lab):
    ds = lab.pool.create("data")
    lab.config["datasets"] = {ds: {"every": "1h", "full_every": {"incrementals": 1}}}
    start = time.time()
    kinds = []
    for step in range(4):
        fill(lab, ds, 10 + step, name="f%d.bin" % step)
        result = converge_dataset(lab.settings(ds), now=start + step * (3600 + 600))
        kinds.append(result["providers"]["local"]["kind"])
    assert kinds == ["full", "incremental", "full", "incremental"]
    restored = lab.restore(ds, target=lab.pool.name + "/r")
    assert len(restored["chain"]) == 2


def test_full_every_duration(lab):
    ds = lab.pool.create("data")
    lab.config["datasets"] = {ds: {"every": "1d", "full_every": "3d"}}
    start = time.time()
    kinds = []
    for step in range(3):
        fill(lab, ds, 20 + step, name="f%d.bin" % step)
        result = converge_dataset(lab.settings(ds), now=start + step * 2 * 86400)
        kinds.append((result["providers"]["local"]["kind"], result["providers"]["local"]["full_reason"]))
    assert kinds[0] == ("full", "the provider has no backup of this dataset yet")
    assert kinds[1] == ("incremental", None)
    assert kinds[2][0] == "full" and kinds[2][1].startswith("the newest full backup is 4d old (full_every 3d)")


def test_check_mode_plans_and_touches_nothing(lab):
    ds = lab.pool.create("data")
    fill(lab, ds, 4)
    lab.config["datasets"] = {ds: {}}
    result = converge(lab.settings, [ds], check_mode=True)
    entry = result["datasets"][ds]
    assert result["changed"] is True and entry["due"] is True
    assert entry["providers"]["local"]["status"] == "planned"
    assert entry["providers"]["local"]["kind"] == "full"
    assert lab.pool.snapshots(ds) == []
    assert backup_ids(lab.remotes["local"], ds) == []


def test_one_failing_dataset_does_not_stop_the_others(lab):
    ds = lab.pool.create("data")
    fill(lab, ds, 5)
    missing = lab.pool.name + "/nope"
    lab.config["datasets"] = {missing: {}, ds: {}}
    result = converge(lab.settings, [missing, ds])
    assert result["failed_datasets"] == [missing]
    assert result["datasets"][missing]["message"] == "The dataset %s does not exist on this host." % missing
    assert result["datasets"][ds]["providers"]["local"]["status"] == "uploaded"


def test_a_recursive_policy_converges_the_tree_and_prune_covers_it(lab):
    root = lab.pool.create("home")
    child = lab.pool.create("home/alice")
    cache = lab.pool.create("home/cache")
    for number, ds in enumerate((root, child, cache)):
        fill(lab, ds, 70 + number, size=64 << 10)
    lab.config["datasets"] = {root: {"recursive": True, "exclude": ["cache"], "keep": {"last": 1}}}

    def tree_backup(name, **kwargs):
        return run_tree_backup(lab.settings, name, **kwargs)

    start = time.time()
    first = converge(lab.settings, [root], now=start, tree_backup=tree_backup)
    entry = first["datasets"][root]
    assert first["changed"] is True and entry["due"] is True and first["failed_datasets"] == []
    assert sorted(entry["datasets"]) == sorted([root, child]) and entry["excluded"] == [cache]
    assert backup_ids(lab.remotes["local"], child) and not backup_ids(lab.remotes["local"], cache)
    second = converge(lab.settings, [root], now=start + 60, tree_backup=tree_backup)
    assert second["changed"] is False and second["datasets"][root]["due"] is False
    assert tree_of(lab.settings(root)) == [root, child]


def test_a_recursive_policy_applies_full_every_to_each_child(lab):
    root = lab.pool.create("proj")
    child = lab.pool.create("proj/db")
    lab.config["datasets"] = {root: {"recursive": True, "every": "1h", "full_every": {"incrementals": 1}}}

    def tree_backup(name, **kwargs):
        return run_tree_backup(lab.settings, name, **kwargs)

    start = time.time()
    kinds = []
    for step in range(3):
        fill(lab, child, 80 + step, size=64 << 10, name="f%d.bin" % step)
        result = converge(lab.settings, [root], now=start + step * (3600 + 600), tree_backup=tree_backup)
        assert result["failed_datasets"] == [], result["msg"]
        entry = result["datasets"][root]["datasets"][child]["providers"]["local"]
        kinds.append((entry["kind"], entry["full_reason"]))
    # Without a per-child decision the third run would make a second incremental.
    assert [k for k, _reason in kinds] == ["full", "incremental", "full"]
    assert kinds[2][1] == "the newest chain has 1 incrementals (full_every: {incrementals: 1})"
    assert len(backup_ids(lab.remotes["local"], child)) == 3
    restored = lab.restore(child, target=lab.pool.name + "/db-restored")
    assert len(restored["chain"]) == 1


# -- through Ansible ------------------------------------------------------------------------------
def _policy(lab, ds: str) -> dict:
    config = json.loads(json.dumps(lab.config))
    config["defaults"].update({"every": "1d", "keep": {"last": 1}})
    config["datasets"] = {ds: {}}
    return config


def _recap_changed(output: str) -> int:
    match = re.search(r"localhost\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0", output)
    assert match, output[-3000:]
    return int(match.group(1))


def _role_vars(lab, tmp_path: Path, ds: str, **extra) -> dict:
    return dict({"offsite_policy": _policy(lab, ds), "offsite_config_path": str(tmp_path / "etc" / "offsite.yml"),
                 "offsite_install_dependencies": False}, **extra)


def test_backup_playbook_twice_then_prune_playbook_check_and_real(lab, ansible, tmp_path):
    ds = lab.pool.create("data")
    fill(lab, ds, 6)
    extra = _role_vars(lab, tmp_path, ds)
    first = ansible.run_playbook(Path("offsite.zfs.backup"), extra_vars=extra)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    # the config directory and file, the manifest signing key (issue 17), then the backup
    assert _recap_changed(first.stdout) == 4, first.stdout[-3000:]
    config_file = tmp_path / "etc" / "offsite.yml"
    assert oct(os.stat(config_file).st_mode & 0o777) == "0o600"
    assert oct(os.stat(config_file.parent).st_mode & 0o777) == "0o700"
    assert load(str(config_file), needed=True) == extra["offsite_policy"]
    ids = backup_ids(lab.remotes["local"], ds)
    assert len(ids) == 1 and ids[0].endswith("+full")
    second = ansible.run_playbook(Path("offsite.zfs.backup"), extra_vars=extra)
    assert second.returncode == 0, second.stdout[-3000:]
    assert _recap_changed(second.stdout) == 0
    assert backup_ids(lab.remotes["local"], ds) == ids

    # Two more backups: a new full, and an incremental on it.
    for step in range(2):
        fill(lab, ds, 60 + step, name="g%d.bin" % step)
        lab.pool.snapshot(ds, "extra%d" % step)
        lab.backup(ds, "extra%d" % step, full=step == 0)
    ids = backup_ids(lab.remotes["local"], ds)
    assert len(ids) == 3
    policy_id = next(i for i in ids if i.startswith("offsite-"))
    prune_vars = {"offsite_config_path": str(config_file)}
    plan = ansible.run_playbook(Path("offsite.zfs.prune"), extra_vars=prune_vars, args=["--check", "--diff"])
    assert plan.returncode == 0, plan.stdout[-3000:]
    assert _recap_changed(plan.stdout) == 1
    assert "-@%s  (delete: not selected by keep (last 1))" % policy_id in plan.stdout, plan.stdout[-3000:]
    assert len(backup_ids(lab.remotes["local"], ds)) == 3
    done = ansible.run_playbook(Path("offsite.zfs.prune"), extra_vars=prune_vars)
    assert done.returncode == 0, done.stdout[-3000:]
    left = backup_ids(lab.remotes["local"], ds)
    assert policy_id not in left and len(left) == 2  # extra1 and its base extra0 stay
    again = ansible.run_playbook(Path("offsite.zfs.prune"), extra_vars=prune_vars)
    assert _recap_changed(again.stdout) == 0

    status = ansible.run_playbook(Path("offsite.zfs.status"), extra_vars=prune_vars)
    assert status.returncode == 0, status.stdout[-3000:]
    assert "extra1" in status.stdout and _recap_changed(status.stdout) == 0
    target = lab.pool.name + "/drill"
    restore = ansible.run_playbook(Path("offsite.zfs.restore"), extra_vars=dict(
        prune_vars, offsite_dataset=ds, offsite_target=target, offsite_identity_file=str(lab.key.path)))
    assert restore.returncode == 0, restore.stdout[-3000:]
    assert harness.tree_digest(lab.pool.mountpoint(target)) == harness.tree_digest(lab.pool.mountpoint(ds))
    missing = ansible.run_playbook(Path("offsite.zfs.restore"), extra_vars=prune_vars)
    assert missing.returncode != 0 and "Set offsite_dataset" in missing.stdout


def test_a_bad_policy_fails_on_the_controller_before_the_host_is_touched(lab, ansible, tmp_path):
    ds = lab.pool.create("data")
    extra = _role_vars(lab, tmp_path, ds)
    extra["offsite_policy"]["datasets"] = {"tank/photos": {"keep": {"daily": -1}}}
    run = ansible.run_playbook(Path("offsite.zfs.backup"), extra_vars=extra)
    assert run.returncode != 0
    assert ('The policy offsite_policy is not valid: datasets[\\"tank/photos\\"].keep.daily: must be >= 0.'
            in run.stdout), run.stdout[-3000:]
    assert not (tmp_path / "etc").exists()
    assert lab.pool.snapshots(ds) == []


def test_role_installs_a_timer_whose_script_converges_without_ansible(lab, ansible, tmp_path):
    ds = lab.pool.create("data")
    fill(lab, ds, 8)
    secret = "[vault]\ntype = local\n# token-%s\n" % os.urandom(8).hex()
    extra = _role_vars(lab, tmp_path, ds, offsite_timer=True, offsite_timer_enable=False,  # prunes by default
                       offsite_lib_dir=str(tmp_path / "lib"), offsite_systemd_dir=str(tmp_path / "systemd"),
                       offsite_rclone_config=secret, offsite_rclone_config_path=str(tmp_path / "etc" / "rclone.conf"))
    playbook = tmp_path / "site.yml"
    playbook.write_text("- hosts: all\n  gather_facts: false\n  roles: [offsite.zfs.offsite]\n")
    run = ansible.run_playbook(playbook, extra_vars=extra, args=["--diff", "-v"])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    rclone_conf = tmp_path / "etc" / "rclone.conf"
    assert rclone_conf.read_text() == secret and oct(os.stat(rclone_conf).st_mode & 0o777) == "0o600"
    assert secret.split("# ")[1].strip() not in run.stdout + run.stderr
    service = (tmp_path / "systemd" / "offsite-converge.service").read_text()
    assert "--config %s --prune" % extra["offsite_config_path"] in service
    assert "OnCalendar=hourly" in (tmp_path / "systemd" / "offsite-converge.timer").read_text()
    exec_start = next(line for line in service.splitlines() if line.startswith("ExecStart="))[len("ExecStart="):]
    argv = exec_start.split()
    env = dict(os.environ, PATH="%s:%s" % (Path(lab.rclone).parent, os.environ.get("PATH", "")))
    first = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, check=False)
    assert first.returncode == 0, first.stdout + first.stderr
    result = json.loads(first.stdout)
    assert result["changed"] is True and result["datasets"][ds]["providers"]["local"]["status"] == "uploaded"
    assert result["prune"][ds]["providers"]["local"]["status"] == "unchanged"
    second = json.loads(subprocess.run(argv, stdout=subprocess.PIPE, text=True, env=env, check=True).stdout)
    assert second["changed"] is False


def test_offsite_backup_policy_mode_ad_hoc(lab, ansible):
    ds = lab.pool.create("data")
    fill(lab, ds, 9)
    lab.config["datasets"] = {ds: {}}
    config = str(lab.config_path)
    plan = ansible.module("offsite_backup", {"config": config}, check=True)
    assert plan["_rc"] == 0 and plan["changed"] is True, plan.get("msg")
    assert plan["datasets"][ds]["due"] is True
    assert plan["datasets"][ds]["providers"]["local"]["status"] == "planned"
    assert lab.pool.snapshots(ds) == [] and backup_ids(lab.remotes["local"], ds) == []
    mixed = ansible.module("offsite_backup", {"config": config, "policy": True, "snapshot": "s1"})
    assert mixed["_rc"] != 0
    assert mixed["msg"] == ("snapshot cannot be combined with policy mode; the policy decides it (or pass dataset "
                            "without policy).")
    other = ansible.module("offsite_backup", {"config": config, "datasets": [lab.pool.name + "/other"]})
    assert other["_rc"] != 0 and other["error_code"] == "not_in_policy"
    assert other["msg"].startswith("The dataset %s/other is not in the policy (datasets: %s)" % (lab.pool.name, ds))
