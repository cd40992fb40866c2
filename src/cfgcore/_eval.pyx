# cython: language_level=3, embedsignature=True
# The evaluation core: one extension module, cfgcore._eval, in several source files.
# This one holds the module docstring, the imports and the C declarations every part
# shares; the parts (_eval_*.pxi) are included, textually, at its end.
"""Compiled evaluator: walks the flat tables built by :mod:`cfgcore.compiler`.

Same public names and semantics as the reference :mod:`cfgcore._eval_py` (read
that module for the rules in plain Python). The inner loop (conditions, rollouts,
splits, prerequisites) touches C arrays and C structs only. Python objects appear
when a context is bound (once per request for a :class:`Context`), for the rare
operators that hold a precompiled object (regex, semver), and for the returned
value.

Evaluation counts. Each public entry point (``is_enabled``, ``variant``, ``value``,
``evaluate``, ``evaluate_all``, and ``SeedAPI`` through them) adds one to a C
``uint64_t`` cell per (served variant, reason) once the outcome is known, and one per
error code (see :class:`Counters`); no Python object, no lock. ``Engine.take_evaluation_counts``
reads and resets them. What a racing increment can lose:

* GIL builds: nothing, with one exception. An increment is a C ``+=`` that no other
  thread can interrupt, and a take reads and resets a snapshot's cells in one C pass
  that runs no Python code. A retired snapshot's counters outlive it and the engine
  keeps them until harvested, so counts on a swapped-out or pinned snapshot are kept.
  An engine that dies hands what it still holds to the process totals
  (:mod:`cfgcore.observability.evaluations`, once they exist). The exception: a
  snapshot pinned by a request past its engine's death keeps counting into counters
  nobody harvests any more.
* Free-threaded builds: two threads ``+=`` on the same cell at once can lose an
  increment, and an increment racing a take can land before or after the reset (it is
  then reported now or next time, or lost if it raced the read and the reset of its
  cell). Counters are statistics, not ledgers.
"""

cimport cython
from cpython.dict cimport PyDict_Contains, PyDict_GetItemWithError, PyDict_SetItem
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.object cimport PyObject, PyTypeObject, destructor
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.tuple cimport PyTuple_GET_ITEM
from libc.math cimport NAN, fabs, isnan
from libc.stdint cimport int32_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.stdio cimport snprintf
from libc.string cimport memcmp, memcpy, memset

from cfgcore._layout cimport *  # opcodes, record offsets, reason codes: the shared layout

from collections.abc import Mapping
from enum import Enum

from cfgcore import compiler as _C
from cfgcore._clock import epoch_seconds as _epoch_seconds  # a clock's answer
from cfgcore._names import intern as _intern  # bounded where interned strings are immortal
from cfgcore._reclaim import let_others_run as _py_let_others_run
from cfgcore.details import (
    ERROR_CODES, MAX_METRIC_VALUE, REASONS, ErrorCode, EvaluationDetails, Reason, bucketable_id, context_value,
    exact_array, exact_name, int_id_sized, int_text, key_text, metric_user_id, metric_value, serves_variant, user_id_text,
)
from cfgcore.details import ID_FORM_CHARS as _ID_FORM_CHARS

IMPLEMENTATION = "c"

