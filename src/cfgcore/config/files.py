"""Configuration files: reading YAML, JSON and TOML, and the :class:`Layer` each becomes.

A layer keeps its source text so that provenance (:mod:`cfgcore.config.provenance`)
can find the line that set a key on demand; loading pays nothing for it.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date as _date
from datetime import datetime as _datetime
from datetime import time as _time
from typing import TYPE_CHECKING, Any

from cfgcore._encoding import decode_text, utf8_encodable
from cfgcore.config.tree import DELETE, REPLACE, escape_markers, list_index
from cfgcore.errors import (
    ConfigError,
    Problem,
    format_key_path,
    parse_key_path,
    python_key,
    python_key_segment,
)
from cfgcore.runtime.atomicio import read_regular

if TYPE_CHECKING:
    from cfgcore.yamlio import LineMarks

FORMATS = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".toml": "toml"}
MAX_DEPTH = 100  # far beyond any real configuration, well within Python's recursion limit
# Integers must fit in 64 bits (signed or unsigned): the TOML specification's range and
# what the services reading a configuration (Go, Java, Rust, Kafka, Redis...) can hold.
# A larger one is a typo or an attack (a 5,000-digit literal cannot even be printed by
# Python), and is refused with its key path instead of crashing a later step.
INT_MIN, INT_MAX = -(2**63), 2**64 - 1
# What a configuration value may be: what the file formats can hold and JSON, YAML and
# TOML readers of the served tree understand. Every way in (files, environment
# variables, transforms, update_config, set_active_config, validation) is judged by
# tree_problem against this list.
VALUE_KINDS = "strings, numbers, booleans, null, dates and times, lists and mappings are"

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
    # A YAML file's lines as its one parse found them (yamlio.LineMarks): looked up
    # without reading ``text`` again. None for other files (their index is built from
    # ``text`` once, on the first lookup).
    marks: LineMarks | None = field(default=None, repr=False)
    # Where ``data`` sits in ``text``: a custom profile's overrides are under the
    # file's ``overrides:`` key, so its lines are looked up below that prefix.
    line_prefix: tuple[str, ...] = ()
    # A custom profile that extends another is one layer written by several files: one
    # layer per profile of the chain (the furthest base first), each with its own file's
    # lines, so a key is traced to the file that writes it (see ``written_by``).
    parts: tuple[Layer, ...] = field(default=(), repr=False)

    def written_by(self, path: tuple[Any, ...]) -> Layer:
        """The layer whose file decides ``path``: the topmost of ``parts`` that says
        something about it, else this one."""
        for part in reversed(self.parts):
            if part.lookup(path)[0] != "absent":
                return part
        return self

    def __repr__(self) -> str:
        # Secret-named keys and resolved secrets masked; the raw text is left out.
        from cfgcore.runtime.redaction import redact

        return (
            f"Layer(name={self.name!r}, kind={self.kind!r}, file={self.file!r}, "
            f"data={redact('', self.data)!r})"
        )

    def lookup(self, path: tuple[Any, ...]) -> tuple[str, Any, tuple[Any, ...]]:
        """Does this layer decide ``path``? Returns ``(status, value, decisive_path)``.

        status: ``set`` (value found, as it is served: markers dropped, an escaped
        marker's text unescaped), ``deleted`` (a delete marker at the path or a
        prefix), ``replaced`` (a prefix was set to a non-map or replaced wholesale, so
        the key no longer exists), ``absent`` (this layer says nothing about it).

        A list replaces the list below as a whole, so a path into one is decided by the
        layer that holds the list: ``replaced`` when the list (or a map in it) has no
        such item, never ``absent``; an item that is the text ``__delete__`` is a value
        there, not a marker.
        """
        from cfgcore.config.tree import freeze

        node: Any = self.data
        in_list = False  # below a list: the layers below say nothing here
        item = False  # ``node`` is a list's item, not a map's value
        for i, seg in enumerate(path):
            if not item and isinstance(node, str) and node == DELETE:
                return "deleted", None, path[:i]
            if isinstance(node, list):
                idx = list_index(seg, len(node))  # plain digits only, as get() reads them
                if idx is None:
                    return "replaced", None, path[:i]
                node, in_list, item = node[idx], True, True
                continue
            if not isinstance(node, dict):
                return "replaced", None, path[:i]
            if seg not in node or seg == REPLACE:  # (``__replace__`` is never a key)
                if in_list or (i > 0 and node.get(REPLACE)):
                    return "replaced", None, path[:i]
                return "absent", None, path[:i]
            node, item = node[seg], False
        if not item and isinstance(node, str) and node == DELETE:
            return ("replaced" if in_list else "deleted"), None, path
        return "set", freeze(node), path

    def line_of(self, path: tuple[Any, ...]) -> int | None:
        """1-based line in ``file`` where ``path`` (or its nearest prefix) is defined."""
        if self.marks is not None:
            if not path:
                return None
            return self.marks.line_of((*self.line_prefix, *(str(p) for p in path)))
        if self.text is None:
            return None
        if self._lines is None:
            self._lines = _line_index(self.text, self.fmt or "yaml")
        for end in range(len(path), 0, -1):
            line = self._lines.get((*self.line_prefix, *(str(p) for p in path[:end])))
            if line is not None:
                return line
        return None


def _line_index(text: str, fmt: str) -> dict[tuple[Any, ...], int]:
    if fmt == "toml":
        return _toml_lines(text)
    import yaml

    from cfgcore.yamlio import compose_nodes

    # JSON is (for our purposes) YAML flow syntax, so one composer serves both
    root = compose_nodes(text.replace("\t", " ") if fmt == "json" else text)
    if root is None:
        return {}
    lines: dict[tuple[Any, ...], int] = {}

    def walk(node: Any, prefix: tuple[Any, ...]) -> None:
        if len(prefix) > MAX_DEPTH:  # refused by the loader anyway; never recurse past it
            return
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


# Each written so that a character can be taken by one part only: with "\s*" beside a
# lazy group that also takes spaces, a line of a few thousand spaces made these
# backtrack cubically (2,000 spaces: 6 s; 8,000: over 6 minutes), and every error or
# validation finding in a TOML file looks its key up here. Surrounding spaces are
# stripped from the groups afterwards.
# A TOML key part: bare, a basic string (escapes) or a literal string; a dotted key is
# parts joined by dots, spaces allowed around them. Each character can be taken by
# one part of the pattern only (a space only by the [ \t]* around a dot or the one
# before "="), so no line makes them backtrack more than linearly.
_TOML_PART = r"""[A-Za-z0-9_-]+|"(?:[^"\\\n]|\\.)*"|'[^'\n]*'"""
_TOML_DOTTED = rf"(?:{_TOML_PART})(?:[ \t]*\.[ \t]*(?:{_TOML_PART}))*"
_TOML_TABLE = re.compile(rf"^[ \t]*\[\[?[ \t]*({_TOML_DOTTED})[ \t]*\]\]?[ \t]*(#.*)?$")
_TOML_KEY = re.compile(rf"^[ \t]*({_TOML_DOTTED})[ \t]*=")
_TOML_PARTS = re.compile(_TOML_PART)
_TOML_ESCAPE = re.compile(r"\\(u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)")
_TOML_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", "e": "\x1b"}


