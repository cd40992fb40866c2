"""Hostile A/B test definitions through the seed API, and flag documents holding values
no later version of the document could be stored or compiled against.

- ``create_ab_test`` raised (UnicodeEncodeError, OverflowError, RecursionError,
  TypeError) for a name, variant, description, layer or targeting text holding a lone
  surrogate, a weight past a float's range, a configuration nested too deeply or a
  metric_types key that is not a string, instead of returning False with the field;
- a configuration holding an integer past 64 bits was accepted, written, and then
  every later change of the flags raised OverflowError (the store was wedged); a NaN
  was stored as null (other processes served another configuration); bytes as
  base64 text; an int key as its text;
- a flag file edited by hand with a variant integer past 64 bits was served, with the
  same wedge for every later change.
"""

from __future__ import annotations

import json
import math
import os
from datetime import datetime, timedelta
from functools import reduce

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import engine_class
from tests.fuzz import examples
from tests.texts import any_text


def _test(name="t", **over):
    now = datetime.now()
    fields = dict(
        test_name=name,
        description="",
        start_date=now - timedelta(days=1),
        end_date=now + timedelta(days=2),
        traffic_split={"control": 50.0, "b": 50.0},
        configurations={"control": {"algo": "a"}, "b": {"algo": "b"}},
        success_metrics=["ctr"],
    )
    fields.update(over)
    return ABTestConfiguration(**fields)


@pytest.fixture
def manager(tmp_path, impl):
    engine = engine_class(impl).from_snapshot({"flags": {}})
    m = DynamicConfigurationManager(state_dir=tmp_path, engine=engine, record_usage=False)
    yield m
    m.close()


def _deep(levels):
    return reduce(lambda inner, _: [inner], range(levels), [])


HOSTILE = [
    ("lone surrogate name", {"test_name": "\ud800"}, "test_name"),
    (
        "lone surrogate variant",
        {"traffic_split": {"control": 50, "\ud800": 50},
         "configurations": {"control": {}, "\ud800": {}}},
        "traffic_split",
    ),
    ("weight past a float", {"traffic_split": {"control": 10**400, "b": 50}},
     "traffic_split.control"),
    ("description", {"description": "x\udc80"}, "description"),
    ("layer", {"layer": "\udc80"}, "layer"),
    ("targeting text", {"targeting": {"attr": "region", "in": ["\udc80"]}}, "targeting.in.0"),
    ("metric name", {"success_metrics": ["\udc80"]}, "success_metrics"),
    ("guardrail key", {"guardrail_metrics": {1: "lower_is_better"}}, "guardrail_metrics[1]"),
    ("metric_types key", {"metric_types": {None: "binary"}}, "metric_types[None]"),
    ("layer_percentage bool", {"layer": "L", "layer_percentage": True}, "layer_percentage"),
    ("int past 64 bits", {"configurations": {"control": {"n": 2**70}, "b": {}}},
     "configurations.control.n"),
    ("negative int past 64 bits", {"configurations": {"control": [-(2**63) - 1], "b": {}}},
     "configurations.control.0"),
    ("NaN", {"configurations": {"control": {"x": math.nan}, "b": {}}},
     "configurations.control.x"),
    ("infinity", {"configurations": {"control": {"x": math.inf}, "b": {}}},
     "configurations.control.x"),
    ("bytes", {"configurations": {"control": {"x": b"raw"}, "b": {}}},
     "configurations.control.x"),
    ("int key", {"configurations": {"control": {1: "one"}, "b": {}}},
     "configurations.control[1]"),
    ("nested 5000 deep", {"configurations": {"control": _deep(5000), "b": {}}},
     "configurations.control.0"),
    ("lone surrogate value", {"configurations": {"control": {"x": "\udcff"}, "b": {}}},
     "configurations.control.x"),
]  # fmt: skip


@pytest.mark.parametrize(("label", "over", "where"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_a_hostile_test_is_refused_naming_the_field_and_the_store_stays_usable(
    manager, tmp_path, label, over, where
):
    before = (tmp_path / "flags.json").read_bytes() if (tmp_path / "flags.json").exists() else None
    assert manager.create_ab_test(_test(**over)) is False
    assert where in manager.last_error, manager.last_error
    after = (tmp_path / "flags.json").read_bytes() if (tmp_path / "flags.json").exists() else None
    assert after == before  # nothing written
    # The flags still take changes (an accepted integer past 64 bits made every later
    # change raise OverflowError).
    assert manager.create_ab_test(_test("fine")) is True
    manager.set_feature_flag("enhanced_anomaly_detection", False)
    assert manager.get_ab_test_variant("fine", {"user_id": "u1"}) in ("control", "b")


def test_integers_at_the_edges_of_64_bits_are_kept_exactly(manager, tmp_path):
    configs = {"control": {"lo": -(2**63), "hi": 2**64 - 1}, "b": {"n": 0}}
    assert manager.create_ab_test(_test(configurations=configs)) is True
    manager.set_feature_flag("enhanced_anomaly_detection", False)  # a later change works
    again = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False, persist=False)
    try:
        assert again.get_ab_test_config("t", "control") == configs["control"]
    finally:
        again.close()


_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**66), 2**66),
    st.floats(),  # NaN and infinities included
    any_text(max_size=4),  # lone surrogates included
    st.binary(max_size=3),
)
_config = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.text(max_size=3), st.integers(0, 3)), inner, max_size=3),
    ),
    max_leaves=8,
)


@settings(max_examples=examples(40), deadline=None, suppress_health_check=list(HealthCheck))
@given(config=_config)
def test_any_configuration_is_refused_or_read_back_the_same_by_another_process(
    tmp_path_factory, config
):
    state = tmp_path_factory.mktemp("state")
    m = DynamicConfigurationManager(state_dir=state, record_usage=False)
    try:
        ok = m.create_ab_test(_test(configurations={"control": config, "b": {}}))
        if not ok:
            assert "configurations.control" in m.last_error
            assert not os.path.exists(state / "flags.json")
            return
        m.set_feature_flag("enhanced_anomaly_detection", False)  # the store takes changes
    finally:
        m.close()
    # What another process reads is what this one served (a NaN was null there).
    stored = json.loads((state / "flags.json").read_text())["flags"]["t"]["variants"]["control"]
    assert stored == config and json.dumps(stored) == json.dumps(config)


def test_a_flag_file_with_a_variant_integer_past_64_bits_is_refused_and_the_live_flags_kept(
    tmp_path, caplog
):
    m = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
    try:
        m.set_feature_flag("enhanced_anomaly_detection", True, 50.0)
        users = [{"user_id": f"u{i}", "user_segment": "premium"} for i in range(40)]
        served = [m.is_feature_enabled("enhanced_anomaly_detection", u) for u in users]
        assert True in served and False in served
        path = tmp_path / "flags.json"
        doc = json.loads(path.read_text())
        doc["flags"]["mv"] = {"variants": {"a": 2**70, "b": 1}, "default": "a"}
        path.write_text(json.dumps(doc))
        assert m.reload() is False
        assert "flags.mv.variants.a: integer out of range" in caplog.text
        assert m.engine.value("mv", {}) is None  # the last good flags serve
        assert [m.is_feature_enabled("enhanced_anomaly_detection", u) for u in users] == served
    finally:
        m.close()
