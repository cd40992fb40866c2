"""Review of the Schedule/Flag constructors' local-time rule: a subclass of Schedule
or Flag (a struct an application derives to add its own fields) is built in Python
too, so it follows the same rule. Before, the metaclass tested ``cls is Schedule``: a
subclass's naive time skipped it and __post_init__ took it as UTC, hours away from
the same value given to Schedule itself."""

from __future__ import annotations

import pickle
from datetime import datetime, timezone

import msgspec

from cfgcore.snapshot import Flag, Schedule
from tests.zones import local_zone

UTC = timezone.utc


class TeamSchedule(Schedule, frozen=True):
    owner: str = ""


class TeamFlag(Flag, frozen=True):
    owner: str = ""


def test_a_schedule_subclass_reads_a_naive_time_as_local_time():
    naive = datetime(2027, 6, 1, 9, 0)
    with local_zone("Asia/Tokyo"):
        base = Schedule(start=naive)
        sub = TeamSchedule(start=naive, owner="growth")
        positional = TeamSchedule(naive, None, "growth")
    assert base.start == datetime(2027, 6, 1, 0, 0, tzinfo=UTC)
    assert sub.start == base.start and positional.start == base.start
    assert pickle.loads(pickle.dumps(sub)) == sub


def test_a_flag_subclass_reads_its_schedule_dicts_naive_time_as_local_time():
    naive = datetime(2027, 6, 1, 9, 0)
    with local_zone("America/New_York"):
        base = Flag(default="on", schedule={"start": naive})
        sub = TeamFlag(default="on", schedule={"start": naive}, owner="growth")
    assert base.schedule.start == datetime(2027, 6, 1, 13, 0, tzinfo=UTC)
    assert sub.schedule == base.schedule
    # A document decoded into the subclass still reads a naive time as UTC.
    decoded = msgspec.json.decode(b'{"start": "2027-06-01T09:00:00"}', type=TeamSchedule)
    assert decoded.start == datetime(2027, 6, 1, 9, 0, tzinfo=UTC)
