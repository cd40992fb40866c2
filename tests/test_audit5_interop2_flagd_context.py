"""flagd ``context()`` on attribute graphs that share objects, fifth audit (follow-up),
against flagd's Python evaluator (openfeature-flagd-core).

As GrowthBook's context() did, flagd's flattened every path to MAX_PATH_DEPTH levels:
an object referenced twice at each level (``{"x": o, "y": o}`` nested, not a cycle)
has 2**depth paths, and each object was also CBOR-encoded at each of them. It now
derives at most MAX_CONTEXT_KEYS keys up front; past that the mapping it returns
derives a key when a check reads it, putting the value at that one path as the
flattening would have (without the values inside it).

An attribute named like a derived key (``"a#num"``, ``"a#cbor"``) overwrote it; such
names are escaped ('#' written '#!', in context() and the imported var alike:
tests/test_interop_flagd_hash_names.py)."""

from __future__ import annotations

import copy
import logging
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.interop import flagd
from tests.fuzz import examples

core_mod = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402

from tests.texts import any_text  # noqa: E402


def _shared(levels: int) -> dict:
    node: dict = {
        "k": "Vé",
        "n": 7,
        "ver": "1.2.3",
        "tags": ["a", "b"],
        "e": ["on", 1],
        "big": 2**60 + 1,
        "o": {"p": 1},
    }
    for _ in range(levels):
        node = {"x": node, "y": node, "k": "mid"}
    return node


PATH = "g." + ".".join(["x", "y"] * 20)  # 40 levels: the leaf of _shared(40)
TARGETINGS = [
    {"==": [{"var": PATH + ".k"}, "Vé"]},
    {">": [{"var": PATH + ".n"}, 6]},
    {"<": [{"var": PATH + ".big"}, 2**61]},
    {"sem_ver": [{"var": PATH + ".ver"}, ">=", "1.2.0"]},
    {"in": ["b", {"var": PATH + ".tags"}]},
    {"starts_with": [{"var": PATH + ".k"}, "V"]},
    {"==": [{"var": PATH[:-2] + ".k"}, "mid"]},
    {"!!": [{"var": PATH + ".o"}]},
    {"==": [{"var": PATH + ".o.p"}, 1]},
    {"==": [{"var": PATH + ".z"}, None]},
    {"ends_with": [{"var": PATH + ".k"}, "é"]},
]


def _doc() -> dict:
    flags = {
        f"f{i}": {
            "state": "ENABLED",
            "variants": {"y": "Y", "n": "N"},
            "defaultVariant": "n",
            "targeting": {"if": [t, "y", "n"]},
        }
        for i, t in enumerate(TARGETINGS)
    }
    flags["frac"] = {
        "state": "ENABLED",
        "variants": {"y": "Y", "n": "N", "on": "O"},
        "defaultVariant": "n",
        "targeting": {"fractional": [{"var": PATH + ".k"}, ["y", 50], ["n", 50]]},
    }
    flags["entry"] = {
        "state": "ENABLED",
        "variants": {"y": "Y", "n": "N", "on": "O"},
        "defaultVariant": "n",
        "targeting": {"fractional": [{"var": PATH + ".e"}, ["y", 1], ["n", 1]]},
    }
    return {"flags": flags}


def test_shared_graph_answers_as_flagd_and_derives_few_keys(make_py_and_c):
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)
    attrs = {"g": _shared(40)}  # 2**40 paths
    doc = _doc()
    snap = flagd.to_snapshot(copy.deepcopy(doc))
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))
    ctx = flagd.context("u1", attrs)
    assert len(ctx) <= flagd.MAX_CONTEXT_KEYS + 1
    want = {
        k: core.resolve_string_value(k, "FB", EvaluationContext("u1", attrs)).value
        for k in doc["flags"]
    }
    assert list(want.values()).count("Y") >= 8  # the paths are reached
    for make in make_py_and_c:
        engine = make(snap)
        got = {k: flagd.resolve(engine, k, ctx, "FB").value for k in doc["flags"]}
        assert got == want