cdef extern from "Python.h":
    dict PyDict_Copy(object)
    void PyObject_GC_UnTrack(void*)
    PyObject* PyThreadState_GetDict()
    const char* PyUnicode_AsUTF8AndSize(object, Py_ssize_t*) except NULL
    # Without Cython's exception check: NULL (a lone surrogate) is cleared by the caller.
    const char* _utf8_or_null "PyUnicode_AsUTF8AndSize"(object, Py_ssize_t*)
    Py_ssize_t PyUnicode_GET_LENGTH(object)
    bint PyUnicode_Check(object)
    bint PyUnicode_CheckExact(object)
    bint PyTuple_CheckExact(object)
    bint PyList_CheckExact(object)
    bint PyLong_Check(object)
    bint PyLong_CheckExact(object)
    bint PyBool_Check(object)
    bint PyFloat_CheckExact(object)
    bint PyFloat_Check(object)
    double PyLong_AsDouble(object) except? -1.0
    double PyFloat_AS_DOUBLE(object)
    dict _PyDict_NewPresized(Py_ssize_t)
    # The same C function without Cython's exception check: a NULL result with an
    # error set (a key whose __eq__ raised) is cleared and read as "missing".
    PyObject* _dict_get_or_null "PyDict_GetItemWithError"(object, object)
    PyObject* PyErr_Occurred()
    void PyErr_Clear()
    int PyErr_ExceptionMatches(PyObject*)
    bint PyUnicode_IS_COMPACT_ASCII(object)
    void* PyUnicode_DATA(object)
    long _small_int "PyLong_AsLong"(PyObject*) noexcept  # an id from the tables: cannot fail
    ctypedef struct PyMethodDef:
        pass
    ctypedef struct PyMethodDescrObject:
        PyMethodDef* d_method
    object PyDescr_NewMethod(PyTypeObject*, PyMethodDef*)
    # Without Cython's exception check: -1 (an element's __eq__ raised) is handled here.
    int _set_contains "PySet_Contains"(object, object)


cdef enum:
    STACK_SLOTS = 32  # contexts with up to this many slots bind on the C stack
    # Slot arrays kept for reuse by the next context (see _slots_claim): up to POOL_SIZE
    # arrays of up to POOL_MAX_SLOTS slots each; a new array has room for at least
    # POOL_MIN_SLOTS, so one array serves the next snapshot's contexts too.
    POOL_SIZE = 32
    POOL_MIN_SLOTS = 8
    POOL_MAX_SLOTS = 32
    ENUM_CACHE = 64  # Enum members remembered by SeedAPI (a power of two)
    KEY_CACHE = 64  # flag keys a snapshot remembers by identity (a power of two)
    ALL_BATCH = 32  # evaluate_all: counter cells gathered before they are added
    # CompiledSnapshot's table copies: items copied between two points where the GIL is
    # let go (_let_others_run), about 0.2 ms of copying (see _eval_snapshot.pxi).
    COPY_CHUNK = 65536
    # ... and flag keys interned into its index between two such points (each new key
    # can grow the index, whose fresh pages cost more than the copy).
    KEY_CHUNK = 4096

