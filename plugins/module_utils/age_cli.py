# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The `age` command-line tool (Debian's package `age`): where it is, and identities as the text it reads.

Private to the collection: not an API for other collections.

pyrage holds the GIL while it encrypts or decrypts, so in-process age cannot overlap with the other
stages of a backup or restore (zstd, the digests, the pipes). The `age` CLI works in its own process,
on the other core, and reads and writes the same age v1 files pyrage does (encoder.py, decoder.py).
The identities never touch the disk or argv: their text goes through an inherited pipe that the
child reads as its identity file (`age -d -i /dev/fd/N`). When the CLI is missing (or
OFFSITE_AGE=pyrage), or an identity has no text form here (an SSH key), pyrage does the work.
"""

from __future__ import annotations

import os
import shutil
from typing import Any, List, Optional, Sequence

AGE_ENV = "OFFSITE_AGE"  # the age binary to use, or "pyrage" to decrypt in-process
_SECRET_PREFIX = "AGE-SECRET-KEY-1"
_PIPE_LIMIT = 60000  # the identity text is written into the pipe at once: below its 64 KiB capacity


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
