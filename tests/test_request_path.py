"""The per-request path (issue 15): lazy context binding, evaluate_all's template, the
seed API served by SeedAPI on both evaluators, and the off-thread exposure and metric
writers (nothing lost on flush/close, drops counted, the request thread never waits)."""

from __future__ import annotations

import gc
import inspect
import json
import threading
import time
import weakref
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from enum import Enum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore._compat import env_flag
from cfgcore._layout import DEDUP_SHARDS
from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager, FeatureFlag
from cfgcore.engine import engine_class
from cfgcore.experiments.exposures import ExposureLogger, MemorySink
from cfgcore.experiments.metrics import MetricsStore
from cfgcore.experiments.writer import BackgroundWriter
from tests.conftest import IMPLS, IN_CI
from tests.fuzz import examples
from tests.texts import any_text

RULE = {"all": [{"attr": "seg", "eq": "premium"}, {"attr": "region", "in": ["EU", "UK"]}]}
SNAPSHOT = {
    "flags": {
        "plain": {"default": "on"},
        "off": {"default": "off"},
        "disabled": {"enabled": False, "default": "on"},
        "rule": {"default": "off", "rules": [{"when": RULE, "serve": "on"}]},
        "ci": {"default": "off",
               "rules": [{"when": {"attr": "seg", "eq": "PREMIUM", "ignore_case": True},
                          "serve": "on"}]},
        "roll": {"default": "off", "rules": [{"rollout": 50, "serve": "on"}]},
        "num": {"default": "off", "rules": [{"when": {"attr": "age", "ge": 18}, "serve": "on"}]},
        "needs_rule": {"default": "off", "prerequisites": [{"flag": "rule", "variant": "on"}],
                       "rules": [{"when": {"attr": "app", "semver_gt": "1.2.0"}, "serve": "on"}]},
        "split": {"variants": {"a": "A", "b": {"k": [1, 2]}, "c": 3}, "default": "a",
                  "rules": [{"split": {"a": 50, "b": 30, "c": 20}}]},
    }
}  # fmt: skip

contexts = st.fixed_dictionaries(
    {},
    optional={
        "user_id": st.one_of(any_text(max_size=8), st.integers(-5, 10**6)),
        "seg": st.sampled_from(["premium", "Premium", "free", "", None]),
        "region": st.sampled_from(["EU", "UK", "US", 3, None]),
        "age": st.one_of(st.integers(0, 99), st.floats(allow_nan=True), st.booleans()),
        "app": st.sampled_from(["1.2.0", "1.10.0", "x", "2.0.0-rc.1"]),
    },
)


def _engines():
    return {name: engine_class(mod).from_snapshot(SNAPSHOT) for name, mod in IMPLS.items()}


ENGINES = _engines()


def _answers(engine, ctx, order):
    out = {}
    for key in order:
        out[key] = (engine.is_enabled(key, ctx), engine.variant(key, ctx), engine.value(key, ctx))
    return out


@settings(max_examples=examples(60), deadline=None)
@given(ctx=contexts, order=st.permutations(sorted(SNAPSHOT["flags"])))
def test_lazily_bound_context_answers_as_the_dict_in_any_check_order(ctx, order):
    """Each slot binds on the first check that reads it, whatever the order of checks:
    the answers are the dict's, on both evaluators, and the evaluators agree."""
    results = []
    for engine in ENGINES.values():
        bound = engine.context(ctx)
        by_dict = _answers(engine, ctx, order)
        assert _answers(engine, bound, order) == by_dict
        assert engine.evaluate_all(engine.context(ctx)) == engine.evaluate_all(ctx)
        results.append(by_dict)
    assert all(r == results[0] for r in results)


def _wide(n):
    """A snapshot reading ``n`` attributes: one flag per attribute, and flags reading
    several at once (the first, the 64th and the last slot among them)."""
    flags = {
        f"f{i}": {
            "default": "off",
            "rules": [{"when": {"attr": f"a{i}", "eq": "x"}, "serve": "on"}],
        }
        for i in range(n)
    }
    picks = sorted({0, min(63, n - 1), n - 1})
    flags["many"] = {
        "default": "off",
        "rules": [{"when": {"all": [{"attr": f"a{i}", "eq": "x"} for i in picks]}, "serve": "on"}],
    }
    flags["roll"] = {
        "default": "off",
        "rules": [{"when": {"attr": f"a{n - 1}", "eq": "x"}, "rollout": 50, "serve": "on"}],
    }
    return {name: engine_class(mod).from_snapshot({"flags": flags})
            for name, mod in IMPLS.items()}, sorted(flags)  # fmt: skip


WIDE = {n: _wide(n) for n in (61, 62, 63, 70)}


@settings(max_examples=examples(60), deadline=None)
@given(n=st.sampled_from(sorted(WIDE)), data=st.data())
def test_bound_context_tracks_bound_slots_on_both_sides_of_64(n, data):
    """A bound context remembers which of its slots are bound as bits for the first 64
    (a flag whose slots are all bound skips binding) and by slot beyond: with 63, 64,
    65 and 72 slots (the attributes, user_id and the other bucketing attribute), checks
    in any order answer as the dict."""
    engines, keys = WIDE[n]
    assert len(engines["py"].snapshot().tables.slots) == n + 2
    present = data.draw(st.sets(st.integers(0, n - 1)))
    ctx = {f"a{i}": "x" for i in present} | {"user_id": "u1"}
    order = data.draw(st.permutations(keys))
    many = all(i in present for i in {0, min(63, n - 1), n - 1})
    for engine in engines.values():
        bound = engine.context(ctx)
        assert _answers(engine, bound, order) == _answers(engine, ctx, order)
        assert engine.is_enabled("many", bound) == many


