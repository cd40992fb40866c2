"""GrowthBook literal equality with an array or an object (``{"tags": ["a", "b"]}``,
``{"plan": {"tier": "pro", "seats": 5}}``), against the real SDK on both evaluators.

growthbook 4.0.0 compares such a condition as JavaScript compares JSON text
(``_strict_deep_equal``): a list of the same length, or a dict with the same keys in
the same JavaScript property order (canonical array indices first, in numeric
order), whose items have the same JSON type and value, ``1`` equal to ``1.0`` but
never to ``true``, nested arrays and objects item by item. The importer lowers it to
the list's size or the object's key order and one equality per item; keys no path
reaches (holding '.') stay refused. Items holding null (which the SDK reads NaN and
Infinity as) and keys holding '#': ``test_interop_growthbook_nulls_and_names.py``.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.interop import InteropError, growthbook
from tests.fuzz import examples

pytest.importorskip("growthbook")

from tests.growthbook_sdk import assert_cfgcore_answers, contexts, sdk_answers  # noqa: E402  (needs the SDK: after the skip)

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
    {"a": 1, "b": "x"},
    {"b": "x", "a": 1},
    {"a": 1.0, "b": "x"},
    {"a": True, "b": "x"},
    {"a": 1},
    {},
    {"1": "p", "0": "q"},
    {"10": 1, "9": 2, "x": 3},
    {"a": {"b": [1]}},
    {"a": {"b": [True]}},
    {"a": {}},
    {"a": [{"b": 1}]},
    {"a.b": 1},
    {1: "x"},
    {"a": float("nan")},
    {"a": None},
    {"01": 1},
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
    {"k": {"a": 1, "b": "x"}},
    {"k": {"b": "x", "a": 1}},
    {"k": {"0": "q", "1": "p"}},
    {"k": {"9": 2, "10": 1, "x": 3}},
    {"k": {"a": {"b": [1]}}},
    {"k": {"a": {}}},
    {"k": [{"a": 1}]},
    {"k": {"a": [{"b": 1}]}},
    {"k": {"01": 1}},
    {"k": {"$not": {"a": 1}}},
    {"k": {"a": 1, "$x": 2}},
]
NO_MATCH = [{"k": [1.5]}, {"k": ["A", "b"]}, {"k": {"a": 1, "$x": 2}}]


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
    # both answers occur (no value here holds [1.5], ["A", "b"] (case counts), "$x")
    assert len({w[2] for w in want}) == (1 if condition in NO_MATCH else 2)


def test_the_sdk_compares_types_and_order():
    """Not vacuous: the SDK tells 1 from true and ["a", "b"] from ["b", "a"]."""
    users = [{"k": [1]}, {"k": [True]}, {"k": [1.0]}]
    assert [w[2] for w in sdk_answers(_features({"k": [1]}), users)[0]] == [True, False, True]
    users = [{"k": ["a", "b"]}, {"k": ["b", "a"]}]
    assert [w[2] for w in sdk_answers(_features({"k": ["a", "b"]}), users)[0]] == [True, False]
    users = [{"k": {"a": 1, "b": 2}}, {"k": {"b": 2, "a": 1}}, {"k": {"1": 0, "0": 0}}]
    want = sdk_answers(_features({"k": {"a": 1, "b": 2}}), users)[0]
    assert [w[2] for w in want] == [True, False, False]
    want = sdk_answers(_features({"k": {"0": 0, "1": 0}}), users)[0]
    assert [w[2] for w in want] == [False, False, True]  # indices in numeric order


@pytest.mark.parametrize(
    "condition",
    [
        {"k": {"a.b": 1}},
        {"k": [None, {"a.b": None}]},
    ],
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
_KEYS = st.sampled_from(["a", "b", "0", "1", "10", "01", "$x"])


def _nested(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=3)
        ),
        max_leaves=8,
    )


_EXPECTED = st.one_of(
    st.lists(_nested(_SCALARS), max_size=3),
    st.dictionaries(_KEYS.filter(lambda k: k != "$x"), _nested(_SCALARS), min_size=1, max_size=3),
)
_ATTRIBUTES = _nested(st.one_of(_SCALARS, st.none(), st.just(float("nan"))))


def _reordered(value: Any) -> Any:
    """``value`` with every object's keys in reverse insertion order."""
    if isinstance(value, dict):
        return {k: _reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reordered(x) for x in value]
    return value


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expected=_EXPECTED, values=st.lists(_ATTRIBUTES, min_size=1, max_size=4), data=st.data())
def test_arrays_and_objects_answer_as_the_sdk(make_py_and_c, expected, values, data):
    # also the expected value itself, with its keys reordered, and with one item changed
    values = [*values, copy.deepcopy(expected), _reordered(expected)]
    if expected:
        changed = copy.deepcopy(expected)
        keys = list(changed) if isinstance(changed, dict) else list(range(len(changed)))
        changed[data.draw(st.sampled_from(keys))] = data.draw(_SCALARS)
        values.append(changed)
    _agree(make_py_and_c, {"k": expected}, values)


def test_a_large_context_derives_key_orders_when_read(make_py_and_c):
    """Past context()'s budget an object's key order is derived when read: the same
    answers."""
    padding = {f"p{i}": list(range(20)) for i in range(300)}
    values = [v for v in VALUES if not isinstance(v, set)]
    users = [{**padding, "id": "u", "k": v} for v in values]
    # each user's context once: a lazy mapping derives each key anew at every read
    ctxs = contexts(users)
    assert all(type(ctx) is not dict for ctx in ctxs)  # the lazy mapping answers
    for condition in CONDITIONS:
        features = _features(condition)
        want, _ = sdk_answers(features, users)
        snap = growthbook.to_snapshot(copy.deepcopy(features))
        for make in make_py_and_c:
            assert_cfgcore_answers(make(snap), want, users, note=condition, contexts=ctxs)


@given(
    a=st.lists(st.text(alphabet='a\0[]"\\u0', max_size=4), unique=True, max_size=4),
    b=st.lists(st.text(alphabet='a\0[]"\\u0', max_size=4), unique=True, max_size=4),
)
def test_key_orders_have_one_text_each(a, b):
    """Two objects get one key-order text exactly when their keys come in one order
    (keys holding NUL, JSON-looking keys and the empty key included)."""
    from cfgcore.interop.growthbook import _object_keys

    def order(keys: list[str]) -> list[str]:
        idx = sorted((k for k in keys if k.isdigit() and (k == "0" or k[0] != "0")), key=int)
        return idx + [k for k in keys if k not in idx]

    same = _object_keys(dict.fromkeys(a)) == _object_keys(dict.fromkeys(b))
    assert same == (order(a) == order(b))
