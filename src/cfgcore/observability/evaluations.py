"""Process-wide evaluation totals: every engine's counts, summed since the process started.

Each :class:`~cfgcore.engine.Engine` counts its evaluations in C per (flag, variant,
reason) and per error code (:meth:`~cfgcore.engine.Engine.take_evaluation_counts`) and
registers itself here, weakly, when it is constructed. :func:`evaluation_totals`
harvests them all on demand, so nothing runs on the evaluation path and nothing runs
in the background:

>>> from cfgcore.observability.evaluations import evaluation_totals
>>> totals = evaluation_totals().collect()                           # doctest: +SKIP
>>> totals["evaluations"][("new_checkout", "on", "TARGETING_MATCH")]  # doctest: +SKIP
1042
>>> evaluation_totals().last_evaluated()["new_checkout"]             # doctest: +SKIP
1767225600.0

Totals only grow (Prometheus counters are built on them), for as long as they are kept.
This is the only reader of ``take_evaluation_counts`` in cfgcore; code that calls it
directly takes those counts away from these totals. An engine that dies leaves its last
counts here (harvested by its finalizer) once the totals exist.

A flag that is gone is forgotten: at each harvest, the totals and the last-evaluated
time of a flag that no live engine's live snapshot holds and that had no count for
``retain`` seconds (argument, else ``CFGCORE_EVALUATION_RETAIN_SECONDS``, else 3600;
``inf`` keeps every flag for the process's life) are dropped, and so are its
``cfgcore_flag_evaluations_total`` series. A service whose flags are created and
deleted over months no longer keeps every name it ever served. A flag any live engine
serves is never dropped, however long it goes unevaluated, so ``last_evaluated()`` (the
flag usage file, ``cfgcore flags stale``) is unchanged for every flag that exists. (The
engine of a closed flag store or manager, which still answers whoever holds it, serves
no flag here: a closed tenant's flags go once idle, as deleted ones do.) If a
dropped flag comes back, its counters start again from zero, which Prometheus reads as
a counter reset (``rate()`` and ``increase()`` handle it).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from cfgcore import _counting
from cfgcore._clock import stamp_clock
from cfgcore._numbers import real_number, shown
from cfgcore.runtime.forks import after_fork_in_child

__all__ = ["DEFAULT_RETAIN", "EvaluationTotals", "evaluation_totals"]

log = logging.getLogger("cfgcore.metrics")

#: Seconds the totals of a flag no live engine serves are kept after its last count.
DEFAULT_RETAIN = 3600.0
_RETAIN_ENV = "CFGCORE_EVALUATION_RETAIN_SECONDS"


def _retain_seconds(value: float | None) -> float:
    """``value``, else ``$CFGCORE_EVALUATION_RETAIN_SECONDS``, else :data:`DEFAULT_RETAIN`.
    A bad argument is a ValueError; a bad environment value is logged and the default
    used (the totals are made lazily, by a metrics scrape or the usage thread, which a
    deployment typo must not break)."""
    if value is not None:
        seconds = real_number(value)  # any real number by its value (cfgcore._numbers)
        if seconds is None or not seconds >= 0:  # (NaN fails the test)
            raise ValueError(
                f"retain must be a number of seconds >= 0 (or inf), got {shown(value)}"
            )
        return seconds
    raw = os.environ.get(_RETAIN_ENV, "").strip()
    if not raw:
        return DEFAULT_RETAIN
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not seconds >= 0:  # NaN too
        log.warning(
            "%s=%r is not a usable number of seconds: using the default, %s",
            _RETAIN_ENV, raw, DEFAULT_RETAIN,
        )  # fmt: skip
        return DEFAULT_RETAIN
    return seconds


class EvaluationTotals:
    """Cumulative evaluation counts of every engine in this process (use the singleton
    :func:`evaluation_totals`).

    ``retain``: seconds the totals of a flag that no live engine serves are kept after
    its last count (argument, else ``CFGCORE_EVALUATION_RETAIN_SECONDS``, else 3600;
    ``math.inf``: never dropped). The attribute may be changed later
    (``evaluation_totals().retain = 600``). ``clock``: epoch seconds, for the
    last-evaluated times and the retention (tests drive it).
    """

    def __init__(
        self, *, retain: float | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self._retain = _retain_seconds(retain)
        self._clock = stamp_clock(clock)
        self._lock = threading.RLock()
        self._evaluations: dict[tuple[str, str, str], int] = {}
        self._errors: dict[str, int] = {}
        self._last: dict[str, float] = {}
        _counting.keep_departed()

    def collect(self) -> dict[str, dict[Any, int]]:
        """Harvest every live engine and return the cumulative totals (copies):
        ``{"evaluations": {(flag, variant, reason): n}, "errors": {code: n}}``."""
        with self._lock:
            self._harvest()
            return {"evaluations": dict(self._evaluations), "errors": dict(self._errors)}

    def last_evaluated(self) -> dict[str, float]:
        """Flag key -> epoch seconds of the last harvest in which the flag had a count
        (harvests happen here and in :meth:`collect`, so the time is as fine as the
        interval between them). Flags never evaluated since the process started are
        absent, and so are flags no live engine serves that were not evaluated for
        ``retain`` seconds (see the module docstring)."""
        with self._lock:
            self._harvest()
            return dict(self._last)

    @property
    def retain(self) -> float:
        return self._retain

    @retain.setter
    def retain(self, value: float | None) -> None:
        # Checked here too: a bad value set later would otherwise raise from every
        # harvest (a metrics scrape, the usage thread), not where it was set.
        self._retain = _retain_seconds(value)

    def _harvest(self) -> None:
        now = self._clock()
        batches = [engine.take_evaluation_counts() for engine in _counting.engines()]
        departed = _counting.take_departed()
        pairs = [(b.evaluations, b.errors) for b in batches] + [departed]
        for evaluations, errors in pairs:
            for key, n in evaluations.items():
                self._evaluations[key] = self._evaluations.get(key, 0) + n
                self._last[key[0]] = now
            for code, n in errors.items():
                self._errors[code] = self._errors.get(code, 0) + n
        self._forget(now)

    def _forget(self, now: float) -> None:
        """Drop the totals of flags idle for more than ``retain`` seconds that no live
        engine's live snapshot holds (deleted flags; those of engines that died)."""
        cutoff = now - self._retain
        idle = [flag for flag, last in self._last.items() if last < cutoff]
        if not idle:
            return
        # Read now, not before the harvest: an engine made meanwhile may serve one. A
        # retired snapshot a request still holds does not keep a flag: its evaluations
        # are counts, which keep the flag's totals for another ``retain`` seconds.
        # The engine of a closed flag set serves on, but holds no flag (it is retired).
        live = [e.snapshot() for e in _counting.engines() if not getattr(e, "_retired", False)]
        gone = {flag for flag in idle if not any(flag in snap for snap in live)}
        if not gone:
            return
        for flag in gone:
            del self._last[flag]
        self._evaluations = {k: n for k, n in self._evaluations.items() if k[0] not in gone}

    def _after_fork_in_child(self) -> None:
        # The totals are this process's: a forked worker starts from zero (the parent
        # reports what it counted). When flags were last evaluated is state: kept.
        self._lock = threading.RLock()
        self._evaluations, self._errors = {}, {}


_TOTALS: EvaluationTotals | None = None
_TOTALS_LOCK = threading.Lock()


def evaluation_totals() -> EvaluationTotals:
    """The process's :class:`EvaluationTotals` (created on first use)."""
    global _TOTALS
    if _TOTALS is None:
        with _TOTALS_LOCK:
            if _TOTALS is None:
                _TOTALS = EvaluationTotals()
    return _TOTALS


@after_fork_in_child
def _after_fork_in_child() -> None:
    global _TOTALS_LOCK
    _TOTALS_LOCK = threading.Lock()
    if _TOTALS is not None:
        _TOTALS._after_fork_in_child()
