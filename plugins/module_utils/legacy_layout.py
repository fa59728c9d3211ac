# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Legacy layout: the old bash tool's object names, parsed into backups per format (pure, no I/O).

Private to the collection: not an API for other collections.

Names are relative to `<remote root>/<dataset with / turned into _>/` (docs/legacy.md has the table
of which old version wrote which format). Patterns are tried in this order, parsing from the right:

    F8     <ds_>:<snap>-sNNN-b<offset, 20 digits>.zfs.gz.age    shards, offset of the first raw byte
    F7     <ds_>:<snap>-sNNN-b<offset, 10+ digits>.zfs.gz.age   (11+ digits once the offset passes 10^10)
    F5/F6  full-<snap>-sNNN.zfs.gz.age / <ds_>:<snap>-sNNN...    shards of split or printf, NNN from 001,
                                                                  s1000 and longer past 999
    F3/F4  {full,incr}-<snap>-xNNN.zfs.gz.age                    split pieces x001..x999; one age stream
                                                                  (F3) or one age file per piece (F4),
                                                                  told apart by the age header of x002
    F2     {full,incr}-<snap>-$FILE.zfs.gz.age                   only the last split chunk survives
    F1     {full,incr}-<snap>.zfs.gz.age, or the staging key <ds_>-<snap>.zfs.gz.age

Every key that ends like the old tool's objects but fits none of these is returned as unparsed, with the
reason, so that status reports it instead of skipping it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

SUFFIX = ".zfs.gz.age"
_F8 = re.compile(r"^(?P<prefix>.+)-s(?P<number>[0-9]{3,})-b(?P<offset>[0-9]{20})\.zfs\.gz\.age$")
_F7 = re.compile(r"^(?P<prefix>.+)-s(?P<number>[0-9]{3,})-b(?P<offset>[0-9]{10,19})\.zfs\.gz\.age$")
_SHARD = re.compile(r"^(?P<prefix>.+)-s(?P<number>[0-9]{3,})\.zfs\.gz\.age$")
_SPLIT = re.compile(r"^(?P<prefix>(?:full|incr)-.+)-x(?P<number>[0-9]{3})\.zfs\.gz\.age$")
_FILE = re.compile(r"^(?P<prefix>(?:full|incr)-.+)-\$FILE\.zfs\.gz\.age$")
_WHOLE = re.compile(r"^(?P<prefix>(?:full|incr)-.+)\.zfs\.gz\.age$")
_LINE_BREAKS = ("\n", "\r", "\u240a", "\u240d")  # rclone shows control characters as U+2400 symbols
_LOOKALIKE = re.compile(r"\.zfs(\.gz)?(\.age)?$|-[sx][0-9]+(-b[0-9]+)?\.|\$FILE")

FORMATS = {
    "F1": "one gzip+age object per stream (zfs-backup-all.sh 9f82fbe, zfs-backup-dual.sh 9d2bcd8-e9b2865)",
    "F2": "split --filter that overwrote one $FILE object (zfs-backup-all.sh, zfs-backup-scaleway.sh "
          "9d2bcd8-e9b2865)",
    "F3": "slices x001.. of one age stream (zfs-backup-simple.sh 9d2bcd8-e9b2865)",
    "F4": "pieces x001.., each its own gzip+age file (offsite ea9bbc9-0819091)",
    "F5": "shards s001.. named full-<snap> (offsite 3041f96-1faad49)",
    "F6": "shards s001.. named <dir>:<snap> (offsite 8b1ac8e-b9ce13a)",
    "F7": "shards s001..-b<10-digit offset> (offsite 6c1c852-e70f854)",
    "F8": "shards s001..-b<20-digit offset> (offsite eaf50da, 62adcc8)",
}


@dataclass
class Piece:
    key: str  # object path below the provider's remote: <folder>/<name>
    number: int  # from 1
    size: int  # stored (encrypted) bytes, from the listing
    offset: Optional[int] = None  # F7/F8: raw stream offset of the first byte

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def label(self) -> str:
        """The piece's own part of the name: x002, s1000, s002-b00000000000000065536, $FILE or the name."""
        stem = self.name[:-len(SUFFIX)]
        match = re.search(r"-([sx][0-9]+(?:-b[0-9]+)?|\$FILE)$", stem)
        return match.group(1) if match else self.name


