# Part of cfgcore._eval (included by _eval.pyx, which holds the declarations every part
# shares): a request's attributes. Slots (bound values with a bitmask of those not bound
# yet, in arrays reused through a pool), Binding (slots bound to a snapshot other than
# the one a Context holds its own slots for) and Context (what engine.context()
# returns). Binding a value to a slot is CompiledSnapshot's job (_bind_slot and the
# other _bind_* methods in _eval_snapshot.pxi): Cython allows no include inside a class
# body, so those methods stay with their class.


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
        free(vals[i].elems)
        vals[i].elems = NULL


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


# A context's attributes bound to one snapshot's slots, lazily: each slot on the first
# check that reads it, so engine.context() costs a dict copy and a request pays only for
# the attributes its flags use. A slot not bound yet has its bit set in `lazy` (slots
# 0-63) or `hi` (slots 64 and up, one bit each) and its SlotVal is not initialised: only
# bound slots are read (a check reads the slots its flag's slot list names, which
# CompiledSnapshot._ensure binds first, as a plain dict's check binds only those into an
# uninitialised stack array) and released. A slot is bound once and never changes
# afterwards (bits only go from set to clear); the array is never re-targeted to another
# snapshot while its owner lives, so a check that took `vals` can rely on it while it
# holds the owner.
ctypedef struct Slots:
    SlotVal* vals  # NULL until claimed (_slots_claim); then cap values, n used
    uint64_t* hi  # bits of slots 64.. not bound yet (inside the vals block); NULL if n <= 64
    Py_ssize_t n
    Py_ssize_t cap
    uint64_t lazy  # bits of slots 0-63 not bound yet (see CompiledSnapshot.fmask)
    bint complete  # every slot bound


# Freed slot arrays, reused by the next claim (one per request otherwise: a malloc and a
# free). The GIL makes each push and pop atomic: neither runs Python code.
cdef void* _pool[POOL_SIZE]
cdef Py_ssize_t _pool_cap[POOL_SIZE]
cdef int _pool_n = 0


cdef inline Py_ssize_t _hi_words(Py_ssize_t cap) noexcept nogil:
    return (cap - 64 + 63) >> 6 if cap > 64 else 0


cdef int _slots_claim(Slots* st, Py_ssize_t n) except -1:
    """Give ``st`` (unclaimed: vals NULL) an array for ``n`` slots, none bound. Runs no
    Python code, so no other thread sees ``st`` half set up (its owner is published to
    readers by the caller's assignment afterwards)."""
    global _pool_n
    cdef Py_ssize_t cap = 0
    cdef void* block = NULL
    if CFGCORE_SLOT_POOL and _pool_n > 0:
        _pool_n -= 1
        block = _pool[_pool_n]
        cap = _pool_cap[_pool_n]
        if cap < n:  # pooled for a smaller snapshot: make one that fits
            free(block)
            block = NULL
    if block == NULL:
        cap = n if n > POOL_MIN_SLOTS else POOL_MIN_SLOTS
        block = malloc(cap * sizeof(SlotVal) + _hi_words(cap) * sizeof(uint64_t))
        if block == NULL:
            raise MemoryError()
    st.vals = <SlotVal*>block
    st.cap = cap
    st.n = n
    st.complete = n == 0
    st.lazy = ~(<uint64_t>0) if n >= 64 else ((<uint64_t>1) << n) - 1
    if n > 64:
        st.hi = <uint64_t*>(st.vals + cap)
        memset(st.hi, 0xFF, _hi_words(n) * sizeof(uint64_t))
    else:
        st.hi = NULL
    return 0


cdef inline bint _slot_unbound(const Slots* st, Py_ssize_t s) noexcept nogil:
    if s < 64:
        return (st.lazy >> s) & 1
    s -= 64
    return (st.hi[s >> 6] >> (s & 63)) & 1


cdef inline void _slot_mark(Slots* st, Py_ssize_t s) noexcept nogil:
    """Slot ``s`` is bound (its value written first)."""
    if s < 64:
        st.lazy &= ~((<uint64_t>1) << s)
    else:
        s -= 64
        st.hi[s >> 6] &= ~((<uint64_t>1) << (s & 63))


cdef void _slots_all_marked(Slots* st) noexcept nogil:
    st.lazy = 0
    if st.hi != NULL:
        memset(st.hi, 0, _hi_words(st.n) * sizeof(uint64_t))
    st.complete = True


cdef void _slots_free(Slots* st) noexcept:
    """Release the bound values and give the array back to the pool (or free it).
    Releasing runs no Python code: bound values hold exact str, float and int objects
    and tuples of them (semver keys), and C arrays of element ids."""
    global _pool_n
    cdef Py_ssize_t s
    cdef SlotVal* vals = st.vals
    if vals == NULL:
        return
    st.vals = NULL
    for s in range(st.n):  # the array is not read again before it is claimed (all unbound)
        if not _slot_unbound(st, s):
            _release(&vals[s], 1)
    if CFGCORE_SLOT_POOL and st.cap <= POOL_MAX_SLOTS and _pool_n < POOL_SIZE:
        _pool[_pool_n] = vals
        _pool_cap[_pool_n] = st.cap
        _pool_n += 1
    else:
        free(vals)
    st.hi = NULL
    st.n = 0
    st.cap = 0


def _slot_pool_size():
    """Slot arrays waiting in the pool (0 on free-threaded builds): for the tests."""
    return _pool_n


