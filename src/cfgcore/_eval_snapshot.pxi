# Part of cfgcore._eval (included by _eval.pyx, which holds the declarations every part
# shares): CompiledSnapshot, the flag tables in C arrays and the evaluation API over
# them. First the C leaves its conditions call (prefix, suffix, substring, sorted id
# sets) and the table copies; then the class, whose methods run in this order: loading
# the tables, binding context attributes (_bind_*), the flag-key cache (_lookup),
# conditions (_node), bucketing and schedules, the rule walk (_eval), the public calls
# with evaluate_all, the observer's _observe, evaluate_all's template. Cython allows no
# include inside a class body, so the class stays whole here. It uses hashing
# (_eval_hash.pxi), Slots, Binding and Context (_eval_context.pxi) and Counters
# (_eval_counters.pxi); EngineCore (_eval_engine.pxi) serves it.


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


# evaluate_all's result is a copy of its template dict (every flag key, in flag order,
# with None where the flag can vary); the varying flags' values are then written into
# the copy. PyDict_SetItem pays a hash-table probe and a key reference per flag, a
# fifth of the call over 120 varying flags. On the CPython versions whose dict layout
# is known here (3.11-3.14, GIL builds), the copy's value slots are written directly:
# a copy of a combined, all-str, never-deleted dict clones the key table in insertion
# order, so flag i's entry is entry i. cfgcore_all_entries returns that entry array
# only when the copy is such a clone (its own key table, str keys, n entries), and
# _build_all_template also checks every key of one copy before the path is used;
# otherwise (3.10, free-threaded builds, another implementation) it returns NULL and
# evaluate_all stores through PyDict_SetItem. The layout facts come from CPython's
# Include/internal/pycore_dict.h (struct _dictkeysobject, PyDictUnicodeEntry, the
# DICT_KEYS_UNICODE kind), unchanged from 3.11 through 3.14 for GIL builds.
cdef extern from *:
    """
    typedef struct { PyObject *me_key; PyObject *me_value; } cfgcore_uentry;
    #if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030F0000 && \
        !defined(Py_GIL_DISABLED) && !defined(PYPY_VERSION) && !defined(Py_LIMITED_API)
    typedef struct {
        Py_ssize_t dk_refcnt;
        uint8_t dk_log2_size;
        uint8_t dk_log2_index_bytes;
        uint8_t dk_kind;
        uint32_t dk_version;
        Py_ssize_t dk_usable;
        Py_ssize_t dk_nentries;
        char dk_indices[];
    } cfgcore_dictkeys;
    static cfgcore_uentry *cfgcore_all_entries(PyObject *copy, PyObject *tmpl, Py_ssize_t n) {
        PyDictObject *c = (PyDictObject *)copy;
        cfgcore_dictkeys *k = (cfgcore_dictkeys *)c->ma_keys;
        if (!PyDict_CheckExact(copy) || c->ma_values != NULL || c->ma_used != n ||
                (void *)k == (void *)((PyDictObject *)tmpl)->ma_keys ||
                k->dk_kind != 1 /* DICT_KEYS_UNICODE */ || k->dk_nentries != n)
            return NULL;
        return (cfgcore_uentry *)(k->dk_indices + ((size_t)1 << k->dk_log2_index_bytes));
    }
    #else
    static cfgcore_uentry *cfgcore_all_entries(PyObject *copy, PyObject *tmpl, Py_ssize_t n) {
        (void)copy; (void)tmpl; (void)n;
        return NULL;
    }
    #endif
    """
    ctypedef struct _UEntry "cfgcore_uentry":
        PyObject* me_key
        PyObject* me_value
    _UEntry* _all_entries "cfgcore_all_entries"(object copy, object tmpl, Py_ssize_t n) noexcept
    # borrowed references and plain reference counts for the direct writes
    PyObject* _tuple_item "PyTuple_GET_ITEM"(object, Py_ssize_t) noexcept
    void _incref "Py_INCREF"(PyObject*) noexcept
    void _decref "Py_DECREF"(PyObject*) noexcept
    int _gc_is_tracked "PyObject_GC_IsTracked"(object) noexcept
    void _gc_track "PyObject_GC_Track"(object) noexcept
    int _is_gc "PyObject_IS_GC"(object) noexcept


# An ``any`` of many ``contains`` of one attribute: one pass of its Aho-Corasick
# automaton over the value (layout: cfgcore/_automaton.py, whose ``search`` is the
# reference), linear in the value's length whatever the number of constants.
@cython.boundscheck(False)
@cython.wraparound(False)
cdef bint _ac_search(const int32_t* ac, int states, const char* text, Py_ssize_t n) noexcept nogil:
    cdef const int32_t* rec = ac + 256
    cdef const int32_t* edges = rec + 2 * states + 1
    cdef const int32_t* e
    cdef const int32_t* end
    cdef Py_ssize_t i
    cdef int s = 0, nxt, info, c
    if rec[1] & 1:
        return True  # an empty constant: every text holds it
    for i in range(n):
        c = <unsigned char>text[i]
        while s:
            info = rec[2 * s + 1]
            e = edges + rec[2 * s]
            nxt = 0  # no edge (the root is no state's child)
            if info & 2:
                nxt = e[c]  # a row of 256
            else:
                end = edges + rec[2 * s + 2]
                while e < end:  # sorted by byte
                    if (e[0] & 255) >= c:
                        if (e[0] & 255) == c:
                            nxt = e[0] >> 8
                        break
                    e += 1
            if nxt:
                s = nxt
                break
            s = info >> 2  # its fail state
        else:
            s = ac[c]
        if s and rec[2 * s + 1] & 1:
            return True
    return False


