#!/usr/bin/env bash
# ansible-lint --profile production on the whole collection (roles, playbooks, molecule
# scenarios), with its own ANSIBLE_HOME and the collection installed there from a fresh build.
set -euo pipefail
root="$(pwd)"
home="$root/.tmp/ansible-lint-home"
rm -rf "$home"
mkdir -p "$home/build" "$root/.tmp/results"
export ANSIBLE_HOME="$home"
export ANSIBLE_COLLECTIONS_PATH="$home/collections"
export ANSIBLE_LOCAL_TEMP="$home/tmp"
ansible-galaxy collection build --force --output-path "$home/build" "$root" >/dev/null
ansible-galaxy collection install --force -p "$home/collections" "$home"/build/offsite-zfs-*.tar.gz >/dev/null
status=0
ansible-lint --profile production --offline --nocolor -f pep8 --sarif-file "$home/lint.sarif" || status=$?
# One junit case per linted file; a file with findings is a failure.
python3 - "$home/lint.sarif" "$root/.tmp/results/ansible-lint.xml" "$status" <<'PY'
import json, sys, subprocess
from xml.sax.saxutils import quoteattr
sarif, out, status = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    runs = json.load(open(sarif)).get("runs", [])
except ValueError:
    runs = []
bad = {}
for run in runs:
    for result in run.get("results", []):
        for loc in result.get("locations", []):
            uri = loc["physicalLocation"]["artifactLocation"]["uri"]
            bad.setdefault(uri, []).append("%s: %s" % (result.get("ruleId"), result["message"]["text"]))
cases = []
if status != 0 and not bad:
    bad["ansible-lint"] = ["ansible-lint exited %d without findings in its report" % status]
for uri, messages in sorted(bad.items()):
    cases.append('<testcase name=%s><failure message=%s/></testcase>' % (quoteattr(uri), quoteattr("; ".join(messages))))
if not bad:
    cases.append('<testcase name="ansible-lint --profile production"/>')
open(out, "w").write('<testsuite name="ansible-lint" tests="%d" failures="%d" errors="0" skipped="0">%s</testsuite>\n'
                     % (len(cases), len(bad), "".join(cases)))
PY
exit "$status"
