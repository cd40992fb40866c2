"""Layers, deep merge and provenance for configuration trees.

Merge rules (applied bottom to top, each layer over the result of the ones below):

* **maps merge** key by key, recursively;
* **everything else replaces**: scalars, and lists as a whole (no element-wise merge,
  so an overlay never ends up with a surprising mix of two lists);
* the string value ``"__delete__"`` (:data:`DELETE`) removes the key from the result;
* a map containing ``"__replace__": true`` replaces the map below instead of merging.

The markers work the same in YAML, JSON, TOML and environment variables.

Merged trees are frozen (:class:`FrozenDict`, :class:`FrozenList`): subclasses of
``dict``/``list`` so reads run at built-in speed and ``json.dumps`` works, but any
mutation raises ``TypeError`` so no caller can change the active configuration behind
the manager's back. :func:`thaw` returns plain, mutable copies.

Provenance is computed on demand (:func:`explain`): the layers are kept and searched
from the top down, and file lines are found by re-reading the kept source text only
when asked, so loading pays nothing for it.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from cfgcore.errors import ConfigError, Problem

__all__ = [
    "DELETE",
    "REPLACE",
    "FORMATS",
    "FrozenDict",
    "FrozenList",
    "Layer",
    "Origin",
    "Provenance",
    "deep_merge",
    "diff_trees",
    "env_layer",
    "explain",
    "format_path",
    "freeze",
    "get_path",
    "iter_leaves",
    "read_config_file",
    "split_path",
    "thaw",
]

DELETE = "__delete__"
REPLACE = "__replace__"
FORMATS = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".toml": "toml"}
MAX_DEPTH = 100  # far beyond any real configuration, well within Python's recursion limit

_MISSING: Any = object()


# --------------------------------------------------------------------------- frozen trees


def _immutable(self: Any, *args: Any, **kwargs: Any) -> Any:
    raise TypeError(
        "the active configuration is read-only; use ConfigurationManager.update_config() "
        "or thaw() a copy"
    )


class FrozenDict(dict):  # type: ignore[type-arg]
    """A read-only ``dict``: reads are plain dict reads, mutations raise ``TypeError``."""

    __slots__ = ()
    __setitem__ = __delitem__ = _immutable
    clear = pop = popitem = setdefault = update = _immutable
    __ior__ = _immutable  # type: ignore[assignment]

    def __copy__(self) -> dict[Any, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return thaw(self)

    def __reduce__(self) -> Any:
        return (_rebuild_dict, (dict(self),))

    def __repr__(self) -> str:
        return dict.__repr__(self)


class FrozenList(list):  # type: ignore[type-arg]
    """A read-only ``list`` (see :class:`FrozenDict`)."""

    __slots__ = ()
    __setitem__ = __delitem__ = _immutable
    append = extend = insert = pop = remove = clear = sort = reverse = _immutable
    __iadd__ = __imul__ = _immutable  # type: ignore[assignment]

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return thaw(self)

    def __reduce__(self) -> Any:
        return (_rebuild_list, (list(self),))

    def __repr__(self) -> str:
        return list.__repr__(self)


def _rebuild_dict(d: dict[Any, Any]) -> FrozenDict:
    return FrozenDict(d)


def _rebuild_list(items: list[Any]) -> FrozenList:
    return FrozenList(items)


def freeze(value: Any) -> Any:
    """Deep read-only copy of ``value``; drops merge markers left without a target."""
    if isinstance(value, dict):
        return FrozenDict(
            {
                k: freeze(v)
                for k, v in value.items()
                if k != REPLACE and not (isinstance(v, str) and v == DELETE)
            }
        )
    if isinstance(value, list | tuple):
        return FrozenList([freeze(v) for v in value])
    return value


def thaw(value: Any) -> Any:
    """Deep plain (mutable) copy of a frozen or plain tree."""
    if isinstance(value, dict):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(v) for v in value]
    return value


# --------------------------------------------------------------------------- paths


def split_path(key: str | Iterable[Any]) -> tuple[Any, ...]:
    """``"a.b.0"`` -> ``("a", "b", "0")``; a tuple/list is taken as already split."""
    if isinstance(key, str):
        return tuple(key.split(".")) if key else ()
    return tuple(key)


def format_path(path: Iterable[Any]) -> str:
    """``("a", "b", 0)`` -> ``"a.b.0"``."""
    return ".".join(str(p) for p in path)


def get_path(tree: Any, path: tuple[Any, ...], default: Any = _MISSING) -> Any:
    """Value at ``path`` (list indices allowed as digit strings), or ``default``.

    Raises ``KeyError`` when missing and no default is given.
    """
    node = tree
    for seg in path:
        if isinstance(node, dict):
            if seg in node:
                node = node[seg]
                continue
        elif isinstance(node, list) and isinstance(seg, str | int):
            try:
                idx = int(seg)
            except ValueError:
                pass
            else:
                if -len(node) <= idx < len(node):
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

    The result may share unchanged sub-trees with the inputs (and may still hold merge
    markers where nothing was below them); :func:`freeze` makes an independent copy.

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
            out[key] = value
    return out


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


# --------------------------------------------------------------------------- layers


@dataclass
class Layer:
    """One contribution to the merged configuration.

    ``kind`` is one of ``base``, ``environment``, ``deployment_profile``,
    ``geographic_profile``, ``environment_variables``, ``runtime``. ``file`` and
    ``text`` (the raw source, kept for on-demand line lookup) are set for file layers;
    ``env_vars`` maps a key path to the environment variable that set it; ``sources``
    maps a key path to ``(source, timestamp)`` for runtime updates.
    """

    name: str
    kind: str
    data: dict[str, Any]
    file: str | None = None
    text: str | None = None
    fmt: str | None = None
    env_vars: dict[tuple[Any, ...], str] = field(default_factory=dict)
    sources: dict[tuple[Any, ...], tuple[str, float]] = field(default_factory=dict)
    _lines: dict[tuple[Any, ...], int] | None = field(default=None, repr=False)

    def lookup(self, path: tuple[Any, ...]) -> tuple[str, Any, tuple[Any, ...]]:
        """Does this layer decide ``path``? Returns ``(status, value, decisive_path)``.

        status: ``set`` (value found), ``deleted`` (a delete marker at the path or a
        prefix), ``replaced`` (a prefix was set to a non-map or replaced wholesale, so
        the key no longer exists), ``absent`` (this layer says nothing about it).
        """
        node: Any = self.data
        for i, seg in enumerate(path):
            if isinstance(node, str) and node == DELETE:
                return "deleted", None, path[:i]
            if isinstance(node, list):
                try:
                    return "set", node[int(seg)], path[:i]
                except (ValueError, IndexError):
                    return "replaced", None, path[:i]
            if not isinstance(node, dict):
                return "replaced", None, path[:i]
            if seg not in node:
                if i > 0 and node.get(REPLACE):
                    return "replaced", None, path[:i]
                return "absent", None, path[:i]
            node = node[seg]
        if isinstance(node, str) and node == DELETE:
            return "deleted", None, path
        return "set", node, path

    def line_of(self, path: tuple[Any, ...]) -> int | None:
        """1-based line in ``file`` where ``path`` (or its nearest prefix) is defined."""
        if self.text is None:
            return None
        if self._lines is None:
            self._lines = _line_index(self.text, self.fmt or "yaml")
        for end in range(len(path), 0, -1):
            line = self._lines.get(tuple(str(p) for p in path[:end]))
            if line is not None:
                return line
        return None


def _line_index(text: str, fmt: str) -> dict[tuple[Any, ...], int]:
    if fmt == "toml":
        return _toml_lines(text)
    import yaml  # JSON is (for our purposes) YAML flow syntax, so one composer serves both

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        root = yaml.compose(text.replace("\t", " ") if fmt == "json" else text, Loader=loader)
    except yaml.YAMLError:
        return {}
    lines: dict[tuple[Any, ...], int] = {}

    def walk(node: Any, prefix: tuple[Any, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                path = (*prefix, str(key_node.value))
                lines.setdefault(path, key_node.start_mark.line + 1)
                walk(value_node, path)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                path = (*prefix, str(i))
                lines.setdefault(path, item.start_mark.line + 1)
                walk(item, path)

    if root is not None:
        walk(root, ())
    return lines


_TOML_TABLE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_TOML_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'. ]+?)\s*=")


def _toml_lines(text: str) -> dict[tuple[Any, ...], int]:
    # A line index good enough for "where is this key": tables and dotted keys.
    lines: dict[tuple[Any, ...], int] = {}
    table: tuple[str, ...] = ()
    for n, raw in enumerate(text.splitlines(), 1):
        m = _TOML_TABLE.match(raw)
        if m:
            table = tuple(_toml_key_parts(m.group(1)))
            for end in range(1, len(table) + 1):
                lines.setdefault(table[:end], n)
            continue
        m = _TOML_KEY.match(raw)
        if m:
            path = (*table, *_toml_key_parts(m.group(1)))
            for end in range(len(table) + 1, len(path) + 1):
                lines.setdefault(path[:end], n)
    return lines


def _toml_key_parts(key: str) -> list[str]:
    return [p.strip().strip("\"'") for p in key.split(".")]


# --------------------------------------------------------------------------- reading files


def read_config_file(path: str) -> Layer:
    """Read one YAML/JSON/TOML file into a :class:`Layer` (kind ``file``).

    The top level must be a mapping (an empty file is an empty mapping). Errors are
    :class:`ConfigError` naming the file and, where the parser knows it, the line.
    """
    fmt = FORMATS.get(os.path.splitext(path)[1].lower())
    if fmt is None:
        raise ConfigError("unsupported configuration format (use .yaml, .json or .toml)", file=path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 (byte {exc.start})", file=path) from None
    data = parse_text(text, fmt, path)
    name = os.path.splitext(os.path.basename(path))[0]
    return Layer(name=name, kind="file", data=data, file=path, text=text, fmt=fmt)


def parse_text(text: str, fmt: str, file: str) -> dict[str, Any]:
    """Parse configuration text of format ``yaml``/``json``/``toml`` into a mapping.

    Trees nested deeper than :data:`MAX_DEPTH` are refused (every later step recurses).
    """
    data: Any
    too_deep = ConfigError(f"nested more than {MAX_DEPTH} levels deep", file=file)
    try:
        if fmt == "yaml":
            from cfgcore.yamlio import load_yaml

            data = load_yaml(text, file=file)
        elif fmt == "json":
            try:
                data = msgspec.json.decode(text) if text.strip() else None
            except msgspec.DecodeError as exc:
                raise ConfigError([_json_problem(str(exc), text, file)]) from None
        else:
            data = _parse_toml(text, file)
    except RecursionError:
        raise too_deep from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"the top level must be a mapping, got {type(data).__name__}", file=file)
    if _depth_exceeds(data, MAX_DEPTH):
        raise too_deep
    return data


def _depth_exceeds(tree: Any, limit: int) -> bool:
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack += [(v, depth + 1) for v in node.values() if isinstance(v, dict | list)]
        elif isinstance(node, list):
            stack += [(v, depth + 1) for v in node if isinstance(v, dict | list)]
    return False


def _json_problem(message: str, text: str, file: str) -> Problem:
    line = None
    m = re.search(r"\(byte (\d+)\)", message)
    if m:
        line = text.encode("utf-8")[: int(m.group(1))].count(b"\n") + 1
    return Problem(path="", message=f"invalid JSON: {message}", file=file, line=line)


def _parse_toml(text: str, file: str) -> Any:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise ConfigError("TOML needs Python 3.11+ or the 'tomli' package", file=file) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ConfigError(
            [
                Problem(
                    path="",
                    message=f"invalid TOML: {exc}",
                    file=file,
                    line=int(m.group(1)) if m else None,
                )
            ]
        ) from None


# --------------------------------------------------------------------------- environment


_INT = re.compile(r"^[-+]?(0|[1-9][0-9_]*)$")
_FLOAT = re.compile(
    r"^[-+]?([0-9][0-9_]*)?\.[0-9]+([eE][-+]?[0-9]+)?$|^[-+]?[0-9]+[eE][-+]?[0-9]+$"
)


def parse_env_value(raw: str) -> Any:
    """Interpret an environment variable's text: YAML 1.2 scalars and JSON collections.

    ``"320"`` -> 320, ``"0.85"`` -> 0.85, ``"true"`` -> True, ``"null"`` -> None,
    ``'["a","b"]'`` -> ["a", "b"]; anything else stays a string (``"on"`` included).
    """
    text = raw.strip()
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "~"):
        return None
    if _INT.match(text):
        return int(text.replace("_", ""))
    if _FLOAT.match(text):
        return float(text.replace("_", ""))
    if text[:1] in "[{" and text:
        try:
            return json.loads(text)
        except ValueError:
            return raw
    return raw


_ENV_FILE = "<environment>"


def env_layer(environ: Mapping[str, str], prefix: str, below: Mapping[str, Any]) -> Layer:
    """Build the environment-variable layer from ``<PREFIX>__A__B=value`` variables.

    Segments are matched case-insensitively against the keys already present in
    ``below`` (so ``AUDIO_QUALITY`` finds ``audio_quality``); new keys are lower-cased.
    Where the value below is a string, the variable's text is kept as it is (a version
    ``2.1`` or a numeric password stays text). A value whose type cannot replace the
    value below (``"high"`` over an int) is a :class:`ConfigError` naming the variable
    and the key path; the value is not shown, since environment variables often carry
    secrets.
    """
    marker = f"{prefix}__"
    data: dict[str, Any] = {}
    env_vars: dict[tuple[Any, ...], str] = {}
    problems: list[Problem] = []
    for var in sorted(environ):
        if not var.startswith(marker) or len(var) == len(marker):
            continue
        parts = var[len(marker) :].split("__")
        if any(not p for p in parts):
            problems.append(
                Problem(path="", message=f"malformed variable name {var}", file=_ENV_FILE)
            )
            continue
        path: list[str] = []
        node: Any = below
        for part in parts:
            if isinstance(node, list):
                break
            key = part.lower()
            if isinstance(node, dict):
                for existing in node:
                    if isinstance(existing, str) and existing.lower() == key:
                        key = existing
                        break
                node = node.get(key)
            else:
                node = None
            path.append(key)
        if len(path) < len(parts):
            # Merging {"0": ...} over a list would replace the whole list with a map.
            problems.append(
                Problem(
                    path=format_path(path),
                    message=(
                        f"environment variable {var} sets an element of a list; set the "
                        f"whole list as JSON in {marker}{'__'.join(parts[: len(path)])}"
                    ),
                    file=_ENV_FILE,
                )
            )
            continue
        value = parse_env_value(environ[var])
        current = get_path(below, tuple(path), None)
        if isinstance(current, str) and value is not None and not isinstance(value, str):
            value = environ[var]
        if value != DELETE and not type_compatible(current, value):
            problems.append(
                Problem(
                    path=format_path(path),
                    message=(
                        f"environment variable {var} gives a {type(value).__name__}, "
                        f"expected {type(current).__name__}"
                    ),
                    file=_ENV_FILE,
                )
            )
            continue
        target = data
        for seg in path[:-1]:
            nxt = target.get(seg)
            if not isinstance(nxt, dict):
                nxt = target[seg] = {}
            target = nxt
        target[path[-1]] = value
        env_vars[tuple(path)] = var
    if problems:
        raise ConfigError(problems)
    return Layer(
        name="environment variables", kind="environment_variables", data=data, env_vars=env_vars
    )


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


# --------------------------------------------------------------------------- provenance


@dataclass(frozen=True)
class Origin:
    """One layer's contribution to a key: the layer and where in it."""

    layer: str
    kind: str
    status: str
    value: Any = None
    file: str | None = None
    line: int | None = None
    env_var: str | None = None
    source: str | None = None
    timestamp: float | None = None

    def where(self) -> str:
        """``file:line``, ``$VAR`` or the runtime source, for humans."""
        if self.env_var:
            return f"${self.env_var}"
        if self.file:
            return f"{self.file}:{self.line}" if self.line else self.file
        if self.source:
            return self.source
        return f"<{self.layer}>"


