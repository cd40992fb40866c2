"""GrowthBook saved groups are lowered once per import and shared by every
``$inGroup``/``$notInGroup`` reference (they used to be copied at each one: 100,000
ids in 100 features took minutes and gigabytes), and still answer as the real
``growthbook`` SDK does."""

from __future__ import annotations

import copy
import logging
import tracemalloc

import growthbook as gb_sdk  # the real SDK: the reference for every answer
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.interop import growthbook
from tests.fuzz import examples


@pytest.fixture(autouse=True)
def _quiet_sdk():
    logging.getLogger("growthbook").setLevel(logging.CRITICAL)


def _features(n: int, op: str = "$inGroup", attr: str = "id") -> dict:
    return {
        f"f{j}": {
            "defaultValue": False,
            "rules": [{"condition": {attr: {op: "big"}}, "force": True}],
        }
        for j in range(n)
    }


def test_references_share_one_lowered_group():
    groups = {"big": [f"user-{i}" for i in range(2000)]}
    features = {
        **_features(5),
        **{f"n{j}": v for j, v in enumerate(_features(3, "$notInGroup").values())},
    }
    snap = growthbook.to_snapshot(features, saved_groups=groups)
    tests = [snap.flags[f"f{j}"].rules[0].when for j in range(5)]
    assert all(t is tests[0] for t in tests)
    negated = [snap.flags[f"n{j}"].rules[0].when for j in range(3)]
    assert all(n.not_ is tests[0] for n in negated)
    # another attribute is another test
    other = growthbook.to_snapshot(_features(1, attr="dev"), saved_groups=groups)
    assert other.flags["f0"].rules[0].when.any[0].attr == "dev"


def _import_peak(n_features: int, groups: dict) -> int:
    features = _features(n_features)
    tracemalloc.start()
    try:
        growthbook.to_snapshot(features, saved_groups=groups)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_import_memory_does_not_grow_with_references():
    groups = {"big": [f"user-{i}" for i in range(5000)]}
    one, forty = _import_peak(1, groups), _import_peak(40, groups)
    # copied per reference, 40 references took ~40 times the memory of one
    assert forty < 2 * one + 200_000, (one, forty)


@pytest.mark.parametrize("group", ["u1", 3, None, {"type": "condition", "condition": {}}])
@pytest.mark.parametrize("op", ["$inGroup", "$notInGroup"])
def test_a_group_that_is_no_list_of_values_is_in_nor_out(make_py_and_c, group, op):
    """growthbook 4.0.0 answers false for both operators of such a group (it refused)."""
    features, groups = _features(1, op), {"big": group}
    snap = growthbook.to_snapshot(copy.deepcopy(features), saved_groups=groups)
    for attrs in ({"id": "u1"}, {"id": 3}, {}):
        sdk = gb_sdk.GrowthBook(attributes=attrs, features=features, saved_groups=groups)
        want = sdk.is_on("f0")
        sdk.destroy()
        assert want is False
        for make in make_py_and_c:
            assert make(snap).is_enabled("f0", growthbook.context(attrs)) is want


GROUPS = {"big": ["u1", "u2", 3, 4.5, True, "Ab"], "empty": []}
_values = st.one_of(
    st.sampled_from(["u1", "u2", "u3", "ab", "Ab", 3, 3.0, 4.5, True, False, None, 0]),
    st.lists(st.sampled_from(["u1", "x", 3, "Ab", True, None]), max_size=3),
)


@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.dictionaries(st.sampled_from(["id", "dev"]), _values, max_size=2))
def test_shared_groups_answer_as_the_sdk(make, attrs):
    features = {}
    for op in ("$inGroup", "$notInGroup"):
        for group in ("big", "empty", "missing"):
            for attr in ("id", "dev"):
                features[f"{op}-{group}-{attr}"] = {
                    "defaultValue": False,
                    "rules": [{"condition": {attr: {op: group}}, "force": True}],
                }
    features["both"] = {
        "defaultValue": 0,
        "rules": [{"condition": {"$or": [{"id": {"$inGroup": "big"}},
                                         {"dev": {"$notInGroup": "big"}}]}, "force": 1}],
    }  # fmt: skip
    engine = make(growthbook.to_snapshot(copy.deepcopy(features), saved_groups=GROUPS))
    sdk = gb_sdk.GrowthBook(
        attributes=copy.deepcopy(attrs), features=copy.deepcopy(features),
        saved_groups=copy.deepcopy(GROUPS),
    )  # fmt: skip
    try:
        ctx = growthbook.context(attrs)
        for key in features:
            want = sdk.eval_feature(key)
            got = growthbook.thaw(engine.evaluate(key, ctx).value)
            assert (got, type(got)) == (want.value, type(want.value)), (key, attrs)
    finally:
        sdk.destroy()


def test_the_shared_test_is_measured_once_for_the_nesting_bound(monkeypatch):
    # the nesting check walked the shared test again at every reference (quadratic:
    # 100,000 ids in 100 features spent 27 s there)
    import cfgcore.interop as interop

    groups = {"big": [f"user-{i}" for i in range(200)]}
    seen: list[int] = []
    measure = interop.condition_height

    def counting(cond, memo=None):
        seen.append(id(cond))
        return measure(cond, memo)

    monkeypatch.setattr(interop, "condition_height", counting)
    snap = growthbook.to_snapshot(_features(20), saved_groups=groups)
    shared = snap.flags["f0"].rules[0].when
    assert seen.count(id(shared)) <= 1 + 19  # looked up per reference, walked once
    walked_parts = seen.count(id(shared.any[0]))
    assert walked_parts == 1
