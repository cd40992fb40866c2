"""GrowthBook import, second audit: numbers the SDK compares exactly (Python ints of any
size against ints and floats) must answer as the real ``growthbook`` SDK does on both
evaluators, though cfgcore orders numbers as doubles; constants cfgcore cannot hold are
refused naming the feature.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import growthbook as gb_sdk
import pytest
from growthbook.core import evalCondition
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cfgcore.interop import InteropError, growthbook
from tests.fuzz import examples


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


@settings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
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


# -- regular expressions on values longer than cfgcore's regex bound (4,096) -----------

_LONG = 5000


@pytest.mark.parametrize(
    "pattern",
    [
        # plain text, anchored or not: string tests, no bound on the length
        "needle", "^needle", "needle$", "^needle$", "x\\.com$", "^$", "^", "",
        # anchored at the start with bounded matches: the first 4,096 characters decide
        "^https?://", "^[a-z]{3}-\\d{1,5}", "^(?:ab|cd)e?",
    ],
)  # fmt: skip
@pytest.mark.parametrize("op", ["$regex", "$notRegex"])
def test_regexes_decide_values_past_the_bound_as_python_re(make, pattern, op):
    engine = make(growthbook.to_snapshot(_when({"x": {op: pattern}})))
    pad = "z" * _LONG
    values = [
        "needle" + pad, pad + "needle", pad + "needle\n", pad + "needle" + pad, "needle",
        "https://" + pad, "abc-123" + pad, "cde" + pad, "abe" + pad, pad, pad + "x.com", "",
        "\n", "needle\n",
    ]  # fmt: skip
    for value in values:
        attrs = {"x": value}
        want = _sdk(attrs, {"x": {op: pattern}})
        assert engine.is_enabled("f", growthbook.context(attrs)) is want, (pattern, value[:20])


@pytest.mark.parametrize(
    ("pattern", "unit"), [("\\d+", "1"), ("^\\d+$", "1"), ("needle.*$", "needle"), ("^a+", "a")]
)
def test_other_regexes_search_values_past_the_bound_as_the_sdk(make, pattern, unit):
    # once a documented difference: a pattern whose match could need the whole value
    # never matched one over 4,096 characters; context() now searches it whole
    # (tests/test_audit3_interop_growthbook.py)
    engine = make(growthbook.to_snapshot(_when({"x": {"$regex": pattern}})))
    long_value = unit * _LONG
    assert len(long_value) > 4096
    assert _sdk({"x": long_value}, {"x": {"$regex": pattern}}) is True
    assert engine.is_enabled("f", growthbook.context({"x": long_value})) is True
    short = long_value[:100]
    assert engine.is_enabled("f", growthbook.context({"x": short})) is True
    assert _sdk({"x": short}, {"x": {"$regex": pattern}}) is True


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.text(alphabet="ab\n.", max_size=6),
    anchor=st.sampled_from(["", "^", "$", "^$"]),
    head=st.integers(0, 4100),
    tail=st.integers(0, 4100),
    middle=st.text(alphabet="ab\n.", max_size=8),
)
def test_literal_regexes_agree_at_any_length(make_py_and_c, text, anchor, head, tail, middle):
    import re

    pattern = ("^" if anchor.startswith("^") else "") + re.escape(text)
    pattern += "$" if anchor.endswith("$") else ""
    value = "b" * head + middle + "a" * tail
    condition = {"x": {"$regex": pattern}}
    want = _sdk({"x": value}, condition)
    for make in make_py_and_c:
        engine = make(growthbook.to_snapshot(_when(condition)))
        assert engine.is_enabled("f", growthbook.context({"x": value})) is want


@pytest.mark.parametrize("op", ["$gt", "$gte", "$lt", "$lte"])
@pytest.mark.parametrize("constant", ["a", "b", "ab", "\U0001f600", ""])
def test_string_order_decides_values_past_the_regex_bound(make, op, constant):
    # ordering is a regex at the start of the value: a long value's head decides it
    engine = make(growthbook.to_snapshot(_when({"x": {op: constant}})))
    for value in ["a" * _LONG, "b" * _LONG, "ab" + "z" * _LONG, "\U0001f600" * _LONG, "a"]:
        want = _sdk({"x": value}, {"x": {op: constant}})
        assert engine.is_enabled("f", growthbook.context({"x": value})) is want, value[:4]


@pytest.mark.parametrize("op", ["$vgt", "$vlt", "$vgte"])
def test_version_order_decides_long_values(make, op):
    engine = make(growthbook.to_snapshot(_when({"v": {op: "1.2.3"}})))
    for value in ["1." + "2" * _LONG, "2." + "0" * _LONG, "0." + "9" * _LONG + ".1"]:
        want = _sdk({"v": value}, {"v": {op: "1.2.3"}})
        assert engine.is_enabled("f", growthbook.context({"v": value})) is want, value[:4]


def test_a_long_string_constant_to_order_by_is_refused_naming_the_feature():
    # the order regex grows with the square of the constant's length
    features = {"long": _when({"x": {"$gt": "a" * 300}})["f"], "ok": {"defaultValue": 1}}
    with pytest.raises(InteropError) as err:
        growthbook.to_snapshot(features, source="features.json")
    text = str(err.value)
    assert "features.json" in text and "features.long" in text and "'$gt'" in text
    assert "at most 256" in text


# -- experiments and rollouts: hostile hash attributes, seeds and keys -----------------

_IDS = [
    "", "u1", "\u00e9", "\U0001f600", "a" * 5000, "1", 1, 0, -1, 1.5, 2**53 + 1, 10**20, 1e300,
    float("inf"), float("nan"), True, None, [], ["x"], {"a": 1}, "\x00", -0.0, 1e21, 1e-7,
    123456789012345678901234567890,
]  # fmt: skip


def _rule(rng: Any) -> dict[str, Any]:
    hash_attr = rng.choice([None, "id", "dev", "", "x.y", "company"])
    if rng.random() < 0.4:
        d: dict[str, Any] = {
            "force": rng.choice([1, "v", {"a": 1}, [1], 0, "", True]),
            "coverage": rng.choice([None, 0, 0.5, 1, 0.3333, 1.5, -1]),
        }
        if rng.random() < 0.4:
            d["range"] = rng.choice([[0, 0.5], [0.2, 0.7], [0, 1], [0.5, 0.4]])
    else:
        n = rng.randint(1, 4)
        d = {
            "variations": [rng.choice([0, 1, "a", "b", None, {"k": 1}]) for _ in range(n)],
            "key": rng.choice(["e1", "\u00e9", "", None]),
            "coverage": rng.choice([None, 0, 0.5, 1, 0.99999]),
            "weights": rng.choice([None, [1 / n] * n, [0.5] * n, [0] * n]),
        }
        if rng.random() < 0.3:
            d["namespace"] = [rng.choice(["ns", "\u00e9", ""]), rng.choice([0, 0.2]), 1]
        if rng.random() < 0.3:
            d["ranges"] = [[j / n, (j + 1) / n] for j in range(n)]
    if hash_attr is not None:
        d["hashAttribute"] = hash_attr
    d["hashVersion"] = rng.choice([None, 1, 2, 2.0, 3, "2"])
    if rng.random() < 0.4:
        d["seed"] = rng.choice(["s", "\u00e9", "", None, 0])
    if rng.random() < 0.2:
        d["fallbackAttribute"] = rng.choice(["dev", "id"])
    if rng.random() < 0.2:
        d["filters"] = [{"attribute": rng.choice(["id", "dev"]), "seed": "f",
                         "ranges": [[0, 0.5]], "hashVersion": rng.choice([1, 2])}]  # fmt: skip
    return d


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False))
def test_bucketing_on_hostile_attributes_agrees_with_the_sdk(make_py_and_c, rng):
    features = {
        f"f{i}": {"defaultValue": rng.choice([0, "d", None, False]),
                  "rules": [_rule(rng) for _ in range(rng.randint(1, 3))]}
        for i in range(3)
    }  # fmt: skip
    engines = [make(growthbook.to_snapshot(copy.deepcopy(features))) for make in make_py_and_c]
    for _ in range(8):
        attrs = {k: rng.choice(_IDS) for k in ["id", "dev", "", "company"] if rng.random() < 0.8}
        sdk = gb_sdk.GrowthBook(attributes=copy.deepcopy(attrs), features=copy.deepcopy(features))
        try:
            ctx = growthbook.context(attrs)
            for key in features:
                want = sdk.eval_feature(key)
                for engine in engines:
                    value = growthbook.thaw(engine.evaluate(key, ctx).value)
                    assert (value, type(value)) == (want.value, type(want.value)), (key, attrs)
                    assert engine.is_enabled(key, ctx) is want.on
        finally:
            sdk.destroy()


@pytest.mark.parametrize(
    "rule",
    [
        {"variations": [0, 1], "seed": 5},
        {"variations": [0, 1], "key": 7},
        {"variations": [0, 1], "namespace": [0, 0, 1]},
        {"force": 1, "coverage": 0.5, "seed": 5.5},
        {"force": 1, "filters": [{"attribute": "id", "seed": 3, "ranges": [[0, 1]]}]},
    ],
)
def test_a_seed_key_or_namespace_that_is_not_text_is_refused(rule):
    # the SDK joins them to strings and raises TypeError on anything else
    features = {"f": {"defaultValue": 0, "rules": [rule]}}
    sdk = gb_sdk.GrowthBook(attributes={"id": "u1"}, features=features)
    try:
        with pytest.raises(TypeError):
            sdk.eval_feature("f")
    finally:
        sdk.destroy()
    with pytest.raises(InteropError, match="features.f.*(must be|expected) a string"):
        growthbook.to_snapshot(features)
