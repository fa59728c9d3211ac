"""Schedules that hold: a fake clock drives weeks of runs through schedule.due (and converge.due).

Every scenario would fail with the 1.0.0 rule (due when age >= every): hourly runs crept an hour
later whenever a run came a few seconds earlier in the hour than the day before, and a daily timer
with a randomized delay skipped every other day.
"""

from __future__ import annotations

import calendar
import random
import time
from typing import Callable, List, Optional

import pytest

from ansible_collections.offsite.zfs.plugins.module_utils import schedule
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError
from ansible_collections.offsite.zfs.plugins.module_utils.ops.backup import converge
from ansible_collections.offsite.zfs.plugins.module_utils.zfs import Snapshot

DAY = 86400.0
HOUR = 3600.0
START = float(calendar.timegm((2026, 3, 2, 0, 0, 0)))  # a Monday, 00:00 UTC


def utc(_moment: float) -> float:
    return 0.0


def simulate(plan: schedule.Schedule, runs: List[float], offset: Callable[[float], float] = utc,
             latest: Optional[float] = None) -> List[float]:
    """The moments the runs take a snapshot (each run sees the newest snapshot so far)."""
    taken = []
    for moment in runs:
        is_due, _why = schedule.due(plan, latest, moment, offset)
        if is_due:
            latest = float(int(moment))  # zfs keeps creation in whole seconds
            taken.append(latest)
    return taken


def hourly(weeks: int, jitter: Callable[[int], float]) -> List[float]:
    return [START + i * HOUR + jitter(i) for i in range(weeks * 7 * 24)]


def daily(weeks: int, at: float, jitter: Callable[[int], float]) -> List[float]:
    return [START + i * DAY + at + jitter(i) for i in range(weeks * 7)]


