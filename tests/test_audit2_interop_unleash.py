"""Unleash import, second audit, against yggdrasil (the engine UnleashClient 6 evaluates
with): hostile constraint and context values (whitespace, "inf", "1_000", ".5", NaN,
numbers past a double, NUM_EQ's epsilon, dates without a zone or with nanoseconds, year
0, versions past 64 bits, untrimmed IP addresses, an unreadable or missing currentTime).
A constraint value yggdrasil cannot read turns its whole feature off there (the Node SDK
fails only the constraint), so the importer refuses it naming the feature.
"""

from __future__ import annotations

import functools
import json
import logging
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.interop import InteropError, unleash
from tests.fuzz import examples

engine_mod = pytest.importorskip("yggdrasil_engine.engine")


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("yggdrasil_engine").setLevel(logging.CRITICAL)


def _payload(*constraints: dict[str, Any], extra_default: bool = False) -> dict[str, Any]:
    strategies = [{"name": "default", "parameters": {}, "constraints": list(constraints)}]
    if extra_default:
        strategies.append({"name": "default", "parameters": {}})
    return {"version": 2, "features": [{"name": "f", "enabled": True, "strategies": strategies}]}


@functools.lru_cache(maxsize=256)
def _ygg_engine(state: str) -> Any:
    """yggdrasil holding ``state`` (a payload's JSON), built once per payload and then
    only asked: its answers depend on the state it took alone (asking counts metrics)."""
    ye = engine_mod.UnleashEngine()
    ye.take_state(state)
    return ye


def _ygg(payload: dict[str, Any], ctx: dict[str, Any]) -> bool:
    return bool(_ygg_engine(json.dumps(payload)).is_enabled("f", ctx).is_enabled)


def _agree(make, payload: dict[str, Any], contexts: list[dict[str, Any]]) -> None:
    engine = make(unleash.to_snapshot(payload))
    for ctx in contexts:
        want = _ygg(payload, ctx)
        assert engine.is_enabled("f", unleash.context(ctx)) is want, (payload, ctx)


def _props(value: Any) -> dict[str, Any]:
    return {"properties": {"x": value}}


_ODD_NUMBERS = [
    "5", " 5", "5 ", "+5", "5.", ".5", "-.5", "+.5e-3", "5e2", "1_000", "0x10", "\u0661\u0662",
    "inf", "Infinity", "-infinity", "INF", "NaN", "1e400", "-1e400", "1e-400", "-0", "",
    "9007199254740993", "5.0.0",
]  # fmt: skip


@pytest.mark.parametrize("op", ["NUM_GTE", "NUM_LT", "NUM_EQ", "NUM_LTE", "NUM_GT"])
@pytest.mark.parametrize("bound", ["-1e300", "0", "5", "1e300", "9007199254740992"])
def test_context_numbers_read_as_yggdrasil_reads_them(make, op, bound):
    # no trimming, Rust's "inf"/"infinity", no "_" or hex, NaN compares with nothing
    payload = _payload({"contextName": "x", "operator": op, "value": bound})
    _agree(make, payload, [_props(v) for v in _ODD_NUMBERS])


@pytest.mark.parametrize(
    ("value", "ctx", "want"),
    [
        ("0.3", "0.30000000000000004", True),  # |x - n| < f64::EPSILON
        ("0", "2.2e-16", True),
        ("0", "2.3e-16", False),
        ("1", "1.0000000000000002", False),  # exactly epsilon apart: not below it
        ("1", "0.9999999999999999", True),
        ("100", "100.00000000000001", False),
        ("1e20", "100000000000000000001", True),  # both read as the same double
        ("-0", "0", True),
        ("1e400", "1e400", False),  # Infinity minus Infinity is NaN
    ],
)
def test_num_eq_is_equal_within_epsilon_as_yggdrasil(make, value, ctx, want):
    payload = _payload({"contextName": "x", "operator": "NUM_EQ", "value": value})
    assert _ygg(payload, _props(ctx)) is want
    _agree(make, payload, [_props(ctx)])


