"""A msgspec validation error as a cfgcore :class:`~cfgcore.errors.Problem`.

msgspec says where a value failed as a path (``$.flags['x'].rules[1]``) after its
message; :func:`msgspec_problem` turns it into cfgcore's key path and wording. msgspec
names no key of a mapping (``split[...]``): given the data decoded, each ``[...]`` is
the key found there. Where the entries are Structs of a tagged union (a typed view's
``dict[str, Circle | Square]``), a field's type depends on each entry's tag: the entry
is the first that fails with msgspec's message when decoded alone, never one that is
fine because it holds another tag. Flag documents, the access policy and the
configuration's typed views read msgspec's errors through it.
"""

from __future__ import annotations

import ast
import collections.abc
import dataclasses
import datetime
import itertools
import re
import types
import typing
from collections.abc import Callable, Iterator
from typing import Any

import msgspec

from cfgcore.errors import Problem, child_key_path, join_key_paths

__all__ = ["NO_DATA", "msgspec_problem"]

NO_DATA: Any = object()  # msgspec_problem without the value decoded
_GOT = re.compile(r", got `([^`]+)`$")
_RAW_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[(\.\.\.)\]")
# (MessagePack's decoder says "ext" for an extension value, its timestamps included,
# which the data decoded holds as Ext and datetime)
_KINDS = ((bool, "bool"), (int, "int"), (float, "float"), (str, "str"), (dict, "object"),
          (list, "array"), (tuple, "array"), (bytes, "bytes"), (msgspec.msgpack.Ext, "ext"),
          (datetime.datetime, "ext"))  # fmt: skip


def _kind_is(value: Any, got: str) -> bool:
    """Whether msgspec calls ``value``'s type ``got`` ("got `str`", "got `numpy.int64`")."""
    if value is None:
        return got in ("null", "None")  # (JSON's word; MessagePack's decoder says None)
    kind = type(value)  # (a float subclass such as numpy.float64 is named as itself)
    if got in (kind.__name__, f"{kind.__module__}.{kind.__qualname__}"):
        return True
    return next((got == name for kind, name in _KINDS if isinstance(value, kind)), False)


_BOUND = re.compile(r"^Expected `(?:int|float)` (>=|>|<=|<) (\S+)$")
_MULTIPLE = re.compile(r"^Expected `(?:int|float)` that's a multiple of (\S+)$")
_LENGTH = re.compile(r"^Expected `(?:str|array|object)` of length (>=|<=) (\d+)$")
_COUNT = re.compile(r"^Expected `array` of length (\d+), got (\d+)$")
_FIELD = re.compile(r"^Object (missing required|contains unknown) field `(.*)`$", re.DOTALL)
_PATTERN = re.compile(r"^Expected `str` matching regex (.+)$", re.DOTALL)
_INVALID = re.compile(r"^Invalid enum value (.+)$", re.DOTALL)
_FAILS = {
    ">=": lambda v, b: not v >= b, ">": lambda v, b: not v > b,
    "<=": lambda v, b: not v <= b, "<": lambda v, b: not v < b,
}  # fmt: skip


def _real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _failing(msg: str) -> Callable[[Any], bool] | None:
    """A test of whether a value is one msgspec's message ``msg`` refuses (the value
    at a ``[...]`` is the first in the document's order that fails it), or None for a
    message it does not tell from (a value of the right type refused by a hook)."""
    if (m := _GOT.search(msg)) is not None:
        got = m.group(1)
        return lambda value: _kind_is(value, got)
    if (m := _FIELD.match(msg)) is not None:
        missing, field = m.group(1) == "missing required", m.group(2)
        return lambda value: isinstance(value, dict) and (field not in value) is missing
    if (m := _BOUND.match(msg)) is not None:
        fails, bound = _FAILS[m.group(1)], float(m.group(2))
        return lambda value: _real(value) and fails(value, bound)
    if (m := _MULTIPLE.match(msg)) is not None:
        step = float(m.group(1))
        return lambda value: _real(value) and value % step != 0
    if (m := _LENGTH.match(msg)) is not None:
        fails, size = _FAILS[m.group(1)], int(m.group(2))
        sized = (str, list, tuple, dict)
        return lambda value: isinstance(value, sized) and fails(len(value), size)
    if (m := _COUNT.match(msg)) is not None:
        count = int(m.group(2))
        return lambda value: isinstance(value, (list, tuple)) and len(value) == count
    if (m := _PATTERN.match(msg)) is not None:
        pattern = re.compile(ast.literal_eval(m.group(1)))
        return lambda value: isinstance(value, str) and pattern.search(value) is None
    if (m := _INVALID.match(msg)) is not None:
        shown = m.group(1)
        return lambda value: repr(value) == shown
    return None


