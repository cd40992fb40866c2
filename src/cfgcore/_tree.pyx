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
