"""What the keep rules cost (module_utils/costs.py): the formula of docs/policy.md, per dataset and per provider."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils import costs
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.settings import DatasetPolicy

GIB = 1 << 30


def policy(entry):
    """The typed policy of one dataset entry, as prune and offsite_policy_validate hand it to costs."""
    return DatasetPolicy.parse(entry, "tank/data")


def test_the_defaults_are_the_policys_one_place():
    """costs has no defaults of its own: every (1d) and full_every (30d) come from settings.DatasetPolicy,
    the same the converge uses."""
    default = costs.plan(DatasetPolicy(), full_bytes=1)
    assert default["every_seconds"] == 86400 and default["full_every_seconds"] == 30 * 86400
    assert costs.plan(policy({}), full_bytes=1) == default


@pytest.mark.parametrize("entry,copies,incrementals", [
    # docs/policy.md: the complete example (monthly 12, full_every 30d) holds about 13 full copies
    ({"every": "1d", "full_every": "30d", "keep": {"last": 3, "daily": 7, "weekly": 4, "monthly": 12}}, 13, 366),
    # the cheap example: about 3 full copies and 90 daily incrementals
    ({"every": "1d", "full_every": "45d", "keep": {"daily": 14, "weekly": 8, "monthly": 3}}, 3, 92),
    # the safe example: a year back, about 7 full copies
    ({"every": "1d", "full_every": "60d", "keep": {"last": 3, "daily": 30, "weekly": 12, "monthly": 12}}, 7, 366),
    # a week of daily backups, a monthly full: one chain (the new full replaces the old within a week)
    ({"every": "1d", "full_every": "30d", "keep": {"daily": 7}}, 1, 7),
    # every backup full: the copies are the kept snapshots, never more
    ({"every": "1d", "full_every": {"incrementals": 0}, "keep": {"last": 5}}, 5, 0),
    # {incrementals: 6} with hourly backups: a full every 7 hours
    ({"every": "1h", "full_every": {"incrementals": 6}, "keep": {"hourly": 48}}, 8, 48),
])
def test_full_copies_and_incrementals_held(entry, copies, incrementals):
    plan = costs.plan(policy(entry), full_bytes=100 * GIB, incremental_bytes=GIB)
    assert (plan["full_copies"], plan["incrementals"]) == (copies, incrementals), plan
    assert plan["estimated_stored_bytes"] == copies * 100 * GIB + incrementals * GIB


def test_without_keep_rules_nothing_is_deleted_so_nothing_is_bounded():
    plan = costs.plan(policy({"every": "1d"}), full_bytes=GIB)
    assert plan["full_copies"] is None and plan["estimated_stored_bytes"] is None
    assert plan["full_every_seconds"] == 30 * 86400
    assert costs.plan(policy({"keep": {"daily": 7}}))["estimated_stored_bytes"] is None, "no size: no estimate"


def _backup(backup_id, kind, stored, created, objects=None, complete=True):
    manifest = SimpleNamespace(kind=kind, stored_bytes=stored, snapshot=SimpleNamespace(creation=created, createtxg=0))
    sizes = objects if objects is not None else [stored]
    return SimpleNamespace(backup_id=backup_id, manifest=manifest if complete else None,
                           objects={"o%d" % i: SimpleNamespace(size=s) for i, s in enumerate(sizes)})


def test_provider_cost_now_after_and_steady():
    backups = [_backup("f1", "full", 1000, 1), _backup("i1", "incremental", 10, 2),
               _backup("f2", "full", 1200, 3), _backup("i2", "incremental", 30, 4),
               _backup("partial", "full", 0, 5, objects=[500], complete=False)]
    cost = costs.provider_cost(backups, ["f2", "i2"], policy({"every": "1d", "full_every": "30d",
                                                              "keep": {"daily": 60}}))
    assert cost["stored_bytes"] == 2740, "every object, an incomplete upload's too"
    assert (cost["full_copies"], cost["backups"]) == (2, 4)
    assert (cost["stored_bytes_after"], cost["full_copies_after"]) == (1230, 1)
    assert (cost["full_bytes"], cost["incremental_bytes"]) == (1200, 20), "the newest full, the mean incremental"
    assert (cost["held_full_copies"], cost["held_incrementals"]) == (3, 60)
    assert cost["estimated_stored_bytes"] == 3 * 1200 + 60 * 20
    totals = costs.total([cost, dict(cost, held_full_copies=None, estimated_stored_bytes=None)])
    assert totals["datasets"] == 2 and totals["stored_bytes"] == 5480 and totals["held_full_copies"] is None
    text = costs.describe("b2", costs.total([cost]))
    assert text.startswith("b2 stores 2.7 KiB in 2 full copies now, 1.2 KiB in 1 after this prune; the keep rules "
                           "hold about 3 full copies (about "), text


def test_policy_cost_per_provider_follows_each_datasets_providers():
    config = {"providers": {"b2": {"remote": "b2:x"}, "usb": {"remote": "/mnt/usb"}},
              "defaults": {"every": "1d", "full_every": "60d", "keep": {"daily": 30, "monthly": 12}},
              "datasets": {"tank/a": {},
                           "tank/b": {"providers": ["usb"], "keep": {"daily": 7, "monthly": 0}, "full_every": "7d"},
                           "tank/c": {"providers": ["b2"], "keep": None}}}
    cost = costs.policy_cost(config, {"tank/a": "1GiB", "tank/b": {"full": "2GiB", "incremental": "1MiB"}})
    assert sorted(cost["b2"]["datasets"]) == ["tank/a", "tank/c"] and sorted(cost["usb"]["datasets"]) == [
        "tank/a", "tank/b"]
    assert cost["usb"]["datasets"]["tank/b"]["full_copies"] == 2
    assert cost["usb"]["full_copies"] == cost["usb"]["datasets"]["tank/a"]["full_copies"] + 2 == 9
    assert cost["usb"]["estimated_stored_bytes"] == 7 * GIB + 2 * (2 * GIB) + 7 * (1 << 20)
    assert cost["b2"]["full_copies"] is None, "tank/c keeps everything"
    assert costs.describe_policy(cost) == ("b2: a dataset without keep rules grows without bound; usb holds about 9 "
                                           "full copies (about 11.0 GiB)")
    with pytest.raises(OffsiteError):
        costs.policy_cost(config, ["tank/a"])
