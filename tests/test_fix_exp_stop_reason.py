"""``stop_ab_test``'s ``reason`` is text, kept in the test's record as ``stopped_reason``.

The reason went into the flag document as given: a str subclass (an application's
``Reason(str)``) raised msgspec's bare ``TypeError`` and a lone surrogate a bare
``UnicodeEncodeError`` from the write, while ``None``, a number, a list or a mapping were
stored in a field every reader takes for text (``cfgcore experiment list`` shows it, the
guardrail stop register reads it). A str subclass is now stored as the text it holds,
and anything else that is not text a file can hold is a ConfigError naming the file and
``experiments.<test>.stopped_reason``, with nothing written."""

from __future__ import annotations

import enum
import math
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.errors import ConfigError
from tests.fuzz import examples
from tests.texts import any_text

NOW = datetime.now(timezone.utc)


class Reason(str):
    def __str__(self):
        return "Reason(...)"


class Why(enum.StrEnum):
    PAUSED = "paused"


def _test():
    return ABTestConfiguration(
        test_name="exp",
        description="t",
        start_date=NOW - timedelta(days=1),
        end_date=NOW + timedelta(days=1),
        traffic_split={"control": 50.0, "treatment": 50.0},
        configurations={"control": {}, "treatment": {}},
        success_metrics=["ctr"],
    )


@pytest.fixture
def manager(tmp_path, impl):
    engine = engine_class(impl).from_snapshot({"flags": {}})
    m = DynamicConfigurationManager(state_dir=tmp_path, engine=engine, record_usage=False)
    assert m.create_ab_test(_test())
    yield m
    m.close()


@pytest.mark.parametrize("reason", [Reason("by hand"), Why.PAUSED])
def test_a_str_subclass_reason_is_stored_as_its_text(manager, tmp_path, impl, reason):
    assert manager.stop_ab_test("exp", reason) is True
    stored = manager.list_ab_tests()["exp"]
    assert stored["status"] == "stopped"
    assert type(stored["stopped_reason"]) is str
    assert stored["stopped_reason"] == str.__str__(reason)
    manager.close()
    again = DynamicConfigurationManager(
        state_dir=tmp_path,
        engine=engine_class(impl).from_snapshot({"flags": {}}),
        record_usage=False,
    )
    try:
        assert again.list_ab_tests()["exp"]["stopped_reason"] == str.__str__(reason)
    finally:
        again.close()


@pytest.mark.parametrize(
    "reason", [None, 5, 1.5, math.nan, True, ["a"], {"a": 1}, "\ud800", "why\udfff"]
)
def test_a_reason_that_is_no_text_is_refused_naming_the_key(manager, reason):
    with pytest.raises(ConfigError, match=r"experiments\.exp\.stopped_reason") as err:
        manager.stop_ab_test("exp", reason)
    assert "flags.json" in str(err.value)
    # Nothing was written: the test still runs and serves its variants.
    assert manager.list_ab_tests()["exp"]["status"] == "active"
    assert manager.get_ab_test_variant("exp", {"user_id": "u1"}) in ("control", "treatment")


@settings(
    max_examples=examples(30),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=any_text(max_size=20))
def test_any_text_reason_is_stored_or_refused_with_a_config_error(manager, text):
    try:
        assert manager.stop_ab_test("exp", Reason(text)) is True
    except ConfigError as exc:  # a lone surrogate: no file holds it
        assert any("\ud800" <= c <= "\udfff" for c in text), exc
    else:
        assert manager.list_ab_tests()["exp"]["stopped_reason"] == text
