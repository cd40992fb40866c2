"""A test-only interpreter: evaluates a decoded Snapshot straight from the README's
"Flag semantics" and "Bucketing" sections, with no compiled tables.

Both evaluators read the same tables, so comparing them cannot see a compiler bug;
comparing each of them with this interpreter can. It is written from the README,
not from the compiler: it never imports cfgcore.compiler or cfgcore._layout, and
re-implements semantic-version precedence itself. It favours obviousness over speed.
"""

from __future__ import annotations

import math
import numbers
import re
import sys
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any
from uuid import UUID

from cfgcore._eval_py import murmur3_32  # MurmurHash3 x86_32: checked against mmh3 elsewhere
from cfgcore.details import ErrorCode, EvaluationDetails, Reason
from cfgcore.interop._hashing import cbor_encode, fnv1a32  # documented formulas, tested
from cfgcore.snapshot import Condition, Flag, Hashing, Prerequisite, Snapshot

try:  # README: `matches` searches with RE2 when google-re2 is installed
    import re2 as _regex_engine  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover
    _regex_engine = re

MISSING = object()  # absent or None
UNUSABLE = object()  # present, but no operator except exists can use it
REGEX_INPUT_LIMIT = 4096


def _decimal(n: int) -> str:
    """``str(n)`` at any size (``str`` refuses ints past sys.get_int_max_str_digits())."""
    if n < 0:
        return "-" + _decimal(-n)
    chunks = []
    while n >= 10**18:
        n, low = divmod(n, 10**18)
        chunks.append(f"{low:018d}")
    return str(n) + "".join(reversed(chunks))


def usable(value: Any) -> Any:
    """README "Types are strict": a str, a number (not NaN, fits a double) or a bool;
    a subclass counts as its base value; None is missing; anything else unusable."""
    if value is None:
        return MISSING
    if value is True or value is False:
        return value
    cls = type(value)
    if issubclass(cls, str):
        text = str.__str__(value)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return UNUSABLE
        return text
    if issubclass(cls, int):
        number = int.__int__(value)
        try:
            float(number)
        except OverflowError:
            return UNUSABLE
        return number
    if issubclass(cls, float):
        number = float.__float__(value)
        return UNUSABLE if math.isnan(number) else number
    # README "Types are strict": NumPy's bool, integer and floating scalars read as the
    # Python values they hold; a Decimal or an exact Fraction as the int it equals
    # (20 digits at most), else as the nearest float.
    if cls is UUID:  # README "Types are strict": a UUID is its canonical text
        return str(value)
    np = sys.modules.get("numpy")
    if np is not None and issubclass(cls, np.timedelta64):  # an integer to NumPy, a duration
        return UNUSABLE
    if np is not None and issubclass(cls, np.bool_):
        return bool(np.generic.item(value))
    if np is not None and issubclass(cls, np.integer):
        return usable(int(np.generic.item(value)))
    if np is not None and issubclass(cls, np.floating):
        return usable(float(np.longdouble(np.generic.item(value))))
    if issubclass(cls, Decimal) and Decimal.is_finite(value):
        # One equal to an int of at most 20 digits (a NUMERIC id column) is that int.
        if Decimal.copy_abs(value) < 10**20:
            whole = Decimal.__round__(value)
            if Decimal.__eq__(value, whole):
                return whole
    if cls is Fraction and value.denominator == 1 and abs(value.numerator) < 10**20:
        return int(value.numerator)
    if issubclass(cls, Decimal) or cls is Fraction:
        try:
            number = float(Decimal.__float__(value) if issubclass(cls, Decimal) else value)
        except (ValueError, OverflowError):  # a signalling NaN; past a double
            return UNUSABLE
        return UNUSABLE if math.isnan(number) else number
    return UNUSABLE


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _kind(value: Any) -> str | None:
    if value is True or value is False:
        return "bool"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (int, float)):
        return "num"
    return None


def _same(a: Any, b: Any) -> bool:
    """Equality with strict types: a bool is not a number, a str never equals a number."""
    return _kind(a) is not None and _kind(a) == _kind(b) and a == b


