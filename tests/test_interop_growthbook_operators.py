"""GrowthBook condition operators the SDK evaluates without raising, against the real SDK
on both evaluators.

growthbook 4.0.0 (``_eval_condition``, ``_eval_operator_condition``) answers in three
values: an operator it does not know (``{"a": {"$foo": 1}}``), and a saved group of a
type added after it (``{"type": "new"}``), answer *unknown* (None), which no condition
passes (``evalCondition`` is ``... is True``) but which is not false either: ``$not``
and ``$nor`` keep it unknown, an ``$or`` with another true entry holds, an ``$and``
with a false one is false. The condition operators used on a value (``{"a": {"$or":
[...]}}``, ``$and``, ``$nor``, ``$savedGroup``) answer false there; ``$savedGroups`` as
a condition key answers false; ``$inGroup``/``$notInGroup`` on a saved group that is no
list of values (a number, a condition group, a list group without values) answer
false, both. cfgcore refused all these as unknown operators or groups.
"""

from __future__ import annotations

import copy
import itertools
import logging
from typing import Any

import msgspec
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from cfgcore.interop import InteropError, growthbook
from tests.fuzz import examples

gb_sdk = pytest.importorskip("growthbook")
from growthbook.core import evalCondition  # noqa: E402

SAVED: dict[str, Any] = {
    "list": ["x", 1],
    "typed": {"type": "list", "values": ["x", 2]},
    "num": 5,
    "cond": {"type": "condition", "condition": {"a": 1}},
    "novalues": {"type": "list"},
    "new": {"type": "new", "values": ["x"]},
    "text": "x",
    "keyed": {"type": "list", "attributeKey": "b", "values": ["y", 1]},
    "loop": {
        "type": "condition",
        "condition": {"$or": [{"a": 2}, {"$savedGroup": {"id": "loop"}}]},
    },
    "nested": {"type": "condition", "condition": {"$savedGroup": {"id": "keyed"}, "a": {"$ne": 1}}},
    "unknownop": {"type": "condition", "condition": {"a": {"$foo": 1}}},
    "badcond": {"type": "condition", "condition": [1]},
}
CONTEXTS: list[dict[str, Any]] = [
    {k: v for k, v in (("a", a), ("b", b)) if v is not ...}
    for a, b in itertools.product(
        [..., None, 1, 2, "x", [1, "x"], ["X", "y"], True], [..., 1, "y", None]
    )
]
# attributes named with '$': the SDK reads a condition key it does not know as a path
CONTEXTS += [{"$region": "eu", "$obj": {"k": 2}, "a": 1}, {"$region": "us", "$foo": 1}]
ODD_OPS: list[tuple[str, Any]] = [
    ("a", {"$foo": 1}),
    ("a", {"$or": [{"a": 1}]}),
    ("a", {"$and": []}),
    ("a", {"$nor": []}),
    ("a", {"$savedGroup": {"id": "typed"}}),
    ("a", {"$not": {"$foo": 1}}),
    ("a", {"$eq": 1, "$foo": 1}),
    ("a", {"$ne": 1, "$foo": 1}),
    ("a", {"$size": {"$foo": 2}}),
    ("$savedGroups", ["typed"]),
    ("$savedGroups", None),
    ("a", {"$inGroup": "num"}),
    ("a", {"$notInGroup": "num"}),
    ("a", {"$inGroup": "cond"}),
    ("a", {"$notInGroup": "novalues"}),
    ("a", {"$inGroup": "new"}),
    ("a", {"$notInGroup": "new"}),
    ("a", {"$notInGroup": "text"}),
    ("$savedGroup", {"id": "typed", "attributeKey": "a"}),
    ("$savedGroup", {"id": "typed"}),
    ("$savedGroup", {"id": "keyed"}),
    ("$savedGroup", {"id": "keyed", "attributeKey": "a"}),
    ("$savedGroup", {"id": "typed", "attributeKey": 5}),
    ("$savedGroup", {"id": "cond"}),
    ("$savedGroup", {"id": "loop"}),
    ("$savedGroup", {"id": "nested"}),
    ("$savedGroup", {"id": "unknownop"}),
    ("$savedGroup", {"id": "badcond"}),
    ("$savedGroup", {"id": "new"}),
    ("$savedGroup", {"id": "absent"}),
    ("$savedGroup", "typed"),
    ("a", {"$alli": ["X"]}),
    ("a", {"$alli": ["X", 1]}),
    ("a", {"$alli": [{"$in": [1]}, "x"]}),
    ("a", {"$alli": []}),
    ("a", {"$alli": "x"}),
    ("$region", "eu"),
    ("$region", {"$exists": False}),
    ("$obj.k", {"$in": [1, 2]}),
    ("$foo", {"$in": [1]}),
]
LEAVES: list[tuple[str, Any]] = [
    ("a", 1),
    ("a", {"$gt": 1}),
    ("b", {"$exists": True}),
    ("a", {"$inGroup": "list"}),
    ("b", "y"),
]


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("growthbook").setLevel(logging.CRITICAL)


def growthbook_engine(features: Any) -> Any:
    from cfgcore import Engine

    return Engine.from_snapshot(growthbook.to_snapshot(copy.deepcopy(features)))


def _assert_answers(make_py_and_c: Any, cond: Any) -> None:
    """cfgcore imports ``cond`` and is on exactly where the SDK's ``evalCondition`` holds,
    in every context, on both evaluators."""
    features = {"f": {"defaultValue": False, "rules": [{"condition": cond, "force": True}]}}
    snap = growthbook.to_snapshot(copy.deepcopy(features), saved_groups=copy.deepcopy(SAVED))
    want = [evalCondition(copy.deepcopy(a), copy.deepcopy(cond), SAVED) for a in CONTEXTS]
    for make in make_py_and_c:
        engine = make(snap)
        got = [engine.is_enabled("f", growthbook.context(a)) for a in CONTEXTS]
        assert got == want, cond


