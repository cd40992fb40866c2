"""A condition object shared by several places of a snapshot (a GrowthBook saved group,
a flagd ``$ref`` evaluator: typed once by the importer) is written once into the node
table and reached from every other use by one ``OP_CALL`` node; it used to be copied at
every reference (100,000 ids in 100 features: 40 s and 1.5 GB to compile).

Both evaluators follow calls with the same answers as the spec interpreter (which reads
the snapshot, not the tables), under ``not``, ``any``, ``all``, nested shared subtrees
and prerequisites; a call counts toward the depth limit; a condition that contains
itself is refused with its path; the tables still pickle and move between engines."""

from __future__ import annotations

import copy
import pickle

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore import _layout as L
from cfgcore.compiler import MAX_CONDITION_DEPTH, compile_snapshot
from cfgcore.engine import engine_class
from cfgcore.errors import SnapshotError
from cfgcore.experiments.served import what_it_serves
from cfgcore.interop import growthbook
from cfgcore.snapshot import Condition, Flag, Rule, Snapshot, snapshot_from_dict
from tests.conftest import IMPLS
from tests.fuzz import examples
from tests.spec_interpreter import Interpreter, comparable
from tests.test_core_differential import GRID, conditions, contexts, leaf

ENGINES = [engine_class(mod) for mod in IMPLS.values()]


def _typed(cond: dict) -> Condition:
    return msgspec.convert(cond, type=Condition)


