# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for offsite_status results: a fleet report, and Prometheus textfile-collector metrics.

- ``hostvars | offsite.zfs.fleet_report(hosts)``: one dict for a whole fleet (hosts, hosts x datasets
  rows, chart geometry, totals) from each host's registered ``offsite_status`` result.
- ``result | offsite.zfs.to_prometheus``: the Prometheus text exposition format, from one host's
  result, a mapping of host to result, or a fleet_report dict.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List

from ansible_collections.offsite.zfs.plugins.module_utils.common import human_bytes, human_duration

HEALTH_RANK = {"ok": 0, "warning": 1, "critical": 2}
PALETTE = ["#3b6ea8", "#e08a2c", "#5a9e4b", "#8e5ba8", "#c0504d", "#4bacc6", "#9c7c38", "#7f7f7f"]
_SKIP_KEYS = ("invocation", "_ansible_no_log", "_ansible_verbose_always", "_ansible_delegated_vars")


def _plain(value: Any) -> Any:
    """Ansible's lazy/tagged containers as plain dicts, lists and scalars."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def _worst(values: List[str]) -> str:
    return max(values or ["ok"], key=lambda h: HEALTH_RANK.get(h, 2))


def _freshness(entry: Dict[str, Any]) -> str:
    latest = entry.get("latest")
    if not latest:
        return "none"
    max_age = entry.get("max_age_seconds")
    if max_age is None:
        return "no-objective"
    age = latest.get("age_seconds")
    return "fresh" if age is not None and age <= max_age else "stale"


def _host_result(hostvars: Any, host: str, var: str) -> Dict[str, Any]:
    try:
        hvars = hostvars[host]
    except KeyError:
        return {"failed": True, "msg": "%s is not in the inventory" % host}
    value = hvars.get(var) if hasattr(hvars, "get") else None
    if value is None:
        return {"failed": True, "msg": "no offsite_status result (the host was skipped or not reached)"}
    return {k: v for k, v in _plain(value).items() if k not in _SKIP_KEYS}


def fleet_report(hostvars: Any, hosts: List[str], var: str = "offsite_report_status",
                 chart_width: int = 560) -> Dict[str, Any]:
    """Aggregate the offsite_status results registered as `var` on `hosts`."""
    host_entries = []
    rows = []
    bars = []
    providers_seen: List[str] = []
    for host in [str(h) for h in hosts]:
        result = _host_result(hostvars, host, var)
        failed = bool(result.get("failed") or result.get("unreachable")) or "health" not in result
        health = "critical" if failed else str(result.get("health", "critical"))
        summary = result.get("summary") or {}
        entry = {
            "host": host, "namespace": result.get("namespace", host), "health": health, "failed": failed,
            "msg": str(result.get("msg", "")), "generated": result.get("generated"),
            "datasets": summary.get("datasets", 0), "backups": summary.get("backups", 0),
            "stored_bytes": summary.get("stored_bytes", 0) or 0,
            "stored_text": human_bytes(summary.get("stored_bytes", 0) or 0),
            "problems": summary.get("problems", 0), "running": result.get("running") or [],
            "host_problems": result.get("host_problems") or [], "providers": result.get("providers") or {},
            "status": None if failed else result,
        }
        host_entries.append(entry)
        if failed:
            rows.append({"host": host, "namespace": entry["namespace"], "dataset": "", "health": "critical",
                         "freshness": "none", "latest_snapshot": None, "latest_created": None, "age_seconds": None,
                         "age_text": "unknown", "max_age_text": "", "chain_length": None, "stored_bytes": 0,
                         "stored_text": "", "backups": 0, "providers": [],
                         "problems": [{"code": "status_failed", "severity": "critical",
                                       "message": "offsite_status failed on %s: %s" % (host, entry["msg"])}]})
            continue
        for dataset, ds in sorted((result.get("datasets") or {}).items()):
            latest = ds.get("latest") or {}
            providers = []
            for name, report in sorted((ds.get("providers") or {}).items()):
                plat = report.get("latest") or {}
                providers.append({"name": name, "chain_length": report.get("chain_length"),
                                  "stored_bytes": report.get("stored_bytes", 0),
                                  "stored_text": human_bytes(report.get("stored_bytes", 0) or 0),
                                  "latest_snapshot": plat.get("snapshot"), "fresh": report.get("fresh"),
                                  "drill": (ds.get("drills") or {}).get(name),  # offsite_drill (ops/status/drills.py)
                                  "coverage": ((ds.get("coverage") or {}).get(name) or {}).get("text")})
            max_age = ds.get("max_age_seconds")
            rows.append({
                "host": host, "namespace": entry["namespace"], "dataset": dataset, "health": ds.get("health", "ok"),
                "freshness": _freshness(ds), "latest_snapshot": latest.get("snapshot"),
                "latest_created": latest.get("created"), "age_seconds": ds.get("age_seconds"),
                "age_text": human_duration(ds.get("age_seconds")) if latest else "never",
                "max_age_text": human_duration(max_age) if max_age is not None else "",
                "chain_length": ds.get("chain_length"), "stored_bytes": ds.get("stored_bytes", 0),
                "stored_text": human_bytes(ds.get("stored_bytes", 0) or 0), "backups": ds.get("backup_count", 0),
                "providers": providers,
                "problems": [{"code": p.get("code"), "severity": p.get("severity"), "message": p.get("message")}
                             for p in ds.get("problems") or []],
            })
        if not result.get("datasets"):  # a host with nothing to show is a row too, never "ok" by omission
            rows.append({"host": host, "namespace": entry["namespace"], "dataset": "", "health": health,
                         "freshness": "none", "latest_snapshot": None, "latest_created": None, "age_seconds": None,
                         "age_text": "never", "max_age_text": "", "chain_length": None, "stored_bytes": 0,
                         "stored_text": "", "backups": 0, "providers": [],
                         "problems": [{"code": p.get("code"), "severity": p.get("severity"),
                                       "message": p.get("message")} for p in entry["host_problems"]]})
        for name, info in sorted((result.get("providers") or {}).items()):
            if name not in providers_seen:
                providers_seen.append(name)
            bars.append({"host": host, "provider": name, "bytes": (info or {}).get("stored_bytes") or 0})
    # Chart geometry: one horizontal bar per host and provider.
    label_width, bar_height, gap, top = 220, 20, 6, 10
    biggest = max([b["bytes"] for b in bars] or [0]) or 1
    for position, item in enumerate(bars):
        item["label"] = "%s / %s" % (item["host"], item["provider"])
        item["text"] = human_bytes(item["bytes"])
        item["x"] = label_width
        item["y"] = top + position * (bar_height + gap)
        item["width"] = max(1, int(round(chart_width * item["bytes"] / float(biggest)))) if item["bytes"] else 0
        item["height"] = bar_height
        item["color"] = PALETTE[providers_seen.index(item["provider"]) % len(PALETTE)]
    chart = {"bars": bars, "width": label_width + chart_width + 120,
             "height": top * 2 + max(1, len(bars)) * (bar_height + gap), "label_width": label_width,
             "legend": [{"provider": p, "color": PALETTE[i % len(PALETTE)]} for i, p in enumerate(providers_seen)]}
    by_health = {h: sum(1 for r in rows if r["health"] == h) for h in HEALTH_RANK}
    return {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "health": _worst([h["health"] for h in host_entries]),
        "hosts": host_entries,
        "rows": rows,
        "chart": chart,
        "totals": {"hosts": len(host_entries), "failed_hosts": sum(1 for h in host_entries if h["failed"]),
                   "rows": len(rows), "rows_by_health": by_health,
                   "stored_bytes": sum(h["stored_bytes"] for h in host_entries),
                   "stored_text": human_bytes(sum(h["stored_bytes"] for h in host_entries)),
                   "problems": sum(len(r["problems"]) for r in rows)},
    }


# -- Prometheus ------------------------------------------------------------------------------------
def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: Any) -> str:
    return "{%s}" % ",".join('%s="%s"' % (k, _label(v)) for k, v in labels.items() if v is not None)


METRICS = [
    ("offsite_host_health", "Host health: 0 ok, 1 warning, 2 critical."),
    ("offsite_status_timestamp_seconds", "When offsite_status produced the report."),
    ("offsite_dataset_health", "Dataset health: 0 ok, 1 warning, 2 critical."),
    ("offsite_latest_backup_timestamp_seconds", "Creation time of the newest restorable snapshot."),
    ("offsite_latest_backup_age_seconds", "Age of the newest restorable snapshot when the report was made."),
    ("offsite_max_age_seconds", "The dataset's freshness objective."),
    ("offsite_chain_length", "Backups needed to restore the newest restorable snapshot."),
    ("offsite_stored_bytes", "Bytes stored on the provider for the dataset."),
    ("offsite_backups", "Backups of the dataset on the provider."),
    ("offsite_problems", "Problems by code and severity."),
    ("offsite_running_operations", "Operations running on the host."),
    ("offsite_drill_timestamp_seconds", "When the last restore drill of the dataset from the provider started."),
    ("offsite_drill_success", "Whether the last restore drill passed: 1 passed, 0 failed."),
    ("offsite_verify_coverage_seconds", "Sampled verify: every chunk was verified within this many seconds."),
]


def _statuses(data: Any) -> Dict[str, Dict[str, Any]]:
    data = _plain(data)
    if isinstance(data, dict) and isinstance(data.get("hosts"), list) and "rows" in data:
        return {h["host"]: h["status"] for h in data["hosts"] if h.get("status")}
    if isinstance(data, dict) and "datasets" in data and "health" in data:
        return {str(data.get("namespace") or data.get("host") or "localhost"): data}
    if isinstance(data, dict):
        return {str(k): v for k, v in data.items() if isinstance(v, dict) and "datasets" in v}
    raise ValueError("to_prometheus expects an offsite_status result, a mapping of host to result, or a "
                     "fleet_report")


def to_prometheus(data: Any) -> str:
    """The Prometheus text format (for node_exporter's textfile collector)."""
    samples: Dict[str, List[str]] = {metric[0]: [] for metric in METRICS}
    for host, result in sorted(_statuses(data).items()):
        ns = result.get("namespace")
        samples["offsite_host_health"].append("%s %d" % (_labels(host=host, namespace=ns),
                                                         HEALTH_RANK.get(result.get("health"), 2)))
        if result.get("generated_epoch") is not None:
            samples["offsite_status_timestamp_seconds"].append("%s %s" % (_labels(host=host, namespace=ns),
                                                                          result["generated_epoch"]))
        samples["offsite_running_operations"].append("%s %d" % (_labels(host=host, namespace=ns),
                                                                len(result.get("running") or [])))
        counts: Dict[tuple, int] = {}
        for item in result.get("problems") or []:
            key = (item.get("dataset") or "", item.get("code"), item.get("severity"))
            counts[key] = counts.get(key, 0) + 1
        for (dataset, code, severity), count in sorted(counts.items()):
            samples["offsite_problems"].append("%s %d" % (
                _labels(host=host, namespace=ns, dataset=dataset, code=code, severity=severity), count))
        for dataset, ds in sorted((result.get("datasets") or {}).items()):
            base = dict(host=host, namespace=ns, dataset=dataset)
            samples["offsite_dataset_health"].append("%s %d" % (_labels(**base), HEALTH_RANK.get(ds.get("health"), 2)))
            if ds.get("max_age_seconds") is not None:
                samples["offsite_max_age_seconds"].append("%s %s" % (_labels(**base), ds["max_age_seconds"]))
            for provider, report in sorted((ds.get("providers") or {}).items()):
                labels = _labels(**base, provider=provider)
                latest = report.get("latest") or {}
                if latest.get("created_epoch"):
                    samples["offsite_latest_backup_timestamp_seconds"].append("%s %s" % (
                        labels, latest["created_epoch"]))
                    samples["offsite_latest_backup_age_seconds"].append("%s %s" % (labels, latest["age_seconds"]))
                    samples["offsite_chain_length"].append("%s %s" % (labels, latest.get("chain_length") or 0))
                samples["offsite_stored_bytes"].append("%s %d" % (labels, report.get("stored_bytes") or 0))
                samples["offsite_backups"].append("%s %d" % (labels, report.get("backup_count") or 0))
                drill = (ds.get("drills") or {}).get(provider)
                if drill and drill.get("epoch"):
                    samples["offsite_drill_timestamp_seconds"].append("%s %s" % (labels, drill["epoch"]))
                    samples["offsite_drill_success"].append("%s %d" % (labels, drill.get("result") == "passed"))
                within = ((ds.get("coverage") or {}).get(provider) or {}).get("all_verified_within_seconds")
                if within is not None:
                    samples["offsite_verify_coverage_seconds"].append("%s %s" % (labels, within))
    lines = []
    for name, help_text in METRICS:
        lines.append("# HELP %s %s" % (name, help_text))
        lines.append("# TYPE %s gauge" % name)
        lines.extend("%s%s" % (name, sample) for sample in samples[name])
    return "\n".join(lines) + "\n"


class FilterModule:
    def filters(self) -> Dict[str, Any]:
        return {"fleet_report": fleet_report, "to_prometheus": to_prometheus}
