#!/usr/bin/env bash
# Style and static checks.
set -euo pipefail
ruff check plugins tests benchmarks scripts 2>/dev/null || ruff check plugins tests
