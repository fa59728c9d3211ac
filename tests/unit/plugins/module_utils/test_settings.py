"""Typed settings (module_utils/settings.py, resolve.py) and the one rule for loading the config (config.py).

The policy of a dataset is parsed once into typed fields with the defaults in one place; a bad value is one
sentence naming the setting and the dataset. Pure: no zfs, no rclone, milliseconds.
"""

from __future__ import annotations

import dataclasses

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils import config, resolve, schema
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.settings import (
    DatasetPolicy,
    DatasetSettings,
    FullEvery,
    Keep,
    policy_of,
)

DAY = 86400.0
KEY = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"


def test_the_defaults_live_in_one_place():
    policy = DatasetPolicy.parse({}, "tank/data")
    assert policy == DatasetPolicy()
    assert (policy.every, policy.full_every, policy.prune_incomplete_after) == (
        DAY, FullEvery(seconds=30 * DAY), 2 * DAY)
    assert policy.keep == Keep() and policy.keep.rules() == {}, "no keep rules: nothing is ever deleted"
    assert (policy.hold_base, policy.new_lineage, policy.recursive, policy.prune_local_snapshots) == (
        True, False, False, False)
    assert (policy.snapshot_prefix, policy.snapshot_pattern, policy.exclude) == ("offsite", None, ())
    assert (policy.max_age, policy.drill_every, policy.verify_coverage, policy.at, policy.slack) == (None,) * 5
    assert policy.wanted_providers is None, "no providers setting: all of them"


def test_values_are_typed_once():
    policy = DatasetPolicy.parse({
        "every": "1h", "at": "02:30Z", "slack": "5m", "full_every": {"incrementals": 6},
        "keep": {"daily": 7, "last": 0, "monthly": 12}, "max_age": "36h", "drill_every": "1w",
        "verify_coverage": 3600, "hold_base": False, "recursive": True, "exclude": ["cache", "*/tmp"],
        "snapshot_prefix": "auto", "prune_incomplete_after": "12h", "providers": ["b2"]}, "tank/data")
    assert (policy.every, policy.at, policy.slack) == (3600.0, "02:30Z", 300.0)
    assert policy.full_every == FullEvery(seconds=None, incrementals=6)
    assert policy.keep.rules() == {"daily": 7, "monthly": 12}, "zero rules select nothing; a fixed order"
    assert (policy.max_age, policy.drill_every, policy.verify_coverage) == (36 * 3600.0, 7 * DAY, 3600.0)
    assert (policy.hold_base, policy.recursive, policy.exclude) == (False, True, ("cache", "*/tmp"))
    assert (policy.snapshot_prefix, policy.prune_incomplete_after, policy.wanted_providers) == (
        "auto", 43200.0, ("b2",))
    assert policy.schedule("tank/data").describe() == "every 1h at 02:30Z"
    assert DatasetPolicy.parse({"providers": "all"}).wanted_providers is None


def test_a_dataset_entry_overlays_defaults_and_keep_merges_rule_by_rule():
    cfg = {"defaults": {"every": "1d", "keep": {"daily": 30, "monthly": 12}, "max_age": "36h"},
           "datasets": {"tank/a": {}, "tank/b": {"keep": {"daily": 7, "monthly": 0}, "full_every": "7d"},
                        "tank/c": {"keep": None}}}
    assert policy_of(cfg, "tank/a").keep.rules() == {"daily": 30, "monthly": 12}
    assert policy_of(cfg, "tank/b").keep.rules() == {"daily": 7}
    assert policy_of(cfg, "tank/b/child").full_every.seconds == 7 * DAY, "a child follows its nearest parent"
    assert policy_of(cfg, "tank/c").keep.rules() == {}, "keep: null overrides the defaults"
    assert policy_of(cfg, None).max_age == 36 * 3600.0, "no dataset: the defaults"
    assert policy_of(cfg, "other/x").every == DAY


