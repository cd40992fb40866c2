"""The process-wide metric registry: counters, gauges and fixed-bucket histograms.

cfgcore records what happens on its change paths (loads, reloads, validation runs,
flag documents, exposures written) here, and reads the state it already keeps (the
live snapshot's version and age, a follower's connection) when someone asks. Nothing
records on the evaluation hot path: a flag check or a configuration read costs the
same with or without metrics (the compiled core counts evaluations in C arrays, which
:mod:`cfgcore.observability.evaluations` harvests).

Two ways in:

* **instruments** (:class:`Counter`, :class:`Gauge`, :class:`Histogram`) that the
  change paths update: one lock per registry, taken only by those rare updates and by
  :meth:`Registry.collect`;
* **collectors**: functions run by :meth:`Registry.collect` that return
  :class:`Family` objects computed from live state (weakly held objects, engines).

:meth:`Registry.collect` is what the exporters read (``cfgcore.metrics.snapshot()``,
the Prometheus collector in :mod:`cfgcore.observability.prometheus`). Names follow the
Prometheus conventions: ``cfgcore_`` prefix, counters end in ``_total``, base units
(``_seconds``), and every label takes values from a bounded set.

>>> reg = Registry()
>>> loads = reg.counter("demo_loads_total", "Loads.", ("result",))
>>> loads.inc(result="ok")
>>> [s.value for s in reg.collect()[0].samples]
[1.0]
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cfgcore.runtime.forks import after_fork_in_child

__all__ = [
    "DURATION_BUCKETS",
    "Counter",
    "Family",
    "Gauge",
    "Histogram",
    "Registry",
    "Sample",
    "registry",
]

log = logging.getLogger("cfgcore.metrics")

#: Upper bounds (seconds) of the duration histograms: loads take milliseconds to
#: seconds (a reload that waits for files to settle takes at least 100 ms).
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Labels = tuple[str, ...]


@dataclass(frozen=True)
class Sample:
    """One time series' value. For a histogram: ``buckets`` holds ``(upper bound,
    cumulative count)`` pairs ending with ``+Inf``, ``value`` is the sum and ``count``
    the number of observations."""

    labels: dict[str, str]
    value: float
    buckets: tuple[tuple[float, float], ...] = ()
    count: float = 0.0


@dataclass(frozen=True)
class Family:
    """A metric with all its series: ``kind`` is ``counter``, ``gauge`` or ``histogram``."""

    name: str
    kind: str
    help: str
    labelnames: Labels = ()
    samples: list[Sample] = field(default_factory=list)


class _Instrument:
    kind = ""

    def __init__(self, reg: Registry, name: str, help: str, labelnames: Sequence[str]) -> None:
        self._registry = reg
        self.name = name
        self.help = help
        self.labelnames: Labels = tuple(labelnames)

    def _key(self, labels: dict[str, Any]) -> Labels:
        if len(labels) != len(self.labelnames):
            raise ValueError(f"{self.name}: labels {sorted(labels)} != {list(self.labelnames)}")
        try:
            return tuple(str(labels[n]) for n in self.labelnames)
        except KeyError as exc:
            raise ValueError(f"{self.name}: missing label {exc}") from None

    def _samples(self) -> list[Sample]:
        raise NotImplementedError

    def family(self) -> Family:
        return Family(self.name, self.kind, self.help, self.labelnames, self._samples())

    def _labels(self, key: Labels) -> dict[str, str]:
        return dict(zip(self.labelnames, key, strict=True))


class Counter(_Instrument):
    """A monotonic count per label set (``inc(result="ok")``)."""

    kind = "counter"

    def __init__(self, reg: Registry, name: str, help: str, labelnames: Sequence[str]) -> None:
        if not name.endswith("_total"):
            raise ValueError(f"counter {name!r}: counter names end in _total")
        super().__init__(reg, name, help, labelnames)
        self._values: dict[Labels, float] = {}

    def inc(self, amount: float = 1.0, **labels: Any) -> None:
        """Add ``amount`` (a finite number >= 0) to the series ``labels`` names."""
        # NaN passed a plain `amount < 0` test and made the series NaN for good (and
        # infinity infinite): a rate() over it is never a number again.
        if not 0 <= amount < math.inf:
            raise ValueError(f"{self.name}: a counter only goes up by a finite amount")
        key = self._key(labels)
        with self._registry.lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: Any) -> float:
        """The current count of one series (0 if it never moved)."""
        key = self._key(labels)
        with self._registry.lock:
            return self._values.get(key, 0.0)

    def _samples(self) -> list[Sample]:
        return [Sample(self._labels(k), v) for k, v in self._values.items()]


class Gauge(_Instrument):
    """A value that goes up and down per label set."""

    kind = "gauge"

    def __init__(self, reg: Registry, name: str, help: str, labelnames: Sequence[str]) -> None:
        super().__init__(reg, name, help, labelnames)
        self._values: dict[Labels, float] = {}

    def set(self, value: float, **labels: Any) -> None:
        key = self._key(labels)
        with self._registry.lock:
            self._values[key] = float(value)

    def value(self, **labels: Any) -> float:
        key = self._key(labels)
        with self._registry.lock:
            return self._values.get(key, math.nan)

    def _samples(self) -> list[Sample]:
        return [Sample(self._labels(k), v) for k, v in self._values.items()]


class Histogram(_Instrument):
    """Observations counted into fixed buckets (upper bounds, ascending), with a sum."""

    kind = "histogram"

    def __init__(
        self,
        reg: Registry,
        name: str,
        help: str,
        labelnames: Sequence[str],
        buckets: Sequence[float] = DURATION_BUCKETS,
    ) -> None:
        super().__init__(reg, name, help, labelnames)
        bounds = sorted(float(b) for b in buckets if b != math.inf)
        if not bounds or len(set(bounds)) != len(bounds):
            raise ValueError(f"{self.name}: buckets must be distinct numbers")
        self.bounds: tuple[float, ...] = tuple(bounds)
        # per series: [count in each bucket (not cumulative)..., +Inf bucket, sum]
        self._values: dict[Labels, list[float]] = {}

    def observe(self, value: float, **labels: Any) -> None:
        """Count ``value`` (a finite number) into its bucket and the sum."""
        if not -math.inf < value < math.inf:  # NaN too: the sum would stay NaN for good
            raise ValueError(f"{self.name}: cannot observe {value!r}")
        key = self._key(labels)
        slot = bisect.bisect_left(self.bounds, value)  # le semantics: value <= bound
        with self._registry.lock:
            row = self._values.get(key)
            if row is None:
                row = self._values[key] = [0.0] * (len(self.bounds) + 2)
            row[slot] += 1
            row[-1] += value

    def _samples(self) -> list[Sample]:
        out = []
        for key, row in self._values.items():
            running, buckets = 0.0, []
            for bound, n in zip((*self.bounds, math.inf), row[:-1], strict=True):
                running += n
                buckets.append((bound, running))
            out.append(Sample(self._labels(key), row[-1], tuple(buckets), running))
        return out


Collector = Callable[[], Iterable[Family]]


class Registry:
    """Instruments and collectors; :meth:`collect` reads them all at once.

    Instrument names are unique; asking again for an existing name with the same kind
    and labels returns the existing instrument (modules may be reloaded).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._instruments: dict[str, _Instrument] = {}
        self._collectors: list[Collector] = []
        self._duplicates: set[str] = set()  # names already logged as given twice

    def _get(self, cls: type[Any], name: str, *args: Any) -> Any:
        with self.lock:
            found = self._instruments.get(name)
        if found is not None:
            if type(found) is not cls or found.labelnames != tuple(args[1]):
                raise ValueError(f"metric {name!r} is already registered differently")
            return found
        made = cls(self, name, *args)
        with self.lock:
            return self._instruments.setdefault(name, made)

    def counter(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Counter:
        """The counter ``name`` (created on first call)."""
        return self._get(Counter, name, help, tuple(labelnames))  # type: ignore[no-any-return]

    def gauge(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Gauge:
        """The gauge ``name`` (created on first call)."""
        return self._get(Gauge, name, help, tuple(labelnames))  # type: ignore[no-any-return]

    def histogram(
        self,
        name: str,
        help: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] = DURATION_BUCKETS,
    ) -> Histogram:
        """The histogram ``name`` with fixed ``buckets`` (created on first call)."""
        return self._get(Histogram, name, help, tuple(labelnames), buckets)  # type: ignore[no-any-return]

    def add_collector(self, collector: Collector) -> Collector:
        """Run ``collector()`` on every :meth:`collect`; it returns :class:`Family`
        objects computed from live state. Returned, so it works as a decorator."""
        with self.lock:
            if collector not in self._collectors:
                self._collectors.append(collector)
        return collector

    def remove_collector(self, collector: Collector) -> None:
        with self.lock:
            if collector in self._collectors:
                self._collectors.remove(collector)

    def collect(self) -> list[Family]:
        """Every metric, sorted by name: each collector's families (a collector that
        raises is logged and skipped: a scrape never fails because one source is
        broken), then the instruments' values copied under the lock (collectors run
        first, so one may bring an instrument up to date: harvested drop counts)."""
        with self.lock:
            collectors = list(self._collectors)
        families: list[Family] = []
        for collector in collectors:
            try:
                families.extend(collector())
            except Exception:
                log.exception("metrics collector %r failed", collector)
        with self.lock:
            families += [inst.family() for inst in self._instruments.values()]
        return self._unique(sorted(families, key=lambda f: f.name))

    def _unique(self, families: list[Family]) -> list[Family]:
        """``families`` (sorted by name) without a second family of a name: Prometheus
        refuses a whole scrape that names a metric twice. Two collectors give one name
        when a module defining them is reloaded (``importlib.reload``, a notebook's
        autoreload adds its collectors again) or when one is added by mistake; the
        first is kept, and each such name is logged once."""
        out: list[Family] = []
        for family in families:
            if out and out[-1].name == family.name:
                if family.name not in self._duplicates:
                    self._duplicates.add(family.name)
                    log.warning(
                        "metric %s is given twice (by two collectors, or a reloaded module's "
                        "collectors added again); only the first is exported",
                        family.name,
                    )  # fmt: skip
                continue
            out.append(family)
        return out

    def _after_fork_in_child(self) -> None:
        # Another thread may have held the lock at fork time; it does not exist here.
        self.lock = threading.Lock()
        # Counters and histograms say what this process did: a forked worker's start
        # at zero, or a sum over the workers would count the parent's events once per
        # worker. Gauges describe state the worker shares (a snapshot's version): kept.
        for inst in self._instruments.values():
            if isinstance(inst, Counter | Histogram):
                inst._values = {}


_REGISTRY = Registry()


def registry() -> Registry:
    """The process-wide registry every cfgcore component records into."""
    return _REGISTRY


@after_fork_in_child
def _reset_after_fork() -> None:
    _REGISTRY._after_fork_in_child()
