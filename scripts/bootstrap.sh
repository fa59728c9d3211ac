#!/usr/bin/env bash
# Install what offsite.zfs needs on a fresh Debian machine: system packages and a
# virtualenv (.venv in the project) with the Python requirements. Idempotent.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

need_apt=()
command -v zfs >/dev/null 2>&1 || need_apt+=(zfs-fuse)
command -v age >/dev/null 2>&1 || need_apt+=(age)
# zstd: restores decompress with the CLI in a child process (plugins/module_utils/decoder.py).
command -v zstd >/dev/null 2>&1 || need_apt+=(zstd)
command -v shellcheck >/dev/null 2>&1 || need_apt+=(shellcheck)
# restic: the peer in benchmarks/bench.py (the R rows).
command -v restic >/dev/null 2>&1 || need_apt+=(restic)
command -v git >/dev/null 2>&1 || need_apt+=(git)
# pv is in the old bash tool's F7/F8 pipelines, which tests/functional/test_legacy_formats.py runs as written.
command -v pv >/dev/null 2>&1 || need_apt+=(pv)
# sanoid is the neighbour that prunes snapshots in tests/functional/test_sanoid.py.
dpkg -s sanoid >/dev/null 2>&1 || need_apt+=(sanoid)
# Headless Chromium renders the fleet report in tests/functional/test_fleet_report.py.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# The SSH fleet tests (tests/functional/test_fleet_ssh.py) run OpenSSH's sshd on 127.0.0.1 and sudo; the role's
# defaults install the distribution's rclone there.
for pkg in openssh-server sudo rclone; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv python3-pip)
for extra in ${OFFSITE_EXTRA_APT:-}; do
    dpkg -s "$extra" >/dev/null 2>&1 || need_apt+=("$extra")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "bootstrap: installing ${need_apt[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
stamp=".venv/.offsite-requirements"
# shellcheck disable=SC2086  # a space-separated list of extra requirement files
want="$(cat requirements.txt requirements-dev.txt ${OFFSITE_EXTRA_REQUIREMENTS:-} 2>/dev/null | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "bootstrap: installing Python requirements into .venv"
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    extra_args=()
    for req in ${OFFSITE_EXTRA_REQUIREMENTS:-}; do extra_args+=(-r "$req"); done
    .venv/bin/python -m pip install -q -r requirements-dev.txt "${extra_args[@]}"
    echo "$want" > "$stamp"
fi
rclone_version="$(.venv/bin/rclone version 2>/dev/null || true)"
echo "bootstrap: ready (.venv/bin/python, ${rclone_version%%$'\n'*})"