cdef int32_t* _cell_array(object cells) except? NULL:
    """A C copy of an array of int32 cells (``Tables.acpool``)."""
    cdef bytes data = cells.tobytes()
    cdef Py_ssize_t n = len(data)
    if cells.itemsize != 4:
        raise ValueError("acpool cells must be 32-bit")
    cdef int32_t* out = <int32_t*>malloc(n if n else 4)
    if out == NULL:
        raise MemoryError()
    memcpy(out, <const char*>data, n)
    return out


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


cdef inline bint _meets(const int32_t* elems, bint ci, const int32_t* ids, int count) noexcept nogil:
    """Whether a bound array (SlotVal.elems: [k, m, start, k ids ..., m folded ids at
    start]) holds an element id (a case-folded one if ``ci``) among sorted ``ids``."""
    cdef int32_t j, k = elems[1] if ci else elems[0]
    cdef const int32_t* x = elems + (elems[2] if ci else 3)
    for j in range(k):
        if _in_sorted(ids, count, x[j]):
            return True
    return False


cdef inline int _let_others_run() except -1:
    """Let another thread take the GIL if one asked for it. Building a compiled snapshot
    copies millions of table items in C, which runs no bytecode and so never hands the
    GIL over: a 43,000-flag document's copy kept request threads waiting 22-35 ms at
    each reload. A thread that has waited its switch interval (5 ms) for the GIL asks
    for it, and the interpreter hands it over where a Python function starts: so this
    calls one (``cfgcore._reclaim.let_others_run``, which does nothing), about 50 ns
    when nobody asked. (Releasing the GIL here with ``nogil`` instead starves the
    waiter: it is woken at every release, before its interval runs out and so before it
    asks, and finds the GIL taken again.)"""
    _py_let_others_run()
    return 0


cdef inline int _copy_pause(list items, Py_ssize_t i, Py_ssize_t n) except -1:
    """At every COPY_CHUNK-th item ``i`` of a copy of ``items`` (``n`` long when it
    began): let other threads run, then check that none of them resized ``items``
    meanwhile (tables are never written once compiled; a caller's hand-made ones could
    be)."""
    if i % COPY_CHUNK == 0 and i:
        _let_others_run()
        if len(items) != n:
            raise RuntimeError("compiled tables changed while they were being copied")
    return 0


cdef int32_t* _int_array(list items) except? NULL:
    cdef Py_ssize_t i, n = len(items)
    cdef int32_t* out = <int32_t*>malloc((n if n else 1) * sizeof(int32_t))
    if out == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            _copy_pause(items, i, n)
            out[i] = <int32_t>items[i]
    except BaseException:
        free(out)
        raise
    return out


cdef double* _double_array(list items) except? NULL:
    cdef Py_ssize_t i, n = len(items)
    cdef double* out = <double*>malloc((n if n else 1) * sizeof(double))
    if out == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            _copy_pause(items, i, n)
            out[i] = <double>items[i]
    except BaseException:
        free(out)
        raise
    return out


