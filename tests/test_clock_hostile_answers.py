"""Clock answers a hostile or careless clock may give (cfgcore._clock).

* A ``datetime`` subclass whose ``timestamp()`` answers something else than seconds
  (text) reached the reference evaluator's schedule comparison: ``is_enabled`` raised
  TypeError on the request path (the compiled one answered False). One whose
  ``utcoffset()`` claims a time zone it does not have was read as this machine's local
  time, which a naive datetime is refused for. Both are read by ``datetime``'s own
  methods now: the instant the datetime names, or refused.
* ``ExposureLogger.log``/``expose`` ("never raises") raised from a clock that raises
  or answers no instant, after filing the user as logged: the exposure was lost for
  good. They stamp by the system clock then, said once in the log.
* A clock answering NaN or an infinity (a number, so taken) stamped exposures that
  every reader of the log skips (``"ts": null``), and gave a "now" before which no
  A/B test had started, so an edit moving a running test's users went live. A reader
  that keeps the time takes only a finite one (the evaluators need no such rule: no
  schedule is inside NaN).
* The dynamic manager's change events read the clock unguarded: with a clock that
  fails, a flag change went live unaudited and untold. They take the system clock's
  time then.

Whatever a clock answers, both evaluators agree and neither raises (but for a
BaseException such as KeyboardInterrupt, which propagates from both).
"""

from __future__ import annotations

import json
import logging
import math
import time
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgcore import _clock
from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.experiments.exposures import ExposureLogger, MemorySink
from cfgcore.runtime.atomicio import atomic_write
from tests.conftest import IMPLS

START = datetime(2030, 1, 1, tzinfo=timezone.utc)
SCHEDULED = {"flags": {"f": {"default": "on", "schedule": {"start": "2030-01-01T00:00:00Z"}}}}


@pytest.fixture(autouse=True)
def _each_kind_said_again():
    _clock._said.clear()
    yield
    _clock._said.clear()


class TextStamp(datetime):
    def timestamp(self):
        return "soon"


class ClaimsZone(datetime):
    def utcoffset(self):
        return timedelta(0)


def _on(impl, answer):
    engine = engine_class(impl).from_snapshot(SCHEDULED)
    engine.set_clock(lambda: answer)
    return engine.is_enabled("f"), engine.evaluate("f").value, engine.evaluate_all()["f"]


def test_a_datetime_subclass_is_read_as_the_instant_it_names(impl):
    after = TextStamp(2030, 1, 1, 1, tzinfo=timezone.utc)
    assert _on(impl, after) == (True, True, True)
    assert _on(impl, TextStamp(2029, 12, 31, 23, tzinfo=timezone.utc)) == (False,) * 3
    assert _clock.epoch_seconds(after) == START.timestamp() + 3600


def test_a_datetime_that_only_claims_a_time_zone_is_refused_as_naive(impl, caplog):
    with caplog.at_level(logging.ERROR, logger="cfgcore.clock"):
        assert _on(impl, ClaimsZone(2031, 1, 1)) == (False,) * 3
    assert "answered a datetime without a time zone" in caplog.text


class _Zone(tzinfo):
    def __init__(self, offset):
        self.offset = offset

    def utcoffset(self, dt):
        if isinstance(self.offset, BaseException):
            raise self.offset
        return self.offset


answers = st.one_of(
    st.floats(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.decimals(),
    st.fractions(),
    st.datetimes(
        timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=-7, minutes=-30))])
    ),
    st.datetimes(),
    st.builds(
        TextStamp, st.integers(1971, 2100), st.just(1), st.just(1), tzinfo=st.just(timezone.utc)
    ),
    st.builds(ClaimsZone, st.integers(1971, 2100), st.just(1), st.just(1)),
    st.builds(
        lambda y, off: datetime(y, 1, 1, tzinfo=_Zone(off)),
        st.integers(1971, 2100),
        st.sampled_from([None, timedelta(hours=30), "1h", ValueError("no"), timedelta(0)]),
    ),
    st.floats(width=32).map(np.float32),
    st.integers(-(2**63), 2**63 - 1).map(np.int64),
    st.sampled_from([None, True, "1900000000", b"1", complex(1, 0), np.bool_(True), [1.0]]),
    st.sampled_from([Decimal("sNaN"), Decimal("-Infinity"), Fraction(10**400, 3), -math.inf]),
)


@given(answers)
def test_both_evaluators_agree_on_any_answer_and_never_raise(answer):
    results = {name: _on(impl, answer) for name, impl in IMPLS.items()}
    assert len(set(results.values())) == 1, results


