"""``cfgcore._automaton.build`` writes the cells the builder it replaced wrote
(``tests/automaton_reference.py``), for open-ended sets of constants.

Both evaluators read those int32 cells (the compiled one walks them in C), so the rewrite
for compile speed must not move one: the same offset and state count, the same root row,
records, fail links, match bits, sorted runs and rows of 256. The sets are drawn to reach
every part of the builder: constants that are prefixes, suffixes and infixes of each
other over two to four letters (fail links deep and many, states whose fail state's own
fail state comes later in the trie's order), empty and duplicate constants, UTF-8 with
lone surrogates and case folding as the compiler encodes them, fan-outs past
DENSE_EDGES, and tries large enough that their shallow states get rows of 256.
"""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore import _automaton
from cfgcore._layout import NW, OP_CONTAINS_ANY, OP_CONTAINS_ANY_CI
from cfgcore.compiler import compile_snapshot
from cfgcore.snapshot import snapshot_from_dict
from tests import automaton_reference as reference
from tests.fuzz import examples


def _same_cells(consts: list[bytes], before: int = 3) -> list[int]:
    """Build ``consts`` with both builders after ``before`` cells of other automata;
    assert they write the same cells and return them."""
    old = _automaton.new_pool()
    old.extend([7] * before)
    new = _automaton.new_pool()
    new.extend([7] * before)
    want = reference.build(consts, old)
    got = _automaton.build(consts, new)
    assert got == want
    assert len(new) == len(old)
    if new != old:  # say where, not just that
        at = next(i for i, (a, b) in enumerate(zip(new, old, strict=True)) if a != b)
        raise AssertionError(f"cell {at - before}: {new[at]} != {old[at]} (states {want[1]})")
    return list(new[before:])


def _over(letters: bytes, max_len: int, min_len: int = 0) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=min_len, max_size=max_len).map(
        lambda b: bytes(letters[x % len(letters)] for x in b)
    )


# Constants over few letters: prefixes, suffixes and infixes of each other (fail links
# that go deep), empty ones and duplicates.
small_sets = st.lists(st.one_of(_over(b"ab", 8), _over(b"abc", 6), _over(b"abcd", 5)), max_size=60)


@settings(max_examples=examples(400))
@given(small_sets, st.integers(0, 5))
def test_small_alphabets_give_the_same_cells(consts, before):
    _same_cells(consts, before)


@settings(max_examples=examples(60))
@given(
    st.lists(_over(b"ab", 16, min_len=8), min_size=150, max_size=400),
    st.lists(_over(b"abc", 9), max_size=200),
)
def test_tries_with_rowed_shallow_states_give_the_same_cells(deep, more):
    # Hundreds of long constants over two or three letters: some 1,000-4,000 states, so
    # that the first levels get rows of 256 and the deeper states are reached run by run
    # (many of them waiting for a later fail state).
    _same_cells(deep + more)


@settings(max_examples=examples(100))
@given(
    st.sampled_from([b"x", b"yx", b"\xffx"]),
    st.sets(st.integers(0, 255), min_size=_automaton.DENSE_EDGES - 2, max_size=40),
    st.lists(_over(b"xy", 3), min_size=1),
    st.lists(st.binary(min_size=1, max_size=3), max_size=100),
)
def test_wide_fan_outs_give_the_same_cells(prefix, fan_out, tails, binary):
    # A state with about DENSE_EDGES children or more (a sorted run or a row of 256 in
    # the edges), and constants of any bytes, 0 and 255 included.
    consts = [prefix + bytes((c,)) + tails[i % len(tails)] for i, c in enumerate(fan_out)]
    _same_cells(consts + binary)


lone = st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff"])
texts = st.lists(
    st.one_of(
        st.text(max_size=6),
        st.text(alphabet="aAßẞİıﬁé\u0301日本", max_size=5),
        st.tuples(st.text(max_size=2), lone, st.text(max_size=2)).map("".join),
    ),
    max_size=40,
)


