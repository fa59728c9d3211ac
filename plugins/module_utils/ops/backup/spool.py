# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The spool of a fan-out pass: each encrypted chunk is one file, uploaded to every provider that needs it.

A file is removed when the last provider has uploaded it. At most `limit` files exist at once
(limit = sum of the providers' parallel_uploads + 1; settings.DatasetSettings.spool_bound). When the
spool is full and a provider that needs the next chunk has nothing left to upload, the provider
with the most files still to upload is holding the others back. If it then finishes no upload for
STALL_FACTOR times its mean upload time (at least STALL_MIN seconds; scheduling noise is not a
stall), it is dropped for this run (its queued uploads are given up, the ones already running
finish) and caught up by the next run. A slower provider that keeps finishing uploads paces the
others instead, within the same bound.

Private to the collection: not an API for other collections.
"""

from __future__ import annotations

import operator
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, Optional, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils.common import human_bytes
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.manifest import ChunkRecord
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.journal import ACTIVE, DROPPED, FAILED, Target

STALL_MIN = 2.0  # seconds
STALL_FACTOR = 2.0


class _File:
    def __init__(self, path: str) -> None:
        self.path = path
        self.refs = 0


class _Job:
    def __init__(self, spooled: _File, target: Target, record: ChunkRecord) -> None:
        self.file = spooled
        self.target = target
        self.record = record
        self.claimed = False


class Spool:
    """Spool files, their upload pools (one per provider), and the drop rule."""

    def __init__(self, directory: str, targets: List[Target], chunk_bytes: int,
                 on_upload: Callable[[Target, ChunkRecord], None], log: Callable[[str], None]) -> None:
        self.directory = directory
        self.limit = sum(max(1, t.store.provider.parallel_uploads) for t in targets) + 1
        self.chunk_bytes = chunk_bytes
        self.targets = targets
        self.on_upload = on_upload
        self.log = log
        self.cond = threading.Condition()
        self.files: Dict[str, _File] = {}
        self.high_water = 0
        self.clock = time.monotonic
        self.progress_at = {t.name: self.clock() for t in targets}  # each provider's last finished upload
        self.busy_seconds = {t.name: 0.0 for t in targets}
        self.finished = {t.name: 0 for t in targets}
        self.pools = {t.name: ThreadPoolExecutor(max_workers=max(1, t.store.provider.parallel_uploads),
                                                 thread_name_prefix="offsite-upload-%s" % t.name) for t in targets}

    # -- the producer's side -------------------------------------------------------------------
    def room(self, need: List[Target]) -> List[Target]:
        """Wait until one more file fits; drop a provider that holds the others back. Returns who still needs it."""
        with self.cond:
            while True:
                need = [t for t in need if t.state == ACTIVE]
                if not need or len(self.files) < self.limit - 1:
                    return need
                idle = [t for t in need if t.pending == 0]
                busy = [t for t in self.targets if t.state == ACTIVE and t.pending > 0]
                if idle and busy:
                    laggard = max(busy, key=operator.attrgetter("pending"))
                    left = self._grace(laggard) - (self.clock() - self.progress_at[laggard.name])
                    if left <= 0:
                        self._drop(laggard, idle[0])
                        continue
                    self.cond.wait(left)
                    continue
                self.cond.wait()

    def _grace(self, target: Target) -> float:
        """How long a provider that holds the others back may finish no upload before it is dropped."""
        done, busy = self.finished[target.name], self.busy_seconds[target.name]
        if not done:  # nothing finished yet: judge it by the others' uploads
            done, busy = sum(self.finished.values()), sum(self.busy_seconds.values())
        mean = busy / done if done else 0.0
        return max(STALL_MIN, STALL_FACTOR * mean)

    def add(self, path: str, assignments: List[Tuple[Target, ChunkRecord]]) -> None:
        """Queue the spooled chunk at path for each (provider, its record); the file goes when all are done."""
        spooled = _File(path)
        jobs = []
        with self.cond:
            for target, record in assignments:
                if target.state != ACTIVE:
                    continue
                job = _Job(spooled, target, record)
                spooled.refs += 1
                target.pending += 1
                target.jobs.append(job)
                jobs.append(job)
            if not jobs:
                _unlink(path)
                return
            self.files[path] = spooled
            self.high_water = max(self.high_water, len(self.files))
        for job in jobs:
            self.pools[job.target.name].submit(self._upload, job)

    # -- the uploads ---------------------------------------------------------------------------------
    def _upload(self, job: _Job) -> None:
        target = job.target
        with self.cond:
            if job.claimed:
                return
            job.claimed = True
            go = target.state == ACTIVE
        try:
            if go:
                began = self.clock()
                target.store.put_file(target.bdir + "/" + job.record.object, job.file.path)
                with self.cond:
                    self.progress_at[target.name] = self.clock()
                    self.busy_seconds[target.name] += self.clock() - began
                    self.finished[target.name] += 1
                target.record(job.record)
                self.on_upload(target, job.record)
        except OffsiteError as exc:
            self.fail(target, exc)
        except Exception as exc:  # one provider's surprise must not stop the others
            self.fail(target, OffsiteError("upload of %s to %s failed unexpectedly: %s: %s" % (
                job.record.object, target.name, type(exc).__name__, exc), "internal"))
        finally:
            with self.cond:
                self._release(job)

    def fail(self, target: Target, exc: OffsiteError) -> None:
        with self.cond:
            if target.state in (ACTIVE, DROPPED):  # dropped, then its running upload failed: that is the news
                target.state = FAILED
                target.error = exc
                self.log("provider %s: %s; the other providers go on" % (target.name, exc.message))
            self._give_up(target)

    def _drop(self, target: Target, waiting: Target) -> None:
        target.state = DROPPED
        target.error = OffsiteError(
            "%s fell %d chunks behind %s, past the spool bound of %d chunks (%s), and finished no upload for %.0fs, "
            "so it was dropped from this run after %d uploaded chunks; the next run catches it up from its "
            "journal" % (target.name, target.pending, waiting.name, self.limit,
                         human_bytes(self.limit * self.chunk_bytes), self.clock() - self.progress_at[target.name],
                         target.uploaded), "provider_deferred")
        self.log("provider %s: %s" % (target.name, target.error.message))
        self._give_up(target)

    def _give_up(self, target: Target) -> None:
        for job in list(target.jobs):
            if not job.claimed:
                job.claimed = True
                self._release(job)

    def _release(self, job: _Job) -> None:
        if job in job.target.jobs:
            job.target.jobs.remove(job)
            job.target.pending -= 1
            job.file.refs -= 1
        if job.file.refs <= 0 and job.file.path in self.files:
            del self.files[job.file.path]
            _unlink(job.file.path)
        self.cond.notify_all()

    def drain(self) -> None:
        """Wait until every provider still in the pass has uploaded all its files."""
        with self.cond:
            while any(t.state == ACTIVE and t.pending for t in self.targets):
                self.cond.wait()

    def close(self) -> None:
        """Give up what is queued, wait for the running uploads, remove every file and the directory."""
        with self.cond:
            for target in self.targets:
                self._give_up(target)  # what is still queued; running uploads finish
        for pool in self.pools.values():
            pool.shutdown(wait=True)
        for leftover in os.listdir(self.directory):
            _unlink(os.path.join(self.directory, leftover))
        try:
            os.rmdir(self.directory)
        except OSError:
            pass

    def abort(self) -> None:
        """The pass failed: nothing more is uploaded."""
        with self.cond:
            for target in self.targets:
                self._give_up(target)


def _unlink(path: Optional[str]) -> None:
    if path:
        try:
            os.unlink(path)
        except OSError:
            pass
