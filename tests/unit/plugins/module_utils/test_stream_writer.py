"""chunks.StreamWriter: restore's writer thread in front of zfs receive, over real pipes."""

from __future__ import annotations

import fcntl
import hashlib
import os
import struct
import termios
import threading
import time

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils.chunks import StreamWriter


class _Drain:
    """Reads a pipe to its end on a thread, hashing what arrives."""

    def __init__(self, fd: int, stop_after: int = -1) -> None:
        self.fd = fd
        self.stop_after = stop_after
        self.digest = hashlib.sha256()
        self.count = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.stop_after < 0 or self.count < self.stop_after:
            block = os.read(self.fd, 1 << 16)
            if not block:
                break
            self.digest.update(block)
            self.count += len(block)
        os.close(self.fd)


def _pipe():
    read_fd, write_fd = os.pipe()
    return read_fd, os.fdopen(write_fd, "wb", buffering=0)


def test_everything_written_arrives_in_order():
    read_fd, pipe = _pipe()
    drain = _Drain(read_fd)
    writer = StreamWriter(pipe, depth=4)
    expected = hashlib.sha256()
    for number in range(200):
        piece = bytes([number % 251]) * (number * 997 % 70000 + 1)
        expected.update(piece)
        writer.write(piece)
    writer.close()
    pipe.close()
    drain.thread.join()
    assert writer.total == drain.count
    assert drain.digest.hexdigest() == expected.hexdigest()


def test_a_reader_that_goes_away_raises_broken_pipe_and_never_blocks_the_producer():
    read_fd, pipe = _pipe()
    drain = _Drain(read_fd, stop_after=1 << 20)  # like zfs receive exiting mid-stream
    writer = StreamWriter(pipe, depth=2)
    with pytest.raises(BrokenPipeError):
        for _ in range(64):  # 64 MiB: far more than the reader takes, the pipe and the queue hold
            writer.write(b"x" * (1 << 20))
        writer.close()
    drain.thread.join()
    pipe.close()


def _buffered(fd: int) -> int:
    return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]


def test_abort_drops_queued_pieces_and_ends_the_thread():
    read_fd, pipe = _pipe()
    capacity = fcntl.fcntl(read_fd, 1032)  # F_GETPIPE_SZ
    writer = StreamWriter(pipe, depth=8)
    for _ in range(3):  # 3 MiB, far more than the pipe holds: the rest waits in the queue
        writer.write(b"b" * (1 << 20))
    # Wait (bounded) until the pipe is full: the thread is then blocked in a write, as with a stuck receive.
    deadline = time.monotonic() + 10
    while _buffered(read_fd) < capacity and time.monotonic() < deadline:
        time.sleep(0.001)
    assert _buffered(read_fd) == capacity
    assert writer.abort(timeout=0.2) is False  # a blocked write: the caller must not close the fd yet
    os.close(read_fd)  # the reader goes away (the caller kills zfs receive): the write fails...
    assert writer.abort(timeout=5) is True  # ...and the thread ends without writing the queued pieces
    assert isinstance(writer.error, BrokenPipeError)
    pipe.close()