@dataclass
class LegacySet:
    """One stream of the old tool, as far as its object names tell."""

    dataset: str
    format: str  # F1, F2, F3/F4 (until x002 is probed), F3, F4, F5, F6, F7, F8
    prefix: str  # the common part of the names, e.g. full-auto-20250716-180000 or tank_data:auto-...
    snapshot: str  # the snapshot name from the key (the stream's own name is in its header)
    kind: str  # full, incremental, or unknown (shards and staging keys: known once the header is read)
    pieces: List[Piece] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)  # why it cannot be restored as it is
    notes: List[str] = field(default_factory=list)  # what could not be checked, or was read from history
    staging: bool = False  # F1 staging key left by a failed rclone moveto
    header: Any = None  # legacy_stream.StreamHeader, once read with an identity
    final_guid: str = ""  # the final snapshot's guid (a compound stream's is read from its tail)

    @property
    def name(self) -> str:
        return self.pieces[0].name[:-len(SUFFIX)] if self.pieces else self.prefix

    @property
    def stored_bytes(self) -> int:
        return sum(p.size for p in self.pieces)

    @property
    def complete(self) -> bool:
        """As far as names tell (no format stores a piece count, so a missing last piece is not seen)."""
        return bool(self.pieces) and not self.problems

    @property
    def offset_width(self) -> int:
        return 20 if self.format == "F8" else 10 if self.format == "F7" else 0


@dataclass
class Unparsed:
    key: str
    size: int
    reason: str


@dataclass
class Layout:
    sets: List[LegacySet]
    unparsed: List[Unparsed]


def folder_for(dataset: str) -> str:
    """The old tool's folder: the dataset name with every / turned into _ (lossy: tank/a_b = tank/a/b)."""
    return dataset.replace("/", "_")


def _kind(prefix: str) -> str:
    return "full" if prefix.startswith("full-") else "incremental" if prefix.startswith("incr-") else "unknown"


def _snapshot(prefix: str, folder: str) -> Tuple[Optional[str], str]:
    """(snapshot, which prefix) after removing full-/incr- or the known "<folder>:" (never the first ":")."""
    if prefix.startswith(folder + ":"):
        return prefix[len(folder) + 1:], "folder"
    if prefix.startswith(("full-", "incr-")):
        return prefix[5:], "kind"
    return None, ""


def _classify(name: str, folder: str) -> Tuple[Optional[Tuple[str, str, int, Optional[int]]], str]:
    """((format, prefix, number, offset), "") or (None, why it does not parse)."""
    for fmt, pattern in (("F8", _F8), ("F7", _F7)):
        match = pattern.match(name)
        if match:
            snap, how = _snapshot(match.group("prefix"), folder)
            if snap is None:
                return None, f"it looks like an {fmt} shard but does not start with {folder}: or full-/incr-"
            return (fmt, match.group("prefix"), int(match.group("number")), int(match.group("offset"))), ""
    match = _SHARD.match(name)
    if match:
        snap, how = _snapshot(match.group("prefix"), folder)
        if snap is None:
            return None, f"it looks like an F5/F6 shard but does not start with full- or {folder}:"
        return ("F6" if how == "folder" else "F5", match.group("prefix"), int(match.group("number")), None), ""
    match = _SPLIT.match(name)
    if match:
        return ("F3/F4", match.group("prefix"), int(match.group("number")), None), ""
    match = _FILE.match(name)
    if match:
        return ("F2", match.group("prefix"), 1, None), ""
    match = _WHOLE.match(name)
    if match:
        return ("F1", match.group("prefix"), 1, None), ""
    if name.startswith(folder + "-") and name.endswith(SUFFIX) and len(name) > len(folder) + 1 + len(SUFFIX):
        return ("F1", name[:-len(SUFFIX)], 1, None), ""
    if re.search(r"-b[0-9]{1,9}\.zfs\.gz\.age$", name):
        return None, "its shard offset has fewer than 10 digits, which no version of the old tool wrote"
    return None, "it ends like an object of the old tool but fits none of its name patterns"


