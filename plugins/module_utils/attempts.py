# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Upload attempts on append-only providers (`append_only: true`).

Private to the collection: not an API for other collections.

Such a provider may refuse deletes and overwrites for the backup host's credentials. A restarted
upload therefore never purges its backup directory and never writes an object name twice: each pass
of a resumed or restarted upload is a new attempt, and its chunks are named `chunk-NNNNNN-aK...`
(attempt 1 keeps the plain `chunk-NNNNNN...` names). The journal records the attempt and the
manifest records every chunk's object, so restore reads the right ones. Objects of abandoned
attempts are left for prune, which runs with delete rights elsewhere (playbooks/prune.yml,
offsite_prune_host) and removes them after `prune_incomplete_after`.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Iterable, List

from ansible_collections.offsite.zfs.plugins.module_utils import catalog, signing
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.store import RemoteObject

_ATTEMPT = re.compile(r"^chunk-\d{6}-a(\d+)\.")

KEPT_NOTE = "the provider is append-only, so the objects of the earlier attempt stay for prune"


def chunk_object(index: int, suffix: str, attempt: int) -> str:
    name = catalog.chunk_object(index, suffix)
    if attempt <= 1:
        return name
    return name.replace("chunk-%06d" % index, "chunk-%06d-a%d" % (index, attempt), 1)


def attempt_of(name: str) -> int:
    match = _ATTEMPT.match(name)
    return int(match.group(1)) if match else 1


def next_attempt(journal: Dict[str, Any], remote: Iterable[str]) -> int:
    """The attempt a pass of the upload writes under: a number no object in the directory uses yet."""
    names = list(remote)
    current = int(journal.get("attempt", 1))
    if not names:
        return current
    return max([current] + [attempt_of(n) for n in names]) + 1


def check_writable(provider: str, bdir: str, names: Iterable[str]) -> None:
    """Refuse before writing a manifest or signature that an earlier attempt already wrote."""
    taken = sorted({catalog.MANIFEST, signing.SIGNATURE} & set(names))
    if taken:
        raise OffsiteError("The backup directory %s on provider %s already holds %s of an earlier attempt and the "
                           "provider is append-only, so it cannot be replaced; prune it from a host with delete "
                           "rights (offsite_prune_host) and run the backup again." % (bdir, provider, taken[0]),
                           "append_only_conflict")


def abandoned(backup: catalog.Backup) -> List[RemoteObject]:
    """Objects of a complete backup's directory that its manifest does not reference (abandoned attempts)."""
    if backup.manifest is None:
        return []
    used = {c.object for c in backup.manifest.chunks} | {catalog.MANIFEST, signing.SIGNATURE}
    return [obj for name, obj in sorted(backup.objects.items()) if name not in used]
