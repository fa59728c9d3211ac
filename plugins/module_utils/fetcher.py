# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fetcher: a backup's chunks downloaded into the spool ahead of the decoder, each hashed as it lands.

Private to the collection: not an API for other collections.

With `spool: true` (the default) a restore checks each stored object (its size and SHA-256 against
the manifest) before one byte of it is decrypted, so nothing a provider altered reaches `zfs receive`.
A thread downloads the next chunk (`depth` chunks ahead) while the decoder works on the current one;
a download that breaks resumes at the byte it reached (`rclone cat --offset`), within the provider's
retries. At most depth + 1 chunk files exist at once, and every file is removed when it is used, on
close, and (by run_temp_dir) after a kill -9.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from dataclasses import dataclass
from typing import List, Optional, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils.chunks import BLOCK_SIZE, widen_pipe
from ansible_collections.offsite.zfs.plugins.module_utils.manifest import ChunkRecord
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store


@dataclass
class Fetched:
    """A chunk in the spool: its record, the file, and what was stored (size and SHA-256, as downloaded)."""

    record: ChunkRecord
    path: str
    stored_bytes: int
    sha256: str


class Prefetcher:
    """Downloads `records` of the backup directory `bdir` into `directory`, `depth` chunks ahead."""

    def __init__(self, store: Store, bdir: str, records: List[ChunkRecord], directory: str, depth: int = 1) -> None:
        self.store = store
        self.bdir = bdir
        self.records = records
        self.directory = directory
        self._queue: "queue.Queue[Tuple[Optional[Fetched], Optional[BaseException]]]" = queue.Queue(maxsize=depth)
        self._halt = threading.Event()
        self._child = None
        self._thread = threading.Thread(target=self._run, name="offsite-prefetch", daemon=True)
        self._thread.start()

    def _download(self, record: ChunkRecord) -> Fetched:
        path = os.path.join(self.directory, record.object)
        digest = hashlib.sha256()
        count = [0]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            def once() -> None:
                if self._halt.is_set():
                    return
                with self.store.open_get_stream(self.bdir + "/" + record.object, offset=count[0]) as child:
                    self._child = child
                    widen_pipe(child.stdout)
                    source = child.stdout.fileno()
                    while not self._halt.is_set():
                        block = os.read(source, BLOCK_SIZE)
                        if not block:
                            break
                        digest.update(block)
                        count[0] += len(block)
                        view = memoryview(block)
                        while len(view):
                            view = view[os.write(fd, view):]
                    if not self._halt.is_set():
                        child.check()  # a failed download raises its StoreError: the retry resumes at count
            self.store.retry(once, "download of %s" % record.object)
        finally:
            os.close(fd)
        return Fetched(record, path, count[0], digest.hexdigest())

    def _run(self) -> None:
        for record in self.records:
            if self._halt.is_set():
                return
            try:
                fetched = self._download(record)
            except BaseException as exc:  # handed to the consumer
                self._put((None, exc))
                return
            self._put((fetched, None))

    def _put(self, item: Tuple[Optional[Fetched], Optional[BaseException]]) -> None:
        while not self._halt.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue
        if item[0] is not None:
            _unlink(item[0].path)

    def next(self) -> Fetched:
        """The next chunk, downloaded (or the download's error)."""
        fetched, error = self._queue.get()
        if error is not None:
            raise error
        assert fetched is not None
        return fetched

    def close(self) -> None:
        """Stop downloading; remove every file not handed on."""
        self._halt.set()
        child = self._child
        if child is not None:
            child.kill()
        while self._thread.is_alive():
            try:
                fetched, _error = self._queue.get(timeout=0.1)
                if fetched is not None:
                    _unlink(fetched.path)
            except queue.Empty:
                pass
        self._thread.join()
        while True:
            try:
                fetched, _error = self._queue.get_nowait()
            except queue.Empty:
                break
            if fetched is not None:
                _unlink(fetched.path)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