cdef char* _bool_array(list items) except? NULL:
    cdef Py_ssize_t i, n = len(items)
    cdef char* out = <char*>malloc(n if n else 1)
    if out == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            _copy_pause(items, i, n)
            out[i] = 1 if items[i] else 0
    except BaseException:
        free(out)
        raise
    return out


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
    cdef int32_t* ac
    cdef double* sched_start
    cdef double* sched_end
    cdef char* is_true
    cdef char* ci_slots
    cdef char* semver_slots
    cdef char* bucket_slots
    cdef char* id_slots
    cdef char* array_slots
    cdef uint32_t* salt_h
    cdef Py_ssize_t n_slots
    cdef Py_ssize_t n_flags
    cdef SlotVal* empty
    # Each flag's slots as bits (NULL when the snapshot has more than 64 slots): a bound
    # context has every slot a flag reads when (slots.lazy & fmask[fi]) == 0.
    cdef uint64_t* fmask
    # evaluate_all: every flag's value where it cannot vary (None elsewhere), copied
    # whole per call; _varying lists the flags evaluated into the copy. Built on first use.
    cdef dict _all_template
    cdef int32_t* _varying
    cdef Py_ssize_t n_varying
    # evaluate_all writes its copy's value slots (see _all_entries), once its template
    # is built where that layout is known; tests set it False to run the other path
    cdef public bint _all_direct
    cdef bint _all_gc  # some variant value is a container the collector must see
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
        # index and attribute lookups match them by identity instead of comparing text
        # (where interned strings are immortal, CPython 3.12, within cfgcore._names' budget).
        # (_let_others_run between the steps whose time grows with the document: see
        # _int_array.)
        cdef dict index = {}
        cdef list keys = []
        cdef Py_ssize_t n = 0
        for k, v in t.index.items():
            index[_intern(k)] = v
            n += 1
            if n % KEY_CHUNK == 0:
                _let_others_run()
        self._index = index
        for k in t.keys:
            keys.append(_intern(k))
            n += 1
            if n % KEY_CHUNK == 0:
                _let_others_run()
        self._keys = tuple(keys)
        del keys
        _let_others_run()
        self._values = tuple(t.values)
        self._names = tuple(t.variant_names)
        self._slot_names = tuple([_intern(name) for name in t.slots])
        self._objs = list(t.objs)
        self._value_kinds = list(t.value_kinds)
        _let_others_run()
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
        self.ac = _cell_array(t.acpool)
        self.sched_start = _double_array(t.sched_start)
        self.sched_end = _double_array(t.sched_end)
        self.is_true = _bool_array(t.is_true)
        self.ci_slots = _bool_array(t.ci_slots)
        self.semver_slots = _bool_array(t.semver_slots)
        self.bucket_slots = _bool_array(t.bucket_slots)
        self.id_slots = _bool_array(t.id_slots)
        self.array_slots = _bool_array(t.array_slots)
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
        _let_others_run()
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
        free(self.ac)
        free(self.sched_start)
        free(self.sched_end)
        free(self.is_true)
        free(self.ci_slots)
        free(self.semver_slots)
        free(self.bucket_slots)
        free(self.id_slots)
        free(self.array_slots)
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

    def __reduce__(self):
        # Pickled (and copied) as its tables, version and clock, as the pure-Python
        # snapshot is: loading builds the C arrays from the tables again. The copy
        # answers exactly as this one does; its evaluation counters start at zero.
        return (CompiledSnapshot, (self.tables, self.version, self.clock))

    # -- binding (Python objects allowed: once per request) ------------------------------
    cdef int _bind_slot(self, SlotVal* sv, Py_ssize_t slot, object v, bint arrays=True) except -1:
        """Fill ``sv`` for value ``v``; mirrors _eval_py._bind_value (``arrays``: an
        array in a ``has_any`` slot binds its elements, _bind_array; False for an
        element, which is never hashed, so an int element gets no bucket text).

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
            # The callers' exception handlers release ``sv``: it must hold no garbage
            # pointers when context_value raises (a MemoryError copying a huge str
            # subclass, a RecursionError), as it is uninitialised memory until here.
            memset(sv, 0, sizeof(SlotVal))
            v = context_value(v)  # by the value it holds (may raise: unusable)
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
                # Past a double: no number to compare, but it buckets as its decimal
                # text does (an int id and its text are one user), up to ID_FORM_CHARS
                # characters: a longer int is no id (details.bucketable_id).
                sv.kind = K_OTHER
                if arrays and self.bucket_slots[slot] and int_id_sized(v):  # an element is never hashed
                    b = int_text(v)
                    sv.bs = PyUnicode_AsUTF8AndSize(b, &sv.bslen)
                    Py_INCREF(b)
                    sv.bucket = <PyObject*>b
                return 0
            sv.kind = K_NUM
            sv.num = d
            if self.id_slots[slot]:
                found = PyDict_GetItemWithError(self._num_ids, v)
                if found != NULL:
                    sv.id = <int32_t>(<object>found)
            if arrays and self.bucket_slots[slot]:  # text only where a flag buckets by it
                b = str(int(v))
                sv.bs = PyUnicode_AsUTF8AndSize(b, &sv.bslen)
                Py_INCREF(b)
                sv.bucket = <PyObject*>b
            return 0
        sv.kind = K_OTHER  # None, bools and floats are _bind_fast's
        if arrays and self.array_slots[slot]:
            self._bind_array(sv, slot, v)
        return 0

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef int _bind_array(self, SlotVal* sv, Py_ssize_t slot, object v) except -1:
        """``sv.elems`` for an array ``v`` (details.exact_array), left NULL for anything
        else; mirrors _eval_py._bind_array. Each element binds as a scalar in this slot
        would (an element that cannot bind, or an array, has no id); only its ids are
        kept: ``[k, m, start, k ids ..., m case-folded ids from start]``."""
        cdef Py_ssize_t i, n, k = 0, m = 0, start
        cdef int32_t* out
        cdef SlotVal tmp
        cdef tuple seq
        if PyTuple_CheckExact(v):
            seq = <tuple>v
        elif PyList_CheckExact(v):
            seq = tuple(v)  # a copy: binding an element runs no code that could change it
        else:
            items = exact_array(v)  # subclasses by their stored elements; None: no array
            if items is None:
                return 0
            seq = tuple(items)
        n = len(seq)
        if n > MAX_ARRAY:
            return 0  # unusable: counts and offsets are int32
        start = 3 + n
        out = <int32_t*>malloc((2 * n + 3) * sizeof(int32_t))
        if out == NULL:
            raise MemoryError()
        for i in range(n):
            e = seq[i]
            if e is None:
                continue
            if not self._bind_fast(&tmp, slot, e):
                try:
                    self._bind_slot(&tmp, slot, e, False)  # zeroes tmp before it can raise
                except BaseException as exc:
                    _release(&tmp, 1)
                    if not isinstance(exc, Exception):  # an interrupt propagates
                        free(out)
                        raise
                    continue  # e.g. a casefold() that fails: this element has no id
            if tmp.id >= 0:
                out[3 + k] = tmp.id
                k += 1
            if tmp.ci_id >= 0:
                out[start + m] = tmp.ci_id
                m += 1
            _release(&tmp, 1)
        out[0] = <int32_t>k
        out[1] = <int32_t>m
        out[2] = <int32_t>start
        sv.elems = out
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
                return _missing_unless_interrupt()
            return None
        try:
            return attrs.get(name)
        except Exception:  # a hostile mapping must not break evaluation
            return None

    cdef int _bind_into(self, SlotVal* vals, object attrs, const int32_t* slots, Py_ssize_t count) except -1:
        """Bind ``slots[:count]`` (all slots if NULL) of ``vals`` from ``attrs``.

        An error that propagates (a KeyboardInterrupt from a mapping's get() or a key's
        __eq__) releases the slots bound so far and leaves the others untouched: the
        caller only frees its array."""
        cdef Py_ssize_t i, s, done = 0
        try:
            for i in range(count):
                s = slots[i] if slots != NULL else i
                v = self._get_attr(attrs, s)
                if not self._bind_fast(&vals[s], s, v):
                    self._bind_safe(&vals[s], s, v)
                done += 1
        finally:
            if done != count:
                for i in range(done):
                    _release(&vals[slots[i] if slots != NULL else i], 1)
        return 0

    cdef int _bind_lazy(self, Slots* st, object attrs, Py_ssize_t s) except -1:
        # A thread sharing the context sees the slot unbound or fully bound, never
        # half-filled: a value that binds without Python code (_bind_fast) is written in
        # place, then marked bound, with no other thread in between; one whose binding
        # may run Python code (casefold, a semver parse: another thread may get in) is
        # bound into a temporary and published with one struct copy. The first writer
        # wins. The caller holds the owner of ``st``, whose array never moves.
        cdef SlotVal tmp
        v = self._get_attr(attrs, s)  # a colliding key's raising __eq__ reads as missing
        if not _slot_unbound(st, s):  # bound meanwhile (get() ran Python code)
            return 0
        if self._bind_fast(&st.vals[s], s, v):
            _slot_mark(st, s)
            return 0
        self._bind_safe(&tmp, s, v)
        if _slot_unbound(st, s):
            st.vals[s] = tmp
            _slot_mark(st, s)
        else:
            _release(&tmp, 1)
        return 0

    cdef int _bind_safe(self, SlotVal* tmp, Py_ssize_t s, object v) except -1:
        """_bind_slot where a failing Exception makes the value unusable; anything else
        (a KeyboardInterrupt in a semver parse) releases ``tmp`` and propagates, so
        ``tmp`` holds no reference then. (_bind_slot zeroes ``tmp`` before any call
        that can raise.)"""
        try:
            self._bind_slot(tmp, s, v)
        except Exception:  # e.g. a semver parse or casefold() that fails: unusable value
            _release(tmp, 1)
            memset(tmp, 0, sizeof(SlotVal))
            tmp.kind = K_OTHER
            tmp.id = -1
            tmp.ci_id = -1
        except BaseException:
            _release(tmp, 1)
            raise
        return 0

    cdef inline int _ensure(self, Slots* st, object attrs, const int32_t* slots, Py_ssize_t count) except -1:
        """Bind the context's slots ``slots[:count]`` (all slots if NULL) not bound yet."""
        cdef Py_ssize_t i, s
        if st.complete:
            return 0
        for i in range(count):
            s = slots[i] if slots != NULL else i
            if _slot_unbound(st, s):
                self._bind_lazy(st, attrs, s)
        if slots == NULL:
            _slots_all_marked(st)
        return 0

    cdef inline const SlotVal* _context_ready(self, Context ctx, int fi) noexcept:
        """ctx's own slots when they are bound to this snapshot with flag ``fi``'s slots
        bound (all if fi < 0), else NULL (then _context_bind): two pointer compares and
        one mask test, the common case. The caller holds ``ctx``, which keeps them."""
        if ctx._snap == <PyObject*>self and (
            ctx.st.complete or (fi >= 0 and self.fmask != NULL and (ctx.st.lazy & self.fmask[fi]) == 0)
        ):
            return ctx.st.vals
        return NULL

    cdef Binding _context_bind(self, Context ctx, int fi):
        """Bind flag ``fi``'s slots of ``ctx`` (all if fi < 0) to this snapshot: into the
        context's own slots (None returned: read ctx.st.vals) when they are bound to this
        snapshot or not claimed yet, else into its other binding (returned: the caller
        keeps it while it reads its values)."""
        cdef Binding bd = None
        cdef Slots* st
        cdef const int32_t* f
        cdef PyObject* old
        cdef PyObject* retired
        if ctx._snap == <PyObject*>self:
            st = &ctx.st
        elif ctx.st.vals == NULL:
            _slots_claim(&ctx.st, self.n_slots)  # no Python code: nobody sees it half made
            Py_INCREF(self)
            ctx._snap = <PyObject*>self  # published: one assignment (it held none)
            st = &ctx.st
        else:
            # Its own slots serve another snapshot (the engine swapped since, a second
            # engine) or none (re-initialised). A check still running may read them, so
            # they stay allocated until the context dies, but they serve no snapshot
            # any more: like the reference Context, a context holds one binding, to the
            # snapshot that checked it last, and one that comes back to a snapshot reads
            # its attributes again (a mapping may answer get() differently by then).
            if ctx._other != NULL and (<Binding>ctx._other).snap is self:
                bd = <Binding>ctx._other
            else:
                bd = Binding.__new__(Binding)
                _slots_claim(&bd.st, self.n_slots)
                bd.snap = self
                old = ctx._other
                Py_INCREF(bd)
                ctx._other = <PyObject*>bd  # one assignment: another thread sees old or new
                retired = ctx._snap
                ctx._snap = NULL
                # released after the assignments, as Cython's own assignments do (a
                # snapshot's release may run Python code: its clock's)
                Py_XDECREF(retired)
                Py_XDECREF(old)
            st = &bd.st
        if fi < 0:
            self._ensure(st, ctx.attrs, NULL, self.n_slots)
        else:
            f = self.flags + fi * FW
            self._ensure(st, ctx.attrs, self.ipool + f[F_SLOTS_START], f[F_SLOTS_COUNT])
        return bd

    cdef Binding _bind_all(self, object attrs, bint mapping):
        """Every slot of ``attrs`` bound (all missing unless ``mapping``: whether it is
        a mapping, which the caller asks once per call, as the reference does, since
        isinstance() may run code that answers otherwise the next time)."""
        cdef Binding bd = Binding.__new__(Binding)
        cdef Py_ssize_t i
        bd.snap = self
        _slots_claim(&bd.st, self.n_slots)
        if mapping:
            self._bind_into(bd.st.vals, attrs, NULL, self.n_slots)
        else:
            memset(bd.st.vals, 0, self.n_slots * sizeof(SlotVal))
            for i in range(self.n_slots):
                bd.st.vals[i].id = -1
                bd.st.vals[i].ci_id = -1
        _slots_all_marked(&bd.st)
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
    # The two operators that run Python code inside the C walk. An Exception reads as
    # no match (never raise on bad data); an interrupt (a BaseException that is no
    # Exception: Ctrl-C while Python's re searches, which runs signal handlers, or in
    # re2's Python wrapper) is kept as a clock's is (see _now): ``now[1]`` set to 2, the
    # public method raises it when the walk returns, and later regexes and semver
    # comparisons of the walk are not run.
    cdef bint _regex(self, int a, PyObject* text, double* now) noexcept:
        if text == NULL or PyUnicode_GET_LENGTH(<object>text) > MAX_REGEX_INPUT or now[1] > 1:
            return False
        try:
            return self._objs[a].search(<object>text) is not None
        except Exception:
            return False
        except BaseException as exc:
            _keep_interrupt(exc)
            now[1] = 2
            return False

    cdef bint _semver(self, int op, int a, PyObject* sv, double* now) noexcept:
        if sv == NULL or now[1] > 1:
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
        except BaseException as exc:
            _keep_interrupt(exc)
            now[1] = 2
            return False

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef bint _node(self, int i, const SlotVal* b, double* now) noexcept:
        # Indices come from the compiler, which emits every child/slot/pool reference
        # inside its own tables; nothing here indexes with context-derived values.
        cdef const int32_t* n = self.nodes + i * NW
        cdef int op = n[0]
        cdef int child, _k, want
        cdef const SlotVal* v
        if op <= OP_FLAG:  # the combinators, calls, flags (one test for every attribute test)
            if op == OP_ALL or op == OP_ANY:
                want = op == OP_ANY
                child = i + 1
                for _k in range(n[2]):
                    if self._node(child, b, now) == want:
                        return want
                    child = self.nodes[child * NW + 5]
                return not want
            if op == OP_NOT:
                return not self._node(i + 1, b, now)
            if op == OP_CALL:
                # a shared subtree, emitted before this node (no cycle); the compiler
                # counts the call as a level of the depth limit
                return self._node(n[2], b, now)
            if op == OP_FLAG:
                # another flag's answer for the same context (the compiler refused cycles
                # and bounds the chain: MAX_PREREQUISITE_DEPTH, MAX_PREREQUISITE_EVALUATIONS)
                return self._wanted(self._eval(n[2], b, now).var, n[3])
            return False  # OP_FALSE
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
        if op == OP_HAS_ANY or op == OP_HAS_ANY_CI:
            return v.elems != NULL and _meets(v.elems, op == OP_HAS_ANY_CI, self.ipool + n[2], n[3])
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
        if op == OP_CONTAINS_ANY:
            return _ac_search(self.ac + n[2], n[3], v.s, v.slen)
        if op == OP_CONTAINS_ANY_CI:
            return _ac_search(self.ac + n[2], n[3], v.ls, v.lslen)
        if op == OP_REGEX:
            return self._regex(n[2], v.text, now)
        if op == OP_SEMVER_EQ or op == OP_SEMVER_LT or op == OP_SEMVER_GT:
            return self._semver(op, n[2], v.semver, now)
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

    cdef double _now(self, double* now) noexcept:
        """The clock reading. A clock raising an interrupt (no Exception: Ctrl-C) sets
        ``now[1]`` to 2: the public method raises it when the walk returns."""
        clock = self.clock
        if clock is None:
            return cfgcore_wall_clock()
        try:
            value = clock()
            # (epoch seconds as a float; else cfgcore._clock's reading of it)
            return value if type(value) is float else _epoch_seconds(value)
        except Exception:
            if self.counting:
                self.errs[ERR_GENERAL] += 1
            return NAN  # a broken clock: schedules treat the flag as out of window
        except BaseException as exc:
            _keep_interrupt(exc)
            now[1] = 2
            return NAN

    cdef int _hashed(self, int h, const SlotVal* b) noexcept:
        """Bucket under hashing record ``h`` (an imported flag's scheme); -1 if no value."""
        cdef HashMemo fresh
        fresh.h = -1
        return self._hashed_memo(h, b, &fresh)

    cdef int _hashed_memo(self, int h, const SlotVal* b, HashMemo* m) noexcept:
        """``_hashed``, remembering the last bucket of this flag evaluation: a record
        hashing the same value with the same scheme, seed, salt, suffix and space (the
        rules of an imported flag mostly do, each with its own record) answers from it.
        Each hash walks the whole value: 1,000 rules over a 100 KB id took 37-41 ms a
        check before (the reference evaluator memoises alike)."""
        cdef const int32_t* hr = self.hashes + h * HW
        cdef const int32_t* pr
        cdef const SlotVal* v = NULL
        cdef int k, bucket
        for k in range(hr[H_BY_COUNT]):
            if (b + self.ipool[hr[H_BY_START] + k]).bs != NULL:
                v = b + self.ipool[hr[H_BY_START] + k]
                break
        if v == NULL:
            return -1  # as for flags: absent, or not a str/int
        if m.h >= 0 and m.v == v:
            pr = self.hashes + m.h * HW
            if (
                pr[H_SCHEME] == hr[H_SCHEME] and pr[H_SEED] == hr[H_SEED]
                and pr[H_SPACE] == hr[H_SPACE] and pr[H_SALT_LEN] == hr[H_SALT_LEN]
                and pr[H_SUFFIX_LEN] == hr[H_SUFFIX_LEN]
                and memcmp(self.sb + pr[H_SALT_OFF], self.sb + hr[H_SALT_OFF], hr[H_SALT_LEN]) == 0
                and memcmp(self.sb + pr[H_SUFFIX_OFF], self.sb + hr[H_SUFFIX_OFF], hr[H_SUFFIX_LEN]) == 0
            ):
                return m.bucket
        bucket = _scheme_bucket(
            hr[H_SCHEME], <uint32_t>hr[H_SEED], self.sb + hr[H_SALT_OFF], hr[H_SALT_LEN],
            self.sb + hr[H_SUFFIX_OFF], hr[H_SUFFIX_LEN], hr[H_SPACE], v.kind == K_STR,
            v.bs, v.bslen,
        )
        m.h = h
        m.v = v
        m.bucket = bucket
        return bucket

    cdef inline bint _wanted(self, int got, int want) noexcept:
        """Whether served variant ``got`` is what a prerequisite's want code asks."""
        cdef int i, j
        if want >= 0:
            return got == want
        if want == P_ON:
            return self.is_true[got]
        if want == P_OFF:
            return not self.is_true[got]
        i = P_SET - want  # P_SET - i: one of a counted list of variants in the pool
        for j in range(i + 1, i + 1 + self.ipool[i]):
            if self.ipool[j] == got:
                return True
        return False

    cdef Outcome _eval(self, int fi, const SlotVal* b, double* now) noexcept:
        # now[0]: the clock reading, valid once now[1] is 1 (NaN: the clock failed); 2:
        # the clock, a regex search or a semver comparison raised an interrupt, which the
        # caller raises (see _now, _regex)
        cdef const int32_t* f = self.flags + fi * FW
        cdef const int32_t* r
        cdef const int32_t* sp
        cdef Outcome out
        cdef int p, k, j, i, bucket, thr, nsplit, bstart, bcount, g, gcount
        cdef bint gated
        cdef int pstart = f[F_PRE_START]
        cdef int rstart = f[F_RULE_START]
        cdef int rcount = f[F_RULE_COUNT]
        # The last bucket hashed, per kind: rules of one flag mostly hash the same value
        # (the flag's bucketing attributes; an imported flag's records), and each hash
        # walks the whole value.
        cdef HashMemo memo
        cdef int memo_bs = -1, memo_bc = 0, memo_bucket = -1
        memo.h = -1
        out.rule = -1
        if not f[F_ENABLED]:
            out.var = f[F_OFF]
            out.reason = REASON_DISABLED
            return out
        if f[F_SCHED]:
            if now[1] == 0:  # read the clock once per evaluation, even when it fails
                now[1] = 1
                now[0] = self._now(now)
            if not (self.sched_start[fi] <= now[0] < self.sched_end[fi]):
                out.var = f[F_OFF]
                out.reason = REASON_DISABLED
                return out
        for p in range(pstart, pstart + f[F_PRE_COUNT]):
            if not self._wanted(self._eval(self.prereqs[p * PW], b, now).var, self.prereqs[p * PW + 1]):
                out.var = f[F_OFF]
                out.reason = REASON_PREREQ
                return out
        for k in range(rcount):
            r = self.rules + (rstart + k) * RW
            if r[R_COND] >= 0 and not self._node(r[R_COND], b, now):
                continue
            thr = r[R_ROLLOUT]
            nsplit = r[R_SPLIT_COUNT]
            gcount = r[R_GATE_COUNT]
            if gcount:
                gated = True
                for g in range(r[R_GATE_START], r[R_GATE_START] + gcount):
                    bucket = self._hashed_memo(g, b, &memo)
                    if not (self.hashes[g * HW + H_LO] <= bucket < self.hashes[g * HW + H_HI]):
                        gated = False
                        break
                if not gated:
                    continue  # outside a gate (or nothing to hash): the rule cannot apply
            if r[R_HASH] >= 0:
                bucket = self._hashed_memo(r[R_HASH], b, &memo)
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
            if bstart != memo_bs or bcount != memo_bc:
                memo_bs = bstart
                memo_bc = bcount
                memo_bucket = self._bucket(fi, f, b, bstart, bcount)
            bucket = memo_bucket
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

    cdef inline Outcome _run(self, int fi, object ctx) except *:
        """Evaluate flag ``fi`` for any kind of context; never raises on bad data.

        A bound Context evaluates here (inlined into each public method); an exact dict
        binds into an array on the C stack, in _run_dict's own frame; anything else goes
        through _run_other, whose frame, as this one, holds no such array. A check
        can run Python code that checks again (a mapping's get() that reads flags, a
        clock), and each level of such a recursion holds the frames of its check: Python
        counts the levels against its recursion limit only, and with the array (3.5 KB)
        in a frame every check passed through, the C stack overflowed first (a segfault
        at sys.setrecursionlimit(2000), where the reference evaluator answered).
        """
        cdef double now[2]
        cdef Binding bd
        cdef const SlotVal* vals
        if type(ctx) is Context:
            now[0] = NAN
            now[1] = 0
            if self.flags[fi * FW + F_SLOTS_COUNT] == 0:
                # The flag reads no attribute (nor do its prerequisites): no binding is
                # made for it, so a fresh context (or one bound before a swap) is not
                # bound, or rebound, by a check that reads nothing.
                vals = self.empty
            else:
                vals = self._context_ready(<Context>ctx, fi)
                if vals == NULL:
                    bd = self._context_bind(<Context>ctx, fi)  # local ref: alive during the call
                    vals = (<Context>ctx).st.vals if bd is None else bd.st.vals
            out = self._eval(fi, vals, now)
            if now[1] > 1:
                _raise_interrupt()
            return out
        if type(ctx) is dict and self.n_slots <= STACK_SLOTS:
            return self._run_dict(fi, <dict>ctx)
        return self._run_other(fi, ctx)

    cdef Outcome _run_other(self, int fi, object ctx) except *:
        """_run for None, a value that is no mapping, a mapping that is not an exact
        dict, or a dict when the snapshot has more slots than fit on the stack (those
        bind into the heap: _run_mapping)."""
        cdef double now[2]
        cdef Outcome out
        now[0] = NAN
        now[1] = 0
        if ctx is None or (type(ctx) is not dict and not _is_mapping(ctx)):
            if ctx is not None and self.counting:  # not a context: evaluated with no attributes
                self.errs[ERR_INVALID_CONTEXT] += 1
            out = self._eval(fi, self.empty, now)
            if now[1] > 1:
                _raise_interrupt()
            return out
        return self._run_mapping(fi, ctx)

    cdef Outcome _run_dict(self, int fi, dict ctx) except *:
        """_run for an exact dict when the snapshot has up to STACK_SLOTS slots: the
        flag's slots bind into an array on the C stack, released before returning. Never
        inlined into a caller (the compiler keeps a frame this large out of the small
        ones), so the array is on the stack only while a dict check runs."""
        cdef double now[2]
        now[0] = NAN
        now[1] = 0
        cdef SlotVal vals[STACK_SLOTS]
        cdef const int32_t* f = self.flags + fi * FW
        cdef const int32_t* slots = self.ipool + f[F_SLOTS_START]
        cdef Outcome out
        cdef int k
        if f[F_SLOTS_COUNT] == 0:
            out = self._eval(fi, self.empty, now)
        else:
            self._bind_into(&vals[0], ctx, slots, f[F_SLOTS_COUNT])
            out = self._eval(fi, &vals[0], now)
            for k in range(f[F_SLOTS_COUNT]):
                _release(&vals[slots[k]], 1)
        if now[1] > 1:
            _raise_interrupt()
        return out

    cdef Outcome _run_mapping(self, int fi, object ctx) except *:
        """_run for any other mapping (or a dict when the snapshot has more slots than
        fit on the stack): the flag's slots bind into a heap array."""
        cdef double now[2]
        now[0] = NAN
        now[1] = 0
        cdef SlotVal* vals
        cdef const int32_t* f = self.flags + fi * FW
        cdef const int32_t* slots = self.ipool + f[F_SLOTS_START]
        cdef Outcome out
        cdef int k
        if f[F_SLOTS_COUNT] == 0:
            out = self._eval(fi, self.empty, now)
            if now[1] > 1:
                _raise_interrupt()
            return out
        vals = <SlotVal*>malloc(self.n_slots * sizeof(SlotVal))
        if vals == NULL:
            raise MemoryError()
        try:  # a KeyboardInterrupt from the mapping: _bind_into released what it bound
            self._bind_into(vals, ctx, slots, f[F_SLOTS_COUNT])
        except BaseException:
            free(vals)
            raise
        out = self._eval(fi, vals, now)
        for k in range(f[F_SLOTS_COUNT]):
            _release(&vals[slots[k]], 1)
        free(vals)
        if now[1] > 1:
            _raise_interrupt()
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
        array; a default is a number by ``cfgcore._numbers``' rule, a NumPy scalar or a
        ``Decimal`` too, and an object when it is any mapping). Never raises.
        """
        cdef int fi = self._lookup(key)
        cdef Outcome out
        if fi < 0:
            if self.counting:
                self.errs[ERR_FLAG_NOT_FOUND] += 1
            return default
        out = self._run(fi, ctx)
        if default is not None and _default_kind(default) != <int>self._value_kinds[out.var]:
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
        if default is not None and _default_kind(default) != <int>self._value_kinds[out.var]:
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
        cdef int fi = 0  # the flag a clock's interrupt stopped at (see _interrupted_all)
        cdef Outcome out
        cdef bint mapping
        # Counting: the flags that cannot vary are counted once per call (all_calls) and
        # attributed at take time; the others add their own cell.
        cdef uint64_t* cells = self.cells if self.counting else NULL
        if self._all_template is None:
            self._build_all_template()
        if type(ctx) is Context:
            vals = self._context_ready(<Context>ctx, -1)
            if vals == NULL:
                bd = self._context_bind(<Context>ctx, -1)  # local ref: alive during the call
                vals = (<Context>ctx).st.vals if bd is None else bd.st.vals
        else:
            mapping = type(ctx) is dict or (ctx is not None and _is_mapping(ctx))  # asked once
            if cells != NULL and ctx is not None and not mapping:
                self.errs[ERR_INVALID_CONTEXT] += 1  # not a context: evaluated with no attributes
            bd = self._bind_all(ctx, mapping)
            vals = bd.st.vals
        # A copy of a dict without deletions clones its key table (one memcpy) in the
        # same order; only the flags that can vary are evaluated and stored into it.
        cdef dict result = PyDict_Copy(self._all_template)
        cdef _UEntry* entries = _all_entries(result, self._all_template, self.n_flags) if self._all_direct else NULL
        cdef PyObject* value
        cdef PyObject* old
        # The cells to add are gathered in a small stack buffer and added in a tight loop
        # every ALL_BATCH flags: scattered read-modify-writes then overlap in the memory
        # system instead of each one stalling between two flag evaluations.
        cdef int32_t pending[ALL_BATCH]
        cdef int np = 0, j
        for i in range(self.n_varying):
            fi = self._varying[i]
            out = self._eval(fi, vals, now)
            if now[1] > 1:  # the clock raised an interrupt: it propagates (below)
                break
            pending[np] = out.var * N_REASONS + out.reason
            np += 1
            if np == ALL_BATCH:
                if cells != NULL:
                    for j in range(np):
                        cells[pending[j]] += 1
                np = 0
            if entries != NULL:  # the copy's own slot for flag fi (see _all_entries)
                value = _tuple_item(self._values, out.var)
                _incref(value)
                old = entries[fi].me_value
                entries[fi].me_value = value
                _decref(old)  # the template's placeholder: the template keeps it
            else:
                PyDict_SetItem(result, self._keys[fi], self._values[out.var])
        if entries != NULL and self._all_gc and not _gc_is_tracked(result):
            _gc_track(result)  # a container value was written past the dict's own tracking
        if cells != NULL:
            for j in range(np):
                cells[pending[j]] += 1
        if now[1] > 1:
            self._interrupted_all(fi, cells)
        if cells != NULL:
            self.counters.all_calls += 1
        return result

    cdef int _interrupted_all(self, int stop, uint64_t* cells) except -1:
        """Raise the interrupt the clock raised in evaluate_all at flag ``stop``, after
        counting the flags before it that cannot vary (the others are counted): the
        reference evaluator counts each flag it evaluated before the interrupt."""
        cdef double now[2]
        cdef const int32_t* f
        cdef Outcome out
        cdef int k
        now[0] = NAN
        now[1] = 0
        if cells != NULL:
            for k in range(stop):
                f = self.flags + k * FW
                if not f[F_ENABLED] or (
                    not f[F_SCHED] and f[F_PRE_COUNT] == 0 and f[F_RULE_COUNT] == 0
                ):  # as _build_all_template picks them: no clock read here
                    out = self._eval(k, self.empty, now)
                    cells[out.var * N_REASONS + out.reason] += 1
        return _raise_interrupt()

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
            mismatch = kind != 1 and default is not None and _default_kind(default) != <int>self._value_kinds[out.var]
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
        cdef const SlotVal* vals
        cdef Binding bd
        cdef int h = r[R_HASH], count, bucket, k
        if type(ctx) is Context:
            vals = self._context_ready(<Context>ctx, fi)
            if vals == NULL:
                bd = self._context_bind(<Context>ctx, fi)  # local ref: alive during the call
                vals = (<Context>ctx).st.vals if bd is None else bd.st.vals
        else:
            bd = self._bind_all(ctx, type(ctx) is dict or _is_mapping(ctx))
            vals = bd.st.vals
        if h < 0 and r[R_ROLLOUT] < 0 and r[R_SPLIT_COUNT] == 0:
            h = r[R_GATE_START]  # a rule served by its gates alone
        if h >= 0:
            slots = self.ipool + self.hashes[h * HW + H_BY_START]
            count = self.hashes[h * HW + H_BY_COUNT]
            bucket = self._hashed(h, vals)
        else:
            if r[R_BUCKET_COUNT]:
                slots, count = self.ipool + r[R_BUCKET_START], r[R_BUCKET_COUNT]
                bucket = self._bucket(fi, f, vals, r[R_BUCKET_START], count)
            else:
                slots, count = self.ipool + f[F_BUCKET_START], f[F_BUCKET_COUNT]
                bucket = self._bucket(fi, f, vals, f[F_BUCKET_START], count)
        for k in range(count):
            v = vals + slots[k]
            if v.bs != NULL:  # the first attribute with a value to hash, as _bucket reads
                return bucket, <object>(v.text if v.text != NULL else v.bucket)
        return bucket, None

    cdef bint _direct_checked(self, dict template) except -1:
        """Whether evaluate_all may write its copies' value slots: one copy of
        ``template`` is checked to hold flag i's key in entry i, for every flag."""
        cdef dict probe = PyDict_Copy(template)
        cdef _UEntry* entries = _all_entries(probe, template, self.n_flags)
        cdef Py_ssize_t i
        if entries == NULL:
            return False
        for i in range(self.n_flags):
            if entries[i].me_key != _tuple_item(self._keys, i):
                return False
        return True

    cdef int _build_all_template(self) except -1:
        # A plain dict, not _PyDict_NewPresized's: that one starts a general-kind key
        # table, while str keys inserted into {} keep the all-str kind, which lookups in
        # the caller's copy and the direct writes (_all_entries) rely on.
        cdef dict template = {}
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
        cdef bint direct = self._direct_checked(template)
        cdef bint gc_values = False
        for v in self._values:
            gc_values = gc_values or _is_gc(v)
        if self._all_template is not None:  # another thread finished first: keep its arrays
            free(varying)
            free(const_cells)
            return 0
        self._varying = varying
        self.n_varying = n
        self._all_direct = direct
        self._all_gc = gc_values
        self.counters.const_cells = const_cells
        self.counters.n_const = nc
        self._all_template = template  # last: readers test it before using _varying
        return 0
