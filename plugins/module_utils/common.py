# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Name validation, sizes, durations, 0700/0600 files and run temp dirs shared by every layer.

Private to the collection: not an API for other collections.

OffsiteError lives in errors.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from typing import Any, List, Optional

from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError

TOOL_VERSION = "1.0.0"


# ZFS allows alphanumerics and "_ - . :" in a name component (and a space, which
# this collection refuses so that every name is also a safe object key).
_COMPONENT = r"[A-Za-z0-9_][A-Za-z0-9_.:-]*"
# \Z, not $: "$" also matches before a trailing newline, which would let "tank/data\n" through.
_DATASET_RE = re.compile(r"^%s(/%s)*\Z" % (_COMPONENT, _COMPONENT))
_SNAPSHOT_RE = re.compile(r"^%s\Z" % _COMPONENT)
_PROVIDER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}\Z")
_NAMESPACE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}\Z")
MAX_NAME = 255
RESERVED_PROVIDERS = ("all", "auto")


def _describe(value: str) -> str:
    shown = value if len(value) <= 60 else value[:57] + "..."
    return json.dumps(shown)


def validate_dataset(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise OffsiteError("The dataset name is empty; give a name like tank/data.", "bad_name")
    if len(name) > MAX_NAME:
        raise OffsiteError("The dataset name %s is longer than %d characters." % (_describe(name), MAX_NAME),
                           "bad_name")
    if not _DATASET_RE.match(name) or any(part in (".", "..") for part in name.split("/")) or "@" in name:
        raise OffsiteError(
            "The dataset name %s is not valid: use letters, digits and _ . : - in components "
            "separated by /, not starting with - or ." % _describe(name), "bad_name")
    if any(part.startswith(".") for part in name.split("/")):
        raise OffsiteError("The dataset name %s is not valid: a component may not start with a dot."
                           % _describe(name), "bad_name")
    return name


def validate_snapshot(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise OffsiteError("The snapshot name is empty; give a name like daily-20261121.", "bad_name")
    if len(name) > MAX_NAME or not _SNAPSHOT_RE.match(name) or name.startswith("."):
        raise OffsiteError(
            "The snapshot name %s is not valid: use letters, digits and _ . : - only, not starting with - or ."
            % _describe(name), "bad_name")
    return name


def validate_provider(name: Any) -> str:
    if not isinstance(name, str) or not _PROVIDER_RE.match(name):
        raise OffsiteError(
            "The provider name %s is not valid: use up to 64 letters, digits, _ and -, not starting with -."
            % _describe(str(name)), "bad_name")
    return name


def validate_namespace(name: Any) -> str:
    if not isinstance(name, str) or not _NAMESPACE_RE.match(name) or ".." in name:
        raise OffsiteError(
            "The namespace %s is not valid: use up to 128 letters, digits and _ . : -, not starting with - or ."
            % _describe(str(name)), "bad_name")
    return name


def split_snapshot_spec(spec: str) -> tuple[str, Optional[str]]:
    """'tank/data@snap' -> ('tank/data', 'snap'); 'tank/data' -> ('tank/data', None)."""
    if not isinstance(spec, str):
        raise OffsiteError("The dataset must be a string like tank/data or tank/data@snapshot.", "bad_name")
    if spec.count("@") > 1:
        raise OffsiteError("The name %s has more than one @." % _describe(spec), "bad_name")
    if "@" in spec:
        dataset, snap = spec.split("@", 1)
        return validate_dataset(dataset), validate_snapshot(snap)
    return validate_dataset(spec), None


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)(i?)B?\s*$", re.IGNORECASE)
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_size(value: Any, what: str = "size") -> int:
    """Parse 64KiB, 1GiB, 256M, 1000 into bytes (K/M/G with or without i are powers of 1024)."""
    if isinstance(value, bool):
        raise OffsiteError("The %s %r is not a size like 64MiB." % (what, value), "bad_value")
    if isinstance(value, int):
        return value
    match = _SIZE_RE.match(str(value))
    if not match:
        raise OffsiteError("The %s %r is not a size like 64MiB or 1GiB." % (what, value), "bad_value")
    number, unit = match.group(1), match.group(2)
    power = "KMGTP".find(unit.upper()) + 1 if unit else 0
    return int(float(number) * (1024 ** power))


def parse_duration(value: Any, what: str = "duration") -> float:
    """Parse 36h, 1d, 30m, 90s, 2w, or a number of seconds."""
    if isinstance(value, bool):
        raise OffsiteError("The %s %r is not a duration like 36h." % (what, value), "bad_value")
    if isinstance(value, (int, float)):
        return float(value)
    match = _DURATION_RE.match(str(value))
    if not match:
        raise OffsiteError("The %s %r is not a duration like 90s, 30m, 36h, 1d or 2w." % (what, value), "bad_value")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def human_bytes(count: float) -> str:
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    value = float(count)
    for unit in units:
        if abs(value) < 1024 or unit == units[-1]:
            return ("%d %s" % (value, unit)) if unit == "B" else ("%.1f %s" % (value, unit))
        value /= 1024
    return "%d B" % count


def human_duration(seconds: Optional[float]) -> str:
    """A duration for people: 45s, 3h05m, 1d12h, 4d (two parts at most, rounded to the minute); None: never."""
    if seconds is None:
        return "never"
    seconds = max(0.0, float(seconds))
    if seconds < 120:
        return "%ds" % round(seconds)
    minutes = int(round(seconds / 60.0))
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return "%dd" % days + ("%dh" % hours if hours else "")
    if hours:
        return "%dh" % hours + ("%02dm" % mins if mins else "")
    return "%dm" % mins


def private_dir(path: str) -> str:
    """Create path (and any missing parents) with mode 0700; return it."""
    missing = []
    current = os.path.abspath(path)
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            pass
    try:
        os.chmod(path, 0o700)
    except PermissionError:
        pass
    return path


def write_private_file(path: str, data: bytes) -> None:
    """Atomically write data to path with mode 0600."""
    directory = os.path.dirname(path) or "."
    private_dir(directory)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


_RUN_DIR = re.compile(r"^(backup|restore|offsite-manifests|verify)-([0-9]+)-")


def files_in(directory: str, suffix: str) -> List[str]:
    """The paths of the files in directory whose names end with suffix, sorted; none when it is missing.
    Names starting with a dot (write_private_file's temp files) are left out."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    return [os.path.join(directory, name) for name in names if name.endswith(suffix) and not name.startswith(".")]


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_temp_dir(parent: str, kind: str) -> str:
    """A fresh 0700 directory for one run's temp files, named with the PID.

    Directories left by runs that died (kill -9, reboot) are removed first, so temp space
    stays within its bound across interruptions.
    """
    private_dir(parent)
    try:
        names = os.listdir(parent)
    except OSError:
        names = []
    for name in names:
        match = _RUN_DIR.match(name)
        if match and not pid_alive(int(match.group(2))):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
    return tempfile.mkdtemp(prefix="%s-%d-" % (kind, os.getpid()), dir=parent)
