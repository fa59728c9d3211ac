"""Living with a snapshot manager: Debian's real sanoid manages the same dataset as offsite.zfs.

sanoid is run as a user would (`sanoid --cron --configdir=DIR`, its config file in the test's temp
dir) with a tight template (hourly = 1, autosnap and autoprune on). sanoid decides from each
snapshot's `creation` property and the current time, so the test moves sanoid's clock forward
(a two-line Perl module in PERL5OPT overrides `time`) instead of waiting hours. The snapshots it
takes and destroys are real, on the real pool; its `zfs destroy` of our held base fails
"dataset is busy", sanoid warns and carries on.

zfs-fuse's `zfs get` has no `-t`, which sanoid's snapshot listing (`zfs get -Hrpt snapshot creation`)
uses: where that is so (detected), sanoid finds, first in its PATH, a four-line adapter that runs
the real `zfs get -Hrp creation` and keeps the snapshot lines. Every other command is the real zfs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import List

import harness
import pytest

from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup.converge import converge_dataset
from ansible_collections.offsite.zfs.plugins.module_utils.ops.prune.run import prune_dataset

SANOID = shutil.which("sanoid") or "/usr/sbin/sanoid"

pytestmark = pytest.mark.skipif(not os.path.exists(SANOID), reason="sanoid is not installed (apt-get install sanoid)")

SHIFT_CLOCK = """package ShiftClock;
BEGIN { *CORE::GLOBAL::time = sub () { CORE::time() + ($ENV{SANOID_TEST_SHIFT} || 0) }; }
1;
"""


ADAPTER = """#!/bin/sh
if [ "$1" = get ] && [ "$2" = -Hrpt ] && [ "$3" = snapshot ]; then
    shift 3; %(zfs)s get -Hrp "$@" | awk -F '\\t' 'index($1, "@")'; exit 0
fi
exec %(zfs)s "$@"
"""


def zfs_get_has_types() -> bool:
    proc = harness.run(["zfs", "get", "-H", "-t", "snapshot", "-o", "name", "creation"], check=False)
    return "invalid option" not in proc.stderr


def sanoid(tmp: Path, dataset: str, hours: int, action: str = "--cron") -> subprocess.CompletedProcess:
    """One sanoid run, its clock `hours` ahead of the real one. `--cron` takes, then prunes from the snapshot
    list it read when it started; `--prune-snapshots` is what Debian's sanoid-prune.service runs after it."""
    conf = tmp / "sanoid"
    conf.mkdir(exist_ok=True)
    (conf / "sanoid.conf").write_text(
        "[%s]\n\tuse_template = tight\n\n[template_tight]\n\tfrequently = 0\n\thourly = 1\n\tdaily = 0\n"
        "\tweekly = 0\n\tmonthly = 0\n\tyearly = 0\n\tautosnap = yes\n\tautoprune = yes\n" % dataset)
    (conf / "ShiftClock.pm").write_text(SHIFT_CLOCK)
    env = dict(os.environ, PERL5OPT="-I%s -MShiftClock" % conf, SANOID_TEST_SHIFT=str(hours * 3600), TZ="UTC")
    if not zfs_get_has_types():
        bin_dir = conf / "bin"
        bin_dir.mkdir(exist_ok=True)
        (bin_dir / "zfs").write_text(ADAPTER % {"zfs": shutil.which("zfs")})
        (bin_dir / "zfs").chmod(0o700)
        env["PATH"] = "%s:%s" % (bin_dir, env.get("PATH", ""))
    proc = subprocess.run([SANOID, action, "--verbose", "--configdir=%s" % conf, "--cache-dir=%s" % (tmp / "cache"),
                           "--run-dir=%s" % (tmp / "run")], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def autosnaps(lab, ds: str) -> List[str]:
    return sorted(s for s in lab.pool.snapshots(ds) if s.startswith("autosnap_"))


def after_creation_of(name: str) -> None:
    """Wait until the clock has passed the creation second of snapshot name: sanoid orders snapshots by their
    creation property (whole seconds), so a snapshot taken within the same second would tie with it."""
    created = int(harness.run(["zfs", "get", "-H", "-p", "-o", "value", "creation", name]).stdout.strip())
    while time.time() < created + 1.05:
        time.sleep(0.05)


def userrefs(name: str) -> int:
    return int(harness.run(["zfs", "get", "-H", "-p", "-o", "value", "userrefs", name]).stdout.strip())


def test_sanoid_prunes_around_the_held_base_and_backups_stay_incremental(lab):
    ds = lab.pool.create("data")
    lab.config["datasets"] = {ds: {"snapshot_pattern": "autosnap_*_hourly", "full_every": "30d"}}
    lab.config["defaults"]["prune_local_snapshots"] = True
    harness.write_data(lab.pool.mountpoint(ds), 1, 96 << 10, "a.bin")

    sanoid(lab.tmp, ds, 0)
    (first,) = autosnaps(lab, ds)
    assert first.endswith("_hourly")
    run = converge_dataset(lab.settings(ds))
    assert run["snapshot"] == first and run["snapshot_created"] is False, "snapshot_pattern takes no snapshot"
    assert run["providers"]["local"]["kind"] == "full"
    assert userrefs("%s@%s" % (ds, first)) == 1

    # Two hours later: sanoid takes a new hourly and wants the old one gone; our hold keeps it.
    harness.write_data(lab.pool.mountpoint(ds), 2, 96 << 10, "b.bin")
    after_creation_of("%s@%s" % (ds, first))
    sanoid(lab.tmp, ds, 2)  # takes the new hourly
    out = sanoid(lab.tmp, ds, 2, "--prune-snapshots")  # then it prunes
    assert "could not remove %s@%s" % (ds, first) in out.stderr, out.stdout + out.stderr
    snaps = autosnaps(lab, ds)
    assert first in snaps and len(snaps) == 2, snaps
    second = next(s for s in snaps if s != first)
    run = converge_dataset(lab.settings(ds))
    entry = run["providers"]["local"]
    assert run["snapshot"] == second and entry["kind"] == "incremental" and entry["base"] == first
    assert userrefs("%s@%s" % (ds, first)) == 0 and userrefs("%s@%s" % (ds, second)) == 1

    # Two hours later again: sanoid prunes the old base now that it is free, and keeps the held one.
    harness.write_data(lab.pool.mountpoint(ds), 3, 96 << 10, "c.bin")
    after_creation_of("%s@%s" % (ds, second))
    sanoid(lab.tmp, ds, 4)
    sanoid(lab.tmp, ds, 4, "--prune-snapshots")
    snaps = autosnaps(lab, ds)
    assert first not in snaps and second in snaps and len(snaps) == 2, snaps
    third = next(s for s in snaps if s != second)
    run = converge_dataset(lab.settings(ds))
    entry = run["providers"]["local"]
    assert run["snapshot"] == third and entry["kind"] == "incremental" and entry["base"] == second

    # Our prune never destroys a snapshot it did not create, however hard the keep rules are.
    pruned = prune_dataset(lab.settings(ds), check_mode=False, keep={"last": 1})
    assert pruned["local"]["deleted"] == [] and set(pruned["local"]["ignored"]) == set(autosnaps(lab, ds))
    assert autosnaps(lab, ds) == snaps
