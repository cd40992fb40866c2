# cython: language_level=3
"""Compiled read path of the configuration tree.

``cfg["a"]["b"]`` and ``manager.get("a.b")`` run on every request, so the containers
they go through are C types here:

* :class:`FrozenDict` and :class:`FrozenList` are C subclasses of ``dict`` and ``list``.
  A subclass defined in Python routes ``d[k]`` through a Python-level ``__getitem__``
  lookup (``dict`` defines ``__getitem__`` as a method, so a heap subclass cannot
  inherit the C slot); these inherit ``dict``'s and ``list``'s C slots directly, so a
  read costs what a plain ``dict`` read costs. Every mutating method raises
  ``TypeError``.
* :class:`LiveReads` is the base of the configuration manager's read side. It keeps the
  live snapshot's tree and read cache in C fields, set together by one assignment to
  ``_snap``, and serves ``manager[key]`` and ``manager.get(key)`` without a Python frame.

:mod:`cfgcore.config.tree` and :mod:`cfgcore.config.view` hold the pure-Python
reference versions (used when the extension is missing or ``CFGCORE_NO_EXTENSIONS`` is
set); ``tests/test_tree_compiled.py`` runs the same behaviour tests on both.
"""

cimport cython
from cpython.object cimport PyObject


cdef extern from "Python.h":
    # PyDict_GetItemWithError without Cython's exception check: a NULL result with an
    # error set (an unhashable key, a key whose __eq__ raised) is cleared by the caller.
    PyObject* _dict_get_or_null "PyDict_GetItemWithError"(object, object)
    PyObject* PyErr_Occurred()
    void PyErr_Clear()


# The marker the read cache stores for a key that is absent from the tree.
ABSENT = object()


cdef inline _refuse():
    raise TypeError(_frozen_module().READ_ONLY)


def _frozen_module():
    # Late import: cfgcore._frozen imports this module. Not cfgcore.config.tree, so a
    # flag value's pickle or repr loads no configuration code.
    from cfgcore import _frozen

    return _frozen


@cython.final
cdef class FrozenDict(dict):
    """A read-only ``dict``: reads are plain dict reads, mutations raise ``TypeError``."""

    def __cinit__(self, *args, **kwargs):
        dict.update(self, *args, **kwargs)

    def __init__(self, *args, **kwargs):
        # Filled when made (__cinit__): dict.__init__ would update an existing one in
        # place, so calling __init__ again changes nothing.
        pass

    def __setitem__(self, key, value):
        _refuse()

    def __delitem__(self, key):
        _refuse()

    def clear(self):
        _refuse()

    def pop(self, *args):
        _refuse()

    def popitem(self):
        _refuse()

    def setdefault(self, *args):
        _refuse()

    def update(self, *args, **kwargs):
        _refuse()

    def __ior__(self, other):
        _refuse()

    def __copy__(self):
        return dict(self)

    def __deepcopy__(self, memo):
        return _frozen_module().thaw(self)

    def __reduce__(self):
        return (_frozen_module()._rebuild_dict, (dict(self),))

    def __repr__(self):
        # Trees end up in logs and tracebacks: secret-named keys and resolved secrets
        # are masked (redaction is off the read path, which never calls repr).
        return dict.__repr__(_frozen_module()._redacted(self))


@cython.final
cdef class FrozenList(list):
    """A read-only ``list`` (see :class:`FrozenDict`)."""

    def __cinit__(self, *args):
        if args:
            list.extend(self, *args)

    def __init__(self, *args):
        # Filled when made (__cinit__): list.__init__ would clear and refill it.
        pass

    def __setitem__(self, index, value):
        _refuse()

    def __delitem__(self, index):
        _refuse()

    def append(self, value):
        _refuse()

    def extend(self, values):
        _refuse()

    def insert(self, index, value):
        _refuse()

    def pop(self, *args):
        _refuse()

    def remove(self, value):
        _refuse()

    def clear(self):
        _refuse()

    def sort(self, *args, **kwargs):
        _refuse()

    def reverse(self):
        _refuse()

    def __iadd__(self, other):
        _refuse()

    def __imul__(self, other):
        _refuse()

    def __copy__(self):
        return list(self)

    def __deepcopy__(self, memo):
        return _frozen_module().thaw(self)

    def __reduce__(self):
        return (_frozen_module()._rebuild_list, (list(self),))

    def __repr__(self):
        return list.__repr__(_frozen_module()._redacted(self))


