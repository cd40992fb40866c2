"""Evaluation results, modelled on OpenFeature's resolution details.

Both evaluator implementations return these same types, so tests can compare
them field by field.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import msgspec

from cfgcore._numbers import real_number


class Reason:
    """Why a value was served (OpenFeature reason strings)."""

    STATIC = "STATIC"  # the flag has no targeting rules: its default variant
    DEFAULT = "DEFAULT"  # rules exist but none matched: the default variant
    TARGETING_MATCH = "TARGETING_MATCH"  # a rule matched and serves a fixed variant
    SPLIT = "SPLIT"  # a rollout or weighted split assigned the variant by bucket
    DISABLED = "DISABLED"  # switched off, or outside its schedule: the off variant
    PREREQUISITE_FAILED = "PREREQUISITE_FAILED"  # a prerequisite flag did not pass: off variant
    ERROR = "ERROR"  # the caller's default was returned; see error_code


class ErrorCode:
    """Why the caller's default was returned (OpenFeature error codes)."""

    FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
    TYPE_MISMATCH = "TYPE_MISMATCH"
    INVALID_CONTEXT = "INVALID_CONTEXT"
    GENERAL = "GENERAL"


# Error codes as the evaluators count them (index into ERROR_CODES: the layout's ERR_*).
ERROR_CODES = (
    ErrorCode.FLAG_NOT_FOUND,  # an unknown flag key (or a key that is not a str)
    ErrorCode.TYPE_MISMATCH,  # a default of another kind; is_enabled on a non-boolean flag
    ErrorCode.INVALID_CONTEXT,  # a context neither None, a mapping nor a Context: no attributes
    ErrorCode.GENERAL,  # the engine's clock raised: scheduled flags were out of window
)


# Reason codes as the evaluators produce them (index into REASONS).
REASONS = (
    Reason.STATIC,
    Reason.DEFAULT,
    Reason.TARGETING_MATCH,
    Reason.SPLIT,
    Reason.DISABLED,
    Reason.PREREQUISITE_FAILED,
    Reason.ERROR,
)


def exact_value(value: Any) -> Any:
    """A str, int or float subclass instance as its base type's exact value.

    Never through its overridden ``__hash__``, ``__eq__``, ``encode`` or ``__float__``
    (which could raise, or answer differently on each call). Called for values whose
    type is not exactly str/int/float/bool/None; anything else comes back unchanged.
    Keys and names are read so; a context value more widely (:func:`context_value`).
    """
    cls = type(value)  # not isinstance: that would consult a faked __class__
    if issubclass(cls, str):
        return str.__str__(value)
    if issubclass(cls, int):
        return int.__int__(value)
    if issubclass(cls, float):
        return float.__float__(value)
    return value


def context_value(value: Any) -> Any:
    """A context value whose type is not exactly str/int/float/bool/None as the plain
    value both evaluators bind (README "Types are strict"):

    * a str, int or float subclass instance: its base type's exact value
      (:func:`exact_value`);
    * a NumPy bool, integer or floating scalar (as a pandas row or a model's output
      holds them): the Python bool, int or float it holds;
    * a ``Decimal`` (a database driver's NUMERIC) or a ``Fraction``: the int it equals
      when it is integral and has at most 20 digits (a NUMERIC id, a uint64 included:
      exactly, where a double holds 15 to 17 digits, and bucketed as that int), else
      the nearest float (a signalling NaN, or a Fraction past a double, raises: unusable);
    * a :class:`uuid.UUID` (a user id as an ORM gives it): its canonical text, so it
      matches, buckets and is filed as that text.

    Never through the value's own overridden ``__hash__``, ``__eq__``, ``encode``,
    ``__float__``, ``__int__`` or ``item`` (which could raise, or answer differently on
    each call): the base types' methods read what is stored. Anything else comes back
    unchanged (unusable). May raise: the evaluators read the value as unusable then.
    """
    cls = type(value)
    if issubclass(cls, (str, int, float)):
        return exact_value(value)
    convert = _numpy_convert(cls)  # NumPy's own scalar types: their C conversions
    if convert is not None:
        return convert(value)
    if issubclass(cls, Decimal):
        return _decimal_number(value)
    fractions = sys.modules.get("fractions")  # (none exists before it is imported)
    if fractions is not None and cls is fractions.Fraction:  # a subclass's numerator may lie
        num, den = value.numerator, value.denominator
        if den == 1 and -_EXACT_INT < num < _EXACT_INT:
            return int.__int__(num)
        return float(value)
    if _is_uuid(cls):
        return str(value)  # its canonical text: "12345678-1234-5678-1234-567812345678"
    np = sys.modules.get("numpy")
    if np is not None and issubclass(cls, np.generic) and _numpy_scalar(np, cls):
        convert = _numpy_convert(cls)  # (filled now)
        if convert is not None:
            return convert(value)
        # A subclass of a NumPy scalar type: its stored value, not its own methods.
        number = np.generic.item(value)  # a Python bool, int or float; a long double
        return number if type(number) is not np.longdouble else np.longdouble.__float__(number)
    return value


