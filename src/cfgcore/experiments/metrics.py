"""Success-metric events per variant (:class:`MetricsStore`), appended to a JSON-lines
file so that ``cfgcore experiment report`` (another process) can read them, and
summarised in memory for guardrail checks.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from cfgcore.details import exact_name, metric_value
from cfgcore.experiments.stats import Summary

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no cross-process lock
    fcntl = None  # type: ignore[assignment]

from cfgcore.experiments.exposures import (
    Exposure,
    JsonLinesSink,
    MetricRecord,
    SkippedLines,
    read_exposures,
    read_log,
)
from cfgcore.experiments.writer import BackgroundWriter

# ---------------------------------------------------------------------------- metrics


@dataclass
class _VariantMetrics:
    users: set[str] = field(default_factory=set)  # converted users (binary metrics)
    summary: Summary = field(default_factory=Summary)
    binary: bool = True


class MetricsStore:
    """Success-metric events per test and variant.

    Every event is appended to ``path`` (JSON lines: ``test, variant, user, metric,
    value, ts``) when a path is given, and summarised in memory: for each metric the
    set of users with a non-zero value (conversions) and running moments of the values
    (continuous metrics). :meth:`load` rebuilds the summaries from a file, which is
    what the CLI does.
    """

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, max_pending: int = 100_000
    ) -> None:
        self.path = os.fspath(path) if path is not None else None
        self._sink = JsonLinesSink(self.path) if self.path else None
        self._data: dict[tuple[str, str, str], _VariantMetrics] = {}
        self._exposed: dict[tuple[str, str], set[str]] = {}
        self._lock = threading.Lock()
        self.events = 0
        # Unusable lines of the files load() read (None: this store read no file).
        self.skipped: SkippedLines | None = None
        # record() only appends; summaries and the file are updated off the request
        # thread. Every reader flushes first, so it sees every event recorded before it.
        self._writer = BackgroundWriter(
            self._deliver, name="cfgcore-metrics", max_pending=max_pending
        )
        self._append = self._writer.append
        # The request path's shortcut to record(): queue(event) takes one event tuple
        # (test, variant, metric, float value, user, ts) for the writer thread; None
        # when this store has no file (call record()).
        self.queue: Any = self._append if self._sink is not None else None

    @property
    def dropped(self) -> int:
        """Events not recorded because the backlog was full (or after :meth:`close`)."""
        return self._writer.dropped

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        if self._sink is not None:
            self._sink._after_fork_in_child()

    def write(self, batch: Iterable[Exposure]) -> None:
        """Exposure-sink interface: count distinct exposed users per test and variant."""
        with self._lock:
            for e in batch:
                users = self._exposed.get((e.test, e.variant))
                if users is None:
                    users = self._exposed[(e.test, e.variant)] = set()
                users.add(e.user)

    def exposed(self, test: str, variant: str) -> int:
        """Distinct users exposed to ``variant`` of ``test``."""
        users = self._exposed.get((test, variant))
        return len(users) if users else 0

    def exposures(self, test: str) -> dict[str, int]:
        """``{variant: distinct exposed users}`` of ``test``."""
        with self._lock:
            return {v: len(u) for (t, v), u in self._exposed.items() if t == test}

    def record(
        self,
        test: str,
        variant: str,
        metric: str,
        value: float = 1.0,
        user: str | None = None,
        ts: float | None = None,
        *,
        write: bool = True,
    ) -> bool:
        """Add one observation of ``metric`` for a user in ``variant`` of ``test``.

        Returns at once: the event is summarised and appended to the file by a
        background thread (readers of this store flush first). False when the backlog
        is full and the event was dropped (counted in :attr:`dropped`), when ``value``
        is not a finite number (``float()`` of it fails, or is NaN or infinite: it
        would poison every running mean it joined), or when ``test``, ``variant`` or
        ``metric`` is not a str. A ``user`` that is not a str is filed as ``str(user)``.
        """
        t, v, m = exact_name(test), exact_name(variant), exact_name(metric)
        number = metric_value(value)
        if t is None or v is None or m is None or number is None:
            return False  # one bad event must not cost its batch (an unhashable name would)
        if user is not None and type(user) is not str:
            try:
                user = str(user)
            except Exception:  # an id whose __str__ raises: no user
                user = None
        event = (t, v, m, number, user, time.time() if ts is None else ts)
        if not write or self._sink is None:
            self._apply([event])
            return True
        return self._append(event)

    def _apply(self, events: list[tuple[str, str, str, float, Any, float]]) -> None:
        # Welford's update on plain floats per key, one Summary per key and batch: the
        # same moments as Summary.add one value at a time, without an object per event.
        moments: dict[tuple[str, str, str], list[float]] = {}
        with self._lock:
            for test, variant, metric, value, user, _ts in events:
                key = (test, variant, metric)
                vm = self._data.get(key)
                if vm is None:
                    vm = self._data[key] = _VariantMetrics()
                m = moments.get(key)
                if m is None:
                    s = vm.summary
                    m = moments[key] = [s.n, s.mean, s.m2]
                n = m[0] + 1
                delta = value - m[1]
                mean = m[1] + delta / n
                m[0], m[1], m[2] = n, mean, m[2] + delta * (value - mean)
                if value not in (0.0, 1.0):
                    vm.binary = False
                if value and user is not None:
                    vm.users.add(user if type(user) is str else str(user))
                self.events += 1
            for key, (n, mean, m2) in moments.items():
                self._data[key].summary = Summary(int(n), mean, m2)

    def _deliver(self, events: list[tuple[str, str, str, float, Any, float]]) -> None:
        self._apply(events)
        if self._sink is not None:
            self._sink.write(
                [
                    {"test": t, "variant": v, "user": u, "metric": m, "value": x, "ts": ts}
                    for t, v, m, x, u, ts in events
                ]
            )

    def start(self) -> None:
        """Start the writer thread now (see :meth:`BackgroundWriter.start`)."""
        self._writer.start()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every recorded event is summarised and written; False on timeout."""
        return self._writer.flush(timeout)

    def close(self, timeout: float = 5.0) -> bool:
        """Write every pending event and stop the writer thread."""
        return self._writer.close(timeout)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        exposures: str | os.PathLike[str] | None = None,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> MetricsStore:
        """A store summarising every event of a metrics file and, if given, the exposure
        counts of an exposure log (read-only use: the CLI). ``progress(n)`` is called
        with the running count of events read, exposures first. Lines that cannot be
        used (cut short, not JSON, a field missing or of the wrong type) are left out
        and counted in :attr:`skipped` with their file and line."""
        store = cls(None)
        store.path = os.fspath(path)
        skipped = store.skipped = SkippedLines()
        seen = 0
        if exposures is not None:
            batch = read_exposures(exposures, skipped)
            store.write(batch)
            seen = len(batch)
            if progress is not None:
                progress(seen)
        events = []
        for r in read_log(path, MetricRecord, skipped):
            seen += 1
            if progress is not None:
                progress(seen)
            # The decoder checked the types and that the value is a finite number.
            events.append((r.test, r.variant, r.metric, r.value, r.user, r.ts or 0.0))
            if len(events) >= 4096:
                store._apply(events)
                events = []
        store._apply(events)
        return store

    def metrics(self, test: str) -> list[str]:
        """Metric names seen for ``test``."""
        self.flush()
        with self._lock:
            return sorted({m for (t, _, m) in self._data if t == test})

    def conversions(self, test: str, variant: str, metric: str) -> int:
        """Distinct users with a non-zero value of ``metric`` in ``variant``."""
        self.flush()
        vm = self._data.get((test, variant, metric))
        return len(vm.users) if vm else 0

    def summary(self, test: str, variant: str, metric: str) -> Summary:
        """Running moments of ``metric`` in ``variant``."""
        self.flush()
        vm = self._data.get((test, variant, metric))
        return vm.summary if vm else Summary()

    def is_binary(self, test: str, metric: str) -> bool:
        """True if every recorded value of ``metric`` was 0 or 1."""
        self.flush()
        with self._lock:
            return all(
                vm.binary for (t, _, m), vm in self._data.items() if t == test and m == metric
            )

    def forget(self, test: str) -> None:
        """Drop the in-memory summaries of ``test`` (the file is kept)."""
        self.flush()
        with self._lock:
            for key in [k for k in self._data if k[0] == test]:
                del self._data[key]
            for ekey in [k for k in self._exposed if k[0] == test]:
                del self._exposed[ekey]


def read_metrics(
    path: str | os.PathLike[str], skipped: SkippedLines | None = None
) -> list[dict[str, Any]]:
    """Every metric event of a metrics file and its rotated predecessors; unusable
    lines are counted in ``skipped`` (:func:`~cfgcore.experiments.exposures.read_log`)."""
    return [msgspec.structs.asdict(r) for r in read_log(path, MetricRecord, skipped)]
