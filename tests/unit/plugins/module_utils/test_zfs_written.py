"""Zfs capability probes: each part once, when asked; detecting the `written` property never fails a backup.

It only decides how the size estimate is made. A pool that vanishes between `zpool list` and
the probe (other tests, or an export, on the same host) used to fail the whole provider; that
race cannot be produced on demand with the real daemon, so a scripted zfs plays it.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils.zfs import Zfs

FAKE = """#!/bin/sh
dir="$(dirname "$0")"
echo "$*" >> "$dir/calls"
if [ "$1" = get ] && [ "$#" -eq 1 ]; then
    cat "$dir/usage" >&2; exit 2
fi
if [ "$1" = list ]; then
    cat "$dir/pools"; exit 0
fi
if [ "$1" = get ]; then
    pool="$6"
    if [ -e "$dir/gone-$pool" ]; then echo "cannot open '$pool': no such pool" >&2; exit 1; fi
    cat "$dir/props"; exit 0
fi
exit 2
"""

USAGE_OPENZFS = "usage:\n\tget [-rHp] ...\n\n\tPROPERTY       EDIT  INHERIT   VALUES\n\n" \
                "\tused             NO       NO   <size>\n\twritten          NO       NO   <size>\n"
USAGE_OLD = "usage:\n\tget [-rHp] ...\n\n\tPROPERTY       EDIT  INHERIT   VALUES\n\n" \
            "\tused             NO       NO   <size>\n\treferenced       NO       NO   <size>\n"


def _fake(tmp_path: Path, usage: str, pools: str, props: str, gone: tuple = ()) -> Zfs:
    tmp_path.mkdir(parents=True, exist_ok=True)
    binary = tmp_path / "zfs"
    binary.write_text(FAKE)
    binary.chmod(stat.S_IRWXU)
    (tmp_path / "usage").write_text(usage)
    (tmp_path / "pools").write_text(pools)
    (tmp_path / "props").write_text(props)
    for pool in gone:
        (tmp_path / ("gone-" + pool)).write_text("")
    return Zfs(str(binary))


def test_the_usage_table_answers_without_touching_a_pool(tmp_path):
    zfs = _fake(tmp_path, USAGE_OPENZFS, "tank\n", "")
    assert zfs._has_written() is True
    assert (tmp_path / "calls").read_text().splitlines() == ["get"]


@pytest.mark.parametrize("props,expected", [("used\nwritten\nreferenced\n", True), ("used\nreferenced\n", False)])
def test_a_vanished_pool_is_skipped_and_the_next_one_answers(tmp_path, props, expected):
    zfs = _fake(tmp_path, USAGE_OLD, "gone1\ntank\n", props, gone=("gone1",))
    assert zfs._has_written() is expected


def test_no_pool_answering_means_no_written_not_an_error(tmp_path):
    zfs = _fake(tmp_path, USAGE_OLD, "gone1\ngone2\n", "written\n", gone=("gone1", "gone2"))
    assert zfs._has_written() is False
    assert _fake(tmp_path / "empty", USAGE_OLD, "", "")._has_written() is False


def test_capabilities_probe_each_part_once_and_only_when_asked(tmp_path):
    """A restore asks for the receive flags only: it must not pay for probing send and `written`."""
    zfs = _fake(tmp_path, USAGE_OPENZFS, "tank\n", "")
    caps = zfs.capabilities()
    assert not (tmp_path / "calls").exists()
    assert caps.receive_flags == ""
    assert (tmp_path / "calls").read_text().splitlines() == ["receive", "receive -u"]
    assert caps.send_flags == "" and caps.receive_flags == "" and zfs.capabilities() is caps
    assert (tmp_path / "calls").read_text().splitlines() == ["receive", "receive -u", "send"]
    assert caps.written is True
    assert (tmp_path / "calls").read_text().splitlines() == ["receive", "receive -u", "send", "get"]


# What zfs-fuse 0.7 answers (verified on Debian's zfs-fuse): `receive -u` works but its usage does not list it.
ZFS_FUSE_RECEIVE = """#!/bin/sh
dir="$(dirname "$0")"
echo "$*" >> "$dir/calls"
case "$2" in
""|-[vnFdu]) echo "missing snapshot argument" >&2 ;;
*) echo "invalid option '${2#-}'" >&2 ;;
esac
printf 'usage:\n\treceive [-vnF] <filesystem|volume|snapshot>\n\treceive [-vnF] -d <filesystem>\n' >&2
exit 2
"""


@pytest.mark.parametrize("accepts,expected", [("-[vnFdu]", "Fnuv"), ("-[vnFd]", "Fnv")])
def test_receive_u_is_found_by_trying_it_when_the_usage_leaves_it_out(tmp_path, accepts, expected):
    binary = tmp_path / "zfs"
    binary.write_text(ZFS_FUSE_RECEIVE.replace("-[vnFdu]", accepts))
    binary.chmod(stat.S_IRWXU)
    assert Zfs(str(binary)).capabilities().receive_flags == expected
    assert (tmp_path / "calls").read_text().splitlines() == ["receive", "receive -u"]
