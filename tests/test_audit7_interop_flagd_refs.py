"""flagd import, seventh audit: ``$ref`` evaluators substituted as flagd substitutes
them. flagd replaces each ``{"$ref": name}`` in the flags' text by the evaluator of that
exact name, evaluator after evaluator, so a ``$ref`` inside an evaluator is resolved or
not depending on their order (flagd's Python evaluator: only to one listed after it;
flagd in Go: in map order). cfgcore expanded such references recursively, answering
where flagd's Python evaluator refuses the document, and a 1 KB document of evaluators
each referencing the one before twice expanded exponentially (minutes, gigabytes).
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

import pytest

from cfgcore.interop import InteropError, flagd

core_mod = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)


def _doc(evaluators: dict[str, Any], ref: Any) -> dict[str, Any]:
    flag = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"}
    return {
        "$evaluators": evaluators,
        "flags": {"f": {**flag, "targeting": {"if": [ref, "on", "off"]}},
                  "ok": {**flag, "defaultVariant": "on"}},
    }  # fmt: skip


def _eq(v: str) -> dict[str, Any]:
    return {"==": [{"var": "a"}, v]}


def test_a_ref_inside_an_evaluator_is_refused_naming_the_flag():
    evaluators = {"base": _eq("x"), "wide": {"or": [{"$ref": "base"}, _eq("y")]}}
    doc = _doc(evaluators, {"$ref": "wide"})
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))
    with pytest.raises(Exception, match="Invalid targeting"):  # flagd's Python evaluator
        core.resolve_boolean_value("f", None, EvaluationContext("u", {"a": "x"}))
    with pytest.raises(InteropError) as err:
        flagd.to_snapshot(doc, source="flags.json")
    msg = str(err.value)
    assert "flags.json" in msg and "(through the $ref at flags.f.targeting" in msg
    assert "inside evaluator 'wide'" in msg
    snap = flagd.to_snapshot(doc, on_error="skip")
    assert set(snap.flags) == {"ok"}


def test_an_exponential_ref_document_is_refused_at_once():
    evaluators: dict[str, Any] = {"e0": _eq("x")}
    for i in range(1, 40):
        evaluators[f"e{i}"] = {"or": [{"$ref": f"e{i - 1}"}, {"$ref": f"e{i - 1}"}]}
    started = time.process_time()
    with pytest.raises(InteropError, match="inside evaluator"):
        flagd.to_snapshot(_doc(evaluators, {"$ref": "e39"}))
    assert time.process_time() - started < 30  # a bound on the work (2^39 before)


def test_many_references_to_a_large_evaluator_are_bounded():
    # 150,000 references to one evaluator (each substituted in full, as flagd does)
    big = {"in": [{"var": "a"}, [f"v{i}" for i in range(10)]]}
    doc = _doc({"big": big}, {"or": [{"and": [{"$ref": "big"}] * 50}] * 3000})
    with pytest.raises(InteropError, match=r"expand to more than 1,000,000 nodes"):
        flagd.to_snapshot(doc)


def test_a_ref_by_a_name_that_is_not_exact_is_unknown():
    # flagd matches the exact name; cfgcore used to trim it
    doc = _doc({"base": _eq("x")}, {"$ref": " base"})
    with pytest.raises(InteropError, match="unknown evaluator ' base'"):
        flagd.to_snapshot(doc)


@pytest.mark.parametrize("a", ["x", "y", "z", None])
def test_plain_refs_still_answer_as_flagd(make_py_and_c, a):
    evaluators = {"one": _eq("x"), "two": {"or": [_eq("y"), _eq("x")]}}
    doc = _doc(evaluators, {"and": [{"$ref": "two"}, {"!": [{"$ref": "one"}]}]})
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))
    attrs = {} if a is None else {"a": a}
    want = core.resolve_boolean_value("f", None, EvaluationContext("u", attrs))
    snap = flagd.to_snapshot(doc)
    for make in make_py_and_c:
        r = flagd.resolve(make(snap), "f", flagd.context("u", attrs), None)
        assert (r.value, r.variant) == (want.value, want.variant)
