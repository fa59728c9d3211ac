# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decrypt a chunk file in a child process: the `age` command-line tool (Debian's package `age`).

pyrage holds the GIL while it decrypts, so in-process decryption cannot overlap with the other
stages of a restore (download, SHA-256, zstd, HMAC, the write to `zfs receive`). The `age` CLI
decrypts in its own process, on the other core, and reads the same age v1 files pyrage writes.

The identities never touch the disk or argv: their text goes through an inherited pipe that the
child reads as its identity file (`age -d -i /dev/fd/N`). When the CLI is missing (or
OFFSITE_AGE=pyrage), or an identity is one that has no text form here (an SSH key), the caller
decrypts with pyrage instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any, List, Optional, Sequence

from ansible_collections.offsite.zfs.plugins.module_utils.chunks import BLOCK_SIZE, widen_pipe

AGE_ENV = "OFFSITE_AGE"  # the age binary to use, or "pyrage" to decrypt in-process
_SECRET_PREFIX = "AGE-SECRET-KEY-1"
_PIPE_LIMIT = 60000  # the identity text is written into the pipe at once: below its 64 KiB capacity


class AgeCliError(Exception):
    """The age CLI refused the file (authentication failed, truncated, not for this key)."""


def find_age() -> Optional[str]:
    """The age CLI to decrypt with, or None (decrypt in-process with pyrage)."""
    value = os.environ.get(AGE_ENV, "")
    if value in ("pyrage", "none"):
        return None
    if value:
        return value if os.access(value, os.X_OK) else None
    return shutil.which("age")


def identity_text(identities: Sequence[Any]) -> Optional[str]:
    """The identities as the text of an age identity file, or None when one has no such text (SSH keys)."""
    lines: List[str] = []
    for identity in identities:
        text = str(identity).strip()
        if not text.startswith(_SECRET_PREFIX) or "\n" in text:
            return None
        lines.append(text)
    joined = "\n".join(lines) + "\n"
    return joined if lines and len(joined) < _PIPE_LIMIT else None


def decrypt_file(age: str, path: str, identities: str, sink: Any, block_size: int = BLOCK_SIZE) -> int:
    """Decrypt the age file at path with `age -d`, writing the plaintext to sink in blocks; the byte count.

    Raises AgeCliError when age fails (the file is damaged or not for these identities); an error
    raised by sink (a receive that stopped) ends the child and propagates.
    """
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, identities.encode("utf-8"))
    finally:
        os.close(write_end)
    try:
        child = subprocess.Popen([age, "--decrypt", "-i", "/dev/fd/%d" % read_end, path], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(read_end,))
    finally:
        os.close(read_end)
    widen_pipe(child.stdout, block_size)
    fd = child.stdout.fileno()
    total = 0
    try:
        while True:
            data = os.read(fd, block_size)
            if not data:
                break
            total += len(data)
            sink.write(data)
    except BaseException:
        child.kill()
        child.stdout.close()
        child.stderr.close()
        child.wait()
        raise
    child.stdout.close()
    err = child.stderr.read().decode("utf-8", "replace")
    child.stderr.close()
    if child.wait() != 0:
        lines = [line[len("age: error: "):] if line.startswith("age: error: ") else line
                 for line in err.strip().splitlines() if line and "report unexpected" not in line]
        raise AgeCliError(lines[0] if lines else "age exited with %d" % child.returncode)
    return total
