"""The collection as users run it: over real SSH, on the system Python, with the role's defaults.

Marked `fleet_ssh` (run them alone with `-m fleet_ssh`). A real sshd on 127.0.0.1 (tests/functional/sshd.py)
serves three inventory hosts on this machine, each with its own pool, namespace, config and role venv;
node3 logs in as an unprivileged user and becomes root with sudo. Nothing sets ansible_python_interpreter:
Ansible discovers /usr/bin/python3, which has no pyrage or zstandard, and the modules re-execute
themselves in the venv the role made.
"""

from __future__ import annotations

import json
import os
import pwd
import re
from pathlib import Path
from typing import Iterator

import harness
import leaks
import pytest
import sshd
from fleet_ssh import Fleet, mode, recap, system_python_lacks

pytestmark = [pytest.mark.fleet_ssh, pytest.mark.skipif(sshd.missing() is not None, reason=str(sshd.missing()))]

HOSTS = ("node1", "node2", "node3")


@pytest.fixture
def bare_fleet(ansible, tmp_path: Path) -> Iterator[Fleet]:
    """sshd and the key; hosts without pools (add_host adds them)."""
    server = sshd.Sshd()
    built = Fleet(server, tmp_path / "fleet", harness.AgeKey(tmp_path), ansible)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture(scope="session")