# An integral Decimal or Fraction below this magnitude (20 digits: every int64 and
# uint64 id) reads as its int; a longer one as the nearest float, as any other.
_EXACT_INT = 10**20


def _decimal_number(value: Decimal) -> int | float:
    """``value``'s number by its stored value (never a subclass's own methods): the int
    of an integral one under ``_EXACT_INT``, else the nearest float. The magnitude is
    checked first, so a huge exponent ("1e999999999") costs no huge int."""
    if Decimal.is_finite(value) and Decimal.adjusted(value) < 20:
        whole = Decimal.__int__(value)  # (truncated: at most 20 digits)
        if Decimal.__eq__(value, whole):
            return whole
    return Decimal.__float__(value)  # (a signalling NaN raises ValueError)


# NumPy's own bool, integer and floating scalar types (static types: a subclass made in
# Python, which may override __int__, is none) -> the conversion to the Python value,
# filled at the first NumPy scalar seen. numpy.float64 is a float subclass, read as one.
_NUMPY_SCALARS: dict[type, Any] = {}
_HEAP_TYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE


def _numpy_convert(cls: type) -> Any:
    """The conversion :data:`_NUMPY_SCALARS` holds for ``cls``, None for none. Looked up
    only for a class whose metaclass is ``type`` (NumPy's scalar types' is): looking a
    class up hashes it, and a metaclass's own ``__hash__`` (which may raise, or change
    the list the value sits in) ran for every value of that class. A list subclass with
    such a metaclass was unusable to the compiled evaluator (which reads a value through
    :func:`context_value` before it looks for an array) and read by its elements by the
    reference one."""
    return _NUMPY_SCALARS.get(cls) if type(cls) is type else None


def _numpy_scalar(np: Any, cls: type) -> bool:
    """Whether ``cls`` is a NumPy bool, integer or floating type (a subclass included);
    fills :data:`_NUMPY_SCALARS` the first time."""
    if not _NUMPY_SCALARS:
        for base, convert in ((np.bool_, bool), (np.integer, int), (np.floating, float)):
            todo = [base]
            while todo:
                kind = todo.pop()
                if kind is np.timedelta64:  # an integer to NumPy, a duration here: no number
                    continue
                todo.extend(kind.__subclasses__())
                if not kind.__flags__ & _HEAP_TYPE and kind.__module__ == "numpy":
                    _NUMPY_SCALARS.setdefault(kind, convert)
    return issubclass(cls, (np.bool_, np.integer, np.floating)) and not issubclass(
        cls, np.timedelta64
    )


def _is_uuid(cls: type) -> bool:
    """Whether ``cls`` is exactly :class:`uuid.UUID` (a subclass's ``int`` may lie)."""
    uuid = sys.modules.get("uuid")  # (none exists before it is imported)
    return uuid is not None and cls is uuid.UUID


def _numpy_integer(cls: type) -> bool:
    """Whether ``cls`` is a NumPy integer scalar type (an id as a pandas column holds it)."""
    if _numpy_convert(cls) is int:
        return True
    np = sys.modules.get("numpy")
    return (
        np is not None
        and issubclass(cls, np.integer)
        and not issubclass(cls, np.timedelta64)  # a duration: no id
    )


def exact_array(value: Any) -> list | tuple | set | frozenset | None:
    """An array value's elements as a built-in container, for ``has_any``: an exact
    list, tuple, set or frozenset itself; a subclass's stored elements copied by the
    base type's own method (its overridden ``__iter__`` is never called); None for
    anything else. Both evaluators read arrays through this."""
    cls = type(value)
    if cls is list or cls is tuple or cls is set or cls is frozenset:
        return value
    if issubclass(cls, list):
        return list.copy(value)
    if issubclass(cls, tuple):
        return tuple.__getitem__(value, slice(None))
    if issubclass(cls, set):
        return set.copy(value)
    if issubclass(cls, frozenset):
        return frozenset.copy(value)
    return None