class _CaseInsensitive(Mapping):
    """Like requests' CaseInsensitiveDict: get() finds keys iteration spells otherwise."""

    def __init__(self, d):
        self.d = d

    def __getitem__(self, k):
        return next(v for kk, v in self.d.items() if kk.lower() == k.lower())

    def __iter__(self):
        return iter(self.d)

    def __len__(self):
        return len(self.d)


class _Colliding:
    """Hashes like "x"; once armed, == raises (a dict holding it cannot be copied)."""

    armed = False

    def __hash__(self):
        return hash("x")

    def __eq__(self, other):
        if _Colliding.armed:
            raise RuntimeError("no comparing me")
        return self is other


def _colliding_dict():
    d = {"x": 1, _Colliding(): 2, "seg": "premium", "region": "EU"}
    d.update({f"t{i}": i for i in range(8)})
    for i in range(8):
        del d[f"t{i}"]  # deletions: the copy takes the slow path that compares keys
    return d


@pytest.mark.parametrize("kind", ["context", "case-insensitive", "colliding keys"])
def test_a_context_reads_any_mapping_as_a_check_with_it_would(kind, monkeypatch):
    """engine.context(m) answers as m itself: a Context given to it keeps its
    attributes, other mappings are read through their get(), a dict whose copy raises
    is read as it is."""
    for engine in ENGINES.values():
        if kind == "context":
            m = engine.context({"seg": "premium", "region": "EU", "user_id": "u1"})
        elif kind == "case-insensitive":
            m = _CaseInsensitive({"SEG": "premium", "Region": "EU"})
        else:
            m = _colliding_dict()
            monkeypatch.setattr(_Colliding, "armed", True)
        order = sorted(SNAPSHOT["flags"])
        assert _answers(engine, m, order)["rule"][0] is True
        assert _answers(engine, engine.context(m), order) == _answers(engine, m, order)
        monkeypatch.setattr(_Colliding, "armed", False)
        assert dict(engine.context(engine.context(m)).items()) == dict(m.items())


class _Key(str):
    """A str subclass: looked up by its exact value, never by its own hash or eq."""

    def __hash__(self):
        raise RuntimeError("a flag key's own __hash__ must not be called")


def _fresh(text: str) -> str:
    """An equal str that is a different object (not the interned literal)."""
    return "".join(list(text))  # flag keys are longer than one character: a new object


# Flag keys, unknown keys and many distinct strings, so the compiled snapshot's key cache
# (64 slots by hash) is hit, missed, collided and evicted in one sequence.
lookup_keys = st.one_of(
    st.sampled_from(sorted(SNAPSHOT["flags"])),
    st.sampled_from(sorted(SNAPSHOT["flags"])).map(_fresh),
    st.sampled_from(sorted(SNAPSHOT["flags"])).map(_Key),
    any_text(max_size=6),
    st.integers(0, 200).map(lambda i: f"k{i}"),
    st.sampled_from([None, 3, b"plain", ("plain",)]),
)


@settings(max_examples=examples(80), deadline=None)
@given(keys=st.lists(lookup_keys, min_size=1, max_size=300))
def test_flag_keys_answer_the_same_through_the_key_cache(keys):
    """The compiled snapshot remembers recent keys by identity; whatever the sequence
    (equal strings that are other objects, str subclasses, unknown keys, more distinct
    keys than it has slots), each answer is the reference evaluator's."""
    ctx = {"seg": "premium", "region": "EU", "user_id": "u1"}
    engines = list(ENGINES.values())
    for key in keys:
        got = [(e.is_enabled(key, ctx), e.variant(key, ctx), e.value(key, ctx)) for e in engines]
        assert all(g == got[0] for g in got), key


def test_the_key_cache_is_per_snapshot_and_releases_its_keys(make):
    import sys

    engine = make(SNAPSHOT)
    key = _fresh("rule")
    ctx = {"seg": "premium", "region": "EU"}
    refs = sys.getrefcount(key)
    snap = engine.snapshot()
    assert snap.is_enabled(key, ctx) is True
    assert snap.is_enabled(key, ctx) is True
    held = sys.getrefcount(key) - refs  # 1 on the compiled evaluator (its cache), else 0
    assert held in (0, 1)
    # The same key object on a new snapshot answers from the new tables.
    engine.swap({"flags": {**SNAPSHOT["flags"], "rule": {"default": "off"}}})
    assert engine.is_enabled(key, ctx) is False
    assert snap.is_enabled(key, ctx) is True  # the pinned one still answers from its own
    del snap
    engine.swap(SNAPSHOT)
    gc.collect()
    # Retired snapshots give their cached keys back: nothing is kept alive.
    assert sys.getrefcount(key) - refs <= held
    # A key that names no flag (untrusted input, of any size) is never kept.
    unknown = _fresh("no-such-flag" * 1000)
    unknown_refs = sys.getrefcount(unknown)
    assert engine.is_enabled(unknown, ctx) is False and engine.variant(unknown) is None
    assert sys.getrefcount(unknown) == unknown_refs
    del engine
    gc.collect()
    assert sys.getrefcount(key) == refs


