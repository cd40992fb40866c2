"""A naive schedule time built in Python follows the API rule: local time.

The rule (cfgcore.experiments.abtest's docstring): a naive time given to cfgcore through
its API is the local time of the machine it is given on, resolved at once to a UTC
instant; a naive time written into a stored document is UTC for every reader.

Before: ``Schedule(start=datetime.now() + timedelta(hours=1))`` (or
``Flag(schedule={"start": ...})``) kept the naive value and the compiler took it as UTC,
as it must for a document's text: on a host not on UTC the flag went live hours early or
late, and the A/B test API read the very same value as local time. Now the Python
constructors resolve it where it enters; decoded documents keep the UTC reading, and
every Schedule holds aware UTC times (so a copy or a pickle cannot read it again in
another zone). Both evaluators, a non-UTC local zone set in-process and restored.
"""

from __future__ import annotations

import copy
import pickle
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import ABTestConfiguration
from cfgcore.errors import SnapshotError
from cfgcore.snapshot import Flag, Schedule, Snapshot, decode_snapshot
from tests.fuzz import examples
from tests.zones import local_zone

UTC = timezone.utc
ZONES = ["Asia/Tokyo", "America/New_York", "Asia/Kolkata"]


def served_at(make, snapshot: Snapshot, instant: datetime) -> bool:
    engine = make(snapshot)
    engine.set_clock(lambda: instant.timestamp())
    return engine.is_enabled("launch", {"user_id": "u1"})


def launch(schedule) -> Snapshot:
    return Snapshot(flags={"launch": Flag(default="on", schedule=schedule)})


@pytest.mark.parametrize("zone", ZONES)
def test_a_naive_schedule_built_in_python_is_local_time(make, zone):
    with local_zone(zone):
        naive = datetime(2027, 3, 1, 9)
        instant = naive.astimezone(UTC)  # 09:00 in that zone
        for snapshot in (
            launch(Schedule(start=naive)),
            launch(Schedule(naive)),  # positional
            launch({"start": naive}),  # a dict given to Flag
            launch(Schedule(start=naive.isoformat())),  # RFC 3339 text without an offset
        ):
            assert snapshot.flags["launch"].schedule.start == instant
            assert not served_at(make, snapshot, instant - timedelta(seconds=1))
            assert served_at(make, snapshot, instant + timedelta(seconds=1))


def test_the_seeds_idiom_goes_live_in_an_hour_on_any_host(make):
    with local_zone("Asia/Tokyo"):  # 9 hours ahead of UTC: read as UTC, 9 hours late
        start = datetime.now() + timedelta(hours=1)
        snapshot = launch(Schedule(start=start))
        in_an_hour = datetime.now(UTC) + timedelta(hours=1)
        assert not served_at(make, snapshot, in_an_hour - timedelta(minutes=1))
        assert served_at(make, snapshot, in_an_hour + timedelta(minutes=1))


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_a_naive_time_in_a_document_stays_utc(make, fmt):
    text = {
        "json": b'{"flags": {"launch": {"default": "on",'
        b' "schedule": {"start": "2027-03-01T09:00:00"}}}}',
        "yaml": b"flags: {launch: {default: 'on', schedule: {start: 2027-03-01 09:00:00}}}",
    }[fmt]
    with local_zone("America/New_York"):
        snapshot = decode_snapshot(text, fmt)
        at = datetime(2027, 3, 1, 9, tzinfo=UTC)
        assert snapshot.flags["launch"].schedule.start == at
        assert not served_at(make, snapshot, at - timedelta(seconds=1))
        assert served_at(make, snapshot, at + timedelta(seconds=1))
        # read back in yet another zone, copied or pickled: the same instant
        with local_zone("Asia/Tokyo"):
            for again in (copy.deepcopy(snapshot), pickle.loads(pickle.dumps(snapshot))):
                assert again.flags["launch"].schedule.start == at
                assert served_at(make, again, at + timedelta(seconds=1))


def test_an_aware_time_is_kept_and_bad_values_are_still_the_compilers(make):
    with local_zone("Asia/Kolkata"):
        at = datetime(2027, 3, 1, 9, tzinfo=timezone(timedelta(hours=-5)))
        assert Schedule(start=at).start == at
        assert Schedule(end="2027-03-01T09:00:00Z").end == datetime(2027, 3, 1, 9, tzinfo=UTC)
        with pytest.raises(SnapshotError, match=r"flags\.launch\.schedule\.start"):
            make(launch(Schedule(start="next tuesday")))
        with pytest.raises(SnapshotError, match="out of range in UTC"):
            Schedule(start=datetime(1, 1, 1))


NAIVE = st.datetimes(min_value=datetime(1971, 1, 2), max_value=datetime(2100, 12, 30))


@pytest.mark.parametrize("zone", ZONES)
def test_a_python_schedule_and_the_ab_test_api_read_a_naive_value_alike(zone):
    @settings(max_examples=examples(60), deadline=None)
    @given(NAIVE)
    def check(naive):
        end = naive + timedelta(days=1)
        test = ABTestConfiguration("t", "", naive, end, {"a": 50, "b": 50}, {"a": 1, "b": 2})
        api = test.to_flag().schedule
        assert Schedule(start=naive, end=end) == api
        assert Flag(default="off", schedule={"start": naive, "end": end}).schedule == api

    with local_zone(zone):
        check()
