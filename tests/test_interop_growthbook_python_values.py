"""GrowthBook attributes that are Python containers JSON never gives, against the real
SDK on both evaluators.

growthbook 4.0.0 reads into dicts and lists alone (``getPath``), calls a set an
"array" but a tuple, a frozenset or a mapping that is no dict "unknown" (``getType``),
and its ``$size``, ``$all``, ``$elemMatch`` and ``isIn`` (``$in`` and its kin) take
lists alone: a tuple attribute is never in an ``$in`` list, a set has no ``$size``.
:func:`cfgcore.interop.growthbook.context` derives its keys by the same rules.
"""

from __future__ import annotations

import collections
import copy
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.interop import growthbook
from tests.fuzz import examples
from tests.mappings import DictMapping

pytest.importorskip("growthbook")

from tests.growthbook_sdk import assert_cfgcore_answers, contexts, sdk_answers  # noqa: E402  (needs the SDK: after the skip)


class Record(DictMapping):
    """A read-only mapping that is no dict (the SDK does not read into it)."""


class Tags(list):  # a list subclass is a list to the SDK
    pass


VALUES: dict[str, Any] = {
    "tuple": ("a", "b"),
    "tuple of one": (1,),
    "set": {"a"},
    "frozenset": frozenset({"a"}),
    "deque": collections.deque(["a"]),
    "mapping": Record({"x": "a"}),
    "OrderedDict": collections.OrderedDict(x="a"),
    "list subclass": Tags(["a", 1]),
    "list of tuples": [("a",), "b"],
    "list of sets": [{"a"}, 1],
    "list of lists": [["a"], 1],
    "dict of tuple": {"x": ("a",)},
    "bytes": b"a",
    "list": ["a", "b"],
    "dict": {"x": "a"},
}
CONDITIONS: list[dict[str, Any]] = [
    {"k": "a"},
    {"k": {"$eq": "a"}},
    {"k": {"$ne": "a"}},
    {"k": {"$in": ["a", 1]}},
    {"k": {"$nin": ["a", 1]}},
    {"k": {"$ini": ["A"]}},
    {"k": {"$nini": ["A"]}},
    {"k": {"$exists": True}},
    {"k": {"$exists": False}},
    *({"k": {"$type": t}} for t in ("array", "object", "unknown", "string", "null")),
    {"k": {"$size": 1}},
    {"k": {"$size": {"$ne": 3}}},
    {"k": {"$size": {"$exists": False}}},
    {"k": {"$all": []}},
    {"k": {"$all": ["a"]}},
    {"k": {"$elemMatch": {"$eq": "a"}}},
    {"k": {"$elemMatch": {"$in": ["a"]}}},
    {"k": {"$not": {"$elemMatch": {"$in": ["a"]}}}},
    {"k": {"$regex": "a"}},
    {"k": {"$notRegex": "a"}},
    {"k.0": "a"},
    {"k.0.0": "a"},
    {"k.length": 1},
    {"k.x": "a"},
    {"k.x.0": "a"},
    {"k.x": {"$type": "unknown"}},
]
USERS = [{"id": "u", "k": v} for v in VALUES.values()]


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("growthbook").setLevel(logging.CRITICAL)


def _features(condition: dict[str, Any]) -> dict[str, Any]:
    """Feature ``f``: on where ``condition`` holds."""
    return {"f": {"defaultValue": False, "rules": [{"condition": condition, "force": True}]}}


def _agree(
    make_py_and_c: Any,
    condition: dict[str, Any],
    users: list[dict[str, Any]],
    ctxs: list[Any] | None = None,
) -> None:
    features = _features(condition)
    want, raised = sdk_answers(features, users)
    assert not raised, condition
    snap = growthbook.to_snapshot(copy.deepcopy(features))
    for make in make_py_and_c:
        assert_cfgcore_answers(make(snap), want, users, note=condition, contexts=ctxs)