def _check(backup: LegacySet) -> None:
    """Problems that the names alone show: numbering from 1 without a gap or a repeat; F7/F8 offsets."""
    numbers = [p.number for p in backup.pieces]
    if backup.format in ("F1", "F2"):
        return
    if len(set(numbers)) != len(numbers):
        twice = sorted({n for n in numbers if numbers.count(n) > 1})
        labels = [p.label for p in backup.pieces if p.number == twice[0]]
        backup.problems.append(f"{backup.prefix} has piece number {twice[0]} twice ({', '.join(labels)})")
        return
    if numbers and numbers[0] == 0:
        backup.problems.append(f"piece {backup.pieces[0].name} is numbered 0, but the old tool numbered pieces "
                               f"from 1: it was not written by the old tool")
        return
    missing = sorted(set(range(1, max(numbers) + 1)) - set(numbers))
    if missing:
        width = 3 if missing[0] < 1000 else len(str(missing[0]))
        letter = "x" if backup.format.startswith("F3") else "s"
        backup.problems.append(f"piece {letter}{missing[0]:0{width}d} of {backup.prefix} is missing"
                               + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    if backup.format in ("F7", "F8"):
        by_offset = sorted(backup.pieces, key=lambda p: p.offset or 0)
        if by_offset[0].offset != 0:
            backup.problems.append(f"the first shard {by_offset[0].name} of {backup.prefix} starts at byte "
                                   f"{by_offset[0].offset}, not 0: the shards before it are missing")
        elif [p.number for p in by_offset] != sorted(numbers) or len({p.offset for p in by_offset}) != len(numbers):
            backup.problems.append(f"the shard numbers and byte offsets of {backup.prefix} are not in the same "
                                   f"order: the names were changed, or shards of two runs are mixed")
        backup.pieces = by_offset


def _notes(backup: LegacySet) -> None:
    fmt = backup.format
    if fmt == "F2":
        backup.notes.append(
            f"{backup.name} is the only object the old tool's split --filter left (each 1 GiB chunk overwrote "
            f"the one $FILE key): it is the whole stream only if the stream fit in one chunk, which is checked "
            f"when it is read")
    if fmt == "F6" or (fmt in ("F3/F4", "F5", "F7") and len(backup.pieces) == 1):
        backup.notes.append("several old versions uploaded only the first piece and then stopped (docs/legacy.md); "
                            "a single piece is the whole stream only if the stream fit in it, which zfs receive "
                            "checks (its END record)")
    if backup.staging:
        backup.notes.append(f"{backup.name} is the staging key left by a failed rclone moveto; its content is a "
                            f"complete F1 object")


def parse_layout(dataset: str, objects: Sequence[Tuple[str, int]]) -> Layout:
    """Group the (path below the folder, size) of a folder's listing into legacy backups per format.

    F7 and F8 are grouped by prefix and by offset width, since the same `<ds_>:<snap>` can exist in both.
    """
    folder = folder_for(dataset)
    groups: Dict[Tuple[str, str], LegacySet] = {}
    unparsed: List[Unparsed] = []
    for path, size in objects:
        key = f"{folder}/{path}"
        if "/" in path or any(c in path for c in _LINE_BREAKS):
            if SUFFIX in path or any(c in path for c in _LINE_BREAKS):
                unparsed.append(Unparsed(key, size, "its key holds log text (a line break or a /): the junk object "
                                                    "that zfs-backup-dataset.sh uploaded instead of a backup; it "
                                                    "holds no data and can be deleted"))
            continue
        parsed, why = _classify(path, folder)
        if parsed is None:
            if _LOOKALIKE.search(path):
                unparsed.append(Unparsed(key, size, why))
            continue
        fmt, prefix, number, offset = parsed
        group = groups.get((fmt, prefix))
        if group is None:
            staging = fmt == "F1" and not prefix.startswith(("full-", "incr-"))
            snap = prefix[len(folder) + 1:] if staging else (_snapshot(prefix, folder)[0] or prefix)
            group = groups[(fmt, prefix)] = LegacySet(dataset, fmt, prefix, snap, "unknown" if staging else
                                                      ("unknown" if fmt in ("F6", "F7", "F8") else _kind(prefix)),
                                                      staging=staging)
        group.pieces.append(Piece(key, number, size, offset))
    sets = []
    for group in groups.values():
        group.pieces.sort(key=lambda p: p.number)
        _check(group)
        _notes(group)
        sets.append(group)
    staged = {(b.snapshot) for b in sets if b.format == "F1" and not b.staging}
    for group in sets:
        if group.staging and group.snapshot in staged:
            group.notes.append(f"{group.name} duplicates an F1 object of the same snapshot; that one is used")
            group.problems.append(f"{group.name} is a leftover staging copy of an F1 object that exists")
    sets.sort(key=lambda b: (_natural(b.snapshot), b.kind != "full", b.format))
    return Layout(sets, unparsed)


def _natural(text: str) -> List[Any]:
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"([0-9]+)", text)]


def resolve_split(backup: LegacySet, second_is_age: Optional[bool]) -> None:
    """F3/F4 once the start of x002 is known: age header -> F4 (one age file per piece), else F3.

    A single-piece set keeps the format "F3/F4": it is one age file of one gzip stream either way."""
    if backup.format != "F3/F4":
        return
    if len(backup.pieces) == 1 or second_is_age is None:
        return  # one piece is the same in both (read as one age file); an unreadable x002 stays unknown
    backup.format = "F4" if second_is_age else "F3"
    if backup.format == "F3" and backup.complete:
        first = backup.pieces[0].size
        for piece in backup.pieces[1:-1]:
            if piece.size != first:
                backup.problems.append(f"piece {piece.name} of {backup.prefix} is {piece.size} bytes but x001 is "
                                       f"{first}: split cut one age stream into equal slices, so it is truncated or "
                                       f"replaced")
                break
        if backup.pieces[-1].size > first:
            backup.problems.append(f"the last piece {backup.pieces[-1].name} of {backup.prefix} is larger than x001: "
                                   f"it is not a slice of the same stream")
