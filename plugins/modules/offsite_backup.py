#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: offsite_backup
short_description: Back up a ZFS snapshot, encrypted and chunked, to rclone providers
version_added: 1.0.0
description:
  - Streams C(zfs send) of a snapshot through chunking, keyed digests, compression (zstd, gzip or none)
    and age encryption to every selected provider; each provider gets its own complete backup.
  - Chooses full or incremental automatically, per provider. The base is the newest local snapshot older
    than the target, with the same guid, whose chain is completely backed up to that provider.
  - Resumes an interrupted backup (kill -9 included) by re-reading the stream and skipping chunks whose
    keyed digest matches what was uploaded. The manifest is written last, so a partial upload never looks
    complete.
  - Idempotent; a snapshot already backed up to a provider is C(changed=false) there.
author:
  - offsite.zfs developers (@offsite-zfs)
extends_documentation_fragment:
  - offsite.zfs.common
  - offsite.zfs.common.passphrase
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - ansible.builtin.action_common_attributes.actiongroups
attributes:
  check_mode:
    support: full
    details: Returns the plan per provider (full or incremental, base, estimated bytes and chunks).
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
  action:
    support: none
  async:
    support: full
  bypass_host_loop:
    support: none
  action_group:
    support: full
    membership:
    - offsite.zfs.offsite
options:
  dataset:
    description:
      - The dataset, C(pool/fs), or a snapshot, C(pool/fs@snap).
      - Without O(dataset) (or with O(policy=true)), the module converges the policy of the config file
        instead, see O(policy).
    type: str
  policy:
    description:
      - Converge the policy of the config file (C(datasets), C(every), C(full_every), C(snapshot_prefix),
        see C(docs/policy.md)) for every configured dataset, or for O(datasets) or O(dataset) when given.
      - Per dataset, a snapshot C(<snapshot_prefix>-<UTC timestamp>) (for example C(offsite-20261122T031500Z))
        is taken only when the newest one this collection took is older than C(every); the newest such
        snapshot is backed up to every selected provider that lacks it, full when C(full_every) says so
        (the provider's newest full backup is older than the duration, or its newest chain has
        C(incrementals) incrementals), else incremental.
      - Nothing due and nothing missing is C(changed=false); running it twice in a row, the second run
        changes nothing.
      - Implied when O(dataset) is not given. Cannot be combined with O(snapshot), O(create) or O(full).
    type: bool
    default: false
  datasets:
    description:
      - With O(policy), converge only these datasets (each configured in the policy, or below a configured one).
    type: list
    elements: str
  snapshot:
    description:
      - Name of the snapshot to back up (without the dataset). Defaults to the part after C(@) of O(dataset),
        else the newest snapshot of the dataset.
    type: str
  create:
    description:
      - Take the snapshot first when it does not exist. The snapshot gets the user property
        C(offsite.zfs:created=true).
    type: bool
    default: false
  full:
    description:
      - Send a full stream even when an incremental base exists.
    type: bool
    default: false
  chunk_size:
    description:
      - Plaintext bytes per chunk, like C(256MiB) or C(64KiB). Defaults to C(defaults.chunk_size), else 256MiB.
    type: str
  compression:
    description:
      - Compression algorithm. Defaults to C(defaults.compression.algorithm), else zstd.
    type: str
    choices: [zstd, gzip, none]
  compression_level:
    description:
      - Compression level (zstd 1-19, gzip 1-9). Defaults to 3 for zstd, 6 for gzip.
    type: int
  compression_threads:
    description:
      - zstd worker threads (0 compresses in the calling thread).
      - By default one worker where the host has two or more cores, so that zstd compresses beside the rest
        of the pipeline.
    type: int
  parallel_uploads:
    description:
      - Chunk uploads in flight at once per provider (spool mode only).
    type: int
  recursive:
    description:
      - Back up the dataset (or the whole pool) and every descendant file system and volume. One recursive
        snapshot (C(zfs snapshot -r)) is the one point in time for the whole tree; each descendant is its own
        backup chain with its own base selection, so a child created later starts with a full backup and a
        child destroyed locally keeps its remote backups.
      - Properties travel with the tree (C(zfs send -p)) where this ZFS supports it, unless O(send_options)
        sets C(properties).
      - Defaults to the config file's C(recursive) for the dataset, else V(false).
    type: bool
  exclude:
    description:
      - With O(recursive), descendants not to back up, as names or shell patterns (C(fnmatch)), relative to
        O(dataset) (C(cache), C(*/tmp)) or absolute (C(tank/cache)). Excluding a dataset excludes everything
        below it.
      - Defaults to the config file's C(exclude) for the dataset.
    type: list
    elements: str
  send_options:
    description:
      - C(zfs send) options, each V(true), V(false) or V(auto) (use when this ZFS supports it).
      - Keys C(raw) (-w), C(compressed) (-c), C(large_blocks) (-L), C(embedded) (-e), C(properties) (-p).
      - By default compressed, large_blocks and embedded are V(auto), raw and properties are V(false).
    type: dict