def test_engine_methods_are_plain_method_descriptors_of_the_engine_class():
    """The compiled Engine owns C method descriptors of its own type, so CPython's
    specialised call path serves ``engine.is_enabled(...)``; a subclass and a wrong
    receiver still behave as for any method."""
    from cfgcore.engine import Engine

    if Engine._impl.IMPLEMENTATION != "c":
        if env_flag("CFGCORE_NO_EXTENSIONS"):
            pytest.skip("CFGCORE_NO_EXTENSIONS=1 selects the pure-Python Engine")
        if IN_CI:
            pytest.fail("the compiled extension cfgcore._eval is not built (CI=true)")
        pytest.skip("the compiled extension cfgcore._eval is not built here")
    for name in ("is_enabled", "variant", "value", "evaluate", "evaluate_all", "context"):
        descriptor = Engine.__dict__[name]
        assert type(descriptor).__name__ == "method_descriptor", name
        assert descriptor.__objclass__ is Engine, name
    # Still introspectable (help(), IDEs): signatures are embedded in clinic form.
    assert list(inspect.signature(Engine.is_enabled).parameters) == ["self", "key", "ctx"]
    assert list(inspect.signature(Engine.value).parameters) == ["self", "key", "ctx", "default"]

    class Mine(Engine):
        pass

    engine = Mine.from_snapshot(SNAPSHOT)
    assert engine.is_enabled("rule", {"seg": "premium", "region": "UK"}) is True
    assert engine.variant("split", engine.context({"user_id": "u1"})) in {"a", "b", "c"}
    with pytest.raises(TypeError):
        Engine.is_enabled(object(), "rule", {})


def test_context_is_a_copy_and_rebinds_after_a_swap(make):
    engine = make(SNAPSHOT)
    attrs = {"seg": "premium", "region": "EU"}
    ctx = engine.context(attrs)
    attrs["seg"] = "free"  # the caller's dict changing later does not reach the context
    assert engine.is_enabled("rule", ctx) is True
    flipped = {"flags": {**SNAPSHOT["flags"], "rule": {"default": "on"}}}
    engine.swap(flipped)
    assert engine.variant("rule", ctx) == "on" and engine.is_enabled("plain", ctx) is True
    assert ctx["seg"] == "premium" and len(ctx) == 2


