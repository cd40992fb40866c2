# Part of cfgcore._eval (included by _eval.pyx, which holds the declarations every part
# shares): the seed API's request path. SeedAPI serves DynamicConfigurationManager's
# is_feature_enabled / get_ab_test_variant / record_metric through an EngineCore
# (_eval_engine.pxi), exposure dedup included; RecordQueue is the request thread's
# append to the exposure and metric writers (cfgcore.experiments.writer).


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
    if found == NULL or not _bucketable(<object>found):
        if found == NULL and PyErr_Occurred() != NULL:
            _missing_unless_interrupt()  # a colliding key whose __eq__ raised: missing
        found = _dict_get_or_null(attrs, "targeting_key")
        if found == NULL or not _bucketable(<object>found):
            if found == NULL and PyErr_Occurred() != NULL:
                return _missing_unless_interrupt()
            return None
    uid = <object>found
    if PyUnicode_CheckExact(uid) and PyUnicode_IS_COMPACT_ASCII(uid):
        return uid
    return user_id_text(uid)


cdef inline bint _bucketable(object uid) noexcept:
    """details.bucketable_id: a str that is text (one with a lone surrogate hashes as
    nothing: the engine buckets by the next attribute), an int that is not a bool
    whose decimal text has at most ID_FORM_CHARS characters, or a NumPy integer (no
    Python code of the id's own)."""
    cdef int overflow = 0
    if PyUnicode_Check(uid):
        return PyUnicode_IS_COMPACT_ASCII(uid) or _is_utf8(uid)
    if PyBool_Check(uid) or uid is None or PyFloat_Check(uid):
        return False
    if not PyLong_Check(uid):
        return _other_bucketable(uid)
    PyLong_AsLongLongAndOverflow(uid, &overflow)  # an int subclass: its stored value
    return overflow == 0 or _id_sized(uid)


cdef bint _other_bucketable(object uid) noexcept:
    """details.bucketable_id of a value neither str nor int (a NumPy integer is an id)."""
    try:
        return bucketable_id(uid)
    except Exception:  # (it never raises; a MemoryError: no id)
        return False


cdef bint _is_utf8(object s) noexcept:
    """Whether the str ``s`` (by its stored value) encodes as UTF-8."""
    cdef Py_ssize_t n
    if _utf8_or_null(s, &n) != NULL:
        return True
    PyErr_Clear()  # a lone surrogate (or no memory): no id
    return False


cdef bint _id_sized(object uid) noexcept:
    """details.int_id_sized for an int past 64 bits, of its base value (an int
    subclass's overridden comparisons are never called)."""
    try:
        return int_id_sized(uid if type(uid) is int else int.__int__(uid))
    except Exception:  # a MemoryError: no id
        return False


cdef inline bint _serves(object meta, str variant) except -1:
    """``details.serves_variant`` without a Python call for the records the manager
    keeps (exact dicts; ``record_metric`` with an explicit variant is on the request
    path): ``variant`` is one of the test's ``traffic_split``, never ``__none__``."""
    cdef PyObject* split
    if variant == "__none__":
        return False
    if type(meta) is not dict:
        return serves_variant(meta, variant)
    split = _dict_get_or_null(meta, "traffic_split")
    if split == NULL:
        if PyErr_Occurred() != NULL:  # a key whose __eq__ raised: let Python judge it
            PyErr_Clear()
            return serves_variant(meta, variant)
        return True  # a record without a split (made by hand): any name
    if type(<object>split) is not dict:
        return serves_variant(meta, variant)
    return PyDict_Contains(<object>split, variant) == 1


cdef enum:
    # Ids of at most this many characters are looked up in their other form (42 /
    # "42") on a first exposure: details.ID_FORM_CHARS, the longest int that is an id
    # (checked equal when the module loads).
    ID_FORM_CHARS = 4300
    # The forms of ids a logger's dedup shards ever held (its bytearray ``forms``):
    FORM_TEXT = 0  # an int's canonical decimal text
    FORM_INT = 1  # an exact int (only a SeedAPI adds one)


if ID_FORM_CHARS != _ID_FORM_CHARS:  # one bound for both evaluators and the exposure log
    raise ImportError(f"cfgcore._eval was built with ID_FORM_CHARS {ID_FORM_CHARS}, not {_ID_FORM_CHARS}")


