#!/usr/bin/env bash
# Start (start) or stop (stop) a zfs-fuse daemon for the tests when the kernel has no ZFS.
# The PID goes to .tmp/zfs-fuse.pid; stop only ends a daemon this script started.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pidfile="$here/.tmp/zfs-fuse.pid"
case "${1:-}" in
start)
    [ -e /dev/zfs ] && exit 0
    pgrep -x zfs-fuse >/dev/null && exit 0
    mkdir -p "$here/.tmp"
    zfs-fuse --pidfile "$pidfile" --no-kstat-mount
    for _ in $(seq 1 300); do
        zpool list -H >/dev/null 2>&1 && exit 0
        sleep 0.1
    done
    echo "zfs-fuse did not answer" >&2
    exit 1
    ;;
stop)
    if [ -f "$pidfile" ]; then
        kill "$(cat "$pidfile")" 2>/dev/null || true
        rm -f "$pidfile"
    fi
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
