"""Zfs.rename's fallback for zfs-fuse's "dataset is busy" after a receive.

Under load zfs-fuse can fail the rename busy after it already unmounted the dataset, so the
fallback's unmount would answer "not currently mounted". That state cannot be produced on
demand with the real daemon, so a scripted stand-in for the zfs command plays it; it logs each
call so the test sees exactly what the fallback ran.
"""

from __future__ import annotations

import stat
import subprocess
import time
from pathlib import Path
from typing import List

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError, ZfsError
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import BUSY, Zfs

FAKE = """#!/bin/sh
# Scripted zfs: rename fails busy until the dataset is unmounted or $BUSY_RENAMES calls have failed.
dir="$(dirname "$0")"
echo "$*" >> "$dir/calls"
case "$1" in
rename)
    n=$(cat "$dir/renames" 2>/dev/null || echo 0)
    n=$((n + 1)); echo "$n" > "$dir/renames"
    if [ "$(cat "$dir/mounted")" = yes ] || [ "$n" -le "$BUSY_RENAMES" ]; then
        echo "cannot rename '$2': dataset is busy" >&2; exit 1
    fi
    exit 0 ;;
get)
    if [ "$6" = mountpoint ]; then echo "${MOUNTPOINT:--}"; else cat "$dir/mounted"; fi; exit 0 ;;
unmount)
    if [ -e "$dir/unmount-races" ]; then
        echo no > "$dir/mounted"  # the daemon finished unmounting it between our get and our unmount
    fi
    if [ "$(cat "$dir/mounted")" != yes ] || [ -e "$dir/unmount-races" ]; then
        echo "cannot unmount '$2': not currently mounted" >&2; exit 1
    fi
    echo no > "$dir/mounted"; exit 0 ;;
mount)
    echo yes > "$dir/mounted"; exit 0 ;;
esac
echo "unexpected: $*" >&2; exit 2
"""


def _fake_zfs(tmp_path: Path, mounted: str, busy_renames: int, monkeypatch: pytest.MonkeyPatch) -> Zfs:
    binary = tmp_path / "zfs"
    binary.write_text(FAKE)
    binary.chmod(stat.S_IRWXU)
    (tmp_path / "mounted").write_text(mounted + "\n")
    monkeypatch.setenv("BUSY_RENAMES", str(busy_renames))
    return Zfs(str(binary))


def _calls(tmp_path: Path) -> List[str]:
    return [line.split()[0] for line in (tmp_path / "calls").read_text().splitlines()]


def test_busy_rename_unmounts_renames_and_mounts_again(tmp_path, monkeypatch):
    zfs = _fake_zfs(tmp_path, "yes", 0, monkeypatch)
    zfs.rename("tank/x.offsite-partial", "tank/x")
    assert _calls(tmp_path) == ["rename"] * 3 + ["get", "unmount", "rename", "mount"]
    assert (tmp_path / "mounted").read_text().strip() == "yes"


def test_busy_rename_that_left_the_dataset_unmounted_still_completes(tmp_path, monkeypatch):
    # The CI failure: the first renames failed busy and left it unmounted; no unmount must be tried.
    zfs = _fake_zfs(tmp_path, "no", 3, monkeypatch)
    zfs.rename("tank/x.offsite-partial", "tank/x")
    assert _calls(tmp_path) == ["rename"] * 3 + ["get", "rename", "mount"]


def test_unmount_racing_with_zfs_fuse_is_tolerated(tmp_path, monkeypatch):
    zfs = _fake_zfs(tmp_path, "yes", 0, monkeypatch)
    (tmp_path / "unmount-races").write_text("")
    zfs.rename("tank/x.offsite-partial", "tank/x")
    assert _calls(tmp_path) == ["rename"] * 3 + ["get", "unmount", "rename", "mount"]


def test_other_unmount_errors_still_fail_clearly(tmp_path, monkeypatch):
    zfs = _fake_zfs(tmp_path, "yes", 0, monkeypatch)
    (tmp_path / "zfs").write_text(FAKE.replace("not currently mounted", "permission denied").replace(
        'echo no > "$dir/mounted"  #', ': #'))
    (tmp_path / "unmount-races").write_text("")
    with pytest.raises(OffsiteError) as caught:
        zfs.rename("tank/x.offsite-partial", "tank/x")
    assert caught.value.message == (
        "Could not unmount tank/x.offsite-partial: cannot unmount 'tank/x.offsite-partial': permission denied")


def test_a_rename_busy_past_its_patience_fails_busy_after_waiting_it_out(tmp_path, monkeypatch):
    zfs = _fake_zfs(tmp_path, "no", 10 ** 6, monkeypatch)
    zfs._sleep = lambda seconds: None  # the patience is real time; the pauses between tries are not needed here
    started = time.monotonic()
    with pytest.raises(ZfsError) as caught:
        zfs.rename("tank/x.offsite-partial", "tank/x", patience=0.5)
    assert time.monotonic() - started >= 0.5 and BUSY in caught.value.kinds
    assert _calls(tmp_path).count("rename") > 3 + 6  # more tries than busy_retries alone would make
    assert caught.value.message == ("Could not rename tank/x.offsite-partial to tank/x: "
                                    "cannot rename 'tank/x.offsite-partial': dataset is busy")


def test_a_busy_rename_names_the_processes_inside_the_mountpoint(tmp_path, monkeypatch):
    # A real process with its working directory inside the mountpoint, found in the real /proc. On zfs-fuse such
    # a holder also leaves the dataset refusing renames for minutes after it exits (see docs/troubleshooting.md,
    # target_busy), which would outlast the test's pool: so the zfs command here is the scripted one.
    mountpoint = tmp_path / "mnt" / "x"
    (mountpoint / "deep").mkdir(parents=True)
    holder = subprocess.Popen(["sleep", "60"], cwd=str(mountpoint / "deep"))
    try:
        zfs = _fake_zfs(tmp_path, "no", 10 ** 6, monkeypatch)
        zfs._sleep = lambda seconds: None
        monkeypatch.setenv("MOUNTPOINT", str(mountpoint))
        with pytest.raises(ZfsError) as caught:
            zfs.rename("tank/x.offsite-partial", "tank/x")
    finally:
        holder.kill()
        holder.wait()
    assert caught.value.message.endswith("dataset is busy. %s is in use by pid %d (sleep)." % (mountpoint, holder.pid))
    assert BUSY in caught.value.kinds


def test_nothing_is_named_when_no_process_is_inside(tmp_path):
    from ansible_collections.offsite.zfs.plugins.module_utils._holders import holders, in_use_by
    (tmp_path / "empty").mkdir()
    assert holders(str(tmp_path / "empty")) == [] and in_use_by(str(tmp_path / "empty")) == ""
    assert in_use_by("none") == "" and in_use_by("/") == ""  # mountpoint=none, and never the whole tree
