"""Fifth audit of the two evaluators, differential: what the earlier rounds' generators
leave out.

* rules mixing operator families on one attribute (equality, numbers, strings,
  semver, regex, exists) and constant lists mixing booleans, ints, floats and strings;
* prerequisite chains over flags with schedules, rollouts, splits, gates and hashed
  buckets, switched off or not, read through clocks at the window's edges and clocks
  that fail or answer oddly;
* contexts whose ``get()`` raises, answers odd types (bytes, lists, Decimals, other
  mappings, a Context) or answers differently on every call;
* one bound Context used with two pinned snapshots in turn (it rebinds each time);
* every entry point: is_enabled, variant, value, evaluate, evaluate_all, the observed
  path and the evaluation counts.
"""

from __future__ import annotations

import decimal
import fractions
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.engine import engine_class
from tests.conftest import IMPLS
from tests.fuzz import examples
from tests.mappings import DictMapping
from tests.test_audit2_eval_differential import F, I, S, _answers, odd_values
from tests.test_core_differential import NUMS, WORDS, gates, hashings

pytestmark = pytest.mark.skipif("c" not in IMPLS, reason="the compiled extension is not built")

ATTRS = ["x", "y", "user_id"]
MIXED = [True, False, 0, 1, -1, 1.0, 0.5, 2**53 + 1, 2**63, "1", "true", "1.2.3", "", "a"]
SEMVERS = ["1.2.3", "1.10.0-rc.1", "0.0.1", "v2.0.0", "1.2.3+b"]


@st.composite
def mixed_leaf(draw, attr: str):
    op = draw(
        st.sampled_from(
            ["eq", "ne", "in", "not_in", "lt", "le", "gt", "ge", "starts_with", "ends_with",
             "contains", "matches", "semver_eq", "semver_lt", "semver_gt", "exists"]
        )
    )  # fmt: skip
    cond: dict = {"attr": attr}
    ci = draw(st.integers(0, 3)) == 0
    if op in ("eq", "ne"):
        cond[op] = draw(st.sampled_from(WORDS)) if ci else draw(st.sampled_from(MIXED))
    elif op in ("in", "not_in"):
        pool = WORDS if ci else MIXED
        cond[op] = draw(st.lists(st.sampled_from(pool), max_size=6))
    elif op in ("lt", "le", "gt", "ge"):
        cond[op] = draw(st.sampled_from([*NUMS, 0, 2**53, 2**53 + 1, -(2**63), 1e308]))
        ci = False
    elif op in ("starts_with", "ends_with", "contains"):
        cond[op] = draw(st.sampled_from(["", "a", "1", "1.", "ß", "ss", "SS", "tr"]))
    elif op == "matches":
        cond[op] = draw(st.sampled_from(["^1", "\\d", "^$", "(?i)TRUE", "ß", "."]))
    elif op.startswith("semver"):
        cond[op] = draw(st.sampled_from(SEMVERS))
        ci = False
    else:
        cond[op] = draw(st.booleans())
        ci = False
    if ci:
        cond["ignore_case"] = True
    return cond


