"""evaluate_all's result: a fresh dict the caller owns, holding real references.

The compiled evaluator builds the result by copying a template dict and, on the
CPython versions whose dict layout it knows, writing the varying flags' values into
the copy's value slots without PyDict_SetItem. These tests pin what that must keep:
the same answers as the other path and the reference evaluator, a result independent
of the template and of other results, balanced reference counts, and a dict the
garbage collector tracks when it holds containers.
"""

from __future__ import annotations

import gc
import sys
import sysconfig

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore._compat import implementations
from cfgcore.engine import engine_class
from tests.fuzz import examples
from tests.texts import any_text

IMPLS = implementations()

SNAPSHOT = {
    "flags": {
        "const_on": {"default": "on"},
        "off": {"enabled": False, "default": "on"},
        "rule": {
            "default": "off",
            "rules": [{"when": {"attr": "seg", "eq": "premium"}, "serve": "on"}],
        },
        "rollout": {"default": "off", "rules": [{"rollout": 50, "serve": "on"}]},
        "split": {
            "variants": {"a": "A", "b": "B", "c": "C"},
            "default": "a",
            "rules": [{"split": {"a": 50, "b": 30, "c": 20}}],
        },
        "obj": {
            "variants": {"small": {"limit": 1, "tags": ["x"]}, "big": {"limit": 9, "tags": []}},
            "default": "small",
            "rules": [{"when": {"attr": "seg", "eq": "premium"}, "serve": "big"}],
        },
        "const_obj": {"variants": {"v": [1, 2, 3]}, "default": "v"},
    }
}

GIL_CPYTHON_311_314 = (
    sys.implementation.name == "cpython"
    and (3, 11) <= sys.version_info[:2] <= (3, 14)
    and not sysconfig.get_config_var("Py_GIL_DISABLED")
)


def _engines():
    return {name: engine_class(mod).from_snapshot(SNAPSHOT) for name, mod in IMPLS.items()}


def _c_engine():
    if "c" not in IMPLS:
        pytest.skip("the compiled extension cfgcore._eval is not built here")
    return engine_class(IMPLS["c"]).from_snapshot(SNAPSHOT)


def test_direct_writes_are_live_where_the_layout_is_known():
    # The fast path must not silently fall back where it should run (a template built
    # with a general-kind key table once made every copy take PyDict_SetItem).
    engine = _c_engine()
    snap = engine.snapshot()
    engine.evaluate_all({"seg": "premium"})
    assert snap._all_direct is GIL_CPYTHON_311_314


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "setitem"])
def test_both_paths_agree_with_the_reference(direct):
    engine = _c_engine()
    reference = engine_class(IMPLS["py"]).from_snapshot(SNAPSHOT)
    engine.evaluate_all()  # builds the template
    engine.snapshot()._all_direct = direct and GIL_CPYTHON_311_314
    for i in range(300):
        attrs = {"user_id": f"user-{i}", "seg": "premium" if i % 3 else "free"}
        got = engine.evaluate_all(attrs)
        assert got == reference.evaluate_all(attrs)
        assert list(got) == list(SNAPSHOT["flags"])  # flag order, as the reference
        assert got == engine.evaluate_all(engine.context(attrs))


@pytest.mark.parametrize("impl_name", sorted(IMPLS))
def test_result_is_a_fresh_dict_the_caller_owns(impl_name):
    engine = engine_class(IMPLS[impl_name]).from_snapshot(SNAPSHOT)
    ctx = {"user_id": "u-1", "seg": "premium"}
    first = engine.evaluate_all(ctx)
    expected = dict(first)
    first["rule"] = "mutated"
    del first["split"]
    first["new"] = 1
    second = engine.evaluate_all(ctx)
    assert second == expected and second is not first
    second.clear()
    free = engine.evaluate_all({"user_id": "u-1", "seg": "free"})
    assert free["rule"] is False and free["obj"]["limit"] == 1
    assert engine.evaluate_all(ctx) == expected


@pytest.mark.parametrize("impl_name", sorted(IMPLS))
def test_reference_counts_balance(impl_name):
    engine = engine_class(IMPLS[impl_name]).from_snapshot(SNAPSHOT)
    ctx = {"user_id": "u-1", "seg": "premium"}
    big = engine.evaluate_all(ctx)["obj"]  # a varying flag's value
    const = engine.evaluate_all(ctx)["const_obj"]
    gc.collect()
    before = sys.getrefcount(big), sys.getrefcount(const)
    held = [engine.evaluate_all(ctx) for _ in range(100)]
    assert all(r["obj"] is big for r in held)
    assert sys.getrefcount(big) == before[0] + 100
    assert sys.getrefcount(const) == before[1] + 100
    del held
    nones = sys.getrefcount(None)  # the template's placeholder for a varying flag
    for _ in range(10_000):
        engine.evaluate_all(ctx)
        engine.evaluate_all({"seg": "free"})  # the other value replaces the placeholder
    assert (sys.getrefcount(big), sys.getrefcount(const)) == before
    # 5 varying flags x 20,000 results: a placeholder reference left behind per flag
    # would show as 100,000 (on 3.12+ None is immortal and its count never moves)
    assert abs(sys.getrefcount(None) - nones) < 5_000


@pytest.mark.parametrize("impl_name", sorted(IMPLS))
def test_result_holding_containers_is_tracked(impl_name):
    # A dict the collector does not track while it holds a container would hide the
    # container's references from gc (gc.get_referrers, cycle collection through it).
    only_atomic = {k: v for k, v in SNAPSHOT["flags"].items() if k not in ("obj", "const_obj")}
    obj_only = dict(only_atomic, obj=SNAPSHOT["flags"]["obj"])
    engine = engine_class(IMPLS[impl_name]).from_snapshot({"flags": obj_only})
    result = engine.evaluate_all({"seg": "premium"})
    assert result["obj"]["limit"] == 9
    assert gc.is_tracked(result)
    assert result in gc.get_referrers(result["obj"])


@settings(max_examples=examples(150), deadline=None)
@given(
    attrs=st.dictionaries(
        st.sampled_from(["user_id", "seg", "other"]),
        st.one_of(any_text(max_size=8), st.integers(), st.none(), st.floats(allow_nan=True)),
        max_size=3,
    ),
    direct=st.booleans(),
)
def test_paths_agree_on_any_context(attrs, direct):
    engines = _engines()
    if "c" in engines:
        engines["c"].evaluate_all()
        engines["c"].snapshot()._all_direct = direct and GIL_CPYTHON_311_314
    answers = [e.evaluate_all(attrs) for e in engines.values()]
    assert all(a == answers[0] for a in answers)
    assert len(answers[0]) == len(SNAPSHOT["flags"])
