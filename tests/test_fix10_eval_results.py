"""Evaluation results that pickle, SeedAPI copies, and int ids of any size, on both
evaluators.

* details, ``value()`` and ``evaluate_all()`` holding object (dict/list) values pickle
  and deep-copy: the loaded values are equal and still read-only;
* ``copy.copy(SeedAPI)`` gives another SeedAPI over the same engine, tests, shards and
  writers on both evaluators; deep copies and pickles are refused with the same
  TypeError;
* an int user id buckets as its decimal text for any size, whatever
  ``sys.set_int_max_str_digits`` says.
"""

from __future__ import annotations

import copy
import pickle
import sys
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore._layout import DEDUP_SHARDS
from cfgcore.details import int_text

OBJECTS = {
    "flags": {
        "obj": {"default": "a", "variants": {"a": {"k": [1, {"n": None, "f": -0.0}], "s": "x"}}},
        "arr": {"default": "a", "variants": {"a": [1, {"b": [True, 2.5]}, "t"]}},
        "on": {"default": "on"},
    }
}


def _read_only(value) -> None:
    """Every dict in ``value`` is a mappingproxy and every list a tuple."""
    if isinstance(value, MappingProxyType):
        with pytest.raises(TypeError):
            value["new"] = 1  # type: ignore[index]
        for v in value.values():
            _read_only(v)
    else:
        assert not isinstance(value, (dict, list))
        if isinstance(value, tuple):
            for v in value:
                _read_only(v)


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_results_with_object_values_pickle_and_stay_read_only(make, how):
    engine = make(OBJECTS)
    clone = (
        (lambda o: pickle.loads(pickle.dumps(o, protocol=5))) if how == "pickle" else copy.deepcopy
    )
    results = [
        engine.evaluate("obj", {}),
        engine.evaluate("arr", {"user_id": "u"}),
        engine.value("obj", {}),
        engine.value("arr", {}),
        engine.evaluate_all({}),
        engine.evaluate_all(engine.context({"user_id": 1})),
    ]
    for result in results:
        loaded = clone(result)
        assert loaded == result
        assert type(loaded) is type(result)
    details = clone(engine.evaluate("obj", {}))
    assert type(details.value) is MappingProxyType
    _read_only(details.value)
    everything = clone(engine.evaluate_all({}))
    assert type(everything["obj"]) is MappingProxyType
    _read_only(everything["obj"])
    _read_only(everything["arr"])
    assert everything["obj"]["k"][1]["f"] == 0.0  # -0.0 kept
    assert str(everything["obj"]["k"][1]["f"]) == "-0.0"
    # Only a frozen variant value's shape pickles: a class's namespace (a function in
    # it) and non-str keys are still refused, as Python refuses them.

    class Namespace:
        def method(self):
            return 1

    for proxy in (Namespace.__dict__, MappingProxyType({1: "int key"})):
        with pytest.raises(TypeError, match="mappingproxy"):
            clone(proxy)


def _seed(impl, engine):
    shards = tuple(set() for _ in range(DEDUP_SHARDS))
    return impl.SeedAPI(engine, {"exp": shards}, lambda *a: None), shards


def test_seed_api_copy_shares_the_engine_tests_and_writers(impl, make):
    engine = make(
        {"flags": {"exp": {"default": "a", "variants": {"a": 1, "b": 2},
                           "rules": [{"split": {"a": 50, "b": 50}}]}}}
    )  # fmt: skip
    seed, shards = _seed(impl, engine)
    log: list = []
    seed.log_to(log.append, clock=lambda: 7.0, shard_limit=100)
    seed.metas["exp"] = {"variants": ["a", "b"]}
    events: list = []
    seed.metrics_to(events.append, lambda *a: None)
    twin = copy.copy(seed)
    assert type(twin) is type(seed)
    assert twin is not seed
    assert twin.tests is seed.tests and twin.metas is seed.metas and twin.expose is seed.expose
    # the same user through the copy and then the original: logged once, through the
    # copy's writer, which is the original's
    variant = twin.get_ab_test_variant("exp", {"user_id": "u1"})
    assert variant in ("a", "b")
    assert seed.get_ab_test_variant("exp", {"user_id": "u1"}) == variant
    assert log == [("exp", variant, "u1", 7.0)]
    assert any("u1" in shard for shard in shards)
    # 42 logged by the original, "42" through the copy: one user (shared id forms)
    seed.get_ab_test_variant("exp", {"user_id": 42})
    twin.get_ab_test_variant("exp", {"user_id": "42"})
    assert [r[2] for r in log] == ["u1", 42]
    assert twin.record_metric("exp", "clicks", 1.0, user_id="u1") is True
    assert len(events) == 1
    assert twin.is_feature_enabled("exp") is seed.is_feature_enabled("exp")


@pytest.mark.parametrize("how", [copy.deepcopy, pickle.dumps], ids=["deepcopy", "pickle"])
def test_seed_api_deep_copies_and_pickles_are_refused_alike(impl, make, how):
    seed, _ = _seed(impl, make(OBJECTS))
    with pytest.raises(TypeError, match="SeedAPI cannot be deep-copied or pickled"):
        how(seed)


# -- int ids of any size ------------------------------------------------------------

SPLIT = {
    "flags": {
        "f": {"default": "a", "variants": {"a": 1, "b": 2, "c": 3},
              "rules": [{"split": {"a": 33, "b": 33, "c": 34}}]},
        "g": {"default": "off", "bucket_by": ["n", "user_id"],
              "rules": [{"serve": "on", "rollout": 50}]},
    }
}  # fmt: skip


@pytest.fixture
def int_digits_limit():
    before = sys.get_int_max_str_digits()
    yield sys.set_int_max_str_digits
    sys.set_int_max_str_digits(before)


def _text(v: int) -> str:
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        return str(v)
    finally:
        sys.set_int_max_str_digits(limit)


@pytest.mark.parametrize("digits", [309, 310, 400, 1001, 4300, 4301, 20_000])
@pytest.mark.parametrize("limit", [4300, 640, 0])
def test_an_int_id_buckets_as_its_text_at_any_size(make, int_digits_limit, digits, limit):
    engine = make(SPLIT)
    int_digits_limit(limit)
    for uid in (10 ** (digits - 1) + 12345, -(10 ** (digits - 1)) - 99, 7 * 10 ** (digits - 1)):
        text = _text(uid)
        for key in ("f", "g"):
            by_int = engine.evaluate(key, {"user_id": uid})
            by_text = engine.evaluate(key, {"user_id": text})
            assert (by_int.variant, by_int.reason) == (by_text.variant, by_text.reason)
            assert by_text.reason in ("SPLIT", "DEFAULT")
        assert engine.evaluate("f", {"user_id": uid}).reason == "SPLIT"
        bound = engine.context({"user_id": uid})
        assert engine.evaluate("f", bound) == engine.evaluate("f", {"user_id": text})
        assert engine.evaluate_all({"user_id": uid}) == engine.evaluate_all({"user_id": text})
    # huge ints stay unusable as numbers: only bucketing reads their text
    compared = make({"flags": {"big": {"default": "off", "rules": [
        {"when": {"attr": "user_id", "gt": 0}, "serve": "on"}]}}})  # fmt: skip
    assert compared.is_enabled("big", {"user_id": 10**400}) is False


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=-(10**1200), max_value=10**1200))
def test_int_text_is_the_decimal_text(n):
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        want = str(n)
    finally:
        sys.set_int_max_str_digits(limit)
    assert int_text(n) == want