def _entries(raw_path: str, data: Any, fails: Callable[[Any], bool] | None) -> Iterator[Any]:
    """``(rendered key path, value)`` of each value msgspec's ``raw_path``
    (``.rules[0].split[...]``) leads to in ``data`` that ``fails`` (any, for None), in
    the document's order: each ``[...]`` may be any key. Nothing where the path holds
    a step this reading does not know."""
    steps: list[tuple[str, Any]] = []
    pos = 0
    for m in _RAW_STEP.finditer(raw_path):
        if m.start() != pos:
            return  # a step this reading does not know: msgspec's path as it is
        pos = m.end()
        field, index, _ = m.groups()
        steps.append(("field", field) if field else ("index", int(index)) if index else ("any", 0))
    if pos != len(raw_path):
        return

    def walk(value: Any, at: int, path: str) -> Iterator[tuple[str, Any]]:
        if at == len(steps):
            if fails is None or fails(value):
                yield path, value
            return
        kind, step = steps[at]
        if kind == "index":
            if isinstance(value, (list, tuple)) and step < len(value):
                yield from walk(value[step], at + 1, f"{path}[{step}]")
        elif not isinstance(value, dict):
            if kind == "field" and isinstance(value, msgspec.Struct) and hasattr(value, step):
                yield from walk(getattr(value, step), at + 1, join_key_paths(path, step))
        elif kind == "field":
            if step in value:
                yield from walk(value[step], at + 1, join_key_paths(path, step))
        else:
            for key, item in value.items():
                yield from walk(item, at + 1, child_key_path(path, key))

    yield from walk(data, 0, "")


def _entry_path(raw_path: str, data: Any, msg: str) -> str | None:
    """The rendered key path msgspec's ``raw_path`` leads to in ``data``, each
    ``[...]`` the first key (in the document's order) along which the rest of the path
    exists and ends at a value msgspec's message ``msg`` refuses (:func:`_failing`:
    ``got `str```, a field missing, a bound); None when the path does not lead anywhere
    in ``data``, or, for a message that tells no value from another, leads to more than
    one value (a wrong key would send the reader to a value that is fine)."""
    fails = _failing(msg)
    found = list(itertools.islice(_entries(raw_path, data, fails), 1 if fails else 2))
    return found[0][0] if len(found) == 1 else None


def _key_path(raw_path: str, data: Any, msg: str) -> str | None:
    """The rendered key path of the first key msgspec's message ``msg`` refuses (a key
    that is no text, in a Python or MessagePack document: ``variants[5]``) in the first
    mapping msgspec's ``raw_path`` leads to in ``data`` that holds one; None where the
    message tells no key from another, or no such key is found."""
    fails = _failing(msg)
    if fails is None:
        return None

    def holds(mapping: Any) -> bool:
        return isinstance(mapping, dict) and any(fails(key) for key in mapping)

    for where, mapping in _entries(raw_path, data, holds):
        return next(child_key_path(where, key) for key in mapping if fails(key))
    return None


def _has_tagged_union(type_: Any) -> bool:
    """Whether ``type_`` holds a union of several Structs (which msgspec tells apart by
    their tags): entries of a mapping of them differ in type by their tag."""
    try:
        todo: list[Any] = [msgspec.inspect.type_info(type_)]
    except Exception:  # a type msgspec.inspect cannot describe
        return False
    seen: set[int] = set()
    while todo:
        info = todo.pop()
        if id(info) in seen:
            continue
        seen.add(id(info))
        if isinstance(info, msgspec.inspect.UnionType):
            if sum(isinstance(t, msgspec.inspect.StructType) for t in info.types) > 1:
                return True
        if isinstance(info, (list, tuple)):
            todo.extend(info)
        elif isinstance(info, (msgspec.inspect.Type, msgspec.inspect.Field)):
            todo.extend(getattr(info, f) for f in info.__struct_fields__)
    return False


class _Unsure(Exception):
    """The refused entry of a mapping cannot be told for certain."""


