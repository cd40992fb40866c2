"""Evaluation results that pickle, SeedAPI copies, and int ids of any size, on both
evaluators.

* details, ``value()`` and ``evaluate_all()`` holding object (dict/list) values pickle
  (the loaded values are equal and still read-only) and deep-copy (to plain, mutable
  copies the engine does not share); served payloads encode as JSON;
* ``copy.copy(SeedAPI)`` gives another SeedAPI over the same engine, tests, shards and
  writers on both evaluators; deep copies and pickles are refused with the same
  TypeError;
* an int user id buckets as its decimal text for any size, whatever
  ``sys.set_int_max_str_digits`` says.
"""

from __future__ import annotations

import copy
import json
import pickle
import sys
from types import MappingProxyType

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore._layout import DEDUP_SHARDS
from cfgcore.config.tree import FrozenDict, FrozenList
from cfgcore.details import ID_FORM_CHARS, int_text
from tests.fuzz import examples

OBJECTS = {
    "flags": {
        "obj": {"default": "a", "variants": {"a": {"k": [1, {"n": None, "f": -0.0}], "s": "x"}}},
        "arr": {"default": "a", "variants": {"a": [1, {"b": [True, 2.5]}, "t"]}},
        "on": {"default": "on"},
    }
}


def _read_only(value) -> None:
    """Every dict in ``value`` is the read-only FrozenDict and every list a FrozenList."""
    if isinstance(value, dict):
        assert type(value) is FrozenDict
        with pytest.raises(TypeError, match="read-only"):
            value["new"] = 1  # type: ignore[index]
        for v in value.values():
            _read_only(v)
    elif isinstance(value, list):
        assert type(value) is FrozenList
        with pytest.raises(TypeError, match="read-only"):
            value.append(1)
        for v in value:
            _read_only(v)
    else:
        assert not isinstance(value, tuple)


def _plain(value) -> None:
    """Every dict in ``value`` is a plain dict and every list a plain list."""
    if isinstance(value, dict):
        assert type(value) is dict
        for v in value.values():
            _plain(v)
    elif isinstance(value, list):
        assert type(value) is list
        for v in value:
            _plain(v)


RESULTS = (
    lambda e: e.evaluate("obj", {}),
    lambda e: e.evaluate("arr", {"user_id": "u"}),
    lambda e: e.value("obj", {}),
    lambda e: e.value("arr", {}),
    lambda e: e.evaluate_all({}),
    lambda e: e.evaluate_all(e.context({"user_id": 1})),
)


def test_served_object_values_are_read_only_json_and_equal_to_their_source(make):
    engine = make(OBJECTS)
    obj, arr = engine.value("obj", {}), engine.value("arr", {})
    _read_only(obj)
    _read_only(arr)
    _read_only(engine.evaluate_all({})["obj"])
    _read_only(engine.evaluate("arr", {}).value)
    source = OBJECTS["flags"]
    assert obj == source["obj"]["variants"]["a"] and arr == source["arr"]["variants"]["a"]
    # A payload encodes as the JSON it came from (json and msgspec take dict and list
    # subclasses; a mappingproxy or tuple they refuse or change).
    assert json.loads(json.dumps(obj)) == source["obj"]["variants"]["a"]
    assert msgspec.json.decode(msgspec.json.encode(engine.evaluate_all({}))) == {
        "obj": source["obj"]["variants"]["a"], "arr": source["arr"]["variants"]["a"], "on": True,
    }  # fmt: skip
    assert str(json.loads(json.dumps(obj))["k"][1]["f"]) == "-0.0"


def test_results_with_object_values_pickle_and_stay_read_only(make):
    engine = make(OBJECTS)
    for result in RESULTS:
        served = result(engine)
        loaded = pickle.loads(pickle.dumps(served, protocol=5))
        assert loaded == served
        assert type(loaded) is type(served)
    details = pickle.loads(pickle.dumps(engine.evaluate("obj", {})))
    _read_only(details.value)
    everything = pickle.loads(pickle.dumps(engine.evaluate_all({})))
    _read_only(everything["obj"])
    _read_only(everything["arr"])
    assert everything["obj"]["k"][1]["f"] == 0.0  # -0.0 kept
    assert str(everything["obj"]["k"][1]["f"]) == "-0.0"


