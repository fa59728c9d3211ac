"""Property tests of the retention decisions (pure functions over backup metadata)."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.offsite.zfs.plugins.module_utils.ops.prune import plan
from ansible_collections.offsite.zfs.plugins.module_utils.ops.prune.plan import Item, LocalSnapshot
from ansible_collections.offsite.zfs.plugins.module_utils.ops.prune.run import parse_mtime

START = 1_767_225_600  # 2026-01-01T00:00:00Z
GAPS = st.sampled_from([60, 900, 3600, 5400, 6 * 3600, 86400, 2 * 86400, 7 * 86400, 31 * 86400, 200 * 86400])


@st.composite
def histories(draw):
    """Backups of one dataset on one provider: fulls, incrementals (from any earlier snapshot, or from a
    snapshot the provider never had), second backups of a snapshot, damaged ones."""
    count = draw(st.integers(min_value=0, max_value=20))
    created = START
    items = []
    for index in range(count):
        created += draw(GAPS)
        guid = "g%d" % index
        copies = draw(st.integers(min_value=1, max_value=2))
        for copy in range(copies):
            kind = "full" if index == 0 else draw(st.sampled_from(["full", "incremental", "incremental",
                                                                   "incremental"]))
            base = None
            if kind == "incremental":
                choice = draw(st.integers(min_value=-1, max_value=index - 1))
                base = "missing" if choice == -1 else "g%d" % draw(st.sampled_from(
                    [index - 1, choice]))
            intact = draw(st.integers(min_value=0, max_value=19)) > 0
            items.append(Item("s%d+%s+%d" % (index, kind, copy), guid, "s%d" % index, created, index + 1, kind,
                              base, intact))
    return items


KEEPS = st.fixed_dictionaries({}, optional={rule: st.integers(min_value=0, max_value=6) for rule in plan.RULES})


def restorable(items, guid):
    return plan.chain_of(items, guid) is not None


def kept_items(items, decision):
    return [i for i in items if i.backup_id in decision.keep]


@settings(max_examples=150, deadline=None, database=None)
@given(histories(), KEEPS)
def test_every_backup_is_kept_deleted_or_left_as_damaged_exactly_once(items, keep):
    decision = plan.plan(items, keep)
    ids = [i.backup_id for i in items]
    sets = [set(decision.keep), set(decision.delete), set(decision.damaged)]
    assert sets[0] | sets[1] | sets[2] == set(ids)
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert all(not i.intact for i in items if i.backup_id in decision.damaged)


@settings(max_examples=150, deadline=None, database=None)
@given(histories(), KEEPS)
def test_pruning_never_breaks_a_kept_chain(items, keep):
    decision = plan.plan(items, keep)
    if not plan.rules_of(keep):
        return  # nothing is deleted at all (test_no_rules_deletes_nothing)
    kept = kept_items(items, decision)
    for item in kept:
        chain = plan.chain_of(kept, item.guid)
        assert chain is not None, "kept %s cannot be restored from what is kept" % item.backup_id
        if item.kind == "incremental":
            assert any(k.guid == item.base_guid for k in kept), "the base of %s was deleted" % item.backup_id


@settings(max_examples=150, deadline=None, database=None)
@given(histories(), KEEPS)
def test_what_the_rules_select_stays_restorable(items, keep):
    decision = plan.plan(items, keep)
    kept = kept_items(items, decision)
    rules = plan.rules_of(keep)
    candidates = sorted({(i.created, i.txg, i.guid) for i in items if restorable(items, i.guid)}, reverse=True)
    if not candidates:
        return
    if not rules:
        assert decision.delete == {}
        return
    wanted = {candidates[0][2]}  # the newest, always
    wanted |= {entry[2] for entry in candidates[:rules.get("last", 0)]}
    formats = {"hourly": "%Y-%m-%dT%H", "daily": "%Y-%m-%d", "weekly": "%G-W%V", "monthly": "%Y-%m", "yearly": "%Y"}
    for rule, fmt in formats.items():
        buckets = {}
        for created, _txg, guid in candidates:  # newest first: the first one seen per bucket is the newest
            buckets.setdefault(time.strftime(fmt, time.gmtime(created)), guid)
        newest_buckets = sorted(buckets, reverse=True)[:rules.get(rule, 0)]
        wanted |= {buckets[b] for b in newest_buckets}
    for guid in wanted:
        assert restorable(kept, guid), "the rules keep %s but it cannot be restored after pruning" % guid


@settings(max_examples=150, deadline=None, database=None)
@given(histories(), KEEPS)
def test_only_what_is_needed_is_kept_and_pruning_twice_deletes_nothing_more(items, keep):
    decision = plan.plan(items, keep)
    kept = kept_items(items, decision)
    again = plan.plan(kept, keep)
    assert again.delete == {}
    if plan.rules_of(keep):
        # Every kept backup is selected by a rule or the base of a kept one.
        kept_snapshots = {i.snapshot for i in kept}
        for reasons in decision.keep.values():
            assert reasons
            for reason in reasons:
                if reason.startswith("base of kept "):
                    assert reason[len("base of kept "):] in kept_snapshots


@settings(max_examples=100, deadline=None, database=None)
@given(histories())
def test_no_rules_deletes_nothing(items):
    assert plan.plan(items, {}).delete == {}
    assert plan.plan(items, {"daily": 0}).delete == {}


def test_a_chain_is_kept_whole_and_an_old_one_goes():
    day = 86400
    items = [Item("a", "g1", "s1", START, 1, "full"), Item("b", "g2", "s2", START + day, 2, "incremental", "g1"),
             Item("c", "g3", "s3", START + 2 * day, 3, "full"),
             Item("d", "g4", "s4", START + 3 * day, 4, "incremental", "g3")]
    decision = plan.plan(items, {"last": 1})
    assert set(decision.keep) == {"c", "d"}
    assert decision.keep["c"] == ["base of kept s4"]
    assert decision.delete == {"a": "not selected by keep (last 1)", "b": "not selected by keep (last 1)"}


def test_orphans_and_redundant_copies_are_named():
    items = [Item("full1", "g1", "s1", START, 1, "full"), Item("inc1", "g1", "s1", START, 1, "incremental", "g0"),
             Item("orphan", "g2", "s2", START + 10, 2, "incremental", "gone")]
    decision = plan.plan(items, {"last": 5})
    assert decision.delete["orphan"].startswith("cannot be restored")
    assert decision.delete["inc1"] == "redundant: s1 is kept through full1"
    assert set(decision.keep) == {"full1"}


def test_parse_mtime():
    assert parse_mtime("2026-01-01T00:00:00Z") == START
    assert parse_mtime("2026-01-01T01:00:00.123456789+01:00") == START
    assert parse_mtime("2025-12-31T19:00:00-05:00") == START
    assert parse_mtime("yesterday") is None


@settings(max_examples=100, deadline=None, database=None)
@given(st.lists(st.tuples(st.booleans(), GAPS), max_size=20), KEEPS, st.data())
def test_local_pruning_touches_only_our_snapshots_and_never_protected_ones(spec, keep, data):
    created = START
    snaps = []
    for index, (ours, gap) in enumerate(spec):
        created += gap
        snaps.append(LocalSnapshot("snap%d" % index, created, index + 1, ours))
    protected = {s.name: "protected" for s in snaps if data.draw(st.booleans())}
    kept, deleted = plan.plan_local(snaps, keep, protected)
    for snap in snaps:
        if not snap.ours:
            assert snap.name not in kept and snap.name not in deleted
        else:
            assert (snap.name in kept) != (snap.name in deleted)
    assert not set(deleted) & set(protected)
    ours = [s for s in snaps if s.ours]
    if ours and plan.rules_of(keep):
        assert max(ours, key=lambda s: s.txg).name in kept