def _toml_lines(text: str) -> dict[tuple[Any, ...], int]:
    # A line index good enough for "where is this key": tables and dotted keys. An
    # array of tables' elements are indexed by their position (``servers.1.port`` on
    # the line under the second ``[[servers]]``, not the first's): every header below
    # one is read into its current element.
    lines: dict[tuple[Any, ...], int] = {}
    table: tuple[str, ...] = ()
    # An array of tables' header as written -> the path of its current element, and
    # each array's (by its path) number of elements so far.
    current: dict[tuple[str, ...], tuple[str, ...]] = {}
    counts: dict[tuple[str, ...], int] = {}

    def resolved(parts: tuple[str, ...]) -> tuple[str, ...]:
        path: tuple[str, ...] = ()
        for i in range(len(parts)):
            path = current.get(parts[: i + 1], (*path, parts[i]))
        return path

    for n, raw in enumerate(text.splitlines(), 1):
        m = _TOML_TABLE.match(raw)
        if m:
            parts = tuple(_toml_key_parts(m.group(1)))
            if raw.lstrip(" \t").startswith("[[") and parts:
                array = (*resolved(parts[:-1]), parts[-1])
                index = counts.get(array, 0)
                counts[array] = index + 1
                # A new element: the arrays below the earlier one are not this one's.
                for written in [w for w in current if w[: len(parts)] == parts]:
                    del current[written]
                table = current[parts] = (*array, str(index))
            else:
                table = resolved(parts)
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
    """The keys a dotted TOML key names: ``a."b.c".'d'`` -> ``["a", "b.c", "d"]`` (a
    dot inside quotes is part of its key; a basic string's escapes decoded)."""
    out = []
    for m in _TOML_PARTS.finditer(key):
        part = m.group(0)
        if part[0] == "'":
            part = part[1:-1]
        elif part[0] == '"':
            part = _TOML_ESCAPE.sub(_toml_unescape, part[1:-1])
        out.append(part)
    return out


def _toml_unescape(m: re.Match[str]) -> str:
    code = m.group(1)
    if len(code) > 1:
        try:
            return chr(int(code[1:], 16))
        except ValueError:  # past U+10FFFF: tomllib refused the file already
            return code
    return _TOML_ESCAPES.get(code, code)


# --------------------------------------------------------------------------- reading files


def read_config_file(path: str) -> Layer:
    """Read one YAML/JSON/TOML file into a :class:`Layer` (kind ``file``).

    The top level must be a mapping (an empty file is an empty mapping). Errors are
    :class:`ConfigError` naming the file and, where the parser knows it, the line.
    """
    fmt = FORMATS.get(os.path.splitext(path)[1].lower())
    if fmt is None:
        raise ConfigError(
            "unsupported configuration format (use .yaml, .json or .toml)", file=path, kind="parse"
        )
    try:
        raw = read_regular(path)
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=path, kind="io") from None
    text = decode_text(raw, path)
    layer = parse_layer_text(text, fmt, path)
    layer.name = os.path.splitext(os.path.basename(path))[0]
    return layer


def parse_text(text: str, fmt: str, file: str) -> dict[str, Any]:
    """Parse configuration text of format ``yaml``/``json``/``toml`` into a mapping.

    Refused with a :class:`ConfigError` naming the file (and line or key path where
    known): an empty or whitespace-only text (a truncated write looks exactly like
    that), duplicate keys (in every format), trees nested deeper than
    :data:`MAX_DEPTH` (every later step recurses) and integers outside 64 bits.
    """
    return parse_layer_text(text, fmt, file).data


