"""The automaton builder as it was before its rewrite for speed (``cfgcore._automaton.build``
until December 2026), kept unchanged as the reference the tests compare the current one
against: both must write the same int32 cells for every set of constants, since the
compiled and the reference evaluators read those cells (layout: ``cfgcore._automaton``).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence

from cfgcore._automaton import DENSE_EDGES, ROOT_ROW


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
