"""flagd, fifth audit: ``<``, ``<=``, ``>``, ``>=`` against a string literal, which the
import refused, answer as flagd's Python in-process evaluator (``FlagdCore``,
json-logic) on both cfgcore evaluators: a number or boolean against the literal's
number (Python's ``float``; never for other text), a string by code point, null or a
missing value as the text "null", an array or object as json-logic's text of it.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.interop import InteropError, flagd
from tests.fuzz import examples

core_mod = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402
from openfeature.exception import OpenFeatureError  # noqa: E402

MISSING = object()
OPS = ["<", "<=", ">", ">="]


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)


def _doc(cond: Any) -> dict[str, Any]:
    flag = {"state": "ENABLED", "variants": {"yes": "Y", "no": "N", "d": "D"},
            "defaultVariant": "d", "targeting": {"if": [cond, "yes", "no"]}}  # fmt: skip
    return {"flags": {"f": flag}}


def _peer(doc: dict[str, Any], attrs: dict[str, Any]) -> Any:
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))
    try:
        p = core.resolve_string_value("f", "FB", EvaluationContext("u1", copy.deepcopy(attrs)))
    except OpenFeatureError as exc:
        return ("FB", str(exc.error_code))
    return p.value


def _mine(engine: Any, attrs: dict[str, Any]) -> Any:
    r = flagd.resolve(engine, "f", flagd.context("u1", attrs), "FB")
    return r.value if r.error_code is None else ("FB", r.error_code)


LITERALS = ["b", "", "null", "B", "ab", "10", " 10 ", "1e3", "1_0", "-1", "é", "\U0001f600",
            "[object Object]", "1,2", "True", "true", "inf", "Infinity", "nan",
            "a\x00"]  # fmt: skip
VALUES = [MISSING, None, 0, 1, 9, 10, 11, 1.5, -2, 2**60, True, False, "", "a", "b", "ba",
          "B", "null", "nulm", "10", "9", "100", "é", "\uffff", "\U0001f600", "\ue000",
          [], [1], [1, 2], ["b"], [None], [True], {}, {"a": 1}, float("inf"), float("-inf"),
          "x" * 5000, "a" * 4095 + "c", "[object Object]", "1,2", "1,3", [[1, 2], 3]]  # fmt: skip


def _check(engines: list[Any], cond: Any, values: list[Any]) -> None:
    doc = _doc(cond)
    snap = flagd.to_snapshot(copy.deepcopy(doc))  # refused before
    made = [make(snap) for make in engines]
    for v in values:
        attrs = {} if v is MISSING else {"a": v}
        want = _peer(doc, attrs)
        for engine in made:
            assert _mine(engine, attrs) == want, (cond, "missing" if v is MISSING else v)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("lit", LITERALS, ids=repr)
def test_ordering_with_a_string_answers_as_flagds_python_evaluator(make_py_and_c, op, lit):
    _check(make_py_and_c, {op: [{"var": "a"}, lit]}, VALUES)
    _check(make_py_and_c, {op: [lit, {"var": "a"}]}, VALUES)


def test_the_cases_that_were_refused():
    for cond, attrs, want in [
        ({"<": [{"var": "a"}, "b"]}, {"a": "a"}, "Y"),
        ({"<": [{"var": "a"}, "b"]}, {"a": "B"}, "Y"),  # code point order
        ({">": [{"var": "a"}, "m"]}, {}, "Y"),  # null is the text "null"
        ({"<": [{"var": "a"}, "10"]}, {"a": 9}, "Y"),  # a number: the literal's number
        ({"<": [{"var": "a"}, "10"]}, {"a": "9"}, "N"),  # a string: string order
        ({"<": [{"var": "a"}, "b"]}, {"a": 1}, "N"),  # no number: never
    ]:
        assert _peer(_doc(cond), attrs) == want, cond
        assert _mine(_engine(cond), attrs) == want, cond


def _engine(cond: Any) -> Any:
    from cfgcore.engine import Engine

    return Engine.from_snapshot(flagd.to_snapshot(_doc(cond)))


def test_a_long_string_constant_is_refused_naming_the_flag():
    with pytest.raises(InteropError, match=r"flags\.f\.targeting\S*: .*'<' with the string"):
        flagd.to_snapshot(_doc({"<": [{"var": "a"}, "x" * 300]}))


def test_the_timestamp_against_numeric_text():
    _check_ts = _doc({"<": [{"var": "$flagd.timestamp"}, "99999999999"]})
    assert _mine(_engine({"<": [{"var": "$flagd.timestamp"}, "99999999999"]}), {}) == "Y"
    assert _peer(_check_ts, {}) == "Y"
    assert _mine(_engine({"<": [{"var": "$flagd.timestamp"}, "soon"]}), {}) == "N"


_CHARS = st.sampled_from(["a", "b", "B", "é", "\uffff", "\ue000", "\U0001f600", " ", "1", "0",
                          ",", "n", "u", "l", "\x00"])  # fmt: skip
_TEXT = st.lists(_CHARS, max_size=5).map("".join)
_VALUE = st.one_of(
    _TEXT, st.integers(-20, 20), st.floats(allow_nan=False), st.booleans(), st.none(),
    st.lists(st.one_of(_TEXT, st.integers(0, 3), st.none()), max_size=3),
)  # fmt: skip


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(op=st.sampled_from(OPS), lit=_TEXT, values=st.lists(_VALUE, min_size=1, max_size=6))
def test_generated_string_orderings_answer_as_flagd(make_py_and_c, op, lit, values):
    _check(make_py_and_c, {op: [{"var": "a"}, lit]}, values)
