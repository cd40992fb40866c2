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

from cfgcore._layout import DEDUP_SHARDS
from cfgcore.details import exact_name
from cfgcore.engine import engine_class

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
