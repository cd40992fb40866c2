"""Migrate a legacy configuration file into a cfgcore configuration tree.

>>> from cfgcore.migration import LegacyConfigMigrator
>>> migrator = LegacyConfigMigrator()
>>> config = migrator.migrate_from_legacy("legacy/app.ini")           # doctest: +SKIP
>>> print(migrator.report)                                             # doctest: +SKIP

Reads INI (``.ini``, ``.cfg``, ``.conf``), Java ``.properties``, ``.env`` files and flat
JSON/YAML whose keys are dotted paths. Every legacy key becomes a flat dotted key
(INI: ``section.key``; ``.env``: lower case, ``__`` as the dot) and is placed in the
tree as follows:

1. a mapping file (``mapping=``) renames keys exactly (``keys:``), moves groups by
   prefix (``prefixes:``), strips an ``.env`` prefix (``env_prefix:``) and fills paths
   the legacy file lacks (``defaults:``);
2. a key that is a path of the bundled schema (:mod:`cfgcore.config.schema`), or of the
   bundled configuration files for sections the schema leaves open (``server.port``),
   stays where it is;
3. otherwise a key whose first part is a schema section and whose last parts name
   exactly one field inside it moves there: INI ``[music_streaming]`` /
   ``premium_bitrate = 320`` becomes ``music_streaming.audio_quality.premium_bitrate``;
   an ``.env`` key spelled with single underscores (``MUSIC_STREAMING_PREMIUM_BITRATE``)
   is matched the same way;
4. anything else is *unmapped*: reported, and left out of the result unless
   ``keep_unmapped=True`` (then it stays at its own dotted path).

Values are typed by the schema: the text ``"320"`` becomes the int the schema asks
for, ``"yes"`` a bool, ``"aac, mp3"`` a list. Two legacy keys landing on one path are
a *conflict*: the key that named the path exactly wins over an inferred one, the later
key over the earlier, and both are reported.

Bad input raises :class:`cfgcore.ConfigError` naming the file and line: binary or
non-UTF-8 content, files over ``max_bytes``, duplicate keys and lines that cannot be
parsed (every problem of the file at once), and a key whose dotted path (where the
mapping puts it) would nest its value deeper than a configuration file may
(:data:`~cfgcore.config.files.MAX_DEPTH` levels).
"""

from __future__ import annotations

import bisect
import copy
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import msgspec.inspect as mi

from cfgcore.config.files import MAX_DEPTH
from cfgcore.config.legacy_formats import (
    _TOO_DEEP,
    DEFAULT_MAX_BYTES,
    LEGACY_FORMATS,
    LegacyEntry,
    _excerpt,
    _format_for,
    _read_text,
    read_legacy,
    refuse_blank,
)
from cfgcore.config.schema import ConfigSchema
from cfgcore.errors import (
    ConfigError,
    Problem,
    child_key_path,
    format_key_path,
    printable_name,
    python_key,
)

__all__ = [
    "LegacyConfigMigrator",
    "Migration",
    "MigrationReport",
    "Conflict",
    "LEGACY_FORMATS",
    "read_legacy",
]


@dataclass(frozen=True)
class _Leaf:
    """What the schema accepts at one path: a tuple of kinds, tried in order."""

    kinds: tuple[str, ...]  # "bool", "int", "float", "str", "list", "dict", "any"
    item: _Leaf | None = None  # element type of a list
    literals: tuple[Any, ...] = ()


def _leaf_of(t: Any) -> _Leaf:
    if isinstance(t, mi.Metadata):
        t = t.type
    if isinstance(t, mi.UnionType):
        kinds: list[str] = []
        item = None
        literals: tuple[Any, ...] = ()
        for o in t.types:
            if isinstance(o, mi.NoneType):
                continue
            sub = _leaf_of(o)
            kinds += [k for k in sub.kinds if k not in kinds]
            item = item or sub.item
            literals += sub.literals
        return _Leaf(tuple(kinds), item, literals)
    if isinstance(t, mi.BoolType):
        return _Leaf(("bool",))
    if isinstance(t, mi.IntType):
        return _Leaf(("int",))
    if isinstance(t, mi.FloatType):
        return _Leaf(("float",))
    if isinstance(t, mi.StrType):
        return _Leaf(("str",))
    if isinstance(t, mi.LiteralType):
        return _Leaf(("str",), literals=tuple(t.values))
    if isinstance(t, (mi.ListType, mi.VarTupleType, mi.SetType, mi.FrozenSetType)):
        return _Leaf(("list",), item=_leaf_of(t.item_type))
    if isinstance(t, (mi.DictType, mi.StructType)):
        return _Leaf(("dict",))
    return _Leaf(("any",))