def parse_layer_text(text: str, fmt: str, file: str) -> Layer:
    """:func:`parse_text` as a :class:`Layer` (kind ``file``, named after ``file``) that
    knows the line of each key: a YAML file's from its one parse (no error found later
    reads the text again), the others' from their text, indexed once per layer."""
    layer = Layer(os.path.basename(file), "file", {}, file=file, text=text, fmt=fmt)
    if not text.strip():
        raise ConfigError(
            "file is empty (a truncated or unfinished write?); write '{}' for an "
            "intentionally empty layer",
            file=file,
            kind="limits",
        )
    data: Any
    too_deep = ConfigError(f"nested more than {MAX_DEPTH} levels deep", file=file, kind="limits")
    try:
        if fmt == "yaml":
            from cfgcore.yamlio import LineMarks, load_yaml

            layer.marks = LineMarks()
            data = load_yaml(text, file=file, marks=layer.marks, text_keys=True)
        elif fmt == "json":
            data = _parse_json(text, file)
        else:
            data = _parse_toml(text, file)
    except RecursionError:
        raise _too_deep_where(text, fmt, file) or too_deep from None
    except ConfigError as exc:  # the parsers' own refusals: syntax unless they say otherwise
        raise ConfigError(exc.problems, kind="parse") from None
    except ValueError as exc:
        # int() refuses literals of more than sys.get_int_max_str_digits() digits
        # (4,300 by default) while the parser runs: find the literal to say where.
        if "digits" not in str(exc):
            raise
        raise ConfigError([_huge_int_problem(text, fmt, file)], kind="limits") from None
    if data is None:
        layer.marks = None  # nothing to look up (and the text holds no key)
        return layer
    if not isinstance(data, dict):
        raise ConfigError(
            f"the top level must be a mapping, got {type(data).__name__}", file=file, kind="parse"
        )
    problem = tree_problem(data)
    if problem is not None:
        path, message = problem
        try:
            line = layer.line_of(parse_key_path(path))
        except RecursionError:  # the line index recurses; too deep to say where
            line = None
        raise ConfigError([Problem(path, message, file=file, line=line)], kind="limits")
    layer.data = data
    return layer


# Put in place of a container nested too deeply for a parser (a JSON or TOML escape:
# a string no file holds, starting with NUL), so the rest of the file can be parsed to
# say where it is.
_DEEP_MARK = '"\\u0000cfgcore-too-deep"'
_JSON_DEEP_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_TOML_DEEP_TOKEN = re.compile(
    r'"""(?:[^\\]|\\.)*?"""|\'\'\'.*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|#[^\n]*|\n|[\[\]{}]',
    re.DOTALL,
)


# The longest text whose over-deep containers are looked for to place the refusal:
# a configuration file is far shorter (10,000 keys are under 1 MB).
_DEEP_SCAN_CHARS = 4 << 20


def _too_deep_where(text: str, fmt: str, file: str) -> ConfigError | None:
    """The refusal of a JSON or TOML ``text`` nested past what its parser can recurse
    (about 1,000 brackets for JSON, fewer for TOML), with the key path and line a
    shallower file too deep is refused with: each container nested more than
    :data:`MAX_DEPTH` brackets deep is cut out (a scan, no recursion), the rest is
    parsed and judged as usual. None when that does not find it (the caller says the
    file is too deep, without a place), and for a text over :data:`_DEEP_SCAN_CHARS`
    (the scan takes about 0.35 s a MB: a hostile file at the read limit would hold the
    reload thread for over 20 s to place a refusal)."""
    if len(text) > _DEEP_SCAN_CHARS:
        return None
    cut = _cut_deep(text, fmt, MAX_DEPTH + 1)
    if cut is None:
        return None
    try:
        data = _parse_json(cut, file) if fmt == "json" else _parse_toml(cut, file)
        problem = tree_problem(data)
        if problem is None or not problem[1].startswith("nested more than"):
            return None
        path, message = problem
        line = Layer("", "file", {}, file=file, text=cut, fmt=fmt).line_of(parse_key_path(path))
    except Exception:  # noqa: BLE001 - only a place for the refusal: without it, none
        return None
    return ConfigError([Problem(path, message, file=file, line=line)], kind="limits")


def _cut_deep(text: str, fmt: str, limit: int) -> str | None:
    """``text`` with every array or inline table opened inside ``limit`` others put
    out of the way (a string in its place), or None if there is none or the brackets do
    not close. TOML's table headers (``[a.b]``, ``[[a]]``) are no nesting."""
    tokens = _JSON_DEEP_TOKEN if fmt == "json" else _TOML_DEEP_TOKEN
    out: list[str] = []
    done = 0  # text[:done] is in out
    depth = 0
    start = -1  # where the container being cut out opened, while one is
    header = False  # inside a TOML table header (to the end of its line)
    line_start = 0
    for m in tokens.finditer(text):
        tok = m.group()
        if tok == "\n":
            header, line_start = False, m.end()
            continue
        if tok[0] not in "[]{}" or header:
            continue
        if tok in "[{":
            if fmt == "toml" and depth == 0 and not text[line_start : m.start()].strip():
                header = True  # a table header, not a value
                continue
            if depth == limit:
                start = m.start()
            depth += 1
        else:
            depth -= 1
            if depth < 0:
                return None
            if depth == limit and start >= 0:
                out += (text[done:start], _DEEP_MARK)
                done, start = m.end(), -1
    if depth != 0 or not out:
        return None
    out.append(text[done:])
    return "".join(out)


