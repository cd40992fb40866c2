# Part of cfgcore._eval (included by _eval.pyx, which holds the declarations every part
# shares): a request's attributes. The SlotVal arrays (_release, _missing_slots),
# Binding (a context bound to one snapshot's slots, lazily) and Context (what
# engine.context() returns). Binding a value to a slot is CompiledSnapshot's job
# (_bind_slot and the other _bind_* methods in _eval_snapshot.pxi): Cython allows no
# include inside a class body, so those methods stay with their class.


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
        # Called again on a live context (ctx.__init__(other)), the old binding would
        # answer for the old attributes: drop it, as the pure-Python Context does.
        self._bound = None

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

    # Copied or pickled (copy.deepcopy, a task queue, multiprocessing) as the attributes
    # it reads, unbound: its binding holds C pointers into one snapshot of this process.
    def __reduce__(self):
        return Context, (self.attrs,)


Mapping.register(Context)