def exact_name(name: Any) -> str | None:
    """A test, metric or flag name as an exact str: a str subclass by its value (its own
    hash and eq are never called); None for anything else (no such test), a str
    holding a lone surrogate included (it is not text: no file can hold it, and a
    writer encoding a batch that held one would lose the whole batch). By its real
    type, not isinstance(): an object whose ``__class__`` raises (or lies) is no name,
    and a seed-API call given one answers instead of raising."""
    if type(name) is not str:
        if not issubclass(type(name), str):
            return None
        try:
            name = str.__str__(name)
        except Exception:
            return None
    return name if name.isascii() or _is_text(name) else None


def _is_text(s: str) -> bool:
    """Whether ``s`` encodes as UTF-8 (no lone surrogates; a str subclass by its stored
    value, its own ``encode`` never called)."""
    try:
        str.encode(s)
    except UnicodeEncodeError:
        return False
    return True


def metric_user_id(ctx: Any) -> str | None:
    """The user a metric event is filed under: the one its exposure is logged under
    (:func:`cfgcore.experiments.exposures.exposure_user`): the context's ``user_id``
    when the engine buckets by it (a str, or an int that is not a bool), else its
    ``targeting_key`` (the same), as a str; None when neither is usable or the context
    is no mapping. A ``user_id`` of 3.5 or True was filed as "3.5"/"True" while its
    exposure went under the targeting key, so the variant counted one user twice. A
    read or a ``str()`` that raises (a hostile mapping or id) reads as missing."""
    try:
        if not isinstance(ctx, Mapping):  # a bound Context is a Mapping of its attributes
            return None
    except Exception:  # an object faking its __class__
        return None
    uid = _get(ctx, "user_id")
    if not bucketable_id(uid):
        uid = _get(ctx, "targeting_key")
        if not bucketable_id(uid):
            return None
    return user_id_text(uid)


def int_text(value: int) -> str:
    """An int's decimal text whatever ``sys.set_int_max_str_digits`` says: an int id
    buckets as its text does (``42`` and ``"42"`` are one user).

    ``str()`` where the interpreter's limit allows it (ids have at most
    ``ID_FORM_CHARS`` characters, Python's default limit; a program may lower it to
    640 digits); past that limit the int is split in binary halves and recombined with
    ``decimal``'s exact arithmetic, whose fast multiplication keeps the conversion
    subquadratic (as CPython 3.12's ``_pylong.int_to_decimal_string``)."""
    if value.bit_length() < 1000:  # under 302 digits: within any limit
        return str(value)
    try:
        return str(value)
    except ValueError:  # past sys.get_int_max_str_digits
        return _big_int_text(value)


def _big_int_text(value: int) -> str:
    import decimal

    two = decimal.Decimal(2)
    powers: dict[int, decimal.Decimal] = {}

    def power(w: int) -> decimal.Decimal:  # 2**w, memoised
        p = powers.get(w)
        if p is None:
            if w <= 128:
                p = two**w
            elif w - 1 in powers:
                p = powers[w - 1] + powers[w - 1]
            else:
                half = w >> 1
                p = power(half) * power(w - half)
            powers[w] = p
        return p

    def convert(n: int, w: int) -> decimal.Decimal:  # n < 2**w
        if w <= 128:
            return decimal.Decimal(n)
        half = w >> 1
        hi = n >> half
        return convert(n - (hi << half), half) + convert(hi, w - half) * power(half)

    n = -value if value < 0 else value
    with decimal.localcontext() as ctx:
        ctx.prec = decimal.MAX_PREC
        ctx.Emax = decimal.MAX_EMAX
        ctx.Emin = decimal.MIN_EMIN
        ctx.traps[decimal.Inexact] = True
        text = str(convert(n, n.bit_length()))
    return "-" + text if value < 0 else text


#: The longest decimal text (sign included) of an int that is an id: Python's default
#: int/str conversion limit (``sys.get_int_max_str_digits``). A longer int is not an id:
#: the engine does not bucket by it (the next ``bucket_by`` attribute is tried), the
#: exposure log does not log it and metric events do not file it. Its text would cost
#: time superlinear in its size on every check (0.5 ms at 5,000 digits, 0.5 s at a
#: million), and a JSON reader refuses such a number anyway. The evaluators and the
#: exposure dedup read this bound (the compiled one as a C constant of the same value).
ID_FORM_CHARS = 4300
_ID_HIGH = 10**ID_FORM_CHARS  # the smallest int whose text is longer
_ID_LOW = -(10 ** (ID_FORM_CHARS - 1))  # "-" and 4,300 digits: one character too many


