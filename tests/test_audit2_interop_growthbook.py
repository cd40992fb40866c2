"""GrowthBook import, second audit: numbers the SDK compares exactly (Python ints of any
size against ints and floats) must answer as the real ``growthbook`` SDK does on both
evaluators, though cfgcore orders numbers as doubles; constants cfgcore cannot hold are
refused naming the feature.
"""

from __future__ import annotations

import logging

import pytest
from growthbook.core import evalCondition
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cfgcore.interop import InteropError, growthbook


@pytest.fixture(autouse=True)
def _quiet_sdk():
    logging.getLogger("growthbook").setLevel(logging.CRITICAL)


def _when(condition):
    return {"f": {"defaultValue": False, "rules": [{"condition": condition, "force": True}]}}


# Around the points where doubles stop holding every integer (2**53), where the gap
# between doubles grows (2**60, 2**64, 2**100) and past a double's range (2**1024).
_POINTS = [0, 2**53, 2**60, 2**64, 2**100, 2**105, 2**1024, 10**400]
_INTS = st.builds(
    lambda p, d, s: s * (p + d),
    st.sampled_from(_POINTS),
    st.integers(-2050, 2050),
    st.sampled_from([1, -1]),
)
_FLOATS = st.one_of(
    st.builds(float, st.sampled_from(_POINTS[:6])),
    st.floats(allow_nan=True, allow_infinity=True),
)
_NUMBERS = st.one_of(_INTS, _FLOATS)
_OPS = ["$gt", "$gte", "$lt", "$lte", "$eq", "$ne"]


def _sdk(attrs, condition):
    return evalCondition(attrs, condition, {})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(op=st.sampled_from(_OPS), constant=_NUMBERS, values=st.lists(_NUMBERS, max_size=6))
@example(op="$gt", constant=2**53, values=[2**53 + 1])  # one past the last exact double
@example(op="$gte", constant=2**60 + 1, values=[2**60, 2.0**60, 2**60 + 1, 2**60 + 2])
@example(op="$lt", constant=2.0**64, values=[2**64 - 1, 2**64 + 1])
@example(op="$lte", constant=-(2**53) - 1, values=[-(2**53), -(2**53) - 2])
@example(op="$gt", constant=10**20, values=[10**400, -(10**400)])  # past a double
@example(op="$lt", constant=float("inf"), values=[10**400, float("inf")])
@example(op="$gte", constant=float("nan"), values=[1, float("nan")])
@example(op="$eq", constant=float("nan"), values=[float("nan")])
def test_numbers_compare_exactly_as_the_sdk(make_py_and_c, op, constant, values):
    condition = {"n": {op: constant}}
    try:
        snap = growthbook.to_snapshot(_when(condition))
    except InteropError as exc:
        # only constants cfgcore cannot hold: past a double's range, or an int past
        # 2**106 that is not a double
        assert "features.f" in str(exc) and "'n'" in str(exc)
        assert isinstance(constant, int) and abs(constant) >= 2**106
        return
    engines = [make(snap) for make in make_py_and_c]
    for v in [*values, None]:
        attrs = {"n": v} if v is not None else {}
        want = _sdk(attrs, condition)
        for engine in engines:
            got = engine.is_enabled("f", growthbook.context(attrs))
            assert got is want, (condition, v)


@pytest.mark.parametrize(
    ("condition", "value", "want"),
    [
        # exact above 2**53, where both numbers round to one double
        ({"$gt": 2**53}, 2**53 + 1, True),
        ({"$lt": 2**60 + 1}, 2.0**60, True),
        ({"$gte": 2**60 + 1}, 2**60, False),
        ({"$lte": 2**64 + 1}, 2**64 + 2, False),
        # an int past a double's range is beyond every constant
        ({"$gt": 1e300}, 10**400, True),
        ({"$lt": float("inf")}, 10**400, True),
        ({"$gte": float("inf")}, 10**400, False),
        ({"$lt": -1e300}, -(10**400), True),
        # NaN: ordered with nothing, equal to nothing
        ({"$gt": float("nan")}, 1, False),
        ({"$ne": float("nan")}, 1, True),
        ({"$in": [float("nan"), 1]}, 1, True),
        ({"$nin": [float("nan")]}, float("nan"), True),
    ],
)
def test_number_edges_agree_with_the_sdk(make, condition, value, want):
    engine = make(growthbook.to_snapshot(_when({"n": condition})))
    attrs = {"n": value}
    assert _sdk(attrs, {"n": condition}) is want
    assert engine.is_enabled("f", growthbook.context(attrs)) is want


@pytest.mark.parametrize(
    "condition",
    [
        {"n": 10**400},
        {"n": {"$in": [1, -(10**400)]}},
        {"n": {"$gt": 10**400}},
        {"n": {"$lt": 2**110 + 1}},  # not a double, and its residual is not one either
    ],
)
def test_constants_cfgcore_cannot_hold_are_refused_naming_the_feature(condition):
    features = {"big": _when(condition)["f"], "ok": {"defaultValue": 1}}
    with pytest.raises(InteropError) as err:
        growthbook.to_snapshot(features, source="features.json")
    text = str(err.value)
    assert "features.json" in text and "features.big" in text and "'n'" in text
    assert "ok" not in text.replace("out of", "")
    snap = growthbook.to_snapshot(features, on_error="skip")
    assert list(snap.flags) == ["ok"] and "big" in snap.metadata["refused"]
