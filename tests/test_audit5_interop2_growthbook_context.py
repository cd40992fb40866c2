"""GrowthBook ``context()`` on attribute graphs that share objects, fifth audit
(follow-up), against the ``growthbook`` SDK.

context() flattened every path to MAX_PATH_DEPTH levels. An object referenced twice at
each level (not a cycle: ``{"x": o, "y": o}`` nested) has 2**depth paths, so one
per-request call derived exponentially many keys. It now derives at most
MAX_CONTEXT_KEYS keys up front; past that the mapping it returns derives a key when an
evaluator reads it, walking that one path as the flattening would have.

An attribute whose name holds ``#`` or starts with ``$`` (which no condition can name)
overwrote context()'s derived keys: ``{"id#hash": ...}`` rebucketed the user,
``{"a#type": ...}`` retyped ``a``, ``{"$forced:e": 1}`` forced an experiment. Such keys
were then not flattened; they are now escaped (``a#!type``, ``$forced=:e``), so
conditions can name them (``test_interop_growthbook_nulls_and_names.py``); hashing
still reads every top-level key.
"""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.interop import growthbook
from tests.fuzz import examples
from tests.test_audit5_interop2_flagd_context import _same  # NaN equals NaN, types match
from tests.texts import any_text

gb_mod = pytest.importorskip("growthbook")


def _shared(levels: int) -> dict:
    leaf: dict = {"k": "Vé", "n": 7, "big": 2**60 + 1, "tags": ["a", "B", 3], "v": "1.2.3",
                  "nul": None, "s": "x" * 5000}  # fmt: skip
    node = leaf
    for _ in range(levels):
        node = {"x": node, "y": node, "k": "mid"}
    return node


def _sdk(features: dict, attrs: dict, key: str) -> object:
    gb = gb_mod.GrowthBook(attributes=attrs, features=copy.deepcopy(features))
    return gb.eval_feature(key).value


PATH = "g." + ".".join(["x", "y"] * 20)  # 40 levels into the shared graph
CONDITIONS = [
    {PATH + ".k": "Vé"},
    {PATH + ".k": {"$regexi": "^vé$"}},
    {PATH + ".k": {"$ini": ["vÉ"]}},
    {PATH + ".n": {"$gt": 6, "$lte": 7}},
    {PATH + ".big": {"$gt": 2**60}},
    {PATH + ".v": {"$vgt": "1.2.2"}},
    {PATH + ".tags": {"$in": ["B"]}},
    {PATH + ".tags": {"$size": 3}},
    {PATH + ".tags.length": 3},
    {PATH + ".tags.2": {"$type": "number"}},
    {PATH + ".nul": {"$exists": False}},
    {PATH + ".s": {"$regex": "x$"}},
    {PATH: {"$type": "object"}},
    {PATH[:-4] + ".k": "mid"},
    {PATH + ".z": {"$exists": True}},
    {PATH + ".k.length": 2},
    {PATH + ".tags.01": "B"},
    {"g.k": {"$ne": "mid"}},
]


def _features() -> dict:
    return {f"f{i}": {"defaultValue": False, "rules": [{"condition": c, "force": True}]}
            for i, c in enumerate(CONDITIONS)}  # fmt: skip


def test_shared_graph_answers_as_the_sdk_and_derives_few_keys(make_py_and_c):
    attrs = {"id": "u1", "g": _shared(40)}  # 2**40 paths: flattening them never ends
    features = _features()
    snap = growthbook.to_snapshot(features)
    ctx = growthbook.context(attrs)
    assert len(ctx) <= growthbook.MAX_CONTEXT_KEYS + 1  # what it holds up front
    expected = {key: _sdk(features, attrs, key) for key in features}
    assert sum(map(bool, expected.values())) >= 10  # the paths are reached, not all missing
    for make in make_py_and_c:
        engine = make(snap)
        got = {key: engine.evaluate(key, ctx).value for key in features}
        assert got == expected


def test_flattening_is_bounded_below_the_blowup():
    # 2**16 paths of a few keys each: the old flattening derived about a million keys
    ctx = growthbook.context({"g": _shared(16)})
    assert len(ctx) <= growthbook.MAX_CONTEXT_KEYS + 1
    assert ctx.get("g.x.y.x.k") == "mid"
    assert "B" in ctx.get("g.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.tags")


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                     st.floats(allow_nan=True), any_text(max_size=4),
                     st.sampled_from(["1.2.3", "v2", "a\n", "x" * 4100, "0"]))  # fmt: skip
_KEYS = st.one_of(st.sampled_from(["a", "b", "length", "0", "1", "", "a.b", "c#type", "$x"]),
                  any_text(max_size=3))  # fmt: skip
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_KEYS, inner, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(attrs=st.dictionaries(_KEYS, _VALUES, max_size=5), probes=st.lists(any_text(max_size=12)))
def test_derived_on_read_equals_flattened(attrs, probes):
    """Every key the flattening derives, the walk derives the same; no other key."""
    eager = growthbook.context(attrs)
    saved = growthbook.MAX_CONTEXT_KEYS
    growthbook.MAX_CONTEXT_KEYS = -1  # everything derived on read
    try:
        lazy = growthbook.context(attrs)
    finally:
        growthbook.MAX_CONTEXT_KEYS = saved
    assert len(lazy) <= len(attrs)  # only the hash keys up front
    for key, value in dict.items(eager):
        assert _same(lazy.get(key), value), key
    for key in probes + [k + "#size" for k in dict.keys(eager)] + [k + ".0" for k in eager]:
        if key not in eager:
            assert lazy.get(key) is None, key


HOSTILE = [
    ({"id": "u1", "id#hash": "zz"}, {}),  # zz buckets to another variation than u1
    ({"id": "u1", "a": 1, "a#type": "string"}, {"a": {"$type": "string"}}),
    ({"id": "u1", "o": {"a": 1, "a#type": "string"}}, {"o.a": {"$type": "number"}}),
    ({"id": "u1", "l": ["x"], "l#lower": ["y"]}, {"l": {"$ini": ["y"]}}),
    ({"id": "u1", "$forced:e": 1}, {}),
]


@pytest.mark.parametrize("attrs, condition", HOSTILE)
def test_reserved_looking_attribute_names_change_nothing(attrs, condition, make_py_and_c):
    exp = {"key": "e", "variations": ["v0", "v1", "v2", "v3"], "hashVersion": 2}
    features = {
        "cond": {"defaultValue": False, "rules": [{"condition": condition, "force": True}]},
        "exp": {"defaultValue": "none", "rules": [exp]},
    }
    snap = growthbook.to_snapshot(features)
    ctx = growthbook.context(attrs)
    for make in make_py_and_c:
        engine = make(snap)
        for key in features:
            assert engine.evaluate(key, ctx).value == _sdk(features, attrs, key), key
