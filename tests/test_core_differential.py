"""Differential test: random snapshots and contexts; the compiled and the reference
evaluator must agree on every field of every evaluation."""

from __future__ import annotations

import math

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.engine import engine_class
from cfgcore.snapshot import snapshot_from_dict
from tests.conftest import IMPLS
from tests.fuzz import examples
from tests.spec_interpreter import Interpreter, comparable
from tests.texts import any_text

pytestmark = pytest.mark.skipif("c" not in IMPLS, reason="the compiled extension is not built")

ATTRS = ["seg", "n", "v", "user_id", "targeting_key"]
WORDS = [
    "premium", "free", "EU", "eu", "UK", "A", "a", "1.2.3", "1.10.0-rc.1", "x@y.com", "", "ß",
    "SS", "pre", "ium", "@y.com", "ss",
]  # fmt: skip

NUMS = [-2, -1, 0, 1, 2, 0.5, -1.5]
scalars = st.one_of(st.sampled_from(WORDS), st.sampled_from(NUMS), st.booleans())
# Context values are drawn mostly from the same vocabulary as the constants, so that
# rules really match; the rest are the awkward values the hot path must survive.
ctx_values = st.one_of(
    st.sampled_from(["f5", "a1616101", "abc", "6161", "F4"]),  # hex text (flagd_v3_cbor)
    st.sampled_from(WORDS),
    st.sampled_from(WORDS),
    st.sampled_from(NUMS),
    st.sampled_from(NUMS),
    any_text(max_size=6),
    st.integers(min_value=2**60, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
    # arrays for has_any: mostly the constants' vocabulary, some nesting and odd values
    st.lists(st.one_of(scalars, st.none(), st.floats(), st.lists(scalars, max_size=1)), max_size=4),
    st.frozensets(st.sampled_from(["premium", "EU", "ß", 1, 0.5, True]), max_size=3),
    st.lists(st.sampled_from(WORDS), max_size=3).map(tuple),
)
attr = st.sampled_from(ATTRS)
# prefixes, suffixes and infixes of the context vocabulary, so string operators hit
SUBSTRINGS = sorted({w[i:j] for w in WORDS for i in range(len(w)) for j in range(i, len(w) + 1)})
strings = st.one_of(st.sampled_from(SUBSTRINGS), st.text(max_size=3))


@st.composite
def leaf(draw):
    op = draw(
        st.sampled_from(
            ["eq", "ne", "in", "not_in", "has_any", "lt", "le", "gt", "ge", "starts_with",
             "ends_with", "contains", "matches", "semver_eq", "semver_lt", "semver_gt", "exists",
             "segment"]
        )
    )  # fmt: skip
    if op == "segment":
        return {"segment": draw(st.sampled_from(["s0", "s1"]))}
    cond = {"attr": draw(attr)}
    ci = draw(st.booleans())
    if op in ("eq", "ne"):
        value = draw(st.sampled_from(WORDS)) if ci else draw(scalars)
        cond[op] = value
    elif op in ("in", "not_in", "has_any"):
        values = draw(st.lists(st.sampled_from(WORDS) if ci else scalars, max_size=12))
        cond[op] = values
    elif op in ("lt", "le", "gt", "ge"):
        cond[op] = draw(st.sampled_from(NUMS))
        ci = False
    elif op in ("starts_with", "ends_with", "contains"):
        cond[op] = draw(strings)
    elif op == "matches":
        cond[op] = draw(st.sampled_from(["^a", "e$", "[0-9]", "premium|free", "."]))
    elif op.startswith("semver"):
        cond[op] = draw(st.sampled_from(["1.2.3", "1.10.0-rc.1", "0.0.1", "2.0.0"]))
        ci = False
    else:
        cond[op] = draw(st.booleans())
        ci = False
    if ci:
        cond["ignore_case"] = True
    return cond


conditions = st.recursive(
    leaf(),
    lambda kids: st.one_of(
        st.lists(kids, max_size=3).map(lambda xs: {"all": xs}),
        st.lists(kids, max_size=3).map(lambda xs: {"any": xs}),
        kids.map(lambda x: {"not": x}),
    ),
    max_leaves=6,
)


SCHEMES = [
    "murmur3", "flagd_v2", "flagd_v3", "flagd_v3_pair", "flagd_v3_cbor", "growthbook_v1",
    "growthbook_v2",
]  # fmt: skip


@st.composite
def hashings(draw):
    """Rule-level hashing of imported flags (snapshot.Hashing), every scheme."""
    h = {
        "scheme": draw(st.sampled_from(SCHEMES)),
        "by": draw(st.lists(attr, min_size=1, max_size=2)),
        "space": draw(st.sampled_from([1, 7, 100, 1000, 10000, 2**31 - 1])),
    }
    if draw(st.booleans()):
        h["salt"] = draw(st.sampled_from(["", "g:", "flag-key", "üé", "__ns"]))
    if draw(st.booleans()):
        h["suffix"] = draw(st.sampled_from(["", "seed", "€"]))
    if draw(st.booleans()):
        h["seed"] = draw(st.sampled_from([0, 86028157, 2**32 - 1]))
    return h


@st.composite
def gates(draw):
    h = draw(hashings())
    lo = draw(st.integers(0, h["space"]))
    return {"hash": h, "lo": lo, "hi": draw(st.integers(lo, h["space"]))}


def prerequisite(draw, flags: dict, earlier: list[str]):
    """A prerequisite on one of the ``earlier`` flags (no cycle), in every form: the
    flag's key (on), ``off``, one ``variant``, a list of ``variants``."""
    target = draw(st.sampled_from(earlier))
    tvariants = list(flags[target].get("variants") or {"on": True, "off": False})
    boolean = flags[target].get("variants") is None or "on_variants" in flags[target]
    how = draw(st.sampled_from(["plain", "variant", "variants", "off"]))
    if how == "variants":
        return {"flag": target, "variants": draw(st.lists(st.sampled_from(tvariants)))}
    if how == "off" and boolean:
        return {"flag": target, "off": True}
    if boolean and how != "variant":
        return target
    return {"flag": target, "variant": draw(st.sampled_from(tvariants))}


@st.composite
def snapshots(draw):
    flags = {}
    n = draw(st.integers(1, 5))
    for i in range(n):
        nvar = draw(st.integers(1, 3))
        boolean = draw(st.booleans())
        names = ["on", "off"] if boolean else [f"v{j}" for j in range(nvar)]
        flag = {}
        if not boolean:
            flag["variants"] = {
                name: draw(st.one_of(scalars, st.just({"k": name}))) for name in names
            }
        flag["default"] = draw(st.sampled_from(names))
        if draw(st.booleans()):
            flag["off_variant"] = draw(st.sampled_from(names))
        flag["enabled"] = draw(st.booleans()) or draw(st.booleans())
        if draw(st.booleans()):
            flag["bucket_by"] = draw(st.lists(attr, min_size=1, max_size=2))
        rules = []
        for _ in range(draw(st.integers(0, 3))):
            rule = {}
            if draw(st.booleans()):
                rule["when"] = draw(conditions)
            kind = draw(st.sampled_from(["serve", "rollout", "split", "hashed"]))
            if draw(st.integers(0, 3)) == 0:  # imported flags' gates (any rule kind)
                rule["gates"] = [draw(gates()) for _ in range(draw(st.integers(1, 2)))]
            if kind == "hashed":
                h = draw(hashings())
                widths = draw(st.lists(st.integers(0, h["space"]), min_size=1, max_size=4))
                buckets, room = [], h["space"]
                for w in widths:
                    w = min(w, room)
                    room -= w
                    name = draw(st.one_of(st.none(), st.sampled_from(names)))
                    buckets.append([name, w])
                rule["hash"], rule["buckets"] = h, buckets
            elif kind == "split":
                weights = draw(
                    st.lists(st.integers(0, 100), min_size=len(names), max_size=len(names))
                )
                total = sum(weights) or 1
                scaled = [w * 100 // total for w in weights]
                scaled[-1] += 100 - sum(scaled)
                rule["split"] = dict(zip(names, scaled, strict=True))
            else:
                rule["serve"] = draw(st.sampled_from(names))
                if kind == "rollout":
                    rule["rollout"] = draw(st.floats(0, 100, allow_nan=False))
            rules.append(rule)
        flag["rules"] = rules
        if not boolean and draw(st.booleans()):
            flag["on_variants"] = draw(st.lists(st.sampled_from(names), unique=True))
        earlier = [f"f{j}" for j in range(i)]
        if earlier and draw(st.booleans()):
            flag["prerequisites"] = [prerequisite(draw, flags, earlier)]
        if earlier:  # conditions reading an earlier flag (no cycle): in any rule's `when`
            for rule in rules:
                how = draw(st.sampled_from(["none", "none", "alone", "all", "any", "not"]))
                if how == "none":
                    continue
                test = {"prerequisite": prerequisite(draw, flags, earlier)}
                if how == "not":
                    test = {"not": test}
                if how in ("all", "any") and "when" in rule:
                    rule["when"] = {how: draw(st.permutations([rule["when"], test]))}
                else:
                    rule["when"] = test
        flags[f"f{i}"] = flag
    segments = {
        "s0": draw(leaf().filter(lambda c: "segment" not in c)),
        "s1": {"any": [{"segment": "s0"}, draw(leaf().filter(lambda c: "segment" not in c))]},
    }
    return {"segments": segments, "flags": flags}


contexts = st.dictionaries(attr, ctx_values, min_size=len(ATTRS) - 2, max_size=len(ATTRS))


def same(a, b):
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b and type(a) is type(b)


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snapshots(), st.lists(contexts, min_size=4, max_size=10), st.one_of(st.none(), scalars))
def test_compiled_and_reference_agree(snapshot, ctxs, default):
    c = engine_class(IMPLS["c"]).from_snapshot(snapshot)
    p = engine_class(IMPLS["py"]).from_snapshot(snapshot)
    spec = Interpreter(snapshot_from_dict(snapshot))  # the README's semantics, no tables
    for ctx in ctxs:
        bound_c, bound_p = c.context(ctx), p.context(ctx)
        for key in [*snapshot["flags"], "missing"]:
            want = comparable(spec.evaluate(key, ctx, default))
            for cc, pc in ((ctx, ctx), (bound_c, bound_p)):
                dc, dp = c.evaluate(key, cc, default), p.evaluate(key, pc, default)
                assert dc == dp, (key, ctx)
                assert comparable(dc) == want, (key, ctx, dc, want)
                assert same(c.is_enabled(key, cc), p.is_enabled(key, pc))
                assert c.variant(key, cc) == p.variant(key, pc)
                assert same(c.value(key, cc, default), p.value(key, pc, default))
        assert c.evaluate_all(ctx) == p.evaluate_all(ctx) == spec.evaluate_all(ctx)
        assert c.evaluate_all(bound_c) == p.evaluate_all(bound_p)


def _grid(count: int = 60) -> list[dict]:
    """Fixed contexts over the whole vocabulary (seeded), so every drawn condition is
    checked against values that hit its constants, not only against what one
    example happened to draw."""
    import random

    rng = random.Random(20261125)
    pool = [*WORDS, *NUMS, True, False, None, float("nan"), "x" * 5000]
    # arrays, for has_any: elements from the same vocabulary, a nested one, a set
    pool += [["premium", 1, None], ("EU", "ß", 0.5), frozenset({"A", True}), [["a"], "SS"]]
    uniform = [{a: value for a in ATTRS} for value in pool]  # every value under every attr
    mixed = [{a: rng.choice(pool) for a in ATTRS if rng.random() < 0.9} for _ in range(count)]
    return uniform + mixed


GRID = _grid()


@settings(max_examples=examples(400), deadline=None)
@given(conditions, st.lists(contexts, max_size=4))
def test_conditions_agree(cond, drawn):
    """Focused on the operators: one rule, many contexts."""
    ctxs = GRID + drawn
    snapshot = {
        "segments": {"s0": {"attr": "seg", "eq": "premium"}, "s1": {"attr": "n", "le": 0}},
        "flags": {"f": {"default": "off", "rules": [{"when": cond, "serve": "on"}]}},
    }
    c = engine_class(IMPLS["c"]).from_snapshot(snapshot)
    p = engine_class(IMPLS["py"]).from_snapshot(snapshot)
    spec = Interpreter(snapshot_from_dict(snapshot))
    for ctx in ctxs:
        expected = spec.evaluate("f", ctx).value
        assert p.is_enabled("f", ctx) is expected, (cond, ctx)
        assert c.is_enabled("f", ctx) is expected, (cond, ctx)
        assert c.is_enabled("f", c.context(ctx)) is expected, (cond, ctx)


# -- evaluation counts ------------------------------------------------------------------
# Both evaluators count every top-level evaluation per (flag, variant, reason) and every
# error per code; the oracle below derives the same counts from the spec interpreter.

NOT_A_CONTEXT = [42, ["seg"], "seg=premium", object()]


def _is_boolean(flag: dict) -> bool:
    variants = flag.get("variants")
    if variants is None or "on_variants" in flag:
        return True
    return all(v is True or v is False for v in variants.values())


class CountOracle:
    """Expected counts, from the spec interpreter's (variant, reason) of each call."""

    def __init__(self) -> None:
        self.evaluations: dict = {}
        self.errors: dict = {}
        self.versions: set = set()

    def _add(self, table: dict, key, version: int) -> None:
        table[key] = table.get(key, 0) + 1
        self.versions.add(version)

    def call(self, op: str, snapshot: dict, spec: Interpreter, version: int, key, ctx, default):
        if op != "evaluate_all" and key not in snapshot["flags"]:
            self._add(self.errors, "FLAG_NOT_FOUND", version)  # the context is not read
            return
        if ctx is not None and not isinstance(ctx, dict):
            self._add(self.errors, "INVALID_CONTEXT", version)
            ctx = {}
        ctx = ctx or {}
        if op == "evaluate_all":
            for name in snapshot["flags"]:
                variant, reason, _ = spec.resolve(name, ctx, [])
                self._add(self.evaluations, (name, variant, reason), version)
            return
        variant, reason, _ = spec.resolve(key, ctx, [])
        mismatch = (
            not _is_boolean(snapshot["flags"][key])
            if op == "is_enabled"
            else op in ("value", "evaluate")
            and spec.evaluate(key, ctx, default).error_code == "TYPE_MISMATCH"
        )
        if mismatch:
            self._add(self.errors, "TYPE_MISMATCH", version)
            reason = "ERROR"
        self._add(self.evaluations, (key, variant, reason), version)

    def take(self) -> tuple:
        out = (self.evaluations, self.errors, tuple(sorted(self.versions)))
        self.__init__()
        return out


OPS = ["is_enabled", "variant", "value", "evaluate", "evaluate_all", "pinned", "swap", "take"]


@st.composite
def call_sequences(draw, snapshot):
    keys = [*snapshot["flags"], "missing"]
    calls = []
    for _ in range(draw(st.integers(1, 25))):
        op = draw(st.sampled_from(OPS))
        ctx_kind = draw(st.sampled_from(["dict", "bound", "none", "hostile"]))
        calls.append(
            (
                op,
                draw(st.sampled_from(keys)),
                ctx_kind,
                draw(contexts) if ctx_kind != "hostile" else draw(st.sampled_from(NOT_A_CONTEXT)),
                draw(st.one_of(st.none(), scalars)),
            )
        )
    return calls


def _counts(engine) -> tuple:
    got = engine.take_evaluation_counts()
    return got.evaluations, got.errors, got.versions


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snapshots(), snapshots(), st.data())
def test_both_evaluators_count_what_the_spec_serves(first, second, data):
    """The same calls (unknown flags, type mismatches, values that are not contexts,
    evaluate_all, swaps, a snapshot pinned across swaps) give the same counts on both
    evaluators, and the counts the spec interpreter's answers imply."""
    engines = [engine_class(IMPLS[k]).from_snapshot(first) for k in ("c", "py")]
    oracle = CountOracle()
    specs = {id(s): Interpreter(snapshot_from_dict(s)) for s in (first, second)}
    live, live_version = first, 1
    pinned = [(e.snapshot(), first, 1) for e in engines]
    for op, key, ctx_kind, ctx, default in data.draw(call_sequences(first)):
        if op == "take":
            want = oracle.take()
            assert [_counts(e) for e in engines] == [want, want]
            continue
        if op == "swap":
            pinned = [(e.snapshot(), live, live_version) for e in engines]
            live, live_version = (second if live is first else first), live_version + 1
            for e in engines:
                e.swap(live)
            continue
        for i, e in enumerate(engines):
            target, snapshot, version = (e, live, live_version) if op != "pinned" else pinned[i]
            arg = {"dict": ctx, "none": None, "hostile": ctx}.get(ctx_kind)
            if ctx_kind == "bound":
                arg = e.context(ctx)
            name = "evaluate" if op == "pinned" else op
            if name == "evaluate_all":
                target.evaluate_all(arg)
            elif name in ("value", "evaluate"):
                getattr(target, name)(key, arg, default)
            else:
                getattr(target, name)(key, arg)
        op = "evaluate" if op == "pinned" else op
        arg = None if ctx_kind == "none" else ctx
        oracle.call(op, snapshot, specs[id(snapshot)], version, key, arg, default)
    want = oracle.take()
    assert [_counts(e) for e in engines] == [want, want]


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snapshots(), st.lists(contexts, min_size=2, max_size=6), st.one_of(st.none(), scalars))
def test_the_observed_path_agrees_with_the_plain_one_on_both(snapshot, ctxs, default):
    """What hooks, exposures and debug mode see (``_observe``): the same answer, details,
    bucket and unit on both evaluators; the answer is the plain method's and the details
    are ``evaluate``'s (for is_enabled: its boolean answer); counts are the same too."""
    c = engine_class(IMPLS["c"]).from_snapshot(snapshot)
    p = engine_class(IMPLS["py"]).from_snapshot(snapshot)
    plain = engine_class(IMPLS["c"]).from_snapshot(snapshot)
    names = ("is_enabled", "variant", "value", "evaluate")
    for ctx in ctxs:
        for key in [*snapshot["flags"], "missing"]:
            for kind, name in enumerate(names):
                d = default if kind >= 2 else None
                got_c = c.snapshot()._observe(kind, key, c.context(ctx), d)
                got_p = p.snapshot()._observe(kind, key, p.context(ctx), d)
                assert got_c == got_p, (kind, key, ctx)
                assert c.snapshot()._observe(kind, key, ctx, d) == got_c
                assert p.snapshot()._observe(kind, key, ctx, d) == got_c
                answer, details, bucket, unit = got_c
                args = (key, ctx, d) if kind >= 2 else (key, ctx)
                assert same(answer, getattr(plain, name)(*args)), (kind, key, ctx)
                want = plain.evaluate(key, ctx, d)
                if kind == 0 and details.error_code != "TYPE_MISMATCH":
                    # is_enabled's details: evaluate's, with the boolean answer as the value
                    want = msgspec.structs.replace(want, value=answer)
                if kind != 0 or details.error_code != "TYPE_MISMATCH":
                    assert details == want, (kind, key, ctx)
                else:  # a flag that is not boolean: False, whatever it served
                    assert answer is False and details.value is False
                if details.reason == "SPLIT":  # a unit was hashed into a bucket
                    assert isinstance(bucket, int) and bucket >= 0 and isinstance(unit, str)
                    assert unit in {str(v) for v in ctx.values()}
                else:
                    assert bucket is None and unit is None
    assert c.take_evaluation_counts().evaluations == p.take_evaluation_counts().evaluations
