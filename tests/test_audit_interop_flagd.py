"""flagd import, checked against flagd's own in-process evaluator (``FlagdCore`` from
openfeature-flagd-core, the evaluator flagd's Python provider runs in-process): random
JSONLogic targeting over the supported operators, random contexts with odd values
(numbers as strings, missing keys, null, arrays, objects, unicode, empty strings),
both cfgcore evaluators. Value, variant, reason and error code must agree.

Where the Python evaluator departs from JSONLogic's own (JavaScript) semantics, the
generator leaves the input out, each with its reason below; cfgcore follows
JavaScript there.
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

from cfgcore.interop import flagd
from tests.fuzz import examples

core_mod = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402

ATTRS = ["a", "b", "email", "version", "n"]
VALUES: list[Any] = [
    "", "x", "X", "1", "1.0", " 2 ", "1e1", "0", 0, 1, 1.0, 1.5, -1, True, False, None,
    "a@x.com", "é", "1.2.3", "v1.2", "2.0.0-rc.1", "3.1.0", "3.0.0-alpha", {"k": "v"},
    "true", 2**40, [], ["x"], ["x", "y"], [2],
]  # fmt: skip
# Literals of loose operators: not 0 or false, because the Python evaluator has
# null == 0 (JavaScript: false).
LITS: list[Any] = ["x", "1", 1, 1.5, True, "", "a@x.com", "é", "2"]
VARIANTS = ["yes", "no", "maybe"]


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)
    logging.getLogger("openfeature.contrib").setLevel(logging.CRITICAL)


def _var(rng: random.Random) -> dict[str, Any]:
    return {"var": rng.choice(ATTRS)}


def _cond(rng: random.Random, depth: int = 0) -> Any:
    k = rng.randrange(13 if depth < 2 else 9)
    if k == 0:
        return {rng.choice(["==", "!=", "===", "!=="]): [_var(rng), rng.choice(LITS)]}
    if k == 1:
        return {rng.choice(["<", "<=", ">", ">="]): [_var(rng), rng.choice([0, 1, 1.5, -1, 10])]}
    if k == 2:
        return {"in": [_var(rng), rng.sample(LITS, 3)]}
    if k == 3:
        return {"in": [rng.choice(["x", "@", "1"]), _var(rng)]}
    if k == 4:
        return {rng.choice(["starts_with", "ends_with"]): [_var(rng), rng.choice(["x", "", "1"])]}
    if k == 5:
        op = rng.choice(["=", "!=", "<", "<=", ">", ">=", "^", "~"])
        ver = rng.choice(["1.2.3", "1", "v2.0", "2.0.0-rc.1", "1.2.3-alpha", "3.5.0", "3.5.2"])
        return {"sem_ver": [_var(rng), op, ver]}
    if k == 6:
        return _var(rng)
    if k == 7:
        return {"!": [_var(rng)]}
    if k == 8:
        return {"!!": [_var(rng)]}
    if k == 9:
        return {
            rng.choice(["and", "or"]): [_cond(rng, depth + 1) for _ in range(rng.randint(1, 3))]
        }
    if k == 10:
        return {"!": [_cond(rng, depth + 1)]}
    if k == 11:
        return {rng.choice(["<", "<="]): [rng.choice([0, 1]), _var(rng), rng.choice([2, 5])]}
    return {"!!": [_cond(rng, depth + 1)]}


def _outcome(rng: random.Random, depth: int = 0) -> Any:
    k = rng.randrange(5 if depth < 2 else 2)
    if k == 0:
        return rng.choice([*VARIANTS, None, "missing"])
    if k == 1:
        return rng.choice(VARIANTS)
    if k == 2:
        return {"if": [_cond(rng), _outcome(rng, depth + 1), _outcome(rng, depth + 1)]}
    if k == 3:
        return {"if": [_cond(rng), _outcome(rng, depth + 1)]}
    entries = [[v, rng.randint(0, 5)] for v in rng.sample(VARIANTS, rng.randint(1, 3))]
    if rng.random() < 0.5:
        return {"fractional": entries}
    return {"fractional": [_var(rng), *entries]}


def _peer_quirk(targeting: Any, attrs: dict[str, Any]) -> bool:
    """Inputs where the Python evaluator departs from JavaScript's JSONLogic."""
    text = json.dumps(targeting)
    values = list(attrs.values())
    # Python's == between booleans and numbers (in, ===, !==: 1 === true there)
    if any(isinstance(v, bool) for v in values) and any(
        op in text for op in ('"in"', '"==="', '"!=="')
    ):
        return True
    if any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) and (
        "true" in text or "false" in text
    ):
        return True
    # an array as the bucketing value is taken for a bucket entry (flagd has no v3 hash
    # of arrays: the ADR lists strings, numbers, booleans and objects)
    return any(isinstance(v, list) for v in values) and "fractional" in text


