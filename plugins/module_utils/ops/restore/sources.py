# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Chain sources: where a restore's chain comes from, native or the old tool's, chosen once.

Private to the collection: not an API for other collections.

A ChainSource (native.NativeChain, legacy.LegacyChain) is one provider's chain, oldest link first:

    store, links, legacy, resumes, detected
    know_guids()                 links whose guid is only in their stream's tail read it (legacy -I)
    start(dataset, target)       the keys a result starts with
    planned(todo) / would(result, todo) / prepare(todo) / finished(result, received, total)

and each of its links has the same surface:

    name, label, guid, snapshot, stream_snapshot, kind, bytes, units, plan_entry()
    receive(sink, progress)      its plaintext stream into sink, every check of its kind; its entry
    stopped(target, failure) / failed(target, failure)   the receive's failure, in the link's words

`find_source` chooses: native backups, or the old tool's when legacy is true, or (legacy None, auto)
when no provider has a native backup of the dataset but one has the old tool's. target.py plans the
target and receive.py receives the links, the same for both.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Union

from ansible_collections.offsite.zfs.plugins.module_utils.common import validate_provider
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.keys import Keys
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.legacy import (
    LegacyChain,
    find_legacy,
    list_found,
    unlinked,
)
from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.native import NativeChain, find_native
from ansible_collections.offsite.zfs.plugins.module_utils.settings import DatasetSettings
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store

ChainSource = Union[NativeChain, LegacyChain]


def select_stores(settings: DatasetSettings, provider: Optional[str],
                  stores: Optional[Dict[str, Store]] = None) -> List[Store]:
    """The stores to look in, in order: every configured provider (auto), or the one named."""
    if provider not in (None, "auto"):
        validate_provider(provider)  # a hostile name is refused as such, never echoed into another message
        if provider not in settings.providers:
            raise OffsiteError("The provider %s is not configured; configured providers: %s." % (
                provider, ", ".join(sorted(settings.providers)) or "none"), "unknown_provider")
    names = list(settings.providers) if provider in (None, "auto") else [str(provider)]
    if not names:
        raise OffsiteError("No provider is configured: define providers in the config file or pass providers.",
                           "no_provider")
    return [(stores or {}).get(n) or Store(settings.providers[n]) for n in names]


def listing_dir(settings: DatasetSettings) -> Optional[str]:
    """Where manifests are downloaded for a listing (the spool directory, when it exists)."""
    return settings.spool_dir if os.path.isdir(settings.spool_dir) else None


def find_native_source(settings: DatasetSettings, stores: List[Store], snapshot: Optional[str],
                       keys: Optional[Keys] = None) -> NativeChain:
    """The native chain of the settings' dataset on the first of stores that holds a complete one."""
    return find_native(stores, settings.namespace, settings.dataset, snapshot, listing_dir(settings), settings.trust,
                       keys=keys, spool_dir=settings.spool_dir if settings.spool else None)


def find_source(settings: DatasetSettings, stores: List[Store], snapshot: Optional[str], keys: Keys,
                legacy: Optional[bool], check_mode: bool, target: str) -> Union[ChainSource, Dict[str, Any]]:
    """The chain to restore; a finished result instead in check mode when legacy backups need the identity
    to be linked. legacy: False native only, True the old tool's only, None the old tool's when no native."""
    native_error: Optional[OffsiteError] = None
    if not legacy:
        try:
            return find_native_source(settings, stores, snapshot, keys)
        except OffsiteError as exc:
            if legacy is False or exc.code != "no_backup":
                raise
            native_error = exc
    found, reasons = list_found(stores, settings.dataset)
    detected = ""
    if native_error is not None:
        if not found:
            raise native_error
        detected = f"no native backup: {native_error.message}"
    identities = list(keys.identities)
    if found and not identities and check_mode:
        result = unlinked(found, settings.dataset, target)
        if detected:
            result["legacy_detected"] = detected
        return result
    return find_legacy(found, reasons, settings.dataset, snapshot, identities, settings.spool_dir or None, detected)
