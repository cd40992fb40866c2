"""Configuration files: reading YAML, JSON and TOML, and the :class:`Layer` each becomes.

A layer keeps its source text so that provenance (:mod:`cfgcore.config.provenance`)
can find the line that set a key on demand; loading pays nothing for it.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any

import msgspec

from cfgcore.config.tree import DELETE, REPLACE
from cfgcore.errors import ConfigError, Problem

FORMATS = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".toml": "toml"}
MAX_DEPTH = 100  # far beyond any real configuration, well within Python's recursion limit

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