"""

EXAMPLES = r"""
- name: Back up a snapshot to every configured provider
  offsite.zfs.offsite_backup:
    dataset: tank/data@daily-20261121

- name: Take a snapshot and back it up to one provider
  offsite.zfs.offsite_backup:
    dataset: tank/data
    snapshot: before-upgrade
    create: true
    providers: b2

- name: Force a full backup with small chunks and gzip
  offsite.zfs.offsite_backup:
    dataset: tank/data@weekly-47
    full: true
    chunk_size: 64MiB
    compression: gzip

- name: Back up without a config file
  offsite.zfs.offsite_backup:
    dataset: tank/data@now
    recipients: ["age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"]
    providers:
      mirror: {remote: /srv/offsite-mirror}

- name: Back up to B2 with the rclone secrets from Ansible Vault (never logged, never on disk)
  offsite.zfs.offsite_backup:
    dataset: tank/data@daily-20261121
    providers: b2
    provider_env:
      b2:
        RCLONE_CONFIG_B2_TYPE: b2
        RCLONE_CONFIG_B2_ACCOUNT: "{{ vault_b2_key_id }}"
        RCLONE_CONFIG_B2_KEY: "{{ vault_b2_application_key }}"

- name: Back up a whole pool, one recursive snapshot, without the cache datasets
  offsite.zfs.offsite_backup:
    dataset: tank
    snapshot: "nightly-{{ ansible_date_time.date }}"
    create: true
    recursive: true
    exclude: [cache, "*/tmp"]

- name: Converge the policy of /etc/offsite/offsite.yml (snapshot when due, back up where missing)
  offsite.zfs.offsite_backup:
    policy: true

- name: Converge two datasets of the policy
  offsite.zfs.offsite_backup:
    datasets: [tank/important, tank/photos]

- name: Plan only
  offsite.zfs.offsite_backup:
    dataset: tank/data@daily-20261121
  check_mode: true

- name: Run a long backup in the background
  offsite.zfs.offsite_backup:
    dataset: tank/data@daily-20261121
  async: 86400
  poll: 0
  register: job
"""

RETURN = r"""
dataset:
  description: The dataset.
  returned: always
  type: str
  sample: tank/data
snapshot:
  description: The snapshot backed up.
  returned: always
  type: str
  sample: daily-20261121
guid:
  description: The snapshot's guid (decimal string).
  returned: when the snapshot exists
  type: str
  sample: "15724690115994966743"
namespace:
  description: The namespace the backups are stored under.
  returned: always
  type: str
  sample: nas1
snapshot_created:
  description: Whether the snapshot was created by this task.
  returned: always
  type: bool
  sample: false
