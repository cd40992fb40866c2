"""Import an Unleash client features payload into a cfgcore snapshot.

>>> from cfgcore import Engine
>>> from cfgcore.interop import unleash
>>> payload = {"version": 1, "features": [{"name": "checkout", "enabled": True,
...     "strategies": [{"name": "flexibleRollout",
...                     "parameters": {"rollout": "100", "groupId": "checkout"}}]}]}
>>> engine = Engine.from_snapshot(unleash.to_snapshot(payload))
>>> engine.is_enabled("checkout", unleash.context({"userId": "42"}))
True

What is lowered (Unleash client specification v6, ``/api/client/features``):

* features with ``enabled``, ``strategies`` (``default``, ``userWithId``,
  ``gradualRolloutUserId``, ``gradualRolloutSessionId``, ``gradualRolloutRandom``,
  ``flexibleRollout``, ``remoteAddress``; an unknown strategy is never enabled, as in
  Unleash), strategy ``constraints`` and ``segments``, feature and strategy
  ``variants`` (weights, stickiness, overrides, payloads), ``dependencies`` (enabled,
  disabled, variant lists), and delta-API event lists (``{"events": [...]}``);
* every constraint operator: ``IN``/``NOT_IN``, ``STR_*``, ``NUM_*``, ``DATE_*``,
  ``SEMVER_*``, ``REGEX`` and ``IN_CIDR``, with ``inverted`` and
  ``caseInsensitive``. An unknown operator never matches (Unleash's rule).

Each Unleash feature becomes one cfgcore flag whose variants are the Unleash
variants (value: the dict ``getVariant`` returns, ``name``/``enabled``/
``feature_enabled``/``payload``) plus ``on`` (enabled, no variant) and ``off``
(disabled). ``engine.is_enabled`` answers ``isEnabled``; ``engine.evaluate(...).value``
is ``getVariant``. Rollouts and variant choice use Unleash's own bucketing
(MurmurHash3 of ``groupId:stickiness``, seed 0 modulo 100 for rollouts, seed
86028157 modulo the total weight for variants).

Numbers, dates and IP addresses are compared on attributes that :func:`context`
derives from each context field (``<field>#num``, ``<field>#date``, ``<field>#ip``,
``<field>#semver``),
so build contexts with :func:`context`.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import math
import re
import secrets
import sys
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timezone
from fractions import Fraction
from typing import Any, Literal

from cfgcore import _regex, _unicode_tables
from cfgcore._lower import MAX_REGEX_INPUT
from cfgcore._regex import class_ranges
from cfgcore.compiler import compile_regex, semver_key
from cfgcore.errors import Problem, child_key_path
from cfgcore.interop import MALFORMED, InteropError, malformed, type_name
from cfgcore.interop._derived import DerivedAttributes, SnapshotNames, read_names
from cfgcore.interop._escaped_names import ESCAPED_HASH, escape_name, split_derived
from cfgcore.interop._hashing import UNLEASH_VARIANT_SEED
from cfgcore.interop._plain import leaving_out, plain_dict, plain_key, plain_pairs
from cfgcore.snapshot import Snapshot, snapshot_from_dict

__all__ = ["DISABLED", "context", "get_variant", "to_snapshot"]

# getVariant's answer when the feature is off, unknown or its dependencies fail.
DISABLED = {"name": "disabled", "enabled": False, "feature_enabled": False}
_ENABLED_NO_VARIANT = {"name": "disabled", "enabled": False, "feature_enabled": True}

RANDOM = "#random"  # context attribute holding a per-context random stickiness value
# + JSON [name, pattern, case-insensitive]: a REGEX searched in a value longer than
# MAX_REGEX_INPUT (see _LongValues)
SEARCH = "#search:"
# + JSON [name, operator, constant]: a SEMVER constraint on a version longer than
# MAX_SEMVER_TEXT, which cfgcore's semver tests do not read (see _LongValues)
SEMCMP = "#semcmp:"
MAX_SEMVER_TEXT = 256  # cfgcore's semantic versions (cfgcore._lower.semver_key)
_TOP_LEVEL = ("userId", "sessionId", "remoteAddress", "environment", "appName", "currentTime")
# Stickiness "default": Unleash client specification README ("Stickiness").
_ROLLOUT_DEFAULT = ["userId", "sessionId", RANDOM]
# Variants too: yggdrasil reads no remoteAddress for them (cfgcore did, after sessionId).
_VARIANT_DEFAULT = ["userId", "sessionId", RANDOM]
_NEVER: dict[str, Any] = {"any": []}  # a condition that never matches
_ABSENT = object()


# -- context ------------------------------------------------------------------------------
def context(
    ctx: Mapping[str, Any] | None = None, *, now: float | None = None, engine: Any = None
) -> dict[str, Any]:
    """Map an Unleash context to cfgcore attributes.

    ``properties`` are flattened beside the top-level fields (a top-level field wins,
    as a constraint's ``contextName`` looks there first). A name holding ``#`` is
    written with ``#!`` (``{"a#num": 5}`` is the attribute ``a#!num``), as the importer
    writes the fields constraints, stickiness and overrides read, so that no property
    stands for a key derived below. For each string value the
    derived ``#num``/``#date``/``#ip`` attributes used by numeric, date and CIDR
    constraints are added, and ``#lower`` (its text in lower case) used by
    ``caseInsensitive`` string constraints; ``currentTime`` defaults to ``now``
    (epoch seconds, the clock if None); ``#random`` is a fresh random stickiness
    value, used where Unleash falls back to a random one. A boolean or a number reads
    as Python's text of it (``True`` as "True", ``5.0`` as "5.0", ``1e20`` as
    "1e+20"), and so does any other value (a list as its Python text), as the Python
    SDK (UnleashClient) gives its values to its engine; a top-level field that is not
    one of Unleash's own is read as a property, as there (before a property of that
    name).

    A ``datetime`` reads as its ``isoformat()`` text, as UnleashClient sends it, so a
    naive one (no UTC offset) is no date to ``DATE_*`` constraints, as there.

    A field or property given as ``None`` is the text "None", as UnleashClient sends it:
    ``IN ["None"]`` matches it, ``NOT_IN`` lists without it match, and a ``userId`` of
    None is one user, "None", to stickiness (not a missing id falling back to
    ``sessionId`` or a random value). Leave a field out for "no value". A
    ``currentTime`` of None is "None" too (no date; date constraints do not match).

    The context and its ``properties`` are read as given, while their methods answer.
    Where a method of the application's own type raises (an :class:`Exception`: a
    ``dict`` subclass's ``items`` or ``get``, a ``str`` subclass name's ``__str__``),
    context() reads them again as the evaluators read a mapping: a ``dict`` subclass
    by the items it stores, another mapping through its ``items()`` (none if that
    raises), a ``str``, ``int`` or ``float`` subclass name as its exact value. A value
    is its ``str()`` either way, as above; a value with no ``str()`` (one whose
    ``__str__`` raises) is left out, as if not given, and so is any field or property
    context() still cannot read. So context() raises no Exception (an interrupt
    propagates); a wrong ``now`` or ``engine`` still raises.

    ``engine``: the engine that checks the context (anything with a ``source``
    snapshot) or the :class:`~cfgcore.snapshot.Snapshot` the features were imported to.
    Only the fields and properties that snapshot's constraints, stickiness and
    overrides read are then put, each with only the derived keys read of it (``#num``,
    ``#date``, ``#ip``, ``#semver``, ``#lower``), with the same answers for that
    snapshot's features: a context of 40 properties costs the few read. Build the
    context for each check (or request): one built for a snapshot may lack what another
    reads (an engine given is read at each call, so a reload is followed). None (the
    default): every field and property is put, with all its derived keys.
    """
    try:
        return _context(ctx, now, None if engine is None else _engine_reads(engine))
    except Exception:  # noqa: BLE001 - an application's value whose own method raised
        pass  # (read again below, outside this handler: no chained traceback)
    # The careful reading (cfgcore.interop._plain): names plain, values as given.
    now = plain_key(now)  # (a float subclass: its value)
    fields = [
        (k, plain_dict(v, values=False) if type(k) is str and k == "properties" else v)
        for k, v in plain_pairs(ctx, values=False)
    ]
    reads = None if engine is None else _engine_reads(engine)
    return leaving_out(lambda some: _context(dict(some), now, reads), fields)


def _engine_reads(engine: Any) -> dict[str, set[str]] | None:
    """The keys the snapshot of context()'s ``engine`` reads, by name (see _Reads)."""
    reads = _snapshot_reads(engine)
    if isinstance(reads, _Reads):
        return reads.tree
    if reads == ():  # an engine without a snapshot yet: it reads nothing
        return {}
    raise TypeError("engine: an engine or a Snapshot")


class _Reads:
    """The keys of :func:`context` a snapshot imported from Unleash reads: by field or
    property name, the suffixes read of it (``#num``, ``""`` for the value itself).
    ``#random`` and the clock's keys are always written. ``tree`` is None where some
    key is none context() writes (the snapshot is taken to read all)."""

    __slots__ = ("tree",)

    def __init__(self, snapshot: Snapshot) -> None:
        self.tree = _read_tree(read_names(snapshot))


def _read_tree(names: frozenset[str] | None) -> dict[str, set[str]] | None:
    """:class:`_Reads`'s ``tree`` of the keys ``names``, or None."""
    if names is None:
        return None
    tree: dict[str, set[str]] = {}
    for name in names:
        if name == RANDOM:
            continue
        if name.startswith((SEARCH, SEMCMP)):  # reads the value itself (_LongValues)
            tree.setdefault(json.loads(name[len(SEARCH) :])[0], set()).add("")
            continue
        if name.startswith("#") and not name.startswith(ESCAPED_HASH):
            return None  # no key context() writes: read everything, as without a snapshot
        key, suffix = split_derived(name)
        tree.setdefault(key, set()).add(suffix)
    return tree


# Unleash's engine= option: what a snapshot reads (_Reads)
_snapshot_reads = SnapshotNames("engine", _Reads, names=False)


def _context(
    ctx: Any, now: float | None, reads: dict[str, set[str]] | None = None
) -> dict[str, Any]:
    """:func:`context` of the fields as given; ``reads``: the names and suffixes to put
    alone (see _Reads), None for all."""
    ctx = ctx or {}
    out: dict[str, Any] = {}
    long = False  # some value longer than MAX_REGEX_INPUT (a REGEX searches it whole)
    props = ctx.get("properties")
    # UnleashClient also reads a top-level field that is not Unleash's own as a
    # property, and its engine reads it before a property of that name
    custom = dict(props) if isinstance(props, Mapping) else {}
    # UnleashClient sends a None value as the text "None" (its str()): kept, not dropped
    for k, v in ctx.items():
        if k not in _TOP_LEVEL and k != "properties":
            custom[k] = v
    for k, v in custom.items():
        # '#' in a name is written '#!', as the importer writes the fields it reads: no
        # property ("a#semver") stands for a key derived below (cfgcore.interop._escaped_names)
        k = str(k)
        k = k if "#" not in k else escape_name(k)
        if reads is None or k in reads:
            out[k] = v
    for k in _TOP_LEVEL:
        v = ctx.get(k, _ABSENT)
        if v is not _ABSENT and (reads is None or k in reads):
            out[k] = v
    for k, v in list(out.items()):
        want = None if reads is None else reads[k]  # the suffixes read of k (None: all)
        if isinstance(v, str) and type(v) is not str:
            # a str subclass: its str(), as UnleashClient sends it (its own methods,
            # which may do anything, are not called again)
            v = _py_text(v)
            if v is None:
                del out[k]
                continue
            out[k] = v
        if isinstance(v, datetime):
            # UnleashClient sends a datetime as its isoformat() text, which its engine
            # reads as any text: a naive one (no offset) is no date there
            try:
                v = v.isoformat()
            except Exception:  # noqa: BLE001 - a subclass's; no text, as below
                del out[k]
                continue
            if type(v) is not str:
                del out[k]
                continue
            out[k] = v
        elif not isinstance(v, str):
            # the Python SDK (UnleashClient) gives its engine each context value as
            # Python's str() of it: True is the text "True", not JSON's "true"
            text = _py_text(v)
            if text is None:  # no text (an int past 4,300 digits, a cyclic list)
                del out[k]
                continue
            out[k] = text
            if isinstance(v, bool):
                if want is None or "#lower" in want:
                    out[f"{k}#lower"] = text.lower()
                continue
            if isinstance(v, (int, float)):
                out[f"{k}#num"] = v
                if want is None or "#lower" in want:
                    out[f"{k}#lower"] = text.lower()
                continue
            v = text  # any other value: its text, read as a string is
        if len(v) > MAX_REGEX_INPUT or (len(v) > MAX_SEMVER_TEXT and v[:1].isdigit()):
            long = True
        # caseInsensitive STR_* constraints: yggdrasil compares both texts in lower case
        # (Rust's to_lowercase, which is Python's lower(): "ß" is no "ss" there)
        if want is None or "#lower" in want:
            out[f"{k}#lower"] = v.lower()
        if want is None or "#num" in want:
            num = _number(v)
            if num is not None:
                out[f"{k}#num"] = num
        if want is None or "#date" in want:
            date = _date(v)
            if date is not None:
                out[f"{k}#date"] = date
        if want is None or "#ip" in want:
            ip = _ip_bits(v)
            if ip is not None:
                out[f"{k}#ip"] = ip
        if (want is None or "#semver" in want) and v[:1].isdigit() and _version_ok(v):
            out[f"{k}#semver"] = v  # Unleash: strict SemVer, no leading "v"
    if "currentTime" not in ctx:
        # no currentTime: Unleash reads the clock, and its text for string operators
        t = time.time() if now is None else float(now)
        out["currentTime#date"] = t
        out["currentTime"] = clock = _clock_text(t)
        out["currentTime#lower"] = clock.lower()
    out[RANDOM] = secrets.token_hex(8)
    return _LongValues(out) if long else out


class _LongValues(DerivedAttributes):
    """context()'s attributes where a value is longer than cfgcore's tests read, which
    yggdrasil reads whole. The importer also tests, and this mapping answers when an
    evaluator reads them (both read a mapping that is not an exact dict through
    ``get()``):

    * ``#search:[name, pattern, case-insensitive]``, a REGEX, for a value longer than
      MAX_REGEX_INPUT (the bound of ``matches``): the pattern the import accepted,
      searched in the whole value;
    * ``#semcmp:[name, operator, constant]``, a SEMVER constraint, for a version longer
      than MAX_SEMVER_TEXT (the bound of the ``semver_*`` tests): compared by SemVer
      precedence (:func:`_long_semver_key`)."""

    def get(self, key: Any, default: Any = None) -> Any:
        if isinstance(key, str) and key.startswith((SEARCH, SEMCMP)):
            try:
                if key.startswith(SEARCH):
                    found = self.derive(key[len(SEARCH) :])
                else:
                    found = self._compare(key[len(SEMCMP) :])
            except Exception:  # never raise on the hot path: no answer is a missing value
                found = None
            return default if found is None else found
        return dict.get(self, key, default)

    def derive(self, spec: str) -> bool | None:
        name, pattern, ci = json.loads(spec)
        value = dict.get(self, name)
        if not isinstance(value, str) or len(value) <= MAX_REGEX_INPUT:
            return None  # ``matches`` on the value itself answers
        return _compiled(pattern, bool(ci)).search(value) is not None

    def _compare(self, spec: str) -> bool | None:
        name, op, constant = json.loads(spec)
        value = dict.get(self, name)
        if not isinstance(value, str) or len(value) <= MAX_SEMVER_TEXT:
            return None  # the semver tests on ``<name>#semver`` answer
        a, b = _long_semver_key(value), _long_semver_key(constant)
        if a is None or b is None:
            return False  # no version: Unleash's constraint does not match
        return {
            "SEMVER_EQ": a == b,
            "SEMVER_GT": a > b,
            "SEMVER_LT": a < b,
            "SEMVER_GTE": a >= b,
            "SEMVER_LTE": a <= b,
        }.get(op)


_SEMVER_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-")


def _long_semver_key(text: str) -> tuple | None:
    """SemVer 2.0 precedence of a version of any length, as yggdrasil orders the
    versions it reads (strict SemVer, no "v", parts within 64 bits; build metadata
    ignored), or None for no such version. The order of cfgcore's
    :func:`~cfgcore._lower.semver_key`, read in linear time without its length bound;
    a numeric pre-release identifier (no leading zero) orders by its length, then its
    digits: its value, past Python's int digits too."""
    main, plus, build = text.partition("+")
    if plus and not all(p and _SEMVER_CHARS.issuperset(p) for p in build.split(".")):
        return None
    core, dash, pre = main.partition("-")
    parts = core.split(".")
    if len(parts) != 3:
        return None
    nums = []
    for p in parts:
        if not (p.isascii() and p.isdigit()) or (p[0] == "0" and p != "0") or len(p) > 20:
            return None
        nums.append(int(p))
        if nums[-1] > _U64:
            return None
    if not dash:
        return (*nums, (1,))
    tail: list[tuple[int, int, str]] = []
    for p in pre.split("."):
        if not p or not _SEMVER_CHARS.issuperset(p):
            return None
        if p.isdigit():
            if p[0] == "0" and p != "0":
                return None
            tail.append((0, len(p), p))
        else:
            tail.append((1, 0, p))
    return (*nums, (0, *tail))


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str, ci: bool) -> Any:
    return compile_regex(pattern, ci)