def _bare(typ: Any) -> Any:
    """``typ`` without ``Annotated``, ``NewType`` and ``type`` alias wrappings."""
    while True:
        if typing.get_origin(typ) is typing.Annotated:
            typ = typing.get_args(typ)[0]
        elif isinstance(typ, typing.NewType):
            typ = typ.__supertype__
        elif type(typ).__name__ == "TypeAliasType":  # (``type X = ...``, Python 3.12)
            typ = typ.__value__
        else:
            return typ


def _members(typ: Any) -> list[Any]:
    """The types a union ``typ`` is one of (``typ`` alone when it is no union)."""
    typ = _bare(typ)
    if typing.get_origin(typ) in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(typ) for m in _members(arg)]
    return [typ]


def _struct_class(typ: Any) -> Any:
    """The Struct class of ``typ`` (``Box`` for ``Box[int]``), or None."""
    cls = typing.get_origin(typ) or typ
    return cls if isinstance(cls, type) and issubclass(cls, msgspec.Struct) else None


def _object_type(typ: Any, value: Any) -> Any:
    """The object type (Struct, dataclass, TypedDict) ``value`` is decoded as by
    ``typ``: among several Structs, the one ``value``'s tag names."""
    objects = [
        m
        for m in _members(typ)
        if _struct_class(m) is not None
        or dataclasses.is_dataclass(m)
        or typing.is_typeddict(typing.get_origin(m) or m)
    ]
    if isinstance(value, msgspec.Struct):
        objects = [m for m in objects if _struct_class(m) is type(value)]
    elif len(objects) > 1:  # a tagged union: the member whose tag the value holds
        objects = [m for m in objects if _tagged(m, value)]
    if len(objects) != 1:
        raise _Unsure
    return objects[0]


def _field_names(typ: Any, value: Any) -> list[str]:
    """The fields (encoded names) of the Struct ``value`` is decoded as by ``typ``."""
    obj = _object_type(typ, value)
    if _struct_class(obj) is None:
        raise _Unsure
    return [f.encode_name for f in msgspec.structs.fields(obj)]


def _field_type(typ: Any, value: Any, name: str) -> Any:
    """The type of the field msgspec calls ``name`` (its encoded name) of ``value``
    decoded as ``typ``: among several Structs, the one ``value``'s tag names."""
    obj = _object_type(typ, value)
    if _struct_class(obj) is not None:
        if _struct_class(obj).__struct_config__.array_like:
            raise _Unsure  # (its fields are at indexes, its tag first)
        named = [f.type for f in msgspec.structs.fields(obj) if f.encode_name == name]
    else:
        named = [t for n, t in typing.get_type_hints(obj, include_extras=True).items() if n == name]
    if len(named) != 1:
        raise _Unsure
    return named[0]


def _tagged(member: Any, value: Any) -> bool:
    """Whether ``value`` (a mapping) holds the tag of the Struct ``member``."""
    cls = _struct_class(member)
    if cls is None or not isinstance(value, dict):
        return False
    config = cls.__struct_config__
    tag = value.get(config.tag_field, _Unsure) if config.tag_field is not None else _Unsure
    return type(tag) is type(config.tag) and tag == config.tag


def _item_type(typ: Any, index: int) -> Any:
    """The type of item ``index`` of an array decoded as ``typ``."""
    arrays = [m for m in _members(typ) if typing.get_origin(m) in (list, tuple, set, frozenset)]
    arrays += [m for m in _members(typ) if m in (list, tuple, set, frozenset)]
    if len(arrays) != 1:
        raise _Unsure
    args = typing.get_args(arrays[0])
    if not args:
        return Any
    if typing.get_origin(arrays[0]) is not tuple or args[-1:] == (Ellipsis,):
        return args[0]
    if index >= len(args):
        raise _Unsure
    return args[index]


def _mapping_args(typ: Any) -> tuple[Any, Any]:
    """The types of the keys and values of a mapping decoded as ``typ``."""
    mappings = [
        m
        for m in _members(typ)
        if m is dict
        or typing.get_origin(m) in (dict, collections.abc.Mapping, collections.abc.MutableMapping)
    ]
    if len(mappings) != 1:
        raise _Unsure
    args = typing.get_args(mappings[0])
    return (args[0], args[1]) if len(args) == 2 else (Any, Any)


