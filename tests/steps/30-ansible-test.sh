#!/usr/bin/env bash
# ansible-test sanity (every test that applies) and ansible-test units, run from a real
# ansible_collections/offsite/zfs copy of the tracked (and new, not ignored) files.
# No docker: sanity runs with --venv (ansible-test builds its own virtual environments
# from PyPI), units with --local. Writes junit XML to .tmp/results/ansible-test-*.xml.
set -euo pipefail
root="$(pwd)"
python="${OFFSITE_ANSIBLE_TEST_PYTHON:-3.11}"
work="$root/.tmp/ansible-test"
dest="$work/ansible_collections/offsite/zfs"
mkdir -p "$root/.tmp/results"

# 1. A fresh copy of the collection (ansible-test refuses symlinked or misplaced trees).
rm -rf "$work"
mkdir -p "$dest"
git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' path; do [ -f "$path" ] && printf '%s\0' "$path"; done \
    | tar --null -T - -cf - | tar -xf - -C "$dest"
# ansible-test lists content with git when the copy is a repository of its own; make it one
# so that nothing inside .tmp/ (ignored by the outer repository) is mistaken for ignored.
git -C "$dest" init -q
git -C "$dest" add -A
git -C "$dest" -c user.name=ci -c user.email=ci@localhost commit -q -m copy

# 2. Offline stand-in for the pip bootstrap script ansible-test downloads into new venvs:
#    ensurepip, then pip install of its arguments (ensurepip bundles setuptools/wheel choices).
pip_version="$(python3 - <<'PY'
import re, ansible_test, os
src = open(os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py")).read()
print(re.search(r"pip='([0-9.]+)'", src).group(1))
PY
)"
cache="$HOME/.ansible/test/cache"
get_pip="$cache/get_pip_${pip_version//./_}.py"
if [ ! -f "$get_pip" ]; then
    mkdir -p "$cache"
    cat > "$get_pip" <<'PY'
"""Stand-in for get-pip.py (offsite.zfs CI): ensurepip, then pip install the arguments."""
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)
PY
fi

cd "$dest"
# 3. Sanity: all tests that apply to this collection, on the CI Python.
status=0
ansible-test sanity --venv --python "$python" --junit --color no || status=$?
# ansible-test writes one junit file per sanity test, passed or failed.
for xml in tests/output/junit/*.xml; do
    if [ -f "$xml" ]; then cp "$xml" "$root/.tmp/results/$(basename "$xml")"; fi
done

# 4. Units: pytest under ansible-test; exits 0 when nothing ran, so check the count.
rm -rf tests/output/junit
units_status=0
ansible-test units --local --python "$python" --color no --requirements || units_status=$?
# One junit file per unit test group (module_utils, controller, ...): keep and count them all.
ran=0
for units_xml in tests/output/junit/*units*.xml; do
    [ -f "$units_xml" ] || continue
    cp "$units_xml" "$root/.tmp/results/ansible-test-$(basename "$units_xml")"
    count="$(python3 -c 'import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
s = [r] if r.tag == "testsuite" else r.findall("testsuite")
print(sum(int(x.get("tests", 0)) for x in s))' "$units_xml")"
    ran=$((ran + count))
done
echo "ansible-test units ran $ran tests"
if [ "$ran" -lt 1 ]; then
    echo "ansible-test units ran no test"
    exit 1
fi
[ "$status" -eq 0 ] && [ "$units_status" -eq 0 ]
