"""Audit 8: the seed API's names given as objects whose ``__class__`` raises or lies.

``isinstance()`` reads ``__class__``, which any object can fake: as a property that
raises, ``exact_name`` (test, metric and variant names) raised out of
``get_ab_test_variant`` and ``record_metric`` on both evaluators, and the compiled
``is_feature_enabled`` asked ``isinstance(flag, Enum)`` after reading ``_value_``, so it
answered False (nothing evaluated, nothing counted) where the reference evaluated the
flag its ``_value_`` names. Names are now judged by their real type on both.
"""

from __future__ import annotations

import enum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore._layout import DEDUP_SHARDS
from cfgcore.details import exact_name
from cfgcore.engine import engine_class
from tests.fuzz import examples

SNAPSHOT = {
    "flags": {
        "exp": {"variants": {"a": "A", "b": "B"}, "default": "b"},
        "on": {"default": "on"},
    }
}


class Boom(Exception):
    pass


class RaisingClass:
    """A flag named by its ``_value_`` (as an Enum member is), whose ``__class__`` raises."""

    _value_ = "on"

    @property
    def __class__(self):
        raise Boom("no class")


class RaisingClassStr(str):
    """A str subclass (a real one: its text names a flag) whose ``__class__`` raises."""

    @property
    def __class__(self):
        raise Boom("no class")


class PosingAsEnum:
    """Claims to be an Enum member (``__class__``) and names a flag by ``_value_``."""

    _value_ = "on"

    @property
    def __class__(self):
        return Color


class Color(enum.Enum):
    RED = "on"


def _seed(impl):
    engine = engine_class(impl).from_snapshot(SNAPSHOT)
    exposed: list = []
    seed = impl.SeedAPI(
        engine,
        {"exp": tuple(set() for _ in range(DEDUP_SHARDS)), "on": False},
        lambda t, v, c: exposed.append((t, v)),
    )
    records: list = []
    seed.metrics_to(None, lambda *a: records.append(a))
    seed.metas = {"exp": {}}
    return engine, seed, records, exposed


def test_exact_name_reads_the_real_type():
    assert exact_name(RaisingClass()) is None
    assert exact_name(RaisingClassStr("exp")) == "exp"
    assert type(exact_name(RaisingClassStr("exp"))) is str
    assert exact_name(PosingAsEnum()) is None


def test_names_whose_class_raises_never_raise(impl):
    engine, seed, records, exposed = _seed(impl)
    ctx = {"user_id": "u1"}
    # No name at all: no test, no metric, no variant (and no exception).
    assert seed.get_ab_test_variant(RaisingClass(), ctx) is None
    assert seed.record_metric(RaisingClass(), "ctr", user_context=ctx) is False
    assert seed.record_metric("exp", RaisingClass(), user_context=ctx) is False
    assert seed.record_metric("exp", "ctr", user_context=ctx, variant=RaisingClass()) is False
    assert records == [] and exposed == []
    # A real str subclass names what its text names, whatever its __class__ does.
    assert seed.get_ab_test_variant(RaisingClassStr("exp"), ctx) == "b"
    assert seed.record_metric(RaisingClassStr("exp"), RaisingClassStr("ctr"), user_context=ctx)
    assert records == [("exp", "b", "ctr", 1.0, "u1")]


def test_is_feature_enabled_reads_value_whatever_class_says(impl):
    """The reference's rule: ``getattr(flag, "_value_", flag)`` names the flag. The
    compiled SeedAPI used to give up (False, no evaluation counted) when
    ``isinstance(flag, Enum)`` raised after that read."""
    engine, seed, _, _ = _seed(impl)
    assert seed.is_feature_enabled(RaisingClass(), {}) is True
    assert seed.is_feature_enabled(RaisingClassStr("on"), {}) is True
    assert seed.is_feature_enabled(PosingAsEnum(), {}) is True
    assert seed.is_feature_enabled(Color.RED, {}) is True
    counts = engine.take_evaluation_counts()
    assert counts.evaluations == {("on", "on", "STATIC"): 4}
    assert counts.errors == {}


