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

sys.path.insert(0, str(harness.collection_link()))

from ansible_collections.offsite.zfs.plugins.module_utils import policy  # noqa: E402
from ansible_collections.offsite.zfs.plugins.module_utils.backup import run_backup  # noqa: E402
from ansible_collections.offsite.zfs.plugins.module_utils.restore import load_keys, run_restore  # noqa: E402


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With xdist the workers share one zfs-fuse daemon: the controller stops it when all are done."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        harness.stop_started_daemon()


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

    def settings(self, dataset: str, **params: Any) -> policy.DatasetSettings:
        return policy.resolve(self.config, dataset, params)

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
