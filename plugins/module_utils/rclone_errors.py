# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an rclone failure means: classified once, at the edge, from its exit code and stderr.

Private to the collection: not an API for other collections.

Private to the collection. The store asks `classify()` and decides from the kind whether to retry;
no other code reads rclone's message text.

Kinds:
  not_found    the object or directory does not exist (rclone exit 3 or 4)
  unreachable  the endpoint cannot be reached: connection refused, DNS, TLS, connect/IO timeout
  auth         the provider refused the credentials or the permission
  timeout      our own wall-clock limit for the call ran out (the call was killed)
  retryable    anything else rclone reports (exit 1, 5, 6, ...): worth another attempt
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Tuple

NOT_FOUND = "not_found"
UNREACHABLE = "unreachable"
AUTH = "auth"
TIMEOUT = "timeout"
RETRYABLE = "retryable"

# (cause shown to the user, pattern in rclone's stderr), most specific first.
_UNREACHABLE: Tuple[Tuple[str, str], ...] = (
    ("connection refused", r"connection refused"),
    ("DNS lookup failed (no such host)", r"no such host|server misbehaving|Temporary failure in name resolution"),
    ("TLS handshake failed", r"x509:|tls: |certificate (signed by unknown|has expired|is not valid)"),
    ("connection timed out", r"i/o timeout|dial tcp[^\n]*timeout|context deadline exceeded|TLS handshake timeout"),
    ("network unreachable", r"network is unreachable|no route to host"),
)
_AUTH = (r"InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied|Access Denied|Forbidden|\b403\b|\b401\b|"
         r"Unauthorized|unauthorized|bad_auth_token|expired_auth_token|invalid_grant|"
         r"ssh: handshake failed|unable to authenticate|permission denied \(publickey")
_ENDPOINT_URL = re.compile(r"(?:Get|Put|Post|Head|Delete) \"(https?://[^/\"?]+)")
_ENDPOINT_DIAL = re.compile(r"dial tcp (\[?[A-Za-z0-9.:\-\]]+:\d+)")
_ENDPOINT_LOOKUP = re.compile(r"lookup ([A-Za-z0-9.\-]+)")


@dataclass
class Failure:
    kind: str
    cause: str  # a few words for the sentence: "connection refused", "credentials refused", ...
    endpoint: Optional[str] = None  # scheme://host:port or host:port, never a path or query

    @property
    def retry(self) -> bool:
        return self.kind in (RETRYABLE, UNREACHABLE, TIMEOUT, NOT_FOUND)


def endpoint_of(stderr: str) -> Optional[str]:
    """The host (and port) rclone talked to, from its error text; no path, query or credentials."""
    for pattern in (_ENDPOINT_URL, _ENDPOINT_DIAL, _ENDPOINT_LOOKUP):
        found = pattern.search(stderr)
        if found:
            return found.group(1).split("@")[-1]
    return None


def classify(returncode: int, stderr: str) -> Failure:
    """The kind of an rclone failure. returncode < 0 means the call was killed by our own limit."""
    endpoint = endpoint_of(stderr)
    if returncode in (3, 4):
        return Failure(NOT_FOUND, "not found", endpoint)
    for cause, pattern in _UNREACHABLE:
        if re.search(pattern, stderr, re.MULTILINE):
            return Failure(UNREACHABLE, cause, endpoint)
    if re.search(_AUTH, stderr):
        return Failure(AUTH, "credentials or permissions refused", endpoint)
    if returncode < 0:
        return Failure(TIMEOUT, "no answer within the time limit", endpoint)
    return Failure(RETRYABLE, "error", endpoint)


# rclone's --bwlimit: a rate ("10M", "512k", "off"), an upload:download pair ("10M:off"), or a
# timetable of "[Day-]HH:MM,RATE" entries separated by spaces ("08:00,2M 23:00,off").
_RATE = r"(?:off|\d+(?:\.\d+)?(?:[KkMmGgTtPp](?:iB?)?|[Bb])?)"
_PAIR = r"%s(?::%s)?" % (_RATE, _RATE)
_ENTRY = r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)-)?\d{1,2}:\d{2},%s" % _PAIR
BWLIMIT_RE = re.compile(r"^(?:%s|%s(?: +%s)*)$" % (_PAIR, _ENTRY, _ENTRY))


def valid_bwlimit(value: str) -> bool:
    """Whether value is a bandwidth limit rclone accepts (a rate, up:down rates, or a timetable)."""
    return bool(BWLIMIT_RE.match(value.strip()))
