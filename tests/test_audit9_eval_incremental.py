"""Ninth audit of the evaluators: the incremental compile against the full one.

* ``compile_incremental`` compiled only the changed flags with a fresh compiler, whose
  count of the nodes segments inline into the snapshot started at zero: the flags it
  reused were not counted. A document the full compile refuses ("the snapshot's
  segments inlined exceed 1,000,000 nodes") went live when its last flag was added to
  a running process (a flags file reloaded, ``Engine.compile(previous=...)``), and was
  refused at the next start instead of being refused with the live flags kept.
* It judged a flag unchanged by comparing it with the flag the live tables were
  compiled from; a document given as Python data holds the caller's variant values as
  they are, so a value changed in place compared equal to itself and the tables' copy
  from before the change went on being served.
"""

from __future__ import annotations

import contextlib
import copy
import pickle

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cfgcore._lower
from cfgcore.compiler import compile_incremental, compile_snapshot
from cfgcore.errors import SnapshotError
from cfgcore.snapshot import snapshot_from_dict
from tests.conftest import IMPLS
from tests.fuzz import examples
from tests.test_audit4_eval_compiler import _segments

PER_FLAG, PER_SNAPSHOT = 1_000, 5_000
RULE = {"when": {"segment": "s2"}, "serve": "on"}


@pytest.fixture
def small_budgets(monkeypatch):
    """The inlining budgets at a size a test reaches quickly (read at each compile)."""
    monkeypatch.setattr(cfgcore._lower, "MAX_INLINED_NODES", PER_FLAG)
    monkeypatch.setattr(cfgcore._lower, "MAX_SNAPSHOT_INLINED_NODES", PER_SNAPSHOT)


def _doc(count: int, rules: int = 3) -> dict:
    flags = {f"f{i}": {"default": "off", "rules": [RULE] * rules} for i in range(count)}
    return {"segments": _segments(2, 12), "flags": flags}


def _largest_that_fits(rules: int = 3) -> int:
    count = 1
    while True:
        try:
            compile_snapshot(snapshot_from_dict(_doc(count + 1, rules)))
        except SnapshotError:
            return count
        count += 1


def _problems(err: pytest.ExceptionInfo) -> list[tuple[str, str]]:
    return [(p.path, p.message) for p in err.value.problems]


def test_a_flag_added_past_the_snapshot_budget_is_refused_as_in_full(small_budgets):
    fits = _largest_that_fits()
    live = compile_snapshot(snapshot_from_dict(_doc(fits)))
    grown = _doc(fits + 1)
    with pytest.raises(SnapshotError) as full:
        compile_snapshot(snapshot_from_dict(copy.deepcopy(grown)))
    assert "the snapshot's segments inlined exceed 5,000 nodes" in str(full.value)
    with pytest.raises(SnapshotError) as incremental:
        compile_incremental(live, snapshot_from_dict(copy.deepcopy(grown)))
    assert _problems(incremental) == _problems(full)


def test_a_flag_grown_past_the_snapshot_budget_is_refused_as_in_full(small_budgets):
    # The first flag grows: the full compile refuses the last one, unchanged.
    fits = _largest_that_fits(rules=2)
    live = compile_snapshot(snapshot_from_dict(_doc(fits, rules=2)))
    grown = _doc(fits, rules=2)
    grown["flags"]["f0"]["rules"] = [RULE] * 3
    with pytest.raises(SnapshotError) as full:
        compile_snapshot(snapshot_from_dict(copy.deepcopy(grown)))
    assert [path for path, _ in _problems(full)] == [f"flags.f{fits - 1}"]
    with pytest.raises(SnapshotError) as incremental:
        compile_incremental(live, snapshot_from_dict(copy.deepcopy(grown)))
    assert _problems(incremental) == _problems(full)


