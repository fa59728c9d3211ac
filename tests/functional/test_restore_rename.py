"""A restore renames its staging dataset once, unmounted; a whole copy left under the staging name
(what `target_busy` keeps) is finished by a rerun that only renames it.

ZFS refusing that rename for two minutes cannot be produced on demand: the staging dataset is never mounted,
so no process can sit in it, and zfs-fuse answers busy there only under heavy load (it did once in CI, when
the staging dataset was still mounted). The state `target_busy` leaves can be built: the whole chain under
`<target>.offsite-partial`, unmounted, marked with the target's name. Here real zfs and rclone build it, and
the rerun goes through `ansible` as users run it.
"""

from __future__ import annotations

import harness
from reliability import same_tree

from ansible_collections.offsite.zfs.plugins.module_utils.ops.restore.target import STAGING_SUFFIX
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import PARTIAL_PROPERTY


def _partial(name: str) -> str:
    return harness.run(["zfs", "get", "-H", "-o", "value", PARTIAL_PROPERTY, name]).stdout.strip()


def test_a_rerun_renames_a_whole_copy_kept_under_the_staging_name_without_receiving_again(lab, ansible):
    ds = lab.pool.create("data")
    mount = lab.pool.mountpoint(ds)
    for number in (1, 2):
        harness.write_data(mount, 500 + number, 256 << 10, "f%d.bin" % number)
        lab.pool.snapshot(ds, "s%d" % number)
        assert lab.backup(ds, "s%d" % number)["providers"]["local"]["status"] == "uploaded"
    target = lab.pool.name + "/copy"
    staging = target + STAGING_SUFFIX
    first = lab.restore(ds, "s2", target=target)
    assert [r["snapshot"] for r in first["received"]] == ["s1", "s2"] and same_tree(lab, ds, target)
    assert _partial(target) == "-", "a finished restore leaves no mark on its target"
    log = open(first["log_file"], encoding="utf-8").read()
    # The staging dataset is received with -u (zfs-fuse has it, unlisted) and never mounted, so its one
    # rename is not refused: zfs-fuse answers busy to renaming a received file system that is mounted.
    assert log.count("run: zfs receive -u %s " % staging) + log.count("run: zfs receive -u %s\n" % staging) == 2
    assert log.count("run: zfs rename ") == 1 and "exit 1 after" not in log, log
    # What a rename refused busy leaves: every link in, under the staging name, marked for the target.
    # zfs-fuse refuses to rename a received file system while it is mounted (dataset is busy); a kept copy is
    # unmounted, as the restore receives with -u and never mounts the staging dataset.
    harness.run(["zfs", "unmount", target])
    harness.run(["zfs", "rename", target, staging])
    harness.run(["zfs", "set", "%s=%s" % (PARTIAL_PROPERTY, target), staging])

    result = ansible.module("offsite_restore", {
        "dataset": ds, "snapshot": "s2", "target": target, "config": str(lab.config_path),
        "identity_file": str(lab.key.path)})
    assert result["_rc"] == 0, result.get("msg")
    assert result["changed"] is True and result.get("resumed_from_staging") is True
    assert result["received"] == [] and result.get("bytes", 0) == 0, "nothing is downloaded or received again"
    assert lab.pool.exists(target) and not lab.pool.exists(staging)
    assert lab.pool.snapshots(target) == ["s1", "s2"] and _partial(target) == "-"
    assert same_tree(lab, ds, target)
