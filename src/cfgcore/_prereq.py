"""The prerequisite graph: prerequisite records, cycle and depth checks, and each
flag's slot list (its own slots plus those of every flag it depends on).

Part of the compiler (:mod:`cfgcore.compiler` assembles the pieces).
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from cfgcore._layout import (
    F_BOOL,
    F_PRE_COUNT,
    F_PRE_START,
    F_RULE_COUNT,
    F_RULE_START,
    F_SLOTS_COUNT,
    F_SLOTS_START,
    F_VAR_BASE,
    F_VAR_COUNT,
    FW,
    NW,
    OP_CALL,
    OP_CONTAINS_ANY,
    OP_CONTAINS_ANY_CI,
    P_OFF,
    P_ON,
    P_SET,
    PW,
    R_COND,
    R_GATE_COUNT,
    RW,
)
from cfgcore._lower import ConditionLowering, FlagTest
from cfgcore._records import _exact_text
from cfgcore.errors import child_key_path
from cfgcore.snapshot import Prerequisite

MAX_PREREQUISITE_DEPTH = 32
# Flag evaluations one check may make, the flag's own included. A prerequisite is
# evaluated once per path that reaches it (the evaluators keep no per-check cache), so
# fan-out multiplies: five levels of 30 prerequisites each make one check evaluate 24
# million flags (over a second compiled, minutes in the reference evaluator).
MAX_PREREQUISITE_EVALUATIONS = 1_000
# Condition nodes, rules and attributes one check may walk: the flag's rules and their
# nodes (its segments' at each reference, a shared subtree at each OP_CALL that reaches
# it) and the attributes they read (bound at each check: a 20,000-name ``bucket_by`` is
# 20,000 lookups), and those of every flag it reads, once per path. The evaluation count
# above does not see how large each flag is: 999 ``prerequisite`` tests of one flag
# whose segments inline to 10,000 nodes (a 30 KB document) made a check walk ten million
# nodes (47 ms compiled, 3 s in the reference evaluator), and a flag of 100,000 nodes a
# hundred million. The same
# figure as the flagd importer's per-flag bound (interop.flagd.MAX_LOWERED_NODES), which
# charges an if chain's guards as it builds them, more than this count of what the
# compiler writes: what it imports compiles (tests/test_hostile_cost.py).
MAX_CHECK_NODES = 1_000_000
# What evaluate_all may walk: every flag's check in full (it keeps no answers between
# flags, so a flag read by many is walked once for each). A 50,000-node flag read by
# 1,000 small flags (a 60 KB document) made one evaluate_all walk 50 million nodes:
# 0.3 s compiled, half a minute in the reference evaluator.
MAX_SNAPSHOT_CHECK_NODES = 10_000_000


def _edges(
    pres: list[tuple[int, int, Prerequisite]], tests: tuple[FlagTest, ...]
) -> tuple[int, ...]:
    """A flag's edges in the prerequisite graph: the flags its prerequisites name (those
    found), then those its ``prerequisite`` conditions read."""
    return tuple([p for p, _, _ in pres if p >= 0] + [test[1] for test in tests])


class PrerequisiteGraph(ConditionLowering):
    """Resolves prerequisites once every flag record is written."""

    walk_sizes: dict[int, int]  # root node -> nodes a walk of its subtree may visit

    def pending_prerequisites(
        self, flags: Iterable[int]
    ) -> dict[int, list[tuple[int, int, Prerequisite]]]:
        """Per flag index: (target index or -1, position, prerequisite) of each prerequisite."""
        t = self.t
        pending: dict[int, list[tuple[int, int, Prerequisite]]] = {}
        for fi in flags:
            key = t.keys[fi]
            pres: list[tuple[int, int, Prerequisite]] = []
            flag = self.compiled_flags.get(key)
            if flag is None:  # an incremental compile: a flag compiled before, unchanged
                flag = self.snap.flags[key]
            listed = getattr(flag, "prerequisites", ())
            if not isinstance(listed, list | tuple):  # a Snapshot built in Python
                self.problem(
                    f"{child_key_path('flags', key)}.prerequisites",
                    f"expected array, got {listed!r}",
                )
                listed = ()
            for i, pre in enumerate(listed):
                if isinstance(pre, str):
                    pre = Prerequisite(flag=str.__str__(pre))
                elif (
                    isinstance(pre, Prerequisite)
                    and type(pre.flag) is not str
                    and issubclass(type(pre.flag), str)
                ):  # a str subclass (a StrEnum of flag names) names the flag its text names
                    pre = msgspec.structs.replace(pre, flag=str.__str__(pre.flag))
                elif not isinstance(pre, Prerequisite) or type(pre.flag) is not str:
                    self.problem(
                        f"{child_key_path('flags', key)}.prerequisites[{i}]",
                        f"expected a flag key or a prerequisite, got {pre!r}",
                    )
                    continue
                target = t.index.get(pre.flag, -1)
                if target < 0:
                    self.problem(
                        f"{child_key_path('flags', key)}.prerequisites[{i}].flag",
                        f"unknown flag {pre.flag!r}",
                    )
                pres.append((target, i, pre))
            pending[fi] = pres
        return pending

    def prerequisites(self, changed: list[int] | None = None) -> None:
        """Prerequisite records, cycle and depth checks, and each flag's slot list (its
        own slots plus its prerequisites'). With ``changed`` (an incremental compile)
        only the changed flags and the flags that depend on them, directly or not, are
        redone; every other flag's records are still valid in the copied tables.

        The graph is kept in the tables (``Tables.deps`` and ``Tables.readers``), so an
        incremental compile updates the changed flags' edges and walks only what they
        reach and what reaches them: a change to one flag of 1,000 that no other flag
        reads costs that flag, not a pass over every flag's records (0.9 ms)."""
        t = self.t
        n = len(t.keys)
        todo = range(n) if changed is None else changed
        pending = self.pending_prerequisites(todo)
        if changed is None:
            # A flag's edges: its prerequisites, then the flags its ``prerequisite``
            # conditions read (each OP_FLAG node is evaluated at most once per
            # evaluation of the flag, as a prerequisite is: both count toward depth and
            # fan-out alike).
            t.deps = [_edges(pending[fi], t.flag_tests[fi]) for fi in range(n)]
            found: dict[int, set[int]] = {}
            for fi, deps in enumerate(t.deps):
                for d in deps:
                    found.setdefault(d, set()).add(fi)
            t.readers = [()] * n
            for d, readers in found.items():
                t.readers[d] = tuple(sorted(readers))
            affected: set[int] = set(range(n))
        else:
            if len(t.deps) < n:  # flags added at the end
                t.deps.extend([()] * (n - len(t.deps)))
                t.readers.extend([()] * (n - len(t.readers)))
            # Each target's readers rewritten once, with every changed flag that stops or
            # starts reading it: rewritten once per such flag, 20,000 flags gaining one
            # prerequisite (a kill switch) in one change made 20,000 tuples of up to
            # 20,000 readers each (12 s, where a full compile takes 1 s).
            gone: dict[int, set[int]] = {}
            new: dict[int, set[int]] = {}
            for fi in changed:
                before, after = t.deps[fi], _edges(pending[fi], t.flag_tests[fi])
                t.deps[fi] = after
                if before == after:
                    continue
                old_edges, new_edges = set(before), set(after)
                for d in old_edges - new_edges:
                    gone.setdefault(d, set()).add(fi)
                for d in new_edges - old_edges:
                    new.setdefault(d, set()).add(fi)
            for d in gone.keys() | new.keys():
                left = gone.get(d)
                listed = t.readers[d]
                if left:
                    listed = tuple(r for r in listed if r not in left)
                if d in new:
                    listed = tuple(sorted({*listed, *new[d]}))
                t.readers[d] = listed
            affected = set(changed)
            frontier = list(changed)
            while frontier:
                for up in t.readers[frontier.pop()]:
                    if up not in affected:
                        affected.add(up)
                        frontier.append(up)
            pending.update(self.pending_prerequisites(sorted(affected - set(changed))))
        reported: set[tuple[str, str]] = set()  # a segment's test, inlined in several flags
        for fi in sorted(affected):
            pres = pending[fi]
            t.flags[fi * FW + F_PRE_START] = len(t.prereqs) // PW
            t.flags[fi * FW + F_PRE_COUNT] = len(pres)
            for target, i, pre in pres:
                where = f"{child_key_path('flags', t.keys[fi])}.prerequisites[{i}]"
                want = P_OFF if pre.off else P_ON
                if target >= 0:
                    want = self.want_code(
                        target, pre.variant, pre.variants, pre.off, where, reported
                    )
                t.prereqs.extend((max(target, 0), want))
            for pos, target, variant, variants, off, where in t.flag_tests[fi]:
                # written again for an unchanged flag too: its target's variants may
                # have moved (an incremental recompile writes a changed flag's anew)
                t.nodes[pos * NW + 3] = self.want_code(
                    target, variant, variants, off, where, reported
                )
        # Where each resolved flag's prerequisite edges were written (indices into its
        # ``prerequisites``; its condition edges follow them in ``deps``), for a cycle's
        # report; a flag not resolved here has no refused entry: its edges are its
        # records, in order.
        pre_at = {fi: [i for p, i, _ in pres if p >= 0] for fi, pres in pending.items()}
        self.cycles_and_limits(t.deps, affected, pre_at)

    def want_code(
        self,
        target: int,
        variant: str | None,
        variants: list[str] | tuple[str, ...] | None,
        off: bool,
        where: str,
        reported: set[tuple[str, str]],
    ) -> int:
        """What a prerequisite (or a ``prerequisite`` condition) at ``where`` asks of flag
        ``target``: its variant's global index, P_ON / P_OFF, or P_SET - k for one of a
        counted list of variants at ipool[k]. Problems are reported once per path."""
        t = self.t

        def problem(path: str, message: str) -> None:
            if (path, message) not in reported:
                reported.add((path, message))
                self.problem(path, message)

        vname = _exact_text(variant) or ""
        want = P_OFF if off else P_ON
        tb = t.flags[target * FW + F_VAR_BASE]
        tn = t.flags[target * FW + F_VAR_COUNT]
        tnames = t.variant_names[tb : tb + tn]
        if variants is not None:
            # any of several variants: a counted id list in the pool
            if off or vname:
                problem(where, "'variants' excludes 'variant' and 'off'")
            ids = []
            for j, name in enumerate(variants):
                text = _exact_text(name)  # the names are held as exact str
                if text in tnames:
                    ids.append(tb + tnames.index(text))
                else:
                    problem(
                        f"{where}.variants[{j}]",
                        f"flag {t.keys[target]!r} has no variant {name!r}",
                    )
            want = P_SET - self.pool([len(ids), *ids])
        elif vname:
            if off:
                problem(where, "'variant' excludes 'off'")
            if vname in tnames:
                want = tb + tnames.index(vname)
            else:
                problem(f"{where}.variant", f"flag {t.keys[target]!r} has no variant {vname!r}")
        elif not t.flags[target * FW + F_BOOL]:
            problem(where, f"flag {t.keys[target]!r} is not boolean: name the variant required")
        return want

    def walk_size(self, root: int) -> int:
        """Nodes a walk of the subtree at node ``root`` may visit: its own, and at each
        OP_CALL its callee's (capped just past MAX_CHECK_NODES), at an automaton the tests
        it stands for. Calls nest at most MAX_CONDITION_DEPTH levels (a call counts its
        callee's levels)."""
        sizes = self.walk_sizes
        found = sizes.get(root)
        if found is None:
            n = self.t.nodes
            end = n[root * NW + 5]
            found = end - root
            for i in range(root, end):
                op = n[i * NW]
                if op == OP_CALL:
                    found += self.walk_size(n[i * NW + 2]) - 1
                    if found > MAX_CHECK_NODES:
                        break
                elif op == OP_CONTAINS_ANY or op == OP_CONTAINS_ANY_CI:
                    # counted as the tests it stands for, as before automata: the same
                    # documents pass the bound
                    found += n[i * NW + 4] - 1
            found = sizes[root] = min(found, MAX_CHECK_NODES + 1)
        return found

    def flag_walk(self, fi: int) -> int:
        """Steps one evaluation of flag ``fi`` may take without the flags it reads: one
        per rule, per gate and per attribute its rules read (its own slots), and its
        rules' condition nodes."""
        t = self.t
        start = t.flags[fi * FW + F_RULE_START]
        count = t.flags[fi * FW + F_RULE_COUNT]
        steps = count + len(t.own_slots[fi])
        for r in range(start, start + count):
            steps += t.rules[r * RW + R_GATE_COUNT]
            cond = t.rules[r * RW + R_COND]
            if cond >= 0:
                steps += self.walk_size(cond)
                if steps > MAX_CHECK_NODES:
                    break
        return steps

    def cycles_and_limits(
        self,
        graph: list[tuple[int, ...]],
        affected: set[int],
        pre_at: dict[int, list[int]],
    ) -> None:
        """Refuse cycles, chains past MAX_PREREQUISITE_DEPTH and checks past
        MAX_PREREQUISITE_EVALUATIONS; write each affected flag's slot list (its own
        slots and those of every flag it reads). A cycle is reported at the edge that
        closes it: ``flags.F.prerequisites[i]`` or the ``prerequisite`` condition's path
        (``pre_at[f]``: the indices of flag f's prerequisite edges, which come first in
        ``graph[f]``; a flag not in it has one edge per prerequisite record, in order).
        Only the flags the affected ones read are walked."""
        t = self.t

        def edge_path(node: int, child: int) -> str:
            at = pre_at.get(node)
            if at is None:
                at = list(range(t.flags[node * FW + F_PRE_COUNT]))
            if child < len(at):
                return f"{child_key_path('flags', t.keys[node])}.prerequisites[{at[child]}]"
            return str(t.flag_tests[node][child - len(at)][5])

        n = len(t.keys)
        # Cycles and depth: iterative DFS with colours from the affected flags (a new
        # cycle must pass through a changed flag); report each cycle once.
        depth: dict[int, int] = {}
        state = [0] * n  # 0 new, 1 on stack, 2 done
        order: list[int] = []
        for root in sorted(affected):
            if state[root]:
                continue
            stack: list[tuple[int, int]] = [(root, 0)]
            path: list[int] = []
            while stack:
                node, child = stack.pop()
                if child == 0:
                    state[node] = 1
                    path.append(node)
                if child < len(graph[node]):
                    stack.append((node, child + 1))
                    nxt = graph[node][child]
                    if state[nxt] == 1:
                        cyc = path[path.index(nxt) :] + [nxt]
                        names = " -> ".join(t.keys[c] for c in cyc)
                        self.problem(edge_path(node, child), f"prerequisite cycle: {names}")
                    elif state[nxt] == 0:
                        stack.append((nxt, 0))
                else:
                    state[node] = 2
                    path.pop()
                    order.append(node)
        if self.problems:
            return
        flag_slots: dict[int, set[int]] = {}
        # Flag evaluations a check of each flag makes (capped just past the limit), and
        # the nodes, rules and attributes it walks (see MAX_CHECK_NODES).
        cost: dict[int, int] = {}
        walk: dict[int, int] = {}
        self.walk_sizes = {}
        for fi in order:  # dependencies first
            deps = graph[fi]
            depth[fi] = 1 + max((depth[d] for d in deps), default=0)
            if depth[fi] > MAX_PREREQUISITE_DEPTH:
                self.problem(
                    f"{child_key_path('flags', t.keys[fi])}.prerequisites",
                    f"prerequisite chain deeper than {MAX_PREREQUISITE_DEPTH}",
                )
            cost[fi] = min(1 + sum(cost[d] for d in deps), MAX_PREREQUISITE_EVALUATIONS + 1)
            if cost[fi] > MAX_PREREQUISITE_EVALUATIONS and all(
                cost[d] <= MAX_PREREQUISITE_EVALUATIONS for d in deps
            ):  # reported where the limit is first passed, not at every flag above
                self.problem(
                    f"{child_key_path('flags', t.keys[fi])}.prerequisites",
                    f"a check would evaluate more than {MAX_PREREQUISITE_EVALUATIONS:,} "
                    "prerequisite flags: a flag reached along several prerequisite paths is "
                    "evaluated once per path",
                )
            walk[fi] = min(self.flag_walk(fi) + sum(walk[d] for d in deps), MAX_CHECK_NODES + 1)
            if fi >= len(t.walks):
                t.walks.extend([0] * (fi + 1 - len(t.walks)))
            t.walks[fi] = walk[fi]
            if walk[fi] > MAX_CHECK_NODES and all(walk[d] <= MAX_CHECK_NODES for d in deps):
                self.problem(
                    child_key_path("flags", t.keys[fi]),
                    f"a check would walk more than {MAX_CHECK_NODES:,} condition nodes, "
                    "rules and attributes: its own (a segment's at each reference, a "
                    "shared condition's at each use) and those of every flag it reads "
                    "(prerequisites, prerequisite conditions) once per path that reaches "
                    "it; read large flags from fewer places",
                )
        if self.problems or not self.snapshot_walk():
            # Judged before the slot lists are built: each flag's list holds those of the
            # flags it reads, so many flags reading one that reads 20,000 attributes made
            # lists of 20,000 slots each (4,000 such flags: 80 million ints, 65 s).
            # Within the walk bound their total is below MAX_SNAPSHOT_CHECK_NODES (each
            # slot in a flag's list is counted in its walk).
            return
        for fi in order:
            if fi not in affected:
                continue  # its slot list in the tables is still right
            deps = graph[fi]
            slots = set(t.own_slots[fi])
            for d in deps:
                if d in flag_slots:
                    slots |= flag_slots[d]
                else:
                    start = t.flags[d * FW + F_SLOTS_START]
                    slots.update(t.ipool[start : start + t.flags[d * FW + F_SLOTS_COUNT]])
            flag_slots[fi] = slots
            ordered = sorted(slots)
            if self.calls:  # shared subtrees: their flags' (long) equal lists stored once
                ordered_key = tuple(ordered)
                found, start = self.slot_lists.get(ordered_key, (ordered_key, -1))
                if start < 0:
                    start = self.pool(ordered)
                    self.slot_lists[ordered_key] = (found, start)
                t.flags[fi * FW + F_SLOTS_START] = start
            else:
                t.flags[fi * FW + F_SLOTS_START] = self.pool(ordered)
            t.flags[fi * FW + F_SLOTS_COUNT] = len(ordered)

    def snapshot_walk(self) -> bool:
        """Whether evaluate_all stays within MAX_SNAPSHOT_CHECK_NODES; if not, the
        snapshot is refused naming the flags that cost the most."""
        t = self.t
        total = sum(t.walks)
        if total <= MAX_SNAPSHOT_CHECK_NODES:
            return True
        heaviest = sorted(range(len(t.walks)), key=lambda fi: -t.walks[fi])[:3]
        names = ", ".join(f"{t.keys[fi]} ({t.walks[fi]:,})" for fi in heaviest)
        self.problem(
            "flags",
            f"evaluate_all would walk {total:,} condition nodes, rules and attributes, past "
            f"{MAX_SNAPSHOT_CHECK_NODES:,}: each flag's check in full, a flag read by many "
            f"flags once for each; the checks that walk most: {names}",
        )
        return False
