"""What a clock given to cfgcore may answer.

A clock set with ``engine.set_clock(fn)``, a snapshot's ``clock``, or the ``clock=``
of ``LiveFlags``, the dynamic manager and the exposure logger is read as epoch seconds
(what :func:`time.time` answers). Its answer is taken as

* a float, as it is (the fast path: one type test);
* any other real number by its value (an int, a NumPy scalar, a Fraction, a Decimal:
  :func:`cfgcore._numbers.real_number`);
* a :class:`datetime.datetime` with a time zone, as the instant it names (its
  ``timestamp()``): ``lambda: datetime.now(timezone.utc)`` is a clock.

Anything else is refused with a TypeError saying what the clock answered: a datetime
without a time zone (local time or UTC? cfgcore does not guess), a bool, text, None. A
reader treats that as it treats a clock that raises (a schedule counts as outside, a
timestamp falls back to the system clock, each as documented there); the first refusal
of each kind is logged at ERROR, so that a clock of the wrong kind is not a silent
"every flag is off".
"""

from __future__ import annotations

import datetime
import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from cfgcore._numbers import real_number, shown

__all__ = ["epoch_clock", "epoch_seconds", "read_clock"]

log = logging.getLogger("cfgcore.clock")

# The kinds of refused answers logged already (one ERROR line each per process).
_said: set[str] = set()
_said_lock = threading.Lock()


def epoch_seconds(value: Any) -> float:
    """A clock's answer ``value`` as epoch seconds; TypeError if it is none (above).

    >>> epoch_seconds(datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc))
    1893456000.0
    """
    if type(value) is float:
        return value  # type: ignore[no-any-return]
    if isinstance(value, datetime.datetime):  # (before the numbers' ABC checks: 3x faster)
        if value.utcoffset() is not None:
            return value.timestamp()
        kind = "a datetime without a time zone"
    elif (number := real_number(value)) is not None:
        return number
    elif isinstance(value, bool):
        kind = "a bool"
    else:
        name = type(value).__name__
        kind = f"{'an' if name[:1] in 'aeiouAEIOU' else 'a'} {name}"
    problem = (
        f"the clock answered {kind} ({shown(value)}), not epoch seconds: give a clock "
        "answering time.time()'s seconds or a datetime with a time zone "
        "(datetime.now(timezone.utc))"
    )
    with _said_lock:
        first = kind not in _said
        _said.add(kind)
    if first:
        log.error("%s; it counts as a clock that raises (schedules: outside)", problem)
    raise TypeError(problem)


def read_clock(clock: Any) -> float:
    """``clock()`` as epoch seconds (:func:`epoch_seconds`); what it raises propagates."""
    return epoch_seconds(clock())


def epoch_clock(clock: Callable[[], Any]) -> Callable[[], float]:
    """``clock`` as a clock answering epoch seconds as floats (:func:`read_clock` of it;
    :func:`time.time` as it is), for a reader that keeps what it answers (a record's
    timestamp, an age)."""
    return clock if clock is time.time else functools.partial(read_clock, clock)
