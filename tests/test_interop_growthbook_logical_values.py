"""GrowthBook ``$or``/``$nor``/``$and``/``$not`` with values that are no list (or no
condition), against the real SDK on both evaluators.

The SDK (growthbook 4.0.0 ``evalCondition``) evaluates a condition's entries in order,
stopping at the first false one (an ``$or`` at its first true one), and answers false
for the whole condition, under a ``$not`` too, where its evaluation reaches a value it
raises on: ``len()`` of null, a boolean or a number (``$or``, ``$nor``), iterating one
(``$and``), ``.items()`` of an entry or a ``$not`` value that is no object (a string's
characters, an object's keys included). An empty string or object is iterated as an
empty list. cfgcore refused such conditions; it now imports them with those answers.
"""

from __future__ import annotations

import copy
import functools
import itertools
import logging
import math
import pickle
from typing import Any

import msgspec
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from cfgcore.interop import InteropError, growthbook
from tests.fuzz import examples

gb_sdk = pytest.importorskip("growthbook")
from growthbook.core import evalCondition  # noqa: E402

ODD: list[Any] = [None, True, False, 0, 1, 1.5, "", "x", {}, {"a": 1}, [], [None], [5], ["x"],
                  [[]], [{}], [{"a": 1}, None], [None, {"a": 1}], [{"b": "y"}, 3]]  # fmt: skip
CONTEXTS: list[dict[str, Any]] = [
    {k: v for k, v in (("a", a), ("b", b)) if v is not ...}
    for a, b in itertools.product([..., None, 1, 2, 1.0, "x", [1], True], [..., 1, "y", None])
]
# whole entries of a condition object (the leaves the generated conditions test)
LEAVES: list[tuple[str, Any]] = [
    ("a", 1),
    ("a", {"$gt": 1}),
    ("b", {"$exists": True}),
    ("a", {"$in": [1, "x"]}),
    ("b", "y"),
    ("a", {"$ne": 2}),
]


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("growthbook").setLevel(logging.CRITICAL)


@functools.cache
def _contexts() -> list[Any]:
    """``growthbook.context()`` of each of CONTEXTS, built once for every engine and case
    (an evaluation reads a context, never changes it)."""
    return [growthbook.context(attrs) for attrs in CONTEXTS]


def _sdk_holds(cond: Any) -> list[bool]:
    """The SDK's ``evalCondition`` of ``cond`` in each of CONTEXTS, each call on its own
    deep copies of both (unpickled from one pickling: several times faster than
    ``copy.deepcopy`` for the large conditions; these are plain JSON values)."""
    blob = pickle.dumps(cond, protocol=pickle.HIGHEST_PROTOCOL)
    return [evalCondition(pickle.loads(a), pickle.loads(blob)) for a in _context_blobs()]


@functools.cache
def _context_blobs() -> list[bytes]:
    return [pickle.dumps(attrs, protocol=pickle.HIGHEST_PROTOCOL) for attrs in CONTEXTS]


def _features(cond: Any) -> dict[str, Any]:
    return {"f": {"defaultValue": False, "rules": [{"condition": cond, "force": True}]}}


def _assert_answers(make_py_and_c: Any, cond: Any) -> None:
    """cfgcore imports ``cond`` as a rule's condition and is on exactly where the SDK's
    ``evalCondition`` holds, in every context, on both evaluators."""
    snap = growthbook.to_snapshot(_features(copy.deepcopy(cond)))
    want = _sdk_holds(cond)
    for make in make_py_and_c:
        engine = make(snap)
        got = [engine.is_enabled("f", ctx) for ctx in _contexts()]
        assert got == want, cond


def _shapes() -> list[Any]:
    """Each odd value under each logical operator, alone and where what comes before it
    decides for some contexts (or for all), under a ``$not``, a ``$nor``, in an
    ``$and``."""
    out: list[Any] = []
    for op, v in itertools.product(["$or", "$nor", "$and", "$not"], ODD):
        c = {op: v}
        out += [
            c,
            {"$not": c},
            {"$nor": [c]},
            {"a": 1, **c},
            {**c, "a": 1},
            {"$or": [{"a": 1}, c]},
            {"$or": [c, {"a": 1}]},
            {"$or": [{}, c]},  # decided before it for everyone
            {"$and": [{"a": {"$in": []}}, c]},  # decided before it for everyone
            {"$not": {"$or": [{"b": "y"}, c]}},
            {"$and": [{"a": {"$ne": 2}}, {"$not": c}]},
        ]
    return out


@pytest.mark.parametrize("cond", _shapes(), ids=repr)
def test_each_shape_answers_as_the_sdk(make_py_and_c, cond):
    _assert_answers(make_py_and_c, cond)


@pytest.mark.parametrize(
    ("cond", "always"),
    [
        ({"$or": None}, False),
        ({"$or": ""}, True),  # len("") is 0: an empty $or holds
        ({"$or": {}}, True),
        ({"$or": {"a": 1}}, False),  # its key "a" is no condition
        ({"$and": ""}, True),
        ({"$and": "x"}, False),
        ({"$and": 0}, False),
        ({"$nor": {}}, False),
        ({"$not": {}}, False),
        ({"$not": []}, False),  # [].items() raises
        ({"$not": {"$or": None}}, False),  # the error fails the whole condition
        ({"$nor": [{"$or": True}]}, False),
    ],
)
def test_what_the_sdk_answers_for_everyone(make_py_and_c, cond, always):
    """The SDK's answers, spelled out (a change of the SDK shows here first)."""
    assert set(_sdk_holds(cond)) == {always}
    _assert_answers(make_py_and_c, cond)


