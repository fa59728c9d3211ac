#!/usr/bin/env python
"""offsite.zfs benchmark: the pipeline side by side with the old shell pipeline and a raw copy.

    python3 benchmarks/bench.py                 # full run: 2 GiB stream, 1 and 4 GiB memory runs
    python3 benchmarks/bench.py --quick         # smoke run: a few MiB, seconds
    python3 benchmarks/bench.py --size 512M --mem-sizes 256M,1G --doc docs/benchmarks.md

On a real zfs-fuse (or kernel ZFS) file-backed pool with a unique name (destroyed at the
end), with a dataset of compressible logs, already-compressed media-like random bytes
and zeros, it measures against the same remotes (a local directory and `rclone serve s3`
on 127.0.0.1):

  A ansible  the headline: `ansible localhost -m offsite.zfs.offsite_backup` / `offsite_restore`, the way
     users run it (default settings);
  A  the same pipeline called directly (run_backup / run_restore in a child Python): a diagnostic row;
  B  the old bash pipeline: zfs send | split -b 1G --filter 'gzip | age -r | rclone rcat';
  C  the raw copy: zfs send | rclone rcat;
  R  restic, the peer (Debian's restic): zfs send | restic backup --stdin into a repository (v2,
     compressed) on the same remote, and restic dump | zfs receive;
  and `zfs send > /dev/null` (the ceiling zfs itself sets).

--mix picks the data, one or more comma-separated mixes measured one after the other in the same run
(default `half,default`): `default` (35 % logs, 35 % random media, 10 % zeros, 20 % mixed files),
`half` (half random bytes, half log-like text: the mix of issue 15), `random`, `logs`, `zeros`.

Every run is a child process: wall time, CPU seconds of the whole process tree
(getrusage RUSAGE_CHILDREN), the zfs daemon's CPU, peak memory of the tree (sampled
from /proc: RSS and PSS) and the spool directory's high-water mark. It prints a table
and, with --doc, writes the results section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests" / "functional"))

import harness  # noqa: E402  (real parts: pools, S3 server, age keys, ansible)

sys.path.insert(0, str(harness.collection_link()))

from ansible_collections.offsite.zfs.plugins.module_utils import catalog, resolve  # noqa: E402
from ansible_collections.offsite.zfs.plugins.module_utils.common import parse_size  # noqa: E402
from ansible_collections.offsite.zfs.plugins.module_utils.manifest import (  # noqa: E402
    ChunkRecord,
    Manifest,
    SnapshotRef,
)
from ansible_collections.offsite.zfs.plugins.module_utils.store import Provider, Store  # noqa: E402
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import Zfs  # noqa: E402

MiB = 1 << 20
GiB = 1 << 30
DOC_BEGIN = "<!-- bench:results:begin -->"
DOC_END = "<!-- bench:results:end -->"


# -- measuring a child process tree ------------------------------------------------------------
def _children_map() -> Dict[int, List[int]]:
    tree: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _tree(pid: int) -> List[int]:
    tree = _children_map()
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(tree.get(current, []))
    return out


def _mem(pid: int) -> tuple:
    """(rss, pss) in bytes of one process, (0, 0) when it is gone."""
    rss = pss = 0
    try:
        with open("/proc/%d/smaps_rollup" % pid, "r") as handle:
            for line in handle:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss, pss


def _dir_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _cpu_of(pid: Optional[int]) -> float:
    if not pid:
        return 0.0
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            stat = handle.read()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _zfs_daemon_pid() -> Optional[int]:
    proc = subprocess.run(["pgrep", "-xo", "zfs-fuse"], stdout=subprocess.PIPE, text=True, check=False)
    return int(proc.stdout.split()[0]) if proc.stdout.strip() else None


class Measure:
    """Runs argv as a child; samples the tree's memory and a spool directory until it ends."""

    def __init__(self, argv: List[str], env: Optional[Dict[str, str]] = None, spool: Optional[Path] = None,
                 interval: float = 0.05) -> None:
        self.argv = argv
        self.env = env
        self.spool = spool
        self.interval = interval
        self.peak_rss = self.peak_pss = self.peak_python_rss = self.peak_spool = 0

    def _sample(self, pid: int, done: threading.Event) -> None:
        while not done.is_set():
            rss = pss = 0
            for member in _tree(pid):
                r, p = _mem(member)
                rss += r
                pss += p
                if member == pid:
                    self.peak_python_rss = max(self.peak_python_rss, r)
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_pss = max(self.peak_pss, pss)
            if self.spool is not None and self.spool.exists():
                self.peak_spool = max(self.peak_spool, _dir_bytes(self.spool))
            done.wait(self.interval)

    def run(self) -> Dict[str, Any]:
        daemon = _zfs_daemon_pid()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        zcpu0 = _cpu_of(daemon)
        started = time.monotonic()
        proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env)
        done = threading.Event()
        sampler = threading.Thread(target=self._sample, args=(proc.pid, done), daemon=True)
        sampler.start()
        out, err = proc.communicate()
        seconds = time.monotonic() - started
        done.set()
        sampler.join()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise RuntimeError("%s failed (%d): %s %s" % (
                " ".join(self.argv)[:300], proc.returncode, out.decode()[-2000:], err.decode()[-2000:]))
        return {
            "seconds": seconds,
            "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "zfs_cpu": _cpu_of(daemon) - zcpu0,
            "peak_rss": self.peak_rss, "peak_pss": self.peak_pss, "peak_python_rss": self.peak_python_rss,
            "peak_spool": self.peak_spool, "stdout": out.decode("utf-8", "replace"),
        }


# The data mixes of fill(): (kind, share of the dataset).
MIXES = {
    "default": [("logs", 0.35), ("media", 0.35), ("zeros", 0.10), ("mixed", 0.20)],
    "half": [("media", 0.50), ("logs", 0.50)],
    "random": [("media", 1.0)],
    "logs": [("logs", 1.0)],
    "zeros": [("zeros", 1.0)],
}


# -- child operations (run in a child process so that they can be measured) --------------------
def child_main(argv: List[str]) -> None:
    kind, config_path, dataset = argv[0], argv[1], argv[2]
    with open(config_path, "r", encoding="utf-8") as handle:
        spec = json.load(handle)
    settings = resolve.resolve(spec["config"], dataset, spec.get("params", {}))
    if kind == "backup":
        from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.run import run_backup
        result = run_backup(settings, snapshot=spec["snapshot"])
    elif kind == "restore":
        from ansible_collections.offsite.zfs.plugins.module_utils.keys import load_keys
        from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.run import run_restore
        keys = load_keys(None, spec["identity_file"], None)
        result = run_restore(settings, snapshot=spec["snapshot"], target=spec["target"], keys=keys)
    else:
        raise SystemExit("unknown child operation %s" % kind)
    print(json.dumps(result, default=str))


