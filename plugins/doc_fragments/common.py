# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Options every offsite.zfs module shares (their specs: plugins/module_utils/_module.py, COMMON_ARGS).
    DOCUMENTATION = r"""
options:
  config:
    description:
      - Path of the host config file (the policy format, see C(docs/policy.md)) on the managed node.
      - A missing file at the default path is fine when the parameters say everything; a missing file at any
        other path is an error.
    type: path
    default: /etc/offsite/offsite.yml
  providers:
    description:
      - Which providers to use. A provider name, a list of names, or V(all) (every configured provider).
      - A mapping of provider names to definitions adds to or overrides the providers of the config file,
        and selects them.
      - Each definition takes C(remote) (an rclone path such as C(b2:bucket/offsite) or a local directory),
        C(parallel_uploads), C(retries), C(retry_delay), C(rclone_config), C(bwlimit) and the call bounds
        C(connect_timeout), C(io_timeout), C(low_level_retries), C(call_timeout) and C(unreachable_budget).
      - Never put secrets here; use O(provider_env).
    type: raw
  provider_env:
    description:
      - rclone settings per provider that are secrets, as environment variables (for example
        C(RCLONE_CONFIG_B2_KEY)). They reach rclone through its environment only, never its argv, and are
        never logged.
    type: dict
  recipients:
    description:
      - age recipients (public keys, C(age1...) or C(ssh-ed25519 ...)) every backup is encrypted to.
      - Overrides C(recipients) of the config file. Backup hosts need only these public keys.
    type: list
    elements: str
  namespace:
    description:
      - The top-level folder on each provider for this host's backups. Defaults to the config file's
        C(namespace), else its C(host_name) (the role writes the inventory name), else the host's FQDN,
        so a fleet can share one bucket.
      - Without it, a host whose backups are in its 1.0 short-name namespace (and none in the new default)
        keeps using that namespace and says so in a warning (docs/policy.md, host identity).
      - Set it to another host's namespace to see or restore that host's backups.
    type: str
  state_dir:
    description:
      - Directory for locks, resume journals and progress state (mode 0700).
      - Defaults to the config file's C(state_dir), else C(/var/lib/offsite).
    type: path
  log_dir:
    description:
      - Directory for one log file per run (mode 0600 files). Defaults to the config file's C(log_dir),
        else C(/var/log/offsite).
    type: path
  spool:
    description:
      - Whether encrypted chunks are spooled to O(spool_dir) before upload (needed for upload retries and
        parallel uploads) and downloaded there before restore (so digests are checked before any byte
        reaches C(zfs receive)).
      - V(false) uses no temp space at all; a failed upload then re-reads the stream and resumes.
      - Defaults to the config file's C(defaults.spool.enabled), else V(true).
    type: bool
  spool_dir:
    description:
      - Directory for spooled chunks. At most (parallel_uploads + 1) x chunk_size is used by a backup,
        2 x chunk_size by a restore. Defaults to C(defaults.spool.dir), else C(/var/tmp/offsite).
    type: path
  rclone:
    description:
      - Path of the rclone binary. Defaults to C(rclone) on the PATH.
    type: path
requirements:
  - ZFS (OpenZFS or zfs-fuse) and rclone on the managed node.
  - Python libraries pyrage, zstandard and PyYAML on the managed node.
notes:
  - Identities, passphrases and rclone secrets are never written to disk, never put in a child process's
    argv, and never logged.
"""

    # The keys that decrypt: offsite_restore, offsite_drill, offsite_status (verify=decrypt), offsite_adopt
    # (_module.KEY_ARGS). Used as offsite.zfs.common.keys.
    KEYS = r"""
options:
  identity:
    description:
      - The text of an age identity file (C(AGE-SECRET-KEY-1...)) or an unencrypted SSH private key, to decrypt
        backups.
      - Never logged, never written to disk.
    type: str
  identity_file:
    description:
      - Path of an age identity file or SSH private key on the managed node, to decrypt backups.
    type: path
"""

    # Passphrase mode (_module.PASSPHRASE_ARGS). Used as offsite.zfs.common.passphrase.
    PASSPHRASE = r"""
options:
  passphrase:
    description:
      - The passphrase of passphrase mode. A backup made with no recipients configured is encrypted with it (age
        scrypt, wrapping a per-backup key); restoring, drilling or decrypting such a backup needs it again.
      - Never logged, never written to disk.
    type: str
"""

    # Signed manifests (_module.ALLOW_UNSIGNED_ARGS). Used as offsite.zfs.common.allow_unsigned.
    ALLOW_UNSIGNED = r"""
options:
  allow_unsigned:
    description:
      - Accept backups whose manifest carries no signature when the policy lists signers (backups made
        before signing was set up, and adopted legacy backups). A manifest with a wrong signature is refused
        even so. See C(docs/security.md).
      - When not set, the config file's C(allow_unsigned) applies (default V(false)).
    type: bool
"""
