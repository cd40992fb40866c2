"""What a clock given to cfgcore may answer.

A clock set with ``engine.set_clock(fn)``, a snapshot's ``clock``, or the ``clock=``
of ``LiveFlags``, the dynamic manager and the exposure logger is read as epoch seconds
(what :func:`time.time` answers). Its answer is taken as

* a float, as it is (the fast path: one type test);
* any other real number by its value (an int, a NumPy scalar, a Fraction, a Decimal:
  :func:`cfgcore._numbers.real_number`);
* a :class:`datetime.datetime` with a time zone, as the instant it names
  (``datetime.timestamp``'s, whatever a subclass's own ``timestamp()`` says):
  ``lambda: datetime.now(timezone.utc)`` is a clock.

Anything else is refused with a TypeError saying what the clock answered: a datetime
without a time zone (local time or UTC? cfgcore does not guess), a bool, text, None. A
reader treats that as it treats a clock that raises (a schedule counts as outside, a
timestamp falls back to the system clock, each as documented there); the first refusal
of each kind is logged at ERROR, so that a clock of the wrong kind is not a silent
"every flag is off". A reader that keeps the time (a record's stamp, an event's time,
"now" for judging an A/B test served) takes only a finite number of seconds
(:func:`read_clock`), and stamps by the system clock where the clock fails
(:func:`stamp_clock`).
"""

from __future__ import annotations

import datetime
import functools
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from cfgcore._numbers import real_number, shown
from cfgcore.runtime.forks import after_fork_in_child

__all__ = ["epoch_seconds", "read_clock", "read_stamp", "stamp_clock"]

log = logging.getLogger("cfgcore.clock")

# The kinds of refused answers logged already (one ERROR line each per process).
_said: set[str] = set()
_said_lock = threading.Lock()


@after_fork_in_child
def _after_fork_in_child() -> None:
    # A thread of the parent may have held it at the fork: the child's first refused
    # answer (on the evaluation path) would wait for it forever.
    global _said_lock
    _said_lock = threading.Lock()


class _Refused(TypeError):
    """A clock's answer that is no instant (said once by :func:`epoch_seconds`)."""


_utcoffset = datetime.datetime.utcoffset
_timestamp = datetime.datetime.timestamp


def epoch_seconds(value: Any) -> float:
    """A clock's answer ``value`` as epoch seconds; TypeError if it is none (above).

    >>> epoch_seconds(datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc))
    1893456000.0
    """
    if type(value) is float:
        return value  # type: ignore[no-any-return]
    if isinstance(value, datetime.datetime):  # (before the numbers' ABC checks: 3x faster)
        # datetime's own methods: a subclass's timestamp() may answer anything (text
        # reached the schedule comparisons), and its utcoffset() may claim a time zone
        # that its timestamp() would not use (a naive one read as local time).
        if _utcoffset(value) is not None:
            return _timestamp(value)
        kind = "a datetime without a time zone"
    elif (number := real_number(value)) is not None:
        return number
    elif isinstance(value, bool):
        kind = "a bool"
    else:
        name = type(value).__name__
        kind = f"{'an' if name[:1] in 'aeiouAEIOU' else 'a'} {name}"
    raise _refused(kind, value)


def _refused(kind: str, value: Any) -> _Refused:
    """The refusal of a clock's answer ``value`` of ``kind``, logged the first time."""
    problem = (
        f"the clock answered {kind} ({shown(value)}), not epoch seconds: give a clock "
        "answering time.time()'s seconds or a datetime with a time zone "
        "(datetime.now(timezone.utc))"
    )
    if _first(kind):
        log.error("%s; it counts as a clock that raises (schedules: outside)", problem)
    return _Refused(problem)


def _first(kind: str) -> bool:
    """Whether this is the first time ``kind`` of failure is said in this process."""
    with _said_lock:
        first = kind not in _said
        _said.add(kind)
    return first


def read_clock(clock: Any) -> float:
    """``clock()`` as epoch seconds (:func:`epoch_seconds`), for a reader that keeps
    the time (a record's, an event's, "now" for judging a test served); what it raises
    propagates. NaN and the infinities are refused too: a record stamped NaN is written
    as ``null`` and skipped by every reader, and a NaN "now" judged a running A/B test
    not started (an evaluator needs no such test: a schedule is never inside NaN)."""
    seconds = epoch_seconds(clock())
    if not math.isfinite(seconds):
        raise _refused("a number that is no instant", seconds)
    return seconds


def stamp_clock(clock: Callable[[], Any]) -> Callable[[], float]:
    """``clock`` as a clock answering finite epoch seconds as floats
    (:func:`read_clock` of it; :func:`time.time` as it is), and the system clock's
    where ``clock`` raises or answers no instant: for a reader that stamps records
    (exposures on the request path, usage times, evaluation totals), which must
    neither raise nor lose the record for a broken clock. A clock
    that raises is logged at ERROR once per exception type; a refused answer is logged
    once by :func:`epoch_seconds`."""
    return clock if clock is time.time else functools.partial(read_stamp, clock)


def read_stamp(clock: Callable[[], Any]) -> float:
    """``clock()`` as epoch seconds, or the system clock's where it raises or answers
    no instant (see :func:`stamp_clock`): a record's time, which a broken clock must
    not keep from being written."""
    try:
        return read_clock(clock)
    except _Refused:
        return time.time()  # (said once by epoch_seconds)
    except Exception as exc:
        if _first(f"raised {type(exc).__qualname__}"):
            log.error(
                "the clock raised %s; records are stamped by the system clock meanwhile",
                shown(exc),
            )
        return time.time()
