"""The policy schema: the embedded copy, the documented examples, and the messages for bad policies."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

from ansible_collections.offsite.zfs.plugins.module_utils import resolve, schema
from ansible_collections.offsite.zfs.plugins.module_utils.config import PROVIDER_KEYS, SETTING_KEYS, TOP_KEYS
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError

KEY = "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"


def doc_examples():
    text = (ROOT / "docs" / "policy.md").read_text()
    return re.findall(r"```yaml\n(.*?)```", text, re.S)


def test_embedded_schema_equals_the_schema_file():
    on_disk = json.loads((ROOT / "schemas" / "policy.schema.json").read_text())
    assert on_disk == json.loads(json.dumps(schema.SCHEMA))


def test_schema_is_a_valid_2020_12_schema():
    import jsonschema
    jsonschema.Draft202012Validator.check_schema(schema.SCHEMA)


def test_schema_knows_exactly_the_keys_policy_knows():
    props = schema.SCHEMA["properties"]
    assert set(props) == TOP_KEYS
    assert set(schema.SCHEMA["$defs"]["settings"]["properties"]) == SETTING_KEYS
    assert set(schema.SCHEMA["$defs"]["provider"]["properties"]) == PROVIDER_KEYS


def test_docs_have_examples():
    assert len(doc_examples()) >= 4


@pytest.mark.parametrize("index", range(len(doc_examples())))
def test_every_documented_example_is_valid(index):
    data = yaml.safe_load(doc_examples()[index])
    if set(data) == {"offsite_policy"}:
        data = data["offsite_policy"]
    elif "recipients" not in data and "namespace" not in data:
        data = {"providers": {"b2": {"remote": "b2:x"}, "scw": {"remote": "scw:y"}}, **data} \
            if "providers" not in data else data
    assert schema.errors(data) == []


BAD = [
    ({"datasets": {"tank/photos": {"keep": {"daily": -1}}}},
     'datasets["tank/photos"].keep.daily: must be >= 0'),
    ({"defaults": {"every": "1 day"}},
     "defaults.every: must be a duration like 90s, 30m, 36h, 1d or 2w (or a number of seconds)"),
    ({"defaults": {"full_every": {"incrementals": -2}}}, "defaults.full_every.incrementals: must be >= 0"),
    ({"defaults": {"full_every": "monthly"}}, "defaults.full_every: must be a duration like 30d or {incrementals: N}"),
    ({"defaults": {"keep": {"fortnightly": 2}}},
     "defaults.keep: has an unknown key fortnightly; known keys are daily, hourly, last, monthly, weekly, yearly"),
    ({"defaults": {"keep": {"daily": "7"}}}, "defaults.keep.daily: must be an integer"),
    ({"defaults": {"chunk_size": "12 parsecs"}},
     "defaults.chunk_size: must be a size like 64KiB, 256MiB or 1GiB (or a number of bytes)"),
    ({"defaults": {"compression": {"algorithm": "lz4"}}},
     "defaults.compression.algorithm: must be one of zstd, gzip, none"),
    ({"defaults": {"compression": {"level": 40}}}, "defaults.compression.level: must be <= 22"),
    ({"defaults": {"evry": "1d"}}, "defaults: has an unknown key evry; known keys are at, chunk_size, compression,"),
    ({"providers": {"b2": {"remote": "b2:x", "retries": -1}}}, "providers.b2.retries: must be >= 0"),
    ({"providers": {"b2": {}}}, "providers.b2: is missing the required key remote"),
    ({"providers": {"all": {"remote": "x"}}}, 'providers: the key "all" is not a valid provider name'),
    ({"providers": {"b2": {"remote": "b2:x", "env": {"AWS_KEY": "x"}}}},
     'providers.b2.env: the key "AWS_KEY" is not an rclone environment variable'),
    ({"datasets": {"tank/bad name": {}}}, 'datasets: the key "tank/bad name" is not a valid dataset name'),
    ({"providers": {"b2\n": {"remote": "x"}}}, 'providers: the key "b2\\n" is not a valid provider name'),
    ({"datasets": {"tank/x\n": {}}}, 'datasets: the key "tank/x\\n" is not a valid dataset name'),
    ({"defaults": {"evry\n": 1}}, 'defaults: has an unknown key "evry\\n"; known keys are'),
    ({"recipients": [KEY + "\n"]}, "recipients[0]: must be an age recipient"),
    ({"datasets": {"tank/x": 3}}, 'datasets["tank/x"]: must be empty or a mapping'),
    ({"datasets": {"tank/x": {"providers": "b2"}}},
     'datasets["tank/x"].providers: must be all or a list of provider names'),
    ({"datasets": {"tank/x": {"snapshot_prefix": "-bad"}}}, 'datasets["tank/x"].snapshot_prefix: must be letters'),
    ({"recipients": ["AGE-SECRET-KEY-1XYZ"]}, "recipients[0]: must be an age recipient"),
    ({"recipients": KEY}, "recipients: must be a list"),
    ({"namespace": "../up"}, "namespace: must be up to 128 letters"),
    ({"servers": []}, "(top level): has an unknown key servers"),
    ({"providers": {"b2": {"remote": "b2:x"}}, "datasets": {"tank/p": {"providers": ["s3"]}}},
     'datasets["tank/p"].providers[0]: names the provider s3, which is not defined under providers (defined: b2)'),
]


@pytest.mark.parametrize("config,message", BAD, ids=[case[1][:40] for case in BAD])
def test_bad_policies_are_rejected_naming_path_and_rule(config, message):
    found = schema.errors(config)
    assert found, "accepted %r" % config
    assert any(m.startswith(message) for m in found), found
    assert all("\n" not in m for m in found)


def test_every_problem_is_listed():
    found = schema.errors({"defaults": {"every": "x", "keep": {"last": -1}}, "providers": {"b2": {}}})
    assert len(found) == 3


def test_modules_refuse_a_bad_policy_with_one_sentence():
    config = {"recipients": [KEY], "providers": {"b2": {"remote": "/tmp/x"}},
              "datasets": {"tank/photos": {"keep": {"daily": -1}}}}
    with pytest.raises(OffsiteError) as caught:
        resolve.resolve(config, "tank/photos", {}, source="The config file /etc/offsite/offsite.yml")
    assert caught.value.code == "bad_config"
    assert caught.value.message == ('The config file /etc/offsite/offsite.yml is not valid: '
                                    'datasets["tank/photos"].keep.daily: must be >= 0.')


def test_format_path():
    assert schema.format_path(["datasets", "tank/photos", "keep", "daily"]) == 'datasets["tank/photos"].keep.daily'
    assert schema.format_path(["recipients", 2]) == "recipients[2]"
    assert schema.format_path([]) == "(top level)"
