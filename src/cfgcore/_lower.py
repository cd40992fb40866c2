"""Condition lowering: one ``when`` condition (or segment) to prefix-ordered nodes.

Part of the compiler (:mod:`cfgcore.compiler` assembles the pieces). Also home of
the helpers every part shares: problem reporting with key paths, attribute slots,
constant interning and node emission, and the semantic-version key and regex
compilation that the evaluators reuse.
"""

from __future__ import annotations

import math
import re
from itertools import repeat
from operator import attrgetter, is_not
from typing import TYPE_CHECKING, Any

from cfgcore import _automaton
from cfgcore._layout import (
    K_BOOL,
    K_NUM,
    K_STR,
    NW,
    OP_ALL,
    OP_ANY,
    OP_CALL,
    OP_CONTAINS,
    OP_CONTAINS_ANY,
    OP_CONTAINS_ANY_CI,
    OP_ENDS,
    OP_EQ,
    OP_EQ_CI,
    OP_EXISTS,
    OP_FALSE,
    OP_FLAG,
    OP_GE,
    OP_GT,
    OP_HAS_ANY,
    OP_HAS_ANY_CI,
    OP_IN,
    OP_IN_CI,
    OP_LE,
    OP_LT,
    OP_NE,
    OP_NE_CI,
    OP_NOT,
    OP_NOT_IN,
    OP_NOT_IN_CI,
    OP_REGEX,
    OP_SEMVER_EQ,
    OP_SEMVER_GT,
    OP_SEMVER_LT,
    OP_STARTS,
    OP_STARTS_CI,
)
from cfgcore._regex import compile_regex
from cfgcore.details import exact_value
from cfgcore.errors import Problem, child_key_path
from cfgcore.snapshot import Condition, Prerequisite, Snapshot

if TYPE_CHECKING:
    from cfgcore.compiler import Tables

MAX_CONDITION_DEPTH = 32
# Condition nodes segments may add, inlined: a segment is copied at each reference, so
# a few segments that each reference the one before many times expand exponentially
# (30 references per level: 810,000 nodes at four levels, 24 million at five), a
# compile that never ends and checks that walk it all. Per flag (or segment): what one
# check may walk; per snapshot: what one compile may write. Real flag sets stay far
# below; a flag's own conditions are bounded by the document's size and not counted.
MAX_INLINED_NODES = 100_000
# Tests whose lowering costs the size of their constants (see leaf_nodes)
_SIZED_TESTS = frozenset(("in_", "not_in", "has_any", "starts_with", "ends_with", "contains",
                          "matches"))  # fmt: skip
MAX_SNAPSHOT_INLINED_NODES = 1_000_000
MAX_REGEX_INPUT = 4096  # longer context strings never match a regex
# A condition object that two places of a snapshot share (an importer's GrowthBook saved
# group or flagd $ref evaluator, typed once) is written once: its first use in place,
# every other use as one OP_CALL node naming that subtree. Smaller subtrees are copied
# (a call would save less than it costs to follow).
MIN_SHARED_NODES = 3

_ATTR_OPS = (
    "eq", "ne", "in_", "not_in", "has_any", "lt", "le", "gt", "ge", "semver_eq", "semver_lt",
    "semver_gt", "starts_with", "ends_with", "contains", "matches", "exists",
)  # fmt: skip
_COMBINATORS = ("all", "any", "not_", "segment")
# What makes a child of an ``any`` end a run of ``contains`` tests that one automaton
# stands for (see ConditionLowering.contains_groups): a test that can have an effect
# beyond its answer (a regex search or semver comparison runs Python code, which an
# interrupt can stop; a ``prerequisite`` evaluates a flag, which reads the clock), or
# a condition holding one.
_NOT_PLAIN = (*_COMBINATORS, "prerequisite", "matches", "semver_eq", "semver_lt", "semver_gt")
_OTHER_THAN_CONTAINS = tuple(f for f in (*_ATTR_OPS, *_NOT_PLAIN) if f != "contains")
# _plain_contains reads them all for each of an any's children (an importer's list of
# 10,000 constants): one attrgetter and a C-level map, not a generator of getattrs
_other_than_contains = attrgetter(*_OTHER_THAN_CONTAINS)
_PUBLIC_NAME = {"in_": "in", "not_": "not"}

