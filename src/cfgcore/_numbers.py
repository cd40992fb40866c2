"""The one rule for numbers given to cfgcore's Python API.

A numeric argument (a traffic weight, a rollout or holdout percentage, a metric value,
a guardrail setting, a confidence level, a sample-size input) takes a real number by
its value: ``int``, ``float`` and any other :class:`numbers.Real` (NumPy scalars,
:class:`fractions.Fraction`) or a :class:`decimal.Decimal`, converted to the nearest
float. It refuses

* ``bool``: an ``int`` subclass, but ``True`` is no share of anything (``float(True)``
  rolled a flag out to 1 % of users). A metric observation is the exception: there a
  bool is a binary metric's 1 or 0 (``record_metric(..., converted)``);
* text: ``"25"`` from an environment variable or a form is the caller's to parse;
  parsing it here would also take ``"nan"`` or ``"1e3"`` and hide the typo in ``"2.5%"``;
* None, and anything else that is no real number (``complex``, a list);
* NaN and the infinities where a finite value is needed, and values out of the
  argument's range (each call site says which).

A "wait up to" timeout (``flush(timeout=)``, ``close(timeout=)``, ``wait_idle``,
``wait_ready``) is a finite number of seconds >= 0 (:func:`wait_seconds`): 0 looks
without waiting; a negative one is refused, as ``lock_timeout`` refuses it, not taken
as 0; None and infinity mean "no limit" only where None always meant that.
Identifiers such as a port are integers (:func:`integer_within`): ``8080.0`` is refused.

Change calls raise the error their API already raises (ConfigError naming the file and
key path, or ValueError naming the argument), with the value shown by :func:`shown`.
Request-path calls (``record_metric``, ``track_metric``) never raise: they refuse the
value and return False.
"""

from __future__ import annotations

import math
import numbers
from decimal import Decimal
from typing import Any, Literal, overload

__all__ = [
    "WholeSetting",
    "finite_at_least",
    "finite_number",
    "integer_within",
    "positive_seconds",
    "real_number",
    "shown",
    "wait_seconds",
    "whole_at_least",
    "whole_number",
]

#: What counts as a real number here (NumPy registers its scalars as numbers.Real,
#: except ``numpy.bool_``, which is no number either).
REAL_TYPES = (numbers.Real, Decimal)


def _real(value: Any) -> bool:
    """Whether ``value`` is a real number that is not a bool (:data:`REAL_TYPES`); False
    when asking raises. isinstance() reads a ``__class__`` the value may fake, and the
    ABCs' check hashes its class, running a metaclass's own ``__hash__``: either may
    raise, and ``record_metric(..., value)`` with such a value raised it on both
    evaluators, where it refuses the value and returns False."""
    try:
        return not isinstance(value, bool) and isinstance(value, REAL_TYPES)
    except Exception:
        return False


def real_number(value: Any) -> float | None:
    """``value`` as a float when it is a real number (not a bool, nor text) that a
    float holds, else None. NaN and the infinities are returned as they are.

    >>> real_number(25), real_number("25"), real_number(True)
    (25.0, None, None)
    """
    kind = type(value)
    if kind is float:
        return value  # type: ignore[no-any-return]
    if kind is not int and not _real(value):
        return None
    try:
        return float(value)
    except Exception:  # 10**400 (past a float), Decimal("sNaN"), a __float__ that raises
        return None


def finite_number(value: Any) -> float | None:
    """:func:`real_number`, but None for NaN and the infinities too."""
    number = real_number(value)
    return number if number is not None and math.isfinite(number) else None


def whole_number(value: Any) -> int | None:
    """``value`` as an int when it is a whole real number that a float holds (``3``,
    ``numpy.int64(3)``, ``3.0``, ``Fraction(6, 2)``, ``Decimal(3)``), else None (a bool,
    text, 2.5, NaN, ``10**400``: no setting or count that large is meant)."""
    if not _real(value):
        return None
    try:
        number = float(value)
        if not (math.isfinite(number) and number.is_integer()):
            return None
        return int(value) if isinstance(value, numbers.Integral) else int(number)
    except Exception:  # past a float (OverflowError), a __float__ or __int__ that raises
        return None