def wall_day_and_time(moment: float, offset: Callable[[float], float] = utc):
    wall = moment + offset(moment)
    return int(wall // DAY), wall % DAY


def assert_one_per_day_at(taken: List[float], days: int, low: float, high: float,
                          offset: Callable[[float], float] = utc) -> None:
    seen = [wall_day_and_time(t, offset) for t in taken]
    day_numbers = [d for d, _wall in seen]
    assert len(taken) == days, "one snapshot per day, got %d in %d days" % (len(taken), days)
    assert day_numbers == list(range(day_numbers[0], day_numbers[0] + days)), "no day skipped, none twice"
    for _day, seconds in seen:
        assert low <= seconds <= high, "snapshot at %s, outside the window" % time.strftime(
            "%H:%M:%S", time.gmtime(seconds))


def test_hourly_runs_take_the_daily_snapshot_at_the_same_time_every_day():
    # Runs at the top of the hour, a few seconds late, a little less late on some days (a cron job,
    # or a timer with AccuracySec). The 1.0.0 rule moved the snapshot one hour later each such day.
    rng = random.Random(1)
    plan = schedule.make("1d", "02:00Z")
    taken = simulate(plan, hourly(6, lambda i: rng.uniform(1, 40)), latest=START - 22 * HOUR)
    assert_one_per_day_at(taken, 6 * 7, 2 * HOUR, 2 * HOUR + 41)


def test_hourly_timer_with_randomized_delay_and_no_at_snapshots_right_after_midnight():
    # The role's default timer: OnCalendar=hourly, RandomizedDelaySec=10m; every 1d with no `at`.
    rng = random.Random(2)
    plan = schedule.make("1d", None)
    runs = hourly(4, lambda i: rng.uniform(0, 600))
    taken = simulate(plan, runs, latest=START - 12 * HOUR)
    assert_one_per_day_at(taken, 4 * 7, 0, 600)


def test_daily_timer_with_randomized_delay_skips_no_day():
    # OnCalendar=02:00, RandomizedDelaySec=1h: runs wander over an hour. With age >= 1d, a run that
    # came 40 minutes earlier than yesterday's was not due: every other day was skipped (48 h gaps).
    rng = random.Random(3)
    plan = schedule.make("1d", "02:00Z")
    taken = simulate(plan, daily(8, 2 * HOUR, lambda i: rng.uniform(0, HOUR)))
    assert_one_per_day_at(taken, 8 * 7, 2 * HOUR, 3 * HOUR)
    gaps = [b - a for a, b in zip(taken, taken[1:])]
    assert max(gaps) < 25 * HOUR, "max_age: 36h is never tripped"


def test_daily_timer_without_at_also_holds():
    rng = random.Random(4)
    plan = schedule.make("1d")
    taken = simulate(plan, daily(8, 3 * HOUR, lambda i: rng.uniform(0, 2 * HOUR)))
    assert_one_per_day_at(taken, 8 * 7, 3 * HOUR, 5 * HOUR)


def test_a_controller_cron_on_a_skewed_clock_counts_for_its_day():
    # The controller's cron fires at 02:00 by its clock; the host's clock is up to 5 minutes off either
    # way, so some runs reach the host at 01:55. The default slack (15 min for 1d) covers that.
    rng = random.Random(5)
    plan = schedule.make("1d", "02:00Z")
    assert plan.slack == 900
    taken = simulate(plan, daily(4, 2 * HOUR, lambda i: rng.uniform(-300, 300)))
    assert_one_per_day_at(taken, 4 * 7, 2 * HOUR - 300, 2 * HOUR + 300)


def test_every_6h_with_hourly_runs_takes_four_snapshots_a_day_on_the_quarter_days():
    rng = random.Random(6)
    plan = schedule.make("6h")
    taken = simulate(plan, hourly(2, lambda i: rng.uniform(0, 300)), latest=START - HOUR)
    assert len(taken) == 2 * 7 * 4
    assert {int(wall_day_and_time(t)[1] // HOUR) for t in taken} == {0, 6, 12, 18}


def test_weekly_slots_start_on_monday_at_the_given_time():
    plan = schedule.make("1w", "03:00Z")
    taken = simulate(plan, hourly(5, lambda i: 5.0), latest=START - DAY)
    assert len(taken) == 5
    for moment in taken:
        assert time.gmtime(moment).tm_wday == 0 and time.strftime("%H:%M:%S", time.gmtime(moment)) == "03:00:05"


def test_local_time_of_day_holds_across_a_dst_change():
    # The host is at UTC+1, then UTC+2 from day 10 at 01:00 UTC (02:00 local becomes 03:00, as in
    # Europe): `at: "02:00"` stays at 02:00 on the wall clock; on the day itself 02:00 does not exist
    # and the first run after it (03:00) takes the snapshot.
    change = START + 10 * DAY + HOUR

    def offset(moment: float) -> float:
        return 2 * HOUR if moment >= change else HOUR

    rng = random.Random(7)
    plan = schedule.make("1d", "02:00")
    runs = [START - HOUR + i * HOUR + rng.uniform(0, 30) for i in range(3 * 7 * 24)]  # hourly, a little late
    taken = simulate(plan, runs, offset, latest=runs[0] - 22 * HOUR)
    assert len(taken) == 3 * 7
    walls = [wall_day_and_time(t, offset) for t in taken]
    assert [d for d, _wall in walls] == list(range(walls[0][0], walls[0][0] + 3 * 7)), "no day skipped, none twice"
    hours = [int(seconds // HOUR) for _d, seconds in walls]
    assert hours == [2] * 10 + [3] + [2] * 10


def test_two_runs_a_minute_apart_around_a_slot_start_take_one_snapshot():
    plan = schedule.make("1d", "02:00Z")
    boundary = START + 2 * HOUR - plan.slack
    assert simulate(plan, [boundary - 30, boundary + 30]) == [boundary - 30]
    assert schedule.due(plan, boundary - 30, boundary + 30, utc)[0] is False
    assert schedule.due(plan, boundary - 30, boundary + plan.slack, utc)[0] is True


def test_first_snapshot_off_schedule_then_steady():
    # Deployed at 15:07: the first snapshot comes at once, the next at 02:00 the next morning.
    plan = schedule.make("1d", "02:00Z")
    runs = [START + 15 * HOUR + 420] + hourly(2, lambda i: 10.0)[16:]
    taken = simulate(plan, runs)
    assert taken[0] == START + 15 * HOUR + 420
    assert_one_per_day_at(taken[1:], 13, 2 * HOUR, 2 * HOUR + 10)


def test_not_due_says_when_it_will_be():
    plan = schedule.make("1d", "02:00Z")
    latest = START + 2 * HOUR + 180
    is_due, why = schedule.due(plan, latest, latest + 3 * HOUR, utc)
    assert is_due is False
    assert why == "3h old (every 1d at 02:00Z; next due from 2026-03-03T01:45Z)"
    assert schedule.next_due(plan, latest, utc) == START + DAY + 2 * HOUR - 900


def test_every_zero_is_always_due():
    plan = schedule.make(0)
    assert schedule.due(plan, START, START + 1, utc)[0] is True


def test_default_slack_is_a_tenth_of_every_at_most_15_minutes():
    assert schedule.make("1h").slack == 360
    assert schedule.make("10m").slack == 60
    assert schedule.make("1d").slack == 900
    assert schedule.make("1d", slack="1h").slack == 3600


@pytest.mark.parametrize("at, parsed", [("02:00", (7200.0, False)), ("2:05", (7500.0, False)),
                                        ("23:59:30Z", (86370.0, True)), ("00:00 UTC", (0.0, True))])
def test_parse_at(at, parsed):
    assert schedule.parse_at(at) == parsed


@pytest.mark.parametrize("at", ["24:00", "2", "02:60", "02:00\n", " 02:00", "02:00+01", 200])
def test_bad_at_is_one_sentence(at):
    with pytest.raises(OffsiteError) as caught:
        schedule.make("1d", at, where="tank/data")
    assert caught.value.code == "bad_value"
    assert "at of tank/data" in caught.value.message and "02:00" in caught.value.message


def test_slack_must_be_shorter_than_every():
    with pytest.raises(OffsiteError) as caught:
        schedule.make("1h", slack="1h", where="tank/data")
    assert caught.value.message == ("The slack of tank/data (1h) must be shorter than every (1h); "
                                    "a few minutes is usual.")


def _snap(name: str, creation: float, txg: int) -> Snapshot:
    return Snapshot(dataset="tank/data", name=name, guid=txg, createtxg=txg, creation=int(creation))


def test_converge_due_uses_the_schedule_and_ignores_other_snapshots():
    latest = START + 2 * HOUR + 20
    snaps = [_snap("offsite-20260302T020020Z", latest, 2), _snap("manual", latest + 7 * HOUR, 3)]
    plan = schedule.make("1d", "02:00Z")
    # 23h59m later: the 1.0.0 rule (age >= 1d) said not due; the slot of the next day has begun.
    is_due, newest, why = converge.due(snaps, "offsite", DAY, latest + DAY - 40, plan)
    assert is_due is True and newest is not None and newest.name == "offsite-20260302T020020Z"
    assert why.startswith("the newest snapshot offsite-20260302T020020Z is 23h59m old (every 1d at 02:00Z)")
    assert converge.due(snaps[1:], "offsite", DAY, latest, plan)[0] is True  # no policy snapshot yet
