# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors: OffsiteError, its typed subclasses, and CODES, the one vocabulary of error and problem codes.

Private to the collection: not an API for other collections.

An error is one sentence for the user (`message`) and a stable `code` (the modules' `error_code`).
The code of a failed operation (backup, restore, prune, drill, ...) and the code of a status
problem are ONE vocabulary: the same thing has the same code everywhere (a chunk whose SHA-256 does
not match is `digest_mismatch` whether restore or `offsite_status verify: digest` finds it).
`CODES` maps every code to (what it means, what to do); tests/unit/plugins/test_troubleshooting_doc.py
checks that every code the collection raises or reports is in it, and that docs/troubleshooting.md
has a section for each, headed with the meaning given here.

Typed errors carry what a caller decides on, so that no caller reads message text:
`ZfsError.kind` (zfs.py classifies zfs/zpool stderr), `StoreError.kind` (rclone_errors.py).
"""

from __future__ import annotations

from typing import Any, Dict, FrozenSet, Optional, Tuple


class OffsiteError(Exception):
    """An error whose message is one clear sentence meant for the user."""

    def __init__(self, message: str, code: str = "error", **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = details

    def __str__(self) -> str:
        return self.message


class ZfsError(OffsiteError):
    """A zfs or zpool command failed. `kind` is zfs.py's classification of its stderr (see zfs.KINDS);
    `kinds` every kind the text shows (a receive can fail for space AND leave nothing mounted);
    `reason` the first line zfs printed (or "exit N")."""

    def __init__(self, message: str, code: str = "zfs_failed", kind: str = "failed",
                 kinds: Optional[FrozenSet[str]] = None, reason: str = "", returncode: Optional[int] = None,
                 **details: Any) -> None:
        super().__init__(message, code, **details)
        self.kind = kind
        self.kinds = kinds if kinds is not None else frozenset((kind,))
        self.reason = reason
        self.returncode = returncode


class StoreError(OffsiteError):
    """An rclone failure. `kind` is rclone_errors' classification (not_found, unreachable, auth, timeout,
    retryable)."""

    def __init__(self, message: str, code: str = "provider_failed", kind: str = "retryable",
                 **details: Any) -> None:
        super().__init__(message, code, **details)
        self.kind = kind


# What an age decryption failure means (pyrage's DecryptError, the age CLI): read once, here.
WRONG_KEY = "wrong_key"  # none of the identities is a recipient of the file
DAMAGED = "damaged"  # authentication or format failed: damaged, truncated, or another file


def decrypt_failure_kind(exc: BaseException) -> str:
    """WRONG_KEY when age found no identity that opens the file, else DAMAGED."""
    return WRONG_KEY if "no matching keys" in str(exc).lower() else DAMAGED


# code -> (what it means: the heading of its section in docs/troubleshooting.md, what to do)
CODES: Dict[str, Tuple[str, str]] = {
    # -- names, parameters, configuration -------------------------------------------------------
    "bad_name": ("A dataset, snapshot, provider, namespace or target name was refused",
                 "use letters, digits and _ . : - (datasets: components separated by /)"),
    "bad_value": ("A parameter or setting has a value the collection cannot use", "fix the value the message names"),
    "bad_config": ("The config file (the policy) cannot be used", "fix the file, or run the role to write it"),
    "no_provider": ("No provider is configured", "define providers in the config file or pass providers"),
    "unknown_provider": ("A provider name that is not configured", "use one of the configured providers"),
    "not_in_policy": ("A dataset is not in the policy", "add it under datasets, or pass the settings as parameters"),
    "missing_library": ("A Python library is missing on the managed node", "apply the offsite role"),
    "internal": ("An internal consistency check failed", "report it, with the log file"),
    "command_failed": ("A helper command failed", "read its message; install or fix the command it names"),
    # -- providers (rclone) -------------------------------------------------------------------------
    "rclone_missing": ("rclone is not installed", "install rclone (the role does)"),
    "provider_failed": ("rclone failed against a provider",
                        "read rclone's message; run again (backups resume), or check the provider"),
    "provider_deferred": ("a provider fell past the spool bound and was dropped for this run",
                          "nothing: the next run resumes it; raise parallel_uploads or the bandwidth"),
    "provider_unreachable": ("a provider's endpoint cannot be reached", "check the endpoint, network and firewall"),
    "provider_auth": ("the provider refused the credentials", "check the provider's keys and their rights"),
    "not_mounted": ("A provider's disk is not mounted", "mount it (require_mount) and run again"),
    "upload_incomplete": ("An uploaded object is not on the provider with the size that was sent",
                          "run the backup again; it resumes"),
    "spool_failed": ("The spool directory is full or not writable", "free space, move spool_dir or spool: false"),
    "append_only_conflict": ("An append-only provider already holds this backup's manifest or signature",
                             "prune it from a host with delete rights, or back up a new snapshot"),
    # -- keys, manifests, signatures ----------------------------------------------------------------
    "no_keys": ("No key to encrypt or decrypt with", "pass recipients to back up, identity or passphrase to restore"),
    "bad_recipient": ("A recipient is not a public key", "pass age1... or ssh-ed25519/ssh-rsa public keys"),
    "bad_identity": ("The identity cannot be used", "pass an age identity or an unencrypted SSH private key"),
    "wrong_key": ("The key does not open this backup", "pass the identity the backup was encrypted to"),
    "tampered": ("A manifest was changed after it was written",
                 "restore from another provider; status reports it as mac_mismatch (chunk null)"),
    "bad_manifest": ("A manifest cannot be read", "back the snapshot up again and delete the damaged directory"),
    "unsigned": ("A backup has no signature, and signers are configured",
                 "pass allow_unsigned: true to trust old backups, or back up again"),
    "bad_signature": ("A backup's signature is not good", "delete it and back the snapshot up again; find out who"),
    "no_signing_key": ("The host's signing key is missing", "run the offsite role to create it"),
    "untrusted_signing_key": ("The host signs with a key the policy does not trust",
                              "add its public key under signers"),
    "sign_failed": ("ssh-keygen could not sign or verify", "install OpenSSH; check the key file (0600, unencrypted)"),
    # -- chunks: the same code from restore, verify and status --------------------------------------
    "chunk_missing": ("A chunk object the manifest lists is not on the provider", "back the snapshot up again"),
    "size_mismatch": ("A stored chunk has another size than the manifest says",
                      "restore from another provider; back the snapshot up again"),
    "digest_mismatch": ("A stored chunk's SHA-256 differs from the manifest",
                        "restore from another provider; back the snapshot up again (1.x restores said chunk_corrupt)"),
    "age_failed": ("The age or zstd command could not encrypt, decrypt or decompress a chunk",
                   "check that `age --version` runs; install age and zstd (the role does), or set OFFSITE_AGE=pyrage"),
    "decrypt_failed": ("A chunk fails age authentication or decompression, or the key does not open the backup",
                       "restore from another provider; check the key (1.x restores said chunk_corrupt)"),
    "mac_mismatch": ("A chunk's keyed digest differs: it belongs to another backup or position",
                     "restore from another provider; treat the bucket as tampered with (1.x: chunk_mismatch)"),
    "download_failed": ("A listed chunk could not be downloaded to verify it", "check the provider; run again"),
    "chunk_corrupt": ("A piece of a legacy backup is damaged",
                      "restore from another provider or an older backup"),
    "chunk_mismatch": ("A piece of a legacy backup does not belong where it is",
                       "restore from another provider; treat the bucket as tampered with"),
    "stream_changed": ("zfs send gave different bytes for the same snapshot", "keep send_options fixed; run again"),
    "broken_chain": ("An incremental backup whose base has no complete backup on that provider",
                     "take a full backup to that provider"),
    "orphan_object": ("Objects no manifest references", "delete them (offsite_prune removes abandoned uploads)"),
    "incomplete_upload": ("A backup directory with objects but no manifest", "run the backup again, or prune it"),
    # -- freshness, coverage, the host's view -------------------------------------------------------
    "no_backup": ("No provider can restore what was asked", "run offsite_backup; check the namespace"),
    "stale": ("The newest restorable backup is older than max_age", "check that backups run"),
    "not_backed_up": ("Local snapshots are newer than the newest backed-up one", "run offsite_backup"),
    "nothing_offsite": ("A dataset or host has snapshots but no backup anywhere",
                        "back it up, or exclude it on purpose"),
    "coverage_low": ("Sample verification has not covered every chunk within verify_coverage",
                     "run offsite_status sample more often or with a larger share"),
    "foreign_host": ("The namespace holds another host's backups of this dataset", "give each host its own namespace"),
    "new_lineage": ("The dataset is not the one its backups came from", "pass new_lineage: true if it is meant"),
    "backup_vanished": ("A backup this host completed is gone from the provider",
                        "find out who deleted it; back the dataset up again"),
    "manifest_changed": ("A backup's manifest is not the one this host wrote",
                         "find out who can write to the provider; back the dataset up again"),
    "ledger_reset": ("This host has no ledger of the backups the provider holds",
                     "nothing, if the state directory was replaced on purpose"),
    "base_at_risk": ("The base of the next incremental has no hold and no bookmark", "keep hold_base on"),
    "full_backup_next": ("The base of the next incremental is gone: the next backup will be full",
                         "nothing, or keep hold_base on so it does not happen again"),
    "base_gone": ("The base snapshot is gone, but the next backup is still incremental", "nothing"),
    "drill_failed": ("The last restore drill failed", "read its error_code and message; run offsite_drill again"),
    "drill_overdue": ("The last restore drill is older than drill_every", "run offsite_drill"),
    "drill_guid": ("A drill received another snapshot than the manifest names", "back the snapshot up again"),
    "drill_mismatch": ("Files restored by a drill differ from the live snapshot", "find out why; back up again"),
    "legacy_incomplete": ("A legacy backup misses pieces", "restore an older legacy backup or another provider"),
    "legacy_unparsed": ("An object in the old tool's folders does not parse", "look at it; delete it if it is junk"),
    # -- locks, ZFS, targets ------------------------------------------------------------------------
    "locked": ("Another offsite operation holds the lock", "wait for it, or stop it"),
    "no_dataset": ("The dataset does not exist on this host", "check the name"),
    "no_snapshot": ("The snapshot does not exist, or the dataset has none", "check the name, or create: true"),
    "receive_failed": ("zfs receive failed", "read zfs's reason; free space or pass force: true as it says"),
    "zfs_failed": ("A zfs command failed", "read zfs's reason in the message"),
    "zfs_missing": ("ZFS is not installed", "install OpenZFS or zfs-fuse"),
    "unsupported": ("This ZFS cannot do what a send option asks", "set the send option to auto or false"),
    "no_parent": ("The target's parent dataset does not exist", "create it first"),
    "bad_target": ("The target is a pool", "restore into a dataset inside the pool"),
    "target_exists": ("The target exists and is not part of this chain", "restore elsewhere, or force: true"),
    "target_diverged": ("The target has newer snapshots than the backup", "restore elsewhere, or force: true"),
    "target_busy": ("ZFS kept refusing to rename the fully received copy to the target",
                    "run the restore again; it only renames"),
    # -- single files, scratch places -----------------------------------------------------------------
    "bad_path": ("A path to restore was refused", "give relative paths or patterns inside the dataset"),
    "bad_dest": ("The directory to copy restored paths into cannot be used", "give an absolute, writable dest"),
    "dest_not_empty": ("dest already holds files", "give an empty dest, or overwrite: true"),
    "no_match": ("No file of the backup matches a path", "check the path against the snapshot"),
    "volume_paths": ("Paths were asked of a volume", "restore the volume whole"),
    "bad_scratch": ("The scratch place cannot be used", "give an existing scratch_pool or scratch_dir"),
    "scratch_space": ("The scratch place has too little room", "give a scratch place with more room"),
    "scratch_mount": ("The received copy cannot be mounted", "check the scratch place; run again"),
    "scratch_cleanup": ("A scratch place left by a killed run was not destroyed", "destroy it by hand"),
}


def meaning(code: str) -> str:
    """What a code means (the code itself when it is not in CODES)."""
    return CODES.get(code, (code, ""))[0]
