"""flagd import, seventh audit: long ``if`` chains ("else if" branches) and deep ``if``
trees, checked against flagd's own in-process evaluator (FlagdCore).

Each branch of an ``if`` becomes an exclusive rule whose guard holds the negations of
the branches before it. The guards used to nest one level per branch, so a chain of 32
branches was refused by the compiler ("conditions nested deeper than 32 levels", with a
path of 31 "all[0]") and one of 50 by the snapshot decoder; and since every guard repeats
the conditions before it, a 40 KB chain of 1,000 branches took minutes and gigabytes.
Guards are now flat, and what a flag (and an import) may lower to is bounded. (Since
then a guard repeats only the branches that may leave a context to later rules, a null
result for one: tests/test_interop_flagd_if_chains_linear.py.)
"""

from __future__ import annotations

import copy
import json
import logging
import random
import time
from typing import Any

import pytest

from cfgcore.interop import InteropError, flagd

core_mod = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402

VARIANTS = {"red": "red", "green": "green", "blue": "blue", "none": "none"}


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)


def _chain(n: int, rng: random.Random) -> dict[str, Any]:
    args: list[Any] = []
    for i in range(n):
        cond = rng.choice(
            [
                {"==": [{"var": "country"}, f"c{i}"]},
                {"in": [{"var": "country"}, [f"c{i}", f"d{i}"]]},
                {"starts_with": [{"var": "email"}, f"u{i}@"]},
                {">=": [{"var": "age"}, n - i]},
            ]
        )
        args += [cond, rng.choice([*VARIANTS, None])]
    args.append(rng.choice([*VARIANTS, None]))
    return {"if": args}


def _tree(depth: int, rng: random.Random) -> Any:
    if depth == 0:
        return rng.choice([*VARIANTS, None])
    cond = {"==": [{"var": rng.choice(["country", "email", "tier"])}, rng.choice(["c1", "x"])]}
    return {"if": [cond, _tree(depth - 1, rng), _tree(depth - 1, rng)]}


def _doc(targeting: Any) -> dict[str, Any]:
    flag = {"state": "ENABLED", "variants": VARIANTS, "defaultVariant": "none"}
    return {"flags": {"f": {**flag, "targeting": targeting}}}


def _peer(core: Any, tk: str | None, attrs: dict[str, Any]) -> tuple:
    p = core.resolve_string_value("f", "FB", EvaluationContext(tk, attrs))
    code = p.error_code and str(p.error_code).split(".")[-1]
    return (p.value, p.variant, str(p.reason).split(".")[-1], code)


def _contexts(n: int, rng: random.Random) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{}]
    for _ in range(40):
        i = rng.randrange(n + 2)
        attrs: dict[str, Any] = {}
        if rng.random() < 0.8:
            attrs["country"] = rng.choice([f"c{i}", f"d{i}", "x", "c1"])
        if rng.random() < 0.5:
            attrs["email"] = f"u{i}@example.com"
        if rng.random() < 0.5:
            attrs["age"] = rng.choice([i, n - i, -1, "7"])
        if rng.random() < 0.3:
            attrs["tier"] = rng.choice(["x", "c1"])
        out.append(attrs)
    return out


def _agree(make_py_and_c, doc: dict[str, Any], contexts: list[dict[str, Any]]) -> None:
    snap = flagd.to_snapshot(copy.deepcopy(doc))
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))  # FlagdCore renames keys of the document it is given
    for make in make_py_and_c:
        engine = make(snap)
        for attrs in contexts:
            r = flagd.resolve(engine, "f", flagd.context("u1", attrs), "FB")
            mine = (r.value, r.variant, r.reason, r.error_code)
            assert mine == _peer(core, "u1", attrs), attrs


@pytest.mark.parametrize("n", [31, 32, 33, 50, 120, 200])
def test_a_long_if_chain_imports_and_answers_as_flagd(make_py_and_c, n):
    # before: refused from 32 branches on ("conditions nested deeper than 32 levels")
    rng = random.Random(n)
    _agree(make_py_and_c, _doc(_chain(n, rng)), _contexts(n, rng))


@pytest.mark.parametrize("depth", [6, 9])
def test_a_deep_if_tree_answers_as_flagd(make_py_and_c, depth):
    rng = random.Random(depth)
    ctxs = [
        {"country": c, "email": e, "tier": t}
        for c in ("c1", "x", None)
        for e in ("c1", "x")
        for t in ("c1", "x")
    ]
    ctxs = [{k: v for k, v in a.items() if v is not None} for a in ctxs]
    _agree(make_py_and_c, _doc(_tree(depth, rng)), ctxs)


def test_a_chain_too_long_to_lower_is_refused_naming_the_flag_quickly():
    # 20,000 branches (800 KB): before, over an hour and gigabytes; now refused once its
    # guards pass MAX_LOWERED_NODES, the other flags imported with on_error="skip". Its
    # branches give null (the default variant), so each guard repeats those before it
    # (20,000 branches naming variants lower to 20,000 rules of one test each, and import)
    args: list[Any] = []
    for i in range(20_000):
        args += [{"==": [{"var": "country"}, f"c{i}"]}, None]
    doc = _doc({"if": [*args, "blue"]})
    doc["flags"]["ok"] = {"state": "ENABLED", "variants": VARIANTS, "defaultVariant": "red"}
    started = time.process_time()
    with pytest.raises(InteropError) as err:
        flagd.to_snapshot(copy.deepcopy(doc), source="flags.json")
    msg = str(err.value)
    assert "flags.json" in msg and "flags.f.targeting" in msg
    assert f"more than {flagd.MAX_LOWERED_NODES:,} condition nodes" in msg
    snap = flagd.to_snapshot(doc, on_error="skip")
    assert set(snap.flags) == {"ok"} and "condition nodes" in snap.metadata["refused"]["f"]
    # a bound on the work, not a timing assertion: the refusal must not have lowered
    # the whole chain (seconds here; minutes before)
    assert time.process_time() - started < 120


def test_an_import_past_its_node_budget_refuses_the_flags_beyond_it(monkeypatch):
    monkeypatch.setattr(flagd, "MAX_IMPORT_NODES", 6_000)  # about three of these flags
    rng = random.Random(7)
    chain = _chain(60, rng)
    doc = {"flags": {
        f"f{i}": {"state": "ENABLED", "variants": VARIANTS, "defaultVariant": "none",
                  "targeting": chain}
        for i in range(6)
    }}  # fmt: skip
    snap = flagd.to_snapshot(json.loads(json.dumps(doc)), on_error="skip")
    refused = snap.metadata.get("refused", {})
    assert refused and set(snap.flags) and set(snap.flags).isdisjoint(refused)
    assert all("6,000 condition nodes in all" in why for why in refused.values())
    # the flags lowered before the budget ran out are the first ones, in document order
    assert sorted(snap.flags) == [f"f{i}" for i in range(len(snap.flags))]
