# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drill records: the outcome of the last restore drill per (dataset, provider), `<state_dir>/drills.json` (0600).

Private to the collection: not an API for other collections.

Layer: written by the drill (ops/restore), read by offsite_status (ops/status/drills.py).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict

from ansible_collections.offsite.zfs.plugins.module_utils.common import write_private_file

STATE_FILE = "drills.json"


def state_path(state_dir: str) -> str:
    return os.path.join(state_dir, STATE_FILE)


def load_records(state_dir: str) -> Dict[str, Dict[str, Any]]:
    """'dataset|provider' -> the last drill's record ({} when none or unreadable)."""
    try:
        with open(state_path(state_dir), "r", encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    drills = data.get("drills") if isinstance(data, dict) else None
    return drills if isinstance(drills, dict) else {}


def save_record(state_dir: str, record: Dict[str, Any]) -> None:
    drills = load_records(state_dir)
    drills["%s|%s" % (record["dataset"], record["provider"])] = record
    write_private_file(state_path(state_dir), json.dumps({"version": 1, "drills": drills}, indent=1,
                                                         sort_keys=True).encode())
