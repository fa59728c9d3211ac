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
    # A pidfile left by a daemon that died (a reboot, a kill -9) makes zfs-fuse refuse to start.
    if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        rm -f "$pidfile"
    fi
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
        pid="$(cat "$pidfile")"
        kill "$pid" 2>/dev/null || true
        # Wait (bounded) until it has exported its pools and exited, so a start right after works.
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        rm -f "$pidfile"
    fi
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
