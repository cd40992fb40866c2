"""Frozen configuration trees: paths, deep merge and structural diff.

Merge rules (applied bottom to top, each layer over the result of the ones below):

* **maps merge** key by key, recursively;
* **everything else replaces**: scalars, and lists as a whole (no element-wise merge,
  so an overlay never ends up with a surprising mix of two lists);
* the string value ``"__delete__"`` (:data:`DELETE`) removes the key from the result;
  to store that text itself, write ``"\\__delete__"``: a text of one or more
  backslashes followed by ``__delete__`` is served with one backslash fewer, in maps
  and lists alike (:func:`unescape_marker`);
* a map containing ``"__replace__": true`` replaces the map below instead of merging.

The markers work the same in YAML, JSON, TOML and environment variables.

Merged trees are frozen (:data:`FrozenDict`, :data:`FrozenList`): subclasses of
``dict``/``list`` so ``json.dumps`` and ``isinstance(x, dict)`` work, but any mutation
raises ``TypeError`` so no caller can change the active configuration behind the
manager's back. :func:`thaw` returns plain, mutable copies. With the compiled extension
they are C subclasses (``cfgcore._tree``) whose reads cost what a plain ``dict`` read
costs; :class:`PyFrozenDict` and :class:`PyFrozenList` are the pure-Python reference.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from cfgcore._frozen import (  # noqa: F401 - the frozen containers' historical home
    FrozenDict,
    FrozenList,
    PyFrozenDict,
    PyFrozenList,
    _immutable,
    _rebuild_dict,
    _rebuild_list,
    _redacted,
    thaw,
)
from cfgcore._names import intern as _intern
from cfgcore.errors import ConfigError, Problem, format_key_path, parse_key_path

DELETE = "__delete__"
REPLACE = "__replace__"

_MISSING: Any = object()


# --------------------------------------------------------------------------- frozen trees


def _key(k: Any) -> Any:
    # Keys decoded from a file are new string objects; the literals a service reads them
    # with (cfg["audio"]["bitrate"]) are interned. Interning the tree's keys lets each
    # lookup match by identity instead of comparing characters (issue 15: about 40
    # instructions per level); where interned strings are immortal (CPython 3.12) only
    # within a budget, so changing names do not pile up (see cfgcore._names).
    if type(k) is str:
        return _intern(k)
    if isinstance(k, str):
        # A subclass given by a caller (update_config's value, set_active_config's tree)
        # is kept as the text it holds: as a served key its own __eq__ and __hash__
        # answered every read (and could match keys it does not spell).
        return _intern(str.__str__(k))
    return k


def _escaped_delete(text: str) -> bool:
    """``\\__delete__``, ``\\\\__delete__``...: the marker's text, escaped."""
    head = len(text) - len(DELETE)
    return head > 0 and str.endswith(text, DELETE) and str.count(text, "\\", 0, head) == head


def unescape_marker(value: Any) -> Any:
    """The value served for ``value``: one backslash fewer on a text of backslashes
    followed by ``__delete__`` (the way to store the text ``__delete__``, which as a
    value removes its key), anything else as it is.

    >>> unescape_marker("\\\\__delete__"), unescape_marker("\\\\\\__delete__")
    ('__delete__', '\\\\__delete__')
    """
    if isinstance(value, str) and _escaped_delete(value):
        return str.__str__(value)[1:]
    return value


