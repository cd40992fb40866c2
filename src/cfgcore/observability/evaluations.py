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

Totals only grow (Prometheus counters are built on them). This is the only reader of
``take_evaluation_counts`` in cfgcore; code that calls it directly takes those counts
away from these totals. An engine that dies leaves its last counts here (harvested by
its finalizer) once the totals exist.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from cfgcore import _counting
from cfgcore.runtime.forks import after_fork_in_child

__all__ = ["EvaluationTotals", "evaluation_totals"]


class EvaluationTotals:
    """Cumulative evaluation counts of every engine in this process (use the singleton
    :func:`evaluation_totals`)."""

    def __init__(self) -> None:
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
        absent."""
        with self._lock:
            self._harvest()
            return dict(self._last)

    def _harvest(self) -> None:
        now = time.time()
        batches = [engine.take_evaluation_counts() for engine in _counting.engines()]
        departed = _counting.take_departed()
        pairs = [(b.evaluations, b.errors) for b in batches] + [departed]
        for evaluations, errors in pairs:
            for key, n in evaluations.items():
                self._evaluations[key] = self._evaluations.get(key, 0) + n
                self._last[key[0]] = now
            for code, n in errors.items():
                self._errors[code] = self._errors.get(code, 0) + n

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
