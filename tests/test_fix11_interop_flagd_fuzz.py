"""Differential fuzzing of what the flagd importer now lowers against flagd's own
evaluator (``FlagdCore``), on both cfgcore evaluators: ``var`` with a default value of
any JSON type in every position the importer takes a var (comparisons, ``in``,
``starts_with``/``ends_with``, ``sem_ver``, truthiness under ``if``/``and``/``or``/``!``/
``!!``, a variant named by a var, fractional bucketing keys and ``cat``), ``in`` with
null operands, and orderings on ``$flagd.flagKey``. Every document drawn here must
import (each was refused before): a refusal fails the test.

CI runs a short profile; a soak run sets ``CFGCORE_FUZZ=soak`` and
``CFGCORE_FUZZ_EXAMPLES`` (per test; 20,000 by default).

Stated exclusions, left out of the generators: a null attribute where flagd's
JavaScript evaluator (json-logic-engine) would read null and not the default (the
peer here, like flagd's Go evaluator, reads the default: cfgcore follows them); a
default that is an operation (refused: the Python evaluator evaluates it, Go's does
not); an array default of a fractional v3 bucketing key (refused: flagd reads it as a
bucket entry); an array or object default where it names a variant (refused: no
variant name); an ordering against null (refused, as before).
"""

from __future__ import annotations

import copy
import logging
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.interop import flagd
from tests.fuzz import examples

core_mod = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402
from openfeature.exception import OpenFeatureError  # noqa: E402

SOAK = os.environ.get("CFGCORE_FUZZ") == "soak"
EXAMPLES = int(os.environ.get("CFGCORE_FUZZ_EXAMPLES", "20000")) if SOAK else examples(40)
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
FUZZ_STATS: dict[str, int] = {}

SCALARS = ["", "a", "abc", "é", "null", "10", "9", "1.2.3", "v1.2.3", "1.2.3-rc.1", "2.0.0",
           0, 1, -1, 1.5, 9, 10, True, False]  # fmt: skip
scalar = st.sampled_from([*SCALARS, None])
value = st.one_of(scalar, st.lists(scalar, max_size=2), st.just({"k": 1}))
default = st.one_of(
    st.sampled_from(SCALARS),  # (null is no default)
    st.lists(scalar, max_size=2),
    st.just({"k": 1, "j": "a"}),
)
NAMES = ["a", "b", "obj.x", "targetingKey", "$flagd.flagKey", "$flagd.other", "zz"]
defaulted = st.builds(lambda n, d: {"var": [n, d]}, st.sampled_from(NAMES), default)
plain = st.sampled_from(["a", "b", "obj.x"]).map(lambda n: {"var": n})


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)


@st.composite
def leaf(draw: Any) -> Any:
    x = draw(defaulted)
    kind = draw(st.integers(0, 9))
    if kind == 0:
        op = draw(st.sampled_from(["==", "!=", "===", "!=="]))
        lit = draw(scalar)
        return {op: [x, lit] if draw(st.booleans()) else [lit, x]}
    if kind == 1:
        op = draw(st.sampled_from(["<", "<=", ">", ">="]))
        lit = draw(st.sampled_from([0, 1, 1.5, 9, 10, -1, "", "a", "B", "10", "9", True]))
        if draw(st.integers(0, 3)) == 0:
            return {op: [draw(st.sampled_from([0, -1, "a"])), x, draw(st.sampled_from([5, "z"]))]}
        return {op: [x, lit] if draw(st.booleans()) else [lit, x]}
    if kind == 2:
        return {"in": [x, draw(st.lists(scalar, max_size=4))]}
    if kind == 3:
        return {"in": [draw(st.sampled_from(["a", "b", "1", "null", None])), x]}
    if kind == 4:
        op = draw(st.sampled_from(["starts_with", "ends_with"]))
        return {op: [x, draw(st.sampled_from(["", "a", "c", "ab", "1", "3"]))]}
    if kind == 5:
        op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "^", "~"]))
        return {"sem_ver": [x, op, draw(st.sampled_from(["1.2.3", "2.0.0", "1.2.3-rc.1"]))]}
    if kind == 6:
        return {draw(st.sampled_from(["!", "!!"])): [x]}
    if kind == 7:
        return x
    if kind == 8:  # in with null operands, a var without a default
        return draw(
            st.sampled_from(
                [
                    {"in": [{"var": "a"}, [None, "a"]]},
                    {"in": [{"var": "a"}, None]},
                    {"in": [None, {"var": "a"}]},
                    {"in": [None, {"var": "obj.x"}]},
                    {"in": [None, [None]]},
                ]
            )
        )
    op = draw(st.sampled_from(["<", "<=", ">", ">="]))  # orderings on the flag key
    fk = {"var": "$flagd.flagKey"}
    other = draw(st.one_of(st.sampled_from(["e", "f", "g", "", 0, 1, "10", True]), plain))
    return {op: [fk, other] if draw(st.booleans()) else [other, fk]}


