"""Local datasets with nothing offsite (module_utils/ops/status/local.py): which ones, and what the policy excludes."""

from __future__ import annotations

from ansible_collections.offsite.zfs.plugins.module_utils.ops.status import local as status_local


class ScriptedZfs:
    def __init__(self, pools):
        self.pools = pools
        self.calls = []

    def snapshot_guids_below(self, pool):
        self.calls.append([pool])
        if pool not in self.pools:
            from ansible_collections.offsite.zfs.plugins.module_utils.zfs import zfs_error
            raise zfs_error("list the snapshots of pool %s" % pool, 1,
                            "cannot open '%s': dataset does not exist" % pool)
        found = {}
        for line in self.pools[pool]:
            name, guid = line.split("\t")
            found.setdefault(name.split("@", 1)[0], set()).add(guid)
        return found


POOLS = {"tank": ["tank/data@a\t1", "tank/data@b\t2", "tank/home/alice@a\t3", "tank/home/cache@a\t4",
                  "tank/scratch@x\t5", "tank/vm/disk1@a\t6", "tank/new@a\t7", "tank/data-restored@b\t2"],
         "rpool": ["rpool/ROOT/debian@install\t8"]}


def test_unprotected_skips_reported_excluded_and_other_pools():
    config = {"defaults": {"exclude": ["tank/scratch", "*/vm"]},
              "datasets": {"tank/data": {}, "tank/home": {"recursive": True, "exclude": ["cache"]}}}
    zfs = ScriptedZfs(POOLS)
    found = status_local.unprotected(zfs, config, reported=["tank/data"], known=["tank/data", "gone/x"],
                                     offsite_guids=["1", "2"])
    assert found == {"tank/home/alice": 1, "tank/new": 1}, "home/alice: in the tree, no backup yet"
    assert "tank/data-restored" not in found, "a restored copy shares a backed-up snapshot's guid"
    assert [c[-1] for c in zfs.calls] == ["gone", "tank"], "only the pools the policy is on; a missing one is skipped"
    assert status_local.unprotected(None, config, [], ["tank/data"]) == {}


def test_excluded_by_defaults_or_by_a_recursive_entry():
    config = {"defaults": {"exclude": ["tank/tmp*"]},
              "datasets": {"tank/home": {"recursive": True, "exclude": ["cache", "*/build"]}}}
    assert status_local.excluded("tank/tmp", config) and status_local.excluded("tank/tmp2/deep", config)
    assert status_local.excluded("tank/home/cache", config) and status_local.excluded("tank/home/cache/x", config)
    assert status_local.excluded("tank/home/bob/build", config)
    assert not status_local.excluded("tank/home/bob", config)
    assert not status_local.excluded("tank/cache", config), "a recursive entry's exclude is relative to its root"
    assert not status_local.excluded("tank/home", config), "the root itself is never excluded"
    flat = {"datasets": {"tank/home": {"exclude": ["cache"]}}}
    assert not status_local.excluded("tank/home/cache", flat), "exclude only means something for a recursive entry"


def test_the_message_says_what_to_do():
    text = status_local.message("tank/new", 1)
    assert text.startswith("tank/new has 1 snapshot on this host but no backup on any provider")
    assert "defaults.exclude" in text and text.endswith("run offsite_backup.")