cdef inline bint _texts(tuple key):
    """Whether every segment of ``key`` is exactly a str."""
    for seg in key:
        if type(seg) is not str:
            return False
    return True


cdef class LiveReads:
    """The two request-path reads of the live configuration, in C.

    Subclasses provide ``_ensure_loaded()`` (load on first use and return the live
    snapshot) and ``_get_slow(key, default)`` (resolve a dotted key and fill the read
    cache). Assigning ``_snap`` publishes a snapshot: the tree and the cache readers use
    are set with it, with no Python code in between, so a reader on another thread
    sees the old snapshot's or the new one's, never a mix.
    """

    cdef object _live
    cdef object _tree  # the live tree, or None before the first load
    cdef dict _flat  # the live snapshot's read cache: dotted key (or tuple) -> value or ABSENT

    @property
    def _snap(self):
        return self._live

    @_snap.setter
    def _snap(self, snap):
        flat = snap.flat
        tree = snap.config if snap.version else None
        if type(flat) is not dict:
            raise TypeError("a configuration snapshot's read cache must be a dict")
        self._flat = flat
        self._tree = tree
        self._live = snap

    def __getitem__(self, key):
        cdef PyObject* found
        tree = self._tree
        if tree is None:
            tree = self._ensure_loaded().config
        elif type(tree) is FrozenDict:
            found = _dict_get_or_null(tree, key)
            if found != NULL:
                return <object>found
            PyErr_Clear()  # a missing or unhashable key: the subscript below says which
        try:
            return tree[key]
        except KeyError:
            raise self._missing(key) from None

    def _missing(self, key):
        """The KeyError for a top-level key that is not set (subclasses name it)."""
        return KeyError(key)

    def get(self, key, default=None):
        """Value at dotted ``key`` (``"a.b.0.c"``; digits index lists), else ``default``.
        A tuple or list of segments names a key that holds a dot:
        ``get(("loggers", "uvicorn.access", "level"))``, as does the text cfgcore shows
        for that path, ``get('loggers["uvicorn.access"].level')``.

        Never raises. Repeated keys are served from a per-snapshot cache, so a read
        costs one dict lookup after the first. A tuple is looked up in the same cache
        (its hash is computed on each read: a little slower than a text key); a list,
        which cannot be a dict key, always takes the slow path.
        """
        cdef PyObject* found
        cdef dict flat = self._flat
        # Only a key the cache may hold is looked up in it (config.view._cacheable): a
        # str, or a tuple of str, those types exactly. Their hash and == are str's own,
        # which never run the caller's code nor fail; any other key (a str subclass, a
        # tuple holding an int or True, which == would take for another cached key)
        # takes the slow path.
        if flat is not None and (type(key) is str or (type(key) is tuple and _texts(<tuple>key))):
            found = _dict_get_or_null(flat, key)
            if found != NULL:
                value = <object>found
                return default if value is ABSENT else value
            if PyErr_Occurred() != NULL:  # (not expected of a str's hash: kept as before)
                PyErr_Clear()
        return self._get_slow(key, default)


cdef extern from "Python.h":
    ctypedef int (*visitproc)(PyObject*, void*) noexcept
    ctypedef int (*traverseproc)(PyObject*, visitproc, void*) noexcept
    ctypedef struct _TraversedType "PyTypeObject":
        traverseproc tp_traverse
    _TraversedType* _type_of "Py_TYPE"(PyObject*)
    int PyObject_IS_GC(PyObject*)
    int PyObject_GC_IsTracked(PyObject*)
    void PyObject_GC_UnTrack(void*)
    # (a PyTypeObject*, as Python.h declares it: a PyObject* there is an incompatible
    # pointer type, which GCC 14 makes an error)
    int PyObject_TypeCheck(PyObject*, _TraversedType*)
    int PyList_Append(object, PyObject*) except -1


