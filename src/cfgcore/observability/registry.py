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

Every label value leaves :meth:`Registry.collect` as UTF-8 text of at most
:attr:`Registry.max_label_bytes` bytes (:func:`label_value`): a longer one (a flag key,
variant or directory whose text whoever edits a flag file or an import chose) is
exported as its first bytes, ``...#`` and 16 hex digits of the BLAKE2b hash of the
whole value, counted in ``cfgcore_metric_label_values_shortened`` and logged once per
metric and label. Backends lose or alter a series past their own cap (Cortex and
Mimir skip it, VictoriaMetrics drops it, Grafana Cloud cuts it: 2048 characters by
default), and Prometheus's ``label_value_length_limit`` fails the whole scrape for it.

>>> reg = Registry()
>>> loads = reg.counter("demo_loads_total", "Loads.", ("result",))
>>> loads.inc(result="ok")
>>> loads_family = next(f for f in reg.collect() if f.name == "demo_loads_total")
>>> [s.value for s in loads_family.samples]
[1.0]
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import math
import os
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cfgcore._numbers import whole_at_least
from cfgcore.runtime.forks import after_fork_in_child

__all__ = [
    "DEFAULT_MAX_LABEL_BYTES",
    "DURATION_BUCKETS",
    "Counter",
    "Family",
    "Gauge",
    "Histogram",
    "MIN_LABEL_BYTES",
    "Registry",
    "SHORTENED",
    "Sample",
    "exported_text",
    "label_value",
    "registry",
]

log = logging.getLogger("cfgcore.metrics")

#: Upper bounds (seconds) of the duration histograms: loads take milliseconds to
#: seconds (a reload that waits for files to settle takes at least 100 ms).
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Labels = tuple[str, ...]

#: Bytes of UTF-8 a label value is exported with at most, when neither
#: :attr:`Registry.max_label_bytes` nor ``CFGCORE_METRICS_MAX_LABEL_BYTES`` sets it.
#: Half the smallest cap of the usual backends (Grafana Cloud, Cortex and Mimir:
#: 2048), so a value fits them whether they count characters or bytes, with room for a
#: relabelling that adds text; long enough that real paths, store URLs and flag keys are
#: never shortened (a Kubernetes volume path is about 150 bytes).
DEFAULT_MAX_LABEL_BYTES = 1024
#: The smallest bound accepted: the hash suffix takes 20 bytes, and the prefix must
#: still say which value it was.
MIN_LABEL_BYTES = 64
_MAX_LABEL_ENV = "CFGCORE_METRICS_MAX_LABEL_BYTES"
_MARK = "...#"
_DIGEST_HEX = 16  # 64 bits: 10,000 long values collide with odds of about 3e-12
_SUFFIX = len(_MARK) + _DIGEST_HEX
_HEX = re.compile(r"[0-9a-f]{16}")
#: The gauge of label values exported shortened.
SHORTENED = "cfgcore_metric_label_values_shortened"


def _preview(text: str) -> str:
    """A log line's view of a shortened label: its start and its hash."""
    return text if len(text) <= 80 else f"{text[:40]}[...]{text[-_SUFFIX:]}"


def exported_text(value: str) -> str:
    """``value`` as text the exposition can encode. A path Python decoded from bytes that
    are not UTF-8 (a configuration directory or flag file named in Latin-1) holds lone
    surrogates: one such label value made every scrape fail with UnicodeEncodeError. The
    undecodable bytes are shown escaped (``caf\\xe9``), as ``os.fsencode`` gives them."""
    if value.isascii():
        return value
    try:
        value.encode()
        return value
    except UnicodeEncodeError:
        pass
    try:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate no file name holds: shown as its escape
        return value.encode("utf-8", "backslashreplace").decode()


def _looks_shortened(text: str) -> bool:
    return (
        len(text) >= _SUFFIX
        and text[-_SUFFIX:-_DIGEST_HEX] == _MARK
        and _HEX.fullmatch(text, len(text) - _DIGEST_HEX) is not None
    )


def label_value(value: str, max_bytes: int = DEFAULT_MAX_LABEL_BYTES) -> tuple[str, bool]:
    """The text ``value`` is exported as, and whether it was shortened.

    Within ``max_bytes`` bytes of UTF-8: the value as it is (lone surrogates escaped,
    :func:`exported_text`). Longer: its first bytes (whole characters), ``...#`` and the
    first 16 hex digits of the BLAKE2b hash of the whole value, ``max_bytes`` at most in
    all. The hash is of the value itself, so one value gives one label in every process
    and after restarts, and two values sharing their first kilobyte stay two series. A
    value that already ends like a shortened one is shortened too (its own hash
    appended), so no value is exported as another value's shortened label.

    >>> label_value("checkout")
    ('checkout', False)
    >>> text, shortened = label_value("k" * 5000, 64)
    >>> text[:44], text[44:48], len(text.encode()), shortened
    ('kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk', '...#', 64, True)
    """
    text = exported_text(value)
    if len(text) <= max_bytes // 4 and not _looks_shortened(text):
        return text, False  # (4 bytes per character at most)
    data = text.encode()
    if len(data) <= max_bytes and not _looks_shortened(text):
        return text, False
    # surrogatepass: one value (lone surrogates and all) hashes one way, two differ.
    digest = hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=8)
    prefix = data[: max_bytes - _SUFFIX].decode("utf-8", "ignore")  # (a cut character)
    return f"{prefix}{_MARK}{digest.hexdigest()}", True


