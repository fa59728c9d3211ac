"""Secrets (issue 5): backup and restore through ansible-playbook -vvv leak no identity, passphrase
or rclone secret into Ansible's output, the log and state files, any file written, or the argv of
any process (sampled from /proc/*/cmdline on a thread while the playbook runs).

The secrets reach ansible-playbook through its environment (lookup('env')), as a vault or a
secret store would hand them over, so that the test's own command line holds none.
"""

from __future__ import annotations

import os

import harness
import leaks

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  vars:
    s3_env:
      s3:
        RCLONE_CONFIG_S3SEC_TYPE: s3
        RCLONE_CONFIG_S3SEC_PROVIDER: Rclone
        RCLONE_CONFIG_S3SEC_ENDPOINT: "{{ endpoint }}"
        RCLONE_CONFIG_S3SEC_FORCE_PATH_STYLE: "true"
        RCLONE_CONFIG_S3SEC_ACCESS_KEY_ID: "{{ lookup('ansible.builtin.env', 'OFFSITE_TEST_ACCESS_KEY') }}"
        RCLONE_CONFIG_S3SEC_SECRET_ACCESS_KEY: "{{ lookup('ansible.builtin.env', 'OFFSITE_TEST_SECRET_KEY') }}"
  tasks:
    - name: Back up to S3 with recipients
      offsite.zfs.offsite_backup:
        dataset: "{{ dataset }}@s1"
        config: "{{ config }}"
        provider_env: "{{ s3_env }}"

    - name: Back up to S3 with a passphrase
      offsite.zfs.offsite_backup:
        dataset: "{{ dataset2 }}@s1"
        config: "{{ config }}"
        recipients: []
        passphrase: "{{ lookup('ansible.builtin.env', 'OFFSITE_TEST_PASSPHRASE') }}"
        provider_env: "{{ s3_env }}"

    - name: Restore with the identity given inline
      offsite.zfs.offsite_restore:
        dataset: "{{ dataset }}@s1"
        target: "{{ target }}"
        identity: "{{ lookup('ansible.builtin.env', 'OFFSITE_TEST_IDENTITY') }}"
        config: "{{ config }}"
        provider_env: "{{ s3_env }}"

    - name: Restore with the passphrase
      offsite.zfs.offsite_restore:
        dataset: "{{ dataset2 }}@s1"
        target: "{{ target2 }}"
        passphrase: "{{ lookup('ansible.builtin.env', 'OFFSITE_TEST_PASSPHRASE') }}"
        config: "{{ config }}"
        provider_env: "{{ s3_env }}"
"""


def test_no_secret_leaks_through_ansible_vvv_logs_files_or_argv(lab, ansible, s3, tmp_path, session_dir):
    ds = lab.pool.create("data")
    harness.write_data(lab.pool.mountpoint(ds), 601, 384 << 10)
    lab.pool.snapshot(ds, "s1")
    ds2 = lab.pool.create("data2")
    harness.write_data(lab.pool.mountpoint(ds2), 602, 256 << 10)
    lab.pool.snapshot(ds2, "s1")
    lab.config["providers"] = {"s3": {"remote": "s3sec:bucket/%s" % lab.pool.name, "retry_delay": 0.05}}
    config = str(lab.config_path)
    passphrase = "correct horse battery staple %s" % os.urandom(6).hex()
    secrets = {"identity": lab.key.secret, "passphrase": passphrase, "s3 secret key": s3.secret_key,
               "s3 access key": s3.access_key}
    env = {"OFFSITE_TEST_IDENTITY": lab.key.secret, "OFFSITE_TEST_PASSPHRASE": passphrase,
           "OFFSITE_TEST_SECRET_KEY": s3.secret_key, "OFFSITE_TEST_ACCESS_KEY": s3.access_key,
           # Pipelining hands the module and its arguments to Python on stdin; without it Ansible
           # writes them to a temporary AnsiballZ file for the duration of the task.
           "ANSIBLE_PIPELINING": "True"}
    playbook = tmp_path / "secrets.yml"
    playbook.write_text(PLAYBOOK)
    target, target2 = lab.pool.name + "/copy", lab.pool.name + "/copy2"
    extra = {"dataset": ds, "dataset2": ds2, "config": config, "target": target, "target2": target2,
             "endpoint": "http://127.0.0.1:%d" % s3.port}
    sampler = leaks.ArgvSampler()
    sampler.start()
    try:
        run = ansible.run_playbook(playbook, extra_vars=extra, extra_env=env, args=["-vvv"])
    finally:
        sampler.stop()
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert "changed=4" in output
    assert harness.tree_digest(lab.pool.mountpoint(ds)) == harness.tree_digest(lab.pool.mountpoint(target))
    assert harness.tree_digest(lab.pool.mountpoint(ds2)) == harness.tree_digest(lab.pool.mountpoint(target2))
    objects = list((s3.root / "bucket" / lab.pool.name).rglob("*.age"))
    assert len(objects) > 4, "the backups went to the S3 endpoint"
    # The sampler did see the run: ansible, the modules' python and rclone with its verbs.
    seen = b"\n".join(sampler.seen)
    assert sampler.rounds > 10 and b"ansible-playbook" in seen and b"lsjson" in seen, sampler.rounds
    assert b"s3sec:bucket/" in seen, "rclone children were sampled"
    # Files: everything this test's run wrote, the collection's logs and state, ansible's home, the bucket.
    files = leaks.files(tmp_path, ansible.home, s3.root)
    files = [f for f in files if f != lab.key.path]  # the operator's own key file, written by the test
    assert any(f.name.endswith(".log") and "backup-" in f.name for f in files), "the log files were scanned"
    for what, secret in secrets.items():
        needle = secret.encode()
        assert secret not in output, "%s in ansible's -vvv output" % what
        assert not any(needle in argv for argv in sampler.seen), "%s in the argv of a process" % what
        for path in files:
            assert needle not in path.read_bytes(), "%s in %s" % (what, path)
