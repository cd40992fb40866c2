"""flagd import: a flag without ``state``, and a ``defaultVariant`` that is no string.

flagd's schema (https://flagd.dev/schema/v0/flags.json, ``definitions.flag``) requires
``state`` and types ``defaultVariant`` as ``["string", "null"]`` (null: the caller's
default). flagd's Python in-process evaluator (``FlagdCore``) refuses a document with a
flag without ``state``; cfgcore served such a flag as enabled. For ``defaultVariant`` it
reads ``""`` as null, ``true``/``false`` as the variants named "true"/"false", other falsy
values (``0``, ``[]``, ``{}``) as null, and refuses the rest; cfgcore refused ``""``
("not a variant"), and ``[]``/``{}`` with a bare "unhashable type". Now: what the schema
allows is answered as FlagdCore answers it; the rest is refused saying what to write.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.interop import InteropError, flagd
from tests.fuzz import examples

core_mod = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402
from openfeature.exception import OpenFeatureError, ParseError  # noqa: E402

VARIANTS = {"a": "A", "b": "B", "true": "T", "false": "F"}
TARGETING = {"if": [{"==": [{"var": "k"}, 1]}, "b", None]}  # b, or null: the default
CONTEXTS = [{}, {"k": 1}, {"k": 2}]


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)


def _doc(**flag: Any) -> dict[str, Any]:
    return {"flags": {"f": {"state": "ENABLED", "variants": dict(VARIANTS), **flag}}}


def _core(doc: dict[str, Any]) -> Any:
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))
    return core


def _peer(core: Any, attrs: dict[str, Any]) -> tuple:
    try:
        p = core.resolve_string_value("f", "FB", EvaluationContext("u1", copy.deepcopy(attrs)))
    except OpenFeatureError as exc:
        return ("FB", None, str(exc.error_code).split(".")[-1])
    return (p.value, p.variant, str(p.reason).split(".")[-1])


def _mine(engine: Any, attrs: dict[str, Any]) -> tuple:
    r = flagd.resolve(engine, "f", flagd.context("u1", attrs), "FB")
    return (r.value, r.variant, r.error_code or r.reason)


# -- state ----------------------------------------------------------------------------------
def test_a_flag_without_state_is_refused_as_flagd_refuses_it(make_py_and_c):
    doc = {"flags": {"f": {"variants": {"on": True, "off": False}, "defaultVariant": "on"}}}
    with pytest.raises(ParseError):  # the whole document, in flagd's Python evaluator
        _core(doc)
    with pytest.raises(InteropError, match=r"flags\.f\.state: missing: flagd's schema requires"):
        flagd.to_snapshot(doc)
    # on_error="keep": resolved as PARSE_ERROR, as flagd answers a flag it cannot parse
    snap = flagd.to_snapshot(doc, on_error="keep")
    assert "state: missing" in snap.metadata["refused"]["f"]
    for make in make_py_and_c:
        r = flagd.resolve(make(snap), "f", flagd.context("u1", {}), False)
        assert (r.value, r.error_code) == (False, "PARSE_ERROR")


@pytest.mark.parametrize("state", ["ENABLED", "DISABLED"])
def test_a_flag_with_state_answers_as_flagd(make_py_and_c, state):
    doc = {"flags": {"f": {"state": state, "variants": dict(VARIANTS), "defaultVariant": "a",
                           "targeting": TARGETING}}}  # fmt: skip
    core = _core(doc)
    for make in make_py_and_c:
        engine = make(flagd.to_snapshot(doc))
        for attrs in CONTEXTS:
            assert _mine(engine, attrs) == _peer(core, attrs)


# -- defaultVariant -------------------------------------------------------------------------
@pytest.mark.parametrize("targeting", [None, TARGETING])
@pytest.mark.parametrize("default", ["", None, "a", "true"])
def test_a_default_variant_the_schema_allows_answers_as_flagd(make_py_and_c, default, targeting):
    doc = _doc(defaultVariant=default, **({"targeting": targeting} if targeting else {}))
    core = _core(doc)
    for make in make_py_and_c:
        engine = make(flagd.to_snapshot(doc))
        for attrs in CONTEXTS:
            assert _mine(engine, attrs) == _peer(core, attrs), (default, attrs)


@pytest.mark.parametrize(
    "default, got",
    [(True, "got true"), (False, "got false"), (0, "got a number"), (0.0, "got a number"),
     (1, "got a number"), (1.5, "got a number"), ([], "got a list"), (["a"], "got a list"),
     ({}, "got an object"), ({"a": 1}, "got an object")],
)  # fmt: skip
def test_a_default_variant_that_is_no_string_is_refused(default, got):
    doc = _doc(defaultVariant=default)
    with pytest.raises(InteropError) as info:
        flagd.to_snapshot(doc)
    message = str(info.value)
    assert f"flags.f.defaultVariant: expected a variant name (a string) or null, {got}" in message
    assert "malformed" not in message


@pytest.mark.parametrize("default", [True, False])
def test_the_refusal_of_a_boolean_says_what_flagd_serves(default):
    # FlagdCore serves the variant named "true"/"false": the message says to write that
    name = str(default).lower()
    assert _peer(_core(_doc(defaultVariant=default)), {})[:2] == (VARIANTS[name], name)
    with pytest.raises(InteropError, match=rf'the variant named "{name}": write that name'):
        flagd.to_snapshot(_doc(defaultVariant=default))
    assert _peer(_core(_doc(defaultVariant=name)), {})[:2] == (VARIANTS[name], name)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 2) | st.floats(-2, 2) | st.sampled_from(
        ["", "a", "b", "true", "false", "c", "A"]),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.sampled_from(["a"]), inner),
    max_leaves=3,
)  # fmt: skip


@settings(max_examples=examples(150), deadline=None)
@given(default=_JSON, targeted=st.booleans())
def test_any_default_variant_answers_as_flagd_or_is_refused(make_py_and_c, default, targeted):
    doc = _doc(defaultVariant=default, **({"targeting": TARGETING} if targeted else {}))
    try:
        snap = flagd.to_snapshot(doc)
    except InteropError as exc:
        message = str(exc)
        assert message.startswith("flags.f.defaultVariant:")
        # refused: outside the schema (no string, not null), or a name no variant has
        # (flagd answers an error for it wherever it is served)
        assert not isinstance(default, str) or default not in VARIANTS, message
        return
    assert default is None or isinstance(default, str)  # only what the schema allows
    core = _core(doc)
    for make in make_py_and_c:
        engine = make(snap)
        for attrs in CONTEXTS:
            assert _mine(engine, attrs) == _peer(core, attrs), (default, attrs)