def _peer(core: Any, tk: str | None, attrs: dict[str, Any]) -> tuple:
    try:
        p = core.resolve_string_value("f", "FB", EvaluationContext(tk, attrs))
    except Exception:  # flagd raises where a variant is unknown: the provider's GENERAL
        return ("FB", None, "ERROR", "GENERAL")
    code = p.error_code and str(p.error_code).split(".")[-1]
    return (p.value, p.variant, str(p.reason).split(".")[-1], code)


def _check(make, rng: random.Random, contexts: int) -> int:
    targeting = _outcome(rng)
    if not isinstance(targeting, dict):
        targeting = {"if": [_cond(rng), targeting, "no"]}
    doc = {
        "flags": {
            "f": {
                "state": "ENABLED",
                "variants": {v: v for v in VARIANTS},
                "defaultVariant": rng.choice([*VARIANTS, None]),
                "targeting": targeting,
            }
        }
    }
    engine = make(flagd.to_snapshot(doc))
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))  # FlagdCore renames keys of the document it is given
    compared = 0
    for _ in range(contexts):
        attrs = {a: rng.choice(VALUES) for a in rng.sample(ATTRS, rng.randint(0, len(ATTRS)))}
        if _peer_quirk(targeting, attrs):
            continue
        tk = rng.choice(["u1", "u2", "", None, f"user-{rng.randint(0, 99)}"])
        r = flagd.resolve(engine, "f", flagd.context(tk, attrs), "FB")
        mine = (r.value, r.variant, r.reason, r.error_code)
        assert mine == _peer(core, tk, attrs), (json.dumps(targeting), attrs, tk)
        compared += 1
    return compared


@settings(max_examples=examples(120), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False))
def test_random_targeting_agrees_with_flagd_core(make_py_and_c, rng):
    for make in make_py_and_c:
        _check(make, rng, 12)


def _one(make, targeting: Any, attrs: dict[str, Any], tk: str | None = "u1") -> Any:
    doc = {
        "flags": {
            "f": {
                "state": "ENABLED",
                "variants": {"yes": "yes", "no": "no"},
                "defaultVariant": "no",
                "targeting": targeting,
            }
        }
    }
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))  # FlagdCore renames keys of the document it is given
    want = _peer(core, tk, attrs)
    r = flagd.resolve(make(flagd.to_snapshot(doc)), "f", flagd.context(tk, attrs), "FB")
    return (r.value, r.variant, r.reason, r.error_code), want


@pytest.mark.parametrize(
    ("op", "ver", "version", "hit"),
    [
        # flagd docs: "^" matches the major version, "~" the major and minor version,
        # below the given version too (not npm's ">= version")
        ("^", "3.5.0", "3.1.0", True),
        ("^", "3.5.0", "3.0.0-alpha", True),
        ("^", "3.5.0", "4.0.0-0", False),
        ("^", "3.5.0", "2.99.0", False),
        ("~", "3.5.2", "3.5.0", True),
        ("~", "3.5.2", "3.5.1-rc", True),
        ("~", "3.5.2", "3.6.0-alpha", False),
        ("~", "3.5.2", "3.4.9", False),
    ],
)
def test_sem_ver_caret_and_tilde_match_parts_like_flagd(make, op, ver, version, hit):
    targeting = {"if": [{"sem_ver": [{"var": "version"}, op, ver]}, "yes", "no"]}
    mine, want = _one(make, targeting, {"version": version})
    assert mine == want
    assert mine[0] == ("yes" if hit else "no")


