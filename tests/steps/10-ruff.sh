#!/usr/bin/env bash
# Style and static checks: ruff, then the blank-line rules ruff leaves to pycodestyle (the same
# checks ansible-test's pep8 sanity test runs later, found here in a second instead of minutes).
set -euo pipefail
ruff check plugins tests benchmarks scripts 2>/dev/null || ruff check plugins tests
python -m pycodestyle --max-line-length 160 --select E1,E3,W2,W3,W6 plugins tests benchmarks
