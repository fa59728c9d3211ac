"""extract.py on real directories: pattern rules, matching, and copies that keep metadata (issue 18)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils import extract
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "copy"
    (root / "home" / "alice" / "thesis").mkdir(parents=True)
    (root / "etc" / "app").mkdir(parents=True)
    (root / "home" / "alice" / "thesis" / "ch1.tex").write_text("chapter one\n")
    (root / "home" / "alice" / ".hidden").write_text("h")
    (root / "etc" / "app" / "app.conf").write_text("k=v\n")
    (root / "etc" / "other.conf").write_text("o\n")
    os.symlink("/etc/passwd", root / "home" / "alice" / "escape")
    os.symlink("/etc", root / "etcdir")
    os.chmod(root / "etc" / "app" / "app.conf", 0o600)
    os.utime(root / "etc" / "app" / "app.conf", ns=(1_000_000_000_000_000_001, 1_000_000_000_000_000_001))
    os.utime(root / "etc" / "app", (1_200_000_000, 1_200_000_000))
    os.utime(root / "etc", (1_100_000_000, 1_100_000_000))
    return root


def test_patterns_are_normalised_and_bad_ones_refused():
    assert extract.validate_patterns(["/etc/app", "home//alice/", "/", "etc/*.conf"]) == [
        "etc/app", "home/alice", "", "etc/*.conf"]
    for bad in (["../x"], ["a/../../b"], [""], [None], [".zfs/snapshot/s1"], []):
        with pytest.raises(OffsiteError) as info:
            extract.validate_patterns(bad)
        assert info.value.code == "bad_path"


def test_matching_globs_and_nested_matches(tree: Path):
    matched, unmatched = extract.match(str(tree), ["etc/**/*.conf", "etc/app", "nothing*", "home/alice"])
    assert matched == ["etc/app", "etc/other.conf", "home/alice"], "app/app.conf is inside etc/app"
    assert unmatched == ["nothing*"]
    assert extract.match(str(tree), ["home/alice/*"])[0] == ["home/alice/escape", "home/alice/thesis"], \
        "a * does not match a leading dot"


def test_a_path_through_a_symlink_is_never_followed(tree: Path):
    matched, unmatched = extract.match(str(tree), ["etcdir/passwd", "etcdir/*"])
    assert matched == [] and unmatched == ["etcdir/passwd", "etcdir/*"]
    assert extract.match(str(tree), ["etcdir"])[0] == ["etcdir"], "the link itself can be restored"


def test_copy_keeps_contents_modes_times_and_links(tree: Path, tmp_path: Path):
    dest = tmp_path / "dest"
    result = extract.copy_out(str(tree), ["etc/app", "home/alice/escape"], str(dest))
    conf = dest / "etc" / "app" / "app.conf"
    assert conf.read_text() == "k=v\n"
    assert os.lstat(conf).st_mode & 0o7777 == 0o600
    assert os.lstat(conf).st_mtime_ns == 1_000_000_000_000_000_001
    assert os.lstat(dest / "etc" / "app").st_mtime == 1_200_000_000
    assert os.lstat(dest / "etc").st_mtime == 1_100_000_000, "parents get their times too"
    assert os.readlink(dest / "home" / "alice" / "escape") == "/etc/passwd", "links stay links"
    assert not (dest / "etc" / "other.conf").exists()
    assert result["files"] == 1 and result["directories"] == 1 and result["symlinks"] == 1
    assert result["bytes"] == 4
    assert result["copied"] == [{"path": "/etc/app", "files": 1, "bytes": 4},
                                {"path": "/home/alice/escape", "files": 0, "bytes": 0}]


def test_copy_of_the_root_skips_dot_zfs(tree: Path, tmp_path: Path):
    (tree / ".zfs").mkdir()
    (tree / ".zfs" / "x").write_text("x")
    dest = tmp_path / "all"
    extract.copy_out(str(tree), [""], str(dest))
    assert not (dest / ".zfs").exists()
    assert (dest / "home" / "alice" / ".hidden").read_text() == "h"


def test_dest_rules(tmp_path: Path):
    extract.check_dest(str(tmp_path / "new"), False)
    (tmp_path / "empty").mkdir()
    extract.check_dest(str(tmp_path / "empty"), False)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    with pytest.raises(OffsiteError) as info:
        extract.check_dest(str(tmp_path / "full"), False)
    assert info.value.code == "dest_not_empty"
    extract.check_dest(str(tmp_path / "full"), True)
    for bad in ("relative/dir", str(tmp_path / "full" / "f"), None):
        with pytest.raises(OffsiteError) as info:
            extract.check_dest(bad, True)
        assert info.value.code == "bad_dest"