def positive_seconds(name: str, value: Any) -> float:
    """``value`` as a duration bound in seconds: a real number > 0 (infinity included:
    no bound), else ValueError naming ``name`` (a bool, text, NaN, 0)."""
    seconds = real_number(value)
    if seconds is None or not seconds > 0:  # (NaN fails the test)
        raise ValueError(f"{name}: expected seconds > 0, got {shown(value)}")
    return seconds


def whole_at_least(name: str, value: Any, low: int, unit: str = "") -> int:
    """``value`` as an int >= ``low`` (:func:`whole_number`: ``5``, ``5.0``,
    ``numpy.int64(5)``), else ValueError naming ``name``: a size, a count, a limit.

    >>> whole_at_least("backups", 5.0, 0)
    5
    """
    whole = whole_number(value)
    if whole is None or whole < low:
        of = f" of {unit}" if unit else ""
        raise ValueError(f"{name} must be a whole number{of} >= {low}, got {shown(value)}")
    return whole


def finite_at_least(name: str, value: Any, low: float, unit: str = "") -> float:
    """``value`` as a finite float >= ``low`` (:func:`finite_number`), else ValueError
    naming ``name``: a timeout, a bound that 0 may take and infinity may not."""
    number = finite_number(value)
    if number is None or number < low:
        of = f" of {unit}" if unit else ""
        raise ValueError(f"{name} must be a finite number{of} >= {low:g}, got {shown(value)}")
    return number


@overload
def wait_seconds(name: str, value: Any, *, forever: Literal[False] = ...) -> float: ...
@overload
def wait_seconds(name: str, value: Any, *, forever: bool) -> float | None: ...
def wait_seconds(name: str, value: Any, *, forever: bool = False) -> float | None:
    """``value`` as a "wait up to" timeout: a finite number of seconds >= 0 (0: look
    without waiting), else ValueError naming ``name`` (a bool, text, NaN: a wait that
    never ends). A negative one is refused rather than taken as 0, as every bound here
    refuses a value below its range: it is a deadline computed wrong, which a wait that
    ends at once would hide. ``forever`` (where None already meant it): None and
    infinity are taken too, and returned as None, "wait without limit".

    >>> wait_seconds("timeout", 0.5), wait_seconds("timeout", None, forever=True)
    (0.5, None)
    """
    if forever and (value is None or real_number(value) == math.inf):
        return None
    seconds = finite_number(value)
    if seconds is None or not seconds >= 0:
        limit = " (or None: no limit)" if forever else ""
        raise ValueError(
            f"{name} must be a finite number of seconds >= 0{limit}, got {shown(value)}"
        )
    return seconds


def integer_within(name: str, value: Any, low: int, high: int) -> int:
    """``value`` as an int within ``low..high`` when it is an integer (``int``, a NumPy
    integer), else ValueError naming ``name``: an identifier such as a port, which
    nothing rounds (``8080.0`` is refused, as a bool and text are).

    >>> integer_within("port", 8080, 0, 65535)
    8080
    """
    if not isinstance(value, bool) and isinstance(value, numbers.Integral):
        try:
            number = int(value)
        except Exception:  # an int subclass whose __int__ raises or answers no int
            number = None
        if number is not None and low <= number <= high:
            return number
    raise ValueError(f"{name} must be an integer from {low} to {high}, got {shown(value)}")


def shown(value: Any) -> str:
    """``value`` as an error message shows it: its repr, cut at 60 characters (or its
    type's name, when its repr raises)."""
    try:
        return f"{value!r:.60}"
    except Exception:
        return f"a {type(value).__name__}"


class WholeSetting:
    """A public attribute holding a whole number >= ``low`` (:func:`whole_at_least`),
    checked when it is set, so that ``manager.reloader.settle_ms = "200"`` is refused
    there rather than failing inside a watcher thread later. The value is kept in the
    instance's ``_<name>``.
    """

    def __init__(self, low: int, unit: str = "") -> None:
        self.low, self.unit, self.name = low, unit, ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        try:
            return obj.__dict__["_" + self.name]
        except KeyError:  # not set yet: what getattr(obj, name, default) and hasattr expect
            raise AttributeError(
                f"{type(obj).__name__!r} object has no attribute {self.name!r}",
                name=self.name,
                obj=obj,
            ) from None

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__["_" + self.name] = whole_at_least(self.name, value, self.low, self.unit)