@pytest.mark.parametrize("condition", CONDITIONS, ids=repr)
def test_containers_json_never_gives_answer_as_the_sdk(make_py_and_c, condition):
    _agree(make_py_and_c, condition, USERS)


def test_the_sdk_tells_these_containers_apart(make_py_and_c):
    """The cases above are not vacuous: the SDK's answers differ between a list and a
    tuple, a dict and another mapping, and a set has the type a tuple does not."""
    lists = sdk_answers(
        _features({"k": {"$in": ["a"]}}),
        [{"k": ["a"]}, {"k": ("a",)}, {"k": {"a"}}],
    )[0]
    assert [w[2] for w in lists] == [True, False, False]
    typed = sdk_answers(
        _features({"k": {"$type": "array"}}),
        [{"k": ["a"]}, {"k": ("a",)}, {"k": {"a"}}, {"k": Record({})}],
    )[0]
    assert [w[2] for w in typed] == [True, False, True, False]


def test_a_large_context_derives_the_same_keys_when_read(make_py_and_c):
    """Past context()'s budget the keys are derived as evaluators read them (the lazy
    mapping): the same answers for the same containers."""
    padding = {f"p{i}": list(range(20)) for i in range(300)}  # past MAX_CONTEXT_KEYS
    users = [{**padding, **u} for u in USERS]
    # each user's context once: a lazy mapping derives each key anew at every read
    ctxs = contexts(users)
    assert all(type(ctx) is not dict for ctx in ctxs)  # the lazy mapping answers
    for condition in CONDITIONS:
        _agree(make_py_and_c, condition, users, ctxs)


_SCALARS = st.one_of(
    st.sampled_from(["a", "A", "b", "", 0, 1, 2, 1.0, True, False, None]),
    st.text(alphabet="aAb", max_size=2),
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    hashable = st.one_of(
        st.sampled_from(["a", "b", 1, 2, True]), st.text(alphabet="ab", max_size=1)
    )
    return st.one_of(
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
        st.sets(hashable, max_size=3),
        st.frozensets(hashable, max_size=3),
        st.dictionaries(st.sampled_from(["x", "y", "0"]), children, max_size=2),
        st.dictionaries(st.sampled_from(["x", "y"]), children, max_size=2).map(Record),
    )


_VALUES = st.recursive(_SCALARS, _containers, max_leaves=8)
_PATHS = st.sampled_from(["k", "k.0", "k.x", "k.0.0", "k.x.0", "k.length", "k.0.length"])
_OPERATORS = st.one_of(
    _SCALARS,
    st.fixed_dictionaries({"$in": st.lists(_SCALARS.filter(lambda v: v is not None), max_size=3)}),
    st.fixed_dictionaries({"$nin": st.lists(_SCALARS.filter(lambda v: v is not None), max_size=3)}),
    st.fixed_dictionaries({"$ini": st.lists(st.sampled_from(["A", "b"]), max_size=2)}),
    st.fixed_dictionaries({"$type": st.sampled_from(["array", "object", "unknown", "null"])}),
    st.fixed_dictionaries({"$size": st.one_of(st.integers(0, 3), st.just({"$ne": 2}))}),
    st.fixed_dictionaries({"$all": st.lists(st.sampled_from(["a", 1]), max_size=2)}),
    st.fixed_dictionaries({"$elemMatch": st.sampled_from([{"$eq": "a"}, {"$in": ["a", 1]}])}),
    st.fixed_dictionaries({"$exists": st.booleans()}),
    st.fixed_dictionaries({"$ne": _SCALARS}),
)


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(_VALUES, min_size=1, max_size=4),
    condition=st.dictionaries(_PATHS, _OPERATORS, min_size=1, max_size=2),
)
def test_nested_python_containers_answer_as_the_sdk(make_py_and_c, values, condition):
    _agree(make_py_and_c, condition, [{"id": "u", "k": v} for v in values])
