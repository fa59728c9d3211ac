"""Unit tests run two ways: under `ansible-test units` (the collection is already importable
from its ansible_collections/offsite/zfs copy) and under plain pytest from the checkout, where
the collection is made importable through the same link the functional tests use."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def _collection_importable() -> bool:
    try:
        return importlib.util.find_spec("ansible_collections.offsite.zfs.plugins.module_utils.common") is not None
    except ImportError:
        return False


if not _collection_importable():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "functional"))
    import harness  # noqa: E402

    sys.path.insert(0, str(harness.collection_link()))
