"""A decoded flag document and its compiled tables stay out of the cyclic garbage
collector (cfgcore._tree.untrack / untrack_atoms).

The collector walked every object a snapshot holds (about ten a flag, and every item of
the compiled tables) at each collection of the older generations, holding the GIL: a
43,000-flag document's first collection after it was decoded stopped every thread for
0.1-0.2 s, each full collection after it for 0.45 s, and a forked worker's collections
wrote the headers of pages it shared with its parent. These tests check what the
collector tracks (no timing): the figures are in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import gc
import json
import weakref

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore import _frozen, snapshot
from cfgcore.compiler import _ATOM_LISTS, compile_incremental, compile_snapshot
from cfgcore.engine import Engine
from cfgcore.snapshot import decode_snapshot, snapshot_from_dict
from tests.fuzz import examples

_tree = pytest.importorskip("cfgcore._tree", reason="the compiled extension is not built")
untrack, untrack_atoms = _tree.untrack, _tree.untrack_atoms


def _document(n: int) -> dict:
    flags = {}
    for i in range(n):
        flags[f"f{i}"] = {
            "variants": {"on": {"bitrate": [320, 256], "codec": "opus"}, "off": {"bitrate": [96]}},
            "rules": [
                {
                    "when": {
                        "all": [
                            {"attr": "user_segment", "in": ["premium", "family"]},
                            {"attr": "region", "eq": "EU"},
                        ]
                    },
                    "rollout": 25,
                    "serve": "on",
                }
            ],
            "tags": ["audio"],
            "metadata": {"owner": {"teams": ["playback"]}},
            "default": "off",
        }
    return {
        "flags": flags,
        "segments": {"eu": {"attr": "region", "in": ["EU", "UK"]}},
        "experiments": {"exp": {"variants": ["a", "b"]}},
        "metadata": {"source": {"repo": "flags"}},
    }


def _encode(doc: dict, fmt: str) -> bytes:
    if fmt == "json":
        return json.dumps(doc).encode()
    if fmt == "msgpack":
        return msgspec.msgpack.encode(doc)
    from cfgcore.yamlio import dump_yaml

    return dump_yaml(doc).encode()


def _containers(root: object) -> list[object]:
    """Every list, tuple, dict and msgspec Struct reachable from ``root``."""
    seen: dict[int, object] = {}
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or not isinstance(obj, (list, tuple, dict, msgspec.Struct)):
            continue
        seen[id(obj)] = obj
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, msgspec.Struct):
            stack.extend(getattr(obj, name) for name in type(obj).__struct_fields__)
        else:
            stack.extend(obj)
    return list(seen.values())


@pytest.mark.parametrize("fmt", ["json", "yaml", "msgpack"])
def test_decoded_document_is_untracked(fmt):
    snap = decode_snapshot(_encode(_document(20), fmt), fmt)
    found = _containers(snap)
    assert len(found) > 20 * 8  # the flags, rules, conditions, lists and values
    tracked = [o for o in found if gc.is_tracked(o)]
    assert tracked == []


@pytest.mark.parametrize("fmt", ["json", "yaml", "msgpack"])
def test_decode_and_compile_add_almost_nothing_to_the_collector(fmt):
    """2,000 flags: about 20,000 tracked objects before (decoded document) and more
    for the tables' lists; now a handful (the Tables object, its dicts of indices)."""
    data = _encode(_document(2_000), fmt)
    gc.collect()
    before = len(gc.get_objects())
    engine = Engine.from_snapshot(decode_snapshot(data, fmt))
    gc.collect()
    added = len(gc.get_objects()) - before
    assert added < 200, added
    assert len(engine.snapshot().keys) == 2_000
    assert engine.value("f7", {"user_id": "u", "user_segment": "premium", "region": "EU"}) in (
        {"bitrate": [320, 256], "codec": "opus"},
        {"bitrate": [96]},
    )