def test_the_engine_keeps_the_live_flags_when_an_added_one_passes_the_budget(make, small_budgets):
    fits = _largest_that_fits()
    engine = make(_doc(fits))
    with pytest.raises(SnapshotError, match="the snapshot's segments inlined exceed"):
        # compiled against the live tables, as a reload of the flag file is
        engine.swap(engine.compile(_doc(fits + 1), previous=engine.snapshot()))
    assert list(engine.snapshot().keys) == [f"f{i}" for i in range(fits)]
    assert engine.is_enabled("f0", {"a": "x"}) is True
    # Within the budget, the incremental compile still reuses the live tables.
    smaller = _doc(fits)
    smaller["flags"]["f0"]["rules"] = [{"when": {"attr": "a", "eq": "y"}, "serve": "on"}]
    live = engine.snapshot().tables
    engine.swap(engine.compile(smaller, previous=engine.snapshot()))
    assert engine.snapshot().tables.nodes[: len(live.nodes)] == live.nodes
    assert engine.is_enabled("f0", {"a": "x"}) is False
    assert engine.is_enabled("f0", {"a": "y"}) is True
    assert engine.is_enabled("f1", {"a": "x"}) is True


def test_a_flags_file_grown_past_the_budget_is_refused_and_the_live_flags_kept(
    tmp_path, small_budgets
):
    import json

    from cfgcore.experiments.dynamic import DynamicConfigurationManager

    fits = _largest_that_fits()
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(_doc(fits)))
    m = DynamicConfigurationManager(str(path), state_dir=tmp_path, log_exposures=False)
    try:
        assert m.is_feature_enabled(f"f{fits - 1}", {"a": "x"}) is True
        path.write_text(json.dumps(_doc(fits + 1)))
        assert m.reload() is False  # refused, as a restart would refuse it
        assert f"f{fits}" not in m.snapshot.flags
        assert m.is_feature_enabled(f"f{fits - 1}", {"a": "x"}) is True
    finally:
        m.close()
    with pytest.raises(SnapshotError, match="the snapshot's segments inlined exceed"):
        DynamicConfigurationManager(str(path), state_dir=tmp_path, log_exposures=False)


def test_tables_pickled_without_the_counts_compile_in_full(small_budgets):
    fits = _largest_that_fits()
    for flags in (fits, 0):  # (no flag: the segments' own count is still unknown)
        live = compile_snapshot(snapshot_from_dict(_doc(flags)))
        load, (state,) = live.__reduce__()
        del state["inlined"], state["segments_inlined"]  # as a release before them pickled
        old = pickle.loads(pickle.dumps(load(state)))
        with pytest.raises(SnapshotError, match="the snapshot's segments inlined exceed"):
            compile_incremental(old, snapshot_from_dict(_doc(fits + 1)))
        again = compile_incremental(old, snapshot_from_dict(_doc(fits)))
        assert again.keys == [f"f{i}" for i in range(fits)] and again.segments_inlined >= 0


# -- a variant value the caller changed in place -------------------------------------


def test_a_variant_value_changed_in_place_is_served_as_a_full_compile_serves_it(make):
    doc = {
        "flags": {
            "f": {"variants": {"a": {"k": 1}, "b": [1, 2]}, "default": "a"},
            "g": {"variants": {"x": {"n": [1]}, "y": 0}, "default": "x"},
        }
    }
    engine = make(doc)
    doc["flags"]["f"]["variants"]["a"]["k"] = 2
    doc["flags"]["g"]["variants"]["x"]["n"].append(2)
    full = make(doc)
    engine.swap(engine.compile(doc, previous=engine.snapshot()))
    assert engine.value("f") == full.value("f") == {"k": 2}
    assert engine.value("g") == full.value("g") == {"n": [1, 2]}
    assert engine.evaluate_all() == full.evaluate_all()


def test_a_snapshot_whose_old_values_changed_is_compiled_against_what_the_tables_serve(make):
    # The previous snapshot's own values changed, the new document a copy of them.
    doc = {"flags": {"f": {"variants": {"a": {"k": 1}, "b": 1.0}, "default": "a"}}}
    engine = make(doc)
    doc["flags"]["f"]["variants"]["a"]["k"] = True  # (1 == True: compared by type too)
    engine.swap(engine.compile(copy.deepcopy(doc), previous=engine.snapshot()))
    assert engine.value("f") == {"k": True} and engine.value("f")["k"] is True


def test_unchanged_flags_still_reuse_their_tables():
    doc = {"flags": {f"f{i}": {"variants": {"a": {"k": i}, "b": [i]}, "default": "a"}
                     for i in range(3)}}  # fmt: skip
    live = compile_snapshot(snapshot_from_dict(doc))
    again = compile_incremental(live, snapshot_from_dict(copy.deepcopy(doc)))
    assert again.garbage == 0 and again.values == live.values
    doc["flags"]["f1"]["variants"]["b"] = [1, 1]
    changed = compile_incremental(live, snapshot_from_dict(doc))
    assert changed.garbage == 1 and changed.values[-1] == [1, 1]


