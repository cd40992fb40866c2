"""Lower a decoded :class:`~cfgcore.snapshot.Snapshot` to flat lookup tables.

This is the readable half of the evaluation core: it checks the snapshot (every
problem is collected and reported at once, each with its key path), interns names
and constants to integers and writes flat integer/float arrays that the evaluators
walk. The compiled evaluator (``cfgcore._eval``) copies the arrays into C memory;
the reference evaluator (``cfgcore._eval_py``) walks them as Python lists.

The work is split along its seams: condition lowering (:mod:`cfgcore._lower`),
flag records (:mod:`cfgcore._records`) and the prerequisite graph
(:mod:`cfgcore._prereq`); this module holds :class:`Tables` and the entry points.
Opcodes, record widths and offsets and reason codes have one home,
``_layout.pxd`` (its Python twin is :mod:`cfgcore._layout`; every name is
re-exported here).

Table layout (all integer arrays are flat, fixed-width records):

* ``slots``: context attribute names; a condition refers to an attribute by slot.
* constants: every string, number and boolean constant gets an integer id
  (``str_ids``, ``num_ids``, ``bool_ids``; case-folded strings in ``ci_ids``), so
  ``eq``/``in`` compare integers. A context value gets its id once, when bound.
* ``nodes``: conditions in prefix order, ``NW`` ints per node:
  ``op, slot, a, b, c, end`` where ``end`` is the index after the node's subtree
  (so ``all``/``any`` can skip a child without walking it). A condition object the
  snapshot holds in several places (an importer's shared group) is written once; its
  other uses are ``OP_CALL`` nodes whose ``a`` is that subtree's root, always written
  earlier (see ``ConditionLowering.shared_combinator``).
* ``flags`` (``FW`` ints each), ``rules`` (``RW``), ``prereqs`` (``PW``) and
  ``splits`` (pairs ``cumulative threshold, variant``) describe flags;
  ``ipool`` holds variable-length integer lists (sorted ``in`` ids, bucket slots,
  each flag's slots), ``sbytes`` string constants for prefix/suffix/contains and
  the bucketing salts, ``acpool`` (int32 cells) the automata of ``OP_CONTAINS_ANY``
  nodes (see :mod:`cfgcore._automaton`).

Bucketing (scheme ``murmur3``, id 0): ``bucket = murmur3_x86_32(utf8(f"{salt}:{value}"),
seed=0) % 100000``; a split's cumulative thresholds are weights x 1000.
"""

from __future__ import annotations

import dataclasses
import logging
import unicodedata
from array import array
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import msgspec

from cfgcore import _automaton
from cfgcore._frozen import thaw, untrack, untrack_atoms
from cfgcore._layout import (  # noqa: F401 - re-exported: the layout's historical home
    BUCKETS,
    DEDUP_SHARDS,
    ERR_FLAG_NOT_FOUND,
    ERR_GENERAL,
    ERR_INVALID_CONTEXT,
    ERR_TYPE_MISMATCH,
    F_BOOL,
    F_BUCKET_COUNT,
    F_BUCKET_START,
    F_DEFAULT,
    F_ENABLED,
    F_OFF,
    F_PRE_COUNT,
    F_PRE_START,
    F_RULE_COUNT,
    F_RULE_START,
    F_SALT_LEN,
    F_SALT_OFF,
    F_SCHED,
    F_SCHEME,
    F_SLOTS_COUNT,
    F_SLOTS_START,
    F_VAR_BASE,
    F_VAR_COUNT,
    FW,
    H_BY_COUNT,
    H_BY_START,
    H_HI,
    H_LO,
    H_SALT_LEN,
    H_SALT_OFF,
    H_SCHEME,
    H_SEED,
    H_SPACE,
    H_SUFFIX_LEN,
    H_SUFFIX_OFF,
    HW,
    K_BOOL,
    K_MISSING,
    K_NUM,
    K_OTHER,
    K_STR,
    MAX_ARRAY,
    N_ERRORS,
    N_REASONS,
    NW,
    OP_ALL,
    OP_ANY,
    OP_CALL,
    OP_CONTAINS,
    OP_CONTAINS_ANY,
    OP_CONTAINS_ANY_CI,
    OP_CONTAINS_CI,
    OP_ENDS,
    OP_ENDS_CI,
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
    P_OFF,
    P_ON,
    P_SET,
    PW,
    R_BUCKET_COUNT,
    R_BUCKET_START,
    R_COND,
    R_GATE_COUNT,
    R_GATE_START,
    R_HASH,
    R_ROLLOUT,
    R_SERVE,
    R_SPLIT_COUNT,
    R_SPLIT_START,
    REASON_DEFAULT,
    REASON_DISABLED,
    REASON_ERROR,
    REASON_MATCH,
    REASON_PREREQ,
    REASON_SPLIT,
    REASON_STATIC,
    RECORD_BYTES,
    RW,
    SCHEME_FLAGD_V2,
    SCHEME_FLAGD_V3,
    SCHEME_FLAGD_V3_CBOR,
    SCHEME_FLAGD_V3_PAIR,
    SCHEME_GROWTHBOOK_V1,
    SCHEME_GROWTHBOOK_V2,
    SCHEME_MURMUR3,
    V_ARRAY,
    V_BOOL,
    V_MIXED,
    V_NULL,
    V_NUM,
    V_OBJECT,
    V_STR,
)
from cfgcore._lower import (  # noqa: F401 - re-exported public helpers
    MAX_CONDITION_DEPTH,
    MAX_INLINED_NODES,
    MAX_REGEX_INPUT,
    MAX_SNAPSHOT_INLINED_NODES,
    ConditionLowering,
    FlagTest,
    compile_regex,
    semver_key,
)
from cfgcore._msgspec_errors import msgspec_problem
from cfgcore._prereq import (  # noqa: F401
    MAX_CHECK_NODES,
    MAX_PREREQUISITE_DEPTH,
    MAX_PREREQUISITE_EVALUATIONS,
    PrerequisiteGraph,
)
from cfgcore._reclaim import dismantle
from cfgcore._records import (  # noqa: F401
    BUCKETING_SCHEMES,
    DEFAULT_BUCKET_BY,
    FlagRecords,
    freeze,
    value_kind,
)
from cfgcore.details import exact_value
from cfgcore.errors import (
    Problem,
    SnapshotError,
    child_key_path,
    join_key_paths,
    parse_key_path,
    printable_name,
)
from cfgcore.snapshot import (
    MAX_VALUE_DEPTH,
    Condition,
    Flag,
    Rule,
    Snapshot,
    _metadata_key_problem,
    _too_deep,
    gc_paused,
    is_decoded,
    unordered_field,
)


