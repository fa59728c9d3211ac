"""Bounded rclone calls: failure classification, the unreachable budget, the bounding flags, bwlimit.

The unreachable provider is a real rclone S3 remote whose endpoint is a closed port on 127.0.0.1;
only sleep and the clock are replaced (the fake clock advances by each sleep), so the test takes
well under a second while the decisions are the ones a real 60 s budget makes.
"""

from __future__ import annotations

import shutil
import socket
import time
from typing import Dict, List

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils import config, rclone_errors
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.store import Provider, Store, StoreError

RCLONE = shutil.which("rclone")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the socket is: nothing listens there


def s3_env(endpoint: str) -> Dict[str, str]:
    prefix = "RCLONE_CONFIG_DEADS3_"
    return {prefix + "TYPE": "s3", prefix + "PROVIDER": "Other", prefix + "ENDPOINT": endpoint,
            prefix + "ACCESS_KEY_ID": "AKIDEXAMPLE", prefix + "SECRET_ACCESS_KEY": "not-a-secret",
            prefix + "FORCE_PATH_STYLE": "true"}


class FakeTime:
    """Sleeps are recorded, not slept; the clock is the real one plus the time slept."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.sleeps: List[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def clock(self) -> float:
        return time.monotonic() + sum(self.sleeps)

    @property
    def elapsed(self) -> float:
        return self.clock() - self.start


@pytest.mark.parametrize("code,stderr,kind,cause", [
    (1, 'Get "http://127.0.0.1:1/b?x=1": dial tcp 127.0.0.1:1: connect: connection refused', "unreachable",
     "connection refused"),
    (1, "dial tcp: lookup s3.example.invalid on 10.0.0.1:53: no such host", "unreachable", "DNS"),
    (1, "x509: certificate signed by unknown authority", "unreachable", "TLS"),
    (1, "dial tcp 10.9.9.9:443: i/o timeout", "unreachable", "timed out"),
    (1, "api error InvalidAccessKeyId: The AWS Access Key Id you provided does not exist", "auth", "credentials"),
    (1, "StatusCode: 403, api error AccessDenied: Access Denied.", "auth", "credentials"),
    (3, "directory not found", "not_found", "not found"),
    (4, "object not found", "not_found", "not found"),
    (1, "Failed to copy: read tcp 127.0.0.1:443: connection reset by peer", "retryable", "error"),
    (-9, "", "timeout", "time limit"),
])
def test_failures_are_classified_once(code, stderr, kind, cause):
    found = rclone_errors.classify(code, stderr)
    assert found.kind == kind and cause in found.cause


def test_the_endpoint_is_named_without_path_or_query():
    text = 'Get "https://s3.example.com:9000/bucket?X-Amz-Signature=abc": dial tcp 1.2.3.4:9000: i/o timeout'
    assert rclone_errors.endpoint_of(text) == "https://s3.example.com:9000"
    assert rclone_errors.endpoint_of("dial tcp: lookup b2.invalid on 10.0.0.1:53: no such host") == "b2.invalid"
    assert rclone_errors.endpoint_of("nothing here") is None


@pytest.mark.parametrize("value", ["10M", "512k", "off", "10M:off", "1.5M", "08:00,2M 23:00,off",
                                   "Mon-00:00,512k Fri-23:59,10M Sat-10:00,1M:off", "100KiB"])
def test_rclone_bandwidth_limits_are_accepted(value):
    assert rclone_errors.valid_bwlimit(value)


@pytest.mark.parametrize("value", ["fast", "100kB", "10M;rm -rf /", "--config=/x", "08:00 2M", "10M,"])
def test_other_bandwidth_limits_are_refused_with_the_provider_named(value):
    assert not rclone_errors.valid_bwlimit(value)
    with pytest.raises(OffsiteError) as caught:
        config.make_provider("b2", {"remote": "b2:bucket", "bwlimit": value}, "rclone")
    assert caught.value.code == "bad_value" and "bwlimit" in caught.value.message and "b2" in caught.value.message


def test_policy_sets_the_bounds_and_every_call_carries_them(tmp_path):
    provider = config.make_provider("b2", {"remote": str(tmp_path), "connect_timeout": "5s", "io_timeout": "2m",
                                           "low_level_retries": 2, "call_timeout": "10m",
                                           "unreachable_budget": "30s", "bwlimit": "08:00,2M 23:00,off"}, "rclone")
    assert (provider.connect_timeout, provider.io_timeout, provider.low_level_retries, provider.call_timeout,
            provider.unreachable_budget) == (5.0, 120.0, 2, 600.0, 30.0)
    argv = Store(provider).argv("lsjson", "-R", "b2:x")
    assert argv[:2] == ["rclone", "lsjson"] and argv[-2:] == ["-R", "b2:x"], "verb first, paths last"
    assert argv[2:10] == ["--contimeout", "5s", "--timeout", "120s", "--low-level-retries", "2",
                          "--bwlimit", "08:00,2M 23:00,off"]
    defaults = Store(Provider(name="p", remote=str(tmp_path))).argv("cat", "x")
    assert defaults == ["rclone", "cat", "--contimeout", "15s", "--timeout", "60s", "--low-level-retries", "2", "x"]


@pytest.mark.skipif(RCLONE is None, reason="rclone is not installed")
def test_an_unreachable_provider_fails_within_its_budget_naming_provider_endpoint_and_cause(tmp_path):
    port = closed_port()
    fake = FakeTime()
    logged: List[str] = []
    # The defaults (5 retries, a 60 s budget), but one low-level retry: each refused call then takes a
    # fraction of a second instead of the S3 SDK's ~4 s backoff, and the decisions stay the same.
    provider = Provider(name="b2", remote="deads3:bucket/offsite", env=s3_env("http://127.0.0.1:%d" % port),
                        rclone=RCLONE, low_level_retries=1)
    store = Store(provider, sleep=fake.sleep, clock=fake.clock)
    store.log = logged.append
    with pytest.raises(StoreError) as caught:
        store.list("host/tank/data")
    message = caught.value.message
    assert caught.value.code == "provider_unreachable" and caught.value.kind == "unreachable"
    assert message.startswith("Provider b2 cannot be reached at http://127.0.0.1:%d: connection refused" % port)
    assert sum(fake.sleeps) <= provider.unreachable_budget + 1e-6, fake.sleeps
    assert fake.elapsed < 120, "a dead provider fails within 2 minutes (rclone's own time included)"
    assert logged and all(line.startswith("provider b2: listing of host/tank/data failed (") for line in logged)
    assert "retry 1 in" in logged[0]


@pytest.mark.skipif(RCLONE is None, reason="rclone is not installed")
def test_a_call_over_its_wall_clock_limit_is_stopped_and_named(tmp_path):
    # A TCP port that accepts and never answers: rclone's own timeouts are longer than our limit.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        fake = FakeTime()
        provider = Provider(name="slow", remote="deads3:bucket", env=s3_env("http://127.0.0.1:%d" % port),
                            rclone=RCLONE, retries=0, call_timeout=1.0, io_timeout=30.0)
        with pytest.raises(StoreError) as caught:
            Store(provider, sleep=fake.sleep, clock=fake.clock).get_bytes("x/manifest.json")
    assert caught.value.kind == "timeout" and "within 1s (call_timeout)" in caught.value.message
    assert caught.value.message.startswith("Provider slow")


def test_refused_credentials_are_not_retried(tmp_path):
    fake = FakeTime()
    store = Store(Provider(name="b2", remote=str(tmp_path), retries=5), sleep=fake.sleep, clock=fake.clock)

    def refused() -> None:
        raise store.failure("list x", 1, b"ERROR : api error InvalidAccessKeyId: The Access Key Id does not exist")
    with pytest.raises(StoreError) as caught:
        store.retry(refused, "listing of x")
    assert fake.sleeps == [] and caught.value.code == "provider_auth"
    assert caught.value.message.startswith("Provider b2 refused the credentials or permissions, so it could not list x")


def test_the_default_bounds_fail_a_dead_provider_within_two_minutes():
    """Worst case with the defaults: the budget, plus one last call that hangs on connect each low-level try."""
    p = Provider(name="b2", remote="b2:x")
    worst_last_call = p.connect_timeout * p.low_level_retries + 5.0  # the SDK's backoff between its two tries
    assert p.unreachable_budget + worst_last_call < 120