cdef bint _decimal_text(str uid) noexcept:
    """Whether ``uid`` is an int's canonical decimal text ("42", "-7"; not "042",
    "+42", "-0", " 42", non-ASCII digits) of at most ID_FORM_CHARS characters."""
    cdef Py_ssize_t n, i = 0
    cdef const char* s
    if not PyUnicode_IS_COMPACT_ASCII(uid):
        return False
    n = PyUnicode_GET_LENGTH(uid)
    if n == 0 or n > ID_FORM_CHARS:
        return False
    s = <const char*>PyUnicode_DATA(uid)
    if s[0] == c'-':
        i = 1
    if i == n or (s[i] == c'0' and n > 1):  # "-", a leading zero, "-0"
        return False
    while i < n:
        if s[i] < c'0' or s[i] > c'9':
            return False
        i += 1
    return True


cdef object _other_id_form(object uid):
    """The same user's id in its other form, as the exposure log counts both as one
    user: an exact int's text; the int of an exact str that is an int's canonical
    decimal text; else None (also past ID_FORM_CHARS characters or the interpreter's
    conversion limit). The reference's _other_id_form."""
    if type(uid) is int:
        try:
            text = str(uid)
        except ValueError:  # past sys.get_int_max_str_digits
            return None
        return text if PyUnicode_GET_LENGTH(text) <= ID_FORM_CHARS else None
    if not _decimal_text(uid):
        return None
    try:
        return int(uid)
    except ValueError:  # past sys.get_int_max_str_digits
        return None


cdef int _seen_as_other(tuple seen, object uid, bytearray forms) except -1:
    """Whether ``uid`` (an exact str or int, not in its shard) is in its dedup shards
    in its other form; marks its own form in ``forms``. Looked up only when the
    shards ever held the other form: a service whose ids are all ints, or all text,
    pays a flag read, not a second probe of a large set (a likely cache miss)."""
    cdef int found
    if type(uid) is int:
        forms[FORM_INT] = 1
        if not forms[FORM_TEXT]:
            return 0
    else:
        if not _decimal_text(uid):
            return 0
        forms[FORM_TEXT] = 1
        if not forms[FORM_INT]:
            return 0
    other = _other_id_form(uid)
    if other is None:
        return 0
    shard = seen[hash(other) & (DEDUP_SHARDS - 1)]
    if type(shard) is not set:
        return 0
    found = _set_contains(shard, other)
    if found < 0:  # a logged str subclass id whose __eq__ raised: not known
        _missing_unless_interrupt()
        return 0
    return found


cdef bint _takes_views(object expose) except -1:
    """Whether ``expose`` takes the views' shards and run tags (``seen=``, ``runs=``):
    its ``takes_views`` attribute is True. Read once, when it is set (reading it raised
    an Exception: False)."""
    try:
        return getattr(expose, "takes_views", False) is True
    except Exception:  # a hostile __getattr__: the three-argument call
        return False


SEED_API_COPY = (
    "a SeedAPI cannot be deep-copied or pickled: it is a live engine's request path and "
    "shares its exposure log's dedup shards; copy.copy() gives another one over the same "
    "engine, tests and writers"
)


cdef tuple _checked_views(object value):
    """``value`` as a SeedAPI's views: a tuple of at least four items, a compiled
    snapshot (or None) then three dicts; TypeError otherwise."""
    if type(value) is not tuple or len(<tuple>value) < 4:
        raise TypeError("views must be a tuple (snapshot, tests, metas, runs, ...)")
    if (<tuple>value)[0] is not None and not isinstance((<tuple>value)[0], CompiledSnapshot):
        raise TypeError(f"views[0] must be a CompiledSnapshot or None, not "
                        f"{type((<tuple>value)[0]).__name__}")
    for i in range(1, 4):
        if not isinstance((<tuple>value)[i], dict):
            raise TypeError(f"views[{i}] must be a dict, not {type((<tuple>value)[i]).__name__}")
    return <tuple>value


cdef tuple _views_with(tuple views, Py_ssize_t i, object value):
    """``views`` with item ``i`` replaced (one new tuple: set in one assignment)."""
    cdef list items = list(views)
    items[i] = value
    return tuple(items)