def escape_markers(value: Any) -> Any:
    """``value`` (a served tree) written as a layer that serves it again: each text
    that :func:`unescape_marker` would change, or that is ``__delete__``, gets one more
    backslash. What ``set_active_config`` records as runtime overrides."""
    if isinstance(value, Mapping):
        return {k: escape_markers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [escape_markers(v) for v in value]
    if isinstance(value, str) and (value == DELETE or _escaped_delete(value)):
        return "\\" + value
    return value


def plain_value(value: Any) -> Any:
    """``value`` with every subclass of the types a file holds replaced by its base
    type's exact value: a str, int or float subclass as ``details.exact_value`` gives it
    (the text or number it holds), a dict, list or tuple subclass as a plain dict or list
    (keys too), a date, datetime or time subclass as the plain one it spells (a
    :class:`~cfgcore.runtime.secrets.Secret` stays one, as its exact type). A caller's
    subclass stored as given answered every later read, diff and comparison with its own
    methods (an ``__eq__`` that raises made the change raise). For a value
    :func:`~cfgcore.config.files.tree_problem` accepted; anything else is returned as it
    is. May raise what a hostile value's base-type conversion raises."""
    cls = type(value)
    if cls is str or cls is int or cls is float or cls is bool or value is None:
        return value
    if isinstance(value, dict):
        return {plain_value(k): plain_value(v) for k, v in dict.items(value)}
    if isinstance(value, list):
        return [plain_value(v) for v in list.__iter__(value)]
    if isinstance(value, tuple):
        return [plain_value(v) for v in tuple.__iter__(value)]
    if issubclass(cls, str):
        from cfgcore.runtime.secrets import Secret

        if issubclass(cls, Secret):  # stays a Secret: masked in reprs, logs and events
            return value if cls is Secret else Secret(str.__str__(value))
        return str.__str__(value)
    if issubclass(cls, int):
        return int.__int__(value)
    if issubclass(cls, float):
        return float.__float__(value)
    import datetime as _dt

    base: Any
    for base in (_dt.datetime, _dt.date, _dt.time):  # datetime first: it is a date
        if isinstance(value, base):
            tz = getattr(base, "tzinfo", None)
            zone = None if tz is None else tz.__get__(value)
            if cls is base and (zone is None or _stdlib_zone(zone)):
                return value
            # Its text read back: a fixed UTC offset, as a file gives (a tzinfo class of
            # the caller's answered every comparison with its own utcoffset).
            return base.fromisoformat(base.isoformat(value))
    return value


def _stdlib_zone(zone: Any) -> bool:
    """A ``datetime.timezone`` or ``zoneinfo.ZoneInfo`` (not a subclass of either)."""
    cls = type(zone)
    return cls.__module__ in ("datetime", "zoneinfo") and cls.__name__ in ("timezone", "ZoneInfo")


def freeze(value: Any) -> Any:
    """Deep read-only copy of ``value``; drops merge markers left without a target, and
    serves an escaped marker as its text (:func:`unescape_marker`).

    String keys are interned (see ``_key`` and :mod:`cfgcore._names`).
    """
    if isinstance(value, dict):
        return FrozenDict(
            {
                _key(k): freeze(v)
                for k, v in value.items()
                if k != REPLACE and not (isinstance(v, str) and v == DELETE)
            }
        )
    if isinstance(value, list | tuple):
        return FrozenList([freeze(v) for v in value])
    if isinstance(value, str) and str.endswith(value, DELETE):
        return unescape_marker(value)
    return value


def freeze_served(value: Any) -> Any:
    """:func:`freeze` for a tree that is served as it is given (``set_active_config``'s
    complete configuration, such as ``dict(manager.config)`` edited): its texts are
    values, ``"__delete__"`` and ``"\\__delete__"`` included (a served tree holds the
    text an escaped marker stands for: freezing it again deleted the key, or took a
    backslash off). Only ``__replace__`` keys are dropped: that name is never a key."""
    if isinstance(value, dict):
        return FrozenDict({_key(k): freeze_served(v) for k, v in value.items() if k != REPLACE})
    if isinstance(value, list | tuple):
        return FrozenList([freeze_served(v) for v in value])
    return value


# --------------------------------------------------------------------------- paths


def value_problem(value: Any, prefix: tuple[Any, ...] = ()) -> tuple[str, str] | None:
    """``(key path, message)`` of the first reason to refuse ``value`` as a
    configuration value, else None: :func:`cfgcore.config.files.tree_problem`, the one
    judge every way in uses (files, ``update_config``, ``set_active_config``,
    validation). Kept under this name for callers of earlier versions.
    """
    from cfgcore.config.files import tree_problem

    return tree_problem(value, prefix)


# Unknown names one report compares with the known ones for a "did you mean" (difflib
# costs tens of microseconds a name: a file of 100,000 unknown keys took seconds).
SUGGESTION_LIMIT = 50


# Candidates one "did you mean" compares (difflib): past it, those sharing the word's
# last part or parent first, then names of about its length. Over the 100,000 key paths
# of a large configuration a missing key's message took 5 s.
MAX_CANDIDATES = 2_000


def did_you_mean(word: str, candidates: list[str], *, n: int = 3) -> str:
    """`` (did you mean 'a', 'b'?)`` for the candidates closest to ``word``, or ``""``.

    At most ``MAX_CANDIDATES`` candidates are compared: with more, those with the same
    last part or the same parent as ``word``, then those within two characters of its
    length."""
    import difflib

    close = difflib.get_close_matches(word, _nearest(word, candidates), n=n, cutoff=0.6)
    if "." in word and len(close) < n:
        # A right leaf under a wrong section (or the reverse): match on the last part.
        leaf = word.rsplit(".", 1)[1]
        by_leaf = {c.rsplit(".", 1)[-1]: c for c in candidates}
        hits = [leaf] if leaf in by_leaf else []
        hits += difflib.get_close_matches(leaf, _nearest(leaf, list(by_leaf)), n=n, cutoff=0.8)
        for hit in hits:
            if by_leaf[hit] not in close:
                close.append(by_leaf[hit])
    if not close:
        return ""
    return " (did you mean " + ", ".join(repr(c) for c in close[:n]) + "?)"


def _nearest(word: str, candidates: list[str]) -> list[str]:
    """``candidates``, or at most ``MAX_CANDIDATES`` of them likeliest to be close: the
    same last part under another parent, then the same parent, then about its length."""
    if len(candidates) <= MAX_CANDIDATES:
        return candidates
    parent, _, leaf = word.rpartition(".")
    size = len(word)
    chosen: dict[str, None] = {}
    for keep in (
        lambda c: c.rpartition(".")[2] == leaf,
        lambda c: c.rpartition(".")[0] == parent,
        lambda c: abs(len(c) - size) <= 2,
    ):
        for c in candidates:
            if len(chosen) >= MAX_CANDIDATES:
                return list(chosen)
            if keep(c):
                chosen[c] = None
    return list(chosen)


def key_paths(tree: Any, prefix: tuple[Any, ...] = ()) -> list[str]:
    """Every key path of the mappings in ``tree``, rendered (:func:`format_path`), for
    suggestions."""
    paths = []
    if isinstance(tree, Mapping):
        for k, v in tree.items():
            path = (*prefix, k)
            paths.append(format_path(path))
            paths.extend(key_paths(v, path))
    return paths


def split_path(key: str | Iterable[Any]) -> tuple[Any, ...]:
    """``"a.b.0"`` -> ``("a", "b", "0")``; a tuple/list of segments is taken as already
    split, the way to name a key that holds a dot: ``("loggers", "uvicorn.access")``.

    A text in the form cfgcore shows key paths in (:func:`format_path`: a segment
    quoted in ``["..."]``) is read as that rendering: ``'loggers["uvicorn.access"].level'``
    -> ``("loggers", "uvicorn.access", "level")``, so a path copied from an error or
    ``explain`` names the key it showed. Only a text holding ``["`` that is a whole
    rendering is read so (:func:`cfgcore.errors.parse_key_path`); any other text splits
    on every dot as before (``"x[0]"``, ``'a["b'`` are one key each). A key whose own
    name holds ``["`` is named by a tuple, or by its rendering (``'["a[\\"b\\"]"]'``).

    A subclass of ``str`` is split as the text it holds (``str.__str__``): its own
    ``split`` may return anything, and the segments became keys of the runtime layer.
    A segment of a tuple/list that is a ``str`` subclass is taken as its text too.
    """
    if isinstance(key, str):
        if type(key) is not str:
            key = str.__str__(key)
        if '["' in key:
            return parse_key_path(key)
        return tuple(key.split(".")) if key else ()
    return tuple(
        str.__str__(seg) if isinstance(seg, str) and type(seg) is not str else seg for seg in key
    )


def format_path(path: Iterable[Any]) -> str:
    """``("a", "b", 0)`` -> ``"a.b.0"``; a segment holding a dot or ``[`` (or empty)
    quoted: ``("loggers", "uvicorn.access")`` -> ``'loggers["uvicorn.access"]'``
    (:func:`cfgcore.errors.format_key_path`; :func:`parse_path` reads it back)."""
    return format_key_path(path)


def parse_path(text: str) -> tuple[str, ...]:
    """The segments of a key path :func:`format_path` rendered (an error's path, a change
    event's key), ``[N]`` list indices as flag-document paths show them (``rules[0]``)
    included. A key path a user gives is read by :func:`split_path`, where ``"x[0]"`` is
    one key."""
    return parse_key_path(text)


def list_index(seg: Any, size: int) -> int | None:
    """The position in a list of ``size`` items that the key-path segment ``seg`` names,
    else None (the key is missing).

    A list index in a key path is plain ASCII decimal digits: ``"0"``, ``"12"`` (or a
    non-negative ``int`` in a tuple path). No sign, spaces, underscores, leading zeros or
    other scripts' digits: ``int()`` read ``"-1"`` as the last item and ``"１"``
    (fullwidth), ``" 1"``, ``"+1"`` and ``"1_0"`` as numbers, so ``get("l.-1")`` served a
    value no key path of the configuration names, where every other missing key gives
    the default."""
    if isinstance(seg, str):
        if not (str.isascii(seg) and str.isdigit(seg)) or (seg[0] == "0" and len(seg) > 1):
            return None
        if len(seg) > 19:  # past any list's length; int() would refuse 4,300+ digits
            return None
        idx = int(str(seg))
    elif isinstance(seg, int) and not isinstance(seg, bool):
        idx = int.__index__(seg)
    else:
        return None
    return idx if 0 <= idx < size else None


def get_path(tree: Any, path: tuple[Any, ...], default: Any = _MISSING) -> Any:
    """Value at ``path`` (list indices as digit strings: :func:`list_index`), or
    ``default``.

    Raises ``KeyError`` when missing and no default is given.
    """
    node = tree
    for seg in path:
        if isinstance(node, dict):
            if seg in node:
                node = node[seg]
                continue
        elif isinstance(node, list):
            idx = list_index(seg, len(node))
            if idx is not None:
                node = node[idx]
                continue
        if default is _MISSING:
            raise KeyError(format_path(path))
        return default
    return node


def iter_leaves(tree: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Yield ``(path, value)`` for every leaf; lists and empty maps are leaves."""
    if isinstance(tree, dict) and tree:
        for k, v in tree.items():
            yield from iter_leaves(v, (*prefix, k))
    else:
        yield prefix, tree


# --------------------------------------------------------------------------- merge


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``overlay`` over ``base`` with the module's rules; inputs are not modified.

    The result may share unchanged sub-trees with ``base``. A value the overlay puts
    where nothing merges with it holds no marker (:func:`spent`): a merged tree has the
    keys it serves, so a later layer, an environment variable or the empty-section
    check judges ``{"b": "__delete__"}`` over nothing as the empty map it is. Escaped
    markers stay escaped (:func:`freeze` serves their text, on a frozen copy).

    >>> deep_merge({"a": {"x": 1, "y": [1]}}, {"a": {"y": [2], "z": "__delete__"}})
    {'a': {'x': 1, 'y': [2]}}
    """
    out = dict(base)
    for key, value in overlay.items():
        if key == REPLACE:
            continue
        if isinstance(value, str) and value == DELETE:
            out.pop(key, None)
            continue
        below = out.get(key)
        if isinstance(value, dict) and isinstance(below, dict) and not value.get(REPLACE):
            out[key] = deep_merge(below, value)
        else:
            out[key] = spent(value)
    return out


def spent(value: Any) -> Any:
    """``value`` without its merge markers (``__replace__`` keys, ``__delete__`` values
    of maps, at any depth, in lists too), as :func:`freeze` drops them: what a layer's
    value is where nothing below merges with it. Escaped markers are left escaped.
    Returns ``value`` itself when it holds no marker."""
    if isinstance(value, dict):
        kept = {k: spent(v) for k, v in value.items() if k != REPLACE and not _is_delete(v)}
        if len(kept) == len(value) and all(kept[k] is value[k] for k in kept):
            return value
        return kept
    if isinstance(value, list | tuple):
        items = [spent(v) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return items
    return value


def _is_delete(value: Any) -> bool:
    return isinstance(value, str) and value == DELETE


def diff_trees(old: Any, new: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[str, Any, Any]]:
    """Changed leaves between two trees as ``(dotted_path, old, new)``.

    Maps are compared key by key; anything else (lists included) is one leaf. A key
    present on one side only yields ``None`` for the other side.
    """
    if old is new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[tuple[str, Any, Any]] = []
        for key, value in old.items():
            if key in new:
                out += diff_trees(value, new[key], (*prefix, key))
            else:
                out += [(format_path(p), v, None) for p, v in iter_leaves(value, (*prefix, key))]
        for key, value in new.items():
            if key not in old:
                out += [(format_path(p), None, v) for p, v in iter_leaves(value, (*prefix, key))]
        return out
    if type(old) is type(new) or not (isinstance(old, dict) or isinstance(new, dict)):
        if _same(old, new):
            return []
        return [(format_path(prefix), old, new)]
    # A map replaced by a scalar or the reverse: report every leaf on both sides.
    gone = [(format_path(p), v, None) for p, v in iter_leaves(old, prefix)]
    came = [(format_path(p), None, v) for p, v in iter_leaves(new, prefix)]
    return gone + came


def _same(a: Any, b: Any) -> bool:
    # True == 1 in Python, but a config that turns 1 into true has changed.
    if isinstance(a, list | dict) and isinstance(b, list | dict):
        return isinstance(a, list) == isinstance(b, list) and a == b
    return type(a) is type(b) and a == b


def type_compatible(current: Any, new: Any) -> bool:
    """Can ``new`` replace ``current`` without changing the value's kind?

    Unknown (``None``) accepts anything; ints are accepted where floats are; bool and
    int are distinct; maps need maps and lists need lists.
    """
    if current is None or new is None:
        return True
    if isinstance(current, bool) or isinstance(new, bool):
        return isinstance(current, bool) and isinstance(new, bool)
    if isinstance(current, float):
        return isinstance(new, int | float)
    if isinstance(current, int):
        return isinstance(new, int)
    if isinstance(current, dict):
        return isinstance(new, dict)
    if isinstance(current, list | tuple):
        return isinstance(new, list | tuple)
    if isinstance(current, str):
        return isinstance(new, str)
    return True


def structural_diff(
    old: Mapping[str, Any], new: Mapping[str, Any], prefix: tuple[Any, ...] = ()
) -> dict[tuple[Any, ...], Any]:
    """Overrides turning ``old`` into ``new``: changed values, and DELETE at the highest
    removed key (so a removed section stays removed when the files are re-read)."""
    out: dict[tuple[Any, ...], Any] = {}
    for key, value in old.items():
        path = (*prefix, key)
        if key not in new:
            out[path] = DELETE
        elif isinstance(value, Mapping) and isinstance(new[key], Mapping):
            out.update(structural_diff(value, new[key], path))
        elif diff_trees(value, new[key]):
            out[path] = escape_markers(new[key])
    for key, value in new.items():
        if key not in old:
            out[prefix + (key,)] = escape_markers(value)
    return out


def assoc(
    tree: Mapping[str, Any],
    path: tuple[Any, ...],
    value: Any,
    _above: tuple[Any, ...] = (),
    *,
    literal: bool = False,
) -> FrozenDict:
    """A new frozen tree with ``path`` set to ``value``; only the spine is copied.
    ``value`` ``"__delete__"`` removes the key, unless ``literal`` (a served value:
    the text an escaped marker stands for)."""
    head, rest = path[0], path[1:]
    if not rest:
        out = dict(tree)
        # As a rebuild's merge will do.
        if not literal and isinstance(value, str) and value == DELETE:
            out.pop(head, None)
        else:
            out[_key(head)] = value
        return FrozenDict(out)
    child = tree.get(head, _MISSING)
    if child is _MISSING or child is None:
        child = FrozenDict()
    if not isinstance(child, Mapping):
        raise ConfigError(
            [Problem(format_path((*_above, head)), f"is a {type(child).__name__}, not a section")]
        )
    out = dict(tree)
    out[_key(head)] = assoc(child, rest, value, (*_above, head), literal=literal)
    return FrozenDict(out)