def tree_problem(
    tree: Any, prefix: tuple[Any, ...] = (), *, depth: bool = True
) -> tuple[str, str] | None:
    """``(key path, message)`` of the first reason to refuse ``tree``, else None.

    Checks what every later step relies on without recursing itself (so a
    10,000-deep or self-referencing value is reported, not a ``RecursionError``):
    nesting at most :data:`MAX_DEPTH` levels, integers within 64 bits, string keys
    (a key path cannot name ``1`` apart from ``"1"``, and JSON output would repeat
    it), finite floats, and leaves of the kinds a file can hold (:data:`VALUE_KINDS`:
    text, numbers, booleans, null, and the dates and times of TOML and YAML), so bytes,
    sets, complex numbers (YAML's ``!!binary`` and ``!!set``) and arbitrary objects
    handed to ``set_active_config`` are refused. This is the one judge of a value:
    files, environment variables, transforms, runtime updates, ``set_active_config``
    and validation all ask it, so each accepts what the others accept and names
    the same key path for what it refuses. With ``depth=False`` only integers are
    checked (deeper levels are not visited): the validator's range rules judge the
    rest of a tree handed to it.
    """
    # Only containers go on the stack with their path; a scalar is judged where it is
    # met, and its path is built only when it is refused (a tuple per leaf made this
    # check a large share of reading a file with millions of keys).
    if not isinstance(tree, dict | list | tuple):
        message = _leaf_problem(tree, depth)
        return None if message is None else (_dotted(prefix), message)
    stack: list[tuple[Any, tuple[Any, ...]]] = [(tree, prefix)]
    # Each container by its id -> the deepest level it was judged at. A value built in
    # Python may hold one mapping in many places (a dict referenced twice at each of 60
    # levels is 2**60 paths: this walk, and every one after it, never ended). A container
    # met again is judged again only deeper than before (only the nesting limit can
    # differ), and the first time one is met again the size the value expands to is
    # bounded as a YAML document's aliases are.
    levels: dict[int, int] = {}
    sized = False
    while stack:
        node, path = stack.pop()
        level = len(path)
        key = id(node)
        seen = levels.get(key)
        if seen is not None:
            if not sized:
                sized = True
                if _expanded_size(tree) > MAX_EXPANDED:
                    return _dotted(path), (
                        f"a {type(node).__name__} repeated in so many places (one object, "
                        f"each place a copy) that the value expands to more than "
                        f"{MAX_EXPANDED:,} values"
                    )
            if seen >= level:
                continue
        levels[key] = level
        if level >= MAX_DEPTH:
            if not depth:
                continue
            shown = _dotted(path[:6]) + (".…" if len(path) > 6 else "")
            return shown, f"nested more than {MAX_DEPTH} levels deep"
        if isinstance(node, dict):
            if depth:
                for k in dict.__iter__(node):
                    if not isinstance(k, str):
                        # Such a key comes from Python (update_config, set_active_config,
                        # an A/B test, a transform's result): the file loaders refuse one
                        # on its line, as the file spells it. It has no file spelling and
                        # its author wrote Python, so it is named in Python's, in
                        # brackets (errors.python_key_segment): a[None], a[1.5], a[True],
                        # never a.None or a["1.5"], the paths of the text keys.
                        shown = python_key(k)
                        return _dotted(path) + python_key_segment(k), (
                            f"key {shown} ({type(k).__name__}) is not a string (quote it)"
                        )
                    if not (str.isascii(k) or utf8_encodable(k)):
                        return _dotted((*path, k)), f"key {_NOT_UNICODE}"
                marker = dict.get(node, REPLACE)
                if marker is not None and type(marker) is not bool:
                    # Any value was taken for true: "__replace__: no" (text to YAML 1.2)
                    # or "false" in quotes wiped the section it meant to merge into.
                    return _dotted((*path, REPLACE)), (
                        f"{REPLACE} takes true or false, got {_kind_of(marker)} (YAML reads "
                        "only true and false as booleans: not yes, no, on or off)"
                    )
            items: Any = dict.items(node)
        else:
            items = enumerate(children(node))
        for k, v in items:
            if type(v) is str and v.isascii():  # most leaves: no call
                continue
            if isinstance(v, dict | list | tuple):
                stack.append((v, (*path, k)))
                continue
            message = _leaf_problem(v, depth)
            if message is not None:
                return _dotted((*path, k)), message
    return None


def children(node: dict[Any, Any] | list[Any] | tuple[Any, ...]) -> Iterator[Any]:
    """The values a dict, list or tuple holds, read through its base type: a caller's
    subclass is judged by what it holds, never by its own ``__iter__``, ``items`` or
    ``values`` (one that raised made ``update_config`` raise instead of refusing, and
    one that lied had another value judged than the one stored)."""
    if isinstance(node, dict):
        return iter(dict.values(node))
    if isinstance(node, list):
        return list.__iter__(node)
    return tuple.__iter__(node)


# What a value given in Python may expand to when a container is in it more than once:
# the bound a YAML document's aliases obey (yamlio.MAX_NODES).
MAX_EXPANDED = 5_000_000


