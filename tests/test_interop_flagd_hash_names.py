"""flagd attribute names holding '#', against flagd's Python evaluator
(openfeature-flagd-core).

A ``var`` naming '#' was refused on import, and context() left such names out, because
context() derives keys under '#' suffixes (``a#num``, ``a#cbor``, ``a#semver``,
``a#items``, ...) that an attribute named so would have stood for. Now they are escaped
as GrowthBook's and Unleash's are (cfgcore.interop._escaped_names: each '#' in a path
segment written '#!'; every derived suffix puts a letter after its '#'), in context()
(eagerly flattened or derived on read past its key budget) and in the imported
conditions alike: ``{"var": "a#num"}`` reads the attribute ``a#num`` as flagd does, and
no context can forge a derived key (answers equal flagd's)."""

from __future__ import annotations

import copy
import itertools
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.compiler import compile_snapshot
from cfgcore.interop import flagd
from cfgcore.interop.flagd import from_snapshot as to_flagd
from tests.fuzz import examples

core_mod = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402

NAMES = ["a", "a#num", "a#cbor", "a#snum", "a#semver", "a#!num", "#", "a#", "o.b#str",
         "o#x.b", "#fraction:x"]  # fmt: skip
SUFFIXES = ["#num", "#snum", "#lnum", "#str", "#truthy", "#items", "#nulls", "#cbor",
            "#semver", "#since", "#cat", "#pyname", "#semlong", "#res", "#big", ""]  # fmt: skip
TARGETINGS = [
    lambda v: {"if": [{">": [{"var": v}, 3]}, "y", "n"]},
    lambda v: {"if": [{"==": [{"var": v}, 5]}, "y", "n"]},
    lambda v: {"if": [{"in": ["q", {"var": v}]}, "y", "n"]},
    lambda v: {"if": [{"sem_ver": [{"var": v}, ">", "1.0.0"]}, "y", "n"]},
    lambda v: {"if": [{"!!": [{"var": v}]}, "y", "n"]},
    lambda v: {"if": [{"starts_with": [{"var": v}, "x"]}, "y", "n"]},
    lambda v: {"if": [{"<": [{"var": v}, "4"]}, "y", "n"]},
    lambda v: {"if": [{"in": [{"var": v}, ["x", "5", "q"]]}, "y", "n"]},
    lambda v: {"fractional": [{"var": v}, ["y", 50], ["n", 50]]},
]
VALUES = ["x", "5", "q", "2.0.0", 7, 1.0, True, ["q"], ["x", 1], {"k": 1}, None, "0.1.0"]
FORGED = [9, "9.9.9", "\0q\0", "00", True, "x1"]


def _doc(targeting) -> dict:
    return {"flags": {"f": {"state": "ENABLED", "variants": {"y": "Y", "n": "N"},
                            "defaultVariant": "n", "targeting": targeting}}}  # fmt: skip


def _put(attrs: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    node = attrs
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value


def _hostile(name: str, value, forged) -> list[dict]:
    """Attributes giving ``name`` ``value`` (or not), beside attributes named like the
    keys context() derives for it, or escapes of them, holding ``forged``."""
    escaped = ".".join(p.replace("#", "#!") for p in name.split("."))
    out = [{}, {}, {}]
    _put(out[0], name, value)
    for target in out[1:]:
        for s in SUFFIXES:
            for n in {name + s, escaped + s}:
                if n != name:
                    try:
                        _put(target, n, forged)
                    except (AttributeError, TypeError):
                        pass  # a parent already holds a value
    try:
        _put(out[1], name, value)
    except (AttributeError, TypeError):
        pass
    return out


def _core(doc: dict):
    """flagd's evaluator holding ``doc`` (a copy): it answers every context asked of it
    from the flags it parsed, changing none."""
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))
    return core


def _peer(core, attrs: dict) -> str:
    return core.resolve_string_value("f", "FB", EvaluationContext("u1", copy.deepcopy(attrs))).value


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("targeting", range(len(TARGETINGS)))
def test_a_var_naming_hash_answers_as_flagd_and_cannot_be_forged(name, targeting, make_py_and_c):
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)
    doc = _doc(TARGETINGS[targeting](name))
    snap = flagd.to_snapshot(copy.deepcopy(doc))
    tables = compile_snapshot(snap)  # compiled once: each engine installs the tables
    engines = [make(tables) for make in make_py_and_c]
    core = _core(doc)
    for value, forged in itertools.product(VALUES, FORGED):
        for attrs in _hostile(name, value, forged):
            want = _peer(core, attrs)
            ctx = flagd.context("u1", attrs)  # (an evaluation reads a context, never changes it)
            for engine in engines:
                got = flagd.resolve(engine, "f", ctx, "FB").value
                assert got == want, (name, attrs)


def _shared(levels: int, leaf: dict) -> dict:
    node = leaf
    for _ in range(levels):
        node = {"x": node, "y": node}
    return node


@pytest.mark.parametrize("name", ["a#num", "b#!c", "#cbor", "a"])
def test_past_the_key_budget_names_holding_hash_are_read_as_flattened(name, make_py_and_c):
    """Past MAX_CONTEXT_KEYS the mapping derives a key when it is read (walking the
    path, each segment unescaped): the same answers as flagd's, forged keys included."""
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)
    path = "g." + ".".join(["x", "y"] * 7) + "." + name
    leaf = {name: 7, name + "#num": 1, name.replace("#", "#!") + "#num": 1, "z#num": 9}
    attrs = {"g": _shared(14, leaf), name: 7}
    ctx = flagd.context("u1", attrs)
    assert len(ctx) <= flagd.MAX_CONTEXT_KEYS + 1  # (derived on read)
    for t in TARGETINGS[:2]:
        for var in (path, name):
            doc = _doc(t(var))
            tables = compile_snapshot(flagd.to_snapshot(copy.deepcopy(doc)))
            want = _peer(_core(doc), attrs)
            for make in make_py_and_c:
                assert flagd.resolve(make(tables), "f", ctx, "FB").value == want, var


@pytest.mark.parametrize("name", ["a#num", "o#x.b", "#", "a#!b"])
def test_an_imported_var_naming_hash_exports_as_itself(name):
    doc = _doc({"if": [{"starts_with": [{"var": name}, "x"]}, "y", "n"]})
    exported = to_flagd(flagd.to_snapshot(copy.deepcopy(doc)))
    assert exported["flags"]["f"]["targeting"]["if"][0]["starts_with"][0] == {"var": name}


_SEG = st.text(alphabet="ab#!", min_size=1, max_size=4)


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    var=st.lists(_SEG, min_size=1, max_size=2).map(".".join),
    attrs=st.dictionaries(_SEG, st.one_of(st.sampled_from(VALUES[:8]),
                                          st.dictionaries(_SEG, st.sampled_from(VALUES[:8]),
                                                          max_size=3)), max_size=5),
    t=st.integers(0, len(TARGETINGS) - 1),
)  # fmt: skip
def test_any_names_answer_as_flagd(var, attrs, t, make_py_and_c):
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)
    doc = _doc(TARGETINGS[t](var))
    try:
        snap = flagd.to_snapshot(copy.deepcopy(doc))
    except flagd.InteropError:
        return  # (refused for another reason)
    want = _peer(_core(doc), attrs)
    tables = compile_snapshot(snap)  # compiled once: each engine installs the tables
    for make in make_py_and_c:
        assert flagd.resolve(make(tables), "f", flagd.context("u1", attrs), "FB").value == want