@cache
def schema_paths() -> dict[str, _Leaf]:
    """Every leaf path of :class:`cfgcore.config.schema.ConfigSchema` (``*`` for the key of
    an open mapping such as ``data_sources``) and what it accepts."""
    out: dict[str, _Leaf] = {}

    def walk(t: Any, prefix: str, seen: tuple[type, ...]) -> None:
        if isinstance(t, mi.Metadata):
            t = t.type
        if isinstance(t, mi.UnionType):
            structs = [o for o in t.types if isinstance(o, (mi.StructType, mi.DictType))]
            if len(structs) == 1:
                walk(structs[0], prefix, seen)
                return
        if isinstance(t, mi.StructType) and t.cls not in seen:
            for f in t.fields:
                walk(
                    f.type, f"{prefix}.{f.encode_name}" if prefix else f.encode_name, (*seen, t.cls)
                )
            return
        if isinstance(t, mi.DictType) and isinstance(_unwrap(t.value_type), mi.StructType):
            walk(t.value_type, f"{prefix}.*", seen)
            return
        out[prefix] = _leaf_of(t)

    walk(mi.type_info(ConfigSchema), "", ())
    return out


def _kind_of_value(value: Any) -> _Leaf:
    if isinstance(value, bool):
        return _Leaf(("bool",))
    if isinstance(value, int):
        return _Leaf(("int", "float"))
    if isinstance(value, float):
        return _Leaf(("float",))
    if isinstance(value, list):
        items = {type(v) for v in value}
        return _Leaf(("list",), item=_kind_of_value(value[0]) if len(items) == 1 else None)
    if isinstance(value, dict):
        return _Leaf(("dict",))
    return _Leaf(("str",))


@cache
def known_paths() -> dict[str, _Leaf]:
    """The targets a legacy key can land on: every schema path, plus every key of the
    bundled configuration (``defaults/config/*.yaml``) that the schema does not
    describe (``server.port``, ``app.name``), typed by its bundled value."""
    from cfgcore.config.files import parse_text
    from cfgcore.config.manager import default_config_dir

    out = dict(schema_paths())
    directory = default_config_dir()

    def walk(node: Any, prefix: str) -> None:
        for k, v in node.items():
            path = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict) and v:
                walk(v, path)
            elif path not in out and not any(_matches(p, path) for p in out if "*" in p):
                out[path] = _kind_of_value(v)

    for name in sorted(os.listdir(directory)):
        if name.endswith(".yaml"):
            full = os.path.join(directory, name)
            with open(full, encoding="utf-8") as fh:
                walk(parse_text(fh.read(), "yaml", full), "")
    return out


def _unwrap(t: Any) -> Any:
    while isinstance(t, mi.Metadata):
        t = t.type
    if isinstance(t, mi.UnionType):
        structs = [o for o in t.types if isinstance(_unwrap(o), mi.StructType)]
        if len(structs) == 1:
            return _unwrap(structs[0])
    return t


def _matches(pattern: str, path: str) -> bool:
    a, b = pattern.split("."), path.split(".")
    return len(a) == len(b) and all(x == "*" or x == y for x, y in zip(a, b, strict=True))


@cache
def _patterns() -> tuple[tuple[str, _Leaf], ...]:
    """The known paths holding a ``*`` (an open mapping's key), in order, with their
    leaves: the only ones :func:`_leaf_for` matches part by part."""
    return tuple((p, leaf) for p, leaf in known_paths().items() if "*" in p)


def _leaf_for(path: str) -> _Leaf | None:
    leaf = known_paths().get(path)
    if leaf is not None:
        return leaf
    if "*" not in path:
        for pattern, leaf in _patterns():
            if _matches(pattern, path):
                return leaf
    return None