def test_a_context_shared_by_threads_binds_once_consistently(make):
    engine = make(SNAPSHOT)
    attrs = {"seg": "premium", "region": "UK", "user_id": "u7"}
    expected = _answers(engine, attrs, SNAPSHOT["flags"])

    def check(ctx, got):
        got.append(_answers(engine, ctx, SNAPSHOT["flags"]))

    for _ in range(20):
        ctx = engine.context(attrs)
        got: list = []
        threads = [threading.Thread(target=check, args=(ctx, got)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert got == [expected] * 4


def test_evaluate_all_fills_varying_flags_into_a_fresh_copy(make):
    engine = make(SNAPSHOT)
    ctx = {"seg": "premium", "region": "EU", "user_id": "u1", "app": "1.3.0"}
    first = engine.evaluate_all(ctx)
    assert first == {k: engine.value(k, ctx) for k in SNAPSHOT["flags"]}
    assert first["disabled"] is False and first["plain"] is True and first["needs_rule"] is True
    assert list(first) == list(engine.snapshot().keys)  # the snapshot's key order
    first["plain"] = "changed"  # the caller owns the dict it got
    again = engine.evaluate_all(ctx)
    assert again["plain"] is True and engine.evaluate_all({})["rule"] is False


def test_evaluate_all_reads_the_clock_for_scheduled_flags(make):
    snap = {"flags": {"window": {"default": "on", "schedule": {"start": "2030-01-01T00:00:00Z"}},
                      "plain": {"default": "on"}}}  # fmt: skip
    engine = make(snap)
    engine.set_clock(lambda: 0.0)
    assert engine.evaluate_all({}) == {"window": False, "plain": True}
    engine.set_clock(lambda: 4_000_000_000.0)
    assert engine.evaluate_all({}) == {"window": True, "plain": True}


# -- SeedAPI -----------------------------------------------------------------------------------
class Custom(Enum):
    RULE = "rule"
    NUMBER = 5


class StrKey(str):
    pass


def _shards() -> tuple[set, ...]:
    """An empty exposure dedup (what ExposureLogger.seen_shards makes for a test)."""
    return tuple(set() for _ in range(DEDUP_SHARDS))


def _add(seen: tuple[set, ...], uid) -> None:
    seen[hash(uid) & (DEDUP_SHARDS - 1)].add(uid)  # what the exposure logger does


def _members(seen: tuple[set, ...]) -> set:
    return set().union(*seen)


@pytest.fixture
def seed(impl):
    from cfgcore.engine import engine_class

    engine = engine_class(impl).from_snapshot(
        {**SNAPSHOT, "flags": {**SNAPSHOT["flags"], "exp": SNAPSHOT["flags"]["split"]}}
    )
    calls: list = []
    seen = _shards()
    api = impl.SeedAPI(engine, {"exp": seen, "quiet": False}, lambda *a: calls.append(a))
    return engine, api, calls, seen


def test_seed_flags_by_name_enum_member_or_str_subclass(seed):
    engine, api, _, _ = seed
    ctx = {"seg": "premium", "region": "EU"}
    assert api.is_feature_enabled("rule", ctx) is True
    assert api.is_feature_enabled(Custom.RULE, ctx) is True
    assert api.is_feature_enabled(StrKey("rule"), ctx) is True
    assert api.is_feature_enabled(Custom.NUMBER, ctx) is False
    assert api.is_feature_enabled("missing", ctx) is False
    assert api.is_feature_enabled(["unhashable"], ctx) is False
    assert api.is_feature_enabled("rule", engine.context(ctx)) is True


def test_seed_variant_exposes_once_per_user_and_never_raises(seed):
    engine, api, calls, seen = seed
    ctx = {"user_id": "u1"}
    v = api.get_ab_test_variant("exp", ctx)
    assert v == engine.variant("exp", ctx) and calls == [("exp", v, ctx)]
    _add(seen, "u1")
    assert api.get_ab_test_variant("exp", ctx) == v and len(calls) == 1
    bound = engine.context({"user_id": "u1"})
    assert api.get_ab_test_variant("exp", bound) == v and len(calls) == 1
    assert api.get_ab_test_variant("exp", {"user_id": "u2"}) is not None and len(calls) == 2
    assert api.get_ab_test_variant(StrKey("exp"), ctx) == v
    for name in ("nope", 3, ["x"], None):
        assert api.get_ab_test_variant(name, ctx) is None
    api.expose = lambda *a: 1 / 0
    assert api.get_ab_test_variant("exp", {"user_id": "u3"}) is not None  # swallowed


def test_seed_variant_without_logging_or_without_a_variant(seed):
    engine, api, calls, _ = seed
    api.tests = {"quiet": False, "plain": _shards()}
    assert api.get_ab_test_variant("quiet", {"user_id": "u1"}) is None  # no such flag
    assert api.get_ab_test_variant("plain", {"user_id": "u1"}) == "on" and len(calls) == 1
    engine.swap({"flags": {"quiet": {"variants": {"a": 1, "__none__": 0}, "default": "__none__"}}})
    api.tests = {"quiet": False}
    assert api.get_ab_test_variant("quiet", {"user_id": "u1"}) is None


def test_seed_records_first_exposures_itself_with_the_loggers_rules(seed):
    engine, api, calls, seen = seed
    records: list = []
    api.log_to(records.append, lambda: 7.5, 1)  # one user per shard
    v1 = api.get_ab_test_variant("exp", {"user_id": "u1"})
    assert records == [("exp", v1, "u1", 7.5)] and _members(seen) == {"u1"} and calls == []
    assert "u1" in seen[hash("u1") & (DEDUP_SHARDS - 1)]
    assert api.get_ab_test_variant("exp", {"user_id": "u1"}) == v1 and len(records) == 1
    assert api.get_ab_test_variant("exp", engine.context({"user_id": "u1"})) == v1
    # An exact int id, in another shard than "u1" (str hashes vary per process: a fixed
    # id would share u1's one-user shard in one run of 64 and clear it).
    n = 42 if hash("u1") & (DEDUP_SHARDS - 1) != 42 else 43
    v2 = api.get_ab_test_variant("exp", {"user_id": n})
    assert records[-1] == ("exp", v2, n, 7.5) and len(records) == 2
    # Ids the fast path does not own go to expose, which applies the logger's rules.
    for ctx in ({"user_id": True}, {"user_id": StrKey("s")}, {"user_id": 1.5},
                {"targeting_key": "t1"}, {}):  # fmt: skip
        api.get_ab_test_variant("exp", ctx)
    assert [c[2] for c in calls] == [{"user_id": True}, {"user_id": StrKey("s")},
                                     {"user_id": 1.5}, {"targeting_key": "t1"}, {}]  # fmt: skip
    assert len(records) == 2
    # n + 64 shares n's shard, which holds one user: it is cleared, as log() does, and
    # n is logged again afterwards; the other shards keep their users.
    api.get_ab_test_variant("exp", {"user_id": n + DEDUP_SHARDS})
    assert seen[n] == {n + DEDUP_SHARDS} and _members(seen) == {"u1", n + DEDUP_SHARDS}
    api.get_ab_test_variant("exp", {"user_id": n})
    api.get_ab_test_variant("exp", {"user_id": "u1"})
    assert [r[2] for r in records] == ["u1", n, n + DEDUP_SHARDS, n]


def test_seed_exposure_failures_never_reach_the_request(seed):
    engine, api, calls, seen = seed
    api.log_to(lambda record: 1 / 0)
    ctx = {"user_id": "a"}
    assert api.get_ab_test_variant("exp", ctx) == engine.variant("exp", ctx)
    api.log_to([].append, lambda: 1 / 0)
    assert api.get_ab_test_variant("exp", {"user_id": "b"}) is not None
    api.log_to(None)  # back to expose for every first exposure
    api.get_ab_test_variant("exp", {"user_id": "c"})
    assert calls == [("exp", engine.variant("exp", {"user_id": "c"}), {"user_id": "c"})]


@given(st.lists(st.one_of(st.sampled_from(["a", "b", "c"]), st.integers(0, 3), st.booleans(),
                          st.sampled_from([DEDUP_SHARDS, 2 * DEDUP_SHARDS, -DEDUP_SHARDS]),
                          st.none(), st.floats(0, 1), st.builds(StrKey, st.sampled_from("ab"))),
                max_size=30),
       st.integers(1, 4))  # fmt: skip
@settings(max_examples=examples(100), deadline=None)
def test_both_seed_apis_record_the_same_exposures(ids, limit):
    from cfgcore.engine import engine_class

    out = {}
    for name, impl in IMPLS.items():
        engine = engine_class(impl).from_snapshot({"flags": {"exp": SNAPSHOT["flags"]["split"]}})
        calls: list = []
        records: list = []
        seen = _shards()
        api = impl.SeedAPI(engine, {"exp": seen}, lambda *a, calls=calls: calls.append(a))
        api.log_to(records.append, lambda: 1.0, limit)
        answers = [api.get_ab_test_variant("exp", {"user_id": uid}) for uid in ids]
        out[name] = (answers, records, calls, seen)
    assert out["c"] == out["py"]


def test_seed_resolves_many_enum_members_through_its_small_cache(impl):
    from cfgcore.engine import engine_class

    names = [f"f{i}" for i in range(300)]  # more members than cache entries: collisions
    engine = engine_class(impl).from_snapshot(
        {"flags": {n: {"default": "on" if i % 3 else "off"} for i, n in enumerate(names)}}
    )
    Many = Enum("Many", {n.upper(): n for n in names})  # type: ignore[misc]
    api = impl.SeedAPI(engine, {}, lambda *a: None)
    for _ in range(2):
        for i, member in enumerate(Many):
            assert api.is_feature_enabled(member) is bool(i % 3)


class NotAnEnum:
    def __init__(self, value):
        self._value_ = value


def test_seed_flag_names_of_enum_members_are_remembered_but_other_objects_are_read_each_time(seed):
    engine, api, _, _ = seed
    ctx = {"seg": "premium", "region": "EU"}
    for _ in range(3):
        assert api.is_feature_enabled(Custom.RULE, ctx) is True
    thing = NotAnEnum("rule")
    assert api.is_feature_enabled(thing, ctx) is True
    thing._value_ = "missing"
    assert api.is_feature_enabled(thing, ctx) is False


def _ab(name="exp"):
    now = datetime.now(timezone.utc)
    return ABTestConfiguration(
        test_name=name,
        description="t",
        start_date=now - timedelta(days=1),
        end_date=now + timedelta(days=1),
        traffic_split={"control": 50.0, "treatment": 50.0},
        configurations={"control": {}, "treatment": {}},
        success_metrics=["ctr"],
    )


def test_manager_serves_the_seed_calls_and_logs_each_user_once(tmp_path):
    m = DynamicConfigurationManager(state_dir=tmp_path)
    try:
        assert m.create_ab_test(_ab())
        ctx = {"user_id": "u1", "user_segment": "premium", "region": "EU"}
        flag = FeatureFlag.ENHANCED_RECOMMENDATIONS
        assert m.is_feature_enabled(flag, ctx) is m.engine.is_enabled(flag.value, ctx)
        variants = {m.get_ab_test_variant("exp", {"user_id": f"u{i % 50}"}) for i in range(200)}
        assert variants == {"control", "treatment"}
        assert m.exposures is not None and m.exposures.flush(10)
        assert m.exposures.stats()["written"] == 50
        assert m.record_metric("exp", "ctr", 1.0, user_context={"user_id": "u1"}) is True
        v = m.get_ab_test_variant("exp", {"user_id": "u1"})
        assert m.metrics.summary("exp", v, "ctr").n == 1  # readers see pending events
    finally:
        m.close()
    ref = weakref.ref(m)
    del m
    gc.collect()
    assert ref() is None  # the SeedAPI does not keep its manager alive


class _Hostile(dict):
    """A mapping whose reads raise: record_metric must file the event under no user."""

    def get(self, key, default=None):
        raise RuntimeError("no reading me")


class _BadId:
    def __str__(self):
        raise RuntimeError("no str for me")


# (test name, value, keyword arguments) of record_metric calls: every way of naming the
# user, bad contexts and ids, unknown tests, a given variant, a value that is not a float.
METRIC_CALLS = [
    ("exp", 1.0, {"user_context": {"user_id": "u1"}}),
    ("exp", 2.5, {"user_context": {"user_id": 7}}),
    ("exp", 1.0, {"user_context": {"targeting_key": "t9"}}),
    ("exp", 1.0, {"user_context": {"user_id": None, "targeting_key": "t9"}}),
    ("exp", 1.0, {"user_id": "u3"}),
    ("exp", 3, {"user_context": {"user_id": "u4"}}),  # an int value: through record()
    ("exp", 1.0, {"user_context": {"user_id": "u5"}, "variant": "treatment"}),
    ("exp", 1.0, {"user_context": {"user_id": _BadId()}}),
    ("exp", 1.0, {"user_context": _Hostile(user_id="u6")}),
    ("exp", 1.0, {"user_context": ["not", "a", "mapping"]}),
    ("exp", 1.0, {}),
    (StrKey("exp"), 1.0, {"user_context": {"user_id": "u7"}}),
    ("exp", True, {"user_context": {"user_id": "u9"}}),  # a binary observation: 1.0
    ("nope", 1.0, {"user_context": {"user_id": "u1"}}),
    ("nope", 1.0, {"user_context": {"user_id": "u1"}, "variant": "control"}),
    (["unhashable"], 1.0, {"user_context": {"user_id": "u1"}}),
    # Not a finite number: refused before the variant lookup (no exposure, no event).
    ("exp", float("nan"), {"user_context": {"user_id": "n1"}}),
    ("exp", float("-inf"), {"user_context": {"user_id": "n2"}}),
    ("exp", 10**400, {"user_context": {"user_id": "n3"}}),
    ("exp", "abc", {"user_context": {"user_id": "n4"}}),
    ("exp", None, {"user_context": {"user_id": "n5"}}),
    ("exp", [1], {"user_context": {"user_id": "n6"}}),
    # text is no number (cfgcore._numbers): "2.5" was read as 2.5
    ("exp", "2.5", {"user_context": {"user_id": "n10"}}),
]
# Metric names and given variants that are not strs: refused (an unhashable one used to
# make the writer lose its whole batch, valid events included).
BAD_NAMES = [
    ("exp", 1.0, {"user_context": {"user_id": "n7"}, "metric": None}),
    ("exp", 1.0, {"user_context": {"user_id": "n8"}, "metric": ["ctr"]}),
    ("exp", 1.0, {"user_context": {"user_id": "n9"}, "variant": ["control"]}),
    ("exp", 1.0, {"user_context": {"user_id": "u10"}, "metric": StrKey("ctr")}),
]


def _metric_events(m, record_metric, bind):
    events: list = []
    m.metrics.flush()
    before = m.metrics.events
    answers = []
    for test, value, kwargs in METRIC_CALLS + BAD_NAMES:
        kwargs = dict(kwargs)
        metric = kwargs.pop("metric", "ctr")
        if bind and type(kwargs.get("user_context")) is dict:
            kwargs["user_context"] = m.engine.context(kwargs["user_context"])
        answers.append(record_metric(test, metric, value, **kwargs))
    m.metrics.flush()
    ids = set()
    with open(m.metrics.path, encoding="utf-8") as f:  # JSON lines, the time last
        for line in f:
            record = json.loads(line)
            ids.add(record.pop("event_id"))  # made by the writer: one of its own each
            events.append(tuple(record.values())[:-1])
    assert len(ids) == len(events)
    return answers, events, m.metrics.events - before


@pytest.mark.parametrize("bind", [False, True], ids=["dict", "context"])
def test_record_metric_by_the_seed_api_is_the_reference_on_both_evaluators(tmp_path, impl, bind):
    """The manager serves record_metric through its evaluator's SeedAPI; each call
    answers and files the same events as the reference body (the method's own code)."""
    from cfgcore.engine import engine_class

    def manager(name):
        engine = engine_class(impl).from_snapshot({"flags": {}})
        m = DynamicConfigurationManager(state_dir=tmp_path / name, engine=engine)
        assert m.create_ab_test(_ab())
        return m

    fast, ref = manager("fast"), manager("ref")
    try:
        assert fast.record_metric.__self__ is fast._api  # the SeedAPI's, not the method's
        got = _metric_events(fast, fast.record_metric, bind)
        reference = DynamicConfigurationManager.record_metric.__get__(ref)  # the method's body
        want = _metric_events(ref, reference, bind)
        assert got == want
        answers, events, n = got
        # A bad id, an unreadable or no mapping and no user: not in the test (no bucket).
        assert answers == [True] * 7 + [False] * 4 + [True] * 2 + [False] * 13 + [True]
        assert n == 10 and len(events) == 10 and {e[0] for e in events} == {"exp"}
        users = [e[2] for e in events]  # test, variant, user, metric, value
        assert users == ["u1", "7", "t9", "t9", "u3", "u4", "u5", "u7", "u9", "u10"]
        assert [e[4] for e in events] == [1.0, 2.5, 1.0, 1.0, 1.0, 3.0, 1.0, 1.0, 1.0, 1.0]
        assert {type(e[3]) for e in events} == {str}  # metric names, StrKey as its value
        assert fast.exposures is not None
        exposed = _members(fast.exposures.seen_shards("exp"))
        refused = {"n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n10"}  # n9: a variant
        assert "u1" in exposed and not exposed & refused
    finally:
        fast.close()
        ref.close()


class _NumId:
    """An id like numpy.int64: str() works, the JSON encoder knows nothing of it."""

    def __str__(self):
        return "42"


def _metric_manager(tmp_path, impl, body):
    """A manager on ``impl`` with the A/B test "exp", and its record_metric: the one
    the SeedAPI serves, or the method's own body (the reference)."""
    from cfgcore.engine import engine_class

    m = DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl).from_snapshot({"flags": {}})
    )
    assert m.create_ab_test(_ab())
    if body == "seed api":
        return m, m.record_metric
    return m, DynamicConfigurationManager.record_metric.__get__(m)


