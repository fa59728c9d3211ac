#!/usr/bin/env bash
# Molecule (extensions/molecule/default, default driver on this machine): prepare a zfs-fuse pool and
# a local rclone remote, converge the role offsite.zfs.offsite with a policy, idempotence (the second
# run changes nothing), verify (the backup is there; a restore drill gives identical data), cleanup.
# Then extensions/molecule/ssh: the same over real SSH (sshd on 127.0.0.1 from tests/functional/sshd.py, an
# unprivileged user with sudo, the discovered system Python, the role's defaults with its virtualenv).
# Own ANSIBLE_HOME; the collection is installed from a fresh build. Writes .tmp/results/molecule.xml.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
mkdir -p .tmp/results
work="$(mktemp -d /tmp/offsite-molecule.XXXXXX)"
started=$(date +%s)
bash scripts/zfs-daemon.sh start
OFFSITE_SSH_PID="" OFFSITE_SSH_DIR="" OFFSITE_SSH_USER=""
ssh_stop() {
    if [ -n "${OFFSITE_SSH_PID:-}" ]; then
        python3 tests/functional/sshd.py stop "$OFFSITE_SSH_PID" "$OFFSITE_SSH_DIR" "$OFFSITE_SSH_USER" || true
    fi
}
trap 'ssh_stop; bash scripts/zfs-daemon.sh stop; rm -rf "$work"' EXIT

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

default_seconds=$(( $(date +%s) - started ))

# The ssh scenario: its own sshd, user, work directory and pool.
ssh_status=0
ssh_started=$(date +%s)
eval "$(python3 tests/functional/sshd.py start)"
export OFFSITE_SSH_PORT OFFSITE_SSH_USER OFFSITE_SSH_KEY
export OFFSITE_MOLECULE_DIR="$work/ssh-scenario"
OFFSITE_MOLECULE_POOL="omol$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
export OFFSITE_MOLECULE_POOL
export MOLECULE_EPHEMERAL_DIRECTORY="$work/molecule-state-ssh"
export ANSIBLE_SSH_CONTROL_PATH_DIR="$OFFSITE_SSH_DIR/cp"
molecule test --scenario-name ssh 2>&1 | tee "$work/molecule-ssh.log" || ssh_status=$?
if [ "$ssh_status" -ne 0 ]; then
    zpool destroy -f "$OFFSITE_MOLECULE_POOL" 2>/dev/null || true
fi
ssh_stop
OFFSITE_SSH_PID=""
ssh_seconds=$(( $(date +%s) - ssh_started ))

python3 - "$status" "$default_seconds" "$work/molecule.log" "$ssh_status" "$ssh_seconds" "$work/molecule-ssh.log" <<'PY'
import sys
from xml.sax.saxutils import escape


def case(name, status, seconds, log):
    failure = "" if status == 0 else '<failure message="molecule test exited %d">%s</failure>' % (
        status, escape(open(log, encoding="utf-8", errors="replace").read()[-20000:]))
    return '<testcase classname="molecule" name="%s" time="%s">%s</testcase>' % (name, seconds, failure)


status, seconds, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]  # the default scenario
ssh_status, ssh_seconds, ssh_log = int(sys.argv[4]), sys.argv[5], sys.argv[6]
cases = [case("default: converge, idempotence, verify (restore drill)", status, seconds, log),
         case("ssh: role defaults over SSH with become, idempotence, verify (restore drill)", ssh_status,
              ssh_seconds, ssh_log)]
with open(".tmp/results/molecule.xml", "w", encoding="utf-8") as out:
    out.write('<testsuite name="molecule" tests="2" failures="%d" time="%s">%s</testsuite>\n' % (
        (status != 0) + (ssh_status != 0), int(seconds) + int(ssh_seconds), "".join(cases)))
PY
[ "$status" -eq 0 ] && [ "$ssh_status" -eq 0 ]
