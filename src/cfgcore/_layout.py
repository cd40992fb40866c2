"""Python twin of ``_layout.pxd``: the table layout the compiler writes and both
evaluators read (opcodes, context-value kinds, record widths and field offsets,
reason codes, value kinds, bucketing).

``_layout.pxd`` is the source of truth; ``_eval.pyx`` cimports it. These names are
plain constants so the compiler and ``cfgcore._eval_py`` read them at attribute
speed and type checkers see them. ``tests/test_core_layout.py`` checks both ways
that this module and the .pxd (parsed by :func:`read_pxd`) hold the same names and
values, and that the compiled extension was built from the same .pxd.
"""

from __future__ import annotations

import os
import re

# Condition opcodes (nodes[i * NW]).
OP_FALSE = 0
OP_ALL = 1
OP_ANY = 2
OP_NOT = 3
# A shared condition stored once: node a is the root of a subtree emitted earlier in the
# table (callee before caller: no cycle); the call is worth that subtree.
OP_CALL = 4
# Another flag's answer (a ``prerequisite`` condition): flag a, evaluated for the same
# context, serves what want code b asks (a variant index, or P_ON / P_OFF / P_SET - k
# as a prerequisite record's). No slot: it sits with the combinators, below OP_EQ.
OP_FLAG = 5
OP_EQ = 10
OP_EQ_CI = 11
OP_NE = 12
OP_NE_CI = 13
OP_IN = 14
OP_IN_CI = 15
OP_NOT_IN = 16
OP_NOT_IN_CI = 17
# ``has_any``: an array value's element ids (the _CI form: case-folded) meet the pool run
OP_HAS_ANY = 18
OP_HAS_ANY_CI = 19
OP_LT = 20
OP_LE = 21
OP_GT = 22
OP_GE = 23
OP_STARTS = 30
OP_ENDS = 31
OP_CONTAINS = 32
OP_STARTS_CI = 33
OP_ENDS_CI = 34
OP_CONTAINS_CI = 35
# An ``any`` of many ``contains`` of one attribute: the Aho-Corasick automaton at acpool[a]
# (b states; c tests it stands for), over the value (the _CI form: its case-folded text).
# See cfgcore/_automaton.py.
OP_CONTAINS_ANY = 36
OP_CONTAINS_ANY_CI = 37
OP_REGEX = 40
OP_SEMVER_EQ = 41
OP_SEMVER_LT = 42
OP_SEMVER_GT = 43
OP_EXISTS = 50

# Kinds of a bound context value; also the type masks of ne / not_in constants.
K_MISSING = 0
K_STR = 1
K_NUM = 2
K_BOOL = 4
K_OTHER = 8

# Record widths: node (op, slot, a, b, c, end), flag, rule, prerequisite (flag index,
# variant index or -1: the flag must be true).
NW = 6
FW = 18
RW = 10
PW = 2
HW = 11

# Flag record fields.
F_ENABLED = 0
F_OFF = 1
F_DEFAULT = 2
F_RULE_START = 3
F_RULE_COUNT = 4
F_PRE_START = 5
F_PRE_COUNT = 6
F_BUCKET_START = 7
F_BUCKET_COUNT = 8
F_SALT_OFF = 9
F_SALT_LEN = 10
F_SCHEME = 11
F_SCHED = 12
F_SLOTS_START = 13
F_SLOTS_COUNT = 14
F_VAR_BASE = 15
F_VAR_COUNT = 16
F_BOOL = 17

# Rule record fields.
R_COND = 0
R_SERVE = 1
R_ROLLOUT = 2
R_SPLIT_START = 3
R_SPLIT_COUNT = 4
R_BUCKET_START = 5
R_BUCKET_COUNT = 6
R_HASH = 7
R_GATE_START = 8
R_GATE_COUNT = 9

