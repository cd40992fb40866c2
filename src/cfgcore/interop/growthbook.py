"""Import GrowthBook features into a cfgcore snapshot.

>>> from cfgcore import Engine
>>> from cfgcore.interop import growthbook
>>> features = {"dark-mode": {"defaultValue": False,
...     "rules": [{"condition": {"country": "NL"}, "force": True}]}}
>>> engine = Engine.from_snapshot(growthbook.to_snapshot(features))
>>> engine.is_enabled("dark-mode", growthbook.context({"id": "1", "country": "NL"}))
True

Each feature becomes a cfgcore flag whose variants are its values (``default``, one
per force rule, one per experiment variation); ``engine.is_enabled`` is GrowthBook's
``on`` (the value is truthy, JavaScript rules) and ``engine.evaluate(...).value`` its
value. Rollouts (``coverage``, ``range``), experiments (``weights``, ``coverage``,
``ranges``, ``namespace``, ``filters``, ``hashVersion`` 1 and 2, ``seed``,
``hashAttribute``/``fallbackAttribute``, passthrough variations) are bucketed with
GrowthBook's FNV-1a hashing (:class:`cfgcore.snapshot.Hashing` schemes
``growthbook_v1``/``growthbook_v2``); bucket boundaries are computed at import from
GrowthBook's own floating-point ranges, bucket by bucket, so they agree exactly.
A hash attribute or experiment key that is a number or boolean is a dict key to the
SDK, as text is: :func:`context` gives a number key of the attributes its hash value
(JSON's text keys hold none under it) and forced variations of a number key force that
experiment; a list or object there makes the SDK raise, and is refused.

Conditions: literal equality, ``$eq``, ``$ne``, ``$in``, ``$nin``, ``$ini``,
``$nini``, ``$gt``/``$gte``/``$lt``/``$lte`` (numbers, and strings in GrowthBook's UTF-16 code
unit order through an exact regular expression), the version operators ``$veq``, ``$vne``,
``$vgt``, ``$vgte``, ``$vlt``, ``$vlte`` (on GrowthBook's padded version strings, which
:func:`context` derives), ``$exists``, ``$regex``, ``$regexi``, ``$notRegex``, ``$size``,
``$type``, ``$and``/``$or``/``$nor``/``$not``, ``$inGroup``/``$notInGroup`` (saved
groups given as value lists) and dotted paths into objects and arrays; the membership
operators intersect an array attribute with their values, as GrowthBook's ``isIn``
does (an array or object among the values equals nothing, null is found for a null or
missing value and in an array holding null; a NaN among the values of ``$in``,
``$nin`` or a saved group is refused: the SDK's Python ``in`` finds it only where the
attribute is the very same float object, as every NaN Python's ``json`` parses is, and
one computed apart is not; ``$ini``/``$nini`` find it never). ``$regex``
patterns are rewritten so RE2 answers as the SDK's Python ``re`` does
(Unicode ``\\d``/``\\w``/``\\s``, a final ``$``, and under ``$regexi`` i, I, İ and ı
as one letter); constructs that mean something else
to RE2 (``\\b``, lookaround, inline flags, ...) are refused. ``$all`` and ``$elemMatch``
that are membership tests (expected scalars, ``{"$eq": scalar}``, ``{"$in": [scalars]}``,
which, as GrowthBook's ``isIn``, also looks one level into an element that is an
array) test the array attribute itself; any other element condition (operators on the
elements, ``{"$elemMatch": {"sku": "x", "qty": {"$gt": 2}}}`` on their fields, ``$all``
values that are operator objects, arrays or objects, nested ``$elemMatch`` to
MAX_ELEMENT_NESTING levels) is lowered on its own and tested through the attribute
``#elem:<spec>``, which :func:`context`'s mapping answers by testing each element as
the SDK does, in its three values (see :class:`_Attributes`). Equality with an array
or an object is lowered item by item, an object's keys compared in JavaScript's
property order as the SDK compares them (a set attribute, which the SDK compares in its
iteration order, equals no array), an item that is null, NaN or an infinity equal to
any of these (the SDK compares items as JSON writes them). Anything else (an
``$elemMatch`` the SDK raises on for some arrays, ...) is an import error naming the
feature and the operator. ``$alli`` is ``$all`` with strings equal in lower case.
``$savedGroup`` references
(``{"id": ..., "attributeKey": ...}``) to ``list`` groups test their values as ``isIn``,
to ``condition`` groups their condition (a reference back into a group being evaluated
is false). The SDK answers in three values: an operator it does not know, and a saved
group of a type it does not know, answer *unknown*, which no rule passes and which
``$not``/``$nor`` leave unknown; they are imported with that answer, and so are the
operators it answers false for (``$savedGroups``, ``$or``/``$and``/``$nor``/
``$savedGroup`` on a value, ``$inGroup``/``$notInGroup`` of a group that is no list of
values). A condition key with ``$`` that the SDK does not know is an attribute's name,
as it reads it. Names holding ``#`` or starting with ``$forced`` are escaped on both
sides (``a#size`` is the attribute ``a#!size``, ``$forced:e`` is ``$forced=:e``; see
:func:`_name`), so no attribute is ever read as one of cfgcore's derived keys.

Prerequisites (``{"parentConditions": [{"id": parent, "condition": ..., "gate": ...}]}``
on a rule): GrowthBook evaluates each parent for the same attributes and tests its value,
in order, before anything else of the rule; the first condition that fails decides: a
gate makes the feature null, any other skips the rule. The gates that come first in a
rule no rule before can serve become cfgcore prerequisites on the parent's variants whose
values pass the condition (computed at import by cfgcore's own lowering and evaluator),
serving null (variant ``prerequisite``) where they fail; every other parent condition
acts from its rule on and becomes a ``prerequisite`` condition on those variants: the
rule requires every condition to pass, and a rule before it serves null where a gate is
the first to fail. Prerequisite cycles (GrowthBook's answer depends on where its
evaluation starts) and the children of a refused feature are refused (see
:func:`_link_prerequisites`).

A value the SDK raises on while it evaluates a condition (an ``$or``/``$nor``/``$and``
that is no list, an entry or a ``$not`` value that is no object) makes its whole
condition false, under a ``$not`` too, where the evaluation reaches it (growthbook 4.0.0
``evalCondition``): such conditions are imported with that answer (see
:meth:`_Feature.condition`).

Rules after one that returns for every user who reaches it (a force rule without
filters, coverage, range or prerequisites other than gates, whose condition is absent
or holds for everyone) are never read by the SDK: they are neither imported nor refused (only a rule
the SDK cannot build at all, one that is no object, is). After a force rule whose
rollout holds every bucket only users without a hash value for its attributes go on:
a later rule hashing by those alone serves none of them, and what the SDK reads after
finding no hash value is neither imported nor refused.

Forced variations (:func:`context` ``forced_variations``) are rules on reserved
``$forced:<experiment key>`` attributes, evaluated in place of the experiment.
"""

from __future__ import annotations

import functools
import json
import math
import re
import warnings
from collections.abc import Collection, Iterable, Mapping
from typing import Any, Literal

import msgspec

from cfgcore import _regex, _unicode_tables
from cfgcore._lower import MAX_REGEX_INPUT
from cfgcore._prereq import MAX_PREREQUISITE_DEPTH, MAX_PREREQUISITE_EVALUATIONS
from cfgcore._records import unservable
from cfgcore._regex import compile_regex, ranges_text
from cfgcore.errors import Problem, SnapshotError, child_key_path, join_key_paths
from cfgcore.interop import (
    MALFORMED,
    InteropError,
    _exact,
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
from cfgcore.interop._escaped_names import ESCAPED_HASH, escape_name, split_derived, unescape_name
from cfgcore.interop._plain import leaving_out, plain_pairs
from cfgcore.snapshot import Condition, Snapshot, snapshot_from_dict

try:  # Python's own regex parser, to read a pattern's structure as re does
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
    from re._constants import AT_BEGINNING as _AT_BEGINNING  # type: ignore[import-not-found]
    from re._constants import AT_END as _AT_END  # type: ignore[import-not-found]
except ImportError:  # Python 3.10
    import sre_parse as _sre_parse  # type: ignore[no-redef]
    from sre_constants import AT_BEGINNING as _AT_BEGINNING  # type: ignore[no-redef]
    from sre_constants import AT_END as _AT_END  # type: ignore[no-redef]

__all__ = [
    "context",
    "element_attributes",
    "js_truthy",
    "padded_version",
    "string_order",
    "thaw",
    "to_snapshot",
]

FORCED = "$forced:"
# a forced variation of an experiment whose key is a number or boolean (see _key_text)
FORCED_NUM = "$forced#"
HASH = "#hash"  # suffix of an attribute's hash string (JavaScript String() of it)
# the hash string of an attribute held under a number or boolean key (see _key_text)
HASH_NUM = "#hash:"
# suffix of an array attribute's length: only lists have one (the SDK's ``$size``,
# ``$all`` and ``$elemMatch`` read lists alone, so it also marks a list)
SIZE = "#size"
TYPE = "#type"  # suffix of an attribute's GrowthBook type name
VER_STR = "#vs"  # suffix: padded version string of a string attribute
VER_NUM = "#vn"  # suffix: padded version string of a number attribute
# suffix: a string attribute in lower case, an array attribute's string elements in lower
# case (``$ini``, as GrowthBook folds)
LOWER = "#lower"
# suffix: the elements of an array attribute's elements that are arrays (GrowthBook's isIn,
# read by ``$elemMatch``/``$all`` with ``$in``, looks one level into them)
INNER = "#inner"
# suffix: an object's keys in JavaScript's property order, as JSON text (literal equality
# with an object compares them: see _object_keys); absent where a key is no string
KEYS = "#keys"
NULLS = "#nulls"  # suffix: true for an array holding null (``$in`` a list holding null)
CHOMP = "#chomp"  # a string ending in a newline without it (RE2's '$' is Python's '$' on it)
HEAD = "#head"  # a string longer than cfgcore's regex bound: its first MAX_REGEX_INPUT characters
SEARCH = "#search:"  # + JSON [path, pattern, ignore case, '$' at end]: see _Attributes
# + JSON [path, mode, true condition, false condition]: whether some element of the array
# at path passes an element condition (``$elemMatch``, ``$all``), answered by _Attributes
ELEM = "#elem:"
ELEMENT = "e"  # the attribute an element condition reads its element at (see _Attributes)
UNKNOWN = "unknown"  # an ``#elem:`` answer: no element passes and one is unknown
_UNSUPPORTED_RULE_KEYS = ("contextualBanditRef", "contextualVariations", "tracks", "url")
_NEVER: dict[str, Any] = {"any": []}
_ALWAYS: dict[str, Any] = {"all": []}


class _Refuse(Exception):
    """A construct that cannot be lowered; the message says why. ``at``: its key path
    below the part of the feature being lowered where it was raised, which each part
    it is raised through puts its own key in front of (:meth:`under`), so the refusal
    names its place in the source (``rules[1].condition.$or[0].country.$regex``)."""

    def __init__(self, why: str, at: str = "") -> None:
        super().__init__(why)
        self.at = at

    def under(self, *keys: Any) -> _Refuse:
        """This refusal, raised within ``keys`` (``"rules", 0``): its path below them."""
        outer = ""
        for key in keys:
            outer = child_key_path(outer, key)
        self.at = join_key_paths(outer, self.at)
        return self


def _At(path: str, why: str) -> _Refuse:
    """A refusal of the value at ``path`` (relative to its rule): the rule puts its own
    path in front (``rules[0].namespace: expected [id, start, end], got a list of 2``)."""
    return _Refuse(why, at=path)


class _Inherited(_Refuse):
    """A feature refused because its prerequisite ``parent`` is."""

    def __init__(self, why: str, parent: Any, at: str = "") -> None:
        super().__init__(why, at)
        self.parent = parent


def js_truthy(value: Any) -> bool:
    """JavaScript truthiness (GrowthBook's ``on``): empty objects and arrays are true."""
    if value is None or value is False:
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value != 0 and not math.isnan(value)
    if isinstance(value, str):
        return value != ""
    return True


def thaw(value: Any) -> Any:
    """A served value as plain data (cfgcore serves objects and arrays read-only)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value


def js_number_text(x: float) -> str:
    """JavaScript ``String(number)`` (ECMAScript Number::toString), as GrowthBook hashes numbers.

    ECMAScript: the shortest decimal digits that read back as the double (Python's
    ``repr`` gives them), laid out in fixed notation for exponents up to 21 (zeros
    padding an integer past 2**53: ``String(2**60)`` is ``"1152921504606847000"``, not
    its exact ``...976``) and down to 1e-6, in scientific notation otherwise."""
    x = float(x)
    if x == 0:
        return "0"
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x < 0:
        return "-" + js_number_text(-x)
    mant, _, exp = repr(x).partition("e")
    whole, _, frac = mant.partition(".")
    if frac == "0":
        frac = ""
    digits = (whole + frac).lstrip("0")
    n = int(exp or 0) + len(whole) - (len(whole + frac) - len(digits))  # 0.d1d2... * 10**n
    digits = digits.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    lead = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{lead}e{'+' if n > 1 else '-'}{abs(n - 1)}"


_VER_STRIP = re.compile(r"(^v|\+.*$)")
_VER_SPLIT = re.compile(r"[-.]")
_ONE_PART = re.compile(r"^v|[-.+]")  # a version string that is not one part as given
_EXACT_INT = 2**53  # every int below it in size is a double, String() its str()


def padded_version(value: Any) -> str:
    """GrowthBook's comparable version string: ``v`` and build metadata dropped, numeric
    parts left-padded to 5, ``~`` after a release (so it sorts after its pre-releases).

    Source: GrowthBook SDK docs, "paddedVersionString" (the version operators)."""
    # Fast paths (context() derives this for every string and number it is given): an
    # int that a double holds exactly, whose String() is str(), and a non-empty string
    # holding none of "-", ".", "+" and not starting with "v" are one part, left as it
    # is or, all digits, padded (tests/test_interop_growthbook_versions.py holds them to
    # the general path below).
    if type(value) is int and -_EXACT_INT < value < _EXACT_INT:
        return str(value).rjust(5, " ") if value >= 0 else "-" + str(-value).rjust(5, " ")
    if type(value) is str and value and _ONE_PART.search(value) is None:
        return value.rjust(5, " ") if value.isdigit() else value
    return _padded(value)


def _padded(value: Any) -> str:
    """:func:`padded_version` of any value, by the general path."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = _number_text(value)
    if not value or not isinstance(value, str):
        value = "0"
    parts = _VER_SPLIT.split(_VER_STRIP.sub("", value))
    if len(parts) == 3:
        parts.append("~")
    return "-".join(p.rjust(5, " ") if p.isdigit() else p for p in parts)


# GrowthBook orders strings by UTF-16 code unit (JavaScript's order; the Python SDK
# compares non-ASCII strings by their UTF-16 encoding). Compared character by
# character that is code point order except that a character above U+FFFF (a
# surrogate pair, first unit 0xD800-0xDBFF) sorts between U+D7FF and U+E000. These
# are the character ranges in that order; the surrogates themselves never occur.
_UNIT_ORDER = ((0x0, 0xD7FF), (0x10000, 0x10FFFF), (0xE000, 0xFFFF))
# Padded version strings are compared as Python strings by the SDK: code point order.
_POINT_ORDER = ((0x0, 0xD7FF), (0xE000, 0x10FFFF))


def _char_class(ranges: list[tuple[int, int]]) -> str | None:
    """A regex character class of the code point ``ranges`` (None when empty)."""
    parts = []
    for lo, hi in ranges:
        if lo > hi:
            continue
        a = "\\x00" if lo == 0 else re.escape(chr(lo))
        parts.append(a if lo == hi else a + "-" + re.escape(chr(hi)))
    return "[" + "".join(parts) + "]" if parts else None


def _above(ch: str, order: tuple[tuple[int, int], ...]) -> str | None:
    """The characters after ``ch`` in ``order``, as a class."""
    o, ranges, seen = ord(ch), [], False
    for lo, hi in order:
        if seen:
            ranges.append((lo, hi))
        elif lo <= o <= hi:
            ranges.append((o + 1, hi))
            seen = True
    return _char_class(ranges)


def _below(ch: str, order: tuple[tuple[int, int], ...]) -> str | None:
    """The characters before ``ch`` in ``order``, as a class."""
    o, ranges = ord(ch), []
    for lo, hi in order:
        if lo <= o <= hi:
            ranges.append((lo, o - 1))
            break
        ranges.append((lo, hi))
    return _char_class(ranges)


def string_order(attr: str, op: str, c: str, *, utf16: bool = True) -> dict[str, Any]:
    """``attr <op> c`` in GrowthBook's string order (UTF-16 code units, as JavaScript
    compares; code points with ``utf16=False``, as the SDK orders padded version
    strings), for a string attribute, as cfgcore conditions: a string is greater than
    ``c`` where, after a common prefix, its next character is greater (or it continues
    past ``c``), and less where that character is less (or it is a proper prefix of
    ``c``) -- a regular language, so a regex decides it exactly. Every match is at the
    start and at most ``len(c) + 1`` long, so a value past cfgcore's regex bound is
    decided by its first characters (``#head``). The regex grows with the square of
    ``len(c)``: a constant past :data:`MAX_ORDERED` characters is a ValueError."""
    if len(c) > MAX_ORDERED:
        raise ValueError(f"a string constant of {len(c)} characters to order by (at most "
                         f"{MAX_ORDERED})")  # fmt: skip
    greater, less = [], []
    order = _UNIT_ORDER if utf16 else _POINT_ORDER
    for i, ch in enumerate(c):
        head = re.escape(c[:i])
        up, down = _above(ch, order), _below(ch, order)
        if up is not None:
            greater.append(head + up)
        if down is not None:
            less.append(head + down)
    greater.append(re.escape(c) + "[\\s\\S]")
    gt = _with_head({"attr": attr, "matches": "^(?:" + "|".join(greater) + ")"})
    lt_parts: list[Any] = []
    if less:
        lt_parts.append(_with_head({"attr": attr, "matches": "^(?:" + "|".join(less) + ")"}))
    prefixes = [c[:i] for i in range(len(c))]
    if prefixes:
        lt_parts.append({"attr": attr, "in": prefixes})
    lt: dict[str, Any] = {"any": lt_parts}
    eq = {"attr": attr, "eq": c}
    return {
        "gt": gt,
        "ge": {"any": [gt, eq]},
        "lt": lt,
        "le": {"any": [lt, eq]},
    }[op]


MAX_ORDERED = 256  # the longest string constant $gt/$lt/$vgt... order by
MAX_GROUP_EXPANSIONS = 1000  # condition saved group references one feature lowers
MAX_PATH_DEPTH = 64  # context() reads nested values to this depth; deeper paths are refused


def _with_head(test: dict[str, Any]) -> dict[str, Any]:
    """A regex test at the start of the value, bounded in width by less than
    MAX_REGEX_INPUT, also run on the head of a longer value (context()'s ``#head``)."""
    return {"any": [test, {**test, "attr": test["attr"] + HEAD}]}


def _type_name(v: Any) -> str:
    """GrowthBook's type name of an attribute value (growthbook 4.0.0 ``getType``): a
    set is an array too, but a tuple, a frozenset or a mapping that is no dict is
    "unknown"."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (list, set)):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "unknown"


def _object_keys(obj: Mapping[Any, Any]) -> str | None:
    """The keys of ``obj`` in JavaScript's property order (canonical array indices, "0"
    to "4294967294", in numeric order, then the other keys in insertion order), as one
    text: what GrowthBook's literal equality with an object compares first (growthbook
    4.0.0 ``_js_key_order``). Joined by NUL, or JSON text where a key holds one (no
    two orders give one text). None where a key is no string: no JSON object has it."""
    indices: list[str] = []
    others: list[str] = []
    for k in obj:
        if not isinstance(k, str):
            return None
        if k[:1] in _DIGITS and _is_index(k):
            indices.append(k)
        else:
            others.append(k)
    if indices:
        indices.sort(key=int)
        others = indices + others
    text = "\0".join(others)
    if others == [""] or text.count("\0") != max(len(others) - 1, 0):
        # [""] would read as no keys, a key holding NUL as two: JSON text after three
        # NULs, which no join has (one key alone can be empty)
        return "\0\0\0" + json.dumps(others, ensure_ascii=False)
    return text


_DIGITS = frozenset("0123456789")


def _is_index(k: str) -> bool:
    """A canonical array index to JavaScript ("0", "7", not "07", below 2**32 - 1)."""
    return (
        k.isascii()
        and k.isdigit()
        and len(k) <= 10
        and (k == "0" or k[0] != "0")
        and (int(k) < 2**32 - 1)
    )


def _put_leaf(out: dict[str, Any], path: str, v: Any) -> None:
    """The keys :func:`context` derives for a value at ``path`` that no path reads
    into: a scalar's (:func:`_put_scalar`), or only the type of anything else. The SDK
    reads into dicts and lists alone (``getPath``), and its ``$size``, ``$all``,
    ``$elemMatch`` and ``isIn`` treat any other container (a tuple, a set, a mapping
    that is no dict) as one value that equals none of a condition's: a set's
    "array" type is all a condition can learn of it."""
    if v is None or isinstance(v, (str, int, float)):
        _put_scalar(out, path, v)
    else:
        out[path + TYPE] = _type_name(v)


def _number_text(v: int | float) -> str:
    """JavaScript ``String()`` of a number; an int past a double's range is Infinity."""
    try:
        return js_number_text(v)
    except OverflowError:
        return "Infinity" if v > 0 else "-Infinity"


