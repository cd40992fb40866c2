# Part of cfgcore._eval (included by _eval.pyx, which holds the declarations every part
# shares): EngineCore, the one reference to the live CompiledSnapshot
# (_eval_snapshot.pxi) that cfgcore.Engine subclasses, and _own_methods, which gives
# that subclass C method descriptors of its own. SeedAPI (_eval_seed.pxi) reads through
# an EngineCore.


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
        # A set_clock() that ran since the clock was read above (code run by releasing
        # new's previous clock, or a thread switch there) set the old snapshot's clock:
        # the live one takes the engine's clock until the two agree.
        while new.clock is not self._clock:
            new.clock = self._clock
        return old

    def set_clock(self, clock):
        """Use ``clock() -> epoch seconds`` for schedules (None: the system clock)."""
        self._clock = clock
        self._snap.clock = clock

    def context(self, attrs=None):
        """Bind request attributes once; pass the result to every check of the request."""
        # No __init__ call and no binding here: a dict copy, and each attribute is bound
        # on the first check that reads it (CompiledSnapshot._context_bind and _ensure).
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
        array; a default is a number by ``cfgcore._numbers``' rule, a NumPy scalar or a
        ``Decimal`` too, and an object when it is any mapping). Never raises.
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


_METHOD_DESCRIPTOR = type(str.join)


def _own_methods(cls, names):
    """Give ``cls``, a Python subclass of EngineCore, C method descriptors of its own.

    CPython's specialised call of a C method checks that the receiver's type is exactly
    the descriptor's type, so EngineCore's descriptors would fall back to the generic
    call path for every ``engine.is_enabled(...)`` on a :class:`cfgcore.Engine`. The
    copies run the same C functions; a further subclass of ``cls`` still works, on the
    generic path.
    """
    cdef PyMethodDef* method
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
        method = (<PyMethodDescrObject*><PyObject*>d).d_method
        setattr(cls, name, PyDescr_NewMethod(<PyTypeObject*>cls, method))