_SEMVER = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?",
    re.ASCII,  # \d is 0-9 only: "1٠.0.0" (an Arabic-Indic zero) is not 10.0.0
)


# An automaton built for tests of an ``any``: (attribute, ignore_case, acpool offset,
# states, tests it stands for).
_Automaton = tuple[str, bool, int, int, int]


def _plain_contains(cond: Any) -> tuple[str, bool] | None:
    """(attribute, ignore_case) of a condition that is a ``contains`` test and nothing
    else (what :meth:`ConditionLowering.condition` lowers to one OP_CONTAINS node)."""
    if not isinstance(cond, Condition) or type(cond.contains) is not str:
        return None
    attr = cond.attr
    if not isinstance(attr, str) or type(cond.ignore_case) is not bool:
        return None
    if any(map(is_not, _other_than_contains(cond), repeat(None))):
        return None
    return (attr if type(attr) is str else str.__str__(attr)), cond.ignore_case


def _exact_constant(value: Any) -> Any:
    """A condition's constant that is a str, int or float subclass (a flag document built
    in Python with an application's own types) as its base type's value, as a context
    value binds: the constants table is looked up with the value's text or number, so
    the subclass's own ``__hash__``/``__eq__`` (a case-insensitive string type's) must
    not decide, nor its ``casefold`` or ``encode``. Anything else as it is."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool:
        return value  # (exact_value would read a bool as the int it is)
    return exact_value(value)


def semver_key(text: Any) -> tuple | None:
    """A tuple ordering versions by SemVer 2.0 precedence, or None if not a version.

    A leading ``v`` is accepted; build metadata is ignored. A pre-release sorts
    before its release; numeric identifiers sort numerically and before
    alphanumeric ones (semver.org, section 11).
    """
    if not isinstance(text, str) or len(text) > 256:
        return None
    m = _SEMVER.fullmatch(text)  # not match + $: that accepts a trailing newline
    if m is None:
        return None
    major, minor, patch, pre = m.groups()
    if pre is None:
        tail: tuple = (1,)
    else:
        tail = (0,) + tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (int(major), int(minor), int(patch), tail)


def _type_mask(values: list[Any]) -> int:
    mask = 0
    for v in values:
        if v is True or v is False:
            mask |= K_BOOL
        elif isinstance(v, str):
            mask |= K_STR
        else:
            mask |= K_NUM
    return mask


# One OP_FLAG node of a flag: (node, target flag index, variant, variants, off, path).
# Plain data, kept in the tables (Tables.flag_tests) so an incremental compile can write
# the node's want code again when its target flag is recompiled.
FlagTest = tuple[int, int, str | None, tuple[str, ...] | None, bool, str]


def as_prerequisite(pre: Any) -> Prerequisite | None:
    """A prerequisite given as a flag key (a str subclass by its text) or as a
    :class:`Prerequisite`, as a Prerequisite whose ``flag`` is an exact str; None if
    it is neither (the caller reports it)."""
    if isinstance(pre, str):
        return Prerequisite(flag=str.__str__(pre))
    if isinstance(pre, Prerequisite) and isinstance(pre.flag, str):
        if type(pre.flag) is not str:  # a StrEnum of flag names names its text's flag
            return Prerequisite(
                flag=str.__str__(pre.flag), variant=pre.variant, variants=pre.variants, off=pre.off
            )
        return pre
    return None


class ConditionLowering:
    """Shared compiler state and helpers, and the lowering of conditions to nodes."""

    snap: Snapshot
    file: str | None
    t: Tables
    problems: list[Problem]
    slot_index: dict[str, int]
    bad_segments: set[str]
    used_slots: set[int]  # slots touched by the flag being compiled
    segments: dict[str, Condition]  # the snapshot's segments, as compiled (typed)
    compiled_flags: dict[str, Any]  # each flag as compiled (see compiler._Compiler)
    # The inlining budget of the flag or segment being lowered (see begin_nodes)
    node_owner: str = ""
    node_inlined: int = 0
    node_overflow: str = ""
    snapshot_inlined: int = 0
    inlining: int = 0  # segments being inlined around the current condition
    depth_reported: str = ""  # the owner already told its segments nest too deeply
    segment_sizes: dict[str, int] | None = None
    # Shared subtrees (see shared_combinator). Off while segments are checked on their
    # own (those nodes are thrown away) and inside inlined segments (copied, budgeted).
    sharing: bool = False
    # id of a combinator condition lowered without problems -> (the condition, kept so
    # its id stays its own; its root node; its height in levels)
    shared: dict[int, tuple[Condition, int, int]]
    callee_slots: dict[int, frozenset[int]]  # root node -> the slots its subtree reads
    open_conditions: set[int]  # ids of the combinators being lowered (a cycle check)
    deepest: int = 0  # the deepest level reached (a call counts its callee's levels)
    segment_refs: int = 0  # segment references lowered so far
    calls: int = 0  # OP_CALL nodes emitted so far
    # with shared subtrees, a flag's slot list -> (one tuple of it, its start in ipool
    # or -1): flags calling one subtree read the same slots (see _Compiler.own_slots)
    slot_lists: dict[tuple[int, ...], tuple[tuple[int, ...], int]]
    # The ``prerequisite`` conditions of the flag being compiled, one FlagTest per
    # OP_FLAG node (its want code is written once every flag's variants are known:
    # PrerequisiteGraph.prerequisites); None while segments are checked on their own.
    flag_tests: list[FlagTest] | None = None
    flag_test_count: int = 0  # OP_FLAG nodes emitted so far (a subtree holding one is copied)
    # The automata this compile built (see contains_groups), by case mode and constants:
    # an any copied (a segment inlined at each reference) reads the one built first.
    automata: dict[tuple[bool, tuple[bytes, ...]], tuple[int, int]] | None = None
    # Tests whose lowering costs their constants' size (a list's ids, a string's bytes, a
    # regex compiled), by (id of the test, operator) -> (the test, kept so its id stays
    # its own; the node's fields): a segment inlined at each reference emits the node
    # again on the pool, bytes or pattern written the first time, so a reference costs
    # its nodes, which the inlining budget counts, not its constants' size.
    leaf_nodes: dict[tuple[int, str], tuple[Condition, tuple[int, ...]]] | None = None

    # -- helpers ---------------------------------------------------------------------
    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(path=path, message=message, file=self.file))

    def slot(self, name: str) -> int:
        if type(name) is not str:  # a Snapshot built in Python (compiler.flag reports it)
            if not issubclass(type(name), str):
                raise TypeError(f"attribute name {name!r} is not a string")
            # A str subclass (an application's StrEnum of attribute names) names the
            # attribute its text names, as a str subclass constant or flag key does.
            name = str.__str__(name)
        idx = self.slot_index.get(name)
        if idx is None:
            idx = self.slot_index[name] = len(self.t.slots)
            self.t.slots.append(name)
            self.t.ci_slots.append(False)
            self.t.semver_slots.append(False)
            self.t.bucket_slots.append(False)
            self.t.id_slots.append(False)
            self.t.array_slots.append(False)
        self.used_slots.add(idx)
        return idx

    def new_id(self) -> int:
        self.t.n_ids += 1
        return self.t.n_ids - 1

    def const_id(self, value: Any) -> int:
        t = self.t
        if value is True or value is False:
            table: dict[Any, int] = t.bool_ids
        elif isinstance(value, str):
            table = t.str_ids
        else:
            # Ints stay exact (1234567890123456789 must not find 1234567890123456768);
            # 5 and 5.0 are one dict key, so an int and its float twin share an id.
            table = t.num_ids
        found = table.get(value)
        if found is None:
            found = table[value] = self.new_id()
        return found

    def ci_const_id(self, value: str) -> int:
        folded = value.casefold()
        found = self.t.ci_ids.get(folded)
        if found is None:
            found = self.t.ci_ids[folded] = self.new_id()
        return found

    def pool(self, items: list[int]) -> int:
        start = len(self.t.ipool)
        self.t.ipool.extend(items)
        return start

    def emit(self, op: int, slot: int = -1, a: int = 0, b: int = 0, c: int = 0) -> int:
        pos = len(self.t.nodes) // NW
        self.t.nodes.extend((op, slot, a, b, c, pos + 1))
        return pos

    def close(self, pos: int) -> None:
        self.t.nodes[pos * NW + 5] = len(self.t.nodes) // NW

    def begin_nodes(self, owner: str) -> None:
        """Start counting the nodes segments inline into ``owner`` (``flags.KEY``,
        ``segments.NAME``)."""
        self.node_owner = owner
        self.node_inlined = 0
        self.node_overflow = ""

    def end_nodes(self) -> None:
        """Report ``owner`` once if inlining its segments would pass a budget. A reference
        past it is not expanded (it lowers to FALSE), so a refused flag costs no more
        than its document."""
        if self.node_overflow:
            self.problem(
                self.node_owner,
                f"{self.node_overflow}: each reference to a segment copies its conditions "
                "(segments referencing segments multiply); reference fewer",
            )
        self.snapshot_inlined += self.node_inlined
        self.node_overflow = ""

    def within_snapshot_budget(self, inlined: int) -> bool:
        """Whether a snapshot whose segments and flags inline ``inlined`` nodes in all
        fits MAX_SNAPSHOT_INLINED_NODES (read here, where :meth:`inline` reads it)."""
        return inlined <= MAX_SNAPSHOT_INLINED_NODES

    def segment_size(self, name: str, depth: int = 0) -> int:
        """Nodes segment ``name`` lowers to, its own references inlined (an estimate:
        capped past the budget; a reference in a cycle or past the depth limit counts 1)."""
        if self.segment_sizes is None:
            self.segment_sizes = {}
        found = self.segment_sizes.get(name)
        if found is None:
            self.segment_sizes[name] = 1  # while it is measured: a cycle through it
            found = self.segment_sizes[name] = self._size(self.segments[name], depth + 1)
        return found

    def _size(self, cond: Condition, depth: int) -> int:
        if depth > MAX_CONDITION_DEPTH:
            return 1
        if cond.segment is not None and cond.segment in self.segments:
            return self.segment_size(cond.segment, depth)
        if cond.not_ is not None:
            return 1 + self._size(cond.not_, depth + 1)
        children = cond.all if cond.all is not None else cond.any
        total = 2  # the node (a negated exists takes two)
        for child in children or ():
            total = min(total + self._size(child, depth + 1), MAX_SNAPSHOT_INLINED_NODES + 1)
        return total

    # -- conditions ------------------------------------------------------------------
    def condition(self, cond: Condition, path: str, depth: int, stack: tuple[str, ...]) -> None:
        """Emit ``cond`` in prefix order; on a problem, record it and emit FALSE."""
        if depth > self.deepest:
            self.deepest = depth
        if depth > MAX_CONDITION_DEPTH:
            owner = self.node_owner
            if owner and path != owner and not path.startswith(owner + "."):
                # Deep inside segments inlined into the flag (or segment) being compiled:
                # the nesting is the chain's, not the innermost segment's (which may be a
                # single test). Named once, at the owner, with the chain.
                if self.depth_reported != owner:
                    self.depth_reported = owner
                    chain = " -> ".join(stack)
                    self.problem(
                        owner,
                        f"conditions nested deeper than {MAX_CONDITION_DEPTH} levels "
                        f"through segments {chain}",
                    )
            else:
                self.problem(path, f"conditions nested deeper than {MAX_CONDITION_DEPTH} levels")
            self.emit(OP_FALSE)
            return
        attr_ops = [f for f in _ATTR_OPS if getattr(cond, f) is not None]
        combos = [f for f in _COMBINATORS if getattr(cond, f) is not None]
        chosen = attr_ops + combos
        if cond.prerequisite is not None:
            chosen.append("prerequisite")
        if len(chosen) != 1:
            if not chosen:
                self.problem(path, "condition has no operator")
            else:
                names = ", ".join(_PUBLIC_NAME.get(n, n) for n in chosen)
                self.problem(path, f"condition has more than one operator ({names})")
            self.emit(OP_FALSE)
            return
        op = chosen[0]
        if op == "prerequisite":
            if cond.attr is not None or cond.ignore_case:
                self.problem(path, "'prerequisite' takes no attr/ignore_case")
            self.flag_test(cond.prerequisite, f"{path}.prerequisite")
            return
        if combos:
            if cond.attr is not None or cond.ignore_case:
                self.problem(path, f"'{_PUBLIC_NAME.get(op, op)}' takes no attr/ignore_case")
            if self.sharing and not self.inlining and op != "segment":
                self.shared_combinator(cond, op, path, depth, stack)
            else:
                self.combinator(cond, op, path, depth, stack)
            return
        if cond.attr is None:
            self.problem(path, f"'{_PUBLIC_NAME.get(op, op)}' needs an 'attr'")
            self.emit(OP_FALSE)
            return
        self.attribute_test(cond, op, path)

    def shared_combinator(
        self, cond: Condition, op: str, path: str, depth: int, stack: tuple[str, ...]
    ) -> None:
        """:meth:`combinator`, or one OP_CALL node when this very condition object was
        lowered before without problems. The callee is always a finished subtree written
        earlier in the node table, so no call can reach itself; a call counts one level
        plus its callee's levels toward MAX_CONDITION_DEPTH (where that would pass the
        limit, the subtree is copied as before, and refused with the same paths)."""
        key = id(cond)
        hit = self.shared.get(key)
        if hit is not None and depth + 1 + hit[2] <= MAX_CONDITION_DEPTH:
            self.emit(OP_CALL, -1, hit[1])
            self.calls += 1
            self.used_slots.update(self.slots_of(hit[1]))
            if depth + 1 + hit[2] > self.deepest:
                self.deepest = depth + 1 + hit[2]
            return
        if key in self.open_conditions:  # only a snapshot built in Python can hold one
            self.problem(path, "a condition that contains itself (a reference cycle)")
            self.emit(OP_FALSE)
            return
        outer_deepest, self.deepest = self.deepest, depth
        problems, segment_refs = len(self.problems), self.segment_refs
        flag_tests = self.flag_test_count
        pos = len(self.t.nodes) // NW
        self.open_conditions.add(key)
        try:
            self.combinator(cond, op, path, depth, stack)
        finally:
            self.open_conditions.discard(key)
            height = self.deepest - depth
            self.deepest = max(outer_deepest, self.deepest)
        if (
            hit is None
            and len(self.problems) == problems
            and self.segment_refs == segment_refs  # segments are copied (budgeted) instead
            # an OP_FLAG node belongs to one flag, which writes its want code (again on an
            # incremental compile): a subtree holding one is copied, never called
            and self.flag_test_count == flag_tests
            and self.subtree_weight(pos) >= MIN_SHARED_NODES
        ):
            self.shared[key] = (cond, pos, height)

    def subtree_weight(self, pos: int) -> int:
        """Nodes written from node ``pos`` on, an automaton counted as the tests it stands
        for (a call to it saves what copying them would cost)."""
        n = self.t.nodes
        end = len(n) // NW
        weight = end - pos
        if weight < MIN_SHARED_NODES:
            for i in range(pos, end):
                if n[i * NW] == OP_CONTAINS_ANY or n[i * NW] == OP_CONTAINS_ANY_CI:
                    weight += n[i * NW + 4] - 1
        return weight

    def slots_of(self, root: int) -> frozenset[int]:
        """The slots the subtree at node ``root`` reads (its calls' included), what a
        call to it adds to the flag's slots. Read from the nodes once per subtree: only
        snapshots with shared subtrees pay for it."""
        found = self.callee_slots.get(root)
        if found is None:
            n = self.t.nodes
            slots: set[int] = set()
            for i in range(root, n[root * NW + 5]):
                if n[i * NW] == OP_CALL:
                    slots.update(self.slots_of(n[i * NW + 2]))
                elif n[i * NW + 1] >= 0:
                    slots.add(n[i * NW + 1])
            found = self.callee_slots[root] = frozenset(slots)
        return found

    def root_condition(self, cond: Condition, path: str) -> int:
        """Lower a rule's condition and return its root node: the shared subtree itself
        when the whole condition is one (no call node to follow)."""
        t = self.t
        pos = len(t.nodes) // NW
        self.condition(cond, path, 0, ())
        if len(t.nodes) == (pos + 1) * NW and t.nodes[pos * NW] == OP_CALL:
            target = t.nodes[pos * NW + 2]
            del t.nodes[pos * NW :]
            return target
        return pos

    def combinator(
        self, cond: Condition, op: str, path: str, depth: int, stack: tuple[str, ...]
    ) -> None:
        if op == "segment":
            self.segment_refs += 1
            name = cond.segment
            assert name is not None
            seg = self.segments.get(name)
            if seg is None:
                self.problem(f"{path}.segment", f"unknown segment {name!r}")
                self.emit(OP_FALSE)
            elif name in stack:
                cycle = " -> ".join((*stack[stack.index(name) :], name))
                self.problem(child_key_path("segments", name), f"segment reference cycle: {cycle}")
                self.bad_segments.add(name)
                self.emit(OP_FALSE)
            elif name in self.bad_segments:
                self.emit(OP_FALSE)  # its own problems were reported at segments.<name>
            elif self.node_overflow or not self.inline(name):
                self.emit(OP_FALSE)  # reported by end_nodes, at the flag or segment
            else:
                before = len(self.problems)
                self.inlining += 1  # its own references are counted in its size
                try:
                    self.condition(seg, child_key_path("segments", name), depth + 1, (*stack, name))
                finally:
                    self.inlining -= 1
                if len(self.problems) > before:
                    self.bad_segments.add(name)
            return
        if op == "not_":
            assert cond.not_ is not None
            pos = self.emit(OP_NOT)
            self.condition(cond.not_, f"{path}.not", depth + 1, stack)
            self.close(pos)
            return
        children = cond.all if op == "all" else cond.any
        assert children is not None
        groups: dict[int, _Automaton | None] = {}
        if op == "any" and len(children) >= _automaton.MIN_CONTAINS_ANY:
            groups = self.contains_groups(children, depth + 1)
        skipped = sum(1 for g in groups.values() if g is None)
        pos = self.emit(OP_ALL if op == "all" else OP_ANY, a=len(children) - skipped)
        for i, child in enumerate(children):
            if i not in groups:
                self.condition(child, f"{path}.{op}[{i}]", depth + 1, stack)
                continue
            group = groups[i]
            if group is not None:  # None: a test the automaton of an earlier child holds
                if depth + 1 > self.deepest:
                    self.deepest = depth + 1
                attr, ci, offset, states, tests = group
                slot = self.slot(attr)
                if ci:
                    self.t.ci_slots[slot] = True
                code = OP_CONTAINS_ANY_CI if ci else OP_CONTAINS_ANY
                self.emit(code, slot, offset, states, tests)
        self.close(pos)

    def contains_groups(
        self, children: list[Condition], depth: int
    ) -> dict[int, _Automaton | None]:
        """The ``contains`` children of an ``any`` (at ``depth``) that automata stand for:
        child index -> the automaton built for the tests from there (attribute, case
        mode, acpool offset, states, tests), or None for a test an automaton at an
        earlier index holds.

        The tests of one attribute in one case mode become one automaton when there are
        at least MIN_CONTAINS_ANY of them, placed at the first. The ``any`` still stops
        at its first true child, so a child with effects beyond its answer (see
        _NOT_PLAIN) ends the runs: the children before it and after it are grouped apart,
        and whatever the automaton finds, the same children are evaluated as before.
        Past the automata's bounds the tests stay as they are (same answers)."""
        if not self.sharing or depth > MAX_CONDITION_DEPTH:
            return {}  # segments checked alone (nodes thrown away), or refused too deep
        found: dict[int, _Automaton | None] = {}
        runs: dict[tuple[str, bool], list[int]] = {}
        for i, child in enumerate(children):
            key = _plain_contains(child)
            if key is not None:
                runs.setdefault(key, []).append(i)
            elif not isinstance(child, Condition) or any(
                getattr(child, f) is not None for f in _NOT_PLAIN
            ):
                self.contains_runs(children, runs, found)
        self.contains_runs(children, runs, found)
        return found

    def contains_runs(
        self,
        children: list[Condition],
        runs: dict[tuple[str, bool], list[int]],
        found: dict[int, _Automaton | None],
    ) -> None:
        """One automaton for each run of ``runs`` long enough (into ``found``); clears
        ``runs``."""
        t = self.t
        for (attr, ci), members in runs.items():
            if len(members) < _automaton.MIN_CONTAINS_ANY:
                continue
            texts = [str.__str__(children[i].contains) for i in members]  # exact: _plain_contains
            unique = sorted(
                {(v.casefold() if ci else v).encode("utf-8", "surrogatepass") for v in texts}
            )
            if self.automata is None:
                self.automata = {}
            key = (ci, tuple(unique))
            built = self.automata.get(key)
            if built is None:
                bound = sum(len(n) for n in unique) + 1  # states, at most
                if (
                    bound > _automaton.MAX_AUTOMATON_STATES
                    or len(t.acpool) + _automaton.cells(bound) > _automaton.MAX_ACPOOL_CELLS
                ):
                    continue  # too large to build here: tested one by one
                offset = len(t.acpool)
                built = _automaton.build(unique, t.acpool)
                if len(t.acpool) > _automaton.MAX_ACPOOL_CELLS:  # its rows of 256 passed it
                    del t.acpool[offset:]
                    continue
                self.automata[key] = built
            found[members[0]] = (attr, ci, built[0], built[1], len(members))
            for i in members[1:]:
                found[i] = None
        runs.clear()

    def inline(self, name: str) -> bool:
        """Whether segment ``name`` fits the budgets (it is then counted against them)."""
        if self.inlining:
            return True  # inside a segment being inlined: counted with it
        size = self.segment_size(name)
        if self.node_inlined + size > MAX_INLINED_NODES:
            self.node_overflow = (
                f"conditions with their segments inlined exceed {MAX_INLINED_NODES:,} nodes"
            )
            return False
        if self.snapshot_inlined + self.node_inlined + size > MAX_SNAPSHOT_INLINED_NODES:
            self.node_overflow = (
                f"the snapshot's segments inlined exceed {MAX_SNAPSHOT_INLINED_NODES:,} nodes"
            )
            return False
        self.node_inlined += size
        return True

    def attribute_test(self, cond: Condition, op: str, path: str) -> None:
        if op not in _SIZED_TESTS:
            self._attribute_test(cond, op, path)
            return
        if self.leaf_nodes is None:
            self.leaf_nodes = {}
        key = (id(cond), op)
        hit = self.leaf_nodes.get(key)
        if hit is not None and hit[0] is cond:
            assert cond.attr is not None
            self.slot(cond.attr)  # the flag reads it (used_slots)
            self.emit(*hit[1])
            return
        problems, start = len(self.problems), len(self.t.nodes)
        self._attribute_test(cond, op, path)
        if len(self.problems) == problems and len(self.t.nodes) == start + NW:
            self.leaf_nodes[key] = (cond, tuple(self.t.nodes[start : start + NW - 1]))

    def _attribute_test(self, cond: Condition, op: str, path: str) -> None:
        assert cond.attr is not None
        value = _exact_constant(getattr(cond, op))
        where = f"{path}.{_PUBLIC_NAME.get(op, op)}"
        slot = self.slot(cond.attr)
        ci = cond.ignore_case
        t = self.t
        if op in ("eq", "ne"):
            if ci:
                if not isinstance(value, str):
                    self.problem(where, "ignore_case needs a string constant")
                    self.emit(OP_FALSE)
                    return
                t.ci_slots[slot] = True
                self.emit(OP_EQ_CI if op == "eq" else OP_NE_CI, slot, self.ci_const_id(value))
                return
            if not self.valid_scalar(value, where):
                return
            t.id_slots[slot] = True
            if op == "eq":
                self.emit(OP_EQ, slot, self.const_id(value))
            else:
                self.emit(OP_NE, slot, self.const_id(value), _type_mask([value]))
            return
        if op in ("in_", "not_in", "has_any"):
            values = [_exact_constant(v) for v in value]
            if op == "has_any":
                # an array value binds as its elements' ids (the case-folded ones too
                # where ignore_case reads them): one slot, whatever its length
                t.array_slots[slot] = True
            if ci:
                if not all(isinstance(v, str) for v in values):
                    self.problem(where, "ignore_case needs string constants")
                    self.emit(OP_FALSE)
                    return
                t.ci_slots[slot] = True
                ids = sorted({self.ci_const_id(v) for v in values})
                code = {"in_": OP_IN_CI, "not_in": OP_NOT_IN_CI, "has_any": OP_HAS_ANY_CI}[op]
                self.emit(code, slot, self.pool(ids), len(ids))
                return
            if not all(self.valid_scalar(v, where, emit=False) for v in values):
                self.emit(OP_FALSE)
                return
            ids = sorted({self.const_id(v) for v in values})
            t.id_slots[slot] = True
            if op == "in_":
                self.emit(OP_IN, slot, self.pool(ids), len(ids))
            elif op == "has_any":
                self.emit(OP_HAS_ANY, slot, self.pool(ids), len(ids))
            else:
                # no constants: no value is among them, so any usable value holds
                mask = _type_mask(values) if values else K_STR | K_NUM | K_BOOL
                self.emit(OP_NOT_IN, slot, self.pool(ids), len(ids), mask)
            return
        if op in ("lt", "le", "gt", "ge"):
            number = self.number(value, where)
            if number is None:
                self.emit(OP_FALSE)
                return
            if math.isnan(number):
                self.problem(where, "NaN is not a comparable number")
                self.emit(OP_FALSE)
                return
            t.nums.append(number)
            code = {"lt": OP_LT, "le": OP_LE, "gt": OP_GT, "ge": OP_GE}[op]
            self.emit(code, slot, len(t.nums) - 1)
            return
        if op in ("starts_with", "ends_with", "contains"):
            base = {"starts_with": OP_STARTS, "ends_with": OP_ENDS, "contains": OP_CONTAINS}[op]
            if ci:
                t.ci_slots[slot] = True
                value = value.casefold()
                base += OP_STARTS_CI - OP_STARTS
            data = value.encode("utf-8", "surrogatepass")
            off = len(t.sbytes)
            t.sbytes += data
            self.emit(base, slot, off, len(data))
            return
        if op == "matches":
            try:
                pattern = compile_regex(value, ci)
            except ValueError as exc:  # not linear without RE2
                self.problem(where, f"refused regular expression: {exc}")
                self.emit(OP_FALSE)
                return
            except Exception as exc:  # re.error / re2.error
                self.problem(where, f"invalid regular expression: {exc}")
                self.emit(OP_FALSE)
                return
            t.objs.append(pattern)
            self.emit(OP_REGEX, slot, len(t.objs) - 1)
            return
        if op.startswith("semver_"):
            key = semver_key(value)
            if key is None:
                self.problem(where, f"not a semantic version: {value!r}")
                self.emit(OP_FALSE)
                return
            t.semver_slots[slot] = True
            t.objs.append(key)
            code = {"semver_eq": OP_SEMVER_EQ, "semver_lt": OP_SEMVER_LT}.get(op, OP_SEMVER_GT)
            self.emit(code, slot, len(t.objs) - 1)
            return
        if op == "exists":
            if value:
                self.emit(OP_EXISTS, slot)
            else:
                pos = self.emit(OP_NOT)
                self.emit(OP_EXISTS, slot)
                self.close(pos)
            return
        raise AssertionError(op)  # pragma: no cover - _ATTR_OPS is exhaustive

    def flag_test(self, pre: Any, where: str) -> None:
        """An OP_FLAG node reading flag ``pre.flag``: its target now, its want code once
        every flag's variants are known (see :attr:`flag_tests`)."""
        typed = as_prerequisite(pre)
        if typed is None:
            self.problem(where, f"expected a flag key or a prerequisite, got {pre!r}")
            self.emit(OP_FALSE)
            return
        target = self.t.index.get(typed.flag, -1)
        if target < 0:
            self.problem(f"{where}.flag", f"unknown flag {typed.flag!r}")
            self.emit(OP_FALSE)
            return
        pos = self.emit(OP_FLAG, -1, target)
        self.flag_test_count += 1
        if self.flag_tests is not None:
            variants = None if typed.variants is None else tuple(typed.variants)
            self.flag_tests.append((pos, target, typed.variant, variants, typed.off, where))

    def valid_scalar(self, value: Any, where: str, emit: bool = True) -> bool:
        bad = isinstance(value, float) and math.isnan(value)
        if bad:
            self.problem(where, "NaN never equals anything; use exists or a range")
        elif isinstance(value, int) and value is not True and value is not False:
            bad = self.number(value, where) is None
        if bad and emit:
            self.emit(OP_FALSE)
        return not bad

    def number(self, value: Any, where: str) -> float | None:
        """``value`` as a float, or None with a problem if no double can hold it (a
        400-digit int: a typo or an attack, never a meaningful constant)."""
        try:
            return float(value)
        except OverflowError:
            bits = value.bit_length() if isinstance(value, int) else 0
            self.problem(where, f"number out of range (a {bits}-bit integer)")
            return None
