"""flagd ``if`` chains lower to rules linear in the chain's length.

Each branch of an ``if`` becomes a rule, and cfgcore serves the first rule that
matches: a branch whose rules cover every context reaching it (it names a variant)
leaves nothing to the rules after it, so they no longer repeat its negated condition.
Only a branch that may leave a context to later rules (a null result, a ``var``
naming the variant, a ``fractional``, an ``if`` without an else) is still negated in
the guards after it. A 50-branch chain was 50 * 51 / 2 negations (a 320 KB document of
such flags took seconds to import and compile); it is 50 rules of one test each.

The answers are checked against flagd's own evaluator (FlagdCore) and against the
exclusive lowering (every branch negated after it, as before), on both evaluators:
same variant, reason and deciding rule for every context.
"""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore._layout import NW
from cfgcore.compiler import compile_snapshot
from cfgcore.interop import InteropError, flagd
from cfgcore.snapshot import Condition
from tests.fuzz import examples

core_mod = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402
from openfeature.exception import OpenFeatureError  # noqa: E402

VARIANTS = {"red": "red", "green": "green", "blue": "blue", "true": "yes"}


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)


def _doc(targeting: Any, default: str | None = "blue") -> dict[str, Any]:
    flag = {"state": "ENABLED", "variants": VARIANTS, "defaultVariant": default}
    return {"flags": {"f": {**flag, "targeting": targeting}}}


def _exclusive_snapshot(doc: dict[str, Any]) -> Any:
    """The snapshot as lowered before: every branch negated in the guards after it
    (no branch is taken to cover its contexts)."""
    covers = flagd._Flag.outcome

    def never_covers(self: Any, expr: Any, guard: Any) -> bool:
        covers(self, expr, guard)
        return False

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(flagd._Flag, "outcome", never_covers)
        return flagd.to_snapshot(copy.deepcopy(doc))


def _nodes(cond: Any) -> int:
    if cond is None:
        return 0
    parts = [cond.not_] if cond.not_ is not None else (cond.all or cond.any or [])
    return 1 + sum(_nodes(c) for c in parts)


def _negations(cond: Any) -> int:
    if cond is None or not isinstance(cond, Condition):
        return 0
    parts = [cond.not_] if cond.not_ is not None else (cond.all or cond.any or [])
    return (cond.not_ is not None) + sum(_negations(c) for c in parts)


# -- answers --------------------------------------------------------------------------------
CONDS = [
    *({"==": [{"var": "country"}, f"c{i}"]} for i in range(4)),
    *({"in": [{"var": "country"}, [f"c{i}", f"c{i + 1}"]]} for i in range(3)),
    *({"starts_with": [{"var": "email"}, f"u{i}@"]} for i in range(3)),
    *({">=": [{"var": "age"}, i * 10]} for i in range(4)),
    {"!": {"var": "beta"}},
    True,  # always holds: the branches after it are never reached
    False,
]
LEAVES = ["red", "green", "blue", "true", "nope", None]


def _outcomes(depth: int) -> st.SearchStrategy[Any]:
    leaf = st.one_of(
        st.sampled_from(LEAVES),
        st.just({"var": "pick"}),
        st.just({"var": ["pick", "green"]}),
        # a test names "true" or "false" (or, where its result is null, the default)
        st.just({"==": [{"var": "country"}, "c1"]}),
        st.just({"starts_with": [{"var": "email"}, "u1"]}),
        st.just({"sem_ver": [{"var": "version"}, ">=", "1.2.0"]}),
        # null without a bucketing value (no targeting key, no email)
        st.just({"fractional": [["red", 50], ["green", 50]]}),
        st.just({"fractional": [{"var": "email"}, ["red", 50], ["green", 50]]}),
    )
    if depth == 0:
        return leaf
    return st.one_of(leaf, _chains(depth - 1))


@st.composite
def _chains(draw: Any, depth: int = 2) -> dict[str, Any]:
    args: list[Any] = []
    for _ in range(draw(st.integers(0, 10 if depth == 2 else 4))):
        args += [draw(st.sampled_from(CONDS)), draw(_outcomes(depth))]
    if draw(st.booleans()):
        args.append(draw(_outcomes(depth)))
    return {"if": args}