def _hash_text(v: Any) -> str | None:
    """The text GrowthBook hashes for an attribute value, or None when the value cannot
    identify a user (only non-empty strings and finite non-zero numbers can)."""
    if isinstance(v, str):
        return v or None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        try:
            if v == 0 or not math.isfinite(v):
                return None
        except OverflowError:  # an int too large for a double is Infinity in JavaScript
            return None
        return js_number_text(v)
    return None


def _key_text(k: Any) -> str | None:
    """The text naming a number or boolean dict key (None for anything else): keys the
    SDK's dict lookups find by each other get one text, as Python's dicts do (``1``,
    ``1.0`` and ``True``; NaN finds no key parsed apart from it, so it names none). Hex,
    so no int is too long to write."""
    if isinstance(k, bool):
        k = int(k)
    if isinstance(k, float):
        if math.isnan(k):
            return None
        if not k.is_integer():
            return "f" + k.hex()
        k = int(k)
    if isinstance(k, int):
        return "i" + format(k, "x")
    return None


def _member(v: Any) -> str | None:
    """The key of a scalar for membership tests (``$in`` on an array attribute): values
    equal as GrowthBook compares them (same JSON type, ``1 == 1.0``) get the same key."""
    if isinstance(v, bool):
        return "b:" + ("true" if v else "false")
    if isinstance(v, str):
        return "s:" + v
    if isinstance(v, int):
        return "n:" + str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return None  # NaN equals nothing
        if math.isinf(v) or not v.is_integer():
            return "n:" + repr(v)
        return "n:" + str(int(v))
    return None


def _array_keys(path: str, v: list[Any], read: Collection[str] | None = None) -> dict[str, Any]:
    """The keys :func:`context` derives for the array ``v`` at ``path`` beyond its
    elements' own: the array (``has_any`` reads its scalar elements as GrowthBook's
    ``isIn`` compares them: :func:`_member`), its strings in lower case, the elements of
    its elements that are arrays (``isIn`` looks one level into them), whether it holds
    null. ``read``: the suffixes a snapshot reads at ``path`` (None: all), so a key it
    does not read costs no pass over the elements."""
    keys: dict[str, Any] = {path: v}
    if read is None or LOWER in read:
        keys[path + LOWER] = [el.lower() for el in v if isinstance(el, str)]
    if read is None or INNER in read:  # isIn: lists alone
        keys[path + INNER] = [sub for el in v if isinstance(el, list) for sub in el]
    if (read is None or NULLS in read) and any(el is None for el in v):
        keys[path + NULLS] = True
    return keys


def _put_scalar(out: dict[str, Any], path: str, v: Any) -> None:
    """The keys :func:`context` derives for the value ``v`` (not an object or array)
    at ``path``: its type, the value, and per type its lower case, versions, ..."""
    out[path + TYPE] = _type_name(v)
    out[path] = v
    if isinstance(v, str):
        if v.endswith("\n") and _regex._re2 is not None:
            out[path + CHOMP] = v[:-1]  # see _portable_regex: '$' under RE2
        if len(v) > MAX_REGEX_INPUT:  # see _head_decides and _Attributes
            out[path + HEAD] = v[:MAX_REGEX_INPUT]
        out[path + LOWER] = v.lower()
        ver = out[path + VER_STR] = padded_version(v)
        if len(ver) > MAX_REGEX_INPUT:  # ordered by regex: see string_order
            out[path + VER_STR + HEAD] = ver[:MAX_REGEX_INPUT]
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        out[path + VER_NUM] = padded_version(v)
        _exact.derive(out, path, v)  # the SDK orders ints exactly: see _exact


def _readable(key: Any) -> bool:
    """An object key a condition path can name: '.' splits paths (GrowthBook's
    ``getPath``), so a key holding one is never reached."""
    return isinstance(key, str) and "." not in key


# Attribute names are escaped where they could be taken for cfgcore's own keys: in a
# name (an object key, a path segment) each '#' is written '#!', and a top-level name
# starting with '$forced' is written '$forced=' and the rest. Derived keys follow '#' with
# a letter (``a#size``, ``#elem:``), forced variations are ``$forced:``/``$forced#``, so
# no attribute, whatever its name (``{"a#size": 3}``, ``{"$forced:e": 1}``), is read as
# one of them; a name holding neither is its own cfgcore name, at no cost.
# (the '#' escape is shared with the flagd and Unleash importers: cfgcore.interop._escaped_names)
ESCAPED_FORCED = "$forced="
_FORCED_PREFIX = "$forced"
# The cfgcore name of an object key (not at the top level), and back.
_name, _raw = escape_name, unescape_name


def _top_name(key: str) -> str:
    """The cfgcore name of the top-level attribute ``key``."""
    if key.startswith(_FORCED_PREFIX):
        key = ESCAPED_FORCED + key[len(_FORCED_PREFIX) :]
    return key.replace("#", ESCAPED_HASH) if "#" in key else key


def _raw_top(name: str) -> str:
    """The top-level attribute whose cfgcore name (:func:`_top_name`) is ``name``."""
    name = _raw(name)
    if name.startswith(ESCAPED_FORCED):
        return _FORCED_PREFIX + name[len(ESCAPED_FORCED) :]
    return name


def _hash_name(key: str) -> str:
    """The name ``key`` has in the hash key ``<name>#hash`` of a top-level attribute: the
    key itself (no condition's key ends in '#hash': see :func:`_name`), but a ``$forced``
    name escaped, as a forced variation ``$forced:x#hash`` could otherwise be one."""
    if key.startswith(_FORCED_PREFIX):
        return ESCAPED_FORCED + key[len(_FORCED_PREFIX) :]
    return key


def _path(key: str, top: bool = True) -> str:
    """The cfgcore attribute of the GrowthBook condition path ``key`` (``top``: from the
    top-level attributes; else inside an element), each segment escaped."""
    if "#" not in key and not (top and key.startswith(_FORCED_PREFIX)):
        return key
    first, *rest = key.split(".")
    return ".".join([_top_name(first) if top else _name(first), *map(_name, rest)])


_split_key = split_derived  # (path, suffix) of a cfgcore key


MAX_CONTEXT_KEYS = 4096  # context() derives at most this many keys up front (see _Attributes)


class _Budget(Exception):
    pass


def context(
    attributes: Mapping[str, Any] | None = None,
    *,
    forced_variations: Mapping[str, int] | None = None,
    elements: Any = None,
) -> dict[str, Any]:
    """Map GrowthBook attributes to cfgcore attributes.

    Conditions read values as GrowthBook's ``getPath`` does: by dotted path into
    objects and arrays (``company.size``, ``tags.0``, ``tags.length``), so a key that
    itself holds a dot is never reached. A name holding ``#`` is written with ``#!``
    for it, and a top-level name starting with ``$forced`` as ``$forced=...``, as the
    importer writes the conditions naming them: no attribute can pose as a key derived
    below (``{"country#size": 3}`` is the attribute ``country#!size``). Objects and
    arrays are dicts and lists, as the SDK reads them: a set is an array to ``$type``
    alone, and a tuple, a frozenset or another mapping is a value of type "unknown"
    that no path reads into and no condition but ``$type`` and ``$exists`` sees. So
    is a number of another type (``Decimal``, a NumPy integer), where the SDK's
    ``$in`` differs: it compares such a value with Python's ``==``
    (``Decimal(1)`` is in ``[1]``); give ints and floats. Every value reached gets its type
    ``<path>#type``, strings their lower case ``<path>#lower`` and padded version
    ``<path>#vs``, numbers ``<path>#vn``; arrays themselves at ``<path>`` (read by
    ``has_any``, whatever the number of values a condition lists), their length
    ``<path>#size``, their string elements in lower case ``<path>#lower`` and the
    elements of their elements that are arrays ``<path>#inner`` (which
    ``$elemMatch``/``$all`` with ``$in`` read as GrowthBook's ``isIn`` does), objects
    their keys in JavaScript's property order ``<path>#keys`` (literal equality).
    Hashing reads top-level attributes by exact key, as GrowthBook does:
    ``<key>#hash`` (``$forced=...#hash`` for a key starting with ``$forced``) is the
    hash string of a value that can identify a user (a non-empty string, a finite
    non-zero number). ``forced_variations``
    ({experiment key: variation index}) become ``$forced:<key>`` attributes; an index
    that is not an integer (or a boolean, read as 0/1, or null, no forced variation)
    raises TypeError, as it makes GrowthBook's SDK raise.

    Attributes that would derive more than MAX_CONTEXT_KEYS keys (large arrays, or one
    object referenced at many places, whose paths multiply with each level) are not
    flattened: the mapping returned derives each key when an evaluator reads it, with
    the same answer. Attributes holding a string longer than cfgcore's regex bound, or
    an array, are such a mapping too: it searches in long strings (``#search:``) and
    answers ``$elemMatch``/``$all`` element conditions (``#elem:``: each element tested
    when a check first reads it) when read. Keep that object (a copy into a plain dict
    loses those keys, and such conditions then fail). A check with it is slower than
    with a plain dict (each attribute is read through ``get()``).

    ``elements``: the engine that checks the context (anything with a ``source``
    snapshot) or the :class:`~cfgcore.snapshot.Snapshot` the features were imported
    to. Only an array under an attribute some element condition tests then makes the
    mapping (``tags: ["a"]`` read by ``$in`` alone leaves a plain dict), and only the
    keys that snapshot reads are derived: the paths its conditions, saved groups and
    prerequisites name (``company.size``, ``tags.0``, ``tags.length``; the arrays its
    element conditions and long-string searches read), and at each only the keys read
    there of those costing a pass over an array or object (``#lower``, ``#inner``,
    ``#nulls``, ``#keys``); every top-level attribute's hash string and the forced
    variations as always. So a user with 200 ``tags`` costs the few keys read, not
    several per element; the answers of that snapshot's flags are the same. Build the
    context for each check (or request): a context built for one snapshot may lack what
    another one reads (an engine given is read at each call, so a reload is followed).
    The names from :func:`element_attributes` may be given instead: they limit the
    mapping alone. None (the default): any array makes it, and every key is derived.

    A value of the application's own type (a ``str``, ``int``, ``float``, ``dict`` or
    ``list`` subclass) is read as given, through its own methods, while they answer.
    Where one raises (an :class:`Exception`), context() reads the attributes again as
    the evaluators read them: a ``str``, ``int`` or ``float`` subclass as its exact
    value (``Id("u1")`` is the string "u1", hashed and lower-cased as such), a ``dict``
    or ``list`` subclass by the items it stores, keys as values are, never through
    their own methods; a mapping of attributes that is no dict through its
    ``items()``, none if that raises; and an attribute it still cannot read (an object
    whose ``__class__`` raises, say) is left out, as if not given. So context() raises
    no Exception but the TypeErrors above (a forced variation's index, a wrong
    ``elements``); an interrupt propagates. One consequence: a subclass whose methods
    answer, but otherwise than its stored value (a ``lower`` or ``__len__`` of its
    own), gives the keys derived through them (``#lower``, ``#size``, ...), while a
    condition on the value itself reads its exact value; give such values as plain
    ``str``/``dict``/... where that matters.
    """
    # a snapshot's reads (_Reads), or the names of element_attributes() given; a wrong
    # ``elements`` is the caller's TypeError, before anything is read
    reads: Any = None if elements is None else _snapshot_reads(elements)
    try:
        forced = _forced(forced_variations.items()) if forced_variations else _NOTHING
        return _context(attributes, forced, reads)
    except Exception:  # noqa: BLE001 - an application's value whose own method raised
        pass  # (read again below, outside this handler: no chained traceback)
    # The careful reading (cfgcore.interop._plain); the caller's TypeErrors propagate.
    forced = {}
    for pair in plain_pairs(forced_variations):
        try:
            forced.update(_forced([pair]))
        except _NotAnIndex:
            raise
        except Exception:  # noqa: BLE001 - an experiment key it cannot read: left out
            continue
    return leaving_out(lambda some: _context(dict(some), forced, reads), plain_pairs(attributes))


_NOTHING: dict[str, Any] = {}  # (read only)


class _NotAnIndex(TypeError):
    """A forced variation's index that is no integer: the caller's error to see."""


def _forced(pairs: Iterable[tuple[Any, Any]]) -> dict[str, Any]:
    """The ``$forced:`` attributes of forced variations ``(experiment key, index)``."""
    fixed: dict[str, Any] = {}
    for key, idx in pairs:
        # the SDK indexes the variations with it, where True is 1 and False is 0
        if idx is None:
            continue  # the SDK: no forced variation
        if not isinstance(idx, int):
            # and raises TypeError for anything else (1.0 and "1" included); cfgcore's
            # equality would have forced variation 1 for 1.0 and ignored "1"
            raise _NotAnIndex(
                f"forced_variations[{_shown_key(key)}]: a variation index is an integer, got "
                f"{type_name(idx)} (GrowthBook's SDK raises on it too)"
            )
        if isinstance(key, str):
            fixed[FORCED + key] = int(idx)
        elif (name := _key_text(key)) is not None:  # an experiment key that is a number
            fixed[FORCED_NUM + name] = int(idx)
    return fixed


def _shown_key(key: Any) -> str:
    """A forced variation's experiment key in a message (its repr, if it has one)."""
    try:
        return repr(key)
    except Exception:  # noqa: BLE001 - an application's key
        return f"<{type(key).__name__}>"


