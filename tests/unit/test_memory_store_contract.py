"""The store contract (doubles/store_contract.py) against the in-memory store, in milliseconds.

The same contract runs against the real rclone Store (local directory and `rclone serve s3`) in
tests/functional/test_store_conformance.py.
"""

from __future__ import annotations

import pytest

from ansible_collections.offsite.zfs.tests.unit.doubles.memory_store import MemoryStore
from ansible_collections.offsite.zfs.tests.unit.doubles.store_contract import StoreContract


@pytest.fixture
def backend() -> str:
    return "memory"


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore("mem")


class TestMemoryStore(StoreContract):
    pass
