"""Third audit of the two evaluators, differential: what the earlier rounds' generators
leave out.

* contexts of every common mapping type (dict subclasses, one overriding ``get``, one
  with ``__missing__``, OrderedDict, defaultdict, Counter, ChainMap, MappingProxyType,
  UserDict), bound or not, a Context of a Context, and the other implementation's
  Context;
* a bound context reused across snapshot swaps (to other snapshots and back), with
  the evaluation counts of every version compared at the end;
* context values and constants at the edges of numbers (-0.0, NaN, infinities, huge
  ints, bools against 0 and 1, int/float/str subclasses), with every operator;
* the seed API (``is_feature_enabled``, ``get_ab_test_variant``, ``record_metric``) of
  both evaluators: answers, exposure records, metric events and counts.
"""

from __future__ import annotations

import enum
import itertools
import types
from collections import ChainMap, Counter, OrderedDict, UserDict, defaultdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore._layout import DEDUP_SHARDS
from cfgcore.engine import engine_class
from tests.conftest import IMPLS
from tests.fuzz import examples
from tests.test_audit2_eval_differential import F, I, S, _answers, odd_values
from tests.test_core_differential import ATTRS, NUMS, WORDS, ctx_values, snapshots
from tests.texts import any_text

pytestmark = pytest.mark.skipif("c" not in IMPLS, reason="the compiled extension is not built")


class DictSub(dict):
    pass


class DictGet(dict):
    def get(self, key, default=None):
        return "premium" if key == "seg" else super().get(key, default)


class DictMissing(dict):
    def __missing__(self, key):
        return "premium"


MAPPINGS = {
    "dict": dict,
    "dict subclass": DictSub,
    "dict overriding get": DictGet,
    "dict with __missing__": DictMissing,
    "OrderedDict": OrderedDict,
    "defaultdict": lambda d: defaultdict(lambda: "premium", d),
    "Counter": Counter,
    "ChainMap": lambda d: ChainMap({}, d),
    "MappingProxyType": lambda d: types.MappingProxyType(dict(d)),
    "UserDict": UserDict,
}
EDGES = [
    0, -0.0, 1, 1.0, True, False, 2**53, 2**53 + 1, float(2**53), 2**63, -(2**63), 2**64,
    10**30, 1e308, float("inf"), float("-inf"), float("nan"), 5e-324, I(1), F(-0.0),
    F("nan"), S("premium"), S("1.2.3"), I(2**70),
]  # fmt: skip
values = st.one_of(ctx_values, odd_values, st.sampled_from(EDGES))
contexts = st.dictionaries(st.sampled_from(ATTRS), values, max_size=len(ATTRS))


@settings(max_examples=examples(60), deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(snapshots(), min_size=2, max_size=3),
    st.lists(st.tuples(st.sampled_from(sorted(MAPPINGS)), contexts), min_size=1, max_size=3),
    st.one_of(st.none(), st.sampled_from(WORDS), st.sampled_from(NUMS), st.sampled_from(EDGES)),
    st.randoms(use_true_random=False),
)
def test_mapping_types_and_contexts_across_swaps_agree(snaps, ctxs, default, rnd):
    engines = [engine_class(IMPLS[impl]).from_snapshot(snaps[0]) for impl in ("c", "py")]
    for kind, attrs in ctxs:
        make = MAPPINGS[kind]
        bound = [engine.context(make(attrs)) for engine in engines]
        if rnd.random() < 0.3:  # a Context of a Context
            bound = [engine.context(b) for engine, b in zip(engines, bound, strict=True)]
        if rnd.random() < 0.2:  # each engine given the other implementation's Context
            bound.reverse()
        for snap in [*snaps, snaps[0]]:  # the same bound contexts across swaps, and back
            for engine in engines:
                engine.swap(snap)
            keys = [*snap["flags"], "missing", S("f0")]
            got = [_answers(e, keys, b, default) for e, b in zip(engines, bound, strict=True)]
            assert got[0] == got[1], (kind, attrs)
            plain = [_answers(e, keys, make(attrs), default) for e in engines]
            assert plain[0] == plain[1], (kind, attrs)
    c, p = (engine.take_evaluation_counts() for engine in engines)
    assert (c.evaluations, c.errors, c.versions) == (p.evaluations, p.errors, p.versions)


OPERATORS = ["eq", "ne", "in", "not_in", "lt", "le", "gt", "ge", "starts_with", "contains",
             "semver_eq", "matches"]  # fmt: skip
CONSTANTS = [*EDGES, "1", "", "\x00", "a\x00b", "ß", "ẞ", "ﬁ"]


def _edge_snapshot() -> dict:
    """One flag per operator, constant and ignore_case that both compilers accept."""
    flags = {}
    for i, (op, const, ci) in enumerate(itertools.product(OPERATORS, CONSTANTS, (False, True))):
        cond = {"attr": "x", op: [const, 1] if op in ("in", "not_in") else const}
        if ci:
            cond["ignore_case"] = True
        flag = {"default": "off", "rules": [{"when": cond, "serve": "on"}]}
        try:
            engine_class(IMPLS["py"]).from_snapshot({"flags": {"f": flag}})
        except Exception:  # refused by the compiler (the same one for both evaluators)
            continue
        flags[f"f{i}"] = flag
    return {"flags": flags}


