"""flagd export, fifth audit: an exported flag answers in flagd's own evaluator
(``FlagdCore``, its Python in-process evaluator) what cfgcore answers.

* A native ``eq``/``in`` on ``0``, ``1``, ``true`` or ``false``: cfgcore keeps booleans
  and numbers apart, flagd's ``===`` and ``in`` compare with Python's ``==`` (``True ==
  1``). The export tells a boolean from a number by the text ``cat`` makes of it.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.interop import flagd
from cfgcore.snapshot import snapshot_from_dict
from tests.fuzz import examples

core_mod = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402

MISSING = object()


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)


def _native(when: dict[str, Any]) -> Any:
    flag = {"variants": {"y": "Y", "n": "N"}, "default": "n",
            "rules": [{"when": when, "serve": "y"}]}  # fmt: skip
    return snapshot_from_dict({"flags": {"f": flag}})


def _flagd(doc: dict[str, Any], attrs: dict[str, Any]) -> Any:
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))  # FlagdCore renames keys of the document it is given
    return core.resolve_string_value("f", "FB", EvaluationContext("u", copy.deepcopy(attrs))).value


SPECIAL = [0, 1, True, False, 1.0, 0.0, -0.0]
LITERALS = [*SPECIAL, -1, 2, 2.5, "", "1", "True", "true", "a", 2**53 + 1]
VALUES = [MISSING, None, *LITERALS, "0", "False", [], [1], [True], {}, {"a": 1}, float(2**53)]


def _agree(engines: list[Any], when: dict[str, Any], values: list[Any]) -> None:
    snap = _native(when)
    doc = flagd.from_snapshot(snap)
    for v in values:
        attrs = {} if v is MISSING else {"a": v}
        want = _flagd(doc, attrs)
        for engine in engines:
            got = engine(snap).evaluate("f", attrs).value
            assert got == want, (when, "missing" if v is MISSING else v)


@pytest.mark.parametrize("lit", LITERALS, ids=repr)
def test_eq_exports_with_cfgcores_answers(make_py_and_c, lit):
    _agree(make_py_and_c, {"attr": "a", "eq": lit}, VALUES)


def test_the_cases_that_differed_before(make_py_and_c):
    # each answered Y in flagd (Python's True == 1) and N in cfgcore before
    cases = [
        ({"attr": "a", "eq": 1}, True),
        ({"attr": "a", "eq": True}, 1),
        ({"attr": "a", "eq": False}, 0.0),
        ({"attr": "a", "eq": 0}, False),
        ({"attr": "a", "in": ["x", 1]}, True),
        ({"attr": "a", "in": ["x", False]}, 0),
    ]
    for when, value in cases:
        doc = flagd.from_snapshot(_native(when))
        assert _flagd(doc, {"a": value}) == "N", when
        for engine in make_py_and_c:
            assert engine(_native(when)).evaluate("f", {"a": value}).value == "N"
    # and the same kind still matches
    doc = flagd.from_snapshot(_native({"attr": "a", "eq": True}))
    assert _flagd(doc, {"a": True}) == "Y"
    doc = flagd.from_snapshot(_native({"attr": "a", "eq": 1}))
    assert _flagd(doc, {"a": 1.0}) == "Y"


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hay=st.lists(st.sampled_from(LITERALS), min_size=1, max_size=5),
    values=st.lists(st.sampled_from(VALUES), min_size=1, max_size=6),
)
def test_in_exports_with_cfgcores_answers(make_py_and_c, hay, values):
    _agree(make_py_and_c, {"attr": "a", "in": hay}, values)


def test_a_boolean_eq_inside_not_and_any_answers_as_cfgcore(make_py_and_c):
    when = {"any": [{"not": {"attr": "a", "eq": True}}, {"attr": "b", "in": [0, "z"]}]}
    snap = _native(when)
    doc = flagd.from_snapshot(snap)
    for a in (True, 1, False, MISSING):
        for b in (0, False, "z", MISSING):
            attrs = {k: v for k, v in (("a", a), ("b", b)) if v is not MISSING}
            for engine in make_py_and_c:
                assert engine(snap).evaluate("f", attrs).value == _flagd(doc, attrs), attrs


# -- dotted names: flagd's var reads "a.b" as the path a -> b --------------------------
_DOTTED = {
    "flags": {
        "f": {
            "state": "ENABLED",
            "variants": {"y": "Y", "n": "N"},
            "defaultVariant": "n",
            "targeting": {
                "if": [
                    {"and": [{"===": [{"var": "user.plan"}, "pro"]},
                             {"in": [{"var": "user.geo.country"}, ["NL", "DE"]]}]},
                    "y",
                    "n",
                ]
            },
        }
    }
}  # fmt: skip

DOTTED_CONTEXTS = [
    {},
    {"user": {"plan": "pro", "geo": {"country": "NL"}}},
    {"user": {"plan": "pro", "geo": {"country": "FR"}}},
    {"user.plan": "pro", "user.geo.country": "NL"},  # flat keys: no var reaches them
    {"user": {"plan": "pro", "geo.country": "NL"}},
    {"user": {"plan": "pro", "geo": {"country": "NL"}}, "user.plan": "free"},
    {"user.plan": "free", "user": {"plan": "pro", "geo": {"country": "DE"}}},
]


def _resolve(engine: Any, attrs: dict[str, Any]) -> Any:
    return flagd.resolve(engine, "f", flagd.context("u", attrs), "FB").value


@pytest.mark.parametrize("attrs", DOTTED_CONTEXTS, ids=repr)
def test_dotted_paths_import_and_export_with_flagds_answers(make_py_and_c, attrs):
    want = _flagd(_DOTTED, attrs)
    snap = flagd.to_snapshot(copy.deepcopy(_DOTTED))
    exported = flagd.from_snapshot(snap)  # refused before: "a dot is a path in JSONLogic"
    assert _flagd(exported, attrs) == want
    for make in make_py_and_c:
        assert _resolve(make(snap), attrs) == want
        assert _resolve(make(flagd.to_snapshot(copy.deepcopy(exported))), attrs) == want


def test_a_flat_key_with_a_dot_is_not_a_path_in_the_context():
    ctx = flagd.context("u", {"a.b": 1, "a": {"c.d": 2, "e": 3}})
    assert "a.b" not in ctx and "a.c.d" not in ctx and ctx["a.e"] == 3


def test_a_native_dotted_attribute_is_still_refused():
    from cfgcore.interop import InteropError

    with pytest.raises(InteropError, match=r"flags\.f: .*'a\.b': a dot is a path"):
        flagd.from_snapshot(_native({"attr": "a.b", "eq": "x"}))
