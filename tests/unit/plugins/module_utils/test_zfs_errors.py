"""ZfsError kinds (module_utils/zfs.py classify) from the stderr zfs-fuse 0.7 and OpenZFS 2.x really print,
and the named methods that replaced raw argv in tree, prune, status_local and scratch: their exact argv.

Callers decide on `kind`/`kinds`, never on message text; the messages stay the sentences they were.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import List

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils import zfs as zfs_layer
from ansible_collections.offsite.zfs.plugins.module_utils.errors import ZfsError
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import Zfs, classify, receive_failure, zfs_error

# (stderr, kind) as the two ZFS flavours word them
REAL = [
    # zfs-fuse 0.7 (Debian)
    ("cannot destroy snapshot tank/a@s1: dataset is busy", "busy"),
    ("cannot rename 'tank/a.offsite-partial': dataset is busy", "busy"),
    ("cannot open 'tank/nope': dataset does not exist", "not_found"),
    ("cannot create snapshot 'tank/a@s1': dataset already exists", "exists"),
    ("cannot receive incremental stream: destination tank/a has been modified\nsince most recent snapshot",
     "modified"),
    ("cannot receive new filesystem stream: out of space", "no_space"),
    ("cannot unmount 'tank/a.offsite-partial': not currently mounted", "not_mounted"),
    ("cannot hold snapshot 'tank/a@s1': tag already exists on this dataset", "tag_exists"),
    ("cannot release 'offsite:b2' from 'tank/a@s1': no such tag on this dataset", "no_such_tag"),
    ("unrecognized command 'bookmark'\nusage: zfs command args ...", "unsupported"),
    ("cannot open 'offsite-scratch-1': no such pool", "not_found"),
    # OpenZFS 2.x
    ("cannot receive incremental stream: destination tank/a has been modified since most recent snapshot",
     "modified"),
    ("cannot receive new filesystem stream: destination tank/a space quota exceeded", "no_space"),
    ("cannot mount '/tank/a': directory is not empty", "mount_failed"),
    ("cannot receive new filesystem stream: destination 'tank/a' exists\nmust specify -F to overwrite it", "exists"),
    ("cannot release hold from snapshot 'tank/a@s1': could not find any snapshots to release", "not_found"),
    ("cannot destroy 'tank/a': permission denied", "permission"),
    ("cannot unmount '/tank/a': pool or dataset is busy", "busy"),
    ("cannot send 'tank/a@s1': I/O error", "failed"),
    ("", "failed"),
]


@pytest.mark.parametrize("stderr,kind", REAL)
def test_kinds_from_real_zfs_stderr(stderr, kind):
    assert classify(1, stderr)[0] == kind
    assert classify(1, stderr.encode())[0] == kind
    assert kind in zfs_layer.KINDS


def test_the_error_keeps_the_sentence_and_carries_the_kind():
    error = zfs_error("destroy tank/a@s1", 1, b"cannot destroy snapshot tank/a@s1: dataset is busy\n")
    assert isinstance(error, ZfsError) and error.code == "zfs_failed" and error.kind == "busy"
    assert error.message == "Could not destroy tank/a@s1: cannot destroy snapshot tank/a@s1: dataset is busy"
    assert zfs_error("list x", 2, b"").message == "Could not list x: zfs exited 2"


def test_a_receive_failure_tells_the_cause_and_whether_only_the_mount_failed():
    both = b"cannot receive new filesystem stream: out of space\ncannot mount '/tank/a': directory is not empty\n"
    failure = receive_failure(1, both, "tank/a@s1", "tank/a")
    assert failure.code == "receive_failed" and failure.kind == "no_space" and "mount_failed" in failure.kinds
    assert failure.reason == "cannot receive new filesystem stream: out of space"
    assert failure.message == "zfs receive of tank/a@s1 into tank/a failed: " + failure.reason
    mounted_only = receive_failure(1, b"cannot mount '/mnt/x': mountpoint or dataset is busy\n")
    assert mounted_only.kind == "mount_failed" and "busy" in mounted_only.kinds
    assert receive_failure(1, b"").reason == "exit 1"


FAKE = """#!/bin/sh
# Scripted zfs/zpool: logs each call, answers the listing verbs, fails `clone -o` as zfs-fuse does.
dir="$(dirname "$0")"
echo "$(basename "$0") $*" >> "$dir/calls"
case "$(basename "$0") $1" in
"zfs get")
    case "$*" in
    *"-o source"*) echo local ;;
    *"offsite.zfs:created"*) printf 'tank/ds\\toffsite.zfs:created\\t-\\ntank/ds@a\\toffsite.zfs:created\\ttrue\\n'
        printf 'tank/ds@b\\toffsite.zfs:created\\t-\\ntank/ds/c@a\\toffsite.zfs:created\\ttrue\\n' ;;
    *guid*) printf 'tank\\t11\\ntank@p\\t12\\ntank/ds@a\\t13\\ntank/ds@b\\t14\\n' ;;
    esac
    exit 0 ;;
