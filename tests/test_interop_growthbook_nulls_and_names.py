"""GrowthBook literal equality with arrays and objects holding null, and attributes named
like cfgcore's derived keys, against the real SDK on both evaluators.

growthbook 4.0.0 compares the items of an array or object as ``JSON.stringify`` writes
them (``_strict_deep_equal`` of ``_json_value``): an item that is null, NaN or an
infinity equals any of these (an int past a double's range stays a number), a key
missing is not a key holding null (the key orders differ). The importer refused every
such condition (``{"a": [1, null]}``, ``{"o": {"x": null}}``, ``$all`` values and
``$not`` objects holding null); it now lowers such an item to "null, or a float NaN or
infinity" (the ``#type`` and ``#vn`` context() derives, ``#big`` excluded).

Attribute names holding ``#`` or starting with ``$forced`` were refused in conditions
and left out of context(), as they would have been read as cfgcore's derived keys
(``country#size``) or forced variations (``$forced:exp``). Both sides now escape them
(``#`` is written ``#!``, a top-level ``$forced`` as ``$forced=``): a condition on them
answers as the SDK, and a context that tries to forge derived keys changes nothing.
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.interop import InteropError, growthbook
from tests.fuzz import examples

gb_sdk = pytest.importorskip("growthbook")

NAN, INF = float("nan"), float("inf")


class Real(float):
    """A float subclass (as NumPy's float64 is): the SDK reads its NaN as null too."""


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("growthbook").setLevel(logging.CRITICAL)


GROUPS: dict[str, Any] = {
    "hashy": {"type": "list", "attributeKey": "a#b", "values": [1, "x"]},
    "forcedish": {"type": "condition", "condition": {"$forced:exp": "b"}},
}


def _sdk(
    features: dict[str, Any], users: list[dict[str, Any]], forced: list[dict[Any, int]]
) -> list[Any]:
    """The SDK's ``(value, type, on)`` of every feature, for each user and forced set."""
    out = []
    for attrs in users:
        for fv in forced:
            sdk = gb_sdk.GrowthBook(
                attributes=copy.deepcopy(attrs),
                features=copy.deepcopy(features),
                saved_groups=copy.deepcopy(GROUPS),
                forced_variations=dict(fv),
            )
            try:
                for key in features:
                    res = sdk.eval_feature(key)
                    out.append((res.value, type(res.value), res.on))
            finally:
                sdk.destroy()
    return out


def _cfgcore(
    engine: Any, features: dict[str, Any], users: list[dict[str, Any]], forced: list[dict[Any, int]]
) -> list[Any]:
    out = []
    for attrs in users:
        for fv in forced:
            ctx = growthbook.context(attrs, forced_variations=fv)
            for key in features:
                value = growthbook.thaw(engine.evaluate(key, ctx).value)
                out.append((value, type(value), engine.is_enabled(key, ctx)))
    return out


def _agree(
    make_py_and_c: Any,
    features: dict[str, Any],
    users: list[dict[str, Any]],
    forced: list[dict[Any, int]] | None = None,
) -> list[Any]:
    """Both evaluators answer every feature for every user as the SDK does."""
    forced = forced or [{}]
    want = _sdk(features, users, forced)
    snap = growthbook.to_snapshot(copy.deepcopy(features), saved_groups=copy.deepcopy(GROUPS))
    for make in make_py_and_c:
        got = _cfgcore(make(snap), features, users, forced)
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            user = users[i // (len(forced) * len(features))]
            assert _same(g, w), (features, user, g, w)
    return want


def _same(a: Any, b: Any) -> bool:
    return a == b or (a[0] != a[0] and b[0] != b[0])  # a NaN served is no difference


def _feature(condition: Any) -> dict[str, Any]:
    return {"defaultValue": False, "rules": [{"condition": condition, "force": True}]}


def _force(condition: Any) -> dict[str, Any]:
    return {"f": _feature(condition)}


# -- null inside literal equality ----------------------------------------------------

NULL_CONDITIONS: list[Any] = [
    {"k": [1, None]},
    {"k": [None]},
    {"k": [None, None]},
    {"k": [[None]]},
    {"k": [NAN]},
    {"k": [INF, 1]},
    {"k": {"x": None}},
    {"k": {"x": -INF}},
    {"k": {"x": None, "y": 1}},
    {"k": {"1": 1, "0": None}},
    {"k": {"a": [None, {"b": None}]}},
    {"k": [{"x": None}]},
    {"k.0": [None]},
    {"k": {"$not": [None]}},
    {"k": {"$not": {"x": None}}},
    {"k": {"$eq": [1, None]}},
    {"k": {"$ne": [1, None]}},
    {"k": {"$in": [[1, None], None]}},
    {"k": {"$nin": [{"x": None}]}},
    {"k": {"$all": [[1, None]]}},
    {"k": {"$all": [{"x": None}, None]}},
    {"k": {"$alli": [[None], "A"]}},
    {"k": {"$elemMatch": {"$not": [None]}}},
    {"k": {"$elemMatch": {"x": [None]}}},
    {"$or": [{"k": [None]}, {"k": {"x": None}}]},
    {"$nor": [{"k": [1, NAN]}]},
]
NULL_VALUES: list[Any] = [
    [1, None],
    [1, NAN],
    [1, INF],
    [1, -INF],
    [1, Real("nan")],
    [1, 10**400],  # no double: a number to the SDK, though String() of it is Infinity
    [1, -(10**400)],
    [1, 1e308],
    [1, "NaN"],
    [1, "Infinity"],
    [1, "null"],
    [1, 0],
    [1, False],
    [1, []],
    [1, {}],
    [1],
    [1, None, None],
    [None],
    [NAN],
    [INF],
    [None, None],
    [INF, 1],
    [[None]],
    [[NAN]],
    [[]],
    [[1, None]],
    [{"x": None}],
    [{"x": NAN}],
    [{}],
    [{"x": None}, None],
    [{"x": [None]}],
    [{"x": [NAN]}],
    [[None], "a"],
    ["a", None],
    {"x": None},
    {"x": NAN},
    {"x": -INF},
    {"x": INF},
    {"x": 10**400},
    {"x": "null"},
    {"x": 0},
    {},
    {"y": None},
    {"x": None, "y": 1},
    {"y": 1, "x": None},
    {"x": [None]},
    {"0": None, "1": 1},
    {"1": 1, "0": None},
    {"0": NAN, "1": 1.0},
    {"a": [None, {"b": None}]},
    {"a": [NAN, {"b": INF}]},
    {"a": [None, {}]},
    {"a": [None, {"b": None, "c": None}]},
    None,
    NAN,
    "x",
    0,
]


@pytest.mark.parametrize("condition", NULL_CONDITIONS, ids=repr)
def test_null_inside_answers_as_the_sdk(make_py_and_c, condition):
    users = [{"id": "u", "k": v} for v in NULL_VALUES] + [{"id": "u"}]
    want = _agree(make_py_and_c, _force(condition), users)
    # containers are never $eq, never found by $in: the same answer for all
    if condition not in (
        {"k": {"$eq": [1, None]}},
        {"k": {"$ne": [1, None]}},
        {"k": {"$nin": [{"x": None}]}},
    ):
        assert len({w[2] for w in want}) == 2, condition  # both answers occur


def test_the_sdk_reads_nan_and_infinity_inside_as_null():
    """Not vacuous: what cfgcore has to match (and what a plain null test would miss)."""

    def on(condition: Any, value: Any) -> bool:
        return _sdk(_force(condition), [{"k": value}], [{}])[0][2]

    assert on({"k": [1, None]}, [1, NAN]) and on({"k": [1, None]}, [1, -INF])
    assert on({"k": [1, NAN]}, [1, None]) and on({"k": [INF]}, [NAN])
    assert not on({"k": [1, None]}, [1, 10**400])  # an int stays a number
    assert not on({"k": {"x": None}}, {})  # a missing key is no null
    assert not on({"k": {"x": None, "y": 1}}, {"y": 1, "x": None})  # key order
    assert not on({"k": NAN}, NAN) and not on({"k": None}, NAN)  # not at the top


def test_null_inside_is_lowered_not_refused():
    snap = growthbook.to_snapshot(_force({"k": {"a": [1, None], "b": {"x": NAN}}}))
    assert snap.flags["f"].rules[0].when is not None


_SCALARS = st.one_of(
    st.sampled_from(["a", "", 0, 1, 1.0, True, False, -0.0, None, NAN, INF, -INF, "NaN"]),
    st.integers(-(2**60), 2**60),
)
_KEYS = st.sampled_from(["a", "b", "0", "1", "x#y", ""])


def _nested(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=3)
        ),
        max_leaves=8,
    )


