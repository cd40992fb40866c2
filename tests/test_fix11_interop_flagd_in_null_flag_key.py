"""flagd ``in`` with null operands and ``<``/``>``/``<=``/``>=`` on ``$flagd.flagKey``
import and answer as flagd's evaluator (FlagdCore) does, on both cfgcore evaluators.

flagd's Python evaluator (json-logic's ``in``): null is an item of an array holding null
(a missing or null var reads null), and a substring of a string holding "null" (its
text); nothing is in null, a number or a boolean. The flag key is the same for every
context, so an ordering with it is decided at import (as json-logic orders a string
against the literal: by code point, or by number where the literal is one)."""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest

from cfgcore.compiler import compile_snapshot
from cfgcore.interop import InteropError, flagd

core_mod = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402
from openfeature.exception import OpenFeatureError  # noqa: E402

VALUES = [None, "", "a", "null", "xnullx", "10", 0, 1, 1.5, True, False, [], ["a"], [None],
          ["a", None], [[None]], [1, None], {"k": 1}]  # fmt: skip


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)


def _doc(key: str, targeting: Any) -> dict[str, Any]:
    variants = {"yes": "yes", "no": "no", "maybe": "maybe"}
    flag = {"state": "ENABLED", "variants": variants, "defaultVariant": "no",
            "targeting": targeting}  # fmt: skip
    return {"flags": {key: flag}}


def _core(doc: dict[str, Any]) -> Any:
    """flagd's evaluator holding ``doc`` (a copy): it answers every context asked of it
    from the flags it parsed, changing none."""
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))
    return core


def _peer(core: Any, key: str, tk: str | None, attrs: dict[str, Any]) -> tuple:
    try:
        p = core.resolve_string_value(key, "FB", EvaluationContext(tk, copy.deepcopy(attrs)))
    except OpenFeatureError as exc:
        return ("FB", None, "ERROR", str(exc.error_code).split(".")[-1])
    code = p.error_code and str(p.error_code).split(".")[-1]
    return (p.value, p.variant, str(p.reason).split(".")[-1], code)


def _agree(make_py_and_c, cond: Any, key: str = "f") -> None:
    for targeting in ({"if": [cond, "yes", "maybe"]}, cond):
        doc = _doc(key, targeting)
        snap = flagd.to_snapshot(copy.deepcopy(doc))  # before the fix: refused
        tables = compile_snapshot(snap)  # compiled once: each engine installs the tables
        engines = [make(tables) for make in make_py_and_c]
        core = _core(doc)
        contexts = [(None, {}), ("u1", {})] + [(None, {"t": v}) for v in VALUES]
        for tk, attrs in contexts:
            want = _peer(core, key, tk, attrs)
            ctx = flagd.context(tk, attrs)  # (an evaluation reads a context, never changes it)
            for engine in engines:
                r = flagd.resolve(engine, key, ctx, "FB")
                got = (r.value, r.variant, r.reason, r.error_code)
                assert got == want, (targeting, tk, attrs)


@pytest.mark.parametrize(
    "cond",
    [
        {"in": [{"var": "t"}, ["x", None]]},
        {"in": [{"var": "t"}, [None]]},
        {"in": [{"var": "t"}, [None, 1, "a"]]},
        {"in": [{"var": "t"}, None]},
        {"in": [{"var": "t"}, 5]},
        {"in": [{"var": "t"}, True]},
        {"in": [None, {"var": "t"}]},
        {"in": [None, {"var": "$flagd.flagKey"}]},
        {"in": [None, ["x", None]]},
        {"in": [None, "a null"]},
        {"in": [None, ["x"]]},
        {"in": [None, None]},
        {"in": [True, [1]]},
        {"in": [1, "x1"]},
        {"in": [{"var": ["t", "a"]}, ["a", None]]},
        {"in": [None, {"var": ["t", "null"]}]},
    ],
    ids=repr,
)
def test_in_with_null_operands_answers_as_flagd(make_py_and_c, cond):
    _agree(make_py_and_c, cond)


@pytest.mark.parametrize("op", ["<", "<=", ">", ">="])
@pytest.mark.parametrize("key", ["f", "m", "10", "1e3", "", "é"])
def test_ordering_on_the_flag_key_is_decided_at_import(make_py_and_c, op, key):
    fk = {"var": "$flagd.flagKey"}
    for lit in ["f", "e", "g", "", "m", 0, 1, 9, 10, 1000.0, "1", "10", True, False, 1.5]:
        _agree(make_py_and_c, {op: [fk, lit]}, key)
        _agree(make_py_and_c, {op: [lit, fk]}, key)
    _agree(make_py_and_c, {op: ["a", fk, "z"]}, key)
    _agree(make_py_and_c, {op: [0, fk, 100]}, key)
    _agree(make_py_and_c, {op: [fk, {"var": "t"}]}, key)
    _agree(make_py_and_c, {op: [{"var": "t"}, fk]}, key)
    _agree(make_py_and_c, {op: [{"var": "$flagd.timestamp"}, fk]}, key)


def test_ordering_the_flag_key_against_what_no_value_orders_with_stays_refused():
    with pytest.raises(InteropError, match="non-numeric literal"):
        flagd.to_snapshot(_doc("f", {"<": [{"var": "$flagd.flagKey"}, [1]]}))
