"""Fixtures for the functional tests: real ZFS, real rclone, real ansible."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness  # noqa: E402
import zfs_watchdog  # noqa: E402
from _pytest.runner import runtestprotocol  # noqa: E402

sys.path.insert(0, str(harness.collection_link()))

from ansible_collections.offsite.zfs.plugins.module_utils import resolve, settings  # noqa: E402
from ansible_collections.offsite.zfs.plugins.module_utils.keys import load_keys  # noqa: E402
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.run import run_backup  # noqa: E402
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.run import run_restore  # noqa: E402


def pytest_sessionstart(session: pytest.Session) -> None:
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        zfs_watchdog.REPORT.unlink(missing_ok=True)  # this run's restarts only


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With xdist the workers share one zfs-fuse daemon: the controller stops it when all are done."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        harness.stop_started_daemon()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: Optional[pytest.Item]) -> bool:
    """Run a test once more when zfs-fuse was restarted under it (zfs_watchdog); else as pytest does."""
    seen = zfs_watchdog.generation()
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    reports = runtestprotocol(item, nextitem=nextitem, log=False)
    if any(report.failed for report in reports) and zfs_watchdog.generation() != seen:
        zfs_watchdog.REPORT.parent.mkdir(parents=True, exist_ok=True)
        with open(zfs_watchdog.REPORT, "a", encoding="utf-8") as handle:
            handle.write("%s failed while zfs-fuse was restarted; it runs once more\n\n" % item.nodeid)
        item._initrequest()  # fresh fixtures for the second run, as pytest-rerunfailures does
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
    for report in reports:
        item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say in the run's output when the zfs-fuse watchdog had to restart the daemon."""
    if not os.environ.get("PYTEST_XDIST_WORKER") and zfs_watchdog.REPORT.exists():
        terminalreporter.section("zfs-fuse watchdog")
        terminalreporter.write(zfs_watchdog.REPORT.read_text())


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("offsite")


@pytest.fixture(scope="session")
def zfs_daemon(session_dir: Path) -> Iterator[harness.ZfsDaemon]:
    daemon = harness.ZfsDaemon(session_dir)
    daemon.start()
    yield daemon
    daemon.stop()


@pytest.fixture
def pool(zfs_daemon: harness.ZfsDaemon, tmp_path: Path) -> Iterator[harness.Pool]:
    created = harness.Pool(tmp_path)
    yield created
    created.destroy()


@pytest.fixture(scope="session")
def rclone() -> str:
    return harness.rclone_binary()


@pytest.fixture(scope="session")
def s3(session_dir: Path, rclone: str) -> Iterator[harness.S3Server]:
    server = harness.S3Server(session_dir / "s3", rclone)
    yield server
    server.stop()


@pytest.fixture
def age_key(tmp_path: Path) -> harness.AgeKey:
    return harness.AgeKey(tmp_path)


@pytest.fixture(scope="session")
def installed_collection(session_dir: Path) -> Path:
    return harness.build_and_install(session_dir / "galaxy")


@pytest.fixture(scope="session")
def ansible(installed_collection: Path, session_dir: Path) -> harness.Ansible:
    return harness.Ansible(installed_collection, session_dir / "ansible")


class Lab:
    """One test's world: a pool, a key, remotes, a config file, and shortcuts to the operations."""

    def __init__(self, pool: harness.Pool, key: harness.AgeKey, tmp_path: Path, rclone: str) -> None:
        self.pool = pool
        self.key = key
        self.tmp = tmp_path
        self.rclone = rclone
        self.remotes: Dict[str, Path] = {}
        self.config: Dict[str, Any] = {
            "recipients": [key.public],
            "namespace": "testhost",
            "state_dir": str(tmp_path / "state"),
            "log_dir": str(tmp_path / "log"),
            "rclone": rclone,
            "providers": {},
            "defaults": {"chunk_size": "64KiB", "spool": {"dir": str(tmp_path / "spool")}},
        }
        self.add_local("local")

    def add_local(self, name: str, **extra: Any) -> Path:
        path = self.tmp / ("remote-%s" % name)
        path.mkdir(exist_ok=True)
        self.remotes[name] = path
        self.config["providers"][name] = dict({"remote": str(path), "retry_delay": 0.05}, **extra)
        return path

    def add_s3(self, server: harness.S3Server, name: str = "s3") -> None:
        remote_name = "S3T%s" % name.upper().replace("-", "")
        self.config["providers"][name] = {"remote": "%s:bucket/%s" % (remote_name.lower(), self.pool.name),
                                          "retry_delay": 0.05, "env": server.env(remote_name)}

    @property
    def config_path(self) -> Path:
        return harness.write_config(self.tmp / "offsite.yml", self.config)

    def settings(self, dataset: str, **params: Any) -> settings.DatasetSettings:
        return resolve.resolve(self.config, dataset, params)

    def backup(self, dataset: str, snapshot: Optional[str] = None, **kwargs: Any) -> Dict[str, Any]:
        params = {k: kwargs.pop(k) for k in list(kwargs) if k in (
            "providers", "chunk_size", "compression", "compression_level", "spool", "parallel_uploads",
            "send_options", "passphrase", "recipients", "namespace")}
        return run_backup(self.settings(dataset, **params), snapshot=snapshot, **kwargs)

    def restore(self, dataset: str, snapshot: Optional[str] = None, target: Optional[str] = None,
                provider: str = "auto", identity_file: Optional[str] = None, passphrase: Optional[str] = None,
                **kwargs: Any) -> Dict[str, Any]:
        params = {k: kwargs.pop(k) for k in list(kwargs) if k in ("spool", "namespace", "allow_unsigned")}
        keys = load_keys(None, identity_file or str(self.key.path), passphrase)
        return run_restore(self.settings(dataset, _single_provider=True, **params), snapshot=snapshot,
                           target=target, provider=provider, keys=keys, **kwargs)


@pytest.fixture
def lab(pool: harness.Pool, age_key: harness.AgeKey, tmp_path: Path, rclone: str) -> Lab:
    return Lab(pool, age_key, tmp_path, rclone)