def _nulled(value: Any, draw: Any) -> Any:
    """``value`` with each null, NaN or infinity inside swapped for another of them."""
    if isinstance(value, dict):
        return {k: _nulled(v, draw) for k, v in value.items()}
    if isinstance(value, list):
        return [_nulled(v, draw) for v in value]
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return draw(st.sampled_from([None, NAN, INF, -INF, 10**400]))
    return value


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    expected=st.one_of(
        st.lists(_nested(_SCALARS), max_size=3),
        st.dictionaries(_KEYS, _nested(_SCALARS), min_size=1, max_size=3),
    ),
    values=st.lists(_nested(st.one_of(_SCALARS, st.just(10**400))), min_size=1, max_size=3),
    op=st.sampled_from(["", "$not", "$all", "$elemMatch-not"]),
    data=st.data(),
)
def test_generated_equality_with_nulls_answers_as_the_sdk(
    make_py_and_c, expected, values, op, data
):
    values = [*values, expected, _nulled(expected, data.draw), [_nulled(expected, data.draw)]]
    cond: Any = {
        "": expected,
        "$not": {"$not": expected},
        "$all": {"$all": [expected]},
        "$elemMatch-not": {"$elemMatch": {"$not": expected}},
    }[op]
    _agree(make_py_and_c, _force({"k": cond}), [{"id": "u", "k": v} for v in values])


