"""YAML reading with the rules a config system needs.

* YAML 1.2 booleans: only ``true``/``false`` (any case form YAML 1.2 allows) are
  booleans. PyYAML follows YAML 1.1, where ``on``, ``off``, ``yes``, ``no``, ``y``
  and ``n`` are booleans too; that turns a variant called ``on`` or a country code
  ``NO`` into ``True``/``False`` behind the author's back.
* YAML 1.2 core numbers, for the same reason: YAML 1.1 reads ``12:30`` as 750
  (base 60), ``0644`` as 420 (octal) and ``1_000`` as 1000. Those stay strings, as does
  any decimal with a leading zero (a zip code); ``0o17``, ``0x1F`` and ``1e3`` are
  numbers.
* Duplicate keys are an error naming the file and both lines (PyYAML silently keeps
  the last one). A key a merge (``<<``) brings in is no duplicate: as the YAML merge
  key type says, the mapping's own key wins, and in ``<<: [*a, *b]`` the first
  mapping's. Two merge keys in one mapping are duplicates (write the list form).
* A value its tag's constructor refuses (``!!int abc``, a date ``2001-13-45``, an
  integer past Python's 4,300-digit conversion limit) is a :class:`ConfigError`
  naming the file, line and key path, without echoing the value (it may be a
  password); PyYAML raises a bare ``ValueError``, ``KeyError`` or ``AttributeError``.
* Merge keys (``<<``) copy their mappings' entries, so a chain of merges each adding
  a key grows quadratically with the file: they may copy at most
  :data:`MAX_MERGED` entries in one document.
* Syntax errors become :class:`cfgcore.errors.ConfigError` with file, line and the
  key path of where they are (``config.yaml:52: database.replicas.2: invalid YAML:
  did not find expected ',' or ']'``), found by reading the text's parse events again
  up to the error (at most :data:`_ERROR_PATH_EVENTS`).
* Nesting deeper than :data:`MAX_PARSE_DEPTH` is refused, naming the file, line and
  key path, in the one parse that builds the document, before the composer goes
  deeper: PyYAML's C-accelerated composer recurses on the C stack, so a file of a few
  hundred kilobytes of ``[[[[...`` would crash the process (a reload thread's
  included) instead of raising. This holds for documents of any size.
* Bytes are read as UTF-8, with or without a byte-order mark, as every text file
  cfgcore reads (:mod:`cfgcore._encoding`): UTF-16 and UTF-32, which YAML 1.2 allows,
  are refused saying to save the file as UTF-8.
"""

from __future__ import annotations

import datetime
import re
from collections import deque
from collections.abc import Sequence
from typing import Any

import yaml

from cfgcore._encoding import decode_text
from cfgcore.errors import ConfigError, Problem, format_key_path, printable

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BOOL_TAG = "tag:yaml.org,2002:bool"
_STR_TAG = "tag:yaml.org,2002:str"


class _TooDeep(Exception):
    """Raised from the composer: the collection at ``line`` nests past MAX_PARSE_DEPTH."""

    def __init__(self, line: int, path: list[str]) -> None:
        super().__init__(line)
        self.line = line
        self.path = path


class _DepthGuard(_BaseLoader):  # type: ignore[misc, valid-type]
    """A loader that refuses nesting past :data:`MAX_PARSE_DEPTH` while it composes.

    PyYAML's composer (C-accelerated: libyaml's) calls ``descend_resolver`` before it
    composes each node and ``ascend_resolver`` after, so the nodes being composed are
    counted in the one parse that builds the document: a collection with more than
    ``MAX_PARSE_DEPTH`` collections around it is refused when its first child is
    composed, before the composer's C recursion goes any deeper (the document used to
    be parsed twice, once for its events only). A collection at exactly that level
    with no child is found right after composing (:meth:`compose_guarded`)."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        # (parent node, index) of each node being composed, the root's first.
        self.cfgcore_composing: list[tuple[Any, Any]] = []
        # (parent, position, is a key, key path) of each node composed at the deepest
        # level allowed.
        self.cfgcore_edge: list[tuple[Any, int, bool, list[str]]] = []

    def descend_resolver(self, parent: Any, index: Any) -> None:
        stack = self.cfgcore_composing
        stack.append((parent, index))
        if len(stack) > MAX_PARSE_DEPTH:
            if len(stack) > MAX_PARSE_DEPTH + 1:
                # ``parent`` is a collection with MAX_PARSE_DEPTH collections around it.
                raise _TooDeep(parent.start_mark.line + 1, _segments(stack[1:-1]))  # once
            # This node has MAX_PARSE_DEPTH collections around it: too deep if it is one.
            # Its key path, for the error: the first few keys, all an error shows (a copy
            # of the whole stack per node made a wide list at this level quadratic), the
            # same for each child of one parent.
            edge = self.cfgcore_edge
            if edge and edge[-1][0] is parent:
                keys = edge[-1][3]
            else:
                keys = _segments(stack[1 : _DEEP_PATH_SHOWN + 2])
            edge.append((parent, len(parent.value), index is None, keys))
        if self.yaml_path_resolvers:  # none of cfgcore's; kept for subclasses
            super().descend_resolver(parent, index)

    def ascend_resolver(self) -> None:
        self.cfgcore_composing.pop()
        if self.yaml_path_resolvers:
            super().ascend_resolver()

    def compose_guarded(self) -> Any:
        """The document's node graph (None for an empty document); raises _TooDeep."""
        root = self.get_single_node()
        for parent, position, is_key, keys in self.cfgcore_edge:
            if isinstance(parent, yaml.SequenceNode):
                child = parent.value[position]
            else:
                child = parent.value[position][0 if is_key else 1]
            if isinstance(child, yaml.CollectionNode) and child.start_mark.index > (
                parent.start_mark.index
            ):  # (not an alias of a collection outside ``parent``)
                raise _TooDeep(child.start_mark.line + 1, keys)
        return root


def _segments(stack: list[tuple[Any, Any]]) -> list[str]:
    """The key path of the nodes being composed (the first few: all an error shows)."""
    out = []
    for parent, index in stack[: _DEEP_PATH_SHOWN + 1]:
        if isinstance(parent, yaml.SequenceNode):
            out.append(str(index))
        elif isinstance(index, yaml.ScalarNode):
            out.append(str(index.value)[:60])
        else:  # a key, or the value of a key that is a collection
            out.append("?")
    return out