def _max_label_bytes_from_env() -> int:
    raw = os.environ.get(_MAX_LABEL_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_LABEL_BYTES
    try:
        value = int(raw)
    except ValueError:
        log.warning("%s=%r is not a number of bytes: using the default, %d",
                    _MAX_LABEL_ENV, raw, DEFAULT_MAX_LABEL_BYTES)  # fmt: skip
        return DEFAULT_MAX_LABEL_BYTES
    if value < MIN_LABEL_BYTES:
        log.warning("%s=%r is below the smallest bound, %d bytes: using %d",
                    _MAX_LABEL_ENV, raw, MIN_LABEL_BYTES, MIN_LABEL_BYTES)  # fmt: skip
        return MIN_LABEL_BYTES
    return value


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

    ``max_label_bytes``: the longest label value exported, in bytes of UTF-8 (longer
    ones are shortened, see :func:`label_value`): set the attribute, else
    ``CFGCORE_METRICS_MAX_LABEL_BYTES``, else :data:`DEFAULT_MAX_LABEL_BYTES`; at least
    :data:`MIN_LABEL_BYTES`. ``report_shortened``: export
    ``cfgcore_metric_label_values_shortened`` (the process-wide registry does).
    """

    def __init__(
        self, max_label_bytes: int | None = None, *, report_shortened: bool = False
    ) -> None:
        self.report_shortened = report_shortened
        self.lock = threading.Lock()
        self._instruments: dict[str, _Instrument] = {}
        self._collectors: list[Collector] = []
        self._duplicates: set[str] = set()  # names already logged as given twice
        self._max_label_bytes: int | None = None
        self.max_label_bytes = max_label_bytes  # (the setter checks it)
        # (metric, label) pairs a shortened value was already logged for: bounded by
        # the metrics and labels cfgcore defines.
        self._shortened_logged: set[tuple[str, str]] = set()

    @property
    def max_label_bytes(self) -> int:
        if self._max_label_bytes is None:
            self._max_label_bytes = _max_label_bytes_from_env()
        return self._max_label_bytes

    @max_label_bytes.setter
    def max_label_bytes(self, value: int | None) -> None:
        if value is not None:  # (None: from the environment)
            value = whole_at_least("max_label_bytes", value, MIN_LABEL_BYTES, "bytes")
        self._max_label_bytes = value

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
        return self._bounded(self._unique(sorted(families, key=lambda f: f.name)))

    def _bounded(self, families: list[Family]) -> list[Family]:
        """``families`` with every label value as :func:`label_value` exports it (the
        one place every exported value passes through: ``snapshot()``, the Prometheus
        text and OpenMetrics alike), and (``report_shortened``)
        ``cfgcore_metric_label_values_shortened``: how many values of each (metric,
        label) this collection shortened."""
        bound = self.max_label_bytes
        quick = bound // 4  # characters that fit whatever they are (4 bytes at most)
        out: list[Family] = []
        shortened: dict[tuple[str, str], int] = {}
        first: dict[tuple[str, str], tuple[str, str]] = {}
        for family in families:
            changed = False
            samples = []
            for sample in family.samples:
                labels = sample.labels
                for name, value in labels.items():
                    # (Inline, the way nearly every value goes: a scrape of 10,000 series
                    # has 30,000 of them.)
                    if (
                        value.__class__ is str
                        and len(value) <= quick
                        and value.isascii()
                        and value[-_SUFFIX:-_DIGEST_HEX] != _MARK
                    ):
                        continue
                    text, cut = label_value(value if isinstance(value, str) else str(value),
                                            bound)  # fmt: skip
                    if text is value:
                        continue
                    if labels is sample.labels:
                        labels = dict(labels)
                    labels[name] = text
                    if cut:
                        key = (family.name, name)
                        shortened[key] = shortened.get(key, 0) + 1
                        first.setdefault(key, (value, text))
                if labels is not sample.labels:
                    sample = replace(sample, labels=labels)
                    changed = True
                samples.append(sample)
            out.append(replace(family, samples=samples) if changed else family)
        for (metric, label), (value, text) in first.items():
            with self.lock:
                if (metric, label) in self._shortened_logged:
                    continue
                self._shortened_logged.add((metric, label))
            log.warning(
                "%s: a %s label value of %d characters is over %d bytes and exported as "
                "%r (its first bytes and a hash of it); further long values of this label "
                "are shortened without a word (counted in %s; %s sets the bound)",
                metric, label, len(value), bound, _preview(text), SHORTENED, _MAX_LABEL_ENV,
            )  # fmt: skip
        if not self.report_shortened:
            return out
        counts = [
            Sample({"metric": metric, "label": label}, float(n))
            for (metric, label), n in sorted(shortened.items())
        ]
        family = Family(
            SHORTENED, "gauge",
            f"Label values over {bound} bytes (CFGCORE_METRICS_MAX_LABEL_BYTES) that this "
            "collection exported shortened (first bytes, '...#', 16 hex digits of their "
            "BLAKE2b hash), by metric and label name.",
            ("metric", "label"), counts,
        )  # fmt: skip
        where = bisect.bisect_left([f.name for f in out], SHORTENED)
        if where == len(out) or out[where].name != SHORTENED:
            out.insert(where, family)
        return out

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


_REGISTRY = Registry(report_shortened=True)


def registry() -> Registry:
    """The process-wide registry every cfgcore component records into."""
    return _REGISTRY


@after_fork_in_child
def _reset_after_fork() -> None:
    _REGISTRY._after_fork_in_child()
