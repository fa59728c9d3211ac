# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fetcher: downloading a stored chunk, hashed as it passes and resumed where it broke.

Private to the collection: not an API for other collections.

`Download` moves one object from a provider to a writer, counting and hashing (SHA-256) every byte;
a download that breaks resumes at the byte it reached (`rclone cat --offset`), within the provider's
retries. Two ways to use it:

- `Feeder`: a thread that downloads into a pipe (a restore with `spool: false`: the decoder's age
  child reads it); when the reader stops, the rest is still hashed, so a damaged object is told as such;
- `Prefetcher`: with `spool: true` (the default) a thread downloads `depth` chunks ahead into the spool,
  so each stored object is checked (size and SHA-256 against the manifest) before one byte of it is
  decrypted. At most depth + 1 chunk files exist at once; every file is removed when it is used, on
  close, and (by run_temp_dir) after a kill -9.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils.chunks import BLOCK_SIZE, widen_pipe
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.manifest import ChunkRecord
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store


def write_all(fd: int, data: Any) -> None:
    view = memoryview(data)
    while len(view):
        view = view[os.write(fd, view):]


class Download:
    """One object of a store to write(block): `count` bytes and their `sha256` so far."""

    def __init__(self, store: Store, key: str, write: Callable[[bytes], None], limit: Optional[int] = None) -> None:
        """limit: stop once more than this many bytes came (an object longer than its manifest says is
        damaged whatever follows; it need not be downloaded to the end)."""
        self.store = store
        self.key = key
        self.write = write
        self.limit = limit
        self.sha256 = hashlib.sha256()
        self.count = 0
        self._halt = threading.Event()
        self._child: Any = None

    def run(self) -> None:
        """Download it all (raises the StoreError when the provider's retries are spent)."""
        self.store.retry(self._once, "download of %s" % self.key)

    def _once(self) -> None:
        if self._halt.is_set():
            return
        with self.store.open_get_stream(self.key, offset=self.count) as child:
            self._child = child
            widen_pipe(child.stdout)
            fd = child.stdout.fileno()
            while not self._halt.is_set():
                block = os.read(fd, BLOCK_SIZE)
                if not block:
                    break
                self.sha256.update(block)
                self.count += len(block)
                self.write(block)
                if self.limit is not None and self.count > self.limit:
                    return  # longer than the manifest says: the caller reports the size
            if not self._halt.is_set():
                child.check()  # a failed download raises its StoreError: the retry resumes at self.count

    def stop(self) -> None:
        self._halt.set()
        child = self._child
        if child is not None:
            child.kill()


class Feeder(threading.Thread):
    """Downloads one object into the pipe out_fd (closed at the end); `error` holds what went wrong."""

    def __init__(self, store: Store, key: str, out_fd: int, limit: Optional[int] = None) -> None:
        super().__init__(name="offsite-feed", daemon=True)
        self.out_fd = out_fd
        self.consumer_gone = False  # the reader stopped: the rest is hashed, not passed on
        self.download = Download(store, key, self._write, limit)
        self.error: Optional[BaseException] = None

    def _write(self, block: bytes) -> None:
        if not self.consumer_gone:
            try:
                write_all(self.out_fd, block)
            except BrokenPipeError:
                self.consumer_gone = True

    def run(self) -> None:
        try:
            self.download.run()
        except BaseException as exc:  # handed to the decoding thread
            self.error = exc
        finally:
            try:
                os.close(self.out_fd)
            except OSError:
                pass

    def stop(self) -> None:
        self.download.stop()


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
        self._download: Optional[Download] = None
        self._thread = threading.Thread(target=self._run, name="offsite-prefetch", daemon=True)
        self._thread.start()

    def _fetch(self, record: ChunkRecord) -> Fetched:
        path = os.path.join(self.directory, record.object)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            download = self._download = Download(self.store, self.bdir + "/" + record.object,
                                                 lambda block: write_all(fd, block), record.stored_bytes)
            if not self._halt.is_set():
                download.run()
        finally:
            os.close(fd)
        return Fetched(record, path, download.count, download.sha256.hexdigest())

    def _run(self) -> None:
        for record in self.records:
            if self._halt.is_set():
                return
            try:
                fetched = self._fetch(record)
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
        if error is not None or fetched is None:
            raise error or OffsiteError("The chunk download stopped without a result.", "download_failed")
        return fetched

    def close(self) -> None:
        """Stop downloading; remove every file not handed on."""
        self._halt.set()
        if self._download is not None:
            self._download.stop()
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