# -- both at once, on random edits ---------------------------------------------------


@contextlib.contextmanager
def _budgets(per_flag: int, per_snapshot: int):
    saved = cfgcore._lower.MAX_INLINED_NODES, cfgcore._lower.MAX_SNAPSHOT_INLINED_NODES
    cfgcore._lower.MAX_INLINED_NODES, cfgcore._lower.MAX_SNAPSHOT_INLINED_NODES = (
        per_flag,
        per_snapshot,
    )
    try:
        yield
    finally:
        cfgcore._lower.MAX_INLINED_NODES, cfgcore._lower.MAX_SNAPSHOT_INLINED_NODES = saved


@st.composite
def _flag(draw):
    rules = [
        {"when": {"segment": draw(st.sampled_from(["s0", "s1", "s2"]))}, "serve": "b"}
        for _ in range(draw(st.integers(0, 3)))
    ]
    values = st.one_of(st.integers(-2, 2), st.booleans(), st.just({"k": [1]}), st.just([0]))
    keys = st.sampled_from(["f0", "f0", "f1", "f2", "added0", "nope"])
    pre = st.builds(
        lambda k, v: {"flag": k, "variant": v}, keys, st.sampled_from(["a", "b", "b", "c"])
    )
    if draw(st.integers(0, 3)) == 0:  # a flag read by a condition
        rules.append({"when": {"prerequisite": draw(pre)}, "serve": "b"})
    return {
        "variants": {"a": draw(values), "b": {"n": draw(values)}},
        "default": "a",
        "rules": rules,
        "prerequisites": draw(st.lists(pre, max_size=1)) if draw(st.integers(0, 3)) == 0 else [],
    }


def _in_place(draw, doc: dict) -> None:
    """Change some variant values of ``doc`` in place (the objects a compile saw)."""
    for key in draw(st.lists(st.sampled_from(sorted(doc["flags"])), max_size=3)):
        value = doc["flags"][key]["variants"]["b"]
        value["n"] = draw(st.sampled_from([0, 1, 1.0, True, "1", [1], {"n": 1}]))


def _outcome(compile_):
    try:
        return compile_()
    except SnapshotError as exc:
        return [(p.path, p.message) for p in exc.problems]


@settings(max_examples=examples(60), deadline=None)
@given(st.lists(_flag(), min_size=1, max_size=6), st.data())
def test_random_edits_compile_incrementally_as_in_full(flags, data):
    doc = {"segments": _segments(2, 6), "flags": {f"f{i}": f for i, f in enumerate(flags)}}
    with _budgets(150, 500):
        live = _outcome(lambda: compile_snapshot(snapshot_from_dict(doc)))
        if isinstance(live, list):
            from hypothesis import event

            event("live refused")
            return
        for i, flag in enumerate(data.draw(st.lists(_flag(), max_size=3))):
            doc["flags"][f"added{i}"] = flag  # new flags at the end
        for key in data.draw(st.lists(st.sampled_from(sorted(doc["flags"])), max_size=2)):
            doc["flags"][key] = data.draw(_flag())  # replaced flags
        _in_place(data.draw, doc)
        full = _outcome(lambda: compile_snapshot(snapshot_from_dict(copy.deepcopy(doc))))
        incremental = _outcome(lambda: compile_incremental(live, snapshot_from_dict(doc)))
    from hypothesis import event

    event("refused" if isinstance(full, list) else "accepted")
    if isinstance(full, list):
        event(" | ".join(sorted({m[:20] for _, m in full})))
        assert incremental == full
        return
    assert not isinstance(incremental, list), incremental
    contexts = [{}, {"a": "x"}, {"a": "y"}]
    for impl in IMPLS.values():
        a, b = impl.CompiledSnapshot(full), impl.CompiledSnapshot(incremental)
        for ctx in contexts:
            got, want = b.evaluate_all(ctx), a.evaluate_all(ctx)
            assert msgspec.msgpack.encode(got) == msgspec.msgpack.encode(want), ctx