@cache
def _sections() -> frozenset[str]:
    return frozenset(p.split(".", 1)[0] for p in known_paths())


@cache
def _by_section() -> dict[str, tuple[str, ...]]:
    """The known paths without a ``*``, by their first part, each section's in the
    order of :func:`known_paths` (a key is matched against its own section's paths
    only: every key of a large legacy file was compared with every known path)."""
    out: dict[str, list[str]] = {}
    for p in known_paths():
        if "*" not in p:
            out.setdefault(p.split(".", 1)[0], []).append(p)
    return {section: tuple(paths) for section, paths in out.items()}


@cache
def _by_underscores() -> dict[str, tuple[str, ...]]:
    """The known paths without a ``*`` by their dots read as underscores
    (``music_streaming_audio_quality_premium_bitrate``): an ``.env`` key's spelling."""
    out: dict[str, list[str]] = {}
    for p in known_paths():
        if "*" not in p:
            out.setdefault(p.replace(".", "_"), []).append(p)
    return {key: tuple(paths) for key, paths in out.items()}


def _infer_target(key: str) -> tuple[str | None, list[str]]:
    """(schema path, []) for a key that names one schema leaf by its section and its
    last parts; (None, candidates) when it names several or none."""
    parts = key.split(".")
    if _leaf_for(key) is not None:
        return key, []
    sections = _by_section()
    if len(parts) >= 2 and parts[0] in _sections():
        tail = "." + ".".join(parts[1:])
        hits = [p for p in sections.get(parts[0], ()) if p.endswith(tail)]
        if len(hits) == 1:
            return hits[0], []
        if hits:
            return None, sorted(hits)
    if len(parts) == 1 and "_" in key:
        # .env keys with single underscores: MUSIC_STREAMING_PREMIUM_BITRATE.
        hits = list(_by_underscores().get(key, ()))
        if not hits:
            hits = [
                p
                for section, paths in sections.items()
                if key.startswith(section + "_")
                for p in paths
                if key.endswith("_" + p.rsplit(".", 1)[-1]) and _subsequence(key, p)
            ]
        if len(hits) == 1:
            return hits[0], []
        if hits:
            return None, sorted(hits)
    return None, []


def _subsequence(key: str, path: str) -> bool:
    """True if ``key`` is the path's section, some of its middle parts and its leaf,
    joined with underscores (``music_streaming_premium_bitrate``)."""
    parts = path.split(".")
    words = key
    if not words.startswith(parts[0] + "_") or not words.endswith("_" + parts[-1]):
        return False
    middle = words[len(parts[0]) + 1 : len(words) - len(parts[-1]) - 1]
    if middle == "":
        return True
    # The middle must be an in-order selection of the path's middle parts.
    pos = 0
    pieces = parts[1:-1]
    for piece in pieces:
        if middle[pos:].startswith(piece):
            pos += len(piece)
            if pos == len(middle):
                return True
            if middle[pos] != "_":
                return False
            pos += 1
    return pos >= len(middle)


# ----------------------------------------------------------------------------- typing

_TRUE = {"true", "yes", "on", "1", "enabled"}
_FALSE = {"false", "no", "off", "0", "disabled"}
# ASCII digits (re.ASCII): \d alone also matches other scripts' digits, which int() and
# float() read ("８０８０" became 8080); a legacy value spelled so stays text.
_INT = re.compile(r"^[+-]?\d+$", re.ASCII)
_FLOAT = re.compile(r"^[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?$", re.ASCII)


