# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keys: what opens a backup (age identities, or the passphrase of a passphrase-mode backup).

Private to the collection: not an API for other collections.

Layer: used by restore, verify, drills and adopt. Identities and passphrases live in memory only; they
reach age as text through an inherited pipe (age_cli.py), never argv or disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

from ansible_collections.offsite.zfs.plugins.module_utils import codec
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.manifest import Manifest


@dataclass
class Keys:
    identities: List[Any] = field(default_factory=list)
    passphrase: Optional[str] = None

    def backup_key(self, manifest: Manifest) -> bytes:
        """Open the per-backup MAC key (and check the manifest's MAC with it)."""
        enc = manifest.encryption
        identities = self.identities
        if enc.get("kind") == "passphrase":
            if not self.passphrase:
                raise OffsiteError("Backup %s of %s was made with a passphrase; pass passphrase to restore it."
                                   % (manifest.backup_id, manifest.dataset), "no_keys")
            identities = [codec.unwrap_identity(enc.get("wrapped_identity") or "", self.passphrase)]
        elif not identities:
            raise OffsiteError("Restoring %s needs an identity: pass identity, identity_file or passphrase."
                               % manifest.dataset, "no_keys")
        key = codec.unseal(enc["sealed_key"], identities)
        if not manifest.check_mac(key):
            raise OffsiteError("The manifest of backup %s of %s was altered after it was written (its MAC does not "
                               "match); refusing to restore from it." % (manifest.backup_id, manifest.dataset),
                               "tampered")
        return key

    def chunk_identities(self, manifest: Manifest) -> List[Any]:
        if manifest.encryption.get("kind") == "passphrase":
            return [codec.unwrap_identity(manifest.encryption.get("wrapped_identity") or "", self.passphrase or "")]
        return self.identities


def load_keys(identity: Optional[str], identity_file: Optional[str], passphrase: Optional[str]) -> Keys:
    keys = Keys(passphrase=passphrase or None)
    if identity:
        keys.identities += codec.parse_identities(identity, "the identity parameter")
    if identity_file:
        try:
            with open(identity_file, "r", encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            raise OffsiteError("The identity file %s cannot be read: %s." % (identity_file, exc.strerror),
                               "bad_identity")
        keys.identities += codec.parse_identities(text, "the identity file %s" % identity_file)
    return keys