@pytest.mark.parametrize(
    ("op", "value"),
    [
        ("NUM_EQ", ".5"), ("NUM_LT", "inf"), ("NUM_GT", "NaN"), ("NUM_GTE", "1_000"),
        ("NUM_LTE", "abc"), ("NUM_EQ", ""), ("DATE_AFTER", "2024-01-01"),
        ("DATE_BEFORE", "2024-01-01T00:00:00"), ("DATE_AFTER", "2024-01-01T00:00:00.12Z"),
        ("DATE_AFTER", "2024-02-30T00:00:00Z"), ("DATE_BEFORE", "2024-01-01T00:00:00z"),
        ("SEMVER_EQ", "01.2.3"), ("SEMVER_GT", "99999999999999999999.0.0"),
        ("SEMVER_LT", "1.2.3.4"), ("SEMVER_EQ", "1.2"),
    ],
)  # fmt: skip
def test_a_constraint_value_yggdrasil_cannot_read_is_refused(op, value):
    constraint = {"contextName": "x", "operator": op, "value": value}
    payload = _payload(constraint, extra_default=True)
    if op != "SEMVER_EQ" or value != "1.2":
        # yggdrasil: the whole feature is off, though its second strategy is "default"
        assert _ygg(payload, _props("1")) is False
    with pytest.raises(InteropError) as err:
        unleash.to_snapshot(payload, source="features.json")
    text = str(err.value)
    assert "features.json" in text and "features[0].strategies[0].constraints[0]" in text
    assert op in text and "invalid value" in text


@pytest.mark.parametrize(
    ("op", "value"),
    [
        ("NUM_EQ", " 5 "), ("NUM_LT", "5."), ("NUM_GT", "1e400"), ("NUM_GTE", "+5"),
        ("DATE_AFTER", " 2024-01-01T00:00:00Z"), ("DATE_BEFORE", "2024-01-01T00:00:00.123Z"),
        ("DATE_AFTER", "2024-01-01T00:00:00+14:00"), ("DATE_BEFORE", "0001-01-01T00:00:00Z"),
        ("SEMVER_EQ", " 1.2.3"), ("SEMVER_GT", "18446744073709551615.0.0"),
        ("SEMVER_LT", "v1.2.3"),
    ],
)  # fmt: skip
def test_constraint_values_yggdrasil_reads_agree(make, op, value):
    payload = _payload({"contextName": "x", "operator": op, "value": value})
    contexts = [_props(v) for v in ["5", "6", "4", "1e400", "1.2.3", "1.2.4", "0.0.1",
                                    "18446744073709551615.1.0", "2024-01-01T00:00:00Z",
                                    "2023-12-31T23:00:00Z", "2024-01-02T00:00:00Z"]]  # fmt: skip
    _agree(make, payload, contexts)


@pytest.mark.parametrize("op", ["NUM_EQ", "NUM_LT", "NUM_GTE"])
def test_a_version_as_a_number_constraint_value_is_refused(op):
    # yggdrasil compares versions there (1.2.3 < 5.0.0); the Node SDK reads no number
    payload = _payload({"contextName": "x", "operator": op, "value": "5.0.0"})
    if op == "NUM_LT":
        assert _ygg(payload, _props("1.2.3")) is True
    with pytest.raises(InteropError) as err:
        unleash.to_snapshot(payload)
    assert "features[0].strategies[0].constraints[0]" in str(err.value)
    assert "5.0.0" in str(err.value) and op in str(err.value)


_ODD_DATES = [
    "2024-01-01T00:00:00Z", "2024-01-01t00:00:00z", "2024-01-01 00:00:00Z",
    " 2024-01-01T00:00:01Z ", "2024-01-01T00:00:00.123456789Z", "2024-01-01T00:00:00",
    "2024-01-01", "2024-01-01T00:00:00+00", "2024-01-01T00:00Z", "0000-03-01T00:00:00Z",
    "0001-01-01T00:00:00Z", "2024-02-30T00:00:00Z", "2024-01-01T00:00:00-00:00",
    "2024-01-01T01:00:00+01:00", "9999-12-31T23:59:59Z", "NaN", "-1e400",
]  # fmt: skip