class StrictLoader(_DepthGuard):
    """Safe loader with YAML 1.2 booleans and duplicate-key detection."""

    _merged = 0  # entries copied by merge keys so far (see flatten_mapping)

    def flatten_mapping(self, node: Any) -> None:
        """PyYAML's merge-key expansion (explicit keys after merged ones; in a
        sequence of merged mappings the first one's entries last), with a bound on
        the entries all merges of the document copy. The node's own entries are kept
        as ``cfgcore_own``: only they can be duplicates (a node is flattened once,
        also when it was first a merge source)."""
        if hasattr(node, "cfgcore_own"):
            return
        merged: list[Any] = []
        own: list[Any] = []
        merges = False
        first_merge = 0  # the line of the mapping's merge key
        for key_node, value_node in node.value:
            if key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.tag == "tag:yaml.org,2002:value":
                    key_node.tag = "tag:yaml.org,2002:str"
                own.append((key_node, value_node))
                continue
            line = key_node.start_mark.line + 1
            if first_merge:
                # Two "<<" keys: a duplicate key like any other (PyYAML merged both, the
                # later one's entries winning; other readers keep one or refuse).
                raise _DuplicateKey("<<", first_merge, line, key_node, merge=True)
            first_merge = line
            merges = True
            if isinstance(value_node, yaml.MappingNode):
                sources = [value_node]
            elif isinstance(value_node, yaml.SequenceNode):
                sources = list(reversed(value_node.value))
            else:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "expected a mapping or list of mappings for merging, but found "
                    f"{value_node.id}",
                    value_node.start_mark,
                )
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"expected a mapping for merging, but found {source.id}",
                        source.start_mark,
                    )
                if getattr(source, "cfgcore_merging", False):
                    # "y: &y {<<: *y}": flattening it again recursed until
                    # RecursionError, reported as "nested too deeply" with no line.
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        "a mapping cannot merge ('<<') itself",
                        key_node.start_mark,
                    )
                if source.start_mark.index < node.start_mark.index < source.end_mark.index:
                    # "a: &a {x: 1, b: {<<: *a}}": b merged the mapping it is inside, so
                    # it contained itself, refused as "expands to more than 5,000,000
                    # values" with no line. (An alias names a finished node or one it
                    # is inside, so being inside is what the text says.)
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        "a mapping cannot merge ('<<') a mapping it is inside",
                        key_node.start_mark,
                    )
                node.cfgcore_merging = True
                try:
                    self.flatten_mapping(source)
                finally:
                    node.cfgcore_merging = False
                self._merged += len(source.value)
                if self._merged > MAX_MERGED:
                    raise _TooMuchMerged(key_node)
                merged.extend(source.value)
        node.cfgcore_own = own
        if merges:
            node.value = merged + own

    # The document's LineMarks while one is wanted (load_yaml's ``marks``), else None.
    cfgcore_marks: LineMarks | None = None
    # Whether a key that is not text is refused (load_yaml's ``text_keys``).
    cfgcore_text_keys = False
    # Whether an integer key written in decimal is read as that text (load_yaml's
    # ``decimal_keys``).
    cfgcore_decimal_keys = False

    def _as_text(self, key_node: Any, key: Any) -> Any:
        """``key`` as the text it is written as where it is an integer written in
        decimal and ``decimal_keys`` is on (``1`` -> ``"1"``; ``0x1F``, ``+1`` or
        ``true`` are not), else ``key``."""
        if (
            self.cfgcore_decimal_keys
            and type(key) is int
            and isinstance(key_node, yaml.ScalarNode)
            and key_node.value == str(key)
        ):
            return key_node.value
        return key

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        decimal = False  # an integer key read as its text
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            own = node.cfgcore_own
            convert = self.cfgcore_decimal_keys  # (a call per key only when asked)
            for key_node, _ in node.value[: len(node.value) - len(own)]:  # merged ('<<')
                key = self.construct_object(key_node, deep=True)
                if convert:
                    text = self._as_text(key_node, key)
                    decimal = decimal or text is not key
                    key = text
                self._text_key(node, key_node, key)
            seen: dict[Any, int] = {}
            nodes: dict[Any, Any] = {}  # each key's node, for a duplicate's message
            not_text = None  # refused after the duplicates ("1:" and "true:" are one key)
            for key_node, _ in own:
                key = self.construct_object(key_node, deep=True)
                if convert and type(key) is int:
                    text = self._as_text(key_node, key)
                    decimal = decimal or text is not key
                    key = text
                if type(key) is not str:
                    self._text_key(node, key_node, key, text=False)  # a list: now
                    if not_text is None:
                        not_text = key_node
                first = seen.get(key)
                line = key_node.start_mark.line + 1
                if first is not None:
                    other = next(k for k in seen if k == key)
                    raise _DuplicateKey(
                        key, first, line, key_node, other, first_node=nodes.get(key)
                    )
                seen[key] = line
                if convert:
                    nodes[key] = key_node
            if not_text is not None and self.cfgcore_text_keys:
                raise _NotTextKey(node, not_text)
            node.cfgcore_lines = seen  # each own key's line: the marks keep it
        mapping = super().construct_mapping(node, deep=deep)
        if not decimal:
            return mapping
        # The integer keys written in decimal, as their text: in the order read, so a
        # mapping's own key still wins over a merged one (and, in "<<: [*a, *b]", the
        # first mapping's over the second's).
        out: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            out[self._as_text(key_node, key)] = mapping[key]
        return out

    def _text_key(self, mapping: Any, key_node: Any, key: Any, text: bool = True) -> None:
        """Refuse ``key`` of ``mapping`` where it is not text and text is wanted (and
        ``text``), or where it cannot be a key at all (a list or mapping: PyYAML said
        "found unhashable key", at no key path)."""
        if type(key) is str:
            return
        if not (text and self.cfgcore_text_keys):
            try:
                hash(key)
                return
            except TypeError:
                pass
        raise _NotTextKey(mapping, key_node)

    def construct_yaml_map(self, node: Any) -> Any:
        data: dict[Any, Any] = {}
        yield data
        data.update(self.construct_mapping(node))
        if self.cfgcore_marks is not None:
            lines = node.cfgcore_lines
            # Without merged keys the mapping's keys are its own, in order: their lines
            # in that order take a third of the memory of the key -> line dict.
            if len(lines) == len(data):
                lines = tuple(lines.values())
            self.cfgcore_marks.lines[id(data)] = lines

    def construct_yaml_seq(self, node: Any) -> Any:
        data: list[Any] = []
        yield data
        data.extend(self.construct_sequence(node))
        if self.cfgcore_marks is not None:
            self.cfgcore_marks.lines[id(data)] = [item.start_mark.line + 1 for item in node.value]