def _value_type(typ: Any) -> Any:
    """The type of the values of a mapping decoded as ``typ``."""
    return _mapping_args(typ)[1]


def _key_refused(typ: Any, key: Any, msg: str) -> bool:
    """Whether ``key``, decoded alone as a key of a mapping decoded as ``typ``, fails
    with msgspec's message ``msg`` (text a view reads as a number, ``"1"`` for an int
    key, is fine: a typed view decodes with ``str_keys``)."""
    key_type = _mapping_args(typ)[0]
    try:
        msgspec.convert({key: None}, type=dict[key_type, Any], str_keys=True)  # type: ignore[valid-type]
    except msgspec.ValidationError as exc:
        return str(exc) == msg + " - at `key` in `$`"
    return False


# msgspec's own refusals, which tell an entry alone (not a Struct's __post_init__)
_OWN_WORDS = ("Expected `", "Object missing required field `", "Object contains unknown field `",
              "Invalid ")  # fmt: skip


def _decoded_path(
    raw_path: str, data: Any, msg: str, type_: Any, key: Any
) -> tuple[str, list[str] | None] | None:
    """The rendered key path msgspec's ``raw_path`` leads to in ``data`` decoded as
    ``type_``, each ``[...]`` the key of the entry msgspec refused: the first entry of
    that mapping that, decoded alone as the mapping's value type, fails, and fails with
    this message at the rest of the path (a valid entry of another tag is passed over,
    whatever it holds). For a key's message (``key``), the key of the mapping the path
    ends at that the message refuses. With it, the fields (as documents spell them) of
    the Struct decoded there (its tag's), or None. None where the entry cannot be told
    for certain: the mapping is named rather than an entry that is fine."""
    steps = [(m.group(), *m.groups()) for m in _RAW_STEP.finditer(raw_path)]
    if "".join(step[0] for step in steps) != raw_path:
        return None  # a step this reading does not know
    # past the last [...], the entry's own refusal has told the rest: its types only
    # serve "did you mean" (a type not told is no reason to doubt the path)
    typed = max((at for at, step in enumerate(steps) if step[3]), default=-1)

    def step_type(at: int, find: Callable[[], Any]) -> Any:
        try:
            return find()
        except Exception:
            if at < typed:
                raise _Unsure from None
            return Any

    def walk(value: Any, typ: Any, at: int, path: str) -> tuple[str, list[str] | None]:
        if at == len(steps):
            if key:
                fails = _failing(msg)
                if fails is None or not isinstance(value, dict):
                    raise _Unsure
                refused = [k for k in value if fails(k) and _key_refused(typ, k, msg)]
                if not refused:
                    raise _Unsure
                return child_key_path(path, refused[0]), None
            try:
                return path, _field_names(typ, value)
            except Exception:  # no one Struct there: no fields to suggest
                return path, None
        _, field, index, _any = steps[at]
        if field:
            if isinstance(value, dict) and field in value:
                item = value[field]
            elif isinstance(value, msgspec.Struct) and hasattr(value, field):
                item = getattr(value, field)
            else:
                raise _Unsure
            item_type = step_type(at, lambda: _field_type(typ, value, field))
            return walk(item, item_type, at + 1, join_key_paths(path, field))
        if index:
            if not isinstance(value, (list, tuple)) or int(index) >= len(value):
                raise _Unsure
            item_type = step_type(at, lambda: _item_type(typ, int(index)))
            return walk(value[int(index)], item_type, at + 1, f"{path}[{index}]")
        if not isinstance(value, dict):
            raise _Unsure
        item_type = _value_type(typ)
        rest = "".join(step[0] for step in steps[at + 1 :])
        said = msg + (" - at `key` in" if key else " - at") + f" `${rest}`"
        if not rest and not key:
            said = msg
        # A Struct's own check (its __post_init__'s message) may depend on the entries
        # decoded before (a name taken): an entry fine in the document can fail alone,
        # so such a message names an entry only where no other fails with it.
        own = _failing(msg) is not None or msg.startswith(_OWN_WORDS)
        failed: list[tuple[Any, Any]] = []
        for name, item in value.items():
            try:
                msgspec.convert(item, type=item_type, str_keys=True)
            except msgspec.ValidationError as exc:
                if str(exc) == said:
                    failed.append((name, item))
                elif not failed:  # refused otherwise: not the data msgspec read
                    raise _Unsure from None
                if failed and (own or len(failed) > 1):
                    break
        if len(failed) != 1:
            raise _Unsure  # every entry decodes alone, or a check's message twice
        name, item = failed[0]
        return walk(item, item_type, at + 1, child_key_path(path, name))

    try:
        return walk(data, type_, 0, "")
    except (_Unsure, RecursionError):
        return None


