"""A msgspec validation error as a cfgcore :class:`~cfgcore.errors.Problem`.

msgspec says where a value failed as a path (``$.flags['x'].rules[1]``) after its
message; :func:`msgspec_problem` turns it into cfgcore's key path and wording. msgspec
names no key of a mapping (``split[...]``): given the data decoded, each ``[...]`` is
the key found there. Flag documents, the access policy and the configuration's typed
views read msgspec's errors through it.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from cfgcore.errors import Problem, child_key_path, join_key_paths

__all__ = ["NO_DATA", "msgspec_problem"]

NO_DATA: Any = object()  # msgspec_problem without the value decoded
_GOT = re.compile(r", got `([^`]+)`$")
_RAW_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[(\.\.\.)\]")
_KINDS = ((bool, "bool"), (int, "int"), (float, "float"), (str, "str"), (dict, "object"),
          (list, "array"), (tuple, "array"), (bytes, "bytes"))  # fmt: skip


def _kind_is(value: Any, got: str) -> bool:
    """Whether msgspec calls ``value``'s type ``got`` ("got `str`", "got `numpy.int64`")."""
    if value is None:
        return got == "null"
    kind = type(value)  # (a float subclass such as numpy.float64 is named as itself)
    if got in (kind.__name__, f"{kind.__module__}.{kind.__qualname__}"):
        return True
    return next((got == name for kind, name in _KINDS if isinstance(value, kind)), False)


def _entry_path(raw_path: str, data: Any, got: str | None) -> str | None:
    """The rendered key path msgspec's ``raw_path`` (``.rules[0].split[...]``) leads to
    in ``data``, each ``[...]`` the first key (in the document's order) along which the
    rest of the path exists and ends at a value of type ``got`` (any value when msgspec
    named none); None when the path does not lead anywhere in ``data``."""
    steps: list[tuple[str, Any]] = []
    pos = 0
    for m in _RAW_STEP.finditer(raw_path):
        if m.start() != pos:
            return None  # a step this reading does not know: msgspec's path as it is
        pos = m.end()
        field, index, _ = m.groups()
        steps.append(("field", field) if field else ("index", int(index)) if index else ("any", 0))
    if pos != len(raw_path):
        return None

    def walk(value: Any, at: int, path: str) -> str | None:
        if at == len(steps):
            return path if got is None or _kind_is(value, got) else None
        kind, step = steps[at]
        if kind == "index":
            if isinstance(value, (list, tuple)) and step < len(value):
                return walk(value[step], at + 1, f"{path}[{step}]")
            return None
        if not isinstance(value, dict):
            if kind == "field" and isinstance(value, msgspec.Struct) and hasattr(value, step):
                return walk(getattr(value, step), at + 1, join_key_paths(path, step))
            return None
        if kind == "field":
            return walk(value[step], at + 1, join_key_paths(path, step)) if step in value else None
        for key, item in value.items():
            found = walk(item, at + 1, child_key_path(path, key))
            if found is not None:
                return found
        return None

    return walk(data, 0, "")


_MSGSPEC_PATH = re.compile(
    r"^(?P<msg>.*?)(?: - at (?P<key>`key` in )?`\$(?P<path>.*)`)?$", re.DOTALL
)
_BRACKET_KEY = re.compile(r"\['((?:[^'\\]|\\.)*)'\]")


def msgspec_problem(
    exc: msgspec.ValidationError | msgspec.DecodeError,
    file: str | None,
    prefix: str = "",
    data: Any = NO_DATA,
) -> Problem:
    """Turn msgspec's "Expected `array`, got `str` - at `$.flags['x'].rules[1]`" into a
    cfgcore Problem with a key path ``flags.x.rules[1]`` (``prefix`` a rendered path:
    :func:`cfgcore.errors.child_key_path`). msgspec names no key of a mapping (a split's
    weight is at ``split[...]``): with ``data``, the value decoded, each ``[...]`` is
    the key found there (:func:`_entry_path`)."""
    m = _MSGSPEC_PATH.match(str(exc))
    assert m is not None  # the pattern matches any string
    raw_path = m.group("path") or ""
    found = None
    if data is not NO_DATA and "[...]" in raw_path and not m.group("key"):
        got = _GOT.search(m.group("msg"))
        try:
            found = _entry_path(raw_path, data, got.group(1) if got else None)
        except Exception:  # a dict subclass of a Python document whose items() raises
            found = None
    if found is not None:
        path = join_key_paths(prefix, found)
    else:
        path = _BRACKET_KEY.sub(lambda k: child_key_path("_", k.group(1))[1:], raw_path)
        path = join_key_paths(prefix, path.lstrip("."))
    msg = m.group("msg").replace("`", "").replace(" | null", "")
    if msg[1:2].islower():  # "Expected ..." -> "expected ...", "JSON is ..." stays
        msg = msg[:1].lower() + msg[1:]
    if m.group("key"):  # "... - at `key` in `$.flags['x'].variants`": a key of that object
        msg += " (a key)"
    return Problem(path=path, message=msg, file=file)
