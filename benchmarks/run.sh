#!/usr/bin/env bash
# Run the benchmark on a fresh Debian machine: install what it needs (scripts/bootstrap.sh),
# then benchmarks/bench.py with the project's .venv. Arguments go to bench.py, e.g.
#   bash benchmarks/run.sh --nice -20 --doc docs/benchmarks.md    # full run
#   bash benchmarks/run.sh --quick                                 # smoke run
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/bootstrap.sh
export PATH="$here/.venv/bin:$PATH"
exec "$here/.venv/bin/python" benchmarks/bench.py "$@"