@pytest.mark.parametrize("entry", ODD_OPS, ids=repr)
@pytest.mark.parametrize(
    "wrap",
    [
        "{e}",
        "{{'$not': {e}}}",
        "{{'$or': [{e}, {{'b': 'y'}}]}}",
        "{{'$nor': [{e}, {{'b': 'y'}}]}}",
        "{{'$and': [{e}, {{'a': {{'$gt': 1}}}}]}}",
        "{{'$not': {{'$and': [{{'b': 1}}, {e}]}}}}",
    ],
)
def test_an_operator_the_sdk_answers(make_py_and_c, entry, wrap):
    cond = eval(wrap.format(e=repr(dict([entry]))))  # noqa: S307 - test data only
    _assert_answers(make_py_and_c, cond)


def test_unknown_is_neither_true_nor_false():
    """What the three values change: ``$not`` of an unknown operator holds for nobody."""
    cond = {"$not": {"a": {"$foo": 1}}}
    assert not any(evalCondition(a, cond) for a in CONTEXTS)
    cond = {"$or": [{"a": {"$foo": 1}}, {"b": "y"}]}
    assert any(evalCondition(a, cond) for a in CONTEXTS)


def test_a_refused_operator_is_still_refused():
    """What the SDK raises on stays refused: an ``$elemMatch`` field condition with an
    ``$or`` that is no list raises for some arrays (named, not guessed)."""
    features = {"f": {"rules": [{"condition": {"a": {"$elemMatch": {"$or": 1}}}, "force": 1}]}}
    with pytest.raises(InteropError, match=r"features\.f\.rules\[0\]"):
        growthbook.to_snapshot(features)


def test_condition_groups_expanding_past_the_bound_are_refused():
    """Each group references the next twice: 2**20 references, refused naming the bound
    instead of lowered for minutes (the SDK answers it, evaluating each reference)."""
    groups: dict[str, Any] = {"g20": {"type": "list", "attributeKey": "a", "values": [1]}}
    for i in range(20):
        ref = {"$savedGroup": {"id": f"g{i + 1}"}}
        groups[f"g{i}"] = {"type": "condition", "condition": {"$or": [ref, {"$and": [ref]}]}}
    features = {"f": {"rules": [{"condition": {"$savedGroup": {"id": "g0"}}, "force": 1}]}}
    with pytest.raises(InteropError, match=r"features\.f\.rules\[0\]\S*: .*expanded more than"):
        growthbook.to_snapshot(features, saved_groups=groups)
    assert evalCondition({"a": 1}, features["f"]["rules"][0]["condition"], groups) is True


def _deep(depth: int) -> dict[str, Any]:
    cond: dict[str, Any] = {"$or": [{"a": {"$gt": 1, "$foo": 1}}, {"b": 1}]}
    for i in range(depth):
        cond = {"$not": {"$and": [cond, {"b": {"$ne": i}}]}}
    return cond


def test_unknown_answers_nest_in_linear_size(make_py_and_c):
    """Where a part may be unknown cfgcore writes where it is true and where false, each
    once: the snapshot grows with the nesting, not with a power of it."""

    def size(depth: int) -> int:
        features = {"f": {"rules": [{"condition": _deep(depth), "force": 1}]}}
        return len(msgspec.json.encode(growthbook.to_snapshot(features)))

    assert size(16) - size(8) < 1.5 * (size(8) - size(4)) * 2
    _assert_answers(make_py_and_c, _deep(9))


@pytest.mark.parametrize("key", ["$forced:e", "$forced#i1", "$forcedx"])
def test_attributes_named_like_forced_variations_are_read_as_the_sdk_reads_them(key):
    """cfgcore keeps forced variations under '$forced' names: an attribute of such a name
    is escaped on both sides (``$forced=...``), so a condition on it answers as the SDK
    (which reads it as any attribute) and the user's value forces nothing."""
    features = {"f": {"rules": [{"condition": {key: 1}, "force": 1}]}}
    engine = growthbook_engine(features)
    for attrs in ({key: 1}, {key: 2}, {}):
        want = evalCondition(copy.deepcopy(attrs), {key: 1})
        assert engine.is_enabled("f", growthbook.context(attrs)) is want, attrs
    assert "$forced:e" not in growthbook.context({"$forced:e": 1})
    forced = growthbook.context({}, forced_variations={"e": 1, 1: 1})
    assert engine.is_enabled("f", forced) is False  # forced variations are not the attribute


def _conditions() -> Any:
    leaf = st.sampled_from(LEAVES + ODD_OPS).map(copy.deepcopy)

    def extend(sub: Any) -> Any:
        logical = st.tuples(st.sampled_from(["$or", "$nor", "$and"]), st.lists(sub, max_size=3))
        entry = st.one_of(leaf, logical, st.tuples(st.just("$not"), sub))
        return st.lists(entry, max_size=3).map(dict)

    return st.recursive(st.lists(leaf, max_size=2).map(dict), extend, max_leaves=8)


@settings(max_examples=examples(150), deadline=None)
@given(cond=_conditions())
def test_generated_conditions_answer_as_the_sdk(make_py_and_c, cond):
    want = [evalCondition(copy.deepcopy(a), copy.deepcopy(cond), SAVED) for a in CONTEXTS]
    event(f"SDK true in {sum(want) * 4 // len(want)}/4 of contexts")
    try:
        _assert_answers(make_py_and_c, cond)
    except InteropError as exc:  # only cfgcore's stated bound on nesting
        assert "levels deep" in str(exc), str(exc)