def _calls(tables) -> list[int]:
    """The node indices of every OP_CALL."""
    n = tables.nodes
    return [i for i in range(len(n) // L.NW) if n[i * L.NW] == L.OP_CALL]


def _deepest_frame(tables, i: int = 0, depth: int = 0, seen=None) -> int:
    """How deep an evaluator's recursion goes from node ``i`` (calls followed)."""
    n, o = tables.nodes, i * L.NW
    op = n[o]
    if op in (L.OP_ALL, L.OP_ANY):
        deepest, child = depth, i + 1
        for _ in range(n[o + 2]):
            deepest = max(deepest, _deepest_frame(tables, child, depth + 1))
            child = n[child * L.NW + 5]
        return deepest
    if op == L.OP_NOT:
        return _deepest_frame(tables, i + 1, depth + 1)
    if op == L.OP_CALL:
        assert n[o + 2] < i, "a callee is emitted before its caller"
        return _deepest_frame(tables, n[o + 2], depth + 1)
    return depth


def _roots(tables) -> list[int]:
    return [c for c in tables.rules[L.R_COND :: L.RW] if c >= 0]


def _check_all(doc_snapshot: Snapshot, flag_keys, ctxs) -> None:
    """Every engine answers as the spec interpreter, for plain and bound contexts."""
    spec = Interpreter(doc_snapshot)
    engines = [cls.from_snapshot(doc_snapshot) for cls in ENGINES]
    for ctx in ctxs:
        want = {key: comparable(spec.evaluate(key, ctx)) for key in flag_keys}
        for engine in engines:
            for cc in (ctx, engine.context(ctx)):
                for key in flag_keys:
                    assert comparable(engine.evaluate(key, cc)) == want[key], (key, ctx)
            assert engine.evaluate_all(ctx) == spec.evaluate_all(ctx)


# -- random documents with shared subtrees ------------------------------------------------
plain_leaf = leaf().filter(lambda c: "segment" not in c)


@st.composite
def shared_pool(draw):
    """1-3 typed conditions, each an any/all/not over drawn conditions; a later one may
    contain earlier ones (nested shared subtrees)."""
    pool: list[Condition] = []
    for _ in range(draw(st.integers(1, 3))):
        parts: list = [draw(conditions) for _ in range(draw(st.integers(1, 3)))]
        for _ in range(draw(st.integers(0, 2))):
            if pool:
                parts.insert(draw(st.integers(0, len(parts))), draw(st.sampled_from(pool)))
        kind = draw(st.sampled_from(["any", "all", "not"]))
        pool.append(_typed({"not": {"any": parts}} if kind == "not" else {kind: parts}))
    return pool


@st.composite
def use(draw, pool):
    """A rule condition using a shared subtree: as is, or under not/any/all."""
    shared = draw(st.sampled_from(pool))
    how = draw(st.sampled_from(["as is", "not", "any", "all", "deep"]))
    if how == "as is":
        return shared
    if how == "not":
        return {"not": shared}
    if how == "deep":
        return {"all": [{"not": {"any": [draw(plain_leaf), shared]}}, draw(conditions)]}
    others = [draw(conditions) for _ in range(draw(st.integers(0, 2)))]
    others.insert(draw(st.integers(0, len(others))), shared)
    return {how: others}


@st.composite
def shared_documents(draw):
    pool = draw(shared_pool())
    flags: dict = {}
    for i in range(draw(st.integers(2, 5))):
        rules = []
        for _ in range(draw(st.integers(1, 3))):
            rule = {"serve": draw(st.sampled_from(["on", "off"]))}
            if draw(st.integers(0, 4)):
                rule["when"] = draw(use(pool))
            elif draw(st.booleans()):
                rule["when"] = draw(conditions)
            rules.append(rule)
        flag: dict = {"default": draw(st.sampled_from(["on", "off"])), "rules": rules}
        if i and draw(st.booleans()):  # a prerequisite whose own rules call shared parts
            target = f"f{draw(st.integers(0, i - 1))}"
            flag["prerequisites"] = [
                target if draw(st.booleans()) else {"flag": target, "off": True}
            ]
        flags[f"f{i}"] = flag
    segments = {
        "s0": draw(plain_leaf),
        "s1": {"any": [{"segment": "s0"}, draw(plain_leaf)]},
    }
    return snapshot_from_dict({"segments": segments, "flags": flags})


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shared_documents(), st.lists(contexts, min_size=3, max_size=8))
def test_shared_subtrees_answer_as_the_spec_on_both_evaluators(snap, drawn):
    tables = compile_snapshot(snap)
    unshared = compile_snapshot(msgspec.msgpack.decode(msgspec.msgpack.encode(snap), type=Snapshot))
    assert not _calls(unshared)  # equal but distinct objects are copied, as before
    assert len(tables.nodes) <= len(unshared.nodes)
    for root in _roots(tables):
        assert _deepest_frame(tables, root) <= MAX_CONDITION_DEPTH + 1
    _check_all(snap, list(snap.flags), GRID[::7] + drawn)


# -- the saved-group shape, at a size that shows the copies --------------------------------
def _group_features(n: int) -> dict:
    features = {
        f"f{j}": {
            "defaultValue": False,
            "rules": [{"condition": {"id": {"$inGroup": "big"}}, "force": True}],
        }
        for j in range(n)
    }
    features["mixed"] = {
        "defaultValue": 0,
        "rules": [
            {
                "condition": {
                    "$and": [{"country": "US"}, {"id": {"$notInGroup": "big"}}],
                    "$or": [{"plan": "pro"}, {"id": {"$inGroup": "big"}}],
                },
                "force": 1,
            }
        ],
    }
    return features


def test_a_saved_group_is_written_once_and_called(make):
    ids = [f"user-{i}" for i in range(3000)]
    features = _group_features(40)
    snap = growthbook.to_snapshot(copy.deepcopy(features), saved_groups={"big": ids})
    tables = compile_snapshot(snap)
    # the group test (an `in` list and one member test per id) is ~3,000 nodes: written
    # once, not 42 times; a rule whose whole condition is the group has no call node
    assert len(tables.nodes) // L.NW < 3000 + 200
    roots = {tables.rules[r * L.RW + L.R_COND] for r in range(40)}
    assert len(roots) == 1
    assert _calls(tables)  # "mixed" reaches it through calls under not/any/all
    # each flag's slot list (the group's 3,000 member slots) is stored once, not 40 times
    starts = {tables.flags[fi * L.FW + L.F_SLOTS_START] for fi in range(40)}
    assert len(starts) == 1
    assert len(tables.ipool) < 4 * 3000 + 500
    engine = make(snap)
    for attrs, want in [
        ({"id": "user-17"}, (True, 0)),
        ({"id": "nobody", "country": "US", "plan": "pro"}, (False, 1)),
        ({"id": "user-2999", "country": "US", "plan": "pro"}, (True, 0)),
        ({"id": ["x", "user-5"]}, (True, 0)),
        ({"id": ["x"], "country": "US", "plan": "pro"}, (False, 1)),
    ]:
        ctx = growthbook.context(attrs)
        got = (engine.is_enabled("f0", ctx), growthbook.thaw(engine.evaluate("mixed", ctx).value))
        assert got == want, attrs
        assert engine.is_enabled("f39", engine.context(ctx)) is want[0]


def test_a_call_to_a_constant_subtree_is_read_through_by_served():
    never = _typed({"all": [{"any": []}, {"any": []}, {"any": []}]})
    flags = {
        f"f{j}": {
            "default": "off",
            "rules": [{"when": {"not": never} if j else never, "serve": "on"}],
        }
        for j in range(3)
    }
    snap = snapshot_from_dict({"flags": flags})
    tables = compile_snapshot(snap)
    assert _calls(tables)
    served = what_it_serves(tables, 0.0)
    assert served["f0"].state == "off"  # the subtree is false for everyone
    assert served["f1"].state == "on"  # called under not: true for everyone


# -- depth: a call counts its callee's levels -----------------------------------------------
def _chain(levels: int) -> dict:
    cond: dict = {"attr": "a", "eq": 1}
    for k in range(levels):
        cond = {"any": [cond, {"attr": "b", "eq": k}]} if k % 2 else {"not": cond}
    return cond


def _nest(cond, levels: int):
    for _ in range(levels):
        cond = {"all": [cond]}
    return cond


def test_calls_count_toward_the_depth_limit():
    shared = _typed(_chain(20))  # 20 levels below its root
    flags = {
        "shallow": {"default": "off", "rules": [{"when": _nest(shared, 1), "serve": "on"}]},
        "again": {"default": "off", "rules": [{"when": _nest(shared, 3), "serve": "on"}]},
        # inline at 12 levels it reaches exactly 32: accepted as before; a call there
        # would add one level, so it is written out in place
        "edge": {"default": "off", "rules": [{"when": _nest(shared, 12), "serve": "on"}]},
    }
    snap = snapshot_from_dict({"flags": flags})
    tables = compile_snapshot(snap)
    calls = _calls(tables)
    assert len(calls) == 1  # "again" calls; "edge" copies
    for root in _roots(tables):
        assert _deepest_frame(tables, root) <= MAX_CONDITION_DEPTH
    ctxs = [{"a": 1, "b": 3}, {"a": 2}, {"b": 1}, {}, {"a": 1, "b": 19}]
    _check_all(snap, list(flags), ctxs)
    # one level deeper is refused, with the same problems as the copied condition
    flags["deep"] = {"default": "off", "rules": [{"when": _nest(shared, 13), "serve": "on"}]}
    unshared = msgspec.msgpack.decode(
        msgspec.msgpack.encode(snapshot_from_dict({"flags": flags})), type=Snapshot
    )
    with pytest.raises(SnapshotError) as shared_error:
        compile_snapshot(snapshot_from_dict({"flags": flags}))
    with pytest.raises(SnapshotError) as copied_error:
        compile_snapshot(unshared)
    assert "flags.deep.rules[0].when" in str(shared_error.value)
    assert str(shared_error.value) == str(copied_error.value)


def test_a_condition_that_contains_itself_is_refused_with_its_path():
    loop = Condition(any=[Condition(attr="a", eq=1)])
    loop.any.append(Condition(not_=loop))  # a Snapshot built in Python can hold a cycle
    snap = Snapshot(flags={"looping": Flag(default="off", rules=[Rule(when=loop, serve="on")])})
    with pytest.raises(SnapshotError, match="contains itself") as err:
        compile_snapshot(snap)
    assert "flags.looping.rules[0].when.any[1].not" in str(err.value)


# -- the tables travel: pickle, copy, another engine -----------------------------------------
@pytest.mark.parametrize("how", ["pickle", "deepcopy", "other engine"])
def test_tables_with_calls_pickle_and_move_between_engines(make, how):
    snap = growthbook.to_snapshot(
        _group_features(5), saved_groups={"big": [f"user-{i}" for i in range(50)]}
    )
    engine = make(snap)
    compiled = engine.snapshot()
    assert _calls(compiled.tables)
    if how == "pickle":
        moved = pickle.loads(pickle.dumps(compiled))
    elif how == "deepcopy":
        moved = copy.deepcopy(compiled)
    else:
        other = make({"flags": {}})
        other.swap(compiled)
        moved = other.snapshot()
    assert moved.tables.nodes == compiled.tables.nodes
    for attrs in ({"id": "user-3"}, {"id": "x", "country": "US"}, {"id": ["user-49"]}):
        ctx = growthbook.context(attrs)
        for key in ("f0", "f4", "mixed"):
            a, b = moved.evaluate(key, ctx), compiled.evaluate(key, ctx)
            assert (a.value, a.variant, a.reason) == (b.value, b.variant, b.reason)


def test_an_incremental_compile_keeps_calls_into_a_changed_flag_right():
    group = _typed({"any": [{"attr": "id", "in": ["u1", "u2"]}, {"attr": "plan", "eq": "pro"}]})
    doc = {
        "flags": {
            "first": {"default": "off", "rules": [{"when": group, "serve": "on"}]},
            "second": {"default": "off", "rules": [{"when": {"not": group}, "serve": "on"}]},
        }
    }
    changed = copy.deepcopy({"flags": {"first": {"default": "on", "rules": []}}})
    new_doc = {"flags": {**doc["flags"], **changed["flags"]}}
    ctxs = [{"id": "u1"}, {"id": "u3"}, {"plan": "pro"}, {}]
    for cls in ENGINES:
        engine = cls.from_snapshot(snapshot_from_dict(doc))
        assert _calls(engine.snapshot().tables)  # "second" calls into "first"'s nodes
        new = snapshot_from_dict(new_doc)
        engine.swap(engine.compile(new, previous=engine.snapshot()))
        spec = Interpreter(new)
        for ctx in ctxs:
            for key in ("first", "second"):
                want = comparable(spec.evaluate(key, ctx))
                assert comparable(engine.evaluate(key, ctx)) == want, (key, ctx)
