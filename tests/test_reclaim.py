"""What a reload leaves behind is freed a piece at a time, and only what nobody holds.

cfgcore._reclaim takes apart the older compiled snapshot after a swap (on its own
thread) and the compiler's working state (on the compiling thread), so that no single
C call frees millions of objects while other threads wait for the GIL. The danger of
taking things apart is emptying a container somebody still reads: these tests hold
parts of what is retired and check that every held part is left exactly as it was,
and that what is freed is freed.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import weakref

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore import _reclaim
from cfgcore.compiler import Tables, _copied, compile_incremental, compile_snapshot
from cfgcore.engine import engine_class
from cfgcore.errors import SnapshotError
from cfgcore.runtime.flags import LiveFlags
from cfgcore.runtime.flagstore import open_store
from cfgcore.snapshot import decode_snapshot
from tests.fuzz import examples

needs_exact_counts = pytest.mark.skipif(
    not _reclaim._EXACT_COUNTS,
    reason="free-threaded build: objects are dropped whole, never taken apart",
)


def _doc(n: int, rollout: int = 25) -> dict:
    flags = {
        f"f{i}": {
            "rules": [
                {
                    "when": {"attr": "region", "in": ["EU", "US"]},
                    "rollout": rollout,
                    "serve": "on",
                }
            ],
            "variants": {"on": {"shelf": [i, "recs"]}, "off": False},
            "default": "off",
        }
        for i in range(n)
    }
    return {"flags": flags}


class _Holder:
    """An object with a __dict__, as the compiler's working state is."""


@needs_exact_counts
def test_a_structure_nobody_else_holds_is_freed():
    obj = _Holder()
    obj.big = list(range(100_000))
    obj.index = {i: (i, str(i)) for i in range(5_000)}
    obj.nested = [[1, 2], {"a": [3]}]
    alive = weakref.ref(obj)
    box = [obj]
    del obj
    _reclaim.dismantle(box)
    assert alive() is None
    assert box == []


@needs_exact_counts
def test_dismantle_leaves_every_part_someone_holds_as_it_was():
    obj = _Holder()
    kept_list = list(range(50_000))
    kept_dict = {i: [i] for i in range(3_000)}
    obj.a = kept_list
    obj.b = kept_dict
    obj.c = list(range(10))
    box = [obj]
    del obj
    _reclaim.dismantle(box)
    assert kept_list == list(range(50_000))
    assert kept_dict == {i: [i] for i in range(3_000)}


@needs_exact_counts
def test_nothing_is_taken_apart_while_its_owner_still_holds_it():
    obj = _Holder()
    obj.items = list(range(1_000))
    _reclaim.dismantle([obj])  # the test still holds obj
    assert obj.items == list(range(1_000))


_nested = st.recursive(
    st.integers() | st.text(max_size=3) | st.booleans(),
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=3), inner, max_size=6)
    ),
    max_leaves=40,
)


def _containers(value, out):
    if isinstance(value, (list, dict)):
        out.append(value)
        for item in value.values() if isinstance(value, dict) else value:
            _containers(item, out)
    return out


@needs_exact_counts
@settings(max_examples=examples(200), deadline=None)
@given(tree=_nested, picks=st.lists(st.integers(min_value=0, max_value=1_000), max_size=5))
def test_held_parts_of_a_retired_tree_are_never_changed(tree, picks):
    obj = _Holder()
    obj.tree = tree
    obj.more = [tree, {"x": tree}] if isinstance(tree, (list, dict)) else [tree]
    found = _containers(tree, [])
    held = [found[p % len(found)] for p in picks] if found else []
    expected = [json.dumps(h, sort_keys=True) for h in held]
    del tree, found
    box = [obj]
    del obj
    _reclaim.dismantle(box)
    assert [json.dumps(h, sort_keys=True) for h in held] == expected


@needs_exact_counts
def test_a_retired_compiled_snapshot_is_freed_off_the_thread(impl):
    cls = engine_class(impl)
    engine = cls.from_snapshot(_doc(300))
    old = engine.swap(_doc(300, rollout=40))
    gone = weakref.ref(old)
    tables = old.tables
    nodes = tables.nodes
    del tables
    before = dict(_reclaim.stats)
    _reclaim.retire(old)
    del old
    assert _reclaim.drain()
    assert gone() is None
    assert _reclaim.stats["taken_apart"] > before["taken_apart"]
    # The tables' node list was held here: their Tables object was taken apart, the
    # list itself was not (it still holds every node the compile wrote).
    assert len(nodes) > 0 and len(nodes) % 6 == 0
    assert engine.is_enabled("f1", {"region": "EU", "user_id": "u"}) in (True, False)