# -- attribute names holding '#' or starting with '$forced' ---------------------------

EXPERIMENT = {"key": "exp", "variations": ["a", "b", "c", "d"], "hashVersion": 2}
NAME_FEATURES: dict[str, Any] = {
    "size": _feature({"country#size": 3}),
    "type": _feature({"a#type": "string"}),
    "nested": _feature({"o.k#type": {"$exists": True}}),
    "forced": _feature({"$forced:exp": "b"}),
    "forced_num": _feature({"$forced#i1": {"$gt": 1}}),
    "forcedx": _feature({"$forcedx": {"$exists": True}}),
    "escaped": _feature({"a#!b": 1}),
    "in": _feature({"a#b": {"$in": [1, 2]}}),
    "elem": _feature({"t#x": {"$elemMatch": {"k#y": 1}}}),
    "derived": _feature({"#elem:x": True}),
    "hashkey": _feature({"id#hash": "zz"}),
    "obj": _feature({"o": {"k#b": 1}}),
    "regex": _feature({"country#lower": {"$regex": "^n"}}),
    "group": _feature({"$savedGroup": {"id": "hashy"}}),
    "group2": _feature({"$savedGroup": {"id": "forcedish"}}),
    "exp": {"defaultValue": "none", "rules": [EXPERIMENT]},
    "exp_forced_name": {
        "defaultValue": "none",
        "rules": [{**EXPERIMENT, "key": "e2", "hashAttribute": "$forced:exp"}],
    },
    "exp_hash_name": {
        "defaultValue": "none",
        "rules": [{**EXPERIMENT, "key": "e3", "hashAttribute": "a#b"}],
    },
}
# users that try to forge derived keys (sizes, types, lower case, hash strings, element
# answers, forced variations) and users holding those names for real
HOSTILE_USERS: list[dict[str, Any]] = [
    {"id": "u1", "country": "NL"},
    {"id": "u1", "country": "NL", "country#size": 3},
    {"id": "u1", "country": ["a", "b", "c"], "country#size": 2},
    {"id": "u1", "country#size": 3},
    {"id": "u1", "country#size": [1, 2, 3]},
    {"id": "u1", "a": 1, "a#type": "string"},
    {"id": "u1", "a#type": "number"},
    {"id": "u1", "o": {"k": 1, "k#type": "string"}},
    {"id": "u1", "o": {"k#type": None}},
    {"id": "u1", "$forced:exp": "b"},
    {"id": "u1", "$forced:exp": 1},
    {"id": "u1", "$forced=:exp": "b"},
    {"id": "u1", "$forced#i1": 2},
    {"id": "u1", "$forcedx": 0},
    {"id": "u1", "a#!b": 1, "a#b": 2},
    {"id": "u1", "a#b": 1},
    {"id": "u1", "a#b": "x"},
    {"id": "u1", "t#x": [{"k#y": 1}], "t": [{"k": 1}]},
    {"id": "u1", "t#x": [{"k": 1, "k#y": 2}]},
    {"id": "u1", "#elem:x": True},
    {"id": "u1", "id#hash": "zz"},
    {"id": "u1", "o": {"k#b": 1}},
    {"id": "u1", "o": {"k#!b": 1}},
    {"id": "u1", "country#lower": "nl", "country": "DE"},
    {"id": "u1", "country": "NL", "country#lower": "de"},
    {"id": "u2", "exp#hash": "zz", "$forced:exp#hash": "zz"},
    {"id": "u3", "#hash:i1": "zz", "#search:x": True},
]
FORCED: list[dict[Any, int]] = [{}, {"exp": 1}, {"exp#hash": 2}, {1: 3}]


