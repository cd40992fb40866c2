"""Incremental recompilation evaluates exactly like a full compile."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.compiler import compile_incremental, compile_snapshot
from cfgcore.engine import engine_class
from cfgcore.errors import SnapshotError
from cfgcore.snapshot import snapshot_from_dict
from tests.conftest import IMPLS
from tests.fuzz import examples
from tests.test_core_differential import GRID, snapshots


def _evaluations(impl, tables, keys, contexts):
    engine = engine_class(impl)()
    engine.swap(impl.CompiledSnapshot(tables))
    out = []
    for ctx in contexts:
        out.append([engine.evaluate(k, ctx) for k in keys])
        out.append(engine.evaluate_all(engine.context(ctx)))
    return out


@settings(max_examples=examples(120), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snapshots(), snapshots(), st.data())
def test_incremental_equals_full_compile(first, donor, data):
    """Replace some flags of `first` by flags drawn for `donor` and add new ones; the
    incremental result must answer every evaluation as a full compile does."""
    before = snapshot_from_dict(first)
    flags = dict(first["flags"])
    for key in data.draw(st.lists(st.sampled_from(sorted(flags)), unique=True), label="replaced"):
        candidate = donor["flags"].get(key)
        if candidate is not None:
            flags[key] = candidate
    if data.draw(st.booleans(), label="add"):
        flags["added"] = {
            "default": "off",
            "rules": [{"rollout": 40, "serve": "on"}],
            "prerequisites": ["f0"],
        }
    after_dict = {"segments": first["segments"], "flags": flags}
    try:
        full = compile_snapshot(snapshot_from_dict(after_dict))
    except SnapshotError:
        with pytest.raises(SnapshotError):
            compile_incremental(compile_snapshot(before), snapshot_from_dict(after_dict))
        return
    # the segments object is shared, as a manager's derived snapshot shares it
    after = snapshot_from_dict(after_dict)
    after = type(after)(flags=after.flags, segments=before.segments)
    incremental = compile_incremental(compile_snapshot(before), after)
    keys = [*after.flags, "missing"]
    contexts = GRID[:40]
    for impl in IMPLS.values():
        assert _evaluations(impl, incremental, keys, contexts) == _evaluations(
            impl, full, keys, contexts
        )


def test_only_changed_flags_are_recompiled():
    flags = {
        f"f{i}": {
            "default": "off",
            "rules": [{"when": {"attr": "seg", "eq": "premium"}, "serve": "on"}],
        }
        for i in range(50)
    }
    before = compile_snapshot(snapshot_from_dict({"flags": flags}))
    flags["f7"] = {"default": "off", "rules": [{"rollout": 30, "serve": "on"}]}  # new slots
    after = compile_incremental(before, snapshot_from_dict({"flags": flags}))
    assert after.garbage == 1 and len(after.keys) == 50
    assert before.garbage == 0 and len(before.rules) < len(after.rules)  # previous untouched
    for impl in IMPLS.values():
        engine = engine_class(impl)()
        engine.swap(impl.CompiledSnapshot(after))
        users = [{"user_id": f"u{i}", "seg": "premium"} for i in range(2000)]
        share = sum(engine.is_enabled("f7", u) for u in users) / len(users)
        assert 0.25 < share < 0.35
        assert engine.is_enabled("f8", {"seg": "premium"}) and not engine.is_enabled(
            "f8", {"seg": "free"}
        )


def test_structural_changes_fall_back_to_full_compile():
    base = {
        "segments": {"p": {"attr": "seg", "eq": "premium"}},
        "flags": {"a": {"default": "on"}, "b": {"default": "off"}},
    }
    before = compile_snapshot(snapshot_from_dict(base))
    removed = compile_incremental(
        before,
        snapshot_from_dict({"flags": {"a": {"default": "on"}}, "segments": base["segments"]}),
    )
    assert removed.keys == ["a"] and removed.garbage == 0
    reordered = compile_incremental(
        before,
        snapshot_from_dict(
            {
                "flags": {"b": {"default": "off"}, "a": {"default": "on"}},
                "segments": base["segments"],
            }
        ),
    )
    assert reordered.keys == ["b", "a"] and reordered.garbage == 0
    segs = compile_incremental(
        before,
        snapshot_from_dict(
            {"segments": {"p": {"attr": "seg", "eq": "free"}}, "flags": base["flags"]}
        ),
    )
    assert segs.garbage == 0


def test_garbage_is_bounded_by_periodic_full_compiles():
    flags = {f"f{i}": {"default": "off"} for i in range(10)}
    tables = compile_snapshot(snapshot_from_dict({"flags": flags}))
    most = 0
    for step in range(400):
        flags = dict(flags)
        flags[f"f{step % 10}"] = {
            "default": "off",
            "rules": [{"rollout": step % 100, "serve": "on"}],
        }
        tables = compile_incremental(tables, snapshot_from_dict({"flags": flags}))
        most = max(most, tables.garbage)
    assert most <= 65


def test_prerequisite_cycle_introduced_by_a_change_is_reported():
    flags = {"a": {"default": "on", "prerequisites": ["b"]}, "b": {"default": "on"}}
    before = compile_snapshot(snapshot_from_dict({"flags": flags}))
    with pytest.raises(SnapshotError, match="prerequisite cycle"):
        compile_incremental(
            before,
            snapshot_from_dict(
                {"flags": {"a": flags["a"], "b": {"default": "on", "prerequisites": ["a"]}}}
            ),
        )


@pytest.mark.parametrize(("old", "new"), [(1, True), (True, 1), (1, 1.0), ({"x": 1}, {"x": True})])
def test_values_equal_in_python_but_of_another_type_are_a_change(old, new):
    """1 == 1.0 == True in Python, but a flag serving True must not keep serving 1."""
    before = compile_snapshot(
        snapshot_from_dict({"flags": {"f": {"variants": {"v": old}, "default": "v"}}})
    )
    after = compile_incremental(
        before, snapshot_from_dict({"flags": {"f": {"variants": {"v": new}, "default": "v"}}})
    )
    for impl in IMPLS.values():
        engine = engine_class(impl)()
        engine.swap(impl.CompiledSnapshot(after))
        served = engine.value("f")
        assert served == new and type(served) is type(new if not isinstance(new, dict) else served)
        if isinstance(new, dict):
            assert type(served["x"]) is type(new["x"])


def test_dependents_are_redone_when_a_prerequisite_changes():
    """A dependent binds its prerequisite's attributes from a dict context: when the
    prerequisite starts reading a new attribute, the dependent's slot list must grow."""
    flags = {
        "base": {
            "default": "off",
            "rules": [{"when": {"attr": "seg", "eq": "premium"}, "serve": "on"}],
        },
        "mid": {"default": "on", "prerequisites": ["base"]},
        "top": {"default": "on", "prerequisites": ["mid"]},
        "other": {"default": "on"},
    }
    before = compile_snapshot(snapshot_from_dict({"flags": flags}))
    flags["base"] = {
        "default": "off",
        "rules": [{"when": {"attr": "country", "in": ["SE", "NO"]}, "serve": "on"}],
    }
    after = compile_incremental(before, snapshot_from_dict({"flags": flags}))
    for impl in IMPLS.values():
        engine = engine_class(impl)()
        engine.swap(impl.CompiledSnapshot(after))
        assert engine.is_enabled("top", {"country": "SE"}) is True
        assert engine.is_enabled("top", {"seg": "premium"}) is False
        assert engine.is_enabled("other", {}) is True


def test_a_change_that_breaks_a_dependent_is_reported():
    flags = {
        "algo": {"variants": {"a": 1, "b": 2}, "default": "a"},
        "uses_b": {"default": "on", "prerequisites": [{"flag": "algo", "variant": "b"}]},
    }
    before = compile_snapshot(snapshot_from_dict({"flags": flags}))
    flags["algo"] = {"variants": {"a": 1, "c": 3}, "default": "a"}
    with pytest.raises(SnapshotError, match=r"flags.uses_b.prerequisites\[0\].variant"):
        compile_incremental(before, snapshot_from_dict({"flags": flags}))
