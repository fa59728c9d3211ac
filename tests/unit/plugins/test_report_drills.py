"""The fleet report and Prometheus metrics carry the last drill and the sampled-verify coverage (issue 18)."""

from __future__ import annotations

from ansible_collections.offsite.zfs.plugins.filter.offsite_report import fleet_report, to_prometheus

STATUS = {"namespace": "h", "host": "h", "health": "warning", "generated_epoch": 1.0, "problems": [],
          "providers": {"b2": {"stored_bytes": 1}},
          "datasets": {"t/a": {"health": "warning", "providers": {"b2": {"stored_bytes": 1}}, "problems": [],
                               "drills": {"b2": {"epoch": 5.0, "when": "1970-01-01T00:00:05Z", "result": "failed"}},
                               "coverage": {"b2": {"all_verified_within_seconds": 60.0,
                                                   "text": "every chunk verified in the last 1m"}}}}}


def test_prometheus_has_drill_and_coverage_metrics():
    text = to_prometheus(STATUS)
    labels = '{host="h",namespace="h",dataset="t/a",provider="b2"}'
    assert "offsite_drill_timestamp_seconds%s 5.0" % labels in text
    assert "offsite_drill_success%s 0" % labels in text
    assert "offsite_verify_coverage_seconds%s 60.0" % labels in text


def test_fleet_rows_show_drill_and_coverage():
    report = fleet_report({"h": {"offsite_report_status": STATUS}}, ["h"])
    provider = report["rows"][0]["providers"][0]
    assert provider["drill"]["result"] == "failed"
    assert provider["coverage"] == "every chunk verified in the last 1m"