def test_names_like_derived_keys_answer_as_the_sdk(make_py_and_c):
    want = _agree(make_py_and_c, NAME_FEATURES, HOSTILE_USERS, FORCED)
    # not vacuous: the conditions on such names hold for some users and not others
    per_feature = {
        k: {w[2] for w in want[i :: len(NAME_FEATURES)]} for i, k in enumerate(NAME_FEATURES)
    }
    for key in ("size", "type", "nested", "forced", "forced_num", "forcedx", "escaped", "in",
                "elem", "derived", "hashkey", "obj", "regex", "group", "group2"):  # fmt: skip
        assert per_feature[key] == {True, False}, key


def test_names_like_derived_keys_answer_past_the_key_budget(make_py_and_c, monkeypatch):
    """Past context()'s budget every key is derived when read: the same answers."""
    monkeypatch.setattr(growthbook, "MAX_CONTEXT_KEYS", -1)
    assert type(growthbook.context(HOSTILE_USERS[1])) is not dict
    _agree(make_py_and_c, NAME_FEATURES, HOSTILE_USERS, FORCED[:2])


def _read_names(snap: Any) -> set[str]:
    """Every attribute an imported snapshot reads: its conditions' and its hashing's."""
    found: set[str] = set()
    stack = [msgspec.to_builtins(snap)]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("attr"), str):
                found.add(node["attr"])
            if isinstance(node.get("by"), list):
                found.update(b for b in node["by"] if isinstance(b, str))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def test_forging_the_keys_a_snapshot_reads_changes_no_answer(make_py_and_c):
    """A user given, beside ordinary attributes, every cfgcore key the snapshot reads
    (derived keys, element answers, forced variations, hash strings), with a hostile
    value, is answered as without them, as the SDK answers (it reads none of them)."""
    base = {"id": "u7", "country": "NL", "a": 1, "v": "1.2.3", "o": {"k": 1}, "t": [{"k": 1}]}
    features = {
        "plain": _feature({"country": "NL", "a": {"$type": "number"}}),
        "lower": _feature({"country": {"$ini": ["nl"]}}),
        "version": _feature({"v": {"$vgt": "1.0.0"}}),
        "size": _feature({"t": {"$size": 1}}),
        "elem": _feature({"t": {"$elemMatch": {"k": 1}}}),
        "path": _feature({"o.k": 1, "o": {"k": 1}}),
        "exp": {"defaultValue": "none", "rules": [{**EXPERIMENT, "key": "e"}]},
    }
    snap = growthbook.to_snapshot(copy.deepcopy(features))
    names = sorted(n for n in _read_names(snap) if "#" in n or n.startswith("$"))
    assert any(n.startswith("#elem:") for n in names) and "$forced:e" in names
    assert {"country#lower", "t#size", "id#hash"} <= set(names)
    users = [base] + [{**base, n: v} for n in names for v in (0, 3, "zz", True, [1, 2])]
    forced: list[dict[Any, int]] = [{}, {"e": 1}]
    want = _agree(make_py_and_c, features, users, forced)
    per_user = len(features) * len(forced)
    assert {tuple(want[i : i + per_user]) for i in range(0, len(want), per_user)} == {
        tuple(want[:per_user])
    }
    assert {w[2] for w in want} == {True}  # every condition holds for the base user


def test_escaped_names_in_context_and_element_attributes():
    ctx = growthbook.context({"a#b": 1, "$forced:x": 2, "o": {"k#": 3}, "t#": [1]})
    assert ctx.get("a#!b") == 1 and ctx.get("$forced=:x") == 2 and ctx.get("o.k#!") == 3
    assert "a#b" not in ctx and "$forced:x" not in ctx and "a#b#type" not in ctx
    features = {"f": {"rules": [{"condition": {"t#": {"$elemMatch": {"$gt": 0}}}, "force": 1}]}}
    snap = growthbook.to_snapshot(features)
    assert growthbook.element_attributes(snap) == {"t#"}
    assert type(growthbook.context({"t#": [1]}, elements=snap)) is not dict
    assert type(growthbook.context({"t": [1]}, elements=snap)) is dict