@pytest.mark.parametrize("op", ["DATE_AFTER", "DATE_BEFORE"])
@pytest.mark.parametrize("field", ["x", "currentTime"])
@pytest.mark.parametrize("bound", ["2024-01-01T00:00:00Z", "0001-01-01T00:00:00.000Z"])
def test_context_dates_read_as_yggdrasil_reads_them(make, op, field, bound):
    # an unreadable currentTime is no date (not the clock); year 0 is 1 BC
    payload = _payload({"contextName": field, "operator": op, "value": bound})
    if field == "x":
        contexts = [_props(v) for v in _ODD_DATES]
    else:
        contexts = [{"currentTime": v} for v in _ODD_DATES]
    _agree(make, payload, contexts)


def test_ip_addresses_are_read_untrimmed(make):
    payload = _payload(
        {"contextName": "x", "operator": "IN_CIDR", "values": ["10.0.0.0/8", " 192.168.0.0/16"]}
    )
    contexts = [_props(v) for v in ["10.0.0.1", " 10.0.0.1", "10.0.0.1 ", "192.168.1.1",
                                    "010.0.0.1", "10.0.0.256"]]  # fmt: skip
    _agree(make, payload, contexts)


def test_versions_past_64_bits_are_no_versions(make):
    payload = _payload({"contextName": "x", "operator": "SEMVER_GTE", "value": "0.0.0"})
    contexts = [_props(v) for v in ["18446744073709551615.0.0", "18446744073709551616.0.0",
                                    "1.18446744073709551616.0", " 1.2.3", "1.2"]]  # fmt: skip
    _agree(make, payload, contexts)


@pytest.mark.parametrize(
    "constraint",
    [
        {"operator": "STR_ENDS_WITH", "values": ["Z"]},
        {"operator": "STR_CONTAINS", "values": ["T"]},
        {"operator": "STR_CONTAINS", "values": ["."]},
        {"operator": "REGEX", "value": "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z$"},
    ],
)
def test_a_missing_current_time_is_the_clocks_text(make, constraint):
    # yggdrasil reads the clock as "YYYY-MM-DDTHH:MM:SSZ" for string operators
    payload = _payload({"contextName": "currentTime", **constraint})
    _agree(make, payload, [{}, {"userId": "u"}])


# -- random constraints over hostile values --------------------------------------------

_HOSTILE = _ODD_NUMBERS + _ODD_DATES + [
    "1.2.3", "1.2.3-0", "1.2.3+build", "1.2.3-alpha.01", "v1.2.3", "1.2.3-beta.11",
    "10.0.0.1", "::ffff:10.0.0.1", "\U0001f600", "\u00df", "SS", "NL", "nl", "",
]  # fmt: skip
_VALUES = {
    "NUM": ["5", " 5", "5.", "1e400", "-0", "9007199254740993", "0.3", "5.0.0", "1.2"],
    "DAT": ["2024-01-01T00:00:00Z", "2024-01-01T00:00:00.123+02:00", "0001-01-01T00:00:00Z"],
    "SEM": ["1.2.3", " 1.2.3", "1.2.3-0", "1.2.3+b", "v1.2.3", "18446744073709551615.0.0"],
}
_OPS = ["NUM_EQ", "NUM_GT", "NUM_GTE", "NUM_LT", "NUM_LTE", "DATE_AFTER", "DATE_BEFORE",
        "SEMVER_EQ", "SEMVER_GT", "SEMVER_LT", "SEMVER_GTE", "SEMVER_LTE", "IN_CIDR",
        "STR_CONTAINS", "IN"]  # fmt: skip