def _py_text(v: Any) -> str | None:
    """Python's ``str(v)``, as UnleashClient gives it to its engine; None where there
    is none (an int past Python's digit limit, a list nested past the recursion limit,
    a ``__str__`` that raises): a context is read, never refused."""
    try:
        text = str(v)
    except Exception:  # noqa: BLE001 - any value a caller holds
        return None
    return text if type(text) is str else None


_NUMERIC_START = frozenset("0123456789+-.iI")
_IP_CHARS = re.compile(r"[0-9A-Fa-f:.]+")
# What yggdrasil (the engine of UnleashClient and the other non-JavaScript SDKs) reads,
# found by probing it (tests/test_audit2_interop_unleash.py holds the cases):
# a context value as Rust's f64 does (no surrounding whitespace, "inf"/"infinity" in any
# case, no "_" or hex; NaN is no number to compare) ...
_CTX_NUMBER = re.compile(
    r"[+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity)", re.I | re.ASCII
)  # (ASCII digits: Rust reads no other as a number)
# ... a constraint's number after trimming, only digits first ("5." but not ".5"; an
# exponent past a double's range is Infinity) ...
_CONSTRAINT_NUMBER = re.compile(r"[+-]?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?", re.ASCII)
# ... a context date as Rust's chrono reads a DateTime (its relaxed RFC 3339: the
# date's and time's numbers of one or two digits, a year of up to four digits or signed
# and of any length, whitespace around the numbers and before the offset, "t"/"T"/" "
# between, a fraction of any length (nanoseconds kept), a leap second ":60", "z",
# "UTC" in any case or an offset of hours and minutes with or without ":", "-" or
# U+2212 MINUS SIGN; whitespace being Unicode's White_Space, as Rust's) ...
_SPACE = r"\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_WS = f"[{_SPACE}]*"
_CTX_DATE = re.compile(
    rf"{_WS}([+-]\d+|\d{{1,4}}){_WS}-{_WS}(\d{{1,2}}){_WS}-{_WS}(\d{{1,2}})[Tt ]"
    rf"{_WS}(\d{{1,2}}){_WS}:{_WS}(\d{{1,2}}){_WS}:{_WS}(\d{{1,2}})(?:\.(\d+))?{_WS}"
    rf"(?:(?i:utc)|[Zz]|([+\-\u2212])(\d\d)[:{_SPACE}]*([0-5]\d)){_WS}",
    re.ASCII,
)
# the instants chrono holds: -262143-01-01T00:00:00Z to +262142-12-31T23:59:59.999999999Z
_CHRONO_YEARS = (-262143, 262142)
# ... and a constraint's date, trimmed, with "T", "Z" and milliseconds or no fraction.
_CONSTRAINT_DATE = re.compile(
    r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d{3}))?(Z|[+-]\d{2}:\d{2})",
    re.ASCII,
)
_U64 = 2**64 - 1  # yggdrasil's version parts


_clock_cache: tuple[int, str] = (-1, "")


def _clock_text(t: float) -> str:
    """``t`` as yggdrasil writes the clock for string operators (whole seconds, UTC)."""
    global _clock_cache
    try:
        sec = math.floor(t)
        cached = _clock_cache
        if cached[0] != sec:  # one formatting per second, not per context
            text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sec))
            cached = _clock_cache = (sec, text)
    except (ValueError, OverflowError, OSError):  # a clock past any date (now=1e300, NaN)
        return ""
    return cached[1]


def _number(text: str) -> float | None:
    """A context value's number as yggdrasil reads it (None: not a number)."""
    if not text or text[0] not in _NUMERIC_START or not _CTX_NUMBER.fullmatch(text):
        return None  # the first test is a cheap rejection: a context is mapped per request
    return float(text)


def _constraint_number(value: Any) -> float | None:
    text = str(value).strip()
    return float(text) if _CONSTRAINT_NUMBER.fullmatch(text) else None


def _epoch_of(dt: datetime) -> float:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def _parse_date(m: re.Match[str] | None) -> float | None:
    if m is None:
        return None
    day, clock, frac, zone = m.groups()
    zone = "+00:00" if zone in ("Z", "z") else zone
    frac = ((frac or "") + "000000")[:6]  # microseconds, as datetime holds them
    shift = 0.0
    if day.startswith("0000"):  # year 0 (1 BC) is no datetime: read it 400 years later,
        day, shift = "0400" + day[4:], 146097 * 86400.0  # a whole Gregorian cycle
    try:
        return _epoch_of(datetime.fromisoformat(f"{day}T{clock}.{frac}{zone}")) - shift
    except ValueError:  # no such day or time (2024-02-30, 24:00:00, a leap second)
        return None


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days from 1970-01-01 to the proleptic Gregorian date ``y-m-d`` (any year)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_CHRONO_MIN = _days_from_civil(_CHRONO_YEARS[0], 1, 1) * 86400
_CHRONO_MAX = _days_from_civil(_CHRONO_YEARS[1], 12, 31) * 86400 + 86399


def _date(text: str) -> float | None:
    """A context value's date as yggdrasil reads it (None: not a date), in epoch
    seconds placed for DATE_* constraints (whole milliseconds): a date past a whole
    millisecond (yggdrasil keeps nanoseconds) half a millisecond past it, a leap
    second (":60", after every other time of its minute's last second) a quarter of a
    millisecond before the next second."""
    if len(text) < 12 or text.lstrip()[:1] not in _DATE_START:
        return None  # a cheap rejection: a context is mapped per request
    m = _CTX_DATE.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second, frac, sign, oh, om = m.groups()
    digits = year.lstrip("+-").lstrip("0")
    if len(digits) > 6:  # past chrono's years (and no int() of a long text)
        return None
    y = -int(digits or "0") if year[0] == "-" else int(digits or "0")
    mo, d = int(month), int(day)
    h, mi, sec = int(hour), int(minute), int(second)
    if not (_CHRONO_YEARS[0] <= y <= _CHRONO_YEARS[1] and 1 <= mo <= 12):
        return None
    leap_year = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    if not 1 <= d <= _MONTH_DAYS[mo - 1] + (mo == 2 and leap_year):
        return None
    if h > 23 or mi > 59 or sec > 60:
        return None
    offset = 0
    if sign is not None:
        offset = int(oh) * 3600 + int(om) * 60
        if offset >= 86400:
            return None
        if sign != "+":
            offset = -offset
    secs = _days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + min(sec, 59) - offset
    if not _CHRONO_MIN <= secs <= _CHRONO_MAX:
        return None
    if sec == 60:
        micros = 999_750
    else:
        ns = (frac or "")[:9].ljust(9, "0")
        micros = int(ns[:3]) * 1000 + (500 if int(ns[3:]) else 0)
    return (secs * 1_000_000 + micros) / 1_000_000


_DATE_START = frozenset("0123456789+-")


def _version_ok(text: str) -> bool:
    """Strict SemVer (no "v") whose numbers fit yggdrasil's 64 bits."""
    if not text[:1].isdigit() or semver_key(text) is None:
        return False
    core = re.split(r"[-+]", text, maxsplit=1)[0]
    return all(int(p) <= _U64 for p in core.split("."))


def _ip_bits(text: str) -> str | None:
    """An IP address as ``4:`` or ``6:`` and its bits, so a CIDR is a prefix test."""
    if not _IP_CHARS.fullmatch(text):  # yggdrasil reads the value as it is, untrimmed
        return None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    return f"{ip.version}:" + format(int(ip), f"0{ip.max_prefixlen}b")


def get_variant(engine: Any, name: str, ctx: Any = None) -> dict[str, Any]:
    """Unleash's ``getVariant`` on an engine serving an imported snapshot (a plain dict;
    the disabled variant for an unknown flag)."""
    details = engine.evaluate(name, ctx)
    if details.error_code is not None or not isinstance(details.value, Mapping):
        return dict(DISABLED)
    return dict(details.value)