def test_a_path_into_an_object_key_holding_a_dot_stays_refused():
    with pytest.raises(
        InteropError, match=r"features\.f\S*: .*equality with an object with the key"
    ):
        growthbook.to_snapshot(_force({"k": {"a.b": 1}}))


_NAME = st.text(alphabet="a#!$forced:=.", max_size=9)


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=_NAME, b=_NAME)
def test_escaped_names_are_one_to_one_and_split_back(a, b):
    from cfgcore.interop.growthbook import (
        _hash_name,
        _name,
        _path,
        _raw,
        _raw_top,
        _split_key,
        _top_name,
    )

    assert (_top_name(a) == _top_name(b)) == (a == b) and _raw_top(_top_name(a)) == a
    assert (_name(a) == _name(b)) == (a == b) and _raw(_name(a)) == a
    assert (_hash_name(a) == _hash_name(b)) == (a == b)
    assert not _hash_name(a).startswith(("$forced:", "$forced#"))
    for suffix in ("", "#type", "#size#vn", "#vs#head", "#hash"):
        assert _split_key(_path(a) + suffix) == (_path(a), suffix)
        assert _split_key(_path(a, top=False) + suffix) == (_path(a, top=False), suffix)


_HOSTILE_KEYS = st.sampled_from(
    [
        "a",
        "a#size",
        "a#type",
        "a#b",
        "a#!b",
        "$forced:e",
        "$forced=:e",
        "$forced#i1",
        "#elem:",
        "b#lower",
        "",
        "#",
        "id#hash",
    ]  # fmt: skip
)
_HOSTILE_VALUES = st.recursive(
    st.one_of(st.none(), st.sampled_from(["x", "", "B", 0, 1, 3, 2.5, True, NAN])),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(_HOSTILE_KEYS, inner, max_size=3)
    ),
    max_leaves=8,
)
_LEAF_CONDITIONS = st.one_of(
    _HOSTILE_VALUES,
    st.builds(lambda v: {"$in": [v, 3]}, st.sampled_from(["x", 1, None])),
    st.sampled_from(
        [
            {"$exists": True},
            {"$exists": False},
            {"$type": "number"},
            {"$size": 3},
            {"$gt": 1},
            {"$regex": "^x"},
            {"$elemMatch": {"$gt": 0}},
        ]
    ),  # fmt: skip
)
_PATHS = st.builds(
    lambda a, b: a if b is None else f"{a}.{b}", _HOSTILE_KEYS, st.one_of(st.none(), _HOSTILE_KEYS)
)


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    condition=st.dictionaries(_PATHS, _LEAF_CONDITIONS, min_size=1, max_size=2),
    users=st.lists(st.dictionaries(_HOSTILE_KEYS, _HOSTILE_VALUES, max_size=4), max_size=3),
    forced=st.sampled_from([{}, {"e": 1}, {"e": 0}]),
)
def test_generated_hostile_names_answer_as_the_sdk(make_py_and_c, condition, users, forced):
    features = {"f": _feature(condition), "exp": {"defaultValue": "none", "rules": [{
        "key": "e", "variations": ["a", "b"], "hashAttribute": "a#size"}]}}  # fmt: skip
    users = [{"id": "u", **u} for u in users] + [{"id": "u", "a#size": "x"}]
    _agree(make_py_and_c, features, users, [forced])


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    attrs=st.dictionaries(_HOSTILE_KEYS, _HOSTILE_VALUES, max_size=5),
    probes=st.lists(
        st.builds(
            lambda p, s: p + s, _PATHS, st.sampled_from(["", "#type", "#size", "#keys", "#vn"])
        )
    ),
)
def test_escaped_names_derived_on_read_equal_flattened(attrs, probes):  # fmt: skip
    """Past the budget, every key context() flattens for such names is derived the same."""
    eager = growthbook.context(attrs)
    saved = growthbook.MAX_CONTEXT_KEYS
    growthbook.MAX_CONTEXT_KEYS = -1
    try:
        lazy = growthbook.context(attrs)
    finally:
        growthbook.MAX_CONTEXT_KEYS = saved
    for key, value in dict.items(eager):
        got = lazy.get(key)
        assert got == value or (got != got and value != value), key
    for key in probes:
        if key not in eager:
            assert lazy.get(key) is None, key
