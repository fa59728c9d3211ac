# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Selected paths out of a mounted copy: validating patterns, matching them, copying with metadata.

Private to the collection: not an API for other collections.

Paths are relative to the dataset's root (a leading / is the root). Glob patterns follow Python's
glob with `**` (a `*` does not match a leading dot). Nothing outside the copy is ever read: a path that
reaches through a symbolic link is refused, and symbolic links are copied as links. Copies keep
contents, modes, owners (when run as root), times, extended attributes and hard links between the
copied files.
"""

from __future__ import annotations

import glob
import os
import posixpath
import shutil
import stat
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError

MAX_LISTED = 1000


def validate_patterns(paths: Optional[Sequence[Any]]) -> List[str]:
    """Normalised patterns relative to the dataset root ('' is the root); raises on '..' or bad values."""
    if not paths:
        raise OffsiteError("paths is empty: name at least one file, directory or glob pattern inside the dataset.",
                           "bad_path")
    result = []
    for raw in paths:
        if not isinstance(raw, str) or not raw or "\0" in raw:
            raise OffsiteError("Each entry of paths must be a non-empty path or pattern; got %r." % (raw,),
                               "bad_path")
        norm = posixpath.normpath("/" + raw.strip()).lstrip("/")
        parts = [p for p in raw.split("/") if p]
        if ".." in parts:
            raise OffsiteError("The path %s leaves the dataset (it contains ..); give a path inside the dataset."
                               % raw, "bad_path")
        if norm.split("/")[0] == ".zfs":
            raise OffsiteError("The path %s is inside .zfs; name a path of the snapshot's files." % raw, "bad_path")
        result.append("" if norm == "." else norm)
    return result


def check_dest(dest: Optional[str], force: bool) -> None:
    if not dest or not os.path.isabs(dest):
        raise OffsiteError("dest must be an absolute directory on this host for the restored paths; got %r." % dest,
                           "bad_dest")
    if os.path.lexists(dest):
        if not os.path.isdir(dest) or os.path.islink(dest):
            raise OffsiteError("dest %s exists and is not a directory; name a new or empty directory." % dest,
                               "bad_dest")
        if os.listdir(dest) and not force:
            raise OffsiteError("dest %s is not empty; name a new or empty directory, or pass force=true to copy "
                               "over what it holds." % dest, "dest_not_empty")


def _inside(root: str, path: str) -> bool:
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root.rstrip("/") + "/")


def match(root: str, patterns: Sequence[str]) -> Tuple[List[str], List[str]]:
    """(matched relative paths, patterns that match nothing); a path below another matched one is dropped."""
    found = set()
    unmatched = []
    for pattern in patterns:
        hits = []
        if pattern and glob.has_magic(pattern):
            for path in glob.glob(os.path.join(glob.escape(root), pattern), recursive=True):
                rel = os.path.relpath(path, root)
                if rel.split("/")[0] != ".zfs" and rel != ".":
                    hits.append(rel)
        elif os.path.lexists(os.path.join(root, pattern)):
            hits.append(pattern)
        hits = [h for h in hits if _inside(root, os.path.dirname(os.path.join(root, h)))]
        if not hits:
            unmatched.append(pattern or "/")
        found.update(hits)
    ordered = sorted(found)
    kept: List[str] = []
    for rel in ordered:
        if any(rel == k or k == "" or rel.startswith(k + "/") for k in kept):
            continue
        kept.append(rel)
    return kept, unmatched


@dataclass
class Copied:
    files: int = 0
    directories: int = 0
    symlinks: int = 0
    hardlinks: int = 0
    bytes: int = 0
    skipped: List[str] = field(default_factory=list)
    links: Dict[Tuple[int, int], str] = field(default_factory=dict)

    def as_dict(self) -> Dict[str, Any]:
        return {"files": self.files, "directories": self.directories, "symlinks": self.symlinks,
                "hardlinks": self.hardlinks, "bytes": self.bytes, "not_copied": self.skipped[:MAX_LISTED]}


def describe(root: str, rels: Sequence[str]) -> List[Dict[str, Any]]:
    """What each matched path is: type, and the files and bytes it holds."""
    listed = []
    for rel in rels[:MAX_LISTED]:
        path = os.path.join(root, rel)
        st = os.lstat(path)
        entry: Dict[str, Any] = {"path": "/" + rel, "type": _kind(st.st_mode), "mtime": int(st.st_mtime),
                                 "mode": "%04o" % stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}
        if stat.S_ISDIR(st.st_mode):
            files = size = 0
            for dirpath, _dirs, names in os.walk(path):
                for name in names:
                    sub = os.lstat(os.path.join(dirpath, name))
                    if stat.S_ISREG(sub.st_mode):
                        files += 1
                        size += sub.st_size
            entry.update(files=files, bytes=size)
        else:
            entry.update(files=1 if stat.S_ISREG(st.st_mode) else 0,
                         bytes=st.st_size if stat.S_ISREG(st.st_mode) else 0)
        listed.append(entry)
    return listed


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "directory"), (stat.S_ISREG, "file"), (stat.S_ISLNK, "symlink")):
        if test(mode):
            return name
    return "other"


def _owner(dst: str, st: os.stat_result, keep_owner: bool) -> None:
    if keep_owner:
        os.lchown(dst, st.st_uid, st.st_gid)


def _replace(dst: str, is_dir: bool) -> None:
    """With force: make room for dst (a directory over a directory is merged)."""
    if not os.path.lexists(dst):
        return
    if is_dir and os.path.isdir(dst) and not os.path.islink(dst):
        return
    if os.path.isdir(dst) and not os.path.islink(dst):
        shutil.rmtree(dst)
    else:
        os.unlink(dst)


def _copy_entry(src: str, dst: str, rel: str, done: Copied, keep_owner: bool) -> None:
    st = os.lstat(src)
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        _replace(dst, True)
        if not os.path.isdir(dst):
            os.mkdir(dst, 0o700)
        for entry in sorted(os.listdir(src)):
            if rel == "" and entry == ".zfs":
                continue
            _copy_entry(os.path.join(src, entry), os.path.join(dst, entry), posixpath.join(rel, entry), done,
                        keep_owner)
        _owner(dst, st, keep_owner)
        shutil.copystat(src, dst, follow_symlinks=False)  # after the contents: creating them changed the times
        done.directories += 1
        return
    _replace(dst, False)
    if stat.S_ISLNK(mode):
        os.symlink(os.readlink(src), dst)
        _owner(dst, st, keep_owner)
        try:
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        except (NotImplementedError, OSError):
            pass
        done.symlinks += 1
    elif stat.S_ISREG(mode):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in done.links:
            os.link(done.links[key], dst)
            done.hardlinks += 1
            return
        shutil.copyfile(src, dst, follow_symlinks=False)
        _owner(dst, st, keep_owner)
        shutil.copystat(src, dst, follow_symlinks=False)  # mode (after chown, which clears set-id bits) and times
        if st.st_nlink > 1:
            done.links[key] = dst
        done.files += 1
        done.bytes += st.st_size
    elif stat.S_ISFIFO(mode):
        os.mkfifo(dst, stat.S_IMODE(mode))
        _owner(dst, st, keep_owner)
        shutil.copystat(src, dst, follow_symlinks=False)
        done.files += 1
    else:
        done.skipped.append("/" + rel)  # devices and sockets are not copied


def copy_out(root: str, rels: Sequence[str], dest: str) -> Dict[str, Any]:
    """Copy each matched path to dest/<its path>; parents are created with the copy's metadata."""
    keep_owner = os.geteuid() == 0
    os.makedirs(dest, mode=0o700, exist_ok=True)
    done = Copied()
    per_path = []
    for rel in rels:
        before = (done.files, done.bytes)
        parts = rel.split("/") if rel else []
        for depth in range(1, len(parts)):
            parent_rel = "/".join(parts[:depth])
            parent_dst = os.path.join(dest, parent_rel)
            if not os.path.isdir(parent_dst):
                _replace(parent_dst, True)
                os.mkdir(parent_dst, 0o700)
                st = os.lstat(os.path.join(root, parent_rel))
                _owner(parent_dst, st, keep_owner)
                shutil.copymode(os.path.join(root, parent_rel), parent_dst)
        _copy_entry(os.path.join(root, rel), os.path.join(dest, rel) if rel else dest, rel, done, keep_owner)
        per_path.append({"path": "/" + rel, "files": done.files - before[0], "bytes": done.bytes - before[1]})
    # Parents' times last: creating their children changed them.
    for rel in rels:
        parts = rel.split("/") if rel else []
        for depth in range(len(parts) - 1, 0, -1):
            parent_rel = "/".join(parts[:depth])
            shutil.copystat(os.path.join(root, parent_rel), os.path.join(dest, parent_rel), follow_symlinks=False)
    result = done.as_dict()
    result["copied"] = per_path[:MAX_LISTED]
    result["owners_kept"] = keep_owner
    return result
