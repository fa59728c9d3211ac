"""A fleet of inventory hosts reached over real SSH (tests/functional/sshd.py), on this one machine.

Each host has its own zfs-fuse pool and dataset, namespace, config path, state/log/spool dirs and the
role's virtualenv (offsite_venv) under its own directory, because they all share one machine. The
hosts use the interpreter Ansible discovers (/usr/bin/python3, the system Python); one logs in as an
unprivileged user and becomes root with sudo. Used by test_fleet_ssh.py and benchmarks/fleet.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import harness
import sshd


class Fleet:
    def __init__(self, server: sshd.Sshd, workdir: Path, key: harness.AgeKey, ansible: harness.Ansible) -> None:
        self.server = server
        self.dir = workdir
        self.key = key
        self.ansible = ansible
        self.remote = workdir / "remote"
        self.remote.mkdir(parents=True, exist_ok=True)
        self.hosts: Dict[str, Dict[str, Any]] = {}
        self.pools: List[harness.Pool] = []

    def add_host(self, name: str, pool: Optional[harness.Pool] = None, user: str = "root",
                 venv: Optional[str] = None, data_seed: int = 0) -> Dict[str, Any]:
        home = self.dir / name
        home.mkdir(parents=True, exist_ok=True)
        host = dict(self.server.host_vars(user))
        if user != "root":
            host.update(ansible_become=True, ansible_become_method="sudo")
        datasets: Dict[str, Any] = {}
        if pool is not None:
            self.pools.append(pool)
            dataset = pool.create("data")
            harness.write_data(pool.mountpoint(dataset), data_seed, 192 * 1024)
            datasets[dataset] = {}
            host["offsite_test_dataset"] = dataset
        config_path = str(home / "etc" / "offsite.yml")
        host.update({
            "offsite_config_path": config_path,
            "offsite_config": config_path,  # the fleet report's per-host variable
            "offsite_venv": venv or str(home / "venv"),
            "offsite_policy": {
                "recipients": [self.key.public],
                "namespace": name,
                "state_dir": str(home / "state"),
                "log_dir": str(home / "log"),
                "providers": {"shared": {"remote": str(self.remote), "retry_delay": "1s"}},
                "defaults": {"chunk_size": "64KiB", "spool": {"dir": str(home / "spool")}, "every": "1d",
                             "full_every": {"incrementals": 7}, "keep": {"last": 2}},
                "datasets": datasets,
            },
        })
        self.hosts[name] = host
        return host

    def write(self, name: str = "inventory.json") -> Path:
        path = self.dir / name
        # Discovery's candidates, the system Python first: a developer's root may have pyenv shims on its PATH.
        fallback = ["/usr/bin/python3", "/usr/libexec/platform-python", "python3"]
        path.write_text(json.dumps({"all": {"hosts": self.hosts, "vars": {
            "ansible_interpreter_python_fallback": fallback}}}, indent=1))
        return path

    def env(self, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        """The controller's environment: interpreter discovery (not the test venv), SSH multiplexing in our dir."""
        env = self.ansible.env({
            "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
            "ANSIBLE_PIPELINING": "True",
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.server.dir / "cp"),
            "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=20s",
            "ANSIBLE_TIMEOUT": "30",
        })
        env.update(extra or {})
        return env

    def playbook(self, playbook: Union[str, List[str]], extra_vars: Optional[Dict[str, Any]] = None, forks: int = 10,
                 args: Optional[List[str]] = None, env: Optional[Dict[str, str]] = None,
                 inventory: Optional[Path] = None) -> subprocess.CompletedProcess:
        """ansible-playbook with one playbook, or several in one run (a list)."""
        argv = [self.ansible.playbook, "-i", str(inventory or self.write()), "-f", str(forks)]
        argv += [playbook] if isinstance(playbook, str) else list(playbook)
        if extra_vars:
            argv += ["-e", json.dumps(extra_vars)]
        argv += args or []
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=self.env(env), timeout=900, check=False)

    def adhoc(self, module: str, args: Dict[str, Any], pattern: str = "all", forks: int = 10,
              inventory: Optional[Path] = None) -> Dict[str, Dict[str, Any]]:
        """`ansible PATTERN -m offsite.zfs.MODULE`; each host's result from the "host | STATUS => {json}" lines."""
        argv = [self.ansible.ansible, pattern, "-i", str(inventory or self.write()), "-f", str(forks),
                "-m", "offsite.zfs.%s" % module, "-a", json.dumps(args)]
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env(),
                              timeout=900, check=False)
        results: Dict[str, Dict[str, Any]] = {}
        for match in re.finditer(r"^(\S+) \| (\S+)[^\n]*?=> \{", proc.stdout, re.MULTILINE):
            result, _end = json.JSONDecoder().raw_decode(proc.stdout[match.end() - 1:])
            result.setdefault("failed", match.group(2) in ("FAILED!", "UNREACHABLE!"))
            results[match.group(1)] = result
        if not results:
            raise AssertionError("ansible output has no results (rc %d): %s %s" % (
                proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
        return results

    def close(self) -> None:
        """End SSH master connections, stop sshd (by PID), destroy the pools."""
        self.server.stop()
        for pool in self.pools:
            pool.destroy()


def recap(stdout: str) -> Dict[str, Dict[str, int]]:
    """PLAY RECAP: host -> {ok, changed, unreachable, failed, ...}."""
    rows = {}
    for line in stdout.split("PLAY RECAP", 1)[-1].splitlines():
        match = re.match(r"^(\S+)\s+:\s+(.*)$", line.strip())
        if match:
            rows[match.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(2))}
    return rows


def system_python_lacks(module: str) -> bool:
    return subprocess.run(["/usr/bin/python3", "-c", "import %s" % module], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, check=False).returncode != 0


def mode(path: str) -> str:
    return oct(os.stat(path).st_mode & 0o777)