# A Binding references only its snapshot, which references no Binding itself: it is
# not tracked by the cyclic GC, and freed ones are reused (a snapshot's clock may reach
# a Context that holds one: that Context reports the Binding's snapshot to the
# collector, see _context_traverse). Made for a Context checked on a snapshot other
# than the one its own slots are bound to (after a swap, on a second engine), and by
# evaluate_all and the observer for contexts that are not Contexts.
@cython.final
@cython.no_gc
@cython.freelist(32)
cdef class Binding:
    """A context's attributes bound to one snapshot's slots (owned C array)."""

    cdef CompiledSnapshot snap
    cdef Slots st

    def __dealloc__(self):
        _slots_free(&self.st)


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
    # Its own slots (no object per request), bound to the snapshot _snap: claimed by the
    # first check that binds (CompiledSnapshot._context_bind). A check on any other
    # snapshot retires them (_snap NULL; the array stays until the context dies, as a
    # check still running may read it) and binds into the Binding _other, replaced in
    # one assignment when the snapshot changes again: one binding at a time, to the
    # last snapshot, as the reference Context holds. Both are owned references (NULL:
    # none) kept as C pointers, so a new context does not pay for two fields set to None
    # and cleared again; the cyclic GC sees them through _context_traverse (a
    # snapshot's clock may reach the context: a cycle).
    cdef PyObject* _snap
    cdef PyObject* _other
    cdef Slots st

    def __init__(self, attrs=None):
        self.attrs = _context_attrs(attrs)
        # Called again on a live context (ctx.__init__(other)), the old binding would
        # answer for the old attributes: drop it, as the pure-Python Context does. Its
        # own slots stay allocated (a check running on another thread, or further down
        # this one's stack, may still read them) but serve no snapshot any more: checks
        # bind into _other from now on.
        self._drop()

    cdef void _drop(self) noexcept:
        # the references cleared before they are released (a snapshot's release may
        # run Python code: its clock's)
        cdef PyObject* snap = self._snap
        cdef PyObject* other = self._other
        self._snap = NULL
        self._other = NULL
        Py_XDECREF(snap)
        Py_XDECREF(other)

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

    # Copied or pickled (copy.deepcopy, a task queue, multiprocessing) as the attributes
    # it reads, unbound: its binding holds C pointers into one snapshot of this process.
    def __reduce__(self):
        return Context, (self.attrs,)


Mapping.register(Context)


# Context's tp_dealloc: its slots and snapshot references released, then the deallocation
# Cython generated for the class (untrack, clear attrs, the freelist). A __dealloc__ method would
# do the same with the error state saved and restored around it and the object
# resurrected for the call, which a context needs no more than Binding does: releasing
# runs no Python code (see _slots_free). Context is final, so no subclass inherits it.
cdef destructor _context_base_dealloc = (<PyTypeObject*>Context).tp_dealloc


cdef void _context_dealloc(PyObject* o) noexcept:
    cdef PyObject* snap = (<Context>o)._snap
    cdef PyObject* other = (<Context>o)._other
    if snap != NULL or other != NULL or (<Context>o).st.vals != NULL:
        # untracked first, as Cython's deallocation does, since releasing the snapshot
        # may run Python code (its clock's), which must not find this object
        PyObject_GC_UnTrack(o)
        if (<Context>o).st.vals != NULL:
            _slots_free(&(<Context>o).st)
        (<Context>o)._snap = NULL
        (<Context>o)._other = NULL
        Py_XDECREF(snap)
        Py_XDECREF(other)
    _context_base_dealloc(o)


(<PyTypeObject*>Context).tp_dealloc = _context_dealloc


# The collector's view of a Context: what Cython generated (its attributes) and the
# snapshots its C pointers hold. Without them, an object holding a bound context and
# held by the snapshot's clock (engine.set_clock(service.now) on a service that keeps a
# context) made a cycle the collector never broke: the object, the context, the
# snapshot and its tables stayed for the life of the process.
from cpython.object cimport inquiry, traverseproc

ctypedef int (*_visitproc)(PyObject*, void*) noexcept
ctypedef int (*_traverseproc)(PyObject*, _visitproc, void*) noexcept
ctypedef int (*_inquiry)(PyObject*) noexcept

cdef extern from "Python.h":
    Py_ssize_t _refcnt "Py_REFCNT"(PyObject*)

cdef _traverseproc _context_base_traverse = <_traverseproc><void*>(<PyTypeObject*>Context).tp_traverse
cdef _inquiry _context_base_clear = <_inquiry><void*>(<PyTypeObject*>Context).tp_clear


cdef int _context_traverse(PyObject* o, _visitproc visit, void* arg) noexcept:
    cdef int r
    cdef PyObject* snap = (<Context>o)._snap
    cdef PyObject* other = (<Context>o)._other
    if snap != NULL:
        r = visit(snap, arg)
        if r:
            return r
    # A Binding is not tracked by the collector (see Binding): while the context alone
    # holds it, its reference to its snapshot is the context's to report. Held by a
    # check too (a local reference while it runs), it is left out: the context is then
    # reachable anyway, and reporting the snapshot would count one reference twice.
    if other != NULL and _refcnt(other) == 1:
        snap = <PyObject*>(<Binding>other).snap
        if snap != NULL:
            r = visit(snap, arg)
            if r:
                return r
    return _context_base_traverse(o, visit, arg) if _context_base_traverse != NULL else 0


cdef int _context_clear(PyObject* o) noexcept:
    (<Context>o)._drop()  # releases both snapshots (their own slots stay until dealloc)
    return _context_base_clear(o) if _context_base_clear != NULL else 0


(<PyTypeObject*>Context).tp_traverse = <traverseproc><void*>_context_traverse
(<PyTypeObject*>Context).tp_clear = <inquiry><void*>_context_clear
