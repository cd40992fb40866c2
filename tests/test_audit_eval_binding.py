"""Audit of context binding: a bound Context reads each attribute the first time a check
needs it, on both evaluators. A dict is copied (later changes are never seen); another
mapping is read as it is at that moment. The reference used to read every attribute
when the context was made, so a mapping that changed between checks gave different
answers on the two evaluators."""

from __future__ import annotations

import types

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.engine import engine_class
from tests.conftest import IMPLS
from tests.fuzz import examples
from tests.mappings import DictMapping
from tests.test_core_differential import ATTRS, contexts, ctx_values, same, snapshots

SNAPSHOT = {
    "flags": {
        "a": {"default": "off", "rules": [{"when": {"attr": "x", "eq": 1}, "serve": "on"}]},
        "b": {"default": "off", "rules": [{"when": {"attr": "y", "eq": 1}, "serve": "on"}]},
        "both": {"default": "off", "prerequisites": ["a"],
                 "rules": [{"when": {"attr": "y", "eq": 1}, "serve": "on"}]},
    }
}  # fmt: skip


Live = DictMapping  # a mapping that is not a dict, over a dict the test changes


@pytest.mark.parametrize("wrap", [types.MappingProxyType, Live])
def test_each_attribute_is_read_when_a_check_first_needs_it(make, wrap):
    engine = make(SNAPSHOT)
    data = {"x": 1, "y": 0}
    ctx = engine.context(wrap(data))
    data["x"] = 0  # before any check: the context reads x now
    assert engine.is_enabled("a", ctx) is False
    data["x"], data["y"] = 1, 1
    assert engine.is_enabled("a", ctx) is False  # x was bound by the first check
    assert engine.is_enabled("b", ctx) is True  # y is read now, for the first time
    data["y"] = 0
    assert engine.evaluate_all(ctx) == {"a": False, "b": True, "both": False}


def test_a_dict_is_copied_so_its_changes_are_never_seen(make):
    engine = make(SNAPSHOT)
    data = {"x": 1, "y": 0}
    ctx = engine.context(data)
    data["y"] = 1
    assert engine.is_enabled("b", ctx) is False
    assert engine.evaluate_all(ctx) == {"a": True, "b": False, "both": False}


# A session over one bound context: change an attribute of the mapping under it, or
# make a check (one flag, or evaluate_all).
steps = st.lists(
    st.one_of(
        st.tuples(st.just("set"), st.sampled_from(ATTRS), ctx_values),
        st.tuples(st.just("del"), st.sampled_from(ATTRS)),
        st.tuples(st.just("check"), st.integers(0, 6), st.sampled_from(["evaluate", "all"])),
    ),
    min_size=1,
    max_size=20,
)


@pytest.mark.skipif("c" not in IMPLS, reason="the compiled extension is not built")
@settings(max_examples=examples(120), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snapshots(), contexts, steps, st.sampled_from([types.MappingProxyType, Live]))
def test_both_evaluators_read_a_changing_mapping_alike(snapshot, start, session, wrap):
    engines = [engine_class(IMPLS[k]).from_snapshot(snapshot) for k in ("c", "py")]
    keys = [*snapshot["flags"], "missing"]
    data = [dict(start), dict(start)]
    bound = [e.context(wrap(d)) for e, d in zip(engines, data, strict=True)]
    for step in session:
        if step[0] == "set":
            for d in data:
                d[step[1]] = step[2]
        elif step[0] == "del":
            for d in data:
                d.pop(step[1], None)
        elif step[2] == "all":
            got = [e.evaluate_all(b) for e, b in zip(engines, bound, strict=True)]
            assert list(got[0]) == list(got[1])
            assert all(same(got[0][k], got[1][k]) for k in got[0]), (got, step)
        else:
            key = keys[step[1] % len(keys)]
            got = [e.evaluate(key, b) for e, b in zip(engines, bound, strict=True)]
            assert got[0] == got[1], (key, step)