@pytest.mark.parametrize("body", ["seed api", "reference"])
def test_an_explicit_user_id_of_any_type_never_costs_its_batch(tmp_path, impl, body):
    """An explicit ``user_id`` is filed as its str() (None when that raises) before it
    is queued: the writer encodes a batch at once, and one raw id it could not encode
    lost every event of the batch."""
    m, record = _metric_manager(tmp_path, impl, body)
    try:
        ids = [f"u{i}" for i in range(5)] + [_NumId(), _BadId(), 7]
        ctx = {"user_id": "u0"}  # the variant's user; the event is filed under user_id
        assert [record("exp", "ctr", 1.0, user_context=ctx, user_id=u) for u in ids] == [True] * 8
        m.metrics.flush()
        with open(m.metrics.path, encoding="utf-8") as f:
            users = [json.loads(line)["user"] for line in f]
        assert users == ["u0", "u1", "u2", "u3", "u4", "42", None, "7"]
    finally:
        m.close()


@pytest.mark.parametrize("body", ["seed api", "reference"])
def test_names_and_ids_that_are_not_text_never_cost_their_batch(tmp_path, impl, body):
    """A lone surrogate is not text: JSON lines cannot hold it, and the writer encodes a
    batch at once. A metric name holding one is refused (False); a user id holding
    one files the event under no user."""
    m, record = _metric_manager(tmp_path, impl, body)
    try:
        ctx = {"user_id": "u0"}
        answers = [record("exp", name, 1.0, user_context=ctx) for name in ("ctr", "c\ud800", "ctr")]
        answers.append(record("exp", "ctr", 1.0, user_context=ctx, user_id="bad\ud800"))
        answers.append(
            record("exp", "ctr", 1.0, user_context={"user_id": "bad\udc00"}, variant="control")
        )
        assert answers == [True, False, True, True, True]
        m.metrics.flush()
        with open(m.metrics.path, encoding="utf-8") as f:
            users = [json.loads(line)["user"] for line in f]
        assert users == ["u0", "u0", None, None]
    finally:
        m.close()


