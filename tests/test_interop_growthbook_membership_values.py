"""GrowthBook ``$in``-family lists and saved groups holding null, arrays or objects,
against the real SDK on both evaluators.

growthbook 4.0.0's ``isIn`` finds a value in a list with Python's ``in`` (a scalar
value) or by intersecting (an array value), falling back to JavaScript's ``===`` when
an item cannot be hashed: an array or object in the list equals nothing, and null is
found for a null or missing value and in an array holding null. The importer refused
such lists; it now lowers them with those answers.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.interop import growthbook
from tests.fuzz import examples

pytest.importorskip("growthbook")

from tests.growthbook_sdk import assert_cfgcore_answers, sdk_answers  # noqa: E402  (needs the SDK: after the skip)

VALUES: list[Any] = [
    "a",
    "A",
    None,
    1,
    True,
    float("nan"),
    ["a"],
    [None],
    ["b", None],
    ["A", None],
    [["a"]],
    [{"a": 1}],
    [1, {"x": 1}],
    [],
    {"a": 1},
    ("a",),
]
CONDITIONS: list[dict[str, Any]] = [
    {"k": {"$in": ["a", ["a"]]}},
    {"k": {"$in": [None]}},
    {"k": {"$in": [None, "a"]}},
    {"k": {"$nin": [None]}},
    {"k": {"$in": [{"a": 1}]}},
    {"k": {"$in": [[None]]}},
    {"k": {"$ini": ["A", None]}},
    {"k": {"$nini": [None, ["a"]]}},
    {"k": {"$in": [1, [1]]}},
    {"missing": {"$in": [None]}},
    {"k.0": {"$in": [None]}},
    {"k": {"$inGroup": "g"}},
    {"k": {"$notInGroup": "g"}},
]
GROUPS = {"g": ["b", None, {"a": 1}, ["a"]]}


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("growthbook").setLevel(logging.CRITICAL)


def _sdk(condition: Any, users: list[dict[str, Any]]) -> list[Any]:
    """The SDK's answers with the saved groups GROUPS."""
    import growthbook as gb_sdk

    out = []
    feature = {"defaultValue": False, "rules": [{"condition": condition, "force": True}]}
    for attrs in users:
        sdk = gb_sdk.GrowthBook(
            attributes=copy.deepcopy(attrs),
            features={"f": copy.deepcopy(feature)},
            saved_groups=copy.deepcopy(GROUPS),
        )
        try:
            res = sdk.eval_feature("f")
            out.append((res.value, type(res.value), res.on))
        finally:
            sdk.destroy()
    return out


def _agree(make_py_and_c: Any, condition: Any, values: list[Any]) -> list[Any]:
    users = [{"id": "u", "k": v} for v in values]
    features = {"f": {"defaultValue": False, "rules": [{"condition": condition, "force": True}]}}
    want = _sdk(condition, users)
    snap = growthbook.to_snapshot(copy.deepcopy(features), saved_groups=copy.deepcopy(GROUPS))
    for make in make_py_and_c:
        assert_cfgcore_answers(make(snap), want, users, note=condition)
    return want


@pytest.mark.parametrize("condition", CONDITIONS, ids=repr)
def test_lists_holding_null_arrays_or_objects_answer_as_the_sdk(make_py_and_c, condition):
    want = _agree(make_py_and_c, condition, VALUES)
    if condition in ({"k": {"$in": [{"a": 1}]}}, {"k": {"$in": [[None]]}}):
        assert not any(w[2] for w in want)  # an array or object in the list equals nothing
    elif condition == {"missing": {"$in": [None]}}:
        assert all(w[2] for w in want)  # a missing value is null
    else:
        assert len({w[2] for w in want}) == 2, condition  # both answers occur


def test_the_sdk_finds_null_but_no_array():
    """Not vacuous: null is found for a missing value and in an array holding it; an
    array in the list is not found even in an array holding it."""
    users = [{}, {"k": [None]}, {"k": "x"}]
    got = [w[2] for w in sdk_answers({"f": {"defaultValue": False, "rules": [
        {"condition": {"k": {"$in": [None]}}, "force": True}]}}, users)[0]]  # fmt: skip
    assert got == [True, True, False]
    got = [w[2] for w in sdk_answers({"f": {"defaultValue": False, "rules": [
        {"condition": {"k": {"$in": [["a"]]}}, "force": True}]}}, [{"k": [["a"]]}])[0]]  # fmt: skip
    assert got == [False]


_ITEMS = st.one_of(
    st.sampled_from(["a", "A", "b", "", 0, 1, 1.0, True, False, None, 2.5]),
    st.lists(st.sampled_from(["a", None, 1]), max_size=2),
    st.dictionaries(st.sampled_from(["a", "b"]), st.sampled_from([1, "a"]), max_size=1),
)
_ATTRIBUTES = st.one_of(_ITEMS, st.lists(_ITEMS, max_size=3))


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    op=st.sampled_from(["$in", "$nin", "$ini", "$nini"]),
    items=st.lists(_ITEMS, max_size=4),
    values=st.lists(_ATTRIBUTES, min_size=1, max_size=5),
)
def test_membership_answers_as_the_sdk(make_py_and_c, op, items, values):
    _agree(make_py_and_c, {"k": {op: items}}, values)


@pytest.mark.parametrize("op", ["$in", "$nin"])
def test_a_nan_among_the_values_is_refused_naming_it(op):
    # The SDK's Python ``in`` finds a NaN only where the attribute is the very same
    # float object (identity before equality): every NaN json.loads gives is one object,
    # one computed apart is another, and no imported condition can tell them apart.
    import json

    from growthbook.core import evalCondition

    from cfgcore.interop import InteropError

    cond = {"a": {op: json.loads("[NaN, 1]")}}
    parsed, computed = json.loads("NaN"), float("inf") - float("inf")
    assert evalCondition({"a": parsed}, cond) is (op == "$in")
    assert evalCondition({"a": computed}, cond) is (op == "$nin")
    features = {"f": {"defaultValue": False, "rules": [{"condition": cond, "force": True}]}}
    with pytest.raises(InteropError, match=r"features\.f\S*: .*NaN among its values at 'a'"):
        growthbook.to_snapshot(features)
    groups = {"g": [1, float("nan")]}
    in_group = {"f": {"defaultValue": 0, "rules": [{"condition": {"a": {"$inGroup": "g"}}}]}}
    with pytest.raises(InteropError, match="NaN among its values"):
        growthbook.to_snapshot(in_group, saved_groups=groups)


@pytest.mark.parametrize("op", ["$ini", "$nini"])
def test_a_nan_among_folded_values_is_found_for_no_value(make_py_and_c, op):
    import json

    cond = {"a": {op: json.loads('[NaN, "x"]')}}
    parsed = json.loads("NaN")
    users = [{"a": parsed}, {"a": [parsed]}, {"a": "X"}, {"a": float("nan")}]
    features = {"f": {"defaultValue": False, "rules": [{"condition": cond, "force": True}]}}
    want, _ = sdk_answers(features, users)  # (deep copies keep the very NaN object)
    for make in make_py_and_c:
        engine = make(growthbook.to_snapshot(copy.deepcopy(features)))
        assert_cfgcore_answers(engine, want, users)