def _expanded_size(tree: Any) -> int:
    """How many values ``tree`` holds once every shared container is copied to each place
    it is in (containers and leaves), counting each container once (memoized, iterative);
    a container inside itself is left to the nesting limit, as it never ends."""
    sizes: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(tree, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        held = children(node)
        if done:
            total = 1
            for child in held:
                if isinstance(child, dict | list | tuple):
                    total += sizes.get(id(child), 0)
                else:
                    total += 1
            sizes[key] = min(total, MAX_EXPANDED + 1)
            continue
        if key in sizes:
            continue
        sizes[key] = 0  # on the way: a container met inside itself counts nothing more
        stack.append((node, True))
        for child in held:
            if isinstance(child, dict | list | tuple) and id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(tree)] if isinstance(tree, dict | list | tuple) else 1


def expands_too_far(tree: Any) -> bool:
    """Whether ``tree`` holds a container in so many places that copying it to each
    (what freezing, merging or writing it does) makes more than :data:`MAX_EXPANDED`
    values. One pass over the containers; counted only when one is met twice."""
    seen: set[int] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            return _expanded_size(tree) > MAX_EXPANDED
        seen.add(id(node))
        for child in children(node):
            if isinstance(child, dict | list | tuple):
                stack.append(child)
    return False


def _leaf_problem(node: Any, depth: bool) -> str | None:
    """Why :func:`tree_problem` refuses the scalar ``node``, else None."""
    if isinstance(node, str):
        # isascii() is the fast path: only other text is encoded to look for a lone
        # surrogate. A subclass of str is judged as the text it holds (str's own
        # methods: it may override isascii or encode); it was let through unchecked.
        if not depth or str.isascii(node) or utf8_encodable(node):
            return None
        return f"text {_NOT_UNICODE}"
    if node is None or type(node) is bool:
        return None
    if isinstance(node, int) and not isinstance(node, bool):
        # int's own value: a subclass may override the comparisons (and would pass).
        if not INT_MIN <= int.__index__(node) <= INT_MAX:
            return (
                f"integer out of range ({int.bit_length(node)} bits; "
                "configuration integers must fit in 64 bits)"
            )
        return None
    if not depth:
        return None
    if isinstance(node, float):
        if not math.isfinite(node):
            return f"{node!r} is not a finite number"
        return None
    if isinstance(node, _date | _time):
        # The dates and times TOML and YAML files hold (``2024-05-01``,
        # ``2024-05-01T09:00:00Z``, TOML's ``09:00:00``): served as the file gave them.
        return None
    return f"a {type(node).__name__} is not a configuration value ({VALUE_KINDS})"


# Half of a UTF-16 surrogate pair is not a character: JSON can spell one ("\\ud800") and
# Python gives a non-UTF-8 environment variable's bytes as such ("\\udcff"). Served, it
# breaks every writer of the value (UTF-8 output, JSON, logs, the audit log, Redis).
_NOT_UNICODE = (
    "is not valid Unicode (a lone surrogate such as \\ud800: half of a JSON \\u escape "
    "pair, or bytes that are not UTF-8 in an environment variable)"
)


def _kind_of(value: Any) -> str:
    if isinstance(value, str) and len(value) <= 20:
        return f"the text {value!r}"
    name = type(value).__name__
    return f"an {name}" if name[:1] in "aeiou" else f"a {name}"


def _dotted(path: tuple[Any, ...]) -> str:
    # A refused key may hold a lone surrogate: the path must be writable in the error.
    shown = format_key_path(path)
    return shown.encode("utf-8", "backslashreplace").decode("utf-8")


_LONG_INT = re.compile(r"(?<![\w.\"'])[-+]?\d[\d_]{99,}")


def _huge_int_problem(text: str, fmt: str, file: str) -> Problem:
    message = "integer out of range (configuration integers must fit in 64 bits)"
    # The literal int() refused has more digits than its limit: a shorter run of digits
    # earlier in the file (inside a string, say) is not it, and named the wrong key.
    limit = sys.get_int_max_str_digits()
    runs = list(_LONG_INT.finditer(text))
    refused = [r for r in runs if len(r.group().lstrip("+-").replace("_", "")) > limit]
    chosen = refused or runs
    if not chosen:
        return Problem(path="", message=message, file=file)
    m = chosen[0]
    line = text.count("\n", 0, m.start()) + 1
    # The deepest key defined on that line is the one holding the literal.
    index = _line_index(text, fmt)
    on_line = [p for p, n in index.items() if n == line]
    path = _dotted(max(on_line, key=len)) if on_line else ""
    return Problem(path=path, message=message, file=file, line=line)


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


