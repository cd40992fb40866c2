# cython: language_level=3, embedsignature=True
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
from cpython.dict cimport PyDict_GetItemWithError, PyDict_SetItem
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from libc.math cimport NAN, isfinite, isnan
from libc.stdint cimport int32_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.stdio cimport snprintf
from libc.string cimport memcmp, memcpy, memset

from cfgcore._layout cimport *  # opcodes, record offsets, reason codes: the shared layout

from collections.abc import Mapping
from enum import Enum
from sys import intern as _intern

from cfgcore import compiler as _C
from cfgcore.details import (
    ERROR_CODES, REASONS, ErrorCode, EvaluationDetails, Reason, exact_name, exact_value, key_text,
    metric_user_id, metric_value, user_id_text,
)

IMPLEMENTATION = "c"

cdef extern from "Python.h":
    dict PyDict_Copy(object)
    const char* PyUnicode_AsUTF8AndSize(object, Py_ssize_t*) except NULL
    Py_ssize_t PyUnicode_GET_LENGTH(object)
    bint PyUnicode_Check(object)
    bint PyUnicode_CheckExact(object)
    bint PyLong_Check(object)
    bint PyLong_CheckExact(object)
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
    bint PyUnicode_IS_COMPACT_ASCII(object)
    void* PyUnicode_DATA(object)
    long _small_int "PyLong_AsLong"(PyObject*) noexcept  # an id from the tables: cannot fail
    ctypedef struct PyMethodDef:
        pass
    ctypedef struct PyMethodDescrObject:
        PyMethodDef* d_method
    object PyDescr_NewMethod(object, PyMethodDef*)
    # Without Cython's exception check: -1 (an element's __eq__ raised) is handled here.
    int _set_contains "PySet_Contains"(object, object)


cdef enum:
    STACK_SLOTS = 32  # contexts with up to this many slots bind on the C stack
    # A Context's slot not read from its attributes yet: contexts bind lazily, each slot
    # on the first check that reads it, so engine.context() costs a dict copy and a
    # request pays only for the attributes its flags use. Never a kind _eval sees.
    K_LAZY = -1
    SMALL_SLOTS = 8  # a binding of up to this many slots lives inside its Binding object
    ENUM_CACHE = 64  # Enum members remembered by SeedAPI (a power of two)
    KEY_CACHE = 64  # flag keys a snapshot remembers by identity (a power of two)
    ALL_BATCH = 32  # evaluate_all: counter cells gathered before they are added

