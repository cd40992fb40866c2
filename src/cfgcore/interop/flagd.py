"""Import flagd flag definitions into a cfgcore snapshot (and export the ones that fit).

>>> from cfgcore import Engine
>>> from cfgcore.interop import flagd
>>> doc = {"flags": {"banner": {"state": "ENABLED", "variants": {"on": True, "off": False},
...        "defaultVariant": "off",
...        "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on"]}}}}
>>> engine = Engine.from_snapshot(flagd.to_snapshot(doc))
>>> engine.evaluate("banner", flagd.context("u1", {"email": "a@example.com"})).value
True

The JSONLogic ``targeting`` of each flag is lowered to ordinary cfgcore rules: ``if``
trees become rules in branch order (the first that matches serves, and a branch that may
give null is negated in the rules after it, so no later branch answers for it; one rule
per branch naming a variant), ``fractional`` becomes a rule
bucketed with flagd's own hashing (:class:`cfgcore.snapshot.Hashing` scheme ``flagd_v2``
or ``flagd_v3``, chosen per import, default v3), and the conditions (``==``, ``!=``,
``===``, ``!==``, ``<``, ``<=``, ``>``, ``>=``, ``in``, ``and``, ``or``, ``!``, ``!!``,
``var``, ``starts_with``, ``ends_with``, ``sem_ver``, ``$ref``) become cfgcore
conditions (ordering against a string literal as json-logic orders: strings by code
point, null as "null", numbers by the literal's number). A ``var`` with a default value
(``{"var": ["tier", "free"]}``) reads the default where the attribute is missing or null,
as flagd's Go and Python evaluators do: a test over it becomes "the attribute is set and
the test holds for it, or it is not and the test holds for the default", the second part
decided at import. Tests on ``$flagd.flagKey`` are decided at import too. Anything else
(``cat`` outside a bucketing key, ``substr``, arithmetic, a ``var`` compared with another
``var``, a default that is itself an operation, ...) is an import error naming the flag
and the construct.

Where flagd's evaluators disagree, cfgcore answers as flagd's Python in-process
evaluator (json-logic) and JSONLogic's reference (json-logic-js) do: an operation whose
argument is not an array takes it as its only operand, an empty ``and`` is false (the
Go evaluator reads it as true), and a ``var`` naming a variant with a number or a
boolean names it by Python's text of the value (``1.0`` names "1.0"; Go's "1"). A
variant named "" is refused: the Python evaluator reads it as no variant, Go serves it.

Evaluation follows flagd: :func:`resolve` maps cfgcore's answer to flagd's (the
caller's default for a disabled flag or a flag without a default variant, reason
``TARGETING_MATCH`` for a fractional match, flag-set metadata merged under the
flag's own).
"""

from __future__ import annotations

import collections
import datetime
import itertools
import json
import math
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from cfgcore._encoding import utf8_encodable
from cfgcore._lower import _SEMVER as _STRICT_SEMVER
from cfgcore._lower import MAX_CONDITION_DEPTH
from cfgcore._records import unservable
from cfgcore.compiler import value_kind
from cfgcore.details import ErrorCode, Reason
from cfgcore.errors import Problem, child_key_path, join_key_paths
from cfgcore.interop import (
    MALFORMED,
    InteropError,
    _exact,
    condition_height,
    fit_depth,
    malformed,
    type_name,
)
from cfgcore.interop._derived import (
    DerivedAttributes,
    ReadPath,
    SnapshotNames,
    derived_names,
    read_names,
)
from cfgcore.interop._escaped_names import (
    ESCAPED_HASH,
    escape_name,
    split_derived,
    unescape_name,
)
from cfgcore.interop._hashing import cbor_encode, cbor_text_head, murmur3_32
from cfgcore.interop._plain import leaving_out, plain_key, plain_pairs, plain_value
from cfgcore.interop.growthbook import HEAD, MAX_PATH_DEPTH, MAX_REGEX_INPUT, string_order
from cfgcore.snapshot import Condition, Snapshot, snapshot_from_dict

__all__ = [
    "Resolution",
    "bucketing_attributes",
    "context",
    "from_snapshot",
    "resolve",
    "to_snapshot",
]

FLAG_KEY = "$flagd.flagKey"
TIMESTAMP = "$flagd.timestamp"
TARGETING_KEY = "targetingKey"
NO_DEFAULT = "#no-default"  # variant served where flagd falls back to the caller's default
INVALID = "#invalid"  # targeting named a variant the flag does not have
PARSE_ERROR = "#parse-error"  # a flag refused with on_error="keep"
SEMVER = "#semver"  # suffix of the derived attribute holding a normalised version
SEMLONG = "#semlong"  # suffix: set where #semver stands in for a version too long to read
# + JSON [flag key, attribute, static weights]: which entry fractional v3 picks where the
# attribute is a [variant, weight] array (an entry itself): see _ArrayEntries
FRACTION = "#fraction:"
# + JSON [attribute, operator, normal-form constant]: sem_ver of a value past 256
# characters against a constant too long for its #semver stand-in; see _ArrayEntries
SEMCMP = "#semcmp:"
CBOR = "#cbor"  # suffix of the derived attribute: hex of the value's deterministic CBOR
SINCE = "#since"  # suffix of the derived attribute: $flagd.timestamp minus a number
CAT = "#cat"  # suffix: JSONLogic's text of a value that is no string (what cat reads)
_RESERVED = (NO_DEFAULT, INVALID, PARSE_ERROR)
_NEVER: dict[str, Any] = {"any": []}
_ALWAYS: dict[str, Any] = {"all": []}
_LOOSE_SEMVER = re.compile(
    r"^[vV]?(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?"
    r"(-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)


_SEMVER_START = frozenset("0123456789vV")
# First characters of the text Python's float() reads as a number (ASCII ones; any
# non-ASCII first character is tried too: float() reads Unicode digits and spaces)
_NUMERIC_START = frozenset("0123456789+-.iI \t\n\r\f\v")
# json-logic's to_number (flagd's Python evaluator): "inf" in any case, signed or not,
# is NaN there (JavaScript does not read it), "Infinity" is not
_PY_INF = frozenset(("inf", "+inf", "-inf"))

# Suffixes of attributes context() derives for JSONLogic's coercions (see _loose_eq):
NUM = "#num"  # a number, or a boolean as 0/1
SNUM = "#snum"  # a string's number, when it reads as one
LNUM = "#lnum"  # an array's number ([] is 0, [x] is x's number)
STR = "#str"  # an array's or an object's text (items joined by ",", "[object Object]")
TRUTHY = "#truthy"  # an array's or an object's JSONLogic truthiness
ITEMS = "#items"  # an array of strings as "\0a\0b\0", for "in" membership
NULLS = "#nulls"  # true for an array holding null, for "in" membership of null
# the longest literal whose prefixes (suffixes) a starts_with (ends_with) by a context
# value lists: one constant per character
MAX_AFFIX_SUBJECT = 1000
PYNAME = "#pyname"  # a float's Python text ("1.0"): the variant a var naming one names


def _string_number(text: str) -> float | None:
    """The number flagd's Python evaluator reads in ``text`` (json-logic's to_number:
    Python's ``float(text)``, so surrounding whitespace, ``_`` between digits, Unicode
    digits and "Infinity" read as numbers; "inf" and NaN text do not), or None (NaN)."""
    if text.strip().lower() in _PY_INF:
        return None
    try:
        x = float(text)
    except ValueError:
        return None
    return x if not math.isnan(x) else None


def _cat_text(value: Any) -> str | None:
    """The text JSONLogic's ``cat`` makes of ``value`` in flagd's Python evaluator
    (json-logic's to_string): a boolean as Python's "True"/"False", a float as
    "%.15g", null as "null", an array's items joined by ",", an object as
    "[object Object]"; None for a value that is no JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, float):
        return "%.15g" % value  # noqa: UP031 - json-logic's own format
    if isinstance(value, int):  # a boolean too: str(True) is "True"
        try:
            return str(value)
        except ValueError:  # past Python's int digits: json-logic raises there too
            return None
    if isinstance(value, dict):
        return "[object Object]"
    if isinstance(value, (list, tuple)):
        return _list_text(value)
    return None


def _ordered_number(value: Any) -> bool:
    """A number JSONLogic orders: not NaN (Infinity is above every other number) and,
    for an int, one a double holds (cfgcore compares numbers as doubles)."""
    if isinstance(value, float):
        return not math.isnan(value)
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            float(value)
        except OverflowError:
            return False
        return True
    return False


def _list_number(items: Any) -> float | None:
    """JSONLogic's number of an array: [] is 0, a one-item array its item's, else NaN."""
    if not items:
        return 0
    if len(items) > 1:
        return None
    (x,) = items
    if x is None:
        return 0
    if isinstance(x, bool):
        return int(x)
    if isinstance(x, (int, float)):
        return x if _ordered_number(x) else None
    if isinstance(x, str):
        return _string_number(x)
    if isinstance(x, list):  # json-logic's to_number raises on a tuple
        return _list_number(x)
    if isinstance(x, dict):
        return None  # an object: NaN
    return _foreign_number(x)  # to_number of the one item, as of a value alone


def _list_text(items: Any) -> str | None:
    """An array's text as flagd's Python evaluator makes it (json-logic's to_string:
    items joined by ",", a boolean as Python's "True"/"False", a float as "%.15g", null
    as "null", an object as "[object Object]"), or None for a value that is no JSON."""
    parts = []
    for x in items:
        if isinstance(x, str):
            parts.append(x)
        elif isinstance(x, float):
            parts.append("%.15g" % x)  # noqa: UP031 - json-logic's own format
        elif isinstance(x, int):  # a boolean too: str(True) is "True"
            try:
                parts.append(str(x))
            except ValueError:  # past Python's int digits
                return None
        elif x is None:
            parts.append("null")
        elif isinstance(x, dict):
            parts.append("[object Object]")
        elif isinstance(x, list):  # (a tuple's text is Python's str() of it)
            inner = _list_text(x)
            if inner is None:
                return None
            parts.append(inner)
        else:
            return None
    return ",".join(parts)


class _Refuse(Exception):
    """A construct that cannot be lowered; the message names it. ``at``: its key path
    below the node being lowered where it was raised, which each node it is raised
    through puts its own key in front of (:meth:`under`), so the refusal names its
    place in the flag (``targeting.if[0].and[1].foo``, ``variants.off``). Raised out of
    a ``$ref`` evaluator's expansion (:meth:`through`), ``at`` is the evaluator's own
    path in the document (``$evaluators.e.or[1]``) and ``ref`` the path below the flag
    of the ``$ref`` that reached it, which the nodes above build instead."""

    def __init__(self, message: str, at: str = "") -> None:
        super().__init__(message)
        self.at = at
        self.evaluator: str | None = None
        self.ref = ""

    @staticmethod
    def of(exc: BaseException) -> _Refuse:
        """``exc`` as a refusal: one of MALFORMED (a value of the wrong type inside the
        flag, nesting too deep for the interpreter) says so in its reason."""
        if isinstance(exc, _Refuse):
            return exc
        return (
            _TooDeep(malformed(exc)) if isinstance(exc, RecursionError) else _Refuse(malformed(exc))
        )

    def under(self, *keys: Any) -> _Refuse:
        """This refusal, raised within ``keys`` (``"if", 0``): its path below them."""
        outer = ""
        for key in keys:
            outer = child_key_path(outer, key)
        if self.evaluator is None:
            self.at = join_key_paths(outer, self.at)
        else:
            self.ref = join_key_paths(outer, self.ref)
        return self

    def through(self, name: str) -> _Refuse:
        """This refusal, raised within evaluator ``name``'s expansion where a ``$ref``
        reached it: named by the evaluator's path, the ``$ref``'s built from here."""
        if self.evaluator is None:
            self.at = join_key_paths(child_key_path("$evaluators", name), self.at)
            self.evaluator = name
        return self


class _TooLarge(_Refuse):
    """A refusal of the targeting as a whole (what it lowers or expands to): named by
    the targeting, wherever in it the bound was passed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, at="targeting")

    def under(self, *keys: Any) -> _Refuse:
        return self

    def through(self, name: str) -> _Refuse:
        return self