class _Constant(ValueError):
    """NaN, Infinity or -Infinity in a JSON text (the decoder's hook has no place)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _refuse_constant(name: str) -> Any:
    raise _Constant(name)


def _parse_json(text: str, file: str) -> Any:
    # The standard library's decoder rather than msgspec's: only it can refuse a
    # duplicate key (msgspec keeps the last one silently, as YAML and TOML must not).
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant)
        return _from_typed_json(data, file)
    except _DuplicateKey as exc:
        path, line = _json_duplicate(text, exc.key)
        raise ConfigError(
            [
                Problem(
                    path=path,
                    message=f"duplicate key {exc.key!r} (JSON objects must not repeat a key)",
                    file=file,
                    line=line,
                )
            ]
        ) from None
    except _Constant as exc:
        path, line = _json_constant(text, exc.name)
        message = f"invalid JSON: {exc.name} is not JSON (JSON numbers are finite)"
        raise ConfigError([Problem(path=path, message=message, file=file, line=line)]) from None
    except json.JSONDecodeError as exc:
        from cfgcore._json_errors import json_syntax_problem  # file:line: key path: ...

        raise ConfigError([json_syntax_problem(exc, file)]) from None


def _json_constant(text: str, name: str) -> tuple[str, int | None]:
    """Key path and line of the first ``NaN``/``Infinity``/``-Infinity`` (``name``)
    written as a value in a JSON text: the error named the file only."""
    import yaml

    from cfgcore.yamlio import compose_nodes

    root = compose_nodes(text.replace("\t", " "))  # JSON is YAML flow syntax
    stack: list[tuple[Any, tuple[str, ...]]] = [(root, ())] if root is not None else []
    found: list[tuple[int, tuple[str, ...], int]] = []
    while stack:
        node, path = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            if not node.style and node.value == name:  # plain, not "NaN" quoted
                found.append((node.start_mark.index, path, node.start_mark.line + 1))
        elif isinstance(node, yaml.MappingNode):
            stack += [(v, (*path, str(k.value))) for k, v in node.value]
        elif isinstance(node, yaml.SequenceNode):
            stack += [(item, (*path, str(i))) for i, item in enumerate(node.value)]
    if not found:
        return "", None
    _, path, line = min(found)  # the first in the text, the one the decoder met
    return _dotted(path), line


def _json_duplicate(text: str, key: str) -> tuple[str, int | None]:
    """Key path and line of the second occurrence of ``key`` in one JSON object."""
    import yaml

    from cfgcore.yamlio import compose_nodes

    # JSON is YAML flow syntax: the composer keeps every key with its line
    root = compose_nodes(text.replace("\t", " "))
    if root is None:
        return key, None
    stack: list[tuple[Any, tuple[str, ...]]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                name = str(key_node.value)
                if name in seen and name == key:
                    return _dotted((*path, name)), key_node.start_mark.line + 1
                seen.add(name)
                stack.append((value_node, (*path, name)))
        elif isinstance(node, yaml.SequenceNode):
            stack += [(item, (*path, str(i))) for i, item in enumerate(node.value)]
    return key, None


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
        line = int(m.group(1)) if m else None
        found = _toml_conflict(text, str(exc), line, tomllib)
        if found is not None:
            path, line, why = found
            raise ConfigError([Problem(path=path, message=why, file=file, line=line)]) from None
        path = _toml_error_path(text, str(exc), line, tomllib)
        raise ConfigError(
            [Problem(path=path, message=f"invalid TOML: {exc}", file=file, line=line)]
        ) from None


# Where a TOML syntax error is (_toml_error_path): the text before its line is parsed
# again with a probe key, at most this many characters of it (tomllib reads about a
# megabyte a second; past them the error names its file and line only).
_TOML_REPARSED = 1_000_000
_TOML_PROBE = "\x00cfgcore-probe"  # (a key no one writes: it starts with NUL)
_TOML_ERROR_KEY = re.compile(r"^[ \t]*([A-Za-z0-9_\-\"'.]+(?:[ \t]+[A-Za-z0-9_\-\"'.]+)*)[ \t]*=")


def _toml_error_path(text: str, error: str, line: int | None, toml: Any) -> str:
    """The key path of where a TOML syntax error is: the table the statement on its
    line belongs to, then the key that line assigns when the error is past it
    (``[db]`` / ``port = = 3``: ``db.port``); "" where that cannot be told.

    The table is not guessed from the ``[header]`` lines above (one may sit inside a
    multi-line string or array): the text before the error's line is parsed again with
    a probe key appended, and the table the probe lands in is the one a statement there
    belongs to (an array of tables: its last, ``servers.2``). Where that text does not
    parse on its own (the error line continues a multi-line value), is longer than
    :data:`_TOML_REPARSED`, or the error line is a table header, no path is named.
    Never raises."""
    try:
        column = re.search(r"column (\d+)\)$", error)
        if line is None or column is None:
            return ""
        lines = text.split("\n")  # tomllib counts "\n" only (U+2028 may sit in a string)
        if line > len(lines):
            return ""
        before = "\n".join(lines[: line - 1])
        here = lines[line - 1]
        if len(before) > _TOML_REPARSED or here.lstrip(" \t").startswith("["):
            return ""
        try:
            probed = toml.loads(before + '\n"\\u0000cfgcore-probe" = 0\n')
        except Exception:  # the error's line is inside a value begun above it
            return ""
        table = _toml_probe_path(probed)
        if table is None:
            return ""
        segments: list[Any] = list(table)
        m = _TOML_ERROR_KEY.match(here)
        if m is not None and int(column.group(1)) > m.end():
            key = _toml_key(m.group(1) + " = 0", toml)
            if key is not None:
                segments += key
        from cfgcore._json_errors import shown_path

        return shown_path(segments)
    except Exception:  # (never expected: this only words an error being reported)
        return ""


def _toml_probe_path(tree: dict[str, Any]) -> tuple[Any, ...] | None:
    """Where in ``tree`` the probe key of :func:`_toml_error_path` is."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(tree, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            if _TOML_PROBE in node:
                return path
            stack += [(v, (*path, k)) for k, v in node.items() if isinstance(v, dict | list)]
        elif isinstance(node, list):
            stack += [(v, (*path, i)) for i, v in enumerate(node) if isinstance(v, dict)]
    return None