def venv_template(tmp_path_factory) -> Path:
    """A venv as the role makes it, once per session: the fleet test's hosts start from copies of it (the role
    then only checks it), so only test_role_defaults_over_ssh... pays for creating venvs."""
    path = tmp_path_factory.mktemp("role-venv") / "venv"
    harness.run(["/usr/bin/python3", "-m", "venv", str(path)])
    harness.run([str(path / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                 "pyrage>=1.2", "zstandard>=0.22", "PyYAML>=6.0"])
    return path


@pytest.fixture
def fleet(zfs_daemon, bare_fleet: Fleet, venv_template: Path, tmp_path: Path) -> Fleet:
    """Three hosts over SSH, each with its own pool and dataset; node3 logs in unprivileged and uses sudo."""
    user = bare_fleet.server.add_user()
    for index, name in enumerate(HOSTS):
        host = bare_fleet.add_host(name, pool=harness.Pool(tmp_path / name, size="128M"),
                                   user=user if name == "node3" else "root", data_seed=index)
        harness.run(["cp", "-a", str(venv_template), host["offsite_venv"]])
    return bare_fleet


def test_role_defaults_over_ssh_make_a_venv_and_leave_the_system_python_alone(bare_fleet, tmp_path):
    """The role's defaults over SSH on the discovered /usr/bin/python3 (PEP 668 host): a venv, a marker, idempotent."""
    assert system_python_lacks("pyrage"), "this test needs a system Python without pyrage (a stock host)"
    user = bare_fleet.server.add_user()
    for name in ("node1", "node3"):
        bare_fleet.add_host(name, user=user if name == "node3" else "root")
    playbook = tmp_path / "site.yml"
    playbook.write_text("- hosts: all\n  gather_facts: false\n  roles: [offsite.zfs.offsite]\n")
    first = bare_fleet.playbook(str(playbook))
    assert first.returncode == 0, first.stdout[-5000:] + first.stderr[-2000:]
    for name, host in bare_fleet.hosts.items():
        marker = Path(host["offsite_config_path"]).parent / "offsite-python"
        assert marker.read_text().strip() == host["offsite_venv"] + "/bin/python", name
        harness.run([host["offsite_venv"] + "/bin/python", "-c", "import pyrage, zstandard, yaml"])
    assert system_python_lacks("pyrage"), "the role must never install into the system Python"
    second = bare_fleet.playbook(str(playbook))
    assert second.returncode == 0, second.stdout[-5000:] + second.stderr[-2000:]
    assert all(row["changed"] == 0 for row in recap(second.stdout).values()), second.stdout[-5000:]
    # The modules find the venv by themselves, as root and through sudo, on the system interpreter.
    results = bare_fleet.adhoc("offsite_status", {"config": "{{ offsite_config_path }}"})
    for name, result in results.items():
        assert result["failed"] is False and result["namespace"] == name, (name, result.get("msg"))
        assert result["ansible_facts"]["discovered_interpreter_python"] == "/usr/bin/python3"


def test_fleet_over_ssh_role_defaults_backup_status_restore_report(fleet, tmp_path):
    assert system_python_lacks("pyrage"), "this test needs a system Python without pyrage (a stock host)"
    # 1. The backup playbook with offsite_policy applies the role with its defaults, then converges.
    first = fleet.playbook("offsite.zfs.backup")
    assert first.returncode == 0, first.stdout[-5000:] + first.stderr[-2000:]
    rows = recap(first.stdout)
    assert set(rows) == set(HOSTS) and all(rows[h]["changed"] > 0 and rows[h]["failed"] == 0 for h in HOSTS)
    for name, host in fleet.hosts.items():
        venv = host["offsite_venv"]
        marker = Path(host["offsite_config_path"]).parent / "offsite-python"
        assert marker.read_text().strip() == venv + "/bin/python", name
        harness.run([venv + "/bin/python", "-c", "import pyrage, zstandard, yaml"])
    assert system_python_lacks("pyrage"), "the role must never install into the system Python"
    assert "ansible_python_interpreter" not in json.dumps(fleet.hosts)

    # 2. A second run in a row changes nothing (the role and the policy).
    second = fleet.playbook("offsite.zfs.backup")
    assert second.returncode == 0, second.stdout[-5000:] + second.stderr[-2000:]
    assert all(row["changed"] == 0 and row["failed"] == 0 for row in recap(second.stdout).values()), \
        second.stdout[-5000:]

    # 3. Ad-hoc offsite_status across the fleet, on the discovered system interpreter.
    results = fleet.adhoc("offsite_status", {"config": "{{ offsite_config_path }}"})
    assert set(results) == set(HOSTS)
    for name, result in results.items():
        assert result["failed"] is False and result["health"] == "ok", (name, result.get("msg"))
        assert result["namespace"] == name
        assert result["ansible_facts"]["discovered_interpreter_python"] == "/usr/bin/python3"
        dataset = fleet.hosts[name]["offsite_test_dataset"]
        assert result["datasets"][dataset]["providers"]["shared"]["chain_length"] == 1

    # 4. A restore drill on the host that uses become: restore to a new dataset, compare the data.
    node3 = fleet.hosts["node3"]
    dataset = node3["offsite_test_dataset"]
    target = dataset.split("/")[0] + "/drill"
    args = {"dataset": dataset, "target": target, "config": "{{ offsite_config_path }}",
            "identity_file": str(fleet.key.path)}
    restored = fleet.adhoc("offsite_restore", args, pattern="node3")["node3"]
    assert restored["failed"] is False and restored["changed"] is True, restored.get("msg")
    pool = fleet.pools[HOSTS.index("node3")]
    assert harness.tree_digest(pool.mountpoint(target)) == harness.tree_digest(pool.mountpoint(dataset))

    # 5. The fleet report playbook over the same inventory.
    out = tmp_path / "report"
    report = fleet.playbook("offsite.zfs.fleet_report", extra_vars={"offsite_report_dir": str(out)})
    assert report.returncode == 0, report.stdout[-4000:] + report.stderr[-2000:]
    data = json.loads((out / "fleet-report.json").read_text())
    assert data["totals"]["hosts"] == 3 and data["health"] == "ok", data["totals"]
    assert {row["host"] for row in data["rows"]} == set(HOSTS)


def test_a_host_without_the_libraries_gets_one_sentence(bare_fleet, tmp_path):
    """No role applied (no venv, no offsite-python marker): one sentence saying to apply the role, no traceback."""
    host = bare_fleet.add_host("bare", venv=str(tmp_path / "no-venv"))
    os.makedirs(Path(host["offsite_config_path"]).parent, exist_ok=True)
    playbook = tmp_path / "status.yml"
    playbook.write_text(
        "- hosts: bare\n  gather_facts: false\n  environment: {OFFSITE_VENV: %s}\n  tasks:\n"
        "    - offsite.zfs.offsite_status: {config: '{{ offsite_config_path }}'}\n" % (tmp_path / "no-venv"))
    proc = bare_fleet.playbook(str(playbook), args=["-v"])
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "The Python libraries pyrage, zstandard" in out and "apply the role offsite.zfs.offsite" in out, out[-3000:]
    assert "Traceback" not in out and "MODULE FAILURE" not in out, out[-3000:]


VAULT_REMOTE = "S3VAULT"


def test_become_and_vault_secrets_over_ssh_backup_status_restore_prune(
        zfs_daemon, bare_fleet, venv_template, s3, tmp_path):
    """An unprivileged login with sudo runs the shipped playbooks against S3 whose keys are in an Ansible Vault
    file, passed as offsite_provider_env; the keys reach the modules and the timer's 0600 environment file, and
    nothing else: not the -vvv output, any process's argv, the logs, state or any other file on the host."""
    user = bare_fleet.server.add_user()
    pool = harness.Pool(tmp_path / "vault1", size="128M")
    host = bare_fleet.add_host("vault1", pool=pool, user=user, data_seed=7)
    harness.run(["cp", "-a", str(venv_template), host["offsite_venv"]])
    home = bare_fleet.dir / "vault1"
    prefix = "vault-%s" % pool.name
    host["offsite_policy"]["providers"] = {"s3": {"remote": "%s:bucket/%s" % (VAULT_REMOTE.lower(), prefix),
                                                  "retry_delay": "1s"}}
    host.update(offsite_timer=True, offsite_timer_enable=False, offsite_lib_dir=str(home / "lib"),
                offsite_systemd_dir=str(home / "systemd"),  # the timer's env file from offsite_provider_env
                # The role's package tasks are test_fleet_over_ssh's (apt costs ~20 s here): rclone and venv are in.
                offsite_rclone_source="none", offsite_venv_packages={})
    provider_env = dict(s3.env(VAULT_REMOTE))
    provider_env["RCLONE_CONFIG_%s_PROVIDER" % VAULT_REMOTE] = "Other"  # any rclone the distribution ships

    # The secrets in a vault file, encrypted with the real ansible-vault and a 0600 password file.
    password = "vault-pass-%s" % os.urandom(12).hex()
    password_file = tmp_path / "vault-pass"
    fd = os.open(str(password_file), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    vault = tmp_path / "vault.yml"
    vault.write_text(json.dumps({"offsite_provider_env": {"s3": provider_env}}))
    ansible_vault = str(Path(bare_fleet.ansible.playbook).parent / "ansible-vault")
    harness.run([ansible_vault, "encrypt", "--vault-password-file", str(password_file), str(vault)],
                env=bare_fleet.env())
    assert vault.read_text().startswith("$ANSIBLE_VAULT;") and s3.secret_key not in vault.read_text()

    dataset = host["offsite_test_dataset"]
    target = pool.name + "/restored"
    playbooks = ["offsite.zfs.backup", "offsite.zfs.status", "offsite.zfs.restore", "offsite.zfs.prune"]
    extra = {"offsite_dataset": dataset, "offsite_target": target,
             "offsite_identity_file": str(bare_fleet.key.path)}
    with leaks.ArgvSampler() as sampler:
        run = bare_fleet.playbook(playbooks, extra_vars=extra, args=[
            "-e", "@%s" % vault, "--vault-password-file", str(password_file), "-vvv"])
    output = run.stdout + run.stderr
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert recap(run.stdout)["vault1"]["failed"] == 0
    assert re.search(r"sudo -H -S -n +-u root", output), "the modules ran through sudo"

    # The backup is on S3 (manifest written last), status read it with the keys, the restore matches.
    objects = list((s3.root / "bucket" / prefix).rglob("*"))
    assert any(p.name == "manifest.json" for p in objects) and any(p.name.endswith(".age") for p in objects)
    assert '"chain_length": 1' in run.stdout and '"health": "ok"' in run.stdout, run.stdout[-6000:]
    assert harness.tree_digest(pool.mountpoint(target)) == harness.tree_digest(pool.mountpoint(dataset))

    # The keys are where the timer reads them: its environment file, 0600.
    env_file = home / "etc" / "offsite-converge.env"
    assert mode(str(env_file)) == "0o600" and s3.secret_key in env_file.read_text()

    # ... and nowhere else: Ansible's output, any process's argv, the files on the host and the controller.
    seen = b"\n".join(sampler.seen)
    assert sampler.rounds > 10 and b"ansible-playbook" in seen and b"lsjson" in seen, sampler.rounds
    login_home = Path(pwd.getpwnam(user).pw_dir)
    files = leaks.files(tmp_path, login_home, bare_fleet.server.dir, bare_fleet.ansible.home,
                        s3.root / "bucket" / prefix, skip=[Path(host["offsite_venv"]), pool.dir])
    assert any(f.parent == home / "log" for f in files), "the module log files were scanned"
    secrets = {"s3 secret key": s3.secret_key, "s3 access key": s3.access_key, "vault password": password}
    for what, secret in secrets.items():
        needle = secret.encode()
        assert secret not in output, "%s in ansible's -vvv output" % what
        assert not any(needle in argv for argv in sampler.seen), "%s in the argv of a process" % what
        holders = [f for f in files if needle in f.read_bytes()]
        allowed = [password_file] if what == "vault password" else [env_file]
        assert holders == allowed, "%s in %s" % (what, holders)
