"""A fleet of inventory hosts through real `ansible` and the real fleet_report playbook, HTML in headless Chromium."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Dict, List

import harness
import pytest

from ansible_collections.offsite.zfs.plugins.module_utils import resolve
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.run import run_backup

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return ""


class Fleet:
    """Three hosts (localhost aliases) with their own namespaces, datasets and config files, one shared bucket."""

    def __init__(self, lab, s3, tmp: Path) -> None:
        self.lab = lab
        self.tmp = tmp
        lab.add_s3(s3)
        base = copy.deepcopy(lab.config)
        self.configs: Dict[str, Dict[str, Any]] = {}
        pool = lab.pool.name
        self.datasets = {"web1": ["%s/web" % pool], "web2": ["%s/app" % pool, "%s/app-new" % pool],
                         "db1": ["%s/db" % pool, "%s/db-old" % pool]}
        for host, names in self.datasets.items():
            config = copy.deepcopy(base)
            config["namespace"] = "ns-%s" % host
            config["state_dir"] = str(tmp / host / "state")
            config["log_dir"] = str(tmp / host / "log")
            config["datasets"] = {name: {"providers": ["local"]} for name in names}
            # The simulated hosts share one pool: each leaves the others' datasets out (else they have
            # snapshots and nothing offsite in its namespace: nothing_offsite).
            config["defaults"]["exclude"] = [d for other, found in self.datasets.items() if other != host
                                             for d in found]
            self.configs[host] = config
        self.configs["web1"]["datasets"]["%s/web" % pool] = {"max_age": "1d"}  # both providers
        self.configs["db1"]["defaults"]["max_age"] = "0s"
        self.configs["db1"]["datasets"]["%s/db" % pool]["max_age"] = "1d"

    def backup(self, host: str, dataset: str, snapshot: str, seed: int) -> Dict[str, Any]:
        if not self.lab.pool.exists(dataset):
            self.lab.pool.create(dataset.split("/", 1)[1])
        harness.write_data(self.lab.pool.mountpoint(dataset), seed, 128 << 10, "f-%s.bin" % snapshot)
        self.lab.pool.snapshot(dataset, snapshot)
        return run_backup(resolve.resolve(self.configs[host], dataset, {}), snapshot=snapshot)

    def write(self) -> Path:
        lines = ["[fleet]"]
        for host, config in self.configs.items():
            path = harness.write_config(self.tmp / ("%s.yml" % host), config)
            lines.append("%s ansible_connection=local offsite_config=%s" % (host, path))
        lines.append("broken1 ansible_connection=local offsite_config=%s" % (self.tmp / "missing.yml"))
        inventory = self.tmp / "inventory.ini"
        inventory.write_text("\n".join(lines) + "\n")
        return inventory


@pytest.fixture
def fleet(lab, s3, tmp_path) -> Fleet:
    world = Fleet(lab, s3, tmp_path)
    pool = lab.pool.name
    # web1: healthy, on both providers.
    world.backup("web1", "%s/web" % pool, "w1", 1)
    world.backup("web1", "%s/web" % pool, "w2", 2)
    # web2: a chunk deleted from its only backup; a configured dataset never backed up.
    result = world.backup("web2", "%s/app" % pool, "a1", 3)
    backup_id = result["providers"]["local"]["backup_id"]
    chunk = sorted((lab.remotes["local"] / "ns-web2" / ("%s/app" % pool) / ("@" + backup_id)).glob("chunk-*"))[0]
    chunk.unlink()
    lab.pool.create("app-new")
    # db1: a fresh backup with a newer snapshot not backed up and a stray object; an old one past max_age.
    world.backup("db1", "%s/db" % pool, "d1", 4)
    lab.pool.snapshot("%s/db" % pool, "d2")
    (lab.remotes["local"] / "ns-db1" / pool / "db" / "stray.bin").write_bytes(b"stray")
    world.backup("db1", "%s/db-old" % pool, "o1", 5)
    return world


def adhoc_all(ansible, inventory: Path, args: Dict[str, Any], check: bool = False) -> Dict[str, Dict[str, Any]]:
    """`ansible all -m offsite.zfs.offsite_status`; each host's result from the "host | STATUS => {json}" lines."""
    argv = [ansible.ansible, "all", "-i", str(inventory), "-m", "offsite.zfs.offsite_status", "-a", json.dumps(args)]
    if check:
        argv.append("--check")
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ansible.env(),
                          timeout=600, check=False)
    results: Dict[str, Dict[str, Any]] = {}
    for match in re.finditer(r"^(\S+) \| (\S+)[^\n]*?=> \{", proc.stdout, re.MULTILINE):
        result, _end = json.JSONDecoder().raw_decode(proc.stdout[match.end() - 1:])
        result.setdefault("failed", match.group(2) in ("FAILED!", "UNREACHABLE!"))
        results[match.group(1)] = result
    if not results:
        raise AssertionError("ansible output has no results (rc %d): %s %s" % (
            proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    return results


def problem_codes(result: Dict[str, Any], dataset: str) -> Dict[str, str]:
    return {p["code"]: p["severity"] for p in result["datasets"][dataset]["problems"]}


class _Rows(HTMLParser):
    """The table rows of the rendered DOM: data-* attributes and cell text."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: List[Dict[str, Any]] = []
        self.bars: List[Dict[str, str]] = []
        self._row = None
        self._cell = None

    def handle_starttag(self, tag: str, attrs: List[Any]) -> None:
        values = dict(attrs)
        if tag == "tr" and "data-host" in values:
            self._row = {"host": values["data-host"], "dataset": values["data-dataset"],
                         "health": values["data-health"], "cells": []}
            self.rows.append(self._row)
        elif tag == "td" and self._row is not None:
            self._cell = []
            self._row["cells"].append(self._cell)
        elif tag == "g" and "data-provider" in values:
            self.bars.append(values)

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None
        if tag == "td":
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_adhoc_status_across_the_fleet(fleet, ansible):
    inventory = fleet.write()
    pool = fleet.lab.pool.name
    results = adhoc_all(ansible, inventory, {"config": "{{ offsite_config }}"})
    assert set(results) == {"web1", "web2", "db1", "broken1"}
    web1, web2, db1 = results["web1"], results["web2"], results["db1"]
    for result in (web1, web2, db1):
        assert result.get("failed") is not True and result["changed"] is False, result.get("msg")
    assert web1["namespace"] == "ns-web1" and web1["health"] == "ok"
    web = web1["datasets"]["%s/web" % pool]
    assert sorted(web["providers"]) == ["local", "s3"]
    assert all(p["latest"]["snapshot"] == "w2" and p["chain_length"] == 2 for p in web["providers"].values())
    assert problem_codes(web2, "%s/app" % pool) == {"chunk_missing": "critical", "no_backup": "critical"}
    assert problem_codes(web2, "%s/app-new" % pool) == {"no_backup": "critical"}
    assert web2["datasets"]["%s/app-new" % pool]["configured"] is True
    assert web2["health"] == "critical"
    assert problem_codes(db1, "%s/db" % pool) == {"not_backed_up": "warning", "orphan_object": "warning"}
    assert db1["datasets"]["%s/db" % pool]["not_backed_up"] == {"local": ["d2"]}
    assert problem_codes(db1, "%s/db-old" % pool) == {"stale": "critical"}
    assert results["broken1"]["failed"] is True and "does not exist" in results["broken1"]["msg"]
    # verify=decrypt through ansible: the identity is no_log and never shown, even at -vvv.
    secret = fleet.lab.key.secret
    decrypted = ansible.module("offsite_status", {"config": str(fleet.tmp / "web1.yml"), "verify": "decrypt",
                                                  "identity": secret}, host="web1", inventory=str(inventory),
                               verbosity=3)
    assert decrypted["failed"] is False and decrypted["health"] == "ok", decrypted.get("msg")
    backups = [b for p in decrypted["datasets"]["%s/web" % pool]["providers"].values() for b in p["backups"]]
    assert len(backups) == 4 and all(b["verified"] == "decrypt" for b in backups)
    assert secret not in decrypted["_stdout"] + decrypted["_stderr"]
    # Check mode changes nothing and reports the same.
    checked = adhoc_all(ansible, inventory, {"config": "{{ offsite_config }}", "datasets": ["%s/web" % pool],
                                             "providers": "s3"}, check=True)
    assert checked["web1"]["health"] == "ok" and checked["web1"]["changed"] is False
    assert list(checked["web1"]["datasets"]) == ["%s/web" % pool]
    assert list(checked["web1"]["datasets"]["%s/web" % pool]["providers"]) == ["s3"]
    assert list(checked["web1"]["providers"]) == ["s3"]


def test_fleet_report_playbook_renders_in_headless_chromium(fleet, ansible, tmp_path):
    inventory = fleet.write()
    pool = fleet.lab.pool.name
    out = tmp_path / "report"
    proc = ansible.run_playbook("offsite.zfs.fleet_report", inventory=str(inventory),
                                extra_vars={"offsite_report_dir": str(out)})
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    html = out / "fleet-report.html"
    data = json.loads((out / "fleet-report.json").read_text())
    assert oct(os.stat(html).st_mode & 0o777) == "0o600" and oct(os.stat(out).st_mode & 0o777) == "0o700"
    text = html.read_text()
    for marker in ("<script", "<link", "src=", "@import", "url("):
        assert marker not in text, "the report must be self-contained (%s)" % marker

    rows = {(r["host"], r["dataset"]): r for r in data["rows"]}
    assert rows[("web1", "%s/web" % pool)]["health"] == "ok"
    assert rows[("web2", "%s/app" % pool)]["health"] == "critical"
    assert rows[("db1", "%s/db" % pool)]["health"] == "warning"
    assert rows[("db1", "%s/db-old" % pool)]["freshness"] == "stale"
    assert rows[("broken1", "")]["problems"][0]["code"] == "status_failed"
    assert data["health"] == "critical" and data["totals"]["hosts"] == 4
    bars = {(b["host"], b["provider"]): b["bytes"] for b in data["chart"]["bars"]}
    assert bars[("web1", "s3")] > 0 and bars[("web1", "local")] > 0 and bars[("web2", "s3")] == 0

    prom = (out / "fleet-report.prom").read_text()
    assert '# TYPE offsite_dataset_health gauge' in prom
    assert 'offsite_dataset_health{host="web2",namespace="ns-web2",dataset="%s/app"} 2' % pool in prom
    assert 'offsite_dataset_health{host="web1",namespace="ns-web1",dataset="%s/web"} 0' % pool in prom
    assert 'offsite_chain_length{host="web1",namespace="ns-web1",dataset="%s/web",provider="s3"} 2' % pool in prom

    chromium = chromium_binary()
    if not chromium:
        pytest.skip("chromium is not installed (scripts/bootstrap.sh installs Debian's chromium)")
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run([chromium] + CHROMIUM_FLAGS + ["--user-data-dir=%s" % profile, "--dump-dom",
                                                            html.as_uri()],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120, check=False)
    assert dom.returncode == 0, dom.stderr[-2000:]
    parsed = _Rows()
    parsed.feed(dom.stdout)
    shown = {(r["host"], r["dataset"]): r for r in parsed.rows}
    assert set(shown) == set(rows), "every host x dataset row is rendered"
    assert shown[("web2", "%s/app" % pool)]["health"] == "critical"
    app_text = " ".join("".join(c) for c in shown[("web2", "%s/app" % pool)]["cells"])
    assert "chunk_missing" in app_text and "no_backup" in app_text
    web_text = " ".join("".join(c) for c in shown[("web1", "%s/web" % pool)]["cells"])
    assert "w2" in web_text and "chain 2" in web_text
    assert {(b["data-host"], b["data-provider"]) for b in parsed.bars} == set(bars)

    png = tmp_path / "report.png"
    with tempfile.TemporaryDirectory() as profile:
        shot = subprocess.run([chromium] + CHROMIUM_FLAGS + ["--user-data-dir=%s" % profile,
                                                             "--screenshot=%s" % png, "--window-size=1400,1000",
                                                             "--hide-scrollbars", html.as_uri()],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120,
                              check=False)
    assert shot.returncode == 0 and png.exists(), shot.stderr[-2000:]
    header = png.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (1400, 1000)
    assert png.stat().st_size > 20000, "a rendered page, not a blank one"


def test_filters_escape_labels_and_count_failed_hosts():
    from ansible_collections.offsite.zfs.plugins.filter.offsite_report import fleet_report, to_prometheus
    result = {"health": "warning", "namespace": 'we"ird\\ns', "generated_epoch": 1.5, "running": [],
              "summary": {"datasets": 1, "backups": 0, "stored_bytes": 0, "problems": 1},
              "problems": [{"code": "not_backed_up", "severity": "warning", "dataset": "tank/a"}],
              "datasets": {"tank/a": {"health": "warning", "max_age_seconds": 60.0, "providers": {}, "latest": None,
                                      "problems": [{"code": "not_backed_up", "severity": "warning",
                                                    "message": "<b>1 snapshot</b> is not backed up yet."}]}},
              "providers": {"b2": {"stored_bytes": 0}}}
    text = to_prometheus({"h1": result})
    assert 'offsite_host_health{host="h1",namespace="we\\"ird\\\\ns"} 1' in text
    assert 'offsite_problems{host="h1",namespace="we\\"ird\\\\ns",dataset="tank/a",code="not_backed_up",' \
           'severity="warning"} 1' in text
    assert text.count("# TYPE ") == text.count("# HELP ")
    fleet = fleet_report({"h1": {"offsite_report_status": result},
                          "h2": {"offsite_report_status": {"failed": True, "msg": "no such config"}}},
                         ["h1", "h2", "h3"])
    assert [h["health"] for h in fleet["hosts"]] == ["warning", "critical", "critical"]
    assert fleet["totals"]["failed_hosts"] == 2 and fleet["health"] == "critical"
    assert [r["dataset"] for r in fleet["rows"]] == ["tank/a", "", ""]
    assert "no such config" in fleet["rows"][1]["problems"][0]["message"]
    assert to_prometheus(fleet) == to_prometheus({"h1": result})
    with pytest.raises(ValueError):
        to_prometheus(["not", "a", "status"])
