"""Seventh audit of the compiler: an incremental compile must answer as a full compile.

``compile_incremental`` reused every unchanged flag's tables when the segments compared
equal with ``==``, which calls ``eq: 1`` and ``eq: true`` (or ``in: [0]`` and
``in: [false]``) the same segment. A flag file that changed a segment's constant from
the number to the boolean (or back) kept serving the old targeting from the reused
tables until some other change forced a full compile; flags are compared type-strictly
for this reason already, segments now are too.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.compiler import compile_incremental, compile_snapshot
from cfgcore.engine import engine_class
from cfgcore.snapshot import snapshot_from_dict
from tests.conftest import IMPLS
from tests.fuzz import examples

# Python calls each pair equal; the evaluators do not (a bool never equals a number).
TWINS = [(1, True), (True, 1), (0, False), (False, 0), (1.0, True), ([1, 2], [True, 2])]


def _document(constant) -> dict:
    op = "in" if isinstance(constant, list) else "eq"
    return {
        "segments": {"s": {"attr": "x", op: constant}},
        "flags": {"f": {"default": "off", "rules": [{"when": {"segment": "s"}, "serve": "on"}]}},
    }


def _answers(impl, tables) -> list:
    engine = engine_class(impl)()
    engine.swap(impl.CompiledSnapshot(tables))
    return [engine.is_enabled("f", {"x": x}) for x in (1, True, 0, False, 2, 1.0)]


@pytest.mark.parametrize(("before", "after"), TWINS)
def test_a_segment_constant_changed_to_its_python_twin_is_recompiled(before, after):
    previous = compile_snapshot(snapshot_from_dict(_document(before)))
    incremental = compile_incremental(previous, snapshot_from_dict(_document(after)))
    full = compile_snapshot(snapshot_from_dict(_document(after)))
    for impl in IMPLS.values():
        assert _answers(impl, incremental) == _answers(impl, full)
    # and the change is seen: the value the new constant names now matches
    x = after[0] if isinstance(after, list) else after
    engine = engine_class(IMPLS["py"])()
    engine.swap(IMPLS["py"].CompiledSnapshot(incremental))
    assert engine.is_enabled("f", {"x": x}) is True


def test_an_unchanged_segment_still_reuses_the_tables():
    """The fix keeps the incremental path: equal segments of equal types reuse flags."""
    doc = _document(1)
    doc["flags"]["g"] = {"default": "off"}
    previous = compile_snapshot(snapshot_from_dict(doc))
    changed = json.loads(json.dumps(doc))
    changed["flags"]["g"] = {"default": "on"}
    incremental = compile_incremental(previous, snapshot_from_dict(changed))
    assert incremental.garbage == previous.garbage + 1  # only g was compiled again


def test_a_live_flag_file_edited_from_number_to_boolean_serves_the_edit(tmp_path):
    """End to end: the flag set a manager serves recompiles a changed file incrementally."""
    from cfgcore.runtime.flags import LiveFlags
    from cfgcore.runtime.flagstore import FileFlagStore

    path = tmp_path / "flags.json"
    path.write_text(json.dumps(_document(1)))
    live = LiveFlags(FileFlagStore(path))
    try:
        assert live.engine.is_enabled("f", {"x": 1}) is True
        path.write_text(json.dumps(_document(True)))
        live.refresh("reload")
        assert live.engine.is_enabled("f", {"x": True}) is True
        assert live.engine.is_enabled("f", {"x": 1}) is False
    finally:
        live.close()


scalars = st.sampled_from([0, 1, -1, 1.0, 0.0, -0.0, True, False, "1", "true"])


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(scalars, min_size=1, max_size=3),
    st.lists(scalars, min_size=1, max_size=3),
    st.sampled_from(["eq", "ne", "in", "not_in"]),
)
def test_incremental_answers_as_a_full_compile_whatever_the_segment_constants(a, b, op):
    def doc(values):
        value = values if op in ("in", "not_in") else values[0]
        return {
            "segments": {"s": {"any": [{"attr": "x", op: value}, {"attr": "y", "exists": True}]}},
            "flags": {
                "f": {"default": "off", "rules": [{"when": {"segment": "s"}, "serve": "on"}]},
                "g": {"default": "on"},
            },
        }

    previous = compile_snapshot(snapshot_from_dict(doc(a)))
    incremental = compile_incremental(previous, snapshot_from_dict(doc(b)))
    full = compile_snapshot(snapshot_from_dict(doc(b)))
    contexts = [{"x": x} for x in (0, 1, -1, 1.0, -0.0, True, False, "1", "true", None)]

    def answers(impl, tables):
        engine = engine_class(impl)()
        engine.swap(impl.CompiledSnapshot(tables))
        return [engine.evaluate_all(ctx) for ctx in contexts]

    for impl in IMPLS.values():
        assert answers(impl, incremental) == answers(impl, full)
