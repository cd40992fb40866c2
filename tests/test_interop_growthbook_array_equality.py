"""GrowthBook literal equality with an array (``{"tags": ["a", "b"]}``), against the
real SDK on both evaluators.

growthbook 4.0.0 compares such a condition as JavaScript compares JSON text
(``_strict_deep_equal``): a list of the same length whose items have the same JSON
type and value, ``1`` equal to ``1.0`` but never to ``true``, arrays item by item. The
importer lowers it to the list's size and one equality per item; arrays holding an
object or null, and objects, stay refused.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.interop import InteropError, growthbook

pytest.importorskip("growthbook")

from tests.growthbook_sdk import assert_cfgcore_answers, sdk_answers  # noqa: E402  (needs the SDK: after the skip)

VALUES: list[Any] = [
    ["a", "b"],
    ["b", "a"],
    ["a"],
    [],
    ["a", "b", "c"],
    [1, 2],
    [1.0, 2],
    [True, 2],
    [[1], "x"],
    [["1"], "x"],
    [[1, 2], "x"],
    ("a", "b"),
    {"a", "b"},
    "a,b",
    {"0": "a", "1": "b"},
    ["a", None],
    [float("nan")],
    [float("inf")],
    [2**60],
    [2**60 + 1],
    None,
    [{"a": 1}],
]
CONDITIONS: list[dict[str, Any]] = [
    {"k": ["a", "b"]},
    {"k": []},
    {"k": [1, 2]},
    {"k": [True, 2]},
    {"k": [[1], "x"]},
    {"k": [2**60]},
    {"k": [1.5]},
    {"k": ["A", "b"]},
    {"k": {"$not": ["a", "b"]}},
    {"k.0": [1]},
    {"$or": [{"k": ["a"]}, {"k": [1, 2]}]},
    {"$nor": [{"k": []}]},
]
NO_MATCH = [{"k": [1.5]}, {"k": ["A", "b"]}]


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("growthbook").setLevel(logging.CRITICAL)


def _features(condition: Any) -> dict[str, Any]:
    return {"f": {"defaultValue": False, "rules": [{"condition": condition, "force": True}]}}


def _agree(make_py_and_c: Any, condition: Any, values: list[Any]) -> list[Any]:
    users = [{"id": "u", "k": v} for v in values]
    want, raised = sdk_answers(_features(condition), users)
    assert not raised, condition
    snap = growthbook.to_snapshot(copy.deepcopy(_features(condition)))
    for make in make_py_and_c:
        assert_cfgcore_answers(make(snap), want, users, note=condition)
    return want


@pytest.mark.parametrize("condition", CONDITIONS, ids=repr)
def test_equality_with_an_array_answers_as_the_sdk(make_py_and_c, condition):
    want = _agree(make_py_and_c, condition, [v for v in VALUES if not isinstance(v, set)])
    # both answers occur (no value here holds [1.5], nor ["A", "b"]: case counts)
    assert len({w[2] for w in want}) == (1 if condition in NO_MATCH else 2)


def test_the_sdk_compares_types_and_order():
    """Not vacuous: the SDK tells 1 from true and ["a", "b"] from ["b", "a"]."""
    users = [{"k": [1]}, {"k": [True]}, {"k": [1.0]}]
    assert [w[2] for w in sdk_answers(_features({"k": [1]}), users)[0]] == [True, False, True]
    users = [{"k": ["a", "b"]}, {"k": ["b", "a"]}]
    assert [w[2] for w in sdk_answers(_features({"k": ["a", "b"]}), users)[0]] == [True, False]


@pytest.mark.parametrize(
    "condition",
    [{"k": [{"a": 1}]}, {"k": ["a", None]}, {"k": {"a": 1}}, {"k": [[None]]}],
    ids=repr,
)
def test_what_is_not_lowered_is_refused_naming_it(condition):
    with pytest.raises(InteropError) as exc:
        growthbook.to_snapshot(_features(condition))
    assert "features.f" in str(exc.value) and "equality with" in str(exc.value)


_SCALARS = st.one_of(
    st.sampled_from(["a", "b", "", 0, 1, 1.0, 2, True, False, -0.0, 0.5]),
    st.integers(-(2**60), 2**60),
)
_ARRAYS = st.recursive(
    st.lists(_SCALARS, max_size=3), lambda inner: st.lists(st.one_of(_SCALARS, inner), max_size=3)
)
_ATTRIBUTES = st.one_of(
    _SCALARS,
    st.recursive(
        st.lists(st.one_of(_SCALARS, st.none(), st.just(float("nan"))), max_size=3),
        lambda inner: st.lists(st.one_of(_SCALARS, inner, st.just({"a": 1})), max_size=3),
    ),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expected=_ARRAYS, values=st.lists(_ATTRIBUTES, min_size=1, max_size=4), data=st.data())
def test_arrays_answer_as_the_sdk(make_py_and_c, expected, values, data):
    # also the expected array itself and a copy with one item changed, so equal ones occur
    values = [*values, copy.deepcopy(expected)]
    if expected:
        changed = copy.deepcopy(expected)
        changed[data.draw(st.integers(0, len(expected) - 1))] = data.draw(_SCALARS)
        values.append(changed)
    _agree(make_py_and_c, {"k": expected}, values)