def test_an_object_posing_as_a_member_is_not_remembered(impl):
    """The compiled SeedAPI remembers Enum members' names by address. One that only
    poses as a member (its ``__class__``) must be read again on every call, as the
    reference reads ``_value_`` every time: its name may change."""
    engine = engine_class(impl).from_snapshot(
        {"flags": {"on": {"default": "on"}, "off": {"default": "off"}}}
    )
    seed = impl.SeedAPI(engine, {}, lambda *a: None)
    poser = PosingAsEnum()
    assert seed.is_feature_enabled(poser, {}) is True
    poser._value_ = "off"
    assert seed.is_feature_enabled(poser, {}) is False


# -- differential: every seed call with odd names, ids and contexts -----------------------


class RaisingValue:
    @property
    def _value_(self):
        raise Boom("no value")


class Shade(str, enum.Enum):
    ON = "on"
    EXP = "exp"


class Level(enum.IntEnum):
    ONE = 1


DIFF_SNAPSHOT = {
    "flags": {
        "on": {
            "rules": [{"when": {"attr": "user_id", "starts_with": "u"}, "serve": "on"}],
            "default": "off",
        },
        "exp": {
            "variants": {"a": "A", "b": "B", "__none__": None},
            "rules": [
                {"when": {"attr": "seg", "eq": "x"}, "serve": "__none__"},
                {"split": {"a": 50, "b": 50}},
            ],
            "default": "a",
        },
    }
}
NAMES = ["on", "exp", "missing", "", "\ud800", "é", Color.RED, Shade.ON, Shade.EXP, Level.ONE,
         RaisingClass(), RaisingClassStr("exp"), PosingAsEnum(), RaisingValue(), None, 1,
         b"exp"]  # fmt: skip
VARIANTS = [None, "a", "b", "zz", "__none__", RaisingClass(), RaisingClassStr("a")]
IDS = ["u1", "u2", 42, "42", 10**30, True, 3.5, None, "\ud800", RaisingClassStr("u1")]
SHAPES = ["dict", "bound", "mapping", "none", "targeting_key"]


def _seed_run(impl, calls):
    from tests.mappings import DictMapping

    engine = engine_class(impl).from_snapshot(DIFF_SNAPSHOT)
    exposed: list = []
    logged: list = []
    metrics: list = []
    seed = impl.SeedAPI(
        engine,
        {"exp": tuple(set() for _ in range(DEDUP_SHARDS)), "on": False},
        lambda t, v, c: exposed.append((t, v)),
    )
    seed.log_to(logged.append, clock=lambda: 1.0)
    seed.metrics_to(None, lambda *a: metrics.append(a))
    seed.metas = {"exp": {"traffic_split": {"a": 50, "b": 50}}, "on": {}}
    out = []
    for name_i, id_i, seg, shape, call, var_i in calls:
        name, uid = NAMES[name_i], IDS[id_i]
        attrs = {"targeting_key": uid} if shape == "targeting_key" else {"user_id": uid, "seg": seg}
        ctx = {"bound": engine.context(attrs), "mapping": DictMapping(attrs), "none": None}.get(
            shape, attrs
        )
        if call == 0:
            out.append(seed.is_feature_enabled(name, ctx))
        elif call == 1:
            out.append(seed.get_ab_test_variant(name, ctx))
        elif call == 2:
            variant = VARIANTS[var_i]
            out.append(seed.record_metric(name, "m", 2.0, user_context=ctx, variant=variant))
        else:
            out.append(seed.record_metric(name, name, 1.0, user_id=uid))
    counts = engine.take_evaluation_counts()
    # ids by repr: a str subclass id logged must be the same text on both
    logs = [(t, v, repr(u), type(u).__name__) for t, v, u, _ in logged]
    return out, exposed, logs, metrics, counts.evaluations, counts.errors


@settings(max_examples=examples(80), deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(NAMES) - 1),
            st.integers(0, len(IDS) - 1),
            st.sampled_from(["x", "y", None]),
            st.sampled_from(SHAPES),
            st.integers(0, 3),
            st.integers(0, len(VARIANTS) - 1),
        ),
        min_size=1,
        max_size=10,
    )
)
def test_seed_calls_with_odd_names_agree_and_never_raise(calls):
    from tests.conftest import IMPLS

    if "c" not in IMPLS:
        pytest.skip("the compiled extension is not built")
    got = [_seed_run(IMPLS[k], calls) for k in ("c", "py")]
    assert got[0] == got[1]