def test_numbers_and_strings_at_the_edges_agree_with_every_operator():
    snapshot = _edge_snapshot()
    assert len(snapshot["flags"]) > 200  # most combinations compile
    engines = [engine_class(IMPLS[impl]).from_snapshot(snapshot) for impl in ("c", "py")]
    keys = list(snapshot["flags"])
    extra = [S("ß"), "\ud800", None, [1], {"a": 1}, b"1", 2**1100, -(2**1100), "1.0.0",
             "v1.0.0", "1.0.0+build", "01.0.0", "1.0.0-rc.1"]  # fmt: skip
    for value in [*CONSTANTS, *extra]:
        for default in (None, "d", 0):
            c, p = (_answers(e, keys, {"x": value}, default) for e in engines)
            assert c == p, value
            c, p = (_answers(e, keys, e.context({"x": value}), default) for e in engines)
            assert c == p, value
    c, p = (engine.take_evaluation_counts() for engine in engines)
    assert (c.evaluations, c.errors) == (p.evaluations, p.errors)


# -- the seed API ---------------------------------------------------------------------------

SEED_SNAPSHOT = {
    "flags": {
        "t": {"variants": {"a": "A", "b": "B", "c": "C"}, "default": "a",
              "rules": [{"split": {"a": 30, "b": 30, "c": 40}}]},
        "u": {"variants": {"x": "X", "y": "Y"}, "default": "x",
              "bucket_by": ["targeting_key", "user_id"], "rules": [{"split": {"x": 50, "y": 50}}]},
        "flag": {"default": "off",
                 "rules": [{"when": {"attr": "seg", "eq": "premium"}, "serve": "on"}]},
        "none": {"variants": {"__none__": "N", "z": "Z"}, "default": "__none__",
                 "rules": [{"when": {"attr": "seg", "eq": "free"}, "serve": "z"}]},
    }
}  # fmt: skip


class Flag(enum.Enum):
    FLAG = "flag"
    T = "t"


class StrFlag(str, enum.Enum):
    FLAG = "flag"


class Boom(Exception):
    pass


class Colliding:
    """A context key hashing like an attribute name whose __eq__ raises."""

    def __init__(self, name):
        self.name = name

    def __hash__(self):
        return hash(self.name)

    def __eq__(self, other):
        raise Boom


class FailingGet(dict):
    def get(self, *args):
        raise Boom


user_ids = st.one_of(
    st.none(),
    st.sampled_from(["u1", "u2", "", "ü", "\ud800", S("u1"), 1, 2**70, I(5), True, 1.5, F(2.0),
                     float("nan"), b"u1", ("u",), -0.0]),
    any_text(max_size=3),
    st.integers(-3, 3),
)  # fmt: skip
names = st.sampled_from(
    ["t", "u", "flag", "none", "missing", S("t"), Flag.T, Flag.FLAG, StrFlag.FLAG, 5, None,
     "\ud800", b"t"]
)  # fmt: skip
SEED_CONTEXTS = ["dict", "context", "OrderedDict", "ChainMap", "MappingProxyType", "UserDict",
                 "failing get", "none", "not a mapping"]  # fmt: skip


@st.composite
def seed_contexts(draw):
    attrs = {}
    for key in draw(st.lists(st.sampled_from(["user_id", "targeting_key", "seg"]), unique=True)):
        value = draw(st.one_of(user_ids, st.sampled_from(["premium", "free", S("premium"), None])))
        if draw(st.integers(0, 5)) == 0:
            attrs[Colliding(key)] = value
        else:
            attrs[key] = value
    return draw(st.sampled_from(SEED_CONTEXTS)), attrs


def _seed_context(kind, attrs, engine):
    if kind == "context":
        return engine.context(dict(attrs))
    if kind == "failing get":
        return FailingGet(attrs)
    if kind == "none":
        return None
    if kind == "not a mapping":
        return 42
    return MAPPINGS[kind](attrs)


def _seed(impl, shard_limit):
    engine = engine_class(impl).from_snapshot(SEED_SNAPSHOT)
    log: list = []
    tests = {
        "t": tuple(set() for _ in range(DEDUP_SHARDS)),
        "u": tuple(set() for _ in range(DEDUP_SHARDS)),
        "none": False,
    }
    seed = impl.SeedAPI(engine, tests, lambda test, v, ctx: log.append(("expose", test, v)))
    seed.log_to(lambda record: log.append(("append", *record[:3])), lambda: 7.0, shard_limit)
    seed.metrics_to(None, lambda *event: log.append(("record", *event)))
    seed.metas = {"t": {}, "u": {"guardrail_metrics": []}}
    return engine, seed, log


@settings(max_examples=examples(150), deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["flag", "ab", "metric", "metric with context"]),
            names,
            seed_contexts(),
            user_ids,
            st.sampled_from([1.0, 2, float("inf"), "3", None, True, F(1.0)]),
            st.sampled_from([None, "a", "zz", S("b")]),
        ),
        max_size=12,
    ),
    st.integers(1, 3),
)
def test_the_seed_api_agrees(calls, shard_limit):
    runs = []
    for impl in (IMPLS["c"], IMPLS["py"]):
        engine, seed, log = _seed(impl, shard_limit)
        answers = []
        for op, name, (kind, attrs), uid, value, variant in calls:
            ctx = _seed_context(kind, attrs, engine)
            if op == "flag":
                answers.append(seed.is_feature_enabled(name, ctx))
            elif op == "ab":
                answers.append(seed.get_ab_test_variant(name, ctx))
            elif op == "metric":
                answers.append(seed.record_metric(name, "m", value, user_id=uid, variant=variant))
            else:
                answers.append(
                    seed.record_metric(name, "m", value, user_context=ctx, variant=variant)
                )
        counts = engine.take_evaluation_counts()
        runs.append((answers, [repr(entry) for entry in log], counts.evaluations, counts.errors))
    assert runs[0] == runs[1]