def test_a_jsonl_sink_leaves_out_only_the_records_json_cannot_hold(tmp_path):
    from cfgcore.experiments.exposures import JsonLinesSink

    sink = JsonLinesSink(tmp_path / "x.jsonl")
    sink.write([{"a": 1}, {"a": "bad\ud800"}, {"a": object()}, {"a": 2}])
    with open(tmp_path / "x.jsonl", encoding="utf-8") as f:
        assert [json.loads(line)["a"] for line in f] == [1, 2]
    assert sink.skipped == 2


def test_metrics_store_refuses_values_that_are_not_finite_numbers(tmp_path):
    """A NaN or an infinity would turn a variant's mean and variance into NaN for good;
    a value that is no real number (text: cfgcore._numbers) is refused the same way
    (False, nothing recorded)."""
    store = MetricsStore(tmp_path / "m.jsonl")
    try:
        for bad in (float("nan"), float("inf"), -float("inf"), "x", None, object(), 10**400):
            assert store.record("t", "a", "ctr", bad, "u") is False
        assert store.record("t", "a", "ctr", 2, "u") is True
        for names in ((None, "a", "ctr"), ("t", ["a"], "ctr"), ("t", "a", {"ctr"})):
            assert store.record(*names, 1.0, "u") is False
        assert store.record("t", "a", "ctr", "4.0", 7) is False  # text is no number
        assert store.record("t", "a", "ctr", 4, 7) is True  # an int user: "7"
        summary = store.summary("t", "a", "ctr")
        assert (summary.n, summary.mean) == (2, 3.0)  # refused before the queue: none lost
        assert store.metrics("t") == ["ctr"]
    finally:
        store.close()