def _convert(value: Any, leaf: _Leaf | None) -> tuple[Any, str | None]:
    """(typed value, None) or (value unchanged, why it could not be typed)."""
    if leaf is None:
        return (_infer(value) if isinstance(value, str) else value), None
    kinds = leaf.kinds
    if not isinstance(value, str):
        if isinstance(value, int) and not isinstance(value, bool) and "int" not in kinds:
            if "float" in kinds:
                return float(value), None
        if isinstance(value, list) and leaf.item is not None:
            return [_convert(v, leaf.item)[0] for v in value], None
        return value, None
    text = value.strip()
    if text.startswith("${"):
        return text, None  # an environment reference: typed after substitution
    for kind in kinds:
        if kind == "int" and _INT.match(text):
            number = _int(text)
            if number is None:
                return value, f"{_excerpt(value)} is not an int within 64 bits"
            return number, None
        if kind == "float" and _FLOAT.match(text):
            return float(text), None
        if kind == "bool" and text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE, None
        if kind == "list":
            if text.startswith("["):
                try:
                    items = json.loads(text)
                except (ValueError, RecursionError):  # "[[[[..." 50,000 deep recurses
                    return value, "not a JSON array"
            else:
                items = [s.strip() for s in text.split(",") if s.strip()]
            if isinstance(items, list):
                return [_convert(v, leaf.item)[0] for v in items], None
        if kind == "dict" and text.startswith("{"):
            try:
                return json.loads(text), None
            except (ValueError, RecursionError):
                return value, "not a JSON object"
        if kind in ("str", "any"):
            return (value if kind == "str" else _infer(value)), None
    want = " or ".join(kinds)
    return value, f"{_excerpt(value)} is not {want}"


def _int(text: str) -> int | None:
    """``int(text)``; None past ``sys.get_int_max_str_digits()`` digits (4,300 by
    default), which ``int()`` refuses: far beyond the 64 bits a configuration holds."""
    try:
        return int(text)
    except ValueError:
        return None


def _infer(text: str) -> Any:
    """Type a value the schema does not describe: ints, floats, true/false; else text."""
    t = text.strip()
    if _INT.match(t):
        number = _int(t)
        return text if number is None else number
    if _FLOAT.match(t) and any(c in t for c in ".eE"):
        return float(t)
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    return text


# ----------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Conflict:
    """Several legacy keys landed on one path; ``chosen`` is the one kept."""

    path: str
    keys: tuple[str, ...]
    chosen: str
    reason: str


