"""flagd import: a ``fractional`` whose weights sum past 2^31-1 answers as flagd does.

flagd's bucketing (the testbed's README, "Bucketing": the sum must be at most 2^31-1)
has no bucket for such weights: flagd's Python evaluator (FlagdCore) logs "Total
fractional weight exceeds MaxInt32" and the fractional is null, the default variant
(reason DEFAULT), as for weights summing to 0. cfgcore refused the whole flag instead,
so ``on_error="keep"`` answered PARSE_ERROR for every user, and a weight that passed
the bound only for some users (an ``if`` as a weight) lost the flag for all of them.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest

from cfgcore.interop import flagd

core_mod = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402

MAX = 2**31 - 1
VARIANTS = {"a": "A", "b": "B", "c": "C"}
USERS = [None, "", "u1", "é", "\U0001f600", "a" * 300, *(f"user{i}" for i in range(30))]


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)


def _doc(targeting: Any, default: str | None = "a") -> dict[str, Any]:
    flag = {"state": "ENABLED", "variants": VARIANTS, "defaultVariant": default}
    return {"flags": {"f": {**flag, "targeting": targeting}}}


def _peer(doc: dict[str, Any], tk: str | None, attrs: dict[str, Any]) -> tuple:
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))  # (set_flags rewrites the document it is given)
    p = core.resolve_string_value("f", "FB", EvaluationContext(tk, copy.deepcopy(attrs)))
    code = p.error_code and str(p.error_code).split(".")[-1]
    return (p.value, p.variant, str(p.reason).split(".")[-1], code)


def _ours(engine: Any, tk: str | None, attrs: dict[str, Any]) -> tuple:
    r = flagd.resolve(engine, "f", flagd.context(tk, attrs), "FB")
    return (r.value, r.variant, r.reason, r.error_code)


OVER = [
    {"fractional": [["b", MAX + 1]]},
    {"fractional": [["b", MAX], ["c", 1]]},
    {"fractional": [{"var": "targetingKey"}, ["b", 2**30], ["c", 2**30]]},
    {"fractional": [{"var": "k"}, ["b", 2**62], ["c", 1]]},
    {"if": [{"==": [{"var": "k"}, "x"]}, {"fractional": [["b", 2**40], ["c", 1]]}, "c"]},
]


@pytest.mark.parametrize("targeting", OVER, ids=range(len(OVER)))
@pytest.mark.parametrize("default", ["a", None])
def test_weights_past_the_bound_serve_the_default_variant(make, targeting, default):
    doc = _doc(targeting, default)
    engine = make(flagd.to_snapshot(copy.deepcopy(doc), source="flags.json"))
    for tk in USERS:
        for attrs in ({}, {"k": "x"}, {"k": 7}):
            want = _peer(doc, tk, attrs)
            assert _ours(engine, tk, attrs) == want, (tk, attrs)
    # the peer's answer here: the flag's default variant (or the caller's), never B or C
    assert _peer(doc, "u1", {"k": "x"})[0] in ("A", "FB")


def test_a_weight_past_the_bound_for_some_users_only(make):
    # an if as a weight: past 2^31-1 where big is true (the default variant), an
    # ordinary 1:1 split elsewhere
    weight = {"if": [{"var": "big"}, MAX, 1]}
    doc = _doc({"fractional": [{"var": "targetingKey"}, ["b", weight], ["c", 1]]})
    engine = make(flagd.to_snapshot(copy.deepcopy(doc)))
    served = set()
    for tk in USERS:
        for attrs in ({"big": True}, {"big": False}, {}):
            want = _peer(doc, tk, attrs)
            assert _ours(engine, tk, attrs) == want, (tk, attrs)
            served.add((attrs.get("big", False), want[1]))
    assert (True, "a") in served and not {(True, "b"), (True, "c")} & served
    assert {(False, "b"), (False, "c")} <= served


def test_keep_answers_as_flagd_too(make):
    doc = _doc({"fractional": [["b", MAX], ["c", MAX]]})
    snap = flagd.to_snapshot(copy.deepcopy(doc), on_error="keep")
    assert "refused" not in snap.metadata
    engine = make(snap)
    assert _ours(engine, "u1", {}) == _peer(doc, "u1", {}) == ("A", "a", "DEFAULT", None)
