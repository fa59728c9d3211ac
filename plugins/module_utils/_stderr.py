# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A child's stderr, read on a thread into a bounded buffer, so that a chatty child never blocks (_proc.py).

Private to the collection: not an API for other collections.
"""

from __future__ import annotations

import os
import threading
from typing import IO, Optional

STDERR_LIMIT = 64 << 10


class StderrTail:
    """A child's stderr, read on a thread: the first `limit // 4` and the last bytes up to `limit` are kept."""

    def __init__(self, pipe: IO[bytes], limit: int = STDERR_LIMIT) -> None:
        self._pipe = pipe
        self._head_limit = limit // 4
        self._tail_limit = limit - self._head_limit
        self._head = bytearray()
        self._tail = bytearray()
        self.dropped = 0
        self._thread = threading.Thread(target=self._drain, name="offsite-stderr", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        try:
            for data in iter(lambda: os.read(self._pipe.fileno(), 65536), b""):
                room = self._head_limit - len(self._head)
                if room > 0:
                    self._head += data[:room]
                    data = data[room:]
                self._tail += data
                extra = len(self._tail) - self._tail_limit
                if extra > 0:
                    del self._tail[:extra]
                    self.dropped += extra
        except (OSError, ValueError):
            pass
        finally:
            self._pipe.close()

    def join(self, timeout: Optional[float] = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def value(self) -> bytes:
        """What was kept so far (the gap marked when bytes were dropped)."""
        if self.dropped:
            return bytes(self._head) + b"\n[... %d bytes of stderr not kept ...]\n" % self.dropped + bytes(self._tail)
        return bytes(self._head) + bytes(self._tail)

    def read(self, _size: int = -1) -> bytes:
        """Popen-compatible: wait for the end of stderr, then the kept bytes."""
        self.join()
        return self.value()

    def close(self) -> None:
        pass  # Popen-compatible; the reader thread closes the pipe at its end