def test_flattening_is_bounded_below_the_blowup():
    ctx = flagd.context("u", {"g": _shared(14)})  # the old flattening: ~500,000 keys
    assert len(ctx) <= flagd.MAX_CONTEXT_KEYS + 1
    assert ctx.get("g.x.y.k") == "mid"
    assert ctx.get("g" + ".y" * 14 + ".n#num") == 7


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    any_text(max_size=4),
    st.sampled_from(["1.2.3", "v2", "12", "x" * 4100, "1." + "9" * 300]),
)
_KEYS = st.one_of(
    st.sampled_from(["a", "b", "0", "", "a.b", "c#num", "$flagd", "targetingKey"]),
    any_text(max_size=3),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=4)),
    max_leaves=20,
)


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    attrs=st.dictionaries(_KEYS, _VALUES, max_size=5),
    tk=st.one_of(st.none(), any_text()),
    probes=st.lists(any_text(max_size=12)),
)
def test_derived_on_read_equals_flattened(attrs, tk, probes):
    eager = flagd.context(tk, attrs, now=1000)
    saved = flagd.MAX_CONTEXT_KEYS
    flagd.MAX_CONTEXT_KEYS = -1  # everything derived on read
    try:
        lazy = flagd.context(tk, attrs, now=1000)
    finally:
        flagd.MAX_CONTEXT_KEYS = saved
    keys = list(dict.keys(eager))
    for key in keys:
        assert _same(lazy.get(key), dict.__getitem__(eager, key)), key
    for key in probes + [k + "#num" for k in keys] + [k + ".a" for k in keys]:
        if key not in eager and not key.startswith(("#fraction:", "#semcmp:")):
            assert lazy.get(key) is None, key


def test_keys_that_are_no_strings_and_the_attribute_named_empty():
    attrs = {1: {"2": "x"}, "": {"a": 5}, "a": 6}
    saved = flagd.MAX_CONTEXT_KEYS
    flagd.MAX_CONTEXT_KEYS = -1
    try:
        lazy = flagd.context("u", attrs)
    finally:
        flagd.MAX_CONTEXT_KEYS = saved
    eager = flagd.context("u", attrs)
    for ctx in (eager, lazy):
        assert ctx.get("1.2") == "x"
        assert ctx.get(".a") == 5  # flagd's var ".a" reads the attribute "" then a
        assert ctx.get("a") == 6  # not the "" attribute's a


def test_the_attribute_named_empty_answers_as_flagd(make_py_and_c):
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)
    for var in ("a", ".a"):
        doc = {
            "flags": {
                "f": {
                    "state": "ENABLED",
                    "variants": {"y": "Y", "n": "N"},
                    "defaultVariant": "n",
                    "targeting": {"if": [{"==": [{"var": var}, 1]}, "y", "n"]},
                }
            }
        }
        snap = flagd.to_snapshot(copy.deepcopy(doc))
        core = core_mod.FlagdCore()
        core.set_flags(copy.deepcopy(doc))
        for attrs in ({"": {"a": 1}}, {"a": 1}, {"": 1}):
            want = core.resolve_string_value("f", "FB", EvaluationContext("u", attrs)).value
            for make in make_py_and_c:
                got = flagd.resolve(make(snap), "f", flagd.context("u", attrs), "FB").value
                assert got == want, (var, attrs)


HOSTILE = [
    ({">": [{"var": "a"}, 3]}, {"a": "1", "a#snum": 5}),
    ({">": [{"var": "a"}, 3]}, {"a": "x", "a#num": 5}),
    ({"in": ["q", {"var": "a"}]}, {"a": ["x"], "a#items": "\0q\0"}),
    ({"==": [{"var": "o.a"}, 1]}, {"o": {"a": 2, "a#num": 1}}),
    ({"fractional": [{"var": "a"}, ["y", 50], ["n", 50]]}, {"a": "k", "a#cbor": "00"}),
]


@pytest.mark.parametrize("targeting, attrs", HOSTILE)
def test_attribute_names_holding_hash_change_nothing(targeting, attrs, make_py_and_c):
    """An attribute named like a derived key ("a#num") overwrote it (flagd: no effect)."""
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)
    if "fractional" not in targeting:
        targeting = {"if": [targeting, "y", "n"]}
    doc = {"flags": {"f": {"state": "ENABLED", "variants": {"y": "Y", "n": "N"},
                           "defaultVariant": "n", "targeting": targeting}}}  # fmt: skip
    snap = flagd.to_snapshot(copy.deepcopy(doc))
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))
    want = core.resolve_string_value("f", "FB", EvaluationContext("u", attrs)).value
    for make in make_py_and_c:
        assert flagd.resolve(make(snap), "f", flagd.context("u", attrs), "FB").value == want


def test_a_var_naming_hash_reads_that_attribute(make_py_and_c):
    # (refused before; now escaped: the attribute "a#num" is read, not a's number)
    doc = {"flags": {"f": {"state": "ENABLED", "variants": {"y": "Y", "n": "N"},
                           "defaultVariant": "n",
                           "targeting": {"if": [{"var": "a#num"}, "y", "n"]}}}}  # fmt: skip
    snap = flagd.to_snapshot(copy.deepcopy(doc))
    for make in make_py_and_c:
        engine = make(snap)
        assert flagd.resolve(engine, "f", flagd.context("u", {"a": 5}), "FB").value == "N"
        assert flagd.resolve(engine, "f", flagd.context("u", {"a#num": 1}), "FB").value == "Y"
