"""Unleash constraint values yggdrasil (Rust) reads otherwise than cfgcore read them,
fifth audit, each checked against the SDK's engine:

* Unicode digits: ``"٣"`` is no number to Rust (``str::parse``) but was 3 to cfgcore's
  patterns (Python's ``\\d``), in a NUM constraint's value and in a context value.
* A ``{`` in a REGEX that starts no counted repetition (``a{``, ``{x}``): an error to
  Rust's regex crate (Unleash never matches), a literal brace to RE2 (cfgcore
  matched). ``a{02}`` is a repetition to Rust; whitespace inside the braces (which
  Rust skips) and counts over RE2's 1000 are refused naming the constraint.
* An escaped digit in a REGEX (``\\0``, ``\\123``): an error to Rust, octal to RE2; a
  class as a range start (``[\\d-z]``): an error to Rust, a range to RE2; group names
  Rust refuses (duplicates) or RE2 cannot read (``(?<n.x>a)``).
* A constraint or feature field of the wrong type (``values: [1]``, ``value: 5``,
  ``enabled: "true"``, a parameter ``rollout: 100``, a weight ``"1000"``): yggdrasil rejects
  the whole payload; refused naming the field (cfgcore read its text).
* A string operator or IN_CIDR without values turns yggdrasil's whole feature off,
  even where another strategy holds: refused (cfgcore served the other strategy).
"""

from __future__ import annotations

import json

import pytest

from cfgcore.interop import InteropError, unleash

engine_mod = pytest.importorskip("yggdrasil_engine.engine")

from tests.test_audit3_interop_unleash import _quiet  # noqa: E402, F401


def _payload(*constraints: dict, second: bool = False) -> dict:
    strategies = [{"name": "default", "parameters": {}, "constraints": list(constraints)}]
    if second:
        strategies.append({"name": "default", "parameters": {}})
    return {"version": 2, "features": [{"name": "f", "enabled": True, "strategies": strategies}]}


def _ygg(payload: dict, ctx: dict) -> bool:
    ye = engine_mod.UnleashEngine()
    ye.take_state(json.dumps(payload))
    return bool(ye.is_enabled("f", ctx).is_enabled)


def _agree(engines, payload: dict, contexts: list[dict]) -> None:
    snap = unleash.to_snapshot(payload)
    for make in engines:
        engine = make(snap)
        for ctx in contexts:
            assert engine.is_enabled("f", unleash.context(ctx)) is _ygg(payload, ctx), ctx


def _x(value: str) -> dict:
    return {"properties": {"x": value}}


@pytest.mark.parametrize("op", ["NUM_LT", "NUM_EQ", "DATE_AFTER"])
@pytest.mark.parametrize(
    "value", ["\u0663", "\uff13", "\u0662\u0660\u0662\u0664-01-01T00:00:00.000Z"]
)
def test_a_constraint_value_in_other_digits_is_refused(op, value):
    with pytest.raises(InteropError, match=r"features\[0\]\.strategies\[0\]\.constraints\[0\]"):
        unleash.to_snapshot(_payload({"contextName": "x", "operator": op, "value": value}))


def test_a_context_value_in_other_digits_is_no_number(make_py_and_c):
    for op, value in [("NUM_LT", "5"), ("NUM_GT", "1"), ("NUM_EQ", "3")]:
        payload = _payload({"contextName": "x", "operator": op, "value": value})
        _agree(make_py_and_c, payload, [_x("\u0663"), _x("\uff13"), _x("3"), _x("\u0661\u0660")])
    payload = _payload({"contextName": "x", "operator": "DATE_AFTER",
                        "value": "2020-01-01T00:00:00.000Z"})  # fmt: skip
    _agree(make_py_and_c, payload, [_x("\u0662\u0660\u0662\u0664-01-01T00:00:00.000Z")])


@pytest.mark.parametrize(
    "pattern, texts",
    [
        ("^a{$", ["a{", "a"]), ("^{x}$", ["{x}"]), ("^a{x}$", ["a{x}"]), ("^a{1$", ["a{1"]),
        ("^a{}$", ["a{}"]), ("^x{2}{$", ["xx{"]), ("^a{\u0663}$", ["a{\u0663}", "aaa"]),
        ("^a{02}$", ["aa", "a{02}"]), ("^a{2,}$", ["aa", "a"]), ("^\\x{61}{2}$", ["aa"]),
        ("^[{]$", ["{"]), ("^a\\{$", ["a{"]), ("}", ["}"]), ("^a{2}?$", ["aa"]),
    ],
)  # fmt: skip
def test_braces_answer_as_yggdrasil(make_py_and_c, pattern, texts):
    payload = _payload({"contextName": "x", "operator": "REGEX", "value": pattern})
    _agree(make_py_and_c, payload, [_x(t) for t in texts])
    inverted = _payload({"contextName": "x", "operator": "REGEX", "value": pattern,
                         "inverted": True})  # fmt: skip
    _agree(make_py_and_c, inverted, [_x(t) for t in texts])