# Every layout constant as the extension was compiled with it: tests/test_core_layout.py
# checks it against _layout.pxd and cfgcore._layout, both ways.
LAYOUT = dict(
    OP_FALSE=OP_FALSE, OP_ALL=OP_ALL, OP_ANY=OP_ANY, OP_NOT=OP_NOT, OP_EQ=OP_EQ,
    OP_CALL=OP_CALL, OP_FLAG=OP_FLAG,
    OP_EQ_CI=OP_EQ_CI, OP_NE=OP_NE, OP_NE_CI=OP_NE_CI, OP_IN=OP_IN, OP_IN_CI=OP_IN_CI,
    OP_NOT_IN=OP_NOT_IN, OP_NOT_IN_CI=OP_NOT_IN_CI, OP_HAS_ANY=OP_HAS_ANY, OP_HAS_ANY_CI=OP_HAS_ANY_CI,
    OP_LT=OP_LT, OP_LE=OP_LE, OP_GT=OP_GT, MAX_ARRAY=MAX_ARRAY,
    OP_GE=OP_GE, OP_STARTS=OP_STARTS, OP_ENDS=OP_ENDS, OP_CONTAINS=OP_CONTAINS,
    OP_STARTS_CI=OP_STARTS_CI, OP_ENDS_CI=OP_ENDS_CI, OP_CONTAINS_CI=OP_CONTAINS_CI,
    OP_CONTAINS_ANY=OP_CONTAINS_ANY, OP_CONTAINS_ANY_CI=OP_CONTAINS_ANY_CI,
    OP_REGEX=OP_REGEX, OP_SEMVER_EQ=OP_SEMVER_EQ, OP_SEMVER_LT=OP_SEMVER_LT,
    OP_SEMVER_GT=OP_SEMVER_GT, OP_EXISTS=OP_EXISTS, K_MISSING=K_MISSING, K_STR=K_STR,
    K_NUM=K_NUM, K_BOOL=K_BOOL, K_OTHER=K_OTHER, NW=NW, FW=FW, RW=RW, PW=PW,
    F_ENABLED=F_ENABLED, F_OFF=F_OFF, F_DEFAULT=F_DEFAULT, F_RULE_START=F_RULE_START,
    F_RULE_COUNT=F_RULE_COUNT, F_PRE_START=F_PRE_START, F_PRE_COUNT=F_PRE_COUNT,
    F_BUCKET_START=F_BUCKET_START, F_BUCKET_COUNT=F_BUCKET_COUNT, F_SALT_OFF=F_SALT_OFF,
    F_SALT_LEN=F_SALT_LEN, F_SCHEME=F_SCHEME, F_SCHED=F_SCHED, F_SLOTS_START=F_SLOTS_START,
    F_SLOTS_COUNT=F_SLOTS_COUNT, F_VAR_BASE=F_VAR_BASE, F_VAR_COUNT=F_VAR_COUNT, F_BOOL=F_BOOL,
    R_COND=R_COND, R_SERVE=R_SERVE, R_ROLLOUT=R_ROLLOUT, R_SPLIT_START=R_SPLIT_START,
    R_SPLIT_COUNT=R_SPLIT_COUNT, R_BUCKET_START=R_BUCKET_START, R_BUCKET_COUNT=R_BUCKET_COUNT,
    REASON_STATIC=REASON_STATIC, REASON_DEFAULT=REASON_DEFAULT, REASON_MATCH=REASON_MATCH,
    REASON_SPLIT=REASON_SPLIT, REASON_DISABLED=REASON_DISABLED, REASON_PREREQ=REASON_PREREQ,
    REASON_ERROR=REASON_ERROR, V_BOOL=V_BOOL, V_STR=V_STR, V_NUM=V_NUM, V_OBJECT=V_OBJECT,
    V_ARRAY=V_ARRAY, V_NULL=V_NULL, V_MIXED=V_MIXED, BUCKETS=BUCKETS,
    SCHEME_MURMUR3=SCHEME_MURMUR3, DEDUP_SHARDS=DEDUP_SHARDS, RECORD_BYTES=RECORD_BYTES,
    R_HASH=R_HASH, R_GATE_START=R_GATE_START, R_GATE_COUNT=R_GATE_COUNT, HW=HW,
    H_SCHEME=H_SCHEME, H_SEED=H_SEED, H_SALT_OFF=H_SALT_OFF, H_SALT_LEN=H_SALT_LEN,
    H_SUFFIX_OFF=H_SUFFIX_OFF, H_SUFFIX_LEN=H_SUFFIX_LEN, H_SPACE=H_SPACE,
    H_BY_START=H_BY_START, H_BY_COUNT=H_BY_COUNT, H_LO=H_LO, H_HI=H_HI,
    P_ON=P_ON, P_OFF=P_OFF, P_SET=P_SET, SCHEME_FLAGD_V2=SCHEME_FLAGD_V2,
    SCHEME_FLAGD_V3=SCHEME_FLAGD_V3, SCHEME_FLAGD_V3_PAIR=SCHEME_FLAGD_V3_PAIR,
    SCHEME_GROWTHBOOK_V1=SCHEME_GROWTHBOOK_V1, SCHEME_GROWTHBOOK_V2=SCHEME_GROWTHBOOK_V2,
    SCHEME_FLAGD_V3_CBOR=SCHEME_FLAGD_V3_CBOR,
    N_REASONS=N_REASONS, ERR_FLAG_NOT_FOUND=ERR_FLAG_NOT_FOUND, ERR_TYPE_MISMATCH=ERR_TYPE_MISMATCH,
    ERR_INVALID_CONTEXT=ERR_INVALID_CONTEXT, ERR_GENERAL=ERR_GENERAL, N_ERRORS=N_ERRORS,
)
OPCODES = {name: value for name, value in LAYOUT.items() if name.startswith("OP_")}

