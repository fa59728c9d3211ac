"""A local dataset with snapshots and no backup anywhere is never "ok": offsite_status and the fleet report count it,
unless the policy excludes it (real zfs, rclone)."""

from __future__ import annotations

import harness

from ansible_collections.offsite.zfs.plugins.filter.offsite_report import fleet_report, to_prometheus
from ansible_collections.offsite.zfs.plugins.module_utils._wiring import status_report


def test_a_dataset_with_snapshots_and_no_backup_is_a_problem_unless_excluded(lab):
    ds = lab.pool.create("data")
    harness.write_data(lab.pool.mountpoint(ds), 1, 64 << 10)
    lab.config["datasets"] = {ds: {}}
    assert lab.backup(ds, snapshot="s1", create=True)["failed_providers"] == []
    assert status_report(lab.config, {})["health"] == "ok", "the baseline is healthy"

    other = lab.pool.create("projects")
    lab.pool.snapshot(other, "manual-1")
    lab.pool.snapshot(other, "manual-2")
    lab.pool.create("empty")  # no snapshot: nothing that could be offsite
    scratch = lab.pool.create("scratch")
    lab.pool.snapshot(scratch, "tmp")

    restored = lab.restore(ds, target=lab.pool.name + "/restored")  # a copy of data that is offsite: not flagged
    assert restored["changed"] is True

    status = status_report(lab.config, {})
    assert status["health"] == "warning", status["msg"]
    flagged = sorted(d for d, e in status["datasets"].items() if e["problems"]
                     and e["problems"][0]["code"] == "nothing_offsite")
    assert flagged == sorted([other, scratch]), status["datasets"].keys()
    entry = status["datasets"][other]
    assert entry["health"] == "warning" and entry["backup_count"] == 0 and entry["configured"] is False
    assert entry["problems"][0]["message"].startswith(
        "%s has 2 snapshots on this host but no backup on any provider, and the policy neither lists nor excludes "
        "it: nothing of it is offsite" % other)
    assert status["summary"]["datasets_by_health"]["warning"] == 2
    assert status["summary"]["problems_by_code"]["nothing_offsite"] == 2
    assert "%s/empty" % lab.pool.name not in status["datasets"]
    assert "%s/restored" % lab.pool.name not in status["datasets"]

    # The fleet report and its health figure count them; Prometheus has their health.
    report = fleet_report({"nas1": {"offsite_report_status": status}}, ["nas1"])
    assert report["health"] == "warning" and report["totals"]["rows_by_health"]["warning"] == 2
    metrics = to_prometheus(report)
    assert 'offsite_dataset_health{host="nas1",namespace="testhost",dataset="%s"} 1' % other in metrics

    # Excluded on purpose: defaults.exclude (absolute names or patterns).
    lab.config["defaults"]["exclude"] = [scratch, "%s/proj*" % lab.pool.name]
    quiet = status_report(lab.config, {})
    assert quiet["health"] == "ok" and sorted(quiet["datasets"]) == [ds], quiet["msg"]
