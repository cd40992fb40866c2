"""Aho-Corasick automata: an ``any`` of many ``contains`` tests of one attribute as one
pass over the value.

The compiler lowers such an ``any`` (at least ``MIN_CONTAINS_ANY`` tests of one
attribute, in one case mode) to one ``OP_CONTAINS_ANY`` node (``OP_CONTAINS_ANY_CI``:
the case-folded value) whose automaton :func:`build` writes into the snapshot's
``acpool``, a flat array of int32 cells. Both evaluators walk those ints: the compiled one in
C; the reference one reads the constants back out of those ints (:func:`needles`) and
tests each with Python's own substring search, a second algorithm over the same
tables, so the two evaluators check each other's reading of them. :func:`search` is
the compiled walk in Python, for tests. The tests compare bytes, as ``contains``
does: the constants' UTF-8 (``surrogatepass``, case-folded for ``_CI``) inside the
value's UTF-8.

Layout of one automaton of ``S`` states at ``acpool[a]`` (the node's ``a``; ``b`` is
``S``):

* ``a .. a + 256``: the root's row, the state each byte leads to from the root (0:
  stays at the root).
* ``a + 256 + 2 * s``: state ``s``'s first edge (relative to the edges), and at
  ``+ 1`` its fail state times 4, plus 2 when its edges are a row, plus 1 when some
  constant ends at ``s`` or at a state its fail links reach (a match). One more entry,
  ``a + 256 + 2 * S``, ends the last state's edges.
* then the edges. A state with fewer than ``DENSE_EDGES`` has a run sorted by byte,
  each ``next * 256 + byte``; one with more a row of 256 cells, the next state for
  each byte (0: no edge; the root is no state's child). The root's edges are its row.

State 0 is the root; it matches when a constant is empty (``contains: ""`` holds for
every text). A constant that has another as its prefix is left out (the shorter one
matches first). The states number at most the constants' bytes plus one: the compiler
refuses to build one past ``MAX_AUTOMATON_STATES`` and writes the tests one by one then.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence

# Tests of one attribute an ``any`` needs before they become one automaton. Measured on
# the compiled evaluator, a pass of the automaton costs about 1 ns a byte and a test
# (memmem) about 0.15 ns a byte plus 20-40 ns a call: from 3 tests on a 50-character
# value the automaton is faster, on a 4 KB value from about 8 (case-folded, about 16).
# So 8: from there a short value costs less, a long one at most about twice the tests'
# searches, and many tests no longer cost a search each. (The reference evaluator
# tests the constants it reads back one by one, as it did before automata.)
MIN_CONTAINS_ANY = 8
# States one automaton may have (its constants' bytes, about), and the int32 cells a
# snapshot's automata may take together (with what incremental compiles left behind):
# past either the tests stay one by one, as they were before automata (same answers, a
# pass per test). A state takes 3-4 cells (more under rows of 256) and 1-5 us of
# compile: at most about 1.5 s and 8 MB per snapshot.
MAX_AUTOMATON_STATES = 1 << 18
MAX_ACPOOL_CELLS = 1 << 21
ROOT_ROW = 256
# A state with this many edges keeps them as a row of 256 cells (a lookup is one read),
# fewer as a sorted run (a short scan).
DENSE_EDGES = 16


def cells(states: int) -> int:
    """int32 cells an automaton of ``states`` states takes at least (rows of 256 add)."""
    return ROOT_ROW + 2 * states + 1 + states - 1


def new_pool() -> array:
    """An empty ``acpool``: int32 cells."""
    pool = array("i")
    if pool.itemsize != 4:  # pragma: no cover - C int is 32 bits wherever CPython runs
        pool = array("l")
        assert pool.itemsize == 4, "no 32-bit array type"
    return pool


def build(needles: Sequence[bytes], pool: array) -> tuple[int, int]:
    """Write the automaton of ``needles`` at the end of ``pool``: (its offset, its
    states). Time and memory are linear in the needles' bytes."""
    kept: list[bytes] = []
    for nd in sorted(set(needles)):
        if kept and nd.startswith(kept[-1]):
            continue  # the shorter constant matches wherever this one would
        kept.append(nd)
    # The trie, states in the order they are made: a state's edges are its one child
    # (one_byte, one_next) or, once it has two, a dict byte -> child.
    one_byte = bytearray(1)
    one_next = array("i", [-1])
    more: dict[int, dict[int, int]] = {}
    out = bytearray(1)
    path = [0]  # the states along the previous constant
    prev = b""
    for nd in kept:
        common = 0
        limit = min(len(prev), len(nd))
        while common < limit and prev[common] == nd[common]:
            common += 1
        del path[common + 1 :]
        state = path[-1]
        for c in nd[common:]:
            new = len(out)
            out.append(0)
            one_byte.append(0)
            one_next.append(-1)
            if one_next[state] < 0:
                one_byte[state], one_next[state] = c, new
            else:
                kids = more.get(state)
                if kids is None:
                    kids = more[state] = {one_byte[state]: one_next[state]}
                kids[c] = new
            path.append(new)
            state = new
        out[state] = 1
        prev = nd
    n = len(out)
    # Fail links, breadth first: a state's fail state is the longest proper suffix of its
    # text that is a state; a match there is a match here. Children were made in byte
    # order (the constants are sorted), so each dict lists them sorted.
    fail = array("i", bytes(4 * n))
    kids0 = more.get(0)
    if kids0 is None:
        kids0 = {one_byte[0]: one_next[0]} if one_next[0] >= 0 else {}
    queue = array("i", kids0.values())
    more_get = more.get
    i = 0
    while i < len(queue):
        s = queue[i]
        i += 1
        kids = more_get(s)
        if kids is None:
            child = one_next[s]
            if child < 0:
                continue
            pairs: Iterable[tuple[int, int]] = ((one_byte[s], child),)
        else:
            pairs = kids.items()
        fs = fail[s]
        for c, child in pairs:
            f = fs
            while True:
                k = more_get(f)
                if k is not None:
                    g = k.get(c, -1)
                elif one_byte[f] == c:
                    g = one_next[f]
                else:
                    g = -1
                if g >= 0 or not f:
                    break
                f = fail[f]
            if g >= 0:
                fail[child] = g
                if out[g]:
                    out[child] = 1
            queue.append(child)
    offset = len(pool)
    row = [0] * ROOT_ROW
    for c, child in kids0.items():
        row[c] = child
    pool.extend(row)
    edges = array("i")
    for s in range(n):
        pool.append(len(edges))
        kids = more_get(s)
        if s and kids is not None and len(kids) >= DENSE_EDGES:
            pool.append(fail[s] * 4 + 2 + out[s])
            row = [0] * ROOT_ROW
            for c, child in kids.items():
                row[c] = child
            edges.extend(row)
            continue
        pool.append(fail[s] * 4 + out[s])
        if not s:
            continue
        if kids is None:
            if one_next[s] >= 0:
                edges.append(one_next[s] * 256 + one_byte[s])
        else:
            edges.extend([child * 256 + c for c, child in kids.items()])
    pool.append(len(edges))
    pool.extend(edges)
    return offset, n


