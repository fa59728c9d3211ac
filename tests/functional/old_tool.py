"""The old bash tool's backup commands, format by format, as docs/legacy.md and legacy-formats.md quote them.

Each script is the old tool's own pipeline (zfs send, split/dd/head, gzip, age -r, rclone) with its object
names and numbering; only the sizes are parameters (1G and the dynamic shard size become a few KiB or
bytes so that tests stay fast). split --filter runs its filter with $SHELL, which is dash in CI: every
filter here is POSIX sh, and the scripts are run with SHELL=/bin/sh.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Dict, Optional

import harness

_SEND = '''
if [ -n "${PREV:-}" ]; then backup_prefix="incr-$SNAP"; else backup_prefix="full-$SNAP"; fi
dataset_clean="${DS//\\//_}"
remote_path="$REMOTE/$dataset_clean"
agekey="$(cat "$AGE_PUBLIC_KEY_FILE")"
'''

# The shard name line of F7 (:745 @6c1c852) and F8 (:599 @62adcc8), verbatim.
_NAME = ('output_file="${backup_prefix}-s$(printf "%03d" "$shard_num")'
         '-b$(printf "%0WIDTHd" "$current_byte_offset").zfs.gz.age"')

SCRIPTS: Dict[str, str] = {
    # zfs-backup-all.sh @9f82fbe :89-94 (and zfs-backup-dual.sh): one object, staged then moved.
    "F1": _SEND + '''
if [ -n "${PREV:-}" ]; then send_cmd="zfs send -I @$PREV $DS@$SNAP"; else send_cmd="zfs send $DS@$SNAP"; fi
tmpfile="$WORK/${dataset_clean}-${SNAP}.zfs.gz.age"
eval "$send_cmd" | gzip | age -r "$agekey" > "$tmpfile"
rclone copy "$tmpfile" "${remote_path}/"
if [ -z "${NO_MOVETO:-}" ]; then
    rclone moveto "${remote_path}/$(basename "$tmpfile")" "${remote_path}/${backup_prefix}.zfs.gz.age"
fi
''',
    # zfs-backup-all.sh / zfs-backup-scaleway.sh 9d2bcd8-e9b2865 :91-92: $FILE sits in single quotes.
    "F2": _SEND + '''
if [ -n "${PREV:-}" ]; then send_cmd="zfs send -I @$PREV $DS@$SNAP"; else send_cmd="zfs send $DS@$SNAP"; fi
eval "$send_cmd" | split -b "$CHUNK" --numeric-suffixes=1 --suffix-length=3 \\
    --filter="gzip | age -r '$agekey' | rclone rcat '${remote_path}/${backup_prefix}-\\$FILE.zfs.gz.age'" -
''',
    # zfs-backup-simple.sh 9d2bcd8-e9b2865 :44-54: ONE age stream, sliced by split.
    "F3": _SEND + '''
export remote_path backup_prefix
if [ -n "${PREV:-}" ]; then
    zfs send -I "$DS@$PREV" "$DS@$SNAP" | gzip | age -r "$(cat "$AGE_PUBLIC_KEY_FILE")" | \\
        split -b "$CHUNK" --numeric-suffixes=1 --suffix-length=3 \\
        --filter='rclone rcat "$remote_path/$backup_prefix-$FILE.zfs.gz.age"' -
else
    zfs send "$DS@$SNAP" | gzip | age -r "$(cat "$AGE_PUBLIC_KEY_FILE")" | \\
        split -b "$CHUNK" --numeric-suffixes=1 --suffix-length=3 \\
        --filter='rclone rcat "$remote_path/$backup_prefix-$FILE.zfs.gz.age"' -
fi
''',
    # offsite ea9bbc9-83ca3b1 :391-411: the stream to a file, split, one gzip+age file per piece.
    "F4": _SEND + '''
cd "$WORK"
if [ -n "${PREV:-}" ]; then zfs send -I "$DS@$PREV" "$DS@$SNAP" > stream.zfs; else zfs send "$DS@$SNAP" > stream.zfs; fi
split -b "$CHUNK" stream.zfs chunk- --numeric-suffixes=1 --suffix-length=3
for chunk in chunk-*; do
    gzip < "$chunk" | age -r "$agekey" > "${backup_prefix}-x${chunk#chunk-}.zfs.gz.age"
    rclone copy "${backup_prefix}-x${chunk#chunk-}.zfs.gz.age" "${remote_path}/"
done
''',
    # offsite d5b1cd8-0819091 :561-616: split of the pipe into files, then gzip | age | rclone rcat.
    "F4-rcat": _SEND + '''
pipe_dir="$WORK"
if [ -n "${PREV:-}" ]; then zfs_cmd="zfs send -I $DS@$PREV $DS@$SNAP"; else zfs_cmd="zfs send $DS@$SNAP"; fi
eval "$zfs_cmd" | split -b "$CHUNK" --numeric-suffixes=1 --suffix-length=3 - "$pipe_dir/chunk-"
for chunk_file in "$pipe_dir"/chunk-*; do
    output_file="${backup_prefix}-x${chunk_file##*chunk-}.zfs.gz.age"
    gzip < "$chunk_file" | age -r "$agekey" | rclone rcat "${remote_path}/${output_file}"
done
''',
    # offsite ef2fee9 :572-618: split everything to a temp dir, then upload each shard.
    "F5": _SEND + '''
temp_dir="$WORK"
zfs send "$DS@$SNAP" | split -b "$SHARD" --numeric-suffixes=1 --suffix-length=3 - "$temp_dir/shard-"
for shard_file in "$temp_dir"/shard-*; do
    output_file="full-${SNAP}-s${shard_file##*shard-}.zfs.gz.age"
    pv -q -s "$(stat -c %s "$shard_file")" "$shard_file" | gzip | age -r "$agekey" | \\
        rclone rcat "${remote_path}/${output_file}"
done
''',
    # offsite 1c6bc68-b9ce13a :595-618: dd of the pipe (short reads), printf %03d, prefix <ds_>:<snap>.
    "F6": _SEND + '''
shard_file="$WORK/shard"
zfs send "$DS@$SNAP" | {
    shard_num=1
    while true; do
        dd bs="$SHARD" count=1 of="$shard_file" 2>/dev/null
        [ "$(stat -c %s "$shard_file")" -gt 0 ] || break
        output_file="${dataset_clean}:${SNAP}-s$(printf "%03d" "$shard_num").zfs.gz.age"
        gzip < "$shard_file" | age -r "$agekey" | rclone rcat "${remote_path}/${output_file}"
        shard_num=$((shard_num + 1))
    done
}
''',
    # offsite 11520cb-e70f854 :720-841: head -c per shard, -s%03d-b%010d, pv in the pipe from b8a32e5.
    "F7": _SEND + '''
backup_prefix="${dataset_clean}:${SNAP}"
shard_file="$WORK/shard"
zfs send "$DS@$SNAP" | pv -q -s 1000000 | {
    shard_num=1
    current_byte_offset=0
    while true; do
        head -c "$SHARD" > "$shard_file"
        bytes_read=$(stat -c %s "$shard_file")
        [ "$bytes_read" -gt 0 ] || break
        @NAME010@
        gzip < "$shard_file" | age -r "$agekey" | pv -q | rclone rcat "${remote_path}/${output_file}"
        current_byte_offset=$((current_byte_offset + bytes_read))
        shard_num=$((shard_num + 1))
    done
}
''',
    # offsite eaf50da, 62adcc8 :584-663: head -c | tee | wc -c, -s%03d-b%020d. STAGE_ONLY: the per-shard
    # gzip | age output goes to a local directory uploaded by one rclone copy (same names and bytes; a
    # thousand rclone starts would take a minute).
    "F8": _SEND + '''
backup_prefix="${dataset_clean}:${SNAP}"
shard_file="$WORK/shard"
mkdir -p "$WORK/stage"
zfs send "$DS@$SNAP" | pv -q -s 1000000 | {
    shard_num=1
    current_byte_offset=0
    while true; do
        bytes_read=$(head -c "$SHARD" | tee "$shard_file" | wc -c)
        [ "$bytes_read" -gt 0 ] || break
        @NAME020@
        if [ -n "${STAGE_ONLY:-}" ]; then
            gzip < "$shard_file" | age -r "$agekey" > "$WORK/stage/${output_file}"
        else
            gzip < "$shard_file" | age -r "$agekey" | rclone --progress rcat "${remote_path}/${output_file}" 2>/dev/null
        fi
        current_byte_offset=$((current_byte_offset + bytes_read))
        shard_num=$((shard_num + 1))
    done
}
if [ -n "${STAGE_ONLY:-}" ]; then rclone copy "$WORK/stage" "${remote_path}/"; fi
''',
}


for _fmt, _width in (("F7", "10"), ("F8", "20")):
    SCRIPTS[_fmt] = SCRIPTS[_fmt].replace("@NAME0%s@" % _width, _NAME.replace("WIDTH", _width))


def write(lab, fmt: str, remote: str, dataset: str, snapshot: str, prev: Optional[str] = None,
          size: int = 4096, env: Optional[Dict[str, str]] = None) -> Path:
    """Run the old tool's backup of dataset@snapshot in format fmt to remote; returns its folder (local remotes)."""
    work = Path(tempfile.mkdtemp(prefix="old-%s-%s-" % (fmt, snapshot), dir=str(lab.tmp)))
    bindir = Path(lab.tmp) / "old-bin"
    if not bindir.exists():
        bindir.mkdir()
        os.symlink(lab.rclone, bindir / "rclone")
    keyfile = Path(lab.tmp) / "zfs-backup.pub"
    keyfile.write_text(lab.key.public + "\n")
    harness.run(["bash", "-c", "set -euo pipefail\n" + SCRIPTS[fmt]], env=dict(
        os.environ, SHELL="/bin/sh", PATH="%s:%s" % (bindir, os.environ["PATH"]), DS=dataset, SNAP=snapshot,
        PREV=prev or "", REMOTE=remote, WORK=str(work), CHUNK=str(size), SHARD=str(size),
        AGE_PUBLIC_KEY_FILE=str(keyfile), RCLONE_CONFIG="/dev/null", **(env or {})))
    return Path(remote) / dataset.replace("/", "_")