@settings(max_examples=examples(300))
@given(texts, st.booleans())
def test_constants_encoded_as_the_compiler_does_give_the_same_cells(values, ci):
    # contains_runs: case-folded for ignore_case, UTF-8 with lone surrogates passed
    consts = sorted({(v.casefold() if ci else v).encode("utf-8", "surrogatepass") for v in values})
    _same_cells(consts)
    _same_cells(list(reversed(consts)) + consts[:3])  # any order, duplicates


@pytest.mark.parametrize(
    "consts",
    [
        [],
        [b""],
        [b"", b"a", b"ab"],
        [b"a"],
        [b"a", b"a"],
        [b"ab", b"abc", b"b"],
        [bytes([c]) for c in range(256)],
        [b"x" + bytes([c]) for c in range(_automaton.DENSE_EDGES - 1)],
        [b"x" + bytes([c]) for c in range(_automaton.DENSE_EDGES)],
        [b"\xff" * 300, b"\xff" * 299 + b"\x00", b"\x00\xff"],
    ],
    ids=lambda c: f"{len(c)}-constants",
)
def test_edge_cases_give_the_same_cells(consts):
    _same_cells(consts)


def test_cells_of_fixed_sets_are_as_recorded():
    # The cells themselves, recorded from the builder before its rewrite: this holds
    # even if the reference copy were edited along with the builder.
    sets = {
        "he-she-his-hers": [b"he", b"she", b"his", b"hers"],
        "dense": [b"q" + bytes([c]) + b"z" for c in range(97, 123)] + [b"zq", b"qa"],
        "nested": [b"aaaa", b"aab", b"ab", b"b", b"baaab", b"ba"],
    }
    want = {
        "he-she-his-hers": "508eed6e578d66b846b597500bcc779b32342b7006b0cffc3d915d21df1659c2",
        "dense": "eaa5e9535b7650cd7c586f7ebd2ee09dcc7988a0c783abcceb0955d459515e63",
        "nested": "fef5cdf8596c090b47cecfdac3f7cdce16d2177b215ac078c90ba8999b8a858c",
    }
    for name, consts in sets.items():
        cells = _same_cells(consts, before=0)
        digest = hashlib.sha256(",".join(map(str, cells)).encode()).hexdigest()
        assert digest == want[name], name


def test_the_largest_automaton_the_compiler_builds_gives_the_same_cells():
    # Constants of MAX_AUTOMATON_STATES - 1 bytes: the most the compiler builds.
    rnd = random.Random(20261205)
    letters = b"abcdefghijklmnopqrstuvwxyz0123456789-._"
    size = 20
    count = (_automaton.MAX_AUTOMATON_STATES - 1) // size
    consts = [bytes(rnd.choices(letters, k=size)) for _ in range(count)]
    consts.append(b"q" * ((_automaton.MAX_AUTOMATON_STATES - 1) % size))
    assert sum(map(len, consts)) <= _automaton.MAX_AUTOMATON_STATES - 1
    _same_cells(consts)


@pytest.mark.parametrize("ci", [False, True])
def test_the_compiler_writes_the_cells_of_the_reference(ci):
    # Through compile_snapshot: the acpool of an any of 2,000 contains tests is what the
    # previous builder writes for the constants as the compiler encodes them.
    rnd = random.Random(7)
    values = ["".join(rnd.choices("abcdeXYZß-", k=rnd.randint(1, 12))) for _ in range(2000)]
    cond = {"any": [{"attr": "ua", "contains": v, "ignore_case": ci} for v in values]}
    doc = {"flags": {"f": {"default": "off", "rules": [{"when": cond, "serve": "on"}]}}}
    tables = compile_snapshot(snapshot_from_dict(doc))
    node = tables.nodes[NW : 2 * NW]
    assert node[0] == (OP_CONTAINS_ANY_CI if ci else OP_CONTAINS_ANY)
    consts = sorted({(v.casefold() if ci else v).encode("utf-8", "surrogatepass") for v in values})
    pool = _automaton.new_pool()
    assert reference.build(consts, pool) == (node[2], node[3])
    assert list(tables.acpool) == list(pool)
