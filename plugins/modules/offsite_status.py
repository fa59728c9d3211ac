#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: offsite_status
short_description: Report what a host has offsite, how fresh and healthy it is, and what is running
version_added: 1.0.0
description:
  - Lists every backup of every dataset on every provider (one C(rclone lsjson -R) and one manifest download
    per provider, never a call per object), with the latest restorable snapshot, its age and chain length,
    stored sizes, local snapshots not backed up yet, configured datasets without a backup, and the operations
    running on the host now.
  - Reports problems as machine-readable dicts (C(code), C(severity), C(dataset), C(provider), C(backup),
    C(message)) and a C(health) of V(ok), V(warning) or V(critical) per dataset and for the host.
  - Changes nothing (always C(changed=false)); usable in C(failed_when) and by monitoring, see
    C(docs/monitoring.md).
  - "Health rules. V(critical): no restorable backup on any provider; the newest restorable backup is older
    than O(max_age) on every provider; a damaged chunk, bad MAC or broken chain in the chain of a provider's
    newest backup; a provider that cannot be listed. V(warning): the same on some providers only, damage in
    older backups, incomplete uploads that are not running, orphan objects, unreadable manifests, local
    snapshots not backed up yet. An upload running now is only C(info)."
  - Nothing offsite is never V(ok). A host without any backup is V(critical) (C(nothing_offsite) in
    RV(host_problems)). A local dataset with snapshots and no backup on any provider, on the pools the policy
    is on and not a restored copy of a backed-up one, that the policy neither lists nor excludes
    (C(defaults.exclude), or a recursive entry's C(exclude)) is a dataset of its own in RV(datasets) with the
    problem C(nothing_offsite), V(warning). Not with O(datasets) or another host's O(namespace).
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
    details: Runs the same way in check mode; it never changes anything.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
    details: Any POSIX host with rclone; ZFS only to compare local snapshots.
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
  datasets:
    description:
      - Report only these datasets (exact names). They count as expected, so one without a backup is a
        C(no_backup) problem.
      - By default every dataset of the config file's C(datasets) and every dataset found on the providers.
    type: list
    elements: str
  verify:
    description:
      - V(none) lists only (the listing already shows missing and wrong-sized chunk objects).
      - V(objects) is the same check, named for clarity; every chunk object exists with the manifest's size.
      - V(digest) downloads every chunk object and checks its SHA-256 against the manifest; needs no key.
      - V(decrypt) also opens each backup's key (checking the manifest MAC), decrypts and decompresses every
        chunk and checks its keyed plaintext digest; needs O(identity), O(identity_file) or O(passphrase).
        Nothing is received into ZFS.
    type: str
    choices: [none, objects, digest, decrypt]
    default: none
  sample:
    description:
      - With O(verify=digest) or O(verify=decrypt), check only part of the chunks per run, a percentage like
        V(10%) or a byte budget like V(2GiB), least recently verified first, so that with V(p%) every chunk is
        verified within ceil(100/p) runs. When each chunk was last verified is kept in the state directory.
      - Adds C(coverage) per dataset and provider ("every chunk verified in the last N days") and RV(sampled);
        C(verify_coverage) in the policy is the objective (a C(coverage_low) warning when it is not met).
        See C(docs/restore-drills.md).
    type: str
    version_added: 1.1.0
  max_age:
    description:
      - The freshness objective, like V(36h), V(1d), V(90m), V(2w). The newest restorable backup of a dataset
        older than this is a C(stale) problem.
      - Defaults to C(datasets[dataset].max_age) of the config file, else C(defaults.max_age), else no objective.
    type: str
  legacy:
    description:
      - Also list the backups of the old C(offsite) bash tool found below each provider's remote root, per
        format (F1 to F8, C(docs/legacy.md)), with what could and could not be checked, and every object that
        looks like the old tool's but does not parse (result C(legacy)). One more listing per provider.
      - With O(identity) or O(identity_file), the start of each legacy stream is read (kind, guid, base).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: What does this host have offsite?
  offsite.zfs.offsite_status:
  register: offsite

- name: Fail when any dataset is critical
  offsite.zfs.offsite_status:
    max_age: 36h
  register: offsite
  failed_when: offsite.health == 'critical'

- name: Check another host's backups in the shared bucket, downloading every chunk
  offsite.zfs.offsite_status:
    namespace: nas1
    verify: digest

- name: Prove the latest backups decrypt (nothing is restored)
  offsite.zfs.offsite_status:
    datasets: [tank/data]
    verify: decrypt
    identity_file: /root/offsite.key
  async: 7200
  poll: 30

- name: Write a Prometheus textfile-collector file
  ansible.builtin.copy:
    content: "{{ offsite | offsite.zfs.to_prometheus }}"
    dest: /var/lib/node_exporter/textfile/offsite.prom
    mode: "0644"
"""

RETURN = r"""
legacy:
  description:
    - With O(legacy=true), per provider the old tool's folders with their C(backups) (C(format), C(name),
      C(snapshot), C(kind), C(pieces), C(complete), C(problems), C(notes), C(checked), C(not_checked)) and
      C(unparsed) objects (C(key), C(reason)); C(problems) lists every incomplete backup and unparsed object.
  returned: when O(legacy=true)
  type: dict
  sample: {"backups": 1, "backups_by_format": {"F8": 1}, "problems": [], "providers": {"old": {"folders": []}}}
