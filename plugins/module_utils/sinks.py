# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sinks: where decoded plaintext goes.

Private to the collection: not an API for other collections.

`HoldbackWriter` writes to `zfs receive`'s stdin but keeps the last HOLD_BACK bytes back until the
caller has checked the chunk they came in (restore): the end of a send stream (its END record) reaches
ZFS only then, so closing the pipe without flush() makes ZFS discard a stream that failed a check.
`Discard` counts and drops (verify).
"""

from __future__ import annotations

import collections
from typing import Any, Deque

from ansible_collections.offsite.zfs.plugins.module_utils.fetcher import write_all

HOLD_BACK = 1 << 20  # the END record of a send stream is its last 312 bytes


class HoldbackWriter:
    """Writes to a pipe, always keeping the last `hold` bytes back until flush().

    The tail of a send stream (its END record) reaches `zfs receive` only once the caller has checked
    the chunk it came in; until then, closing the pipe without flush() makes ZFS discard the stream.
    """

    def __init__(self, pipe: Any, hold: int = HOLD_BACK) -> None:
        self._fd = pipe.fileno()
        self._hold = hold
        self._blocks: Deque[bytes] = collections.deque()
        self._held = 0

    def write(self, data: bytes) -> int:
        if data:
            self._blocks.append(data)
            self._held += len(data)
            while self._blocks and self._held - len(self._blocks[0]) >= self._hold:
                block = self._blocks.popleft()
                self._held -= len(block)
                write_all(self._fd, block)
        return len(data)

    def flush(self) -> None:
        while self._blocks:
            block = self._blocks.popleft()
            self._held -= len(block)
            write_all(self._fd, block)


class Discard:
    """A sink that drops what it is given (verification reads every byte and keeps none)."""

    def write(self, data: Any) -> int:
        return len(data)