# -- the benchmark --------------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.size = parse_size(args.size, "size")
        self.mem_sizes = [parse_size(s, "mem size") for s in args.mem_sizes.split(",") if s]
        base = Path(args.workdir) if args.workdir else Path("/var/tmp")
        base.mkdir(parents=True, exist_ok=True)
        import tempfile
        self.work = Path(tempfile.mkdtemp(prefix="offsite-bench-", dir=str(base)))
        self.rclone = harness.rclone_binary()
        self.results: List[Dict[str, Any]] = []
        self.notes: List[str] = []
        self.pool: Optional[harness.Pool] = None
        self.daemon: Optional[harness.ZfsDaemon] = None
        self.s3: Optional[harness.S3Server] = None
        self.zfs = Zfs()
        self.mixes = [m for m in args.mix.split(",") if m]
        self.mix = self.mixes[0]
        self.fanout_size = 0

    # -- set-up -------------------------------------------------------------------------------
    def log(self, message: str) -> None:
        print("[%s] %s" % (time.strftime("%H:%M:%S"), message), file=sys.stderr, flush=True)

    def setup(self) -> None:
        self.daemon = harness.ZfsDaemon(self.work)
        self.daemon.start()
        pool_size = 2 * (self.size * len(self.mixes) + sum(self.mem_sizes)) + 2 * GiB  # sparse file; restores go in too
        self.pool = harness.Pool(self.work, "%dM" % (pool_size // MiB))
        self.log("pool %s (file-backed, %d MiB sparse) in %s" % (self.pool.name, pool_size // MiB, self.work))
        self.s3 = harness.S3Server(self.work / "s3", self.rclone)
        self.key = harness.AgeKey(self.work)
        self.remotes = {
            "local": {"remote": str(self.work / "remote-local"), "env": {}},
            "s3": {"remote": "benchs3:bucket/bench", "env": self.s3.env("BENCHS3")},
        }
        (self.work / "remote-local").mkdir()

    def fill(self, name: str, size: int, seed: int) -> str:
        """A dataset of `size` bytes: logs (compressible), media (random), zeros, and a mixed file."""
        assert self.pool is not None
        ds = self.pool.create(name)
        mnt = self.pool.mountpoint(ds)
        started = time.monotonic()
        parts = MIXES[self.mix]
        import random
        rng = random.Random(seed)
        for kind, share in parts:
            want = int(size * share)
            piece = 256 * MiB
            for number in range(max(1, (want + piece - 1) // piece)):
                count = min(piece, want - number * piece)
                if count <= 0:
                    break
                path = mnt / ("%s-%03d.%s" % (kind, number, {"logs": "log", "media": "jpg"}.get(kind, "bin")))
                if kind == "mixed":
                    harness.write_data(mnt, rng.randrange(1 << 30), count, path.name)
                    continue
                with open(path, "wb") as handle:
                    written = 0
                    while written < count:
                        block = min(4 * MiB, count - written)
                        if kind == "media":
                            data = rng.randbytes(block)
                        elif kind == "zeros":
                            data = bytes(block)
                        else:
                            lines = []
                            total = 0
                            while total < block:
                                line = "2026-11-22T00:%02d:%02d host%02d app[%d]: GET /api/v1/items/%d 200 %dms\n" % (
                                    rng.randrange(60), rng.randrange(60), rng.randrange(40), rng.randrange(99999),
                                    rng.randrange(10 ** 7), rng.randrange(900))
                                lines.append(line)
                                total += len(line)
                            data = "".join(lines).encode()[:block]
                        handle.write(data)
                        written += len(data)
        subprocess.run(["sync"], check=False)
        self.pool.snapshot(ds, "bench1")
        self.log("dataset %s: %d MiB written in %.1fs" % (ds, size // MiB, time.monotonic() - started))
        return ds

    def sized_clone(self, source: str, name: str, size: int, seed: int) -> str:
        """A dataset whose full send stream is about `size`: a clone of the throughput dataset with files
        removed (smaller) or fresh data added (larger). Much faster than filling from scratch on zfs-fuse."""
        assert self.pool is not None
        clone = "%s/%s" % (self.pool.name, name)
        subprocess.run(["zfs", "clone", source + "@bench1", clone], check=True)
        mnt = self.pool.mountpoint(clone)
        files = sorted(mnt.iterdir())
        total = sum(f.stat().st_size for f in files)
        kinds: Dict[str, List[Path]] = {}
        for path in files:
            kinds.setdefault(path.name.split("-")[0], []).append(path)
        while total > size and any(kinds.values()):
            for paths in kinds.values():  # remove round-robin across kinds, so the mix stays alike
                if paths and total > size:
                    victim = paths.pop()
                    total -= victim.stat().st_size
                    victim.unlink()
        number = 0
        while total < size:
            count = min(256 * MiB, size - total)
            harness.write_data(mnt, seed * 1000 + number, count, "extra-%03d.bin" % number)
            total += count
            number += 1
        subprocess.run(["sync"], check=False)
        self.pool.snapshot(clone, "bench1")
        self.log("dataset %s: clone of %s sized to %d MiB" % (clone, source, total // MiB))
        return clone

    def config(self, provider: str, namespace: str) -> Dict[str, Any]:
        spec = self.remotes[provider]
        provider_spec: Dict[str, Any] = {"remote": spec["remote"]}
        if spec["env"]:
            provider_spec["env"] = spec["env"]
        # No holds (holds.py): the benchmark destroys what it backed up.
        defaults: Dict[str, Any] = {"spool": {"dir": str(self.work / "spool")}, "hold_base": False}
        if self.args.chunk_size:
            defaults["chunk_size"] = self.args.chunk_size
        return {"recipients": [self.key.public], "namespace": namespace, "state_dir": str(self.work / "state"),
                "log_dir": str(self.work / "log"), "rclone": self.rclone, "providers": {provider: provider_spec},
                "defaults": defaults}

    def spec_file(self, name: str, spec: Dict[str, Any]) -> str:
        path = self.work / ("%s.json" % name)
        fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(spec, handle)
        return str(path)

    def rclone_env(self, provider: str) -> Dict[str, str]:
        return dict(os.environ, **self.remotes[provider]["env"])

    def remote_path(self, provider: str, key: str) -> str:
        return self.remotes[provider]["remote"] + "/" + self.mix + "/" + key

    def stored_bytes(self, provider: str, key: str) -> int:
        if provider == "local":
            return _dir_bytes(Path(self.remotes[provider]["remote"]) / self.mix / key)
        assert self.s3 is not None
        return _dir_bytes(self.s3.root / "bucket" / "bench" / self.mix / key)

    def record(self, op: str, variant: str, provider: str, size: int, measured: Dict[str, Any],
               stored: Optional[int] = None, **extra: Any) -> Dict[str, Any]:
        row = {"op": op, "variant": variant, "provider": provider, "bytes": size, "stored": stored, "mix": self.mix}
        row.update({k: v for k, v in measured.items() if k != "stdout"})
        row["mbps"] = size / measured["seconds"] / 1e6
        row["cpu_per_gb"] = measured["cpu"] / (size / 1e9)
        row.update(extra)
        self.results.append(row)
        self.log("%-7s %-8s %-10s %-6s %7.1f MB/s %5.1fs  cpu %5.1fs (+zfs %4.1fs)  rss %4d MiB  pss %4d MiB  stored %s"
                 % (self.mix, op, variant, provider, row["mbps"], row["seconds"], row["cpu"], row["zfs_cpu"],
                    row["peak_rss"] // MiB, row["peak_pss"] // MiB, "-" if stored is None else stored // MiB))
        return row

    # -- the variants ---------------------------------------------------------------------------
    def send_null(self, ds: str) -> int:
        measured = Measure(["bash", "-c", "set -o pipefail; zfs send %s@bench1 | wc -c" % ds]).run()
        size = int(measured["stdout"].strip())
        self.record("send", "zfs send", "-", size, measured)
        return size

    def backup_a(self, ds: str, provider: str, namespace: str, size: int) -> Dict[str, Any]:
        spec = {"config": self.config(provider, namespace), "snapshot": "bench1"}
        path = self.spec_file("a-%s-%s" % (provider, namespace), spec)
        measured = Measure([sys.executable, __file__, "--child", "backup", path, ds],
                           spool=self.work / "spool").run()
        result = json.loads(measured["stdout"])
        entry = result["providers"][provider]
        if entry["status"] != "uploaded":
            raise RuntimeError("backup A to %s: %s" % (provider, entry.get("message")))
        return self.record("backup", "A", provider, size, measured, entry["bytes_stored"],
                           spool_bound=result["spool_bound_bytes"], chunks=entry["chunks"])

    def _ansible(self, module: str, provider: str, namespace: str, args: Dict[str, Any]) -> tuple:
        """Run one offsite.zfs module ad hoc through `ansible`, measured; (measurement, result)."""
        # The checkout itself as the collection (ansible_collections/offsite/zfs -> checkout), no build step.
        ans = harness.Ansible(harness.collection_link(), self.work / "ansible")
        config = harness.write_config(self.work / ("offsite-%s-%s.yml" % (namespace, provider)),
                                      self.config(provider, namespace))
        argv = [ans.ansible, "localhost", "-i", "localhost,", "-c", "local", "-m", "offsite.zfs.%s" % module,
                "-a", json.dumps(dict(args, config=str(config)))]
        env = ans.env({"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.minimal"})
        measured = Measure(argv, env=env, spool=self.work / "spool").run()
        out = measured["stdout"]
        # minimal callback: "localhost | CHANGED => {...}"
        result, _end = json.JSONDecoder().raw_decode(out[out.index("{"):])
        return measured, result

    def ansible_warmup(self) -> None:
        """One `ansible -m ping` first: whatever the first run in a fresh ANSIBLE_HOME builds (a user's ~/.ansible
        already holds it) is not charged to one measured row."""
        ans = harness.Ansible(harness.collection_link(), self.work / "ansible")
        subprocess.run([ans.ansible, "localhost", "-i", "localhost,", "-c", "local", "-m", "ping"], env=ans.env(),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)

    def backup_a_ansible(self, ds: str, provider: str, size: int) -> None:
        measured, result = self._ansible("offsite_backup", provider, "ansible-" + self.mix,
                                         {"dataset": ds, "snapshot": "bench1"})
        entry = result["providers"][provider]
        if entry.get("status") != "uploaded":
            raise RuntimeError("ansible backup: %s" % result.get("msg"))
        self.record("backup", "A ansible", provider, size, measured, entry["bytes_stored"])

    def restore_a_ansible(self, ds: str, provider: str, size: int) -> None:
        assert self.pool is not None
        target = "%s/rx-%s-%s" % (self.pool.name, self.mix, provider)
        measured, result = self._ansible("offsite_restore", provider, "ansible-" + self.mix, {
            "dataset": ds, "snapshot": "bench1", "target": target, "identity_file": str(self.key.path)})
        if result.get("failed"):
            raise RuntimeError("ansible restore: %s" % result.get("msg"))
        self._received(ds, target)
        self.record("restore", "A ansible", provider, size, measured)

    # -- fan-out: one send to several providers, through ansible ------------------------------
    # Each variant: the providers of its config file, and the single provider it is compared with (the slowest
    # of its providers: a fan-out cannot finish before its slowest provider does).
    FANOUT_VARIANTS = {
        "3x local": (["f1", "f2", "f3"], "f1"),
        "local, local, s3": (["f1", "f2", "fs3"], "fs3"),
    }

    def fanout_config(self, names: List[str], namespace: str) -> Dict[str, Any]:
        assert self.s3 is not None
        specs: Dict[str, Dict[str, Any]] = {}
        for name in names:
            if name == "fs3":
                specs[name] = {"remote": "benchs3:bucket/fanout", "env": self.s3.env("BENCHS3")}
            else:
                path = self.work / ("remote-fanout-%s" % name)
                path.mkdir(exist_ok=True)
                specs[name] = {"remote": str(path)}
        config = self.config("local", namespace)
        config["providers"] = specs
        return config

    def module_meter(self, name: str) -> tuple:
        """A wrapper interpreter for ansible_python_interpreter: it runs the venv's Python (the module process) and
        appends its wall-clock span and its CPU (bash `times`: the module process and the children it waited for:
        rclone, zfs, age) to a file. (wrapper path, output path)"""
        out = self.work / ("meter-%s.txt" % name)
        wrapper = self.work / ("meter-%s.sh" % name)
        wrapper.write_text('#!/bin/bash\nstart=$EPOCHREALTIME\n"%s" "$@"\nrc=$?\nend=$EPOCHREALTIME\n'
                           '{ echo "span $start $end"; times; } >> "%s"\nexit $rc\n' % (sys.executable, out),
                           encoding="utf-8")
        wrapper.chmod(0o700)
        return wrapper, out

    @staticmethod
    def read_meter(path: Path) -> Dict[str, float]:
        """Sum of the module processes' spans and CPU from module_meter's file."""
        import re
        seconds = cpu = 0.0
        runs = 0
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        for number, line in enumerate(lines):
            if line.startswith("span "):
                start, end = (float(v) for v in line.split()[1:3])
                seconds += end - start
                runs += 1
                # `times`: the shell's own user/sys, then its children's (the module process tree)
                if number + 2 < len(lines):
                    cpu += sum(int(m) * 60 + float(s) for m, s in re.findall(r"(\d+)m([\d.]+)s", lines[number + 2]))
        return {"module_seconds": seconds, "module_cpu": cpu, "module_runs": runs}

    def backup_fanout(self, ds: str, variant: str, selection: str, repeat: int) -> Dict[str, Any]:
        """One `offsite_backup` through ansible with `providers: <selection>` (all, or one name) of the variant's
        config file, into a fresh namespace."""
        assert self.s3 is not None
        names, _single = self.FANOUT_VARIANTS[variant]
        tag = "%s-%s-%s-%d" % (self.mix, variant.replace(", ", "-").replace(" ", ""), selection, repeat)
        namespace = "fan-" + tag
        ans = harness.Ansible(harness.collection_link(), self.work / "ansible")
        config = harness.write_config(self.work / ("offsite-%s.yml" % namespace), self.fanout_config(names, namespace))
        wrapper, meter = self.module_meter(tag)
        argv = [ans.ansible, "localhost", "-i", "localhost,", "-c", "local", "-m", "offsite.zfs.offsite_backup",
                "-a", json.dumps({"dataset": ds, "snapshot": "bench1", "config": str(config), "providers": selection})]
        env = ans.env({"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.minimal",
                       "ANSIBLE_PYTHON_INTERPRETER": str(wrapper)})
        s3cpu0 = _cpu_of(self.s3.proc.pid)
        measured = Measure(argv, env=env, spool=self.work / "spool").run()
        s3cpu = _cpu_of(self.s3.proc.pid) - s3cpu0
        out = measured["stdout"]
        result, _end = json.JSONDecoder().raw_decode(out[out.index("{"):])
        chosen = names if selection == "all" else [selection]
        bad = {n: result["providers"].get(n, {}).get("status") for n in chosen
               if result["providers"].get(n, {}).get("status") != "uploaded"}
        if bad or result.get("failed"):
            raise RuntimeError("fan-out backup %s: %s %s" % (tag, bad, result.get("msg")))
        manifests = {result["providers"][n].get("manifest_sha256") for n in chosen}
        row = {"op": "fanout", "variant": variant, "provider": selection, "providers": len(chosen), "mix": self.mix,
               "bytes": self.fanout_size, "repeat": repeat, "zfs_sends": result.get("zfs_sends"),
               "same_manifest": len(manifests) == 1, "spool_bound": result.get("spool_bound_bytes", 0),
               "stored": sum(result["providers"][n]["bytes_stored"] for n in chosen), "s3_server_cpu": s3cpu}
        row.update({k: v for k, v in measured.items() if k != "stdout"})
        row.update(self.read_meter(meter))
        row["mbps"] = row["bytes"] / row["seconds"] / 1e6
        self.results.append(row)
        self.log("%-7s fanout  %-16s %-4s wall %5.1fs (module %5.1fs)  cpu tree %5.1fs module %5.1fs (+zfs %4.1fs, "
                 "+s3 server %4.1fs)  zfs sends %s  spool %d / %d MiB" % (
                     self.mix, variant, selection, row["seconds"], row["module_seconds"], row["cpu"],
                     row["module_cpu"], row["zfs_cpu"], s3cpu, row["zfs_sends"], row["peak_spool"] // MiB,
                     row["spool_bound"] // MiB))
        return row

    def fanout(self, ds: str, size: int) -> None:
        """Per variant and repeat, back to back: the single provider then all three, and the other way round on odd
        repeats, so that a drift of the machine's load does not always favour the same side."""
        self.fanout_size = size
        for repeat in range(self.args.fanout_repeat):
            for variant, (names, single) in self.FANOUT_VARIANTS.items():
                if "s3" not in self.args.providers.split(",") and "fs3" in names:
                    continue
                for selection in (single, "all") if repeat % 2 == 0 else ("all", single):
                    self.backup_fanout(ds, variant, selection, repeat)

    def backup_b(self, ds: str, provider: str, size: int) -> None:
        dest = self.remote_path(provider, "old-bash")
        script = ("set -o pipefail; zfs send %s@bench1 | split -b %d -a 4 -d --filter "
                  "'gzip | age -r %s | %s rcat %s/$FILE.gz.age' - chunk-" % (
                      ds, self.args.split_size, self.key.public, self.rclone, dest))
        measured = Measure(["bash", "-c", script], env=self.rclone_env(provider)).run()
        self.record("backup", "B bash", provider, size, measured, self.stored_bytes(provider, "old-bash"))

    def backup_c(self, ds: str, provider: str, size: int) -> None:
        script = "set -o pipefail; zfs send %s@bench1 | %s rcat %s" % (
            ds, self.rclone, self.remote_path(provider, "raw/stream.zfs"))
        measured = Measure(["bash", "-c", script], env=self.rclone_env(provider)).run()
        self.record("backup", "C raw", provider, size, measured, self.stored_bytes(provider, "raw"))

    # -- restic, the peer -----------------------------------------------------------------------
    def restic_env(self, provider: str) -> Dict[str, str]:
        env = dict(os.environ, RESTIC_PASSWORD="offsite-bench", RESTIC_CACHE_DIR=str(self.work / "restic-cache"))
        if provider == "local":
            env["RESTIC_REPOSITORY"] = str(Path(self.remotes["local"]["remote"]) / self.mix / "restic")
        else:
            assert self.s3 is not None
            env.update(RESTIC_REPOSITORY="s3:http://127.0.0.1:%d/bucket/bench/%s/restic" % (self.s3.port, self.mix),
                       AWS_ACCESS_KEY_ID=self.s3.access_key, AWS_SECRET_ACCESS_KEY=self.s3.secret_key)
        return env

    def backup_r(self, ds: str, provider: str, size: int) -> None:
        if shutil.which("restic") is None:
            self.notes.append("restic is not installed: no R rows (apt-get install restic)")
            return
        env = self.restic_env(provider)
        subprocess.run(["restic", "init", "--repository-version", "2"], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        script = "set -o pipefail; zfs send %s@bench1 | restic backup --quiet --stdin --stdin-filename stream.zfs" % ds
        measured = Measure(["bash", "-c", script], env=env).run()
        self.record("backup", "R restic", provider, size, measured, self.stored_bytes(provider, "restic"))

    def restore_r(self, ds: str, provider: str, size: int) -> None:
        if shutil.which("restic") is None:
            return
        assert self.pool is not None
        target = "%s/rr-%s-%s" % (self.pool.name, self.mix, provider)
        script = "set -o pipefail; restic dump --quiet latest /stream.zfs | zfs receive %s" % target
        measured = Measure(["bash", "-c", script], env=self.restic_env(provider)).run()
        self._received(ds, target)
        self.record("restore", "R restic", provider, size, measured)

    def _received(self, source: str, target: str) -> None:
        want = self.zfs.get(source + "@bench1", "guid")
        got = self.zfs.get(target + "@bench1", "guid")
        if want != got:
            raise RuntimeError("restore into %s: guid %s, expected %s" % (target, got, want))
        self.zfs.destroy(target, recursive=True)

    def restore_a(self, ds: str, provider: str, size: int) -> None:
        assert self.pool is not None
        target = "%s/ra-%s-%s" % (self.pool.name, self.mix, provider)
        spec = {"config": self.config(provider, "a-" + self.mix), "snapshot": "bench1", "target": target,
                "identity_file": str(self.key.path)}
        path = self.spec_file("ra-%s" % provider, spec)
        measured = Measure([sys.executable, __file__, "--child", "restore", path, ds],
                           spool=self.work / "spool").run()
        self._received(ds, target)
        self.record("restore", "A", provider, size, measured)

    def restore_b(self, ds: str, provider: str, size: int) -> None:
        assert self.pool is not None
        target = "%s/rb-%s-%s" % (self.pool.name, self.mix, provider)
        dest = self.remote_path(provider, "old-bash")
        script = ("set -o pipefail; for f in $(%s lsf %s | sort); do %s cat %s/$f | age -d -i %s | gunzip; done "
                  "| zfs receive %s" % (self.rclone, dest, self.rclone, dest, self.key.path, target))
        measured = Measure(["bash", "-c", script], env=self.rclone_env(provider)).run()
        self._received(ds, target)
        self.record("restore", "B bash", provider, size, measured)

    def restore_c(self, ds: str, provider: str, size: int) -> None:
        assert self.pool is not None
        target = "%s/rc-%s-%s" % (self.pool.name, self.mix, provider)
        script = "set -o pipefail; %s cat %s | zfs receive %s" % (
            self.rclone, self.remote_path(provider, "raw/stream.zfs"), target)
        measured = Measure(["bash", "-c", script], env=self.rclone_env(provider)).run()
        self._received(ds, target)
        self.record("restore", "C raw", provider, size, measured)

    # -- status ------------------------------------------------------------------------------
    def status(self) -> None:
        backups, chunks = self.args.status_backups, self.args.status_chunks
        per = max(1, chunks // backups)
        datasets = max(1, backups // 50)
        root = self.work / "status-remote"
        started = time.monotonic()
        made = 0
        for number in range(backups):
            ds = "tank/host%02d/data" % (number % datasets)
            snap = "daily-%05d" % number
            guid = 0x1000 + number
            base = None if number < datasets else "daily-%05d" % (number - datasets)
            backup_id = catalog.make_backup_id(snap, guid, base)
            bdir = root / "fleet" / ds / ("@" + backup_id)
            bdir.mkdir(parents=True)
            records = []
            for index in range(per):
                name = catalog.chunk_object(index, ".zst")
                (bdir / name).write_bytes(b"x" * 16)
                records.append(ChunkRecord(index, name, 65536, "0" * 64, 16, "0" * 64))
                made += 1
            manifest = Manifest(
                backup_id=backup_id, namespace="fleet", dataset=ds,
                snapshot=SnapshotRef(snap, str(guid), 100 + number, 1763770000 + number * 60),
                kind="incremental" if base else "full",
                base=SnapshotRef(base, str(guid - datasets), 100 + number - datasets,
                                 1763770000 + (number - datasets) * 60) if base else None,
                send_flags=[], compression={"algorithm": "zstd", "level": 3},
                encryption={"kind": "recipients", "recipients": [self.key.public], "wrapped_identity": None,
                            "sealed_key": "AAAA"},
                chunk_size=65536, chunks=records, host="bench", tool_version="bench",
                started="2026-11-22T00:00:00Z", finished="2026-11-22T00:00:01Z")
            manifest.seal_with(b"k" * 32)
            (bdir / catalog.MANIFEST).write_bytes(manifest.to_json())
        self.log("synthetic remote: %d backups, %d chunk objects in %.1fs" % (backups, made,
                                                                              time.monotonic() - started))
        store = Store(Provider("synthetic", str(root), rclone=self.rclone))
        what = "catalog.list_backups over the whole namespace"
        try:
            from ansible_collections.offsite.zfs.plugins.module_utils import _wiring  # type: ignore
            has_status = hasattr(_wiring, "status_report")
        except ImportError:
            has_status = False
        started = time.monotonic()
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        count = None
        if has_status:
            config = {"namespace": "fleet", "rclone": self.rclone, "state_dir": str(self.work / "state"),
                      "log_dir": str(self.work / "log"), "providers": {"synthetic": {"remote": str(root)}},
                      "defaults": {"spool": {"dir": str(self.work / "spool")}}}
            try:
                report = _wiring.status_report(config, {"compare_local": False})  # type: ignore
                what = "status.run_status"
                self.status_result = report
            except TypeError as exc:
                self.notes.append("status.run_status has another signature (%s); measured list_backups" % exc)
                started = time.monotonic()
        if what != "status.run_status":
            listing = catalog.list_backups(store, "fleet", None, work_dir=str(self.work))
            count = sum(1 for b in listing.backups.values() if b.complete)
            if count != backups:
                raise RuntimeError("status listed %d complete backups, %d made" % (count, backups))
        seconds = time.monotonic() - started
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        self.results.append({"op": "status", "variant": what, "provider": "local", "bytes": 0, "seconds": seconds,
                             "backups": backups, "objects": made + backups,
                             "cpu": (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)})
        self.log("status (%s): %d backups, %d objects in %.2fs" % (what, backups, made + backups, seconds))

    # -- the whole run -------------------------------------------------------------------------
    def run(self) -> None:
        self.setup()
        if not self.args.skip_ansible:
            self.ansible_warmup()
        first = None
        for mix in self.mixes:
            self.mix = mix
            ds = self.fill("mix-" + mix, self.size, 1)
            first = first or ds
            stream = self.send_null(ds)
            for provider in self.args.providers.split(","):
                # The headline (ansible) and the diagnostic (direct) rows side by side, then the others.
                if not self.args.skip_ansible:
                    self.backup_a_ansible(ds, provider, stream)
                self.backup_a(ds, provider, "a-" + mix, stream)
                self.backup_b(ds, provider, stream)
                self.backup_c(ds, provider, stream)
                # The direct restore first: on zfs-fuse the first restore after the backups ran slower (the
                # ansible row 11.7-15.8 s against 5.4-8.8 s when it went first), which is not ansible's cost.
                self.restore_a(ds, provider, stream)
                if not self.args.skip_ansible:
                    self.restore_a_ansible(ds, provider, stream)
                self.restore_b(ds, provider, stream)
                self.restore_c(ds, provider, stream)
                if not self.args.skip_restic:
                    self.backup_r(ds, provider, stream)
                    self.restore_r(ds, provider, stream)
            if not self.args.skip_ansible and self.args.fanout_repeat:
                self.fanout(ds, stream)
        self.mix = self.mixes[0]
        ds = first
        for number, size in enumerate(self.mem_sizes):
            mds = self.sized_clone(ds, "mem%d" % number, size, 10 + number)
            mstream = int(Measure(["bash", "-c", "set -o pipefail; zfs send %s@bench1 | wc -c" % mds]).run()[
                "stdout"].strip())
            row = self.backup_a(mds, "local", "mem%d" % number, mstream)
            row["op"] = "memory"
            self.zfs.destroy(mds, recursive=True)
        if self.args.status_backups:
            self.status()

    def cleanup(self) -> None:
        if self.s3 is not None:
            self.s3.stop()
        if self.pool is not None:
            self.pool.destroy()
        if self.daemon is not None and self.daemon.pid:
            self.daemon.stop()  # only a daemon this run started
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)


# -- reporting ----------------------------------------------------------------------------------------
def _find(results: List[Dict[str, Any]], op: str, variant: str, provider: str,
          mix: Optional[str] = None) -> Optional[Dict[str, Any]]:
    return next((r for r in results if r["op"] == op and r["variant"] == variant and r["provider"] == provider
                 and (mix is None or r.get("mix") == mix)), None)


def _headline(results: List[Dict[str, Any]], op: str, provider: str, mix: str) -> Optional[Dict[str, Any]]:
    """The row users get: through ansible when it was measured, else the direct call."""
    return _find(results, op, "A ansible", provider, mix) or _find(results, op, "A", provider, mix)


def table(results: List[Dict[str, Any]]) -> str:
    lines = ["| mix | operation | variant | remote | stream MiB | seconds | MB/s | CPU s/GB (+zfs) | stored MiB | "
             "peak RSS MiB (Python / tree) | peak PSS tree MiB | vs B | vs C | vs R |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in results:
        if row["op"] not in ("send", "backup", "restore"):
            continue
        ratios = ["", "", ""]
        if row["variant"].startswith("A"):
            for position, variant in enumerate(("B bash", "C raw", "R restic")):
                other = _find(results, row["op"], variant, row["provider"], row.get("mix"))
                ratios[position] = "%.2fx" % (row["mbps"] / other["mbps"]) if other else ""
        zcpu = row.get("zfs_cpu", 0.0) / (row["bytes"] / 1e9)
        variant = "**%s**" % row["variant"] if row["variant"] == "A ansible" else row["variant"]
        lines.append("| %s | %s | %s | %s | %d | %.1f | %.1f | %.1f (+%.1f) | %s | %d / %d | %d | %s | %s | %s |" % (
            row.get("mix", ""), row["op"], variant, row["provider"], row["bytes"] // MiB, row["seconds"],
            row["mbps"], row["cpu_per_gb"], zcpu, "-" if row.get("stored") is None else "%d" % (row["stored"] // MiB),
            row["peak_python_rss"] // MiB, row["peak_rss"] // MiB, row["peak_pss"] // MiB, *ratios))
    return "\n".join(lines)


def memory_table(results: List[Dict[str, Any]]) -> str:
    lines = ["| stream MiB | MB/s | peak RSS Python MiB | peak RSS tree MiB | peak PSS tree MiB | spool high-water MiB "
             "| spool bound MiB |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for row in results:
        if row["op"] == "memory":
            lines.append("| %d | %.1f | %d | %d | %d | %.1f | %.1f |" % (
                row["bytes"] // MiB, row["mbps"], row["peak_python_rss"] // MiB, row["peak_rss"] // MiB,
                row["peak_pss"] // MiB, row["peak_spool"] / MiB, row["spool_bound"] / MiB))
    return "\n".join(lines)


def _fanout_pairs(results: List[Dict[str, Any]]) -> List[tuple]:
    """(mix, variant, single rows, all rows) per fan-out variant measured."""
    out: List[tuple] = []
    rows = [r for r in results if r["op"] == "fanout"]
    for key in dict.fromkeys((r["mix"], r["variant"]) for r in rows):
        ones = [r for r in rows if (r["mix"], r["variant"]) == key and r["provider"] != "all"]
        alls = [r for r in rows if (r["mix"], r["variant"]) == key and r["provider"] == "all"]
        if ones and alls:
            out.append((key[0], key[1], ones, alls))
    return out


def _sum(rows: List[Dict[str, Any]], field: str) -> float:
    return sum(r.get(field, 0.0) for r in rows)


def _over(alls: List[Dict[str, Any]], ones: List[Dict[str, Any]], *fields: str) -> float:
    """sum(fields) over the 3-provider runs / the same over the 1-provider runs."""
    return sum(_sum(alls, f) for f in fields) / max(sum(_sum(ones, f) for f in fields), 1e-9)


def fanout_table(results: List[Dict[str, Any]]) -> str:
    lines = ["| mix | providers | selection | stream MiB | wall s (ansible) | module process s | CPU s, module tree "
             "(+zfs, +S3 server) | CPU s, ansible tree | zfs sends | stored MiB (all providers) | spool high-water / "
             "bound MiB |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in results:
        if row["op"] != "fanout":
            continue
        lines.append("| %s | %s | %s | %d | %.1f | %.1f | %.1f (+%.1f, +%.1f) | %.1f | %s | %d | %d / %d |" % (
            row["mix"], row["variant"], row["provider"], row["bytes"] // MiB, row["seconds"], row["module_seconds"],
            row["module_cpu"], row["zfs_cpu"], row["s3_server_cpu"], row["cpu"], row.get("zfs_sends"),
            row["stored"] // MiB, row["peak_spool"] // MiB, row["spool_bound"] // MiB))
    ratios = ["", "| mix | providers | 3 vs 1: wall (ansible) | wall (module process) | CPU (module tree) | "
              "CPU (module tree + zfs + S3 server) |", "|---|---|---:|---:|---:|---:|"]
    for mix, variant, ones, alls in _fanout_pairs(results):
        ratios.append("| %s | %s vs %s | %.2fx | %.2fx | %.2fx | %.2fx |" % (
            mix, variant, ones[0]["provider"], _over(alls, ones, "seconds"), _over(alls, ones, "module_seconds"),
            _over(alls, ones, "module_cpu"), _over(alls, ones, "module_cpu", "zfs_cpu", "s3_server_cpu")))
    return "\n".join(lines + (ratios if len(ratios) > 3 else []))


def fanout_targets(results: List[Dict[str, Any]]) -> List[tuple]:
    out: List[tuple] = []
    for mix, variant, ones, alls in _fanout_pairs(results):
        where = "%s, %s vs %s alone" % (mix, variant, ones[0]["provider"])
        wall, module_wall = _over(alls, ones, "seconds"), _over(alls, ones, "module_seconds")
        cpu = _over(alls, ones, "module_cpu")
        out.append(("3 providers <= 1.3x the wall time of one, %s (A ansible)" % where,
                    "%.2fx (module process %.2fx)" % (wall, module_wall), wall <= 1.3))
        out.append(("3 providers <= 1.2x the CPU of one (module process tree), %s" % where, "%.2fx" % cpu,
                    cpu <= 1.2))
        sends = sorted({r.get("zfs_sends") for r in alls}, key=str)
        out.append(("one zfs send for 3 providers, same manifest on each, %s" % where,
                    "%s send(s)" % "/".join(str(s) for s in sends),
                    sends == [1] and all(r["same_manifest"] for r in alls)))
        worst = max(alls, key=lambda r: r["peak_spool"] - r["spool_bound"])
        out.append(("spool high-water within the 3-provider bound, %s" % where, _spool_text(worst),
                    worst["peak_spool"] <= worst["spool_bound"]))
    return out


def _spool_text(r: Dict[str, Any]) -> str:
    return "%.1f of %.1f MiB" % (r["peak_spool"] / MiB, r["spool_bound"] / MiB)


def _ratio(name: str, a: Optional[Dict[str, Any]], other: Optional[Dict[str, Any]], goal: float) -> List[tuple]:
    if not a or not other:
        return []
    return [(name, "%.2fx" % (a["mbps"] / other["mbps"]), a["mbps"] >= goal * other["mbps"])]


def targets(results: List[Dict[str, Any]], providers: List[str], mixes: Optional[List[str]] = None) -> List[tuple]:
    out: List[tuple] = []
    for mix in mixes or sorted({r.get("mix") for r in results if r.get("mix")}):
        for provider in providers:
            where = "%s, %s" % (mix, provider)
            a = _headline(results, "backup", provider, mix)
            ra = _headline(results, "restore", provider, mix)
            b, c, r = (_find(results, "backup", v, provider, mix) for v in ("B bash", "C raw", "R restic"))
            rc, rr = (_find(results, "restore", v, provider, mix) for v in ("C raw", "R restic"))
            via = " (%s)" % a["variant"] if a else ""
            out += _ratio("backup >= 8x B, %s%s" % (where, via), a, b, 8.0)
            out += _ratio("backup >= 1.0x raw, %s%s" % (where, via), a, c, 1.0)
            out += _ratio("backup >= 1.3x restic, %s%s" % (where, via), a, r, 1.3)
            if a and r and a.get("stored") and r.get("stored"):
                out.append(("stored <= restic, %s" % where, "%.1f vs %.1f MiB" % (a["stored"] / MiB, r["stored"] / MiB),
                            a["stored"] <= r["stored"]))
            direct = _find(results, "backup", "A", provider, mix)
            if a and direct and a is not direct:
                out.append(("backup through ansible within 5 %% of the direct call, %s" % where,
                            "%.2fx" % (a["mbps"] / direct["mbps"]), a["mbps"] >= 0.95 * direct["mbps"]))
            via = " (%s)" % ra["variant"] if ra else ""
            out += _ratio("restore >= 0.8x raw, %s%s" % (where, via), ra, rc, 0.8)
            out += _ratio("restore >= 1.3x restic, %s%s" % (where, via), ra, rr, 1.3)
    mem = [r for r in results if r["op"] == "memory"]
    if mem:
        worst = max(r["peak_python_rss"] for r in mem)
        out.append(("peak RSS (Python process) <= 100 MiB", "%d MiB" % (worst // MiB), worst <= 100 * MiB))
        worst_pss = max(r["peak_pss"] for r in mem)
        out.append(("peak PSS (whole tree, Python + rclone) <= 100 MiB", "%d MiB" % (worst_pss // MiB),
                    worst_pss <= 100 * MiB))
        if len(mem) >= 2:
            low, high = mem[0]["peak_python_rss"], mem[-1]["peak_python_rss"]
            sizes = (mem[0]["bytes"] // MiB, mem[-1]["bytes"] // MiB)
            label = "peak RSS same (+-15%%) for %d and %d MiB streams" % sizes
            out.append((label, "%d vs %d MiB" % (low // MiB, high // MiB), abs(high - low) <= 0.15 * low))
        worst = max(mem, key=lambda r: r["peak_spool"] - r["spool_bound"])
        out.append(("spool high-water within (parallel_uploads+1) x chunk_size", _spool_text(worst),
                    worst["peak_spool"] <= worst["spool_bound"]))
    out += fanout_targets(results)
    st = next((r for r in results if r["op"] == "status"), None)
    if st:
        out.append(("status over %d backups / %d objects < 5 s" % (st["backups"], st["objects"]),
                    "%.2f s" % st["seconds"], st["seconds"] < 5))
    return out


def report(bench: Bench) -> str:
    results = bench.results
    providers = bench.args.providers.split(",")
    st = next((r for r in results if r["op"] == "status"), None)
    sends = [r for r in results if r["op"] == "send"]
    text = ["Run %s on %s, %d CPUs, Python %s, rclone %s; streams %s MiB, chunk_size %s, --size %s." % (
        time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), platform.node(), os.cpu_count() or 0,
        platform.python_version(), subprocess.run([bench.rclone, "version"], stdout=subprocess.PIPE, text=True,
                                                  check=False).stdout.split("\n")[0].split()[-1],
        " / ".join("%d" % (r["bytes"] // MiB) for r in sends) or "0",
        bench.args.chunk_size or "default (256MiB)", bench.args.size), ""]
    for mix in bench.mixes:
        text += ["Data mix %s: %s." % (mix, ", ".join("%d %% %s" % (share * 100, kind) for kind, share in MIXES[mix]))]
    text += ["", "Load average at the end: %s (the machine is shared; --nice %d)." % (
        " ".join(open("/proc/loadavg").read().split()[0:3]), bench.args.nice), "",
        "### Throughput", "", "The headline rows are **A ansible** (`ansible localhost -m offsite.zfs.offsite_backup` "
        "/ `offsite_restore`); A is the direct call, a diagnostic row.", "", table(results), "",
        "### Memory and temp space of A (local remote)", "", memory_table(results), ""]
    if any(r["op"] == "fanout" for r in results):
        text += ["### Fan-out: one backup to 3 providers against 1", "",
                 "`ansible localhost -m offsite.zfs.offsite_backup -a 'providers=…'` with a config of three providers "
                 "(three local directories, or two and the S3 endpoint), once with `providers: all` and once with the "
                 "one provider it is compared with, back to back, each into a fresh namespace. The module process "
                 "is timed by a wrapper interpreter (its wall span, and the CPU of it and the children it waited "
                 "for: rclone, zfs, age); +zfs is the zfs-fuse daemon's CPU meanwhile, +S3 server the `rclone serve "
                 "s3` process's.", "", fanout_table(results), ""]
    if st:
        text += ["### Status", "", "%s over %d backups and %d objects (manifests + chunks, local backend): "
                 "%.2f s wall, %.2f s CPU in-process (plus rclone)." % (
                     st["variant"], st["backups"], st["objects"], st["seconds"], st["cpu"]), ""]
    text += ["### Targets", "", "| target | measured | met |", "|---|---|---|"]
    for name, value, ok in targets(results, providers, bench.mixes):
        text.append("| %s | %s | %s |" % (name, value, "yes" if ok else "**no**"))
    for note in bench.notes:
        text += ["", "Note: " + note]
    return "\n".join(text) + "\n"


def write_doc(path: Path, body: str) -> None:
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n\n%s\n%s\n" % (DOC_BEGIN, DOC_END)
    if DOC_BEGIN not in old:
        old += "\n%s\n%s\n" % (DOC_BEGIN, DOC_END)
    head, rest = old.split(DOC_BEGIN, 1)
    tail = rest.split(DOC_END, 1)[1] if DOC_END in rest else ""
    path.write_text(head + DOC_BEGIN + "\n" + body + DOC_END + tail, encoding="utf-8")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="2G", help="dataset size for the throughput runs (default 2G)")
    parser.add_argument("--mem-sizes", default="1G,4G", help="dataset sizes for the memory runs (default 1G,4G)")
    parser.add_argument("--chunk-size", default=None, help="chunk_size for A (default: the collection's default)")
    parser.add_argument("--split-size", type=parse_size_arg, default=GiB, help="split -b of B (default 1G)")
    parser.add_argument("--providers", default="local,s3", help="remotes to measure (default local,s3)")
    parser.add_argument("--status-backups", type=int, default=1000)
    parser.add_argument("--status-chunks", type=int, default=50000)
    parser.add_argument("--skip-ansible", action="store_true", help="skip the run through ansible")
    parser.add_argument("--skip-restic", action="store_true", help="skip the restic rows (R)")
    parser.add_argument("--fanout-repeat", type=int, default=1,
                        help="pairs (1 provider, then 3) per fan-out variant and mix, through ansible; 0 skips them"
                             " (default 1)")
    parser.add_argument("--mix", default=None,
                        help="the data, comma-separated mixes measured in turn (default half,default; --quick: half):"
                             " %s" % ", ".join(sorted(MIXES)))
    parser.add_argument("--quick", action="store_true",
                        help="smoke mode: 8 MiB, memory runs of 4 and 8 MiB, 20 backups/200 chunks, chunk 1MiB")
    parser.add_argument("--workdir", default=None, help="parent of the work directory (default /var/tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--doc", default=None, help="write the results into this markdown file (between markers)")
    parser.add_argument("--json", default=None, help="write the raw results as JSON here")
    parser.add_argument("--nice", type=int, default=0,
                        help="run at this niceness (e.g. -20 as root on a shared machine; every variant alike)")
    args = parser.parse_args()
    if args.quick:
        args.size, args.mem_sizes, args.status_backups, args.status_chunks = "8M", "4M,8M", 20, 200
        args.chunk_size = args.chunk_size or "1MiB"
        args.split_size = min(args.split_size, 4 * MiB)
    args.mix = args.mix or ("half" if args.quick else "half,default")
    unknown = [m for m in args.mix.split(",") if m not in MIXES]
    if unknown:
        parser.error("unknown --mix %s; choose from %s" % (", ".join(unknown), ", ".join(sorted(MIXES))))
    if args.nice:
        os.nice(args.nice)
    bench = Bench(args)
    try:
        bench.run()
    finally:
        bench.cleanup()
    body = report(bench)
    print(body)
    if args.json:
        Path(args.json).write_text(json.dumps(bench.results, indent=1, default=str), encoding="utf-8")
    if args.doc:
        write_doc(Path(args.doc), body)
    return 0


def parse_size_arg(text: str) -> int:
    return parse_size(text, "size")


if __name__ == "__main__":
    sys.exit(main())
