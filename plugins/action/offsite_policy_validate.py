# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate a policy on the controller, before any host is touched (no module runs on the host)."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.offsite.zfs.plugins.module_utils import costs, schema
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("policy", "name", "sizes"))
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        policy = self._task.args.get("policy")
        name = self._task.args.get("name") or "offsite_policy"
        if not isinstance(name, str):
            raise AnsibleActionFail("name must be a string.")
        if not schema.HAS_JSONSCHEMA:
            raise AnsibleActionFail("The Python library jsonschema is missing on the controller; install it next to "
                                    "ansible-core (pipx inject ansible-core jsonschema, or pip install jsonschema "
                                    "in Ansible's virtualenv) to validate %s." % name)
        if policy is None:
            policy = {}
        problems = schema.errors(policy)
        result["changed"] = False
        result["errors"] = problems
        if problems:
            more = " (and %d more problems, see errors)" % (len(problems) - 1) if len(problems) > 1 else ""
            result["failed"] = True
            result["msg"] = "The policy %s is not valid: %s%s." % (name, problems[0], more)
        else:
            datasets = policy.get("datasets") or {} if isinstance(policy, dict) else {}
            try:
                result["cost"] = costs.policy_cost(policy, self._task.args.get("sizes"))
            except OffsiteError as exc:
                raise AnsibleActionFail(exc.message)
            summary = costs.describe_policy(result["cost"])
            result["msg"] = "The policy %s is valid (%d datasets, %d providers)%s." % (
                name, len(datasets), len(policy.get("providers") or {}), "; " + summary if summary else "")
        return result
