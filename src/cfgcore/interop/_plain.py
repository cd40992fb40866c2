"""The careful reading of an application's context values, for ``context()``.

An attribute may be of the application's own type: a ``str`` subclass (an id type), a
``dict`` subclass (an ``OrderedDict``, a record type), an ``int`` or ``float`` subclass
(NumPy's ``float64`` is one). Both evaluators bind such a value by its base type's
exact value and read a subclass's stored elements, never calling its own ``__eq__``,
``__hash__``, ``lower``, ``__str__``, ``items`` or ``__float__``
(:func:`cfgcore.details.exact_value`, :func:`cfgcore.details.exact_array`).

The importers' ``context()`` functions build their keys from the values as given: an
ordinary context pays nothing more. Only where that build raises an
:class:`Exception` (a method of the application's type that raises) do they read the
attributes again through this module, as the evaluators do: ``Id("u1")`` is the text
``"u1"``, ``Record(a=1)`` the object ``{"a": 1}``, ``Score(0.5)`` the number 0.5; and an
attribute they still cannot read is left out (:func:`leaving_out`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from cfgcore.details import exact_value

T = TypeVar("T")

# Exact types read as they are (bool cannot be subclassed).
_PLAIN = frozenset({str, int, float, bool, type(None)})
# Past this many nested containers a value is left as it is (checks read no deeper;
# context() leaves out an attribute it cannot read: see leaving_out).
_MAX_DEPTH = 128


def plain_items(mapping: Any) -> list[tuple[Any, Any]]:
    """The ``(key, value)`` pairs of the attributes ``mapping``: a ``dict`` (a subclass
    too) by the items it stores, read by ``dict``'s own methods (its ``items``,
    ``__iter__`` or ``get`` are not called); another :class:`Mapping` through its
    ``items()``, none when that raises (no attributes, as an evaluator reads a mapping
    whose ``get`` raises as holding none); anything else none. Never raises an
    :class:`Exception`."""
    if issubclass(type(mapping), dict):
        return list(dict.items(mapping))
    if mapping is None:
        return []
    try:
        if isinstance(mapping, Mapping):
            return list(mapping.items())
    except Exception:  # noqa: BLE001 - an application's mapping whose items() raises
        pass
    return []


def plain_pairs(mapping: Any, *, values: bool = True) -> list[tuple[Any, Any]]:
    """:func:`plain_items` of ``mapping``, each key by :func:`plain_key` and (with
    ``values``) each value by :func:`plain_value`. Never raises an :class:`Exception`."""
    out = []
    for key, value in plain_items(mapping):
        if type(key) not in _PLAIN:
            key = exact_value(key)
        if values and type(value) not in _PLAIN:
            value = plain_value(value)
        out.append((key, value))
    return out


def plain_dict(mapping: Any, *, values: bool = True) -> dict[Any, Any]:
    """:func:`plain_pairs` of ``mapping`` as a ``dict`` (a key whose ``__hash__`` raises
    left out). Never raises an :class:`Exception`."""
    out: dict[Any, Any] = {}
    for key, value in plain_pairs(mapping, values=values):
        try:
            out[key] = value
        except Exception:  # noqa: BLE001 - a key of another type whose __hash__ raises
            continue
    return out


def plain_key(key: Any) -> Any:
    """An attribute or object key: a ``str``, ``int`` or ``float`` subclass as its exact
    value, anything else as it is."""
    return key if type(key) in _PLAIN else exact_value(key)


def plain_value(value: Any) -> Any:
    """``value`` with every ``str``, ``int`` and ``float`` subclass in it as its exact
    value, every ``dict`` as a ``dict`` of the items it stores and every ``list`` as a
    ``list`` of its elements (keys too; to 128 levels, shared and cyclic containers
    kept so). Tuples, sets and other values are left as they are: no importer reads
    into them. Never raises an :class:`Exception` (a key whose ``__hash__`` raises is
    left out)."""
    return _copy(value, {}, 0)


def _copy(value: Any, memo: dict[int, Any], depth: int) -> Any:
    kind = type(value)
    if kind in _PLAIN:
        return value
    if issubclass(kind, (str, int, float)):
        return exact_value(value)
    if not issubclass(kind, (dict, list)) or depth >= _MAX_DEPTH:
        return value
    done = memo.get(id(value))
    if done is not None:
        return done
    if issubclass(kind, dict):
        out: dict[Any, Any] = {}
        memo[id(value)] = out
        for k, sub in list(dict.items(value)):
            try:
                out[plain_key(k)] = _copy(sub, memo, depth + 1)
            except Exception:  # noqa: BLE001 - a key of another type whose __hash__ raises
                continue
        return out
    items: list[Any] = []
    memo[id(value)] = items
    items.extend(_copy(sub, memo, depth + 1) for sub in list.copy(value))
    return items


def leaving_out(build: Callable[[list[tuple[Any, Any]]], T], pairs: list[tuple[Any, Any]]) -> T:
    """``build(pairs)``; where that raises an :class:`Exception` (a value whose own code
    runs where no importer can avoid it: an object whose ``__class__`` raises, a
    subclass past 128 levels), ``build`` of the pairs it reads one at a time: an
    attribute that cannot be read is left out, as if not given (an evaluator reads a
    value it cannot bind as unusable)."""
    try:
        return build(pairs)
    except Exception:  # noqa: BLE001 - an application's value: see above
        pass
    kept = []
    for pair in pairs:
        try:
            build([pair])
        except Exception:  # noqa: BLE001
            continue
        kept.append(pair)
    try:
        return build(kept)
    except Exception:  # noqa: BLE001 - (not expected: each one was read alone)
        return build([])