def _context(attributes: Any, forced: dict[str, Any], reads: Any) -> dict[str, Any]:
    """:func:`context` of ``attributes`` as given, with the ``forced`` attributes and
    what ``elements`` resolved to (``reads``: a :class:`_Reads`, names, or None)."""
    out: dict[str, Any] = {}
    long_values = False  # a string past MAX_REGEX_INPUT: see _Attributes
    arrays: set[str] = set()  # the top-level attributes holding a list (``#elem:``)
    current = ""  # the top-level attribute being put
    inside: set[int] = set()  # the containers on the path being put (a cycle stops)

    # ``want``: what a snapshot reads at ``path`` and below (see _Reads), None for all
    def put(path: str, v: Any, depth: int = 1, want: ReadPath | None = None) -> None:
        nonlocal long_values
        if len(out) > MAX_CONTEXT_KEYS:
            raise _Budget
        if isinstance(v, (dict, list)):  # what the SDK's getPath reads into
            out[path + TYPE] = _type_name(v)
            if depth >= MAX_PATH_DEPTH or id(v) in inside:
                return  # no condition reads deeper (refused on import); no JSON cycles
            inside.add(id(v))
            put_container(path, v, depth, want)
            inside.discard(id(v))
            return
        _put_leaf(out, path, v)
        if isinstance(v, str) and len(v) > MAX_REGEX_INPUT:
            long_values = True

    def put_container(path: str, v: Any, depth: int, want: ReadPath | None) -> None:
        if isinstance(v, dict):
            keys = _object_keys(v) if want is None or KEYS in want.suffixes else None
            if keys is not None:
                out[path + KEYS] = keys
            if want is not None:  # the keys read alone, each at the path it has below
                if type(v) is not dict:  # a subclass: its items() as below, not its []
                    for k, sub in v.items():
                        if isinstance(k, str) and (seg := _name(k)) in want.below:
                            put(f"{path}.{seg}", sub, depth + 1, want.below[seg])
                    return
                for seg, below in want.below.items():
                    k = _raw(seg)
                    if k in v and _name(k) == seg:
                        put(f"{path}.{seg}", v[k], depth + 1, below)
                return
            for k, sub in v.items():
                if isinstance(k, str) and "." not in k:  # _readable, inline: per key
                    put(f"{path}.{k if '#' not in k else _name(k)}", sub, depth + 1)
            return
        arrays.add(current)
        put(path + SIZE, len(v), depth + 1)
        if want is not None:  # the keys and elements read alone
            if "length" in want.below:
                put(path + ".length", len(v), depth + 1)
            out.update(_array_keys(path, v, want.suffixes))
            if type(v) is not list:  # a subclass: its iteration as below, not its []
                for i, el in enumerate(v):
                    if (seg := str(i)) in want.below:
                        put(f"{path}.{seg}", el, depth + 1, want.below[seg])
                return
            for seg, below in want.below.items():
                if _is_position(seg, len(v)):
                    put(f"{path}.{seg}", v[int(seg)], depth + 1, below)
            return
        put(path + ".length", len(v), depth + 1)
        out.update(_array_keys(path, v))
        for i, el in enumerate(v):
            put(f"{path}.{i}", el, depth + 1)

    attrs = attributes if isinstance(attributes, Mapping) else {}
    top: dict[str, Any] = {}  # what conditions read (hashing reads every key)
    fixed: dict[str, Any] = {}
    for key, v in attrs.items():
        if not isinstance(key, str):
            # a rule may hash by a number or boolean attribute name (the SDK looks it
            # up as a dict key: ``_getOrigHashValue``), which finds such a key
            name = _key_text(key)
            text = _hash_text(v)
            if name is not None and text is not None:
                fixed[HASH_NUM + name] = text
            continue
        text = _hash_text(v)
        if "#" in key or key.startswith(_FORCED_PREFIX):  # escaped: see _top_name
            if text is not None:
                fixed[_hash_name(key) + HASH] = text
            if "." not in key:
                top[_top_name(key)] = v
            continue
        if text is not None:
            fixed[key + HASH] = text
        if "." not in key:
            top[key] = v
    fixed.update(forced)
    tree = reads.tree if isinstance(reads, _Reads) else None
    try:
        if tree is None:
            for current, v in top.items():  # noqa: B007  (put_container reads ``current``)
                put(current, v)
        else:  # the paths the snapshot reads alone (each top name once)
            for current, below in tree.items():  # noqa: B007  (as above)
                if current in top:
                    put(current, top[current], 1, below)
    except _Budget:  # too many paths to flatten: derive the ones conditions read
        return _Attributes(fixed, top)
    out.update(fixed)
    if long_values:  # see _Attributes
        return _Attributes(out)
    if arrays:
        if reads is not None:
            names = reads.elements if isinstance(reads, _Reads) else reads
            if not any(_raw_top(a) in names for a in arrays):
                return out  # no element condition reads these arrays
        return _Attributes(out)
    return out


class _Reads:
    """What a snapshot imported from GrowthBook reads of :func:`context`'s keys: the top
    names of its element conditions' arrays (``elements``) and the path of every key
    (``tree``: by top-level name; None where some key is none context() writes, and the
    snapshot is taken to read everything). The keys context() writes for every top-level
    attribute (``#hash``, ``#hash:``, ``$forced:``, ``$forced#``) need no path; an
    ``#elem:`` or ``#search:`` key reads the value at its spec's path."""

    __slots__ = ("elements", "tree")

    def __init__(self, snapshot: Snapshot) -> None:
        self.elements = element_attributes(snapshot)
        self.tree = _path_tree(read_names(snapshot))


def _path_tree(names: frozenset[str] | None) -> dict[str, ReadPath] | None:
    """The paths (:class:`_Reads`) of the keys ``names``, or None."""
    if names is None:
        return None
    tree: dict[str, ReadPath] = {}
    for name in names:
        suffix = ""
        if name.startswith((FORCED, FORCED_NUM, HASH_NUM)) or name.endswith(HASH):
            continue  # context() writes these for every top-level attribute
        if name.startswith((ELEM, SEARCH)):
            try:
                spec = json.loads(name[name.index(":") + 1 :])
            except ValueError:
                return None
            if not (isinstance(spec, list) and spec and isinstance(spec[0], str)):
                return None
            path = spec[0]
        elif name.startswith("#") and not name.startswith(ESCAPED_HASH):
            return None  # no key context() writes: read everything, as without a snapshot
        else:
            path, suffix = _split_key(name)
        first, *rest = path.split(".")
        tree.setdefault(first, ReadPath()).add(rest, suffix)
    return tree


def _is_position(seg: str, size: int) -> bool:
    """Whether ``seg`` is the path segment context() writes for an element of a list
    of ``size`` elements (its index in decimal; no list has 10**18 elements)."""
    return (
        len(seg) <= 18 and seg.isascii() and seg.isdigit() and str(int(seg)) == seg
        and int(seg) < size
    )  # fmt: skip


# GrowthBook's elements= option: what a snapshot reads (_Reads), or the names given
_snapshot_reads = SnapshotNames("elements", _Reads)


def element_attributes(snapshot: Snapshot) -> frozenset[str]:
    """The top-level attributes whose arrays the ``$elemMatch``/``$all`` element
    conditions of ``snapshot`` (imported from GrowthBook) test: what ``context(...,
    elements=...)`` needs to know."""
    return derived_names(snapshot, ELEM, lambda spec: _raw_top(json.loads(spec)[0].split(".")[0]))


_ABSENT = object()


class _Attributes(DerivedAttributes):
    """context()'s attributes when they need more than a plain dict.

    A string longer than MAX_REGEX_INPUT, the bound of cfgcore's ``matches`` (the SDK
    searches any length): a ``$regex`` whose match its first characters do not decide
    is imported as ``matches`` or, for such a value, the attribute
    ``#search:[path, pattern, ignore_case, at_end]``, which this mapping answers when an
    evaluator reads it (both read a mapping that is not an exact dict through
    ``get()``): the pattern, already accepted by :func:`cfgcore._regex.compile_regex`
    at import (RE2, or linear on ``re``), searched in the whole value.

    Attributes past context()'s budget (``top``, the top-level attributes conditions
    can read): a key ``<path><suffix>`` is derived when read, by walking ``path`` as
    context() would have (to MAX_PATH_DEPTH levels, a cycle stopping where it closes),
    so each read costs the length of its path, not the size of the attributes.

    An array: ``$elemMatch`` and ``$all`` with an element condition that is no
    membership test are imported as the attribute ``#elem:[path, mode, true, false]``
    (:meth:`_Feature.some_element`), the element condition lowered to cfgcore conditions
    on the attribute ``e`` (:data:`ELEMENT`) and compiled once per spec
    (:func:`_element_tests`). This mapping answers it by evaluating the condition on each
    element of the list at ``path`` in order, each element read as a mapping of its own
    whose keys are derived when read (so an element costs the paths its condition reads,
    not its size), as GrowthBook's ``elemMatch`` and ``isInAll`` do (growthbook 4.0.0
    ``_elem_match``, ``_is_in_all``): True at the first element that passes; else
    :data:`UNKNOWN` where one answered unknown; else False (and False for anything but a
    list). Mode ``elem`` skips null elements (``$elemMatch``), ``all`` does not (``$all``).
    An answer is kept per (spec, list), so an array met again (the same list held at
    several places, nested conditions over shared lists) is evaluated once.
    A copy into a plain dict loses these keys: keep this object."""

    PREFIX = SEARCH

    def __init__(
        self,
        eager: dict[str, Any],
        top: dict[str, Any] | None = None,
        memo: dict[tuple[str, int], tuple[Any, Any]] | None = None,
    ) -> None:
        super().__init__(eager)
        self._top = top
        self._memo = {} if memo is None else memo

    def get(self, key: Any, default: Any = None) -> Any:
        if not isinstance(key, str):
            return dict.get(self, key, default)
        found = dict.get(self, key, _ABSENT)
        if found is not _ABSENT:
            return found
        try:  # derived on read: never raise on the hot path (no answer: a missing value)
            if key.startswith(SEARCH):
                found = self.derive(key[len(SEARCH) :])
            elif key.startswith(ELEM):
                found = self._some_element(key[len(ELEM) :])
            elif self._top is not None:
                found = self._walk(key)
            else:
                found = None
        except Exception:
            found = None
        return default if found is None else found

    def _some_element(self, spec: str) -> Any:
        """The answer to ``#elem:<spec>``: see the class."""
        tests = _element_tests(spec)
        array = self.get(tests.path)
        if not isinstance(array, list):
            return False  # GrowthBook: only a list has elements
        memo_key = (spec, id(array))
        kept = self._memo.get(memo_key)
        if kept is not None and kept[0] is array:
            return kept[1]
        answer: Any = False
        every, snap, three = tests.every, tests.snap, tests.three
        for el in array:
            if el is None and not every:
                continue  # $elemMatch skips null elements
            item = tests.item(el, self._memo)
            if snap.is_enabled("t", item):
                answer = True
                break
            if three and not snap.is_enabled("f", item):
                answer = UNKNOWN  # neither true nor false: unknown, unless one passes
        self._memo[memo_key] = (array, answer)  # the list kept: its id stays its own
        return answer

    def _walk(self, key: str) -> Any:
        assert self._top is not None
        path, suffix = _split_key(key)
        reached = _reach(self._top, path.split("."))
        return None if reached is None else _key_at(path, *reached, suffix, key)

    def derive(self, spec: str) -> bool | None:
        path, pattern, fold, at_end = json.loads(spec)
        value = self.get(path)
        if not isinstance(value, str) or len(value) <= MAX_REGEX_INPUT:
            return None  # ``matches`` on the value itself answers
        compiled = _compiled(pattern, bool(fold))
        if compiled.search(value) is not None:
            return True
        # RE2's '$' is the end of the text; Python's also matches before a final newline
        return bool(at_end and _regex._re2 is not None and value.endswith("\n")
                    and compiled.search(value[:-1]) is not None)  # fmt: skip


def _reach(top: Mapping[str, Any], segs: list[str]) -> tuple[Any, bool] | None:
    """The value at the path ``segs`` in the top-level attributes ``top``, read as
    context() reads it (None where it reads no value there), and whether context()
    stops there (MAX_PATH_DEPTH, or a container already on the path: a cycle)."""
    if segs[0] not in top:
        return None
    node = top[segs[0]]
    depth = 1
    inside: set[int] = set()
    for seg in segs[1:]:
        if not isinstance(node, (dict, list)):
            return None
        if depth >= MAX_PATH_DEPTH or id(node) in inside:
            return None
        inside.add(id(node))
        if isinstance(node, dict):
            if "#" in seg:  # an escaped name (_raw, inline: per element read)
                seg = seg.replace(ESCAPED_HASH, "#")
            if seg not in node:
                return None
            node = node[seg]
        elif seg == "length":
            node = len(node)
        elif seg.isascii() and seg.isdigit() and str(int(seg)) == seg and int(seg) < len(node):
            node = node[int(seg)]
        else:
            return None
        depth += 1
    return node, depth >= MAX_PATH_DEPTH or id(node) in inside


def _key_at(path: str, node: Any, stops: bool, suffix: str, key: str) -> Any:
    """The key ``key`` (``path + suffix``) context() derives for the value ``node`` at
    ``path`` (see :func:`_reach`), or None."""
    if not isinstance(node, (dict, list)):
        # the keys read most (an element condition reads them per element) without
        # deriving every key of the value; the rest as context() derives them
        if not suffix:
            return node if isinstance(node, (str, int, float)) else None
        if suffix == TYPE:
            return _type_name(node)
        mini: dict[str, Any] = {}
        if suffix == _exact.BIG or suffix == _exact.RES:  # numbers ordered exactly
            _exact.derive(mini, path, node)
        else:
            _put_leaf(mini, path, node)
        return mini.get(key)
    if suffix == TYPE:
        return _type_name(node)
    if suffix == KEYS:
        return None if stops or not isinstance(node, dict) else _object_keys(node)
    if stops or not isinstance(node, list):
        return None  # an object, or an array context() does not read into
    if not suffix:
        return node
    if suffix.startswith(SIZE):
        mini = {}
        _put_scalar(mini, path + SIZE, len(node))
        return mini.get(key)
    return _array_keys(path, node).get(key)


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str, fold: bool) -> Any:
    return compile_regex(pattern, fold)


class _ElementTests:
    """An ``#elem:`` spec, read and compiled (see :func:`_element_tests`)."""

    __slots__ = ("path", "every", "snap", "three", "reads", "derived")

    def __init__(self, spec: str, impl: Any = None) -> None:
        from cfgcore.compiler import compile_snapshot

        if impl is None:  # the live evaluator (another one: the tests comparing them)
            from cfgcore._compat import impl

        path, mode, found, false = json.loads(spec)
        self.path: str = path
        self.every = mode == "all"  # null elements tested too ($all)
        flags: dict[str, Any] = {"t": _probe_flag(found)}
        if false is not None:
            flags["f"] = _probe_flag(false)
        # compiled by the live evaluator (not an Engine: its evaluations would be
        # counted and logged), the same for every context: both evaluators read the
        # answer it gives
        self.snap = impl.CompiledSnapshot(compile_snapshot(snapshot_from_dict({"flags": flags})))
        self.three = false is not None  # an element can be neither true nor false
        # the attributes the conditions read, by path: each element is read for these
        # alone (a path walked once for all its keys); ``#...`` keys are derived on read
        keys = sorted({a for c in (found, false) for a in _attrs_of(c)})
        by_path: dict[str, list[tuple[str, str]]] = {}
        for key in keys:
            if not key.startswith("#"):  # element paths start with ELEMENT
                at, suffix = _split_key(key)
                by_path.setdefault(at, []).append((suffix, key))
        self.reads = [(at.split("."), at, wanted) for at, wanted in by_path.items()]
        self.derived = any(key.startswith("#") for key in keys)

    def item(self, el: Any, memo: dict[tuple[str, int], tuple[Any, Any]]) -> Any:
        """The attributes of the element ``el``: the keys the conditions read, as
        context() derives them for the value ``el`` at :data:`ELEMENT`."""
        top = {ELEMENT: el}
        values: dict[str, Any] = {}
        for segs, at, wanted in self.reads:
            reached = _reach(top, segs)
            if reached is not None:
                for suffix, key in wanted:
                    v = _key_at(at, *reached, suffix, key)
                    if v is not None:
                        values[key] = v
        return _Attributes(values, top, memo) if self.derived else values


def _attrs_of(cond: Any) -> list[str]:
    """The attributes a lowered condition (plain data) reads."""
    out: list[str] = []
    stack = [cond]
    while stack:
        c = stack.pop()
        if isinstance(c, dict):
            if isinstance(c.get("attr"), str):
                out.append(c["attr"])
            stack.extend(c.get("all") or ())
            stack.extend(c.get("any") or ())
            if c.get("not") is not None:
                stack.append(c["not"])
    return out


@functools.lru_cache(maxsize=1024)
def _element_tests(spec: str) -> _ElementTests:
    """An ``#elem:`` spec read and compiled, once; a spec the compiler refuses raises
    SnapshotError (at import: :func:`_element_key`)."""
    return _ElementTests(spec)


