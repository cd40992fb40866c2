"""GrowthBook membership on array attributes, lowered to ``has_any``.

``$in``/``$nin``/``$ini``/``$nini``, saved groups (``$inGroup``/``$notInGroup``),
``$elemMatch`` and ``$all`` on an array read the array as one attribute: the answers
must be the real SDK's (``growthbook.core.evalCondition``) on both evaluators, from the
flattened context and from the one that derives keys when read; and a check reads a
handful of attributes however many values the group lists (it used to read one per
value: the saved-group cliff in benchmarks/RESULTS.md).
"""

from __future__ import annotations

import copy
import logging

import pytest
from growthbook.core import evalCondition
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.interop import InteropError, growthbook
from tests.fuzz import examples


@pytest.fixture(autouse=True)
def _quiet_sdk():
    logging.getLogger("growthbook").setLevel(logging.CRITICAL)


def _when(condition):
    return {"f": {"defaultValue": False, "rules": [{"condition": condition, "force": True}]}}


WORDS = ["beta", "Beta", "BETA", "us", "US", "ß", "SS", "ss", "İ", "i̇", ""]
scalars = st.one_of(
    st.sampled_from(WORDS),
    st.sampled_from([0, 1, 2, 1.0, 0.5, -0.0, 2**53, 2**53 + 1, 2.0**53]),
    st.booleans(),
)
elements = st.one_of(scalars, st.none(), st.lists(scalars, max_size=2), st.just({"k": 1}))
attribute = st.one_of(st.lists(elements, max_size=5), scalars, st.none())
values = st.lists(scalars, max_size=5)


@st.composite
def conditions(draw):
    op = draw(
        st.sampled_from(
            ["$in", "$nin", "$ini", "$nini", "$inGroup", "$notInGroup", "$elemMatch", "$all"]
        )
    )
    vals = draw(values)
    if op in ("$inGroup", "$notInGroup"):
        return {"a": {op: "g"}}, vals
    if op == "$elemMatch":
        how = draw(st.sampled_from(["$in", "$eq", "both"]))
        if how == "$in":
            return {"a": {"$elemMatch": {"$in": vals}}}, vals
        one = draw(scalars)
        if how == "$eq":
            return {"a": {"$elemMatch": {"$eq": one}}}, vals
        return {"a": {"$elemMatch": {"$eq": one, "$in": vals}}}, vals
    if op == "$all":
        return {"a": {"$all": vals}}, vals
    return {"a": {op: vals}}, vals


@settings(max_examples=examples(400), deadline=None)
@given(case=conditions(), attrs=st.lists(attribute, min_size=1, max_size=4))
def test_membership_on_arrays_agrees_with_the_sdk(make_py_and_c, case, attrs):
    condition, group = case
    groups = {"g": list(group)}
    try:
        snap = growthbook.to_snapshot(_when(copy.deepcopy(condition)), saved_groups=groups)
    except InteropError:
        return  # refused with a reason (tested elsewhere): nothing served to compare
    for make in make_py_and_c:
        engine = make(snap)
        for a in attrs:
            want = evalCondition({"a": copy.deepcopy(a)}, copy.deepcopy(condition), groups)
            assert engine.is_enabled("f", growthbook.context({"a": a})) is want, (condition, a)
            saved = growthbook.MAX_CONTEXT_KEYS
            growthbook.MAX_CONTEXT_KEYS = -1  # every key derived when read
            try:
                lazy = growthbook.context({"a": a})
            finally:
                growthbook.MAX_CONTEXT_KEYS = saved
            assert engine.is_enabled("f", lazy) is want, (condition, a)


class _Reads(dict):
    """A context that counts the attributes an evaluator reads (a mapping that is not an
    exact dict is read through get())."""

    def __init__(self, data):
        super().__init__(data)
        self.reads = []

    def get(self, key, default=None):
        self.reads.append(key)
        return super().get(key, default)


@pytest.mark.parametrize("attrs", [{"id": "u7"}, {"id": ["x", "u7"]}, {"id": "nobody"}])
def test_a_large_saved_group_reads_a_few_attributes(make, attrs):
    ids = [f"u{i}" for i in range(10_000)]
    snap = growthbook.to_snapshot(_when({"id": {"$inGroup": "big"}}), saved_groups={"big": ids})
    engine = make(snap)
    ctx = _Reads(growthbook.context(attrs))
    assert engine.is_enabled("f", ctx) is evalCondition(
        attrs, {"id": {"$inGroup": "big"}}, {"big": ids}
    )
    assert len(set(ctx.reads)) <= 3, ctx.reads  # the id, as a scalar and as an array
    # the flattened context holds a few keys per array, not one per element
    assert len(growthbook.context({"id": ids})) < 100
