# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host for unit tests: a ScriptedZfs, MemoryStores by provider name, a state directory, a fixed now.

`back_up` leaves what a successful backup leaves (objects, manifest, the ledger entry, the base
hold) without running one, so status, prune and restore planning can be driven from data.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Dict, Iterable, Optional

from ansible_collections.offsite.zfs.plugins.module_utils import catalog, holds, ledger
from ansible_collections.offsite.zfs.plugins.module_utils.manifest import Manifest
from ansible_collections.offsite.zfs.plugins.module_utils.settings import DatasetSettings
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import Snapshot
from ansible_collections.offsite.zfs.tests.unit.doubles import backups
from ansible_collections.offsite.zfs.tests.unit.doubles.memory_store import MemoryStore
from ansible_collections.offsite.zfs.tests.unit.doubles.scripted_zfs import ScriptedZfs

START = 1_767_225_600  # 2026-01-01T00:00:00Z: the first scripted snapshot is an hour later


class World:
    def __init__(self, tmp: Path, providers: Iterable[str] = ("b2",), dataset: str = "tank/data",
                 **provider_options: Any) -> None:
        self.tmp = tmp
        self.dataset = dataset
        self.now = float(START + 86400)
        self.zfs = ScriptedZfs(start=START)
        self.zfs.add_dataset(dataset)
        self.stores: Dict[str, MemoryStore] = {
            n: MemoryStore(n, now=lambda: self.now, **provider_options) for n in providers}
        self.state_dir = str(tmp / "state")

    def snap(self, name: str, **kwargs: Any) -> Snapshot:
        return self.zfs.add_snapshot(self.dataset, name, **kwargs)

    def back_up(self, provider: str, snap: Snapshot, base: Optional[Snapshot] = None, missing: Iterable[int] = (),
                record: bool = True, hold: bool = True, **fields: Any) -> Manifest:
        store = self.stores[provider]
        made = backups.manifest(snap, base, **fields)
        listed = catalog.list_backups(store, backups.NAMESPACE, snap.dataset).for_dataset(snap.dataset)
        backups.place(store, made, missing=missing)
        if record:
            ledger.record(self.state_dir, backups.NAMESPACE, provider, snap.dataset, made.backup_id,
                          hashlib.sha256(made.to_json()).hexdigest(), listed)
        if hold:
            self.zfs.hold(holds.tag_for(provider), snap.full_name)
        return made

    def settled(self) -> "World":
        """Forget the calls the setup made, so a test sees only what the code under test did."""
        self.zfs.calls.clear()
        for store in self.stores.values():
            store.calls.clear()
        return self

    def config(self, **dataset_settings: Any) -> Dict[str, Any]:
        return {"namespace": backups.NAMESPACE, "state_dir": self.state_dir,
                "providers": {n: {"remote": s.provider.remote} for n, s in self.stores.items()},
                "datasets": {self.dataset: dict(dataset_settings)}}

    def settings(self, **fields: Any) -> DatasetSettings:
        return backups.settings_for(str(self.tmp), self.stores.values(), self.dataset, **fields)