def _toml_header(line: str) -> str | None:
    """The name a table header line gives (``[ a.b ]``, ``[[a.b]]  # note``: ``a.b``),
    else None: what ``^\\s*\\[\\[?\\s*(.+?)\\s*\\]\\]?\\s*(#.*)?$`` captures, in linear
    time (that pattern tried every split of a line's runs of spaces: 17 s for a line of
    a multi-line string made of "[", 800 spaces, "]", 800 spaces and "x"; one of a few
    thousand held a reload for hours). ``line`` holds no line break.

    The leading "[" or "[[" and the white space after it are taken greedily as the
    pattern does; the name is then the shortest run after which the rest reads
    ``] or ]]``, white space, an optional comment; failing that, it begins earlier in
    that white space (``[ ]`` names " "), then after one "[" only."""
    rest = line.lstrip()
    if not rest.startswith("["):
        return None
    n = len(line)
    i = n - len(rest)
    # tail[p]: line[p:] is white space, then a comment or nothing; ok[e]: a name ending at
    # e is followed by what the pattern asks (white space, "]" or "]]", tail).
    tail = [False] * (n + 2)
    tail[n] = True
    for p in range(n - 1, -1, -1):
        c = line[p]
        tail[p] = c == "#" or (c.isspace() and tail[p + 1])
    ok = [False] * (n + 1)
    for e in range(n - 1, -1, -1):
        c = line[e]
        if c.isspace():
            ok[e] = ok[e + 1]
        elif c == "]":
            ok[e] = tail[e + 1] or (e + 1 < n and line[e + 1] == "]" and tail[e + 2])
    first_ok = [n + 1] * (n + 2)  # the smallest e >= x with ok[e] (n + 1: none)
    for x in range(n, -1, -1):
        first_ok[x] = x if ok[x] else first_ok[x + 1]
    for j in (i + 2, i + 1) if line.startswith("[[", i) else (i + 1,):
        k = j
        while k < n and line[k].isspace():
            k += 1
        for start in range(k, j - 1, -1):  # the name's first character, latest first
            if start < n and first_ok[start + 1] <= n:
                return line[start : first_ok[start + 1]]
    return None


_TOML_CONFLICTS = ("Cannot overwrite a value", "Cannot declare ", "Cannot mutate immutable")
_DUPLICATE = "duplicate key (TOML tables must not repeat a key)"


def _toml_conflict(
    text: str, error: str, line: int | None, toml: Any
) -> tuple[str, int, str] | None:
    """``(key path, line, message)`` for a TOML document that defines a key twice, from
    tomllib's error ("Cannot overwrite a value", "Cannot declare ('a',) twice", "Cannot
    mutate immutable namespace ('a',)"), or None for any other error. tomllib names
    neither the key nor, at the end of a document without a final newline, the line.

    The key path is that of the definition already there, read from what the lines
    above define (a "[fake]" line inside a multi-line string is no table): the key a line
    repeats, or the value, inline table or array a table header or dotted key would
    reach into (``a = 1`` then ``[a]``: ``a``; in an array of tables, its last table's
    index: ``srv.1.name``)."""
    if not error.startswith(_TOML_CONFLICTS):
        return None
    lines = text.split("\n")  # tomllib counts "\n" only (U+2028 may sit in a string)
    if line is None:  # "at end of document": the last line that holds something
        line = next((i + 1 for i in range(len(lines) - 1, -1, -1) if lines[i].strip()), None)
    if line is None or line > len(lines):
        return None
    table: list[str] = []
    for earlier in lines[: line - 1]:
        header = _toml_header(earlier)
        if header is not None:
            table = _toml_key(f"[{header}]", toml) or []
    here = lines[line - 1]
    header = _toml_header(here)
    if header is not None:  # [a.b] or [[a.b]]
        names = _toml_key(f"[{header}]", toml)
        aot = here.lstrip().startswith("[[")
        what = f"array of tables [[{header}]]" if aot else f"table [{header}]"
    else:
        key = _toml_key(f"{here.split('=', 1)[0]} = 0", toml)
        names = None if key is None else [*table, *key]
        # (as written, as a header is: '"a.b".c' is two keys, not three)
        written = here.split("=", 1)[0].strip()
        what = "key" if key is None or len(key) == 1 else f"dotted key {written}"
    if not names:
        return None
    try:
        node: Any = toml.loads("\n".join(lines[: line - 1]) + "\n")
    except Exception:
        return None
    shown: list[str] = []
    for name in names:
        if isinstance(node, list) and node and isinstance(node[-1], dict):
            shown.append(str(len(node) - 1))  # an array of tables: its last table
            node = node[-1]
        at = format_key_path(shown)
        if isinstance(node, list):  # an array written as a value: its tables are closed
            why = "TOML cannot extend it"
            return at, line, f"{what} reaches into an array written as a value: {why}"
        if not isinstance(node, dict):
            why = f"{at} is {_toml_kind(node)} already (TOML cannot make a value a table)"
            return at, line, f"{what} over a value: {why}"
        if name not in node:  # a table tomllib will not open: an inline one (a = {...})
            if not shown:
                return None
            return at, line, f"{what} extends an inline table: TOML cannot add keys to it"
        node = node[name]
        shown.append(name)
    at = format_key_path(shown)
    if what.startswith("table") and isinstance(node, dict):
        how, first = _toml_defined(lines[: line - 1], names, toml)
        if how == "inline":
            why = f"is an inline table (line {first}): TOML cannot add keys to it"
            return at, line, f"{what} over an inline table: {at} {why}"
        if how == "dotted":
            why = f"dotted keys define {at} (line {first}): TOML tables must not repeat a key"
            return at, line, f"{what} over a table: {why}"
        return at, line, _DUPLICATE
    if not what.startswith(("table", "array")):
        return at, line, _DUPLICATE
    if isinstance(node, dict):
        return at, line, f"{what} over a table: {at} is a table already"
    if isinstance(node, list) and what.startswith("table"):
        return at, line, f"{what} over an array: {at} is an array already"
    if isinstance(node, list):
        return at, line, f"{what} extends an array written as a value: TOML cannot extend it"
    why = f"{at} is {_toml_kind(node)} already (TOML cannot make a value a table)"
    return at, line, f"{what} over a value: {why}"


