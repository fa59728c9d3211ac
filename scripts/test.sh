#!/usr/bin/env bash
# The whole test suite: installs what it needs (scripts/bootstrap.sh), then runs every
# step in tests/steps/ in order (lint, unit and functional tests on real ZFS and rclone,
# ansible-test, ansible-lint, molecule). Prints "N passed, M failed" at the end.
# Run one step: bash scripts/test.sh 20-pytest
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here" || exit 1
bash scripts/bootstrap.sh || { echo "bootstrap failed"; exit 1; }
export PATH="$here/.venv/bin:$PATH"
export OFFSITE_ROOT="$here"
mkdir -p .tmp/results
rm -f .tmp/results/*
passed=0
failed=0
failed_steps=()
for step in tests/steps/*.sh; do
    name="$(basename "$step" .sh)"
    if [ "$#" -gt 0 ] && [[ " $* " != *" $name "* ]]; then
        continue
    fi
    echo "=== step $name"
    start=$(date +%s)
    if bash "$step"; then
        echo "=== step $name passed in $(( $(date +%s) - start ))s"
    else
        echo "=== step $name FAILED in $(( $(date +%s) - start ))s"
        failed_steps+=("$name")
    fi
done
# Count test cases from the junit files the steps wrote, and the steps themselves.
read -r p f < <(.venv/bin/python - <<'PY'
import glob, xml.etree.ElementTree as ET
p = f = 0
for path in glob.glob(".tmp/results/*.xml"):
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for s in suites:
        total = int(s.get("tests", 0)); bad = int(s.get("failures", 0)) + int(s.get("errors", 0))
        skipped = int(s.get("skipped", 0))
        p += total - bad - skipped; f += bad
print(p, f)
PY
)
passed=$((p))
failed=$((f))
if [ "${#failed_steps[@]}" -gt 0 ]; then
    echo "failed steps: ${failed_steps[*]}"
    failed=$((failed + ${#failed_steps[@]}))
fi
if [ "$passed" -eq 0 ]; then
    echo "no test ran"
    echo "0 passed, 1 failed"
    exit 1
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
