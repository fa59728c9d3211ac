# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compatibility: the old home of DatasetSettings and resolve, now in settings.py and resolve.py.

Private to the collection: not an API for other collections.

Loading the config file is config.load (one rule), typed settings are settings.py, resolving them is
resolve.py. A few layers still import DatasetSettings from here; issue 13's phase B moves them and
removes this file. Nothing here, or anywhere, reads the policy as a dict.
"""

from __future__ import annotations

from ansible_collections.offsite.zfs.plugins.module_utils.resolve import resolve
from ansible_collections.offsite.zfs.plugins.module_utils.settings import DatasetSettings

__all__ = ["DatasetSettings", "resolve"]