def test_sem_ver_does_not_trim_whitespace(make):
    targeting = {"if": [{"sem_ver": [{"var": "version"}, ">", "1"]}, "yes", "no"]}
    mine, want = _one(make, targeting, {"version": " 2 "})
    assert mine == want and mine[0] == "no"


def test_fractional_shorthand_with_an_empty_targeting_key_is_null(make):
    # flagd's evaluator: no bucketing value -> null -> the default variant (DEFAULT)
    targeting = {"fractional": [["yes", 1], ["no", 1]]}
    mine, want = _one(make, targeting, {}, tk="")
    assert mine == want == ("no", "no", "DEFAULT", None)


@pytest.mark.parametrize(
    ("targeting", "attrs", "value"),
    [
        # loose equality: a string literal equals a number that reads the same
        ({"==": [{"var": "a"}, "1"]}, {"a": 1}, "yes"),
        ({"==": [{"var": "a"}, "1"]}, {"a": 1.0}, "yes"),
        ({"!=": [{"var": "a"}, "1"]}, {"a": 1}, "no"),
        ({"==": [{"var": "a"}, 1]}, {"a": "1.0"}, "yes"),
        ({"==": [{"var": "a"}, 1]}, {"a": " 1 "}, "yes"),
        ({"==": [{"var": "a"}, "x"]}, {"a": ["x"]}, "yes"),
        # comparisons: JSONLogic numbers; null or a missing value is 0
        ({"<": [{"var": "a"}, 18]}, {"a": "17"}, "yes"),
        ({"<": [{"var": "a"}, 18]}, {}, "yes"),
        ({"<": [{"var": "a"}, 18]}, {"a": None}, "yes"),
        ({"<=": [0, {"var": "a"}, 2]}, {}, "yes"),
        ({">": [{"var": "a"}, 0]}, {"a": True}, "yes"),
        ({">": [{"var": "a"}, 1]}, {"a": [5]}, "yes"),
        ({"<": [{"var": "a"}, 18]}, {"a": "x"}, "no"),
        # truthiness: a non-empty array and an object are true, [] is false
        ({"!!": [{"var": "a"}]}, {"a": ["x"]}, "yes"),
        ({"!!": [{"var": "a"}]}, {"a": {"k": 1}}, "yes"),
        ({"!!": [{"var": "a"}]}, {"a": []}, "no"),
        # "in" with an array of strings: membership
        ({"in": ["x", {"var": "a"}]}, {"a": ["w", "x"]}, "yes"),
        ({"in": ["x", {"var": "a"}]}, {"a": ["xy"]}, "no"),
    ],
)
def test_jsonlogic_coercions_agree_with_flagd(make, targeting, attrs, value):
    mine, want = _one(make, {"if": [targeting, "yes", "no"]}, attrs)
    assert mine == want
    assert mine[0] == value


def test_timestamp_comparison_still_reads_the_clock(make):
    # $flagd.timestamp is an integer of its own: no derived number needed
    doc = {
        "flags": {
            "f": {
                "state": "ENABLED",
                "variants": {"yes": "yes", "no": "no"},
                "defaultVariant": "no",
                "targeting": {"if": [{">": [{"var": "$flagd.timestamp"}, 1000]}, "yes", "no"]},
            }
        }
    }
    engine = make(flagd.to_snapshot(doc))
    assert engine.value("f", flagd.context("u", {}, now=2000)) == "yes"
    assert engine.value("f", flagd.context("u", {}, now=500)) == "no"
