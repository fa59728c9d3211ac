"""zfs.py's hold, release, userrefs, holds, bookmark and bookmark-feature calls: the exact argv, and the
answers of both ZFS flavours (zfs-fuse: no `zfs holds` helper, no bookmarks; OpenZFS: both).

A scripted stand-in for zfs (and zpool beside it) logs each call and answers as the real one does,
including the error texts the code must tolerate ("tag already exists", "no such tag").
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import List

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import Bookmark, SendPlan, Snapshot, Zfs

FAKE = """#!/bin/sh
# Scripted zfs. $FLAVOUR is fuse (zfs-fuse 0.7: holds without a `holds` helper, no bookmarks) or openzfs.
dir="$(dirname "$0")"
echo "$(basename "$0") $*" >> "$dir/calls"
case "$(basename "$0") $1" in
"zpool get")
    cat "$dir/feature" 2>/dev/null || { echo "bad property list" >&2; exit 2; }; exit 0 ;;
"zfs bookmark")
    [ $# -gt 1 ] && exit 0
    if [ "$FLAVOUR" = openzfs ]; then
        echo "missing snapshot argument" >&2; echo "usage:" >&2
        echo "	bookmark <snapshot|bookmark> <newbookmark>" >&2
    else
        echo "unrecognized command 'bookmark'" >&2; echo "usage: zfs command args ..." >&2
        echo "	hold [-r] <tag> <snapshot> ..." >&2
    fi
    exit 2 ;;
"zfs hold")
    if grep -qx "$2 $3" "$dir/holds" 2>/dev/null; then
        echo "cannot hold '$3': tag already exists on this dataset" >&2; exit 1
    fi
    echo "$2 $3" >> "$dir/holds"; exit 0 ;;
"zfs release")
    if ! grep -qx "$2 $3" "$dir/holds" 2>/dev/null; then
        echo "cannot release '$2' from '$3': no such tag on this dataset" >&2; exit 1
    fi
    grep -vx "$2 $3" "$dir/holds" > "$dir/holds.new"; mv "$dir/holds.new" "$dir/holds"; exit 0 ;;
"zfs holds")
    if [ "$FLAVOUR" = fuse ]; then echo "internal error: /usr/lib/zfs/pyzfs.py not found" >&2; exit 255; fi
    grep " $3\\$" "$dir/holds" 2>/dev/null | while read -r tag name; do
        printf '%s\\t%s\\tThu Dec  1 2026\\n' "$name" "$tag"
    done
    exit 0 ;;
"zfs get")
    [ "$6" = userrefs ] && { grep -c " $7\\$" "$dir/holds" 2>/dev/null || true; exit 0; } ;;
"zfs list")
    printf 'tank/ds#offsite-local-00000000000000aa\\t170\\t7\\t1700000000\\ntank/ds/child#x\\t1\\t1\\t1\\n'
    printf 'tank/ds#offsite-s3-00000000000000bb\\t187\\t9\\t1700000100\\n'
    exit 0 ;;
"zfs destroy")
    exit 0 ;;
