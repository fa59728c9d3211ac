# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One zstd context for the chunks of a backup, each chunk one frame (codec.compressors).

Private to the collection: not an API for other collections.
"""

from __future__ import annotations

from typing import Any, Callable, Optional


class _ZstdFrame:
    """One chunk's zstd frame; knows whether it was finished."""

    __slots__ = ("_obj", "finished")

    def __init__(self, obj: Any) -> None:
        self._obj = obj
        self.finished = False

    def compress(self, data: Any) -> bytes:
        return self._obj.compress(data)

    def flush(self) -> bytes:
        out = self._obj.flush()
        self.finished = True
        return out


class ZstdFrames:
    """zstd compressors that share one context (its worker threads and buffers) for the chunks of a backup.

    Set up anew for every chunk, the context grew the process by several MiB a chunk (docs/benchmarks.md).
    A chunk left mid-frame (its encoding failed) takes the context with it: python-zstandard crashes when
    a multithreaded context is reset while an unfinished frame's jobs are in flight, so the next chunk gets
    a new one. Not for use from two threads at once.
    """

    def __init__(self, make_context: Callable[[], Any]) -> None:
        self._make_context = make_context
        self._context: Any = None
        self._last: Optional[_ZstdFrame] = None

    def __call__(self) -> _ZstdFrame:
        if self._context is None or (self._last is not None and not self._last.finished):
            self._context = self._make_context()
        self._last = _ZstdFrame(self._context.compressobj())
        return self._last
