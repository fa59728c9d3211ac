"""An interrupted ansible-playbook: what happens to the module on the host, and what the next run sees.

ansible-core runs each task in a worker process in its own session (os.setsid). Killed hard (kill -9 of
ansible-playbook, a lost controller) nothing reaches the module: it goes on, a later run names the running
operation and its PID (from the lock file), and the host ends with a complete backup. Ctrl-C or SIGTERM
is different: ansible-core forwards the signal to each worker, which passes it to its process group, so
the module (or, over SSH, the ssh client) stops; the next run resumes the upload from the journal.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess

from faulty_rclone import Rule, Wrapper
from reliability import wait_for

from ansible_collections.offsite.zfs.plugins.module_utils import progress
from ansible_collections.offsite.zfs.plugins.module_utils.common import pid_alive

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Back up
      offsite.zfs.offsite_backup:
        dataset: "{{ dataset }}@s1"
        config: "{{ config }}"
"""


def _start(lab, ansible, tmp_path):
    """A playbook whose backup is held at its first upload (the pool's root dataset: no dataset to create)."""
    dataset = lab.pool.name
    lab.pool.snapshot(dataset, "s1")
    gate = tmp_path / "uploads-open"
    wrapper = Wrapper.create(tmp_path / "bin", lab.rclone, [
        Rule(verbs=["copyto", "rcat"], after=0, every=1, action="gate", gate=str(gate))])
    lab.config["rclone"] = str(wrapper.path)
    config = str(lab.config_path)
    playbook = tmp_path / "backup.yml"
    playbook.write_text(PLAYBOOK)
    argv = [ansible.playbook, "-i", "localhost,", "-c", "local", str(playbook),
            "-e", json.dumps({"dataset": dataset, "config": config})]
    run = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ansible.env(),
                           start_new_session=True)
    state_dir = str(lab.tmp / "state")
    try:
        state = wait_for(lambda: next((s for s in progress.running_states(state_dir)
                                       if s.get("operation") == "backup"), None),
                         "the backup to start uploading", timeout=120, child=run)
    except BaseException:
        gate.touch()
        os.killpg(run.pid, signal.SIGKILL)
        raise
    return dataset, config, gate, run, state["pid"]


def test_kill_of_the_controller_leaves_the_module_running_and_a_later_run_names_it(lab, ansible, tmp_path):
    dataset, config, gate, run, module_pid = _start(lab, ansible, tmp_path)
    try:
        os.kill(run.pid, signal.SIGKILL)  # the controller dies; its workers and the module do not
        run.communicate(timeout=60)
        assert pid_alive(module_pid), "the module must go on after the controller is killed"
        again = ansible.module("offsite_backup", {"dataset": dataset + "@s1", "config": config})
        assert again["failed"] is True
        text = json.dumps(again)
        assert "another offsite backup of %s to local is running (PID %d" % (dataset, module_pid) in text, text[-2000:]
    finally:
        gate.touch()
    wait_for(lambda: not pid_alive(module_pid), "the detached module to finish", timeout=120)
    done = ansible.module("offsite_backup", {"dataset": dataset + "@s1", "config": config})
    assert done["failed"] is False and done["changed"] is False, done.get("msg")
    assert done["providers"]["local"]["status"] == "present", done["providers"]["local"]


def test_ctrl_c_of_the_playbook_stops_the_module_and_the_next_run_resumes(lab, ansible, tmp_path):
    dataset, config, gate, run, module_pid = _start(lab, ansible, tmp_path)
    try:
        os.killpg(run.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the playbook's process group
        run.communicate(timeout=60)
    finally:
        gate.touch()
    wait_for(lambda: not pid_alive(module_pid), "the interrupted module to stop", timeout=120)
    resumed = ansible.module("offsite_backup", {"dataset": dataset + "@s1", "config": config})
    # changed: the interrupted module did not finish the backup; the next run does (resuming what was uploaded).
    assert resumed["failed"] is False and resumed["changed"] is True, resumed.get("msg")
    assert resumed["providers"]["local"]["status"] in ("resumed", "uploaded"), resumed["providers"]["local"]
    done = ansible.module("offsite_backup", {"dataset": dataset + "@s1", "config": config})
    assert done["changed"] is False and done["providers"]["local"]["status"] == "present"