def _toml_defined(lines: list[str], names: list[str], toml: Any) -> tuple[str, int]:
    """How the lines above first define the table ``names`` (the one a header repeats):
    ``("inline", line)`` by ``key = {...}``, ``("dotted", line)`` by dotted keys inside
    it, ``("table", line)`` by a header (or ``("table", 0)`` when not found)."""
    table: list[str] = []
    for n, raw in enumerate(lines, 1):
        header = _toml_header(raw)
        if header is not None:
            table = _toml_key(f"[{header}]", toml) or []
            if table == names:
                return "table", n
            continue
        if "=" not in raw:
            continue
        left, right = raw.split("=", 1)
        key = _toml_key(f"{left} = 0", toml)
        if key is None:
            continue
        full = [*table, *key]
        if full == names and right.lstrip().startswith("{"):
            return "inline", n
        if len(full) > len(names) and full[: len(names)] == names and len(table) < len(names):
            return "dotted", n
    return "table", 0


def _toml_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a date or time"


def _toml_key(text: str, toml: Any) -> list[str] | None:
    """The key path of one TOML key (``a."b.c"``) or table header, parsed by tomllib."""
    try:
        node = toml.loads(text)
    except Exception:
        return None
    path: list[str] = []
    while isinstance(node, dict) and len(node) == 1:
        ((name, node),) = node.items()
        path.append(name)
    return path or None


# A JSON copy that keeps dates and times: what a follower of a published configuration
# writes to its state directory (config/published.py), so that the configuration it
# builds from that copy serves the same types as the publisher's (JSON has no date;
# written as text, ``get("d")`` returned "2024-05-01" instead of a date). Only a copy
# holding a date or time is wrapped, as ``{TYPED_JSON: 1, "tree": ...}``; in it, each
# date, datetime and time is ``{TYPED_JSON: ["date" | "datetime" | "time", ISO text]}``
# and a mapping of the tree that has the one key TYPED_JSON itself is
# ``{TYPED_JSON: ["mapping", {...}]}``. The key starts with a NUL character: no one
# types it into a configuration file by chance (any JSON file of exactly that wrapper
# form is read this way). A copy without any date or time (and no top-level key
# TYPED_JSON) is plain JSON, as earlier releases wrote and read it.
TYPED_JSON = "\x00cfgcore-typed"
_TEMPORAL: dict[str, Any] = {"date": _date, "datetime": _datetime, "time": _time}


def typed_json(tree: dict[str, Any]) -> bytes:
    """``tree`` as JSON for :func:`parse_text` to read back with its dates and times."""
    import msgspec

    found = False

    def enc(node: Any) -> Any:
        nonlocal found
        if isinstance(node, dict):
            out = {k: enc(v) for k, v in node.items()}
            return {TYPED_JSON: ["mapping", out]} if list(out) == [TYPED_JSON] else out
        if isinstance(node, list | tuple):
            return [enc(v) for v in node]
        if isinstance(node, _date | _time):
            found = True
            kind = "datetime" if isinstance(node, _datetime) else "date"
            kind = "time" if isinstance(node, _time) else kind
            return {TYPED_JSON: [kind, node.isoformat()]}
        if isinstance(node, str) and str.endswith(node, DELETE):
            # The text "__delete__" a served tree holds (written "\\__delete__"), as a
            # file must spell it: read back, the bare marker removed its key.
            return escape_markers(node)
        return node

    encoded = enc(tree)
    # (wrapped too: a tree whose own top level would read as a wrapper)
    wrap = found or TYPED_JSON in tree
    return msgspec.json.encode({TYPED_JSON: 1, "tree": encoded} if wrap else escape_markers(tree))


def _from_typed_json(data: Any, file: str) -> Any:
    """``data`` as parsed, or the tree a :func:`typed_json` copy holds."""
    if not (isinstance(data, dict) and len(data) == 2 and data.get(TYPED_JSON) == 1):
        return data
    if "tree" not in data:
        return data

    def dec(node: Any, path: tuple[Any, ...]) -> Any:
        if isinstance(node, dict):
            if list(node) == [TYPED_JSON]:
                tag = node[TYPED_JSON]
                if isinstance(tag, list) and len(tag) == 2 and tag[0] == "mapping":
                    if isinstance(tag[1], dict):
                        return {k: dec(v, (*path, k)) for k, v in tag[1].items()}
                elif isinstance(tag, list) and len(tag) == 2 and tag[0] in _TEMPORAL:
                    kind = _TEMPORAL[tag[0]]
                    try:
                        value = kind.fromisoformat(tag[1])
                    except (TypeError, ValueError):
                        value = None
                    if type(value) is kind:
                        return value
                raise ConfigError(
                    [Problem(_dotted(path), f"not a typed value: {tag!r:.80}", file=file)]
                )
            return {k: dec(v, (*path, k)) for k, v in node.items()}
        if isinstance(node, list):
            return [dec(v, (*path, i)) for i, v in enumerate(node)]
        return node

    return dec(data["tree"], ())
