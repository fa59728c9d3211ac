#!/usr/bin/env bash
# Unit tests and functional tests on real ZFS pools, real rclone remotes and real ansible runs.
set -euo pipefail
bash scripts/zfs-daemon.sh start
trap 'bash scripts/zfs-daemon.sh stop' EXIT
python -m pytest -q -p no:cacheprovider --durations=15 --junitxml=.tmp/results/pytest.xml -n "${OFFSITE_PYTEST_WORKERS:-2}" tests/unit tests/functional