# -- import -------------------------------------------------------------------------------
def to_snapshot(
    payload: Mapping[str, Any],
    *,
    on_error: Literal["raise", "skip"] = "raise",
    source: str | None = None,
    source_paths: dict[str, str] | None = None,
    value_paths: dict[str, dict[str, str]] | None = None,
) -> Snapshot:
    """Lower an Unleash client features payload (or a delta-API event list) to a Snapshot.

    With ``on_error="raise"`` it raises :class:`~cfgcore.interop.InteropError` listing
    every feature and construct that cannot be lowered; with ``"skip"`` such features
    (and the features that depend on them) are left out and listed, with the reason, in
    the snapshot's ``metadata["refused"]`` (what a command-line import reports).
    A ``source_paths`` dict given is filled with each feature's key path in
    ``payload`` (``features[3]``, ``events[0].features[2]``), lowered or refused; a
    ``value_paths`` dict, with each lowered feature's variants made from an Unleash
    variant and that variant's key path (``features[3].variants[1]``).

    Problems name the payload's own key paths, which the file holding it has
    (``features[1].enabled``, ``events[0].features[2].strategies[0]``): a feature's name
    is no key of the payload. Raised, each problem also names its feature (``(feature
    'b')``); skipped, ``metadata["refused"]`` lists the reasons by feature name.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError("on_error must be 'raise' or 'skip'")
    try:
        features, segments = _resolve_payload(payload)
    except _Malformed as exc:
        raise InteropError([Problem(exc.path, exc.message, file=source)]) from None
    imp = _Importer(segments, source)
    flags: dict[str, Any] = {}
    named: list[tuple[str, Mapping[str, Any], str]] = []  # (name, feature, key path)
    refused: dict[str, str] = {}  # feature (or its position) -> the first problem's text
    owners: list[str | None] = []  # the feature each problem is about, by position

    def refuse(key: str, start: int, owner: str | None = None) -> None:
        owners.extend([owner] * (len(imp.problems) - len(owners)))
        if len(imp.problems) > start and key not in refused:
            p = imp.problems[start]
            refused[key] = f"{p.path}: {p.message}"

    for feat, where in features:
        start = len(imp.problems)
        name = feat.get("name") if isinstance(feat, Mapping) else None
        if source_paths is not None:  # (a feature without a name is listed by its path)
            source_paths[name if isinstance(name, str) else where] = where
        if not isinstance(feat, Mapping):
            imp.problem(where, f"expected an object, got {type_name(feat)}")
            refuse(where, start)
            continue
        if not isinstance(name, str):
            imp.problem(where, f"a feature without a name: {feat!r:.80}")
            refuse(where, start)
            continue
        try:
            flags[name] = imp.feature(name, feat, where)
        except _Malformed as exc:
            imp.problem(exc.path, exc.message)
            refuse(name, start, name)
            continue
        except MALFORMED as exc:  # a wrong-typed value deeper inside the feature
            imp.problem(where, malformed(exc))
            refuse(name, start, name)
            continue
        named.append((name, feat, where))
    imp.has_dependencies = {name: bool(f.get("dependencies")) for name, f, _ in named}
    for name, feat, where in named:
        if feat.get("dependencies"):
            start = len(imp.problems)
            try:
                imp.dependencies(name, feat["dependencies"], flags, where)
            except MALFORMED as exc:
                imp.problem(f"{where}.dependencies", malformed(exc))
            refuse(name, start, name)
    if imp.problems and on_error == "raise":
        # named by the payload's key path, and by whose feature it is in its own words
        owners.extend([None] * (len(imp.problems) - len(owners)))
        raise InteropError(
            [
                p if who is None else replace(p, message=f"{p.message} (feature {who!r:.60})")
                for p, who in zip(imp.problems, owners, strict=True)
            ]
        )
    # a feature whose parent was refused would answer without it: refused too
    changed = True
    while changed:
        changed = False
        for name, feat, _ in named:
            if name in refused:
                continue
            for d in feat.get("dependencies") or []:
                parent = d.get("feature") if isinstance(d, Mapping) else None
                if isinstance(parent, str) and parent in refused:
                    refused[name] = f"depends on the refused feature {parent!r}"
                    changed = True
                    break
    if value_paths is not None:
        for name, _, _ in named:
            if name not in refused:
                value_paths[name] = dict(imp.variant_sources[name])
    meta: dict[str, Any] = {"imported_from": "unleash"}
    if refused:
        meta["refused"] = refused
    snap = {
        "flags": {k: v for k, v in flags.items() if k not in refused},
        "segments": imp.segments_out,
        "metadata": meta,
    }
    return snapshot_from_dict(snap, file=source)


# -- regular expressions: yggdrasil runs Rust's regex crate, cfgcore RE2 (or Python's re) --
# Rust's \d, \w and \s are Unicode classes (RE2's are ASCII): written out explicitly,
# from cfgcore's Unicode tables (one Unicode version, the same on every Python; see
# cfgcore._unicode_tables). \d is Nd; \s is White_Space; \w is Alphabetic, marks, Nd, Pc
# and Join_Control. Source: the regex crate's syntax documentation and Unicode's
# PropList.txt.
_WHITE_SPACE = frozenset(
    [0x9, 0xA, 0xB, 0xC, 0xD, 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028,
     0x2029, 0x202F, 0x205F, 0x3000]
)  # fmt: skip
_RUST_CLASSES: dict[str, str] = {}
_RUST_ONLY_FLAGS = re.compile(r"\(\?[imsUxR-]*[xR][imsUxR-]*[:)]")  # RE2 has no x, R


def _rust_test(kind: str, o: int) -> bool:
    if kind == "s":
        return o in _WHITE_SPACE
    return _unicode_tables.contains("rust_" + kind, o)


def _rust_class(kind: str) -> str:
    """The inside of a character class matching what Rust's ``\\<kind>`` matches."""
    if kind not in _RUST_CLASSES:
        if kind == "s":
            _RUST_CLASSES[kind] = class_ranges(lambda o: o in _WHITE_SPACE)
        else:
            ranges = list(_unicode_tables.ranges("rust_" + kind))
            _RUST_CLASSES[kind] = _regex.ranges_class(ranges)[1:-1]
    return _RUST_CLASSES[kind]


def _word_ranges() -> list[tuple[int, int]]:
    """Rust's \\w as code point ranges (computed once)."""
    if not _WORD_RANGES:
        _WORD_RANGES.append(list(_unicode_tables.ranges("rust_w")))
    return _WORD_RANGES[0]


# One token of a Rust regex, enough to find the character next to a \\b at either end:
# an escape (with its argument), a bracketed class, or one character.
_RUST_TOKEN = re.compile(
    r"\\(?:[xuU]\{[^}]*\}|x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|[pP]\{[^}]*\}|[pP].|.)"
    r"|\[\^?\]?(?:\\.|[^\]\\])*\]|.",
    re.S,
)


_RUST_CODE_POINT = re.compile(
    r"\\x\{([0-9A-Fa-f]{1,8})\}|\\x([0-9A-Fa-f]{2})|\\u\{([0-9A-Fa-f]{1,8})\}|\\u([0-9A-Fa-f]{4})"
    r"|\\U\{([0-9A-Fa-f]{1,8})\}|\\U([0-9A-Fa-f]{8})"
)


def _token_is_word(tok: str) -> bool | None:
    """Whether every character the Rust regex token ``tok`` matches is a Rust word
    character (True), none is (False), or either can be (None)."""
    if tok in ("\\d", "\\w"):
        return True
    if tok in ("\\s", "\\n", "\\t", "\\r", "\\f", "\\v"):
        return False
    if len(tok) == 2 and tok[0] == "\\" and not tok[1].isalnum() and tok[1].isascii():
        return _rust_test("w", ord(tok[1]))  # an escaped punctuation character
    if len(tok) == 1 and tok not in ".[]()|*+?{}^$\\":
        return _rust_test("w", ord(tok))
    code = _RUST_CODE_POINT.fullmatch(tok)
    if code is not None:
        o = int(next(g for g in code.groups() if g is not None), 16)
        return _rust_test("w", o) if o <= 0x10FFFF else None
    return None


_NOT_ONE_CHARACTER = frozenset(("?", "*", "+", "}", ")", "(", "|", "^", "$", "{", "]", "\\"))
_WORD_RANGES: list[list[tuple[int, int]]] = []  # Rust's \w as ranges, computed once
_NOTHING = _regex.ranges_class([])  # a class matching no character


# A class of \w, \d, \s and their negations only (or one of those alone): Rust's case
# folding adds no character to it, so it is the same class under caseInsensitive.
_FOLD_CLOSED = re.compile(r"\\[wdsWDS]|\[\^?(?:\\[wds])+\]")


def _split_word(tok: str, ci: bool = False) -> tuple[str, str] | None:
    """For a token matching one character some of which are Rust word characters and
    some not (``.``, ``[a-é]``): classes matching its word characters and its other
    ones, or None where that is not known (a Unicode property, a flag group, a negated
    class under case folding: Rust folds the class before negating it)."""
    if tok in _NOT_ONE_CHARACTER or "(?" in tok:
        return None
    negated = tok.startswith("[^") and len(tok) > 3
    if ci and _FOLD_CLOSED.fullmatch(tok):
        ci = False  # \w, \d and \s are closed under case folding: folding changes nothing
        negated = False
    if ci and (tok[:2] in ("\\D", "\\W", "\\S") or (negated and tok[2] == "]")):
        return None
    try:
        translated = _rust_regex("[" + tok[2:] if ci and negated else tok)
    except _Unreadable:
        return None
    ranges = _regex.token_ranges(translated)
    if ranges is None:
        return None
    if ci and negated:
        # Rust folds the class's case before negating it: negate the folded class
        if sum(hi - lo + 1 for lo, hi in ranges) > 4096:
            return None
        folded = {
            ord(v)
            for lo, hi in ranges
            for o in range(lo, hi + 1)
            for v in _regex._case_variants(chr(o), True)
        }
        ranges = _regex.complement_ranges([(o, o) for o in sorted(folded)])
    words = _word_ranges()
    others = _regex.complement_ranges(words)
    return (
        _regex.ranges_class(_regex.intersect_ranges(ranges, words)),
        _regex.ranges_class(_regex.intersect_ranges(ranges, others)),
    )


def _word_kind(tok: str, ci: bool) -> bool | None:
    """:func:`_token_is_word`, also for classes all of whose characters are (or are not)
    word characters (``[^\\w]``, ``[a-z]``)."""
    kind = _token_is_word(tok)
    if kind is None and tok.startswith("["):
        split = _split_word(tok, ci)
        if split is not None and _NOTHING in split:
            return split[1] == _NOTHING
    return kind


def _both_ends(p: str, ci: bool) -> str | None:
    """``\\bT\\b`` or ``\\bT+\\b`` (either may be ``\\B``) where the one token ``T`` can
    match word and other characters: the character T matches first decides what must
    come before it and the one it matches last what must come after, so the characters
    beyond the match are consumed with it (final syntax). None for any other pattern."""
    if p[:2] not in ("\\b", "\\B") or p[-2:] not in ("\\b", "\\B"):
        return None
    if (len(p) - 1 - len(p[:-1].rstrip("\\"))) % 2 == 0:
        return None  # the final backslash is itself escaped
    tokens = [m.group() for m in _RUST_TOKEN.finditer(p[2:-2])]
    plus = len(tokens) == 2 and tokens[1] == "+"
    if len(tokens) != 1 and not plus:
        return None
    split = _split_word(tokens[0], ci)
    if split is None:
        return None
    tw, tnw = split
    word = "[" + _rust_class("w") + "]"
    other = "[^" + _rust_class("w") + "]"
    start, end = "(?:^|" + other + ")", "(?:(?-m:$)|" + other + ")"
    # what comes before a word character / another one, and after, for each \\b or \\B
    b_w, b_nw = (start, word) if p[1] == "b" else (word, start)
    a_w, a_nw = (end, word) if p[-1] == "b" else (word, end)
    one = f"{b_w}{tw}{a_w}|{b_nw}{tnw}{a_nw}"
    if not plus:
        return "(?:" + one + ")"
    middle = _rust_regex(tokens[0]) + "*"
    return f"(?:{one}|(?:{b_w}{tw}|{b_nw}{tnw}){middle}(?:{tw}{a_w}|{tnw}{a_nw}))"


def _group_span(tokens: list[str], start: int, step: int) -> int | None:
    """The index of the token closing the group whose parenthesis is ``tokens[start]``,
    scanning forward (``step`` 1, from a ``(``) or backward (-1, from a ``)``)."""
    depth = 0
    k = start
    while 0 <= k < len(tokens):
        depth += {"(": 1, ")": -1}.get(tokens[k], 0) * step
        if depth == 0:
            return k
        k += step
    return None


def _group_kind(group: list[str], first: bool, ci: bool, depth: int = 0) -> bool | None:
    """For the tokens of a group ``( ... )``: whether the character it matches first
    (``first``) or last is always a Rust word character (True), never (False), or
    either or none (None: an empty or optional branch, an anchor, a flag group)."""
    if depth > 16 or len(group) < 2:
        return None
    inner = group[1:-1]
    if inner[:2] == ["?", ":"]:
        inner = inner[2:]
    elif inner[:1] == ["?"]:
        return None  # flags or a named group: not read here
    branches: list[list[str]] = [[]]
    level = 0
    for t in inner:
        level += {"(": 1, ")": -1}.get(t, 0)
        if t == "|" and level == 0:
            branches.append([])
        else:
            branches[-1].append(t)
    kinds = set()
    for b in branches:
        if not first:
            b = b[::-1]
            while b[:1] == ["?"] and b[1:2] and b[1] in ("*", "+", "?", "}"):
                b = b[1:]  # a lazy quantifier: a+? still ends with an a
            if b[:1] == ["+"]:
                b = b[1:]  # x+ ends with an x
            elif b[:1] and b[0] in ("?", "*", "}"):
                return None  # an optional last item
        if not b:
            return None
        if b[0] == ("(" if first else ")"):
            end = _group_span(b, 0, 1) if first else _group_span(b, 0, 1)
            if end is None:
                return None
            sub = b[: end + 1] if first else b[: end + 1][::-1]
            after = b[end + 1 : end + 2] if first else []
            kind = _group_kind(sub, first, ci, depth + 1)
        else:
            after = b[1:2] if first else []
            kind = _word_kind(b[0], ci)
        if first and after and after[0] in ("?", "*", "{"):
            return None  # an optional first item
        if kind is None:
            return None
        kinds.add(kind)
    return kinds.pop() if len(kinds) == 1 else None


