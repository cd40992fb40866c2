"""``growthbook.context(..., elements=engine)`` derives only what the engine's snapshot reads.

Given the engine or the Snapshot, ``context()`` walks only the paths the snapshot's
conditions, hashing and element conditions read, and at an array or object derives only
the keys read there (``#lower``, ``#inner``, ``#nulls``, ``#keys``). The answers must be
those of the context derived whole, for every flag of that snapshot, on both evaluators:
hypothesis builds GrowthBook features (the peer fuzz's conditions over every operator,
dotted paths into arrays and objects, escaped names, element conditions, saved groups,
rollouts and experiments hashing by an attribute with a fallback, prerequisites) and
users holding hostile values (cycles, sets, tuples, strings past the regex bound,
arrays past the key budget; dict and list subclasses whose ``[]`` lies), and compares
every flag's details; every key the snapshot reads is the same in both contexts, and
every key the limited one holds is the whole one's.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgcore.interop import InteropError, growthbook
from cfgcore.interop._derived import DerivedAttributes, read_names

pytest.importorskip("growthbook")
from tests.test_fix10_interop_peer_fuzz import (  # noqa: E402
    FUZZ,
    GB_SAVED,
    gb_python,
    gb_rule,
    gb_scalar,
    gb_value,
)
from tests.test_fix11_interop_growthbook_prereqs import gate  # noqa: E402

LONG = "ab" * 2100 + "é"  # past cfgcore's regex bound: ``#search:``


def _cyclic() -> dict[str, Any]:
    obj: dict[str, Any] = {"x": [1, "a"], "y": {}}
    obj["y"]["x"] = obj  # obj.y.x.y.x... closes the cycle
    obj["x"].append(obj)
    return obj


# conditions on the paths and derived keys a limited context could leave out, over a
# few values the users hold too, so that they often match: membership and ``$ini`` on
# arrays (``#lower``, ``#nulls``, ``#inner``), element conditions, literal equality with
# arrays and objects (``#size``, ``#keys``), positions and lengths, escaped names
FEW = ["a", "A", "b", 1, 2, None, True]
few_value = st.recursive(
    st.sampled_from(FEW),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["x", "y", "0"]), inner)
    ),
    max_leaves=5,
)
few = st.sampled_from(FEW)
few_test = st.one_of(
    few_value,
    st.builds(
        lambda op, v: {op: v},
        st.sampled_from(["$in", "$nin", "$ini", "$nini"]),
        st.lists(few, max_size=3),
    ),  # fmt: skip
    st.builds(
        lambda op, v: {op: v},
        st.sampled_from(["$all", "$alli"]),
        st.lists(st.one_of(few, st.just({"$in": ["a", 1]})), max_size=2),
    ),  # fmt: skip
    st.builds(lambda v: {"$elemMatch": {"$in": v}}, st.lists(few, max_size=2)),
    st.builds(
        lambda v: {"$elemMatch": v},
        st.sampled_from([{"$gt": 0}, {"x": "a"}, {"$regex": "^a"}, {"0": {"$exists": 1}}]),
    ),
    st.builds(lambda v: {"$size": v}, st.integers(0, 3)),
    st.builds(lambda op, v: {op: v}, st.sampled_from(["$eq", "$ne", "$gt", "$vgt"]), few),
    st.builds(lambda v: {"$exists": v}, st.booleans()),
    st.builds(lambda v: {"$type": v}, st.sampled_from(["array", "object", "string", "null"])),
    st.builds(lambda v: {"$regexi": v}, st.sampled_from(["^a$", "b"])),
)
FEW_PATHS = ["tags", "tags.0", "tags.1", "tags.length", "obj", "obj.x", "obj.x.0", "obj.y.x",
             "obj.0", "#h", "a#size", "$forced:e1", "é"]  # fmt: skip
few_condition = st.dictionaries(st.sampled_from(FEW_PATHS), few_test, min_size=1, max_size=2)


class _Lying(dict):
    """A dict subclass whose ``[]`` and ``in`` say something else than its items."""

    def __getitem__(self, key: Any) -> Any:
        return "lie"

    def __contains__(self, key: Any) -> bool:
        return True


class _LyingList(list):
    def __getitem__(self, i: Any) -> Any:
        return "lie"


# values past the key budget (MAX_CONTEXT_KEYS): the whole context derives on read
BIG_LIST = [{"x": i, "y": [str(i), None]} if i % 3 else f"T{i}" for i in range(1500)]
BIG_OBJECT = {f"k{i}": [i, str(i)] for i in range(1500)} | {"x": [LONG, "A"], "y": {"x": 2}}
odd = st.sampled_from([LONG, [LONG, "x"], {"x": LONG}, BIG_LIST, BIG_OBJECT, "cycle"]).map(
    lambda v: _cyclic() if v == "cycle" else v
)
value = st.one_of(
    gb_python, odd, st.lists(st.one_of(gb_scalar, gb_value, odd), max_size=5), few_value
)
user = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.sampled_from(["u1", "é", 7, 1.5, "", None]), value),
        "dev": st.sampled_from(["d1", "d2", 3, ""]),
        "a": value,
        "b": value,
        "n": value,
        "v": value,
        "tags": value,
        "obj": value,
        "$forced:e1": gb_value,
        "$forcedX": value,
        "a#size": value,
        "#h": value,
        "é": value,
        "": value,
        "tags.0": value,  # a dotted name: no path reaches it
        "user_id": gb_scalar,
    },
)


@st.composite
def payload(draw: Any) -> dict[str, Any]:
    """Features f0..f2 from the peer fuzz's rules (half of them on the conditions
    above), and now and then a child gated on them (its gate tests the parent's value)
    with a rule of its own."""
    keys = draw(st.lists(st.sampled_from(["f0", "f1", "f2"]), min_size=1, max_size=3, unique=True))
    features: dict[str, Any] = {}
    for k in keys:
        rules = draw(st.lists(gb_rule(), min_size=1, max_size=3))
        for rule in rules:
            if draw(st.booleans()):
                rule["condition"] = draw(few_condition)
        features[k] = {"defaultValue": draw(gb_value), "rules": rules}
    if draw(st.booleans()):
        rules = [{"parentConditions": [draw(gate(keys))]}]
        rules.append({**draw(gb_rule()), "parentConditions": [draw(gate(keys))]})
        features["child"] = {"defaultValue": draw(gb_value), "rules": rules}
    return features


def _same(a: Any, b: Any) -> bool:
    """Two derived values alike (the very object, or equal; NaN as NaN)."""
    if a is b:
        return True
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def _read_alike(snap: Any, limited: Any, whole: Any) -> None:
    """Every key ``snap`` reads has the same value in both contexts, and every key the
    limited one holds is the whole one's."""
    for name in read_names(snap) or ():
        got, want = limited.get(name), whole.get(name)
        if name.startswith(growthbook.ELEM):  # a plain dict holds none: it reads false
            got, want = (None if x is False else x for x in (got, want))
        assert _same(got, want), (name, got, want)
    for k, v in dict.items(limited):
        assert _same(v, whole.get(k)), (k, v, whole.get(k))


def _details(engine: Any, keys: list[str], ctx: Any) -> list[tuple[Any, ...]]:
    out = []
    for key in keys:
        d = engine.evaluate(key, ctx)
        out.append((d.variant, d.reason, d.rule_index, d.error_code, engine.is_enabled(key, ctx)))
    return out


@FUZZ
@given(
    features=payload(),
    users=st.lists(user, min_size=1, max_size=5),
    forced=st.dictionaries(st.sampled_from(["e1", "e2", "é"]), st.sampled_from([0, 1, 5, True])),
)
def test_limited_context_answers_as_the_whole_one(make_py_and_c, features, users, forced):
    try:
        snap = growthbook.to_snapshot(copy.deepcopy(features), saved_groups=GB_SAVED)
    except InteropError:
        return
    engines = [make(snap) for make in make_py_and_c]
    keys = list(snap.flags)
    for attrs in users:
        whole = growthbook.context(attrs, forced_variations=forced)
        for given_as in (engines[0], snap):
            limited = growthbook.context(attrs, forced_variations=forced, elements=given_as)
            for engine in engines:
                assert _details(engine, keys, limited) == _details(engine, keys, whole), attrs
                # bound once per request, as a server does
                bound = _details(engine, keys, engine.context(limited))
                assert bound == _details(engine, keys, engine.context(whole)), attrs
            _read_alike(snap, limited, whole)


few_list = st.lists(st.one_of(few, few_value, st.lists(few, max_size=2)), max_size=4)
# dict and list subclasses whose ``[]`` and ``in`` disagree with their items: read as
# context() reads them whole (by their items, their iteration). (Past the key budget the
# whole context reads them by ``[]`` and ``in``, as the SDK's getPath does, so these
# users hold nothing that large.)
lying = st.one_of(
    st.dictionaries(st.sampled_from(["x", "y", "0"]), few_value, max_size=2).map(_Lying),
    st.lists(few_value, max_size=3).map(_LyingList),
)
few_user = st.fixed_dictionaries(
    {},
    optional={
        "tags": st.one_of(few_list, few_value, lying),
        "obj": st.one_of(
            st.fixed_dictionaries({}, optional={"x": few_list, "y": few_value, "0": few}),
            few_value,
            lying,
        ),
        "#h": few_value,
        "a#size": few_list,
        "$forced:e1": few_value,
        "é": few,
    },
)


@FUZZ
@given(
    conditions=st.lists(few_condition, min_size=1, max_size=4),
    users=st.lists(few_user, min_size=1, max_size=6),
)
def test_limited_context_answers_conditions_as_the_whole_one(make_py_and_c, conditions, users):
    """The conditions above, one feature each, on users holding the values they test."""
    features = {
        f"f{i}": {"defaultValue": 0, "rules": [{"condition": c, "force": 1}]}
        for i, c in enumerate(conditions)
    }
    snap = growthbook.to_snapshot(features, on_error="skip")
    engines = [make(snap) for make in make_py_and_c]
    keys = list(snap.flags)
    for attrs in users:
        whole = growthbook.context(attrs)
        limited = growthbook.context(attrs, elements=snap)
        for engine in engines:
            assert _details(engine, keys, limited) == _details(engine, keys, whole), attrs
        _read_alike(snap, limited, whole)


def test_a_long_array_costs_the_keys_read_not_its_elements(make_py_and_c):
    features = {
        "in": {"defaultValue": 0, "rules": [{"condition": {"tags": {"$in": ["t5"]}}, "force": 1}]},
        "size": {"defaultValue": 0, "rules": [{"condition": {"tags": {"$size": 200}}, "force": 1}]},
        "ini": {
            "defaultValue": 0,
            "rules": [{"condition": {"tags": {"$ini": ["T7"]}}, "force": 1}],
        },
        "fifth": {
            "defaultValue": 0,
            "rules": [{"condition": {"tags.5": {"$vgt": "t4"}}, "force": 1}],
        },
        "nl": {"defaultValue": 0, "rules": [{"condition": {"country": "NL"}, "force": 1}]},
        "roll": {
            "defaultValue": 0,
            "rules": [{"force": 1, "coverage": 0.5, "hashAttribute": "id"}],
        },
    }
    snap = growthbook.to_snapshot(features)
    attrs = {"id": "u1", "country": "NL", "age": 31, "tags": [f"t{i}" for i in range(200)]}
    whole = growthbook.context(attrs)
    limited = growthbook.context(attrs, elements=snap)
    assert type(limited) is dict  # no element condition: a plain dict still
    # the elements read by path alone: tags.5 (``$vgt``), not tags.4 nor tags.6
    assert {k.split("#")[0] for k in limited if k.startswith("tags.")} == {"tags.5"}
    assert "tags#inner" not in limited and "tags#inner" in whole  # no $elemMatch reads it
    assert "age" not in limited and "age#vn" not in limited  # no condition reads it
    assert limited["id#hash"] == "u1" and limited["tags#lower"][7] == "t7"
    for make in make_py_and_c:
        engine = make(snap)
        answers = [engine.evaluate(key, limited).value for key in features]
        assert answers == [engine.evaluate(key, whole).value for key in features]
        assert answers[:5] == [1, 1, 1, 1, 1]


def test_an_engine_given_follows_its_current_snapshot():
    from cfgcore import Engine

    first = growthbook.to_snapshot(
        {"f": {"defaultValue": 0, "rules": [{"condition": {"plan": "pro"}, "force": 1}]}}
    )
    engine = Engine.from_snapshot(first)
    attrs = {"plan": "pro", "company": {"size": 12, "name": "ACME"}}
    assert "company.size" not in growthbook.context(attrs, elements=engine)
    engine.swap(
        growthbook.to_snapshot(
            {
                "g": {
                    "defaultValue": 0,
                    "rules": [{"condition": {"company.size": {"$gt": 10}}, "force": 1}],
                }
            }  # fmt: skip
        )
    )
    limited = growthbook.context(attrs, elements=engine)
    assert limited["company.size"] == 12 and "company.name" not in limited
    assert engine.evaluate("g", limited).value == 1


def test_names_given_limit_only_the_element_mapping():
    attrs = {"tags": ["a", "b"], "n": 5}
    # element_attributes()'s names (no element condition here): a plain dict, every key
    limited = growthbook.context(attrs, elements=frozenset())
    assert type(limited) is dict and limited == growthbook.context(attrs)
    assert isinstance(growthbook.context(attrs, elements={"tags"}), DerivedAttributes)