_BRACKET_KEY = re.compile(r"\['((?:[^'\\]|\\.)*)'\]")


_UNKNOWN_FIELD = re.compile(r"^Object contains unknown field `(?P<field>.*)`$", re.DOTALL)
_TYPE_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[(\.\.\.|'(?:[^'\\]|\\.)*')\]")


def _fields_at(type_: Any, raw_path: str) -> list[str] | None:
    """The field names (as documents spell them) of the Struct that ``type_`` holds at
    msgspec's ``raw_path``, or None where the path does not lead to one Struct (a union
    of several, a step the type does not have)."""
    info: Any = msgspec.inspect.type_info(type_)
    steps = _TYPE_STEP.findall(raw_path)
    if "".join(a and "." + a or b and f"[{b}]" or f"[{c}]" for a, b, c in steps) != raw_path:
        return None
    for name, index, key in steps:
        info = _one(info)
        if name:
            if not isinstance(info, msgspec.inspect.StructType):
                return None
            match = [f.type for f in info.fields if f.encode_name == name]
            if not match:
                return None
            info = match[0]
        elif index:
            if isinstance(info, msgspec.inspect.TupleType):
                if int(index) >= len(info.item_types):
                    return None
                info = info.item_types[int(index)]
            elif isinstance(info, msgspec.inspect.CollectionType):
                info = info.item_type
            else:
                return None
        elif key:
            if not isinstance(info, msgspec.inspect.DictType):
                return None
            info = info.value_type
    info = _one(info)
    if not isinstance(info, msgspec.inspect.StructType):
        return None
    return [f.encode_name for f in info.fields]


def _one(info: Any) -> Any:
    """``info``, or the one type other than None of a union (else the union)."""
    if isinstance(info, msgspec.inspect.UnionType):
        inner = [t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)]
        if len(inner) == 1:
            return inner[0]
    return info


_UNKNOWN_HEAD = "Object contains unknown field `"
_AT = "` - at `$"
_STRICT_PATH = re.compile(r"(?:\.[^.\[\]`'\\]+|\[\d+\]|\[\.\.\.\]|\['(?:[^'\\]|\\.)*'\])*")
_SUFFIX = re.compile(r" - at (`key` in )?`\$")


def _split(text: str) -> tuple[str, str | None, str]:
    """msgspec's message ``text`` as (its message, "`key` in " or None, its path): the
    path is the last `` - at `$...` `` that reads as one, the end of ``text``. A value
    the message shows (``Invalid value 'x` - at `$.a'``) may hold the same words."""
    suffixes = list(_SUFFIX.finditer(text)) if text.endswith("`") else []
    for m in reversed(suffixes):  # (the first alone, where none reads as a path: a
        rest = text[m.end() : -1]  # field oddly named, ``$.a']``)
        if m is suffixes[0] or _STRICT_PATH.fullmatch(rest):
            return text[: m.start()], m.group(1), rest
    return text, None, ""


def _unknown_field_at(message: str, data: Any, type_: Any) -> tuple[str, str]:
    """(the unknown field, msgspec's path to the object holding it) in ``message``.
    msgspec quotes the field as the document wrote it: a field named ``x` - at `$.a``
    at the top reads as field ``x`` at ``.a``. Each reading is tried, the shortest
    field first: the one whose object holds the field in ``data``, else the one where
    ``type_`` has a Struct without that field, else the shortest."""
    body = message[len(_UNKNOWN_HEAD) :]
    readings: list[tuple[str, str]] = []
    at = body.find(_AT)
    while at >= 0:
        rest = body[at + len(_AT) :]
        if rest.endswith("`") and _STRICT_PATH.fullmatch(rest[:-1]):
            readings.append((body[:at], rest[:-1]))
        at = body.find(_AT, at + 1)
    readings.append((body[:-1], ""))  # the field alone, at the top
    if len(readings) == 1:
        return readings[0]

    def in_data(field: str, path: str) -> bool:
        holds = lambda v: isinstance(v, dict) and field in v  # noqa: E731
        return any(True for _ in _entries(path, data, holds))

    def in_type(field: str, path: str) -> bool:
        try:
            fields = _fields_at(type_, path)
        except Exception:  # noqa: BLE001 - a type msgspec.inspect cannot describe
            return False
        return fields is not None and field not in fields

    for fits, given in ((in_data, data is not NO_DATA), (in_type, type_ is not None)):
        if given:
            for field, path in readings:
                try:
                    if fits(field, path):
                        return field, path
                except Exception:  # noqa: BLE001 - a document whose items() raises
                    continue
    return readings[0]