def test_a_deep_copy_of_a_result_is_a_plain_copy_the_engine_does_not_share(make):
    # As for the configuration tree: copy.deepcopy() is how a caller gets a value to change.
    engine = make(OBJECTS)
    for result in RESULTS:
        assert copy.deepcopy(result(engine)) == result(engine)
    everything = copy.deepcopy(engine.evaluate_all({}))
    _plain(everything)
    everything["obj"]["k"][1]["n"] = "changed"
    everything["arr"].append("more")
    assert engine.value("obj", {})["k"][1]["n"] is None
    assert engine.value("arr", {}) == OBJECTS["flags"]["arr"]["variants"]["a"]


def test_the_importers_answer_with_plain_data_the_engine_does_not_share(impl):
    # flagd's resolve (and GrowthBook's thaw, which its tests read values through) give
    # the caller plain dicts and lists: changing them changes nothing the engine serves.
    from cfgcore.engine import engine_class
    from cfgcore.interop import flagd, growthbook

    variants = {"a": {"list": [1, {"x": [2]}]}, "b": {}}
    document = {"flags": {"f": {"state": "ENABLED", "defaultVariant": "a", "variants": variants}}}
    engine = engine_class(impl).from_snapshot(flagd.to_snapshot(document))
    got = flagd.resolve(engine, "f", {})
    assert got.value == {"list": [1, {"x": [2]}]}
    _plain(got.value)
    got.value["list"][1]["x"].append(3)
    assert flagd.resolve(engine, "f", {}).value == {"list": [1, {"x": [2]}]}
    thawed = growthbook.thaw(engine.value("f", {}))
    _plain(thawed)
    assert thawed == {"list": [1, {"x": [2]}]}


def test_no_pickling_rule_for_mappingproxy_is_registered_process_wide(make):
    # cfgcore serves no mappingproxy: a user's mappingproxy is refused as Python refuses it.
    make(OBJECTS).evaluate_all({})
    for proxy in (MappingProxyType({"a": 1}), MappingProxyType({1: "int key"})):
        with pytest.raises(TypeError, match="mappingproxy"):
            pickle.dumps(proxy)
        with pytest.raises(TypeError, match="mappingproxy"):
            copy.deepcopy(proxy)


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


@pytest.mark.parametrize("digits", [309, 310, 400, 1001, 4299, 4300, 4301, 20_000])
@pytest.mark.parametrize("limit", [4300, 640, 0])
def test_an_int_id_buckets_as_its_text_up_to_the_id_bound(make, int_digits_limit, digits, limit):
    # whatever the interpreter's conversion limit; an int whose text is longer than
    # ID_FORM_CHARS is no id (tests/test_core_int_id_bound.py): as if absent
    engine = make(SPLIT)
    int_digits_limit(limit)
    for uid in (10 ** (digits - 1) + 12345, -(10 ** (digits - 1)) - 99, 7 * 10 ** (digits - 1)):
        text = _text(uid)
        like = {"user_id": text} if len(text) <= ID_FORM_CHARS else {}
        for key in ("f", "g"):
            by_int = engine.evaluate(key, {"user_id": uid})
            by_like = engine.evaluate(key, like)
            assert (by_int.variant, by_int.reason) == (by_like.variant, by_like.reason)
            assert by_like.reason in ("SPLIT", "DEFAULT")
        assert engine.evaluate("f", {"user_id": uid}).reason == ("SPLIT" if like else "DEFAULT")
        bound = engine.context({"user_id": uid})
        assert engine.evaluate("f", bound) == engine.evaluate("f", like)
        assert engine.evaluate_all({"user_id": uid}) == engine.evaluate_all(like)
    # huge ints stay unusable as numbers: only bucketing reads their text
    compared = make({"flags": {"big": {"default": "off", "rules": [
        {"when": {"attr": "user_id", "gt": 0}, "serve": "on"}]}}})  # fmt: skip
    assert compared.is_enabled("big", {"user_id": 10**400}) is False


@settings(max_examples=examples(60), deadline=None)
@given(st.integers(min_value=-(10**1200), max_value=10**1200))
def test_int_text_is_the_decimal_text(n):
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        want = str(n)
    finally:
        sys.set_int_max_str_digits(limit)
    assert int_text(n) == want
