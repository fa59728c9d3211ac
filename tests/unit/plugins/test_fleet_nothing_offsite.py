"""The fleet report never calls a host with nothing offsite "ok" by leaving it out of its rows and counts."""

from __future__ import annotations

from ansible_collections.offsite.zfs.plugins.filter.offsite_report import fleet_report


def _status(health, datasets, host_problems=()):
    return {"health": health, "namespace": "ns", "datasets": datasets, "host_problems": list(host_problems),
            "summary": {"datasets": len(datasets), "backups": sum(d.get("backup_count", 0) for d in datasets.values()),
                        "stored_bytes": 0, "problems": len(host_problems)}, "providers": {}}


def test_hosts_with_nothing_offsite_are_rows_and_counted_critical():
    empty = {"code": "nothing_offsite", "severity": "critical", "message": "No provider holds any backup of this host"}
    good = {"tank/data": {"health": "ok", "backup_count": 2, "latest": {"snapshot": "s1"}, "providers": {}}}
    hostvars = {"web%d" % i: {"offsite_report_status": _status("critical", {}, [empty])} for i in range(28)}
    hostvars["nas1"] = {"offsite_report_status": _status("ok", good)}
    hostvars["nas2"] = {"offsite_report_status": _status("ok", good)}
    report = fleet_report(hostvars, sorted(hostvars))
    assert report["health"] == "critical"
    assert report["totals"]["rows_by_health"] == {"ok": 2, "warning": 0, "critical": 28}
    row = next(r for r in report["rows"] if r["host"] == "web0")
    assert row["dataset"] == "" and row["problems"][0]["code"] == "nothing_offsite"