@pytest.mark.parametrize("pattern", ["^a{ 2}$", "^a{2, 3}$", "^a{\t2}$", "^a{1001}$"])
def test_braces_read_otherwise_are_refused_naming_the_constraint(pattern):
    with pytest.raises(InteropError) as err:
        unleash.to_snapshot(_payload({"contextName": "x", "operator": "REGEX", "value": pattern}))
    assert "features[0].strategies[0].constraints[0]" in str(err.value)
    assert "REGEX constraint" in str(err.value)


@pytest.mark.parametrize("op", ["STR_CONTAINS", "STR_STARTS_WITH", "STR_ENDS_WITH", "IN_CIDR"])
@pytest.mark.parametrize("inverted", [False, True])
def test_an_operator_without_values_is_refused(op, inverted):
    c = {"contextName": "remoteAddress", "operator": op, "values": [], "inverted": inverted}
    # yggdrasil: the whole feature is off, even with another strategy that holds
    assert _ygg(_payload(c, second=True), {"remoteAddress": "10.1.1.1"}) is False
    with pytest.raises(InteropError, match="invalid value"):
        unleash.to_snapshot(_payload(c, second=True))


# -- a text ending with a backslash -------------------------------------------------------
# yggdrasil quotes constraint and strategy texts in the rule it compiles; a final
# backslash escapes the closing quote, and the whole feature is off (even where another
# strategy holds). cfgcore answered as the text reads.
@pytest.mark.parametrize(
    "constraint",
    [
        {"contextName": "x", "operator": "REGEX", "value": "a\\\\"},
        {"contextName": "x", "operator": "IN", "values": ["a\\", "b"]},
        {"contextName": "x", "operator": "NOT_IN", "values": ["a\\"]},
        {"contextName": "x", "operator": "STR_ENDS_WITH", "values": ["\\"]},
        {"contextName": "x\\", "operator": "IN", "values": ["a"]},
    ],
)
def test_a_constraint_text_ending_with_a_backslash_is_refused(constraint):
    payload = _payload(constraint, second=True)
    assert _ygg(payload, {"properties": {"x": "b"}}) is False
    with pytest.raises(InteropError) as err:
        unleash.to_snapshot(payload)
    assert "features[0].strategies[0].constraints[0]" in str(err.value)
    assert "backslash" in str(err.value)


@pytest.mark.parametrize(
    "strategy, key",
    [
        ({"name": "userWithId", "parameters": {"userIds": "u\\,v"}}, "userIds"),
        ({"name": "flexibleRollout",
          "parameters": {"rollout": "100", "groupId": "g\\", "stickiness": "default"}},
         "groupId"),
        ({"name": "remoteAddress", "parameters": {"IPs": "1.2.3.4\\"}}, "IPs"),
    ],
)  # fmt: skip
def test_a_strategy_parameter_ending_with_a_backslash_is_refused(strategy, key):
    payload = {"version": 2, "features": [{"name": "f", "enabled": True, "strategies": [
        strategy, {"name": "default", "parameters": {}}]}]}  # fmt: skip
    assert _ygg(payload, {"userId": "q", "remoteAddress": "9.9.9.9"}) is False
    with pytest.raises(InteropError, match=rf"features\[0\]\.strategies\[0\]\.parameters\.{key}"):
        unleash.to_snapshot(payload)


def test_backslashes_elsewhere_still_import_and_answer_as_yggdrasil(make_py_and_c):
    payload = _payload(
        {"contextName": "x", "operator": "REGEX", "value": "^a\\\\d$"},
        {"contextName": "x", "operator": "STR_CONTAINS", "values": ["\\d"]},
    )
    _agree(make_py_and_c, payload, [_x("a\\d"), _x("a1"), _x("\\")])
    strategy_variant = {"version": 2, "features": [{"name": "f", "enabled": True, "strategies": [
        {"name": "default", "parameters": {"unused": "x\\"}}]}]}  # fmt: skip
    _agree(make_py_and_c, strategy_variant, [{"userId": "q"}])


@pytest.mark.parametrize(
    "pattern, text",
    [("\\0", "\x00"), ("\\00", "\x00"), ("\\12", "\n"), ("\\123", "S"), ("[\\0]", "\x00"),
     ("[a\\0]", "a"), ("\\\\0", "\\0"), ("[\\\\0]", "0")],
)  # fmt: skip
def test_an_escaped_digit_answers_as_yggdrasil(make_py_and_c, pattern, text):
    # Rust's regex crate has no octal escapes and no backreferences: an error, so the
    # constraint never matches; RE2 read "\\123" as "S" (an escaped backslash is no escape)
    for inverted in (False, True):
        c = {"contextName": "x", "operator": "REGEX", "value": pattern, "inverted": inverted}
        _agree(make_py_and_c, _payload(c), [_x(text), _x("zz")])