StrictLoader.add_constructor("tag:yaml.org,2002:map", StrictLoader.construct_yaml_map)
StrictLoader.add_constructor("tag:yaml.org,2002:seq", StrictLoader.construct_yaml_seq)


class LineMarks:
    """Where each key and list item of a document :func:`load_yaml` read is: its 1-based
    line, kept from the one parse that built the document.

    An error found after loading (a value out of range, a transformation step, a
    validation finding) names the line of its key path; the line used to be found by
    composing the whole text again, a second parse of the file for every build that
    failed (tens of seconds for a file of a few megabytes). Looking a path up here
    follows the document from its root, one step per key.

    >>> marks = LineMarks()
    >>> _ = load_yaml("a:\\n  b: [1, 2]\\n", marks=marks)
    >>> marks.line_of(("a", "b", "1"))
    2
    """

    __slots__ = ("lines", "root", "_positions")

    def __init__(self) -> None:
        # id of each mapping and list of ``root`` -> its keys' lines (in key order, or
        # a key -> line dict where a merge brought keys in) or its items' lines (a
        # list). The ids stay valid while ``root`` holds the containers.
        self.lines: dict[int, Any] = {}
        self.root: Any = None
        # id of a large mapping -> key -> position, built on its first lookup: finding
        # each of 100,000 keys by scanning the key list took minutes.
        self._positions: dict[int, dict[Any, int]] = {}

    def _position(self, node: dict[Any, Any], key: Any) -> int:
        """``key``'s position among ``node``'s keys."""
        if len(node) <= 32:
            return list(node).index(key)
        positions = self._positions.get(id(node))
        if positions is None:
            positions = self._positions[id(node)] = {k: i for i, k in enumerate(node)}
        return positions[key]

    def line_of(self, path: Sequence[Any]) -> int | None:
        """The line of ``path`` (keys as text, list indexes as digits), or of its longest
        prefix that has one; None when not even the first key is found."""
        node, found = self.root, None
        for seg in path:
            lines = self.lines.get(id(node))
            if lines is None:
                break
            if isinstance(node, dict):
                key = _key_named(node, seg)
                if key is _NO_KEY:
                    break
                if isinstance(lines, tuple):  # the lines of the keys in order
                    line = lines[self._position(node, key)]
                else:
                    line = lines.get(key)  # None for a key a merge ('<<') brought in
            elif isinstance(node, list):
                index = _index_named(seg, len(node))
                if index is None:
                    break
                key, line = index, lines[index]
            else:
                break
            if line is not None:
                found = line
            node = node[key]
        return found


_NO_KEY: Any = object()


def _key_named(mapping: dict[Any, Any], seg: Any) -> Any:
    """The key of ``mapping`` a path segment names: itself, or a key that is not text
    (``1:``, ``true:``) spelt as the segment's text (refused later, with its line)."""
    try:
        if seg in mapping:
            return seg
    except TypeError:
        return _NO_KEY
    text = str(seg)
    return next((k for k in mapping if str(k) == text), _NO_KEY)


def _index_named(seg: Any, size: int) -> int | None:
    if type(seg) is int:
        index = seg
    elif isinstance(seg, str) and seg.isascii() and seg.isdigit():
        index = int(seg)
    else:
        return None
    return index if 0 <= index < size else None


_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"

_VALUE_TAG = "tag:yaml.org,2002:value"
_MERGE_TAG = "tag:yaml.org,2002:merge"