@pytest.mark.parametrize(
    "clock",
    [lambda: datetime(2031, 1, 1), lambda: "now", lambda: 1 / 0],
    ids=["naive datetime", "text", "raises"],
)
def test_an_exposure_is_stamped_by_the_system_clock_when_the_clock_fails(clock, caplog):
    sink = MemorySink()
    logger = ExposureLogger([sink], clock=clock)
    before = time.time()
    try:
        with caplog.at_level(logging.ERROR, logger="cfgcore.clock"):
            logger.log("t", "a", "u1")
            logger.expose("t", "b", {"user_id": "u2"})
            logger.log("t", "a", "u3")
        assert logger.flush(10)
    finally:
        logger.close()
    after = time.time()
    stamped = sink.exposures
    assert [r[:3] for r in stamped] == [("t", "a", "u1"), ("t", "b", "u2"), ("t", "a", "u3")]
    assert all(before <= r.time <= after for r in stamped), stamped
    said = [r for r in caplog.records if r.name == "cfgcore.clock"]
    assert len(said) == 1, caplog.text


def test_an_exposure_clock_that_works_still_stamps_its_own_seconds():
    sink = MemorySink()
    logger = ExposureLogger([sink], clock=lambda: START)
    logger.log("t", "a", "u1")
    assert logger.flush(10)
    logger.close()
    assert sink.exposures[0].time == START.timestamp()


@pytest.mark.parametrize(
    "failing", [lambda: datetime(2031, 1, 1), lambda: 1 / 0], ids=["naive datetime", "raises"]
)
def test_a_flag_change_is_audited_and_told_when_the_clock_fails(tmp_path, failing):
    """The change went live, but the manager's event for it read the clock unguarded:
    no audit record, no listener told, and the steps after it (guardrails, stops)
    skipped. Its time is the system clock's then."""
    use = [lambda: START]
    manager = DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(IMPLS["py"])(), record_usage=False,
        clock=lambda: use[0](),
    )  # fmt: skip
    told = []
    try:
        manager.register_change_listener(told.append)
        manager.set_feature_flag("before", True)
        use[0] = failing
        before = time.time()
        manager.set_feature_flag("after", True)
        assert manager.audit.flush(10)
        entries = manager.audit.entries()
    finally:
        manager.close()
    assert [e.config_path for e in told] == ["flags.before", "flags.after"]
    assert told[0].timestamp == START.timestamp()
    assert before <= told[1].timestamp <= time.time()
    assert sum("flags.after" in str(entry) for entry in entries) == 1, entries


@pytest.mark.parametrize("answer", [math.nan, math.inf, Decimal("NaN"), np.float64(-math.inf)])
def test_an_exposure_stamp_that_is_no_instant_is_the_system_clocks(answer):
    """Stamped NaN, a record was written with ``"ts": null``, which every reader of the
    log skips as unusable: the exposure was lost (and its user deduplicated)."""
    sink = MemorySink()
    logger = ExposureLogger([sink], clock=lambda: answer)
    before = time.time()
    logger.log("t", "a", "u1")
    assert logger.flush(10)
    logger.close()
    assert before <= sink.exposures[0].time <= time.time(), sink.exposures


def test_a_hand_edit_moving_a_served_tests_users_is_refused_under_a_nan_clock(tmp_path):
    """The manager's "now" for judging a test served was NaN: ``start <= now`` failed,
    the running test counted as never started, and an edit re-splitting its enrolled
    users went live. "now" is the system clock's when the clock answers no instant."""
    answer = [None]
    manager = DynamicConfigurationManager(
        flags_file=str(tmp_path / "flags.json"), record_usage=False,
        clock=lambda: answer[0] if answer[0] is not None else time.time(),
    )  # fmt: skip
    try:
        now = datetime.now(timezone.utc)
        split = {"control": 50, "green": 50}
        assert manager.create_ab_test(
            ABTestConfiguration(
                "checkout",
                "",
                now - timedelta(days=1),
                now + timedelta(days=30),
                split,
                {v: {"v": v} for v in split},
                ["conversion"],
            )  # fmt: skip
        )
        answer[0] = math.nan
        doc = json.loads((tmp_path / "flags.json").read_text())
        doc["experiments"]["checkout"]["traffic_split"] = {"control": 30, "green": 70}
        doc["flags"]["checkout"]["rules"][0]["split"] = {"control": 30, "green": 70}
        atomic_write(manager.flags_file, json.dumps(doc).encode())
        assert not manager.reload()
        assert "move 20.000% of its users" in str(manager._live.last_error)
    finally:
        manager.close()