def test_record_metric_keeps_an_override_of_itself_or_of_the_variant_lookup(tmp_path):
    class Variant(DynamicConfigurationManager):
        def get_ab_test_variant(self, test_name, user_context=None):
            return "control"

    class Record(DynamicConfigurationManager):
        def record_metric(self, *args, **kwargs):
            return "mine"

    m = Variant(state_dir=tmp_path / "v", persist=False)
    r = Record(state_dir=tmp_path / "r", persist=False)
    try:
        assert m.create_ab_test(_ab())
        assert m.record_metric("exp", "ctr", 1.0, user_context={"user_id": "u1"}) is True
        m.metrics.flush()
        assert m.metrics.summary("exp", "control", "ctr").n == 1  # the override's variant
        assert r.record_metric("exp", "ctr") == "mine"
    finally:
        m.close()
        r.close()


def test_a_subclass_override_of_a_seed_method_is_kept(tmp_path):
    class Always(DynamicConfigurationManager):
        def is_feature_enabled(self, flag, user_context=None):
            return True

    m = Always(state_dir=tmp_path, persist=False)
    try:
        assert m.is_feature_enabled("no_such_flag") is True
    finally:
        m.close()


# -- off-thread writers -----------------------------------------------------------------------
class _NoHash(str):
    def __hash__(self):
        raise ValueError("no hash for me")


class _LazyFlag:
    @property
    def _value_(self):
        raise RuntimeError("lazy flag lookup failed")


def test_the_seed_method_bodies_never_raise_where_the_seed_api_answers(tmp_path):
    """A subclass that overrides a seed call and calls super() runs the method's own
    body: it answers what the SeedAPI answers for hostile names."""

    class Audited(DynamicConfigurationManager):
        def get_ab_test_variant(self, test_name, user_context=None):
            return super().get_ab_test_variant(test_name, user_context)

        def is_feature_enabled(self, flag, user_context=None):
            return super().is_feature_enabled(flag, user_context)

    plain = DynamicConfigurationManager(state_dir=tmp_path / "a", persist=False)
    audited = Audited(state_dir=tmp_path / "b", persist=False)
    try:
        for m in (plain, audited):
            assert m.create_ab_test(_ab())
        for m in (plain, audited):
            ctx = {"user_id": "u1"}
            assert m.get_ab_test_variant(_NoHash("exp"), ctx) == plain.get_ab_test_variant(
                "exp", ctx
            )
            assert m.get_ab_test_variant(["exp"], ctx) is None
            assert m.is_feature_enabled(_LazyFlag(), ctx) is False
    finally:
        plain.close()
        audited.close()


@pytest.mark.parametrize("name", sorted(IMPLS))
def test_record_queue_twins_bound_count_and_start_once(name):
    """The request path's append (compiled and reference RecordQueue): refuses and
    counts past max_pending and once closed, starts its writer on the first append
    only, and reset() gives it a fresh deque in a forked child."""
    import collections

    starts: list = []
    pending: collections.deque = collections.deque()
    q = IMPLS[name].RecordQueue(pending, 3, lambda: starts.append(1))
    assert [q.append(i) for i in range(5)] == [True] * 3 + [False] * 2
    assert list(pending) == [0, 1, 2] and (q.appended, q.dropped) == (3, 2)
    assert starts == [1, 1, 1]  # not started yet: every append asks (the writer sets it)
    q.started = True
    pending.popleft()
    assert q.append("x") is True and starts == [1, 1, 1] and list(pending) == [1, 2, "x"]
    q.closed = True
    assert q.append("y") is False and q.dropped == 3
    fresh: collections.deque = collections.deque()
    q.closed = False
    q.reset(fresh)
    assert (q.appended, q.started) == (0, False) and q.append("z") is True
    assert list(fresh) == ["z"] and list(pending) == [1, 2, "x"] and len(starts) == 4


def test_writer_drops_and_counts_when_full_and_delivers_everything_else():
    gate = threading.Event()
    got: list = []

    def deliver(batch):
        gate.wait(5)
        got.extend(batch)

    w = BackgroundWriter(deliver, name="t", max_pending=10, batch_size=4)
    accepted = sum(w.append(i) for i in range(100))
    assert w.dropped == 100 - accepted and accepted >= 10
    gate.set()
    assert w.flush(10) and sorted(got) == sorted(got) and len(got) == accepted
    assert got == sorted(got)  # in order
    w.close()
    assert w.append("late") is False and w.dropped == 100 - accepted + 1


def test_writer_counts_a_failing_batch_and_goes_on():
    got: list = []

    def deliver(batch):
        if "bad" in batch:
            raise OSError("disk full")
        got.extend(batch)

    w = BackgroundWriter(deliver, name="t", batch_size=1)
    for item in ("a", "bad", "b"):
        w.append(item)
    assert w.flush(10) and got == ["a", "b"] and w.errors == 1
    w.close()


