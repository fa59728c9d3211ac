#!/usr/bin/env bash
# Documentation checks: antsibull-docs lints every plugin's DOCUMENTATION/EXAMPLES/RETURN (the
# way docs.ansible.com renders them), antsibull-changelog lints the fragments and changelog.yaml,
# and every plugin renders with ansible-doc from the installed collection.
set -euo pipefail
root="$(pwd)"
mkdir -p "$root/.tmp/results"
cases=()
failures=0
check() {  # check NAME COMMAND...: run one check, record it as a junit case
    local name="$1"; shift
    local log="$root/.tmp/results/docs-$name.log"
    if "$@" >"$log" 2>&1; then
        cases+=("<testcase name=\"$name\"/>")
        echo "docs: $name passed"
    else
        failures=$((failures + 1))
        cases+=("<testcase name=\"$name\"><failure message=\"see .tmp/results/docs-$name.log\"/></testcase>")
        echo "docs: $name FAILED"
        cat "$log"
    fi
}
check antsibull-docs-lint antsibull-docs lint-collection-docs --plugin-docs .
check antsibull-changelog-lint antsibull-changelog lint
check changelog-yaml antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml
# Every module and filter renders with ansible-doc, from the import link the tests use.
link="$(python3 -c 'import sys; sys.path.insert(0, "tests/functional"); import harness; print(harness.collection_link())')"
for plugin in plugins/modules/*.py; do
    name="$(basename "$plugin" .py)"
    check "ansible-doc-$name" env ANSIBLE_COLLECTIONS_PATH="$link" ansible-doc -t module "offsite.zfs.$name"
done
for plugin in plugins/filter/*.yml; do
    [ -f "$plugin" ] || continue
    name="$(basename "$plugin" .yml)"
    check "ansible-doc-filter-$name" env ANSIBLE_COLLECTIONS_PATH="$link" ansible-doc -t filter "offsite.zfs.$name"
done
printf '<testsuite name="docs" tests="%d" failures="%d" errors="0" skipped="0">%s</testsuite>\n' \
    "${#cases[@]}" "$failures" "${cases[*]}" > "$root/.tmp/results/docs.xml"
[ "$failures" -eq 0 ]
