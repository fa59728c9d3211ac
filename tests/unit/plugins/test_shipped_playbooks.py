"""The shipped playbooks run the modules as root (become) and pass the provider secrets (provider_env).

Issue 12: a login as `debian` or `ubuntu` got bad_config (the config is 0600 root) because no playbook set
become, and offsite_provider_env reached no module. Every play of playbooks/*.yml that calls a module
on the hosts (not the controller's policy validation) must set become (overridable by offsite_become),
and every such module task must pass provider_env.
"""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
CONTROLLER_ONLY = {"offsite.zfs.offsite_policy_validate"}


def _module_tasks(tasks):
    for task in tasks or []:
        yield from _module_tasks(task.get("block"))
        for key in task:
            if key.startswith("offsite.zfs.") and key not in CONTROLLER_ONLY:
                yield key, task


def test_every_play_that_runs_a_module_on_the_hosts_uses_become_and_passes_provider_env():
    checked = 0
    for path in sorted((ROOT / "playbooks").glob("*.yml")):
        for play in yaml.safe_load(path.read_text(encoding="utf-8")):
            found = list(_module_tasks(play.get("tasks")))
            if not found or play.get("connection") == "local":
                continue
            assert "offsite_become" in str(play.get("become")), "%s: %s has no become" % (path.name, play["name"])
            for module, task in found:
                args = task[module] or {}
                assert any(key == "provider_env" and "provider_env" in str(value) for key, value in args.items()), \
                    "%s: %s (%s) does not pass provider_env" % (path.name, task.get("name"), module)
                checked += 1
    assert checked >= 6, checked


def test_the_role_passes_provider_env_to_its_converge_and_timer():
    role = ROOT / "roles" / "offsite"
    main = yaml.safe_load((role / "tasks" / "main.yml").read_text(encoding="utf-8"))
    converge = next(t for t in main if "offsite.zfs.offsite_backup" in t)
    assert "offsite_provider_env" in converge["offsite.zfs.offsite_backup"]["provider_env"]
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text(encoding="utf-8"))
    assert "offsite_provider_env" in defaults["offsite_timer_env"]