@pytest.mark.parametrize(
    "pattern", ["[\\d-z]", "[\\w-z]", "[\\s-z]", "[\\pL-z]", "[a\\p{Greek}-z]"]
)
def test_a_class_as_a_range_start_never_matches_as_in_yggdrasil(make_py_and_c, pattern):
    # an error to Rust's regex crate; RE2 read the written-out \d as a range and matched
    for inverted in (False, True):
        c = {"contextName": "x", "operator": "REGEX", "value": pattern, "inverted": inverted}
        _agree(make_py_and_c, _payload(c), [_x(t) for t in ("z", "-", "5", "a", " ", "α")])


def test_a_class_with_a_literal_dash_still_matches():
    c = {"contextName": "x", "operator": "REGEX", "value": "^[\\w-]+$"}
    assert _ygg(_payload(c), _x("a-b")) is True
    assert unleash.to_snapshot(_payload(c))  # imported, answers checked elsewhere


@pytest.mark.parametrize(
    "pattern, text",
    [("(?<n>a)(?<n>b)", "ab"), ("(?P<n>a)(?<n>b)", "ab"), ("(?<n>a)|(?<n>b)", "a"),
     ("(?<1n>a)", "a"), ("(?<n.x>a)", "a"), ("(?<n[1]>a)", "a"), ("(?<n>a)(?<m>b)", "ab"),
     ("(?P<é>a)", "a")],
)  # fmt: skip
def test_group_names_answer_as_yggdrasil(make_py_and_c, pattern, text):
    # a duplicate or badly formed name is an error to Rust (never matches); a name RE2
    # cannot read (n.x) was RE2's error, so cfgcore never matched what Rust matches
    for inverted in (False, True):
        c = {"contextName": "x", "operator": "REGEX", "value": pattern, "inverted": inverted}
        _agree(make_py_and_c, _payload(c), [_x(text), _x("zz")])


# -- wrongly typed constraint fields ------------------------------------------------------
@pytest.mark.parametrize(
    "field, value",
    [("values", {"a": 1}), ("values", ["a", 1]), ("values", [None]), ("values", "a"),
     ("value", 5), ("contextName", 5), ("inverted", "yes"), ("caseInsensitive", 1)],
)  # fmt: skip
def test_a_wrongly_typed_constraint_field_is_refused_naming_it(field, value):
    # yggdrasil rejects the whole payload (no feature is on, not even another one);
    # cfgcore read the text of the value (str(1), a dict's keys) and imported it
    c = {"contextName": "x", "operator": "IN", "values": ["a"], field: value}
    payload = _payload(c)
    payload["features"].append(
        {"name": "g", "enabled": True, "strategies": [{"name": "default", "parameters": {}}]}
    )
    ye = engine_mod.UnleashEngine()
    ye.take_state(json.dumps(payload))
    assert ye.is_enabled("g", {}).is_enabled is False
    with pytest.raises(InteropError) as err:
        unleash.to_snapshot(payload)
    assert f"features[0].strategies[0].constraints[0].{field}: expected" in str(err.value)


_G = {"name": "g", "enabled": True, "strategies": [{"name": "default", "parameters": {}}]}
_ROLLOUT = {"rollout": "100", "stickiness": "default", "groupId": "f"}


@pytest.mark.parametrize(
    "feature, where",
    [
        ({"enabled": "true", "strategies": [{"name": "default", "parameters": {}}]},
         "features[0].enabled: expected a boolean"),
        ({"enabled": True, "strategies": [{"name": "flexibleRollout",
                                            "parameters": {**_ROLLOUT, "rollout": 100}}]},
         "features[0].strategies[0].parameters.rollout: expected a string"),
        ({"enabled": True, "strategies": [{"name": "default", "parameters": {"x": None}}]},
         "features[0].strategies[0].parameters.x: expected a string"),
        ({"enabled": True, "strategies": [{"name": 5, "parameters": {}}]},
         "features[0].strategies[0].name: expected a string"),
        ({"enabled": True, "strategies": [{"name": "default", "parameters": {},
                                            "segments": ["1"]}]},
         "features[0].strategies[0].segments[0]: expected an integer"),
        ({"enabled": True, "strategies": [{"name": "default", "parameters": {}}],
          "variants": [{"name": "v", "weight": "1000"}]},
         "features[0]: malformed: variants[0].weight: expected an integer"),
    ],
)  # fmt: skip
def test_a_wrongly_typed_feature_field_is_refused_naming_it(feature, where):
    # yggdrasil rejects the whole payload (not even "g" is on); cfgcore imported "f"
    payload = {"version": 2, "features": [{"name": "f", **feature}, _G]}
    ye = engine_mod.UnleashEngine()
    ye.take_state(json.dumps(payload))
    assert ye.is_enabled("g", {}).is_enabled is False
    with pytest.raises(InteropError) as err:
        unleash.to_snapshot(payload)
    assert where in str(err.value)