@needs_exact_counts
def test_a_snapshot_a_request_pinned_is_dropped_whole_and_keeps_answering(impl, monkeypatch):
    monkeypatch.setattr(_reclaim, "PATIENCE", 0.2)
    cls = engine_class(impl)
    engine = cls.from_snapshot(_doc(200))
    pinned = engine.snapshot()  # a request in flight holds the snapshot it started on
    users = [f"user-{i}" for i in range(200)]
    answers = [pinned.is_enabled("f7", {"region": "EU", "user_id": u}) for u in users]
    source = pinned.tables.source
    flags_before = dict(source.flags)
    before = _reclaim.stats["dropped_shared"]
    _reclaim.retire(engine.swap(_doc(200, rollout=90)))
    assert _reclaim.drain()
    assert _reclaim.stats["dropped_shared"] > before
    assert [pinned.is_enabled("f7", {"region": "EU", "user_id": u}) for u in users] == answers
    assert dict(pinned.tables.source.flags) == flags_before
    assert len(pinned.tables.nodes) > 0


@needs_exact_counts
def test_a_hot_reload_frees_the_older_snapshot_and_serves_the_new_one(tmp_path):
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(_doc(500, rollout=0)))
    live = LiveFlags(open_store(str(path)))
    try:
        old = weakref.ref(live.engine.snapshot())
        ctx = {"region": "EU", "user_id": "listener-1"}
        assert live.engine.variant("f3", ctx) == "off"
        path.write_text(json.dumps(_doc(500, rollout=100)))
        assert live.refresh()
        assert _reclaim.drain()
        gc.collect()
        assert old() is None
        assert live.engine.variant("f3", ctx) == "on"
        assert live.source.flags["f3"].rules[0].rollout == 100
    finally:
        live.close()


def test_compiles_free_their_working_state_and_keep_their_tables(impl):
    snap = decode_snapshot(json.dumps(_doc(400)).encode(), "json")
    full = compile_snapshot(snap)
    assert isinstance(full, Tables) and len(full.keys) == 400 and full.nodes
    nodes = list(full.nodes)
    changed = decode_snapshot(json.dumps(_doc(400, rollout=60)).encode(), "json")
    inc = compile_incremental(full, changed)
    # The incremental compile's tables answer as a compile from scratch does, and the
    # earlier tables, which it copied, are untouched.
    a, b = impl.CompiledSnapshot(inc), impl.CompiledSnapshot(compile_snapshot(changed))
    for i in range(0, 400, 7):
        for user in ("ana", "bo", "cy", "dee", "eli"):
            ctx = {"region": "EU", "user_id": user}
            assert a.variant(f"f{i}", ctx) == b.variant(f"f{i}", ctx)
    assert full.nodes == nodes
    assert impl.CompiledSnapshot(full).variant("f5", {"region": "US", "user_id": "x"})


@settings(max_examples=examples(200), deadline=None)
@given(items=st.lists(st.integers(), max_size=300), chunk=st.integers(min_value=1, max_value=40))
def test_a_chunked_copy_is_a_copy(items, chunk):
    out = _copied(items, chunk)
    assert out == items and out is not items
    out.append(0)
    assert len(items) == len(out) - 1


def test_a_key_repeated_past_the_first_chunk_of_a_large_object_is_refused():
    flags = ",".join(f'"f{i}": {{"default": "off"}}' for i in range(5_000))
    data = '{"flags": {' + flags + ', "f4999": {"default": "on"}}}'
    with pytest.raises(SnapshotError, match="duplicate key"):
        decode_snapshot(data.encode(), "json")
    whole = '{"flags": {' + flags + "}}"
    assert len(decode_snapshot(whole.encode(), "json").flags) == 5_000


@needs_exact_counts
@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is not available here")
def test_a_forked_child_frees_with_a_reclaimer_of_its_own():
    held = _Holder()
    held.items = list(range(10_000))
    _reclaim.retire(held)
    del held
    pid = os.fork()
    if pid == 0:  # the child
        try:
            child = _Holder()
            child.items = list(range(10_000))
            gone = weakref.ref(child)
            _reclaim.retire(child)
            del child
            ok = _reclaim.drain(5.0) and gone() is None
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert _reclaim.drain()