def _probe_flag(cond: Any) -> dict[str, Any]:
    """A flag on where ``cond`` holds."""
    if cond == _NEVER:
        return {"rules": [], "default": "off"}
    rule: dict[str, Any] = {"serve": "on"}
    if cond != _ALWAYS:
        rule["when"] = cond
    return {"rules": [rule], "default": "off"}


# -- import -------------------------------------------------------------------------------
def to_snapshot(
    features: Mapping[str, Any],
    *,
    saved_groups: Mapping[str, Any] | None = None,
    on_error: Literal["raise", "skip"] = "raise",
    source: str | None = None,
    source_paths: dict[str, str] | None = None,
    value_paths: dict[str, dict[str, str]] | None = None,
) -> Snapshot:
    """Lower GrowthBook features (the ``features`` object of the SDK payload, or the whole
    payload) to a Snapshot.

    With ``on_error="raise"`` a feature that cannot be lowered raises
    :class:`~cfgcore.interop.InteropError` naming each feature and construct; with
    ``"skip"`` such features are left out and listed, with the reason, in the
    snapshot's ``metadata["refused"]`` (what a command-line import reports). A
    ``source_paths`` dict given is filled with each feature's key path in
    ``features`` (``features.<key>`` in a whole payload), lowered or refused; a
    ``value_paths`` dict, with each lowered feature's variants and the key path of each
    one's value (``features.<key>.rules[0].force``) where it has one.

    A refusal names the key path of what is refused, as in the SDK payload (also where
    the features object is given alone): ``features.f.rules[1].condition.$or[0].country.$regex``;
    raised, as each problem's path; skipped, in front of the reason
    ``metadata["refused"]`` lists by feature key."""
    top = ""  # where the features object is in the document given
    if isinstance(features, Mapping) and isinstance(features.get("features"), Mapping):
        if saved_groups is None:
            saved_groups = features.get("savedGroups")
        features = features["features"]
        top = "features"
    if not isinstance(features, Mapping):
        raise InteropError(
            f"GrowthBook features must be an object, got {type_name(features)}", file=source
        )
    if saved_groups is not None and not isinstance(saved_groups, Mapping):
        raise InteropError(
            [Problem("savedGroups", f"expected an object, got {type_name(saved_groups)}",
                     file=source)]
        )  # fmt: skip
    # refused features: (the key path in ``features`` as given, why)
    reasons: dict[Any, tuple[str, str]] = {}
    flags: dict[Any, Any] = {}
    lowered: dict[Any, _Feature] = {}
    groups = _SavedGroups(saved_groups or {})
    for key, feat in features.items():
        path = child_key_path(top or "features", key)  # as in the SDK payload
        try:
            lowered[key] = _Feature(str(key), feat, groups)
            flags[key] = lowered[key].lower()
        except _Refuse as exc:
            reasons[key] = (join_key_paths(path, exc.at), str(exc))
        except MALFORMED as exc:  # a value of the wrong type inside the feature
            reasons[key] = (path, malformed(exc))
        if key in reasons:
            lowered.pop(key, None)
    for key, why in _link_prerequisites(lowered, reasons, top).items():
        del flags[key]
        reasons[key] = why
    problems = [
        Problem(path=reasons[key][0], message=reasons[key][1], file=source)
        for key in features
        if key in reasons
    ]
    meta: dict[str, Any] = {"imported_from": "growthbook"}
    if problems and on_error == "raise":
        raise InteropError(problems)
    if problems:
        meta["refused"] = {str(k): ": ".join(reasons[k]) for k in features if k in reasons}
    if source_paths is not None:
        source_paths.update((str(key), child_key_path(top, str(key))) for key in features)
    if value_paths is not None:
        for key, f in lowered.items():
            if key in flags:
                path = child_key_path(top or "features", key)
                value_paths[str(key)] = {n: join_key_paths(path, at) for n, at in f.sources.items()}
    return snapshot_from_dict({"flags": flags, "metadata": meta}, file=source)


# -- prerequisites ------------------------------------------------------------------------
OFF = "prerequisite"  # the variant (null) a feature whose gate failed serves, as GrowthBook
RULE_PARENTS = "$parents"  # a placeholder in a feature's lowered rules (see _Feature.lower)


def _link_prerequisites(
    feats: dict[Any, _Feature], refused: dict[Any, tuple[str, str]], top: str = "features"
) -> dict[Any, tuple[str, str]]:
    """Turn the features' leading gates (:meth:`_Feature.lower`) into cfgcore
    prerequisites and their other parent conditions into ``prerequisite`` conditions
    (:func:`_rule_parents`); returns the features refused here, with why.

    A gate on parent P with condition C holds where P serves a variant whose value
    passes C: that set of P's variants is computed here, by cfgcore's own lowering of
    C evaluated on each value (so it is what cfgcore answers), and becomes a
    prerequisite ``{flag: P, variants: [...]}``; a feature whose gate fails serves
    null (:data:`OFF`), which is also a value its own children test. An unknown
    parent is null to GrowthBook: C on null decides at import. A gate no value passes
    makes the feature null for everyone (disabled, serving OFF).

    Refused: a feature whose parent is refused (the reason names the first refused
    feature on the way), the features of a prerequisite cycle (GrowthBook answers a
    cycle by where the evaluation starts: null, ``cyclicPrerequisite``, for the
    feature it started from, while a feature on the cycle may see another's gate fail
    first and go on), and chains past the compiler's depth and fan-out limits."""
    edges = {
        k: [pid for pid in (*(p[1] for p in f.parents), *f.rule_parent_ids()) if pid in feats]
        for k, f in feats.items()
    }
    if not any(f.parents or f.rule_parents for f in feats.values()):
        return {}
    probe = _Probe(feats)
    out: dict[Any, tuple[str, str]] = {}  # (key path in ``features``, why), as refused

    def at(k: Any, where: str) -> str:
        return join_key_paths(child_key_path(top or "features", k), where)

    roots: dict[Any, tuple[Any, str]] = {k: (k, ": ".join(why)) for k, why in refused.items()}
    depth: dict[Any, int] = {}
    cost: dict[Any, int] = {}
    for comp in _components(edges):
        members = set(comp)
        if len(comp) > 1 or comp[0] in edges[comp[0]]:
            for k in comp:
                where = next(w for w, pid in feats[k].all_parents() if pid in members)
                cycle = [repr(n)[:40] for n in _cycle(k, members, edges)]
                if len(cycle) > 8:  # a long cycle: its start and end
                    cycle[4:-3] = [f"... {len(cycle) - 7} more"]
                path = " -> ".join(cycle)
                out[k] = (
                    at(k, where),
                    f"a prerequisite cycle ({path}): GrowthBook's answer on a cycle "
                    "depends on the feature its evaluation starts from",
                )
                roots[k] = (k, ": ".join(out[k]))
            continue
        k = comp[0]
        f = feats[k]
        if not f.parents and not f.rule_parents:
            continue
        try:
            pres = _gates(f, feats, roots, probe)
            rules = _rule_parents(f, feats, roots, probe)
        except _Inherited as exc:
            out[k] = (at(k, exc.at), str(exc))
            roots[k] = roots[exc.parent]  # its children name the first refused feature
            continue
        except _Refuse as exc:
            out[k] = (at(k, exc.at), str(exc))
            roots[k] = (k, ": ".join(out[k]))
            continue
        if pres is None:  # a gate nothing passes: null for everyone
            f.flag["enabled"] = False
            f.flag["off_variant"] = f.off_variant()
            f.flag["rules"] = []  # never reached
            continue
        # what a check of this feature evaluates: each prerequisite, and each
        # ``prerequisite`` test in its rules (a test is evaluated at most once per check)
        reads = [p["flag"] for p in pres] + _tested_flags(rules)
        if reads:
            d = 1 + max(depth.get(p, 1) for p in reads)
            c = 1 + sum(cost.get(p, 1) for p in reads)
            if d > MAX_PREREQUISITE_DEPTH or c > MAX_PREREQUISITE_EVALUATIONS:
                first = f.parents[0][0] if f.parents else f.rule_parents[0][1][0][0]
                out[k] = (
                    at(k, first),
                    f"its prerequisites chain {d} features deep and a check "
                    f"would evaluate {c} (cfgcore's limits: {MAX_PREREQUISITE_DEPTH} levels, "
                    f"{MAX_PREREQUISITE_EVALUATIONS:,} evaluations)",
                )
                roots[k] = (k, ": ".join(out[k]))
                continue
            depth[k], cost[k] = d, c
        f.flag["rules"] = rules
        if pres:
            f.flag["prerequisites"] = pres
            f.flag["off_variant"] = f.off_variant()
    return out


def _passing(
    where: str,
    pid: str,
    cond: Any,
    feats: dict[Any, _Feature],
    roots: dict[Any, tuple[Any, str]],
    probe: _Probe,
) -> Any:
    """The condition "parent ``pid``'s value passes ``cond``" for cfgcore: a
    ``prerequisite`` test on the parent's variants whose values pass (computed here by
    cfgcore's own lowering and evaluator), or a constant when every value passes or none
    does (an unknown or always-null parent is null to GrowthBook: decided on null)."""
    if pid in roots:
        root, why = roots[pid]
        through = "" if root == pid else f", through {root!r:.60}"
        raise _Inherited(f"the prerequisite {pid!r:.60} is refused{through} ({why})", pid, where)
    failed = probe.failed.get(id(cond))
    if failed is not None:
        raise _Refuse(failed, at=f"{where}.condition")
    if cond is None:
        return _ALWAYS  # the SDK evaluates the parent, and tests nothing
    parent = feats.get(pid)
    if parent is None or parent.flag.get("enabled") is False:
        return _ALWAYS if probe.passes(cond, None) else _NEVER
    ok = [name for name, value in parent.variants.items() if probe.passes(cond, value)]
    if len(ok) == len(parent.variants):
        return _ALWAYS
    return {"prerequisite": {"flag": pid, "variants": ok}} if ok else _NEVER


def _rule_parents(
    f: _Feature, feats: dict[Any, _Feature], roots: dict[Any, tuple[Any, str]], probe: _Probe
) -> list[dict[str, Any]]:
    """``f``'s rules with the parent conditions that act from one rule on lowered
    (:meth:`_Feature.lower` left a placeholder where each such rule starts).

    GrowthBook tests the conditions in order, first thing at the rule (before its own
    condition), and the first failing one decides. Where that is a gate the feature is
    null from there on (Source: growthbook Python SDK 4.0.0, ``_eval_feature`` /
    ``eval_prereqs``: "gate" returns FeatureResult(None, "prerequisite")): a rule
    serving the null variant (:data:`OFF`) where some gate is the first to fail. Where
    it is not a gate the rule is skipped: each rule it lowered to also requires that
    every condition passes."""
    out: list[dict[str, Any]] = []
    drop: set[int] = set()
    for rule in f.flag["rules"]:
        k = rule.get(RULE_PARENTS)
        if k is None:
            if id(rule) not in drop:
                out.append(rule)
            continue
        i, pcs, lowered = f.rule_parents[k]
        passes = [_passing(where, pid, cond, feats, roots, probe) for where, pid, cond, _ in pcs]
        fails = [
            _and(*passes[:j], _not(passes[j])) for j, pc in enumerate(pcs) if pc[3]
        ]  # gate j fails first
        fails = [x for x in fails if x != _NEVER]
        if any(x == _ALWAYS for x in fails):
            null: Any = _ALWAYS
        else:
            null = fails[0] if len(fails) == 1 else {"any": fails} if fails else _NEVER
        if null != _NEVER:
            gate: dict[str, Any] = {
                "serve": f.off_variant(),
                "name": f"rules[{i}].parentConditions",
            }
            if null != _ALWAYS:
                gate["when"] = _fit(null, f, i)
            out.append(gate)
        held = _and(*passes)
        for r in lowered:
            if held == _NEVER:
                drop.add(id(r))
            elif held != _ALWAYS:
                r["when"] = _fit(_and(held, r.get("when", _ALWAYS)), f, i)
    return out


def _fit(cond: Any, f: _Feature, i: int) -> Any:
    fitted, why = fit_depth(cond, heights=f.groups.heights)
    if why is not None:
        raise _Refuse(why, at=f"rules[{i}].parentConditions")
    return fitted


def _tested_flags(rules: list[dict[str, Any]]) -> list[str]:
    """The parent of every ``prerequisite`` test in ``rules`` (once per test)."""
    found: list[str] = []
    stack: list[Any] = [r.get("when") for r in rules]
    while stack:
        c = stack.pop()
        if not isinstance(c, dict):
            continue  # a typed Condition (a saved group's test) reads no flag
        if "prerequisite" in c:
            found.append(c["prerequisite"]["flag"])
        stack.extend(c.get("all") or ())
        stack.extend(c.get("any") or ())
        stack.append(c.get("not"))
    return found


def _gates(
    f: _Feature, feats: dict[Any, _Feature], roots: dict[Any, tuple[Any, str]], probe: _Probe
) -> list[dict[str, Any]] | None:
    """The prerequisites of ``f``'s gates (several on one parent: the variants passing
    all), or None when a gate never passes; _Refuse(why, refused parent) for a refused
    parent or a condition cfgcore cannot compile."""
    sets: dict[str, list[str]] = {}
    never = False
    for where, pid, cond in f.parents:
        if pid in roots:
            root, why = roots[pid]
            through = "" if root == pid else f", through {root!r:.60}"
            raise _Inherited(
                f"the prerequisite {pid!r:.60} is refused{through} ({why})", pid, where
            )
        failed = probe.failed.get(id(cond))
        if failed is not None:
            raise _Refuse(failed, at=f"{where}.condition")
        if cond is None:
            continue  # the SDK skips a gate without a condition
        parent = feats.get(pid)
        if parent is None or parent.flag.get("enabled") is False:  # unknown or always null
            never = never or not probe.passes(cond, None)
            continue
        ok = [name for name, value in parent.variants.items() if probe.passes(cond, value)]
        sets[pid] = [n for n in sets[pid] if n in ok] if pid in sets else ok
    if never or not all(sets.values()):
        return None
    return [
        {"flag": pid, "variants": names}
        for pid, names in sets.items()
        if len(names) < len(feats[pid].variants)  # a gate every value passes always holds
    ]


class _Probe:
    """Parent conditions (lowered over the attribute ``value``) evaluated by cfgcore on
    values, as GrowthBook's ``evalCondition({"value": value}, condition)``: all compiled
    into one snapshot (a condition the compiler refuses lands in ``failed``)."""

    def __init__(self, feats: dict[Any, _Feature]) -> None:
        # not an Engine: its evaluations would be counted (metrics) and logged (debug mode)
        from cfgcore._compat import impl
        from cfgcore.compiler import compile_snapshot

        def compiled(flags: dict[str, Any]) -> Any:
            return impl.CompiledSnapshot(compile_snapshot(snapshot_from_dict({"flags": flags})))

        self.failed: dict[int, str] = {}
        self.names: dict[int, str] = {}
        self.contexts: dict[int, tuple[Any, Any]] = {}
        probes: dict[str, Any] = {}
        for f in feats.values():
            conds = [p[2] for p in f.parents]
            conds += [pc[2] for _, pcs, _ in f.rule_parents for pc in pcs]
            for cond in conds:
                if cond is not None and cond not in (_ALWAYS, _NEVER):
                    name = self.names.setdefault(id(cond), f"c{len(self.names)}")
                    probes[name] = {"rules": [{"when": cond, "serve": "on"}], "default": "off"}
        self.engine: Any = None
        if not probes:
            return
        try:
            self.engine = compiled(probes)
            return
        except SnapshotError:
            pass
        for key, name in self.names.items():  # find the conditions it refuses
            try:
                compiled({name: probes[name]})
            except SnapshotError as exc:
                self.failed[key] = "; ".join(p.message for p in exc.problems)
                del probes[name]
        self.engine = compiled(probes)

    def passes(self, cond: Any, value: Any) -> bool:
        if cond == _ALWAYS or cond == _NEVER:
            return cond == _ALWAYS
        found = self.contexts.get(id(value))
        if found is None or found[0] is not value:
            found = self.contexts[id(value)] = (value, context({"value": value}))
        return bool(self.engine.is_enabled(self.names[id(cond)], found[1]))