# Hashing records (rule-level bucketing of imported flags; see snapshot.Hashing):
# hashes[i * HW + H_*]. A rule's R_HASH is one record (or -1); its gates are records
# R_GATE_START .. + R_GATE_COUNT, each passing when H_LO <= bucket < H_HI.
H_SCHEME = 0
H_SEED = 1
H_SALT_OFF = 2
H_SALT_LEN = 3
H_SUFFIX_OFF = 4
H_SUFFIX_LEN = 5
H_SPACE = 6
H_BY_START = 7
H_BY_COUNT = 8
H_LO = 9
H_HI = 10

# ``has_any``: an array with more elements is unusable (int32 counts in SlotVal.elems).
MAX_ARRAY = 1073741824

# Prerequisite 'want' codes below 0: -1 the flag must be on, -2 must be off,
# P_SET - k: the variant must be one of ipool[k + 1 .. k + ipool[k]].
P_ON = -1
P_OFF = -2
P_SET = -3

# Reason codes the evaluators produce: indices into cfgcore.details.REASONS.
REASON_STATIC = 0
REASON_DEFAULT = 1
REASON_MATCH = 2
REASON_SPLIT = 3
REASON_DISABLED = 4
REASON_PREREQ = 5
REASON_ERROR = 6

# Evaluation counters: a snapshot counts per (variant, reason) in cells
# variant * N_REASONS + reason, and per error code (indices into
# cfgcore.details.ERROR_CODES).
N_REASONS = 7
ERR_FLAG_NOT_FOUND = 0
ERR_TYPE_MISMATCH = 1
ERR_INVALID_CONTEXT = 2
ERR_GENERAL = 3
N_ERRORS = 4

# Value kinds of variants and defaults, for TYPE_MISMATCH (bool is not a number).
V_BOOL = 0
V_STR = 1
V_NUM = 2
V_OBJECT = 3
V_ARRAY = 4
V_NULL = 5
V_MIXED = 6

# Bucketing: buckets per flag, and the scheme ids of F_SCHEME.
BUCKETS = 100000
SCHEME_MURMUR3 = 0
SCHEME_FLAGD_V2 = 1
SCHEME_FLAGD_V3 = 2
SCHEME_FLAGD_V3_PAIR = 3
SCHEME_GROWTHBOOK_V1 = 4
SCHEME_GROWTHBOOK_V2 = 5
SCHEME_FLAGD_V3_CBOR = 6

# Exposure dedup: each A/B test's set of users already logged is split into this many
# sets by the id's hash (a power of two), so growing it rehashes one shard at a time.
DEDUP_SHARDS = 64

# The exposure and metric backlogs' byte estimate (RecordQueue): what a record counts for
# besides the text a request gives it (cfgcore.experiments.writer.RECORD_BYTES).
RECORD_BYTES = 96


def _group(prefix: str) -> dict[str, int]:
    return {k: v for k, v in globals().items() if k.startswith(prefix) and isinstance(v, int)}


OPCODES: dict[str, int] = _group("OP_")
REASON_CODES: dict[str, int] = _group("REASON_")

_ENUM = re.compile(r"^cdef enum:\n((?:    \w+ = -?\d+\n|    #.*\n)+)", re.M)
_MEMBER = re.compile(r"^    (\w+) = (-?\d+)$", re.M)


def read_pxd(path: str | os.PathLike[str] | None = None) -> dict[str, int]:
    """Every ``NAME = value`` of the ``cdef enum`` blocks in ``_layout.pxd``."""
    if path is None:
        path = os.path.join(os.path.dirname(__file__), "_layout.pxd")
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    found: dict[str, int] = {}
    for block in _ENUM.finditer(text):
        for name, value in _MEMBER.findall(block.group(1)):
            if name in found:
                raise ValueError(f"_layout.pxd declares {name} twice")
            found[name] = int(value)
    return found


def python_names() -> dict[str, int]:
    """Every layout constant this module defines (upper-case int names)."""
    return {
        k: v
        for k, v in globals().items()
        if k.isupper() and isinstance(v, int) and not isinstance(v, bool)
    }