def test_the_reclaimer_is_not_used_where_counts_are_not_exact(monkeypatch):
    monkeypatch.setattr(_reclaim, "_EXACT_COUNTS", False)
    obj = _Holder()
    obj.items = [1, 2, 3]
    gone = weakref.ref(obj)
    _reclaim.retire(obj)
    del obj
    assert gone() is None  # dropped at once with the caller's reference
    box = [_Holder()]
    _reclaim.dismantle(box)
    assert box == []


def test_without_a_thread_to_free_on_the_caller_drops_it_as_before(monkeypatch):
    # At interpreter shutdown (or out of threads) no thread starts: nothing is queued,
    # and the object goes with the caller's reference.
    def refuse(self):
        raise RuntimeError("can't create new thread at interpreter shutdown")

    assert _reclaim.drain()
    monkeypatch.setattr(_reclaim.threading.Thread, "start", refuse)
    obj = _Holder()
    obj.items = list(range(100))
    gone = weakref.ref(obj)
    _reclaim.retire(obj)
    del obj
    assert gone() is None
    assert not _reclaim._jobs


def test_the_compiled_snapshot_build_offers_the_gil_between_chunks():
    # The compiled evaluator copies tables and interns keys in C, which runs no bytecode:
    # between chunks it calls let_others_run, a Python function, where the interpreter
    # hands the GIL to a thread that asked for it. Counted here by the profiler's
    # call events (no timing): 10,000 keys interned 4,096 at a time, and the steps.
    impl = pytest.importorskip("cfgcore._eval")
    tables = compile_snapshot(decode_snapshot(json.dumps(_doc(5_000)).encode(), "json"))
    calls = []

    def profile(frame, event, arg):
        if event == "call" and frame.f_code is _reclaim.let_others_run.__code__:
            calls.append(1)

    sys.setprofile(profile)
    try:
        compiled = impl.CompiledSnapshot(tables)
    finally:
        sys.setprofile(None)
    assert len(calls) >= 5
    assert compiled.variant("f4999", {"region": "EU", "user_id": "u"}) in ("on", "off")


@needs_exact_counts
def test_engine_swap_hands_a_large_older_snapshot_to_the_reclaimer(impl):
    """A hand-written swap (``engine.swap(new)``, the result dropped) of an engine of
    LARGE_FLAGS flags or more: the older snapshot is taken apart off the caller's thread,
    where the caller's drop freed it whole, in one call, before."""
    cls = engine_class(impl)
    engine = cls.from_snapshot(_doc(_reclaim.LARGE_FLAGS, rollout=0))
    assert _reclaim.drain()
    gone = weakref.ref(engine.snapshot())
    before = _reclaim.stats["taken_apart"]
    engine.swap(_doc(_reclaim.LARGE_FLAGS, rollout=100))
    assert _reclaim.drain()
    assert gone() is None
    assert _reclaim.stats["taken_apart"] > before
    assert engine.variant("f3", {"region": "EU", "user_id": "u1"}) == "on"


@needs_exact_counts
def test_engine_swap_of_a_small_engine_starts_no_thread(impl):
    cls = engine_class(impl)
    engine = cls.from_snapshot(_doc(20))
    assert _reclaim.drain()
    before = dict(_reclaim.stats)
    engine.swap(_doc(20, rollout=60))
    assert _reclaim._worker is None and not _reclaim._jobs
    assert _reclaim.stats == before


@needs_exact_counts
def test_the_older_snapshot_engine_swap_returns_stays_whole_while_kept(impl, monkeypatch):
    """The caller may keep what swap returns (to swap it back, to finish a request on
    it): the reclaimer never takes apart what another reference holds, and after its
    patience leaves it to that holder, whole and answering as before."""
    monkeypatch.setattr(_reclaim, "PATIENCE", 0.2)
    cls = engine_class(impl)
    engine = cls.from_snapshot(_doc(_reclaim.LARGE_FLAGS))
    users = [f"user-{i}" for i in range(100)]
    answers = [engine.is_enabled("f9", {"region": "EU", "user_id": u}) for u in users]
    before = _reclaim.stats["dropped_shared"]
    old = engine.swap(_doc(_reclaim.LARGE_FLAGS, rollout=90))
    assert _reclaim.drain()
    assert _reclaim.stats["dropped_shared"] > before
    assert [old.is_enabled("f9", {"region": "EU", "user_id": u}) for u in users] == answers
    assert len(old.tables.keys) == _reclaim.LARGE_FLAGS
    engine.swap(old)  # and swapped back in, it serves as before
    assert [engine.is_enabled("f9", {"region": "EU", "user_id": u}) for u in users] == answers
