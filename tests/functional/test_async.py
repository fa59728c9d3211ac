"""Ansible async (issue 5): `async: 86400, poll: 0` + `async_status` for backup and restore.

A real ansible-playbook runs in the background. Uploads (then downloads) wait at a gate in
the fault-injecting rclone, so the test can look at the running job: its progress state
file, its log file and offsite_status, before it opens the gate.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import harness
from faulty_rclone import Rule, Wrapper
from reliability import same_tree, wait_for

from ansible_collections.offsite.zfs.plugins.module_utils import progress

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Back up in the background
      offsite.zfs.offsite_backup:
        dataset: "{{ dataset }}@s1"
        config: "{{ config }}"
      async: 86400
      poll: 0
      register: backup_job

    - name: Wait for the backup
      ansible.builtin.async_status:
        jid: "{{ backup_job.ansible_job_id }}"
      register: backup_result
      until: backup_result.finished
      retries: 900
      delay: 1

    - name: Restore in the background
      offsite.zfs.offsite_restore:
        dataset: "{{ dataset }}@s1"
        target: "{{ target }}"
        identity_file: "{{ identity_file }}"
        config: "{{ config }}"
      async: 86400
      poll: 0
      register: restore_job

    - name: Wait for the restore
      ansible.builtin.async_status:
        jid: "{{ restore_job.ansible_job_id }}"
      register: restore_result
      until: restore_result.finished
      retries: 900
      delay: 1

    - name: Keep the results for the test
      ansible.builtin.copy:
        content: "{{ {'backup': backup_result, 'restore': restore_result} | to_json }}"
        dest: "{{ results }}"
        mode: "0600"
"""


def _running(state_dir: Path, operation: str):
    return next((s for s in progress.running_states(str(state_dir)) if s.get("operation") == operation), None)


def _logged(state) -> bool:
    return bool(state) and Path(state["log"]).exists() and "Processing chunk" in Path(state["log"]).read_text()


def _progress(state_dir: Path, operation: str):
    """The running operation's state once its log shows a chunk, else None."""
    state = _running(state_dir, operation)
    return state if _logged(state) else None


def test_async_backup_and_restore_with_progress(lab, ansible, tmp_path):
    ds = lab.pool.create("data")
    harness.write_data(lab.pool.mountpoint(ds), 501, 768 << 10)
    lab.pool.snapshot(ds, "s1")
    upload_gate, download_gate = tmp_path / "uploads-open", tmp_path / "downloads-open"
    wrapper = Wrapper.create(tmp_path / "bin", lab.rclone, [
        Rule(verbs=["copyto"], after=3, every=1, action="gate", gate=str(upload_gate)),
        Rule(verbs=["cat"], after=3, every=1, action="gate", gate=str(download_gate)),
    ])
    lab.config["rclone"] = str(wrapper.path)
    config = str(lab.config_path)
    state_dir = lab.tmp / "state"
    target = lab.pool.name + "/copy"
    playbook = tmp_path / "async.yml"
    playbook.write_text(PLAYBOOK)
    results = tmp_path / "results.json"
    extra = {"dataset": ds, "config": config, "target": target, "identity_file": str(lab.key.path),
             "results": str(results)}
    argv = [ansible.playbook, "-i", "localhost,", "-c", "local", str(playbook), "-e", json.dumps(extra)]
    run = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ansible.env())
    try:
        # The backup runs detached from the playbook: its state file and log show its progress.
        state = wait_for(lambda: _progress(state_dir, "backup"),
                         "the async backup to report progress", timeout=300, child=run)
        assert state["dataset"] == ds and state["provider"] == "local" and state["chunks_estimated"] >= 1
        assert state["pid"] != run.pid
        log_text = Path(state["log"]).read_text()
        assert "backup of %s started" % ds in log_text and "Processing chunk 1 of ~" in log_text
        status = ansible.module("offsite_status", {"config": config})
        running = [r for r in status["running"] if r["operation"] == "backup"]
        assert running and running[0]["dataset"] == ds and running[0]["pid"] == state["pid"], status["running"]
        assert running[0]["log_file"] == state["log"]
        assert run.poll() is None, "the playbook is polling async_status"
        upload_gate.touch()
        state = wait_for(lambda: _progress(state_dir, "restore"),
                         "the async restore to report progress", timeout=300, child=run)
        assert state["dataset"] == target and state["provider"] == "local"
        assert not lab.pool.exists(target)
        status = ansible.module("offsite_status", {"config": config})
        assert any(r["operation"] == "restore" and r["pid"] == state["pid"] for r in status["running"])
    finally:
        upload_gate.touch()
        download_gate.touch()
    output, _errors = run.communicate(timeout=600)
    assert run.returncode == 0, output[-3000:]
    data = json.loads(results.read_text())
    assert data["backup"]["finished"] and data["backup"]["changed"] is True
    assert data["backup"]["providers"]["local"]["status"] == "uploaded"
    assert data["restore"]["finished"] and data["restore"]["changed"] is True
    assert same_tree(lab, ds, target)
    assert progress.running_states(str(state_dir)) == []
    # The log files stay behind and say how each run ended.
    logs = sorted((lab.tmp / "log").glob("*.log"))
    assert any("finished after" in p.read_text() for p in logs if p.name.startswith("backup-"))
    assert any("finished after" in p.read_text() for p in logs if p.name.startswith("restore-"))