class _TooDeep(_Refuse):
    """Nesting deeper than the interpreter's stack: named by the first
    :data:`_DEEP_LEVELS_SHOWN` keys of the path to where it ran out (the whole path is
    as long as the nesting: thousands of levels)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.keys: collections.deque[Any] = collections.deque()  # below the flag, or evaluator
        self.ref_keys: collections.deque[Any] = collections.deque()  # of the $ref, below the flag

    def under(self, *keys: Any) -> _Refuse:
        if self.evaluator is None:
            self.keys.extendleft(reversed(keys))
            self.at = _first_keys(self.keys)
        else:
            self.ref_keys.extendleft(reversed(keys))
            self.ref = _first_keys(self.ref_keys)
        return self


_DEEP_LEVELS_SHOWN = 12


def _first_keys(keys: Iterable[Any]) -> str:
    """The key path of the first :data:`_DEEP_LEVELS_SHOWN` of ``keys``."""
    path = ""
    for key in itertools.islice(keys, _DEEP_LEVELS_SHOWN):
        path = child_key_path(path, key)
    return path


def _placed(exc: BaseException, *keys: Any) -> _Refuse:
    """``exc`` (a refusal, or one of MALFORMED) raised within ``keys``: :meth:`_Refuse.under`."""
    return _Refuse.of(exc).under(*keys)


# The values JSON gives (a bool is an int): context() derives JSONLogic's coercions of
# these. Any other value is foreign to flagd's protocol (see _put_foreign).
_JSON_VALUES = (str, int, float, list, dict, type(None))
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def _put_foreign(out: dict[str, Any], key: str, value: Any, ts: int, arrays: list[str]) -> None:
    """What context() derives for a value JSON never gives (a tuple, a set, a mapping that
    is no dict, bytes, a Decimal, a date or datetime, ...), as flagd's Python evaluator
    (json-logic) reads it: ``var`` reads into dicts and lists alone, ``in`` searches
    lists and strings alone, and ``!!`` calls anything else true (to_bool's last case).
    A timezone-aware datetime is also a number, its milliseconds since 1970 (to_number;
    a date or a naive datetime makes it raise), and buckets as CBOR tag 0 (cbor2, which
    flagd's fractional encodes with). A tuple of one or two items can be a
    ``fractional`` bucket entry, as a list can. Anything ``float()`` reads (a Decimal, a
    Fraction, a NumPy number) is that number where a check coerces it (``<``, ``==``
    with a number). Other coercions of such values (a tuple's text, Python's ``===`` and
    ``in`` with a Decimal, a Decimal's version) are not derived: checks read them as no
    value."""
    out[key] = value
    out[key + TRUTHY] = True
    if isinstance(value, tuple) and (
        len(value) == 1
        or (len(value) == 2 and type(value[1]) is not bool and isinstance(value[1], int))
    ):
        arrays.append(key)  # a [variant, weight] entry: see _ArrayEntries
    num = _foreign_number(value)
    if num is None:
        return
    if isinstance(value, datetime.date):
        try:
            text = value.isoformat().replace("+00:00", "Z").encode("utf-8")
        except Exception:  # a tzinfo that answers nonsense
            return
        out[key + CBOR] = "c0" + cbor_text_head(len(text)).hex() + text.hex()
    out[key + NUM] = num
    out[key + SINCE] = ts - num  # comparisons with $flagd.timestamp


def _foreign_number(value: Any) -> float | None:
    """json-logic's to_number (flagd's Python evaluator) of a value JSON never gives: a
    timezone-aware datetime's milliseconds since 1970, else what ``float()`` reads (a
    Decimal, a Fraction, a NumPy number); None where it raises (a date, a naive
    datetime, a tuple) or reads NaN, which orders with nothing. Also an array's number
    when that value is its one item (:func:`_list_number`)."""
    if isinstance(value, datetime.date):
        if not isinstance(value, datetime.datetime):
            return None
        try:
            if value.utcoffset() is None:
                return None  # to_number raises on a naive datetime (and so flagd)
            return (value - _EPOCH).total_seconds() * 1000.0
        except Exception:  # a tzinfo that answers nonsense
            return None
    try:  # to_number's last case
        num = float(value)
    except Exception:
        return None
    return None if math.isnan(num) else num


# -- context ------------------------------------------------------------------------------
MAX_CONTEXT_KEYS = 8192  # context() derives at most about this many keys up front


class _Budget(Exception):
    pass


_ABSENT = object()


def _flatten(
    out: dict[str, Any],
    key: str,
    value: Any,
    ts: int,
    *,
    inside: set[int] | None = None,
    deep: bool = True,
    budget: int | None = None,
    root: bool = False,
    reads: ReadPath | None = None,
) -> tuple[list[str], int]:
    """Put the attributes context() derives for ``value`` at ``key`` into ``out`` (with
    ``deep``, those of the values inside an object too, which ``inside``, the objects
    on the path to it, stops at a cycle; past ``budget`` keys, raise _Budget). Returns
    the keys of ``[variant, weight]`` arrays (see _ArrayEntries) and the count of
    versions past 256 characters. ``root``: ``value`` is the attributes (``key`` "").
    ``reads``: the paths a snapshot reads at ``key`` (see _Reads), None for all; a value
    inside an object on no such path is passed over."""
    inside = set() if inside is None else inside
    arrays: list[str] = []
    longs = 0

    def put(key: str, value: Any, top: bool = False, want: ReadPath | None = None) -> None:
        nonlocal longs
        if budget is not None and len(out) > budget:
            raise _Budget
        kind = type(value)
        if kind is str:  # the common cases first, without the general encoder
            out[key] = value
            if len(value) > MAX_REGEX_INPUT:  # string order decides by the first characters
                out[key + HEAD] = value[:MAX_REGEX_INPUT]
            try:
                data = value.encode("utf-8")
            except UnicodeEncodeError:
                pass  # a lone surrogate: flagd cannot encode it (its fractional is null)
            else:
                out[key + CBOR] = cbor_text_head(len(data)).hex() + data.hex()
            if value[:1] in _SEMVER_START:
                ver = _normal_semver(value)
                if ver is not None:
                    longs += _put_semver(out, key, ver)
            first = value[:1]
            if first in _NUMERIC_START or (first and not first.isascii()):
                num = _string_number(value)
                if num is not None:
                    out[key + SNUM] = num
            return
        if kind is int and 0 <= value < 2**64:
            out[key] = value
            out[key + NUM] = value
            if value > _exact.EXACT:
                _exact.derive(out, key + NUM, value)
            out[key + CBOR] = cbor_encode(value).hex()
            out[key + SEMVER] = f"{value}.0.0"  # flagd coerces a number to a version
            out[key + CAT] = str(value)  # cat's text (the int itself would hash as CBOR int)
            out[key + SINCE] = ts - value  # comparisons with $flagd.timestamp
            return
        if isinstance(value, dict) or (top and isinstance(value, Mapping)):
            if key.count(".") >= MAX_PATH_DEPTH - 1 or id(value) in inside:
                return  # no var reads deeper (refused on import); no JSON cycles
            if deep:
                inside.add(id(value))
                for k, v in value.items():
                    k = str(k)
                    if "." in k:
                        # flagd's var splits its name at every dot: no var reaches this
                        # key (and "a.b" here would shadow the path a -> b)
                        continue
                    if "#" in k:  # '#!', as the importer writes var names: "a#num"
                        k = escape_name(k)  # cannot stand for a's derived number
                    if want is None:
                        put(k if top else f"{key}.{k}", v)
                    elif (below := want.below.get(k)) is not None:  # a path read alone
                        put(k if top else f"{key}.{k}", v, False, below)
                inside.discard(id(value))
            if top:  # (the attributes themselves: an attribute "" is one more name)
                return
            out[key] = dict(value)
            out[key + TRUTHY] = True  # JSONLogic: every object is truthy
            out[key + STR] = out[key + CAT] = "[object Object]"
        elif not isinstance(value, _JSON_VALUES):
            _put_foreign(out, key, value, ts, arrays)
            return
        else:
            out[key] = value
            try:
                _exact.derive(out, key + NUM, value)  # ints past 2**53 or past a double
                text = _cat_text(value)
                if text is not None and not isinstance(value, str):
                    out[key + CAT] = text
                if isinstance(value, bool) or _ordered_number(value):
                    out[key + NUM] = int(value) if isinstance(value, bool) else value
                elif isinstance(value, list):
                    if len(value) == 1 or (
                        len(value) == 2 and type(value[1]) is not bool and isinstance(value[1], int)
                    ):
                        arrays.append(key)  # a [variant, weight] entry: see _ArrayEntries
                    out[key + TRUTHY] = len(value) > 0  # JSONLogic: only [] is a falsy array
                    num = _list_number(value)
                    if num is not None:
                        out[key + LNUM] = num
                        _exact.derive(out, key + LNUM, num)
                    if text is not None:  # (cat's text of an array is its text)
                        out[key + STR] = text
                        if len(text) > MAX_REGEX_INPUT:
                            out[key + STR + HEAD] = text[:MAX_REGEX_INPUT]
                    # (only a string equals a string needle: the other items are left out;
                    # a str subclass is one too, joined below by its stored text)
                    if want is None or ITEMS in want.suffixes:  # (a pass: when read)
                        texts = [v for v in value if isinstance(v, str)]
                        if texts and all("\0" not in v for v in texts):
                            out[key + ITEMS] = "\0" + "\0".join(texts) + "\0"
                    if (want is None or NULLS in want.suffixes) and any(v is None for v in value):
                        out[key + NULLS] = True
                ver = _normal_semver(value)
                if ver is not None:
                    longs += _put_semver(out, key, ver)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    out[key + SINCE] = ts - value
                if isinstance(value, float):
                    # flagd's Python evaluator names a variant by str() of a var's value:
                    # 1.0 names "1.0", where an int 1 names "1"
                    out[key + PYNAME] = float.__repr__(value)
            except RecursionError:
                pass  # arrays nested past Python's stack: their text and number unknown
        # v3: a null bucketing key is null (the default variant). An array is no bucketing
        # key either: flagd's ADR (fractional-non-string-rand-units) and its evaluators
        # read a first argument that evaluates to an array as a bucket entry of the
        # distribution, bucketing by flagKey and targetingKey. cfgcore cannot weigh an
        # entry read from the context, so it answers the default variant: flagd's answer
        # too unless the array is a valid [variant, weight] entry and a targeting key is set.
        if value is not None and not isinstance(value, list):
            try:
                out[key + CBOR] = cbor_encode(value).hex()
            except (TypeError, ValueError, OverflowError, RecursionError):
                # not a JSON value, text holding a lone surrogate (flagd cannot encode
                # it either: its fractional is null) or nested past the stack
                pass

    put(key, value, root, reads)
    return arrays, longs


def context(
    targeting_key: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    *,
    now: float | None = None,
    bucketing: Any = None,
) -> dict[str, Any]:
    """Map a flagd evaluation context to cfgcore attributes.

    Nested objects are also reachable by dotted path (``{"user": {"name": "x"}}`` gives
    ``user.name``; a key holding a dot is left out, as flagd's ``var``, which splits its
    name at every dot, never reads it; a ``#`` in a key is written ``#!``, as the
    importer writes the ``var`` naming it, so that no attribute, ``{"a#num": 5}``,
    stands for a key derived below), ``targetingKey`` and ``$flagd.timestamp`` (Unix
    seconds, ``now`` or the clock) are added, and each value that reads as a version
    gets a ``<key>#semver`` normal form (flagd's ``sem_ver`` accepts ``v1``, ``1.2`` and
    numbers) and every value the hex of its deterministic CBOR, ``<key>#cbor`` (what
    fractional v3 hashes). JSONLogic's coercions read derived attributes too: a value's
    number (``#num``, ``#snum`` for numeric text, ``#lnum`` for a one-item array), an
    array's or object's text (``#str``) and truthiness (``#truthy``), and an array of
    strings for ``in`` (``#items``). Objects and arrays are dicts and lists, as flagd's
    Python evaluator reads them; a value JSON never gives (a tuple, a set, a mapping
    that is no dict, a datetime, a Decimal) is read as that evaluator reads it where
    :func:`_put_foreign` says.

    flagd reads a ``fractional`` bucketing value that is a ``[variant]`` or
    ``[variant, int]`` array as one more bucket entry; for such a value the result is a
    ``dict`` subclass that answers it when a check reads it (keep the object: a copy
    into a plain dict loses it), and a check with it is slower.

    ``bucketing``: the engine that checks the context (or provider, anything with a
    ``source`` snapshot) or the :class:`~cfgcore.snapshot.Snapshot` the flags come
    from. Only an array under an attribute some ``fractional`` weighs as an entry then
    makes that mapping (other arrays, ``groups: ["admin"]``, leave a plain dict), and
    only the keys that snapshot reads are derived: the paths its ``var``s, bucketing
    keys and ``sem_ver`` checks name (``user.age``, not the rest of ``user``), each
    with its keys as before but an array's ``#items`` and ``#nulls`` (a pass over it)
    only where read; ``targetingKey`` and ``$flagd.timestamp`` as always. So a user
    with 40 attributes and 200 ``tags`` costs the few read, with the same answers for
    that snapshot's flags. Build the context for each check (or request): one built
    for a snapshot may lack what another reads (an engine given is read at each call,
    so a reload is followed). The names from :func:`bucketing_attributes` may be
    given instead: they limit the mapping alone. None (the default): any such array
    makes it, and every key is derived.

    Attributes that would derive more than MAX_CONTEXT_KEYS keys (large objects, or
    one object referenced at many places, whose paths multiply with each level) are
    not flattened: the mapping returned derives each key when a check reads it, with
    the same answer (keep that object: a copy into a plain dict loses those keys).

    A value of the application's own type (a ``str``, ``int``, ``float``, ``dict`` or
    ``list`` subclass) is read as given, through its own methods, while they answer.
    Where one raises (an :class:`Exception`), context() reads the attributes again as
    the evaluators read them: a ``str``, ``int`` or ``float`` subclass as its exact
    value (the targeting key too), a ``dict`` or ``list`` subclass by the items it
    stores (an object, an array), keys as values are, never through their own
    methods; a mapping of attributes that is no dict through its ``items()``, none if
    that raises; and an attribute it still cannot read (an object whose ``__class__``
    raises, say) is left out, as if not given, as is such a targeting key. So context()
    raises no Exception but for a wrong ``now`` or ``bucketing``; an interrupt
    propagates. One consequence: a subclass whose methods answer, but otherwise than
    its stored value (a ``__str__`` or ``encode`` of its own), gives the keys derived
    through them (``#cbor``, ``#str``, ...), while a check of the value itself reads
    its exact value; give such values as plain ``str``/``dict``/... where that matters.
    """
    try:
        ts = int(time.time() if now is None else now)
        wanted = None if bucketing is None else _snapshot_reads(bucketing)
        return _context(targeting_key, attributes, ts, wanted)
    except Exception:  # noqa: BLE001 - an application's value whose own method raised
        pass  # (read again below, outside this handler: no chained traceback)
    # The careful reading (cfgcore.interop._plain); a wrong option's error propagates.
    ts = int(time.time() if now is None else plain_key(now))
    wanted = None if bucketing is None else _snapshot_reads(bucketing)
    key = None if targeting_key is None else plain_value(targeting_key)
    if key is not None:
        try:
            _flatten({}, TARGETING_KEY, key, ts)
        except Exception:  # noqa: BLE001 - a targeting key it cannot read: none
            key = None
    pairs = plain_pairs(attributes)
    return leaving_out(lambda some: _context(key, dict(some), ts, wanted), pairs)


def _context(targeting_key: Any, attributes: Any, ts: int, wanted: Any) -> dict[str, Any]:
    """:func:`context` of the values as given, at the timestamp ``ts``; ``wanted``: what
    the ``bucketing`` option names (a snapshot's :class:`_Reads`, or names), or None."""
    out: dict[str, Any] = {}
    attrs = dict(attributes or {})
    # flagd sets these over any attribute of the same name: targetingKey is the
    # context's targeting key (null without one), $flagd its own object
    attrs.pop(TARGETING_KEY, None)
    attrs.pop("$flagd", None)
    fixed: dict[str, Any] = {TIMESTAMP: ts}
    if targeting_key is not None:
        _flatten(fixed, TARGETING_KEY, targeting_key, ts)
    tree = wanted.tree if isinstance(wanted, _Reads) else None
    try:
        arrays, longs = _flatten(out, "", attrs, ts, budget=MAX_CONTEXT_KEYS, root=True, reads=tree)
    except _Budget:  # too many paths to flatten: derive the ones checks read
        return _ArrayEntries(fixed, (attrs, ts))
    out.update(fixed)
    if longs:
        return _ArrayEntries(out)
    if arrays:
        if wanted is not None:
            names = wanted.bucketing if isinstance(wanted, _Reads) else wanted
            if not any(a in names for a in arrays):
                return out
        return _ArrayEntries(out)
    return out


class _Reads:
    """What a snapshot imported from flagd reads of :func:`context`'s keys: the
    attributes its ``fractional`` entries weigh (``bucketing``) and the paths of every
    key (``tree``; None where some key is none context() writes, and the snapshot is
    taken to read everything). ``targetingKey`` and ``$flagd.timestamp`` are always
    written; a ``#fraction:`` key reads its attribute, a ``#semcmp:`` key its
    attribute and that attribute's ``#semlong``."""

    __slots__ = ("bucketing", "tree")

    def __init__(self, snapshot: Snapshot) -> None:
        self.bucketing = bucketing_attributes(snapshot)
        self.tree = _path_tree(read_names(snapshot))


def _path_tree(names: frozenset[str] | None) -> ReadPath | None:
    """The paths (:class:`_Reads`) of the keys ``names`` below the attributes, or None."""
    if names is None:
        return None
    tree = ReadPath()
    for name in names:
        if name.startswith((FRACTION, SEMCMP)):
            try:
                spec = json.loads(name[name.index(":") + 1 :])
            except ValueError:
                return None
            at = 1 if name.startswith(FRACTION) else 0
            if not (isinstance(spec, list) and len(spec) > at and isinstance(spec[at], str)):
                return None
            path, suffixes = spec[at], ["", SEMLONG]
        elif name.startswith("#") and not name.startswith(ESCAPED_HASH):
            return None  # no key context() writes: read everything, as without a snapshot
        else:
            path, suffix = split_derived(name)
            suffixes = [suffix]
        for suffix in suffixes:
            tree.add(path.split("."), suffix)
    return tree


# flagd's bucketing= option: what a snapshot reads (_Reads), or the names given
_snapshot_reads = SnapshotNames("bucketing", _Reads)


def bucketing_attributes(snapshot: Snapshot) -> frozenset[str]:
    """The context attributes whose ``[variant, weight]`` array flags of ``snapshot``
    (imported from flagd) weigh as a ``fractional`` entry: what ``context(...,
    bucketing=...)`` needs to know."""
    return derived_names(snapshot, FRACTION, lambda spec: json.loads(spec)[1])


class _ArrayEntries(DerivedAttributes):
    """context()'s attributes when a value is a ``[variant]`` or ``[variant, int]`` array
    (other arrays are no entry: null either way). flagd v3 reads a ``fractional``
    bucketing value that evaluates to an array as one more ``[variant, weight]`` entry,
    first in the distribution, and buckets by ``[flagKey, targetingKey]`` (flagd's ADR
    fractional-non-string-rand-units; openfeature-flagd-core's _resolve_bucket_by). The
    importer tests ``#fraction:[flag key, attribute, static weights]``, which this
    mapping answers when an evaluator reads it (through ``get()``, as both read a
    mapping that is not an exact dict): the static entry's 1-based index, or for the
    context's entry ``"=" + the variant key flagd looks up + "\\0t"`` (``"\\0f"`` when
    the variant is falsy), or nothing where flagd's fractional is null. A copy into a
    plain dict loses it: keep this object."""

    PREFIX = FRACTION

    def __init__(self, eager: dict[str, Any], lazy: tuple[dict[str, Any], int] | None = None):
        super().__init__(eager)
        self._lazy = lazy  # (the attributes, the timestamp) past context()'s budget

    def get(self, key: Any, default: Any = None) -> Any:
        # also ``#semcmp:[attribute, operator, constant]``: flagd's sem_ver of a version
        # past 256 characters (which #semver only stands in for) and a long constant
        if isinstance(key, str) and key.startswith(SEMCMP):
            try:
                found = _long_sem_ver(self, key[len(SEMCMP) :])
            except Exception:  # never raise on the hot path: no answer is a missing value
                found = None
            return default if found is None else found
        if self._lazy is not None and isinstance(key, str) and not key.startswith(FRACTION):
            found = dict.get(self, key, _ABSENT)
            if found is _ABSENT:
                try:
                    found = self._walk(key)
                except Exception:  # never raise on the hot path: no answer is missing
                    found = None
            return default if found is None else found
        return DerivedAttributes.get(self, key, default)

    def _walk(self, key: str) -> Any:
        """The attribute ``key`` context() would have derived past its budget: the
        value at a path (the key up to its first '#' that is no escaped one of its
        names, each segment unescaped to read the dicts) put as context() puts it,
        without the values inside an object, so a read costs its path."""
        assert self._lazy is not None
        root, ts = self._lazy
        # (a key of names without '#' is split at its first '#', as fast as before)
        for path in (key.partition("#")[0] if "#!" not in key else split_derived(key)[0],):
            node: Any = root
            inside: set[int] = set()
            at = ""
            for seg in path.split("."):  # ("": the attribute named "", as context() puts it)
                if not isinstance(node, dict):  # var reads into dicts alone
                    break
                if at.count(".") >= MAX_PATH_DEPTH - 1 or id(node) in inside:
                    break  # context() reads no deeper (no JSON cycles)
                inside.add(id(node))
                raw = seg if "#" not in seg else unescape_name(seg)
                if raw in node:
                    node = node[raw]
                else:  # a key that is no string, named by its text
                    node = next((v for k, v in node.items() if str(k) == raw), _ABSENT)
                    if node is _ABSENT:
                        break
                at = f"{at}.{seg}" if at else seg
            else:
                mini: dict[str, Any] = {}
                _flatten(mini, path, node, ts, inside=inside, deep=False)
                if key in mini:
                    return mini[key]
        return None

    def derive(self, spec: str) -> int | str | None:
        flag_key, attr, weights = json.loads(spec)
        entry = self.get(attr)
        tk = self.get(TARGETING_KEY)
        if not isinstance(entry, (list, tuple)) or not 1 <= len(entry) <= 2:
            return None  # no [variant, weight] entry: flagd's fractional is null
        if not isinstance(tk, str) or not tk:
            return None  # flagd: no targeting key to bucket by
        weight = entry[1] if len(entry) == 2 else 1
        if isinstance(weight, bool) or not isinstance(weight, int):
            return None  # flagd: "Fractional weight value isn't of type 'int'"
        weight = max(weight, 0)  # flagd clamps negative weights to 0
        total = weight + sum(weights)
        if not 0 < total <= 2**31 - 1:
            return None
        try:
            data = cbor_encode([flag_key, tk])
        except ValueError:  # a lone surrogate: flagd cannot encode it, fractional is null
            return None
        bucket = (murmur3_32(data) * total) >> 32
        if bucket < weight:
            variant = entry[0]
            if variant is None:
                return None
            if isinstance(variant, bool):  # flagd's variant key for a non-string result
                name = "true" if variant else "false"
            else:
                name = variant if isinstance(variant, str) else str(variant)
            if not name.isascii() and not utf8_encodable(name):
                # no variant is named so (no document holds the text): flagd's lookup
                # fails, a GENERAL error; "=\0" is no variant's mark, so it reaches that
                return "=\0"
            return "=" + name + ("\0t" if _js_truthy(variant) else "\0f")
        end = weight
        for i, w in enumerate(weights, 1):
            end += w
            if bucket < end:
                return i
        return None  # pragma: no cover - the weights sum to total


def _constant_cbor(value: Any) -> bytes:
    """The CBOR flagd v3 hashes for a bucketing key the document fixes; _Refuse for text
    holding a lone surrogate (a document built in Python), which flagd cannot encode."""
    try:
        return cbor_encode(value)
    except ValueError:
        raise _Refuse(
            f"fractional bucketing key {value!r:.60} holds a lone surrogate: flagd cannot "
            "encode it (its fractional is null)"
        ) from None


def _long_sem_ver(attrs: dict[str, Any], spec: str) -> int | None:
    """flagd's ``sem_ver`` of the context value of a long version (one context() put a
    stand-in for) against a constant: 1 (true), 0 (false), None (not such a value, or
    flagd's null). Precedence as the semver package flagd uses compares (SemVer 2.0:
    the numbers, then no pre-release above any, then identifier by identifier, numbers
    below text), ``^``/``~`` as flagd: the same major (and minor) version."""
    attr, op, constant = json.loads(spec)
    if attrs.get(attr + SEMLONG) is not True:
        return None
    value = _normal_semver(attrs.get(attr))
    if value is None:
        return None
    a, b = _semver_parts(value), _semver_parts(constant)
    if a is None or b is None:
        return None
    if op == "^":
        return int(a[0][0] == b[0][0])
    if op == "~":
        return int(a[0][:2] == b[0][:2])
    order = (a[0] > b[0]) - (a[0] < b[0])
    if not order:
        order = _prerelease_order(a[1], b[1])
    tests = {"=": order == 0, "!=": order != 0, "<": order < 0, "<=": order <= 0,
             ">": order > 0, ">=": order >= 0}  # fmt: skip
    return int(tests[op]) if op in tests else None


def _semver_parts(ver: str) -> tuple[tuple[int, int, int], str] | None:
    m = _STRICT_SEMVER.fullmatch(ver)
    if m is None:
        return None
    major, minor, patch, pre = m.groups()
    try:
        return (int(major), int(minor), int(patch)), pre or ""
    except ValueError:  # past Python's int digits: the semver package raises (null)
        return None


def _prerelease_order(a: str, b: str) -> int:
    if a == b:
        return 0
    if not a or not b:
        return 1 if not a else -1  # no pre-release is above any

    def key(ident: str) -> tuple[int, int, str]:
        if not ident.isdigit():
            return (1, 0, ident)
        digits = ident.lstrip("0") or "0"
        return (0, len(digits), digits)

    ka, kb = [key(x) for x in a.split(".")], [key(x) for x in b.split(".")]
    for x, y in zip(ka, kb, strict=False):
        if x != y:
            return 1 if x > y else -1
    return (len(ka) > len(kb)) - (len(ka) < len(kb))


# cfgcore reads versions of up to 256 characters (semver_key); flagd's evaluator reads
# any length. A longer version is replaced by a stand-in of at most 256 characters that
# orders as it does against every version of at most SEMVER_KEEP characters (the
# constants to_snapshot accepts without a guard; see _Flag.sem_ver).
SEMVER_KEEP = 120


def _put_semver(out: dict[str, Any], key: str, ver: str) -> bool:
    """Put ``ver``'s #semver (a stand-in past 256 characters): True for a stand-in."""
    if _STRICT_SEMVER.fullmatch(ver) is None:
        # no SemVer 2.0 version (a numeric identifier with a leading zero, a digit that
        # is not ASCII): the semver package flagd uses reads none, sem_ver is null
        return False
    if len(ver) <= 256:
        out[key + SEMVER] = ver
        return False
    stand_in = _semver_stand_in(ver)
    if stand_in is not None:
        out[key + SEMVER] = stand_in
        out[key + SEMLONG] = True
        return True
    return False


def _semver_stand_in(ver: str) -> str | None:
    """A version of at most 256 characters that compares with every version of at most
    SEMVER_KEEP characters as the normal form ``ver`` does and equals none of them, or
    None where flagd's evaluator reads no version (a part past Python's int digits).

    The parts are compared in order; the first part that no short version can share
    decides: a part longer than SEMVER_KEEP (a number becomes 10**SEMVER_KEEP, greater
    than any shorter number; text keeps its first SEMVER_KEEP + 1 characters, which
    decide against any shorter identifier), or a part that ends past SEMVER_KEEP
    characters into the text (no short version holds every part before it)."""
    m = _STRICT_SEMVER.fullmatch(ver)
    if m is None:  # pragma: no cover - _put_semver checked it
        return None
    major, minor, patch, pre = m.groups()
    limit = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 0
    if limit and max(len(major), len(minor), len(patch)) > limit:
        return None  # the semver package's int(part) raises: flagd's sem_ver is null
    parts = [major, minor, patch, *(pre.split(".") if pre else [])]
    kept: list[str] = []
    end = -1  # where the text of the parts so far ends in ``ver``
    for part in parts:
        end += len(part) + 1
        if len(part) > SEMVER_KEEP:
            if part.isdigit():
                part = "1" + "0" * SEMVER_KEEP
            else:
                part = part[: SEMVER_KEEP + 1]
                part += "-" if part.isdigit() else ""  # still an alphanumeric identifier
            kept.append(part)
            break
        kept.append(part)
        if end > SEMVER_KEEP:
            break
    text = ".".join((kept[:3] + ["0", "0"])[:3])
    return text + ("-" + ".".join(kept[3:]) if len(kept) > 3 else "")


def _normal_semver(value: Any) -> str | None:
    """flagd's loose versions as strict SemVer: ``v``/``V`` dropped, missing parts 0."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        try:
            value = str(value)
        except ValueError:  # past Python's 4,300 digits: no text, as to flagd's evaluator
            return None
    elif isinstance(value, float):
        # flagd's evaluator reads a number's text: Python's, so 1.0 is "1.0" (1.0.0)
        # while -0.0 ("-0.0") and 1e20 ("1e+20") are no versions
        value = repr(value)
    if not isinstance(value, str) or value[:1] not in _SEMVER_START:
        return None
    m = _LOOSE_SEMVER.match(value)  # flagd parses the text as it is: no whitespace
    if m is None:
        return None
    major, minor, patch, pre, _build = m.groups()
    return f"{major}.{minor or 0}.{patch or 0}{pre or ''}"


# -- resolution ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Resolution:
    """flagd's answer for one flag: value, variant, reason, error code, metadata."""

    value: Any
    variant: str | None
    reason: str
    error_code: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


def _of_type(default: Any, value: Any) -> tuple[bool, Any]:
    """(whether ``value`` is of the type ``default`` asks for, the value as served).

    The flag type is the default's, as flagd's typed resolutions check it (its Python
    evaluator, FlagdCore, and cfgcore's OpenFeature provider alike): an int asks for an
    integer (a float value is a mismatch), a float for a number (served as a float),
    an object or a list for either. A boolean is no number: FlagdCore serves ``true``
    as 1.0 to a float resolution (Python's bool is an int; its own integer check
    rejects one), flagd's Go evaluator answers TYPE_MISMATCH, and so does cfgcore."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool), value
    if isinstance(default, int):
        return isinstance(value, int), value
    if isinstance(default, float):
        ok = isinstance(value, (int, float))
        return ok, float(value) if ok else value
    if isinstance(default, (Mapping, list, tuple)):
        return isinstance(value, (Mapping, list, tuple)), value
    return value_kind(default) == value_kind(value), value


def resolve(engine: Any, key: str, ctx: Any = None, default: Any = None) -> Resolution:
    """Evaluate an imported flagd flag and answer as flagd does: ``default`` (None: no
    type check) is the caller's default and its type the flag type, as flagd's typed
    resolutions take them (an int asks for an integer, a float for any number, served
    as a float; an object or a list for either)."""
    details = engine.evaluate(key, ctx)
    meta: Mapping[str, Any] = {}
    if details.error_code != ErrorCode.FLAG_NOT_FOUND:
        # By the key the check found (its exact text), not the caller's: one that is no
        # dict key (a list), or a str subclass whose own hash raises, named the flag there.
        source = engine.source
        flag = source.flags.get(details.flag_key) if source is not None else None
        if flag is not None:
            meta = flag.metadata.get("flagd", {})
    if details.error_code is not None:
        return Resolution(default, None, Reason.ERROR, details.error_code, meta)
    variant = details.variant
    if variant == PARSE_ERROR:
        return Resolution(default, None, Reason.ERROR, "PARSE_ERROR", meta)
    if details.reason == Reason.DISABLED:  # (served before the default is looked up)
        return Resolution(default, None, Reason.DISABLED, None, meta)
    if variant == INVALID:
        return Resolution(default, None, Reason.ERROR, ErrorCode.GENERAL, meta)
    if variant == NO_DEFAULT:
        return Resolution(default, None, Reason.DEFAULT, None, meta)
    value = details.value
    if default is not None:
        try:
            fits, value = _of_type(default, value)
        except Exception:  # a default whose type cannot be read (a faked __class__): none
            fits = False
        if not fits:
            return Resolution(default, None, Reason.ERROR, ErrorCode.TYPE_MISMATCH, meta)
    reason = Reason.TARGETING_MATCH if details.reason == Reason.SPLIT else details.reason
    return Resolution(thaw(value), variant, reason, None, meta)


def thaw(value: Any) -> Any:
    """A served value as plain data (objects as dicts, arrays as lists)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value


# -- import -------------------------------------------------------------------------------
def to_snapshot(
    document: Mapping[str, Any],
    fractional: Literal["v2", "v3"] = "v3",
    *,
    on_error: Literal["raise", "keep", "skip"] = "raise",
    source: str | None = None,
    source_paths: dict[str, str] | None = None,
    value_paths: dict[str, dict[str, str]] | None = None,
) -> Snapshot:
    """Lower a flagd flag definition document to a Snapshot.

    ``fractional`` picks flagd's bucketing: ``"v3"`` (deterministic CBOR of the
    bucketing value, today's flagd) or ``"v2"`` (the string itself). With
    ``on_error="raise"`` any flag that cannot be lowered raises
    :class:`~cfgcore.interop.InteropError` naming it and the construct; with
    ``"keep"`` such a flag is imported as a flag that resolves to ``PARSE_ERROR``
    (as flagd answers for it), with ``"skip"`` it is left out; either way it is listed,
    with the reason, in ``metadata["refused"]``. A ``source_paths`` dict given is
    filled with each flag's key path in ``document`` (``flags.<key>``), lowered or
    refused; a ``value_paths`` dict, with each lowered flag's variants and the key path
    of each one's value (``flags.<key>.variants.<name>``).

    A refusal names the key path of what is refused (``flags.f.targeting.if[0].and[1]``,
    ``flags.f.state``; in an evaluator, ``$evaluators.e.or[1]``, its reason naming the
    ``$ref`` that reached it): raised, as each problem's path; skipped, in front of
    the reason ``metadata["refused"]`` lists by flag key.
    """
    if fractional not in ("v2", "v3"):
        raise ValueError("fractional must be 'v2' or 'v3'")
    if not isinstance(document, Mapping) or not isinstance(document.get("flags"), Mapping):
        raise InteropError("a flagd document needs a 'flags' object", file=source)
    evaluators = document.get("$evaluators") or {}
    set_meta = document.get("metadata") or {}
    for name, part in (("$evaluators", evaluators), ("metadata", set_meta)):
        if not isinstance(part, Mapping):
            raise InteropError(
                [Problem(name, f"expected an object, got {type_name(part)}", file=source)]
            )
    problems: list[Problem] = []
    refused: dict[str, str] = {}
    flags: dict[str, Any] = {}
    spent = 0  # condition nodes of the flags lowered so far (MAX_IMPORT_NODES)
    shared = _Shared()
    for key, spec in document["flags"].items():
        if source_paths is not None:
            source_paths[key] = child_key_path("flags", key)
        try:
            flag = _Flag(key, spec, evaluators, fractional, spent, shared)
            lowered = flag.lower()
            if not isinstance(spec.get("metadata") or {}, Mapping):
                raise _Refuse(
                    f"expected an object, got {type_name(spec['metadata'])}", at="metadata"
                )
            flags[key] = lowered
            if value_paths is not None:
                at = child_key_path(flag.path, "variants")
                value_paths[key] = {name: child_key_path(at, name) for name in flag.variants}
            spent += flag.rules.written
            shared.written.update(flag.rules.first)
        except (_Refuse, *MALFORMED) as exc:
            # _Refuse: a construct flagd has and cfgcore cannot lower; MALFORMED: a value
            # of the wrong type inside the flag. Named by its key path in the document.
            path, reason = _located(key, exc)
            if on_error == "raise":
                problems.append(Problem(path=path, message=reason, file=source))
                continue
            refused[key] = f"{path}: {reason}"
            if on_error == "skip":
                continue
            if isinstance(spec, Mapping) and spec.get("state") == "DISABLED":
                # flagd answers a disabled flag before reading its targeting: the
                # caller's default, reason DISABLED
                flags[key] = {
                    "variants": {NO_DEFAULT: None},
                    "default": NO_DEFAULT,
                    "enabled": False,
                    "metadata": {},
                }
            else:
                flags[key] = {
                    "variants": {PARSE_ERROR: None},
                    "default": PARSE_ERROR,
                    "metadata": {},
                }
        own = (spec.get("metadata") if isinstance(spec, Mapping) else None) or {}
        meta = {**set_meta, **(own if isinstance(own, Mapping) else {})}
        flags[key]["metadata"] = {"flagd": meta}
    if problems:
        raise InteropError(problems)
    top: dict[str, Any] = {"flags": flags, "metadata": {"imported_from": "flagd"}}
    if set_meta:
        top["metadata"]["flag_set"] = dict(set_meta)
    if refused:
        top["metadata"]["refused"] = refused
    return snapshot_from_dict(top, file=source)


def _located(key: str, exc: BaseException) -> tuple[str, str]:
    """(key path in the document, reason) of the flag ``key``'s refusal ``exc``: the
    path the refusal gives below the flag (``flags.<key>.state``,
    ``flags.<key>.targeting.if[0]``), else the flag's. A node of an ``$evaluators``
    entry is named by its own path, and the reason names the ``$ref`` that brought it
    into the flag."""
    base = child_key_path("flags", key)
    refusal = _Refuse.of(exc)
    if refusal.evaluator is not None:
        via = join_key_paths(base, refusal.ref)
        return refusal.at, f"{refusal} (through the $ref at {via})"
    return join_key_paths(base, refusal.at), str(refusal)


def _is_string(attr: str) -> dict[str, Any]:
    """The context value is a string (``eq``/``ne`` only match values of their constant's
    type, so "equal to '' or not equal to ''" holds exactly for strings)."""
    return {"any": [{"attr": attr, "eq": ""}, {"attr": attr, "ne": ""}]}


def _truthy(attr: str) -> dict[str, Any]:
    """JSONLogic truthiness of a context value: true, a non-empty string, a non-zero
    number, a non-empty array, an object."""
    return {
        "any": [
            {"attr": attr, "eq": True},
            {"attr": attr, "ne": ""},
            {"attr": attr, "ne": 0},
            {"attr": attr + TRUTHY, "eq": True},
            {"attr": attr + NUM + _exact.BIG, "exists": True},  # an int past a double
        ]
    }


def _numbers(attr: str) -> list[str]:
    """The derived attributes holding JSONLogic's number of a context value."""
    return [attr + NUM, attr + SNUM, attr + LNUM]


def _missing(attr: str) -> dict[str, Any]:
    """The context value is null or missing (what JSONLogic's ``var`` reads as null)."""
    return {"not": {"attr": attr, "exists": True}}


def _py_eq(attr: str, lit: str | int | float | bool | None) -> Any:
    """``===``: flagd's Python evaluator (json-logic) tests Python's ``value == lit``,
    where a boolean equals the number 0 or 1 (``True === 1``) and null only null."""
    if lit is None:
        return _missing(attr)
    tests = [{"attr": attr, "eq": x} for x in _py_equals(lit)]
    return tests[0] if len(tests) == 1 else {"any": tests}


def _py_equals(lit: str | int | float | bool) -> list[Any]:
    """The scalars Python's ``==`` holds equal to ``lit`` (cfgcore's ``eq`` compares
    numbers by value, never a boolean with a number)."""
    if isinstance(lit, bool):
        return [lit, int(lit)]
    if isinstance(lit, (int, float)) and lit in (0, 1):
        return [lit, bool(lit)]
    return [lit]


def _loose_eq(attr: str, lit: str | int | float | bool | None) -> Any:
    """JSONLogic ``==`` as flagd's Python evaluator (json-logic's op_equals) answers it:
    a string literal equals that string, a number or boolean whose number is the
    literal's, or an array or object whose text is the literal; a number or boolean
    literal equals any value whose number is the literal's, and null or a missing
    value where that number is 0 (null's number); null equals null, a missing value
    and the numbers (booleans) equal to 0."""
    if lit is None:
        return {"any": [_missing(attr), {"attr": attr + NUM, "eq": 0}]}
    if isinstance(lit, str):
        tests: list[Any] = [{"attr": attr, "eq": lit}, {"attr": attr + STR, "eq": lit}]
        num = _string_number(lit)
        if num is not None:
            tests.append({"attr": attr + NUM, "eq": num})
        return {"any": tests}
    n = int(lit) if isinstance(lit, bool) else lit
    if not math.isfinite(n):
        return _NEVER
    tests = [{"attr": a, "eq": n} for a in _numbers(attr)]
    if n == 0:
        tests.append(_missing(attr))
    return {"any": tests}


def _and(*conds: Any) -> Any:
    items: list[Any] = []
    for c in conds:
        if c == _ALWAYS:
            continue
        if isinstance(c, dict) and len(c) == 1 and isinstance(c.get("all"), list):
            items.extend(c["all"])  # flat: an if chain's guards stay one level deep
        else:
            items.append(c)
    if any(c == _NEVER for c in items):
        return _NEVER
    if not items:
        return _ALWAYS
    return items[0] if len(items) == 1 else {"all": items}


def _or(*conds: Any) -> Any:
    items: list[Any] = []
    for c in conds:
        if c == _NEVER:
            continue
        if isinstance(c, dict) and len(c) == 1 and isinstance(c.get("any"), list):
            items.extend(c["any"])
        else:
            items.append(c)
    if any(c == _ALWAYS for c in items):
        return _ALWAYS
    if not items:
        return _NEVER
    return items[0] if len(items) == 1 else {"any": items}


# A var's default value: flagd's evaluators (Go's jsonlogic, json-logic in Python) read
# {"var": [name, default]} as the default where the attribute is missing or null
_NO_DEFAULT: Any = object()
_PROBE = "x"  # the attribute a var with a default is renamed to when its default is folded


def _not_literal(value: Any) -> str | None:
    """Why ``value`` is no literal default of a ``var`` (None: it is one). flagd's Python
    evaluator evaluates a default (an object of one key is an operation, so are such
    objects inside an array), Go's jsonlogic does not: only values both read as
    themselves are taken."""
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else "not a JSON number"
    if isinstance(value, Mapping):
        if len(value) == 1:
            return "an operation (flagd's Python evaluator evaluates it, Go's jsonlogic does not)"
        return None
    if isinstance(value, list):
        for item in value:
            why = _not_literal(item)
            if why is not None:
                return why
        return None
    return f"not a JSON value ({type_name(value)})"


def _holds(conds: list[Any], attrs: Mapping[str, Any]) -> list[bool]:
    """Whether each lowered condition holds for the context ``attrs`` (a context() result),
    as cfgcore's evaluators answer (the reference one, which the compiled one agrees
    with): how a condition over a var's default value is decided at import."""
    from cfgcore import _eval_py
    from cfgcore.engine import engine_class

    out: list[bool | None] = [
        True if c == _ALWAYS else False if c == _NEVER else None for c in conds
    ]
    flags = {
        f"c{i}": {
            "variants": {"t": True, "f": False},
            "default": "f",
            "rules": [{"when": c, "serve": "t"}],
        }
        for i, c in enumerate(conds)
        if out[i] is None
    }
    if flags:
        make: Any = engine_class(_eval_py)
        engine = make.from_snapshot(snapshot_from_dict({"flags": flags}))
        for i in range(len(conds)):
            if out[i] is None:
                out[i] = engine.is_enabled(f"c{i}", attrs)
    return [bool(x) for x in out]


def _typed(cond: Any) -> Any:
    """A lowered condition as the one typed Condition its references share (the
    snapshot then holds, walks and decodes it once); the constants stay as they are."""
    if not isinstance(cond, dict) or cond == _ALWAYS or cond == _NEVER:
        return cond
    try:
        return msgspec.convert(cond, type=Condition)
    except msgspec.ValidationError:  # pragma: no cover - lowered as typed
        return cond


def _not(cond: Any) -> Any:
    if cond == _ALWAYS:
        return _NEVER
    if cond == _NEVER:
        return _ALWAYS
    return {"not": cond}


# The condition nodes one flag's targeting, and one import's flags, may lower to. An
# if/else chain's branches become rules, each guarded by the negations of the branches
# before it that may leave a context to the rules after them (a null result, a
# fractional, a var naming the variant, a nested if without an else: see _Flag.outcome).
# A chain of branches naming variants lowers to one rule per branch, but n branches of
# those other kinds are about n * n / 2 conditions: a 40 KB chain of 1,000 of them took
# the import and the compile minutes and gigabytes, and a file of many such flags hours.
#
# The two bounds count different things. MAX_LOWERED_NODES bounds one flag's rules with
# every use of a shared ($ref) evaluator counted in full: what one evaluation of the flag
# may walk (an OP_CALL walks its callee each time it is reached), and what lowering and
# checking the flag cost. MAX_IMPORT_NODES bounds the nodes the compiler writes for the
# whole import: a shared evaluator's condition once (its first use), then one OP_CALL
# node per use, except where the compiler copies it (a use too deep for a call: see
# _lower.shared_combinator), counted in full again. So a document that references one
# large evaluator from many flags costs the evaluator once, and the compile stays
# bounded by MAX_IMPORT_NODES, each evaluation by MAX_LOWERED_NODES.
MAX_LOWERED_NODES = 1_000_000
MAX_IMPORT_NODES = 5_000_000


class _Rules(list[dict[str, Any]]):
    """A flag's lowered rules, counting their condition nodes against MAX_LOWERED_NODES
    (``nodes``: every use in full) and, with ``spent`` (what the compiler writes for the
    import's flags lowered before), against MAX_IMPORT_NODES (``written``: a shared
    evaluator's condition once per import; with the guards an ``if`` chain builds on the
    way: see :meth:`charge`)."""

    def __init__(self, spent: int = 0, shared: _Shared | None = None) -> None:
        super().__init__()
        self.nodes = 0
        self.written = 0
        self.spent = spent
        self.shared = _Shared() if shared is None else shared
        # shared conditions this flag writes first (id -> condition kept alive): the
        # import's once the flag is accepted (see to_snapshot)
        self.first: dict[int, Any] = {}
        self._sizes: dict[int, tuple[Any, int]] = {}  # id -> (condition kept alive, size)
        self._calls: dict[int, tuple[Any, bool]] = {}  # id -> (kept alive, holds a shared one)
        self._attrs: set[str] = set()  # attributes the rules read (see attributes())
        self._walked: dict[int, Any] = {}  # id -> condition walked for them (kept alive)

    def size(self, cond: Any) -> int:
        """Nodes of ``cond`` as the compiler would copy them (a shared part per use)."""
        hit = self._sizes.get(id(cond))
        if hit is not None:
            return hit[1]
        if isinstance(cond, dict) or (type(cond) not in _NO_MAPPING and isinstance(cond, Mapping)):
            n = 1 + sum(self.size(v) for v in cond.values() if _is_node(v))
        elif isinstance(cond, Condition):  # a shared evaluator's, typed (_typed)
            known = self.shared.sizes.get(id(cond))  # measured once per import
            if known is None:
                parts = [cond.not_] if cond.not_ is not None else (cond.all or cond.any or [])
                known = self.shared.sizes[id(cond)] = (cond, 1 + sum(self.size(v) for v in parts))
            n = known[1]
        elif isinstance(cond, list):
            n = sum(self.size(v) for v in cond if _is_node(v))
        else:
            n = 0
        self._sizes[id(cond)] = (cond, n)
        return n

    def holds_shared(self, cond: Any) -> bool:
        """Whether ``cond`` (a dict or list the importer built) holds a typed Condition."""
        if isinstance(cond, Condition):
            return True
        hit = self._calls.get(id(cond))
        if hit is not None:
            return hit[1]
        mapping = isinstance(cond, dict) or (
            type(cond) not in _NO_MAPPING and isinstance(cond, Mapping)
        )
        parts = cond.values() if mapping else cond
        found = any(self.holds_shared(v) for v in parts if _is_node(v))
        self._calls[id(cond)] = (cond, found)
        return found

    def written_size(self, cond: Any, depth: int = 0) -> int:
        """Nodes the compiler writes for ``cond`` at ``depth``: a shared condition written
        before (by this flag or an accepted one) is one OP_CALL node where the call fits
        the compiler's depth limit (else it is copied)."""
        if not _is_node(cond):
            return 0
        if isinstance(cond, Condition):
            key = id(cond)
            if key in self.first or key in self.shared.written:
                height = condition_height(cond, self.shared.heights)
                if depth + 1 + height < MAX_CONDITION_DEPTH:  # (one level to spare)
                    return 1
            else:
                self.first[key] = cond
            return self.size(cond)
        if not self.holds_shared(cond):
            return self.size(cond)
        if isinstance(cond, dict) or (type(cond) not in _NO_MAPPING and isinstance(cond, Mapping)):
            return 1 + sum(self.written_size(v, depth + 1) for v in cond.values())
        return sum(self.written_size(v, depth) for v in cond)

    def attributes(self, cond: Any) -> int:
        """Attributes ``cond`` reads that this flag's rules read nowhere before: the
        compiler counts one step per attribute a flag reads (its own slots) too."""
        before = len(self._attrs)
        stack = [cond]
        while stack:
            c = stack.pop()
            if not _is_node(c) or id(c) in self._walked:
                continue
            self._walked[id(c)] = c  # (kept alive: ids stay unique)
            if isinstance(c, Condition):
                if c.attr is not None:
                    self._attrs.add(c.attr)
                stack.extend(p for p in (c.not_, *(c.all or ()), *(c.any or ())) if p is not None)
            elif isinstance(c, dict) or (type(c) not in _NO_MAPPING and isinstance(c, Mapping)):
                name = c.get("attr")
                if isinstance(name, str):
                    self._attrs.add(name)
                stack.extend(c.values())
            else:
                stack.extend(c)
        return len(self._attrs) - before

    def charge(self, cond: Any) -> None:
        self.nodes += self.size(cond) + self.attributes(cond)
        self.written += self.written_size(cond)
        if self.nodes > MAX_LOWERED_NODES:
            raise _TooLarge(
                f"targeting lowers to more than {MAX_LOWERED_NODES:,} condition nodes and "
                "rules (a branch of an if repeats the conditions of the branches before it "
                "that may give null, a fractional or a var's value; each use of a $ref "
                "evaluator counts): split the flag or shorten its if chains"
            )
        self.check_import()

    def check_import(self) -> None:
        if self.spent + self.written > MAX_IMPORT_NODES:
            raise _TooLarge(
                f"the flags' targeting lowers to more than {MAX_IMPORT_NODES:,} condition "
                "nodes in all, past this flag (a branch of an if repeats the conditions of "
                "the branches before it that may give null, a fractional or a var's value): "
                "import the flags in parts"
            )

    def recount(self, rules: list[dict[str, Any]]) -> None:
        """Count what the compiler writes for the final ``rules`` (their conditions
        flattened, and rebuilt where too deep, after they were charged)."""
        self.first = {}
        self.written = sum(self.written_size(r["when"]) for r in rules if "when" in r)
        self.check_import()

    def append(self, rule: dict[str, Any]) -> None:
        self.nodes += 1  # an evaluation steps through each rule too (as the compiler counts)
        by = (rule.get("hash") or {}).get("by") if isinstance(rule.get("hash"), Mapping) else None
        for name in (by or ()) if isinstance(by, list) else ():
            if isinstance(name, str) and name not in self._attrs:  # a bucketing attribute
                self._attrs.add(name)
                self.nodes += 1
        self.charge(rule.get("when"))
        super().append(rule)


_NODES = (Mapping, list, Condition)
# The import walks large targeting trees: ``isinstance(x, Mapping)`` costs a Python call
# (the ABC's), ten times an exact type test. The types JSON gives are told apart by
# those first, with the same answers: a dict is a Mapping, and no type below is one.
_NO_MAPPING = frozenset({list, str, int, float, bool, type(None), Condition})


def _is_node(v: Any) -> bool:
    """``isinstance(v, _NODES)``, the types JSON gives decided without the ABC's call."""
    return isinstance(v, (dict, list, Condition)) or (
        type(v) not in _NO_MAPPING and isinstance(v, Mapping)
    )


class _Shared:
    """What one import's flags share: each ``$ref`` evaluator expanded once, and each
    evaluator used as a condition lowered once, to one typed Condition every reference
    holds. A large evaluator (an allowlist of 100,000 users) referenced by many flags was
    copied and lowered again at each reference (its text, its lowered test, the
    snapshot's walk and decoding of it); the compiler still writes its nodes per use."""

    def __init__(self) -> None:
        self.expanded: dict[str, tuple[Any, int]] = {}  # name -> (expansion, its nodes)
        self.by_id: dict[int, bool] = {}  # id(expansion) -> it names the flag's own key
        self.lowered: dict[tuple[int, str | None], tuple[Any, Any]] = {}
        self.heights: dict[int, Any] = {}  # condition_height's memo, across flags
        self.folds: dict[str, tuple[bool, bool]] = {}  # a test over a var's default, decided
        # shared conditions the compiler writes for the flags accepted so far (id ->
        # condition kept alive): their later uses are one OP_CALL node (MAX_IMPORT_NODES)
        self.written: dict[int, Any] = {}
        self.sizes: dict[int, tuple[Any, int]] = {}  # a shared condition's nodes, counted once
        # each evaluator's expansion that is an object or an array (id -> its name): a
        # refusal raised out of it is named by the evaluator's path (_Flag.placed); the
        # expansions live as long as the import (self.expanded), so the ids stay theirs
        self.roots: dict[int, str] = {}


def _names_flag_key(tree: Any) -> bool:
    """Whether ``tree`` (an expanded evaluator) mentions ``$flagd...`` anywhere, so its
    lowering may depend on the flag it is lowered for (``$flagd.flagKey``)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if node.startswith("$flagd"):
                return True
        elif isinstance(node, Mapping):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


class _Flag:
    def __init__(
        self,
        key: str,
        spec: Any,
        evaluators: Mapping[str, Any],
        fractional: str,
        spent: int = 0,
        shared: _Shared | None = None,
    ):
        self.shared = _Shared() if shared is None else shared
        self.spent = spent  # condition nodes the import's flags lowered to before this one
        self.expanded = 0  # nodes expand() wrote ($ref evaluators substituted)
        self.path = child_key_path("flags", key)
        if not isinstance(spec, Mapping):
            raise _Refuse("a flag must be an object")
        self.key = key
        self.spec = spec
        self.evaluators = evaluators
        self.scheme = "flagd_v3" if fractional == "v3" else "flagd_v2"
        variants = spec.get("variants")
        if not isinstance(variants, Mapping) or not variants:
            raise _Refuse("'variants' must be a non-empty object", at="variants")
        for name, value in variants.items():
            at = child_key_path("variants", name)
            if name in _RESERVED:
                raise _Refuse(f"variant name {name!r} is reserved by the importer", at=at)
            if name == "":
                # flagd's Python evaluator (FlagdCore) reads an empty variant name as no
                # variant: the caller's default for defaultVariant "", an error (GENERAL)
                # where targeting names it; flagd's Go evaluator serves the variant
                raise _Refuse(
                    "variant name '' is read as no variant by flagd's Python evaluator and "
                    "served by its Go evaluator: give the variant a name",
                    at=at,
                )
            if value is None:
                # flagd docs ("Flag Definitions", Variants; schema flags.json): a variant
                # value is a boolean, a string, a number or an object. A null one is no
                # flag value: flagd's evaluator answers an error for it (TYPE_MISMATCH
                # when it is the default, GENERAL when targeting picks it), where cfgcore
                # would serve null, which callers read as "use your default". To defer
                # to the caller's default, flagd has "defaultVariant": null.
                raise _Refuse(
                    f"variant {name!r} has a null value: flagd variant values are booleans, "
                    "strings, numbers or objects (for the caller's default, leave "
                    "defaultVariant null instead)",
                    at=at,
                )
            unfit = unservable(value)
            if unfit is not None:  # refused here, naming the flag, not when compiled
                raise _Refuse(f"variant {name!r}{unfit[0]}: {unfit[1]}", at=at + unfit[0])
        self.variants = dict(variants)

    # -- the flag -------------------------------------------------------------------------
    def lower(self) -> dict[str, Any]:
        spec = self.spec
        # flagd's schema (https://flagd.dev/schema/v0/flags.json) requires "state", and
        # flagd's Python evaluator (FlagdCore) refuses a document with a flag without
        # one (ParseError). A flag without it is refused here too, naming the flag.
        if "state" not in spec:
            raise _Refuse(
                "missing: flagd's schema requires ENABLED or DISABLED (flagd's "
                "Python evaluator refuses a flag without one)",
                at="state",
            )
        state = spec["state"]
        if state not in ("ENABLED", "DISABLED"):
            raise _Refuse(f"state must be ENABLED or DISABLED, got {state!r}", at="state")
        variants = dict(self.variants)
        default = spec.get("defaultVariant")
        # defaultVariant is a variant's name, or null for the caller's default (schema:
        # string or null). FlagdCore reads "" as null (so does cfgcore), reads true and
        # false as the variants named "true" and "false", any other falsy value (0, [],
        # {}) as null, and refuses any other value; outside the schema, all of these
        # are refused here, saying what to write.
        if default == "" and isinstance(default, str):
            default = None
        if default is None:
            variants[NO_DEFAULT] = None
            default = NO_DEFAULT
        elif isinstance(default, bool):
            raise _Refuse(
                f"expected a variant name (a string) or null, got "
                f"{str(default).lower()} (flagd's Python evaluator reads it as the variant "
                f'named "{str(default).lower()}": write that name as a string)',
                at="defaultVariant",
            )
        elif not isinstance(default, str):
            raise _Refuse(
                f"expected a variant name (a string) or null, got {type_name(default)}",
                at="defaultVariant",
            )
        self.rules = _Rules(self.spent, self.shared)
        self.needs_invalid = False
        if default not in variants:
            # flagd's schema cannot say which names; flagd's Python evaluator loads the
            # flag, serves what its targeting picks and errs (GENERAL: "Resolved variant
            # ... not in variants config") only where the default is reached
            default = INVALID
            self.needs_invalid = True
        targeting = spec.get("targeting")
        if not targeting and not isinstance(targeting, Mapping):
            targeting = None  # "", [], 0, false: flagd resolves STATIC, as for none
        elif targeting is not None and not isinstance(targeting, Mapping):
            # flagd's evaluator: "Invalid 'targeting' value" (PARSE_ERROR); the schema
            # wants a JSONLogic object
            raise _Refuse(
                f"targeting must be a JSONLogic object, got {type_name(targeting)}",
                at="targeting",
            )
        if targeting not in (None, {}):
            try:
                expanded = self.expand(targeting)
            except (_Refuse, *MALFORMED) as exc:
                raise _placed(exc, "targeting") from None
            # {"$ref": e} as the whole targeting is e itself, judged as targeting is
            if not isinstance(expanded, Mapping) and expanded:
                raise _Refuse(
                    f"targeting must be a JSONLogic object, got {type_name(expanded)} "
                    "(from a $ref)",
                    at="targeting",
                )
            if expanded:
                try:
                    self.outcome(expanded, _ALWAYS)
                except (_Refuse, *MALFORMED) as exc:
                    raise self.placed(exc, expanded, "targeting") from None
            else:  # a falsy one is no targeting: STATIC, as above
                targeting = None
        if self.needs_invalid:
            variants[INVALID] = None
        rules = [r for r in self.rules if r.get("when") != _NEVER]
        memo: dict[int, Any] = {}  # the branches of an if chain share their guards
        heights = self.shared.heights  # a shared evaluator's nesting measured once
        for r in rules:
            if "when" in r:
                r["when"], why = fit_depth(r["when"], memo, heights)
                if why is not None:
                    raise _Refuse(why, at="targeting")
        self.rules.recount(rules)  # (its refusal names the targeting: _TooLarge)
        out: dict[str, Any] = {
            "variants": variants,
            "default": default,
            "enabled": state == "ENABLED",
            "rules": rules,
        }
        if targeting not in (None, {}) and not out["rules"]:
            # targeting that can never pick a variant still makes the answer DEFAULT
            # (not STATIC) in flagd: keep one rule that never matches
            out["rules"] = [{"when": _NEVER, "serve": default}]
        if all(isinstance(v, bool) for v in self.variants.values()):
            out["on_variants"] = [k for k, v in self.variants.items() if v is True]
        return out

    def expand(self, expr: Any, inside: str | None = None) -> Any:
        """Substitute ``$ref`` evaluators (flagd's shared rules) as flagd does: each
        reference by its evaluator's exact name, once (``inside``: the evaluator being
        substituted). A ``$ref`` inside an evaluator is refused: flagd substitutes the
        evaluators one after the other into the flags' text, so whether it is resolved
        depends on their order (flagd's Python evaluator: only one listed after; flagd
        in Go: map order, at random), and resolving it recursively let a 1 KB document
        of evaluators each referencing the one before twice expand exponentially."""
        # only what evaluators write counts: the flag's own targeting (an allowlist of
        # a million users) is the file's size, not an expansion
        self.expanded += inside is not None
        self.expand_budget()
        if isinstance(expr, list):
            out: Any = []
            for i, e in enumerate(expr):
                try:
                    out.append(self.expand(e, inside))
                except (_Refuse, *MALFORMED) as exc:
                    raise _placed(exc, i) from None
            return out
        if isinstance(expr, dict) or (type(expr) not in _NO_MAPPING and isinstance(expr, Mapping)):
            if len(expr) == 1 and "$ref" in expr:
                name = expr["$ref"]
                if inside is not None:
                    raise _Refuse(
                        f"$ref to {name!r:.60} inside evaluator {inside!r:.60}: flagd "
                        "resolves a $ref inside an evaluator only depending on the "
                        "evaluators' order (write the evaluator out in full)"
                    )
                if not isinstance(name, str) or name not in self.evaluators:
                    raise _Refuse(f"$ref to unknown evaluator {name!r}")
                hit = self.shared.expanded.get(name)
                if hit is None:
                    before = self.expanded
                    try:
                        tree = self.expand(self.evaluators[name], name)
                    except (_Refuse, *MALFORMED) as exc:
                        raise _Refuse.of(exc).through(name) from None
                    hit = self.shared.expanded[name] = (tree, self.expanded - before)
                    self.shared.by_id[id(tree)] = _names_flag_key(tree)
                    if isinstance(tree, (dict, list)):
                        self.shared.roots[id(tree)] = name
                else:  # the one expansion, counted at each reference as if written out
                    self.expanded += hit[1]
                    self.expand_budget()
                return hit[0]
            out = {}
            for k, v in expr.items():
                try:
                    out[k] = self.expand(v, inside)
                except (_Refuse, *MALFORMED) as exc:
                    raise _placed(exc, k) from None
            return out
        return expr

    def placed(self, exc: BaseException, node: Any, *keys: Any) -> _Refuse:
        """``exc``, raised lowering ``node``, which the node being lowered holds at
        ``keys``: its path below them, or, where ``node`` is a ``$ref`` evaluator's
        expansion, the evaluator's own path, the keys then building the ``$ref``'s (a
        node lowered for two references is named by the one being lowered)."""
        refusal = _Refuse.of(exc)
        if refusal.evaluator is None and isinstance(node, (dict, list)):
            name = self.shared.roots.get(id(node))
            if name is not None:
                refusal.through(name)
        return refusal.under(*keys)

    def within(self, exc: BaseException, op: str, args: Any) -> _Refuse:
        """``exc``, raised lowering the operands ``args`` of ``op`` (or the operation
        itself): named below ``op`` where they are an array or an object, else by the
        operation (``{"var": "a.length"}``, ``{"var": ["a", 1, 2]}.var``)."""
        if isinstance(args, (dict, list)):
            return self.placed(exc, args, op)
        return _Refuse.of(exc)

    def operand(self, exc: BaseException, args: Any, i: int) -> _Refuse:
        """``exc``, raised lowering operand ``i`` of the operands ``args`` (json-logic's
        one operand where ``args`` is not an array: ``args`` itself)."""
        if isinstance(args, list):
            return self.placed(exc, args[i], i)
        return self.placed(exc, args)

    def expand_budget(self) -> None:
        if self.expanded > MAX_LOWERED_NODES:
            raise _TooLarge(
                f"$ref evaluators expand to more than {MAX_LOWERED_NODES:,} nodes in "
                "the targeting: reference fewer or smaller evaluators"
            )

    # -- outcomes: expressions that name a variant ------------------------------------------
    def variant_name(self, value: Any) -> str | None:
        """The variant a literal result selects (None: flagd's null -> the default)."""
        if value is None:
            return None
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (int, float)):
            value = str(value)
        if not isinstance(value, str):
            raise _Refuse(f"targeting result {value!r} is not a variant name")
        if value not in self.variants:
            self.needs_invalid = True
            return INVALID
        return value

    def serve(self, value: Any, guard: Any) -> bool:
        """Serve ``value``'s variant where ``guard`` holds; whether a rule was written
        (flagd's null result writes none: the rules after it decide, or the default)."""
        name = self.variant_name(value)
        if name is None:
            return False
        self.rules.append({"when": guard, "serve": name} if guard != _ALWAYS else {"serve": name})
        return True

    def cases(self, expr: Any) -> list[tuple[Any, Any]]:
        """An expression whose value names a variant, as exclusive (condition, literal) cases."""
        if not isinstance(expr, Mapping):
            return [(_ALWAYS, expr)]
        op, args = _single(expr)
        try:
            return self.cases_of(op, args)
        except (_Refuse, *MALFORMED) as exc:
            raise self.within(exc, op, args) from None

    def cases_of(self, op: str, args: Any) -> list[tuple[Any, Any]]:
        """:meth:`cases` of the operation ``op`` (a refusal named below its operands)."""
        if op == "if":
            out: list[tuple[Any, Any]] = []
            taken = _ALWAYS
            items = _operands(args)
            for i in range(0, len(items) - 1, 2):  # (indexes: a slice per branch is n * n)
                try:
                    cond = self.condition(items[i])
                except (_Refuse, *MALFORMED) as exc:
                    raise self.operand(exc, args, i) from None
                try:
                    for c, v in self.cases(items[i + 1]):
                        out.append((_and(taken, cond, c), v))
                except (_Refuse, *MALFORMED) as exc:
                    raise self.operand(exc, args, i + 1) from None
                taken = _and(taken, _not(cond))
                self.rules.charge(taken)
            if len(items) % 2:
                try:
                    for c, v in self.cases(items[-1]):
                        out.append((_and(taken, c), v))
                except (_Refuse, *MALFORMED) as exc:
                    raise self.operand(exc, args, len(items) - 1) from None
            return out
        if op == "var":
            attr, default = self.var_default(args)
            if attr == FLAG_KEY:
                return [(_ALWAYS, self.key)]
            if default is not _NO_DEFAULT and attr.startswith("$flagd."):
                if attr != TIMESTAMP:  # (flagd's own object holds no other value)
                    return [(_ALWAYS, default)]
            names = [n for n in self.variants if isinstance(n, str)]
            out = []
            known_tests: list[Any] = [{"attr": attr, "in": names}]
            for n in names:
                # the value n itself, or a number or boolean whose text is n
                extra = _names_by_text(attr, n)
                test: Any = {"attr": attr, "eq": n}
                out.append(({"any": [test, *extra]} if extra else test, n))
                known_tests += extra
            known = known_tests[0] if len(known_tests) == 1 else {"any": known_tests}
            out.append((_and({"attr": attr, "exists": True}, _not(known)), "#unknown"))
            if default is not _NO_DEFAULT and attr != TIMESTAMP:
                out.append((_missing(attr), default))  # missing or null: the default
            return out
        raise _Refuse(f"'{op}' cannot name a variant here")

    def outcome(self, expr: Any, guard: Any) -> bool:
        """Emit rules for a targeting expression (the top level or an ``if`` branch).

        Returns whether the rules written cover ``guard`` whole: wherever it holds, one
        of them matches and serves (no null result, no bucket or case left to the rules
        after). cfgcore serves the first rule that matches, so the branches after such
        a branch need not repeat its negated condition to stay exclusive; only the
        negations of the branches that may leave a context to later rules are kept. An
        ``if`` chain of n branches naming variants is then n rules of one condition
        each (its guards used to repeat every condition before them: n * n / 2 nodes).
        """
        if not isinstance(expr, Mapping):
            return self.serve(expr, guard)
        op, args = _single(expr)
        if op == "var":
            cases = self.cases(expr)
            for c, v in cases:
                try:
                    self.serve(v if v != "#unknown" else INVALID, _and(guard, c))
                except (_Refuse, *MALFORMED) as exc:
                    if isinstance(args, list) and len(args) == 2 and v is args[1]:
                        exc = self.placed(exc, v, 1)  # the default names no variant
                    raise self.within(exc, op, args) from None
            return False
        if op in ("if", "fractional") or (op in ("and", "or") and not _boolean_valued(expr)):
            try:
                return self.outcome_of(op, args, guard)
            except (_Refuse, *MALFORMED) as exc:
                raise self.within(exc, op, args) from None
        # a boolean-valued operator at the top: its result names variant "true"/"false"
        cond, defined = self.condition_defined(expr)
        self.serve(True, _and(guard, cond))
        self.serve(False, _and(guard, defined, _not(cond)))
        return defined == _ALWAYS  # (where it is null, the default: later rules decide)

    def outcome_of(self, op: str, args: Any, guard: Any) -> bool:
        """:meth:`outcome` of an ``if``, a ``fractional``, or an ``and``/``or`` that is
        not boolean-valued (a refusal named below the operands ``args``)."""
        if op == "if":
            items = _operands(args)
            taken = guard
            covered = True
            for i in range(0, len(items) - 1, 2):  # (indexes: a slice per branch is n * n)
                try:
                    frac = isinstance(items[i], Mapping) and _single(items[i])[0] == "fractional"
                    cond = None if frac else self.condition(items[i])
                except (_Refuse, *MALFORMED) as exc:
                    raise self.operand(exc, args, i) from None
                if frac:
                    self.fractional_condition(items, i, taken)
                    return False
                try:
                    total = self.outcome(items[i + 1], _and(taken, cond))
                except (_Refuse, *MALFORMED) as exc:
                    raise self.operand(exc, args, i + 1) from None
                if not total or cond == _ALWAYS:
                    # a context the branch leaves reaches the later rules only where it
                    # fails the branch's condition (one that always holds leaves no
                    # context: the branches after it are dropped, as they were)
                    taken = _and(taken, _not(cond))
                    self.rules.charge(taken)
                    covered = covered and total
            if not len(items) % 2:
                return False  # no else: null, the default variant
            try:
                return self.outcome(items[-1], taken) and covered
            except (_Refuse, *MALFORMED) as exc:
                raise self.operand(exc, args, len(items) - 1) from None
        if op == "fractional":
            self.fractional(args, guard, lambda v: v)
            return False
        # JSONLogic's and/or answer one of their operands (the first falsy/truthy one,
        # else the last): a var's value, a string, or null names the variant
        raise _Refuse(
            f"'{op}' naming a variant with an operand that is not true or false (a var, "
            "a literal, starts_with, ends_with or sem_ver): and/or answer that operand's "
            "value; put the test under an if"
        )

    def fractional_condition(self, items: list[Any], i: int, guard: Any) -> None:
        """``{"if": [{"fractional": ...}, A, B]}``: the bucket's entry decides the branch
        (``items``: the if's operands, ``items[i]`` the fractional; a refusal named
        below them)."""
        frac, then, rest = items[i], items[i + 1], items[i + 2 :]
        if len(rest) > 1 or isinstance(then, Mapping) or (rest and isinstance(rest[0], Mapping)):
            raise self.placed(_Refuse("a fractional condition needs literal branches"), frac, i)
        other = rest[0] if rest else None
        refused: list[tuple[_Refuse, Any, int]] = []  # a branch that names no variant

        def result(v: Any) -> Any:
            branch, at = (then, i + 1) if _js_truthy(v) else (other, i + 2)
            if branch is not None and not isinstance(branch, (str, int, float)):
                # (variant_name's refusal, raised here where the branch's place is known)
                refused.append((_Refuse(f"targeting result {branch!r} is not a variant name"),
                                branch, at))  # fmt: skip
                raise refused[-1][0]
            return branch

        _, args = _single(frac)
        try:
            self.fractional(args, guard, result, (then, other))
        except (_Refuse, *MALFORMED) as exc:
            if refused and exc is refused[-1][0]:  # a branch's: named by its own path
                raise self.placed(_Refuse(str(exc)), refused[-1][1], refused[-1][2]) from None
            raise self.placed(self.within(exc, "fractional", args), frac, i) from None
        if then is not None:
            # where flagd's fractional is null (no bucketing value or targeting key, no
            # weight, an array that is no entry), "if" reads it as false: the else branch
            try:
                self.serve(other, guard)
            except (_Refuse, *MALFORMED) as exc:
                raise self.placed(exc, other, i + 2) from None

    # -- fractional -------------------------------------------------------------------------
    def fractional(
        self, args: Any, guard: Any, result: Any, branches: tuple[Any, Any] | None = None
    ) -> None:
        """Rules for a ``fractional`` of the operands ``args`` (a refusal named below
        them: ``[1]``, the entry; ``[0]``, the bucketing key)."""
        if not isinstance(args, list) or not args:
            raise _Refuse("fractional needs its bucket entries")
        entries = list(args)
        key_expr: Any = ("default",)
        if not isinstance(entries[0], list):
            key_expr = entries.pop(0)
        first = len(args) - len(entries)  # args' index of entries[0]
        parsed: list[tuple[Any, Any]] = []
        for j, e in enumerate(entries):
            if not isinstance(e, list) or not 1 <= len(e) <= 2:
                refusal = _Refuse(f"fractional entry {e!r} is not [variant, weight]")
                raise self.placed(refusal, e, first + j)
            parsed.append((e[0], e[1] if len(e) == 2 else 1))
        # Entries whose variant or weight is itself an expression: one rule per case.
        choices: list[list[tuple[Any, Any, Any]]] = []
        for j, (var_expr, weight_expr) in enumerate(parsed):
            opts = []
            try:
                var_cases = self.cases(var_expr)
            except (_Refuse, *MALFORMED) as exc:
                raise self.placed(self.placed(exc, var_expr, 0), entries[j], first + j) from None
            try:
                weight_cases = self.cases(weight_expr)
            except (_Refuse, *MALFORMED) as exc:
                raise self.placed(self.placed(exc, weight_expr, 1), entries[j], first + j) from None
            for vc, v in var_cases:
                for wc, w in weight_cases:
                    opts.append((_and(vc, wc), v, w))
            choices.append(opts)
        combos: list[tuple[Any, list[tuple[Any, Any]]]] = [(_ALWAYS, [])]
        for opts in choices:
            combos = [(_and(c, oc), [*acc, (v, w)]) for c, acc in combos for oc, v, w in opts]
            combos = [(c, acc) for c, acc in combos if c != _NEVER]
            if len(combos) > 256:
                raise _Refuse("fractional entries expand to more than 256 cases")
        for cond, entry_list in combos:
            rule = (key_expr, entry_list, _and(guard, cond), result, branches)
            self.fractional_rule(*rule, entries_at=entries, first=first)

    def fractional_rule(
        self,
        key_expr: Any,
        entries: list[tuple[Any, Any]],
        guard: Any,
        result: Any,
        branches: tuple[Any, Any] | None = None,
        *,
        entries_at: list[Any],
        first: int,
    ):
        """The rules of one case of a fractional's ``entries`` (variant, weight): each
        from the entry ``entries_at[j]`` at index ``first + j`` of its operands, below
        which a refusal is named (the bucketing key's: at index 0)."""

        def named(j: int, v: Any) -> str | None:
            try:
                return self.entry_name(v, result)
            except (_Refuse, *MALFORMED) as exc:
                at = entries_at[j]
                raise self.placed(self.placed(exc, at[0], 0), at, first + j) from None

        weights = []
        for j, (v, w) in enumerate(entries):
            why = None
            if isinstance(w, float) and w.is_integer():
                # flagd's Python evaluator fails the whole fractional on a weight that is
                # no JSON integer (so every user gets the default variant); flagd itself
                # reads 1.0 as 1: they answer differently, so it is refused
                why = (
                    f"fractional weight {w!r} is not a JSON integer: flagd's Python "
                    "evaluator answers the default variant for the whole fractional, "
                    f"flagd reads {int(w)} (write {int(w)})"
                )
            elif isinstance(w, bool) or not isinstance(w, int):
                why = f"fractional weight {w!r} is not an integer"
            if why is not None:
                refusal, at = _Refuse(why), entries_at[j]
                if isinstance(w, (dict, list)) and len(at) == 2 and w is at[1]:
                    refusal = self.placed(refusal, w, 1)  # (a $ref's array: named by it)
                raise self.placed(refusal, at, first + j)
            weights.append((v, max(int(w), 0)))  # flagd clamps negative weights to 0
        if self.scheme == "flagd_v3" and isinstance(key_expr, Mapping):
            try:
                attr = self.key_var(key_expr)
            except (_Refuse, *MALFORMED) as exc:
                raise self.placed(exc, key_expr, 0) from None
            if attr is not None and attr != FLAG_KEY:
                self.array_entry_rules(attr, weights, guard, result, branches, named)
        total = sum(w for _, w in weights)
        if not 0 < total <= 2**31 - 1:
            # flagd: no weight at all, or weights summing past 2^31-1 (flagd's bucketing
            # bound: the testbed's README, "Bucketing"; flagd's Python evaluator logs
            # "Total fractional weight exceeds MaxInt32"), is null, the default variant
            return
        buckets: list[tuple[str | None, int]] = []
        for j, (v, w) in enumerate(weights):
            if w == 0:
                continue
            buckets.append((named(j, v), w))
        try:
            constant = self.constant_key(key_expr)
            keys = (
                [(constant, guard)] if constant is not None else self.bucket_keys(key_expr, guard)
            )
        except (_Refuse, *MALFORMED) as exc:
            raise self.placed(exc, key_expr, 0) from None
        for hash_, when in keys:
            if isinstance(hash_, bytes):
                # every user here hashes the same value: the bucket is decided at import
                bucket, end = (murmur3_32(hash_) * total) >> 32, 0
                for name, w in buckets:
                    end += w
                    if bucket < end:
                        if name is not None:
                            rule = (
                                {"serve": name}
                                if when == _ALWAYS
                                else {"when": when, "serve": name}
                            )
                            self.rules.append(rule)
                        break
                continue
            hashed: dict[str, Any] = {
                "hash": {**hash_, "space": total},
                "buckets": [list(b) for b in buckets],
            }
            if when != _ALWAYS:
                hashed["when"] = when
            self.rules.append(hashed)

    def key_var(self, key_expr: Mapping[str, Any]) -> str | None:
        """The attribute of a v3 bucketing key that is a ``var`` (None for another key),
        refused where its default is an array: flagd v3 reads it as a bucket entry."""
        op, args = _single(key_expr)
        if op != "var":
            return None
        try:
            attr, default = self.var_default(args)
            if isinstance(default, list) and attr not in (FLAG_KEY, TIMESTAMP, "$flagd"):
                raise _Refuse(
                    f"fractional bucketing key var {attr!r:.60} with the default "
                    f"{default!r:.40}: flagd v3 reads an array as a bucket entry",
                    "[1]",  # (the default's place below the var's operands)
                )
        except (_Refuse, *MALFORMED) as exc:
            raise self.within(exc, op, args) from None
        return attr

    def entry_name(self, value: Any, result: Callable[[Any], Any]) -> str | None:
        """The variant a fractional entry ``value`` serves: its name, None for a null
        one (the default variant), INVALID for a variant flagd does not know."""
        out = result(value)
        if out == "#unknown":
            self.needs_invalid = True
            return INVALID
        return None if out is None else self.variant_name(out)

    def array_entry_rules(
        self,
        attr: str,
        weights: list[tuple[Any, int]],
        guard: Any,
        result: Any,
        branches: tuple[Any, Any] | None,
        named: Callable[[int, Any], str | None],
    ) -> None:
        """Rules for a bucketing value that is a ``[variant, weight]`` array: flagd v3
        weighs it as the first entry and buckets by ``[flagKey, targetingKey]``;
        context()'s mapping answers which entry (see _ArrayEntries). The ``#fraction:``
        test comes first in each rule: an exact dict never holds it, so the rule fails on
        one missing attribute before the guard's own conditions run."""
        spec = json.dumps([self.key, attr, [w for _, w in weights]], ensure_ascii=False)
        picked = FRACTION + spec
        for i, (v, w) in enumerate(weights, 1):
            if w == 0:
                continue
            name = named(i - 1, v)
            if name is not None:
                self.rules.append({"when": _and({"attr": picked, "eq": i}, guard), "serve": name})
        if branches is not None:  # {"if": [fractional, then, else]}: the entry's truthiness
            for mark, truthy in (("\0t", True), ("\0f", False)):
                name = self.variant_name(result(truthy))  # (then, else)
                if name is not None:
                    when = _and({"attr": picked, "ends_with": mark}, guard)
                    self.rules.append({"when": when, "serve": name})
            return
        # the entry's variant, as the key flagd looks it up by ("" is never one)
        for name in self.variants:
            if name:
                marks = ["=" + name + "\0t", "=" + name + "\0f"]
                when = _and({"attr": picked, "in": marks}, guard)
                self.rules.append({"when": when, "serve": name})
        self.needs_invalid = True
        when = _and({"attr": picked, "starts_with": "="}, guard)
        self.rules.append({"when": when, "serve": INVALID})

    def constant_key(self, key_expr: Any) -> bytes | None:
        """The bytes flagd hashes for a bucketing key that is the same for every user (a
        literal, the flag's own key), or None when it depends on the context."""
        if isinstance(key_expr, Mapping) and len(key_expr) == 1 and "var" in key_expr:
            try:
                attr = self.var_default(key_expr["var"])[0]
            except (_Refuse, *MALFORMED) as exc:
                raise self.within(exc, "var", key_expr["var"]) from None
            if attr != FLAG_KEY:
                return None
            key_expr = self.key  # flagd's context holds the flag key under $flagd.flagKey
        elif isinstance(key_expr, (Mapping, list, tuple)) or key_expr is None:
            return None
        if self.scheme == "flagd_v3":
            if isinstance(key_expr, float) and not math.isfinite(key_expr):
                raise _Refuse(f"fractional bucketing key {key_expr!r} is not a JSON value")
            return _constant_cbor(key_expr)  # v3 hashes the deterministic CBOR of any value
        if isinstance(key_expr, str):
            return key_expr.encode("utf-8", "surrogatepass")  # v2 hashes a string key
        raise _Refuse("a non-string literal fractional bucketing key under v2")

    def bucket_keys(self, key_expr: Any, guard: Any) -> list[tuple[dict[str, Any] | bytes, Any]]:
        """(hashing, condition) pairs: which value is hashed, under which condition (the
        bytes themselves where the value is the same for everyone)."""
        scheme = self.scheme
        default_v2 = {"scheme": scheme, "by": [TARGETING_KEY], "salt": self.key}
        if scheme == "flagd_v3":
            # v3 without a key hashes the CBOR array [flagKey, targetingKey]
            default_v2 = {"scheme": "flagd_v3_pair", "by": [TARGETING_KEY], "salt": self.key}
        if key_expr == ("default",):
            if scheme == "flagd_v3":
                # v3: a targeting key that is not a non-empty string is null (the default
                # variant), as flagd's in-process evaluator (openfeature-flagd-core)
                # answers; "ne" only matches strings
                return [(default_v2, _and(guard, {"attr": TARGETING_KEY, "ne": ""}))]
            return [(default_v2, guard)]
        if key_expr is None:
            if scheme == "flagd_v3":
                return []  # v3: a null key is null, the default variant
            return [(default_v2, guard)]
        op, args = _single(key_expr)
        try:
            return self.bucket_keys_of(op, args, guard, default_v2)
        except (_Refuse, *MALFORMED) as exc:
            raise self.within(exc, op, args) from None

    def bucket_keys_of(
        self, op: str, args: Any, guard: Any, default_v2: dict[str, Any]
    ) -> list[tuple[dict[str, Any] | bytes, Any]]:
        """:meth:`bucket_keys` of the operation ``op`` (a refusal named below its operands)."""
        scheme = self.scheme
        if op == "var":
            attr, default = self.var_default(args)
            if attr == TIMESTAMP or attr == "$flagd":
                default = _NO_DEFAULT  # always set: the default is never read
            at_default: list[tuple[dict[str, Any] | bytes, Any]] = []
            there: Any = _ALWAYS
            if default is not _NO_DEFAULT:  # missing or null: the default's bucket
                there = {"attr": attr, "exists": True}
                missing = _and(guard, _missing(attr))
                if scheme == "flagd_v3":
                    if isinstance(default, list):
                        raise _Refuse(
                            f"fractional bucketing key var {attr!r:.60} with the default "
                            f"{default!r:.40}: flagd v3 reads an array as a bucket entry",
                            "[1]",  # (the default's place below the var's operands)
                        )
                    at_default = [(_constant_cbor(default), missing)]
                elif isinstance(default, str):
                    at_default = [(default.encode("utf-8", "surrogatepass"), missing)]
                else:  # v2: a key that is no string buckets by flagKey + targetingKey
                    at_default = [(default_v2, missing)]
                if attr.startswith("$flagd."):  # flagd's own object holds nothing else
                    return [(k, guard) for k, _ in at_default]
            if scheme == "flagd_v3":
                by = {"scheme": "flagd_v3_cbor", "by": [attr + CBOR]}
                return [(by, _and(guard, there)), *at_default]
            # v2: a key that is not a string falls back to flagKey + targetingKey
            is_str = _is_string(attr)
            return [
                ({"scheme": scheme, "by": [attr]}, _and(guard, is_str)),
                (default_v2, _and(guard, there, _not(is_str))),
                *at_default,
            ]
        if op == "cat":
            parts = list(args) if isinstance(args, list) else [args]
            prefix, suffix = "", ""
            cat_attr: str | None = None
            cat_default: Any = _NO_DEFAULT
            for k, p in enumerate(parts):
                if isinstance(p, str):
                    if cat_attr is None:
                        prefix += p
                    else:
                        suffix += p
                    continue
                try:
                    pop, pargs = _single(p) if isinstance(p, Mapping) else ("", None)
                    if pop != "var":
                        raise _Refuse(f"cat of {p!r} as a bucketing key")
                    try:
                        name, default = self.var_default(pargs)
                    except (_Refuse, *MALFORMED) as exc:
                        raise self.within(exc, pop, pargs) from None
                except (_Refuse, *MALFORMED) as exc:
                    raise self.operand(exc, args, k) from None
                if name == FLAG_KEY:
                    if cat_attr is None:
                        prefix += self.key
                    else:
                        suffix += self.key
                elif cat_attr is None:
                    cat_attr, cat_default = name, default
                else:
                    raise _Refuse("a bucketing key that concatenates two context values")
            if cat_attr is None:  # only literals: the same text for everyone
                return [(self.text_bytes(prefix), guard)]
            if cat_attr in (TIMESTAMP, "$flagd"):
                cat_default = _NO_DEFAULT  # always set: the default is never read
            # a missing or null value: cat's text of the default (of null: "null")
            absent = "null" if cat_default is _NO_DEFAULT else _cat_text(cat_default)
            if absent is None:  # pragma: no cover - _not_literal refused it
                raise _Refuse(f"cat of var {cat_attr!r:.60}: a default with no text")
            if scheme == "flagd_v2" and cat_default is not _NO_DEFAULT:
                raise _Refuse(
                    f"cat of var {cat_attr!r:.60} with a default value as a fractional v2 "
                    "bucketing key (v2 lowers a cat of a string or integer value only)"
                )
            if scheme == "flagd_v2":  # as before: a string or int value (no v2 peer here)
                hashed_v2 = {"scheme": scheme, "by": [cat_attr], "salt": prefix, "suffix": suffix}
                return [(hashed_v2, guard)]
            # cat reads the value's JSONLogic text (context()'s #cat, or the string or
            # int itself); a missing or null value is "null"
            hashed = {"scheme": scheme, "by": [cat_attr + CAT, cat_attr], "salt": prefix,
                      "suffix": suffix}  # fmt: skip
            present: Any = {"any": [{"attr": cat_attr + CAT, "exists": True},
                                    {"attr": cat_attr, "exists": True}]}  # fmt: skip
            if cat_default is not _NO_DEFAULT:  # (a null value's #cat is "null")
                present = {"attr": cat_attr, "exists": True}
            return [
                (hashed, _and(guard, present)),
                (self.text_bytes(prefix + absent + suffix), _and(guard, _not(present))),
            ]
        raise _Refuse(f"'{op}' as a bucketing key")

    def text_bytes(self, text: str) -> bytes:
        """The bytes flagd hashes for the bucketing text ``text``."""
        if self.scheme != "flagd_v3":
            return text.encode("utf-8", "surrogatepass")
        return _constant_cbor(text)

    # -- conditions -------------------------------------------------------------------------
    def var_default(self, args: Any) -> tuple[str, Any]:
        """A ``var``'s attribute name and default value (_NO_DEFAULT for none: flagd's
        evaluators read ``{"var": [name, null]}`` as ``{"var": name}``)."""
        if isinstance(args, list) and len(args) == 2:
            name, default = args
            if default is None:
                return self.var_name(name, "[0]"), _NO_DEFAULT
            why = _not_literal(default)
            if why is not None:
                at = "[1]"  # (the default's place below the var's operands)
                raise _Refuse(f"var {name!r:.60} with the default {default!r:.60}: {why}", at)
            return self.var_name(name, "[0]"), default
        return self.var_name(args), _NO_DEFAULT

    def var_name(self, args: Any, item: str = "") -> str:
        """A ``var``'s attribute name of its operands ``args`` (``item``: where ``args``
        is below them; a refusal is named by the operands, one of a name that is not
        text by that name)."""
        if isinstance(args, list):
            if len(args) == 2 and args[1] is None:
                args = args[:1]
            if len(args) == 2:
                raise _Refuse(f"var {args[0]!r:.60} with a default value in this position")
            if len(args) != 1:
                raise _Refuse(f"var with {len(args)} arguments (a name and a default at most)")
            args = args[0]
            item += "[0]"
        if not isinstance(args, str):
            raise _Refuse(f"var of {args!r}", item)
        if args == "":
            raise _Refuse("var of the whole context ('')")
        if args == "$flagd":
            # flagd's own object ({flagKey, timestamp}), always set and truthy, whose text
            # is "[object Object]" and whose CBOR changes every second: cfgcore's context
            # holds only its two fields (it read the object as missing)
            raise _Refuse(
                "var '$flagd' (flagd's own object): read $flagd.flagKey or $flagd.timestamp"
            )
        if "#" in args:
            # context() derives its keys under '#' suffixes: each '#' of a name is
            # written '#!' there and here alike (cfgcore.interop._escaped_names)
            args = ".".join(map(escape_name, args.split(".")))
        if args.count(".") >= MAX_PATH_DEPTH - 2:
            raise _Refuse(
                f"var {args!r:.60}: more than {MAX_PATH_DEPTH - 2} levels deep "
                "(flagd.context() reads objects to that depth)"
            )
        for part in args.split(".")[1:]:
            # json-logic's var reads an item (or a character) of an array (or a string)
            # at a canonical index, and its length: context() flattens only objects
            if part == "length" or (part.isdigit() and part.isascii() and str(int(part)) == part):
                raise _Refuse(
                    f"var {args!r:.80}: {part!r} is an item or the length of an array or "
                    "string to flagd, which cfgcore's context does not derive"
                )
        return args

    def condition(self, expr: Any) -> Any:
        return self.condition_defined(expr)[0]

    def condition_defined(self, expr: Any) -> tuple[Any, Any]:
        """(condition, where the operator's result is not null) for a JSONLogic test."""
        own_key = self.shared.by_id.get(id(expr))
        if own_key is None:  # not a $ref evaluator's expansion
            return self.lower_condition(expr)
        key = (id(expr), self.key if own_key else None)
        hit = self.shared.lowered.get(key)
        if hit is None:
            cond, defined = self.lower_condition(expr)
            hit = self.shared.lowered[key] = (_typed(cond), _typed(defined))
        return hit

    def lower_condition(self, expr: Any) -> tuple[Any, Any]:
        if not (
            isinstance(expr, dict) or (type(expr) not in _NO_MAPPING and isinstance(expr, Mapping))
        ):
            return (_ALWAYS if _js_truthy(expr) else _NEVER), _ALWAYS
        op, args = _single(expr)
        if op not in ("and", "or", "!", "!!"):
            found = self.defaulted(op, args)  # (its refusals named below expr)
            if found is not None:
                return found
        try:
            return self.operation(op, args)
        except (_Refuse, *MALFORMED) as exc:
            raise self.within(exc, op, args) from None

    def operation(self, op: str, args: Any) -> tuple[Any, Any]:
        """:meth:`lower_condition` of the operation ``op`` of the operands ``args`` (a
        refusal named below them: ``[1]``, the second operand)."""
        if op == "var":
            attr = self.var_name(args)
            if attr == FLAG_KEY:
                return (_ALWAYS if self.key else _NEVER), _ALWAYS
            return _truthy(attr), _ALWAYS
        if op in ("and", "or"):
            items = _operands(args)
            if not items:
                # json-logic's and/or of nothing answer null (json-logic-js: undefined),
                # false to every test, in flagd's Python evaluator as in JSONLogic's
                # reference; flagd's Go evaluator (diegoholiveira/jsonlogic) answers true
                # for an empty "and": cfgcore follows the Python peer and the reference
                return _NEVER, _ALWAYS
            parts = []
            for i, a in enumerate(items):
                try:
                    parts.append(self.condition(a))
                except (_Refuse, *MALFORMED) as exc:
                    raise self.operand(exc, args, i) from None
            return ({"all": parts} if op == "and" else {"any": parts}), _ALWAYS
        if op in ("!", "!!"):
            items = _operands(args)
            # an operator with no operand tests null (undefined), which is falsy
            try:
                test = self.condition(items[0]) if items else _NEVER
            except (_Refuse, *MALFORMED) as exc:
                raise self.operand(exc, args, 0) from None
            return (_not(test) if op == "!" else test), _ALWAYS
        if op in ("==", "===", "!=", "!=="):
            attr, lit = self.var_and_literal(args, op)
            if lit is not None and not isinstance(lit, (str, int, float, bool)):
                raise self.operand(_Refuse(f"'{op}' with {lit!r}"), args, int(args[1] is lit))
            if attr == FLAG_KEY:  # the flag's own key: decided at import
                same = isinstance(lit, str) and lit == self.key
                return (_ALWAYS if same == (op in ("==", "===")) else _NEVER), _ALWAYS
            if op in ("==", "!="):
                test = _loose_eq(attr, lit)
            else:
                test = _py_eq(attr, lit)
            return (test if op in ("==", "===") else _not(test)), _ALWAYS
        if op in ("<", "<=", ">", ">="):
            if not isinstance(args, list) or len(args) not in (2, 3):
                raise _Refuse(f"'{op}' needs two or three arguments")
            if len(args) == 3:  # between: a < x < b
                lo, mid, hi = args
                first = self.compare(op, args, 0, 1)
                if hi is None:
                    return first, _ALWAYS  # json-logic: a null third operand is none
                second = self.compare(op, args, 1, 2)
                if isinstance(hi, Mapping) and _single(hi)[0] == "var":
                    # json-logic (op_less_than(a, b, c=None), ...) reads a third operand
                    # that evaluates to null as no third operand: then only a OP b
                    hi_attr = self.var_at(args, 2, op)
                    if hi_attr != FLAG_KEY:
                        second = {"any": [_missing(hi_attr), second]}
                return {"all": [first, second]}, _ALWAYS
            return self.compare(op, args, 0, 1), _ALWAYS
        if op == "in":
            if not isinstance(args, list) or len(args) != 2:
                raise _Refuse("'in' needs two arguments")
            needle, hay = args
            if not isinstance(needle, Mapping) and not isinstance(hay, Mapping):
                # two literals (null among them): the answer is the same for everyone
                if not all(_not_literal(x) is None for x in (needle, hay)):
                    raise _Refuse(f"'in' with {needle!r:.40} and {hay!r:.40}")
                return (_ALWAYS if _py_in(needle, hay) else _NEVER), _ALWAYS
            if isinstance(needle, Mapping) and not isinstance(hay, (list, str, Mapping)):
                # json-logic's in: only an array or a string holds anything (null, a
                # number or a boolean none), whatever the needle
                self.var_at(args, 0, "in")
                if _not_literal(hay) is not None:
                    raise self.operand(_Refuse(f"'in' with {hay!r:.40}"), args, 1)
                return _NEVER, _ALWAYS
            if isinstance(hay, list):
                attr = self.var_at(args, 0, "in")
                if not all(h is None or isinstance(h, (str, int, float, bool)) for h in hay):
                    raise self.operand(_Refuse("'in' with a non-literal list"), args, 1)
                if attr == FLAG_KEY:  # the flag's own key: decided at import
                    hit = any(isinstance(h, str) and h == self.key for h in hay)
                    return (_ALWAYS if hit else _NEVER), _ALWAYS
                # Python's "in" on a list: == per item, so True is in [1] and 0 in [False]
                # (a dict would merge True and 1: keyed by type too); null is in a list
                # holding null where the value is missing or null
                real = [h for h in hay if h is not None]
                items = list(dict.fromkeys((type(x), x) for h in real for x in _py_equals(h)))
                items = [x for _, x in items]
                member: Any = {"attr": attr, "in": items} if real else _NEVER
                if len(real) < len(hay):
                    member = _or(member, _missing(attr))
                return member, _ALWAYS
            if needle is None:
                # json-logic's in: null is in a string holding "null" (its text) and in
                # an array holding null
                attr = self.var_at(args, 1, "in")
                if attr == FLAG_KEY:
                    return (_ALWAYS if "null" in self.key else _NEVER), _ALWAYS
                either = [{"attr": attr, "contains": "null"}, {"attr": attr + NULLS, "eq": True}]
                return {"any": either}, _ALWAYS
            if isinstance(needle, str):
                attr = self.var_at(args, 1, "in")
                if attr == FLAG_KEY:
                    return (_ALWAYS if needle in self.key else _NEVER), _ALWAYS
                sub: Any = {"attr": attr, "contains": needle}
                if "\0" not in needle:  # an array of strings holding the needle
                    sub = {"any": [sub, {"attr": attr + ITEMS, "contains": f"\0{needle}\0"}]}
                return sub, _ALWAYS
            raise _Refuse("'in' needs a literal list or a literal substring")
        if op in ("starts_with", "ends_with"):
            if not isinstance(args, list) or len(args) != 2:
                return _NEVER, _NEVER  # flagd: wrong arguments are null
            subject, affix = args
            holds = str.startswith if op == "starts_with" else str.endswith
            if isinstance(affix, Mapping):
                # json-logic evaluates the operands first: the prefix (suffix) is a
                # context value, tested against the literal's prefixes (suffixes)
                return self.affix_of(op, args, holds)
            if not isinstance(affix, str):
                return _NEVER, _NEVER  # flagd: an affix that is no string is null
            if not isinstance(subject, Mapping):  # two literals: decided here
                if not isinstance(subject, str):
                    return _NEVER, _NEVER
                return (_ALWAYS if holds(subject, affix) else _NEVER), _ALWAYS
            attr = self.var_at(args, 0, op)
            if attr == FLAG_KEY:
                hit = (
                    self.key.startswith(args[1])
                    if op == "starts_with"
                    else self.key.endswith(args[1])
                )
                return (_ALWAYS if hit else _NEVER), _ALWAYS
            return {"attr": attr, op: args[1]}, _is_string(attr)
        if op == "sem_ver":
            return self.sem_ver(args)
        if op == "fractional":
            raise _Refuse("fractional inside a compound condition")
        raise _Refuse(f"JSONLogic operator '{op}'")

    def affix_of(self, op: str, args: list[Any], holds: Any) -> tuple[Any, Any]:
        """``starts_with``/``ends_with`` whose prefix (suffix) is a context value: the
        value is a string among the literal subject's prefixes (suffixes)."""
        subject = args[0]
        if isinstance(subject, Mapping):
            raise _Refuse(f"'{op}' of a context value by another (a var compared with a var)")
        attr = self.var_at(args, 1, op)
        if not isinstance(subject, str):
            return _NEVER, _NEVER  # flagd: a subject that is no string is null
        if attr == FLAG_KEY:
            return (_ALWAYS if holds(subject, self.key) else _NEVER), _ALWAYS
        if len(subject) > MAX_AFFIX_SUBJECT:
            why = (
                f"'{op}' of a literal longer than {MAX_AFFIX_SUBJECT} characters by a context value"
            )
            raise self.operand(_Refuse(why), args, 0)
        n = len(subject)
        parts = (
            {subject[:i] for i in range(n + 1)}
            if op == "starts_with"
            else {subject[i:] for i in range(n + 1)}
        )
        return {"attr": attr, "in": sorted(parts)}, _is_string(attr)

    def defaulted(self, op: str, args: Any) -> tuple[Any, Any] | None:
        """A test whose operand is a ``var`` with a default value (None: it has none).

        flagd's var reads the default where the attribute is missing or null (its Go
        and Python evaluators; its JavaScript one, json-logic-engine, only where it is
        missing), so the test is "the attribute is set and the test holds for it, or
        it is not and the test holds for the default". Where the var is the test's only
        one, the second part is decided at import: the lowered test's answer for a
        context holding the default (what cfgcore answers for an attribute of that
        value, the answer flagd's own gives for it)."""
        if op == "var":
            try:
                name, default = self.var_default(args)
            except (_Refuse, *MALFORMED) as exc:
                raise self.within(exc, op, args) from None
            if default is _NO_DEFAULT:
                return None
            return self.split(name, default, {"var": name}, {"var": _PROBE}, None)
        if not isinstance(args, list):
            return None
        at: list[tuple[int, str, Any]] = []
        for i, a in enumerate(args):
            if isinstance(a, Mapping) and len(a) == 1 and "var" in a:
                try:
                    name, default = self.var_default(a["var"])
                except (_Refuse, *MALFORMED) as exc:
                    exc = self.within(exc, "var", a["var"])
                    raise self.within(self.placed(exc, a, i), op, args) from None
                if default is not _NO_DEFAULT:
                    at.append((i, name, default))
        if not at:
            return None
        if len(at) > 1:
            raise self.within(_Refuse(f"'{op}' over two vars with default values"), op, args)
        i, name, default = at[0]
        plain, probe, literal = list(args), list(args), list(args)
        plain[i], probe[i], literal[i] = {"var": name}, {"var": _PROBE}, default
        if any(isinstance(a, Mapping) for j, a in enumerate(args) if j != i):
            # another var ($flagd.timestamp against this one): the default is a literal
            if isinstance(default, (Mapping, list)) and name not in (FLAG_KEY, TIMESTAMP):
                refusal = _Refuse(
                    f"'{op}' of two vars, {name!r:.60} with the default {default!r:.40}: "
                    "only a string, number or boolean default is lowered there"
                )
                raise self.within(self.placed(refusal, args[i], i), op, args)
            # (the tests over plain and literal are shaped as expr: named as its parts)
            return self.split(name, default, {op: plain}, None, {op: literal})
        return self.split(name, default, {op: plain}, {op: probe}, None)

    def split(
        self, name: str, default: Any, plain: Any, probe: Any, literal: Any
    ) -> tuple[Any, Any]:
        """(condition, defined) of a test over ``{"var": [name, default]}``: ``plain``
        the test over ``{"var": name}``; ``probe`` the test over the var _PROBE, or
        ``literal`` the test with the default in the var's place."""
        if name in (FLAG_KEY, TIMESTAMP) or name == "$flagd":
            return self.lower_condition(plain)  # always set: the default is never read
        if literal is not None:
            missing = self.lower_condition(literal)
        else:
            try:
                text = json.dumps([probe, default], sort_keys=True, allow_nan=False)
            except (TypeError, ValueError):  # pragma: no cover - _not_literal refused it
                raise _Refuse(f"var {name!r:.60}: a default that is no JSON value") from None
            at = self.fold(probe, default, text)
            missing = (_ALWAYS if at[0] else _NEVER, _ALWAYS if at[1] else _NEVER)
        if name.startswith("$flagd."):
            return missing[0], missing[1]  # flagd's own object holds nothing else: the default
        present = self.lower_condition(plain)
        there = {"attr": name, "exists": True}
        out = []
        for p, m in zip(present, missing, strict=True):
            if m == _ALWAYS:  # (a test that also holds where the value is missing: same)
                out.append(_or(p, _missing(name)))
            elif m == _NEVER:
                out.append(_and(there, p))
            else:
                out.append(_or(_and(there, p), _and(_missing(name), m)))
        return out[0], out[1]

    def fold(self, probe: Any, value: Any, text: str | None = None) -> tuple[bool, bool]:
        """(holds, defined) of the test ``probe`` over the var _PROBE where it reads
        ``value``: the lowered test's answer for a context holding ``value`` (``text``:
        the JSON of the pair, the memo's key, when the caller has it)."""
        if text is None:
            text = json.dumps([probe, value], sort_keys=True, allow_nan=False)
        hit = self.shared.folds.get(text)
        if hit is None:
            cond, defined = self.lower_condition(probe)
            at = _holds([cond, defined], context(None, {_PROBE: value}))
            hit = self.shared.folds[text] = (at[0], at[1])
        return hit

    def var_of(self, expr: Any, op: str) -> str:
        """The attribute of the var ``expr`` (an operand of ``op``; a refusal named below it)."""
        if isinstance(expr, Mapping) and _single(expr)[0] == "var":
            args = _single(expr)[1]
            try:
                return self.var_name(args)
            except (_Refuse, *MALFORMED) as exc:
                raise self.within(exc, "var", args) from None
        raise _Refuse(f"'{op}' needs a var operand, got {expr!r}")

    def var_at(self, args: Any, i: int, op: str) -> str:
        """:meth:`var_of` the operand ``i`` of ``args`` (a refusal named below the operands)."""
        try:
            return self.var_of(args[i], op)
        except (_Refuse, *MALFORMED) as exc:
            raise self.operand(exc, args, i) from None

    def var_and_literal(self, args: Any, op: str) -> tuple[str, Any]:
        if not isinstance(args, list) or len(args) != 2:
            raise _Refuse(f"'{op}' needs two arguments")
        a, b = args
        if isinstance(a, Mapping) and not isinstance(b, Mapping):
            return self.var_at(args, 0, op), b
        if isinstance(b, Mapping) and not isinstance(a, Mapping):
            return self.var_at(args, 1, op), a
        raise _Refuse(f"'{op}' must compare one var with one literal")

    def compare(self, op: str, args: list[Any], i: int, j: int) -> Any:
        """``args[i] <op> args[j]`` (a refusal named below the operands ``args``)."""
        a, b = args[i], args[j]
        flip = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}
        names = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            # $flagd.timestamp against a context number: the sign of their difference
            va, vb = self.var_at(args, i, op), self.var_at(args, j, op)
            if FLAG_KEY in (va, vb):  # the flag's own key: a string literal here
                keyed = list(args)
                keyed[i] = self.key if va == FLAG_KEY else a
                keyed[j] = self.key if vb == FLAG_KEY else b
                return self.compare(op, keyed, i, j)
            if va == TIMESTAMP and vb != TIMESTAMP:
                return {"attr": vb + SINCE, names[op]: 0}
            if vb == TIMESTAMP and va != TIMESTAMP:
                return {"attr": va + SINCE, names[flip[op]]: 0}
            raise _Refuse(f"'{op}' comparing two context values")
        if isinstance(a, Mapping) and not isinstance(b, Mapping):
            attr, lit, o, at = self.var_at(args, i, op), b, op, j
        elif isinstance(b, Mapping) and not isinstance(a, Mapping):
            attr, lit, o, at = self.var_at(args, j, op), a, flip[op], i
        else:
            raise _Refuse(f"'{op}' must compare one var with one literal")
        try:
            return self.compare_literal(op, attr, o, lit)
        except (_Refuse, *MALFORMED) as exc:
            raise self.operand(exc, args, at) from None

    def compare_literal(self, op: str, attr: str, o: str, lit: Any) -> Any:
        """``attr <o> lit`` (``op``: as written; a refusal names the literal)."""
        names = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
        if isinstance(lit, bool):  # json-logic orders a boolean as the number 0 or 1
            lit = int(lit)
        if attr == FLAG_KEY:  # the flag's own key, the same for every context: decided here
            probe = [{"var": _PROBE}, lit] if o == op else [lit, {"var": _PROBE}]
            try:
                return _ALWAYS if self.fold({op: probe}, self.key)[0] else _NEVER
            except (_Refuse, *MALFORMED) as exc:  # (named below the test the fold built)
                raise _Refuse(str(_Refuse.of(exc))) from None
        if isinstance(lit, str):
            return self.compare_text(attr, o, lit)
        if not isinstance(lit, (int, float)):
            raise _Refuse(f"'{op}' with a non-numeric literal {lit!r}")
        if attr == TIMESTAMP:  # always an integer
            return {"attr": attr, names[o]: lit}
        # JSONLogic compares the context value's number (a numeric string, a boolean,
        # a one-item array count); null or a missing value is 0
        if isinstance(lit, float) and math.isnan(lit):
            return _NEVER  # nothing orders with NaN
        try:  # exactly, as flagd's evaluator orders Python numbers (a string's is a float)
            tests: list[Any] = [_exact.ordered(a, names[o], lit) for a in _numbers(attr)]
        except ValueError as exc:
            raise _Refuse(f"'{op}': {exc}") from None
        if _PY_COMPARE[o](0, lit):
            tests.append(_not({"attr": attr, "exists": True}))
        return {"any": tests}

    def compare_text(self, attr: str, o: str, lit: str) -> Any:
        """``value <o> lit`` for a string literal, as json-logic orders it: a number or
        boolean against the literal's number (Python's ``float``; none, so never, for
        other text), a string by code point (Python's string order), null or a missing
        value as the text "null", an array or object as its text (``#str``)."""
        name = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge"}[o]
        num = _string_number(lit)
        if attr == TIMESTAMP:  # always an integer
            return {"attr": attr, name: num} if num is not None else _NEVER
        try:
            text = [string_order(a, name, lit, utf16=False) for a in (attr, attr + STR)]
            tests: list[Any] = [_exact.ordered(attr + NUM, name, num)] if num is not None else []
        except ValueError as exc:
            raise _Refuse(f"'{o}' with the string {lit!r:.40}: {exc}") from None
        tests += text
        if _PY_COMPARE[o]("null", lit):
            tests.append(_missing(attr))
        return {"any": tests}

    def sem_ver(self, args: Any) -> tuple[Any, Any]:
        if not isinstance(args, list) or len(args) != 3:
            return _NEVER, _NEVER  # flagd: wrong arguments are null
        left, op, right = args
        if isinstance(op, Mapping):
            raise self.operand(_Refuse("sem_ver with an operator read from the context"), args, 1)
        at_left, at_right = 0, 2
        if isinstance(right, Mapping) and not isinstance(left, Mapping):
            # json-logic evaluates the operands first: "1.2.3" < v is v > "1.2.3" ("^"
            # and "~" compare parts both ways)
            left, right, op = right, left, _MIRRORED.get(op, op)
            at_left, at_right = 2, 0
        if isinstance(right, Mapping):
            raise _Refuse("sem_ver of two context values (a var compared with a var)")
        base = self.var_at(args, at_left, "sem_ver")
        if base == TIMESTAMP:
            # flagd reads the clock's seconds as the version "<seconds>.0.0"
            raise self.operand(_Refuse("sem_ver of $flagd.timestamp"), args, at_left)
        attr = base + SEMVER
        # flagd reads a literal's text (str() of a number: 1 is "1", 1.5 "1.5")
        ver = _normal_semver(right)
        if ver is None or op not in ("=", "!=", "<", "<=", ">", ">=", "^", "~"):
            return _NEVER, _NEVER
        if _STRICT_SEMVER.fullmatch(ver) is None:
            return _NEVER, _NEVER  # '1.0.0-01' and the like: the semver package reads none
        valid: Any = {"attr": attr, "exists": True}
        if len(ver) + 4 > SEMVER_KEEP:  # "^"/"~" bounds add at most 4 characters
            # context()'s stand-in for a version past 256 characters orders right only
            # against versions of at most SEMVER_KEEP characters: for such a version
            # the context mapping compares the version itself (#semcmp:)
            short = _and(valid, _not({"attr": base + SEMLONG, "exists": True}))
            if len(ver) > 256:  # cfgcore reads versions of at most 256 characters
                why = f"sem_ver with a version constant over 256 characters: {ver:.40}..."
                raise self.operand(_Refuse(why), args, at_right)
            cond, _ = self.sem_ver_test(attr, op, ver)
            compared = SEMCMP + json.dumps([base, op, ver], ensure_ascii=False)
            return (
                {"any": [_and(short, cond), {"attr": compared, "eq": 1}]},
                {"any": [short, {"attr": compared, "exists": True}]},
            )
        return self.sem_ver_test(attr, op, ver)

    def sem_ver_test(self, attr: str, op: str, ver: str) -> tuple[Any, Any]:
        valid = {"attr": attr, "exists": True}
        eq = {"attr": attr, "semver_eq": ver}
        lt = {"attr": attr, "semver_lt": ver}
        gt = {"attr": attr, "semver_gt": ver}
        major, minor, _ = (int(x) for x in re.split(r"[-+]", ver)[0].split("."))
        if op == "=":
            return eq, valid
        if op == "!=":
            return _and(valid, _not(eq)), valid
        if op == "<":
            return lt, valid
        if op == ">":
            return gt, valid
        if op == "<=":
            return {"any": [lt, eq]}, valid
        if op == ">=":
            return {"any": [gt, eq]}, valid
        # flagd docs ("Semantic Version Operation"): "^" matches the major version and "~"
        # the major and minor version, in either direction (flagd compares the parts for
        # equality; it is not npm's ">= ver"). "M.m.0-0" is the lowest version of M.m
        # (pre-release "0" precedes every other), so the range is [M.m.0-0, next-0).
        if op == "^":
            lower, upper = f"{major}.0.0-0", f"{major + 1}.0.0-0"
        else:
            lower, upper = f"{major}.{minor}.0-0", f"{major}.{minor + 1}.0-0"
        at_least = {"any": [{"attr": attr, "semver_gt": lower}, {"attr": attr, "semver_eq": lower}]}
        return _and(at_least, {"attr": attr, "semver_lt": upper}), valid


_MIRRORED = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}  # a OP b is b MIRRORED[OP] a

_PY_COMPARE = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _single(expr: Mapping[str, Any]) -> tuple[str, Any]:
    if len(expr) != 1:
        raise _Refuse(f"a JSONLogic operation must have exactly one operator: {dict(expr)!r:.80}")
    ((op, args),) = expr.items()
    return op, args


_INT_TEXT = re.compile(r"-?(?:0|[1-9][0-9]*)")


def _names_by_text(attr: str, name: str) -> list[Any]:
    """The tests of a ``var`` whose value that is no string names variant ``name``.

    flagd's Python evaluator (FlagdCore) names the variant by the text of the value:
    "true"/"false" for a boolean, ``str()`` of a number (``1`` -> "1", ``1.5`` ->
    "1.5", ``1.0`` -> "1.0"). flagd's Go evaluator takes the value's JSON text, the same
    for booleans, integers and most fractions (it writes ``1.0`` as "1", ``1e20`` in
    full): cfgcore answers as the Python evaluator. Arrays and objects, whose texts
    the two write differently, name no variant here: a variant named like one (its
    name starts with "[" or "{") is refused."""
    if name in ("true", "false"):
        return [{"attr": attr, "eq": name == "true"}]
    if name[:1] in ("[", "{"):
        raise _Refuse(
            f"a var names a variant and variant {name!r:.60} reads as an array's or an "
            "object's text, which flagd's Python and Go evaluators write differently"
        )
    if _INT_TEXT.fullmatch(name) and name != "-0":
        n = int(name)
        if abs(n) >= 2**53:  # cfgcore compares numbers as doubles: 2**53 + 1 == 2**53
            raise _Refuse(
                f"a var names a variant and variant {name!r:.60} is an integer's text from "
                "2**53 on, which cfgcore cannot tell from its neighbours"
            )
        # an int (a float equal to it has its own text: "1.0")
        return [_and({"attr": attr, "eq": n}, _not({"attr": attr + PYNAME, "exists": True}))]
    try:
        x = float(name)
    except ValueError:
        return []
    if float.__repr__(x) != name:
        return []
    return [{"attr": attr + PYNAME, "eq": name}]


def _operands(args: Any) -> list[Any]:
    """The operands of a JSONLogic operation: json-logic (flagd's Python evaluator, as
    JSONLogic's reference json-logic-js) reads an argument that is not an array as the
    only operand, so ``{"if": "on"}`` is ``{"if": ["on"]}`` (not the characters of
    "on") and ``{"and": {"var": "a"}}`` tests ``a``."""
    return list(args) if isinstance(args, list) else [args]


_BOOLEAN_OPS = frozenset(("==", "===", "!=", "!==", "<", "<=", ">", ">=", "in", "!", "!!"))


def _boolean_valued(expr: Any) -> bool:
    """Whether the JSONLogic ``expr`` always answers true or false (never a value of
    the context, a literal of another type, or null)."""
    if isinstance(expr, bool):
        return True
    if not isinstance(expr, Mapping) or len(expr) != 1:
        return False
    ((op, args),) = expr.items()
    if op in _BOOLEAN_OPS:
        return True
    if op in ("and", "or"):
        items = args if isinstance(args, list) else [args]
        return bool(items) and all(_boolean_valued(a) for a in items)
    return False


def _py_in(needle: Any, hay: Any) -> bool:
    """json-logic's ``in`` of two literals, as flagd's Python evaluator answers it: an
    item of an array (Python's ==), a substring of a string (the needle's text)."""
    if isinstance(hay, list):
        return needle in hay
    if isinstance(hay, str):
        text = _cat_text(needle)
        return text is not None and text in hay
    return False


def _js_truthy(v: Any) -> bool:
    if isinstance(v, list):
        return len(v) > 0
    return bool(v)


# -- export -------------------------------------------------------------------------------
def from_snapshot(snapshot: Snapshot) -> dict[str, Any]:
    """Export the flags of ``snapshot`` whose rules fit flagd's format.

    Raises :class:`~cfgcore.interop.InteropError` naming every flag that does not
    fit (rules bucketed by cfgcore's own scheme, prerequisites, schedules, ...).
    """
    from cfgcore.interop._flagd_export import export

    return export(snapshot)