def test_a_callers_mapping_stays_tracked_and_the_snapshots_own_objects_do_not():
    """``snapshot_from_dict`` is given the caller's objects: none of those the Snapshot
    holds as they are is untracked, since the caller may still hold one and make a cycle
    through it. The Snapshot's own objects (its Structs, their dicts and lists, built
    from the caller's) are untracked, as a decoded document's are: 2,000 flags given as
    Python data added about 18,000 tracked objects, every full collection walking them."""
    doc = _document(3)
    variants_value = doc["flags"]["f0"]["variants"]["on"]
    owner = doc["flags"]["f0"]["metadata"]["owner"]
    snap = snapshot_from_dict(doc)
    assert snap.flags["f0"].variants["on"] is variants_value  # (held as it is)
    assert gc.is_tracked(variants_value) and gc.is_tracked(owner)
    assert gc.is_tracked(doc) and gc.is_tracked(doc["flags"]["f0"]["rules"])
    own = [snap, snap.flags, snap.flags["f0"], snap.flags["f0"].variants, snap.flags["f0"].rules]
    assert not any(gc.is_tracked(o) for o in own)
    big = _document(2_000)
    gc.collect()
    before = len(gc.get_objects())
    engine = Engine.from_snapshot(big)
    gc.collect()
    assert len(gc.get_objects()) - before < 200
    assert engine.value("f7", {"user_id": "u", "user_segment": "premium", "region": "EU"}) in (
        big["flags"]["f7"]["variants"]["on"],
        big["flags"]["f7"]["variants"]["off"],
    )


class _Value(dict):
    """A caller's value that a weak reference can follow."""


def test_a_cycle_the_caller_makes_through_its_value_later_is_still_collected():
    doc = _document(2)
    value = doc["flags"]["f1"]["variants"]["on"] = _Value(codec="opus")
    snap = snapshot_from_dict(doc)
    assert snap.flags["f1"].variants["on"] is value
    value["me"] = value  # a cycle made after the load, through the caller's own value
    gone = weakref.ref(value)
    del doc, value, snap
    gc.collect()
    assert gone() is None  # tracked, so collected: untracked, it would have leaked


def test_snapshot_is_freed_by_reference_counts_alone():
    """Untracked objects are freed only by their reference counts: a decoded snapshot
    holds no cycle, so it goes when its last reference does, the collector off."""
    snap = decode_snapshot(_encode(_document(50), "json"), "json")
    ref = weakref.ref(snap)
    was = gc.isenabled()
    gc.disable()
    try:
        del snap
        assert ref() is None
    finally:
        if was:
            gc.enable()


def test_compiled_tables_lists_untracked_and_answers_kept(make):
    doc = _document(40)
    snap = decode_snapshot(_encode(doc, "json"), "json")
    tables = compile_snapshot(snap)
    for name in _ATOM_LISTS:
        assert not gc.is_tracked(getattr(tables, name)), name
    assert all(not gc.is_tracked(slots) for slots in tables.own_slots)
    # an incremental compile copies the lists: they are untracked again
    doc["flags"]["f3"]["rules"][0]["rollout"] = 100
    again = compile_incremental(tables, decode_snapshot(_encode(doc, "json"), "json"))
    assert again.nodes is not tables.nodes
    for name in _ATOM_LISTS:
        assert not gc.is_tracked(getattr(again, name)), name
    ctx = {"user_id": "u1", "user_segment": "premium", "region": "EU"}
    engine = make(again)
    assert engine.variant("f3", ctx) == "on"
    assert engine.variant("f4", ctx) == make(decode_snapshot(_encode(doc, "json"), "json")).variant(
        "f4", ctx
    )


def test_untrack_walks_shared_parts_once_and_stops_on_cycles():
    shared = [1, 2]
    tree = {"a": [shared, shared, (shared,)], "b": shared}
    # tree, its list, the tuple and the shared list: each once
    assert untrack(tree, msgspec.Struct) == 4
    assert not any(gc.is_tracked(o) for o in (tree, tree["a"], tree["a"][2], shared))
    loop: list = []
    loop.append(loop)
    assert untrack(loop, msgspec.Struct) == 1
    assert untrack(loop, msgspec.Struct) == 0  # already out
    loop.clear()


def test_untrack_leaves_classes_and_other_objects_alone():
    class Other:
        pass

    other = Other()
    snap = decode_snapshot(b'{"flags": {"a": {"default": "on"}}}', "json")
    holder = [snap, other, Other, {"x": other}]
    untrack(holder, msgspec.Struct)
    assert gc.is_tracked(other) and gc.is_tracked(Other)
    assert gc.is_tracked(type(snap)) and gc.is_tracked(type(snap.flags["a"]))
    assert not gc.is_tracked(snap.flags["a"])
    with pytest.raises(TypeError):
        untrack([], "not a type")
    assert untrack(42, msgspec.Struct) == 0


