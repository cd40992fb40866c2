"""Exposure dedup by the user id's text: ``42`` and ``"42"`` bucket alike (the engine
buckets by the id's text), so they are one user, logged once, under ``"42"``.

Before, the dedup shards held the id as given: a user seen once as ``42`` and once as
``"42"`` (an int from one service, a str from another, or the OpenFeature targeting
key) was logged twice, and every count of exposure records (the
``cfgcore_ab_exposures_total`` participants, the log) counted the user twice.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.experiments.exposures import ExposureLogger, MemorySink, read_exposures
from tests.fuzz import examples

NOW = datetime.now(timezone.utc)


def _test(name="t"):
    return ABTestConfiguration(
        name, "", NOW - timedelta(days=1), NOW + timedelta(days=9),
        {"control": 50.0, "b": 50.0}, {"control": {}, "b": {}}, ["buy"],
    )  # fmt: skip


@pytest.fixture
def manager(tmp_path, impl):
    m = DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl)(), record_usage=False
    )
    assert m.create_ab_test(_test())
    try:
        yield m
    finally:
        m.close()


def _logged(m):
    m.exposures.flush()
    return sorted((e.test, e.user) for e in read_exposures(m.exposures.sinks[0].path))


@pytest.mark.parametrize("flush_between", [True, False], ids=["flushed", "in-flight"])
def test_an_int_id_and_its_text_are_one_user_in_either_order(manager, flush_between):
    pairs = [({"user_id": 42}, {"user_id": "42"}), ({"user_id": "7"}, {"user_id": 7}),
             ({"targeting_key": 9}, {"targeting_key": "9"}),
             ({"user_id": 11}, {"targeting_key": "11"})]  # fmt: skip
    for first, second in pairs:
        a = manager.get_ab_test_variant("t", first)
        if flush_between:
            manager.exposures.flush()
        b = manager.get_ab_test_variant("t", second)
        assert a == b is not None  # one bucket: the id's text
        for _ in range(3):  # the steady state logs nothing more, in either form
            manager.get_ab_test_variant("t", first)
            manager.get_ab_test_variant("t", second)
    assert _logged(manager) == sorted(("t", u) for u in ("42", "7", "9", "11"))
    report = manager.analyze("t")
    assert sum(report.exposures.values()) == 4


def test_metric_events_and_reports_count_the_two_forms_as_one_user(manager):
    assert manager.record_metric("t", "buy", 1.0, user_context={"user_id": 42})
    assert manager.record_metric("t", "buy", 1.0, user_context={"user_id": "42"})
    assert manager.record_metric("t", "buy", 1.0, user_id=42)
    assert _logged(manager) == [("t", "42")]
    report = manager.analyze("t")
    rows = [r for r in report.for_metric("buy") if r.events]
    assert [(r.n, r.events, r.successes) for r in rows] == [(1, 3, 1)]
    assert sum(report.exposures.values()) == 1


def test_the_logger_files_each_id_by_its_text():
    sink = MemorySink()
    logger = ExposureLogger([sink])
    try:
        logger.log("t", "b", 5)
        logger.log("t", "b", "5")
        logger.expose("t", "b", {"user_id": "6"})
        logger.expose("t", "b", {"user_id": 6})
        logger.expose("t", "b", {"targeting_key": 6})
        logger.flush()
        assert [(e.user, type(e.user)) for e in sink.exposures] == [("5", str), ("6", str)]
    finally:
        logger.close()


FORMS = [
    lambda i: {"user_id": i},
    lambda i: {"user_id": str(i)},
    lambda i: {"targeting_key": i},
    lambda i: {"targeting_key": str(i)},
    lambda i: {"user_id": None, "targeting_key": str(i)},
]


@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, len(FORMS) - 1), st.booleans()),
        min_size=1,
        max_size=30,
    )
)
def test_any_mix_of_forms_logs_each_user_once(impl, steps):
    sink = MemorySink()
    with tempfile.TemporaryDirectory() as state:
        m = DynamicConfigurationManager(
            state_dir=state, engine=engine_class(impl)(), persist=False,
            exposure_sinks=[sink], record_usage=False,
        )  # fmt: skip
        try:
            assert m.create_ab_test(_test())
            for uid, form, flush in steps:
                assert m.get_ab_test_variant("t", FORMS[form](uid)) is not None
                if flush:
                    m.exposures.flush()
            m.exposures.flush()
        finally:
            m.close()
    users = [e.user for e in sink.exposures]
    assert sorted(users) == sorted({str(uid) for uid, _, _ in steps})