cdef int MAX_REGEX_INPUT = _C.MAX_REGEX_INPUT

# The flag-key cache (CompiledSnapshot._lookup) reads a slot's key and index as a pair,
# which only the GIL keeps consistent; a free-threaded build goes to the dict every time.
cdef extern from *:
    """
    #ifdef Py_GIL_DISABLED
    #define CFGCORE_KEY_CACHE 0
    #else
    #define CFGCORE_KEY_CACHE 1
    #endif
    """
    bint CFGCORE_KEY_CACHE

# The pool of slot arrays (_slots_claim, _slots_free) is a plain C array that only the
# GIL keeps consistent; a free-threaded build allocates and frees every array instead.
cdef extern from *:
    """
    #ifdef Py_GIL_DISABLED
    #define CFGCORE_SLOT_POOL 0
    #else
    #define CFGCORE_SLOT_POOL 1
    #endif
    """
    bint CFGCORE_SLOT_POOL

# str.__hash__ of an exact str: cannot fail. CPython caches it in the object after the
# first call; reading that field skips PyObject_Hash's type dispatch (used on GIL builds
# only, with the key cache: free-threaded builds would need an atomic read).
cdef extern from *:
    """
    static inline Py_hash_t cfgcore_str_hash(PyObject *s) {
        Py_hash_t h = ((PyASCIIObject *)s)->hash;
        return h != -1 ? h : PyObject_Hash(s);
    }
    """
    Py_hash_t _str_hash "cfgcore_str_hash"(object) noexcept

# The wall clock (what time.time() reads) without a Python call, for schedules.
cdef extern from *:
    """
    #if defined(_WIN32)
    #include <windows.h>
    static double cfgcore_wall_clock(void) {
        FILETIME ft;
        ULARGE_INTEGER t;
        GetSystemTimePreciseAsFileTime(&ft);
        t.LowPart = ft.dwLowDateTime;
        t.HighPart = ft.dwHighDateTime;
        return (double)t.QuadPart / 1e7 - 11644473600.0;  /* 100 ns ticks since 1601 */
    }
    #else
    #include <time.h>
    static double cfgcore_wall_clock(void) {
        struct timespec ts;
        if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return 0.0 / 0.0;  /* NaN: out of window */
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    }
    #endif
    """
    double cfgcore_wall_clock() noexcept nogil
cdef object _value_kind = _C.value_kind


cdef int _default_kind(object default) except -1:
    """``_C.value_kind(default)``: the common exact types answered here (a Python call
    cost twice the rest of ``value(key, ctx, default)``), any other type asked of the
    one rule (subclasses, NumPy scalars, ``Decimal``, mappings)."""
    if default is True or default is False:
        return V_BOOL
    cdef type t = type(default)
    if t is str:
        return V_STR
    if t is int or t is float:
        return V_NUM
    if t is dict:
        return V_OBJECT
    if t is list or t is tuple:
        return V_ARRAY
    return _value_kind(default)
cdef object _semver_key = _C.semver_key
cdef object _NO_NAME = object()  # SeedAPI: an object whose _value_ raised names no flag
cdef double MAX_METRIC = MAX_METRIC_VALUE  # SeedAPI.record_metric: the largest magnitude kept