cdef struct _Walk:
    PyObject* stack      # a list: the objects still to untrack
    PyObject* structs    # the Struct type whose instances are untracked too
    bint failed


cdef inline bint _enters(PyObject* obj, PyObject* structs) noexcept:
    """A tracked list, tuple, dict or ``structs`` instance (never a class or anything
    else a tree's objects refer to)."""
    if not PyObject_IS_GC(obj) or not PyObject_GC_IsTracked(obj):
        return False
    cdef PyObject* kind = <PyObject*>obj.ob_type
    if kind == <PyObject*>list or kind == <PyObject*>tuple or kind == <PyObject*>dict:
        return True
    if kind == <PyObject*>FrozenDict or kind == <PyObject*>FrozenList:
        return True  # read-only: nothing can be made to hold a cycle through them
    return PyObject_TypeCheck(obj, <_TraversedType*>structs) != 0


cdef int _visit(PyObject* obj, void* arg) noexcept:
    cdef _Walk* walk = <_Walk*>arg
    if _enters(obj, walk.structs):
        try:
            PyList_Append(<object>walk.stack, obj)
        except MemoryError:
            walk.failed = True
            return -1
    return 0


def untrack(root, struct_type, keep=None):
    """Take a freshly decoded, acyclic tree out of the cyclic garbage collector.

    ``root`` and the lists, tuples, dicts, :class:`FrozenDict` and :class:`FrozenList`
    values and ``struct_type`` instances (msgspec Structs) it holds are untracked, as CPython itself untracks a tuple or dict of
    atoms: the collector no longer walks them. A decoded flag document is such a tree
    (about ten tracked objects a flag) that lives as long as its snapshot, and every
    collection of the older generations walked all of it while holding the GIL: 0.2 s
    for a 43,000-flag document after it was decoded, 0.45 s at each full collection.
    A forked worker's collections no longer write the headers of the snapshot's
    objects either, so their pages stay shared with the parent.

    Only a tree nobody else holds may be given: a cycle made through an untracked
    container (a list appended to itself) is never collected. The objects' own
    ``tp_traverse`` lists what they hold (as ``gc.get_referents`` does); objects
    already untracked are not entered, so shared parts are walked once. ``keep``: a
    set of ``id()`` s of objects someone else holds (a caller's mapping's containers,
    which a tree built from it shares): those are neither untracked nor entered, and
    the rest of the tree, built here, can be in no cycle with them. Returns the
    number of objects untracked."""
    cdef list stack = []
    cdef _Walk walk
    cdef Py_ssize_t count = 0
    cdef PyObject* obj
    walk.stack = <PyObject*>stack
    walk.structs = <PyObject*>struct_type
    walk.failed = False
    if not isinstance(struct_type, type):
        raise TypeError("struct_type must be a type")
    if _enters(<PyObject*>root, walk.structs):
        stack.append(root)
    while stack:
        item = stack.pop()
        obj = <PyObject*>item
        if not PyObject_GC_IsTracked(obj):
            continue  # reached twice (a shared part)
        if keep is not None and id(item) in keep:
            continue  # someone else's: stays as it is
        PyObject_GC_UnTrack(<void*>obj)
        count += 1
        if _type_of(obj).tp_traverse(obj, _visit, &walk) != 0 or walk.failed:
            raise MemoryError()
    return count


def untrack_atoms(container):
    """Take one list or dict that holds only numbers, bools and text out of the cyclic
    garbage collector, without reading its items (the caller knows what it holds).

    A compiled snapshot's flat tables are such lists, millions of items long for a
    large document: each collection that walked them touched every item (90 ms for
    43,000 flags). Items that can hold nothing can make no cycle."""
    if type(container) is list or type(container) is dict:
        if PyObject_GC_IsTracked(<PyObject*>container):
            PyObject_GC_UnTrack(<void*>container)
            return True
    return False