CONTEXTS = [
    {},
    {"country": "c0"},
    {"country": "c1", "age": 15},
    {"country": "c2", "email": "u2@example.com", "beta": True},
    {"country": "c3", "age": 35, "pick": "red"},
    {"email": "u0@x", "age": 5, "pick": "nope"},
    {"email": "u1@x", "country": "zz", "pick": "blue", "beta": 1},
    {"age": "25", "pick": None, "version": "1.3.0"},
    {"country": "c1", "version": "0.9.1", "email": "u1@example.com"},
    {"country": "c2", "version": "not-one"},
]


def _answers(engine: Any, tk: str | None, attrs: dict[str, Any], ctx: Any = None) -> tuple:
    d = engine.evaluate("f", flagd.context(tk, attrs) if ctx is None else ctx)
    return (d.value, d.variant, d.reason, d.error_code, d.rule_index)


def _peer(core: Any, tk: str | None, attrs: dict[str, Any]) -> tuple:
    try:
        p = core.resolve_string_value("f", "FB", EvaluationContext(tk, copy.deepcopy(attrs)))
    except OpenFeatureError as exc:  # flagd raises where a variant is unknown
        return ("FB", None, "ERROR", str(exc.error_code).split(".")[-1])
    code = p.error_code and str(p.error_code).split(".")[-1]
    return (p.value, p.variant, str(p.reason).split(".")[-1], code)


@settings(max_examples=examples(150))
@given(targeting=_chains(), default=st.sampled_from(["blue", None]))
def test_chains_answer_as_flagd_and_as_the_exclusive_lowering(make_py_and_c, targeting, default):
    doc = _doc(targeting, default)
    try:
        snap = flagd.to_snapshot(copy.deepcopy(doc))
    except InteropError:  # (a construct the importer refuses either way)
        with pytest.raises(InteropError):
            _exclusive_snapshot(doc)
        return
    before = _exclusive_snapshot(doc)
    # the same rules, in the same places, serving the same: only their guards differ
    # (a guard left with nothing to test is no guard: the rule has no "when")
    strip = [(r.serve, r.hash, r.buckets) for r in snap.flags["f"].rules]
    assert strip == [(r.serve, r.hash, r.buckets) for r in before.flags["f"].rules]
    nodes = sum(_nodes(r.when) for r in snap.flags["f"].rules)
    assert nodes <= sum(_nodes(r.when) for r in before.flags["f"].rules)
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))
    # flagd's answer and the context of each case, once for every engine (an evaluation
    # reads a context, never changes it)
    cases = [
        (tk, attrs, flagd.context(tk, attrs), _peer(core, tk, attrs))
        for tk in ("u1", "u7", None)
        for attrs in CONTEXTS
    ]
    # each snapshot compiled once; every evaluator's engine installs those tables
    # (what make(snapshot) does, less its compile)
    tables, old_tables = compile_snapshot(snap), compile_snapshot(before)
    for make in make_py_and_c:
        engine, old = make(tables), make(old_tables)
        for tk, attrs, ctx, peer in cases:
            assert _answers(engine, tk, attrs, ctx) == _answers(old, tk, attrs, ctx), attrs
            r = flagd.resolve(engine, "f", ctx, "FB")
            assert (r.value, r.variant, r.reason, r.error_code) == peer, attrs


# -- size -----------------------------------------------------------------------------------
def _chain(n: int, leaf: Any = lambda i: "red" if i % 2 else "green") -> dict[str, Any]:
    args: list[Any] = []
    for i in range(n):
        args += [{"==": [{"var": "country"}, f"c{i}"]}, leaf(i)]
    return {"if": [*args, "blue"]}


def _written(n: int, leaf: Any = lambda i: "red" if i % 2 else "green") -> tuple[int, int]:
    """(condition nodes of the flag's rules, nodes the compiler writes for them)."""
    snap = flagd.to_snapshot(_doc(_chain(n, leaf)))
    rules = snap.flags["f"].rules
    assert len(rules) == n + 1  # one rule per branch, and the else
    return sum(_nodes(r.when) for r in rules), len(compile_snapshot(snap).nodes) // NW


