# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host identity: a stable random id kept in the state dir, recorded in every manifest this host writes.

Private to the collection: not an API for other collections.

Two hosts that share a namespace (two `web1` in different domains, a copied config) have different
ids, so a backup, a status or a prune can tell another host's backups from its own and name both
hosts. The id is created on first use (`<state_dir>/host-id`, mode 0600, created at most once even
when two runs start together) and never changes; a rebuilt host gets a new one. Backups written
before host ids existed (1.0.0, adopted legacy backups) carry none and are treated as this host's.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import tempfile
from typing import Any, List, Optional, Sequence

from ansible_collections.offsite.zfs.plugins.module_utils.common import private_dir
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError

FILE = "host-id"
_ID = re.compile(r"^[0-9a-f]{32}$")


def path_of(state_dir: str) -> str:
    return os.path.join(state_dir, FILE)


def read(state_dir: str) -> Optional[str]:
    """The host id, or None when there is none yet (or the file is not one)."""
    try:
        with open(path_of(state_dir), "r", encoding="ascii") as handle:
            text = handle.read(100).strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if _ID.match(text) else None


def get(state_dir: str, create: bool = True) -> str:
    """The host id; created (0600) when missing and create is true; '' in check mode without one."""
    found = read(state_dir)
    if found or not create:
        return found or ""
    path = path_of(state_dir)
    try:
        private_dir(state_dir)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-host-id-", dir=state_dir)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, (secrets.token_hex(16) + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # fails when another run created it first: that one wins
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    except OSError as exc:
        raise OffsiteError("The host id file %s cannot be created: %s; check that the state_dir %s is writable "
                           "(run as root)." % (path, exc.strerror or exc, state_dir), "bad_config")
    found = read(state_dir)
    if not found:
        raise OffsiteError("The host id file %s is not a host id (32 hex digits); move it away and run again."
                           % path, "bad_config")
    return found


def foreign(backups: Sequence[Any], own: str) -> List[Any]:
    """The complete backups another host wrote: a host id that is not own (own '': any host id at all)."""
    return [b for b in backups if b.manifest is not None and getattr(b.manifest, "host_id", "")
            and b.manifest.host_id != own]


def describe(namespace: str, others: Sequence[Any], own: str) -> str:
    """Why another host's backups are not touched, naming both hosts, and what to do."""
    sample = others[0].manifest
    return ("namespace %s holds %d backup%s of it written by another host (%s, host id %s), not by this one "
            "(%s, host id %s). Give each host its own namespace (the namespace setting, for example the host's "
            "FQDN); only if this host replaces %s (rebuilt), put that host id into the state_dir's host-id file" % (
                namespace, len(others), "" if len(others) == 1 else "s", sample.host or "unknown", sample.host_id,
                socket.gethostname(), own or "none yet", sample.host or "it"))