condition = st.recursive(
    leaf(),
    lambda inner: st.one_of(
        st.builds(lambda cs: {"and": cs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda cs: {"or": cs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda c: {"!": [c]}, inner),
    ),
    max_leaves=4,
)
named = st.builds(
    lambda n, d: {"var": [n, d]},
    st.sampled_from(["a", "obj.x", "zz"]),
    st.sampled_from(["yes", "maybe", "nope", "", 1, True]),
)


@st.composite
def fractional(draw: Any) -> Any:
    names = draw(st.lists(st.sampled_from(["yes", "no", "maybe"]), min_size=1, max_size=3,
                          unique=True))  # fmt: skip
    entries = [[n, draw(st.integers(0, 50))] for n in names]
    scalar_default = st.sampled_from([d for d in SCALARS] + [{"k": 1, "j": "a"}])
    key = draw(
        st.one_of(
            st.builds(lambda n, d: {"var": [n, d]}, st.sampled_from(NAMES), scalar_default),
            st.builds(lambda d: {"cat": ["p", {"var": ["a", d]}, "s"]}, default),
            st.builds(
                lambda d: {"cat": [{"var": "$flagd.flagKey"}, {"var": ["obj.x", d]}]}, default
            ),  # fmt: skip
        )
    )
    return {"fractional": [key, *entries]}


@st.composite
def targeting(draw: Any) -> Any:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(fractional())
    if kind == 1:
        return draw(named)
    branches: list[Any] = []
    for _ in range(draw(st.integers(1, 2))):
        branches += [draw(condition), draw(st.one_of(st.sampled_from(["yes", "no"]), named))]
    branches.append(draw(st.sampled_from(["maybe", None])))
    return {"if": branches}


contexts = st.lists(
    st.tuples(
        st.sampled_from([None, "", "u1", "user-2"]),
        st.fixed_dictionaries(
            {},
            optional={
                "a": value,
                "b": value,
                "zz": value,
                "obj": st.one_of(st.fixed_dictionaries({}, optional={"x": value}), scalar),
            },  # fmt: skip
        ),
    ),
    min_size=1,
    max_size=8,
)


def _peer(doc: dict[str, Any], tk: str | None, attrs: dict[str, Any]) -> tuple:
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))
    try:
        p = core.resolve_string_value("f", "FB", EvaluationContext(tk, copy.deepcopy(attrs)))
    except OpenFeatureError as exc:
        return ("FB", None, "ERROR", str(exc.error_code).split(".")[-1])
    code = p.error_code and str(p.error_code).split(".")[-1]
    return (p.value, p.variant, str(p.reason).split(".")[-1], code)


@FUZZ
@given(targeting=targeting(), default_variant=st.sampled_from(["no", None]), ctxs=contexts)
def test_var_defaults_in_null_and_flag_key_orderings_agree_with_flagd(
    make_py_and_c, targeting, default_variant, ctxs
):
    flag: dict[str, Any] = {"state": "ENABLED", "targeting": targeting,
                            "variants": {"yes": "yes", "no": "no", "maybe": "maybe"}}  # fmt: skip
    if default_variant is not None:
        flag["defaultVariant"] = default_variant
    doc = {"flags": {"f": flag}}
    snap = flagd.to_snapshot(copy.deepcopy(doc))  # before the fix: refused
    FUZZ_STATS["imported"] = FUZZ_STATS.get("imported", 0) + 1
    engines = [make(snap) for make in make_py_and_c]
    for tk, attrs in ctxs:
        want = _peer(doc, tk, attrs)
        for engine in engines:
            r = flagd.resolve(engine, "f", flagd.context(tk, attrs), "FB")
            assert (r.value, r.variant, r.reason, r.error_code) == want, (targeting, tk, attrs)
        FUZZ_STATS["contexts"] = FUZZ_STATS.get("contexts", 0) + 1
