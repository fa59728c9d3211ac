# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Chains of one dataset on one provider, for status's health rules: which backup restores which. Pure.

Private to the collection: not an API for other collections.

Over catalog.resolve_chain, memoised by guid: the chain ending at a backup (intact links only, or
any), the chain of the newest backup (where damage is critical), and which complete backups are
restorable with how many links (what `chain_length` reports).
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional

from ansible_collections.offsite.zfs.plugins.module_utils import catalog


class Chains:
    """Chain resolution for one dataset on one provider, memoised by guid."""

    def __init__(self, backups: List[catalog.Backup]) -> None:
        self.backups = backups
        # Backup.intact walks every chunk: decide it once per backup, not once per chain lookup.
        self._intact_backups = [b for b in backups if b.complete and b.intact]
        self._intact_ids = {b.backup_id for b in self._intact_backups}
        self._intact: Dict[str, Optional[List[catalog.Backup]]] = {}
        self._any: Dict[str, Optional[List[catalog.Backup]]] = {}

    def is_intact(self, backup: catalog.Backup) -> bool:
        return backup.backup_id in self._intact_ids

    def intact(self, guid: str) -> Optional[List[catalog.Backup]]:
        if guid not in self._intact:
            self._intact[guid] = catalog.resolve_chain(self._intact_backups, guid, intact_only=False)
        return self._intact[guid]

    def any(self, guid: str) -> Optional[List[catalog.Backup]]:
        if guid not in self._any:
            self._any[guid] = catalog.resolve_chain(self.backups, guid, intact_only=False)
        return self._any[guid]

    def own_chain(self, backup: catalog.Backup, intact_only: bool) -> Optional[List[catalog.Backup]]:
        """The chain ending at this very backup (not another one of the same snapshot)."""
        manifest = backup.manifest
        if manifest is None or (intact_only and not self.is_intact(backup)):
            return None
        if manifest.kind == "full":
            return [backup]
        base = self.intact(manifest.base.guid) if intact_only else self.any(manifest.base.guid)
        return base + [backup] if base else None

    def newest_chain_ids(self) -> set:
        """The backups of the chain of the newest backup: damage there is critical, elsewhere a warning."""
        newest = catalog.latest_backup(self.backups)
        if newest is None:
            return set()
        return {b.backup_id for b in self.own_chain(newest, intact_only=False) or [newest]}

    def restorable(self, damaged: Iterable[str]) -> Dict[str, int]:
        """backup id -> chain length, for each complete backup whose intact chain has no damaged link."""
        bad = set(damaged)
        found: Dict[str, int] = {}
        for backup in self.backups:
            if not backup.complete:
                continue
            chain = self.own_chain(backup, intact_only=True)
            if chain and not any(b.backup_id in bad for b in chain):
                found[backup.backup_id] = len(chain)
        return found