def _components(edges: dict[Any, list[Any]]) -> list[list[Any]]:
    """The strongly connected components of ``edges`` (a feature -> the features it
    depends on), each after every component it depends on (Tarjan, iteratively)."""
    index: dict[Any, int] = {}
    low: dict[Any, int] = {}
    stack: list[Any] = []
    on_stack: set[Any] = set()
    out: list[list[Any]] = []
    for root in edges:
        if root in index:
            continue
        work: list[tuple[Any, int]] = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            succ = edges.get(node, [])
            if i < len(succ):
                work.append((node, i + 1))
                nxt = succ[i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                out.append(comp)
            if work:
                up = work[-1][0]
                low[up] = min(low[up], low[node])
    return out


def _cycle(start: Any, members: set[Any], edges: dict[Any, list[Any]]) -> list[Any]:
    """A shortest prerequisite cycle through ``start`` within ``members``."""
    back: dict[Any, Any] = {start: None}
    queue = [start]
    for node in queue:
        for nxt in edges.get(node, []):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(back[path[-1]])
                return [*reversed(path), start]
            if nxt in members and nxt not in back:
                back[nxt] = node
                queue.append(nxt)
    return [start, start]  # pragma: no cover - start is on a cycle in members


def _space(version: int) -> int:
    return 10000 if version == 2 else 1000


def _runs(space: int, pick: Any) -> list[tuple[Any, int]]:
    """Run-length encode ``pick(n)`` over GrowthBook's bucket values n = k/space.

    GrowthBook compares the float n = (hash % space) / space with float range
    bounds; evaluating that same comparison for every k at import turns it into
    integer bucket runs that agree exactly."""
    runs: list[tuple[Any, int]] = []
    for k in range(space):
        v = pick(k / space)
        if runs and runs[-1][0] == v:
            runs[-1] = (v, runs[-1][1] + 1)
        else:
            runs.append((v, 1))
    return runs


class _SavedGroups:
    """The saved groups of one import, each membership test lowered once.

    A group of 100,000 ids lowers to a test of that size (an ``in`` list, and a
    membership key per id for array attributes); lowered again at every ``$inGroup``
    reference, 100 features multiplied it by 100 in time and memory. The test is
    lowered once per (group, attribute) and the one typed condition is shared by every
    reference, so the snapshot holds it once (and the compiler writes its nodes once,
    called from every other reference: ``ConditionLowering.shared_combinator``)."""

    def __init__(self, groups: Mapping[str, Any]) -> None:
        self.groups = groups
        self.tests: dict[tuple[str, str], Any] = {}
        # the nesting of the import's conditions (fit_depth), kept across features so
        # a shared group test is measured once, not at each reference
        self.heights: dict[int, Any] = {}

    def test(self, name: str, attr: str, op: str) -> Any:
        """The condition "``attr`` is in saved group ``name``" (refused as _Refuse)."""
        found = self.tests.get((name, attr))
        if found is None:
            values = self.groups.get(name, [])  # an unknown group is empty
            if isinstance(values, Mapping) and values.get("type") == "list":
                values = values.get("values")
            if not isinstance(values, list):
                raise _Refuse(f"saved group {name!r} is not a list of values")
            found = _membership_of(attr, op, values, fold=False)
            if found != _NEVER:
                try:  # typed once: every reference shares the one Condition
                    found = msgspec.convert(found, type=Condition)
                except msgspec.ValidationError:  # pragma: no cover - lowered as typed
                    pass
            self.tests[(name, attr)] = found
        return found


class _Feature:
    def __init__(self, key: str, feat: Any, saved_groups: _SavedGroups) -> None:
        if not isinstance(feat, Mapping):
            raise _Refuse("a feature must be an object")
        self.key = key
        self.feat = feat
        self.groups = saved_groups
        self.variants: dict[str, Any] = {}
        # each variant's value's key path in the feature (``rules[0].force``), and the
        # path of the rule being lowered, which the paths of its values start with
        self.sources: dict[str, str] = {}
        self.rule_at = ""
        self.on: list[str] = []
        # the feature's prerequisites: (where, parent id, the condition on the parent's
        # value lowered over the attribute "value", or None for none)
        self.parents: list[tuple[str, str, Any]] = []
        # the parent conditions that act from one rule on (see lower): per such rule,
        # its conditions (where, parent id, condition, gate) and the rules it lowered
        # to; a {RULE_PARENTS: k} placeholder in the rules marks where it starts
        self.rule_parents: list[tuple[int, list[tuple[str, str, Any, bool]], list[dict]]] = []
        self.off: str | None = None  # the null variant of a feature a gate can switch off
        self.flag: dict[str, Any] = {}
        # the hash strings (``<attribute>#hash``) no user who reaches the rule being
        # lowered has: a rule before served everyone with one (see lower)
        self.hashless: set[str] = set()
        # the condition saved groups being evaluated (a reference back to one is false)
        self.visiting: list[str] = []
        self.expanded = 0  # condition group references lowered (MAX_GROUP_EXPANSIONS)
        # within an element condition (some_element): the attribute holding the element,
        # which its condition's paths start from, and how many such conditions enclose it
        self.root: str | None = None
        self.nesting = 0

    def variant(self, name: str, value: Any, at: str = "") -> str:
        """A new variant serving ``value`` (at ``at`` in the rule being lowered), named
        ``name`` unless another variant of the feature has that name already (two
        experiments with one key, repeated meta keys): then ``name~2``, ``name~3``, ...,
        so no value replaces another."""
        unfit = unservable(value)
        if unfit is not None:  # refused here, naming the feature, not when compiled
            raise _Refuse(f"the value of {name}{unfit[0]}: {unfit[1]}", at=at + unfit[0])
        base, n = name, 1
        while name in self.variants:
            n += 1
            name = f"{base}~{n}"
        self.variants[name] = value
        if at:
            self.sources[name] = join_key_paths(self.rule_at, at)
        if js_truthy(value):
            self.on.append(name)
        return name

    def rule_parent_ids(self) -> list[str]:
        """The parents the rule-level parent conditions evaluate (GrowthBook evaluates each
        when it reaches the rule, with or without a condition)."""
        return [pc[1] for _, pcs, _ in self.rule_parents for pc in pcs]

    def all_parents(self) -> list[tuple[str, str]]:
        """(where, parent id) of every parent condition, flag-level and rule-level."""
        out = [(where, pid) for where, pid, _ in self.parents]
        return out + [(pc[0], pc[1]) for _, pcs, _ in self.rule_parents for pc in pcs]

    def off_variant(self) -> str:
        """The variant (null) this feature serves where a gate fails, as GrowthBook."""
        if self.off is None:
            self.off = self.variant(OFF, None)
        return self.off

    def lower(self) -> dict[str, Any]:
        """The feature as a cfgcore flag. GrowthBook tests a rule's ``parentConditions``
        in order before anything else of the rule; the first that fails decides: a gate
        makes the feature null, any other skips the rule. The gates that come first in
        rules no rule before can serve are flag-level prerequisites (a failing one
        switches the flag off, serving null, at once); the other parent conditions act
        from their rule on, and :func:`_link_prerequisites` lowers them to
        ``prerequisite`` conditions on the parent once every feature is lowered."""
        self.variant("default", self.feat.get("defaultValue"), "defaultValue")
        rules: list[dict[str, Any]] = []
        serving = False  # a rule before can serve (a gate's null rule does not count)
        everyone = False  # a rule before serves every user who reaches it
        for i, rule in enumerate(self.rules()):
            if everyone:
                # Never reached: the SDK returns at the rule before for every user and
                # reads nothing of this one (growthbook 4.0.0 ``_eval_feature``), so
                # what it would raise on is no refusal and nothing of it is imported.
                # It does build every rule when the features are set (``FeatureRule(**r)``):
                # a rule that is no object fails there for everyone.
                try:
                    _rule_object(rule)
                except _Refuse as exc:
                    raise exc.under("rules", i) from None
                continue
            pcs: list[tuple[str, str, Any, bool]] = []
            self.rule_at = f"rules[{i}]"
            try:
                if isinstance(rule, Mapping) and rule.get("parentConditions"):
                    pcs = self.parent_conditions(i, rule["parentConditions"])
                    while pcs and pcs[0][3] and not serving:
                        where, pid, cond, _ = pcs.pop(0)
                        self.parents.append((where, pid, cond))
                lowered = self.rule(i, rule)
            except _Refuse as exc:
                raise exc.under("rules", i) from None
            for r in lowered:
                if "when" in r:
                    r["when"], why = fit_depth(r["when"], heights=self.groups.heights)
                    if why is not None:
                        raise _Refuse(why, at=f"rules[{i}].condition")
            if pcs:
                rules.append({RULE_PARENTS: len(self.rule_parents)})
                self.rule_parents.append((i, pcs, lowered))
            rules += lowered
            serving = serving or bool(lowered)
            only_pass = all(gate or cond is None for _, _, cond, gate in pcs)
            # A rule lowered without condition or gates serves everyone who passes its
            # prerequisites: a force rule whose condition is absent or holds for every
            # user, with no filters, coverage or range (a hashed rule skips a user
            # without a hash value, and so does every experiment). Where every
            # prerequisite is a gate (or tests nothing), one that fails returns null:
            # the SDK returns at this rule for everyone either way.
            everyone = only_pass and any(
                "serve" in r and "when" not in r and "gates" not in r for r in lowered
            )
            # A rollout holding every bucket serves everyone who has a hash value for
            # it (its attribute or its fallback): only users with none go on, and they
            # skip every later rule that hashes by those attributes alone.
            if only_pass:
                for r in lowered:
                    if "serve" in r and "when" not in r and _full_span(r.get("gates")):
                        self.hashless.update(r["gates"][0]["hash"]["by"])
        self.flag = {
            "variants": self.variants,
            "default": "default",
            "on_variants": self.on,
            "rules": rules,
        }
        return self.flag

    def rules(self) -> list[Any]:
        """The feature's ``rules``: the SDK builds a rule of each (``FeatureRule(**r)`` for
        ``r in rules``), so null and an empty object or string are no rules; anything else
        that is not a list raises there (``0`` too)."""
        rules = self.feat.get("rules")
        if rules is None or (isinstance(rules, (str, Mapping)) and not rules):
            return []
        if not isinstance(rules, list):
            raise _Refuse(f"expected a list of rules, got {type_name(rules)}", at="rules")
        return rules

    def parent_conditions(self, i: int, conditions: Any) -> list[tuple[str, str, Any, bool]]:
        """A rule's ``parentConditions``: (where, parent id, condition lowered over the
        attribute ``value`` or None, gate) each, in order. GrowthBook evaluates each
        parent with the same attributes and tests its value
        (``evalCondition({"value": value}, condition)``); an entry without an id is
        skipped, one without a condition only evaluates its parent."""
        if not isinstance(conditions, list):
            raise _Refuse(
                f"'parentConditions' must be an array, got {type_name(conditions)}",
                at="parentConditions",
            )
        out = []
        for j, pc in enumerate(conditions):
            where = f"parentConditions[{j}]"
            if not isinstance(pc, Mapping):
                raise _Refuse(f"{where} must be an object, got {type_name(pc)}", at=where)
            pid = pc.get("id")
            if pid is None:
                continue  # the SDK skips it
            if not isinstance(pid, str):
                raise _Refuse(
                    f"{where}.id must be a string, got {type_name(pid)}", at=f"{where}.id"
                )
            cond = pc.get("condition")
            if cond is not None:
                try:
                    cond = self.condition(cond)
                except _Refuse as exc:
                    raise exc.under("parentConditions", j, "condition") from None
                cond, why = fit_depth(cond, heights=self.groups.heights)
                if why is not None:
                    raise _Refuse(why, at=f"{where}.condition")
            # the SDK reads gate with Python truthiness (parentCondition.get("gate", False))
            out.append((f"rules[{i}].{where}", pid, cond, bool(pc.get("gate", False))))
        return out

    # -- rules ----------------------------------------------------------------------------
    def hash_attrs(self, rule: Mapping[str, Any], fallback: bool) -> list[str]:
        """The hash strings to try: the hash attribute's (``id`` when unset or null; an
        empty name is GrowthBook's key ``""``), then for a rollout the fallback
        attribute's, which GrowthBook ignores when sticky bucketing is disabled."""
        attrs = [_hash_key(rule.get("hashAttribute"), "hashAttribute")]
        fb = rule.get("fallbackAttribute")
        if fallback and fb and not rule.get("disableStickyBucketing"):
            attrs.append(_hash_key(fb, "fallbackAttribute"))
        return attrs

    def gate(self, by: list[str], seed: str, version: int | None, suffix_seed: bool, test: Any):
        """Gates (one per contiguous run) for "hash n passes ``test``"."""
        if version is None:
            return None
        space = _space(version)
        scheme = f"growthbook_v{version}"
        h: dict[str, Any] = {"scheme": scheme, "by": by, "space": space}
        if version == 1 or suffix_seed:
            h["suffix"] = seed
        else:
            h["salt"] = seed
        runs, pos, spans = _runs(space, test), 0, []
        for inside, width in runs:
            if inside:
                spans.append({"hash": h, "lo": pos, "hi": pos + width})
            pos += width
        return spans

    def filters(self, rule: Mapping[str, Any]) -> list[list[dict[str, Any]]]:
        """Alternatives (each a list of gates) for a rule's (truthy) ``filters``.

        Read in the SDK's order (growthbook 4.0.0 ``_isFilteredOut``), so a value is
        refused exactly where the SDK would raise for some user: each filter's
        ``attribute``; then, for a user with a hash value and a valid ``hashVersion``
        (otherwise nobody passes and later filters are never read), its ``seed`` (a
        string, ``""`` when absent: joined to the hash value) and ``ranges`` (read up to
        the first range holding the user's bucket)."""
        filters = rule["filters"]
        if not isinstance(filters, list):
            # a number is not iterable; a string's characters, an object's keys have no .get
            raise _At("filters", f"expected a list of filters, got {type_name(filters)}")
        alts: list[list[dict[str, Any]]] = [[]]
        for j, f in enumerate(filters):
            at = f"filters[{j}]"
            if not isinstance(f, Mapping):
                raise _At(at, f"expected an object, got {type_name(f)}")
            by = [_hash_key(f.get("attribute"), f"{at}.attribute")]
            if by[0] in self.hashless:
                return []  # the SDK: no hash value, filtered out (nothing more is read)
            version = _hash_version(f.get("hashVersion", 2))
            if version is None:
                return []  # the SDK: no bucket, filtered out, for everyone
            seed = f.get("seed", "")
            if not isinstance(seed, str):
                raise _At(f"{at}.seed", f"expected a string, got {type_name(seed)}"
                          " (the SDK raises on it)")  # fmt: skip
            if "ranges" not in f:
                raise _At(f"{at}.ranges", f"missing: expected a list of {SPAN} (the SDK raises"
                          " without one)")  # fmt: skip
            pick = _chooser(f"{at}.ranges", f["ranges"])
            spans = self.gate(by, seed, version, False, lambda n, pick=pick: pick(n) >= 0)
            if not spans:
                return []  # nobody passes this filter
            alts = [a + [s] for a in alts for s in spans]
        return alts

    def namespace_gates(self, by: list[str], ns: Any) -> list[dict[str, Any]]:
        """Gates for an experiment's (truthy) ``namespace`` ``[id, start, end]``: the SDK
        hashes ``"__" + id`` (version 1) for every user with a hash value, then tests
        ``start <= n < end``."""
        try:
            ns_id = ns[0]
        except MALFORMED:
            raise _span_fault("namespace", ns, NAMESPACE, 1) from None
        if not isinstance(ns_id, str):
            got = type_name(ns_id)
            raise _At("namespace[0]", f"expected a string (the namespace id), got {got}"
                      " (the SDK raises on it)")  # fmt: skip
        test = _in_range("namespace", ns, NAMESPACE, 1)
        return self.gate(by, "__" + ns_id, 1, True, test) or []

    def rule(self, i: int, rule: Any) -> list[dict[str, Any]]:
        _rule_object(rule)
        for unsupported in _UNSUPPORTED_RULE_KEYS:
            if rule.get(unsupported):
                raise _Refuse(f"'{unsupported}' is not supported", at=unsupported)
        # ``seed`` and ``key`` are read (and must be text, which the SDK joins them to)
        # only where the SDK hashes with them: rollout_gates, experiment
        when = _ALWAYS
        if rule.get("condition"):
            try:
                when = self.condition(rule["condition"])
            except _Refuse as exc:
                raise exc.under("condition") from None
        if when == _NEVER:
            return []  # the SDK skips the rule for everyone and reads no more of it
        # the SDK reads a rule's filters before anything else of it (force, variations)
        alts = self.filters(rule) if rule.get("filters") else [[]]
        if not alts:
            return []  # filtered out for everyone: the SDK reads no more of the rule
        forced = rule.get("force") is not None  # GrowthBook: a null force is no force
        if forced:
            name = self.variant(f"rules[{i}]", rule["force"], "force")
            gates = self.rollout_gates(rule)
            out = []
            for alt in alts:
                for g in gates:
                    r: dict[str, Any] = {
                        "serve": name,
                        "name": str(rule.get("id") or f"rules[{i}]"),
                    }
                    if when != _ALWAYS:
                        r["when"] = when
                    if alt or g:
                        r["gates"] = alt + g
                    out.append(r)
            return out
        if rule.get("variations") is None:
            return []  # GrowthBook skips a rule with neither force nor variations
        return self.experiment(i, rule, when, alts)

    def rollout_gates(self, rule: Mapping[str, Any]) -> list[list[dict[str, Any]]]:
        """A force rule's ``range`` or ``coverage``, read as the SDK's
        ``_isIncludedInRollout`` reads them: a truthy ``range`` decides (``coverage``
        unread), a falsy one leaves ``coverage`` (none: every user with a bucket)."""
        coverage, rng = rule.get("coverage"), rule.get("range")
        if coverage is None and rng is None:
            return [[]]
        if coverage == 0 and rng is None:
            return []
        by = self.hash_attrs(rule, fallback=True)
        if self.hashless.issuperset(by):
            return []  # the SDK: no hash value, not included (nothing more is read)
        version = _hash_version(rule.get("hashVersion") or 1)
        if version is None:
            return []  # the SDK: no bucket (its seed is never read), nobody included
        seed = _text(rule.get("seed"), "seed") or self.key
        if rng:
            test = _in_range("range", rng)
        elif coverage is not None:
            test = _under("coverage", coverage)
        else:
            test = _anywhere
        spans = self.gate(by, seed, version, False, test)
        return [[s] for s in spans or []]

    def experiment(
        self, i: int, rule: Mapping[str, Any], when: Any, filter_alts: list[list[dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        if not isinstance(rule["variations"], list):
            raise _Refuse(
                f"variations must be a list, got {type_name(rule['variations'])}", at="variations"
            )
        variations = list(rule["variations"])
        if len(variations) < 2:
            return []  # GrowthBook: fewer than two variations is never in the experiment
        # The SDK's experiment key is ``rule.key or`` the feature's key: looked up in the
        # user's overrides and forced variations (dict lookups, which a list raises on,
        # for everyone reaching the experiment: growthbook 4.0.0 ``_run_experiment``),
        # and joined to the hash value only where no seed is given (see below).
        key_value = rule.get("key") or self.key
        if isinstance(key_value, str):
            exp_key, forced_attr = key_value, FORCED + key_value
        elif isinstance(key_value, (int, float)):  # a number or boolean: a dict key
            exp_key = json.dumps(key_value)
            forced_attr = FORCED_NUM + (_key_text(key_value) or "nan")
        else:
            raise _Refuse(f"key must be a string, got {type_name(key_value)} (the SDK's "
                          "lookup of the user's forced variations raises on it)",
                          at="key")  # fmt: skip
        meta_in = rule.get("meta")
        if meta_in and not isinstance(meta_in, list):
            raise _Refuse(f"meta must be a list, got {type_name(meta_in)}", at="meta")
        meta = list(meta_in or [])
        for j, m in enumerate(meta[: len(variations)]):
            # the SDK looks "name", "key" and "passthrough" up in a truthy entry with
            # `in` and []: a number raises there, a string or a list answers by chance
            if m and not isinstance(m, Mapping):
                raise _Refuse(f"meta[{j}] must be an object, got {type_name(m)}", at=f"meta[{j}]")
        names = []
        for j, value in enumerate(variations):
            m = meta[j] if j < len(meta) and isinstance(meta[j], Mapping) else {}
            label = str(m.get("key", j))
            names.append(self.variant(f"{exp_key}:{label}", value, f"variations[{j}]"))
        passthrough = [
            bool(meta[j].get("passthrough"))
            if j < len(meta) and isinstance(meta[j], Mapping)
            else False
            for j in range(len(variations))
        ]
        out: list[dict[str, Any]] = []
        # filters are checked before the forced variation (the feature evaluation skips
        # a filtered-out rule first); a namespace only after it
        for j, name in enumerate(names):
            if passthrough[j]:
                continue
            test = {"attr": forced_attr, "eq": j}
            for alt in filter_alts:
                forced: dict[str, Any] = {
                    "when": _and(when, test),
                    "serve": name,
                    "name": f"{exp_key} forced",
                }
                if alt:
                    forced["gates"] = alt
                out.append(forced)
        # A feature rule has no "active" or "status": the SDK's FeatureRule drops them
        # and runs the experiment, so they are ignored here too.
        by = self.hash_attrs(rule, fallback=False)
        if self.hashless.issuperset(by):
            # the SDK: no hash value, not in the experiment; what it reads after that
            # (namespace, hash version, seed, ranges, coverage, weights) is never read
            return out
        alts = filter_alts
        ns = rule.get("namespace")
        if ns and not rule.get("filters"):
            # read (SDK: inNamespace) before the experiment's hash version is
            alts = [[s] for s in self.namespace_gates(by, ns)]
        version = _hash_version(rule.get("hashVersion") or 1)
        if version is None:
            return out
        seed = _text(rule.get("seed"), "seed")
        if not seed:  # the SDK hashes with ``seed or key``, joining it to the hash value
            if not isinstance(key_value, str):
                raise _Refuse(f"key must be a string where no seed is given, got "
                              f"{type_name(key_value)} (the SDK joins it to the user's "
                              "hash value and raises)", at="key")  # fmt: skip
            seed = key_value
        space = _space(version)
        # the SDK: explicit ranges, read up to the first holding the bucket, or its bucket
        # ranges of coverage and weights (coverage unread where ranges are given)
        ranges = rule.get("ranges") or _bucket_ranges(
            len(variations), _coverage(rule), rule.get("weights")
        )
        pick = _chooser("ranges", ranges)

        pos, buckets = 0, []
        for j, width in _runs(space, pick):
            # explicit ranges beyond the variations assign no variation (not in experiment)
            served = 0 <= j < len(names) and not passthrough[j]
            buckets.append([names[j] if served else None, width])
            pos += width
        h: dict[str, Any] = {"scheme": f"growthbook_v{version}", "by": by, "space": space}
        if version == 1:
            h["suffix"] = seed
        else:
            h["salt"] = seed
        base_when = _and(when, _not({"attr": forced_attr, "exists": True}))
        for alt in alts:
            r: dict[str, Any] = {"hash": h, "buckets": buckets, "name": exp_key}
            if base_when != _ALWAYS:
                r["when"] = base_when
            if alt:
                r["gates"] = alt
            out.append(r)
        return out

    # -- conditions ------------------------------------------------------------------------
    def condition(self, cond: Any) -> Any:
        """Where GrowthBook's ``evalCondition`` holds for ``cond``.

        The SDK answers false for the whole condition, under a ``$not`` too, where its
        evaluation reaches a value it raises on (growthbook 4.0.0 ``evalCondition``
        catches TypeError, AttributeError, ...): a condition or an ``$or``/``$nor``/
        ``$and`` entry that is no object, an ``$or``/``$nor``/``$and`` that is no list.
        It evaluates entries in order and stops at the first one that decides, so such
        a value is reached only where what comes before it does not decide: see
        :meth:`_evaluated`.

        The SDK answers in three values: an operator it does not know, or a saved group
        of a type it does not know, is *unknown* (growthbook 4.0.0 ``CondResult`` None),
        which passes no condition (``evalCondition`` is ``... is True``) and which
        ``$not``/``$nor`` keep unknown; an ``$or`` with a true entry holds, an ``$and``
        (or a condition object) with a false one fails, and evaluation goes on past it
        as past a true entry (``$and``) or a false one (``$or``).

        So each part is lowered to where it is true and where it is false (unknown
        elsewhere): a ``$not`` swaps them, and each is written once per use, where
        writing "unknown" beside "true" would repeat the true part at every level."""
        value, _false, raises = self._evaluated(cond)
        return _and(value, _not(raises))

    def _evaluated(self, cond: Any) -> tuple[Any, Any, Any]:
        """(value, false, raises) of the SDK evaluating the condition ``cond``:
        ``raises`` where its evaluation reaches a value it raises on; where not,
        ``value`` where its answer is true and ``false`` where it is false (None: where
        ``value`` does not hold, no unknown answer; see :func:`_kleene`).

        ``value`` may answer anything where ``raises`` holds: whatever is reached after
        the first such value is never evaluated, and the whole condition is false there.
        So where an entry is reached is decided by the ``value`` of those before it
        (:func:`_in_order`), and neither part repeats the other."""
        if not isinstance(cond, Mapping):
            return _NEVER, None, _ALWAYS  # the SDK reads its items(): AttributeError
        return _in_order((functools.partial(self._entry, k, v) for k, v in cond.items()), True)

    def _item(self, j: int, cond: Any) -> tuple[Any, Any, Any]:
        """(value, false, raises) of item ``j`` of an ``$or``/``$nor``/``$and``."""
        try:
            return self._evaluated(cond)
        except _Refuse as exc:
            raise exc.under(j) from None

    def _entry(self, key: Any, value: Any) -> tuple[Any, Any, Any]:
        """(value, false, raises) of one entry of a condition object; a refusal names its
        key path below the entry's key."""
        try:
            return self._entry_of(key, value)
        except _Refuse as exc:
            raise exc.under(key) from None

    def _entry_of(self, key: Any, value: Any) -> tuple[Any, Any, Any]:
        if key in ("$or", "$nor", "$and"):
            items = _logical_items(key, value)
            if items is None:
                return _NEVER, None, _ALWAYS
            if not items:  # the SDK: an empty $or holds, an empty $and holds
                return (_NEVER if key == "$nor" else _ALWAYS), None, _NEVER
            parts = (functools.partial(self._item, j, c) for j, c in enumerate(items))
            found, false, raises = _in_order(parts, key == "$and")
            if key == "$nor":
                found, false = _negated(found, false)
            return found, false, raises
        if key == "$not":
            found, false, raises = self._evaluated(value)
            return *_negated(found, false), raises
        if key == "$savedGroups":
            return _NEVER, None, _NEVER  # growthbook 4.0.0 _eval_condition: false
        if key == "$savedGroup":
            return self._saved_group(value)
        _check_path(key)
        return *self.value_test(self.at(str(key)), value), _NEVER

    def at(self, key: str) -> str:
        """The attribute at the condition path ``key``: within an element condition, a
        path into the element (GrowthBook reads the element as the attributes)."""
        return _path(key) if self.root is None else f"{self.root}.{_path(key, top=False)}"

    def _saved_group(self, ref: Any) -> tuple[Any, Any, Any]:
        """(value, false, raises) of a ``$savedGroup`` reference, as growthbook 4.0.0
        ``_eval_saved_group`` reads it: false where the reference or the group is
        malformed or the group is being evaluated already (a cycle); a ``list`` group
        tests its ``values`` against the attribute at its ``attributeKey`` (the
        reference's, else the group's) as ``isIn``; a ``condition`` group is its
        condition; a group of another type is unknown."""
        false = (_NEVER, None, _NEVER)
        if not isinstance(ref, Mapping):
            return false
        gid = ref.get("id")
        if not isinstance(gid, str) or gid in self.visiting:
            return false
        if "attributeKey" in ref and not isinstance(ref["attributeKey"], str):
            return false
        entry = self.groups.groups.get(gid)
        if not isinstance(entry, Mapping):
            return false
        if entry.get("type") == "list":
            key, values = ref.get("attributeKey", entry.get("attributeKey")), entry.get("values")
            if not isinstance(key, str) or not isinstance(values, list):
                return false
            _check_path(key)
            return self.groups.test(gid, self.at(key), "$savedGroup"), None, _NEVER
        if entry.get("type") == "condition":
            cond = entry.get("condition")
            if not isinstance(cond, Mapping):
                return false
            # lowered at each reference: groups referencing groups twice would double
            # the condition at each level, so the references one feature expands are bounded
            self.expanded += 1
            if self.expanded > MAX_GROUP_EXPANSIONS:
                raise _Refuse(f"$savedGroup {gid!r}: condition groups expanded more than "
                              f"{MAX_GROUP_EXPANSIONS} times in one feature")  # fmt: skip
            self.visiting.append(gid)
            try:
                return self._evaluated(cond)
            except _Refuse as exc:
                # the group's condition is no part of the feature: the refusal is named
                # by the reference, and says where in the group it is
                inner = join_key_paths("condition", exc.at)
                raise _Refuse(f"saved group {gid!r:.60}, at {inner}: {exc}") from None
            finally:
                self.visiting.pop()
        return _NEVER, _NEVER, _NEVER  # a group type the SDK does not know: unknown

    def value_test(self, attr: str, cv: Any) -> tuple[Any, Any]:
        """(value, false) of GrowthBook's ``evalConditionValue`` at ``attr``."""
        if isinstance(cv, Mapping) and all(str(k).startswith("$") for k in cv):
            return _kleene([self.operator_at(attr, op, v) for op, v in cv.items()], True)
        if isinstance(cv, (list, dict)):
            return _deep_equals(attr, cv), None
        if isinstance(cv, (tuple, Mapping)):
            raise _Refuse(f"equality with {type_name(cv)} at {attr!r}")
        return _equals(attr, cv), None

    def operator_at(self, attr: str, op: str, v: Any) -> tuple[Any, Any]:
        """:meth:`operator`, a refusal naming its key path below the operator."""
        try:
            return self.operator(attr, op, v)
        except _Refuse as exc:
            raise exc.under(op) from None

    def operator(self, attr: str, op: str, v: Any) -> tuple[Any, Any]:
        """(value, false) of one operator (growthbook 4.0.0 ``_eval_operator_condition``):
        the condition operators answer false on a value, one it does not know unknown."""
        if op in ("$or", "$nor", "$and", "$savedGroup"):
            return _NEVER, None
        if op == "$not":
            return _negated(*self.value_test(attr, v))
        if op in ("$all", "$alli", "$elemMatch"):
            if op == "$elemMatch":  # an array with an element (not null) that passes ``v``
                found, false = self.some_element(attr, v, op)
            elif not isinstance(v, list):
                return _NEVER, None
            else:  # an array where every expected value matches an element
                found, false = _kleene(
                    [self.element_at(attr, j, x, op) for j, x in enumerate(v)], True
                )
            array = _is_list(attr)  # the SDK: false for anything but a list
            return _and(array, found), (None if false is None else _any(_not(array), false))
        if op == "$size":  # only arrays have a size
            found, false = self.value_test(attr + SIZE, v)
            array = _is_list(attr)
            return _and(array, found), (None if false is None else _any(_not(array), false))
        if op in ("$inGroup", "$notInGroup") and isinstance(v, str):
            entry = self.groups.groups.get(v, [])  # an unknown group is empty
            if isinstance(entry, Mapping) and entry.get("type") not in ("list", "condition"):
                return _NEVER, _NEVER  # a group type the SDK does not know: unknown
            if not isinstance(entry, list) and not (
                isinstance(entry, Mapping)
                and entry.get("type") == "list"
                and isinstance(entry.get("values"), list)
            ):
                return _NEVER, None  # the SDK: false, in or out, for no list of values
        if op not in _OPERATORS:
            return _NEVER, _NEVER  # the SDK: an operator it does not know, unknown
        return self.known_operator(attr, op, v), None

    def known_operator(self, attr: str, op: str, v: Any) -> Any:
        if op == "$eq" or op == "$ne":
            # containers are never === (GrowthBook SDK semantics)
            test = _NEVER if isinstance(v, (list, tuple, Mapping)) else _equals(attr, v)
            return test if op == "$eq" else _not(test)
        if op in ("$in", "$nin", "$ini", "$nini", "$inGroup", "$notInGroup"):
            if op in ("$inGroup", "$notInGroup"):
                if not isinstance(v, str):
                    return _NEVER  # GrowthBook: never in nor out of a group with no name
                test = self.groups.test(v, attr, op)
            else:
                if not isinstance(v, list):
                    return _NEVER
                test = _membership_of(attr, op, v, fold=op in ("$ini", "$nini"))
            positive = op in ("$in", "$ini", "$inGroup")
            return test if positive else _not(test)
        if op in ("$gt", "$gte", "$lt", "$lte"):
            name = {"$gt": "gt", "$gte": "ge", "$lt": "lt", "$lte": "le"}[op]
            if isinstance(v, str):  # strings order against strings only
                try:
                    return string_order(attr, name, v)
                except ValueError as exc:
                    raise _Refuse(f"'{op}' at {attr!r}: {exc}") from None
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                return _NEVER  # GrowthBook: only two numbers or two strings are ordered
            return _ordered(attr, name, v)
        if op in ("$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte"):
            if isinstance(v, str):
                vattr = attr + VER_STR
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                vattr = attr + VER_NUM
            else:
                return _ALWAYS if op == "$vne" else _NEVER
            padded = padded_version(v)
            eq = {"attr": vattr, "eq": padded}
            if op == "$veq":
                return eq
            if op == "$vne":
                return _not(eq)  # also true when not comparable, as in GrowthBook
            name = {"$vgt": "gt", "$vgte": "ge", "$vlt": "lt", "$vlte": "le"}[op]
            try:
                return string_order(vattr, name, padded, utf16=False)
            except ValueError as exc:
                raise _Refuse(f"'{op}' at {attr!r}: {exc}") from None
        if op == "$exists":  # any value but null: objects and arrays too
            return _not(_is_null(attr)) if v else _is_null(attr)
        if op in ("$regex", "$regexi", "$notRegex", "$notRegexi"):
            fold = op.endswith("i")
            if not isinstance(v, str):
                return _NEVER if not op.startswith("$not") else _ALWAYS
            try:
                with warnings.catch_warnings():  # "possible nested set" and the like
                    warnings.simplefilter("ignore")
                    re.compile(v, re.IGNORECASE if fold else 0)
            except (re.error, OverflowError, RecursionError):
                return _NEVER if not op.startswith("$not") else _ALWAYS
            # refuses inline flags and the like
            pattern, at_end = _portable_regex(v, attr, fold)
            literal = None if fold else _literal_regex(attr, v)
            if literal is not None:  # string tests: no bound on the value's length
                return _not(literal) if op.startswith("$not") else literal
            try:  # what cfgcore cannot run is refused here, naming the feature
                compile_regex(pattern, fold)
            except Exception as exc:
                raise _Refuse(f"'{op}' at {attr!r}: {exc}") from None
            found: dict[str, Any] = {"attr": attr, "matches": pattern}
            if fold:
                found["ignore_case"] = True
            if at_end:  # Python's '$' also matches before a final newline
                found = {"any": [found, {**found, "attr": attr + CHOMP}]}
            if not at_end and _head_decides(v):  # a long value: its head decides
                found = {"any": [found, {**found, "attr": attr + HEAD}]}
            else:  # a long value: searched whole by context()'s mapping (_Attributes)
                search = json.dumps([attr, pattern, fold, at_end], ensure_ascii=False)
                found = {"any": [found, {"attr": SEARCH + search, "eq": True}]}
            return _not(found) if op.startswith("$not") else found
        if op == "$type":
            if v == "null":
                return _is_null(attr)
            return {"attr": attr + TYPE, "eq": v} if isinstance(v, str) else _NEVER
        raise _Refuse(f"condition operator {op!r} (at {attr!r})")

    def element_at(self, attr: str, j: int, cond: Any, op: str) -> tuple[Any, Any]:
        """:meth:`some_element` of ``$all``'s expected value ``j``, a refusal naming it."""
        try:
            return self.some_element(attr, cond, op)
        except _Refuse as exc:
            raise exc.under(j) from None

    def some_element(self, attr: str, cond: Any, op: str) -> tuple[Any, Any]:
        """(value, false) of "some element of the list at ``attr`` passes ``cond``":
        ``$elemMatch``'s condition (null elements skipped) or one of ``$all``'s expected
        values (growthbook 4.0.0 ``_elem_match``, ``_is_in_all``), in three values: true
        where one passes, unknown where none does and one is unknown, false elsewhere.
        The caller tests that ``attr`` is a list.

        Membership (a scalar, ``$eq``, ``$in``: :func:`_membership_element`) is a test
        of the array attribute itself. Anything else is the element condition lowered
        over the attribute :data:`ELEMENT` and tested through ``#elem:`` (answered by
        :class:`_Attributes`): as the SDK reads it, an ``$elemMatch`` object of
        operators alone, none of them ``$or``/``$and``/``$nor``/``$savedGroup``, tests
        each element itself (``evalConditionValue``), any other object is a condition
        on each element's fields (``evalCondition`` with the element as the attributes),
        and ``$all`` tests each element with each expected value (``evalConditionValue``;
        ``$alli``: a string equal in lower case). Refused: an ``$elemMatch`` that is no
        object or has a key that is no string, and a field condition the SDK raises on
        (both make its whole condition false for some arrays and not for others), and
        element conditions nested more than MAX_ELEMENT_NESTING deep."""
        if op == "$elemMatch" and not isinstance(cond, Mapping):
            raise _Refuse(f"'$elemMatch' at {attr!r}: {type_name(cond)}, where GrowthBook's "
                          "SDK raises on any array with an element that is not null")  # fmt: skip
        if isinstance(cond, Mapping) and not all(isinstance(k, str) for k in cond):
            raise _Refuse(f"{op!r} at {attr!r}: a key that is no string")
        try:
            return _membership_element(attr, cond, op), None
        except _NotMembership:
            pass
        if self.nesting >= MAX_ELEMENT_NESTING:
            raise _Refuse(f"{op!r} at {attr!r}: element conditions nested more than "
                          f"{MAX_ELEMENT_NESTING} deep")  # fmt: skip
        on_value = op != "$elemMatch" or (
            all(k.startswith("$") for k in cond) and not any(k in _CONDITION_KEYS for k in cond)
        )
        # ($alli folds strings alone, which are membership: the rest is as $all's)
        outer = self.root
        self.nesting += 1
        raises = _NEVER
        try:
            if on_value:  # the element itself, at ELEMENT
                self.root = None
                found, false = self.value_test(ELEMENT, cond)
            else:  # the element's fields, at ELEMENT.<path>
                self.root = ELEMENT
                found, false, raises = self._evaluated(cond)
        except _Refuse as exc:  # its attribute paths are the element's: say so
            why = f"{op!r} at {attr!r}, each element read as {ELEMENT!r}: {exc}"
            raise _Refuse(why, at=exc.at) from None
        finally:
            self.root = outer
            self.nesting -= 1
        if raises != _NEVER:
            raise _Refuse(f"'$elemMatch' at {attr!r}: its condition makes GrowthBook's SDK "
                          "raise for some elements (an '$or', '$and' or '$nor' that is no "
                          "list of objects, a '$not' that is no object)")  # fmt: skip
        if found == _NEVER and false is None:
            return _NEVER, None  # no element passes
        return _element_key(attr, "elem" if op == "$elemMatch" else "all", found, false)


# the keys that make an ``$elemMatch`` object a condition on the elements' fields even
# where every key starts with '$' (growthbook 4.0.0 ``_elem_match``: ``_CONDITION_OPERATORS``)
_CONDITION_KEYS = ("$or", "$nor", "$and", "$savedGroup")
# element conditions (``$elemMatch``, ``$all``) lowered within element conditions: each
# level nests the spec of the one inside it in its own (see _element_key)
MAX_ELEMENT_NESTING = 4


def _element_key(attr: str, mode: str, found: Any, false: Any) -> tuple[Any, Any]:
    """(value, false) of the ``#elem:`` attribute testing, over the list at ``attr``,
    the element condition whose (value, false) over :data:`ELEMENT` are ``found`` and
    ``false`` (mode ``elem``: null elements skipped). The spec is canonical JSON, so one
    element condition is one attribute wherever it is used; it is compiled here (a
    condition the compiler refuses is refused, naming the feature) as :class:`_Attributes`
    compiles it when answering."""
    parts: list[Any] = []
    for cond in (found, false):
        if cond is None or cond == _ALWAYS or cond == _NEVER:
            parts.append(cond)
            continue
        fitted, why = fit_depth(cond)
        if why is not None:
            raise _Refuse(f"the element condition at {attr!r}: {why}")
        parts.append(msgspec.to_builtins(fitted))
    spec = json.dumps([attr, mode, *parts], sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)  # fmt: skip
    try:
        _element_tests(spec)
    except SnapshotError as exc:
        why = "; ".join(p.message for p in exc.problems)
        raise _Refuse(f"the element condition at {attr!r}: {why}") from None
    key = ELEM + spec
    value = {"attr": key, "eq": True}
    if false is None:
        return value, None
    # a missing answer is false: a context with no list holds no ``#elem:`` key
    return value, _not(_any(value, {"attr": key, "eq": UNKNOWN}))


# the value operators growthbook 4.0.0 ``_eval_operator_condition`` knows (and lowered by
# _Feature.known_operator)
_OPERATORS = frozenset(
    ["$eq", "$ne", "$lt", "$lte", "$gt", "$gte", "$veq", "$vne", "$vlt", "$vlte", "$vgt",
     "$vgte", "$inGroup", "$notInGroup", "$regex", "$regexi", "$notRegex", "$notRegexi",
     "$in", "$nin", "$ini", "$nini", "$elemMatch", "$size", "$all", "$alli", "$exists",
     "$type", "$not"]
)  # fmt: skip


def _check_path(key: Any) -> None:
    """Refuse an attribute path :func:`context` does not give conditions (names holding
    '#' or starting with '$forced' are escaped: see :func:`_path`)."""
    if not isinstance(key, str):
        raise _Refuse(f"attribute path {key!r:.60}: not a string")
    if key.count(".") >= MAX_PATH_DEPTH - 1:
        raise _Refuse(
            f"attribute path {key!r:.60}: more than {MAX_PATH_DEPTH - 1} levels "
            "deep (context() reads objects and arrays to that depth)"
        )


def _bucket_ranges(n: int, coverage: Any, weights: Any) -> list[tuple[float, float]]:
    """GrowthBook's bucket ranges: variation i covers [start_i, start_i + coverage * w_i),
    start_i the sum of the weights before it; weights that are not a valid vector
    (one non-negative number per variation summing to about 1) become equal weights.

    Source: GrowthBook SDK docs, "getBucketRanges"."""
    c = 1 if coverage is None else coverage
    c = float(0 if c < 0 else 1 if c > 1 else c)  # clamped first, as the SDK: 1e400 is 1
    try:
        valid = (
            isinstance(weights, list)
            and len(weights) == n
            and all(
                isinstance(w, (int, float))
                and not isinstance(w, bool)
                and math.isfinite(w)
                and w >= 0
                for w in weights
            )
            and 0.99 <= sum(weights) <= 1.01
        )
    except OverflowError:  # an int past a double (10**400): not a valid weight, as the SDK
        valid = False
    ws = list(weights) if valid else [1 / n] * n
    out, cum = [], 0.0
    for w in ws:
        start = cum
        cum += w
        out.append((start, start + c * w))
    return out


# -- regular expressions ------------------------------------------------------------------
# The SDK searches with Python's ``re``; cfgcore runs ``matches`` on RE2 where installed.
# _portable_regex rewrites a pattern so both engines give Python's answer: Python's
# Unicode \\d, \\w and \\s become explicit classes, and a final '$' is matched on the value
# and on the value without a final newline (``#chomp``, which context() adds only under
# RE2, whose '$' is the end of the text). What differs and cannot be rewritten is refused.
# The classes are Python's of one Unicode version (cfgcore._unicode_tables.UNICODE_VERSION),
# not the running Python's: a payload imports to the same patterns, measured alike by the
# regex cost bound, on every Python (the SDK's own \\w grows with its Python's Unicode).
_UNICODE_CLASSES: dict[str, str] = {}


def _unicode_class(kind: str) -> str:
    """The inside of a class matching what Python's ``\\<kind>`` matches in a str pattern
    (``d``, ``w`` or ``s``), in cfgcore's Unicode tables."""
    if kind not in _UNICODE_CLASSES:
        _UNICODE_CLASSES[kind] = ranges_text(_unicode_tables.ranges("python_" + kind))
    return _UNICODE_CLASSES[kind]


# Python's re, ignoring case, takes "I", "i", dotted "İ" and dotless "ı" for one another
# (its lower case of "İ" is "i", and it pairs "i" with "ı"); RE2 folds "I" with "i" alone.
# Under $regexi each of them, and each class holding one, is written as all four.
_TURKISH_I = "Ii\u0130\u0131"
_TURKISH_I_CODES = frozenset(map(ord, _TURKISH_I))


def _class_folds_i(text: str) -> bool:
    """Whether the class ``text`` (``[...]`` in re's syntax) holds one of
    :data:`_TURKISH_I`, as a character or within a range."""
    with warnings.catch_warnings():  # "possible nested set" and the like
        warnings.simplefilter("ignore")
        items = _sre_parse.parse(text)
    for op, av in items:
        if op in (_sre_parse.LITERAL, _sre_parse.NOT_LITERAL):  # a class of one: [i], [^i]
            if av in _TURKISH_I_CODES:
                return True
            continue
        if op is not _sre_parse.IN:
            continue
        for kind, arg in av:
            if kind is _sre_parse.LITERAL and arg in _TURKISH_I_CODES:
                return True
            if kind is _sre_parse.RANGE and any(arg[0] <= c <= arg[1] for c in _TURKISH_I_CODES):
                return True
    return False


def _portable_regex(p: str, attr: str, fold: bool = False) -> tuple[str, bool]:
    """``p`` (valid for Python's ``re``) as a pattern RE2 and ``re`` both run as Python
    does (``fold``: ignoring case, as ``re.IGNORECASE``), and whether it ends in '$';
    raises _Refuse for constructs whose meaning differs."""

    def refuse(what: str) -> _Refuse:
        return _Refuse(f"regex {p!r:.80} at {attr!r}: {what} differs between Python and RE2")

    out: list[str] = []
    i, n, depth, at_end = 0, len(p), 0, False
    in_class, class_start = False, False
    opened = 0  # where the class being read starts in out
    while i < n:
        c = p[i]
        if c == "\\":
            e = p[i + 1] if i + 1 < n else ""
            if e in ("d", "w", "s"):
                cls = _unicode_class(e)
                out.append(cls if in_class else "[" + cls + "]")
            elif e in ("D", "W", "S"):
                if in_class:
                    raise refuse(f"'\\{e}' inside a class")
                out.append("[^" + _unicode_class(e.lower()) + "]")
            elif e and (e in "bBZNuU" or e.isdigit()):
                raise refuse(f"'\\{e}'")
            elif fold and not in_class and e == "x" and p[i + 2 : i + 4].lower() in ("49", "69"):
                out.append("[" + _TURKISH_I + "]")  # \x49 is "I", \x69 "i"
                i += 4
                continue
            else:
                out.append(c + e)
            i += 2
            class_start = False
            continue
        if in_class:
            if c == "]" and not class_start:
                in_class = False
                if fold and _class_folds_i("".join(out[opened:]) + "]"):
                    out.append(_TURKISH_I)
            elif c == "[" and p.startswith("[:", i):
                raise refuse("'[:' (a POSIX class to RE2)")
            class_start = False
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = class_start = True
            opened = len(out)
            if p.startswith("[^", i):
                out.append("[^")
                i += 2
                continue
        elif c == "(":
            if p.startswith("(?", i) and not (p.startswith("(?:", i) or p.startswith("(?P<", i)):
                raise refuse(f"the group {p[i : i + 3]!r}")
            depth += 1
            if p.startswith("(?P<", i):  # the group's name, as it is
                end = p.index(">", i) + 1
                out.append(p[i:end])
                i = end
                continue
        elif c == ")":
            depth -= 1
        elif c == "{" and p.startswith("{,", i):
            raise refuse("'{,n}'")
        elif c == "$":
            rest = p[i + 1 :]
            closing = len(rest) - len(rest.lstrip(")"))
            after = rest[closing:]
            if not (after == "" or (after.startswith("|") and depth - closing == 0)):
                raise refuse("'$' with more pattern after it")
            at_end = True
        elif fold and c in _TURKISH_I:
            c = "[" + _TURKISH_I + "]"
        out.append(c)
        i += 1
    return "".join(out), at_end


def _regex_items(p: str) -> list[tuple[str, Any]] | None:
    """The top-level items of Python's parse of ``p``, as (opcode name, argument)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = _sre_parse.parse(p)
    except Exception:  # re rejects it: the caller already answered for that
        return None
    return [(str(op), av) for op, av in parsed]


def _literal_regex(attr: str, p: str) -> Any | None:
    """A pattern that is plain text, anchored or not, as the string tests it means to
    Python's ``re.search`` (which cfgcore runs on any length; ``matches`` stops at
    MAX_REGEX_INPUT characters), or None for any other pattern."""
    items = _regex_items(p)
    if items is None:
        return None
    start = bool(items) and items[0] == ("AT", _AT_BEGINNING)
    end = bool(items) and items[-1] == ("AT", _AT_END)
    body = items[int(start) : len(items) - int(end)]
    if not all(op == "LITERAL" for op, _ in body):
        return None
    text = "".join(chr(av) for _, av in body)
    if not end:
        return {"attr": attr, "starts_with" if start else "contains": text}
    # Python's '$' matches at the end and before a final newline
    op = "eq" if start else "ends_with"
    return {"any": [{"attr": attr, op: text}, {"attr": attr, op: text + "\n"}]}


def _head_decides(p: str) -> bool:
    """Whether a match of ``p`` in a string longer than MAX_REGEX_INPUT is a match in its
    first MAX_REGEX_INPUT characters (``#head``): a pattern anchored at the start (one
    top-level branch, so every match starts at 0), with no '$', whose matches are no
    longer than that. Other patterns never match such a string (README, Interop)."""
    items = _regex_items(p)
    if not items or items[0] != ("AT", _AT_BEGINNING):
        return False
    try:
        width = _sre_parse.parse(p).getwidth()[1]
    except Exception:
        return False
    return bool(width <= MAX_REGEX_INPUT)


def _hash_version(v: Any) -> int | None:
    """GrowthBook's hash version: 1 or 2 as Python compares (``2.0`` is 2, ``"2"`` is
    neither); anything else hashes nobody."""
    try:
        return 2 if v == 2 else 1 if v == 1 else None
    except Exception:  # a value whose == fails: no version
        return None


def _coverage(rule: Mapping[str, Any]) -> Any:
    """A rule's ``coverage`` where the SDK reads it into bucket ranges: null or a number
    (the SDK compares it with numbers and raises on anything else)."""
    c = rule.get("coverage")
    if c is not None and not isinstance(c, (int, float)):
        raise _At("coverage", f"expected a number, got {type_name(c)} (the SDK raises on it)")
    return c


# -- bucket ranges ------------------------------------------------------------------------
# GrowthBook compares a user's bucket n (a float in [0, 1)) with range bounds in Python
# (growthbook 4.0.0: ``inRange`` is ``range[0] <= n < range[1]``, ``chooseVariation`` stops
# at the first range holding n, a namespace is ``[id, start, end]``). The importer makes
# the same comparisons for every bucket (_runs), so a value is refused exactly where the
# SDK raises for some bucket (a short list, a bound that is no number, a string) and
# answered as the SDK answers everywhere else (a bound never reached, ``[2, null]``:
# ``2 <= n`` is false first). These helpers say what was wrong and where.
SPAN = "[start, end]"
NAMESPACE = "[id, start, end]"


def _span_fault(where: str, v: Any, shape: str = SPAN, lead: int = 0) -> _Refuse:
    """The refusal for a span ``v`` (``shape``, its bounds from index ``lead``) whose
    comparison with a bucket raised."""
    if not isinstance(v, (list, tuple)):
        return _At(where, f"expected {shape}, got {type_name(v)}")
    if len(v) < lead + 2:
        return _At(where, f"expected {shape}, got a list of {len(v)}")
    for k in range(lead, lead + 2):
        if not isinstance(v[k], (int, float)):
            return _At(f"{where}[{k}]", f"expected a number, got {type_name(v[k])}")
    return _At(where, f"expected {shape}, got {v!r:.60}")  # pragma: no cover - numbers compare


def _in_range(where: str, v: Any, shape: str = SPAN, lead: int = 0) -> Any:
    """The bucket test "``v[lead] <= n < v[lead + 1]``", refusing (``where``) as it raises."""

    def test(n: float) -> bool:
        try:
            return bool(v[lead] <= n < v[lead + 1])
        except MALFORMED:
            raise _span_fault(where, v, shape, lead) from None

    return test


def _under(where: str, c: Any) -> Any:
    """The bucket test "``n < c``" (a rollout's coverage), refusing (``where``) as it raises."""

    def test(n: float) -> bool:
        try:
            return bool(n < c)
        except MALFORMED:
            why = f"expected a number, got {type_name(c)} (the SDK raises on it)"
            raise _At(where, why) from None

    return test


def _anywhere(n: float) -> bool:
    return True


def _chooser(where: str, ranges: Any) -> Any:
    """GrowthBook's ``chooseVariation``: the index of the first of ``ranges`` holding the
    bucket, -1 for none; refusing (``where``) as it raises."""

    def pick(n: float) -> int:
        try:
            items = list(enumerate(ranges))
        except MALFORMED:
            raise _At(where, f"expected a list of {SPAN}, got {type_name(ranges)}") from None
        for j, r in items:
            try:
                if r[0] <= n < r[1]:
                    return j
            except MALFORMED:
                if isinstance(ranges, (list, tuple)):
                    raise _span_fault(f"{where}[{j}]", r) from None
                # a string's characters, an object's keys
                raise _At(where, f"expected a list of {SPAN}, got {type_name(ranges)}") from None
        return -1

    return pick


def _full_span(gates: Any) -> bool:
    """Whether ``gates`` is one hash gate holding every bucket: it passes exactly the
    users with a hash value for its ``by`` attributes."""
    if not gates or len(gates) != 1:
        return False
    g = gates[0]
    return bool(g["lo"] == 0 and g["hi"] == g["hash"]["space"])


def _rule_object(rule: Any) -> None:
    """Refuse what the SDK cannot build a rule of when the features are set
    (``FeatureRule(**r)``, for every rule, reached or not): no object, or an object with
    a key that is not text (keyword arguments are text)."""
    if not isinstance(rule, Mapping):
        raise _Refuse("a rule must be an object")
    for key in rule:
        if not isinstance(key, str):
            raise _Refuse(f"key {key!r:.40} is not a string (the SDK cannot build the rule)")


def _text(v: Any, what: str) -> str:
    """A seed, key or namespace the SDK joins to strings: text, or empty for a falsy
    value (the SDK falls back on it); any other value makes the SDK raise TypeError."""
    if not v:
        return ""
    if not isinstance(v, str):
        raise _Refuse(
            f"{what} must be a string, got {type_name(v)} (the SDK raises on it)", at=what
        )
    return v


def _hash_key(v: Any, what: str) -> str:
    """The cfgcore attribute holding the hash string of the attribute GrowthBook hashes by
    (``id`` when null). The SDK reads it with ``attributes.get(v)`` (growthbook 4.0.0
    ``_getOrigHashValue``): a number or boolean is a dict key like a text, found only
    under a number key (:func:`context` derives ``#hash:<key>`` for those, none for JSON's
    text keys); a list or an object raises TypeError there (unhashable)."""
    if v is None:
        return "id" + HASH
    if isinstance(v, str):
        return _hash_name(v) + HASH
    if isinstance(v, (int, float)):  # booleans too
        return HASH_NUM + (_key_text(v) or "nan")  # NaN: no key is found by it
    raise _Refuse(f"{what} must be a string, got {type_name(v)} (the SDK's lookup of "
                  "the user's attribute raises on it)", at=what)  # fmt: skip


def _is_null(attr: str) -> dict[str, Any]:
    """GrowthBook's "null" type: the path holds null or nothing (:func:`context` types
    every value it reaches, null included)."""
    return {"not": {"attr": attr + TYPE, "ne": "null"}}


def _equals(attr: str, v: Any) -> Any:
    """GrowthBook's equality of the value at ``attr`` with the scalar or null ``v``
    (numbers exactly, as cfgcore's ``eq`` compares them; NaN equals nothing)."""
    if v is None:
        return _is_null(attr)
    _check_number(v, attr)
    if isinstance(v, float) and math.isnan(v):
        return _NEVER
    return {"attr": attr, "eq": v}


def _deep_equals(attr: str, expected: list[Any] | dict[str, Any]) -> Any:
    """GrowthBook's literal equality of the value at ``attr`` with the array or object
    ``expected`` (growthbook 4.0.0 ``_strict_deep_equal``, as JavaScript compares the
    JSON text): a list of the same length, or a dict with the same keys in the same
    JavaScript property order (:func:`_object_keys`), whose items are equal in JSON
    type and value (``1`` equals ``1.0``, never ``true``), arrays and objects in them
    item by item. An item that is null, NaN or an infinity equals any of these (the SDK
    compares the items as ``JSON.stringify`` writes them, growthbook 4.0.0
    ``_json_value``: :func:`_json_null`). Refused: a key no path reaches (holding '.')."""
    if isinstance(expected, list):
        tests: list[Any] = [_is_list(attr), {"attr": attr + SIZE, "eq": len(expected)}]
        items: list[tuple[str, Any]] = [(str(i), x) for i, x in enumerate(expected)]
    else:
        keys = _object_keys(expected)
        if keys is None:
            raise _Refuse(f"equality with an object whose keys are no strings at {attr!r}")
        tests = [{"attr": attr + KEYS, "eq": keys}]
        items = list(expected.items())
    for k, x in items:
        if not _readable(k):
            raise _Refuse(f"equality with an object with the key {k!r:.60} at {attr!r}")
        at = f"{attr}.{_name(k)}"
        _check_path(at)
        if isinstance(x, (list, dict)):
            tests.append(_deep_equals(at, x))
        elif x is None or (isinstance(x, float) and not math.isfinite(x)):
            tests.append(_json_null(at))
        elif isinstance(x, (str, int, float)):  # a bool too
            tests.append(_equals(at, x))
        else:
            raise _Refuse(f"equality with {type_name(expected)} holding {type_name(x)} at {attr!r}")
    return _and(*tests)


# the padded version strings (``#vn``) of NaN and the infinities: the numbers JSON writes
# as null. Every finite number's text, and so its padded version, holds a digit.
_NON_FINITE_VN = [padded_version(x) for x in (math.nan, math.inf, -math.inf)]


def _json_null(attr: str) -> Any:
    """The item at ``attr`` of an array or object is null as ``JSON.stringify`` writes
    it, as GrowthBook's literal equality compares items (growthbook 4.0.0
    ``_strict_deep_equal`` of ``_json_value``): null, or a float NaN or infinity. An int
    past a double's range (``#big``) stays a number there, though its text is Infinity.
    The caller has tested that the item exists (the array's size, the object's keys)."""
    non_finite = {"attr": attr + VER_NUM, "in": _NON_FINITE_VN}
    return _any(_is_null(attr), _and(non_finite, _not({"attr": attr + _exact.BIG, "exists": True})))


def _is_list(attr: str) -> dict[str, Any]:
    """The value at ``attr`` is a list (only lists have a ``#size``): the SDK's
    ``$size``, ``$all`` and ``$elemMatch`` answer false for anything else, a set too."""
    return {"attr": attr + SIZE, "exists": True}


def _check_number(v: Any, attr: str) -> None:
    """Refuse a number constant cfgcore cannot hold (an int past a double's range; the
    SDK compares Python ints of any size)."""
    why = _exact.unholdable(v)
    if why is not None:
        raise _Refuse(f"{why} (at {attr!r})")


def _ordered(attr: str, name: str, n: int | float) -> Any:
    """``attr <name> n`` exactly, as the SDK orders Python numbers (see :mod:`_exact`)."""
    if isinstance(n, float) and math.isnan(n):
        return _NEVER  # the SDK: NaN is ordered with nothing
    try:
        return _exact.ordered(attr, name, n)
    except ValueError as exc:
        raise _Refuse(f"{exc} (at {attr!r})") from None


class _NotMembership(Exception):
    """An element condition :func:`_membership_element` does not lower."""


def _membership_element(attr: str, expected: Any, op: str) -> Any:
    """Whether some element of the array at ``attr`` matches ``expected``, as GrowthBook's
    ``$all`` tests each expected value (``evalConditionValue``: a scalar by equality,
    an operator object by its operators) and ``$elemMatch`` its operator object (null
    elements skipped), where that is membership: a scalar, ``{"$eq": scalar}``,
    ``{"$in": [scalars]}`` (``isIn``, which also looks one level into an element that
    is itself an array: ``#inner``) or both. The caller tests that ``attr`` is an array.
    Anything else raises _NotMembership (see :meth:`_Feature.some_element`)."""

    def refuse(what: str) -> _NotMembership:
        return _NotMembership(what)

    if isinstance(expected, Mapping) and all(str(k).startswith("$") for k in expected):
        if not expected:  # no operators: any element passes
            if op == "$elemMatch":
                raise refuse("an empty condition (some element that is not null)")
            return {"attr": attr + SIZE, "gt": 0}
        others = [k for k in expected if k not in ("$eq", "$in")]
        if others:
            raise refuse(f"the operator {others[0]!r}")
        members: dict[str, Any] | None = None
        nested = "$eq" not in expected  # an array element is never $eq to anything
        if "$eq" in expected:
            x = expected["$eq"]
            if x is None and op == "$all":
                raise refuse("'$eq': null (an array holding null)")
            if x is None or isinstance(x, (list, tuple, Mapping)):
                return _NEVER  # null elements are skipped; containers are never ===
            members = _members([x], attr)
        if "$in" in expected:
            values = expected["$in"]
            if not isinstance(values, list):
                return _NEVER
            if not all(isinstance(x, (str, int, float, bool)) for x in values):
                raise refuse("'$in' with values that are not strings, numbers or booleans")
            found = _members(values, attr)
            members = found if members is None else {k: members[k] for k in members if k in found}
        assert members is not None
        if not members:
            return _NEVER
        listed = list(members.values())
        test = {"attr": attr, "has_any": listed}
        return {"any": [test, {"attr": attr + INNER, "has_any": listed}]} if nested else test
    if expected is None:
        raise refuse("null (an array holding null)")
    if isinstance(expected, (list, tuple, Mapping)):
        raise refuse("an object or array (equality with it)")
    if not isinstance(expected, (str, int, float, bool)):
        raise refuse(f"a {type_name(expected)}")
    if op == "$alli" and isinstance(expected, str):
        # growthbook 4.0.0 ``_is_in_all`` with insensitive: a string equals a string
        # element in lower case (operators are not folded)
        return {"attr": attr + LOWER, "has_any": [expected.lower()]}
    members = _members([expected], attr)
    return {"attr": attr, "has_any": list(members.values())} if members else _NEVER


def _members(values: list[Any], attr: str) -> dict[str, Any]:
    """Scalar ``values`` by their membership key (:func:`_member`: the values GrowthBook
    finds equal share one, which ``has_any`` finds equal too), the first of each; NaN
    has none."""
    for x in values:
        _check_number(x, attr)
    found: dict[str, Any] = {}
    for x in values:
        k = _member(x)
        if k is not None:
            found.setdefault(k, x)
    return found


def _membership_of(attr: str, op: str, values: list[Any], fold: bool) -> Any:
    """:func:`_membership` of the operator ``op``'s value list, checked. As growthbook
    4.0.0's ``isIn``: an array or object in the list equals nothing (it compares them
    as JavaScript's ``===``, by reference), and null is found for a null or missing
    value and in an array holding null."""
    scalars = [x for x in values if isinstance(x, (str, int, float, bool))]
    for x in values:
        if x is not None and not isinstance(x, (str, int, float, bool, list, dict)):
            raise _Refuse(f"'{op}' with {type_name(x)} among its values at {attr!r}")
    for x in scalars:
        _check_number(x, attr)
        if not fold and isinstance(x, float) and math.isnan(x):
            # isIn's ``in`` tests identity first: NaN is found where the attribute is
            # this very object (json.loads gives one NaN object for all), else never
            # ($ini's folded copy finds it never)
            raise _Refuse(
                f"'{op}' with NaN among its values at {attr!r}: GrowthBook's SDK finds it "
                "only for the very same NaN object (Python's 'in'), which no condition "
                "can tell"
            )
    scalars = [x for x in scalars if not (isinstance(x, float) and math.isnan(x))]
    test = _membership(attr, scalars, fold)
    if any(x is None for x in values):
        test = _any(test, _is_null(attr), {"attr": attr + NULLS, "exists": True})
    return test


def _membership(attr: str, values: list[Any], fold: bool) -> Any:
    """GrowthBook's ``isIn``: a scalar among ``values``, or an array sharing an element
    with them (``has_any``: one attribute read, however long the list or saved group;
    ``fold``: strings compared in lower case, as ``$ini`` does)."""
    tests: list[Any] = []
    if fold:
        lowered = list(dict.fromkeys(x.lower() for x in values if isinstance(x, str)))
        others = [x for x in values if not isinstance(x, str)]
        if lowered:
            tests.append({"attr": attr + LOWER, "in": lowered})
            tests.append({"attr": attr + LOWER, "has_any": lowered})
    else:
        others = values
    if others:
        tests.append({"attr": attr, "in": others})
        members = _members(others, attr)
        if members:
            tests.append({"attr": attr, "has_any": list(members.values())})
    return {"any": tests} if tests else _NEVER


def _logical_items(key: str, value: Any) -> list[Any] | None:
    """The conditions GrowthBook's SDK iterates for ``$or``/``$nor``/``$and`` of
    ``value``, or None where it raises before the first (growthbook 4.0.0 ``_eval_or``
    takes ``len()`` of it, ``_eval_and`` iterates it: null, a boolean or a number raise).
    An empty string or object is iterated as an empty list; a non-empty one's items
    (characters, keys) are no conditions: the first one raises."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, (str, Mapping)):
        return [] if not value else None
    if value is None or isinstance(value, (bool, int, float)):
        return None
    raise _Refuse(f"{key}: expected a list of conditions, got {type_name(value)}")


def _kleene(parts: list[tuple[Any, Any]], conj: bool) -> tuple[Any, Any]:
    """(value, false) of the (value, false) ``parts`` joined by and (``conj``) or by or,
    in GrowthBook's three values: and is true where all are, false where one is, unknown
    elsewhere; or is true where one is, false where all are. ``false`` None: two values
    (false where ``value`` does not hold), kept so where every part has two."""
    values = [v for v, _ in parts]
    if all(f is None for _, f in parts):
        return (_and(*values) if conj else _any(*values)), None
    falses = [_not(v) if f is None else f for v, f in parts]
    if conj:
        return _and(*values), _any(*falses)
    return _any(*values), _and(*falses)


def _negated(value: Any, false: Any) -> tuple[Any, Any]:
    """(value, false) of GrowthBook's ``$not``: true where false, false where true,
    unknown where unknown."""
    if false is None:
        return _not(value), None
    return false, value


def _in_order(parts: Any, conj: bool) -> tuple[Any, Any, Any]:
    """(value, false, raises) of evaluating ``parts`` (thunks returning them) in
    order as GrowthBook does: an and (a condition's entries, ``$and``) stops at the
    first false one, an or (``$or``) at the first true one. A part is evaluated where
    the ``value`` of every part before it lets evaluation go on; where one of those
    raises, the whole condition is false anyway (see ``_Feature._evaluated``). Parts
    after one that decides for everyone, or raises for everyone it is reached by, are
    never evaluated, so nothing of them is lowered (or refused)."""
    values: list[tuple[Any, Any]] = []
    links: list[tuple[list[Any], Any]] = []  # (go past these parts, then this one raises)
    go_on: list[Any] = []  # what lets evaluation go past each part since the last link
    surely_reached = True  # every part so far lets everyone go on
    for part in parts:
        found, false, raises = part()
        if raises != _NEVER:
            links.append((go_on, raises))
            go_on = []
        values.append((found, false))
        # an unknown part does not decide: an and goes on past it as past a true one
        go_on.append((found if false is None else _not(false)) if conj else _not(found))
        if go_on[-1] == _NEVER or (raises == _ALWAYS and surely_reached):
            break
        surely_reached = surely_reached and go_on[-1] == _ALWAYS
    return *_kleene(values, conj), _reached(links)


def _reached(links: list[tuple[list[Any], Any]]) -> Any:
    """Where some link's part raises and evaluation gets to it: the first link's
    ``before`` all hold and its part raises, or the second's ``before`` hold too and
    its part raises, ... Split in halves (the first half raises, or it is passed and
    the second raises), so each part's value is written O(log n) times and nests
    O(log n) levels, not n (a chain) nor n times (one conjunction per link)."""
    if not links:
        return _NEVER
    if len(links) == 1:
        before, raises = links[0]
        return _and(*before, raises)
    half = len(links) // 2
    passed = [g for before, _ in links[:half] for g in before]
    return _any(_reached(links[:half]), _and(*passed, _reached(links[half:])))


def _and(*conds: Any) -> Any:
    items = [c for c in conds if c != _ALWAYS]
    if any(c == _NEVER for c in items):
        return _NEVER
    if not items:
        return _ALWAYS
    return items[0] if len(items) == 1 else {"all": items}


def _any(*conds: Any) -> Any:
    """Any of ``conds`` (at least one), folded as :func:`_and` folds: a condition that
    holds for everyone makes the whole one hold (so a rule under it is known to serve
    everyone, see :meth:`_Feature.lower`)."""
    items = [c for c in conds if c != _NEVER]
    if any(c == _ALWAYS for c in items):
        return _ALWAYS
    if not items:
        return _NEVER
    return items[0] if len(items) == 1 else {"any": items}


def _not(cond: Any) -> Any:
    if cond == _ALWAYS:
        return _NEVER
    if cond == _NEVER:
        return _ALWAYS
    return {"not": cond}