def semver(text: Any) -> tuple | None:
    """SemVer 2.0 precedence key (semver.org section 11); a leading v is accepted."""
    if not isinstance(text, str) or len(text) > 256:
        return None
    if text.startswith("v"):
        text = text[1:]
    core, _, build = text.partition("+")
    if "+" in text and not re.fullmatch(r"[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*", build, re.ASCII):
        return None
    main, dash, pre = core.partition("-")
    parts = main.split(".")
    if len(parts) != 3 or not all(re.fullmatch(r"0|[1-9][0-9]*", p, re.ASCII) for p in parts):
        return None
    if not dash:
        return (*map(int, parts), (1,))
    ids = pre.split(".")
    tail: list[tuple] = []
    for ident in ids:
        if re.fullmatch(r"0|[1-9][0-9]*", ident, re.ASCII):
            tail.append((0, int(ident), ""))
        elif re.fullmatch(r"[0-9A-Za-z-]+", ident, re.ASCII) and not ident.isdigit():
            tail.append((1, 0, ident))
        else:
            return None
    return (*map(int, parts), (0, *tail))


class Interpreter:
    """Evaluate flags of one decoded snapshot for plain-dict contexts."""

    def __init__(self, snapshot: Snapshot, clock: Callable[[], float] | None = None) -> None:
        self.snap = snapshot
        self.clock = clock

    # -- conditions -------------------------------------------------------------------
    def attr(self, ctx: Mapping[str, Any], name: str) -> Any:
        try:
            value = ctx.get(name)
        except Exception:  # a mapping whose get() raises: no attribute read (both evaluators)
            return MISSING
        try:
            return usable(value)
        except Exception:
            return UNUSABLE

    def matches(self, cond: Condition, ctx: Mapping[str, Any], now: list | None = None) -> bool:
        now = [] if now is None else now  # one clock reading per evaluation
        if cond.all is not None:
            return all(self.matches(c, ctx, now) for c in cond.all)
        if cond.any is not None:
            return any(self.matches(c, ctx, now) for c in cond.any)
        if cond.not_ is not None:
            return not self.matches(cond.not_, ctx, now)
        if cond.segment is not None:
            return self.matches(self.snap.segments[cond.segment], ctx, now)
        if cond.prerequisite is not None:  # another flag's answer, for the same context
            return self.holds(cond.prerequisite, ctx, now)
        assert cond.attr is not None
        if cond.has_any is not None:
            return self.has_any(cond, ctx)
        v = self.attr(ctx, cond.attr)
        if cond.exists is not None:
            return (v is not MISSING) == cond.exists
        if v is MISSING or v is UNUSABLE:
            return False
        ci = cond.ignore_case
        if cond.eq is not None:
            if ci:
                return isinstance(v, str) and v.casefold() == cond.eq.casefold()
            return _same(v, cond.eq)
        if cond.ne is not None:
            if ci:
                return isinstance(v, str) and v.casefold() != cond.ne.casefold()
            return _kind(v) == _kind(cond.ne) and not _same(v, cond.ne)
        if cond.in_ is not None:
            if ci:
                return isinstance(v, str) and v.casefold() in {c.casefold() for c in cond.in_}
            return any(_same(v, c) for c in cond.in_)
        if cond.not_in is not None:
            if ci:
                return isinstance(v, str) and v.casefold() not in {
                    c.casefold() for c in cond.not_in
                }
            # no constants: any usable value is outside them
            kinds = {_kind(c) for c in cond.not_in} or {"str", "num", "bool"}
            return _kind(v) in kinds and not any(_same(v, c) for c in cond.not_in)
        for op, test in (
            ("lt", lambda a, b: a < b),
            ("le", lambda a, b: a <= b),
            ("gt", lambda a, b: a > b),
            ("ge", lambda a, b: a >= b),
        ):
            bound = getattr(cond, op)
            if bound is not None:
                # numbers compare as doubles (README: ordering operators)
                return _kind(v) == "num" and test(float(v), float(bound))
        if not isinstance(v, str):
            return False
        for op, test in (
            ("starts_with", str.startswith),
            ("ends_with", str.endswith),
            ("contains", lambda h, n: n in h),
        ):
            needle = getattr(cond, op)
            if needle is not None:
                if ci:
                    return test(v.casefold(), needle.casefold())
                return test(v, needle)
        if cond.matches is not None:
            if len(v) > REGEX_INPUT_LIMIT:
                return False
            pattern = ("(?i)" if ci else "") + cond.matches
            return _regex_engine.search(pattern, v) is not None
        for op, test in (
            ("semver_eq", lambda a, b: a == b),
            ("semver_lt", lambda a, b: a < b),
            ("semver_gt", lambda a, b: a > b),
        ):
            const = getattr(cond, op)
            if const is not None:
                key = semver(v)
                return key is not None and test(key, semver(const))
        raise AssertionError(cond)  # pragma: no cover

    def has_any(self, cond: Condition, ctx: Mapping[str, Any]) -> bool:
        """README "Operators": an array (list, tuple, set, frozenset; a subclass by its
        elements) with an element that ``in`` with the same constants matches."""
        assert cond.attr is not None and cond.has_any is not None
        try:
            array = ctx.get(cond.attr)
        except Exception:
            return False
        for base in (list, tuple, set, frozenset):
            if isinstance(array, base):
                elements = list(base.__iter__(array))
                break
        else:
            return False
        single = Condition(attr="e", in_=cond.has_any, ignore_case=cond.ignore_case)
        return any(self.matches(single, {"e": e}) for e in elements)  # an array: unusable

    # -- bucketing --------------------------------------------------------------------
    def bucket_text(self, ctx: Mapping[str, Any], name: str) -> str | None:
        """docs/flags.md "Int ids": the text a bucketing attribute is hashed as: a str,
        or an int (not a bool) as its decimal text (past a double's range too) when
        that text has at most 4,300 characters, the sign counted (a NumPy integer as the
        int it holds, an integral Decimal or Fraction as the int it equals); a longer
        int is no id, as a float is not."""
        v = self.attr(ctx, name)
        if isinstance(v, str):
            return v
        try:
            raw = ctx.get(name)
        except Exception:
            return None
        if isinstance(raw, int) and not isinstance(raw, bool):
            text = _decimal(int.__int__(raw))
            return text if len(text) <= 4300 else None
        np = sys.modules.get("numpy")
        if (
            np is not None
            and issubclass(type(raw), np.integer)
            and not issubclass(type(raw), np.timedelta64)
        ):  # an id in a pandas column
            return str(int(np.generic.item(raw)))
        if isinstance(raw, (Decimal, Fraction)) and type(v) is int:  # an integral NUMERIC id
            return str(v)
        return None

    def bucket(self, key: str, flag: Flag, names: Any, ctx: Mapping[str, Any]) -> int | None:
        """README "Bucketing": the first bucket_by attribute holding a str or an int."""
        if isinstance(names, str):
            names = [names]
        for name in names:
            text = self.bucket_text(ctx, name)
            if text is None:
                continue
            salt = flag.salt if flag.salt is not None else key
            return murmur3_32(f"{salt}:{text}".encode("utf-8", "surrogatepass")) % 100_000
        return None

    def hashed(self, h: Hashing, ctx: Mapping[str, Any]) -> int | None:
        """README "Bucketing" / ``snapshot.Hashing``: an imported rule's own scheme."""
        for name in h.by:
            text = self.bucket_text(ctx, name)
            if text is None:
                continue  # as for flags: the first attribute holding a str or an int
            return _scheme(h, text, isinstance(self.attr(ctx, name), str))
        return None

    # -- flags ------------------------------------------------------------------------
    def variants(self, flag: Flag) -> dict[str, Any]:
        return flag.variants if flag.variants is not None else {"on": True, "off": False}

    def off_variant(self, flag: Flag) -> str:
        if flag.off_variant is not None:
            return flag.off_variant
        assert flag.default is not None
        return "off" if flag.variants is None else flag.default

    def now(self) -> float:
        if self.clock is None:
            import time

            return time.time()
        # README "Off states": epoch seconds (a real number, by value) or a datetime
        # with a time zone; anything else counts as a clock that raises (outside).
        try:
            answer = self.clock()
            if isinstance(answer, datetime):
                return answer.timestamp() if answer.utcoffset() is not None else math.nan
            if isinstance(answer, bool) or not isinstance(answer, (numbers.Real, Decimal)):
                return math.nan
            return float(answer)
        except Exception:
            return math.nan

    def holds(self, pre: str | Prerequisite, ctx: Mapping[str, Any], now: list) -> bool:
        """README "Prerequisites": flag ``pre.flag`` serves what ``pre`` asks."""
        if isinstance(pre, str):
            pre = Prerequisite(flag=pre)
        got, _, _ = self.resolve(pre.flag, ctx, now)
        target = self.snap.flags[pre.flag]
        if pre.variants is not None:
            return got in pre.variants
        if pre.variant:
            return got == pre.variant
        if target.on_variants is not None:
            on = got in target.on_variants
        else:
            on = self.variants(target)[got] is True
        return not on if pre.off else on

    def resolve(self, key: str, ctx: Mapping[str, Any], now: list) -> tuple[str, str, int | None]:
        """(variant name, reason, rule index) for flag ``key``."""
        flag = self.snap.flags[key]
        if not flag.enabled:
            return self.off_variant(flag), Reason.DISABLED, None
        if flag.schedule is not None:
            if not now:
                now.append(self.now())
            start = _epoch(flag.schedule.start, -math.inf)
            end = _epoch(flag.schedule.end, math.inf)
            if not (start <= now[0] < end):
                return self.off_variant(flag), Reason.DISABLED, None
        for pre in flag.prerequisites:
            if not self.holds(pre, ctx, now):
                return self.off_variant(flag), Reason.PREREQUISITE_FAILED, None
        for i, rule in enumerate(flag.rules):
            if rule.when is not None and not self.matches(rule.when, ctx, now):
                continue
            gates_hold = True
            for gate in rule.gates:  # every gate's bucket range must hold first
                b = self.hashed(gate.hash, ctx)
                if b is None or not gate.lo <= b < gate.hi:
                    gates_hold = False
                    break
            if not gates_hold:
                continue
            if rule.hash is not None:
                assert rule.buckets is not None
                b = self.hashed(rule.hash, ctx)
                if b is None:
                    continue
                upper, chosen = 0, None
                for name, width in rule.buckets:  # consecutive ranges; null falls through
                    upper += width
                    if b < upper:
                        chosen = name
                        break
                if chosen is None:
                    continue
                return chosen, Reason.SPLIT, i
            if rule.split is None and rule.rollout is None:
                assert rule.serve is not None
                return rule.serve, (Reason.SPLIT if rule.gates else Reason.TARGETING_MATCH), i
            # a rule's bucket_by, else the flag's, else the default; a name given as text
            # ("", the attribute named "", too) is a list of that one name
            names = _names(rule.bucket_by) or _names(flag.bucket_by) or ["user_id", "targeting_key"]
            bucket = self.bucket(key, flag, names, ctx)
            if bucket is None:
                continue  # no attribute to bucket by: the rule does not apply
            if rule.split is None:
                assert rule.serve is not None
                if bucket < round(float(rule.rollout) * 1000):
                    return rule.serve, Reason.SPLIT, i
                continue
            # consecutive ranges in the order written, weight * 1000 buckets each;
            # rounding never leaves a bucket unassigned (the last range ends at 100000)
            names_in_order = list(rule.split)
            total = 0.0
            for j, name in enumerate(names_in_order):
                total += float(rule.split[name])
                upper = 100_000 if j == len(names_in_order) - 1 else round(total * 1000)
                if bucket < upper:
                    return name, Reason.SPLIT, i
        assert flag.default is not None
        return flag.default, (Reason.STATIC if not flag.rules else Reason.DEFAULT), None

    def evaluate(
        self, key: str, ctx: Mapping[str, Any] | None = None, default: Any = None
    ) -> EvaluationDetails:
        ctx = ctx if isinstance(ctx, Mapping) else {}
        if key not in self.snap.flags:
            return EvaluationDetails(
                flag_key=key,
                value=default,
                variant=None,
                reason=Reason.ERROR,
                error_code=ErrorCode.FLAG_NOT_FOUND,
                error_message="flag not found",
            )
        name, reason, rule = self.resolve(key, ctx, [])
        value = _frozen(self.variants(self.snap.flags[key])[name])
        if default is not None and _value_kind(default) != _value_kind(value):
            return EvaluationDetails(
                flag_key=key,
                value=default,
                variant=None,
                reason=Reason.ERROR,
                error_code=ErrorCode.TYPE_MISMATCH,
                error_message="served value's type differs from the default's",
            )
        return EvaluationDetails(
            flag_key=key, value=value, variant=name, reason=reason, rule_index=rule
        )

    def evaluate_all(self, ctx: Mapping[str, Any] | None = None) -> dict[str, Any]:
        ctx = ctx if isinstance(ctx, Mapping) else {}
        now: list = []
        return {
            key: _frozen(self.variants(flag)[self.resolve(key, ctx, now)[0]])
            for key, flag in self.snap.flags.items()
        }