# YAML 1.1's "=" (the value type) is text in YAML 1.2: PyYAML has no constructor for it,
# so a plain "separator: =" was refused as invalid YAML.
StrictLoader.yaml_implicit_resolvers = {
    first: [
        (tag, rx)
        for tag, rx in resolvers
        if tag not in (_BOOL_TAG, _INT_TAG, _FLOAT_TAG, _VALUE_TAG)
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# "<<" keeps its resolver, for merge keys (flatten_mapping takes every merge key out
# before its mapping is built); any other "<<" (a value, an item) is text.
StrictLoader.add_constructor(_MERGE_TAG, lambda loader, node: loader.construct_scalar(node))
StrictLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
# YAML 1.2 core numbers. YAML 1.1's other forms are text: a time "12:30" is not the
# sexagesimal 750, "1_000" not 1000, "0b101" not 5, and a zip code or file mode with a
# leading zero ("01234", "0644") is not an octal number (nor, as 1.2 would read it, a
# decimal that loses its zero): the same rule as the type_conversion transform.
# "0o17" and "0x1F" are octal and hex; "1e3" is a float.
StrictLoader.add_implicit_resolver(
    _FLOAT_TAG,
    re.compile(
        r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"
        r"|^[-+]?[0-9]+[eE][-+]?[0-9]+$"
        r"|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"
    ),
    list("-+0123456789."),
)
StrictLoader.add_implicit_resolver(
    _INT_TAG,
    re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$|^0o[0-7]+$|^0x[0-9a-fA-F]+$"),
    list("-+0123456789"),
)


def _guarded(constructor: Any) -> Any:
    """``constructor`` raising :class:`_Unconstructable` (with the node, for the error's
    line and key path) where PyYAML's raises a bare ValueError, KeyError..."""

    def construct(loader: Any, node: Any) -> Any:
        try:
            return constructor(loader, node)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise _Unconstructable(node, exc) from None

    return construct


# The scalar ones only: wrapping construct_object instead added a stack frame to every
# level of nesting, and a document PyYAML read 300 levels deep hit the recursion limit.
for _tag in ("null", "bool", "int", "float", "binary", "timestamp", "str"):
    _tag = f"tag:yaml.org,2002:{_tag}"
    StrictLoader.add_constructor(_tag, _guarded(_BaseLoader.yaml_constructors[_tag]))


class StrictDumper(yaml.SafeDumper):
    """Safe dumper whose output reads back as written, under :class:`StrictLoader` and
    under a YAML 1.1 reader alike: a string either would read as a number or a boolean
    (``1e3`` and ``0o17`` for YAML 1.2, ``0644`` and ``on`` for YAML 1.1) is quoted.
    PyYAML's own dumper quotes by YAML 1.1 only, so ``1e3`` written as a plain string
    came back from this module's loader as the float 1000.0."""


StrictDumper.yaml_implicit_resolvers = {
    first: list(resolvers) for first, resolvers in yaml.SafeDumper.yaml_implicit_resolvers.items()
}
for _first, _resolvers in StrictLoader.yaml_implicit_resolvers.items():
    for _tag, _rx in _resolvers:
        if (_tag, _rx) not in StrictDumper.yaml_implicit_resolvers.get(_first, []):
            StrictDumper.yaml_implicit_resolvers.setdefault(_first, []).append((_tag, _rx))


# YAML 1.1 line breaks beyond \n and \r: with ``allow_unicode`` PyYAML's emitter wrote
# them raw inside a single-quoted or plain scalar, where a reader folds a break (a NEL
# read back as a space: "a\x85b" became "a b"). A double-quoted scalar escapes them.
_UNICODE_BREAKS = re.compile("[\x85\u2028\u2029]")


def _represent_str(dumper: Any, data: str) -> Any:
    if _UNICODE_BREAKS.search(data):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')
    return dumper.represent_str(data)


StrictDumper.add_representer(str, _represent_str)


def _represent_time(dumper: Any, data: datetime.time) -> Any:
    # A TOML file's local time (``start = 09:00:00``) is a configuration value
    # (config.files.tree_problem), but YAML has no time type and PyYAML's dumper raised
    # RepresenterError on it: ``cfgcore show`` of such a configuration failed. It is
    # written as the ISO 8601 text JSON output gives (quoted where a reader would take
    # it for a number: ``10:00:00`` is base 60 to YAML 1.1).
    return dumper.represent_str(data.isoformat())


StrictDumper.add_representer(datetime.time, _represent_time)


#: Who emits cfgcore's YAML: :class:`StrictDumper` (its own version: raise it whenever a
#: change to the dumper or :func:`dump_yaml` makes any data's text differ) over this
#: PyYAML. A file store records it beside the texts of a file it wrote, whose texts a
#: later process reuses only under the same emitter (``snapshot.YamlEntries.seed``).
EMITTER = f"cfgcore-yaml/1 PyYAML/{getattr(yaml, '__version__', '?')}"


def dump_yaml(data: Any, **options: Any) -> str:
    """``data`` as YAML text (``yaml.safe_dump``'s options) that :func:`load_yaml` reads
    back equal: see :class:`StrictDumper`."""
    return str(yaml.dump(data, Dumper=StrictDumper, **options))


class _DuplicateKey(Exception):
    def __init__(
        self,
        key: Any,
        first: int,
        line: int,
        node: Any,
        other: Any = None,
        merge: bool = False,
        first_node: Any = None,
    ) -> None:
        super().__init__(key)
        self.key, self.first, self.line, self.node = key, first, line, node
        self.other = key if other is None else other  # the earlier key it equals
        self.merge = merge  # a second merge key ("<<")
        self.first_node = first_node  # the earlier key's node (with decimal_keys)


def _duplicate_message(dup: _DuplicateKey) -> str:
    """A repeated key; or two keys YAML reads as different values that are one key once
    read (1, 1.0 and true; their mapping keeps one of them; with ``decimal_keys``, 1
    and "1")."""
    if dup.merge:
        return (
            f"duplicate merge key (first defined on line {dup.first}): merge several "
            "mappings with one key, '<<: [*a, *b]' (the first one's entries win)"
        )
    tags = {getattr(n, "tag", _STR_TAG) for n in (dup.node, dup.first_node) if n is not None}
    if type(dup.key) is str and len(tags) > 1:
        # an integer key read as its text, and the text key it spells
        return (
            f"key {_key_spelling(dup.node)} is the same key as the one on line {dup.first} "
            "(an integer key is read as its digits, the text key of the same digits)"
        )
    if type(dup.other) is type(dup.key):
        return f"duplicate key (first defined on line {dup.first})"
    # The keys as YAML spells them (true, not Python's True): the second as written.
    other = str(dup.other).lower() if type(dup.other) is bool else dup.other
    return (
        f"key {_key_spelling(dup.node)} is the same key as {other} on line {dup.first} "
        "once read (equal numbers and booleans are one key): quote them to keep both as text"
    )


class _Unconstructable(Exception):
    """A node whose tag's constructor raised something other than a YAMLError."""

    def __init__(self, node: Any, exc: BaseException) -> None:
        super().__init__(type(exc).__name__)
        self.node, self.exc = node, exc


class _NotTextKey(Exception):
    """A key of the mapping ``node`` that is not text (``key_node``)."""

    def __init__(self, node: Any, key_node: Any) -> None:
        super().__init__("key")
        self.node, self.key_node = node, key_node


# A key that is not text is shown as the file spells it up to this many characters
# (a list used as a key may hold thousands of items).
_KEY_SHOWN = 60


def _key_spelling(node: Any) -> str:
    """``node`` (a key) as YAML text on one line: a scalar as the file writes it
    (``null``, ``~``, ``1e3``), a list or mapping in flow style (``[1, 2]``,
    ``{b: 1}``), cut at :data:`_KEY_SHOWN` characters with "…"."""
    out: list[str] = []
    size = 0
    stack: list[Any] = [node]  # nodes and the punctuation between them, last first
    while stack and size <= _KEY_SHOWN:
        item = stack.pop()
        if isinstance(item, yaml.SequenceNode | yaml.MappingNode):
            # Each item takes at least a character: more than _KEY_SHOWN are not shown.
            shown = item.value[: _KEY_SHOWN + 1]
            parts: list[Any] = []
            for i, child in enumerate(shown):
                if i:
                    parts.append(", ")
                if isinstance(item, yaml.MappingNode):
                    parts += [child[0], ": ", child[1]]
                else:
                    parts.append(child)
            brackets = "[]" if isinstance(item, yaml.SequenceNode) else "{}"
            stack.extend(reversed([brackets[0], *parts, brackets[1]]))
            continue
        piece = item if isinstance(item, str) else str(getattr(item, "value", ""))
        out.append(piece)
        size += len(piece)
    text = "".join(out)
    if stack or len(text) > _KEY_SHOWN:
        text = text[: _KEY_SHOWN - 1] + "…"
    return printable(text)


def _not_text_key_problem(root: Any, bad: _NotTextKey, file: str | None) -> Problem:
    key_node = bad.key_node
    spelt = _key_spelling(key_node)
    if isinstance(key_node, yaml.SequenceNode):
        what = "a list"
    elif isinstance(key_node, yaml.MappingNode):
        what = "a mapping"
    else:
        what = _KEY_WORDS.get(key_node.tag) or _TAG_WORDS.get(key_node.tag) or "not text"
    return Problem(
        path=format_key_path((*_node_segments(root, bad.node), spelt)),
        message=f"key {spelt} is {what}, not a string (quote it)",
        file=file,
        line=key_node.start_mark.line + 1,
    )


class _TooMuchMerged(Exception):
    def __init__(self, node: Any) -> None:
        super().__init__("merge")
        self.node = node


MAX_NODES = 5_000_000  # after alias expansion; see _check_expansion
# Characters of keys and strings after alias expansion (as large as the biggest
# configuration file cfgcore reads, runtime.atomicio.MAX_READ_BYTES).
MAX_EXPANDED_CHARS = 64 * 1024 * 1024
# Entries that merge keys may copy in one document: hundreds of `<<: *defaults` of
# hundreds of keys each fit; a 200 KB chain of merges each adding one key copied
# 18 million entries (30 s of CPU, 700 MB), and the cost grows with the square of
# the file's length.
MAX_MERGED = 1_000_000

# Far above what any consumer accepts (configuration trees: 100 levels, snapshots:
# 100, conditions: 32), so their own errors, with key paths, still report everything
# up to here; and far below what the composer's C recursion survives on a thread's
# stack.
MAX_PARSE_DEPTH = 1_000
# With libyaml, the depth is counted while the document is composed (_DepthGuard);
# the pure-Python composer recurses in Python, so without libyaml the parse events are
# read first (_check_depth), as they were in every case before.
_ONE_PASS = hasattr(yaml, "CSafeLoader")
# A document whose structural characters (see _depth_bound) number at most this
# cannot nest deeper than that: parsed directly, without the event scan.
_SCAN_ABOVE = 2_000


def _depth_bound(data: str | bytes) -> int:
    """An upper bound on the nesting depth of the YAML text ``data``.

    Every collection starts with a character of its own: a flow one with ``[`` or
    ``{``, a block sequence with ``-``, an explicit key with ``?``, a flow-sequence
    pair with ``:``, and a block mapping at a line's start (or after one of those).
    """
    if isinstance(data, bytes):
        return sum(data.count(c) for c in (b"[", b"{", b"-", b"?", b":", b"\n")) + 1
    return sum(data.count(c) for c in "[{-?:\n") + 1


def _check_depth(data: str, file: str | None) -> None:
    """Refuse nesting deeper than MAX_PARSE_DEPTH, reading parse events (iterative),
    naming the key path to where it goes too deep (followed from the same events)."""
    if _depth_bound(data) <= _SCAN_ABOVE:
        return
    try:
        deep = _first_too_deep(yaml.parse(data, Loader=_BaseLoader))
    except yaml.MarkedYAMLError as exc:
        # The libyaml in PyYAML 6.0.4's wheels refuses nesting past 1,000 levels itself,
        # scanning ahead of the events this loop reads.
        if exc.problem != "exceeded maximum nesting depth" or exc.problem_mark is None:
            raise
        mark = exc.problem_mark
        raise _too_deep_at(file, mark.line + 1, _deep_path(data, mark.index, [])) from None
    if deep is not None:
        raise _too_deep_at(file, deep[0], deep[1])


def _first_too_deep(
    events: Any, frames: list[list[Any]] | None = None
) -> tuple[int, list[str]] | None:
    """The line and key path of the first collection nested past MAX_PARSE_DEPTH in the
    parse ``events``, or None when there is none (stops reading there). ``frames`` holds
    the collections open where reading stopped (also when ``events`` raised)."""
    # One frame per open collection: [its key or index in its parent, is a mapping,
    # children seen, the last key seen]. A mapping's children alternate key, value.
    frames = [] if frames is None else frames
    for event in events:
        if isinstance(event, yaml.ScalarEvent | yaml.AliasEvent | yaml.CollectionStartEvent):
            segment = None
            if frames:
                frame = frames[-1]
                seen = frame[2]
                frame[2] += 1
                if not frame[1]:
                    segment = str(seen)
                elif seen % 2 == 0:  # a key: a complex one ("? [...]") shows as "?"
                    frame[3] = event.value if isinstance(event, yaml.ScalarEvent) else "?"
                    segment = "?"
                else:
                    segment = frame[3]
            if isinstance(event, yaml.CollectionStartEvent):
                frames.append([segment, isinstance(event, yaml.MappingStartEvent), 0, None])
                if len(frames) > MAX_PARSE_DEPTH:
                    return event.start_mark.line + 1, _frame_keys(frames)
        elif isinstance(event, yaml.CollectionEndEvent):
            frames.pop()
    return None


def _frame_keys(frames: list[list[Any]]) -> list[str]:
    """The key path of the open collections (the first few: all an error shows)."""
    return [str(f[0])[:60] for f in frames[1 : _DEEP_PATH_SHOWN + 2]]


def _deep_path(data: str, at: int, known: list[str]) -> list[str]:
    """The key path to where ``data`` nests past MAX_PARSE_DEPTH when libyaml refused it
    first, at character ``at``: libyaml (PyYAML 6.0.4's wheels) stops at 1,000 levels
    while it scans ahead of the events a reader has seen. The text before ``at`` nests
    no deeper than libyaml allows, so its events, read up to where that text ends, open
    every collection around the place. ``known`` is the path composed so far: the
    path named is never shorter."""
    frames: list[list[Any]] = []
    try:
        _first_too_deep(yaml.parse(data[:at], Loader=_BaseLoader), frames)
    except yaml.YAMLError:
        pass  # the text ends inside the collections: the frames open there are wanted
    keys = _frame_keys(frames)
    if len(keys) < len(known):  # (not expected; never name less than was composed)
        return [*known, "…"]
    return keys


# How many keys of a too-deep path are named (then "…"): where it starts going deep.
_DEEP_PATH_SHOWN = 8


def _too_deep_at(file: str | None, line: int, keys: list[str]) -> ConfigError:
    message = f"nested more than {MAX_PARSE_DEPTH:,} levels deep"
    path = format_key_path(keys[:_DEEP_PATH_SHOWN]) + (".…" if len(keys) > _DEEP_PATH_SHOWN else "")
    return ConfigError([Problem(path=path, message=message, file=file, line=line)], kind="limits")


def _check_expansion(doc: Any, file: str | None, size: int) -> None:
    """Refuse documents whose aliases expand to an enormous tree ("billion laughs").

    PyYAML shares an aliased node instead of copying it, so loading is cheap, but
    every consumer that walks the result (decoding, merging, validation) would
    visit each shared subtree once per reference, and every one that writes it out
    (``cfgcore show``/``get``, JSON, a published copy) writes each reference in full:
    a 1 MB string aliased 2,000 times is 2 GB of output from a 1 MB file. So the
    values are counted (at most :data:`MAX_NODES`) and so are the characters of
    the text in keys and strings, at most :data:`MAX_EXPANDED_CHARS` or the input's
    own ``size`` if larger (a document without aliases never holds more text than
    it is made of).
    """
    budget = MAX_NODES
    chars = max(MAX_EXPANDED_CHARS, size)
    stack = [doc]
    while stack:
        node = stack.pop()
        budget -= 1
        if isinstance(node, str):
            chars -= len(node)
        elif isinstance(node, dict):
            stack.extend(node.values())
            chars -= sum(len(k) for k in node if isinstance(k, str))
        elif isinstance(node, list):
            stack.extend(node)
        if budget < 0 or chars < 0:
            what = (
                f"more than {MAX_NODES:,} values"
                if budget < 0
                else f"more than {max(MAX_EXPANDED_CHARS, size):,} characters of text"
            )
            raise ConfigError(
                [
                    Problem(
                        path="",
                        message=f"document expands to {what} (nested YAML aliases?)",
                        file=file,
                    )
                ],
                kind="limits",
            )


def compose_nodes(text: str) -> Any:
    """The node graph of ``text`` (keys and values with their line marks), or None when
    the text is not YAML (nor JSON, which is YAML flow syntax) or nests deeper than
    :data:`MAX_PARSE_DEPTH`. For reporting where a problem is, never raises."""
    loader = None
    try:
        if not _ONE_PASS:
            _check_depth(text, None)
        loader = _DepthGuard(text)
        return loader.compose_guarded()
    except (yaml.YAMLError, ConfigError, _TooDeep):
        return None
    finally:
        if loader is not None:
            loader.dispose()


def load_yaml(
    data: str | bytes,
    *,
    file: str | None = None,
    marks: LineMarks | None = None,
    text_keys: bool = False,
    decimal_keys: bool = False,
) -> Any:
    """Parse one YAML document with cfgcore's rules; raise ConfigError on bad input.

    With ``marks`` (an empty :class:`LineMarks`), the line of each key and list item
    is kept there as the document is built, for errors found later. With
    ``text_keys``, a key that is not text (``1.5:``, ``null:``, ``true:``) is refused
    on its line, named as the file spells it; a list or mapping used as a key
    (``? [1]``) is refused that way in every document. With ``decimal_keys`` too, an
    integer key written in decimal (``1:``, ``-2:``) is read as that text (``"1"``),
    the same key as a quoted ``"1":`` beside it (refused as a duplicate); other keys
    that are not text (``0x1F:``, ``+1:``, ``1.5:``, ``null:``) are still refused.

    >>> load_yaml("variant: on\\nenabled: true")
    {'variant': 'on', 'enabled': True}
    """
    data = decode_text(data, file)  # the one encoding policy (cfgcore._encoding)
    loader = root = None
    try:
        if not _ONE_PASS:
            _check_depth(data, file)
        loader = StrictLoader(data)
        loader.cfgcore_marks = marks
        loader.cfgcore_text_keys = text_keys
        loader.cfgcore_decimal_keys = decimal_keys
        root = loader.compose_guarded()
        doc = loader.construct_document(root) if root is not None else None
    except _TooDeep as deep:
        raise _too_deep_at(file, deep.line, deep.path) from None
    except _Unconstructable as bad:
        raise ConfigError([_unconstructable_problem(root, bad, file)], kind=_kind(bad)) from None
    except RecursionError:  # complex keys ("? {...}") are built recursively
        message = "nested too deeply to read (mappings used as keys?)"
        raise ConfigError([Problem(path="", message=message, file=file)], kind="limits") from None
    except _NotTextKey as bad:
        raise ConfigError([_not_text_key_problem(root, bad, file)]) from None
    except _TooMuchMerged as merge:
        raise ConfigError(
            [
                Problem(
                    path=_node_path(root, merge.node),
                    message=f"merge keys ('<<') copy more than {MAX_MERGED:,} entries "
                    "(a chain of merges?)",
                    file=file,
                    line=merge.node.start_mark.line + 1,
                )
            ],
            kind="limits",
        ) from None
    except _DuplicateKey as dup:
        raise ConfigError(
            [
                Problem(
                    # the mapping's key path and the key: "svc.y", not "y"
                    path=format_key_path((*_node_segments(root, dup.node), str(dup.key))),
                    message=_duplicate_message(dup),
                    file=file,
                    line=dup.line,
                )
            ]
        ) from None
    except yaml.reader.ReaderError as exc:
        # A character YAML does not allow (NUL, another control character, U+FFFE):
        # PyYAML's text says "position 8 of <unicode string>" on a second line.
        line = None
        if isinstance(data, str) and isinstance(exc.position, int):
            line = data.count("\n", 0, exc.position) + 1
        character = exc.character if isinstance(exc.character, int) else ord(exc.character)
        message = f"invalid YAML: character U+{character:04X} is not allowed ({exc.reason})"
        raise ConfigError([Problem(path="", message=message, file=file, line=line)]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        if getattr(exc, "problem", None) == _SURROGATE_ESCAPE:
            joined = _join_escaped_pairs(data)
            if joined is not None:  # read again, each pair written as the one character
                return load_yaml(
                    joined, file=file, marks=marks, text_keys=text_keys, decimal_keys=decimal_keys
                )
        if getattr(exc, "problem", None) == "exceeded maximum nesting depth" and mark:
            # The libyaml in PyYAML 6.0.4's wheels refuses nesting past 1,000 levels
            # itself, before the composer asks for the collection that goes deeper.
            assert loader is not None
            keys = _deep_path(data, mark.index, _segments(loader.cfgcore_composing[1:]))
            raise _too_deep_at(file, mark.line + 1, keys) from None
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        if problem in _LONG_KEY_PROBLEMS and mark is not None and mark.column >= _MAX_PLAIN_KEY:
            # YAML reads "key:" as a key only within 1,024 characters: a longer key is
            # seen as text that never finds its ':'.
            problem += (
                f" (a key longer than {_MAX_PLAIN_KEY:,} characters? YAML reads a longer "
                "one only as an explicit key: '? <key>' on one line, ': <value>' on the next)"
            )
        if problem == _SURROGATE_ESCAPE:
            problem += " (a lone UTF-16 surrogate \\uD800-\\uDFFF, or past U+10FFFF: no character)"
        path = _error_path(data, mark) if mark is not None else ""
        raise ConfigError(
            [Problem(path=path, message=f"invalid YAML: {problem}", file=file, line=line)]
        ) from None
    finally:
        if loader is not None:
            loader.dispose()
    _check_expansion(doc, file, len(data))
    if marks is not None:
        marks.root = doc
    return doc


# What libyaml says of a "\uD83D" escape: a UTF-16 surrogate, no character on its own.
_SURROGATE_ESCAPE = "found invalid Unicode character escape code"
_ESCAPE = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|U[0-9A-Fa-f]{8}|x[0-9A-Fa-f]{2}|.)", re.DOTALL)


def _join_escaped_pairs(data: str) -> str | None:
    r"""``data`` with each escaped UTF-16 surrogate pair in a double-quoted scalar
    (``"\uD83D\uDE00"``, what JSON writers such as Python's ``json.dumps`` emit for a
    character past U+FFFF, and JSON reads as that one character) written as the one
    ``\U`` escape libyaml reads; None when there is none to join (a lone surrogate
    stays: no text holds one). Found with PyYAML's own scanner, so that only escapes
    in double-quoted scalars are touched, never the same letters in plain or
    single-quoted text. Used on the error path only; the lines stay as they were."""
    try:
        spans = [
            (tok.start_mark.index, tok.end_mark.index)
            for tok in yaml.scan(data, Loader=yaml.SafeLoader)
            if isinstance(tok, yaml.ScalarToken) and tok.style == '"'
        ]
    except (yaml.YAMLError, ValueError):  # ValueError: PyYAML's chr() of "\U00110000"
        return None
    out: list[str] = []
    done = 0
    for start, end in spans:
        escapes = list(_ESCAPE.finditer(data, start, end))
        for first, second in zip(escapes, escapes[1:], strict=False):
            high, low = first.group(1), second.group(1)
            if (
                high is not None
                and low is not None
                and first.end() == second.start()
                and 0xD800 <= int(high, 16) <= 0xDBFF
                and 0xDC00 <= int(low, 16) <= 0xDFFF
                and first.start() >= done
            ):
                code = 0x10000 + ((int(high, 16) - 0xD800) << 10) + (int(low, 16) - 0xDC00)
                out.append(data[done : first.start()])
                out.append(f"\\U{code:08X}")
                done = second.end()
    if not out:
        return None
    out.append(data[done:])
    return "".join(out)


# What libyaml (and PyYAML's scanner) say when a key on one line runs past the length
# YAML allows an implicit key.
_MAX_PLAIN_KEY = 1024
_LONG_KEY_PROBLEMS = frozenset(
    {
        "could not find expected ':'",
        "mapping values are not allowed in this context",
        "did not find expected ',' or '}'",
        "did not find expected ',' or ']'",
    }
)


# Where a syntax error is (_error_path): at most this many parse events are read again
# (a few megabytes of configuration; past them the error names no key path), and the
# path shows at most _ERROR_PATH_SHOWN keys of at most _ERROR_KEY_SHOWN characters
# (then "…": a prefix of the path, never a made-up key).
_ERROR_PATH_EVENTS = 1_000_000
_ERROR_PATH_SHOWN = 32
_ERROR_KEY_SHOWN = 200


def _error_path(data: str, mark: Any) -> str:
    """The key path of where the YAML text ``data`` goes wrong at ``mark`` (a syntax
    error's problem mark), "" where it cannot be told.

    The text's parse events are read again up to the error (or up to the first event
    at the mark, for an error the composer or constructor found), following the
    collections open there: their keys and indexes, then the key whose value is being
    read, or the item whose place the mark is (``[a, @]``, ``- @``: item 1, item 0), or
    the item or value the error directly follows on its line (``[a, "b" c]``: item 1).
    A key that is no plain text (a collection or an alias used as a key, a merge
    ``<<``) ends the path at its mapping. Never raises.
    """
    at = getattr(mark, "index", None)
    if not isinstance(at, int):
        return ""
    # Only the text before the mark: its scanner reads to the end, so the key or item
    # last begun there is told (the whole text's scanner, looking ahead for a ':',
    # meets the error first).
    data = data[:at]
    # One frame per open collection: its segment in its parent (None: not nameable),
    # is a mapping, children seen, the key read last (a mapping's), and what was read
    # last in it: (the segment of a child read whole, or _OPENED, its end index).
    frames: list[list[Any]] = []
    ahead = False  # reading stopped at a node that starts at the mark
    try:
        for count, event in enumerate(yaml.parse(data, Loader=_BaseLoader)):
            if count >= _ERROR_PATH_EVENTS:
                return ""
            if event.start_mark.index >= at:  # the text's end: what is open stays open
                ahead = isinstance(event, yaml.NodeEvent)  # (an empty value, an item)
                break
            if isinstance(event, yaml.CollectionEndEvent):
                closed = frames.pop()
                if frames:
                    frames[-1][4] = (closed[0], event.end_mark.index)
                continue
            if not isinstance(event, yaml.NodeEvent):
                continue
            segment = None
            if frames:
                frame = frames[-1]
                seen = frame[2]
                frame[2] += 1
                if not frame[1]:
                    segment = seen
                elif seen % 2 == 0:  # a key: nameable if plain text, not a merge
                    plain = isinstance(event, yaml.ScalarEvent) and event.value != "<<"
                    frame[3] = event.value if plain else None
                else:
                    segment = frame[3]
            if isinstance(event, yaml.CollectionStartEvent):
                if len(frames) > MAX_PARSE_DEPTH:
                    return ""
                is_map = isinstance(event, yaml.MappingStartEvent)
                frames.append([segment, is_map, 0, None, (_OPENED, event.end_mark.index),
                               event.start_mark, event.flow_style])  # fmt: skip
            elif frames:
                frames[-1][4] = (segment, event.end_mark.index)
    except yaml.YAMLError:
        pass  # the syntax error itself: the frames are those open where it is
    except Exception:  # (never expected: this only words an error being reported)
        return ""
    # A block collection the error's line is indented less than has ended there, though
    # its end was not read: the scanner meets the error in the token that ends it (a
    # key back at its parent's indentation). Unless a value of it is being read.
    line = data[data.rfind("\n") + 1 :]
    indent, row = len(line) - len(line.lstrip(" ")), data.count("\n")
    while len(frames) > 1:
        _, is_map, seen, _, (_, end), start, flow = frames[-1]
        if flow or start.line >= row or indent >= start.column or (is_map and seen % 2):
            break
        closed = frames.pop()
        frames[-1][4] = (closed[0], end)
    segments: list[Any] = [frame[0] for frame in frames[1:]]
    if frames:
        _, is_map, seen, key, (last, end), _, _ = frames[-1]
        gap = data[end:at] if 0 <= at - end <= 200 else None
        if is_map and seen % 2 == 1:  # a key read, its value not yet
            segments.append(key)
        elif ahead or gap is None:
            if ahead and not is_map:
                segments.append(seen)  # the item that starts at the mark
        elif gap.strip(" \t") == "" and last is not _OPENED and (not is_map or seen):
            segments.append(last)  # right after it on its line
        elif not is_map and (
            "".join(gap.split()) in (",", "-") or (last is _OPENED and gap.strip(" \t") == "")
        ):
            segments.append(seen)  # where the next item goes
    shown: list[Any] = []
    for segment in segments:
        if segment is None:
            break
        if len(shown) == _ERROR_PATH_SHOWN or len(str(segment)) > _ERROR_KEY_SHOWN:
            return format_key_path(shown) + ".…" if shown else ""
        shown.append(segment)
    return format_key_path(shown)


_OPENED = object()  # (in _error_path: nothing read yet in a collection but its start)


def _kind(bad: _Unconstructable) -> str:
    return "limits" if _is_huge_int(bad) else ""


def _is_huge_int(bad: _Unconstructable) -> bool:
    # int() refuses literals of more than sys.get_int_max_str_digits() digits.
    return isinstance(bad.exc, ValueError) and "digits" in str(bad.exc)


_KEY_WORDS = {"tag:yaml.org,2002:null": "null"}
_TAG_WORDS = {
    "tag:yaml.org,2002:int": "an integer",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:bool": "a boolean",
    "tag:yaml.org,2002:timestamp": "a date or time",
    "tag:yaml.org,2002:binary": "base64 data",
}


def _unconstructable_problem(root: Any, bad: _Unconstructable, file: str | None) -> Problem:
    """What a refused value is, never the value itself (a password's place may hold a
    mistyped ``!!int``; the error reaches logs, ``last_error`` and the audit log)."""
    node = bad.node
    line = node.start_mark.line + 1
    path = _node_path(root, node)
    if _is_huge_int(bad):
        message = "integer out of range (configuration integers must fit in 64 bits)"
        return Problem(path=path, message=message, file=file, line=line, kind="limits")
    what = _TAG_WORDS.get(node.tag)
    tag = node.tag.replace("tag:yaml.org,2002:", "!!")
    if what is None:
        message = f"invalid YAML: cannot read the value tagged {tag}"
    else:
        message = f"invalid YAML: not {what} (tagged {tag}, explicitly or by its form)"
    # datetime's own reasons name no value ("month must be in 1..12").
    if node.tag == "tag:yaml.org,2002:timestamp" and isinstance(bad.exc, ValueError):
        message += f": {bad.exc}"
    return Problem(path=path, message=message, file=file, line=line)


def _node_path(root: Any, target: Any) -> str:
    """The key path by which ``target`` in the node graph ``root`` is reached first in
    document order, the shortest ("" when not found), as errors show key paths
    (:func:`cfgcore.errors.format_key_path`: a key holding a dot quoted); a mapping key
    that is ``target`` is named by its mapping's path."""
    return format_key_path(_node_segments(root, target))


def _node_segments(root: Any, target: Any) -> tuple[str, ...]:
    """:func:`_node_path`'s segments (() when not found). Breadth first, each node
    once: an alias chain is not walked once per path to it."""
    if root is None:
        return ()
    seen = {id(root)}
    queue: deque[tuple[Any, tuple[str, ...]]] = deque([(root, ())])
    while queue:
        node, path = queue.popleft()
        if node is target:
            return path
        children: list[tuple[Any, str]] = []
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node is target:
                    return path
                name = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
                children.append((value_node, str(name)))
        elif isinstance(node, yaml.SequenceNode):
            children = [(child, str(i)) for i, child in enumerate(node.value)]
        for child, name in children:
            if id(child) not in seen:
                seen.add(id(child))
                queue.append((child, (*path, name)))
    return ()