def _edge_boundaries(p: str, ci: bool = False) -> tuple[str, str, str]:
    """A ``\\b``/``\\B`` that starts or ends ``p``, next to a token whose characters are
    all word or all non-word characters, as what it asks of the character outside the
    match: (prefix, the rest of ``p``, suffix). RE2's ``\\b`` is ASCII, Rust's Unicode;
    consuming that outside character instead is the same search (nothing else of the
    pattern reads it). Other ``\\b`` stay RE2's (README, Interop)."""
    word = "[" + _rust_class("w") + "]"
    other = "[^" + _rust_class("w") + "]"
    prefix = suffix = ""
    if p[:2] in ("\\b", "\\B") and not p.startswith("{", 2):
        first = _RUST_TOKEN.match(p, 2)
        after = p[first.end() : first.end() + 1] if first else ""
        is_word = _word_kind(first.group(), ci) if first and after not in ("?", "*", "{") else None
        if first is not None and first.group() == "(":  # \b(foo|bar): the group's first
            toks = [m.group() for m in _RUST_TOKEN.finditer(p, 2)]
            close = _group_span(toks, 0, 1)
            if close is not None and toks[close + 1 : close + 2] not in (["?"], ["*"], ["{"]):
                is_word = _group_kind(toks[: close + 1], True, ci)
        split = None
        rest = p[first.end() + (after == "+") :] if first else ""
        if (
            first
            and is_word is None
            and after not in ("?", "*", "{")
            and rest[:2]
            not in (
                "\\b",
                "\\B",
            )
        ):  # (a boundary right after the token would read the consumed character)
            split = _split_word(first.group(), ci)
        if is_word is not None:
            boundary = p[1] == "b"
            # \b before a word character: none before it; before another, a word one
            prefix = "(?:^|" + other + ")" if is_word == boundary else word
            p = p[2:]
        elif split is not None and first is not None:
            # a token that can be either (\b. or \b[a-é]): the character it matches
            # decides what the one before must be, so it is consumed here too, split
            tw, tnw = split
            start = "(?:^|" + other + ")"
            if p[1] == "b":
                prefix = "(?:" + start + tw + "|" + word + tnw + ")"
            else:
                prefix = "(?:" + start + tnw + "|" + word + tw + ")"
            rest = p[first.end() :]
            if after == "+":  # x+ is x then x*
                rest = first.group() + "*" + rest[1:]
            p = rest
    backslashes = len(p) - 1 - len(p[:-1].rstrip("\\"))  # before the final character
    if p.endswith(("\\b", "\\B")) and backslashes % 2 == 1:
        tokens = [m.group() for m in _RUST_TOKEN.finditer(p[:-2])]
        plus = False
        if tokens and tokens[-1] == "+" and len(tokens) > 1:
            tokens.pop()  # x+ ends with an x
            plus = True
        is_word = _word_kind(tokens[-1], ci) if tokens else None
        if tokens and tokens[-1] == ")":  # (foo|bar)\b: the group's last character
            opened = _group_span(tokens, len(tokens) - 1, -1)
            if opened is not None:
                is_word = _group_kind(tokens[opened:], False, ci)
        split = None
        before = tokens[-2] if len(tokens) > 1 else ""
        if is_word is None and tokens and "(?" not in p and before not in ("\\b", "\\B"):
            split = _split_word(tokens[-1], ci)  # (no flag, no boundary before the token)
        if is_word is not None:
            boundary = p[-1] == "b"
            suffix = "(?-m:$)|" + other if is_word == boundary else word
            suffix = "(?:" + suffix + ")"
            p = p[:-2]
        elif split is not None:
            # a token that can be either (.\b or [a-é]\b): as at the start, consumed
            # with the character after it
            tw, tnw = split
            end = "(?:(?-m:$)|" + other + ")"
            if p[-1] == "b":
                suffix = "(?:" + tw + end + "|" + tnw + word + ")"
            else:
                suffix = "(?:" + tnw + end + "|" + tw + word + ")"
            p = "".join(tokens[:-1]) + (tokens[-1] + "*" if plus else "")
    return prefix, _inner_boundaries(p, ci), suffix


def _inner_boundaries(p: str, ci: bool = False) -> str:
    """A ``\\b``/``\\B`` between two tokens whose characters are each all word or all
    non-word characters (``a\\b-``, ``\\w+\\b\\s``) decided as Rust decides it: dropped
    where it always holds, a class matching nothing where it never does. Where one
    side is known and the other a token that can be either (``x\\b.``), that token is
    narrowed to the characters for which the boundary holds."""
    if "\\b" not in p and "\\B" not in p:
        return p
    tokens = [m.group() for m in _RUST_TOKEN.finditer(p)]
    syntax = set()  # tokens spelling a group's opening "(?:", "(?i)", "(?P<name>"
    for k, tok in enumerate(tokens):
        if tok == "(" and tokens[k + 1 : k + 2] == ["?"]:
            j = k + 1
            while j < len(tokens) and tokens[j] not in (":", ")", ">"):
                syntax.add(j)
                j += 1
            syntax.add(j)
    out: list[str] = []
    skip = False
    for k, tok in enumerate(tokens):
        if skip:
            skip = False
            continue
        if tok in ("\\b", "\\B") and 0 < k < len(tokens) - 1 and k - 1 not in syntax:
            left = tokens[k - 1]
            if left == "+" and k >= 2:
                left = tokens[k - 2]  # x+ ends with an x
            after = tokens[k + 2] if k + 2 < len(tokens) else ""
            left_known = tokens[k - 1] not in ("?", "*", "}")
            right_known = after not in ("?", "*", "{", "+")
            left_word = _word_kind(left, ci) if left_known else None
            right_word = _word_kind(tokens[k + 1], ci) if after not in ("?", "*", "{") else None
            boundary = tok == "\\b"
            if left_word is not None and right_word is not None:
                holds = (left_word != right_word) == boundary
                out.append("" if holds else "[^\\x00-\\x{10FFFF}]")  # matches nothing
                continue
            # (a token is narrowed only where no other boundary reads it)
            if left_word is not None and right_known and after not in ("\\b", "\\B"):
                split = _split_word(tokens[k + 1], ci)
                if split is not None:  # the right character: the other kind for \\b
                    out.append(split[1] if left_word == boundary else split[0])
                    skip = True
                    continue
            if (
                right_word is not None
                and left_known
                and left == tokens[k - 1]  # not x+
                and out
                and out[-1] == left
                and (k < 2 or tokens[k - 2] not in ("\\b", "\\B"))
            ):
                split = _split_word(left, ci)
                if split is not None:  # the left character, likewise
                    out[-1] = split[1] if right_word == boundary else split[0]
                    continue
        out.append(tok)
    return "".join(out)


def _top_level_branches(p: str) -> list[str]:
    """``p`` split at its ``|`` outside groups and classes."""
    branches, depth, start, pos = [], 0, 0, 0
    for m in _RUST_TOKEN.finditer(p):
        t = m.group()
        if t == "(":
            depth += 1
        elif t == ")":
            depth -= 1
        elif t == "|" and depth == 0:
            branches.append(p[start : m.start()])
            start = m.end()
        pos = m.end()
    branches.append(p[start:pos] if pos >= start else "")
    return branches


_QUANTIFIER = re.compile(r"[*+?]|\{\d+(?:,\d*)?\}", re.ASCII)
_FLAG_GROUP = re.compile(r"\(\?[a-zA-Z-]*\)")


_DIGIT_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\[0-9]")  # an escaped digit (not \\0)
_CLASS_THEN_DASH = re.compile(
    r"(?<!\\)(?:\\\\)*\\(?:[dDwWsS]|[pP](?:\{[^}]*\}|[^{]))-(?![\]-])"
)  # inside a class: \d-z, \pL-z, \p{Greek}-z


def _class_range_of_class(p: str) -> bool:
    """Whether a bracketed class of ``p`` uses a Perl or Unicode class as the start of
    a range (``[\\d-z]``): an error to Rust's regex crate."""
    if "[" not in p or "-" not in p:
        return False
    return any(
        m.group().startswith("[") and _CLASS_THEN_DASH.search(m.group())
        for m in _RUST_TOKEN.finditer(p)
    )


_GROUP_NAME = re.compile(r"\(\?P?<(?![=!])([^>]*)>")


def _unnamed_groups(p: str) -> str | None:
    """``p`` with its named groups as plain groups (a name changes no match; RE2 reads
    fewer names than Rust: ``(?<n.x>a)``), or None where Rust's regex crate refuses a
    name: a duplicate, or one not starting with a letter or ``_`` and going on with
    letters, digits, ``_``, ``.``, ``[``, ``]``."""
    if "<" not in p:
        return p
    out: list[str] = []
    names: set[str] = set()
    pos = 0
    for m in _RUST_TOKEN.finditer(p):
        if m.start() < pos:
            continue
        group = _GROUP_NAME.match(p, m.start()) if m.group() == "(" else None
        if group is None:
            out.append(m.group())
            continue
        name = group.group(1)
        if (
            not name
            or name in names
            or not (name[0] == "_" or name[0].isalpha())
            or not all(c in "_.[]" or c.isalnum() for c in name)
        ):
            return None
        names.add(name)
        out.append("(")
        pos = group.end()
    return "".join(out)


_COUNTED = re.compile(r"\{(\d+)(?:(,)(\d*))?\}", re.ASCII)


def _repetitions(p: str) -> str | None:
    """``p`` with each counted repetition as RE2 reads it (``a{02}`` as ``a{2}``), or
    None where a ``{`` outside a class or escape starts none (``a{``, ``{x}``,
    ``a{٣}``): an error to Rust's regex crate, so Unleash never matches, where RE2
    reads a literal brace. What the two read differently is a message starting with
    NUL: whitespace inside the braces (Rust skips it) and counts over RE2's 1000."""
    if "{" not in p:
        return p
    out: list[str] = []
    pos = 0
    for m in _RUST_TOKEN.finditer(p):
        if m.start() < pos:
            continue  # inside a repetition already copied
        if m.group() != "{":
            out.append(m.group())
            continue
        if p.startswith("{,", m.start()) or (out and out[-1] in ("\\b", "\\B")):
            out.append("{")  # _rust_regex refuses '{,n}' and '\b{start}' naming them
            continue
        counted = _COUNTED.match(p, m.start())
        if counted is None:
            close = p.find("}", m.start())
            if close != -1 and any(c.isspace() for c in p[m.start() : close]):
                return (
                    "\0whitespace inside a counted repetition means something else to "
                    "cfgcore's regex engine (RE2: literal text) than to Rust's regex crate"
                )
            return None
        lo, comma, hi = counted.groups()
        if int(lo) > 1000 or (hi and int(hi) > 1000):
            return (
                "\0a repetition count over 1000 is more than cfgcore's regex engine "
                "(RE2) repeats; Rust's regex crate runs it"
            )
        out.append("{" + str(int(lo)) + (comma or "") + (str(int(hi)) if hi else "") + "}")
        pos = counted.end()
    return "".join(out)


def _stacked_quantifier(p: str) -> str | None:
    """What Rust's regex crate and RE2 read differently about quantifiers in ``p``
    (found by probing yggdrasil): ``"invalid"`` for a quantifier on a flag group
    (``a(?i){2}``: an error to Rust, so Unleash never matches; RE2 repeats nothing),
    ``"stacked"`` for a quantifier on a quantifier other than the lazy ``?``
    (``a**``, ``a{2}+``, ``a+??``: Rust nests them, RE2 refuses), else None."""
    last, i = "", 0
    while i < len(p):
        q = _QUANTIFIER.match(p, i)
        if q is not None and last:
            if last == "flags":
                return "invalid"
            if q.group() == "?" and last == "quantifier":
                last = "lazy"  # a+? and a{2}? are one lazy quantifier
            elif last in ("quantifier", "lazy"):
                return "stacked"
            else:
                last = "quantifier"
            i = q.end()
            continue
        flags = _FLAG_GROUP.match(p, i)
        if flags is not None:
            last, i = "flags", flags.end()
            continue
        tok = _RUST_TOKEN.match(p, i)
        if tok is None:  # pragma: no cover - every character is a token
            return None
        # after "(" or "|" a quantifier is an error to both: nothing to compare
        last = "" if tok.group() in ("(", "|") else "atom"
        i = tok.end()
    return None


def _rust_regex(p: str, ci: bool = False) -> str:
    """``p`` (a Rust regex) as a pattern RE2 and Python's re run as Rust does: Unicode
    \\d, \\w, \\s written out, a \\b at either end as the character beyond it
    (:func:`_edge_boundaries`); constructs that mean something else to RE2 (class set
    operations, ``{,n}``, verbose and CRLF modes, ``\\Q``, ``\\<``) raise
    :class:`_Unreadable`."""

    def refuse(what: str) -> _Unreadable:
        exc = _Unreadable("REGEX", p, "")
        exc.args = (
            f"REGEX constraint {p!r:.60}: {what} means something else to cfgcore's regex "
            "engine (RE2) than to Rust's regex crate, which yggdrasil runs",
        )
        return exc

    if "\\" not in p and "[" not in p and "{," not in p and "(?" not in p:
        return p  # the common case: nothing to translate
    if p.startswith("(?i)") and "(?" not in p[4:]:
        # case-insensitive from the start: caseInsensitive for the whole pattern
        try:
            return "(?i)" + _rust_regex(p[4:], True)
        except _Unreadable as exc:  # named with the whole pattern
            head, msg = f"REGEX constraint {p[4:]!r:.60}: ", str(exc.args[0])
            if msg.startswith(head):
                exc.args = (f"REGEX constraint {p!r:.60}: " + msg[len(head) :],)
            raise
    if ("\\b" in p or "\\B" in p) and "(?" not in p:
        # each top-level branch is searched on its own: its ends are the pattern's
        branches = _top_level_branches(p)
        if len(branches) > 1:
            parts = []
            for b in branches:
                try:
                    parts.append(_rust_regex(b, ci))
                except _Unreadable as exc:  # named with the whole pattern
                    head, msg = f"REGEX constraint {b!r:.60}: ", str(exc.args[0])
                    if msg.startswith(head):
                        exc.args = (f"REGEX constraint {p!r:.60}: " + msg[len(head) :],)
                    raise
            return "|".join(parts)
        both = _both_ends(p, ci)
        if both is not None:
            return both
    prefix, p, suffix = _edge_boundaries(p, ci)
    out: list[str] = [prefix]
    i, n, in_class = 0, len(p), False
    while i < n:
        c = p[i]
        if c == "\\":
            e = p[i + 1] if i + 1 < n else ""
            code = _RUST_CODE_POINT.match(p, i)
            if code is not None:
                # Rust's \x{..}, \u.., \U..: RE2 reads only \xHH, Python no \x{..}
                o = int(next(g for g in code.groups() if g is not None), 16)
                if o <= 0x10FFFF and not 0xD800 <= o <= 0xDFFF:
                    ch = chr(o)
                    special = "\\]^-[" if in_class else "\\.^$*+?()[]{}|"
                    out.append(("\\" + ch if ch in special else ch) if o >= 0x20 else f"\\x{o:02x}")
                    i = code.end()
                    continue
            if e in ("d", "w", "s"):
                cls = _rust_class(e)
                out.append(cls if in_class else "[" + cls + "]")
            elif e in ("D", "W", "S"):
                if in_class:
                    raise refuse(f"'\\{e}' inside a class")
                out.append("[^" + _rust_class(e.lower()) + "]")
            elif e in ("Q", "<", ">") or (e in ("b", "B") and p.startswith("{", i + 2)):
                # (\\b stays: an ASCII word boundary to RE2, a Unicode one to Rust; they
                # agree on ASCII text, the client specification's word_boundary_ascii)
                raise refuse(f"'\\{e}'")
            else:
                out.append(c + e)
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            elif p.startswith(("&&", "--", "~~"), i):
                raise refuse(f"the class operation {p[i : i + 2]!r}")
            elif c == "[" and not p.startswith("[:", i):
                raise refuse("a nested class")
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            for lead in ("^", "]"):  # a leading ']' is a literal in both
                if p.startswith(lead, i):
                    out.append(lead)
                    i += 1
            continue
        if c == "{" and p.startswith("{,", i):
            raise refuse("'{,n}'")
        if c == "(" and p.startswith("(?", i) and _RUST_ONLY_FLAGS.match(p, i):
            # lookaround and the like are errors to both (never matches), but verbose
            # mode and CRLF mode are Rust's alone
            raise refuse(f"the flags {p[i : i + 4]!r}")
        out.append(c)
        i += 1
    out.append(suffix)
    return "".join(out)