"zfs list")
    printf 'tank/ds@a\\ntank/ds@b\\ntank/ds/c@a\\n'; exit 0 ;;
"zfs clone")
    [ "$2" = "-o" ] && { echo "invalid option 'o'" >&2; exit 2; }; exit 0 ;;
"zpool list")
    [ "$5" = "scratch" ] && echo scratch; [ "$5" = "scratch" ]; exit $? ;;
esac
exit 0
"""


def scripted(tmp_path: Path) -> Zfs:
    for name in ("zfs", "zpool"):
        binary = tmp_path / name
        binary.write_text(FAKE)
        binary.chmod(stat.S_IRWXU)
    return Zfs(str(tmp_path / "zfs"))


def calls(tmp_path: Path) -> List[str]:
    return (tmp_path / "calls").read_text().splitlines()


def test_named_reads_replace_the_raw_argv_of_tree_prune_and_status_local(tmp_path):
    zfs = scripted(tmp_path)
    assert zfs.snapshot_property("tank/ds", "offsite.zfs:created") == {"a": "true", "b": "-"}
    assert zfs.snapshot_names_below("tank") == {"tank/ds": {"a", "b"}, "tank/ds/c": {"a"}}
    assert zfs.snapshot_guids_below("tank") == {"tank": {"12"}, "tank/ds": {"13", "14"}}
    assert zfs.property_source("tank/ds", "mountpoint") == "local"
    assert calls(tmp_path) == [
        "zfs get -H -p -r -d 1 -o name,property,value offsite.zfs:created tank/ds",
        "zfs list -H -t snapshot -o name -r tank",
        "zfs get -H -p -r -o name,value guid tank",
        "zfs get -H -o source mountpoint tank/ds"]


def test_named_writes_of_scratch_places(tmp_path):
    zfs = scripted(tmp_path)
    zfs.create("tank/s", {"mountpoint": "none", "canmount": "off"}, "create the scratch dataset tank/s")
    zfs.clone("tank/ds@a", "tank/s-live0", {"readonly": "on"})  # zfs-fuse: no clone -o, so clone and set
    zfs.mount("tank/s-live0")
    zfs.create_pool("scratch", "/tmp/v.img", {"atime": "off"}, "create the scratch pool")
    assert zfs.pool_exists("scratch") and not zfs.pool_exists("other")
    zfs.destroy_pool("scratch")
    assert calls(tmp_path) == [
        "zfs create -o mountpoint=none -o canmount=off tank/s",
        "zfs clone -o readonly=on tank/ds@a tank/s-live0",
        "zfs list -H -o name tank/s-live0",
        "zfs clone tank/ds@a tank/s-live0",
        "zfs set readonly=on tank/s-live0",
        "zfs mount tank/s-live0",
        "zpool create -m none -O atime=off scratch /tmp/v.img",
        "zpool list -H -o name scratch",
        "zpool list -H -o name other",
        "zpool destroy -f scratch"]
