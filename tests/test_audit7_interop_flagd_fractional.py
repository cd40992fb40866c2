"""flagd import, seventh audit: ``fractional`` weights, bucketing keys and entries
checked against flagd's Python evaluator (FlagdCore). A weight that is no JSON integer
(1.0) makes that evaluator answer the default variant for the whole fractional, where
flagd itself reads it as 1; cfgcore imported it as 1. It is now refused naming the flag.
"""

from __future__ import annotations

import copy
import json
import logging
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.interop import InteropError, flagd
from tests.fuzz import examples

core_mod = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402

VARIANTS = {"a": "a", "b": "b", "c": "c", "1": "one", "true": "t"}
VALUES: list[Any] = ["", "x", "u1", 0, 1, 1.5, -3, 2**40, 1e300, {"k": "v"}, None, "é", "a" * 300]


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)


def _doc(targeting: Any, default: str | None = "a") -> dict[str, Any]:
    flag = {"state": "ENABLED", "variants": VARIANTS, "defaultVariant": default}
    return {"flags": {"f": {**flag, "targeting": targeting}}}


def _peer(core: Any, tk: str | None, attrs: dict[str, Any]) -> tuple:
    try:
        p = core.resolve_string_value("f", "FB", EvaluationContext(tk, attrs))
    except Exception:  # flagd raises where a variant is unknown: the provider's GENERAL
        return ("FB", None, "ERROR", "GENERAL")
    code = p.error_code and str(p.error_code).split(".")[-1]
    return (p.value, p.variant, str(p.reason).split(".")[-1], code)


@pytest.mark.parametrize(
    "entries", [[["b", 1], ["c", 1.0]], [["b", 50.0], ["c", 50.0]], [["b", 0.0], ["c", 1]]]
)
def test_a_float_weight_is_refused_naming_the_flag(entries):
    doc = _doc({"fractional": [{"var": "targetingKey"}, *entries]})
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))
    # the Python evaluator: the default variant for everyone (before: imported as 1)
    assert {_peer(core, f"user{u}", {})[1] for u in range(30)} == {"a"}
    with pytest.raises(InteropError) as err:
        flagd.to_snapshot(doc, source="flags.json")
    msg = str(err.value)
    # named by the entry with the float weight (operand 0 is the bucketing key)
    at = 1 + next(i for i, (_, w) in enumerate(entries) if isinstance(w, float))
    assert "flags.json" in msg and f"flags.f.targeting.fractional[{at}]:" in msg
    assert "is not a JSON integer" in msg


def _key(rng: random.Random) -> Any:
    r = rng.random()
    if r < 0.3:
        return {"var": rng.choice(["k", "n", "missing"])}
    if r < 0.5:
        return {"cat": [{"var": "$flagd.flagKey"}, {"var": rng.choice(["k", "n", "targetingKey"])}]}
    if r < 0.6:
        return {"var": "targetingKey"}
    if r < 0.7:
        return rng.choice(["const", ""])
    return None


def _entry(rng: random.Random) -> list[Any]:
    name = rng.choice(["a", "b", "c", "1", "true", "zz", None, 1])
    weight = rng.choice([0, 1, 7, 33, 50, 100, 1000, 2**20, 2**30, -5, 1.0])
    return [name, weight] if rng.random() < 0.9 else [name]


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False))
def test_random_fractionals_are_refused_or_answer_as_flagd(make_py_and_c, rng):
    key = _key(rng)
    frac = {"fractional": ([key] if key is not None else []) + [
        _entry(rng) for _ in range(rng.randint(1, 4))
    ]}  # fmt: skip
    targeting = frac
    if rng.random() < 0.3:
        targeting = {"if": [{"==": [{"var": "g"}, "x"]}, frac, rng.choice(["a", "b", None])]}
    doc = _doc(targeting, rng.choice(["a", None]))
    try:
        snap = flagd.to_snapshot(copy.deepcopy(doc))
    except InteropError:
        return
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))  # FlagdCore renames keys of the document it is given
    engines = [make(snap) for make in make_py_and_c]
    for _ in range(12):
        attrs = {}
        if rng.random() < 0.8:
            attrs["k"] = rng.choice(VALUES)
        if rng.random() < 0.5:
            attrs["n"] = rng.choice(VALUES)
        if rng.random() < 0.5:
            attrs["g"] = rng.choice(["x", "y"])
        tk = rng.choice(["u1", "", None, f"user-{rng.randint(0, 999)}"])
        want = _peer(core, tk, attrs)
        for engine in engines:
            r = flagd.resolve(engine, "f", flagd.context(tk, attrs), "FB")
            assert (r.value, r.variant, r.reason, r.error_code) == want, (
                json.dumps(targeting),
                attrs,
                tk,
            )