esac
echo "unexpected: $*" >&2; exit 2
"""


def scripted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flavour: str = "fuse") -> Zfs:
    for name in ("zfs", "zpool"):
        binary = tmp_path / name
        binary.write_text(FAKE)
        binary.chmod(stat.S_IRWXU)
    monkeypatch.setenv("FLAVOUR", flavour)
    return Zfs(str(tmp_path / "zfs"))


def calls(tmp_path: Path) -> List[str]:
    return (tmp_path / "calls").read_text().splitlines()


def test_hold_and_release_argv_and_their_tolerated_answers(tmp_path, monkeypatch):
    zfs = scripted(tmp_path, monkeypatch)
    assert zfs.hold("offsite:local", "tank/ds@h1") is True
    assert zfs.hold("offsite:local", "tank/ds@h1") is False, "a second hold with our tag is not an error"
    assert zfs.userrefs("tank/ds@h1") == 1
    assert zfs.release("offsite:local", "tank/ds@h1") is True
    assert zfs.release("offsite:local", "tank/ds@h1") is False, "releasing a tag that is gone is not an error"
    assert zfs.userrefs("tank/ds@h1") == 0
    assert calls(tmp_path) == [
        "zfs hold offsite:local tank/ds@h1", "zfs hold offsite:local tank/ds@h1",
        "zfs get -H -p -o value userrefs tank/ds@h1",
        "zfs release offsite:local tank/ds@h1", "zfs release offsite:local tank/ds@h1",
        "zfs get -H -p -o value userrefs tank/ds@h1"]


def test_other_hold_errors_fail_with_the_zfs_sentence(tmp_path, monkeypatch):
    zfs = scripted(tmp_path, monkeypatch)
    (tmp_path / "zfs").write_text(FAKE.replace("tag already exists on this dataset", "permission denied"))
    zfs.hold("offsite:local", "tank/ds@h1")
    with pytest.raises(OffsiteError) as caught:
        zfs.hold("offsite:local", "tank/ds@h1")
    assert caught.value.message == ("Could not hold tank/ds@h1 with tag offsite:local: cannot hold 'tank/ds@h1': "
                                    "permission denied")


def test_holds_listing_is_detected_not_assumed(tmp_path, monkeypatch):
    zfs = scripted(tmp_path, monkeypatch, "fuse")
    zfs.hold("offsite:local", "tank/ds@h1")
    assert zfs.holds("tank/ds@h1") is None, "zfs-fuse cannot list holds: unknown, not empty"
    monkeypatch.setenv("FLAVOUR", "openzfs")
    assert zfs.holds("tank/ds@h1") == ["offsite:local"]


def test_zfs_fuse_has_no_bookmarks_and_zpool_is_not_even_asked(tmp_path, monkeypatch):
    zfs = scripted(tmp_path, monkeypatch, "fuse")
    assert zfs.bookmarks_supported("tank/ds") is False
    assert calls(tmp_path) == ["zfs bookmark"]


@pytest.mark.parametrize("feature,expected", [("active", True), ("enabled", True), ("disabled", False),
                                              (None, False)])
def test_openzfs_bookmarks_follow_the_pool_feature(tmp_path, monkeypatch, feature, expected):
    zfs = scripted(tmp_path, monkeypatch, "openzfs")
    if feature:
        (tmp_path / "feature").write_text(feature + "\n")
    assert zfs.bookmarks_supported("tank/ds/child") is expected
    assert zfs.bookmarks_supported("tank/other") is expected  # one answer per pool
    assert calls(tmp_path) == ["zfs bookmark", "zpool get -H -o value feature@bookmarks tank"]


def test_bookmark_list_and_destroy_argv(tmp_path, monkeypatch):
    zfs = scripted(tmp_path, monkeypatch, "openzfs")
    zfs.bookmark(Snapshot("tank/ds", "h1", 170, 7, 1700000000), "offsite-local-00000000000000aa")
    marks = zfs.bookmarks("tank/ds")
    assert [(m.bookmark, m.guid, m.createtxg, m.full_name) for m in marks] == [
        ("offsite-local-00000000000000aa", 170, 7, "tank/ds#offsite-local-00000000000000aa"),
        ("offsite-s3-00000000000000bb", 187, 9, "tank/ds#offsite-s3-00000000000000bb")]
    zfs.destroy_bookmark("tank/ds", "offsite-s3-00000000000000bb")
    assert calls(tmp_path) == [
        "zfs bookmark tank/ds@h1 tank/ds#offsite-local-00000000000000aa",
        "zfs list -H -p -t bookmark -d 1 -o name,guid,createtxg,creation tank/ds",
        "zfs destroy tank/ds#offsite-s3-00000000000000bb"]


def test_send_from_a_bookmark_uses_the_hash_name():
    base = Bookmark("tank/ds", "h1", 170, 7, 1700000000, bookmark="offsite-local-00000000000000aa")
    plan = SendPlan(Snapshot("tank/ds", "h2", 171, 8, 1700000100), base, ["-e"])
    assert plan.argv("zfs") == ["zfs", "send", "-e", "-i", "tank/ds#offsite-local-00000000000000aa", "tank/ds@h2"]