def _constraint(rng: random.Random) -> dict[str, Any]:
    op = rng.choice(_OPS)
    c: dict[str, Any] = {"contextName": rng.choice(["x", "userId", "currentTime"]), "operator": op}
    if op in ("IN", "STR_CONTAINS"):
        c["values"] = rng.sample(_HOSTILE, 2)
    elif op == "IN_CIDR":
        c["values"] = rng.sample(["10.0.0.0/8", " 10.0.0.0/8", "::/0", "10.0.0.1"], 2)
    else:
        c["value"] = rng.choice(_VALUES[op[:3]])
    c["inverted"] = rng.random() < 0.3
    return c


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False))
def test_random_constraints_over_hostile_values_agree(make_py_and_c, rng):
    payload = _payload(_constraint(rng))
    try:
        snap = unleash.to_snapshot(payload)
    except InteropError:
        return  # a refusal names the feature (tests above)
    engines = [make(snap) for make in make_py_and_c]
    for _ in range(10):
        ctx: dict[str, Any] = {"userId": rng.choice(_HOSTILE), "properties": {}}
        if rng.random() < 0.7:
            ctx["properties"]["x"] = rng.choice(_HOSTILE)
        if rng.random() < 0.5:
            ctx["currentTime"] = rng.choice(_HOSTILE)
        want = _ygg(payload, ctx)
        for engine in engines:
            assert engine.is_enabled("f", unleash.context(ctx)) is want, (payload, ctx)


def test_context_never_raises_on_an_odd_clock():
    for now in (0, 1e300, float("nan"), float("inf"), -1e20):
        ctx = unleash.context({"userId": "u"}, now=now)
        assert ctx["userId"] == "u"
    assert unleash.context({}, now=1_700_000_000)["currentTime"] == "2023-11-14T22:13:20Z"


def test_skip_leaves_out_refused_features_and_their_dependants(make):
    good = {"name": "good", "enabled": True, "strategies": [{"name": "default"}]}
    bad = {"name": "bad", "enabled": True, "strategies": [
        {"name": "default", "constraints": [{"contextName": "x", "operator": "NUM_EQ",
                                             "value": ".5"}]}]}  # fmt: skip
    child = {"name": "child", "enabled": True, "strategies": [{"name": "default"}],
             "dependencies": [{"feature": "bad"}]}  # fmt: skip
    payload = {"version": 2, "features": [good, bad, child]}
    with pytest.raises(InteropError, match=r"features\[1\]\.strategies"):
        unleash.to_snapshot(payload)
    snap = unleash.to_snapshot(payload, on_error="skip")
    assert sorted(snap.flags) == ["good"]
    refused = snap.metadata["refused"]
    assert "invalid value '.5'" in refused["bad"] and "'bad'" in refused["child"]
    engine = make(snap)
    ctx = {"userId": "u", "properties": {"x": "0.5"}}
    ye = engine_mod.UnleashEngine()
    ye.take_state(json.dumps(payload))
    assert engine.is_enabled("good", unleash.context(ctx)) is ye.is_enabled("good", ctx).is_enabled


# -- REGEX: yggdrasil runs Rust's regex crate (Unicode \d, \w, \s), cfgcore RE2 ---------

_UNICODE_TEXT = [
    "Jos\u00e9", "\u0661\u0662", "\u00e9t\u00e9", "a\u00a0b", "a\u2003b", "x_1", "\u24b6",
    "\u0915\u094d", "a\u200db", "\U0001d7d8", "\u3000", "tab\there", "", "abc", "a-b",
    "\u2167", "\U0001f600",
]  # fmt: skip


@pytest.mark.parametrize(
    "pattern",
    ["^\\w+$", "^\\d+$", "\\s", "^[\\w-]+$", "^\\W", "\\D", "^\\S+$", "(?i)^JOS\\w$",
     "^[\\d.]+$", "\\bcat\\b"],
)  # fmt: skip
def test_regex_classes_are_unicode_as_in_yggdrasil(make, pattern):
    payload = _payload({"contextName": "x", "operator": "REGEX", "value": pattern})
    _agree(make, payload, [_props(v) for v in _UNICODE_TEXT])


@pytest.mark.parametrize(
    "pattern", ["[a&&b]", "[\\w--\\d]", "a{,3}", "(?x)a b", "\\Qa.b\\E", "\\<a", "\\b{start}a"]
)
def test_regex_constructs_meaning_something_else_to_re2_are_refused(pattern):
    payload = _payload({"contextName": "x", "operator": "REGEX", "value": pattern})
    with pytest.raises(InteropError) as err:
        unleash.to_snapshot(payload)
    text = str(err.value)
    assert "features[0].strategies[0].constraints[0]" in text and "Rust's regex" in text
