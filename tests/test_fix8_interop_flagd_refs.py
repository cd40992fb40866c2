"""flagd ``$ref`` evaluators are expanded and lowered once per import and shared by
every reference (a neighbour of the GrowthBook saved-group fix: an allowlist evaluator
of 100,000 users referenced by 20 flags was copied, lowered, walked and decoded 20
times), and still answer as flagd's own evaluator (FlagdCore) does, the flag's own key
(``$flagd.flagKey``) included."""

from __future__ import annotations

import copy
import logging
import random
import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.interop import flagd
from tests.fuzz import examples

core_mod = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)


def _flag(targeting: Any) -> dict[str, Any]:
    return {"state": "ENABLED", "variants": {"on": True, "off": False},
            "defaultVariant": "off", "targeting": targeting}  # fmt: skip


def _doc(n_flags: int, n_users: int) -> dict[str, Any]:
    allow = {"in": [{"var": "targetingKey"}, [f"user-{i}" for i in range(n_users)]]}
    flags = {f"f{j}": _flag({"if": [{"$ref": "vip"}, "on", "off"]}) for j in range(n_flags)}
    return {"flags": flags, "$evaluators": {"vip": allow}}


def test_references_share_one_lowered_evaluator():
    snap = flagd.to_snapshot(_doc(4, 50))
    whens = [snap.flags[f"f{j}"].rules[0].when for j in range(4)]
    assert all(w is whens[0] for w in whens)


def _import_peak(n_flags: int) -> int:
    doc = _doc(n_flags, 5000)
    tracemalloc.start()
    try:
        flagd.to_snapshot(doc)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_import_memory_does_not_grow_with_references():
    one, thirty = _import_peak(1), _import_peak(30)
    assert thirty < 2 * one + 300_000, (one, thirty)


def _agree(make, doc: dict[str, Any], users: list[tuple[str, dict[str, Any]]]) -> None:
    engine = make(flagd.to_snapshot(copy.deepcopy(doc)))
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))
    for key in doc["flags"]:
        for tk, attrs in users:
            p = core.resolve_boolean_value(key, False, EvaluationContext(tk, copy.deepcopy(attrs)))
            r = flagd.resolve(engine, key, flagd.context(tk, attrs), False)
            assert (r.value, r.variant) == (p.value, p.variant), (key, tk, attrs)


def test_an_evaluator_naming_the_flag_key_answers_per_flag(make):
    own = {"in": [{"var": "$flagd.flagKey"}, ["a", "c"]]}
    doc = {
        "flags": {k: _flag({"if": [{"$ref": "own"}, "on", "off"]}) for k in ("a", "b", "c")},
        "$evaluators": {"own": own},
    }
    _agree(make, doc, [("u1", {})])
    engine = make(flagd.to_snapshot(doc))
    answers = {k: engine.is_enabled(k, flagd.context("u1", {})) for k in ("a", "b", "c")}
    assert answers == {"a": True, "b": False, "c": True}


_LEAVES = [
    {"==": [{"var": "x"}, 1]}, {"!=": [{"var": "y"}, "a"]}, {">": [{"var": "x"}, 0]},
    {"in": [{"var": "targetingKey"}, ["u1", "u3"]]}, {"starts_with": [{"var": "y"}, "a"]},
    {"==": [{"var": "$flagd.flagKey"}, "f1"]}, {"var": "z"},
]  # fmt: skip


def _cond(rng: random.Random, depth: int = 0) -> Any:
    if depth < 3 and rng.random() < 0.4:
        op = rng.choice(["and", "or", "!"])
        if op == "!":
            return {"!": [_cond(rng, depth + 1)]}
        return {op: [_cond(rng, depth + 1) for _ in range(rng.randint(1, 3))]}
    if depth > 0 and rng.random() < 0.3:
        return {"$ref": rng.choice(["e0", "e1"])}
    return copy.deepcopy(rng.choice(_LEAVES))


def _plain(rng: random.Random) -> Any:  # an evaluator holds no $ref (refused)
    c = _cond(rng, 1)
    return c if "$ref" not in repr(c) else copy.deepcopy(_LEAVES[0])


@settings(max_examples=examples(30), deadline=None)
@given(st.integers(0, 2**32))
def test_shared_evaluators_answer_as_flagd(make_py_and_c, seed):
    rng = random.Random(seed)
    evaluators = {"e0": _plain(rng), "e1": _plain(rng)}
    flags = {}
    for j in range(4):
        first = {"$ref": "e0"} if j % 2 else _cond(rng)
        flags[f"f{j}"] = _flag({"if": [first, "on", {"$ref": "e1"}, "off", "on"]})
    doc = {"flags": flags, "$evaluators": evaluators}
    users = [
        (rng.choice(["u1", "u2", "u3"]),
         {k: rng.choice([0, 1, 2, "a", "ab", None, True]) for k in ("x", "y", "z")
          if rng.random() < 0.7})
        for _ in range(8)
    ]  # fmt: skip
    for make in make_py_and_c:
        _agree(make, doc, users)
