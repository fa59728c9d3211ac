"""Store.retry: exponential backoff with jitter, bounded attempts, what is and is not retried.

The failing calls are real rclone calls (a missing object on a local remote); only the sleep
is replaced, by a recorder, so the test takes no time.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import List

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.store import Provider, Store, StoreError

RCLONE = shutil.which("rclone")


def _store(tmp_path: Path, retries: int, delay: float, sleeps: List[float], rclone: str = RCLONE or "rclone") -> Store:
    provider = Provider(name="b2", remote=str(tmp_path), retries=retries, retry_delay=delay, rclone=rclone)
    return Store(provider, sleep=sleeps.append)


@pytest.mark.skipif(RCLONE is None, reason="rclone is not installed")
def test_a_failing_download_is_retried_with_exponential_backoff_then_fails_clearly(tmp_path):
    sleeps: List[float] = []
    store = _store(tmp_path, retries=4, delay=1.0, sleeps=sleeps)
    with pytest.raises(StoreError) as caught:
        store.get_bytes("no/such/object")
    assert len(sleeps) == 4
    for attempt, delay in enumerate(sleeps):
        assert 0.75 * 2 ** attempt <= delay <= 1.25 * 2 ** attempt, sleeps
    message = caught.value.message
    assert message.startswith("Provider b2 could not download no/such/object") and "(after 5 attempts)" in message
    assert caught.value.code == "provider_failed"
    assert len(store.retry_log) == 4 and "retry 4 in" in store.retry_log[-1]


@pytest.mark.skipif(RCLONE is None, reason="rclone is not installed")
def test_backoff_is_capped(tmp_path):
    sleeps: List[float] = []
    store = _store(tmp_path, retries=4, delay=40.0, sleeps=sleeps)
    with pytest.raises(StoreError):
        store.get_bytes("missing")
    assert all(delay <= 60 * 1.25 for delay in sleeps)
    assert all(delay >= 60 * 0.75 for delay in sleeps[1:]), "capped at 60s (with jitter), not 40*2**n"


@pytest.mark.skipif(RCLONE is None, reason="rclone is not installed")
def test_zero_retries_fails_at_once(tmp_path):
    sleeps: List[float] = []
    with pytest.raises(StoreError) as caught:
        _store(tmp_path, retries=0, delay=1.0, sleeps=sleeps).get_bytes("missing")
    assert sleeps == [] and "attempts" not in caught.value.message


def test_a_missing_rclone_is_not_retried(tmp_path):
    sleeps: List[float] = []
    store = _store(tmp_path, retries=5, delay=1.0, sleeps=sleeps, rclone=str(tmp_path / "no-rclone"))
    with pytest.raises(StoreError) as caught:
        store.get_bytes("x")
    assert caught.value.code == "rclone_missing" and sleeps == []
    assert "install rclone" in caught.value.message


def test_transient_failures_then_success(tmp_path):
    sleeps: List[float] = []
    store = _store(tmp_path, retries=5, delay=0.5, sleeps=sleeps)
    outcomes = [StoreError("Provider b2 could not upload x: reset", "provider_failed")] * 3 + ["done"]

    def flaky() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome
    assert store.retry(flaky, "upload of x") == "done"
    assert len(sleeps) == 3 and sleeps[2] > sleeps[0]


def test_other_errors_are_not_retried(tmp_path):
    sleeps: List[float] = []
    store = _store(tmp_path, retries=5, delay=0.5, sleeps=sleeps)

    def broken() -> None:
        raise OffsiteError("The chunk is corrupt.", "chunk_corrupt")
    with pytest.raises(OffsiteError):
        store.retry(broken, "download of x")
    assert sleeps == []


@pytest.mark.parametrize("remote", ["-x", "--config=/etc/passwd", "a\nb", "   "])
def test_a_remote_that_rclone_would_read_as_an_option_is_refused(remote):
    with pytest.raises(OffsiteError) as caught:
        Store(Provider(name="b2", remote=remote))
    assert caught.value.code == "bad_value" and "b2" in caught.value.message
