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

import sys
from array import array
from collections.abc import Sequence
from itertools import accumulate

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
# pass per test). A state takes 3-4 cells (more under rows of 256) and 0.2-1 us of
# compile: at most about 0.5 s and 8 MB per snapshot.
MAX_AUTOMATON_STATES = 1 << 18
MAX_ACPOOL_CELLS = 1 << 21
ROOT_ROW = 256
# A state with this many edges keeps them as a row of 256 cells (a lookup is one read),
# fewer as a sorted run (a short scan).
DENSE_EDGES = 16


# The 256 bytes in order, and each byte 256 times in order (the low and middle bytes of
# the state numbers 0, 1, 2, ...).
_ALL_BYTES = bytes(range(256))
_MID = b"".join([bytes((i,)) * 256 for i in range(256)])


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
    states). Time and memory are linear in the needles' bytes.

    States are numbered in the order a trie made from the sorted constants makes them
    (depth first, children in byte order), and the tables are those of that numbering;
    the work is arranged for CPython's speed: per constant where it can be, per byte
    only where it must (the fail links), and C-level copies for the cells."""
    items = sorted(needles)  # duplicates are left out with the longer constants
    offset = len(pool)
    if not items or not items[0]:  # no constants, or an empty one: the root alone
        pool.fromlist([0] * ROOT_ROW + [0, 1 if items else 0, 0])
        return offset, 1
    runs, label, r0, kids_of = _trie(items)
    n = len(label)
    if n > 1 << 23:  # an edge cell is next * 256 + byte, an int32
        raise OverflowError(f"an automaton of {n:,} states does not fit its cells")
    info = _fail_links(runs, label, r0, kids_of)
    # A state's edges: its first child (the next state, when it is no leaf), then its
    # other children; none for the root and the leaves (where a constant ends).
    counts = [1] * n
    counts[0] = 0
    for b, _q, _depth, seg in runs:
        counts[b + len(seg) - 1] = 0
    for q, kids in kids_of.items():
        if len(kids) + 1 >= DENSE_EDGES:
            counts[q] = ROOT_ROW
            info[q] |= 2
        else:
            counts[q] += len(kids)
    pool.fromlist(r0)
    # the records: each state's first edge and its cell, then where the last edges end
    start = len(pool)
    pool.frombytes(bytes(4 * (2 * n + 1)))
    firsts = array("i")
    firsts.fromlist(list(accumulate(counts, initial=0)))
    pool[start::2] = firsts
    cells = array("i")
    cells.fromlist(info)
    pool[start + 1 :: 2] = cells
    pool += _edges(runs, label, kids_of, counts)
    return offset, n


# A run: the states one constant adds to the trie, those past what it shares with the
# constant before it (in sorted order). As (its first state, that state's parent, the
# parent's depth, the run's bytes); its states are numbered on from the first.
_Run = tuple[int, int, int, bytes]


def _trie(items: list[bytes]) -> tuple[list[_Run], bytes, list[int], dict[int, list[int]]]:
    """The trie of the sorted constants ``items`` (none empty), as runs: (the runs, the
    byte leading to each state, the root's row, and each other state's children after
    its first, which is the next state)."""
    runs: list[_Run] = []
    r0 = [0] * ROOT_ROW
    kids_of: dict[int, list[int]] = {}
    # (depth of a run's parent, its first state) of the runs the previous constant's
    # path passes through, shallowest first: the state at depth d on that path is in
    # the last one whose parent is shallower than d.
    open_runs: list[tuple[int, int]] = []
    n = 1
    prev = b""
    fb = int.from_bytes
    for nd in items:
        if runs and nd.startswith(prev):
            continue  # the shorter constant (or the same) matches wherever this one would
        m = len(prev) if len(prev) < len(nd) else len(nd)
        # the bytes nd shares with prev: the leading zero bytes of their xor
        common = m - ((fb(prev[:m], "big") ^ fb(nd[:m], "big")).bit_length() + 7) // 8
        if common:
            while open_runs[-1][0] >= common:
                open_runs.pop()
            depth, first = open_runs[-1]
            q = first + common - depth - 1
            kids = kids_of.get(q)
            if kids is None:
                kids_of[q] = [n]
            else:
                kids.append(n)
        else:
            open_runs.clear()
            q = 0
            r0[nd[0]] = n
        open_runs.append((common, n))
        seg = nd[common:]
        runs.append((n, q, common, seg))
        n += len(seg)
        prev = nd
    label = b"\0" + b"".join([run[3] for run in runs])
    return runs, label, r0, kids_of


# What _fail_links knows of a state it has not reached: nothing (fail state unknown)
# or only that a constant ends there (a match whatever its fail state); and the bit of
# a cell whose fail state is known but not yet whether that one matches (a later
# state's, still to come).
_UNKNOWN = -2
_UNKNOWN_MATCH = -3
_PENDING = 2


def _fail_links(
    runs: list[_Run],
    label: bytes,
    r0: list[int],
    kids_of: dict[int, list[int]],
) -> list[int]:
    """Each state's record cell: its fail state times 4, plus 1 when it matches.

    Breadth first is the textbook order (a fail state is shallower), but reaching the
    states of a level strides over the whole trie; so only the shallow states go
    breadth first, and each gets a row: its whole transition function (a byte leads to
    its child, else to where its fail state's row leads), so that a deeper state's fail
    state is most often one read, ``row(fail(parent))[byte]``. Rows are indexed by the
    constants' bytes numbered in order (the bytes they hold, not all 256), and take at
    most about two cells a state together. The deeper states then go in their order,
    run by run (a run's fail states follow each other as an automaton reading the
    constant would). A state whose fail state is a later one gets it all the same, but
    its match bit waits for a last pass along the fail links; one whose walk needs the
    fail state of a later state waits, with the rest of its run, for a last pass
    breadth first.

    Values in the rows and in ``info`` are state * 4 + match bit (the record cell),
    so a state found through a row is stored as read; rows are looked up by those
    values (both match bits)."""
    n = len(label)
    info = [_UNKNOWN] * n
    for b, _q, _depth, seg in runs:
        info[b + len(seg) - 1] = _UNKNOWN_MATCH
    # The bytes as numbers 0 .. width - 1, in the rows, and in what the rows are read with.
    present = _ALL_BYTES.translate(None, _ALL_BYTES.translate(None, label))
    width = len(present)
    number = bytearray(256)
    for i, c in enumerate(present):
        number[c] = i
    label = label.translate(number)
    branch = {q << 8 | label[y]: y for q, kids in kids_of.items() for y in kids}
    # byte of the edge from state s to s + 1 (256: none, s + 1 starts another run)
    chain = list(label)
    for b, _q, _depth, _seg in runs[1:]:
        chain[b] = 256
    chain.append(256)
    # The root's row and its children: fail state the root, a match if a constant ends.
    level = [x for x in r0 if x]
    root = [0] * width
    for x in level:
        info[x] &= 1
        root[label[x]] = x << 2 | info[x]
    unknown = [_UNKNOWN] * width
    rows = {0: root, 1: root, _UNKNOWN: unknown, _UNKNOWN_MATCH: unknown}
    info[0] = 0
    budget = min(2 * n // width, n // 16)  # cells, and rows (a row costs a few states' time)
    first_deep = 1  # states this deep and shallower have their cell
    while level and len(level) <= budget:
        budget -= len(level)
        first_deep += 1
        below: list[int] = []
        for x in level:
            inherited = rows[info[x]]  # its fail state's row
            own = inherited[:]
            c = chain[x + 1]
            if c != 256:  # its first child
                y = x + 1
                cell = info[y] = inherited[c] | info[y] & 1
                own[c] = y << 2 | cell & 1
                below.append(y)
            kids = kids_of.get(x)
            if kids is not None:  # the others
                for y in kids:
                    c = label[y]
                    cell = info[y] = inherited[c] | info[y] & 1
                    own[c] = y << 2 | cell & 1
                below += kids
            rows[x << 2] = rows[x << 2 | 1] = own
        level = below
    rowget = rows.get
    bget = branch.get
    waiting: list[tuple[int, int]] = []
    pending: list[int] = []
    for b, q, depth, seg in runs:
        j = first_deep - depth  # the run's first state deeper than first_deep
        if j <= 0:
            x = b
            e = info[q]  # the parent's cell
        elif j < len(seg):
            x = b + j
            e = info[x - 1]
        else:
            continue
        for c in label[x : b + len(seg)]:
            # e: the parent's fail state (times 4, plus a match bit); e becomes x's
            row = rowget(e)
            if row is not None:
                e = row[c]
            else:
                f = e >> 2
                while True:
                    if chain[f + 1] == c:
                        g = f + 1
                        break
                    g = bget(f << 8 | c, -1)
                    if g >= 0:
                        break
                    e = info[f]
                    row = rowget(e)
                    if row is not None:
                        e = row[c]
                        break
                    f = e >> 2
                if g >= 0:
                    cell = info[g]
                    if cell & 2:  # g's match bit waits on its fail state's
                        e = g << 2 | _PENDING
                        pending.append(x)
                    else:
                        e = g << 2 | cell & 1
            if e < 0:
                waiting.append((x + depth + 1 - b, x))  # (its depth, the state)
            else:
                info[x] = e
            x += 1
        info[x - 1] |= 1  # a constant ends at the run's last state
    if waiting:
        waiting.sort()
        parent = {b: q for b, q, _depth, _seg in runs}
        for _depth, x in waiting:
            c = label[x]
            f = info[parent.get(x, x - 1)] >> 2
            while True:
                row = rowget(f << 2)
                if row is not None:
                    e = row[c]
                    break
                if chain[f + 1] == c:
                    g = f + 1
                else:
                    g = bget(f << 8 | c, -1)
                if g >= 0:
                    cell = info[g]
                    if cell & 2:
                        e = g << 2 | _PENDING
                        pending.append(x)
                    else:
                        e = g << 2 | cell & 1
                    break
                f = info[f] >> 2
            info[x] = e | info[x] & 1
    # Match bits that waited: a state matches if a constant ends there or its fail
    # state matches (every fail state is known now).
    for x in pending:
        path = []
        y = x
        while info[y] & _PENDING:
            path.append(y)
            y = info[y] >> 2
        match = info[y] & 1
        for y in reversed(path):
            cell = info[y]
            match |= cell & 1
            info[y] = cell & ~3 | match
    return info


def _edges(
    runs: list[_Run], label: bytes, kids_of: dict[int, list[int]], counts: list[int]
) -> array:
    """The edges after the records: state 1's, state 2's, ... A state's first child is
    the next state, so the edges are mostly the cells ``x * 256 + label[x]`` of states
    2, 3, ... in order, less the runs' first states (children of an earlier state), with
    each state's other children put after its first child, or a row of 256 for a state
    with DENSE_EDGES children or more."""
    n = len(label)
    # The cells of every state, written as int32 bytes (little-endian: byte, then the
    # state's three bytes, which repeat with periods 1, 256 and 65,536).
    buf = bytearray(4 * n)
    buf[0::4] = label
    buf[1::4] = (_ALL_BYTES * (n // 256 + 1))[:n]
    buf[2::4] = (_MID * (n // 65536 + 1))[:n]
    buf[3::4] = b"".join([bytes((i,)) * 65536 for i in range(n // 65536 + 1)])[:n]
    cell = array("i")
    cell.frombytes(buf)
    if sys.byteorder == "big":
        cell.byteswap()
    # Where the run of cells breaks: at a run's first state (left out here: 2 * x) and
    # after a state's first child (its other children: 2 * (q + 1) + 1).
    cuts = [run[0] << 1 for run in runs[1:]]
    cuts += [(q + 1) << 1 | 1 for q in kids_of]
    cuts.sort()
    edges = array("i")
    lo = 2
    for cut in cuts:
        x = cut >> 1
        edges += cell[lo:x]
        if cut & 1:
            q = x - 1
            kids = kids_of[q]
            if counts[q] == ROOT_ROW:
                row = [0] * ROOT_ROW
                row[label[x]] = x
                for y in kids:
                    row[label[y]] = y
                edges.fromlist(row)
            else:
                edges.append(cell[x])
                edges.fromlist([cell[y] for y in kids])
        lo = x + 1
    edges += cell[lo:]
    return edges


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
