"""An ``any`` of many ``contains`` tests of one attribute is one Aho-Corasick automaton
(``OP_CONTAINS_ANY``, ``cfgcore._automaton``): the same answers as the tests one by
one, on both evaluators (the compiled one walks the tables; the reference reads the
constants back out of them and tests each with Python's substring search), in one pass
over the value. These tests check that the node is emitted where it should be (so the speedup
cannot silently vanish), that it answers as the README's semantics say
(tests/spec_interpreter.py) for needle sets that overlap, nest, are empty, Unicode
and case-folded, that an ``any`` still evaluates the same children before it stops,
and that hostile sizes stay within the automata's bounds.
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore import _automaton, _lower
from cfgcore._layout import NW, OP_ANY, OP_CONTAINS, OP_CONTAINS_ANY, OP_CONTAINS_ANY_CI, R_COND, RW
from cfgcore.compiler import compile_incremental, compile_snapshot
from cfgcore.engine import engine_class
from cfgcore.interop import unleash
from cfgcore.snapshot import Condition, Flag, Rule, Snapshot, mark_decoded, snapshot_from_dict
from tests.conftest import IMPLS
from tests.fuzz import examples
from tests.spec_interpreter import Interpreter
from tests.texts import any_text

K = _automaton.MIN_CONTAINS_ANY

# Needles and texts from one vocabulary, so that they overlap, nest and hit; with
# characters whose case folding changes their length (ß -> ss, İ -> i̇, ﬁ -> fi) and a
# lone surrogate (a constant can hold one; a value holding one is unusable).
WORDS = [
    "", "a", "ab", "abc", "b", "bc", "ba", "aab", "Mozilla", "moz", "bot", "Bot", "crawl",
    "ß", "ss", "SS", "straße", "STRASSE", "İ", "i̇", "ﬁ", "fi", "é", "e\u0301", "日本", "本",
    "\ud800", "x" * 40,
]  # fmt: skip
# Over a small alphabet, constants are suffixes and infixes of each other and of the
# texts: what the automaton's fail links are for.
SMALL = "abßS"
needle = st.one_of(
    st.sampled_from(WORDS[1:]),
    st.text(alphabet=SMALL, min_size=1, max_size=4),
    st.text(alphabet=SMALL, min_size=1, max_size=4),
    any_text(max_size=4),
)
texts = st.one_of(
    st.sampled_from(WORDS),
    st.text(alphabet=SMALL, max_size=12),
    st.text(alphabet=SMALL, max_size=12),
    st.lists(st.sampled_from(WORDS), max_size=6).map("".join),
    any_text(max_size=12),
    st.sampled_from([None, 5, 1.5, True, ["ab"], "x" * 5000 + "bot"]),
)


def _nodes(tables: Any) -> list[list[int]]:
    n = tables.nodes
    return [n[i : i + NW] for i in range(0, len(n), NW)]


def _ops(tables: Any) -> list[int]:
    return [node[0] for node in _nodes(tables)]


def _flag(cond: dict[str, Any]) -> dict[str, Any]:
    return {"flags": {"f": {"default": "off", "rules": [{"when": cond, "serve": "on"}]}}}


def _contains(attr: str, value: str, ci: bool = False) -> dict[str, Any]:
    cond: dict[str, Any] = {"attr": attr, "contains": value}
    if ci:
        cond["ignore_case"] = True
    return cond


def _engines(doc: dict[str, Any]) -> list[Any]:
    return [engine_class(mod).from_snapshot(copy.deepcopy(doc)) for mod in IMPLS.values()]


def _agree(doc: dict[str, Any], ctxs: list[dict[str, Any]]) -> None:
    spec = Interpreter(snapshot_from_dict(copy.deepcopy(doc)))
    engines = _engines(doc)
    for ctx in ctxs:
        want = spec.evaluate("f", ctx).value
        for e in engines:
            assert e.is_enabled("f", ctx) is want, (ctx, e)
            assert e.is_enabled("f", e.context(ctx)) is want, (ctx, e)


# -- the node is emitted ------------------------------------------------------------------


@pytest.mark.parametrize("ci", [False, True])
def test_an_any_of_many_contains_is_one_automaton(ci):
    tables = compile_snapshot(
        snapshot_from_dict(_flag({"any": [_contains("ua", f"w{i}", ci) for i in range(K)]}))
    )
    code = OP_CONTAINS_ANY_CI if ci else OP_CONTAINS_ANY
    assert _ops(tables) == [OP_ANY, code]
    node = _nodes(tables)[1]
    assert node[1] == tables.slots.index("ua")
    assert node[4] == K  # the tests it stands for
    assert len(tables.acpool) > node[2] >= 0
    assert tables.ci_slots[node[1]] is ci
    # counted as the tests it replaces: the walk bounds pass the same documents
    assert tables.walks == [1 + 1 + K + 1]  # the rule, the any, the tests, the attribute


def test_fewer_tests_stay_one_by_one():
    tables = compile_snapshot(
        snapshot_from_dict(_flag({"any": [_contains("ua", f"w{i}") for i in range(K - 1)]}))
    )
    assert _ops(tables) == [OP_ANY] + [OP_CONTAINS] * (K - 1)
    assert len(tables.acpool) == 0


def test_the_unleash_importer_s_str_contains_is_one_automaton():
    payload = {
        "version": 2,
        "features": [
            {
                "name": "bots",
                "enabled": True,
                "strategies": [
                    {
                        "name": "default",
                        "constraints": [
                            {
                                "contextName": "userAgent",
                                "operator": "STR_CONTAINS",
                                "values": [f"bot{i}" for i in range(20)],
                                "caseInsensitive": True,
                            }
                        ],
                    }
                ],
            }
        ],
    }
    snap = unleash.to_snapshot(payload)
    tables = compile_snapshot(snap)
    # caseInsensitive: the values in lower case against the context's lower-case text
    # (``userAgent#lower``), as yggdrasil compares them
    assert OP_CONTAINS_ANY in _ops(tables)
    for mod in IMPLS.values():
        engine = engine_class(mod).from_snapshot(snap)
        assert engine.is_enabled("bots", unleash.context({"userAgent": "x BOT7 y"})) is True
        assert engine.is_enabled("bots", unleash.context({"userAgent": "robot"})) is False


def test_groups_are_per_attribute_and_case_mode_and_keep_the_other_children():
    kids = [
        {"attr": "n", "eq": 1},
        *[_contains("ua", f"a{i}") for i in range(K)],
        *[_contains("ua", f"c{i}", ci=True) for i in range(K)],
        *[_contains("ref", f"r{i}") for i in range(K - 1)],
        {"attr": "ua", "starts_with": "zz"},
    ]
    tables = compile_snapshot(snapshot_from_dict(_flag({"any": kids})))
    ops = _ops(tables)
    assert ops.count(OP_CONTAINS_ANY) == 1 and ops.count(OP_CONTAINS_ANY_CI) == 1
    assert ops.count(OP_CONTAINS) == K - 1  # too few on "ref"
    assert _nodes(tables)[0][2] == 1 + 2 + (K - 1) + 1  # the any's children, counted anew
    ctxs = [
        {"ua": "a3", "ref": "", "n": 0},
        {"ua": "C5", "n": 0},
        {"ref": "r2"},
        {"ua": "zzz"},
        {"n": 1},
        {"ua": "nothing", "ref": "nothing", "n": 2},
    ]
    _agree(_flag({"any": kids}), ctxs)


def test_a_child_with_effects_ends_a_run():
    """A regex search, a semver comparison or another flag's answer can do more than
    answer (an interrupt, a clock read): the children before it and after it are
    grouped apart, so the any evaluates exactly the children it did before."""
    for other in (
        {"attr": "ua", "matches": "q+"},
        {"attr": "v", "semver_eq": "1.0.0"},
        {"all": [{"attr": "n", "eq": 1}]},
    ):
        kids = [
            *[_contains("ua", f"a{i}") for i in range(K - 1)],
            other,
            _contains("ua", "last"),
        ]
        tables = compile_snapshot(snapshot_from_dict(_flag({"any": kids})))
        assert OP_CONTAINS_ANY not in _ops(tables), other
        kids = [*[_contains("ua", f"a{i}") for i in range(K)], other]
        kids += [_contains("ua", f"b{i}") for i in range(K)]
        tables = compile_snapshot(snapshot_from_dict(_flag({"any": kids})))
        assert _ops(tables).count(OP_CONTAINS_ANY) == 2, other
    # plain tests of other attributes or operators do not end it
    kids = [
        *[_contains("ua", f"a{i}") for i in range(K - 1)],
        {"attr": "n", "gt": 1},
        {"attr": "ua", "exists": False},
        _contains("ua", "last"),
    ]
    tables = compile_snapshot(snapshot_from_dict(_flag({"any": kids})))
    assert _ops(tables).count(OP_CONTAINS_ANY) == 1


@pytest.mark.skipif(len(IMPLS) < 2, reason="the compiled extension is not built")
@pytest.mark.parametrize("ua, errors", [("a0", 0), ("b0", 1), ("none", 1)])
def test_the_children_evaluated_are_the_same(ua, errors):
    """A prerequisite flag with a schedule reads the clock; a broken clock counts one
    GENERAL error. It is read only when no test before it in the any matched."""
    doc = {
        "flags": {
            "timed": {
                "default": "off",
                "schedule": {"start": "2020-01-01T00:00:00Z"},
                "rules": [{"serve": "on"}],
            },
            "f": {
                "default": "off",
                "rules": [
                    {
                        "when": {
                            "any": [
                                *[_contains("ua", f"a{i}") for i in range(K)],
                                {"prerequisite": "timed"},
                                *[_contains("ua", f"b{i}") for i in range(K)],
                            ]
                        },
                        "serve": "on",
                    }
                ],
            },
        }
    }
    assert _ops(compile_snapshot(snapshot_from_dict(doc))).count(OP_CONTAINS_ANY) == 2

    def broken() -> float:
        raise RuntimeError("clock")

    answers = []
    for engine in _engines(doc):
        engine.set_clock(broken)
        engine.take_evaluation_counts()
        answers.append(engine.is_enabled("f", {"ua": ua}))
        got = engine.take_evaluation_counts().errors
        assert got.get("GENERAL", 0) == errors, (engine, got)
    assert answers == [ua != "none"] * len(answers)


def test_too_deep_an_any_is_refused_as_before():
    cond: dict[str, Any] = {"any": [_contains("ua", f"a{i}") for i in range(K)]}
    for _ in range(_lower.MAX_CONDITION_DEPTH):
        cond = {"not": cond}
    with pytest.raises(Exception) as err:
        compile_snapshot(snapshot_from_dict(_flag(cond)))
    assert "nested deeper than" in str(err.value)


# -- the same answers -------------------------------------------------------------------


@settings(max_examples=examples(300), deadline=None)
@given(
    needles=st.lists(needle, min_size=K, max_size=3 * K),
    ci=st.booleans(),
    values=st.lists(texts, min_size=1, max_size=8),
)
def test_an_automaton_answers_as_its_tests(needles, ci, values):
    doc = _flag({"any": [_contains("ua", n, ci) for n in needles]})
    tables = compile_snapshot(snapshot_from_dict(copy.deepcopy(doc)))
    assert _ops(tables) == [OP_ANY, OP_CONTAINS_ANY_CI if ci else OP_CONTAINS_ANY]
    ctxs = [{"ua": v} for v in values] + [{}, {"ua": "".join(needles)}]
    _agree(doc, ctxs)
    # and as the tests one by one (an any of fewer than K is not grouped); each built
    # once for every context
    singles = [Interpreter(snapshot_from_dict(_flag(_contains("ua", n, ci)))) for n in needles]
    engine = _engines(doc)[-1]
    for ctx in ctxs:
        v = ctx.get("ua")
        one_by_one = any(single.evaluate("f", ctx).value for single in singles)
        assert engine.is_enabled("f", ctx) is one_by_one, (v, needles)


@st.composite
def mixed_anys(draw: st.DrawFn) -> dict[str, Any]:
    """An any of contains runs on two attributes and both case modes, interleaved with
    other tests, nested anys and tests that end a run."""
    kids: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 4))):
        attr = draw(st.sampled_from(["ua", "ref"]))
        ci = draw(st.booleans())
        kids += [_contains(attr, draw(needle), ci) for _ in range(draw(st.integers(0, K + 3)))]
        extra = draw(
            st.sampled_from(
                [
                    None,
                    {"attr": "ua", "matches": "ab+"},
                    {"attr": "ua", "eq": "ab"},
                    {"attr": "ref", "ends_with": "ß", "ignore_case": True},
                    {"attr": "ua", "exists": False},
                    {"any": [_contains("ua", w) for w in WORDS[1 : K + 2]]},
                    {"not": {"any": [_contains("ref", w, True) for w in WORDS[5 : 5 + K]]}},
                ]
            )
        )
        if extra is not None:
            kids.append(extra)
    kids = draw(st.permutations(kids))
    return {"any": kids}


@settings(max_examples=examples(200), deadline=None)
@given(
    cond=mixed_anys(),
    ctxs=st.lists(st.fixed_dictionaries({}, optional={"ua": texts, "ref": texts}), max_size=6),
)
def test_mixed_anys_agree(cond, ctxs):
    _agree(_flag(cond), [*ctxs, {"ua": "ab", "ref": "STRASSE"}, {"ua": "x" * 5000 + "ab"}])


def test_a_long_value_with_a_late_match():
    needles = [f"needle-{i:04d}" for i in range(1000)]
    doc = _flag({"any": [_contains("ua", n) for n in needles]})
    long_text = "needle-" * 9000
    _agree(doc, [{"ua": long_text}, {"ua": long_text + "needle-0999"}, {"ua": "NEEDLE-0001"}])


# -- bounds, incremental compiles, pickling ----------------------------------------------


def test_an_automaton_past_its_state_bound_is_not_built():
    """Constants of more bytes than MAX_AUTOMATON_STATES: the tests stay one by one (the
    document compiles and answers as before; nothing is built)."""
    size = 4096
    count = _automaton.MAX_AUTOMATON_STATES // size + 1
    needles = [f"{i:06d}" + "x" * (size - 6) for i in range(count)]
    doc = _flag({"any": [_contains("ua", n) for n in needles]})
    tables = compile_snapshot(snapshot_from_dict(doc))
    assert OP_CONTAINS_ANY not in _ops(tables)
    assert len(tables.acpool) == 0
    for e in _engines(doc):
        assert e.is_enabled("f", {"ua": "a" + needles[-1]}) is True
        assert e.is_enabled("f", {"ua": "x" * size}) is False


def test_the_snapshot_s_automata_are_bounded(monkeypatch):
    monkeypatch.setattr(_automaton, "MAX_ACPOOL_CELLS", 3000)
    flags = {
        f"f{j}": {
            "default": "off",
            "rules": [
                {
                    "when": {"any": [_contains("ua", f"{j}-{i}-abcdefgh") for i in range(K)]},
                    "serve": "on",
                }
            ],
        }
        for j in range(10)
    }
    doc = {"flags": flags}
    tables = compile_snapshot(snapshot_from_dict(doc))
    built = _ops(tables).count(OP_CONTAINS_ANY)
    assert 0 < built < 10
    assert len(tables.acpool) <= 3000
    for e in _engines(doc):
        for j in range(10):
            assert e.is_enabled(f"f{j}", {"ua": f"..{j}-3-abcdefgh.."}) is True
            assert e.is_enabled(f"f{j}", {"ua": f"..{j}-3-abcdefg.."}) is False


def test_states_are_the_constants_bytes_at_most():
    pool = _automaton.new_pool()
    needles = [bytes([i % 256, (i * 7) % 256]) * 50 for i in range(300)]
    _offset, states = _automaton.build(needles, pool)
    assert states <= sum(len(n) for n in set(needles)) + 1
    assert (
        len(pool) <= _automaton.ROOT_ROW + 3 * states + 256 * states // _automaton.DENSE_EDGES + 1
    )


def test_incremental_compiles_rebuild_and_bound_the_automata():
    def doc(word: str) -> dict[str, Any]:
        kids = [_contains("ua", f"{word}{i}") for i in range(K)]
        return {
            "flags": {
                "f": {"default": "off", "rules": [{"when": {"any": kids}, "serve": "on"}]},
                "g": {"default": "off", "rules": [{"when": {"attr": "n", "eq": 1}, "serve": "on"}]},
            }
        }

    tables = compile_snapshot(snapshot_from_dict(doc("w")))
    sizes = []
    for step in range(200):
        word = f"v{step}-"
        tables = compile_incremental(tables, snapshot_from_dict(doc(word)))
        sizes.append(len(tables.acpool))
        for mod in IMPLS.values():
            e = engine_class(mod).from_snapshot(doc(word))
            assert e.is_enabled("f", {"ua": f"x{word}3"}) is True
            snap = mod.CompiledSnapshot(tables)
            assert snap.is_enabled("f", {"ua": f"x{word}3"}) is True
            assert snap.is_enabled("f", {"ua": "xw3"}) is False
    # the automata replaced flags leave behind are dropped by a full compile
    assert max(sizes) <= 3 * sizes[0] + _automaton.ROOT_ROW * 64


def test_pickled_and_copied_tables_keep_their_automata():
    doc = _flag({"any": [_contains("ua", f"w{i}", True) for i in range(K)]})
    tables = compile_snapshot(snapshot_from_dict(doc))
    for again in (pickle.loads(pickle.dumps(tables)), tables.copy()):
        assert list(again.acpool) == list(tables.acpool)
        for mod in IMPLS.values():
            snap = mod.CompiledSnapshot(again)
            assert snap.is_enabled("f", {"ua": "xW3"}) is True
            assert snap.is_enabled("f", {"ua": "xW"}) is False
    copied = tables.copy()
    copied.acpool.append(1)
    assert len(copied.acpool) == len(tables.acpool) + 1


def test_states_with_many_edges_keep_a_row():
    letters = "abcdefghijklmnopqrstuvwxyzAB"
    needles = [f"q{x}{y}" for x in "qr" for y in letters] + ["rq", "ß" + "q"]
    doc = _flag({"any": [_contains("ua", n) for n in needles]})
    tables = compile_snapshot(snapshot_from_dict(doc))
    node = _nodes(tables)[1]
    assert node[0] == OP_CONTAINS_ANY
    a, states = node[2], node[3]
    info = [tables.acpool[a + _automaton.ROOT_ROW + 2 * s + 1] for s in range(states)]
    assert sum(1 for x in info if x & 2) == 2  # "qq" and "qr" have 28 edges each
    values = ["qqz", "qrB", "qqq", "qrr", "qq", "qr", "xqrqx", "rq", "ßq", "qß", "qqC", "qrqqa"]
    _agree(doc, [{"ua": v} for v in values] + [{"ua": v.upper()} for v in values])


def test_a_shared_any_is_called_and_copies_read_one_automaton():
    """An any of contains tests shared by several flags (an importer's saved group) is
    still written once and called (it is one node now, but stands for its tests); a
    segment inlined at several references reads the automaton built first."""
    group = msgspec.convert({"any": [_contains("ua", f"w{i}") for i in range(K)]}, type=Condition)
    flags = {f"f{j}": Flag(default="off", rules=[Rule(when=group, serve="on")]) for j in range(5)}
    snap = mark_decoded(Snapshot(flags=flags))
    tables = compile_snapshot(snap)
    assert _ops(tables) == [OP_ANY, OP_CONTAINS_ANY]  # written once
    assert {tables.rules[r * RW + R_COND] for r in range(5)} == {0}  # each rule calls it
    doc = {
        "segments": {"bots": {"any": [_contains("ua", f"b{i}", True) for i in range(K)]}},
        "flags": {
            f"g{j}": {"default": "off", "rules": [{"when": {"segment": "bots"}, "serve": "on"}]}
            for j in range(5)
        },
    }
    tables = compile_snapshot(snapshot_from_dict(doc))
    roots = [n for n in _nodes(tables) if n[0] == OP_CONTAINS_ANY_CI]
    assert len(roots) == 5 and len({n[2] for n in roots}) == 1  # one automaton
    for mod in IMPLS.values():
        for engine in (engine_class(mod).from_snapshot(snap), engine_class(mod).from_snapshot(doc)):
            for key in engine.snapshot().keys:
                want = key.startswith("f")
                assert engine.is_enabled(key, {"ua": "xw3" if want else "xB3"}) is True
                assert engine.is_enabled(key, {"ua": "w"}) is False


# ------------------------------------------------------------ the tables themselves


def _abcd(size: int) -> st.SearchStrategy[bytes]:
    return st.binary(max_size=size).map(lambda b: bytes(x % 4 + 97 for x in b))


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(_abcd(5), min_size=1, max_size=40), _abcd(30))
def test_the_walk_and_the_constants_read_back_answer_as_the_constants_do(consts, text):
    # Both readings of one automaton: the compiled evaluator's walk (search, its Python
    # twin: fail links, rows and runs) and the reference's constants read back
    # (needles: edges and match bits), against the constants it was built from. Over
    # four letters, constants are prefixes, suffixes and infixes of each other.
    pool = _automaton.new_pool()
    pool.extend([7, 7, 7])  # an automaton need not start the pool
    a, states = _automaton.build(consts, pool)
    want = any(c in text for c in consts)
    assert _automaton.search(pool, a, states, text) is want
    back = _automaton.needles(pool, a, states)
    assert any(c in text for c in back) is want
    assert len(back) <= len(set(consts))
    assert all(any(c in b for c in consts) for b in back)  # each holds a constant


def test_a_state_with_many_edges_is_read_back_through_its_row():
    # A state past DENSE_EDGES children keeps them as a row of 256 cells.
    consts = [bytes([120, c]) for c in range(65, 65 + _automaton.DENSE_EDGES + 4)]
    pool = _automaton.new_pool()
    a, states = _automaton.build(consts, pool)
    assert sorted(_automaton.needles(pool, a, states)) == sorted(consts)
    assert _automaton.search(pool, a, states, b"zzxTzz")
    assert not _automaton.search(pool, a, states, b"zzx zzT")
