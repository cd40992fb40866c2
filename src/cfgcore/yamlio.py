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
  the last one).
* Syntax errors become :class:`cfgcore.errors.ConfigError` with file and line.
* Nesting deeper than :data:`MAX_PARSE_DEPTH` is refused before the document is
  built: PyYAML's C-accelerated composer recurses on the C stack, so a file of a few
  hundred kilobytes of ``[[[[...`` would crash the process (a reload thread's
  included) instead of raising.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from cfgcore.errors import ConfigError, Problem

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BOOL_TAG = "tag:yaml.org,2002:bool"


class StrictLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe loader with YAML 1.2 booleans and duplicate-key detection."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # unhashable key; the base class reports it
                    continue
                line = key_node.start_mark.line + 1
                if first is not None:
                    raise _DuplicateKey(key, first, line)
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"

StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL_TAG, _INT_TAG, _FLOAT_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
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


def dump_yaml(data: Any, **options: Any) -> str:
    """``data`` as YAML text (``yaml.safe_dump``'s options) that :func:`load_yaml` reads
    back equal: see :class:`StrictDumper`."""
    return str(yaml.dump(data, Dumper=StrictDumper, **options))


class _DuplicateKey(Exception):
    def __init__(self, key: Any, first: int, line: int) -> None:
        super().__init__(key)
        self.key, self.first, self.line = key, first, line


MAX_NODES = 5_000_000  # after alias expansion; see _check_expansion

# Far above what any consumer accepts (configuration trees: 100 levels, snapshots:
# 100, conditions: 32), so their own errors, with key paths, still report everything
# up to here; and far below what the composer's C recursion survives on a thread's
# stack.
MAX_PARSE_DEPTH = 1_000
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


def _check_depth(data: str | bytes, file: str | None) -> None:
    """Refuse nesting deeper than MAX_PARSE_DEPTH, reading parse events (iterative)."""
    if _depth_bound(data) <= _SCAN_ABOVE:
        return
    depth = 0
    events = yaml.parse(data, Loader=_BaseLoader)
    while True:
        try:
            event = next(events)
        except StopIteration:
            return
        except yaml.MarkedYAMLError as exc:
            # The libyaml in PyYAML 6.0.4's wheels refuses nesting past 1,000 levels
            # itself, before this loop sees the event that goes deeper.
            if exc.problem != "exceeded maximum nesting depth" or exc.problem_mark is None:
                raise
            raise _too_deep(file, exc.problem_mark.line + 1) from None
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_PARSE_DEPTH:
                raise _too_deep(file, event.start_mark.line + 1)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _too_deep(file: str | None, line: int) -> ConfigError:
    message = f"nested more than {MAX_PARSE_DEPTH:,} levels deep"
    return ConfigError([Problem(path="", message=message, file=file, line=line)], kind="limits")


def _check_expansion(doc: Any, file: str | None) -> None:
    """Refuse documents whose aliases expand to an enormous tree ("billion laughs").

    PyYAML shares an aliased node instead of copying it, so loading is cheap, but
    every consumer that walks the result (decoding, merging, validation) would
    visit each shared subtree once per reference.
    """
    budget = MAX_NODES
    stack = [doc]
    while stack:
        node = stack.pop()
        budget -= 1
        if budget < 0:
            raise ConfigError(
                [
                    Problem(
                        path="",
                        message=f"document expands to more than {MAX_NODES:,} values "
                        "(nested YAML aliases?)",
                        file=file,
                    )
                ],
                kind="limits",
            )
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def compose_nodes(text: str) -> Any:
    """The node graph of ``text`` (keys and values with their line marks), or None when
    the text is not YAML (nor JSON, which is YAML flow syntax) or nests deeper than
    :data:`MAX_PARSE_DEPTH`. For reporting where a problem is, never raises."""
    try:
        _check_depth(text, None)
        return yaml.compose(text, Loader=_BaseLoader)
    except (yaml.YAMLError, ConfigError):
        return None


def load_yaml(data: str | bytes, *, file: str | None = None) -> Any:
    """Parse one YAML document with cfgcore's rules; raise ConfigError on bad input.

    >>> load_yaml("variant: on\\nenabled: true")
    {'variant': 'on', 'enabled': True}
    """
    try:
        _check_depth(data, file)
        doc = yaml.load(data, Loader=StrictLoader)  # noqa: S506 - StrictLoader is a SafeLoader
    except _DuplicateKey as dup:
        raise ConfigError(
            [
                Problem(
                    path=str(dup.key),
                    message=f"duplicate key (first defined on line {dup.first})",
                    file=file,
                    line=dup.line,
                )
            ]
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            [Problem(path="", message=f"invalid YAML: {problem}", file=file, line=line)]
        ) from None
    _check_expansion(doc, file)
    return doc