def msgspec_problem(
    exc: msgspec.ValidationError | msgspec.DecodeError,
    file: str | None,
    prefix: str = "",
    data: Any = NO_DATA,
    type_: Any = None,
) -> Problem:
    """Turn msgspec's "Expected `array`, got `str` - at `$.flags['x'].rules[1]`" into a
    cfgcore Problem with a key path ``flags.x.rules[1]`` (``prefix`` a rendered path:
    :func:`cfgcore.errors.child_key_path`). msgspec names no key of a mapping (a split's
    weight is at ``split[...]``): with ``data``, the value decoded, each ``[...]`` is
    the key found there (:func:`_entry_path`; for a type holding a tagged union, the
    first entry that fails with this message decoded alone: :func:`_decoded_path`, on
    this error path only). An unknown field is named by its own key
    path (its line, where the document has lines), and with ``type_``, the type
    decoded, the message suggests the fields it may have meant."""
    said, key, raw_path = _split(str(exc))
    unknown = _UNKNOWN_FIELD.match(said)
    if unknown is not None:
        field, raw_path = _unknown_field_at(str(exc), data, type_)
        said = _UNKNOWN_HEAD + field + "`"  # (its name may read as a path)
    found = None
    fields: list[str] | None = None  # the refused object's fields, where its tag told them
    # Entries of a mapping that differ in type by their tag: the one refused is told by
    # decoding each alone (and an unknown field's Struct by its tag, for "did you mean")
    by_tag = ("[...]" in raw_path or unknown is not None) and data is not NO_DATA
    if by_tag and type_ is not None and _has_tagged_union(type_):
        try:
            decoded = _decoded_path(raw_path, data, said, type_, key)
            found, fields = decoded or (None, None)
        except Exception:  # a dict subclass of a Python document whose items() raises
            found = None
    elif data is not NO_DATA and ("[...]" in raw_path or key):
        try:
            if key:  # (by the type, where it is given: a key's text may read as a number)
                decoded = None if type_ is None else _decoded_path(raw_path, data, said, type_, key)
                found = decoded[0] if decoded else _key_path(raw_path, data, said)
            else:
                found = _entry_path(raw_path, data, said)
        except Exception:  # a dict subclass of a Python document whose items() raises
            found = None
    if found is not None:
        path = join_key_paths(prefix, found)
    else:
        path = _BRACKET_KEY.sub(lambda k: child_key_path("_", k.group(1))[1:], raw_path)
        path = join_key_paths(prefix, path.lstrip("."))
    if unknown is not None:  # named by its own key path (its line), "did you mean"
        return Problem(
            path=child_key_path(path, field),
            message="unknown field" + _suggested(field, type_, raw_path, fields),
            file=file,
        )
    msg = said.replace("`", "").replace(" | null", "")
    if msg[1:2].islower():  # "Expected ..." -> "expected ...", "JSON is ..." stays
        msg = msg[:1].lower() + msg[1:]
    if key:  # "... - at `key` in `$.flags['x'].variants`": a key of that object
        msg += " (a key)"  # (named in the path where the data tells which: variants[5])
    return Problem(path=path, message=msg, file=file)


def _suggested(field: str, type_: Any, raw_path: str, fields: list[str] | None = None) -> str:
    """`` (did you mean 'variants'?)`` for an unknown ``field`` of the Struct ``type_``
    holds at ``raw_path`` (``fields``, where the data told it), or ``""``."""
    from cfgcore.config.tree import did_you_mean

    if fields:
        return did_you_mean(field, fields)
    if type_ is None:
        return ""
    try:
        fields = _fields_at(type_, raw_path)
    except Exception:  # a type msgspec.inspect cannot describe
        return ""
    return did_you_mean(field, fields) if fields else ""
