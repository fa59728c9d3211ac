#!/usr/bin/env bash
# Molecule (extensions/molecule/default, default driver on this machine): prepare a zfs-fuse pool and
# a local rclone remote, converge the role offsite.zfs.offsite with a policy, idempotence (the second
# run changes nothing), verify (the backup is there; a restore drill gives identical data), cleanup.
# Own ANSIBLE_HOME; the collection is installed from a fresh build. Writes .tmp/results/molecule.xml.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
mkdir -p .tmp/results
work="$(mktemp -d /tmp/offsite-molecule.XXXXXX)"
started=$(date +%s)
bash scripts/zfs-daemon.sh start
trap 'bash scripts/zfs-daemon.sh stop; rm -rf "$work"' EXIT

export ANSIBLE_HOME="$work/ansible-home"
export ANSIBLE_LOCAL_TEMP="$work/ansible-home/tmp"
export MOLECULE_EPHEMERAL_DIRECTORY="$work/molecule-state"
mkdir -p "$work/build" "$ANSIBLE_HOME"
ansible-galaxy collection build --force --output-path "$work/build" . >/dev/null
ansible-galaxy collection install --force -p "$work/collections" "$work"/build/offsite-zfs-*.tar.gz >/dev/null
export ANSIBLE_COLLECTIONS_PATH="$work/collections"
OFFSITE_MOLECULE_PYTHON="$(python3 -c 'import sys; print(sys.executable)')"
export OFFSITE_MOLECULE_PYTHON
export OFFSITE_MOLECULE_DIR="$work/scenario"
OFFSITE_MOLECULE_POOL="omol$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
export OFFSITE_MOLECULE_POOL

status=0
molecule test --scenario-name default 2>&1 | tee "$work/molecule.log" || status=$?
if [ "$status" -ne 0 ]; then
    # Never leave the pool behind, whatever step failed.
    zpool destroy -f "$OFFSITE_MOLECULE_POOL" 2>/dev/null || true
fi
seconds=$(( $(date +%s) - started ))
python3 - "$status" "$seconds" "$work/molecule.log" <<'PY'
import sys
from xml.sax.saxutils import escape
status, seconds, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
failure = "" if status == 0 else '<failure message="molecule test exited %d">%s</failure>' % (
    status, escape(open(log, encoding="utf-8", errors="replace").read()[-20000:]))
with open(".tmp/results/molecule.xml", "w", encoding="utf-8") as out:
    out.write('<testsuite name="molecule" tests="1" failures="%d" time="%s"><testcase classname="molecule" '
              'name="default: converge, idempotence, verify (restore drill)" time="%s">%s</testcase></testsuite>\n'
              % (0 if status == 0 else 1, seconds, seconds, failure))
PY
exit "$status"
