"""Bounded providers on real remotes (issue 15): an unreachable provider fails fast and alone, through
ansible, and a bandwidth timetable reaches rclone, which accepts it and uploads under it."""

from __future__ import annotations

import socket

import harness
from faulty_rclone import Wrapper
from reliability import same_tree


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_provider_fails_alone_and_fast_through_ansible(lab, ansible):
    ds = lab.pool.create("data")
    harness.write_data(lab.pool.mountpoint(ds), 151, 256 << 10)
    lab.pool.snapshot(ds, "s1")
    port = _closed_port()
    prefix = "RCLONE_CONFIG_DEADS3_"
    lab.config["providers"]["dead"] = {
        "remote": "deads3:bucket/offsite", "retry_delay": 0.5, "low_level_retries": 1, "unreachable_budget": "3s",
        "env": {prefix + "TYPE": "s3", prefix + "PROVIDER": "Other", prefix + "ENDPOINT": "http://127.0.0.1:%d" % port,
                prefix + "ACCESS_KEY_ID": "AKIDEXAMPLE", prefix + "SECRET_ACCESS_KEY": "not-a-secret"}}
    result = ansible.module("offsite_backup", {"dataset": "%s@s1" % ds, "providers": "all",
                                               "config": str(lab.config_path)})
    assert result["failed"] and result["failed_providers"] == ["dead"], result
    good, dead = result["providers"]["local"], result["providers"]["dead"]
    assert good["status"] == "uploaded", "the reachable provider is not held back"
    assert dead["error_code"] == "provider_unreachable"
    assert "Provider dead cannot be reached at http://127.0.0.1:%d: connection refused" % port in dead["message"]
    assert dead["seconds"] < 30, "3 s of retries plus a few quick refused calls"
    log = open(result["log_file"], encoding="utf-8").read()
    assert "provider dead: listing of" in log and "retry 1 in" in log, "the log says what the retry waits for"
    assert "not-a-secret" not in log and "not-a-secret" not in result["_stdout"]
    lab.restore(ds, "s1", target=lab.pool.name + "/copy", provider="local")
    assert same_tree(lab, ds, lab.pool.name + "/copy")


def test_a_bandwidth_timetable_reaches_rclone_and_the_backup_restores(lab):
    ds = lab.pool.create("data")
    harness.write_data(lab.pool.mountpoint(ds), 152, 192 << 10)
    lab.pool.snapshot(ds, "s1")
    wrapper = Wrapper.create(lab.tmp / "bin", lab.rclone, [])  # records every call, delegates all
    lab.config["rclone"] = str(wrapper.path)
    lab.config["providers"]["local"]["bwlimit"] = "00:00,50M 12:00,40M"
    entry = lab.backup(ds, "s1")["providers"]["local"]
    assert entry["status"] == "uploaded", entry
    calls = wrapper.calls()
    assert calls and all(c["argv"][c["argv"].index("--bwlimit") + 1] == "00:00,50M 12:00,40M" for c in calls)
    assert all("--contimeout" in c["argv"] and "--low-level-retries" in c["argv"] for c in calls)
    lab.restore(ds, "s1", target=lab.pool.name + "/copy")
    assert same_tree(lab, ds, lab.pool.name + "/copy")