class Tables:
    """The compiled form of one snapshot: flat arrays plus the lookup dicts.

    Immutable by convention: evaluators copy or read it, nobody writes it after
    :func:`compile_snapshot` returns.
    """

    __slots__ = (
        "keys", "index", "slots", "ci_slots", "semver_slots", "bucket_slots", "id_slots",
        "array_slots", "str_ids", "ci_ids", "num_ids",
        "bool_ids", "nodes", "ipool", "nums", "sbytes", "objs", "flags", "rules", "prereqs",
        "splits", "hashes", "sched_start", "sched_end", "values", "variant_names", "value_kinds",
        "flag_kinds", "is_true", "source", "n_ids", "own_slots", "flag_tests", "garbage",
        "walks", "acpool", "ac_full", "inlined", "segments_inlined", "deps", "readers",
    )  # fmt: skip

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.index: dict[str, int] = {}
        self.slots: list[str] = []
        self.ci_slots: list[bool] = []
        self.semver_slots: list[bool] = []
        self.bucket_slots: list[bool] = []  # slots some flag or rule buckets by
        self.id_slots: list[bool] = []  # slots compared by eq/ne/in/not_in (need constant ids)
        self.array_slots: list[bool] = []  # slots has_any reads: an array binds its elements' ids
        self.str_ids: dict[str, int] = {}
        self.ci_ids: dict[str, int] = {}
        self.num_ids: dict[int | float, int] = {}  # ints kept exact
        self.bool_ids: dict[bool, int] = {}
        self.nodes: list[int] = []
        self.ipool: list[int] = []
        self.nums: list[float] = []
        self.sbytes = bytearray()
        self.objs: list[Any] = []
        self.flags: list[int] = []
        self.rules: list[int] = []
        self.prereqs: list[int] = []
        self.splits: list[int] = []
        self.hashes: list[int] = []  # HW-int hashing records (imported flags' bucketing)
        self.sched_start: list[float] = []
        self.sched_end: list[float] = []
        self.values: list[Any] = []
        self.variant_names: list[str] = []
        self.value_kinds: list[int] = []
        self.flag_kinds: list[int] = []
        self.is_true: list[bool] = []
        self.source: Snapshot | None = None
        self.n_ids = 0
        # Per flag, the slots its own rules read (before adding its prerequisites'):
        # what an incremental recompile needs to redo the unions.
        self.own_slots: list[tuple[int, ...]] = []
        # Per flag, its ``prerequisite`` conditions' OP_FLAG nodes (see _lower.FlagTest):
        # edges of the prerequisite graph, whose want codes an incremental recompile of
        # their target writes again.
        self.flag_tests: list[tuple[FlagTest, ...]] = []
        # Records left unreachable by incremental recompiles (see compile_incremental).
        self.garbage = 0
        # Per flag, the condition nodes, rules and attributes one check of it may walk,
        # the flags it reads included (see _prereq.MAX_CHECK_NODES): evaluate_all walks
        # their sum.
        self.walks: list[int] = []
        # The automata of OP_CONTAINS_ANY nodes (int32 cells, see cfgcore._automaton),
        # and the cells a full compile left: incremental compiles leave the automata of
        # the flags they replace behind, so past twice that a compile starts afresh.
        self.acpool: array = _automaton.new_pool()
        self.ac_full = 0
        # Per flag, the nodes its segments inline (see _lower.MAX_SNAPSHOT_INLINED_NODES),
        # and the segments' own: an incremental compile counts the flags it reuses with
        # the ones it compiles, as the full compile counts every flag.
        self.inlined: list[int] = []
        self.segments_inlined = 0
        # The prerequisite graph (see _prereq): per flag, the flags one check of it reads
        # (its prerequisites found, then its ``prerequisite`` conditions' targets), and
        # the flags that read it (sorted): what an incremental compile walks instead of
        # every flag's records.
        self.deps: list[tuple[int, ...]] = []
        self.readers: list[tuple[int, ...]] = []

    def settle(self) -> Tables:
        """Take the tables' lists of numbers, bools and text, and the frozen variant
        values, out of the cyclic garbage collector (they can hold no cycle), and return
        ``self``. Millions of items long for a large document, they were walked item by
        item at every collection of the older generations while the snapshot lived (90
        ms for 43,000 flags), and once more just after each compile. Called when a
        compile has filled them."""
        for name in _ATOM_LISTS:
            untrack_atoms(getattr(self, name))
        untrack(self.own_slots, tuple)  # tuples of slot numbers
        untrack(self.deps, tuple)  # tuples of flag numbers
        untrack(self.readers, tuple)
        untrack(self.values, tuple)  # the variant values, frozen (read-only) containers
        return self

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        # Pickled (a compiled snapshot pickles as its tables) with the variant values as
        # plain dicts and lists, frozen again when loaded (the frozen containers pickle
        # too; plain ones keep the pickle readable by any release).
        state = {name: getattr(self, name) for name in Tables.__slots__}
        state["values"] = [thaw(v) for v in self.values]
        return _load_tables, (state,)

    def copy(self) -> Tables:
        """A copy whose lists and dicts can be extended without touching this one."""
        out = Tables.__new__(Tables)
        for name in Tables.__slots__:
            value = getattr(self, name)
            if type(value) is list:
                value = _copied(value)
            elif isinstance(value, (list, dict, bytearray)):
                value = value.copy()
            elif isinstance(value, array):
                value = value[:]
            setattr(out, name, value)
        return out


