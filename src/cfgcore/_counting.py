"""Evaluation counts per engine: harvesting every snapshot an engine has served.

Each compiled snapshot counts its own evaluations in plain integers (``Counters`` in
either evaluator). An engine swaps snapshots while requests may still evaluate a pinned
old one, so each engine's :class:`CountLedger` keeps the counters of every snapshot it
installed until they are harvested:

* the live snapshot's counters;
* each retired snapshot's counters, as long as the snapshot is alive (a request or a
  caller still holds it). The counters object outlives its snapshot: once the snapshot
  has died, its counters are harvested one last time (at the next take or swap) and
  dropped. Nothing counted on a retired snapshot is lost, and the ledger holds at most
  the counters of the snapshots still alive plus those that died since the last take
  or swap.

Every :class:`~cfgcore.engine.Engine` registers here, weakly, when it is constructed;
:mod:`cfgcore.observability.evaluations` harvests them. When an engine dies, what it
counted since its last take is kept in :func:`take_departed` for that collector, but
only once a collector asked for it (:func:`keep_departed`): otherwise nothing would
ever drain it.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from typing import Any

from cfgcore.details import EvaluationCounts
from cfgcore.runtime.forks import after_fork_in_child

__all__ = ["CountLedger", "engines", "keep_departed", "register", "take_departed"]


class CountLedger:
    """One engine's counters: every snapshot it installed, until harvested.

    Swaps and takes serialise on one lock (neither is on the evaluation path). The
    ledger does not single out a "live" snapshot: concurrent swaps may report their
    installs in either order, so every snapshot an install names is tracked until it
    has died and been harvested one last time, whichever ended up live.
    """

    __slots__ = ("_lock", "_tracked", "_evaluations", "_errors", "_versions",
                 "counting", "__weakref__")  # fmt: skip

    def __init__(self, snapshot: Any) -> None:
        self._lock = threading.RLock()
        self._tracked: list[tuple[weakref.ref[Any], Any]] = [
            (weakref.ref(snapshot), snapshot.counters)
        ]
        self._evaluations: dict[tuple[str, str, str], int] = {}
        self._errors: dict[str, int] = {}
        self._versions: set[int] = set()
        self.counting = True

    def installed(self, old: Any, new: Any) -> None:
        """``new`` replaced ``old`` as the live snapshot (called after the swap)."""
        with self._lock:
            new.counters.version = new.version
            self._harvest_dead()
            known = {id(counters) for _, counters in self._tracked}
            for snap in (old, new):
                if id(snap.counters) not in known:
                    self._tracked.append((weakref.ref(snap), snap.counters))
                    known.add(id(snap.counters))

    def set_counting(self, enabled: bool, snapshots: Iterable[Any]) -> None:
        """Switch counting on or off for ``snapshots`` and every tracked one alive."""
        with self._lock:
            self.counting = enabled
            for snap in [*snapshots, *(ref() for ref, _ in self._tracked)]:
                if snap is not None:
                    snap.counting = enabled

    def take(self) -> EvaluationCounts:
        """Read and reset everything counted since the previous take."""
        with self._lock:
            kept = []
            for ref, counters in self._tracked:
                dead = ref() is None  # before the read, so a late increment is not dropped
                self._absorb(counters)
                if not dead:
                    kept.append((ref, counters))
            self._tracked = kept
            out = EvaluationCounts(
                evaluations=self._evaluations,
                errors=self._errors,
                versions=tuple(sorted(self._versions)),
            )
            self._evaluations, self._errors, self._versions = {}, {}, set()
        return out

    def _harvest_dead(self) -> None:
        kept = []
        for ref, counters in self._tracked:
            if ref() is None:  # checked before the read: a dead snapshot counts no more
                self._absorb(counters)
            else:
                kept.append((ref, counters))
        self._tracked = kept

    def _absorb(self, counters: Any) -> None:
        evaluations, errors = counters.take()
        if not evaluations and not errors:
            return
        _add(self._evaluations, evaluations)
        _add(self._errors, errors)
        self._versions.add(counters.version)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.RLock()


def _add(into: dict[Any, int], counts: dict[Any, int]) -> None:
    for key, n in counts.items():
        into[key] = into.get(key, 0) + n


# -- the process-wide registry of engines ---------------------------------------------

# Reentrant: a finalizer (_departed) may run during a garbage collection triggered while
# this thread holds it.
_LOCK = threading.RLock()
_ENGINES: weakref.WeakSet[Any] = weakref.WeakSet()
_LEDGERS: weakref.WeakSet[CountLedger] = weakref.WeakSet()
_KEEP_DEPARTED = False
_DEPARTED_EVALUATIONS: dict[tuple[str, str, str], int] = {}
_DEPARTED_ERRORS: dict[str, int] = {}


def register(engine: Any, ledger: CountLedger) -> None:
    """Track ``engine`` weakly; when it dies, keep what its ``ledger`` still holds."""
    with _LOCK:
        _ENGINES.add(engine)
        _LEDGERS.add(ledger)
    fin = weakref.finalize(engine, _departed, ledger)
    fin.atexit = False


def engines() -> list[Any]:
    """Every live engine."""
    with _LOCK:
        return list(_ENGINES)


def keep_departed() -> None:
    """From now on, keep the last counts of engines that die (a collector drains them)."""
    global _KEEP_DEPARTED
    _KEEP_DEPARTED = True


def take_departed() -> tuple[dict[tuple[str, str, str], int], dict[str, int]]:
    """Read and reset the counts left by engines that died since the previous call."""
    global _DEPARTED_EVALUATIONS, _DEPARTED_ERRORS
    with _LOCK:
        out = _DEPARTED_EVALUATIONS, _DEPARTED_ERRORS
        _DEPARTED_EVALUATIONS, _DEPARTED_ERRORS = {}, {}
    return out


def _departed(ledger: CountLedger) -> None:
    if not _KEEP_DEPARTED:
        return
    counts = ledger.take()
    with _LOCK:
        _add(_DEPARTED_EVALUATIONS, counts.evaluations)
        _add(_DEPARTED_ERRORS, counts.errors)


@after_fork_in_child
def _after_fork_in_child() -> None:
    # A forked worker counts from zero: what the parent counted before the fork and had
    # not harvested yet is the parent's to report; the child reporting it as well
    # would count it once per worker.
    global _LOCK, _DEPARTED_EVALUATIONS, _DEPARTED_ERRORS
    _LOCK = threading.RLock()
    _DEPARTED_EVALUATIONS, _DEPARTED_ERRORS = {}, {}
    for ledger in list(_LEDGERS):
        ledger._after_fork_in_child()
        ledger.take()  # discarded: the C counters and the ledger's sums start at zero