def test_a_chain_of_variants_lowers_to_nodes_linear_in_its_length():
    sizes = {n: _written(n) for n in (50, 100, 200, 400)}
    # linear: each further branch adds the same count (a loose "==" of a string is an
    # "any" of two tests); before, branch i repeated the i negations before it:
    # 5,300, 20,600, 81,200 and 322,400 nodes
    per_branch = (sizes[100][0] - sizes[50][0]) / 50
    assert per_branch == 3
    for n, (lowered, written) in sizes.items():
        assert lowered == per_branch * n, (n, lowered)
        assert written <= lowered + 10, (n, written)
    snap = flagd.to_snapshot(_doc(_chain(400)))
    for rule in snap.flags["f"].rules:  # no guard repeats another branch's condition
        assert _negations(rule.when) == 0 and _nodes(rule.when) <= 3


def test_only_branches_that_may_leave_a_context_are_negated_after_them():
    # every third branch gives null (flagd: the default variant, not a later branch)
    def leaf(i: int) -> Any:
        return None if i % 3 == 0 else "red"

    snap = flagd.to_snapshot(_doc(_chain(30, leaf)))
    rules = snap.flags["f"].rules
    assert len(rules) == 21  # the 20 branches naming a variant, and the else
    nulls_before = [sum(1 for j in range(i) if j % 3 == 0) for i in range(30) if i % 3] + [10]
    assert [_negations(r.when) for r in rules] == nulls_before
    from cfgcore.engine import Engine

    engine = Engine.from_snapshot(snap)
    for country, want in (
        ("c3", ("blue", "DEFAULT")),
        ("c4", ("red", "TARGETING_MATCH")),
        ("c29", ("red", "TARGETING_MATCH")),
        ("x", ("blue", "TARGETING_MATCH")),
    ):
        r = flagd.resolve(engine, "f", flagd.context("u1", {"country": country}), "FB")
        assert (r.variant, r.reason) == want, country


def test_a_long_chain_of_variants_imports_and_answers():
    # 5,000 branches (230 KB): before, 12.5 million nodes, refused past MAX_LOWERED_NODES
    from cfgcore.engine import Engine

    engine = Engine.from_snapshot(flagd.to_snapshot(_doc(_chain(5_000))))
    for i in (0, 1, 2_500, 4_999):
        r = flagd.resolve(engine, "f", flagd.context("u1", {"country": f"c{i}"}), "FB")
        assert (r.variant, r.reason) == ("red" if i % 2 else "green", "TARGETING_MATCH")
    r = flagd.resolve(engine, "f", flagd.context("u1", {"country": "elsewhere"}), "FB")
    assert (r.variant, r.reason) == ("blue", "TARGETING_MATCH")


def test_a_chain_past_the_bound_is_still_refused_naming_the_flag(monkeypatch):
    monkeypatch.setattr(flagd, "MAX_LOWERED_NODES", 2_000)
    # linear now, but still bounded: 600 branches of 3 nodes and a rule each
    doc = _doc(_chain(600))
    doc["flags"]["ok"] = {"state": "ENABLED", "variants": VARIANTS, "defaultVariant": "red"}
    with pytest.raises(InteropError) as err:
        flagd.to_snapshot(copy.deepcopy(doc), source="flags.json")
    msg = str(err.value)
    assert "flags.json" in msg and "flags.f.targeting:" in msg and "2,000 condition nodes" in msg
    snap = flagd.to_snapshot(doc, on_error="skip")
    assert set(snap.flags) == {"ok"} and "condition nodes" in snap.metadata["refused"]["f"]
    # a chain of null branches still repeats their negations: refused far sooner
    doc = _doc(_chain(100, lambda i: None))
    with pytest.raises(InteropError, match=r"flags\.f\.targeting: .*2,000 condition nodes"):
        flagd.to_snapshot(doc)
    assert len(json.dumps(doc)) < 6_000