# Every layout constant as the extension was compiled with it: tests/test_core_layout.py
# checks it against _layout.pxd and cfgcore._layout, both ways.
LAYOUT = dict(
    OP_FALSE=OP_FALSE, OP_ALL=OP_ALL, OP_ANY=OP_ANY, OP_NOT=OP_NOT, OP_EQ=OP_EQ,
    OP_EQ_CI=OP_EQ_CI, OP_NE=OP_NE, OP_NE_CI=OP_NE_CI, OP_IN=OP_IN, OP_IN_CI=OP_IN_CI,
    OP_NOT_IN=OP_NOT_IN, OP_NOT_IN_CI=OP_NOT_IN_CI, OP_LT=OP_LT, OP_LE=OP_LE, OP_GT=OP_GT,
    OP_GE=OP_GE, OP_STARTS=OP_STARTS, OP_ENDS=OP_ENDS, OP_CONTAINS=OP_CONTAINS,
    OP_STARTS_CI=OP_STARTS_CI, OP_ENDS_CI=OP_ENDS_CI, OP_CONTAINS_CI=OP_CONTAINS_CI,
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
    SCHEME_MURMUR3=SCHEME_MURMUR3, DEDUP_SHARDS=DEDUP_SHARDS,
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
cdef object _semver_key = _C.semver_key
cdef object _NO_NAME = object()  # SeedAPI: an object whose _value_ raised names no flag


# One bound context attribute. The PyObject* fields are owned references (released by
# _release); the char pointers point into those objects' UTF-8 buffers.
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

ctypedef struct Outcome:
    int var
    int reason
    int rule

ctypedef struct CountCell:  # one nonzero counter, copied out by Counters.take
    Py_ssize_t index
    uint64_t count


cdef bint _is_mapping(object obj) noexcept:
    try:
        return isinstance(obj, Mapping)
    except Exception:  # an object faking its __class__
        return False


cdef inline uint32_t _rotl(uint32_t x, int r) noexcept nogil:
    return (x << r) | (x >> (32 - r))


cdef inline uint32_t _mm_blocks(uint32_t h, const unsigned char* data, Py_ssize_t nbytes) noexcept nogil:
    """MurmurHash3 x86_32 body over whole 4-byte blocks (nbytes % 4 == 0), from state h."""
    cdef uint32_t k
    cdef Py_ssize_t i
    for i in range(0, nbytes, 4):
        k = (<uint32_t>data[i]) | (<uint32_t>data[i + 1] << 8) | (<uint32_t>data[i + 2] << 16) | (<uint32_t>data[i + 3] << 24)
        k *= <uint32_t>0xcc9e2d51U
        k = _rotl(k, 15)
        k *= <uint32_t>0x1b873593U
        h ^= k
        h = _rotl(h, 13)
        h = h * 5 + <uint32_t>0xe6546b64U
    return h


cdef inline uint32_t _mm_finish(uint32_t h, const unsigned char* tail, Py_ssize_t ntail, Py_ssize_t total) noexcept nogil:
    """MurmurHash3 x86_32 tail (0-3 bytes) and finalisation; ``total`` is the input length."""
    cdef uint32_t k = 0
    if ntail >= 3:
        k ^= (<uint32_t>tail[2]) << 16
    if ntail >= 2:
        k ^= (<uint32_t>tail[1]) << 8
    if ntail >= 1:
        k ^= tail[0]
        k *= <uint32_t>0xcc9e2d51U
        k = _rotl(k, 15)
        k *= <uint32_t>0x1b873593U
        h ^= k
    h ^= <uint32_t>total
    h ^= h >> 16
    h *= <uint32_t>0x85ebca6bU
    h ^= h >> 13
    h *= <uint32_t>0xc2b2ae35U
    h ^= h >> 16
    return h


cdef uint32_t murmur3_x86_32(const unsigned char* data, Py_ssize_t n, uint32_t seed) noexcept nogil:
    """MurmurHash3 x86_32 (Austin Appleby's public-domain reference), byte-order independent."""
    cdef Py_ssize_t end = n - (n % 4)
    return _mm_finish(_mm_blocks(seed, data, end), data + end, n % 4, n)


cdef inline int _cbor_head(unsigned char* out, int major, uint64_t n) noexcept nogil:
    """RFC 8949 section 4.2.1: the shortest head holding ``n``; returns its length."""
    cdef int size, i
    if n < 24:
        out[0] = <unsigned char>((major << 5) | n)
        return 1
    if n < 0x100:
        out[0] = <unsigned char>((major << 5) | 24)
        size = 1
    elif n < 0x10000:
        out[0] = <unsigned char>((major << 5) | 25)
        size = 2
    elif n < <uint64_t>0x100000000ULL:
        out[0] = <unsigned char>((major << 5) | 26)
        size = 4
    else:
        out[0] = <unsigned char>((major << 5) | 27)
        size = 8
    for i in range(size):
        out[size - i] = <unsigned char>(n >> (8 * i))
    return size + 1


cdef int _cbor_scalar(unsigned char* out, bint is_str, const char* bs, Py_ssize_t n) noexcept nogil:
    """CBOR of a bound value (a string, or an int given as its decimal text) into ``out``
    (room for n + 9 bytes); -1 for an int no CBOR integer holds."""
    cdef int h
    cdef uint64_t m = 0, d
    cdef Py_ssize_t i = 0
    cdef bint neg = False
    if is_str:
        h = _cbor_head(out, 3, <uint64_t>n)
        memcpy(out + h, bs, n)
        return h + <int>n
    if n > 0 and bs[0] == 45:  # '-'
        neg = True
        i = 1
    if i >= n or n - i > 20:
        return -1
    for i in range(i, n):
        d = <uint64_t>(bs[i] - 48)
        if m > (<uint64_t>0xFFFFFFFFFFFFFFFFULL - d) // 10:
            return -1  # past 2^64 - 1, as the reference evaluator decides
        m = m * 10 + d
    if neg:
        if m == 0:
            return _cbor_head(out, 0, 0)
        return _cbor_head(out, 1, m - 1)
    return _cbor_head(out, 0, m)


cdef inline int _hexval(char c) noexcept nogil:
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return -1


cdef Py_ssize_t _unhex(unsigned char* out, const char* s, Py_ssize_t n) noexcept nogil:
    """Hex text to bytes (as bytes.fromhex, without spaces); -1 if it is not hex."""
    cdef Py_ssize_t i
    cdef int a, b
    if n % 2:
        return -1
    for i in range(0, n, 2):
        a = _hexval(s[i])
        b = _hexval(s[i + 1])
        if a < 0 or b < 0:
            return -1
        out[i // 2] = <unsigned char>(a * 16 + b)
    return n // 2


cdef inline uint32_t _fnv_utf16(uint32_t h, const unsigned char* p, Py_ssize_t n) noexcept nogil:
    """FNV-1a 32 over the UTF-16 code units of UTF-8 text (GrowthBook hashes JS strings)."""
    cdef Py_ssize_t i = 0
    cdef uint32_t c
    cdef unsigned char b0
    while i < n:
        b0 = p[i]
        if b0 < 0x80 or i + 1 >= n:
            c = b0
            i += 1
        elif b0 < 0xE0:
            c = ((b0 & 0x1F) << 6) | (p[i + 1] & 0x3F)
            i += 2
        elif b0 < 0xF0 and i + 2 < n:
            c = ((b0 & 0x0F) << 12) | ((p[i + 1] & 0x3F) << 6) | (p[i + 2] & 0x3F)
            i += 3
        elif i + 3 < n:
            c = ((b0 & 0x07) << 18) | ((p[i + 1] & 0x3F) << 12) | ((p[i + 2] & 0x3F) << 6) | (p[i + 3] & 0x3F)
            i += 4
        else:
            c = b0
            i += 1
        if c >= 0x10000:
            c -= 0x10000
            h = (h ^ (0xD800 + (c >> 10))) * <uint32_t>0x01000193U
            h = (h ^ (0xDC00 + (c & 0x3FF))) * <uint32_t>0x01000193U
        else:
            h = (h ^ c) * <uint32_t>0x01000193U
    return h


@cython.cdivision(True)  # unsigned operands and space >= 1: C division is exact
cdef int _scheme_bucket(int scheme, uint32_t seed, const char* salt, Py_ssize_t sl,
                        const char* suffix, Py_ssize_t xl, int space, bint is_str,
                        const char* bs, Py_ssize_t bl) noexcept nogil:
    """The bucket (0..space-1) of a bound value under an imported flag's scheme; the
    same arithmetic as ``cfgcore._eval_py.scheme_bucket`` (read that for the rules)."""
    cdef unsigned char stack[256]
    cdef unsigned char* buf = stack
    cdef Py_ssize_t need = sl + bl + xl + 20, n = 0
    cdef int w
    cdef uint32_t h
    cdef char digits[12]
    if scheme == SCHEME_GROWTHBOOK_V1 or scheme == SCHEME_GROWTHBOOK_V2:
        h = _fnv_utf16(<uint32_t>0x811C9DC5U, <const unsigned char*>salt, sl)
        h = _fnv_utf16(h, <const unsigned char*>bs, bl)
        h = _fnv_utf16(h, <const unsigned char*>suffix, xl)
        if scheme == SCHEME_GROWTHBOOK_V2:
            w = snprintf(digits, 12, "%u", h)
            h = _fnv_utf16(<uint32_t>0x811C9DC5U, <const unsigned char*>digits, w)
        return <int>(h % <uint32_t>space)
    if need > 256:
        buf = <unsigned char*>malloc(need)
        if buf == NULL:
            return -1
    if scheme == SCHEME_FLAGD_V3_CBOR:
        n = _unhex(buf, bs, bl) if is_str else -1
        if n > 0:
            h = murmur3_x86_32(buf, n, seed)
        if buf != stack:
            free(buf)
        if n <= 0:
            return -1  # not the hex text of an encoding: no value to hash
        return <int>((<uint64_t>h * <uint64_t>space) >> 32)
    if scheme == SCHEME_FLAGD_V3 and (sl or xl):
        n = _cbor_head(buf, 3, <uint64_t>(sl + bl + xl))
    elif scheme == SCHEME_FLAGD_V3_PAIR:
        buf[0] = 0x82
        n = 1 + _cbor_head(buf + 1, 3, <uint64_t>sl)
    if scheme == SCHEME_FLAGD_V3 and not (sl or xl) or scheme == SCHEME_FLAGD_V3_PAIR:
        if scheme == SCHEME_FLAGD_V3_PAIR:
            memcpy(buf + n, salt, sl)
            n += sl
        w = _cbor_scalar(buf + n, is_str, bs, bl)
        if w < 0:
            if buf != stack:
                free(buf)
            return -1
        n += w
    else:
        memcpy(buf + n, salt, sl)
        memcpy(buf + n + sl, bs, bl)
        memcpy(buf + n + sl + bl, suffix, xl)
        n += sl + bl + xl
    h = murmur3_x86_32(buf, n, seed)
    if buf != stack:
        free(buf)
    if scheme == SCHEME_MURMUR3:
        return <int>(h % <uint32_t>space)
    return <int>((<uint64_t>h * <uint64_t>space) >> 32)


def scheme_bucket(int scheme, uint32_t seed, bytes salt, bytes suffix, int space, bint is_str, bytes bk):
    """The bucket of ``bk`` (bucket text of a bound value) under an imported flag's scheme."""
    return _scheme_bucket(scheme, seed, salt, len(salt), suffix, len(suffix), space, is_str, bk, len(bk))


def murmur3_32(data, uint32_t seed=0):
    """MurmurHash3 x86_32 of ``data`` (bytes), unsigned."""
    cdef const unsigned char[:] view = data
    if view.shape[0] == 0:
        return murmur3_x86_32(NULL, 0, seed)
    return murmur3_x86_32(&view[0], view.shape[0], seed)


def bucket_of(str salt, str value):
    """The bucket (0..99999) of ``value`` for a flag salted with ``salt``."""
    return murmur3_32(f"{salt}:{value}".encode()) % BUCKETS


cdef inline bint _starts(const char* h, Py_ssize_t hn, const char* n, Py_ssize_t nn) noexcept nogil:
    return hn >= nn and memcmp(h, n, nn) == 0


cdef inline bint _ends(const char* h, Py_ssize_t hn, const char* n, Py_ssize_t nn) noexcept nogil:
    return hn >= nn and memcmp(h + hn - nn, n, nn) == 0


# Substring search in linear time where the C library has memmem (glibc's and musl's
# two-way search, the BSDs', macOS'): a naive scan is O(len(value) x len(constant)),
# 24 ms for a 1 MB context string against a 2 KB constant, and context values come
# from requests. Elsewhere (Windows) the naive scan.
cdef extern from *:
    """
    #include <string.h>
    #if defined(__GLIBC__) || defined(__APPLE__) || defined(__FreeBSD__) || \
        defined(__NetBSD__) || defined(__OpenBSD__) || \
        (defined(__linux__) && !defined(__ANDROID__))
    static int cfgcore_contains(const char *h, Py_ssize_t hn, const char *n, Py_ssize_t nn) {
        return nn == 0 || (hn >= nn && memmem(h, (size_t)hn, n, (size_t)nn) != NULL);
    }
    #else
    static int cfgcore_contains(const char *h, Py_ssize_t hn, const char *n, Py_ssize_t nn) {
        Py_ssize_t i;
        if (nn == 0) return 1;
        for (i = 0; i + nn <= hn; i++)
            if (h[i] == n[0] && memcmp(h + i, n, (size_t)nn) == 0) return 1;
        return 0;
    }
    #endif
    """
    bint _contains "cfgcore_contains"(const char* h, Py_ssize_t hn, const char* n, Py_ssize_t nn) noexcept nogil


cdef inline bint _in_sorted(const int32_t* ids, int count, int32_t x) noexcept nogil:
    cdef int lo = 0, hi = count, mid
    if count <= 8:
        for lo in range(count):
            if ids[lo] == x:
                return True
        return False
    while lo < hi:
        mid = (lo + hi) >> 1
        if ids[mid] < x:
            lo = mid + 1
        elif ids[mid] > x:
            hi = mid
        else:
            return True
    return False


cdef void _release(SlotVal* vals, Py_ssize_t n) noexcept:
    cdef Py_ssize_t i
    for i in range(n):
        Py_XDECREF(vals[i].text)
        Py_XDECREF(vals[i].folded)
        Py_XDECREF(vals[i].bucket)
        Py_XDECREF(vals[i].semver)
        vals[i].text = NULL
        vals[i].folded = NULL
        vals[i].bucket = NULL
        vals[i].semver = NULL


cdef SlotVal* _missing_slots(Py_ssize_t n) except NULL:
    """A heap array of n bound values, all *missing* (ids -1: match no constant)."""
    cdef Py_ssize_t i
    cdef SlotVal* vals = <SlotVal*>malloc((n if n else 1) * sizeof(SlotVal))
    if vals == NULL:
        raise MemoryError()
    memset(vals, 0, (n if n else 1) * sizeof(SlotVal))
    for i in range(n):
        vals[i].id = -1
        vals[i].ci_id = -1
    return vals


cdef int32_t* _int_array(list items) except? NULL:
    cdef Py_ssize_t i, n = len(items)
    cdef int32_t* out = <int32_t*>malloc((n if n else 1) * sizeof(int32_t))
    if out == NULL:
        raise MemoryError()
    for i in range(n):
        out[i] = <int32_t>items[i]
    return out


cdef double* _double_array(list items) except? NULL:
    cdef Py_ssize_t i, n = len(items)
    cdef double* out = <double*>malloc((n if n else 1) * sizeof(double))
    if out == NULL:
        raise MemoryError()
    for i in range(n):
        out[i] = <double>items[i]
    return out


cdef char* _bool_array(list items) except? NULL:
    cdef Py_ssize_t i, n = len(items)
    cdef char* out = <char*>malloc(n if n else 1)
    if out == NULL:
        raise MemoryError()
    for i in range(n):
        out[i] = 1 if items[i] else 0
    return out


# A Binding references only its snapshot, which never references a Binding or a
# Context: it cannot be part of a reference cycle, so it is not tracked by the cyclic
# GC (one is made per request and would otherwise count toward every collection), and
# freed ones are reused.
@cython.final
@cython.no_gc
@cython.freelist(32)  # one per request: reuse the memory instead of allocating it
cdef class Binding:
    """A context's attributes bound to one snapshot's slots (owned C array)."""

    cdef CompiledSnapshot snap
    cdef SlotVal* vals  # = small when the snapshot has few slots, else malloc'ed
    cdef Py_ssize_t n
    cdef bint complete  # every slot bound (no K_LAZY left)
    cdef uint64_t lazy  # slots 0-63 still K_LAZY, as bits (see CompiledSnapshot.fmask)
    cdef SlotVal small[SMALL_SLOTS]

    def __dealloc__(self):
        if self.vals != NULL:
            _release(self.vals, self.n)
            if self.vals != &self.small[0]:
                free(self.vals)
            self.vals = NULL


cdef object _context_attrs(object attrs):
    """What a Context reads its attributes from: a copy of an exact dict (a Context's
    own attributes when given a Context); any other mapping itself, read through its
    ``get()`` as a check with that mapping would (a copy by iteration could lose what
    ``get()`` finds, e.g. a case-insensitive mapping's keys); a dict whose copy raises
    (colliding keys with a raising ``__eq__``) itself too; ``{}`` for anything else."""
    if type(attrs) is Context:
        attrs = (<Context>attrs).attrs
    if type(attrs) is dict:
        try:
            return PyDict_Copy(attrs)
        except Exception:
            return attrs
    return attrs if _is_mapping(attrs) else {}


@cython.final
@cython.freelist(32)
cdef class Context:
    """Attributes of one request, bound to a snapshot's slots once and reused.

    Create it with ``engine.context({...})`` once per request; if the engine swaps
    snapshots meanwhile, the context re-binds itself to the new one on first use.
    ``attrs`` holds the attributes (see :func:`_context_attrs`; do not mutate it):
    each attribute is read from it and bound on the first check that needs it.
    """

    cdef readonly object attrs
    cdef Binding _bound

    def __init__(self, attrs=None):
        self.attrs = _context_attrs(attrs)

    cdef Binding _binding_for(self, CompiledSnapshot snap):
        cdef Binding bound = self._bound
        if bound is not None and bound.snap is snap:
            return bound
        bound = snap._lazy_binding()
        self._bound = bound  # one assignment: another thread sees old or new
        return bound

    # A read-only mapping of the attributes, so code that reads ctx["user_id"] works on
    # a bound context as on the dict it came from.
    def __getitem__(self, key):
        return self.attrs[key]

    def get(self, key, default=None):
        return self.attrs.get(key, default)

    def __contains__(self, key):
        return key in self.attrs

    def __iter__(self):
        return iter(self.attrs)

    def __len__(self):
        return len(self.attrs)

    def keys(self):
        return self.attrs.keys()

    def items(self):
        return self.attrs.items()

    def values(self):
        return self.attrs.values()

    def __repr__(self):
        return f"Context({self.attrs!r})"


Mapping.register(Context)


@cython.final
@cython.no_gc  # holds tuples of strings only: no cycle possible
cdef class Counters:
    """Evaluation counts of one compiled snapshot: plain C integers, no lock.

    ``cells[variant * N_REASONS + reason]`` counts the top-level evaluations that served
    a (global) variant for a reason, ``errors[code]`` the calls per error code. The
    cells are calloc'ed: pages no flag was evaluated on stay unmapped, so a large
    snapshot built before ``fork()`` adds no private memory to a worker until it
    evaluates. ``evaluate_all`` counts itself once in ``all_calls``; the flags that
    cannot vary are attributed at :meth:`take` from ``const_cells``.

    It outlives its snapshot (the engine keeps it until harvested), so nothing counted
    on a retired snapshot is lost. Under the GIL an increment (a C ``+=``) and
    :meth:`take` never interleave; on a free-threaded build, concurrent ``+=`` on one
    cell can lose increments: counters are statistics, not ledgers.
    """

    cdef uint64_t* cells
    cdef Py_ssize_t n_cells
    cdef uint64_t errors[N_ERRORS]
    cdef uint64_t all_calls
    cdef int32_t* const_cells
    cdef Py_ssize_t n_const
    cdef int32_t* var_flag  # the flag owning each global variant (-1: unreachable)
    cdef tuple _keys
    cdef tuple _names
    cdef public long long version

    cdef int _setup(self, tuple keys, tuple names, const int32_t* flags, Py_ssize_t n_flags) except -1:
        cdef Py_ssize_t n_vars = len(names), fi, v
        self._keys = keys
        self._names = names
        self.n_cells = n_vars * N_REASONS
        self.cells = <uint64_t*>calloc(self.n_cells if self.n_cells else 1, sizeof(uint64_t))
        self.var_flag = <int32_t*>malloc((n_vars if n_vars else 1) * sizeof(int32_t))
        if self.cells == NULL or self.var_flag == NULL:
            raise MemoryError()
        for v in range(n_vars):
            self.var_flag[v] = -1
        for fi in range(n_flags):
            for v in range(flags[fi * FW + F_VAR_BASE], flags[fi * FW + F_VAR_BASE] + flags[fi * FW + F_VAR_COUNT]):
                self.var_flag[v] = <int32_t>fi
        return 0

    def __dealloc__(self):
        free(self.cells)
        free(self.const_cells)
        free(self.var_flag)

    def take(self):
        """Read and reset every counter: ``({(flag, variant, reason): n}, {code: n})``.

        The read and the reset are one C pass that runs no Python code, so under the GIL
        no evaluation on another thread lands between them.
        """
        cdef Py_ssize_t i, n = 0
        cdef uint64_t calls = self.all_calls
        cdef uint64_t errs[N_ERRORS]
        cdef CountCell* buf
        self.all_calls = 0
        if calls:
            for i in range(self.n_const):
                self.cells[self.const_cells[i]] += calls
        for i in range(self.n_cells):
            if self.cells[i]:  # reads only: untouched pages stay unmapped
                n += 1
        buf = <CountCell*>malloc((n if n else 1) * sizeof(CountCell))
        if buf == NULL:
            raise MemoryError()  # nothing reset: the counts stay for the next take
        n = 0
        for i in range(self.n_cells):
            if self.cells[i]:
                buf[n].index = i
                buf[n].count = self.cells[i]
                self.cells[i] = 0
                n += 1
        for i in range(N_ERRORS):
            errs[i] = self.errors[i]
            self.errors[i] = 0
        try:
            return self._as_dicts(buf, n, errs)
        finally:
            free(buf)

    cdef tuple _as_dicts(self, const CountCell* buf, Py_ssize_t n, const uint64_t* errs):
        cdef dict evaluations = {}, errors = {}
        cdef Py_ssize_t i, var
        for i in range(n):
            var = buf[i].index // N_REASONS
            if self.var_flag[var] >= 0:
                key = (self._keys[self.var_flag[var]], self._names[var], REASONS[buf[i].index % N_REASONS])
                evaluations[key] = buf[i].count
        for i in range(N_ERRORS):
            if errs[i]:
                errors[ERROR_CODES[i]] = errs[i]
        return evaluations, errors


# binding(False) on the classes whose methods sit on the request path: their methods are
# C method descriptors (METH_FASTCALL), which CPython 3.11+ calls through a specialised
# instruction, instead of Cython function objects, which take the generic call path
# (about 5 ns of a 30-40 ns check here). See also _own_methods for Engine.
@cython.final
@cython.binding(False)
cdef class CompiledSnapshot:
    """One compiled, immutable flag set with the evaluation API.

    ``engine.snapshot()`` returns one of these to pin a version for a whole request.
    """

    cdef readonly object tables
    cdef public long long version
    cdef public object clock
    cdef dict _index
    cdef tuple _keys
    cdef tuple _values
    cdef tuple _names
    cdef tuple _slot_names
    cdef list _objs
    cdef list _value_kinds
    cdef dict _str_ids
    cdef dict _ci_ids
    cdef dict _num_ids
    cdef dict _bool_ids
    cdef bytes _sbytes
    cdef const char* sb
    cdef int32_t* nodes
    cdef int32_t* ipool
    cdef double* nums
    cdef int32_t* flags
    cdef int32_t* rules
    cdef int32_t* prereqs
    cdef int32_t* splits
    cdef int32_t* hashes
    cdef double* sched_start
    cdef double* sched_end
    cdef char* is_true
    cdef char* ci_slots
    cdef char* semver_slots
    cdef char* bucket_slots
    cdef char* id_slots
    cdef uint32_t* salt_h
    cdef Py_ssize_t n_slots
    cdef Py_ssize_t n_flags
    cdef SlotVal* empty
    # Each flag's slots as bits (NULL when the snapshot has more than 64 slots): a bound
    # context has every slot a flag reads when (binding.lazy & fmask[fi]) == 0.
    cdef uint64_t* fmask
    # evaluate_all: every flag's value where it cannot vary (None elsewhere), copied
    # whole per call; _varying lists the flags evaluated into the copy. Built on first use.
    cdef dict _all_template
    cdef int32_t* _varying
    cdef Py_ssize_t n_varying
    # Evaluation counts (see Counters): the public entry points add to counters' arrays
    # through these two pointers when counting is on (Engine.set_counting).
    cdef readonly Counters counters
    cdef uint64_t* cells
    cdef uint64_t* errs
    cdef public bint counting
    # The last flag keys looked up, by identity (see _lookup): strong references to
    # exact str keys of flags (NULL: empty) and their flag index, in slots by the key's
    # hash. Zeroed with the object.
    cdef PyObject* kc_key[KEY_CACHE]
    cdef int kc_fi[KEY_CACHE]
    cdef object __weakref__

    def __cinit__(self, tables, long long version=0, clock=None):
        t = tables
        self.tables = t
        self.version = version
        self.clock = clock
        # Flag keys and attribute names interned: the literals callers pass
        # (engine.is_enabled("new_ui", {"user_id": ...})) are interned by Python, so the
        # index and attribute lookups match them by identity instead of comparing text.
        self._index = {_intern(k): v for k, v in t.index.items()}
        self._keys = tuple([_intern(k) for k in t.keys])
        self._values = tuple(t.values)
        self._names = tuple(t.variant_names)
        self._slot_names = tuple([_intern(name) for name in t.slots])
        self._objs = list(t.objs)
        self._value_kinds = list(t.value_kinds)
        self._str_ids = t.str_ids
        self._ci_ids = t.ci_ids
        self._num_ids = t.num_ids
        self._bool_ids = t.bool_ids
        self._sbytes = bytes(t.sbytes)
        self.sb = self._sbytes
        self.nodes = _int_array(t.nodes)
        self.ipool = _int_array(t.ipool)
        self.nums = _double_array(t.nums)
        self.flags = _int_array(t.flags)
        self.rules = _int_array(t.rules)
        self.prereqs = _int_array(t.prereqs)
        self.splits = _int_array(t.splits)
        self.hashes = _int_array(t.hashes)
        self.sched_start = _double_array(t.sched_start)
        self.sched_end = _double_array(t.sched_end)
        self.is_true = _bool_array(t.is_true)
        self.ci_slots = _bool_array(t.ci_slots)
        self.semver_slots = _bool_array(t.semver_slots)
        self.bucket_slots = _bool_array(t.bucket_slots)
        self.id_slots = _bool_array(t.id_slots)
        self.n_slots = len(t.slots)
        self.n_flags = len(t.keys)
        self.empty = _missing_slots(self.n_slots)
        # Hash state after each salt's whole 4-byte blocks: a bucket then hashes only
        # the salt's last 0-3 bytes and the context value.
        self.salt_h = <uint32_t*>malloc((self.n_flags if self.n_flags else 1) * sizeof(uint32_t))
        if self.salt_h == NULL:
            raise MemoryError()
        self.counters = Counters.__new__(Counters)
        self.counters._setup(self._keys, self._names, self.flags, self.n_flags)
        self.cells = self.counters.cells
        self.errs = &self.counters.errors[0]
        self.counting = True
        cdef Py_ssize_t fi, slen, j
        cdef const int32_t* f
        for fi in range(self.n_flags):
            slen = self.flags[fi * FW + F_SALT_LEN]
            self.salt_h[fi] = _mm_blocks(
                0, <const unsigned char*>self.sb + self.flags[fi * FW + F_SALT_OFF], slen - slen % 4
            )
        if self.n_slots <= 64:
            self.fmask = <uint64_t*>calloc(self.n_flags if self.n_flags else 1, sizeof(uint64_t))
            if self.fmask == NULL:
                raise MemoryError()
            for fi in range(self.n_flags):
                f = self.flags + fi * FW
                for j in range(f[F_SLOTS_COUNT]):
                    self.fmask[fi] |= (<uint64_t>1) << self.ipool[f[F_SLOTS_START] + j]

    def __dealloc__(self):
        free(self.nodes)
        free(self.ipool)
        free(self.nums)
        free(self.flags)
        free(self.rules)
        free(self.prereqs)
        free(self.splits)
        free(self.hashes)
        free(self.sched_start)
        free(self.sched_end)
        free(self.is_true)
        free(self.ci_slots)
        free(self.semver_slots)
        free(self.bucket_slots)
        free(self.id_slots)
        free(self.empty)
        free(self.salt_h)
        free(self.fmask)
        free(self._varying)
        cdef Py_ssize_t i
        for i in range(KEY_CACHE):
            Py_XDECREF(self.kc_key[i])
            self.kc_key[i] = NULL

    @property
    def keys(self):
        return list(self._keys)

    def __len__(self):
        return self.n_flags

    def __contains__(self, key):
        return self._lookup(key) >= 0

    # -- binding (Python objects allowed: once per request) ------------------------------
    cdef int _bind_slot(self, SlotVal* sv, Py_ssize_t slot, object v) except -1:
        """Fill ``sv`` for value ``v``; mirrors _eval_py._bind_value.

        Callers try :meth:`_bind_fast` first (no exception frame); this binds the rest:
        subclasses of str/int/float (by their exact value), ints, and strs that are not
        ASCII or sit in a case-folded or semver slot. Constant ids are looked up only
        for slots that eq/ne/in/not_in compare: a slot read only for bucketing or
        prefixes never needs one.
        """
        cdef PyObject* found
        cdef Py_ssize_t n
        cdef const char* p
        cdef double d
        if not (PyUnicode_CheckExact(v) or PyLong_CheckExact(v) or v is None
                or PyFloat_CheckExact(v) or v is True or v is False):
            v = exact_value(v)  # subclasses bind by their base value (may raise: unusable)
        if self._bind_fast(sv, slot, v):  # (again, for a caller's exact value: cheap)
            return 0
        memset(sv, 0, sizeof(SlotVal))
        sv.id = -1
        sv.ci_id = -1
        if PyUnicode_Check(v):
            try:
                p = PyUnicode_AsUTF8AndSize(v, &n)
            except UnicodeEncodeError:  # lone surrogates: not a usable string
                sv.kind = K_OTHER
                return 0
            sv.kind = K_STR
            sv.s = p
            sv.slen = n
            sv.bs = p
            sv.bslen = n
            Py_INCREF(v)
            sv.text = <PyObject*>v
            if self.id_slots[slot]:  # an exact str here: its hash runs no user code
                found = PyDict_GetItemWithError(self._str_ids, v)
                if found != NULL:
                    sv.id = <int32_t>(<object>found)
            if self.ci_slots[slot]:
                f = v.casefold()
                sv.ls = PyUnicode_AsUTF8AndSize(f, &sv.lslen)
                Py_INCREF(f)
                sv.folded = <PyObject*>f
                found = PyDict_GetItemWithError(self._ci_ids, f)
                if found != NULL:
                    sv.ci_id = <int32_t>(<object>found)
            if self.semver_slots[slot]:
                key = _semver_key(v)
                if key is not None:
                    Py_INCREF(key)
                    sv.semver = <PyObject*>key
            return 0
        if PyLong_Check(v):
            try:
                d = PyLong_AsDouble(v)
            except OverflowError:
                sv.kind = K_OTHER
                return 0
            sv.kind = K_NUM
            sv.num = d
            if self.id_slots[slot]:
                found = PyDict_GetItemWithError(self._num_ids, v)
                if found != NULL:
                    sv.id = <int32_t>(<object>found)
            if self.bucket_slots[slot]:  # decimal text only where some flag buckets by it
                b = str(int(v))
                sv.bs = PyUnicode_AsUTF8AndSize(b, &sv.bslen)
                Py_INCREF(b)
                sv.bucket = <PyObject*>b
            return 0
        sv.kind = K_OTHER  # None, bools and floats are _bind_fast's
        return 0

    cdef inline bint _bind_fast(self, SlotVal* sv, Py_ssize_t slot, object v) noexcept:
        """_bind_slot for the values whose binding runs no Python code and cannot fail:
        None, True/False, an exact float, an exact ASCII str in a slot that is neither
        case-folded nor parsed as a semver. False (nothing written): use _bind_slot."""
        cdef PyObject* found
        cdef double d
        cdef dict ids
        if PyUnicode_CheckExact(v):
            if not PyUnicode_IS_COMPACT_ASCII(v) or self.ci_slots[slot] or self.semver_slots[slot]:
                return False
            memset(sv, 0, sizeof(SlotVal))
            sv.kind = K_STR
            sv.s = sv.bs = <const char*>PyUnicode_DATA(v)  # ASCII: its UTF-8 as stored
            sv.slen = sv.bslen = PyUnicode_GET_LENGTH(v)
            Py_INCREF(v)
            sv.text = <PyObject*>v
            ids = self._str_ids
        elif v is None:
            memset(sv, 0, sizeof(SlotVal))
            sv.id = -1
            sv.ci_id = -1
            return True
        elif v is True or v is False:
            memset(sv, 0, sizeof(SlotVal))
            sv.kind = K_BOOL
            ids = self._bool_ids
        elif PyFloat_CheckExact(v):
            d = PyFloat_AS_DOUBLE(v)
            memset(sv, 0, sizeof(SlotVal))
            if isnan(d):
                sv.kind = K_OTHER
                sv.id = -1
                sv.ci_id = -1
                return True
            sv.kind = K_NUM
            sv.num = d
            ids = self._num_ids
        else:
            return False
        sv.id = -1
        sv.ci_id = -1
        if self.id_slots[slot]:
            # exact str, bool or float keys: hashing and comparing run no user code
            found = _dict_get_or_null(ids, v)
            if found != NULL:
                sv.id = <int32_t>_small_int(found)
        return True

    cdef inline object _get_attr(self, object attrs, Py_ssize_t slot):
        cdef PyObject* found
        name = self._slot_names[slot]
        if type(attrs) is dict:
            found = _dict_get_or_null(attrs, name)
            if found != NULL:
                return <object>found
            if PyErr_Occurred() != NULL:  # a colliding key's __eq__ raised
                PyErr_Clear()
            return None
        try:
            return attrs.get(name)
        except Exception:  # a hostile mapping must not break evaluation
            return None

    cdef int _bind_into(self, SlotVal* vals, object attrs, const int32_t* slots, Py_ssize_t count) except -1:
        cdef Py_ssize_t i, s
        for i in range(count):
            s = slots[i] if slots != NULL else i
            v = self._get_attr(attrs, s)
            if self._bind_fast(&vals[s], s, v):
                continue
            try:
                self._bind_slot(&vals[s], s, v)
            except Exception:  # e.g. casefold() or a semver parse on a str subclass
                _release(&vals[s], 1)
                memset(&vals[s], 0, sizeof(SlotVal))
                vals[s].kind = K_OTHER
                vals[s].id = -1
                vals[s].ci_id = -1
        return 0

    cdef Binding _lazy_binding(self):
        """A binding whose slots are all K_LAZY (bound by _ensure on first use)."""
        cdef Binding bd = Binding.__new__(Binding)
        cdef Py_ssize_t i
        bd.snap = self
        bd.n = self.n_slots
        if self.n_slots <= SMALL_SLOTS:
            bd.vals = &bd.small[0]
            memset(bd.vals, 0, self.n_slots * sizeof(SlotVal))
        else:
            bd.vals = _missing_slots(self.n_slots)
        for i in range(self.n_slots):
            bd.vals[i].kind = K_LAZY
        bd.complete = self.n_slots == 0
        bd.lazy = ~(<uint64_t>0) if self.n_slots >= 64 else ((<uint64_t>1) << self.n_slots) - 1
        return bd

    cdef int _bind_lazy(self, Binding bd, object attrs, Py_ssize_t s) except -1:
        # Bind into a temporary and publish it with one struct copy while holding the
        # GIL (no Python code in between): a thread sharing the context sees the slot
        # unbound or fully bound, never half-filled (casefold or a semver parse may run
        # Python code and let another thread in). The first writer wins.
        cdef SlotVal tmp
        v = self._get_attr(attrs, s)  # a colliding key's raising __eq__ reads as missing
        if not self._bind_fast(&tmp, s, v):
            self._bind_safe(&tmp, s, v)
        if bd.vals[s].kind == K_LAZY:
            bd.vals[s] = tmp
            if s < 64:
                bd.lazy &= ~((<uint64_t>1) << s)
        else:
            _release(&tmp, 1)
        return 0

    cdef int _bind_safe(self, SlotVal* tmp, Py_ssize_t s, object v) except -1:
        try:
            self._bind_slot(tmp, s, v)
        except Exception:  # e.g. a semver parse or casefold() that fails: unusable value
            _release(tmp, 1)
            memset(tmp, 0, sizeof(SlotVal))
            tmp.kind = K_OTHER
            tmp.id = -1
            tmp.ci_id = -1
        return 0

    cdef inline int _ensure(self, Binding bd, object attrs, const int32_t* slots, Py_ssize_t count) except -1:
        """Bind the context's slots ``slots[:count]`` (all slots if NULL) not bound yet."""
        cdef Py_ssize_t i, s
        if bd.complete:
            return 0
        for i in range(count):
            s = slots[i] if slots != NULL else i
            if bd.vals[s].kind == K_LAZY:
                self._bind_lazy(bd, attrs, s)
        if slots == NULL:
            bd.complete = True
            bd.lazy = 0
        return 0

    cdef inline Binding _context_binding(self, Context ctx, int fi):
        """ctx's binding to this snapshot with flag ``fi``'s slots bound (all if fi < 0)."""
        cdef Binding bd = ctx._bound
        # The common case, a context already bound to this snapshot with the flag's
        # slots bound: two pointer compares and one mask test.
        if bd is not None and bd.snap is self and (
            bd.complete or (fi >= 0 and self.fmask != NULL and (bd.lazy & self.fmask[fi]) == 0)
        ):
            return bd
        return self._context_bind(ctx, fi)

    cdef Binding _context_bind(self, Context ctx, int fi):
        cdef Binding bd = ctx._binding_for(self)
        cdef const int32_t* f
        if fi < 0:
            self._ensure(bd, ctx.attrs, NULL, self.n_slots)
        else:
            f = self.flags + fi * FW
            self._ensure(bd, ctx.attrs, self.ipool + f[F_SLOTS_START], f[F_SLOTS_COUNT])
        return bd

    cdef Binding _bind_all(self, object attrs):
        cdef Binding bd = Binding.__new__(Binding)
        bd.snap = self
        bd.n = self.n_slots
        bd.vals = _missing_slots(self.n_slots)
        if type(attrs) is dict or _is_mapping(attrs):
            self._bind_into(bd.vals, attrs, NULL, self.n_slots)
        return bd

    cdef inline int _lookup(self, object key):
        """Flag index of ``key`` (-1: not a flag). Never raises.

        Callers pass the same key objects over and over (literals, constants, Enum
        values), so the last 64 exact-str flag keys found are remembered by identity: a
        hit is a hash read and a pointer compare instead of a dict lookup. A cached key
        is held by a strong reference, so its address cannot be reused by another string
        while it is cached; the snapshot never changes, so an index cached for it stays
        right. Keys that name no flag are not cached.
        """
        cdef PyObject* found
        cdef PyObject* old
        cdef Py_hash_t h
        cdef Py_ssize_t slot = 0
        cdef int fi
        if PyUnicode_CheckExact(key):
            if CFGCORE_KEY_CACHE:
                h = _str_hash(key)  # cached in the str after its first hash: no hashing
                slot = h & (KEY_CACHE - 1)
                if self.kc_key[slot] == <PyObject*>key:
                    return self.kc_fi[slot]
            # An exact str hashes and compares without user code: the lookup cannot raise.
            # (PyDict_GetItem would also save and restore the error state on every call.)
            found = PyDict_GetItemWithError(self._index, key)
            if found == NULL:
                # Not a flag: not cached, so a key from untrusted input (of any size)
                # is never kept alive by the snapshot.
                PyErr_Clear()
                return -1
            fi = <int>(<object>found)
            if CFGCORE_KEY_CACHE:
                old = self.kc_key[slot]
                Py_INCREF(key)
                self.kc_key[slot] = <PyObject*>key
                self.kc_fi[slot] = fi
                Py_XDECREF(old)  # a str: its deallocation runs no Python code
            return fi
        # Only strings name flags; a str subclass by its exact value (its __hash__ and
        # __eq__ are never called; not cached: its exact copy is a new object each
        # call), anything else is not found.
        if not PyUnicode_Check(key):
            return -1
        try:
            key = str.__str__(key)
        except Exception:
            return -1
        found = PyDict_GetItemWithError(self._index, key)
        if found == NULL:
            PyErr_Clear()
            return -1
        return <int>(<object>found)

    # -- evaluation (C only, except regex / semver / a test clock) ------------------------
    cdef bint _regex(self, int a, PyObject* text) noexcept:
        if text == NULL or PyUnicode_GET_LENGTH(<object>text) > MAX_REGEX_INPUT:
            return False
        try:
            return self._objs[a].search(<object>text) is not None
        except Exception:
            return False

    cdef bint _semver(self, int op, int a, PyObject* sv) noexcept:
        if sv == NULL:
            return False
        try:
            key = self._objs[a]
            if op == OP_SEMVER_EQ:
                return <object>sv == key
            if op == OP_SEMVER_LT:
                return <object>sv < key
            return <object>sv > key
        except Exception:
            return False

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef bint _node(self, int i, const SlotVal* b) noexcept:
        # Indices come from the compiler, which emits every child/slot/pool reference
        # inside its own tables; nothing here indexes with context-derived values.
        cdef const int32_t* n = self.nodes + i * NW
        cdef int op = n[0]
        cdef int child, _k, want
        cdef const SlotVal* v
        if op == OP_ALL or op == OP_ANY:
            want = op == OP_ANY
            child = i + 1
            for _k in range(n[2]):
                if self._node(child, b) == want:
                    return want
                child = self.nodes[child * NW + 5]
            return not want
        if op == OP_NOT:
            return not self._node(i + 1, b)
        if op == OP_FALSE:
            return False
        v = b + n[1]
        if op == OP_EXISTS:
            return v.kind != K_MISSING
        if op == OP_EQ:
            return v.id == n[2] and v.id >= 0
        if op == OP_IN:
            return v.id >= 0 and _in_sorted(self.ipool + n[2], n[3], v.id)
        if op == OP_NE:
            return (v.kind & n[3]) != 0 and v.id != n[2]
        if op == OP_NOT_IN:
            return (v.kind & n[4]) != 0 and not _in_sorted(self.ipool + n[2], n[3], v.id)
        if v.kind == K_NUM:
            if op == OP_LT:
                return v.num < self.nums[n[2]]
            if op == OP_LE:
                return v.num <= self.nums[n[2]]
            if op == OP_GT:
                return v.num > self.nums[n[2]]
            if op == OP_GE:
                return v.num >= self.nums[n[2]]
            return False
        if v.kind != K_STR:
            return False
        if op == OP_EQ_CI:
            return v.ci_id == n[2] and v.ci_id >= 0
        if op == OP_NE_CI:
            return v.ci_id != n[2]
        if op == OP_IN_CI:
            return v.ci_id >= 0 and _in_sorted(self.ipool + n[2], n[3], v.ci_id)
        if op == OP_NOT_IN_CI:
            return not _in_sorted(self.ipool + n[2], n[3], v.ci_id)
        if op == OP_STARTS:
            return _starts(v.s, v.slen, self.sb + n[2], n[3])
        if op == OP_ENDS:
            return _ends(v.s, v.slen, self.sb + n[2], n[3])
        if op == OP_CONTAINS:
            return _contains(v.s, v.slen, self.sb + n[2], n[3])
        if op == OP_STARTS_CI:
            return _starts(v.ls, v.lslen, self.sb + n[2], n[3])
        if op == OP_ENDS_CI:
            return _ends(v.ls, v.lslen, self.sb + n[2], n[3])
        if op == OP_CONTAINS_CI:
            return _contains(v.ls, v.lslen, self.sb + n[2], n[3])
        if op == OP_REGEX:
            return self._regex(n[2], v.text)
        if op == OP_SEMVER_EQ or op == OP_SEMVER_LT or op == OP_SEMVER_GT:
            return self._semver(op, n[2], v.semver)
        return False

    @cython.cdivision(True)  # h is unsigned and BUCKETS positive: C modulo is exact
    cdef int _bucket(self, int fi, const int32_t* f, const SlotVal* b, int bstart, int bcount) noexcept:
        cdef int k
        cdef const SlotVal* v
        cdef unsigned char block[4]
        cdef const unsigned char* rest
        cdef const unsigned char* salt_tail
        cdef Py_ssize_t saltlen = f[F_SALT_LEN]
        cdef Py_ssize_t rem = saltlen % 4, fill, nrest, end, j
        cdef uint32_t h
        for k in range(bcount):
            v = b + self.ipool[bstart + k]
            if v.bs == NULL:
                continue  # absent, or not a str/int (a float, a bool, a list): try the next
            # scheme 0 (murmur3) is the only one so far: f[F_SCHEME] selects others later.
            # murmur3(salt ":" value) without building the string: continue from the
            # salt's precomputed block state; its last 0-3 bytes and the value's first
            # bytes make up one straddling block.
            h = self.salt_h[fi]
            rest = <const unsigned char*>v.bs
            nrest = v.bslen
            if rem:
                salt_tail = <const unsigned char*>self.sb + f[F_SALT_OFF] + saltlen - rem
                fill = 4 - rem
                for j in range(rem):
                    block[j] = salt_tail[j]
                if nrest < fill:  # everything left is a tail shorter than a block
                    for j in range(nrest):
                        block[rem + j] = rest[j]
                    h = _mm_finish(h, block, rem + nrest, saltlen + v.bslen)
                    return <int>(h % BUCKETS)
                for j in range(fill):
                    block[rem + j] = rest[j]
                h = _mm_blocks(h, block, 4)
                rest += fill
                nrest -= fill
            end = nrest - nrest % 4
            h = _mm_finish(_mm_blocks(h, rest, end), rest + end, nrest % 4, saltlen + v.bslen)
            return <int>(h % BUCKETS)
        return -1

    cdef double _now(self) noexcept:
        clock = self.clock
        if clock is None:
            return cfgcore_wall_clock()
        try:
            return float(clock())
        except Exception:
            if self.counting:
                self.errs[ERR_GENERAL] += 1
            return NAN  # a broken clock: schedules treat the flag as out of window

    cdef int _hashed(self, int h, const SlotVal* b) noexcept:
        """Bucket under hashing record ``h`` (an imported flag's scheme); -1 if no value."""
        cdef const int32_t* hr = self.hashes + h * HW
        cdef const SlotVal* v
        cdef int k
        for k in range(hr[H_BY_COUNT]):
            v = b + self.ipool[hr[H_BY_START] + k]
            if v.bs == NULL:
                continue  # as for flags: absent, or not a str/int: try the next
            return _scheme_bucket(
                hr[H_SCHEME], <uint32_t>hr[H_SEED], self.sb + hr[H_SALT_OFF], hr[H_SALT_LEN],
                self.sb + hr[H_SUFFIX_OFF], hr[H_SUFFIX_LEN], hr[H_SPACE], v.kind == K_STR,
                v.bs, v.bslen,
            )
        return -1

    cdef Outcome _eval(self, int fi, const SlotVal* b, double* now) noexcept:
        # now[0]: the clock reading, valid once now[1] is 1 (NaN: the clock failed)
        cdef const int32_t* f = self.flags + fi * FW
        cdef const int32_t* r
        cdef const int32_t* sp
        cdef Outcome out
        cdef int p, k, j, i, got, want, bucket, thr, nsplit, bstart, bcount, g, gcount
        cdef bint ok, gated
        cdef int pstart = f[F_PRE_START]
        cdef int rstart = f[F_RULE_START]
        cdef int rcount = f[F_RULE_COUNT]
        out.rule = -1
        if not f[F_ENABLED]:
            out.var = f[F_OFF]
            out.reason = REASON_DISABLED
            return out
        if f[F_SCHED]:
            if now[1] == 0:  # read the clock once per evaluation, even when it fails
                now[0] = self._now()
                now[1] = 1
            if not (self.sched_start[fi] <= now[0] < self.sched_end[fi]):
                out.var = f[F_OFF]
                out.reason = REASON_DISABLED
                return out
        for p in range(pstart, pstart + f[F_PRE_COUNT]):
            want = self.prereqs[p * PW + 1]
            got = self._eval(self.prereqs[p * PW], b, now).var
            if want >= 0:
                ok = got == want
            elif want == P_ON:
                ok = self.is_true[got]
            elif want == P_OFF:
                ok = not self.is_true[got]
            else:  # P_SET - i: one of a counted list of variants in the pool
                i = P_SET - want
                ok = False
                for j in range(i + 1, i + 1 + self.ipool[i]):
                    if self.ipool[j] == got:
                        ok = True
                        break
            if not ok:
                out.var = f[F_OFF]
                out.reason = REASON_PREREQ
                return out
        for k in range(rcount):
            r = self.rules + (rstart + k) * RW
            if r[R_COND] >= 0 and not self._node(r[R_COND], b):
                continue
            thr = r[R_ROLLOUT]
            nsplit = r[R_SPLIT_COUNT]
            gcount = r[R_GATE_COUNT]
            if gcount:
                gated = True
                for g in range(r[R_GATE_START], r[R_GATE_START] + gcount):
                    bucket = self._hashed(g, b)
                    if not (self.hashes[g * HW + H_LO] <= bucket < self.hashes[g * HW + H_HI]):
                        gated = False
                        break
                if not gated:
                    continue  # outside a gate (or nothing to hash): the rule cannot apply
            if r[R_HASH] >= 0:
                bucket = self._hashed(r[R_HASH], b)
                if bucket < 0:
                    continue
                for j in range(r[R_SPLIT_START], r[R_SPLIT_START] + nsplit):
                    if bucket < self.splits[j * 2]:
                        out.var = self.splits[j * 2 + 1]
                        if out.var < 0:
                            break  # a gap: fall through to the next rule
                        out.reason = REASON_SPLIT
                        out.rule = k
                        return out
                continue
            if thr < 0 and nsplit == 0:
                out.var = r[R_SERVE]
                out.reason = REASON_SPLIT if gcount else REASON_MATCH
                out.rule = k
                return out
            if r[R_BUCKET_COUNT]:
                bstart = r[R_BUCKET_START]
                bcount = r[R_BUCKET_COUNT]
            else:
                bstart = f[F_BUCKET_START]
                bcount = f[F_BUCKET_COUNT]
            bucket = self._bucket(fi, f, b, bstart, bcount)
            if bucket < 0:
                continue  # no attribute to bucket by: the rule cannot apply
            if nsplit == 0:
                if bucket < thr:
                    out.var = r[R_SERVE]
                    out.reason = REASON_SPLIT
                    out.rule = k
                    return out
                continue
            # The variant is the first whose cumulative threshold exceeds the bucket. The
            # thresholds never decrease (weights >= 0, summing to 100, the last one
            # BUCKETS), so that is the count of thresholds <= bucket: counted without a
            # branch, as a bucket is random per user and an early exit mispredicts on
            # about every other call (~5 ns).
            sp = self.splits + r[R_SPLIT_START] * 2
            if nsplit == 2:  # the usual shapes unrolled (a loop is vectorised, slower)
                i = (bucket >= sp[0]) + (bucket >= sp[2])
            elif nsplit == 3:
                i = (bucket >= sp[0]) + (bucket >= sp[2]) + (bucket >= sp[4])
            else:
                i = 0
                for p in range(nsplit):
                    i += bucket >= sp[p * 2]
            if i < nsplit:
                out.var = sp[i * 2 + 1]
                out.reason = REASON_SPLIT
                out.rule = k
                return out
        out.var = f[F_DEFAULT]
        out.reason = REASON_STATIC if rcount == 0 else REASON_DEFAULT
        return out

    cdef Outcome _run(self, int fi, object ctx) except *:
        """Evaluate flag ``fi`` for any kind of context; never raises on bad data."""
        cdef double now[2]
        now[0] = NAN
        now[1] = 0
        cdef Binding bd
        cdef SlotVal stackvals[STACK_SLOTS]
        cdef SlotVal* vals
        cdef const int32_t* f
        cdef Outcome out
        cdef int k
        if type(ctx) is Context:
            bd = self._context_binding(<Context>ctx, fi)  # local ref: alive during the call
            return self._eval(fi, bd.vals, now)
        if ctx is None or (type(ctx) is not dict and not _is_mapping(ctx)):
            if ctx is not None and self.counting:  # not a context: evaluated with no attributes
                self.errs[ERR_INVALID_CONTEXT] += 1
            return self._eval(fi, self.empty, now)
        f = self.flags + fi * FW
        if f[F_SLOTS_COUNT] == 0:
            return self._eval(fi, self.empty, now)
        if self.n_slots <= STACK_SLOTS:
            vals = &stackvals[0]
        else:
            vals = <SlotVal*>malloc(self.n_slots * sizeof(SlotVal))
            if vals == NULL:
                raise MemoryError()
        self._bind_into(vals, ctx, self.ipool + f[F_SLOTS_START], f[F_SLOTS_COUNT])
        out = self._eval(fi, vals, now)
        for k in range(f[F_SLOTS_COUNT]):
            _release(&vals[self.ipool[f[F_SLOTS_START] + k]], 1)
        if vals != &stackvals[0]:
            free(vals)
        return out

    # -- public API ----------------------------------------------------------------------
    cpdef bint is_enabled(self, key, ctx=None):
        """Whether the boolean flag ``key`` is on for ``ctx``.

        False when the flag is unknown, not boolean (its variants are not exactly
        true/false), off, or serves its ``off`` variant. Never raises.
        """
        cdef int fi = self._lookup(key)
        cdef Outcome out
        cdef bint on
        if fi < 0:
            if self.counting:
                self.errs[ERR_FLAG_NOT_FOUND] += 1
            return False
        out = self._run(fi, ctx)
        if not self.flags[fi * FW + F_BOOL]:
            if self.counting:
                self._mismatch(out.var)
            return False
        on = self.is_true[out.var]
        if self.counting:
            self.cells[out.var * N_REASONS + out.reason] += 1
        return on

    cpdef variant(self, key, ctx=None):
        """The name of the variant ``key`` serves for ``ctx`` (e.g. ``"control"``).

        None when the flag is unknown. Never raises.
        """
        cdef int fi = self._lookup(key)
        cdef Outcome out
        if fi < 0:
            if self.counting:
                self.errs[ERR_FLAG_NOT_FOUND] += 1
            return None
        out = self._run(fi, ctx)
        if self.counting:
            self.cells[out.var * N_REASONS + out.reason] += 1
        return self._names[out.var]

    cpdef value(self, key, ctx=None, default=None):
        """The value ``key`` serves for ``ctx`` (objects and arrays read-only).

        Returns ``default`` when the flag is unknown, or when ``default`` is not
        None and the served value is of another type (bool, str, number, object,
        array). Never raises.
        """
        cdef int fi = self._lookup(key)
        cdef Outcome out
        if fi < 0:
            if self.counting:
                self.errs[ERR_FLAG_NOT_FOUND] += 1
            return default
        out = self._run(fi, ctx)
        if default is not None and _value_kind(default) != self._value_kinds[out.var]:
            if self.counting:
                self._mismatch(out.var)
            return default
        if self.counting:
            self.cells[out.var * N_REASONS + out.reason] += 1
        return self._values[out.var]

    cpdef evaluate(self, key, ctx=None, default=None):
        """Full resolution details for ``key`` and ``ctx``.

        :class:`~cfgcore.details.EvaluationDetails` with the value, the variant,
        the reason (STATIC, DEFAULT, TARGETING_MATCH, SPLIT, DISABLED,
        PREREQUISITE_FAILED or ERROR), the index of the deciding rule, and for
        ERROR the error code (FLAG_NOT_FOUND, TYPE_MISMATCH) with ``default`` as
        the value. Never raises.
        """
        cdef int fi = self._lookup(key)
        cdef Outcome out
        if fi < 0:
            if self.counting:
                self.errs[ERR_FLAG_NOT_FOUND] += 1
            return EvaluationDetails(
                flag_key=key_text(key),
                value=default,
                variant=None,
                reason=Reason.ERROR,
                error_code=ErrorCode.FLAG_NOT_FOUND,
                error_message="flag not found",
                snapshot_version=self.version,
            )
        out = self._run(fi, ctx)
        if default is not None and _value_kind(default) != self._value_kinds[out.var]:
            if self.counting:
                self._mismatch(out.var)
            return EvaluationDetails(
                flag_key=self._keys[fi],
                value=default,
                variant=None,
                reason=Reason.ERROR,
                error_code=ErrorCode.TYPE_MISMATCH,
                error_message="served value's type differs from the default's",
                snapshot_version=self.version,
            )
        if self.counting:
            self.cells[out.var * N_REASONS + out.reason] += 1
        return EvaluationDetails(
            flag_key=self._keys[fi],
            value=self._values[out.var],
            variant=self._names[out.var],
            reason=REASONS[out.reason],
            rule_index=out.rule if out.rule >= 0 else None,
            snapshot_version=self.version,
        )

    cpdef dict evaluate_all(self, ctx=None):
        """Every flag's value for ``ctx`` in one call: ``{flag_key: value}``.

        The context is bound once for all flags; one clock reading serves every
        schedule. Never raises.
        """
        cdef double now[2]
        now[0] = NAN
        now[1] = 0
        cdef Binding bd
        cdef const SlotVal* vals
        cdef Py_ssize_t i
        cdef int fi
        cdef Outcome out
        # Counting: the flags that cannot vary are counted once per call (all_calls) and
        # attributed at take time; the others add their own cell.
        cdef uint64_t* cells = self.cells if self.counting else NULL
        if self._all_template is None:
            self._build_all_template()
        if type(ctx) is Context:
            bd = self._context_binding(<Context>ctx, -1)
        else:
            if cells != NULL and ctx is not None and type(ctx) is not dict and not _is_mapping(ctx):
                self.errs[ERR_INVALID_CONTEXT] += 1  # not a context: evaluated with no attributes
            bd = self._bind_all(ctx)
        vals = bd.vals
        if cells != NULL:
            self.counters.all_calls += 1
        # A copy of a dict without deletions clones its key table (one memcpy) in the
        # same order; only the flags that can vary are evaluated and stored into it.
        cdef dict result = PyDict_Copy(self._all_template)
        # The cells to add are gathered in a small stack buffer and added in a tight loop
        # every ALL_BATCH flags: scattered read-modify-writes then overlap in the memory
        # system instead of each one stalling between two flag evaluations.
        cdef int32_t pending[ALL_BATCH]
        cdef int np = 0, j
        for i in range(self.n_varying):
            fi = self._varying[i]
            out = self._eval(fi, vals, now)
            pending[np] = out.var * N_REASONS + out.reason
            np += 1
            if np == ALL_BATCH:
                if cells != NULL:
                    for j in range(np):
                        cells[pending[j]] += 1
                np = 0
            PyDict_SetItem(result, self._keys[fi], self._values[out.var])
        if cells != NULL:
            for j in range(np):
                cells[pending[j]] += 1
        return result

    cdef inline void _mismatch(self, int var) noexcept:
        # TYPE_MISMATCH: the flag served ``var``, the caller got its default
        self.cells[var * N_REASONS + REASON_ERROR] += 1
        self.errs[ERR_TYPE_MISMATCH] += 1

    # -- the observed path (hooks, exposures, debug mode): Python objects allowed ---------
    def _observe(self, int kind, key, ctx=None, default=None):
        """One evaluation for an engine with hooks, exposure callbacks or debug mode:
        ``(answer, details, bucket, unit)``.

        ``answer`` and the counts are what ``is_enabled`` (kind 0), ``variant`` (1),
        ``value`` (2) or ``evaluate`` (3) give; ``details`` explains the answer (for
        kind 0 its value is the boolean answer); ``bucket`` and ``unit`` (the bucketed
        attribute's value as text) are set when a rollout or split decided. Never raises.
        """
        cdef int fi = self._lookup(key)
        cdef Outcome out
        cdef bint mismatch
        if fi < 0:
            if self.counting:
                self.errs[ERR_FLAG_NOT_FOUND] += 1
            details = EvaluationDetails(
                flag_key=key_text(key), value=False if kind == 0 else default, variant=None,
                reason=Reason.ERROR, error_code=ErrorCode.FLAG_NOT_FOUND,
                error_message="flag not found", snapshot_version=self.version,
            )
            return (details.value if kind != 3 else details), details, None, None
        out = self._run(fi, ctx)
        if kind == 0:
            mismatch = not self.flags[fi * FW + F_BOOL]
        else:
            mismatch = kind != 1 and default is not None and _value_kind(default) != self._value_kinds[out.var]
        if mismatch:
            if self.counting:
                self._mismatch(out.var)
            details = EvaluationDetails(
                flag_key=self._keys[fi], value=False if kind == 0 else default, variant=None,
                reason=Reason.ERROR, error_code=ErrorCode.TYPE_MISMATCH,
                error_message="flag is not boolean" if kind == 0
                else "served value's type differs from the default's",
                snapshot_version=self.version,
            )
            return (details.value if kind != 3 else details), details, None, None
        if self.counting:
            self.cells[out.var * N_REASONS + out.reason] += 1
        details = EvaluationDetails(
            flag_key=self._keys[fi],
            value=(self.is_true[out.var] == 1) if kind == 0 else self._values[out.var],
            variant=self._names[out.var],
            reason=REASONS[out.reason],
            rule_index=out.rule if out.rule >= 0 else None,
            snapshot_version=self.version,
        )
        answer = details if kind == 3 else details.variant if kind == 1 else details.value
        if out.reason != REASON_SPLIT or out.rule < 0:
            return answer, details, None, None
        return (answer, details) + self._split_unit(fi, out.rule, ctx)

    cdef tuple _split_unit(self, int fi, int rule, object ctx):
        """(bucket, unit text) of the rollout, split or gate that decided rule ``rule``."""
        cdef const int32_t* f = self.flags + fi * FW
        cdef const int32_t* r = self.rules + (f[F_RULE_START] + rule) * RW
        cdef const int32_t* slots
        cdef const SlotVal* v
        cdef Binding bd
        cdef int h = r[R_HASH], count, bucket, k
        if type(ctx) is Context:
            bd = self._context_binding(<Context>ctx, fi)
        else:
            bd = self._bind_all(ctx)
        if h < 0 and r[R_ROLLOUT] < 0 and r[R_SPLIT_COUNT] == 0:
            h = r[R_GATE_START]  # a rule served by its gates alone
        if h >= 0:
            slots = self.ipool + self.hashes[h * HW + H_BY_START]
            count = self.hashes[h * HW + H_BY_COUNT]
            bucket = self._hashed(h, bd.vals)
        else:
            if r[R_BUCKET_COUNT]:
                slots, count = self.ipool + r[R_BUCKET_START], r[R_BUCKET_COUNT]
                bucket = self._bucket(fi, f, bd.vals, r[R_BUCKET_START], count)
            else:
                slots, count = self.ipool + f[F_BUCKET_START], f[F_BUCKET_COUNT]
                bucket = self._bucket(fi, f, bd.vals, f[F_BUCKET_START], count)
        for k in range(count):
            v = bd.vals + slots[k]
            if v.bs != NULL:  # the first attribute with a value to hash, as _bucket reads
                return bucket, <object>(v.text if v.text != NULL else v.bucket)
        return bucket, None

    cdef int _build_all_template(self) except -1:
        cdef dict template = _PyDict_NewPresized(self.n_flags)
        cdef int32_t* varying = <int32_t*>malloc((self.n_flags if self.n_flags else 1) * sizeof(int32_t))
        cdef int32_t* const_cells = <int32_t*>malloc((self.n_flags if self.n_flags else 1) * sizeof(int32_t))
        cdef Py_ssize_t i, n = 0, nc = 0
        cdef const int32_t* f
        cdef Outcome out
        cdef double now[2]
        now[0] = NAN
        now[1] = 0
        if varying == NULL or const_cells == NULL:
            free(varying)
            free(const_cells)
            raise MemoryError()
        for i in range(self.n_flags):
            f = self.flags + i * FW
            # Off, or on with no schedule, prerequisite or rule: the same value for any
            # context at any time (what _eval returns before it reads b or the clock).
            if not f[F_ENABLED] or (
                not f[F_SCHED] and f[F_PRE_COUNT] == 0 and f[F_RULE_COUNT] == 0
            ):
                out = self._eval(<int>i, self.empty, now)
                template[self._keys[i]] = self._values[out.var]
                const_cells[nc] = out.var * N_REASONS + out.reason
                nc += 1
            else:
                template[self._keys[i]] = None
                varying[n] = <int32_t>i
                n += 1
        if self._all_template is not None:  # another thread finished first: keep its arrays
            free(varying)
            free(const_cells)
            return 0
        self._varying = varying
        self.n_varying = n
        self.counters.const_cells = const_cells
        self.counters.n_const = nc
        self._all_template = template  # last: readers test it before using _varying
        return 0


cdef CompiledSnapshot _EMPTY_TABLES_SNAPSHOT():
    from cfgcore.snapshot import Snapshot
    return CompiledSnapshot(_C.compile_snapshot(Snapshot()))


@cython.binding(False)
cdef class EngineCore:
    """Holds the live compiled snapshot; every read goes through one reference.

    ``swap()`` replaces it in one assignment, so a reader sees the old tables or the
    new ones, never a mix. :class:`cfgcore.Engine` adds loading and compiling.
    """

    cdef CompiledSnapshot _snap
    cdef object _clock
    cdef long long _version
    cdef object __weakref__
    # None unless hooks, exposure callbacks or debug mode are on (cfgcore.Engine sets
    # it): the only test the evaluation methods add.
    cdef public object _observer

    def __init__(self, CompiledSnapshot compiled=None):
        self._clock = None
        self._version = 0
        self._snap = compiled if compiled is not None else _EMPTY_TABLES_SNAPSHOT()

    @property
    def version(self):
        """Version number of the live snapshot (increments on every swap)."""
        return self._snap.version

    def snapshot(self):
        """Pin the live snapshot: evaluate a whole request against one version."""
        return self._snap

    def _install(self, compiled):
        if not isinstance(compiled, CompiledSnapshot):
            raise TypeError("swap() takes a CompiledSnapshot of the same implementation")
        cdef CompiledSnapshot new = <CompiledSnapshot>compiled
        self._version += 1
        new.version = self._version
        new.clock = self._clock
        old = self._snap
        self._snap = new  # the swap: one reference assignment
        return old

    def set_clock(self, clock):
        """Use ``clock() -> epoch seconds`` for schedules (None: the system clock)."""
        self._clock = clock
        self._snap.clock = clock

    def context(self, attrs=None):
        """Bind request attributes once; pass the result to every check of the request."""
        # No __init__ call and no binding here: a dict copy, and each attribute is bound
        # on the first check that reads it (Context._binding_for, CompiledSnapshot._ensure).
        cdef Context ctx = Context.__new__(Context)
        ctx.attrs = _context_attrs(attrs)
        return ctx

    def is_enabled(self, key, ctx=None):
        """Whether the boolean flag ``key`` is on for ``ctx``.

        False when the flag is unknown, not boolean (its variants are not exactly
        true/false), off, or serves its ``off`` variant. Never raises.
        """
        # A local (strong) reference: a check may run Python code (a clock, a str
        # subclass, a semver parse), and a swap on another thread meanwhile must not
        # free the snapshot under it. The same in every method below.
        cdef CompiledSnapshot snap = self._snap
        if self._observer is not None:
            return self._observer.evaluate(snap, 0, key, ctx, None)
        return snap.is_enabled(key, ctx)

    def variant(self, key, ctx=None):
        """The name of the variant ``key`` serves for ``ctx`` (e.g. ``"control"``).

        None when the flag is unknown. Never raises.
        """
        cdef CompiledSnapshot snap = self._snap
        if self._observer is not None:
            return self._observer.evaluate(snap, 1, key, ctx, None)
        return snap.variant(key, ctx)

    def value(self, key, ctx=None, default=None):
        """The value ``key`` serves for ``ctx`` (objects and arrays read-only).

        Returns ``default`` when the flag is unknown, or when ``default`` is not
        None and the served value is of another type (bool, str, number, object,
        array). Never raises.
        """
        cdef CompiledSnapshot snap = self._snap
        if self._observer is not None:
            return self._observer.evaluate(snap, 2, key, ctx, default)
        return snap.value(key, ctx, default)

    def evaluate(self, key, ctx=None, default=None):
        """Full resolution details for ``key`` and ``ctx``.

        :class:`~cfgcore.details.EvaluationDetails` with the value, the variant,
        the reason (STATIC, DEFAULT, TARGETING_MATCH, SPLIT, DISABLED,
        PREREQUISITE_FAILED or ERROR), the index of the deciding rule, and for
        ERROR the error code (FLAG_NOT_FOUND, TYPE_MISMATCH) with ``default`` as
        the value. Never raises.
        """
        cdef CompiledSnapshot snap = self._snap
        if self._observer is not None:
            return self._observer.evaluate(snap, 3, key, ctx, default)
        return snap.evaluate(key, ctx, default)

    def evaluate_all(self, ctx=None):
        """Every flag's value for ``ctx`` in one call: ``{flag_key: value}``.

        The context is bound once for all flags; one clock reading serves every
        schedule. Never raises.
        """
        cdef CompiledSnapshot snap = self._snap
        if self._observer is not None:
            return self._observer.evaluate_all(snap, ctx)
        return snap.evaluate_all(ctx)


cdef inline object _exact_name(object name):
    """details.exact_name: an exact str, a str subclass by its value, else None (a
    str that is not text, holding a lone surrogate, too)."""
    if PyUnicode_CheckExact(name) and PyUnicode_IS_COMPACT_ASCII(name):
        return name
    return exact_name(name)


cdef object _metric_user_id(object ctx):
    """details.metric_user_id, reading a dict or a bound Context in C."""
    cdef PyObject* found
    cdef dict attrs
    if type(ctx) is dict:
        attrs = <dict>ctx
    elif type(ctx) is Context and type((<Context>ctx).attrs) is dict:
        attrs = (<Context>ctx).attrs
    else:
        return metric_user_id(ctx)
    found = _dict_get_or_null(attrs, "user_id")
    if found == NULL or <object>found is None:
        if found == NULL and PyErr_Occurred() != NULL:
            PyErr_Clear()  # a colliding key whose __eq__ raised: read as missing
        found = _dict_get_or_null(attrs, "targeting_key")
        if found == NULL:
            if PyErr_Occurred() != NULL:
                PyErr_Clear()
            return None
    uid = <object>found
    if uid is None or (PyUnicode_CheckExact(uid) and PyUnicode_IS_COMPACT_ASCII(uid)):
        return uid
    return user_id_text(uid)


@cython.final
@cython.binding(False)
cdef class SeedAPI:
    """The seed API's per-request calls, for one engine, without a Python frame.

    ``DynamicConfigurationManager`` serves ``is_feature_enabled``,
    ``get_ab_test_variant`` and ``record_metric`` through one of these. ``tests`` maps
    each A/B test's name to its exposure dedup shards (a tuple of ``DEDUP_SHARDS`` sets,
    a user in the one ``hash(id) & (DEDUP_SHARDS - 1)`` picks; False: exposure logging
    off); ``expose(test, variant, ctx)`` is called when a user not in its shard is
    served a variant. Never raises on bad data.

    With ``log_to(append, clock, shard_limit)`` the first exposure of a user whose id is
    an exact ``str`` or ``int`` is recorded here instead: the id joins its shard
    (cleared when it holds ``shard_limit`` users) and
    ``append((test, variant, user_id, time))`` queues the record, the exposure logger's
    own rules without its Python frame. Other ids still go to ``expose``.
    """

    cdef EngineCore engine
    cdef public dict tests
    cdef public object expose
    cdef object _append  # the exposure writer's append, or None: everything goes to expose
    cdef object _clock  # None: the wall clock read in C (what time.time() reads)
    cdef Py_ssize_t _shard_limit  # users per dedup shard before it is cleared
    # record_metric (see metrics_to): test metadata, the metric writer's queue, the
    # store's record(), and a weak reference to the guardrails' counter
    cdef public dict metas
    cdef object _queue
    cdef object _record
    cdef object _counted
    # Enum members seen by is_feature_enabled and their flag names: a direct-mapped
    # cache by address, owning a reference to both (so an address stays its member's).
    cdef PyObject* _enum_member[ENUM_CACHE]
    cdef PyObject* _enum_name[ENUM_CACHE]

    def __init__(self, EngineCore engine, dict tests, expose):
        self.engine = engine
        self.tests = tests
        self.expose = expose
        self._append = None
        self._clock = None
        self._shard_limit = 1
        self.metas = {}
        self._queue = self._record = self._counted = None

    def __dealloc__(self):
        cdef int i
        for i in range(ENUM_CACHE):
            Py_XDECREF(self._enum_member[i])
            Py_XDECREF(self._enum_name[i])
            self._enum_member[i] = NULL
            self._enum_name[i] = NULL

    def log_to(self, append, clock=None, Py_ssize_t shard_limit=15_625):
        """Record first exposures here: ``append(record)`` queues one, ``clock()`` (None:
        the system clock) stamps it; ``None`` for ``append`` sends them all to ``expose``."""
        self._append = append
        self._clock = clock
        self._shard_limit = shard_limit if shard_limit > 0 else 1

    cdef object _flag_name(self, object flag):
        """The flag name ``flag`` gives (its ``_value_``, else itself), as the reference's
        ``getattr(flag, "_value_", flag)``; _NO_NAME when that raises."""
        # An Enum member's value names the flag. Enum attribute reads cost a Python-level
        # lookup, so each member's name is read once and kept by the member's address.
        #
        # Known difference from the reference: a member whose _value_ is reassigned at
        # run time keeps the name read first here (until another member takes its cache
        # slot), while the reference reads _value_ on every call. Noticing the change
        # needs a read of the member's __dict__ on every hit: one dict lookup, measured at
        # +117 instructions per call (1,276 -> 1,393, +9%) under callgrind on CPython
        # 3.11. Enum values are constants by design, so the hot path does not pay for it.
        cdef Py_ssize_t h = (<Py_ssize_t><void*>flag >> 4) & (ENUM_CACHE - 1)
        if self._enum_member[h] == <PyObject*>flag:
            return <object>self._enum_name[h]
        try:
            name = getattr(flag, "_value_", flag)
            is_member = isinstance(flag, Enum)
        except Exception:
            return _NO_NAME
        if is_member and PyUnicode_CheckExact(name):
            self._remember(h, flag, name)
        return name

    cdef void _remember(self, Py_ssize_t h, object flag, object name) noexcept:
        cdef PyObject* old_member = self._enum_member[h]
        cdef PyObject* old_name = self._enum_name[h]
        Py_INCREF(flag)
        Py_INCREF(name)
        self._enum_member[h] = <PyObject*>flag
        self._enum_name[h] = <PyObject*>name
        # Released once the slot holds the new pair: a release may run Python code (the
        # last reference to a member of a throwaway enum), which may call in here again
        # and must not find a freed member's address in the slot.
        Py_XDECREF(old_member)
        Py_XDECREF(old_name)

    def is_feature_enabled(self, flag, user_context=None):
        """Whether ``flag`` (a flag name, or an Enum member whose value is one) is on."""
        if not PyUnicode_CheckExact(flag):
            flag = self._flag_name(flag)
            if flag is _NO_NAME:
                return False  # a _value_ that raises: no such flag, and nothing evaluated
        cdef CompiledSnapshot snap = self.engine._snap  # strong: see EngineCore.is_enabled
        if self.engine._observer is not None:  # hooks, exposure callbacks, debug mode
            return self.engine.is_enabled(flag, user_context)
        return snap.is_enabled(flag, user_context)

    def metrics_to(self, queue, record, counted=None):
        """Serve :meth:`record_metric`: ``queue(event)`` takes an event tuple (test,
        variant, metric, float value, user, time); without one (None) events go to
        ``record(test, variant, metric, value, user)``. ``counted()`` returns a
        ``(test, meta)`` callback (or None), called for tests with guardrail metrics.
        ``metas`` maps each test to its metadata: tests not in it record nothing."""
        self._queue = queue
        self._record = record
        self._counted = counted

    def record_metric(self, test_name, metric, value=1.0, *, user_context=None, user_id=None,
                      variant=None):
        """``DynamicConfigurationManager.record_metric``: one observation of ``metric``
        for this user's variant of ``test_name``; False when the user is not in it."""
        cdef PyObject* found
        ctx = user_context if user_context is not None else {"user_id": user_id}
        user_id = _metric_user_id(ctx) if user_id is None else user_id_text(user_id)
        test_name = _exact_name(test_name)
        metric = _exact_name(metric)
        if not (PyFloat_CheckExact(value) and isfinite(PyFloat_AS_DOUBLE(value))):
            value = metric_value(value)  # a finite float, or None: not recorded
        if test_name is None or metric is None or value is None:
            return False  # before the lookup: no exposure logged
        if variant is None:
            variant = self._variant(test_name, user_context=ctx)
            if variant is None:
                return False
        else:
            variant = _exact_name(variant)
            if variant is None:
                return False
        found = PyDict_GetItemWithError(self.metas, test_name)  # exact str: cannot raise
        if found == NULL:
            PyErr_Clear()
            return False
        meta = <object>found
        if meta is None or self._record is None:
            return False
        if self._queue is not None:
            self._queue((test_name, variant, metric, value, user_id, cfgcore_wall_clock()))
        else:
            self._record(test_name, variant, metric, value, user_id)
        if meta.get("guardrail_metrics") and self._counted is not None:
            counted = self._counted()
            if counted is not None:
                counted(test_name, meta)
        return True

    def get_ab_test_variant(self, test_name, user_context=None):
        """The variant of A/B test ``test_name`` for this user, or None; the first one
        per user goes to the exposure log."""
        test_name = _exact_name(test_name)
        if test_name is None:
            return None
        return self._variant(test_name, user_context)

    cdef object _variant(self, str test_name, user_context):
        cdef PyObject* found
        cdef dict attrs
        cdef int known
        found = PyDict_GetItemWithError(self.tests, test_name)  # exact str: cannot raise
        if found == NULL:
            PyErr_Clear()
            return None
        seen = <object>found
        cdef CompiledSnapshot snap = self.engine._snap  # strong: see EngineCore.is_enabled
        if self.engine._observer is None:
            v = snap.variant(test_name, user_context)
        else:  # hooks, exposure callbacks, debug mode
            v = self.engine.variant(test_name, user_context)
        if v is None or v == "__none__":
            return None
        if seen is False:
            return v
        uid = None
        if type(user_context) is dict:
            attrs = <dict>user_context
        elif type(user_context) is Context and type((<Context>user_context).attrs) is dict:
            attrs = (<Context>user_context).attrs
        else:
            attrs = None
            if type(user_context) is Context:  # over another mapping: read through its get()
                try:
                    uid = (<Context>user_context).attrs.get("user_id")
                except Exception:  # a hostile mapping: no id, the exposure goes to expose
                    uid = None
        if attrs is not None:
            found = _dict_get_or_null(attrs, "user_id")
            if found == NULL:
                if PyErr_Occurred() != NULL:
                    PyErr_Clear()
            else:
                uid = <object>found
        # Exact str and int ids hash without user code: the steady state is one set
        # lookup, and a first exposure is recorded right here.
        if (
            (PyUnicode_CheckExact(uid) or type(uid) is int)
            and type(seen) is tuple
            and len(<tuple>seen) == DEDUP_SHARDS
        ):
            shard = (<tuple>seen)[hash(uid) & (DEDUP_SHARDS - 1)]
            if type(shard) is set:
                known = _set_contains(shard, uid)
                if known > 0:
                    return v
                if known == 0:
                    if self._append is not None:
                        self._log(test_name, v, uid, <set>shard)
                        return v
                else:  # a logged id of a str subclass whose __eq__ raised: cannot tell
                    PyErr_Clear()
        try:
            self.expose(test_name, v, user_context)
        except Exception:  # the exposure log must never break the request
            pass
        return v

    cdef void _log(self, test, v, uid, set seen) noexcept:
        try:
            if len(seen) >= self._shard_limit:
                seen.clear()  # the logger's own shard: its holders stay in sync
            seen.add(uid)
            ts = cfgcore_wall_clock() if self._clock is None else self._clock()
            self._append((test, v, uid, ts))
        except Exception:  # a failing clock or writer must never break the request
            pass


@cython.final
@cython.binding(False)
cdef class RecordQueue:
    """The request thread's side of a :class:`cfgcore.experiments.writer.BackgroundWriter`.

    ``append(record)`` queues one record on the writer's deque without a Python frame
    (first exposures and metric events are appended on the request path): False, and
    one more in ``dropped``, when the queue is closed or ``max_pending`` records wait.
    ``start()`` is called once, by the first append, when ``started`` is False (the
    writer sets it). Same semantics as ``writer.PyRecordQueue``.
    """

    cdef object pending
    cdef object _push  # pending.append
    cdef public Py_ssize_t max_pending
    cdef public long long appended
    cdef public long long dropped
    cdef public bint closed
    cdef public bint started
    cdef public object start

    def __init__(self, pending, Py_ssize_t max_pending, start):
        self.pending = pending
        self._push = pending.append
        self.max_pending = max_pending
        self.start = start
        self.appended = self.dropped = 0
        self.closed = self.started = False

    def reset(self, pending):
        """A new (empty) deque, nothing appended, not started (a forked child)."""
        self.pending = pending
        self._push = pending.append
        self.appended = 0
        self.started = False

    def append(self, record):
        """Queue ``record`` (no lock, no wait). False if dropped."""
        if self.closed or len(self.pending) >= self.max_pending:
            self.dropped += 1
            return False
        self._push(record)
        self.appended += 1
        if not self.started:
            self.start()
        return True


_METHOD_DESCRIPTOR = type(str.join)


def _own_methods(cls, names):
    """Give ``cls``, a Python subclass of EngineCore, C method descriptors of its own.

    CPython's specialised call of a C method checks that the receiver's type is exactly
    the descriptor's type, so EngineCore's descriptors would fall back to the generic
    call path for every ``engine.is_enabled(...)`` on a :class:`cfgcore.Engine`. The
    copies run the same C functions; a further subclass of ``cls`` still works, on the
    generic path.
    """
    if not (isinstance(cls, type) and issubclass(cls, EngineCore)):
        raise TypeError(f"{cls!r} is not a subclass of EngineCore")
    for name in names:
        for klass in cls.__mro__:  # a Python override between cls and EngineCore wins
            if klass is EngineCore:
                break
            if name in klass.__dict__:
                raise TypeError(f"{klass.__qualname__}.{name} overrides EngineCore.{name}")
        d = EngineCore.__dict__[name]
        if type(d) is not _METHOD_DESCRIPTOR:
            raise TypeError(f"EngineCore.{name} is not a C method descriptor")
        setattr(cls, name, PyDescr_NewMethod(cls, (<PyMethodDescrObject*><PyObject*>d).d_method))
