"""The Grafana dashboard and the Prometheus alert rules in extensions/monitoring parse, and every metric and
label they use is one the status export (the to_prometheus filter) actually emits."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from ansible_collections.offsite.zfs.plugins.filter.offsite_report import fleet_report, to_prometheus

ROOT = Path(__file__).resolve().parents[3]
MONITORING = ROOT / "extensions" / "monitoring"
METRIC = re.compile(r"\boffsite_[a-z_]+\b")
PROMQL_WORDS = {"by", "on", "without", "ignoring", "group_left", "group_right"}

# A status result with every part the export turns into samples: datasets, providers, a latest backup,
# an objective, drills, coverage, problems, a running operation.
STATUS = {
    "namespace": "nas1.example.org", "host": "nas1", "health": "warning", "generated_epoch": 1800000000.0,
    "running": [{"operation": "backup"}],
    "problems": [{"code": "nothing_offsite", "severity": "warning", "dataset": "tank/new"},
                 {"code": "stale", "severity": "warning", "dataset": "tank/data", "provider": "b2"}],
    "providers": {"b2": {"stored_bytes": 10}},
    "datasets": {
        "tank/data": {"health": "warning", "max_age_seconds": 129600, "problems": [],
                      "providers": {"b2": {"stored_bytes": 10, "backup_count": 3,
                                           "latest": {"created_epoch": 1799990000, "age_seconds": 10000,
                                                      "chain_length": 3}}},
                      "drills": {"b2": {"epoch": 1799000000.0, "result": "passed"}},
                      "coverage": {"b2": {"all_verified_within_seconds": 86400.0}}},
        "tank/new": {"health": "warning", "providers": {}, "problems": []},
    },
}


def emitted():
    """metric name -> the label names its samples carry, from the real export of a fleet report."""
    text = to_prometheus(fleet_report({"nas1": {"offsite_report_status": STATUS}}, ["nas1"]))
    found = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _sep, rest = line.partition("{")
        labels = set(re.findall(r'([a-z_]+)="', rest.split("}")[0])) if rest else set()
        found.setdefault(name.split()[0], set()).update(labels)
    return found


def _labels_used(expr: str) -> set:
    used = set()
    for group in re.findall(r"\b(?:by|on|without|ignoring|group_left|group_right)\s*\(([^)]*)\)", expr):
        used.update(x.strip() for x in group.split(",") if x.strip())
    used.update(re.findall(r"[{,]\s*([a-z_]+)\s*(?:=~|!~|!=|=)", expr))
    return used - PROMQL_WORDS


def _dashboard_exprs():
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    assert dashboard["uid"] and dashboard["panels"], "a dashboard with panels"
    exprs, legends = [], []
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            exprs.append(target["expr"])
            legends.extend(re.findall(r"\{\{\s*([a-z_]+)\s*\}\}", target.get("legendFormat", "")))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            exprs.append(variable["definition"])
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    return exprs, legends


def _alert_rules():
    rules = yaml.safe_load((MONITORING / "prometheus-alerts.yml").read_text())
    found = [rule for group in rules["groups"] for rule in group["rules"]]
    assert found and all(r["alert"] and r["expr"] and r["labels"]["severity"] for r in found)
    return found


def test_the_export_emits_what_the_metric_list_says():
    found = emitted()
    assert "offsite_host_health" in found and {"host", "namespace"} <= found["offsite_host_health"]
    assert {"host", "namespace", "dataset", "provider"} <= found["offsite_stored_bytes"]


def test_every_metric_and_label_of_the_dashboard_is_exported():
    found = emitted()
    labels = set().union(*found.values())
    exprs, legends = _dashboard_exprs()
    for expr in exprs:
        metrics = set(METRIC.findall(expr))
        assert metrics, "every query reads an offsite metric: %s" % expr
        assert metrics <= set(found), "not exported: %s in %s" % (metrics - set(found), expr)
        assert _labels_used(expr) <= labels, "unknown label in %s" % expr
    assert set(legends) <= labels


def test_every_alert_rule_reads_exported_metrics_and_labels():
    found = emitted()
    labels = set().union(*found.values())
    for rule in _alert_rules():
        metrics = set(METRIC.findall(rule["expr"]))
        assert metrics and metrics <= set(found), (rule["alert"], metrics - set(found))
        assert _labels_used(rule["expr"]) <= labels, rule["alert"]
        texts = " ".join(list(rule.get("annotations", {}).values()) + list(rule["labels"].values()))
        assert set(re.findall(r"\$labels\.([a-z_]+)", texts)) <= labels, rule["alert"]
    names = [r["alert"] for r in _alert_rules()]
    assert "OffsiteNothingOffsite" in names and "OffsiteBackupStale" in names and len(names) == len(set(names))


def test_the_checks_catch_a_metric_that_is_not_exported():
    assert not set(METRIC.findall("offsite_made_up_total > 0")) <= set(emitted())
    assert _labels_used('sum by (host, zone) (offsite_backups{kind="x"})') == {"host", "zone", "kind"}
