"""Name validation, sizes and durations (plugins/module_utils/common.py)."""

from __future__ import annotations

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils.common import (
    human_duration,
    parse_duration,
    parse_size,
    split_snapshot_spec,
    validate_dataset,
    validate_namespace,
    validate_provider,
    validate_snapshot,
)
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError


@pytest.mark.parametrize("name", ["tank", "tank/data", "tank/a_b/c-d/e.f/g:h", "p0/" + "x" * 200])
def test_valid_dataset_names_pass(name):
    assert validate_dataset(name) == name


@pytest.mark.parametrize("name", ["", "tank/", "/tank", "tank//data", "tank/../etc", "tank/.hidden",
                                  "-tank", "tank/da ta", "tank@snap", "tank/data;rm -rf /", "t" * 256, None])
def test_invalid_dataset_names_are_one_sentence_bad_name(name):
    with pytest.raises(OffsiteError) as info:
        validate_dataset(name)
    assert info.value.code == "bad_name"
    assert info.value.message.endswith(".")
    assert "\n" not in info.value.message


def test_long_dataset_name_is_shortened_in_the_message():
    with pytest.raises(OffsiteError) as info:
        validate_dataset("t" * 300)
    assert "longer than 255" in info.value.message
    assert "t" * 100 not in info.value.message


@pytest.mark.parametrize("name", ["daily-20261121", "a", "x:y.z_1"])
def test_valid_snapshot_names_pass(name):
    assert validate_snapshot(name) == name


@pytest.mark.parametrize("name", ["", ".x", "-x", "a/b", "a@b", "a b", "a+b"])
def test_invalid_snapshot_names_fail(name):
    with pytest.raises(OffsiteError) as info:
        validate_snapshot(name)
    assert info.value.code == "bad_name"


@pytest.mark.parametrize("name,ok", [("b2", True), ("my-s3_1", True), ("x" * 64, True), ("x" * 65, False),
                                     ("-b2", False), ("b2:bucket", False), ("a/b", False), ("", False)])
def test_provider_names(name, ok):
    if ok:
        assert validate_provider(name) == name
    else:
        with pytest.raises(OffsiteError, match="provider name"):
            validate_provider(name)


@pytest.mark.parametrize("name,ok", [("nas1", True), ("nas1.example.com", True), ("a..b", False),
                                     ("a/b", False), (".x", False), ("", False)])
def test_namespaces(name, ok):
    if ok:
        assert validate_namespace(name) == name
    else:
        with pytest.raises(OffsiteError, match="namespace"):
            validate_namespace(name)


def test_split_snapshot_spec():
    assert split_snapshot_spec("tank/data@daily-1") == ("tank/data", "daily-1")
    assert split_snapshot_spec("tank/data") == ("tank/data", None)
    with pytest.raises(OffsiteError, match="more than one @"):
        split_snapshot_spec("tank@a@b")
    with pytest.raises(OffsiteError):
        split_snapshot_spec("tank/data@")


@pytest.mark.parametrize("text,expected", [
    ("64KiB", 64 * 1024), ("64K", 64 * 1024), ("64kb", 64 * 1024), ("1GiB", 1 << 30), ("256M", 256 << 20),
    ("1000", 1000), (" 2 MiB ", 2 << 20), ("1.5KiB", 1536), (4096, 4096), ("1T", 1 << 40)])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "64QiB", "-1K", "1 2K", True])
def test_parse_size_refuses_garbage_naming_the_setting(text):
    with pytest.raises(OffsiteError) as info:
        parse_size(text, "chunk_size")
    assert "chunk_size" in info.value.message
    assert info.value.code == "bad_value"


@pytest.mark.parametrize("text,expected", [("90s", 90), ("30m", 1800), ("36h", 129600), ("1d", 86400),
                                           ("2w", 1209600), ("1.5h", 5400), (45, 45.0)])
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "36", "1y", "h", "1 d 2", False])
def test_parse_duration_refuses_garbage(text):
    with pytest.raises(OffsiteError, match="max_age"):
        parse_duration(text, "max_age")


@pytest.mark.parametrize("seconds,text", [
    (None, "never"), (-5, "0s"), (0, "0s"), (45.4, "45s"), (119, "119s"), (120, "2m"), (3600, "1h"),
    (3600 * 3 + 300, "3h05m"), (86400, "1d"), (129600, "1d12h"), (3 * 86400, "3d"),
    # an age measured a moment after a whole number of days still reads as days, not 345599s
    (4 * 86400 - 1, "4d"), (4 * 86400 + 29, "4d"), (14 * 86400, "14d")])
def test_human_duration(seconds, text):
    assert human_duration(seconds) == text
