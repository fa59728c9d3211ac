#!/usr/bin/env python
"""Fleet scale over real SSH: a policy run with nothing due over N inventory hosts, offsite_status and the
fleet report over N hosts and B backups. Results in docs/benchmarks.md ("Fleet scale over SSH").

    python benchmarks/fleet.py [--hosts 50] [--backups 1000] [--forks 10,50] [--shared-dataset]

The hosts are inventory entries reached over SSH at a loopback sshd (tests/functional/sshd.py) on this
machine, with the discovered system Python (the modules respawn into the role's virtualenv, here one
shared venv that the role's steps create). Each host has its own namespace, config, state and log dirs,
snapshot prefix and dataset (--shared-dataset: all hosts share the pool's root dataset, for a zfs-fuse
that cannot create datasets). Backups are real: snapshots and run_backup to one local rclone remote.
Run as root (sshd); needs zfs, rclone, sshd. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "functional"))

import harness  # noqa: E402
import sshd  # noqa: E402
from fleet_ssh import Fleet, recap  # noqa: E402

sys.path.insert(0, str(harness.collection_link()))

from ansible_collections.offsite.zfs.plugins.module_utils import resolve  # noqa: E402
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.converge import converge  # noqa: E402
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.run import run_backup  # noqa: E402

HOUR = 3600.0


def stamp(when: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(when))


def make_venv(path: Path) -> str:
    """What the role does: python3 -m venv, pip install the libraries."""
    harness.run(["/usr/bin/python3", "-m", "venv", str(path)])
    harness.run([str(path / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                 "pyrage>=1.2", "zstandard>=0.22", "PyYAML>=6.0"])
    return str(path / "bin" / "python")


def host_times(path: Path, task: str) -> List[float]:
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [r["seconds"] for r in rows if r["task"] == task and r["status"] == "ok"]


def describe(values: List[float]) -> str:
    if not values:
        return "-"
    return "%.2f / %.2f / %.2f" % (statistics.median(values), statistics.mean(values), max(values))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--backups", type=int, default=1000, help="backups in all, for status and the report")
    parser.add_argument("--forks", default="10,50")
    parser.add_argument("--shared-dataset", action="store_true")
    parser.add_argument("--workers", type=int, default=4, help="threads that make the backups")
    args = parser.parse_args()
    if sshd.missing():
        print("cannot run: %s" % sshd.missing())
        return 2
    work = Path(tempfile.mkdtemp(prefix="offsite-fleet-bench-"))
    times_file = work / "host-times.jsonl"
    ansible = harness.Ansible(harness.build_and_install(work / "galaxy"), work / "ansible")
    server = sshd.Sshd()
    key = harness.AgeKey(work)
    fleet = Fleet(server, work / "fleet", key, ansible)
    pool = harness.Pool(work / "pool", size="512M")
    fleet.pools.append(pool)
    rows: List[List[str]] = []
    try:
        venv_python = make_venv(work / "venv")
        names = ["h%02d" % i for i in range(args.hosts)]
        configs: Dict[str, Dict[str, Any]] = {}
        for name in names:
            home = fleet.dir / name
            (home / "etc").mkdir(parents=True, mode=0o700)
            dataset = pool.name if args.shared_dataset else pool.create(name)
            config = {
                "recipients": [key.public], "namespace": name,
                "state_dir": str(home / "state"), "log_dir": str(home / "log"),
                "providers": {"shared": {"remote": str(fleet.remote), "retry_delay": "1s"}},
                "defaults": {"chunk_size": "64KiB", "every": "1d", "snapshot_prefix": name,
                             "full_every": {"incrementals": 30}, "keep": {"last": 40}},
                "datasets": {dataset: {}},
            }
            config_path = home / "etc" / "offsite.yml"
            harness.write_config(config_path, config)
            (home / "etc" / "offsite-python").write_text(venv_python + "\n")  # what the role records
            configs[name] = config
            host = dict(server.host_vars("root"))
            host.update(offsite_config_path=str(config_path), offsite_config=str(config_path))
            fleet.hosts[name] = host
        inventory = fleet.write()

        per_host = max(1, args.backups // len(names))

        def prime(name: str) -> None:
            config = configs[name]
            dataset = next(iter(config["datasets"]))
            settings = resolve.resolve(config, dataset, {})
            now = time.time()
            for index in range(per_host):
                snap = "%s-%s" % (name, stamp(now - (per_host - index) * HOUR))
                harness.run(["zfs", "snapshot", "%s@%s" % (dataset, snap)])
                run_backup(settings, snapshot=snap)

        started = time.time()
        with ThreadPoolExecutor(args.workers) as pool_exec:
            list(pool_exec.map(prime, names))
        total = len(names) * per_host
        print("primed %d hosts with %d backups in all in %.0f s" % (len(names), total, time.time() - started),
              flush=True)

        # Where one host's no-op time goes, in process (no Ansible): the converge itself.
        name = names[0]
        dataset = next(iter(configs[name]["datasets"]))
        started = time.time()
        result = converge(lambda ds: resolve.resolve(configs[name], ds, {}), [dataset])
        in_process = time.time() - started
        assert result["changed"] is False, result
        env = {"ANSIBLE_CALLBACK_PLUGINS": str(ROOT / "benchmarks" / "callback_plugins"),
               "ANSIBLE_CALLBACKS_ENABLED": "offsite_host_times", "OFFSITE_HOST_TIMES": str(times_file)}

        task = "Snapshot when due and back up where missing"
        for forks in [int(f) for f in args.forks.split(",")]:
            times_file.unlink(missing_ok=True)
            started = time.time()
            proc = fleet.playbook("offsite.zfs.backup", forks=forks, env=env, inventory=inventory)
            wall = time.time() - started
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
            assert all(r["changed"] == 0 for r in recap(proc.stdout).values()), "something was due"
            rows.append(["policy run, nothing due (%d backups)" % total, str(len(names)), str(forks),
                         describe(host_times(times_file, task)), "%.1f" % wall])

        # The same task with the venv as interpreter (no respawn), and a bare ping: the fixed costs.
        times_file.unlink(missing_ok=True)
        subset = ",".join(names[:10])
        fleet.playbook("offsite.zfs.backup", forks=1, env=env, inventory=inventory,
                       args=["-l", subset, "-e", "ansible_python_interpreter=%s" % venv_python])
        no_respawn = host_times(times_file, task)
        times_file.unlink(missing_ok=True)
        fleet.playbook("offsite.zfs.backup", forks=1, env=env, inventory=inventory, args=["-l", subset])
        respawn = host_times(times_file, task)
        ping_file = work / "ping.yml"
        ping_file.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n    - name: ping\n"
                             "      ansible.builtin.ping:\n")
        times_file.unlink(missing_ok=True)
        fleet.playbook(str(ping_file), forks=1, env=env, inventory=inventory, args=["-l", subset])
        ping = host_times(times_file, "ping")

        # offsite_status and the fleet report over all hosts and their backups.
        report_forks = max(int(f) for f in args.forks.split(","))
        started = time.time()
        statuses = fleet.adhoc("offsite_status", {"config": "{{ offsite_config_path }}"}, forks=report_forks,
                               inventory=inventory)
        status_wall = time.time() - started
        assert all(not r["failed"] for r in statuses.values()), [r.get("msg") for r in statuses.values()][:3]
        rows.append(["ad-hoc offsite_status", str(len(names)), str(report_forks), "-", "%.1f" % status_wall])
        times_file.unlink(missing_ok=True)
        started = time.time()
        proc = fleet.playbook("offsite.zfs.fleet_report", forks=report_forks, env=env, inventory=inventory,
                              extra_vars={"offsite_report_dir": str(work / "report")})
        report_wall = time.time() - started
        assert proc.returncode == 0, proc.stdout[-3000:]
        data = json.loads((work / "report" / "fleet-report.json").read_text())
        status_times = host_times(times_file, "Read what the host has offsite")
        rows.append(["fleet_report playbook (%d backups)" % total, str(data["totals"]["hosts"]), str(report_forks),
                     describe(status_times), "%.1f" % report_wall])

        print("\n| run | hosts | forks | host time per host-run, s (median / mean / max) | whole run, s |")
        print("|---|---|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        print("\nWhere one host's no-op time goes (10 hosts, forks 1, s median / mean / max):")
        print("- ansible.builtin.ping over SSH (connection, AnsiballZ, system Python start): %s" % describe(ping))
        print("- offsite_backup policy=true on the venv as interpreter (no respawn): %s" % describe(no_respawn))
        print("- offsite_backup policy=true on the discovered /usr/bin/python3 (respawn): %s" % describe(respawn))
        print("- the converge itself, in process (zfs list, rclone lsjson, policy): %.2f" % in_process)
    finally:
        try:
            fleet.close()
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