def test_untrack_atoms_touches_one_container():
    outer = [[1], [2]]
    assert untrack_atoms(outer) is True
    assert not gc.is_tracked(outer) and gc.is_tracked(outer[0])
    assert untrack_atoms(outer) is False
    assert untrack_atoms((1, 2)) is False  # a tuple: CPython untracks it itself
    assert untrack_atoms({"a": [1]}) is True


_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=5)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=examples(60))
@given(
    values=st.lists(_json_values, min_size=2, max_size=2),
    meta=st.dictionaries(_text, _json_values, max_size=3),
    fmt=st.sampled_from(["json", "yaml", "msgpack"]),
)
def test_any_decoded_document_untracked_and_served_alike(make_py_and_c, values, meta, fmt):
    """Whatever values a document holds, nothing decoded stays tracked, and the values
    served are those of the same document built from plain data (tracked)."""
    doc = {
        "flags": {
            "v": {
                "variants": {"a": values[0], "b": values[1]},
                "rules": [{"when": {"attr": "k", "eq": "x"}, "serve": "b"}],
                "metadata": meta,
                "default": "a",
            }
        },
        "metadata": {"m": meta},
    }
    decoded = decode_snapshot(_encode(doc, fmt), fmt)
    assert [o for o in _containers(decoded) if gc.is_tracked(o)] == []
    plain = snapshot_from_dict(json.loads(json.dumps(doc)))
    for make in make_py_and_c:
        a, b = make(decoded), make(plain)
        for ctx in ({"k": "x"}, {"k": "y"}):
            assert a.value("v", ctx) == b.value("v", ctx)


@settings(max_examples=examples(60))
@given(
    values=st.lists(_json_values, min_size=2, max_size=2),
    meta=st.dictionaries(_text, _json_values, max_size=3),
)
def test_every_callers_container_keeps_its_tracking(values, meta):
    """Whatever a caller's document holds, each of its containers is exactly as tracked
    after ``snapshot_from_dict`` as before (the collector paused meanwhile, since it
    untracks a dict of atoms itself), and the Snapshot's own Structs are untracked."""
    doc = {
        "flags": {
            "v": {"variants": {"a": values[0], "b": values[1]}, "metadata": meta, "default": "a"}
        },
        "experiments": {"e": {"m": meta}},
        "metadata": {"m": meta},
    }
    was = gc.isenabled()
    gc.disable()
    try:
        callers = _containers(doc)
        before = [gc.is_tracked(o) for o in callers]
        snap = snapshot_from_dict(doc)
        assert [gc.is_tracked(o) for o in callers] == before
        assert not gc.is_tracked(snap) and not gc.is_tracked(snap.flags["v"])
    finally:
        if was:
            gc.enable()


def test_pure_python_keeps_objects_tracked():
    """Without the extension nothing can be untracked: the fallbacks say so."""
    assert _frozen._keep_tracked([], msgspec.Struct) == 0
    assert _frozen._keep_atoms_tracked([]) is False
    from cfgcore._env import NO_EXTENSIONS

    assert _frozen.untrack is (_frozen._keep_tracked if NO_EXTENSIONS else untrack)
    assert snapshot.untrack is _frozen.untrack


def test_configuration_tree_untracked(tmp_path, config_manager_factory):
    """A configuration version's tree (read-only FrozenDict/FrozenList, built by the
    loader) is out of the collector too; the values read are unchanged."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "base.yaml").write_text(
        "audio:\n  bitrates: [96, 160, 320]\n  codecs: {premium: opus, free: aac}\n"
        "regions:\n  - {name: EU, shelves: [new, charts]}\n"
    )
    (tmp_path / "conf" / "development.yaml").write_text("audio: {default_bitrate: 160}\n")
    manager = config_manager_factory(tmp_path / "conf", hot=False)
    tree = manager.config
    found = _containers(tree)
    assert len(found) >= 6
    assert [o for o in found if gc.is_tracked(o)] == []
    assert manager.get("audio.bitrates") == [96, 160, 320]
    assert manager["regions"][0]["shelves"][1] == "charts"
