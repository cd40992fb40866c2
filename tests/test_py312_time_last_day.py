"""A naive time on 9999-12-31 is local time there too, on every CPython.

From CPython 3.12 on, ``datetime.astimezone()`` on a naive datetime also computes the
instant of its other fold (to detect a gap); on 9999-12-31 that probe is a day past
``datetime.max`` and raises ValueError, whatever the local zone (python/cpython#130718).
The command line then refused ``--start-date 9999-12-31`` as "out of range in local
time" on a UTC machine, and ``create_ab_test`` refused the same naive datetime as out of
range in UTC, where 3.11 accepted both (``cfgcore.experiments.abtest.local_aware``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from cfgcore.cli import main
from cfgcore.cli.experiment import parse_time
from cfgcore.dynamic_config import ABTestConfiguration
from cfgcore.errors import ConfigError
from cfgcore.experiments.abtest import local_aware
from tests.zones import local_zone

UTC = timezone.utc
SPLIT = {"control": 50.0, "b": 50.0}
CONFIGS = {"control": {"x": 1}, "b": {"x": 2}}
LAST_DAY = [
    datetime(9999, 12, 31),
    datetime(9999, 12, 31, 12, 30),
    datetime(9999, 12, 31, 23, 59, 59),
]


def _start(naive: datetime) -> datetime:
    meta = ABTestConfiguration("t", "", naive, naive, SPLIT, CONFIGS).to_metadata()
    return datetime.fromisoformat(meta["start_date"])


@pytest.mark.parametrize("naive", LAST_DAY, ids=str)
def test_the_last_day_is_in_range_in_utc(naive):
    with local_zone("UTC"):
        assert local_aware(naive) == naive.replace(tzinfo=UTC)
        on_cli = parse_time(naive.isoformat(), "--start-date", datetime.now(UTC))
        assert on_cli == naive.replace(tzinfo=UTC)
        assert _start(naive) == naive.replace(tzinfo=UTC)


@pytest.mark.parametrize("zone, hours", [("America/New_York", -5), ("Asia/Kolkata", 5.5)])
def test_the_last_day_west_and_east_of_utc(zone, hours):
    # noon local is in range on both sides; its instant is what the offset says
    naive = datetime(9999, 12, 31, 12)
    instant = (naive - timedelta(hours=hours)).replace(tzinfo=UTC)
    with local_zone(zone):
        assert local_aware(naive) == instant
        assert local_aware(naive).utcoffset() == timedelta(hours=hours)
        assert parse_time(naive.isoformat(), "--start-date", datetime.now(UTC)) == instant
        assert _start(naive) == instant


def test_a_local_time_past_the_last_utc_instant_is_still_refused(tmp_path, monkeypatch, capsys):
    # 22:00 in New York on 9999-12-31 is 10000-01-01T03:00Z: no instant, on any version
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path))
    late = datetime(9999, 12, 31, 22)
    with local_zone("America/New_York"):
        with pytest.raises((OverflowError, OSError, ValueError)):
            local_aware(late).astimezone(UTC)
        with pytest.raises(ConfigError, match="9999-12-31T22:00:00 is out of range in UTC"):
            _start(late)
        code = main(["experiment", "create", "t", "--split", "a=50,b=50",
                     "--start-date", late.isoformat(), "--end-date", "9999-12-31Z"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2  # an option value: a usage error
    assert err.startswith(
        "cfgcore: error: --start-date '9999-12-31T22:00:00': out of range in local time"
    ), err


def test_the_command_line_takes_the_last_day_as_a_start(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path))
    with local_zone("UTC"):
        code = main(["experiment", "create", "t", "--split", "a=50,b=50",
                     "--start-date", "9999-12-31", "--end-date", "9999-12-31T12:00"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "9999-12-31T00:00:00+00:00" in out + err


def test_a_gap_still_resolves_as_astimezone_does():
    # the fallback is only for the last day: a spring-forward gap keeps astimezone's answer
    gap = datetime(2026, 3, 8, 2, 30)
    with local_zone("America/New_York"):
        assert local_aware(gap) == gap.astimezone()
        assert parse_time(gap.isoformat(), "--start-date", datetime.now(UTC)) == gap.astimezone()