@dataclass
class MigrationReport:
    """What a migration did with every legacy key.

    ``mapped``: legacy key -> new path; ``unmapped``: legacy key -> why (kept at its own
    path only with ``keep_unmapped``); ``conflicts``; ``defaulted``: path -> value from
    the mapping file's ``defaults``; ``untyped``: path -> why the value could not be
    given the schema's type (kept as text; validation reports it).
    """

    source: str
    format: str
    mapped: dict[str, str] = field(default_factory=dict)
    unmapped: dict[str, str] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)
    defaulted: dict[str, Any] = field(default_factory=dict)
    untyped: dict[str, str] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (the CLI writes it next to the migrated file)."""
        return {
            "source": self.source,
            "format": self.format,
            "mapped": self.mapped,
            "unmapped": self.unmapped,
            "conflicts": [
                {"path": c.path, "keys": list(c.keys), "chosen": c.chosen, "reason": c.reason}
                for c in self.conflicts
            ],
            "defaulted": self.defaulted,
            "untyped": self.untyped,
            "dropped": self.dropped,
        }

    def _where(self, key: str) -> str:
        line = self.lines.get(key)
        return f"{self.source}:{line}" if line else self.source

    def __str__(self) -> str:
        out = [
            f"{self.source} ({self.format}): {len(self.mapped)} mapped, "
            f"{len(self.unmapped)} unmapped, {len(self.conflicts)} conflicting, "
            f"{len(self.defaulted)} defaulted"
        ]
        for key, path in self.mapped.items():
            out.append(f"  mapped     {key} -> {path}" if key != path else f"  mapped     {key}")
        for key, why in self.unmapped.items():
            out.append(f"  unmapped   {key} ({self._where(key)}): {why}")
        for c in self.conflicts:
            out.append(f"  conflict   {c.path}: {', '.join(c.keys)}; kept {c.chosen} ({c.reason})")
        for path, value in self.defaulted.items():
            out.append(f"  defaulted  {path} = {value!r}")
        for path, why in self.untyped.items():
            out.append(f"  untyped    {path}: {why}")
        for key in self.dropped:
            out.append(f"  dropped    {key} (mapping file)")
        # One line per entry: a key or file name holding a line break or a terminal
        # escape forged report lines or drove the terminal.
        return "\n".join(printable_name(line) for line in out)


@dataclass(frozen=True)
class Migration:
    """The result of :meth:`LegacyConfigMigrator.migrate`: the tree and the report."""

    config: dict[str, Any]
    report: MigrationReport


# ----------------------------------------------------------------------------- mapping


@dataclass(frozen=True)
class _Mapping:
    keys: dict[str, str | None]
    prefixes: list[tuple[str, str]]
    defaults: dict[str, Any]
    env_prefix: str


_MAPPING_FIELDS = {"keys", "prefixes", "defaults", "env_prefix"}


def load_mapping(source: str | os.PathLike[str] | Mapping[str, Any] | None) -> _Mapping:
    """Read and check a mapping file (YAML or JSON) or an already-loaded mapping::

    keys:        {legacy.key: new.dotted.path, unwanted.key: null}
    prefixes:    {"audio.": "music_streaming.audio_quality."}
    defaults:    {music_streaming.audio_quality.default_codec: aac}
    env_prefix:  APP_
    """
    if source is None:
        return _Mapping({}, [], {}, "")
    file = None
    layer = None
    if isinstance(source, Mapping):
        data: Any = source
    else:
        from cfgcore.config.files import Layer
        from cfgcore.yamlio import load_yaml

        file = os.fspath(source)
        text = _read_text(file, DEFAULT_MAX_BYTES)
        # Keys as a legacy file's are read (cfgcore.config.legacy_formats): text, or
        # an integer written in decimal as its digits; anything else refused on its line.
        data = load_yaml(text, file=file, text_keys=True, decimal_keys=True) or {}
        layer = Layer("", "file", {}, file=file, text=text, fmt="yaml")
    problems: list[Problem] = []

    def bad(path: tuple[str, ...], message: str) -> None:
        # Named by key path and, in a file, by line (they had no line).
        line = layer.line_of(path) if layer is not None else None
        # (a legacy key is dotted text, "legacy.key": one name here, so shown quoted)
        problems.append(Problem(format_key_path(path), message, file, line))

    if not isinstance(data, Mapping):
        raise ConfigError("a mapping file holds a mapping", file=file)
    compared = 0
    for k in data:
        if k not in _MAPPING_FIELDS:
            from cfgcore.config.tree import SUGGESTION_LIMIT, did_you_mean

            fields = sorted(_MAPPING_FIELDS)
            compared += 1
            hint = did_you_mean(str(k), fields, n=1) if compared <= SUGGESTION_LIMIT else ""
            bad((str(k),), f"unknown field{hint}; a mapping file's fields are {', '.join(fields)}")

    def table(name: str) -> dict[str, Any]:
        value = data.get(name) or {}
        if not isinstance(value, Mapping):
            bad((name,), "expected a mapping")
            return {}
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):  # given in Python: None is no legacy key "None"
                where = child_key_path(name, k)
                message = f"key {python_key(k)} ({type(k).__name__}) is not a string"
                problems.append(Problem(where, message, file, None))
                continue
            out[k] = v
        return out

    keys = table("keys")
    for k, v in keys.items():
        if v is not None and (not isinstance(v, str) or not v or ".." in v):
            bad(("keys", k), "expected a dotted path or null")
    prefixes = table("prefixes")
    for k, v in prefixes.items():
        if not isinstance(v, str):
            bad(("prefixes", k), "expected a dotted prefix")
    defaults = table("defaults")
    env_prefix = data.get("env_prefix") or ""
    if not isinstance(env_prefix, str):
        bad(("env_prefix",), "expected a string")
    if problems:
        raise ConfigError(problems)
    # Longest prefix first, so a specific move beats a general one.
    ordered = sorted(prefixes.items(), key=lambda kv: -len(kv[0]))
    return _Mapping(keys, ordered, defaults, str(env_prefix))


# ----------------------------------------------------------------------------- migrator


def _deepest_level(path: str, value: Any) -> int:
    """The level of the deepest mapping or list ``value`` set at the dotted ``path``
    makes (the level :func:`cfgcore.config.files.tree_problem` judges: the top level's is
    0); iterative."""
    deepest = path.count(".")  # the mapping holding the last part
    stack: list[tuple[Any, int]] = [(value, deepest + 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            stack += [(v, level + 1) for v in (node.values() if isinstance(node, dict) else node)]
    return deepest


def _cut_path(path: str) -> str:
    """A dotted path of a deep key as a problem names it: its first six parts."""
    parts = path.split(".")
    return format_key_path(parts[:6]) + (".…" if len(parts) > 6 else "")


def _set(
    tree: dict[str, Any], path: str, value: Any, made: dict[int, str] | None = None, by: str = ""
) -> str | None:
    """Set a dotted path; the clashing path if a value sits where a section must go.
    ``made``: each section the path goes through (by ``id``) -> ``by``, the legacy key
    of the first path set through it."""
    parts = path.split(".")
    node = tree
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None and part not in node:
            child = node[part] = {}
        if not isinstance(child, dict):
            return ".".join(parts[: i + 1])
        if made is not None:
            made.setdefault(id(child), by)
        node = child
    if isinstance(node.get(parts[-1]), dict):
        return path
    node[parts[-1]] = value
    return None


def _section_at(tree: dict[str, Any], path: str) -> dict[str, Any]:
    """The section at dotted ``path`` of ``tree`` (there: :func:`_set` said so)."""
    node = tree
    for part in path.split("."):
        node = node[part]
    return node


def _place(
    placed: dict[str, tuple[str, Any]], defaults: Mapping[str, Any], report: MigrationReport
) -> dict[str, Any]:
    """The tree of ``placed`` (target path -> (legacy key, typed value), in file order)
    and of the mapping file's ``defaults`` the legacy file leaves unset; the report
    told of each value and section on one path, and of each default taken. Linear in
    the keys: a key whose path already held a section looked through every placed key
    for the first under it, and each default through every placed key (a legacy file
    of 20,000 such keys took 40 s)."""
    config: dict[str, Any] = {}
    made: dict[int, str] = {}  # id of each section -> the legacy key that made it
    for target, (key, value) in placed.items():
        clash = _set(config, target, value, made, key)
        if clash is None:
            continue
        # Either a value already sits at ``clash`` (a prefix of target), or target
        # itself already holds a section: name the key that got there first, the first
        # placed under it (the first set through that section: a key placed under it
        # that was not would have clashed above it, and so would target).
        if clash != target:
            other = placed[clash][0] if clash in placed else clash
        else:
            other = made.get(id(_section_at(config, target)), target)
        report.conflicts.append(
            Conflict(clash, (other, key), other, "a value and a section on one path")
        )
        report.mapped.pop(key, None)
        report.unmapped[key] = f"{clash} is both a value and a section"
    # A default fills a path the legacy file leaves unset: neither placed nor a prefix
    # of a placed path (one placed under it found in the sorted paths, by bisection).
    ordered = sorted(placed) if defaults else []
    for path, value in defaults.items():
        if path in placed:
            continue
        under = path + "."
        i = bisect.bisect_left(ordered, under)
        if i < len(ordered) and ordered[i].startswith(under):
            continue
        typed, _ = _convert(value, _leaf_for(path))
        # A copy: the tree is the caller's, and a default set under this one's
        # mapping (``extra`` then ``extra.e``) added to the mapping file's own value,
        # so the migrator's next run (and the caller's mapping) held it.
        typed = copy.deepcopy(typed)
        if _set(config, path, typed) is None:
            report.defaulted[path] = typed
    return config


def _overlay(base: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """``config`` laid over ``base``, both trees as served: maps merge key by key and
    every other value replaces what is below as it is (a text ``"__delete__"`` is a
    value here, not the layer marker that removed the key)."""
    out = dict(base)
    for key, value in config.items():
        below = out.get(key)
        if isinstance(value, dict) and isinstance(below, dict):
            value = _overlay(below, value)
        out[key] = value
    return out


class LegacyConfigMigrator:
    """Turns a legacy INI, .properties, .env or flat JSON/YAML file into a cfgcore
    configuration tree (see the module docstring for the rules).

    ``mapping``: a mapping file path or mapping (renames, prefix moves, defaults);
    ``keep_unmapped``: keep keys that match nothing at their own dotted path;
    ``max_bytes``: refuse larger files; ``base``: a complete configuration to lay the
    migrated keys over (``manager.config``), because
    :meth:`~cfgcore.config.manager.ConfigurationManager.apply_migrated_config` replaces the
    whole active tree. After each call, :attr:`report` describes the last migration.
    """

    def __init__(
        self,
        mapping: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        *,
        keep_unmapped: bool = False,
        max_bytes: int = DEFAULT_MAX_BYTES,
        base: Mapping[str, Any] | None = None,
    ) -> None:
        self._mapping = load_mapping(mapping)
        self.base = base
        self.keep_unmapped = keep_unmapped
        self.max_bytes = max_bytes
        self.report: MigrationReport | None = None

    def migrate_from_legacy(self, legacy_config_path: str | os.PathLike[str]) -> dict[str, Any]:
        """The configuration tree for a legacy file; :attr:`report` says what was done."""
        return self.migrate(legacy_config_path).config

    def migrate(self, path: str | os.PathLike[str], *, format: str | None = None) -> Migration:
        """Migrate ``path``: the configuration tree and its :class:`MigrationReport`."""
        name = os.fspath(path)
        fmt = format or _format_for(name)
        entries = read_legacy(name, format=fmt, max_bytes=self.max_bytes)
        if not entries:
            refuse_blank(name, self.max_bytes)
        report = MigrationReport(source=name, format=fmt)
        m = self._mapping
        # path -> (legacy key, exact?, value): exact names win over inferred ones.
        # target path -> [(legacy key, names the path exactly?, raw value)], file order
        candidates: dict[str, list[tuple[str, bool, Any]]] = {}
        for e in entries:
            report.lines[e.key] = e.line or 0
            target, exact, why = self._target(e, fmt)
            if target is None:
                report.unmapped[e.key] = why
                if not self.keep_unmapped:
                    continue
                target, exact = e.key, True
            else:
                report.mapped[e.key] = target
            candidates.setdefault(target, []).append((e.key, exact, e.value))
        placed: dict[str, tuple[str, Any]] = {}  # target -> (legacy key, typed value)
        for target, found in candidates.items():
            named = [c for c in found if c[1]]
            key, _, raw = (named or found)[-1]  # exact beats inferred; then the later key
            if len(found) > 1:
                reason = (
                    "names the path exactly" if named and len(named) < len(found) else "set last"
                )
                report.conflicts.append(Conflict(target, tuple(c[0] for c in found), key, reason))
            value, problem = _convert(raw, _leaf_for(target))
            if problem:
                report.untyped[target] = problem
            placed[target] = (key, value)
        # A dotted key is as many levels of the tree: refused past what a configuration
        # file may nest, as a nested JSON/YAML legacy file is (every later step recurses;
        # the file written would load nowhere).
        deep = [
            Problem(_cut_path(target), _TOO_DEEP, file=name, line=report.lines.get(key) or None)
            for target, (key, value) in placed.items()
            if _deepest_level(target, value) >= MAX_DEPTH
        ]
        if deep:
            raise ConfigError(deep)
        config = _place(placed, m.defaults, report)
        if self.base is not None:
            from cfgcore.config.tree import thaw

            config = _overlay(thaw(self.base), config)
        self.report = report
        return Migration(config, report)

    def _target(self, e: LegacyEntry, fmt: str) -> tuple[str | None, bool, str]:
        m = self._mapping
        key = e.key
        if fmt == "env" and m.env_prefix and e.raw_key.startswith(m.env_prefix):
            key = e.raw_key[len(m.env_prefix) :].lower().replace("__", ".")
        for candidate in (e.key, e.raw_key, key):
            if candidate in m.keys:
                new = m.keys[candidate]
                if new is None:
                    return None, False, "dropped by the mapping file"
                return new, True, ""
        for old, new in m.prefixes:
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        target, candidates = _infer_target(key)
        if target is not None:
            return target, target == key, ""
        if candidates:
            return None, False, "ambiguous: could be " + ", ".join(candidates)
        section = key.split(".", 1)[0]
        if section in _sections():
            return None, False, f"no field of the schema's {section} section matches"
        return None, False, "not in the schema or the bundled configuration"
