"""What a clock given to cfgcore may answer (cfgcore._clock).

A clock answering a ``datetime`` instead of epoch seconds made every schedule count as
outside (``float(datetime)`` raised inside the evaluators, read as a broken clock), so
a manager built with ``clock=lambda: datetime.now(timezone.utc)`` answered None for
every A/B test without a word, and its audit writer logged a TypeError. A datetime with
a time zone is an unambiguous instant and is read as one; other real numbers (NumPy,
Fraction, Decimal) by their value; a naive datetime, a bool or text is refused as a
clock that raises, and said once in the log.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgcore import _clock
from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.experiments.dynamic import state_paths
from cfgcore.experiments.exposures import ExposureRecord, read_log
from tests.conftest import IMPLS

START = datetime(2030, 1, 1, tzinfo=timezone.utc)
SCHEDULED = {"flags": {"f": {"default": "on", "schedule": {"start": "2030-01-01T00:00:00Z"}}}}
AFTER = START.timestamp() + 3600


@pytest.fixture(autouse=True)
def _each_kind_said_again():
    """Each test sees the first refusal of a kind logged (the set is per process)."""
    _clock._said.clear()
    yield
    _clock._said.clear()


def _answers(impl, answer):
    engine = engine_class(impl).from_snapshot(SCHEDULED)
    engine.set_clock(lambda: answer)
    return engine.is_enabled("f"), engine.evaluate("f")


@pytest.mark.parametrize(
    "answer",
    [
        AFTER,
        int(AFTER),
        np.float64(AFTER),
        np.int64(int(AFTER)),
        Fraction(int(AFTER)),
        Decimal(int(AFTER)),
        START + timedelta(hours=1),
        (START + timedelta(hours=1)).astimezone(timezone(timedelta(hours=-7))),
    ],
    ids=repr,
)
def test_an_instant_after_the_start_is_inside_the_schedule(impl, answer):
    on, details = _answers(impl, answer)
    assert on is True, details
    before = answer - timedelta(hours=2) if isinstance(answer, datetime) else answer - 7200
    assert _answers(impl, before)[0] is False


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (datetime(2031, 1, 1), "a datetime without a time zone"),
        (True, "a bool"),
        (str(AFTER), "a str"),
        (None, "a NoneType"),
        (complex(AFTER), "a complex"),
        (10**400, "an int"),  # past a float
    ],
    ids=repr,
)
def test_an_answer_that_is_no_instant_counts_as_a_broken_clock_and_is_said_once(
    impl, answer, kind, caplog
):
    with caplog.at_level(logging.ERROR, logger="cfgcore.clock"):
        on, details = _answers(impl, answer)
        assert on is False  # outside the schedule, as a clock that raises
        assert details.reason == "DISABLED", details
        _answers(impl, answer)
    said = [r.getMessage() for r in caplog.records if r.name == "cfgcore.clock"]
    assert len(said) == 1, said
    assert f"the clock answered {kind}" in said[0] and "time zone" in said[0]


def test_epoch_seconds_refuses_with_what_the_clock_answered():
    with pytest.raises(TypeError, match=r"answered a datetime without a time zone \(datetime"):
        _clock.epoch_seconds(datetime(2030, 1, 1))
    with pytest.raises(TypeError, match="answered a str"):
        _clock.read_clock(lambda: "1900000000")


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.sampled_from(
            [timezone(timedelta(minutes=m)) for m in (-720, -90, 0, 345, 840)]
        ),
    )
)
def test_both_evaluators_read_an_aware_datetime_as_its_epoch_seconds(moment):
    """Whatever the instant and its offset: the answer is that of the float clock."""
    seconds = moment.timestamp()
    for impl in IMPLS.values():
        assert (
            _answers(impl, moment)[0]
            is _answers(impl, seconds)[0]
            is (seconds >= START.timestamp())
        )


def test_a_manager_with_a_datetime_clock_serves_its_ab_test_and_stamps_seconds(
    tmp_path, impl, caplog
):
    now = datetime.now(timezone.utc)
    manager = DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl)(), record_usage=False,
        clock=lambda: datetime.now(timezone.utc),
    )  # fmt: skip
    try:
        split = {"control": 50.0, "b": 50.0}
        test = ABTestConfiguration(
            "t", "", now - timedelta(days=1), now + timedelta(days=9), split,
            {k: {"v": k} for k in split}, ["buy"],
        )  # fmt: skip
        with caplog.at_level(logging.WARNING):
            assert manager.create_ab_test(test)
            assert manager.get_ab_test_variant("t", {"user_id": "u1"}) in split
            assert manager.exposures.flush(10)
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
        (record,) = read_log(state_paths(f"{tmp_path}/flags.json")["exposures"], ExposureRecord)
        assert isinstance(record.ts, float) and abs(record.ts - now.timestamp()) < 3600
    finally:
        manager.close()
