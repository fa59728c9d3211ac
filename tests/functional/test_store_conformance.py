"""One store contract (tests/unit/doubles/store_contract.py), three backends: the in-memory test double,
the real rclone Store on a local directory, and the real Store on `rclone serve s3`.

The memory leg also runs in tests/unit (test_memory_store_contract.py); this file is where the double
is held to what rclone does. Known differences between the real backends are strict xfails listed in
store_contract.DIVERGENCES. Budget: about 30 s on the CI machine (rclone calls on small objects).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import harness
import pytest

from ansible_collections.offsite.zfs.plugins.module_utils.store import Provider, Store
from ansible_collections.offsite.zfs.tests.unit.doubles.memory_store import MemoryStore
from ansible_collections.offsite.zfs.tests.unit.doubles.store_contract import StoreContract


@pytest.fixture(params=["memory", "local", "s3"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    if backend == "memory":
        return MemoryStore("mem")
    rclone = harness.rclone_binary()
    if backend == "local":
        root = tmp_path / "remote"
        root.mkdir()
        return Store(Provider(name="local", remote=str(root), retries=0, rclone=rclone))
    server: harness.S3Server = request.getfixturevalue("s3")
    # A fresh prefix per test in the session's bucket: every test starts from an empty store.
    return Store(Provider(name="s3", remote="S3TEST:bucket/%s" % uuid.uuid4().hex[:12], retries=0,
                          rclone=rclone, env=server.env("S3TEST")))


class TestStoreConformance(StoreContract):
    pass