def test_an_error_is_reached_only_where_what_comes_before_does_not_decide(make_py_and_c):
    cond = {"$or": [{"a": 1}, None]}  # true where a is 1, an error (false) elsewhere
    want = _sdk_holds(cond)
    assert True in want and False in want
    _assert_answers(make_py_and_c, cond)
    # under $not the error still fails the whole condition: false where a is not 1 too
    assert not any(evalCondition(copy.deepcopy(a), {"$not": cond}) for a in CONTEXTS)
    _assert_answers(make_py_and_c, {"$not": cond})


@pytest.mark.parametrize("cond", [5, "x", [{"a": 1}], True, 1.5])
def test_a_rule_condition_that_is_no_object_skips_the_rule(make_py_and_c, cond):
    """The SDK evaluates a truthy condition (``cond.items()`` raises: false for
    everyone) and goes on to the next rule; nothing more of the rule is read."""
    features = {
        "f": {
            "defaultValue": "d",
            "rules": [{"condition": cond, "force": "x", "coverage": "bad"}, {"force": "next"}],
        }
    }
    for attrs in CONTEXTS:
        sdk = gb_sdk.GrowthBook(attributes={**attrs, "id": "u"}, features=copy.deepcopy(features))
        try:
            assert sdk.eval_feature("f").value == "next"
        finally:
            sdk.destroy()
    snap = growthbook.to_snapshot(copy.deepcopy(features))
    for make in make_py_and_c:
        assert make(snap).evaluate("f", growthbook.context({"id": "u"})).value == "next"


PARENT_CONDITIONS = [
    {"$or": [{"value": True}, None]},
    {"$not": {"$or": [{"value": True}, None]}},
    {"$and": [{"value": False}, "x"]},
    {"$or": None},
    {"$nor": {}},
    {"$or": ""},
    5,
]


@pytest.mark.parametrize("gate", [False, True])
@pytest.mark.parametrize("cond", PARENT_CONDITIONS, ids=repr)
def test_prerequisite_conditions_answer_as_the_sdk(make_py_and_c, cond, gate):
    """The same conditions on a parent's value (``parentConditions``), end to end
    through the SDK's ``eval_feature``."""
    features = {
        "p": {"defaultValue": False, "rules": [{"condition": {"a": 1}, "force": True}]},
        "f": {
            "defaultValue": "d",
            "rules": [
                {"parentConditions": [{"id": "p", "condition": cond, "gate": gate}], "force": 1},
                {"force": "after"},
            ],
        },
    }
    want = []
    for attrs in CONTEXTS:
        sdk = gb_sdk.GrowthBook(attributes=copy.deepcopy(attrs), features=copy.deepcopy(features))
        try:
            want.append(sdk.eval_feature("f").value)
        finally:
            sdk.destroy()
    snap = growthbook.to_snapshot(copy.deepcopy(features))
    for make in make_py_and_c:
        engine = make(snap)
        got = [engine.evaluate("f", ctx).value for ctx in _contexts()]
        assert got == want


def test_many_malformed_entries_import_in_bounded_size(make_py_and_c):
    """Each entry that can raise makes where it is reached part of the condition; each
    entry's test is written a logarithmic number of times, not once per such entry."""

    def size(cond: Any) -> int:
        return len(msgspec.json.encode(growthbook.to_snapshot(_features(cond)).flags["f"]))

    n = 1024
    clean = size({"$or": [{"a": i, "$or": [{"b": 1}, {"b": 2}]} for i in range(n)]})
    cond = {"$or": [{"a": i, "$or": [{"b": 1}, None]} for i in range(n)]}
    assert size(cond) < (2 + math.log2(n)) * clean
    _assert_answers(make_py_and_c, cond)


def _conditions() -> Any:
    odd = st.sampled_from(ODD).map(copy.deepcopy)
    leaves = st.lists(st.sampled_from(LEAVES), max_size=2).map(dict)

    def extend(sub: Any) -> Any:
        logical = st.tuples(
            st.sampled_from(["$or", "$nor", "$and"]),
            st.one_of(st.lists(st.one_of(sub, odd), max_size=3), odd),
        )
        entry = st.one_of(
            st.sampled_from(LEAVES), logical, st.tuples(st.just("$not"), st.one_of(sub, odd))
        )
        return st.lists(entry, max_size=3).map(dict)

    return st.recursive(leaves, extend, max_leaves=10)


@settings(max_examples=examples(400))
@given(cond=_conditions())
def test_generated_conditions_answer_as_the_sdk(make_py_and_c, cond):
    try:
        snap = growthbook.to_snapshot(_features(copy.deepcopy(cond)))
    except InteropError as exc:  # only cfgcore's stated bound on nesting
        assert "levels deep" in str(exc) and "features.f: rules[0].condition" in str(exc)
        event("refused: too deep")
        return
    want = _sdk_holds(cond)
    event(f"SDK true in {sum(want) * 4 // len(want)}/4 of contexts")
    for make in make_py_and_c:
        engine = make(snap)
        got = [engine.is_enabled("f", ctx) for ctx in _contexts()]
        assert got == want, cond