def test_append_never_waits_for_a_slow_writer():
    release = threading.Event()
    w = BackgroundWriter(lambda batch: release.wait(10), name="t", max_pending=1000)
    w.append(0)
    time.sleep(0.05)  # the writer is now inside deliver, blocked
    t0 = time.perf_counter()
    for i in range(500):
        w.append(i)
    elapsed = time.perf_counter() - t0
    release.set()
    assert w.flush(10)
    w.close()
    assert w.done == 501 and elapsed < 5  # completed while the writer was blocked


def test_an_idle_writer_backs_off_and_still_delivers_and_stops_on_close():
    """An idle writer's poll interval doubles up to IDLE_INTERVAL (fewer wake-ups than
    one per POLL_INTERVAL); a record appended while it sleeps is still delivered without
    a flush, flush() wakes it, and close() stops its thread."""
    from cfgcore.experiments import writer as writer_mod

    got: list = []
    w = BackgroundWriter(got.extend, name="idle")
    w.start()
    time.sleep(1.2)
    # A fixed 20 ms poll would have woken ~60 times; backing off, 4 polls reach the
    # cap and the rest are 250 ms apart. A slow machine only sleeps longer (fewer polls).
    fixed = 1.2 / writer_mod.POLL_INTERVAL
    assert 1 <= w.polls <= fixed / 3
    w.append("late")
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        time.sleep(0.005)
    assert got == ["late"]  # delivered by the writer thread alone
    w.append("flushed")
    assert w.flush(10) and got == ["late", "flushed"]
    thread = w._thread
    assert w.close(10) and thread is not None
    thread.join(10)
    assert not thread.is_alive()


def test_exposure_logger_close_writes_what_is_pending(tmp_path):
    sink = MemorySink()
    logger = ExposureLogger([sink], queue_size=100_000)
    for i in range(5000):
        logger.log("t", "a", f"u{i}")
    logger.log("t", "a", "u1")  # deduplicated
    logger.close()
    assert len(sink.exposures) == 5000 and logger.stats()["written"] == 5000
    logger.log("t", "a", "new")
    assert logger.dropped == 1


def test_exposure_dedup_is_sharded_and_bounded():
    # The users already logged are spread over DEDUP_SHARDS sets by hash, each cleared
    # at its share of dedup_limit: growing the dedup never rehashes one large set on a
    # request, and memory stays bounded.
    sink = MemorySink()
    logger = ExposureLogger([sink], dedup_limit=10 * DEDUP_SHARDS)
    try:
        for i in range(5000):
            logger.log("t", "a", f"u{i}")
            logger.log("t", "a", f"u{i}")  # just logged: deduplicated
        shards = logger.seen_shards("t")
        assert len(shards) == DEDUP_SHARDS and all(type(s) is set for s in shards)
        assert all(0 < len(s) <= 10 for s in shards)
        assert sum(map(len, shards)) <= 10 * DEDUP_SHARDS
        for s in shards:
            for user in s:
                assert shards[hash(user) & (DEDUP_SHARDS - 1)] is s
        assert logger.flush(10) and len(sink.exposures) == 5000
        held = [set(s) for s in shards]
        logger.forget("t")
        # A test forgotten (deleted, or created again) starts afresh in new shards; the
        # old ones, still held by a request served from the earlier document, keep
        # their users, so that request's user never lands in the new run's dedup.
        fresh = logger.seen_shards("t")
        assert fresh is not shards and not any(fresh) and len(fresh) == DEDUP_SHARDS
        assert [set(s) for s in shards] == held
        logger.log("t", "a", "u4999")  # logged again: the new run's first exposure
        assert logger.flush(10) and len(sink.exposures) == 5001
        assert "u4999" in fresh[hash("u4999") & (DEDUP_SHARDS - 1)]
    finally:
        logger.close()


def test_metrics_store_writes_off_thread_and_loses_nothing_on_close(tmp_path):
    path = tmp_path / "metrics.jsonl"
    store = MetricsStore(path)
    for i in range(3000):
        store.record("t", "a" if i % 2 else "b", "ctr", float(i % 2), f"u{i}")
    assert store.conversions("t", "a", "ctr") == 1500  # a reader flushes first
    store.record("t", "a", "revenue", 2.5, "u1")
    store.close()
    loaded = MetricsStore.load(path)
    assert loaded.summary("t", "a", "ctr").n == 1500 and loaded.summary("t", "b", "ctr").n == 1500
    assert loaded.summary("t", "a", "revenue").n == 1 and not loaded.is_binary("t", "revenue")


@settings(max_examples=examples(40), deadline=None)
@given(
    values=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=60),
    cut=st.integers(0, 60),
)
def test_batched_moments_equal_one_at_a_time(values, cut):
    """The writer folds a batch of events into each summary at once: the same count,
    mean and sum of squares as Summary.add one value at a time."""
    from cfgcore.experiments.stats import Summary

    store = MetricsStore(None)
    # one user per value: the summary is over users (a user's events form one unit)
    for i, v in enumerate(values[:cut]):
        store.record("t", "a", "m", v, f"u{i}", write=False)
    store._apply([("t", "a", "m", v, f"u{i}", 0.0) for i, v in enumerate(values[cut:], cut)])
    got, want = store.summary("t", "a", "m"), Summary.of(values)
    assert got.n == want.n
    assert got.mean == pytest.approx(want.mean, rel=1e-9, abs=1e-6)
    assert got.m2 == pytest.approx(want.m2, rel=1e-9, abs=1e-3)