def _ascii_boundary_left(pattern: str) -> bool:
    """Whether the translated ``pattern`` still holds a ``\\b`` or ``\\B`` (outside a
    class): one :func:`_rust_regex` could not decide or spell out, so RE2 would read
    it as its ASCII boundary where Rust's is Unicode."""
    i, n, in_class = 0, len(pattern), False
    while i < n:
        c = pattern[i]
        if c == "\\":
            if not in_class and pattern[i + 1 : i + 2] in ("b", "B"):
                return True
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
        elif c == "[":
            in_class = True
            i += 1
            if pattern.startswith("^", i):
                i += 1
            if pattern.startswith("]", i):  # a leading ']' is a literal
                i += 1
            continue
        i += 1
    return False


class _Unreadable(Exception):
    """A constraint value yggdrasil cannot read: it turns the whole feature off, while the
    Node SDK only fails the constraint. Neither is safe to guess, so it is refused."""

    def __init__(self, op: Any, value: Any, what: str) -> None:
        super().__init__(
            f"{op} constraint with an invalid value {value!r:.60}: not {what} as Unleash "
            "reads it (yggdrasil, the engine of the Python SDK, turns the whole feature off "
            "for it; the Node SDK fails only the constraint)"
        )


_EPSILON = sys.float_info.epsilon


def _num_eq(attr: str, n: float) -> Any:
    """yggdrasil's NUM_EQ: ``|x - n| < f64::EPSILON`` (so 0.3 equals 0.1 + 0.2). The
    doubles inside that open interval, found exactly with fractions: ``x - n`` is exact
    wherever it can come below epsilon (Sterbenz), so the interval is the answer."""
    if not math.isfinite(n):
        return _NEVER  # Infinity minus Infinity is NaN: equal to nothing
    lo_exact, hi_exact = Fraction(n) - Fraction(_EPSILON), Fraction(n) + Fraction(_EPSILON)
    lo, hi = float(lo_exact), float(hi_exact)
    if Fraction(lo) <= lo_exact:
        lo = math.nextafter(lo, math.inf)
    if Fraction(hi) >= hi_exact:
        hi = math.nextafter(hi, -math.inf)
    return {"all": [{"attr": attr, "ge": lo}, {"attr": attr, "le": hi}]}


# A timestamp as yggdrasil reads ``createdAt`` and ``lastSeenAt`` (Rust's chrono, its
# relaxed RFC 3339: a space or a "t" may separate date and time, white space may come
# before each number and around the zone, the year may be signed and longer, one-digit
# fields, a leap second, "UTC" or +hhmm as the zone; no zone, a date alone, or a date
# or time that does not exist and the whole payload is rejected). Checked against it:
# tests/test_interop_unleash_field_types.py.
_TS_NUM = re.compile(r"[0-9]{1,2}")
_TS_YEAR = re.compile(r"[+-][0-9]+|[0-9]{1,4}")
_TS_ZONE = re.compile(r"([+\-\u2212])([0-9]{2})")
_TS_MIN_YEAR, _TS_MAX_YEAR = -262143, 262142  # chrono's NaiveDate range
_TS_SPACE = "".join(map(chr, sorted(_WHITE_SPACE)))  # Rust's white space