@pytest.mark.parametrize("entry, names", [
    ({"every": "soon"}, "every of tank/data"),
    ({"max_age": "-1d"}, "max_age of tank/data"),
    ({"hold_base": "no"}, "hold_base of tank/data"),
    ({"recursive": 1}, "recursive of tank/data"),
    ({"keep": {"daily": -1}}, "keep.daily of tank/data"),
    ({"keep": {"daily": True}}, "keep.daily of tank/data"),
    ({"keep": {"dayly": 7}}, "keep of tank/data rule"),
    ({"keep": [7]}, "keep of tank/data"),
    ({"full_every": {"incrementals": "six"}}, "full_every of tank/data"),
    ({"full_every": "monthly"}, "full_every of tank/data"),
    ({"exclude": "cache"}, "exclude of tank/data"),
    ({"snapshot_prefix": 7}, "snapshot_prefix of tank/data"),
    ({"at": "25:00"}, "at of tank/data"),
])
def test_a_bad_value_is_one_sentence_naming_the_setting_and_the_dataset(entry, names):
    with pytest.raises(OffsiteError) as caught:
        DatasetPolicy.parse(entry, "tank/data")
    message = caught.value.message
    assert caught.value.code == "bad_value"
    assert names in message, message
    assert message.startswith("The ") and message.endswith(".") and "\n" not in message, message


def _config(**dataset):
    return {"recipients": [KEY], "namespace": "host1", "providers": {"b2": {"remote": "/srv/mirror"}},
            "datasets": {"tank/data": dataset}}


def test_resolve_hands_out_typed_fields_and_no_policy_dict(tmp_path):
    settings = resolve.resolve(dict(_config(every="6h", keep={"last": 3}, new_lineage=True),
                                    state_dir=str(tmp_path)), "tank/data", {})
    assert isinstance(settings, DatasetSettings) and isinstance(settings, DatasetPolicy)
    assert not hasattr(settings, "policy")
    assert (settings.every, settings.keep.rules(), settings.new_lineage) == (21600.0, {"last": 3}, True)
    assert (settings.dataset, settings.namespace, settings.selected) == ("tank/data", "host1", ["b2"])
    assert dataclasses.replace(settings, keep=Keep(daily=2)).keep.rules() == {"daily": 2}


def test_the_schema_refuses_a_bad_config_and_the_typed_parse_covers_hosts_without_jsonschema(tmp_path, monkeypatch):
    cfg = dict(_config(every="soon"), state_dir=str(tmp_path))
    with pytest.raises(OffsiteError) as caught:
        resolve.resolve(cfg, "tank/data", {}, source="The config file /etc/offsite/offsite.yml")
    assert caught.value.code == "bad_config"
    assert caught.value.message.startswith('The config file /etc/offsite/offsite.yml is not valid: '
                                           'datasets["tank/data"].every: must be a duration')
    monkeypatch.setattr(schema, "HAS_JSONSCHEMA", False)
    with pytest.raises(OffsiteError) as caught:
        resolve.resolve(cfg, "tank/data", {})
    assert caught.value.code == "bad_value"
    assert caught.value.message == "The every of tank/data 'soon' is not a duration like 90s, 30m, 36h, 1d or 2w."


def test_the_one_rule_for_loading_the_config_file(tmp_path, monkeypatch):
    default = tmp_path / "etc" / "offsite.yml"
    monkeypatch.setattr(config, "DEFAULT_CONFIG", str(default))
    assert config.load(None) == {} and config.load("") == {}
    assert config.load(str(default)) == {}, "the default file may be missing: the parameters say everything"
    with pytest.raises(OffsiteError) as caught:
        config.load(str(default), needed=True)
    assert (caught.value.code, caught.value.message) == (
        "bad_config", "The config file %s does not exist." % default), "a policy run needs it"
    with pytest.raises(OffsiteError) as caught:
        config.load(str(tmp_path / "named.yml"))
    assert caught.value.code == "bad_config", "a file that was named must exist"
    default.parent.mkdir()
    default.write_text("offsite_policy:\n  namespace: host1\n  datasets: {tank/a: {}}\n")
    loaded = config.load(str(default), needed=True)
    assert loaded == {"namespace": "host1", "datasets": {"tank/a": {}}}, "the role's wrapped form"
    assert config.configured(loaded) == ["tank/a"] and config.policy_datasets(loaded, ["tank/a/child"]) == [
        "tank/a/child"]
    with pytest.raises(OffsiteError) as caught:
        config.policy_datasets(loaded, ["tank/b"])
    assert caught.value.code == "not_in_policy"