health:
  description: The host's health, V(ok), V(warning) or V(critical) (the worst of its datasets and host problems).
  returned: always
  type: str
  sample: warning
namespace:
  description: The namespace reported.
  returned: always
  type: str
  sample: nas1
verify:
  description: The verify level used.
  returned: always
  type: str
  sample: none
generated:
  description: When the report was made (UTC, ISO 8601).
  returned: always
  type: str
  sample: "2026-11-22T03:00:00Z"
generated_epoch:
  description: RV(generated) as seconds since the epoch (for Prometheus and arithmetic in templates).
  returned: always
  type: float
  sample: 1795316400.0
host:
  description: The host name of the managed node that made the report.
  returned: always
  type: str
  sample: nas1.example.net
datasets:
  description:
    - Per dataset, C(health), C(problems), C(latest) (the newest restorable snapshot on any provider, with
      C(snapshot), C(guid), C(created), C(age_seconds), C(chain_length), C(provider)), C(age_seconds),
      C(chain_length), C(stored_bytes), C(backup_count), C(configured), C(local) (whether it exists on this
      host), C(max_age_seconds), C(not_backed_up) (per provider, local snapshots newer than the newest backed-up
      one) and C(providers).
    - C(providers) maps each provider to C(backups) (each with C(backup_id), C(snapshot), C(guid), C(kind),
      C(base), C(created), C(stream_bytes), C(stored_bytes), C(chunks), C(complete), C(intact), C(restorable),
      C(chain_length), C(objects), C(listed_bytes), C(last_upload), C(signed), C(verified)), C(latest), C(chain_length),
      C(stored_bytes), C(fresh) and C(not_backed_up).
    - For a dataset on this host, each provider also has C(base), the base of its next incremental backup
      (C(snapshot), C(guid), C(present), C(userrefs), C(our_hold), C(bookmark), C(at_risk), C(next_backup)
      V(incremental) or V(full), C(from), C(reason)); problems C(base_at_risk), C(full_backup_next) and
      C(base_gone) name it before the next backup is forced to be full.
  returned: always
  type: dict
  sample:
    tank/data:
      health: ok
      age_seconds: 3600.0
      chain_length: 3
      latest: {snapshot: daily-20261121, provider: b2, chain_length: 3, age_seconds: 3600.0}
problems:
  description:
    - Every problem, each with C(code), C(severity) (V(info), V(warning), V(critical)), C(dataset), C(provider),
      C(backup), C(message) and details such as C(age_seconds), C(objects), C(count), C(chunk).
    - Codes C(no_backup), C(stale), C(incomplete_upload), C(chunk_missing), C(size_mismatch), C(digest_mismatch),
      C(decrypt_failed), C(mac_mismatch), C(download_failed), C(broken_chain), C(orphan_object), C(bad_manifest),
      C(not_backed_up), C(provider_failed).
  returned: always
  type: list
  elements: dict
  sample:
    - code: incomplete_upload
      severity: warning
      dataset: tank/data
      provider: b2
      backup: daily-20261121+00d2c3f1a0b4c5d6+from+daily-20261120
      age_seconds: 7200.0
      message: The upload of tank/data@daily-20261121 to b2 stopped before its manifest was written.
host_problems:
  description: Problems that belong to no dataset (a provider that cannot be listed, stray objects).
  returned: always
  type: list
  elements: dict
providers:
  description: Per provider, C(listed), C(stored_bytes), C(objects) and C(backups) below the namespace.
  returned: always
  type: dict
  sample: {b2: {listed: true, stored_bytes: 123456789, objects: 310, backups: 12}}
running:
  description:
    - Operations running on the host now, from their locks and progress state, each with C(operation),
      C(dataset), C(provider), C(chunk), C(chunks_estimated), C(bytes), C(bytes_estimated),
      C(rate_bytes_per_second), C(started), C(pid), C(log_file) and a C(message).
  returned: always
  type: list
  elements: dict
summary:
  description: Counts for dashboards, C(datasets), C(datasets_by_health), C(backups), C(stored_bytes), C(problems),
    C(problems_by_severity), C(problems_by_code), C(running).
  returned: always
  type: dict
sampled:
  description:
    - With O(sample), what this run verified, C(sample), C(chunks) (all), C(checked), C(checked_bytes) and
      C(runs_for_full_coverage) (for a percentage). None without O(sample).
  returned: always
  type: dict
  sample: {"sample": "25%", "chunks": 40, "checked": 10, "checked_bytes": 655360, "runs_for_full_coverage": 4}
msg:
  description: One line, the most severe problem first.
  returned: always
  type: str
  sample: "nas1: 4 datasets ok, 37 backups, 12.5 GiB stored"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.offsite.zfs.plugins.module_utils._module import run_module, spec


def main() -> None:
    module = AnsibleModule(argument_spec=spec(
        "common", "keys", "passphrase", "allow_unsigned",
        datasets=dict(type="list", elements="str"),
        verify=dict(type="str", default="none", choices=["none", "objects", "digest", "decrypt"]),
        sample=dict(type="str"),
        max_age=dict(type="str"),
        legacy=dict(type="bool", default=False),
    ), supports_check_mode=True)
    run_module(module, "status")


if __name__ == "__main__":
    main()