cdef inline CompiledSnapshot _served_snapshot(tuple views, EngineCore engine):
    """The snapshot ``views`` were made from, else the engine's live one. A strong
    reference: see EngineCore.is_enabled."""
    cdef object snap = _view(views, 0)
    if snap is None:
        return engine._snap
    return <CompiledSnapshot>snap


cdef inline object _view(tuple views, Py_ssize_t i):
    """``views[i]`` without the bounds check: views hold four items at least
    (_checked_views), and the request path reads the first four only."""
    return <object>PyTuple_GET_ITEM(views, i)


@cython.final
@cython.binding(False)
cdef class SeedAPI:
    """The seed API's per-request calls, for one engine, without a Python frame.

    ``DynamicConfigurationManager`` serves ``is_feature_enabled``,
    ``get_ab_test_variant`` and ``record_metric`` through one of these. ``tests`` maps
    each A/B test's name to its exposure dedup shards (a tuple of ``DEDUP_SHARDS`` sets,
    a user in the one ``hash(id) & (DEDUP_SHARDS - 1)`` picks; False: exposure logging
    off); ``expose(test, variant, ctx)`` is called when a user not in its shard is
    served a variant, or ``expose(test, variant, ctx, seen=shards, runs=runs)`` when
    its ``takes_views`` attribute is True (``ExposureLogger.expose``): the dedup shards
    of the test and the run tags of the views the request was served from. Never raises
    on bad data.

    With ``log_to(append, clock, shard_limit)`` the first exposure of a user whose id is
    an exact ``str`` or ``int`` is recorded here instead: the id joins its shard
    (cleared when it holds ``shard_limit`` users) and
    ``append((test, variant, user_id, time))`` queues the record, the exposure logger's
    own rules without its Python frame, tagged with the test's run when ``runs`` (test
    -> run, one dict per flag document) names one: ``append((test, variant, user_id,
    time, run))``. Other ids still go to ``expose``. An int id and
    its decimal text (``42`` and ``"42"``) are one user: a first exposure whose id is
    logged in its other form is not logged again, and each user takes one entry in the
    shards (``joins_id_forms``, read by the exposure logger: its writer files the int's
    record as its text without adding the text).
    ``views`` holds what a call reads, as one tuple set in one assignment: ``(snapshot,
    tests, metas, runs, ...)``. ``snapshot`` is the compiled snapshot the three maps were
    made from, which every call evaluates on (None: the engine's live one), so a
    manager that swaps its views after the engine's swap serves one document's flags
    with that document's tests, never the new flags with the old tests; items past the
    fourth are the owner's (a manager keeps its other views of the document there).
    ``tests``, ``metas`` and ``runs`` read and set one item of it (a dict each).

    A copy (``copy.copy``) is another SeedAPI for the same engine that shares all this
    one serves with: ``tests`` and their dedup shards, ``expose``, the exposure writer
    and id forms (``log_to``), the metric writer (``metrics_to``), ``metas`` and
    ``runs``, so a user exposed through either is logged once. ``copy.deepcopy`` and
    pickling raise TypeError: a SeedAPI is a live engine's request path, and
    independent shards would log users twice.
    """

    joins_id_forms = True

    cdef EngineCore engine
    # (snapshot or None, tests, metas, runs, the owner's items...): see the docstring.
    # runs is {test: run tag} (a float, or None for a test never created again), one
    # dict per flag document: each record queued carries its test's (not in it: none).
    cdef tuple _views
    cdef tuple _exposer  # (expose, whether it takes the views): set in one assignment
    cdef object _append  # the exposure writer's append, or None: everything goes to expose
    cdef object _clock  # None: the wall clock read in C (what time.time() reads)
    cdef Py_ssize_t _shard_limit  # users per dedup shard before it is cleared
    cdef bytearray _forms  # the id forms the shards ever held (FORM_TEXT, FORM_INT)
    # record_metric (see metrics_to): the metric writer's queue, the store's record(),
    # and a weak reference to the guardrails' counter
    cdef object _queue
    cdef object _record
    cdef object _counted
    cdef object _event_id_text  # metrics_to's: a caller's event id as text, or None
    cdef object _untagged  # metrics_to's: the run slot of an event whose test has no run
    # Enum members seen by is_feature_enabled and their flag names: a direct-mapped
    # cache by address, owning a reference to both (so an address stays its member's).
    cdef PyObject* _enum_member[ENUM_CACHE]
    cdef PyObject* _enum_name[ENUM_CACHE]

    def __init__(self, EngineCore engine, dict tests not None, expose):
        self.engine = engine
        self._views = (None, tests, {}, {})
        self._exposer = (expose, _takes_views(expose))
        self._append = None
        self._clock = None
        self._shard_limit = 1
        self._forms = bytearray(2)
        self._queue = self._record = self._counted = None
        self._event_id_text = self._untagged = None

    def __dealloc__(self):
        cdef int i
        for i in range(ENUM_CACHE):
            Py_XDECREF(self._enum_member[i])
            Py_XDECREF(self._enum_name[i])
            self._enum_member[i] = NULL
            self._enum_name[i] = NULL

    def __copy__(self):
        cdef SeedAPI out = SeedAPI(self.engine, {}, self.expose)
        out._views = self._views
        out._exposer = self._exposer
        out._append = self._append
        out._clock = self._clock
        out._shard_limit = self._shard_limit
        out._forms = self._forms
        out._queue = self._queue
        out._record = self._record
        out._counted = self._counted
        out._event_id_text = self._event_id_text
        out._untagged = self._untagged
        return out  # its Enum name cache starts empty: it fills on first use

    def __deepcopy__(self, memo):
        raise TypeError(SEED_API_COPY)

    def __reduce_ex__(self, protocol):
        raise TypeError(SEED_API_COPY)

    def __reduce__(self):
        raise TypeError(SEED_API_COPY)

    @property
    def expose(self):
        """What a first exposure this SeedAPI does not record itself goes to (see the
        class docstring); the call's shape is read from it when it is set."""
        return self._exposer[0]

    @expose.setter
    def expose(self, value):
        self._exposer = (value, _takes_views(value))

    @property
    def views(self):
        """``(snapshot, tests, metas, runs, ...)``: what every call reads (see the class
        docstring)."""
        return self._views

    @views.setter
    def views(self, value):
        self._views = _checked_views(value)

    @property
    def tests(self):
        """``views[1]``: each A/B test's exposure dedup shards (False: not logged)."""
        return self._views[1]

    @tests.setter
    def tests(self, value):
        self._views = _checked_views(_views_with(self._views, 1, value))

    @property
    def metas(self):
        """``views[2]``: the metadata of each test that records metric events."""
        return self._views[2]

    @metas.setter
    def metas(self, value):
        self._views = _checked_views(_views_with(self._views, 2, value))

    @property
    def runs(self):
        """``views[3]``: each test's run tag."""
        return self._views[3]

    @runs.setter
    def runs(self, value):
        self._views = _checked_views(_views_with(self._views, 3, value))

    def log_to(self, append, clock=None, Py_ssize_t shard_limit=15_625, bytearray forms=None):
        """Record first exposures here: ``append(record)`` queues one, ``clock()`` (None:
        the system clock) stamps it; ``None`` for ``append`` sends them all to ``expose``.
        ``forms`` (2 bytes, shared with the logger that owns the shards): whether they
        ever held an int's decimal text ([0]) or an int ([1]); None: a new one."""
        self._append = append
        self._clock = clock
        self._shard_limit = shard_limit if shard_limit > 0 else 1
        self._forms = forms if forms is not None and len(forms) >= 2 else bytearray(2)

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
        except Exception:
            return _NO_NAME
        # A member by its real type: isinstance() reads __class__, which an object may
        # fake (the reference asks only getattr: such an object named a flag there and
        # none here), and a raising one made this "no flag" where the reference answered.
        if issubclass(type(flag), Enum) and PyUnicode_CheckExact(name):
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
        cdef CompiledSnapshot snap = _served_snapshot(self._views, self.engine)
        if self.engine._observer is not None:  # hooks, exposure callbacks, debug mode
            return self.engine._observer.evaluate(snap, 0, flag, user_context, None)
        return snap.is_enabled(flag, user_context)

    def metrics_to(self, queue, record, counted=None, event_id_text=None, untagged=None):
        """Serve :meth:`record_metric`: ``queue(event)`` takes an event tuple (test,
        variant, metric, float value, user, time), and then False (not a tracking
        event) and the test's run when ``runs`` names one; without one (None) events go to
        ``record(test, variant, metric, value, user)``. ``counted()`` returns a
        ``(test, meta)`` callback (or None), called for tests with guardrail metrics.
        ``metas`` maps each test to its metadata: tests not in it record nothing.

        ``event_id_text(value)`` reads a caller's ``event_id`` (its text, or None when
        it is no id; without it every ``event_id`` is refused): an event with one is
        queued with nine items, the run slot ``untagged`` when ``runs`` names none, and
        recorded as ``record(..., event_id=text)``."""
        self._queue = queue
        self._record = record
        self._counted = counted
        self._event_id_text = event_id_text
        self._untagged = untagged

    def record_metric(self, test_name, metric, value=1.0, *, user_context=None, user_id=None,
                      variant=None, event_id=None):
        """``DynamicConfigurationManager.record_metric``: one observation of ``metric``
        for this user's variant of ``test_name``; False when the user is not in it."""
        cdef PyObject* found
        cdef PyObject* run
        # One read of the views: the variant, the test's metadata and its run all come
        # from the one document they were made from.
        cdef tuple views = self._views
        ctx = user_context if user_context is not None else {"user_id": user_id}
        user_id = _metric_user_id(ctx) if user_id is None else user_id_text(user_id)
        test_name = _exact_name(test_name)
        metric = _exact_name(metric)
        if not (PyFloat_CheckExact(value) and fabs(PyFloat_AS_DOUBLE(value)) <= MAX_METRIC):
            value = metric_value(value)  # a finite float within MAX_METRIC_VALUE, or None
        if test_name is None or metric is None or value is None:
            return False  # before the lookup: no exposure logged
        if event_id is not None:
            if self._event_id_text is None:
                return False
            try:
                event_id = self._event_id_text(event_id)
            except Exception:  # (an int past the conversion limit, a hostile subclass)
                return False
            if event_id is None:
                return False  # no id: refused before the lookup, as a bad value is
        given = variant is not None
        if variant is None:
            variant = self._variant(views, test_name, ctx)
            if variant is None:
                return False
        else:
            variant = _exact_name(variant)
            if variant is None:
                return False
        found = PyDict_GetItemWithError(<dict>_view(views, 2), test_name)  # exact str: cannot raise
        if found == NULL:
            PyErr_Clear()
            return False
        meta = <object>found
        if meta is None or self._record is None:
            return False
        if given and not _serves(meta, variant):
            return False  # a variant the test does not have (a typo): no report counts it
        # Not recorded (False from the writer: its backlog full or closed, or the value
        # refused): False, and not counted toward the next guardrail check.
        if self._queue is not None:
            run = PyDict_GetItemWithError(<dict>_view(views, 3), test_name)  # exact str: cannot raise
            if event_id is not None:  # nine items: the run slot, then the id
                if run == NULL:
                    PyErr_Clear()
                    tag = self._untagged
                else:
                    tag = <object>run
                event = (test_name, variant, metric, value, user_id, cfgcore_wall_clock(), False,
                         tag, event_id)
            elif run == NULL:
                PyErr_Clear()
                event = (test_name, variant, metric, value, user_id, cfgcore_wall_clock())
            else:  # tagged with its run (not a tracking event: False)
                event = (test_name, variant, metric, value, user_id, cfgcore_wall_clock(), False,
                         <object>run)
            if self._queue(event) is False:
                return False
        elif event_id is not None:
            if self._record(test_name, variant, metric, value, user_id, event_id=event_id) is False:
                return False
        elif self._record(test_name, variant, metric, value, user_id) is False:
            return False
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
        return self._variant(self._views, test_name, user_context)

    cdef object _variant(self, tuple views, str test_name, user_context):
        cdef PyObject* found
        cdef dict attrs
        cdef int known
        found = PyDict_GetItemWithError(<dict>_view(views, 1), test_name)  # exact str: cannot raise
        if found == NULL:
            PyErr_Clear()
            return None
        seen = <object>found
        cdef CompiledSnapshot snap = _served_snapshot(views, self.engine)
        if self.engine._observer is None:
            v = snap.variant(test_name, user_context)
        else:  # hooks, exposure callbacks, debug mode
            v = self.engine._observer.evaluate(snap, 1, test_name, user_context, None)
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
                    _missing_unless_interrupt()  # a colliding key's __eq__ raised: no id
            else:
                uid = <object>found
        # Exact str and int ids hash without user code: the steady state is one set
        # lookup, and a first exposure is recorded right here. An int past
        # ID_FORM_CHARS characters, or a str that is not text, is no id: expose files
        # it under the targeting key.
        if (
            ((PyUnicode_CheckExact(uid) or type(uid) is int) and _bucketable(uid))
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
                        if _seen_as_other(<tuple>seen, uid, self._forms):
                            return v  # logged as its other form (42 / "42"): one user
                        self._log(<dict>_view(views, 3), test_name, v, uid, <set>shard)
                        return v
                else:  # a logged id of a str subclass whose __eq__ raised: cannot tell
                    _missing_unless_interrupt()
        self._expose(views, test_name, v, user_context, seen)
        return v

    cdef int _expose(self, tuple views, str test_name, v, user_context, seen) except -1:
        """``expose`` for this exposure (apart from _variant: its locals cost the calls
        answered by one set lookup nothing). Only a BaseException that is no Exception
        (KeyboardInterrupt) propagates."""
        cdef tuple exposer = self._exposer
        try:
            if exposer[1] is True:
                # The views' dedup shards and run tags: the exposure is deduplicated
                # and tagged as the document this request was served from.
                exposer[0](test_name, v, user_context, seen=seen, runs=_view(views, 3))
            else:
                exposer[0](test_name, v, user_context)
        except Exception:  # the exposure log must never break the request
            pass
        return 0

    cdef int _log(self, dict runs, test, v, uid, set seen) except -1:
        cdef PyObject* run
        try:
            if len(seen) >= self._shard_limit:
                seen.clear()  # the logger's own shard: its holders stay in sync
            seen.add(uid)
            ts = cfgcore_wall_clock() if self._clock is None else self._clock()
            # The run of the document this request was served from, resolved once per
            # document (runs): the record keeps it however late it is written.
            run = PyDict_GetItemWithError(runs, test)  # exact str: cannot raise
            if run == NULL:
                PyErr_Clear()
                record = (test, v, uid, ts)
            else:
                record = (test, v, uid, ts, <object>run)
            if self._append(record) is False:
                # Dropped (the writer's backlog full, or closed): not logged, so not
                # deduplicated either; the user's next evaluation tries again.
                seen.discard(uid)
        except Exception:  # a failing clock or writer must never break the request
            pass
        return 0


#: RecordQueue's max_bytes when none is given, and its ceiling (1 EiB: no bound; the
#: estimate's sums stay far from long long's range).
MAX_QUEUE_BYTES = 1 << 60


@cython.boundscheck(False)
@cython.wraparound(False)
cdef inline Py_ssize_t _text_at(tuple record, Py_ssize_t i):
    """The length of ``record[i]`` when it is an exact str, else 0 (out of range too)."""
    cdef Py_ssize_t size = len(record)
    if i < 0:
        i += size
    if i < 0 or i >= size:
        return 0
    x = record[i]
    return PyUnicode_GET_LENGTH(x) if PyUnicode_CheckExact(x) else 0


@cython.final
@cython.binding(False)
cdef class RecordQueue:
    """The request thread's side of a :class:`cfgcore.experiments.writer.BackgroundWriter`.

    ``append(record)`` queues one record on the writer's deque without a Python frame
    (first exposures and metric events are appended on the request path): False, and
    one more in ``dropped``, when the queue is closed or ``max_pending`` records wait.
    ``start()`` is called once, by the first append, when ``started`` is False (the
    writer sets it). Same semantics as ``_eval_py.RecordQueue``.

    The byte bound: ``sized`` names at most two fields whose text a request gives a
    record (a user id, a metric's name); ``text_size(record)`` is the characters of
    those that are exact str in a tuple record (anything else counts 0). A record whose
    text is at most ``short_text`` (its ``share`` of ``max_bytes`` less ``RECORD_BYTES``)
    costs that one check while no long record waits: the count bound covers it. A
    longer one counts as its size (text + ``RECORD_BYTES``): its ``share``, counted with
    every record waiting, and its excess over that, added to ``long_added`` before it is
    queued; the writer adds what it takes to ``long_taken``. While the
    estimate (``share`` per record waiting, plus the long ones' excess) would pass
    ``max_bytes``, records are refused and counted in ``byte_dropped`` (a closed queue
    counts its refusals in ``dropped``). C arithmetic, no lock: under the GIL an append
    runs no Python code between its check and its push, except ``start()``.
    """

    cdef object pending
    cdef object _push  # pending.append
    cdef public Py_ssize_t max_pending
    cdef public long long appended
    cdef public long long dropped
    cdef public bint closed
    cdef public bint started
    cdef public object start
    cdef public long long max_bytes
    cdef public long long long_added  # the long records' excess over their share (requests add)
    cdef public long long long_taken  # that of those the writer took (the writer adds)
    cdef public long long byte_dropped  # records the byte bound refused
    cdef readonly long long share  # what a record whose text is short counts for
    cdef readonly long long short_text  # the longest text that counts as `share`
    cdef readonly tuple sized
    cdef Py_ssize_t _nsized, _first, _second

    def __init__(self, pending, Py_ssize_t max_pending, start, max_bytes=MAX_QUEUE_BYTES, sized=()):
        sized = tuple(sized)
        if len(sized) > 2 or not all(type(i) is int and abs(i) < 1 << 31 for i in sized):
            raise ValueError(f"sized must name at most 2 field indices, not {sized!r}")
        if type(max_bytes) is not int or max_bytes < 1:
            raise ValueError(f"max_bytes must be a positive integer, not {max_bytes!r}")
        self.pending = pending
        self._push = pending.append
        self.max_pending = max_pending
        self.start = start
        self.appended = self.dropped = self.byte_dropped = 0
        self.long_added = self.long_taken = 0
        self.closed = self.started = False
        self.max_bytes = min(max_bytes, MAX_QUEUE_BYTES)
        self.share = max(RECORD_BYTES, self.max_bytes // max(1, max_pending))
        self.short_text = self.share - RECORD_BYTES
        self.sized = sized
        self._nsized = len(sized)
        self._first = sized[0] if sized else 0
        self._second = sized[-1] if sized else 0

    def reset(self, pending):
        """A new (empty) deque, nothing appended, not started, no long record's bytes
        waiting (a forked child)."""
        self.pending = pending
        self._push = pending.append
        self.appended = 0
        self.long_added = self.long_taken = 0
        self.started = False

    cdef inline Py_ssize_t _text(self, record):
        cdef Py_ssize_t n = 0
        if self._nsized and PyTuple_CheckExact(record):
            n = _text_at(<tuple>record, self._first)
            if self._nsized == 2:
                n += _text_at(<tuple>record, self._second)
        return n

    def text_size(self, record):
        """The characters of the exact-str fields ``sized`` names in the tuple ``record``."""
        return self._text(record)

    cdef int _queue(self, record) except -1:
        if self.closed or len(self.pending) >= self.max_pending:
            self.dropped += 1
            return 0
        self._push(record)
        self.appended += 1
        if not self.started:
            self.start()
        return 1

    def append(self, record):
        """Queue ``record`` (no lock, no wait). False if dropped."""
        cdef Py_ssize_t n = self._text(record)
        cdef Py_ssize_t waiting
        cdef long long size, excess, share
        if n <= self.short_text and self.long_added == self.long_taken:
            return self._queue(record) == 1
        share = self.share
        size = n + RECORD_BYTES
        if size < share:
            size = share
        excess = self.long_added - self.long_taken
        if excess < 0:
            excess = 0
        waiting = len(self.pending)
        if not self.closed and (
            waiting > self.max_bytes // share or waiting * share + excess + size > self.max_bytes
        ):
            self.byte_dropped += 1
            return False
        if size > share:
            # Its share is counted with the records waiting: only the excess is added
            # (before the record is queued: the writer may take it at once, and must
            # never take off more than was added).
            self.long_added += size - share
            if self._queue(record) == 1:
                return True
            self.long_added -= size - share
            return False
        return self._queue(record) == 1
