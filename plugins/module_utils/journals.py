# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Journals: where a provider's resume journal of one backup lives, and reading and writing it (0600).

Private to the collection: not an API for other collections.

Layer: the backup writes journals (ops/backup), the prune forgets those of backups it deletes.
`<state_dir>/journal/<provider>/<ns/dataset/id, quoted>.json`.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional
from urllib.parse import quote

from ansible_collections.offsite.zfs.plugins.module_utils.common import write_private_file
from ansible_collections.offsite.zfs.plugins.module_utils.settings import DatasetSettings


def journal_path(settings: DatasetSettings, provider: str, backup_id: str) -> str:
    name = quote("%s/%s/%s" % (settings.namespace, settings.dataset, backup_id), safe="") + ".json"
    return os.path.join(settings.state_dir, "journal", provider, name)


def load_journal(path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path, "r", encoding="utf-8") as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def save_journal(path: str, journal: Dict[str, Any]) -> None:
    write_private_file(path, json.dumps(journal, sort_keys=True).encode("utf-8"))