providers:
  description:
    - Per provider, what happened. C(status) is one of V(uploaded), V(resumed), V(present), V(planned),
      V(failed), V(deferred) (it fell past the spool bound behind the other providers and was dropped for this
      run; the next run catches it up); with C(backup_id), C(kind) (full or incremental), C(base), C(chunks),
      C(chunks_resumed), C(signed) (a manifest.sig was written), C(manifest_sha256), C(bytes_plain), C(bytes_stored),
      C(estimated_bytes),
      C(estimated_chunks), C(estimate_method), C(seconds), C(rate_bytes_per_second), C(retries) and a one-sentence
      C(message).
    - C(base_kind) is V(snapshot) or V(bookmark) (sent from a bookmark because the snapshot was gone).
      C(base_hold) says which snapshot now carries the hold C(offsite:<provider>) (C(tag), C(snapshot),
      C(held), C(bookmark), C(released), C(error) when the hold could not be placed). In check mode,
      C(base_at_risk) and C(base_risk) say whether the base has no hold and no bookmark, or is gone and
      the backup will be full, and why.
  returned: always
  type: dict
  sample:
    b2:
      status: uploaded
      kind: incremental
      base: daily-20261120
      chunks: 3
      bytes_plain: 612345678
      bytes_stored: 201234567
      message: uploaded an incremental backup of tank/data@daily-20261121 from daily-20261120 to b2
failed_providers:
  description: Names of the providers that failed or were deferred.
  returned: always
  type: list
  elements: str
  sample: []
zfs_sends:
  description: How many times C(zfs send) ran; one send feeds every provider that uploads the same backup.
  returned: when a provider uploaded chunks
  type: int
  sample: 1
log_file:
  description: The run's log file ("Processing chunk 3 of ~15", rates, ETA).
  returned: when not in check mode
  type: str
  sample: /var/log/offsite/backup-tank_data-20261121T030000Z-1234.log
chunk_size:
  description: Plaintext bytes per chunk.
  returned: always
  type: int
  sample: 268435456
compression:
  description: The compression algorithm.
  returned: always
  type: str
  sample: zstd
spool_bound_bytes:
  description:
    - The most temp space this backup may use in the spool directory (0 without spool), which is
      (sum of the selected providers' C(parallel_uploads) + 1) x (chunk_size + chunk_size/1000 + 64 KiB).
  returned: always
  type: int
  sample: 805306368
datasets:
  description:
    - With O(recursive), the result of every dataset of the tree (each like a non-recursive result).
    - With O(policy), the result of every converged dataset, with C(due) (whether a new snapshot was due) and
      C(reason), C(snapshot) (the policy snapshot backed up), C(snapshot_created), and C(providers) (per provider
      C(status) V(present), V(uploaded), V(resumed), V(planned) or V(failed), and C(full_reason) when full).
  returned: when recursive or with O(policy)
  type: dict
  sample: {"tank/home": {"changed": true, "providers": {"b2": {"status": "uploaded", "kind": "incremental"}}}}
failed_datasets:
  description: With O(recursive) or O(policy), the datasets whose backup failed on some provider.
  returned: when recursive or with O(policy)
  type: list
  elements: str
  sample: []
excluded:
  description: With O(recursive), the descendants left out by O(exclude).
  returned: when recursive
  type: list
  elements: str
  sample: [tank/cache]
skipped:
  description: With O(recursive), descendants without the snapshot (created after it), and why.
  returned: when recursive
  type: dict
  sample: {"tank/new": "tank/new has no snapshot nightly-2026-11-21 (it was created after that recursive snapshot)"}
msg:
  description: A one-line summary.
  returned: always
  type: str
  sample: "tank/data@daily-20261121 -> b2: uploaded, local: present"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.offsite.zfs.plugins.module_utils._module import run_module, spec


def main() -> None:
    module = AnsibleModule(argument_spec=spec(
        "common", "passphrase", "backup_tuning",
        dataset=dict(type="str"),
        policy=dict(type="bool", default=False),
        datasets=dict(type="list", elements="str"),
        snapshot=dict(type="str"),
        create=dict(type="bool", default=False),
        full=dict(type="bool", default=False),
        recursive=dict(type="bool"),
        exclude=dict(type="list", elements="str"),
    ), supports_check_mode=True)
    run_module(module, "backup")


if __name__ == "__main__":
    main()
