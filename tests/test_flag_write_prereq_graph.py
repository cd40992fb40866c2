"""The prerequisite graph kept in the compiled tables: an incremental compile of a
one-flag change walks that flag and what reaches it or it reaches, not every flag's
records, and answers (and refuses) as a full compile does after any chain of changes."""

from __future__ import annotations

import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore import _prereq
from cfgcore.compiler import F_SLOTS_COUNT, F_SLOTS_START, FW, compile_incremental, compile_snapshot
from cfgcore.engine import engine_class
from cfgcore.errors import SnapshotError
from cfgcore.snapshot import snapshot_from_dict
from tests.conftest import IMPLS
from tests.fuzz import examples


def _document(n: int) -> dict:
    flags = {
        f"f{i}": {"default": "off", "rules": [{"rollout": 25, "serve": "on"}]} for i in range(n)
    }
    flags["f1"]["prerequisites"] = ["f0"]
    flags["f2"]["rules"] = [{"when": {"prerequisite": "f1"}, "serve": "on"}]
    return flags


_GRAPH_STEP = _prereq.PrerequisiteGraph.prerequisites


def _calls_in_graph_step(n: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """Python and C calls the prerequisite step of an incremental compile makes when one
    flag of ``n``, read by no other and reading none, changes its rollout."""
    flags = _document(n)
    before = compile_snapshot(snapshot_from_dict({"flags": flags}))
    flags[f"f{n - 3}"] = {"default": "off", "rules": [{"rollout": 10, "serve": "on"}]}
    after = snapshot_from_dict({"flags": flags})
    counted = [0]
    original = _GRAPH_STEP

    def count(_frame: object, event: str, _arg: object) -> None:
        if event in ("call", "c_call"):
            counted[0] += 1

    def profiled(self: _prereq.PrerequisiteGraph, changed: list[int] | None = None) -> None:
        sys.setprofile(count)
        try:
            original(self, changed)
        finally:
            sys.setprofile(None)

    monkeypatch.setattr(_prereq.PrerequisiteGraph, "prerequisites", profiled)
    tables = compile_incremental(before, after)
    assert tables.garbage == 1  # an incremental compile, of the one flag
    return counted[0]


def test_a_one_flag_change_does_not_walk_every_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    """The graph step costs the same at 2,000 flags as at 200 (before, it read every
    flag's prerequisite records and condition tests: 1.4 ms at 1,000 flags)."""
    small = _calls_in_graph_step(200, monkeypatch)
    large = _calls_in_graph_step(2000, monkeypatch)
    assert large == small, (small, large)


def test_a_change_to_a_read_flag_still_redoes_its_readers() -> None:
    """f0 read by f1 (a prerequisite) and f1 by f2 (a condition): f0 starting to read an
    attribute grows both readers' slot lists, and f0 becoming non-boolean refuses them."""
    flags = _document(6)
    before = compile_snapshot(snapshot_from_dict({"flags": flags}))
    flags["f0"] = {
        "default": "off",
        "rules": [{"when": {"attr": "tier", "eq": "gold"}, "serve": "on"}],
    }
    after = compile_incremental(before, snapshot_from_dict({"flags": flags}))
    assert after.garbage == 1
    for impl in IMPLS.values():
        engine = engine_class(impl)()
        engine.swap(impl.CompiledSnapshot(after))
        assert engine.is_enabled("f1", {"tier": "silver", "user_id": "u"}) is False
        assert engine.is_enabled("f0", {"tier": "gold", "user_id": "u"}) is True
    slot = after.slots.index("tier")
    for fi in (0, 1, 2):
        start, count = after.flags[fi * FW + F_SLOTS_START], after.flags[fi * FW + F_SLOTS_COUNT]
        assert slot in after.ipool[start : start + count]
    flags["f0"] = {"variants": {"a": 1, "b": 2}, "default": "a"}
    with pytest.raises(SnapshotError, match=r"flags\.f1\.prerequisites\[0\]"):
        compile_incremental(after, snapshot_from_dict({"flags": flags}))


NAMES = [f"g{i}" for i in range(6)]
VARIANTS = {"g1", "g3", "g5"}  # flags of variants x and y; the others boolean, mostly


@st.composite
def _flag(draw: st.DrawFn, key: str) -> dict:
    """A flag reading earlier flags mostly (a prerequisite, boolean or of a variant as
    the target's kind asks, or a condition), and now and then any flag (itself or a
    later one: cycles), an unknown one, or a target of the other kind; its own kind
    flips now and then (its readers are then refused)."""
    variants = (key in VARIANTS) != (draw(st.integers(0, 19)) == 0)
    flag: dict = {"default": "x" if variants else "on"}
    if variants:
        flag["variants"] = {"x": 1, "y": 2}
    earlier = NAMES[: NAMES.index(key)]
    anything = [*NAMES, "unknown"]

    def target() -> str | None:
        roll = draw(st.integers(0, 19))
        if roll == 0:
            return draw(st.sampled_from(anything))
        return draw(st.sampled_from(earlier)) if earlier and roll > 6 else None

    def asks(name: str | None) -> str | dict | None:
        if name is None:
            return None
        wrong = draw(st.integers(0, 19)) == 0
        if (name in VARIANTS) != wrong:
            return {"flag": name, "variant": draw(st.sampled_from(["x", "y"]))}
        return name

    pres = [asks(target()) for _ in range(draw(st.integers(0, 2)))]
    if any(pres):
        flag["prerequisites"] = [pre for pre in pres if pre]
    rules = []
    test = asks(target())
    if test:
        rules.append({"when": {"prerequisite": test}, "serve": flag["default"]})
    if draw(st.booleans()):
        attr = draw(st.sampled_from(["a", "b", "c"]))
        rules.append({"when": {"attr": attr, "eq": 1}, "serve": flag["default"]})
    flag["rules"] = rules
    return flag


@st.composite
def _changes(draw: st.DrawFn) -> tuple[dict, list[dict]]:
    first = {key: draw(_flag(key)) for key in NAMES[:4]}
    steps = []
    current = dict(first)
    for _ in range(draw(st.integers(1, 5))):
        current = dict(current)
        for key in draw(st.lists(st.sampled_from(sorted(current)), max_size=2, unique=True)):
            current[key] = draw(_flag(key))
        if len(current) < len(NAMES) and draw(st.booleans()):
            key = NAMES[len(current)]
            current[key] = draw(_flag(key))
        steps.append(current)
    return first, steps


def _outcome(flags: dict, previous=None):
    try:
        snap = snapshot_from_dict({"flags": flags})
        if previous is None:
            return compile_snapshot(snap), None
        return compile_incremental(previous, snap), None
    except SnapshotError as exc:
        return None, exc.problems


def _judged(problems) -> tuple[bool, set]:
    """Whether a cycle was refused, and every other problem: a cycle is named at the edge
    that closes it, which depends on where its walk started (any one edge of it)."""
    cycle = any("prerequisite cycle" in p.message for p in problems)
    return cycle, {(p.path, p.message) for p in problems if "prerequisite cycle" not in p.message}


def _answers(tables, keys):
    contexts = [
        {"user_id": "u1"},
        {"user_id": "u2", "a": 1},
        {"user_id": "u3", "a": 1, "b": 1, "c": 1},
    ]
    out = []
    for impl in IMPLS.values():
        engine = engine_class(impl)()
        engine.swap(impl.CompiledSnapshot(tables))
        for ctx in contexts:
            out.append([engine.evaluate(k, ctx) for k in keys])
    return out


def _slot_sets(tables):
    f = tables.flags
    return [
        {
            tables.slots[s]
            for s in tables.ipool[
                f[i * FW + F_SLOTS_START] : f[i * FW + F_SLOTS_START] + f[i * FW + F_SLOTS_COUNT]
            ]
        }
        for i in range(len(tables.keys))
    ]


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_changes())
def test_chained_incremental_compiles_agree_with_full_compiles(case) -> None:
    """Each step compiled incrementally from the last tables that compiled: the same
    refusals (cycles, unknown flags and variants, non-boolean prerequisites) and, when it
    compiles, the same answers, graph, slot lists and walks as a full compile."""
    first, steps = case
    previous, _ = _outcome(first)
    for flags in steps:
        full, full_problems = _outcome(flags)
        if previous is None:
            previous = full
            continue
        incremental, problems = _outcome(flags, previous)
        if full is None:
            assert problems is not None and _judged(problems) == _judged(full_problems)
            continue
        assert problems is None, problems
        assert incremental.deps == full.deps
        assert incremental.readers == full.readers
        assert incremental.walks == full.walks
        assert _slot_sets(incremental) == _slot_sets(full)
        assert _answers(incremental, list(flags)) == _answers(full, list(flags))
        previous = incremental
