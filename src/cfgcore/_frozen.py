"""Read-only ``dict`` and ``list`` subclasses: the containers cfgcore serves.

The configuration tree (``cfg["audio"]["bitrate"]``) and the object and array values of
flags are shared by every reader, so they are served as :data:`FrozenDict` and
:data:`FrozenList`: subclasses of ``dict``/``list`` so ``json.dumps``, msgspec and
``isinstance(x, dict)`` work and they compare equal to the JSON they came from, but
every mutating method raises ``TypeError``. ``copy.deepcopy()`` and :func:`thaw` give
plain, mutable copies; a pickle loads read-only again. With the compiled extension they
are C subclasses (``cfgcore._tree``) whose reads cost what a plain ``dict`` read costs;
:class:`PyFrozenDict` and :class:`PyFrozenList` are the pure-Python reference.

This module sits outside :mod:`cfgcore.config` so the flag evaluation path (the compiler
freezes variant values) imports no configuration code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cfgcore._env import NO_EXTENSIONS, extension_missing

READ_ONLY = (
    "read-only: the configuration and flag values are shared by every reader; change "
    "the configuration with ConfigurationManager.update_config(), or change a "
    "copy.deepcopy() of it"
)


def _immutable(self: Any, *args: Any, **kwargs: Any) -> Any:
    raise TypeError(READ_ONLY)


class PyFrozenDict(dict):  # type: ignore[type-arg]
    """A read-only ``dict``: reads are plain dict reads, mutations raise ``TypeError``.

    The pure-Python reference of ``cfgcore._tree.FrozenDict``, which is what
    :data:`FrozenDict` names when the extension is built (see the module docstring).
    """

    __slots__ = ()
    __setitem__ = __delitem__ = _immutable
    clear = pop = popitem = setdefault = update = _immutable

    def __new__(cls, *args: Any, **kwargs: Any) -> PyFrozenDict:
        self = dict.__new__(cls)
        dict.update(self, *args, **kwargs)
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Filled when made (``__new__``): ``dict.__init__`` would update an existing
        one in place, so calling ``__init__`` again changes nothing."""

    __ior__ = _immutable  # type: ignore[assignment]

    def __copy__(self) -> dict[Any, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return thaw(self)

    def __reduce__(self) -> Any:
        return (_rebuild_dict, (dict(self),))

    def __repr__(self) -> str:
        # Trees end up in logs and tracebacks: secret-named keys and resolved secrets
        # are masked (redaction is off the read path, which never calls repr).
        return dict.__repr__(_redacted(self))


class PyFrozenList(list):  # type: ignore[type-arg]
    """A read-only ``list`` (see :class:`PyFrozenDict`)."""

    __slots__ = ()
    __setitem__ = __delitem__ = _immutable
    append = extend = insert = pop = remove = clear = sort = reverse = _immutable

    def __new__(cls, *args: Any) -> PyFrozenList:
        self = list.__new__(cls)
        if args:
            list.extend(self, *args)
        return self

    def __init__(self, *args: Any) -> None:
        """Filled when made (``__new__``): ``list.__init__`` would clear and refill it."""

    __iadd__ = __imul__ = _immutable  # type: ignore[assignment]

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return thaw(self)

    def __reduce__(self) -> Any:
        return (_rebuild_list, (list(self),))

    def __repr__(self) -> str:
        return list.__repr__(_redacted(self))


def _keep_tracked(root: Any, struct_type: type, keep: Any = None) -> int:
    """Pure Python cannot take objects out of the collector: they stay tracked."""
    return 0


def _keep_atoms_tracked(container: Any) -> bool:
    return False


# The live containers: the compiled ones (cfgcore._tree) read at plain dict/list speed,
# the Python subclasses above pay a Python-level __getitem__ lookup on every read.
# Decoded flag documents, compiled tables and configuration trees are taken out of the
# cyclic garbage collector (cfgcore._tree.untrack, untrack_atoms): without the extension
# they stay in it, which costs only the collector's time.
if TYPE_CHECKING or NO_EXTENSIONS:
    FrozenDict = PyFrozenDict
    FrozenList = PyFrozenList
    untrack, untrack_atoms = _keep_tracked, _keep_atoms_tracked
else:
    try:
        from cfgcore._tree import FrozenDict, FrozenList, untrack, untrack_atoms
    except ImportError as exc:  # the Python containers, said once (cfgcore._env)
        extension_missing("cfgcore._tree", exc)
        FrozenDict = PyFrozenDict
        FrozenList = PyFrozenList
        untrack, untrack_atoms = _keep_tracked, _keep_atoms_tracked


def _redacted(tree: Any) -> Any:
    from cfgcore.runtime.redaction import redact

    return redact("", tree)


def _rebuild_dict(d: dict[Any, Any]) -> FrozenDict:
    return FrozenDict(d)


def _rebuild_list(items: list[Any]) -> FrozenList:
    return FrozenList(items)


def thaw(value: Any) -> Any:
    """Deep plain (mutable) copy of a frozen or plain tree."""
    if isinstance(value, dict):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(v) for v in value]
    return value
