#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

# A virtual module, implemented entirely by the action plugin plugins/action/offsite_policy_validate.py.

DOCUMENTATION = r"""
module: offsite_policy_validate
short_description: Validate an offsite.zfs policy on the controller
version_added: 1.0.0
description:
  - Checks a policy (the format of C(/etc/offsite/offsite.yml) and of the role variable C(offsite_policy))
    against C(schemas/policy.schema.json) on the controller, before any host is touched.
  - 'Fails with one sentence naming the path of the first bad field and the rule it breaks, for example
    C(datasets["tank/photos"].keep.daily: must be >= 0); RV(errors) lists every problem.'
  - Also checks that every provider a dataset names is defined.
  - Reports what the keep rules cost per provider (RV(cost)), from the formula in docs/policy.md.
  - This is an action plugin; nothing runs on the managed node.
author:
  - offsite.zfs developers (@offsite-zfs)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - ansible.builtin.action_common_attributes.actiongroups
attributes:
  check_mode:
    support: full
    details: Validation changes nothing, so it runs in check mode too.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
  action:
    support: full
    details: Runs entirely on the controller.
  async:
    support: none
  bypass_host_loop:
    support: none
  action_group:
    support: none
    membership: []
requirements:
  - The Python library jsonschema on the controller.
options:
  policy:
    description:
      - The policy, a mapping with C(recipients), C(providers), C(defaults), C(datasets), ...
    type: dict
    required: true
  name:
    description:
      - What to call the policy in messages.
    type: str
    default: offsite_policy
  sizes:
    description:
      - "Per dataset, the stored size of one full backup (like C(1TiB)), or C({full: SIZE, incremental: SIZE}),
        for the estimate of stored bytes in RV(cost). Without it RV(cost) has the copies only."
      - The bytes stored now are on the providers only; M(offsite.zfs.offsite_prune) in check mode reports them.
    type: dict
    version_added: 1.1.0
"""

EXAMPLES = r"""
- name: Validate the policy before touching any host
  offsite.zfs.offsite_policy_validate:
    policy: "{{ offsite_policy }}"
  run_once: true

- name: What the keep rules cost with 1 TiB full backups and 2 GiB a day of changes
  offsite.zfs.offsite_policy_validate:
    policy: "{{ offsite_policy }}"
    sizes:
      tank/data: {full: 1TiB, incremental: 2GiB}
  register: plan
"""

RETURN = r"""
cost:
  description:
    - Per provider, what the keep rules hold in the steady state (docs/policy.md, What the keep rules cost), for
      every dataset of the policy that backs up there.
    - C(full_copies) and C(incrementals), summed over the datasets (about D / F + 1 full copies each);
      C(estimated_stored_bytes), from O(sizes); V(null) when a dataset has no keep rules (nothing is ever
      deleted) or no size was given.
    - C(datasets), per dataset, C(keep), C(every_seconds), C(full_every_seconds), C(reach_seconds) (D, how far
      back the rules reach), C(full_copies), C(incrementals) and C(estimated_stored_bytes).
  returned: when the policy is valid
  type: dict
  version_added: 1.1.0
  sample: {"b2": {"full_copies": 7, "incrementals": 365, "estimated_stored_bytes": 7696581394432,
           "datasets": {"tank/data": {"full_copies": 7, "incrementals": 365, "reach_seconds": 31557600.0}}}}
errors:
  description: "Every problem, as C(path: rule). Empty when the policy is valid."
  returned: always
  type: list
  elements: str
  sample: ['datasets["tank/photos"].keep.daily: must be >= 0']
msg:
  description: One sentence.
  returned: always
  type: str
  sample: "The policy offsite_policy is not valid: datasets[\"tank/photos\"].keep.daily: must be >= 0."
"""