def int_id_sized(value: int) -> bool:
    """Whether an exact int's decimal text has at most ``ID_FORM_CHARS`` characters
    (one comparison: an int's size is compared before its digits)."""
    return _ID_LOW < value < _ID_HIGH


def bucketable_id(value: Any) -> bool:
    """An id the engine buckets a user by: a str that is text (one holding a lone
    surrogate, as ``json.loads`` makes of ``"\\ud800"``, hashes as nothing: the engine
    buckets by the next attribute), an int that is not a bool and whose decimal text
    has at most ``ID_FORM_CHARS`` characters, a NumPy integer, an integral Decimal or
    Fraction of at most 20 digits (as that int), or a ``uuid.UUID`` (as its canonical
    text). By its real type and value, as the compiled evaluator reads
    it: a faked ``__class__`` or an overridden comparison or ``encode`` does not
    count."""
    kind = type(value)
    if issubclass(kind, str):
        return str.isascii(value) or _is_text(value)
    if issubclass(kind, int) and not issubclass(kind, bool):
        return _ID_LOW < (value if kind is int else int.__int__(value)) < _ID_HIGH
    if value is None:
        return False
    try:
        # (a NumPy int: 64 bits at most; an integral Decimal or Fraction: 20 digits)
        return _numpy_integer(kind) or _is_uuid(kind) or _integral_number(value)
    except Exception:  # a module in sys.modules that is no numpy: no id
        return False


def _integral_number(value: Any) -> bool:
    """Whether ``value`` is a Decimal or Fraction :func:`context_value` reads as an int
    (a NUMERIC id column's value)."""
    fractions = sys.modules.get("fractions")
    kind = type(value)
    if issubclass(kind, Decimal) or (fractions is not None and kind is fractions.Fraction):
        return type(context_value(value)) is int
    return False


def user_id_text(uid: Any) -> str | None:
    """A user id as metric events file it: a str as is; an id the engine buckets by (a
    str or int subclass, a NumPy integer, an integral Decimal or Fraction, an int past
    ``str()``'s digit limit) as the text it buckets, its base value's
    (:func:`context_value`, :func:`int_text`; never its own ``__str__``); anything else
    as its ``str()`` (a float); None when that raises or is not text (a lone surrogate),
    and for an int past ``ID_FORM_CHARS`` characters (no id). Normalised before the
    event is queued: the writer encodes a whole batch at once, and one id it could not
    encode would cost every event of the batch."""
    if uid is not None and type(uid) is not str:
        try:
            kind = type(uid)
            by_value = issubclass(kind, (str, int)) and not issubclass(kind, bool)
            if by_value or _numpy_integer(kind) or _integral_number(uid):
                uid = context_value(uid)
                if type(uid) is int:
                    if not _ID_LOW < uid < _ID_HIGH:
                        return None  # not an id (ID_FORM_CHARS), and no text of its own
                    uid = int_text(uid)
            else:
                uid = str(uid)
        except Exception:
            return None
    return uid if uid is None or uid.isascii() or _is_text(uid) else None


def metric_event_parts(
    test_name: Any, metric: Any, value: Any, user_context: Any, user_id: Any
) -> tuple[Any, str | None, str, str, float] | None:
    """``record_metric``'s arguments made usable, before any lookup: ``(context, user,
    test, metric, value)``, or None when the test or metric name or the value is
    refused (not a text name; not a finite number). The context is ``user_context``,
    else ``{"user_id": user_id}``; the user filed is ``user_id`` as text, else the
    context's (:func:`metric_user_id`). Shared by the method's body and the reference
    ``SeedAPI``; the compiled one does the same in C."""
    ctx = user_context if user_context is not None else {"user_id": user_id}
    user = metric_user_id(ctx) if user_id is None else user_id_text(user_id)
    name, metric_name, number = exact_name(test_name), exact_name(metric), metric_value(value)
    if name is None or metric_name is None or number is None:
        return None
    return ctx, user, name, metric_name, number


