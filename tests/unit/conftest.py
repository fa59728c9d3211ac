"""Unit tests run two ways: under `ansible-test units` (the collection is already importable
from its ansible_collections/offsite/zfs copy) and under plain pytest from the checkout, where
the collection is made importable through the same link the functional tests use."""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import ansible_collections.offsite.zfs.plugins.module_utils.common  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "functional"))
    import harness  # noqa: E402

    sys.path.insert(0, str(harness.collection_link()))
