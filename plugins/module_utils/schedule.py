# -*- coding: utf-8 -*-
# Copyright: (c) 2026, offsite.zfs developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""When a policy snapshot is due: fixed slots of `every`, starting at the time of day `at`, with a slack.

Private to the collection: not an API for other collections.

Pure logic, no I/O. Time is cut into slots of length `every` on the host's wall clock (local time,
or UTC when `at` ends in Z), counted from Monday 1970-01-05 at `at`: daily slots start at `at` every
day (also across DST changes), weekly ones on Mondays. A run is due when it falls in a later slot
than the newest policy snapshot. A run up to `slack` before a slot starts already counts for that
slot (clock skew between a controller's cron and the host). So, whatever the run pattern (hourly
runs, a daily timer with a randomized delay, a controller cron), one snapshot is taken per slot,
always at the same time of day: nothing creeps later, no day is skipped.

The default slack is 10 % of `every`, at most 15 minutes: smaller than the gap between hourly
runs, so hourly runs take the daily snapshot at `at` itself, not an hour early.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple

from ansible_collections.offsite.zfs.plugins.module_utils.common import human_duration, parse_duration
from ansible_collections.offsite.zfs.plugins.module_utils.errors import OffsiteError

SLACK_FRACTION = 0.1
MAX_DEFAULT_SLACK = 900.0
EPOCH_MONDAY = 4 * 86400.0  # 1970-01-05T00:00, a Monday, in seconds after 1970-01-01T00:00
_AT = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?(?: ?(Z|UTC))?")

Offset = Callable[[float], float]


def local_offset(moment: float) -> float:
    """Seconds east of UTC of the host's local time zone at that moment (DST included)."""
    return float(time.localtime(moment).tm_gmtoff)


@dataclass(frozen=True)
class Schedule:
    every: float          # seconds; 0 means every run is due
    at: float = 0.0       # seconds after midnight the slots start at
    utc: bool = False     # at is UTC (True) or the host's local time
    slack: float = 0.0    # a run this long before a slot start counts for that slot
    at_text: str = ""     # as the user wrote it, for messages

    def wall(self, moment: float, offset: Offset = local_offset) -> float:
        return moment if self.utc else moment + offset(moment)

    def slot(self, moment: float, offset: Offset = local_offset) -> int:
        """The index of the slot a run at this moment belongs to."""
        return int(math.floor((self.wall(moment, offset) + self.slack - EPOCH_MONDAY - self.at) / self.every))

    def slot_start(self, index: int) -> float:
        """The wall-clock time (seconds after the epoch, in the schedule's zone) slot index starts at."""
        return EPOCH_MONDAY + self.at + index * self.every

    def describe(self) -> str:
        text = "every %s" % human_duration(self.every)
        if self.at_text:
            text += " at %s" % self.at_text
        return text


def parse_at(value: Any, where: str = "at") -> Tuple[float, bool]:
    """'02:00' -> (7200, False); '02:00Z' or '02:00 UTC' -> (7200, True)."""
    match = _AT.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise OffsiteError("The %s %r is not a time of day like 02:00 (host local time) or 02:00Z (UTC)." % (
            where, value), "bad_value")
    hours, minutes, seconds = int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)
    return float(hours * 3600 + minutes * 60 + seconds), bool(match.group(4))


def make(every: Any, at: Any = None, slack: Any = None, where: str = "") -> Schedule:
    """A Schedule from the policy values every, at and slack (raw or already parsed)."""
    suffix = " of %s" % where if where else ""
    seconds = every if isinstance(every, float) else parse_duration(every, "every" + suffix)
    at_seconds, utc = (0.0, False) if at in (None, "") else parse_at(at, "at" + suffix)
    if slack in (None, ""):
        slack_seconds = min(SLACK_FRACTION * seconds, MAX_DEFAULT_SLACK)
    else:
        slack_seconds = parse_duration(slack, "slack" + suffix)
    if seconds > 0 and slack_seconds >= seconds:
        raise OffsiteError("The slack%s (%s) must be shorter than every (%s); a few minutes is usual." % (
            suffix, human_duration(slack_seconds), human_duration(seconds)), "bad_value")
    return Schedule(every=seconds, at=at_seconds, utc=utc, slack=slack_seconds,
                    at_text="" if at in (None, "") else str(at).strip())


def due(schedule: Schedule, latest: Optional[float], now: float, offset: Offset = local_offset) -> Tuple[bool, str]:
    """Whether a run at now takes a new snapshot, given the creation time of the newest one (None: none yet).

    Due when now is in a later slot than latest and latest is at least `slack` old (two runs a few
    seconds apart around a slot start take one snapshot, not two).
    """
    if latest is None:
        return True, "no snapshot yet"
    age = now - latest
    if schedule.every <= 0:
        return True, "%s old (every run is due)" % human_duration(age)
    if schedule.slot(now, offset) > schedule.slot(latest, offset) and age >= schedule.slack:
        return True, "%s old (%s)" % (human_duration(age), schedule.describe())
    when = next_due_text(schedule, latest, offset)
    return False, "%s old (%s; next due %s)" % (human_duration(age), schedule.describe(), when)


def next_due(schedule: Schedule, latest: float, offset: Offset = local_offset) -> float:
    """The first moment (seconds after the epoch, UTC) a run is due after a snapshot taken at latest.

    The wall-clock start of the next slot, minus the slack, mapped back with the offset in force
    then (an approximation across a DST change, exact otherwise); never before latest + slack.
    """
    if schedule.every <= 0:
        return latest
    wall_start = schedule.slot_start(schedule.slot(latest, offset) + 1) - schedule.slack
    moment = wall_start if schedule.utc else wall_start - offset(wall_start - offset(latest))
    return max(moment, latest + schedule.slack)


def next_due_text(schedule: Schedule, latest: float, offset: Offset = local_offset) -> str:
    moment = next_due(schedule, latest, offset)
    return "from %s" % time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(moment))