def _copied(items: list[Any], chunk: int = 65536) -> list[Any]:
    """A copy of ``items`` made ``chunk`` items at a time. A table list of a large
    document holds millions of items; copied in one C call (fresh memory for all of
    them) it kept every other thread from the GIL for up to 30 ms, while between
    two chunks another thread that waited its switch interval takes it."""
    out = items[:chunk]
    for start in range(chunk, len(items), chunk):
        out += items[start : start + chunk]
    return out


#: The :class:`Tables` lists that hold only ints, floats, bools and text.
_ATOM_LISTS = (
    "keys", "slots", "ci_slots", "semver_slots", "bucket_slots", "id_slots", "array_slots",
    "nodes", "ipool", "nums", "flags", "rules", "prereqs", "splits", "hashes", "sched_start",
    "sched_end", "variant_names", "value_kinds", "flag_kinds", "is_true", "walks", "inlined",
)  # fmt: skip

_log = logging.getLogger(__name__)


def _load_tables(state: dict[str, Any]) -> Tables:
    """Tables from the state ``Tables.__reduce__`` pickled."""
    t = Tables.__new__(Tables)
    state.setdefault("walks", [])  # pickled before it was kept: counted 0 by later compiles
    state.setdefault("acpool", _automaton.new_pool())  # pickled before automata existed
    state.setdefault("ac_full", 0)
    # pickled before they were kept: not known (-1), so the next compile is a full one
    state.setdefault("inlined", [])
    state.setdefault("segments_inlined", -1)
    # pickled before the graph was kept: [] (the next compile is a full one)
    state.setdefault("deps", [])
    state.setdefault("readers", [])
    for name in Tables.__slots__:
        setattr(t, name, state[name])
    t.values = [freeze(v) for v in t.values]
    return t.settle()