def _scheme(h: Hashing, text: str, is_str: bool) -> int | None:
    """The formulas of ``cfgcore.snapshot.Hashing``'s docstring, one by one."""
    joined = (h.salt + text + h.suffix).encode("utf-8", "surrogatepass")
    if h.scheme == "murmur3":
        return murmur3_32(joined, h.seed) % h.space
    if h.scheme == "growthbook_v1":
        return fnv1a32(h.salt + text + h.suffix) % h.space
    if h.scheme == "growthbook_v2":
        return fnv1a32(str(fnv1a32(h.salt + text + h.suffix))) % h.space
    if h.scheme == "flagd_v2":
        data = joined
    elif h.scheme == "flagd_v3_cbor":
        if not is_str or not re.fullmatch(r"(?:[0-9a-fA-F]{2})+", text):
            return None
        data = bytes.fromhex(text)
    elif h.scheme == "flagd_v3" and (h.salt or h.suffix):
        data = cbor_encode(h.salt + text + h.suffix)  # the text, whatever the value's type
    else:
        value: Any = text if is_str else int(text)
        if not is_str and not -(2**64) < value < 2**64:
            return None  # no CBOR integer holds it
        data = cbor_encode([h.salt, value] if h.scheme == "flagd_v3_pair" else value)
    return (murmur3_32(data, h.seed) * h.space) >> 32


def _epoch(dt: datetime | None, default: float) -> float:
    if dt is None:
        return default
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def _value_kind(value: Any) -> str:
    """A default's kind (CHANGES: a default is a number by the one rule for numbers, a
    NumPy scalar, ``Fraction`` or ``Decimal`` included; NumPy's bool is a bool, as a
    context value is; any mapping asks for an object)."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "bool"
    if isinstance(value, str):
        return "str"
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.bool_):
        return "bool"
    if isinstance(value, (numbers.Real, Decimal)):
        return "num"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    return "other"


def _frozen(value: Any) -> Any:
    """A variant value as the engine serves it: read-only dict and list subclasses."""
    from cfgcore.config.tree import FrozenDict, FrozenList

    if isinstance(value, dict):
        return FrozenDict({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):  # a tuple (from Python) is an array too
        return FrozenList([_frozen(v) for v in value])
    return value


def comparable(details: EvaluationDetails) -> tuple:
    """The fields the interpreter defines (snapshot_version is the engine's business)."""
    return (
        details.flag_key,
        details.value,
        type(details.value),
        details.variant,
        details.reason,
        details.rule_index,
        details.error_code,
    )