# One bound context attribute. The PyObject* fields are owned references (released by
# _release); the char pointers point into those objects' UTF-8 buffers. ``elems``: an
# array value's element ids in a slot ``has_any`` reads (CompiledSnapshot._bind_array:
# owned, freed by _release), else NULL.
ctypedef struct SlotVal:
    int kind
    int32_t id
    int32_t ci_id
    double num
    const char* s
    Py_ssize_t slen
    const char* ls
    Py_ssize_t lslen
    const char* bs
    Py_ssize_t bslen
    PyObject* text
    PyObject* folded
    PyObject* bucket
    PyObject* semver
    int32_t* elems

ctypedef struct Outcome:
    int var
    int reason
    int rule

ctypedef struct HashMemo:  # the last bucket a flag evaluation hashed under a record
    int h  # the hashing record, -1: none yet
    const SlotVal* v  # the value it hashed
    int bucket

ctypedef struct CountCell:  # one nonzero counter, copied out by Counters.take
    Py_ssize_t index
    uint64_t count


# Returns NULL without setting an error: for a caller that found one already set.
cdef extern from *:
    """
    static PyObject* cfgcore_pending_error(void) { return NULL; }
    """
    object _pending_error "cfgcore_pending_error"()


cdef object _missing_unless_interrupt():
    """None after a C lookup that left an error set (a colliding key's ``__eq__``
    raised): an Exception is cleared and the attribute reads as missing, as the
    reference evaluator's ``except Exception`` reads it. Anything else (a
    KeyboardInterrupt, a SystemExit) stays set and propagates, as there."""
    if PyErr_ExceptionMatches(<PyObject*>Exception):
        PyErr_Clear()
        return None
    return _pending_error()


# An interrupt (a BaseException that is no Exception: KeyboardInterrupt, SystemExit)
# raised by a clock inside the C rule walk, which cannot raise: kept in the thread's
# state dict until the public method that started the walk raises it (_raise_interrupt).
_INTERRUPT_KEY = "cfgcore._eval.interrupt"


cdef void _keep_interrupt(object exc) noexcept:
    cdef PyObject* tdict = PyThreadState_GetDict()
    if tdict != NULL:
        try:
            (<dict>tdict)[_INTERRUPT_KEY] = exc
        except BaseException:  # no memory for the entry: _raise_interrupt makes one
            pass


cdef int _raise_interrupt() except -1:
    """Raise the interrupt _keep_interrupt kept for this thread."""
    cdef PyObject* tdict = PyThreadState_GetDict()
    exc = (<dict>tdict).pop(_INTERRUPT_KEY, None) if tdict != NULL else None
    raise exc if exc is not None else KeyboardInterrupt()


cdef bint _is_mapping(object obj) except -1:
    # Not noexcept: a KeyboardInterrupt (or SystemExit) raised while isinstance() runs
    # Mapping's __instancecheck__ propagates, as from the reference's _is_mapping; a
    # noexcept function printed it as "Exception ignored" and answered on.
    try:
        return isinstance(obj, Mapping)
    except Exception:  # an object faking its __class__
        return False


# The parts, in this order. `include` is textual: one module, one generated C file, so
# the parts call each other's cdef functions directly (and inline them) as before.
# cython-lint reads the included files only when nothing follows the name on its line.
# MurmurHash3, the imported schemes' hashes, bucketing
include "_eval_hash.pxi"
# Slots (a context's bound values), Binding, Context
include "_eval_context.pxi"
# Counters: evaluation counts in C cells
include "_eval_counters.pxi"
# CompiledSnapshot: binding, conditions, rules, evaluate_all
include "_eval_snapshot.pxi"
# EngineCore (the live snapshot), _own_methods
include "_eval_engine.pxi"
# SeedAPI, RecordQueue: the seed API's request path
include "_eval_seed.pxi"
# The MessagePack duplicate-key scan that flag documents pass before msgspec decodes them
include "_eval_scan.pxi"
# The JSON section split: where a JSON flag document's flags and segments are, without the GIL
include "_eval_split.pxi"
# SIGTERM's C handler in front of CPython's: the watch of cfgcore.runtime.forks
include "_eval_signal.pxi"