class _Compiler(FlagRecords, PrerequisiteGraph):
    """One compile: condition lowering, flag records and the prerequisite graph,
    each in its own module, over one set of tables."""

    def __init__(self, snapshot: Snapshot, file: str | None) -> None:
        self.snap = snapshot
        self.file = file
        self.t = Tables()
        self.t.source = snapshot
        self.problems: list[Problem] = []
        self.warnings: list[str] = []  # logged once the compile succeeds (log_warnings)
        self.slot_index: dict[str, int] = {}
        self.bad_segments: set[str] = set()
        self.used_slots: set[int] = set()  # slots touched by the flag being compiled
        # A snapshot built or derived in Python is not type-checked: each flag and segment
        # compiled from it is checked as the decoders check a document (see _retyped).
        self.decoded = is_decoded(snapshot)
        # What was compiled for each flag key (typed, or a stand-in for a refused flag) and
        # each segment: the prerequisite graph and segment inlining read these, never
        # the untyped originals.
        self.compiled_flags: dict[str, Flag] = {}
        self.segments = snapshot.segments if self.decoded else dict(snapshot.segments)
        self.shared = {}  # condition objects written once, called from other uses
        self.open_conditions = set()
        self.callee_slots = {}
        # Slot lists stored once when flags call shared subtrees (see own_slots)
        self.slot_lists = {}

    # -- flags -----------------------------------------------------------------------
    def compile(self) -> Tables:
        t = self.t
        snap = self.snap
        written = list(snap.flags)
        # A str subclass key (FeatureFlag.CHECKOUT, an application's StrEnum) is the flag
        # its text names, as the checks look it up: the tables hold exact strs only.
        # Indexed first: a segment's ``prerequisite`` conditions name flags.
        t.keys = [_exact_key(k) for k in written]
        t.index = {k: i for i, k in enumerate(t.keys)}
        for name, seg in snap.segments.items():  # report segment problems once, at their path
            start_nodes, start_problems = len(t.nodes), len(self.problems)
            self.begin_nodes(child_key_path("segments", name))
            self.condition_checked(seg, name)
            self.end_nodes()
            if len(self.problems) > start_problems:
                self.bad_segments.add(name)
            del t.nodes[start_nodes:]
        t.segments_inlined = self.snapshot_inlined
        self.sharing = True  # from here on nodes stay: a shared subtree is called
        if len(t.index) < len(t.keys):  # a str subclass of another hash and a str alike
            seen: set[Any] = set()
            for key in t.keys:
                if key in seen:
                    self.problem(child_key_path("flags", key), "the same flag key written twice")
                seen.add(key)
        self.key_forms()
        for fi, key in enumerate(t.keys):
            self.used_slots = set()
            self.flag_tests = []
            self.begin_nodes(child_key_path("flags", key))
            calls = self.calls
            self.flag(fi, key, snap.flags[written[fi]])
            self.end_nodes()
            t.inlined.append(self.node_inlined)
            t.own_slots.append(self.own_slots(calls))
            t.flag_tests.append(tuple(self.flag_tests))
        self.flag_tests = None
        self.prerequisites()
        if self.problems:
            raise SnapshotError(self.problems)
        t.ac_full = len(t.acpool)
        self.log_warnings()
        return t.settle()

    def flag(self, fi: int, key: str, flag: Flag) -> None:
        """FlagRecords.flag, after refusing variant values nested too deeply: a Snapshot
        built in Python (not decoded, so not depth-checked) may hold one, and freezing it
        would raise a bare RecursionError instead of naming the flag."""
        if isinstance(flag, Flag) and isinstance(flag.variants, dict):
            # Names by their text and the dict's items as it stores them: a str subclass
            # name, or a dict subclass, built in Python may raise from its own methods.
            pairs = [(_exact_key(n), v) for n, v in dict.items(flag.variants)]
            deep = {
                name: path
                for name, value in pairs
                if (path := _too_deep({"flags": {key: {"variants": {name: value}}}}))
            }
            if deep:
                for path in deep.values():
                    self.problem(path, f"nested deeper than {MAX_VALUE_DEPTH} levels")
                variants = {n: None if n in deep else v for n, v in pairs}
                flag = msgspec.structs.replace(flag, variants=variants)
        if type(key) is not str:
            self.problem("flags", f"a flag key must be a string, got {key!r}")
            super().flag(fi, "_", _STAND_IN)  # a record, so the compile can go on
            return
        if not self.decoded:
            typed = None
            where = child_key_path("flags", key)
            if not self.expands_past_budget(_rule_conditions(flag), where):
                typed = _retyped(flag, Flag, where, self)
            flag = _STAND_IN if typed is None else typed  # None: reported
        self.compiled_flags[key] = flag
        try:
            super().flag(fi, key, flag)
        except Exception:
            # A Snapshot built in Python is not type-checked (msgspec Structs are not
            # validated on construction): a wrong type fails here. Decoded from its own
            # encoding it is checked as a document would be: a flag of plain data in place
            # of Structs compiles as such; anything else is named with its path.
            typed = _typed(flag, Flag, child_key_path("flags", key), self)
            if typed is None:
                raise  # the flag is well-typed: not the input's fault
            flag = typed if isinstance(typed, Flag) else _STAND_IN
            self.compiled_flags[key] = flag
            if self.flag_tests is not None:
                self.flag_tests.clear()  # the failed attempt's nodes are unreachable
            super().flag(fi, key, flag)
        self.rounded_rollouts(key, flag)

    def condition_checked(self, cond: Condition, name: str) -> None:
        """A segment's condition, as :meth:`flag` checks a flag's types."""
        where = child_key_path("segments", name)
        if not self.decoded:
            typed = None
            if not self.expands_past_budget([cond], where):
                typed = _retyped(cond, Condition, where, self)
            if typed is None:  # reported (and so a bad segment: never inlined)
                return
            cond = self.segments[name] = typed
        try:
            self.condition(cond, where, 0, (name,))
        except Exception:
            typed = _typed(cond, Condition, where, self)
            if typed is None:
                raise
            if isinstance(typed, Condition):
                self.condition(typed, where, 0, (name,))

    def expands_past_budget(self, conditions: list[Any], path: str) -> bool:
        """Whether ``conditions`` (of a snapshot built in Python) would copy to more than
        MAX_CHECK_NODES nodes, reported at ``path``. Python objects can share a condition
        at many places; typing it (_retyped) copies it at each, so a condition holding one
        object 30 times, that one holding another 30 times... (five levels: 24 million
        copies from 150 objects) took minutes and gigabytes before any budget was
        reached. Counted over the shared objects once per level, without copying."""
        if _expanded_size(conditions, MAX_CHECK_NODES) <= MAX_CHECK_NODES:
            return False
        self.problem(
            path,
            f"conditions expand to more than {MAX_CHECK_NODES:,} nodes: a condition "
            "object used at several places is copied at each",
        )
        return True

    def key_forms(self) -> None:
        """Refuse flag keys that are the same text in another Unicode form ("café" as
        one code point for é, or as e and a combining accent; a Kelvin sign for K):
        two flags no one can tell apart, and a check spelled in one form never finds
        the flag written in the other (lookups compare code points, as Python does)."""
        seen: dict[str, str] = {}
        for key in self.t.keys:
            if type(key) is not str:
                continue  # reported by flag()
            form = key if key.isascii() else unicodedata.normalize("NFC", key)
            other = seen.setdefault(form, key)
            if other != key:
                self.problem(
                    child_key_path("flags", key),
                    f"the same key as {child_key_path('flags', other)} in another Unicode "
                    f"form ({ascii(key)} and {ascii(other)} read alike): write flag keys in "
                    "one form (NFC)",
                )

    def recompile(self, changed: list[int]) -> Tables | None:
        """Recompile only the flags at ``changed`` (indices; new flags at the end) on top
        of a copy of the previous tables. Their old records stay in the arrays,
        unreachable (counted in ``garbage``); prerequisite records and slot unions are
        redone for them and for the flags that depend on them. None when the snapshot's
        segments, the reused flags' counted with the changed ones', inline past
        MAX_SNAPSHOT_INLINED_NODES: the full compile then reports it, at the flags it
        names (which may be flags this one reused)."""
        t = self.t
        self.slot_index = {name: i for i, name in enumerate(t.slots)}
        self.sharing = True
        for fi in changed:
            key = t.keys[fi]
            self.used_slots = set()
            self.flag_tests = []
            self.begin_nodes(child_key_path("flags", key))
            calls = self.calls
            self.flag(fi, key, self.snap.flags[key])
            self.end_nodes()
            own = self.own_slots(calls)
            if fi < len(t.own_slots):
                t.own_slots[fi] = own
                t.flag_tests[fi] = tuple(self.flag_tests)
                t.inlined[fi] = self.node_inlined
            else:
                t.own_slots.append(own)
                t.flag_tests.append(tuple(self.flag_tests))
                t.inlined.append(self.node_inlined)
        self.flag_tests = None
        t.garbage += len(changed)
        # (Whatever else is refused: the full compile's problems name the flags its own
        # count refuses, which may be reused ones, and a changed flag's problem may read
        # otherwise there, refused by the snapshot's budget before its own.)
        if not self.within_snapshot_budget(t.segments_inlined + sum(t.inlined)):
            return None
        self.prerequisites(changed)
        if self.problems:
            raise SnapshotError(self.problems)
        self.log_warnings()
        return t.settle()

    def own_slots(self, calls: int) -> tuple[int, ...]:
        """The own slots of the flag just compiled, sorted. A flag that calls shared
        subtrees (``calls``: the count of calls before it was compiled) often reads
        the same thousands of slots as the others calling them: equal tuples are kept
        once (and, once some flag calls, equal slot lists are pooled once:
        ``prerequisites``)."""
        own = tuple(sorted(self.used_slots))
        if self.calls == calls:
            return own
        return self.slot_lists.setdefault(own, (own, -1))[0]

    # -- warnings: compiled as written would read it, yet worth telling --------------
    def split(self, weights: dict[str, Any], variant: Any, rpath: str) -> tuple[int, int]:
        start, count = super().split(weights, variant, rpath)
        ends = self.t.splits[2 * start : 2 * (start + count) : 2]
        widths = [b - a for a, b in zip([0, *ends], ends, strict=False)]
        try:
            wanted = [float(w) * (BUCKETS // 100) for w in weights.values()]
        except (TypeError, ValueError, OverflowError):
            return start, count  # a bad weight: a problem already
        if len(wanted) == len(widths) and any(
            abs(want - got) > 1e-6 for want, got in zip(wanted, widths, strict=True)
        ):
            # Weights finer than the 0.001% bucket grid (33.3333): each range is rounded
            # to whole buckets at its cumulative end, so the ranges still cover exactly
            # 100% and the same users keep their variant; the rounding is told, not hidden.
            shares = ", ".join(
                f"{name} {w / (BUCKETS // 100):g}%" for name, w in zip(weights, widths, strict=True)
            )
            self.warnings.append(
                f"{rpath}.split: weights finer than 0.001% are rounded to whole buckets "
                f"of 0.001%: served as {shares}"
            )
        return start, count

    def rounded_rollouts(self, key: str, flag: Flag) -> None:
        """Warn of a rollout finer than the 0.001% bucket grid (``33.3333``): served to
        the buckets below ``round(P * 1000)``, as documented, which the warning says."""
        for i, rule in enumerate(flag.rules if isinstance(flag.rules, list) else ()):
            pct = getattr(rule, "rollout", None)
            if getattr(rule, "split", None) is not None or getattr(rule, "hash", None) is not None:
                continue  # no rollout of its own (or a problem already)
            if type(pct) is not float or not 0.0 <= pct <= 100.0:
                continue  # ints are on the grid; a bad one is a problem already
            buckets = round(pct * (BUCKETS // 100))
            if abs(pct * (BUCKETS // 100) - buckets) > 1e-6:
                self.warnings.append(
                    f"{child_key_path('flags', key)}.rules[{i}].rollout: {pct}% is finer "
                    f"than the 0.001% buckets: served to {buckets / (BUCKETS // 100):g}%"
                )

    def log_warnings(self) -> None:
        # One line each, whatever the document's keys hold: a flag key or variant name
        # with a newline wrote a second, forged log line, a lone surrogate made a UTF-8
        # log file refuse the line (printable_name escapes both).
        where = f"{self.file}: " if self.file else ""
        for warning in self.warnings:
            _log.warning("%s", printable_name(where + warning))


_STAND_IN = Flag(default="off", salt="")


def _rule_conditions(flag: Any) -> list[Any]:
    """The ``when`` of each rule of ``flag`` (a Flag or a dict, built in Python)."""
    rules = flag.get("rules") if isinstance(flag, dict) else getattr(flag, "rules", None)
    if not isinstance(rules, list | tuple):
        return []
    return [r.get("when") if isinstance(r, dict) else getattr(r, "when", None) for r in rules]


def _expanded_size(conditions: list[Any], limit: int) -> int:
    """Condition nodes ``conditions`` hold with every shared object counted at each
    place (capped just past ``limit``), to MAX_CONDITION_DEPTH + 1 levels (lowering
    stops there). Each object is measured once per level it is reached at, so the count
    costs the objects times the levels, never the copies."""
    sizes: dict[tuple[int, int], tuple[Any, int]] = {}  # (id, level) -> (object kept, size)

    def size(cond: Any, level: int) -> int:
        if level > MAX_CONDITION_DEPTH + 1:
            return 0
        hit = sizes.get((id(cond), level))
        if hit is not None:
            return hit[1]
        if isinstance(cond, Condition):
            parts: Any = [cond.not_] if cond.not_ is not None else (cond.all or cond.any)
        elif isinstance(cond, dict):
            parts = (
                [cond["not"]] if cond.get("not") is not None else cond.get("all") or cond.get("any")
            )
        else:
            return 0
        total = 1
        if isinstance(parts, list | tuple):
            for part in parts:
                total = min(total + size(part, level + 1), limit + 1)
        sizes[(id(cond), level)] = (cond, total)
        return total

    total = 0
    for cond in conditions:
        total = min(total + size(cond, 0), limit + 1)
    return total


_AS_IS = (bytes, bytearray, memoryview, datetime, date, time, timedelta, UUID, Decimal)


def _base_value(value: Any) -> Any:
    """msgspec's ``enc_hook`` for a Flag or Condition built in Python: a str, int or
    float subclass instance (a ``numpy.float64`` weight, a library's str type) is its
    base type's value (README "Types are strict"), read without its own methods; any
    other type is refused as msgspec refuses it."""
    if issubclass(type(value), (str, int, float)):
        return exact_value(value)
    cls = type(value)
    name = cls.__qualname__
    if cls.__module__ != "builtins":
        name = f"{cls.__module__}.{name}"
    raise TypeError(f"Encoding objects of type {name} is unsupported")


def _unencodable_at(value: Any) -> str:
    """The key path, within a Flag or Condition built in Python, of the first value no
    flag document holds (a ``numpy.bool_`` for ``exists``, a ``numpy.int64`` seed),
    as a document's refusal names its field; "" when none is found."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        cls = type(item)
        if item is None or issubclass(cls, (str, int, float, Enum, *_AS_IS)):
            continue
        if isinstance(item, dict):
            for k in dict.keys(item):
                if type(k) is not str and issubclass(type(k), str):  # read by its own str()
                    return child_key_path(path, str.__str__(k))
        if isinstance(item, msgspec.Struct):
            fields = msgspec.structs.fields(item)
            children = [
                (child_key_path(path, f.encode_name), getattr(item, f.name)) for f in fields
            ]
        elif isinstance(item, (list, tuple)):
            children = [(f"{path}[{i}]", v) for i, v in enumerate(item)]
        elif isinstance(item, dict):
            children = [(child_key_path(path, k), v) for k, v in item.items()]
        else:
            return path
        stack.extend(reversed(children))
    return ""


def _exact_keys(names: Any, values: Any = None) -> Any:
    """A dict's keys as exact strs (a str subclass key by its value: msgspec would read
    it through its own ``__str__``), with ``values``' values or None; anything else as
    it is."""
    if not isinstance(names, dict):
        return names
    pairs = [(exact_value(k), None if values is None else v) for k, v in dict.items(names)]
    return dict(pairs)


def _retyped(value: Any, typ: type, path: str, compiler: _Compiler) -> Any:
    """``value`` (a Flag or Condition from a snapshot built in Python) as the decoders
    would have typed it, or None after reporting why it is not one (with its path, as for
    a document): ``rollout: "50"``, a split weight ``True``, ``exists: "no"``, a gate's
    ``lo: 0.5`` would otherwise compile as no document can (a float where the evaluators
    read an int, a string read as a number or as a list of characters). A flag's
    variant values and metadata are free-form: kept as they are (the flag records judge
    the values), only the variant names are checked."""
    variants = metadata = None
    # A Flag, or a flag given as a dict inside a Snapshot built in Python: to_builtins
    # would list a set in this process's order.
    where = unordered_field(value) if typ is Flag else None
    if where is not None:
        compiler.problem(
            join_key_paths(path, where),
            "expected array (the order of a set changes from one process to the next), got set",
        )
        return None
    if isinstance(value, Flag):
        variants, metadata = value.variants, value.metadata
        probe = msgspec.structs.replace(
            value,
            variants=_exact_keys(variants),
            rules=[
                msgspec.structs.replace(r, split=_exact_keys(r.split, r.split))
                if isinstance(r, Rule)
                else r
                for r in value.rules
            ]
            if isinstance(value.rules, list)
            else value.rules,
            metadata={},
        )
    else:
        probe = value
    plain: Any = None
    try:
        plain = msgspec.to_builtins(probe, builtin_types=_AS_IS, enc_hook=_base_value)
        typed: Any = msgspec.convert(plain, type=typ)
    except msgspec.ValidationError as exc:
        problem = msgspec_problem(exc, compiler.file, prefix=path, data=plain, type_=typ)
        if problem.message.endswith(", got null"):  # built in Python: say it in Python
            problem = dataclasses.replace(problem, message=problem.message[:-4] + "None")
        at = parse_key_path(problem.path)  # flags.KEY.prerequisites[i]: which entry
        pre = len(at) == 4 and at[0] == "flags" and at[2] == "prerequisites" and at[3].isdigit()
        if pre and problem.message.startswith("expected str | object, got"):
            try:
                entry = repr(value.prerequisites[int(at[3])])
            except Exception:  # not a list after all: msgspec's words then
                entry = problem.message.rpartition(" ")[2]
            message = f"expected a flag key or a prerequisite, got {entry}"
            problem = dataclasses.replace(problem, message=message)
        compiler.problems.append(problem)
        return None
    except RecursionError:
        return value  # conditions nested too deeply: the lowering refuses them, with paths
    except (TypeError, ValueError, OverflowError) as exc:
        compiler.problem(
            join_key_paths(path, _unencodable_at(probe)), f"not a flag document's value: {exc}"
        )
        return None
    except Exception as exc:  # a str subclass key read through its own __str__, which raised
        compiler.problem(
            join_key_paths(path, _unencodable_at(probe)),
            f"not a flag document's value: reading it raised {type(exc).__name__}: {exc}",
        )
        return None
    if isinstance(value, Flag):
        typed = msgspec.structs.replace(
            typed, variants=variants if typed.variants is not None else None, metadata=metadata
        )
    return typed


def _typed(value: Any, typ: type, path: str, compiler: _Compiler) -> Any:
    """``value`` (a Flag or Condition that failed to compile) decoded from its own
    encoding as ``typ``: the typed value; or True after reporting why it is not one;
    or None when it decodes to an equal value (its types were right)."""
    try:
        encoded = msgspec.msgpack.encode(value, enc_hook=_base_value)
        typed: Any = msgspec.msgpack.decode(encoded, type=typ)
    except msgspec.ValidationError as exc:
        problem = msgspec_problem(exc, compiler.file, prefix=path, data=value, type_=typ)
        compiler.problems.append(problem)
        return True
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        compiler.problem(path, f"not a flag document's value: {exc}")
        return True
    if typed == value:
        return None
    return typed


def _same_flag(a: Flag, b: Flag) -> bool:
    """Whether two flags compile to the same tables. Type-strict: ``==`` would call
    variants ``1``, ``1.0`` and ``True`` equal, yet they are served as different values."""
    if a is b:
        return True
    try:
        return a == b and msgspec.msgpack.encode(a) == msgspec.msgpack.encode(b)
    except Exception:
        # Not comparable this way, so compiled afresh (which judges the flag itself):
        # nested too deeply (RecursionError; refused by the compile), an integer past
        # 64 bits (OverflowError: a condition constant up to 2**106, as the GrowthBook
        # importer writes; YAML and JSON files hold them), a lone surrogate in a salt,
        # constant, value or name of a document built in Python (UnicodeEncodeError:
        # the full compile takes it), a metadata value MessagePack cannot hold. Each
        # of these made Engine.compile(previous=...) and every reload of such a
        # document raise where the full compile answered.
        return False


def _serves_variants(t: Tables, fi: int, flag: Any) -> bool:
    """Whether the tables ``t`` serve ``flag``'s variants for flag ``fi``: its names, and
    its values as they are now (type-strict, as :func:`_same_flag`).

    :func:`_same_flag` compares a flag with the one the tables were compiled from, and a
    document given as Python data holds the caller's variant values as they are: one
    the caller changed in place since (``doc["flags"]["f"]["variants"]["a"]["k"] = 2``)
    is the same object on both sides, or changed on the old side alone, and the flag
    compared equal while the tables served the copy frozen before the change."""
    variants = getattr(flag, "variants", None)
    if variants is None:
        return True  # a boolean flag: its values are the compiler's own True and False
    f = t.flags
    base, count = f[fi * FW + F_VAR_BASE], f[fi * FW + F_VAR_COUNT]
    try:
        if type(variants) is not dict or len(variants) != count:
            return False
        if [_exact_key(n) for n in variants] != t.variant_names[base : base + count]:
            return False
        # Encoded, not frozen (a fifth of the cost: a copy of every value of every flag
        # was most of an incremental compile): MessagePack tells 1, 1.0 and True apart,
        # and writes a str, int, float, dict, list or tuple subclass as its base value,
        # as freeze() serves it.
        values = list(dict.values(variants))
        served = t.values[base : base + count]
        return msgspec.msgpack.encode(values) == msgspec.msgpack.encode(served)
    except Exception:  # not comparable this way (as _same_flag): compiled afresh
        return False


def served_variants(t: Tables, key: Any) -> tuple[list[str], list[Any]] | None:
    """The variant names and values the tables ``t`` serve for flag ``key`` (the frozen
    copies taken at its compile), or None when ``t`` holds no such flag. What a flag
    serves, where its source may not say it: a document given as Python data holds the
    caller's variant values, which the caller may have changed in place since."""
    fi = t.index.get(key)
    if fi is None:
        return None
    f = t.flags
    base, count = f[fi * FW + F_VAR_BASE], f[fi * FW + F_VAR_COUNT]
    return t.variant_names[base : base + count], t.values[base : base + count]


def _exact_key(key: Any) -> Any:
    """A str subclass flag key as its exact text; any other key as it is (a key that is
    no string at all is reported by ``_Compiler.flag``)."""
    if type(key) is str or not issubclass(type(key), str):
        return key  # (an int or float subclass key is reported as itself)
    return exact_value(key)


def _same_segments(a: Any, b: Any) -> bool:
    """Whether two snapshots' segments compile to the same nodes. Type-strict, as
    :func:`_same_flag`: ``==`` would call ``eq: 1`` and ``eq: true`` one segment, yet one
    matches the number 1 and the other the boolean: a file fixing that change would
    keep serving the old targeting from the reused tables."""
    if a is b:
        return True
    try:
        return bool(a == b) and msgspec.msgpack.encode(a) == msgspec.msgpack.encode(b)
    except Exception:  # nested too deeply, or built in Python of odd parts: compile all
        return False


def _check_top(snapshot: Snapshot, file: str | None) -> None:
    """A Snapshot built in Python whose ``flags`` or ``segments`` is no dict is refused
    as a document would be, not with a bare TypeError from the first loop over it."""
    if is_decoded(snapshot):
        return
    problems = []
    for name in ("flags", "segments"):
        value = getattr(snapshot, name, None)
        if not isinstance(value, dict):
            got = "None" if value is None else type(value).__name__
            if isinstance(value, (list, tuple)):
                got = "array"
            problems.append(Problem(path=name, message=f"expected object, got {got}", file=file))
    if problems:
        raise SnapshotError(problems)


def compile_snapshot(snapshot: Snapshot, *, file: str | None = None) -> Tables:
    """Check and lower a snapshot; raise SnapshotError listing every problem."""
    _check_top(snapshot, file)
    with gc_paused():
        compiler = _Compiler(snapshot, file)
        # The document's own metadata: free-form as a flag's, and held to text keys as a
        # flag's is (FlagRecords), so every store, export and JSON write can hold it.
        problem = _metadata_key_problem(snapshot, file)
        if problem is not None:
            compiler.problems.append(problem)
        tables = compiler.compile()
        # The compile's working state (its shared-subtree index, prerequisite graph...)
        # is freed here a piece at a time, before the collector is back: not in one C
        # call (30 ms for 43,000 flags), nor walked by the collector's next run.
        box = [compiler]
        del compiler
        dismantle(box)
    return tables


def compile_incremental(previous: Tables, snapshot: Snapshot, *, file: str | None = None) -> Tables:
    """Compile ``snapshot`` reusing ``previous`` (compiled from an earlier snapshot) for
    every flag that did not change: the cost of a change is the changed flags, not the
    whole set (one flag of 1,000: ~0.3 ms instead of ~9 ms).

    Applies when the segments are unchanged and no flag was removed or reordered (new
    flags may be added at the end); otherwise, and once unreachable records outnumber
    the flags, it compiles from scratch. Either way the result evaluates exactly as
    ``compile_snapshot(snapshot)`` does (tests/test_core_incremental.py), and problems
    raise SnapshotError the same way (tests/test_audit9_eval_incremental.py): a flag is
    unchanged when it equals the one ``previous`` was compiled from and its variants are
    what ``previous`` serves (a value given as Python data may have changed in place
    since), and the snapshot's inlining budget counts the reused flags too.
    """
    _check_top(snapshot, file)
    old = previous.source
    old_keys = previous.keys
    if (
        old is None
        # str subclass keys are compiled by their text: in full, from either side
        or any(type(k) is not str for k in snapshot.flags)
        or any(type(k) is not str for k in old.flags)
        or previous.garbage > max(64, len(old_keys))
        # tables pickled before the inlining counts were kept (see Tables.inlined)
        or previous.segments_inlined < 0
        or len(previous.inlined) != len(old_keys)
        # tables pickled before the prerequisite graph was kept (see Tables.deps)
        or len(previous.deps) != len(old_keys)
        or len(previous.readers) != len(old_keys)
        # automata of replaced flags left behind: as much again as the live ones
        or len(previous.acpool) > 2 * previous.ac_full + _automaton.ROOT_ROW * 64
        or not _same_segments(old.segments, snapshot.segments)
        or len(snapshot.flags) < len(old_keys)
        # a change of the document's metadata alone reuses every flag's tables: judged
        # (and reported with every other problem) by the full compile
        or (snapshot.metadata is not old.metadata and _metadata_key_problem(snapshot, file))
    ):
        return compile_snapshot(snapshot, file=file)
    new_keys = list(snapshot.flags)
    if new_keys[: len(old_keys)] != old_keys:
        return compile_snapshot(snapshot, file=file)
    changed = [
        fi
        for fi, key in enumerate(old_keys)
        if not _same_flag(snapshot.flags[key], old.flags[key])
        or not _serves_variants(previous, fi, snapshot.flags[key])
    ]
    changed += range(len(old_keys), len(new_keys))
    with gc_paused():
        t = previous.copy()
        t.source = snapshot
        if not changed:
            return t.settle()
        t.keys = new_keys
        for fi in range(len(old_keys), len(new_keys)):
            t.index[new_keys[fi]] = fi
        compiler = _Compiler(snapshot, file)
        compiler.t = t
        if len(new_keys) > len(old_keys):
            compiler.key_forms()  # a new key may read as an old one
        recompiled = compiler.recompile(changed)
        box = [compiler]
        del compiler
        dismantle(box)  # as compile_snapshot frees its working state
    if recompiled is None:  # past the snapshot's inlining budget: reported in full
        return compile_snapshot(snapshot, file=file)
    return recompiled