def serves_variant(meta: Any, variant: str) -> bool:
    """Whether the A/B test whose record is ``meta`` serves ``variant``: a variant of its
    ``traffic_split`` (``__none__``, the answer for users outside the test, is none).
    ``record_metric`` with an explicit variant records nothing for any other: an event
    filed under a misspelt variant is counted by no report. A record without a split
    (made by hand) takes any name but ``__none__``."""
    if variant == "__none__":
        return False
    try:
        split = meta.get("traffic_split")
        return not isinstance(split, dict) or variant in split
    except Exception:  # a record that is no mapping: nothing to check against
        return True


#: Metric values beyond this magnitude are refused (recording returns False, a log line
#: holding one is unusable): no real metric comes near it, and the squares the variance
#: sums would overflow a float past about 1e154.
MAX_METRIC_VALUE = 1e100

#: The longest metric event id (characters): ids are names, not payloads (an order
#: number, a UUID, a message id). One rule for every writer and reader
#: (:func:`cfgcore.experiments.event_ids.event_id_text`): a longer or empty one is
#: refused (``record`` returns False, an ingested line is refused) and a log line
#: holding one is unusable, as a line with a value beyond ``MAX_METRIC_VALUE`` is.
MAX_EVENT_ID = 256


def _numpy_bool(value: Any) -> bool:
    kind = type(value)
    return kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_")


def metric_value(value: Any) -> float | None:
    """A metric observation as a finite float within ``MAX_METRIC_VALUE``, or None: a
    real number by its value (an int, a float, a NumPy scalar, a Fraction, a Decimal),
    or a bool (``numpy.bool_`` too) as the observation of a binary metric, 1.0 or 0.0
    (``converted=True``: the one place a bool is taken for a number, since dropping a
    conversion recorded so would lose it silently), never text (``"1.5"`` is the
    caller's to parse, as every numeric argument is: :mod:`cfgcore._numbers`), nor a
    NaN or an infinity (either would poison every running mean and variance it joins),
    nor one beyond ``MAX_METRIC_VALUE`` (the metric writer would drop it after the
    call said True)."""
    if type(value) is not float:
        if value is True or value is False or _numpy_bool(value):
            return 1.0 if value else 0.0
        value = real_number(value)
        if value is None:
            return None
    return value if -MAX_METRIC_VALUE <= value <= MAX_METRIC_VALUE else None


def _get(ctx: Any, key: str) -> Any:
    try:
        return ctx.get(key)
    except Exception:
        return None


def key_text(key: Any) -> str:
    """The flag key as reported in details: a str subclass as its exact str, any
    other object as its repr (which may raise: then a placeholder)."""
    if type(key) is str:
        return key
    try:
        return str.__str__(key) if issubclass(type(key), str) else repr(key)
    except Exception:
        return f"<unrepresentable {type(key).__name__}>"


class EvaluationDetails(msgspec.Struct, frozen=True, gc=False):
    """The full answer for one flag and one context.

    ``rule_index`` is the position of the matching rule in the flag's ``rules`` list
    (None when no rule decided); ``error_code`` is set only with reason ERROR.
    """

    flag_key: str
    value: Any
    variant: str | None
    reason: str
    rule_index: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    snapshot_version: int = 0


class EvaluationCounts(msgspec.Struct, frozen=True, gc=False):
    """What an engine evaluated since the previous take (``Engine.take_evaluation_counts``).

    ``evaluations`` maps ``(flag_key, variant_name, reason)`` to the number of top-level
    evaluations (``is_enabled``, ``variant``, ``value``, ``evaluate``, one per flag of
    ``evaluate_all``, the seed API's calls) that served that variant for that reason.
    Reason ``ERROR`` means the flag served the variant but the caller got its default
    (a type mismatch). Prerequisites evaluated on the way are not counted.

    ``errors`` maps an error code (:data:`ERROR_CODES`) to the number of calls that hit
    it: ``FLAG_NOT_FOUND`` calls appear only here (there is no flag to count them under);
    ``TYPE_MISMATCH`` calls also appear under reason ``ERROR``; ``INVALID_CONTEXT`` and
    ``GENERAL`` calls were still answered, and appear under the reason they were served
    with. ``versions`` lists, ascending, the snapshot versions that contributed counts.
    """

    evaluations: dict[tuple[str, str, str], int]
    errors: dict[str, int]
    versions: tuple[int, ...] = ()

    @property
    def total(self) -> int:
        """Every counted flag evaluation (``FLAG_NOT_FOUND`` calls excluded)."""
        return sum(self.evaluations.values())