def needles(pool: Sequence[int], a: int, states: int) -> tuple[bytes, ...]:
    """The texts of the automaton's first matching states along each path from the root
    (at ``pool[a]``, ``states`` states), read from its edges and match bits: a text
    holds one of them exactly when it holds one of the constants the automaton was built
    from (each such state's text ends with a constant; each constant's path passes one).
    What the reference evaluator tests with ``in``."""
    rec = a + ROOT_ROW
    if pool[rec + 1] & 1:
        return (b"",)  # an empty constant
    edges = rec + 2 * states + 1
    found: list[bytes] = []
    stack = [(pool[a + c], bytes((c,))) for c in range(ROOT_ROW - 1, -1, -1) if pool[a + c]]
    while stack:
        s, text = stack.pop()
        r = rec + 2 * s
        if pool[r + 1] & 1:
            found.append(text)
            continue  # every deeper state's text holds this one
        lo, hi = edges + pool[r], edges + pool[r + 2]
        if pool[r + 1] & 2:  # a row of 256
            kids = [(pool[lo + c], c) for c in range(ROOT_ROW) if pool[lo + c]]
        else:
            kids = [(e >> 8, e & 255) for e in pool[lo:hi]]
        stack += [(child, text + bytes((c,))) for child, c in reversed(kids)]
    return tuple(found)


def search(pool: Sequence[int], a: int, states: int, text: bytes) -> bool:
    """Whether one of the automaton's constants (at ``pool[a]``, ``states`` states) is
    in ``text``: the compiled evaluator's walk of the tables, in Python (for tests)."""
    rec = a + ROOT_ROW
    if pool[rec + 1] & 1:
        return True  # an empty constant
    edges = rec + 2 * states + 1
    s = 0
    for c in text:
        while s:
            r = rec + 2 * s
            info = pool[r + 1]
            lo = edges + pool[r]
            nxt = 0  # no edge (the root is no state's child)
            if info & 2:
                nxt = pool[lo + c]
            else:
                for e in pool[lo : edges + pool[r + 2]]:  # sorted by byte
                    if e & 255 >= c:
                        if e & 255 == c:
                            nxt = e >> 8
                        break
            if nxt:
                s = nxt
                break
            s = info >> 2  # its fail state
        else:
            s = pool[a + c]
        if s and pool[rec + 2 * s + 1] & 1:
            return True
    return False