def _days(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a proleptic Gregorian date (any year)."""
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _timestamp(text: str) -> bool:
    """Whether yggdrasil reads ``text`` as a date and time (see above)."""
    ws = _TS_SPACE
    s = text
    fields: list[int] = []
    for i, sep in enumerate(("-", "-", "T", ":", ":", "")):
        s = s.lstrip(ws)
        m = (_TS_YEAR if i == 0 else _TS_NUM).match(s)
        if m is None or len(m.group()) > 12:  # (past chrono's range: int() of no length)
            return False
        fields.append(int(m.group()))
        s = s[m.end() :]
        if sep == "T":
            if s[:1] not in ("T", "t", " ") or not s:
                return False
            s = s[1:]
        elif sep:
            s = s.lstrip(ws)
            if not s.startswith(sep):
                return False
            s = s[1:]
    if s.startswith("."):  # a fraction of a second: at least one digit, any number
        m = re.match(r"[0-9]+", s[1:])
        if m is None:
            return False
        s = s[1 + m.end() :]
    s = s.lstrip(ws)
    offset = 0
    if s[:1] in ("Z", "z"):
        s = s[1:]
    elif s[:3].lower() == "utc":
        s = s[3:]
    else:
        m = _TS_ZONE.match(s)
        if m is None:
            return False
        s = s[m.end() :].lstrip(":" + ws)
        if len(s) < 2 or s[0] not in "012345" or s[1] not in "0123456789":
            return False
        offset = (int(m.group(2)) * 60 + int(s[:2])) * 60
        if offset >= 86400:
            return False
        offset = -offset if m.group(1) != "+" else offset
        s = s[2:]
    if s.strip(ws):
        return False
    year, month, day, hour, minute, second = fields
    if not (_TS_MIN_YEAR <= year <= _TS_MAX_YEAR and 1 <= month <= 12 and 1 <= day <= 31):
        return False
    if hour > 23 or minute > 59 or second > 60:
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if day > (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[month - 1]:
        return False
    # the moment in UTC is in chrono's range too
    at = _days(year, month, day) * 86400 + hour * 3600 + minute * 60 + min(second, 59) - offset
    lo = _days(_TS_MIN_YEAR, 1, 1) * 86400
    hi = _days(_TS_MAX_YEAR + 1, 1, 1) * 86400
    return lo <= at < hi


class _Malformed(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path, self.message = path, message


def _list(value: Any, path: str) -> list[Any]:
    """``value`` as a list (absent: empty); _Malformed naming ``path`` if it is not one."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Malformed(path, f"expected a list, got {type_name(value)}")
    return value


_WHOLE = "Unleash's engine rejects a payload holding it: no feature of it would be known"


_MAX_WEIGHTS = 2**31 - 1  # the bucket space of a cfgcore hashing scheme
_I32 = (-(2**31), 2**31 - 1)  # yggdrasil's sortOrder and segment ids are 32-bit integers
_WEIGHT_TYPES = ("fix", "variable")


def _i32(value: Any, path: str) -> None:
    """_Malformed naming ``path`` unless ``value`` is an integer yggdrasil reads (32-bit:
    JSON's 1.0 is no integer there)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Malformed(path, f"expected an integer, got {type_name(value)} ({_WHOLE})")
    if not _I32[0] <= value <= _I32[1]:
        raise _Malformed(
            path, f"expected an integer from {_I32[0]} to {_I32[1]}, got {value} ({_WHOLE})"
        )


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


# A feature's fields yggdrasil reads only for their type (null: absent): _typed_fields.
_FEATURE_FIELD_TYPES = (
    ("impressionData", _is_bool, "a boolean"),
    ("stale", _is_bool, "a boolean"),
    ("project", _is_text, "a string"),
    ("type", _is_text, "a string"),
    ("description", _is_text, "a string"),
    ("createdAt", _is_text, "a string"),
    ("lastSeenAt", _is_text, "a string"),
)


def _feature_types(at: str, feat: Mapping[str, Any], missing: bool = False) -> None:
    """The fields of a feature whose wrong type or absence makes yggdrasil reject the
    whole payload (checked against it; the Unleash Python SDK then keeps the features
    it had, none on a first load): ``enabled`` missing or no boolean; a strategy
    without a name or with a parameter no string; a constraint that is no object or
    without ``contextName`` or ``operator``; a variant without an integer weight, with
    a payload whose ``type`` or ``value`` is no string, with an override without
    ``contextName`` or ``values``; a segment id no integer. Also (checked against it):
    ``impressionData`` or ``stale`` no boolean; ``project``, ``type``,
    ``description``, ``createdAt`` or ``lastSeenAt`` no string (the last two: no date
    and time as it reads one, :func:`_timestamp`); a strategy whose
    ``parameters`` is no object or whose ``sortOrder`` is no 32-bit integer; a feature
    variant whose ``weightType`` is neither "fix" nor "variable" (a strategy variant's
    is not read). The fields missing are checked with ``missing`` (after the feature
    is lowered: its own errors come first). ``at``: the feature's key path in the
    payload."""
    enabled = feat.get("enabled")
    if enabled is None and missing:
        raise _Malformed(f"{at}.enabled", f"missing ({_WHOLE})")
    if enabled is not None and not isinstance(enabled, bool):
        raise _Malformed(f"{at}.enabled", f"expected a boolean, got {type_name(enabled)}")
    _typed_fields(feat, at, _FEATURE_FIELD_TYPES)
    for key in ("createdAt", "lastSeenAt"):
        value = feat.get(key)
        if isinstance(value, str) and not _timestamp(value):
            raise _Malformed(
                f"{at}.{key}",
                f"{value!r:.60} is not a date and time with a time zone, as "
                f"2024-01-01T00:00:00Z ({_WHOLE})",
            )

    def variants_of(variants: Any, path: str, weight_type: bool = False) -> None:
        total = 0
        for j, v in enumerate(variants if isinstance(variants, list) else []):
            vat = f"{path}[{j}]"
            if not isinstance(v, Mapping):
                where = f"{vat}: expected an object, got {type_name(v)}"
                raise _Malformed(at, f"malformed: {where} ({_WHOLE})")
            vname = v.get("name", _ABSENT)
            if not isinstance(vname, str):
                # missing, null or no string: yggdrasil rejects the whole payload (its
                # lowering reads the name: checked here, not with the missing fields)
                got = (
                    "missing" if vname is _ABSENT else f"expected a string, got {type_name(vname)}"
                )
                raise _Malformed(at, f"malformed: {vat}.name: {got} ({_WHOLE})")
            wtype = v.get("weightType")
            if weight_type and wtype is not None and wtype not in _WEIGHT_TYPES:
                shown = repr(wtype) if isinstance(wtype, str) else type_name(wtype)
                where = f'{vat}.weightType: expected "fix" or "variable", got {shown}'
                raise _Malformed(at, f"malformed: {where} ({_WHOLE})")
            stickiness = v.get("stickiness")
            if stickiness is not None and not isinstance(stickiness, str):
                where = f"{vat}.stickiness: expected a string, got {type_name(stickiness)}"
                raise _Malformed(at, f"malformed: {where} ({_WHOLE})")
            w = v.get("weight")
            if w is None and missing:
                raise _Malformed(at, f"malformed: {vat}.weight: missing ({_WHOLE})")
            if w is not None and (isinstance(w, bool) or not isinstance(w, int)):
                # (said as the other malformed values of a feature are)
                where = f"{vat}.weight: expected an integer, got {type_name(w)}"
                raise _Malformed(at, f"malformed: {where}")
            if w is not None and w < 0:
                # Unleash writes 0..1000; yggdrasil counts a negative one into the
                # total its target is drawn from, cfgcore's buckets cannot hold it
                raise _Malformed(at, f"malformed: {vat}.weight: {w} is negative")
            if isinstance(w, int):
                total += w
            payload = v.get("payload")
            if payload is None:
                payload = {"type": "", "value": ""}  # no payload
            elif missing and not isinstance(payload, Mapping):
                where = f"{vat}.payload: expected an object, got {type_name(payload)}"
                raise _Malformed(at, f"malformed: {where} ({_WHOLE})")
            for key in ("type", "value") if missing else ():
                if not isinstance(payload.get(key), str):
                    got = type_name(payload.get(key)) if key in payload else "nothing"
                    where = f"{vat}.payload.{key}: expected a string, got {got}"
                    raise _Malformed(at, f"malformed: {where} ({_WHOLE})")
            overrides = v.get("overrides")
            for k, o in enumerate(overrides if missing and isinstance(overrides, list) else []):
                for key in ("contextName", "values"):
                    if not isinstance(o, Mapping) or o.get(key) is None:
                        where = f"{vat}.overrides[{k}].{key}: missing"
                        raise _Malformed(at, f"malformed: {where} ({_WHOLE})")
        if total > _MAX_WEIGHTS:
            raise _Malformed(
                at, f"{path}: the weights sum to {total}, past cfgcore's {_MAX_WEIGHTS:,}"
            )

    variants_of(feat.get("variants"), "variants", weight_type=True)
    fvariants = feat.get("variants")
    for j, v in enumerate(fvariants if isinstance(fvariants, list) else []):
        if isinstance(v, Mapping):
            _overrides(v.get("overrides"), f"{at}.variants[{j}].overrides")
    _dependencies(feat.get("dependencies"), f"{at}.dependencies")
    strategies = feat.get("strategies")
    for i, st in enumerate(strategies if isinstance(strategies, list) else []):
        if not isinstance(st, Mapping):
            continue
        sat = f"{at}.strategies[{i}]"
        if "name" in st and not isinstance(st["name"], str):
            raise _Malformed(f"{sat}.name", f"expected a string, got {type_name(st['name'])}")
        if "name" not in st and missing:
            raise _Malformed(f"{sat}.name", f"missing ({_WHOLE})")
        params = st.get("parameters")
        if params is not None and not isinstance(params, Mapping):
            # (a list too: an empty one is no "no parameters" there)
            got = type_name(params)
            raise _Malformed(f"{sat}.parameters", f"expected an object, got {got} ({_WHOLE})")
        for k, v in params.items() if isinstance(params, Mapping) else ():
            if not isinstance(v, str):
                at_k = child_key_path(f"{sat}.parameters", k)
                raise _Malformed(at_k, f"expected a string, got {type_name(v)}")
        if st.get("sortOrder") is not None:
            _i32(st["sortOrder"], f"{sat}.sortOrder")  # read, not used: payload order counts
        segments = st.get("segments")
        for j, seg in enumerate(segments if isinstance(segments, list) else []):
            _i32(seg, f"{sat}.segments[{j}]")
        constraints = st.get("constraints")
        for j, c in enumerate(constraints if missing and isinstance(constraints, list) else []):
            _constraint_types(c, f"{sat}.constraints[{j}]")
        variants_of(st.get("variants"), f"strategies[{i}].variants")


def _strings(value: Any, path: str) -> None:
    """A list of strings (or null), as yggdrasil reads one; _Malformed naming the place."""
    if value is None:
        return
    if not isinstance(value, list):
        raise _Malformed(path, f"expected a list of strings, got {type_name(value)} ({_WHOLE})")
    for i, x in enumerate(value):
        if not isinstance(x, str):
            raise _Malformed(f"{path}[{i}]", f"expected a string, got {type_name(x)} ({_WHOLE})")


def _objects(value: Any, path: str) -> list[tuple[str, Mapping[str, Any]]]:
    """A list of objects (or null: none) as yggdrasil reads one, each with its path;
    _Malformed naming the place of anything else."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Malformed(path, f"expected a list, got {type_name(value)} ({_WHOLE})")
    out = []
    for i, item in enumerate(value):
        at = f"{path}[{i}]"
        if not isinstance(item, Mapping):
            raise _Malformed(at, f"expected an object, got {type_name(item)} ({_WHOLE})")
        out.append((at, item))
    return out


def _overrides(overrides: Any, path: str) -> None:
    """A feature variant's ``overrides`` (null, or a list of ``{contextName, values}``)
    of the types yggdrasil takes: any other makes it reject the whole payload. (Whether
    ``contextName`` and ``values`` are there at all is checked with the missing fields.)"""
    for oat, o in _objects(overrides, path):
        name = o.get("contextName")
        if name is not None and not isinstance(name, str):
            got = type_name(name)
            raise _Malformed(f"{oat}.contextName", f"expected a string, got {got} ({_WHOLE})")
        _strings(o.get("values"), f"{oat}.values")


def _dependencies(deps: Any, path: str) -> None:
    """A feature's ``dependencies`` (null, or a list of ``{feature, enabled?,
    variants?}``) of the types yggdrasil takes: any other makes it reject the whole
    payload (checked against it)."""
    for dat, d in _objects(deps, path):
        parent = d.get("feature")
        if not isinstance(parent, str):
            got = type_name(parent) if "feature" in d else "nothing"
            raise _Malformed(f"{dat}.feature", f"expected a string, got {got} ({_WHOLE})")
        enabled = d.get("enabled")
        if enabled is not None and not isinstance(enabled, bool):
            got = type_name(enabled)
            raise _Malformed(f"{dat}.enabled", f"expected a boolean, got {got} ({_WHOLE})")
        _strings(d.get("variants"), f"{dat}.variants")


def _constraint_types(c: Mapping[str, Any], path: str) -> None:
    """yggdrasil rejects a whole payload whose constraint is no object, lacks
    ``contextName`` or ``operator`` or has a field of the wrong type (no feature of it
    is on): such a constraint is refused naming the field."""
    if not isinstance(c, Mapping):
        raise _Malformed(path, f"expected an object, got {type_name(c)}")
    for key in ("contextName", "operator"):
        if c.get(key) is None:
            raise _Malformed(f"{path}.{key}", f"missing ({_WHOLE})")
    for key, ok, what in (
        ("contextName", lambda v: isinstance(v, str), "a string"),
        ("operator", lambda v: isinstance(v, str), "a string"),
        ("value", lambda v: isinstance(v, str), "a string"),
        ("values", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
         "a list of strings"),
        ("inverted", lambda v: isinstance(v, bool), "a boolean"),
        ("caseInsensitive", lambda v: isinstance(v, bool), "a boolean"),
    ):  # fmt: skip
        v = c.get(key, _ABSENT)
        if v is _ABSENT or (v is None and key not in ("inverted", "caseInsensitive")):
            continue  # a null inverted or caseInsensitive is refused there, a null value not
        if not ok(v):
            got = type_name(v)
            if isinstance(v, list):
                got = "a list holding " + ", ".join(
                    sorted({type_name(x) for x in v if not isinstance(x, str)})
                )
            raise _Malformed(f"{path}.{key}", f"expected {what}, got {got}")


def _object(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _Malformed(path, f"expected an object, got {type_name(value)}")
    return value


def _segment(value: Any, path: str) -> tuple[Any, Mapping[str, Any]]:
    """A segment by id; one yggdrasil rejects (with the whole payload, used or not) is
    _Malformed: an id no 32-bit integer, ``constraints`` missing, a constraint it rejects."""
    seg_id = _object(value, path).get("id")
    _i32(seg_id, f"{path}.id")
    constraints = value.get("constraints")
    if constraints is None:
        raise _Malformed(f"{path}.constraints", f"missing ({_WHOLE})")
    for i, c in enumerate(_list(constraints, f"{path}.constraints")):
        _constraint_types(c, f"{path}.constraints[{i}]")
    return seg_id, value


def _segments(value: Any, path: str) -> dict[Any, tuple[Mapping[str, Any], str]]:
    """The segments of the list ``value`` by id, each with its key path (the last of an
    id repeated, as yggdrasil keeps it)."""
    out: dict[Any, tuple[Mapping[str, Any], str]] = {}
    for i, seg in enumerate(_list(value, path)):
        seg_id, found = _segment(seg, f"{path}[{i}]")
        out[seg_id] = (found, f"{path}[{i}]")
    return out


def _named(value: Any, path: str) -> tuple[str, Mapping[str, Any]]:
    feat = _object(value, path)
    if not isinstance(feat.get("name"), str):
        raise _Malformed(f"{path}.name", f"expected a string, got {type_name(feat.get('name'))}")
    return feat["name"], feat


def _ranged(value: Any, path: str, low: int, high: int) -> None:
    """_Malformed naming ``path`` unless ``value`` is an integer from ``low`` to ``high``
    (JSON's 2.0 and true are none): what yggdrasil rejects a whole payload for."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        shown = value if isinstance(value, int) and not isinstance(value, bool) else None
        got = type_name(value) if shown is None else shown
        raise _Malformed(path, f"expected an integer from {low} to {high}, got {got} ({_WHOLE})")


def _typed_fields(obj: Any, path: str, fields: tuple[tuple[str, Any, str], ...]) -> None:
    """An object (or null) whose ``fields`` yggdrasil reads only for their type, each
    (name, check, what it must be): null or absent is fine, any other value ``check``
    refuses is _Malformed naming its path. A value that is no object is _Malformed."""
    if obj is None:
        return
    if not isinstance(obj, Mapping):
        raise _Malformed(path, f"expected an object, got {type_name(obj)} ({_WHOLE})")
    for field, check, what in fields:
        value = obj.get(field)
        if value is not None and not check(value):
            raise _Malformed(
                f"{path}.{field}", f"expected {what}, got {type_name(value)} ({_WHOLE})"
            )


def _texts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


# A payload's ``query`` and ``meta`` as yggdrasil types them (checked against it; cfgcore
# reads neither): a field of another type makes it reject the whole payload.
_QUERY_FIELDS = (
    ("tags", lambda v: isinstance(v, list) and all(map(_texts, v)), "a list of lists of strings"),
    ("projects", _texts, "a list of strings"),
    ("namePrefix", _is_text, "a string"),
    ("environment", _is_text, "a string"),
    ("inlineSegmentConstraints", _is_bool, "a boolean"),
)  # fmt: skip
_META_FIELDS = (
    ("etag", _is_text, "a string"),
    ("queryHash", _is_text, "a string"),
)
_U32 = 2**32 - 1  # yggdrasil's payload version and delta event ids


def _payload_types(payload: Mapping[str, Any]) -> None:
    """A features payload's fields as yggdrasil reads them (checked against it): no
    ``version`` from 0 to 2**32 - 1 (absent, text, null, 2.0), no ``features`` list
    (absent or null), a ``query`` or ``meta`` that is no object or holds a field of
    another type, and it rejects the whole payload."""
    if "version" not in payload:
        raise _Malformed("version", f"missing: Unleash's payloads start with one, such as "
                         f'"version": 1 ({_WHOLE})')  # fmt: skip
    _ranged(payload["version"], "version", 0, _U32)
    if "features" not in payload:
        raise _Malformed("features", f"missing: a list of features is needed ({_WHOLE})")
    if payload["features"] is None:
        raise _Malformed("features", f"expected a list, got null ({_WHOLE})")
    _typed_fields(payload.get("query"), "query", _QUERY_FIELDS)
    meta = payload.get("meta")
    _typed_fields(meta, "meta", _META_FIELDS)
    if meta is not None and meta.get("revisionId") is not None:
        _ranged(meta["revisionId"], "meta.revisionId", 0, _U64)


# A delta-API event's fields as yggdrasil types them, by event type: a field missing,
# null or of another type makes it reject the whole payload (checked against it).
_EVENT_FIELDS: dict[str, tuple[tuple[str, type, str], ...]] = {
    "hydration": (("features", list, "a list"), ("segments", list, "a list")),
    "feature-updated": (("feature", Mapping, "an object"),),
    "feature-removed": (("featureName", str, "a string"), ("project", str, "a string")),
    "segment-updated": (("segment", Mapping, "an object"),),
    "segment-removed": (),  # segmentId: a 32-bit integer, below
}


def _event_types(ev: Mapping[str, Any], at: str) -> str:
    """The event's type, after checking its fields as yggdrasil types them."""
    kind = ev.get("type")
    if not isinstance(kind, str) or kind not in _EVENT_FIELDS:
        raise _Malformed(f"{at}.type", f"unknown delta event type {kind!r:.60} ({_WHOLE})")
    if "eventId" not in ev:
        raise _Malformed(f"{at}.eventId", f"missing ({_WHOLE})")
    _ranged(ev["eventId"], f"{at}.eventId", 0, _U32)
    for field, kind_of, what in _EVENT_FIELDS[kind]:
        value = ev.get(field)
        if not isinstance(value, kind_of):
            got = "nothing" if field not in ev else type_name(value)
            raise _Malformed(f"{at}.{field}", f"expected {what}, got {got} ({_WHOLE})")
    if kind == "segment-removed":
        if "segmentId" not in ev:
            raise _Malformed(f"{at}.segmentId", f"missing ({_WHOLE})")
        _i32(ev["segmentId"], f"{at}.segmentId")
    return kind


def _resolve_payload(
    payload: Mapping[str, Any],
) -> tuple[list[tuple[Any, str]], dict[Any, tuple[Mapping[str, Any], str]]]:
    """The features and the segments (by id), each with its key path in ``payload``,
    applying delta-API events in order. _Malformed names the first part that has the
    wrong shape."""
    if not isinstance(payload, Mapping):
        raise _Malformed("", f"an Unleash payload must be a JSON object, got {type_name(payload)}")
    if "events" not in payload:
        _payload_types(payload)
        feats = [
            (f, f"features[{i}]") for i, f in enumerate(_list(payload.get("features"), "features"))
        ]
        return feats, _segments(payload.get("segments"), "segments")
    events = payload["events"]
    if not isinstance(events, list):
        raise _Malformed("events", f"expected a list, got {type_name(events)} ({_WHOLE})")
    by_name: dict[str, tuple[Any, str]] = {}
    segs: dict[Any, tuple[Mapping[str, Any], str]] = {}
    for i, ev in enumerate(events):
        at = f"events[{i}]"
        kind = _event_types(_object(ev, at), at)
        if kind == "hydration":
            by_name = {}
            for j, f in enumerate(ev["features"]):
                name, feat = _named(f, f"{at}.features[{j}]")
                by_name[name] = (feat, f"{at}.features[{j}]")
            segs = _segments(ev["segments"], f"{at}.segments")
        elif kind == "feature-updated":
            name, feat = _named(ev["feature"], f"{at}.feature")
            by_name[name] = (feat, f"{at}.feature")
        elif kind == "feature-removed":
            by_name.pop(ev["featureName"], None)
        elif kind == "segment-updated":
            seg_id, seg = _segment(ev["segment"], f"{at}.segment")
            segs[seg_id] = (seg, f"{at}.segment")
        else:  # segment-removed
            segs.pop(ev["segmentId"], None)
    return list(by_name.values()), segs


# A rollout or percentage as yggdrasil reads it: ASCII digits after an optional sign; any
# other text is 0 % there (that strategy is off), a whole number past 100 turns its whole
# feature off, one past 2**64 - 1 or negative is 0 % (found by probing it:
# tests/test_audit7_interop_unleash_rollout.py, tests/test_review7_interop_unleash_rollout.py).
_YGG_PERCENT = re.compile(r"[+-]?[0-9]+", re.ASCII)
# ... and as the JavaScript SDKs read it (Number(): trimmed of JavaScript's white space,
# "" is 0, decimals, exponents, Infinity, 0x/0o/0b integers; anything else is NaN).
_JS_SPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
# (``\d+(?:\.\d*)?``, not ``\d+\.?\d*``: the same texts, but the latter splits a run of
# digits that ends in no number in as many ways as it is long: quadratic time, 15 s for
# a rollout of 20,000 digits in an imported file)
_JS_DECIMAL = re.compile(r"[+-]?(?:Infinity|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)", re.ASCII)
_JS_RADIX = re.compile(r"0(?:[xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)", re.ASCII)


def _js_number(text: str) -> float:
    """JavaScript's ``Number(text)`` (NaN for a text it does not read)."""
    t = text.strip(_JS_SPACE)
    if not t:
        return 0.0
    if _JS_DECIMAL.fullmatch(t):
        return float(t.replace("Infinity", "inf"))
    if _JS_RADIX.fullmatch(t):
        return float(int(t, 0))
    return math.nan


def _percent(value: Any, path: str) -> int:
    """A strategy's rollout percentage: the share of buckets 1..100 it turns on. Unleash's
    SDKs read the text differently (yggdrasil, the engine of the Python SDK, only whole
    numbers; the Node SDK with Number()): a text they answer differently for is refused
    (_Malformed naming ``path``) rather than imported with one SDK's answer."""
    text = str(value)
    ygg: int | None = None  # None: yggdrasil turns the whole feature off
    if _YGG_PERCENT.fullmatch(text):
        # yggdrasil parses a u64: a negative number or one past 2**64 - 1 is 0 %, one
        # past 100 below it turns the feature off (leading zeros, any number of them,
        # read as nothing: int() of 4,300 digits and more raised ValueError here)
        digits = text.lstrip("+-").lstrip("0")
        n = int(digits) if digits and len(digits) <= 20 else (0 if not digits else 2**64)
        if text.startswith("-") or n >= 2**64:
            ygg = 0
        else:
            ygg = n if n <= 100 else None
    else:
        ygg = 0
    js = _js_number(text)
    # the Node SDK: on when the user's bucket 1..100 is <= the number (NaN: never)
    node = 0 if math.isnan(js) else math.floor(min(max(js, 0.0), 100.0))
    if ygg != node:
        said = "turns the whole feature off" if ygg is None else f"reads {ygg} %"
        raise _Malformed(
            path,
            f"{text!r:.60} is not a whole number of percent from 0 to 100: Unleash's SDKs "
            f"answer differently for it (yggdrasil, the engine of the Python SDK, {said}; "
            f"the Node SDK reads {node} %)",
        )
    return node


def _stickiness(name: str | None, default: list[str], variants: bool = False) -> list[str]:
    # "" is no default: yggdrasil reads the custom field "" (a property named "")
    if name is None or name == "default":
        return list(default)
    if name == "random":
        return [RANDOM]
    # A missing custom field: a rollout is off, a variant choice uses a random value.
    if isinstance(name, str):
        name = escape_name(name)  # as context() writes it
    return [name, RANDOM] if variants else [name]


_OPERATORS = frozenset(
    ["IN", "NOT_IN", "STR_CONTAINS", "STR_STARTS_WITH", "STR_ENDS_WITH", "NUM_EQ", "NUM_GT",
     "NUM_GTE", "NUM_LT", "NUM_LTE", "DATE_AFTER", "DATE_BEFORE", "SEMVER_EQ", "SEMVER_GT",
     "SEMVER_LT", "SEMVER_GTE", "SEMVER_LTE", "REGEX", "IN_CIDR"]
)  # fmt: skip


# The strategy parameters yggdrasil writes into its rule text, per strategy.
_STRATEGY_TEXT = {
    "userWithId": ("userIds",),
    "remoteAddress": ("IPs",),
    "gradualRolloutUserId": ("groupId", "percentage"),
    "gradualRolloutSessionId": ("groupId", "percentage"),
    "gradualRolloutRandom": ("groupId", "percentage"),
    "flexibleRollout": ("groupId", "stickiness", "rollout"),
}
_TRAILING_BACKSLASH = (
    "a text ending with a backslash: yggdrasil (the engine of the Python SDK) cannot "
    "read its rule and turns the whole feature off, other SDKs read the text"
)


def _breaks_yggdrasil(text: str) -> bool:
    """Whether yggdrasil fails on ``text`` in a constraint or strategy parameter: it
    quotes such texts in the rule it compiles, where a final backslash escapes the
    closing quote (found by probing it; trimmed, as it reads comma lists)."""
    return text.endswith("\\") or text.strip().endswith("\\")


def _invalid_value(c: Mapping[str, Any]) -> bool:
    """The constraint's value cannot be read by its operator (a number, date or version
    that does not parse; string operators without values)."""
    op = str(c.get("operator"))
    if op.startswith("STR_"):
        return not c.get("values")
    return op.startswith(("NUM_", "DATE_", "SEMVER_"))


# The rules one feature, and one import, may lower to. A feature's variant overrides
# become one rule per override for each strategy without variants of its own, so a
# 200 KB payload of 2,000 strategies and 200 overrides was 400,000 rules and half a
# minute to import and compile (a large one, hours). Real features stay far below.
MAX_FEATURE_RULES = 10_000
MAX_IMPORT_RULES = 200_000


class _Importer:
    def __init__(
        self, segments: dict[Any, tuple[Mapping[str, Any], str]], source: str | None
    ) -> None:
        self.source = source
        self.problems: list[Problem] = []
        # each segment by id, and its key path in the payload
        self.raw_segments = {k: seg for k, (seg, _) in segments.items()}
        self.segment_paths = {k: at for k, (_, at) in segments.items()}
        self.segments_out: dict[str, Any] = {}
        self.variant_names: dict[str, dict[str, list[str]]] = {}  # flag -> unleash name -> ours
        # flag -> our variant -> the key path of the Unleash variant it was made from
        self.variant_sources: dict[str, dict[str, str]] = {}
        self.has_dependencies: dict[Any, bool] = {}
        # feature -> the path of its first partial rollout without a groupId
        self.implicit_group: dict[str, str] = {}
        self.rules_total = 0  # rules of the features lowered so far (MAX_IMPORT_RULES)

    def too_many_rules(self, rules: int) -> str:
        if rules > MAX_FEATURE_RULES:
            return (
                f"lowers to more than {MAX_FEATURE_RULES:,} rules (each variant override "
                "is repeated for each strategy without variants of its own): give the "
                "strategies variants or use fewer overrides"
            )
        return (
            f"the features lower to more than {MAX_IMPORT_RULES:,} rules in all, past this "
            "one: import the payload in parts"
        )

    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(path=path, message=message, file=self.source))

    # -- constraints ----------------------------------------------------------------------
    def segment(self, seg_id: Any) -> dict[str, Any]:
        seg = self.raw_segments.get(seg_id)
        if seg is None:
            return _NEVER  # Unleash: a strategy referring to an unknown segment is off
        key = f"unleash_segment_{seg_id}"
        if key not in self.segments_out:
            self.segments_out[key] = {
                "all": [
                    self.constraint(c, f"{self.segment_paths[seg_id]}.constraints[{i}]")
                    for i, c in enumerate(seg.get("constraints") or [])
                ]
            }
        return {"segment": key}

    def constraint(self, c: Mapping[str, Any], path: str = "") -> dict[str, Any]:
        _constraint_types(c, path or "constraints")
        if c.get("operator") not in _OPERATORS:
            # Unleash: an unknown operator never matches, inverted or not (the inversion
            # applies to an operator's result; yggdrasil and the Node SDK agree)
            return _NEVER
        try:
            cond = self._constraint(c)
        except _Unreadable as exc:
            raise _Malformed(path or "constraints", str(exc)) from None
        except _Malformed as exc:
            raise _Malformed(path or exc.path, exc.message) from None
        if not c.get("inverted"):
            return cond
        if cond == _NEVER and _invalid_value(c):
            # SDKs disagree on an inverted constraint whose value cannot be read: the
            # Node SDK inverts "no match" to a match, yggdrasil (the Python, Ruby, .NET
            # SDKs' engine) turns the whole feature off. Neither is safe to guess.
            raise _Malformed(
                path or "constraints",
                f"inverted {c.get('operator')} constraint with an invalid value "
                f"{c.get('value', c.get('values'))!r:.60} (Unleash SDKs disagree on its meaning)",
            )
        return {"not": cond}

    def _constraint(self, c: Mapping[str, Any]) -> dict[str, Any]:
        texts = [c.get("contextName"), c.get("value"), *(c.get("values") or [])]
        if any(isinstance(t, str) and _breaks_yggdrasil(t) for t in texts):
            raise _Malformed("constraints", _TRAILING_BACKSLASH)
        attr = escape_name(str(c.get("contextName", "")))  # as context() writes it
        op = c.get("operator")
        values = [str(v) for v in c.get("values") or []]
        value = c.get("value")
        ci = bool(c.get("caseInsensitive"))
        if op in ("IN", "NOT_IN"):
            test = {"attr": attr, "in": values} if values else _NEVER
            return test if op == "IN" else {"not": test}
        if op in ("STR_CONTAINS", "STR_STARTS_WITH", "STR_ENDS_WITH"):
            key = {"STR_CONTAINS": "contains", "STR_STARTS_WITH": "starts_with"}.get(
                op, "ends_with"
            )
            if not values:  # yggdrasil: the whole feature off; the Node SDK: no match
                raise _Unreadable(op, c.get("values"), "a non-empty list of values")
            if ci:  # yggdrasil: both texts in lower case (context(): <attr>#lower)
                return {"any": [{"attr": f"{attr}#lower", key: v.lower()} for v in values]}
            return {"any": [{"attr": attr, key: v} for v in values]}
        if op in ("NUM_EQ", "NUM_GT", "NUM_GTE", "NUM_LT", "NUM_LTE"):
            num = _constraint_number(value) if value is not None else None
            if num is None:
                if value is not None and _version_ok(str(value).strip()):
                    # yggdrasil compares a version there as versions (1.2.3 < 5.0.0),
                    # the Node SDK as no number: not lowered
                    raise _Malformed(
                        "constraints",
                        f"{op} constraint with the version {value!r:.60} as its value "
                        "(Unleash SDKs disagree on its meaning)",
                    )
                raise _Unreadable(op, value, "a number")
            if op == "NUM_EQ":
                return _num_eq(f"{attr}#num", num)
            key = {"NUM_GT": "gt", "NUM_GTE": "ge", "NUM_LT": "lt"}.get(op, "le")
            return {"attr": f"{attr}#num", key: num}
        if op in ("DATE_AFTER", "DATE_BEFORE"):
            text = str(value).strip() if value is not None else ""
            when = _parse_date(_CONSTRAINT_DATE.fullmatch(text))
            if when is None:
                raise _Unreadable(op, value, "an RFC 3339 date with 'T', 'Z' and milliseconds")
            return {"attr": f"{attr}#date", "gt" if op == "DATE_AFTER" else "lt": when}
        if op in ("SEMVER_EQ", "SEMVER_GT", "SEMVER_LT", "SEMVER_GTE", "SEMVER_LTE"):
            v = str(value).strip() if value is not None else ""
            if not _version_ok(v):
                if v[:1] in ("v", "V") and _version_ok(v[1:]):
                    return _NEVER  # the client specification: a leading "v" never matches
                # (a number there, "1.2", yggdrasil compares as a number: not lowered)
                raise _Unreadable(op, value, "a SemVer version")
            sattr = f"{attr}#semver"
            # a version past MAX_SEMVER_TEXT: compared by context()'s mapping
            long = {"attr": SEMCMP + json.dumps([attr, op, v], ensure_ascii=False), "eq": True}
            if op in ("SEMVER_EQ", "SEMVER_GT", "SEMVER_LT"):
                return {"any": [{"attr": sattr, op.lower(): v}, long]}
            strict = "semver_gt" if op == "SEMVER_GTE" else "semver_lt"
            return {"any": [{"attr": sattr, strict: v}, {"attr": sattr, "semver_eq": v}, long]}
        if op == "REGEX":
            text = str(value) if value is not None else ""
            stacked = _stacked_quantifier(text)
            if stacked == "invalid":  # an error to Rust's regex crate: Unleash never matches
                return _NEVER
            if stacked == "stacked":
                exc = _Unreadable("REGEX", value, "")
                exc.args = (
                    f"REGEX constraint {text!r:.60}: a quantifier on a quantifier means "
                    "something else to cfgcore's regex engine (RE2: an error) than to Rust's "
                    "regex crate, which yggdrasil runs (write (?:a*)* for a**)",
                )
                raise exc
            if _DIGIT_ESCAPE.search(text) or _class_range_of_class(text):
                # \0, \1, \123 (no octal, no backreferences) and [\d-z] (a class as a
                # range's end): errors to Rust's regex crate, so Unleash never matches;
                # RE2 reads octal, and the written-out \d as a range
                return _NEVER
            named = _unnamed_groups(text)
            if named is None:  # a duplicate or invalid group name: an error to Rust
                return _NEVER
            braces = _repetitions(named)
            if braces is None:  # a '{' Rust's regex crate reads as no repetition: an error
                return _NEVER
            if braces.startswith("\0"):
                exc = _Unreadable("REGEX", value, "")
                exc.args = (f"REGEX constraint {text!r:.60}: {braces[1:]}",)
                raise exc
            text = braces
            pattern = _rust_regex(text, ci)
            hazard = _regex.linear_hazard(pattern, ci) if _regex._re2 is None else None
            if hazard is not None:  # Unleash matches it: no silent "never matches" here
                exc = _Unreadable("REGEX", value, "")
                exc.args = (
                    f"REGEX constraint {str(value)!r:.60}: {hazard}; without google-re2 "
                    "cfgcore runs only patterns that are linear on Python's re",
                )
                raise exc
            try:
                compile_regex(pattern, ci)
            except _regex.RegexLimitError as cost:  # valid, but too dear or too deep to run
                exc = _Unreadable("REGEX", value, "")
                exc.args = (f"REGEX constraint {str(value)!r:.60}: {cost}",)
                raise exc from None
            except Exception:  # Unleash: an invalid pattern never matches
                return _NEVER
            if _ascii_boundary_left(pattern):
                exc = _Unreadable("REGEX", value, "")
                exc.args = (
                    f"REGEX constraint {text!r:.60}: a \\b or \\B inside a group, "
                    "repeated, next to another boundary, between two tokens that can "
                    "each be a word character or not, or in a pattern with inline flags "
                    "after its start is an ASCII word boundary to "
                    "cfgcore's regex engine (RE2) and a Unicode one to Rust's regex crate, "
                    "which yggdrasil runs (they disagree on text such as 'é'); "
                    "write it at either end of the pattern or next to a token such as "
                    "\\w, \\s or a literal",
                )
                raise exc
            found = {"attr": attr, "matches": pattern, **({"ignore_case": True} if ci else {})}
            # a value past MAX_REGEX_INPUT: searched whole by context()'s mapping
            search = json.dumps([attr, pattern, ci], ensure_ascii=False)
            return {"any": [found, {"attr": SEARCH + search, "eq": True}]}
        if op == "IN_CIDR":
            if not values:  # as for the string operators (checked against yggdrasil)
                raise _Unreadable(op, c.get("values"), "a non-empty list of values")
            return self.cidr(attr, values)
        return _NEVER  # an unknown operator never matches (Unleash client specification)

    def cidr(self, attr: str, values: list[str]) -> dict[str, Any]:
        tests: list[Any] = []
        for v in values:
            try:  # yggdrasil reads each value as it is, untrimmed
                net = ipaddress.ip_network(v, strict=False)
            except ValueError:
                continue  # invalid entries are ignored
            bits = format(int(net.network_address), f"0{net.max_prefixlen}b")
            tests.append(
                {"attr": f"{attr}#ip", "starts_with": f"{net.version}:" + bits[: net.prefixlen]}
            )
        return {"any": tests}

    # -- strategies -----------------------------------------------------------------------
    def strategy(self, feature: str, s: Mapping[str, Any], at: str) -> tuple[list[Any], Any]:
        """(conditions, gate or None) of one strategy (``at``: its path)."""
        params = _object(s.get("parameters") or {}, f"{at}.parameters")
        conds: list[Any] = [
            self.constraint(_object(c, f"{at}.constraints[{i}]"), f"{at}.constraints[{i}]")
            for i, c in enumerate(_list(s.get("constraints"), f"{at}.constraints"))
        ]
        conds += [self.segment(seg) for seg in _list(s.get("segments"), f"{at}.segments")]
        name = s.get("name")
        used = _STRATEGY_TEXT.get(str(name), ())
        for key in used:
            value = params.get(key)
            items = str(value).split(",") if key in ("userIds", "IPs") else [str(value)]
            if value is not None and any(_breaks_yggdrasil(i) for i in items):
                raise _Malformed(f"{at}.parameters.{key}", _TRAILING_BACKSLASH)
        gate = None
        # an empty groupId is the group "" to yggdrasil (absent: the feature's name)
        group = feature if params.get("groupId") is None else str(params["groupId"])
        if name == "default":
            pass
        elif name == "userWithId":
            # yggdrasil trims each id and keeps empty ones: "a,,b" (and "") lists the
            # empty userId, which a context may hold (the Node SDK reads no list from a
            # blank text: there only an empty userId is answered differently)
            listed = params.get("userIds")
            ids = [] if listed is None else [i.strip() for i in str(listed).split(",")]
            conds.append({"attr": "userId", "in": ids} if ids else _NEVER)
        elif name == "remoteAddress":
            ips = [i.strip() for i in str(params.get("IPs", "")).split(",") if i.strip()]
            conds.append(self.cidr("remoteAddress", ips))
        elif name in ("gradualRolloutUserId", "gradualRolloutSessionId") and (
            params.get("groupId") is None
        ):
            conds.append(_NEVER)  # yggdrasil: never enabled without a groupId
        elif name in ("gradualRolloutUserId", "gradualRolloutSessionId", "gradualRolloutRandom"):
            by = {"gradualRolloutUserId": ["userId"], "gradualRolloutSessionId": ["sessionId"]}
            percent = _percent(params.get("percentage"), f"{at}.parameters.percentage")
            gate = _gate(by.get(name, [RANDOM]), group, percent)
        elif name == "flexibleRollout":
            by_attrs = _stickiness(params.get("stickiness"), _ROLLOUT_DEFAULT)
            percent = _percent(params.get("rollout"), f"{at}.parameters.rollout")
            gate = _gate(by_attrs, group, percent)
            if params.get("groupId") is None and 0 < percent < 100:
                self.implicit_group.setdefault(feature, f"{at}.parameters.groupId")
        else:
            conds.append(_NEVER)  # Unleash: an unknown strategy is not enabled
        return conds, gate

    # -- features -------------------------------------------------------------------------
    def feature(self, name: str, feat: Mapping[str, Any], at: str) -> dict[str, Any]:
        """The flag ``feat`` (named ``name``, at key path ``at`` of the payload) lowers to."""
        _feature_types(at, feat)
        variants: dict[str, Any] = {"off": dict(DISABLED), "on": dict(_ENABLED_NO_VARIANT)}
        by_unleash: dict[str, list[str]] = {}

        sources: dict[str, str] = {}  # our variant -> its Unleash variant's key path

        def add_variant(v: Mapping[str, Any], vat: str) -> str:
            value: dict[str, Any] = {"name": v["name"], "enabled": True, "feature_enabled": True}
            payload = v.get("payload")
            if isinstance(payload, Mapping):
                # yggdrasil reads a payload's type and value (strings: _feature_types)
                # and serves only those
                value["payload"] = {"type": payload.get("type"), "value": payload.get("value")}
            elif payload is not None:
                value["payload"] = payload
            ours = str(v["name"])
            n = 1
            while ours in variants and variants[ours] != value:
                n += 1
                ours = f"{v['name']}#{n}"
            variants[ours] = value
            sources.setdefault(ours, vat)
            if ours not in by_unleash.setdefault(str(v["name"]), []):
                by_unleash[str(v["name"])].append(ours)
            return ours

        rules: list[dict[str, Any]] = []
        fvariants = [
            (v, f"{at}.variants[{k}]")
            for k, v in enumerate(_list(feat.get("variants"), f"{at}.variants"))
            if isinstance(v, Mapping)
        ]
        fweights = [(v, int(v.get("weight") or 0), vat) for v, vat in fvariants]
        # A missing or null "strategies" is an empty list, and an empty list is on for
        # everyone (while "enabled"): the client specification's 01-simple-examples.json
        # ("Feature.C should be enabled when strategy missing", "strategies": []), and
        # yggdrasil, the Unleash Python SDK's engine, which reads a missing key as [].
        strategies = _list(feat.get("strategies"), f"{at}.strategies")
        if not strategies:
            strategies = [{"name": "default"}]
        for j, s in enumerate(strategies):
            if len(rules) > MAX_FEATURE_RULES or self.rules_total + len(rules) > MAX_IMPORT_RULES:
                raise _Malformed(at, self.too_many_rules(len(rules)))
            s = _object(s, f"{at}.strategies[{j}]")
            conds, gate = self.strategy(name, s, f"{at}.strategies[{j}]")
            svariants = [
                (v, f"{at}.strategies[{j}].variants[{k}]")
                for k, v in enumerate(_list(s.get("variants"), f"{at}.strategies[{j}].variants"))
                if isinstance(v, Mapping)
            ]
            sweights = [(v, int(v.get("weight") or 0), vat) for v, vat in svariants]
            base: dict[str, Any] = {}
            if conds:
                base["when"] = conds[0] if len(conds) == 1 else {"all": conds}
            if gate is not None:
                base["gates"] = [gate]
            if sum(w for _, w, _ in sweights) > 0:
                params = s.get("parameters") or {}
                # yggdrasil splits a strategy's variants by the strategy's stickiness
                # and groupId (a variant's own stickiness is not read there)
                stick = params.get("stickiness")
                group = name if params.get("groupId") is None else str(params["groupId"])
                rules.append({**base, **_variant_split(sweights, group, stick, add_variant)})
            elif sum(w for _, w, _ in fweights) > 0:
                # Overrides first, in variant order: the first variant with a matching one.
                for v, _, vat in fweights:
                    for o in v.get("overrides") or []:
                        vals = [str(x) for x in o.get("values") or []]
                        if not vals:
                            continue
                        test = {"attr": escape_name(str(o.get("contextName"))), "in": vals}
                        when = {"all": [*conds, test]} if conds else test
                        rules.append({**base, "when": when, "serve": add_variant(v, vat)})
                stick = fvariants[0][0].get("stickiness")
                rules.append({**base, **_variant_split(fweights, name, stick, add_variant)})
            else:
                rules.append({**base, "serve": "on"})
        if len(rules) > MAX_FEATURE_RULES or self.rules_total + len(rules) > MAX_IMPORT_RULES:
            raise _Malformed(at, self.too_many_rules(len(rules)))
        self.rules_total += len(rules)
        if feat.get("enabled"):  # a disabled feature is off for both
            self.unknown_segments(at, strategies)
        by_unleash["disabled"] = ["on"]
        _feature_types(at, feat, missing=True)
        self.variant_names[name] = by_unleash
        self.variant_sources[name] = sources
        return {
            "variants": variants,
            "default": "off",
            "off_variant": "off",
            "enabled": bool(feat.get("enabled")),
            "on_variants": [k for k, v in variants.items() if v["feature_enabled"]],
            "rules": rules,
            "description": str(feat.get("description") or ""),
            "metadata": {"unleash": {"type": feat.get("type"), "project": feat.get("project")}},
        }

    def unknown_segments(self, at: str, strategies: list[Any]) -> None:
        """A strategy referring to a segment the payload does not hold: yggdrasil (the
        engine of the Python SDK) turns the whole feature off, the Node SDK only that
        strategy. They agree only where every strategy refers to one (the feature is
        off); elsewhere the feature is refused naming the reference (_Malformed)."""
        first = None
        every = True
        for j, s in enumerate(strategies):
            segs = s.get("segments") if isinstance(s, Mapping) else None
            missing = [k for k, seg in enumerate(segs or []) if self.raw_segments.get(seg) is None]
            if missing and first is None:
                first = f"{at}.strategies[{j}].segments[{missing[0]}]"
            every = every and bool(missing)
        if first is not None and not every:
            raise _Malformed(
                first,
                "a segment the payload does not hold: yggdrasil, the engine of the Python "
                "SDK, turns the whole feature off for it, the Node SDK only this strategy",
            )

    def dependencies(self, name: str, deps: list[Any], flags: dict[str, Any], at: str) -> None:
        pres: list[dict[str, Any]] = []
        for i, d in enumerate(deps):
            parent = d.get("feature") if isinstance(d, Mapping) else None
            if not isinstance(parent, str):
                self.problem(
                    f"{at}.dependencies[{i}]",
                    "dependency without 'feature'",
                )
                continue
            if parent not in flags or self.has_dependencies.get(parent):
                # Unleash: an unknown parent, or a parent with dependencies of its own
                # (only one level is allowed), disables the child
                flags[name]["enabled"] = False
                continue
            if parent in self.implicit_group:
                # yggdrasil (the engine of the Python SDK) buckets a rollout without a
                # groupId by the name of the feature it evaluates: checking a dependency,
                # the child's, so the parent answers there unlike on its own
                self.problem(
                    f"{at}.dependencies[{i}]",
                    f"the parent {parent!r:.60} has a partial rollout without a groupId "
                    f"({self.implicit_group[parent]}): "
                    "yggdrasil, the engine of the Python SDK, buckets it by this feature's "
                    "name when it checks the dependency, other SDKs by the parent's: "
                    "set the rollout's groupId",
                )
                continue
            if d.get("enabled", True) is False:
                pres.append({"flag": parent, "off": True})
            elif d.get("variants"):
                ours = [
                    o for v in d["variants"] for o in self.variant_names[parent].get(str(v), [])
                ]
                if "on" not in ours and any(r.get("serve") == "on" for r in flags[parent]["rules"]):
                    # the parent is enabled without a variant for some users: yggdrasil
                    # (the engine of the Python SDK) takes the dependency as satisfied
                    # whatever the list, the Node SDK only when it names "disabled"
                    self.problem(
                        f"{at}.dependencies[{i}].variants",
                        f"the parent {parent!r:.60} can be enabled without a variant, and "
                        "Unleash's SDKs disagree there (yggdrasil, the engine of the Python "
                        "SDK, satisfies the dependency, the Node SDK does not unless the list "
                        "names 'disabled'): name 'disabled' or give the parent variants",
                    )
                    continue
                if not ours:
                    flags[name]["enabled"] = False  # no such variant: never satisfied
                    continue
                pres.append({"flag": parent, "variants": ours})
            else:
                pres.append({"flag": parent})
        flags[name]["prerequisites"] = pres


def _gate(by: list[str], group: str, percent: int) -> dict[str, Any]:
    """Unleash rollout: on when ``murmur3(f"{groupId}:{value}", 0) % 100 + 1 <= rollout``,
    i.e. bucket ``murmur3 % 100`` below the rollout."""
    return {
        "hash": {"scheme": "murmur3", "by": by, "salt": f"{group}:", "space": 100},
        "hi": percent,
    }


def _variant_split(
    weighted: list[tuple[Mapping[str, Any], int, str]], group: str, stickiness: Any, add: Any
) -> dict[str, Any]:
    """Unleash variant choice: target ``murmur3(f"{groupId}:{value}", 86028157) % total + 1``,
    the first variant whose cumulative weight reaches it (zero weights skipped): the
    variant owning bucket ``target - 1`` of ``total``."""
    total = sum(w for _, w, _ in weighted if w > 0)
    by = _stickiness(stickiness, _VARIANT_DEFAULT, variants=True)
    return {
        "hash": {
            "scheme": "murmur3",
            "by": by,
            "salt": f"{group}:",
            "seed": UNLEASH_VARIANT_SEED,
            "space": total,
        },
        "buckets": [[add(v, at), w] for v, w, at in weighted if w > 0],
    }