@dataclass(frozen=True)
class Provenance:
    """Why a key has its value: the deciding layer and every layer below that set it.

    ``found`` is False when the key is absent (``winner`` then says which layer
    deleted or replaced it, if any). ``chain`` lists the origins top-down.
    """

    key: str
    found: bool
    value: Any
    winner: Origin | None
    chain: tuple[Origin, ...]

    def __str__(self) -> str:
        # Provenance ends up in logs and terminals: secret values are redacted.
        from cfgcore.events import redact

        lines = []
        if self.found:
            lines.append(f"{self.key} = {redact(self.key, self.value)!r}")
        else:
            lines.append(f"{self.key} is not set")
        for i, o in enumerate(self.chain):
            tag = "set by" if i == 0 else "overrides"
            if o.status != "set":
                tag = f"{o.status} by"
            value = "" if o.status != "set" else f" = {redact(self.key, o.value)!r}"
            lines.append(f"  {tag:<11} {o.kind} {o.layer!r} at {o.where()}{value}")
        return "\n".join(lines)


def explain(layers: list[Layer], key: str | tuple[Any, ...], merged: Any) -> Provenance:
    """Provenance of ``key`` given the layers (bottom first) and their merged result."""
    path = split_path(key)
    chain: list[Origin] = []
    for layer in reversed(layers):
        status, value, decisive = layer.lookup(path)
        if status == "absent":
            continue
        env_var = None
        for end in range(len(path), 0, -1):
            env_var = layer.env_vars.get(path[:end])
            if env_var:
                break
        src = None
        for end in range(len(path), 0, -1):
            src = layer.sources.get(path[:end])
            if src:
                break
        chain.append(
            Origin(
                layer=layer.name,
                kind=layer.kind,
                status=status,
                value=value,
                file=layer.file,
                line=layer.line_of(decisive if status != "set" else path),
                env_var=env_var,
                source=src[0] if src else None,
                timestamp=src[1] if src else None,
            )
        )
        # Keep going: the layers below are what the winner overrides, which is half of
        # the answer to "why is it this value".
    absent = object()
    value = get_path(merged, path, absent)
    found = value is not absent
    return Provenance(
        key=format_path(path),
        found=found,
        value=value if found else None,
        winner=chain[0] if chain else None,
        chain=tuple(chain),
    )
