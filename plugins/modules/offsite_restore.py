#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: offsite_restore
short_description: Restore a ZFS snapshot (and the chain it needs) from rclone providers
version_added: 1.0.0
description:
  - Resolves the chain (full backup and incrementals, linked by snapshot guid) for C(dataset@snapshot),
    or for the latest backed-up snapshot by creation time, and receives it with C(zfs receive).
  - Each chunk is downloaded, its size and SHA-256 checked against the manifest, then decrypted (age
    authenticates it), decompressed and checked against its keyed digest; the next download overlaps the
    current receive.
  - When the target already holds part of the chain (same guids), only what it lacks is received.
  - A new target is received under the staging name C(<target>.offsite-partial) and renamed when complete;
    on any failure the receive is aborted and nothing new is left behind.
  - Idempotent; a target that already holds the snapshot with the same guid is C(changed=false).
author:
  - offsite.zfs developers (@offsite-zfs)
extends_documentation_fragment:
  - offsite.zfs.common
  - offsite.zfs.common.keys
  - offsite.zfs.common.passphrase
  - offsite.zfs.common.allow_unsigned
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - ansible.builtin.action_common_attributes.actiongroups
attributes:
  check_mode:
    support: full
    details: Returns the plan (provider, chain, backups to receive, bytes).
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
      - The backed-up dataset, C(pool/fs), or a snapshot of it, C(pool/fs@snap).
    type: str
    required: true
  snapshot:
    description:
      - The snapshot to restore. Defaults to the part after C(@) of O(dataset), else the latest backed-up
        snapshot (by snapshot creation time, never by name).
    type: str
  target:
    description:
      - The dataset to restore into (the old tool's C(--as)). Defaults to O(dataset).
      - Its parent must exist.
    type: str
  provider:
    description:
      - The provider to restore from, or V(auto) for the first configured provider that holds a complete,
        intact chain.
    type: str
    default: auto
  recursive:
    description:
      - Restore the dataset (or the whole pool) and every descendant that has backups, parents before children,
        all to the same snapshot (O(snapshot), else the latest backed-up snapshot of O(dataset)), each into
        O(target) plus its path below O(dataset).
      - Every dataset is restored atomically; one that fails is named in RV(failed_datasets) and absent, the
        datasets below it are skipped, the others are complete.
    type: bool
    default: false
  exclude:
    description:
      - With O(recursive), descendants not to restore, as names or shell patterns, relative to O(dataset) or
        absolute. Excluding a dataset excludes everything below it.
    type: list
    elements: str
  mountpoint:
    description:
      - The mountpoint of the restored dataset (the root of the tree with O(recursive); its descendants
        inherit below it), so a restored copy does not mount over the live one. An absolute path, V(none) or
        V(legacy).
      - With O(recursive) and a O(target) other than O(dataset), the default is to inherit from the target's
        parent (the stream's own mountpoint, sent with C(zfs send -p), is replaced); V(received) keeps it.
    type: str
  properties:
    description:
      - ZFS properties to set on every restored file system, after every received backup.
    type: dict
  legacy:
    description:
      - Restore a backup made by the old C(offsite) bash tool, found in its own layout at the provider's
        remote root, in any of the eight formats it wrote (F1 to F8 in C(docs/legacy.md)), for example
        C(<dataset with / as _>/full-<snapshot>-x001.zfs.gz.age) pieces, C(full-<snapshot>.zfs.gz.age) objects
        and C(<dataset_>/<dataset_>:<snapshot>-s001-b00000000000000000000.zfs.gz.age) shards, numbered from 1.
      - In check mode the result's C(plan) names every piece that would be read.
      - When not set, legacy backups are used only when the provider has no native backup of the dataset.
      - Legacy backups have no manifest and no digests; age authentication of every piece, piece continuity,
        the stream's BEGIN and END records and the stream checksum ZFS checks on receive are the only
        integrity checks.
    type: bool
  force:
    description:
      - Allow receiving over a target that exists but does not continue the chain (C(zfs receive -F)).
        This destroys the target's diverging data and snapshots.
      - With O(paths), allow copying into a O(dest) that is not empty (files there are overwritten).
    type: bool
    default: false
  paths:
    description:
      - Get files back instead of the whole dataset. Files, directories or glob patterns (C(*), C(?), C([...]),
        C(**)) inside the dataset, relative to its root (a leading C(/) is the root; C(/) alone is everything).
      - The chain is received into a scratch place (O(scratch_pool) or O(scratch_dir)), which is mounted
        read-only; the matching paths are copied to O(dest) with their contents, modes, owners, times,
        extended attributes, symbolic links and hard links; then the scratch place is destroyed, on every exit
        path (a run killed with C(-9) is cleaned up by the next run). The live dataset is never touched.
      - Not for volumes. O(target), O(recursive), O(mountpoint), O(properties) and O(legacy) do not apply.
    type: list
    elements: str
    version_added: 1.1.0
  dest:
    description:
      - With O(paths), the directory on the host to copy them into, keeping their paths below the dataset
        root. It must not exist or must be empty, unless O(force).
    type: path
    version_added: 1.1.0
  list:
    description:
      - With O(paths), receive into the scratch place and return the matching paths (RV(matches)) without
        copying anything.
    type: bool
    default: false
    version_added: 1.1.0
  scratch_pool:
    description:
      - With O(paths), an existing pool (or a dataset in one, not the restored dataset) to receive into; a
        dataset C(<scratch_pool>/offsite-scratch-<id>) is created and destroyed.
      - Mutually exclusive with O(scratch_dir).
    type: str
    version_added: 1.1.0
  scratch_dir:
    description:
      - With O(paths), a directory for a file-backed scratch pool C(offsite-scratch-<id>) (a sparse file),
        destroyed afterwards. Its free space is checked first against the chain's size (RV(scratch)).
      - Defaults to the spool directory when O(scratch_pool) is not given.
    type: path
    version_added: 1.1.0
"""

EXAMPLES = r"""
- name: Restore the latest backup of tank/data into a new dataset
  offsite.zfs.offsite_restore:
    dataset: tank/data
    target: tank/data-recovered
    identity_file: /root/offsite.key

- name: Restore a middle snapshot from whichever provider has it
  offsite.zfs.offsite_restore:
    dataset: tank/data@daily-20261101
    provider: auto
    target: tank/data-1101
    identity: "{{ offsite_identity }}"

- name: Disaster recovery of another host's backups onto new hardware
  offsite.zfs.offsite_restore:
    dataset: tank/data
    namespace: nas1
    provider: b2
    identity_file: /root/offsite.key

- name: Restore a whole pool's tree under a new root, mounted away from the live one
  offsite.zfs.offsite_restore:
    dataset: tank
    recursive: true
    target: tank/restored
    mountpoint: /mnt/restored
    identity_file: /root/offsite.key

- name: Restore a backup made by the old offsite bash tool (its remote root as the provider)
  offsite.zfs.offsite_restore:
    dataset: tank/data@daily-20261101
    target: tank/data-old
    legacy: true
    providers:
      old: {remote: "b2:acme-backups/offsite"}
    identity_file: /root/offsite.key

- name: Get one folder back from yesterday's snapshot, without touching the live dataset
  offsite.zfs.offsite_restore:
    dataset: tank/data@daily-20261120
    paths: [home/alice/thesis]
    dest: /root/recovered
    scratch_dir: /var/tmp
    identity_file: /root/offsite.key

- name: See which files a pattern matches in the latest backup
  offsite.zfs.offsite_restore:
    dataset: tank/data
    paths: ["etc/**/*.conf"]
    list: true
    scratch_pool: scratch
    identity_file: /root/offsite.key

- name: Show what a restore would do
  offsite.zfs.offsite_restore:
    dataset: tank/data
    target: tank/drill
  check_mode: true
"""

RETURN = r"""
dataset:
  description: The backed-up dataset.
  returned: always
  type: str
  sample: tank/data
target:
  description: The dataset restored into.
  returned: success
  type: str
  sample: tank/data-recovered
namespace:
  description: The namespace the backups were read from (O(namespace), else this host's own, see O(namespace)).
  returned: success
  type: str
  sample: nas1
estimated_bytes:
  description: Stream bytes of the backups to receive, from their manifests.
  returned: when something is to be received
  type: int
  sample: 1048576
seconds:
  description: How long the receive took.
  returned: success, not in check mode
  type: float
  sample: 12.5
provider:
  description: The provider restored from.
  returned: success
  type: str
  sample: b2
lineage:
  description:
    - The lineage of the restored backup (V(original), or the start time of a lineage begun with C(new_lineage)).
    - A recreated dataset's backups form a lineage of their own; see docs/policy.md.
  returned: when a native backup was restored or planned
  type: str
  sample: original
lineages:
  description: Every lineage of the dataset on that provider, oldest first.
  returned: when a native backup was restored or planned
  type: list
  elements: dict
  contains:
    lineage:
      description: The lineage id (empty for the original one).
      type: str
    label:
      description: The lineage's name as shown in messages.
      type: str
    backups:
      description: How many backups the lineage has.
      type: int
    oldest_snapshot:
      description: Its oldest backed-up snapshot.
      type: str
    newest_snapshot:
      description: Its newest backed-up snapshot.
      type: str
    newest_creation:
      description: The creation time of the newest, in seconds since the epoch.
      type: int
snapshot:
  description: The snapshot restored.
  returned: success
  type: str
  sample: daily-20261121
guid:
  description: Its guid (decimal string).
  returned: success
  type: str
  sample: "15724690115994966743"
chain:
  description: Backup ids of the whole chain, full first.
  returned: success
  type: list
  elements: str
  sample: ["daily-20261101+da395258f6f9dad7+full", "daily-20261121+940f301d47c50fef+from+daily-20261101"]
plan:
  description: The backups that were (or, in check mode, would be) received, with kind, chunks and bytes.
  returned: when something is to be received
  type: list
  elements: dict
  sample: [{"backup_id": "daily-20261121+940f301d47c50fef+from+daily-20261101", "kind": "incremental",
            "chunks": 2, "bytes": 1048576, "snapshot": "daily-20261121"}]
received:
  description: The backups received, with chunks and bytes.
  returned: success, not in check mode
  type: list
  elements: dict
  sample: [{"backup_id": "daily-20261121+940f301d47c50fef+full", "chunks": 2, "bytes": 1048576}]
bytes:
  description: Stream bytes received.
  returned: success, not in check mode
  type: int
  sample: 1048576
rate_bytes_per_second:
  description: Stream bytes received per second.
  returned: success, not in check mode
  type: int
  sample: 104857600
skipped_providers:
  description: With provider=auto, why providers before the chosen one could not be used.
  returned: success
  type: list
  elements: str
  sample: ["b2 has no complete backup of tank/data@daily-20261101"]
log_file:
  description: The run's log file.
  returned: success, not in check mode
  type: str
  sample: /var/log/offsite/restore-tank_data-recovered-20261121T030000Z-1234.log
datasets:
  description: With O(recursive), the result of every dataset of the tree (each like a non-recursive result).
  returned: when recursive
  type: dict
  sample: {"tank/home": {"changed": true, "target": "tank/restored/home", "snapshot": "nightly-47"}}
failed_datasets:
  description: With O(recursive), the datasets that could not be restored.
  returned: when recursive
  type: list
  elements: str
  sample: []
skipped:
  description: With O(recursive), datasets not restored and why (no backup of the snapshot, or a parent failed).
  returned: when recursive
  type: dict
  sample: {"tank/new": "tank/new has no backup of snapshot nightly-47"}
mount_error:
  description:
    - Why the restored file system is not mounted (for example, the mountpoint it carries from C(zfs send -p)
      is in use); set O(mountpoint) to mount it elsewhere.
  returned: when the restored file system could not be mounted
  type: str
  sample: "Could not mount tank/copy: cannot mount '/srv/data': directory is not empty"
legacy:
  description: True when a backup of the old tool was restored.
  returned: when a legacy backup was restored
  type: bool
  sample: true
paths:
  description: With O(paths), the patterns as understood (relative to the dataset root).
  returned: when paths are restored
  type: list
  elements: str
  sample: ["/home/alice/thesis"]
copied_to:
  description: With O(paths), the directory the paths were (or would be) copied into (O(dest)).
  returned: when paths are restored
  type: str
  sample: /root/recovered
received_bytes:
  description: With O(paths), the stream bytes received into the scratch place.
  returned: when paths are restored, not in check mode
  type: int
  sample: 1048576
scratch:
  description:
    - With O(paths), the scratch place (V(pool) for a file-backed pool, V(dataset) on O(scratch_pool)), where,
      its name, the room it needs and the room there is.
  returned: when paths are restored
  type: dict
  sample: {"kind": "pool", "where": "/var/tmp", "name": "offsite-scratch-1a2b3c4d5e6f", "needed_bytes": 93323264,
           "free_bytes": 53687091200}
copied:
  description: With O(paths), each matched path copied, with its files and bytes.
  returned: when paths are copied
  type: list
  elements: dict
  sample: [{"path": "/home/alice/thesis", "files": 12, "bytes": 20971520}]
files:
  description: With O(paths), regular files copied (counting FIFOs). Also RV(directories), RV(symlinks), RV(hardlinks).
  returned: when paths are copied
  type: int
  sample: 12
directories:
  description: With O(paths), directories copied.
  returned: when paths are copied
  type: int
  sample: 3
symlinks:
  description: With O(paths), symbolic links copied (as links).
  returned: when paths are copied
  type: int
  sample: 0
hardlinks:
  description: With O(paths), hard links recreated between copied files.
  returned: when paths are copied
  type: int
  sample: 0
not_copied:
  description: With O(paths), device and socket files that were not copied.
  returned: when paths are copied
  type: list
  elements: str
  sample: []
owners_kept:
  description: With O(paths), whether owners were kept (only when the module runs as root).
  returned: when paths are copied
  type: bool
  sample: true
matches:
  description: With O(list), the matching paths, with type, mode, owner, mtime, files and bytes.
  returned: when list is true
  type: list
  elements: dict
  sample: [{"path": "/etc/app/app.conf", "type": "file", "mode": "0644", "uid": 0, "gid": 0, "mtime": 1763694000,
            "files": 1, "bytes": 512}]
unmatched:
  description: With O(paths), the patterns that match nothing (copying fails when there is one).
  returned: when paths are restored
  type: list
  elements: str
  sample: []
msg:
  description: A one-line summary, or the one-sentence reason for a failure.
  returned: always
  type: str
  sample: restored tank/data@daily-20261121 from b2 into tank/data-recovered
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.offsite.zfs.plugins.module_utils._module import run_module, spec


def main() -> None:
    module = AnsibleModule(argument_spec=spec(
        "common", "keys", "passphrase", "allow_unsigned", "scratch",
        dataset=dict(type="str", required=True),
        snapshot=dict(type="str"),
        target=dict(type="str"),
        provider=dict(type="str", default="auto"),
        force=dict(type="bool", default=False),
        recursive=dict(type="bool", default=False),
        exclude=dict(type="list", elements="str"),
        mountpoint=dict(type="str"),
        properties=dict(type="dict"),
        legacy=dict(type="bool"),
        paths=dict(type="list", elements="str"),
        dest=dict(type="path"),
        list=dict(type="bool", default=False),
    ), supports_check_mode=True,
        mutually_exclusive=[("scratch_pool", "scratch_dir"), ("paths", "recursive"), ("paths", "target"),
                            ("paths", "legacy")],
        required_by={"dest": "paths", "scratch_pool": "paths", "scratch_dir": "paths"})
    run_module(module, "restore")


if __name__ == "__main__":
    main()