@st.composite
def mixed_conditions(draw):
    """Several operator families on one attribute, combined."""
    attr = draw(st.sampled_from(ATTRS))
    leaves = draw(st.lists(mixed_leaf(attr), min_size=1, max_size=5))
    leaves += draw(st.lists(mixed_leaf(draw(st.sampled_from(ATTRS))), max_size=2))
    shape = draw(st.sampled_from(["all", "any", "not all", "nested", "segment"]))
    if shape == "all":
        return {"all": leaves}
    if shape == "any":
        return {"any": leaves}
    if shape == "not all":
        return {"not": {"all": leaves}}
    if shape == "segment":
        return {"all": [{"segment": "s"}, *leaves[:2]]}
    return {"any": [{"all": leaves[: len(leaves) // 2 + 1]}, {"not": {"any": leaves}}]}


WINDOW = {"start": "2025-01-01T00:00:00Z", "end": "2025-06-01T00:00:00Z"}
START, END = 1735689600.0, 1748736000.0
CLOCKS = [START, END, START - 1e-6, END - 1e-6, 1.74e9, 0.0, float("nan"), float("inf"),
          10**400, "1740000000", True, None, "raise"]  # fmt: skip


@st.composite
def chained_snapshots(draw):
    """Flags that each may depend on earlier ones, with every kind of rule."""
    flags: dict = {}
    for i in range(draw(st.integers(1, 6))):
        boolean = draw(st.booleans())
        names = ["on", "off"] if boolean else ["a", "b", "c"]
        flag: dict = {}
        if not boolean:
            flag["variants"] = {
                "a": draw(st.sampled_from([True, 1, "a", {"k": 1}, [1], None, 1.5])),
                "b": draw(st.sampled_from([False, 0, "b", {"k": 2}, [], 2.5])),
                "c": draw(st.sampled_from([True, False, "c", 3])),
            }
            if draw(st.booleans()):
                flag["on_variants"] = draw(st.lists(st.sampled_from(names), unique=True))
        flag["default"] = draw(st.sampled_from(names))
        if draw(st.booleans()):
            flag["off_variant"] = draw(st.sampled_from(names))
        flag["enabled"] = draw(st.integers(0, 4)) > 0
        if draw(st.booleans()):
            flag["schedule"] = draw(
                st.sampled_from([WINDOW, {"start": WINDOW["start"]}, {"end": WINDOW["end"]}])
            )
        if draw(st.booleans()):
            flag["bucket_by"] = draw(st.lists(st.sampled_from(ATTRS), min_size=1, max_size=2))
        rules = []
        for _ in range(draw(st.integers(0, 3))):
            rule: dict = {}
            if draw(st.booleans()):
                rule["when"] = draw(mixed_conditions())
            kind = draw(st.sampled_from(["serve", "rollout", "split", "hashed"]))
            if draw(st.integers(0, 3)) == 0:
                rule["gates"] = [draw(gates())]
            if kind == "hashed":
                h = draw(hashings())
                h["by"] = draw(st.lists(st.sampled_from(ATTRS), min_size=1, max_size=2))
                w = draw(st.integers(0, h["space"]))
                rule["hash"] = h
                rule["buckets"] = [[draw(st.sampled_from(names)), w],
                                   [draw(st.one_of(st.none(), st.sampled_from(names))),
                                    h["space"] - w]]  # fmt: skip
            elif kind == "split":
                a = draw(st.sampled_from([0, 0.001, 33.333, 50, 99.999, 100]))
                rule["split"] = {names[0]: a, names[1]: round(100 - a, 3)}
            else:
                rule["serve"] = draw(st.sampled_from(names))
                if kind == "rollout":
                    rule["rollout"] = draw(st.sampled_from([0, 0.001, 50, 99.999, 100]))
            if draw(st.integers(0, 3)) == 0:
                rule["bucket_by"] = draw(st.sampled_from(ATTRS))
            rules.append(rule)
        flag["rules"] = rules
        earlier = [f"f{j}" for j in range(i)]
        prereqs: list = []
        for target in draw(st.lists(st.sampled_from(earlier), max_size=2)) if earlier else []:
            tflag = flags[target]
            tnames = list(tflag.get("variants") or {"on": True, "off": False})
            on_off = (
                tflag.get("variants") is None
                or "on_variants" in tflag
                or all(v is True or v is False for v in tflag["variants"].values())
            )
            how = draw(st.sampled_from(["plain", "variant", "variants", "off"]))
            if how == "variant":
                prereqs.append({"flag": target, "variant": draw(st.sampled_from(tnames))})
            elif how == "variants" or not on_off:
                prereqs.append(
                    {"flag": target, "variants": draw(st.lists(st.sampled_from(tnames)))}
                )
            elif how == "off":
                prereqs.append({"flag": target, "off": True})
            else:
                prereqs.append(target)
        if prereqs:
            flag["prerequisites"] = prereqs
        flags[f"f{i}"] = flag
    segment = draw(mixed_leaf(draw(st.sampled_from(ATTRS))))
    return {"segments": {"s": segment}, "flags": flags}


class Boom(Exception):
    pass


class RaisingGet(DictMapping):
    """get() raises for one attribute, answers the others."""

    def __init__(self, data, bad):
        self.data, self.bad = data, bad

    def get(self, key, default=None):
        if key == self.bad:
            raise Boom(key)
        return self.data.get(key, default)


class Drifting(DictMapping):
    """get() answers a different value on every call (a live view of changing data):
    each evaluator must read an attribute once per binding, so both see the same
    sequence as long as they read in the same order."""

    def __init__(self, data):
        self.data = data
        self.calls = 0

    def get(self, key, default=None):
        self.calls += 1
        value = self.data.get(key, default)
        return f"{value}{self.calls}" if isinstance(value, str) else value


class RaisingStr(str):
    def __str__(self):
        raise Boom

    def __hash__(self):
        raise Boom

    def __eq__(self, other):
        raise Boom

    def casefold(self):
        raise Boom

    def encode(self, *a, **k):
        raise Boom


class RaisingInt(int):
    def __int__(self):
        raise Boom

    def __float__(self):
        raise Boom

    def __index__(self):
        raise Boom

    def __hash__(self):
        raise Boom


ODD = [b"1", bytearray(b"a"), [1], (1,), {"a": 1}, decimal.Decimal("1"), fractions.Fraction(1, 2),
       1j, object(), RaisingStr("1"), RaisingStr("a"), RaisingInt(1), S("1.2.3"), I(2**64), F(0.5),
       F("inf"), S("\ud800"), "ﬁ", "1.2.3", "TRUE", "v1.10.0-rc.1"]  # fmt: skip
# by index: sampled_from would compare the values, and some raise on __eq__
values = st.one_of(
    odd_values, st.sampled_from(MIXED), st.integers(0, len(ODD) - 1).map(ODD.__getitem__)
)
attrs_st = st.dictionaries(st.sampled_from(ATTRS), values, max_size=len(ATTRS))


def _mapping(kind: str, attrs: dict, engine):
    if kind == "dict":
        return attrs
    if kind == "bound":
        return engine.context(attrs)
    if kind == "raising get":
        return RaisingGet(attrs, ATTRS[len(attrs) % len(ATTRS)])
    if kind == "bound raising get":
        return engine.context(RaisingGet(attrs, ATTRS[len(attrs) % len(ATTRS)]))
    if kind == "context value":  # a mapping whose values are bound Contexts and mappings
        return {k: engine.context(attrs) if i % 2 else RaisingGet(attrs, k)
                for i, k in enumerate(attrs)}  # fmt: skip
    raise AssertionError(kind)


KINDS = ["dict", "bound", "raising get", "bound raising get", "context value"]


def _clock(value):
    if value == "raise":

        def clock():
            raise Boom

        return clock
    return lambda: value


@settings(max_examples=examples(200), deadline=None, suppress_health_check=list(HealthCheck))
@given(
    chained_snapshots(),
    st.lists(st.tuples(st.sampled_from(KINDS), attrs_st), min_size=1, max_size=4),
    st.sampled_from(CLOCKS),
    st.one_of(st.none(), st.sampled_from(MIXED), st.just({"k": 0}), st.just([0])),
)
def test_mixed_operators_prerequisites_and_odd_contexts_agree(snapshot, ctxs, now, default):
    engines = [engine_class(IMPLS[impl]).from_snapshot(snapshot) for impl in ("c", "py")]
    for engine in engines:
        engine.set_clock(_clock(now))
    keys = [*snapshot["flags"], "missing"]
    for kind, attrs in ctxs:
        got = [_answers(e, keys, _mapping(kind, attrs, e), default) for e in engines]
        assert got[0] == got[1], (kind, attrs, now)
    c, p = (engine.take_evaluation_counts() for engine in engines)
    assert (c.evaluations, c.errors, c.versions) == (p.evaluations, p.errors, p.versions)


@settings(max_examples=examples(100), deadline=None, suppress_health_check=list(HealthCheck))
@given(chained_snapshots(), st.lists(attrs_st, min_size=1, max_size=3))
def test_drifting_mappings_are_read_alike(snapshot, ctxs):
    """A mapping answering differently on every get(): both evaluators read the same
    attributes in the same order, so they answer alike and call get() as often."""
    engines = [engine_class(IMPLS[impl]).from_snapshot(snapshot) for impl in ("c", "py")]
    keys = list(snapshot["flags"])
    for attrs in ctxs:
        for bound in (False, True):
            out, calls = [], []
            for engine in engines:
                data = Drifting(attrs)
                ctx = engine.context(data) if bound else data
                out.append([engine.evaluate(k, ctx) for k in keys] + [engine.evaluate_all(ctx)])
                calls.append(data.calls)
            assert out[0] == out[1], (attrs, bound)
            assert calls[0] == calls[1], (attrs, bound)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=list(HealthCheck))
@given(chained_snapshots(), chained_snapshots(), st.lists(attrs_st, min_size=1, max_size=3))
def test_one_context_across_two_pinned_snapshots(first, second, ctxs):
    """A bound Context checked against two pinned snapshots in turn rebinds each time:
    both evaluators answer as with a fresh context for each."""
    for impl in ("c", "py"):
        engine = engine_class(IMPLS[impl]).from_snapshot(first)
        old = engine.snapshot()
        engine.swap(second)
        new = engine.snapshot()
        for attrs in ctxs:
            ctx = engine.context(attrs)
            for snap, keys in itertools.islice(
                itertools.cycle(((old, list(first["flags"])), (new, list(second["flags"])))), 5
            ):
                for key in keys:
                    assert snap.evaluate(key, ctx) == snap.evaluate(key, attrs), (impl, key)
                assert snap.evaluate_all(ctx) == snap.evaluate_all(attrs)
