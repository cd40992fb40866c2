"""Audit of the seed API's request path (``SeedAPI``, compiled and reference): hostile
user ids already in an exposure dedup shard, bound contexts over mappings that are not
dicts, flags named by objects whose ``_value_`` raises, metadata that is missing. Both
implementations must answer alike and never raise."""

from __future__ import annotations

import enum
import types

from cfgcore._layout import DEDUP_SHARDS
from cfgcore.engine import engine_class

SNAPSHOT = {
    "flags": {
        "exp": {
            "variants": {"a": "A", "b": "B"},
            "default": "a",
            "rules": [{"split": {"a": 50, "b": 50}}],
        },
        "on": {"default": "on"},
    }
}


def _shards() -> tuple[set, ...]:
    return tuple(set() for _ in range(DEDUP_SHARDS))


class CollidingId(str):
    """A user id the exposure logger accepted (a str subclass), hashing like ``"u2"``
    and refusing to be compared: a set lookup of ``"u2"`` in its shard raises."""

    def __hash__(self):
        return hash("u2")

    def __eq__(self, other):
        raise RuntimeError("no comparing me")

    __ne__ = __eq__


def _seed(impl, expose=None):
    engine = engine_class(impl).from_snapshot(SNAPSHOT)
    seen = _shards()
    calls: list = []
    api = impl.SeedAPI(engine, {"exp": seen}, expose or (lambda *a: calls.append(a[:2])))
    return engine, api, seen, calls


def test_a_logged_id_whose_eq_raises_never_breaks_the_variant_or_the_metric(impl):
    """A shard holding a str-subclass id whose __eq__ raises used to make the set lookup
    of any exact id with the same hash raise out of get_ab_test_variant and
    record_metric, on both evaluators. Now the lookup cannot tell, and the exposure goes
    to ``expose``, which decides (the real logger swallows the same error)."""
    engine, api, seen, calls = _seed(impl)
    seen[hash("u2") & (DEDUP_SHARDS - 1)].add(CollidingId("zz"))
    records: list = []
    api.log_to(records.append, lambda: 1.0)
    api.metrics_to(None, lambda *a: records.append(("metric", *a)))
    api.metas = {"exp": {}}
    want = engine.variant("exp", {"user_id": "u2"})
    for ctx in ({"user_id": "u2"}, engine.context({"user_id": "u2"})):
        assert api.get_ab_test_variant("exp", ctx) == want
        assert api.record_metric("exp", "ctr", 1.0, user_context=ctx) is True
    assert calls == [("exp", want)] * 4  # each went to expose: it could not be looked up
    assert records == [("metric", "exp", want, "ctr", 1.0, "u2")] * 2


def test_the_manager_survives_a_colliding_id_logged_before(tmp_path):
    """End to end on the live evaluator: the exposure logger files a str-subclass id,
    then a plain id with the same hash asks for its variant."""
    from cfgcore.dynamic_config import DynamicConfigurationManager
    from tests.test_request_path import _ab

    m = DynamicConfigurationManager(state_dir=tmp_path)
    try:
        assert m.create_ab_test(_ab("exp"))
        assert m.get_ab_test_variant("exp", {"user_id": CollidingId("zz")}) is not None
        v = m.get_ab_test_variant("exp", {"user_id": "u2"})  # raised RuntimeError before
        assert v in ("control", "treatment")
        assert m.get_ab_test_variant("exp", m.engine.context({"user_id": "u2"})) == v
        assert m.record_metric("exp", "ctr", 1.0, user_context={"user_id": "u2"}) is True
    finally:
        m.close()


def test_a_context_over_another_mapping_dedups_exposures_as_a_dict_does(impl):
    """The compiled SeedAPI read the user id of a bound Context only when its attributes
    were a dict: over a MappingProxyType every call went to ``expose`` (the reference
    looked the id up and logged the first exposure itself)."""
    engine, api, seen, calls = _seed(impl)
    records: list = []
    api.log_to(records.append, lambda: 1.0)
    ctx = engine.context(types.MappingProxyType({"user_id": "u1"}))
    v = api.get_ab_test_variant("exp", ctx)
    assert api.get_ab_test_variant("exp", ctx) == v
    assert api.get_ab_test_variant("exp", engine.context({"user_id": "u1"})) == v
    assert records == [("exp", v, "u1", 1.0)] and calls == []
    assert "u1" in seen[hash("u1") & (DEDUP_SHARDS - 1)]


class _RaisingGet(dict):
    def get(self, key, default=None):
        raise RuntimeError("no reading me")


def test_a_context_over_a_mapping_whose_get_raises_goes_to_expose(impl):
    engine, api, _, calls = _seed(impl)
    api.log_to(lambda r: None, lambda: 1.0)
    ctx = engine.context(_RaisingGet(user_id="u1"))
    v = api.get_ab_test_variant("exp", ctx)
    assert v == engine.variant("exp", {})
    assert calls == [("exp", v)]


class _RaisingValue:
    @property
    def _value_(self):
        raise RuntimeError("no value")


def test_a_flag_whose_value_raises_is_false_and_not_evaluated(impl):
    """The compiled SeedAPI passed such a flag on as None: counted as FLAG_NOT_FOUND and
    shown to hooks, while the reference (and the manager's method body) return False
    without evaluating anything."""
    engine, api, _, _ = _seed(impl)
    seen: list = []
    engine.add_hook(type("Hook", (), {"before": lambda self, *a: seen.append(a)})())
    engine.take_evaluation_counts()
    assert api.is_feature_enabled(_RaisingValue(), {}) is False
    got = engine.take_evaluation_counts()
    assert (got.evaluations, got.errors, seen) == ({}, {}, [])
    assert api.is_feature_enabled(None, {}) is False  # an unknown flag: counted
    assert engine.take_evaluation_counts().errors == {"FLAG_NOT_FOUND": 1}


def test_record_metric_for_a_test_without_metadata_is_false(impl):
    """``metas`` mapping a test to None: the reference returns False; the compiled one
    queued the event and then raised AttributeError on ``None.get``."""
    engine, api, _, _ = _seed(impl)
    recorded: list = []
    api.metrics_to(recorded.append, lambda *a: None)
    api.metas = {"exp": None}
    assert api.record_metric("exp", "ctr", 1.0, user_context={"user_id": "u1"}) is False
    assert recorded == []


class Flags(enum.Enum):
    ON = "on"


def test_enum_members_name_their_flag_on_both(impl):
    _, api, _, _ = _seed(impl)
    assert api.is_feature_enabled(Flags.ON, {}) is True
    # A throwaway enum's members are released from the cache slot they shared: the
    # new member takes the slot before the old one is let go.
    for i in range(200):
        member = enum.Enum(f"E{i}", {"X": "on" if i % 2 else "missing"}).X
        assert api.is_feature_enabled(member, {}) is bool(i % 2)
