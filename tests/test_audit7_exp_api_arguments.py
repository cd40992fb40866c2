"""The A/B test API's change and analysis calls with arguments of the wrong kind.

- ``set_holdout_percentage`` raised bare OverflowError / ValueError / TypeError for
  10**400, "x", None or a list (the ConfigError naming ``metadata.holdout_percentage``
  came only for numbers out of range), took True as 1 % and "25" as 25 % (text is
  the caller's to parse, as for a traffic split's weight);
- ``delete_ab_test``/``stop_ab_test`` with a list or a tuple for the name raised
  ValueError from the access-policy guard (which read it as (action, target) pairs)
  or TypeError (unhashable), instead of answering False (no such test);
  ``analyze``/``check_guardrails`` raised TypeError for an unhashable name;
- ``analyze(confidence=...)`` took 0 and 1 (point and infinite intervals), True
  (infinite ones) and failed deep in SciPy or arithmetic for NaN, 2, "0.9" or None.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pytest

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.errors import ConfigError
from cfgcore.experiments.analysis import analyze
from cfgcore.experiments.metrics import MetricsStore


@pytest.fixture
def manager(tmp_path, impl):
    engine = engine_class(impl).from_snapshot({"flags": {}})
    m = DynamicConfigurationManager(state_dir=tmp_path, engine=engine, record_usage=False)
    now = datetime.now()
    assert m.create_ab_test(
        ABTestConfiguration(
            "t", "", now - timedelta(days=1), now + timedelta(days=2),
            {"control": 50, "b": 50}, {"control": {}, "b": {}}, ["ctr"],
        )
    )  # fmt: skip
    yield m
    m.close()


@pytest.mark.parametrize("pct", [10**400, "x", "25", None, [1], True, math.nan, 100, -1])
def test_a_holdout_that_is_no_percentage_is_a_config_error_naming_it(manager, pct):
    # Text too: "25" was taken as 25 % while create_ab_test refused a weight of "50"
    # (one rule for every numeric argument: cfgcore._numbers).
    with pytest.raises(
        ConfigError, match=r"metadata\.holdout_percentage: must be a number within \[0, 100\)"
    ):
        manager.set_holdout_percentage(pct)
    assert "holdout_percentage" not in manager.snapshot.metadata


@pytest.mark.parametrize("pct", [25, 25.0, np.float64(25), np.int64(25)])
def test_a_holdout_percentage_still_applies(manager, pct):
    manager.set_holdout_percentage(pct)
    assert manager.snapshot.metadata["holdout_percentage"] == 25.0


@pytest.mark.parametrize("name", [["t"], ("experiment.stop", "t"), {"t"}, None, 5])
def test_a_name_that_is_no_str_is_no_test(manager, name):
    assert manager.stop_ab_test(name) is False
    assert manager.delete_ab_test(name) is False
    assert manager.check_guardrails(name) == []
    with pytest.raises(ConfigError, match="unknown A/B test"):
        manager.analyze(name)
    # the test itself is untouched
    assert manager.get_ab_test_variant("t", {"user_id": "u1"}) in ("control", "b")


@pytest.mark.parametrize("confidence", [0, 1, 0.0, 1.0, 2, -0.5, math.nan, math.inf, True,
                                        "0.9", None])  # fmt: skip
def test_a_confidence_outside_zero_to_one_is_refused_naming_it(manager, confidence):
    for i in range(20):
        manager.record_metric("t", "ctr", float(i % 2), user_id=f"u{i}")
    with pytest.raises(ValueError, match=r"t: confidence must be within \(0, 1\)"):
        manager.analyze("t", confidence=confidence)


@pytest.mark.parametrize("confidence", [0.9, np.float32(0.9), np.float64(0.99)])
def test_numpy_confidences_are_numbers(confidence):
    report = analyze("t", {"traffic_split": {"a": 50, "b": 50}}, MetricsStore(None),
                     confidence=confidence)  # fmt: skip
    assert report.confidence == confidence


# -- guardrail settings -----------------------------------------------------------------
# guardrail_check_every=0 (or None) made every record_metric of a guarded test raise
# ZeroDivisionError (TypeError) on the request thread; guardrail_alpha=2 rolled a
# harmless test back at its first check (an always-valid p-value is at most 1); NaN
# never rolled anything back; guardrail_min_samples=None failed every check.


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("guardrail_check_every", 0),
        ("guardrail_check_every", None),
        ("guardrail_check_every", -1),
        ("guardrail_check_every", 1.5),
        ("guardrail_check_every", True),
        ("guardrail_alpha", 2),
        ("guardrail_alpha", 1),
        ("guardrail_alpha", 0),
        ("guardrail_alpha", math.nan),
        ("guardrail_alpha", "0.05"),
        ("guardrail_min_samples", None),
        ("guardrail_min_samples", -5),
        ("guardrail_min_samples", 2.5),
    ],
)
def test_guardrail_settings_that_cannot_work_are_refused_at_construction(tmp_path, setting, value):
    with pytest.raises(ValueError, match=setting):
        DynamicConfigurationManager(state_dir=tmp_path, record_usage=False, **{setting: value})
    assert not (tmp_path / "flags.json").exists()


def test_usable_guardrail_settings_record_and_never_raise(tmp_path):
    m = DynamicConfigurationManager(
        state_dir=tmp_path, record_usage=False, guardrail_check_every=np.int64(1),
        guardrail_alpha=np.float32(0.05), guardrail_min_samples=0,
    )  # fmt: skip
    try:
        now = datetime.now()
        assert m.create_ab_test(
            ABTestConfiguration(
                "g", "", now - timedelta(days=1), now + timedelta(days=2),
                {"control": 50, "b": 50}, {"control": {}, "b": {}}, ["ctr"],
                guardrail_metrics={"latency": "lower_is_better"},
            )
        )  # fmt: skip
        assert all(m.record_metric("g", "latency", 1.0, user_id=f"u{i}") for i in range(50))
    finally:
        m.close()


# -- track_metric: a value beyond MAX_METRIC_VALUE -----------------------------------------
# track_metric answered True for 1e300 (and counted it toward the next guardrail
# check); the writer then dropped it (metrics.refused). Its docstring refuses it "as
# for record_metric", whose own docstring says False beyond MAX_METRIC_VALUE.


@pytest.mark.parametrize("value", [1e300, -1e101, 10**200])
def test_track_metric_refuses_a_value_no_report_would_count(manager, value):
    assert manager.get_ab_test_variant("t", {"user_id": "u1"}) in ("control", "b")
    assert manager.track_metric("t", "ctr", value, user_id="u1") is False
    assert manager.track_metric("t", "ctr", 1e100, user_id="u1") is True  # the bound itself
    assert manager.metrics.flush(10)
    assert manager.metrics.refused == 0
