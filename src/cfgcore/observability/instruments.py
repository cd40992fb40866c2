"""Every metric cfgcore exports, defined once, and what the change paths call.

The recording calls (:func:`activation`, :func:`validation`, :func:`listener_failed`,
:func:`exposures_written`) sit on change paths only: loads, reloads, validation runs,
the exposure writer thread. State that the components keep anyway (versions, ages, a
follower's connection, documents a flag set or a store took or refused, drop counts)
is read when metrics are collected, from objects registered here weakly
(``track_*``), so a closed manager, store or flag set simply stops being reported: a
process that opens and closes them (one per tenant, per test, per reconfiguration)
does not keep a series for each one it ever opened.

A counter of such objects never goes down while its series is exported: what a
closed (or garbage-collected) object counted is kept per label set (:class:`_Closed`)
and added to the counts of the objects still open under the same labels, so one of
two stores of one URL closing is not read as a counter reset (which would count the
other's total again). With no object open under them, those counts are not exported
but kept for the evaluation totals' ``retain`` seconds
(``CFGCORE_EVALUATION_RETAIN_SECONDS``, default an hour), so a store closed and opened
again (a reload) continues its counters instead of starting from zero in a way
Prometheus may not see.

Label values come from closed or bounded sets: operations and results below, reason
classes (:data:`cfgcore.errors.REASON_CLASSES`), experiment and variant names (bounded
by the flag snapshots served; those no engine serves are forgotten once idle; at most
:data:`DEFAULT_MAX_FLAG_SERIES` evaluation series, see :class:`EvaluationSeries`),
stores and configuration directories (those of the objects open).
User ids never appear. Each value is exported with at most
``CFGCORE_METRICS_MAX_LABEL_BYTES`` bytes (default 1024; a longer one as its start and
a hash: :func:`cfgcore.observability.registry.label_value`), whoever chose its text.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from cfgcore._numbers import whole_at_least
from cfgcore.errors import REASON_CLASSES, ConfigError
from cfgcore.observability.registry import Family, Sample, registry
from cfgcore.runtime.forks import after_fork_in_child

__all__ = [
    "DEFAULT_MAX_FLAG_SERIES",
    "EVALUATION_SERIES",
    "OPERATIONS",
    "OVERFLOW",
    "EvaluationSeries",
    "activation",
    "exposures_written",
    "listener_failed",
    "reason_of",
    "track_config_manager",
    "track_flags",
    "track_store",
    "track_watcher",
    "track_writer",
    "untrack",
    "validation",
    "watcher_failed",
]

#: What an activation of the configuration manager was: the first ``load`` (or an
#: explicit ``load_environment_config``), a ``reload`` (watcher, poll, ``reload()``, a
#: published configuration), an ``update`` (``update_config``), a ``profile`` switch, a
#: ``replace`` (``set_active_config``, a migration).
OPERATIONS = ("load", "reload", "update", "profile", "replace")

_R = registry()
log = logging.getLogger("cfgcore.metrics")

CONFIG_LOADS = _R.counter(
    "cfgcore_config_loads_total",
    "Configuration activations by operation, result (ok, unchanged, rejected) and the "
    "reason class of a rejection (none when accepted).",
    ("operation", "result", "reason"),
)
CONFIG_LOAD_SECONDS = _R.histogram(
    "cfgcore_config_load_duration_seconds",
    "Time to build, validate and swap in a configuration (listeners excluded).",
    ("operation",),
)
VALIDATIONS = _R.counter(
    "cfgcore_config_validations_total",
    "Runs of the validation gate on a configuration about to go live, by result.",
    ("result",),
)
VALIDATION_SECONDS = _R.histogram(
    "cfgcore_config_validation_duration_seconds", "Time one run of the validation gate took."
)
LISTENER_FAILURES = _R.counter(
    "cfgcore_change_listener_failures_total",
    "Change listeners that raised (sync: in the emitting thread; async: in their loop).",
    ("mode",),
)
WATCHER_ERRORS = _R.counter(
    "cfgcore_config_watcher_errors_total",
    "File-watcher failures (the watch itself, a change callback or the poll); the watcher retries.",
    ("stage",),
)
DROPPED = _R.counter(
    "cfgcore_dropped_events_total",
    "Exposure or metric events dropped because the writer's backlog was full (or the "
    "writer was closed), or lost because their log could not take them (a full disk).",
    ("stream",),
)

# --------------------------------------------------------------------------- recording


def reason_of(exc: BaseException) -> str:
    """The reason class (:data:`cfgcore.errors.REASON_CLASSES`) of a refusal."""
    if isinstance(exc, ConfigError):
        reason = exc.reason
        return reason if reason in REASON_CLASSES else "other"
    if isinstance(exc, PermissionError):
        return "denied"
    return "other"


def activation(
    operation: str, started: float, *, error: BaseException | None = None, unchanged: bool = False
) -> None:
    """Count one activation attempt that began at ``started`` (``time.perf_counter()``)."""
    op = operation if operation in OPERATIONS else "update"
    if error is not None:
        result, reason = "rejected", reason_of(error)
    else:
        result, reason = ("unchanged" if unchanged else "ok"), "none"
    CONFIG_LOADS.inc(operation=op, result=result, reason=reason)
    CONFIG_LOAD_SECONDS.observe(time.perf_counter() - started, operation=op)


def validation(passed: bool, seconds: float) -> None:
    """Count one run of the validation gate."""
    VALIDATIONS.inc(result="passed" if passed else "failed")
    VALIDATION_SECONDS.observe(seconds)


def listener_failed(mode: str) -> None:
    """A change listener raised (``mode``: ``sync`` or ``async``)."""
    LISTENER_FAILURES.inc(mode=mode)


def watcher_failed(stage: str) -> None:
    """The file watcher failed at ``stage``: ``watch``, ``change`` or ``poll``."""
    WATCHER_ERRORS.inc(stage=stage)


class _Exposures:
    """``cfgcore_ab_exposures_total``: exposures written per (experiment, variant) since
    the process started, with the evaluation totals' forgetting: an experiment no live
    engine serves as a flag (deleted from the document, a closed tenant's manager, a
    name only a direct ``ExposureLogger.log`` call gave) that had no exposure for
    ``retain`` seconds loses its series. Without it every experiment name a process
    ever logged, whoever chose it, stayed in every scrape."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], float] = {}
        self._last: dict[str, float] = {}

    def add(self, counts: Mapping[tuple[str, str], int]) -> None:
        now = time.time()
        with self._lock:
            for (experiment, variant), n in counts.items():
                key = (str(experiment), str(variant))
                self._counts[key] = self._counts.get(key, 0.0) + n
                self._last[key[0]] = now

    def family(self) -> list[Family]:
        from cfgcore import _counting
        from cfgcore.observability.evaluations import evaluation_totals

        cutoff = time.time() - evaluation_totals().retain
        with self._lock:
            idle = {name for name, last in self._last.items() if last < cutoff}
        if idle:
            served = [e.snapshot() for e in _counting.engines()
                      if not getattr(e, "_retired", False)]  # fmt: skip
            gone = {name for name in idle if not any(name in snap for snap in served)}
            with self._lock:
                gone = {name for name in gone if self._last.get(name, 0.0) < cutoff}
                for name in gone:
                    del self._last[name]
                self._counts = {k: n for k, n in self._counts.items() if k[0] not in gone}
        with self._lock:
            samples = [Sample({"experiment": e, "variant": v}, n)
                       for (e, v), n in self._counts.items()]  # fmt: skip
        return [
            Family(
                "cfgcore_ab_exposures_total", "counter",
                "A/B test exposures written (each user's first assignment to a test per "
                "process). An experiment no live engine serves goes once it has had no "
                "exposure for CFGCORE_EVALUATION_RETAIN_SECONDS (default an hour).",
                ("experiment", "variant"), samples,
            )
        ]  # fmt: skip

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._counts = {}


_EXPOSURES = _Exposures()


def exposures_written(counts: Mapping[tuple[str, str], int]) -> None:
    """Exposures the writer thread delivered, per (experiment, variant)."""
    _EXPOSURES.add(counts)


# --------------------------------------------------------------------------- live state

_MANAGERS: weakref.WeakSet[Any] = weakref.WeakSet()
_FLAG_SETS: weakref.WeakSet[Any] = weakref.WeakSet()
_STORES: weakref.WeakSet[Any] = weakref.WeakSet()
_WRITERS: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
# Watcher -> (config_dir, store) labels.
_WATCHERS: weakref.WeakKeyDictionary[Any, tuple[str, str]] = weakref.WeakKeyDictionary()
_harvest_lock = threading.Lock()


class _Closed:
    """What closed objects counted, per (kind, label values): ``{counter: n}``.

    An entry is added to the counts of the open objects with the same labels, and
    exported only while one is open; with none open it is kept, hidden, for
    ``retain`` seconds after the last close (and at most :attr:`limit` such entries,
    the oldest dropped first), so a store opened again soon goes on from its total.
    One lock orders a close against a collection: an object's counts are read either
    as its own or in here, never both and never neither.
    """

    limit = 10_000

    def __init__(self) -> None:
        self.lock = threading.RLock()  # (a finalizer may run in a collection's gc)
        self._counts: dict[tuple[str, tuple[str, ...]], dict[str, float]] = {}
        self._closed_at: dict[tuple[str, tuple[str, ...]], float] = {}
        # Each tracked object's finalizer: run by close() (untrack), or when the object
        # is collected unclosed; it moves the object's counts in here, once.
        self.tracked: weakref.WeakKeyDictionary[Any, weakref.finalize[Any, Any]] = (
            weakref.WeakKeyDictionary()
        )

    def track(self, obj: Any, kind: str, labels: tuple[str, ...], counts: dict[str, int]) -> None:
        # The finalizer holds the counts dict, not the object (which would never die).
        fin = weakref.finalize(obj, self._add, kind, labels, counts)
        fin.atexit = False
        with self.lock:
            self.tracked[obj] = fin

    def untrack(self, obj: Any) -> None:
        with self.lock:
            fin = self.tracked.pop(obj, None)
            if fin is not None:
                fin()

    def _add(self, kind: str, labels: tuple[str, ...], counts: Mapping[str, int]) -> None:
        key = (kind, labels)
        with self.lock:
            into = self._counts.setdefault(key, {})
            for name, n in list(counts.items()):
                into[name] = into.get(name, 0.0) + n
            self._closed_at.pop(key, None)  # (re-inserted: the dict keeps close order)
            self._closed_at[key] = time.time()

    def totals(
        self,
        kind: str,
        objects: list[Any],
        labels_of: Callable[[Any], tuple[str, ...]],
        counts_of: Callable[[Any], Mapping[str, int]],
    ) -> dict[tuple[str, ...], dict[str, float]]:
        """Per label set that some still-tracked one of ``objects`` has: the counts of
        those objects plus those of the closed ones. Forgets hidden entries past their
        time."""
        from cfgcore.observability.evaluations import evaluation_totals

        cutoff = time.time() - evaluation_totals().retain
        out: dict[tuple[str, ...], dict[str, float]] = {}
        with self.lock:
            for obj in objects:
                if obj not in self.tracked:
                    continue
                into = out.setdefault(labels_of(obj), {})
                for name, n in list(counts_of(obj).items()):
                    into[name] = into.get(name, 0.0) + n
            hidden = [k for k in self._closed_at if k[0] == kind and k[1] not in out]
            excess = max(0, len(hidden) - self.limit)
            for i, key in enumerate(hidden):  # oldest close first
                if i < excess or self._closed_at[key] < cutoff:
                    del self._counts[key], self._closed_at[key]
            for (k, labels), counts in self._counts.items():
                if k == kind and labels in out:
                    into = out[labels]
                    for name, total in counts.items():
                        into[name] = into.get(name, 0.0) + total
        return out

    def _after_fork_in_child(self) -> None:
        # Counts are what this process did: a forked worker's start at zero.
        self.lock = threading.RLock()
        self._counts, self._closed_at = {}, {}


_CLOSED = _Closed()


def untrack(obj: Any) -> None:
    """``obj`` (a flag set or store) closed: its series go from the next collection, and
    what it counted stays in the counters of its labels (see the module docstring)."""
    _CLOSED.untrack(obj)


def track_config_manager(manager: Any) -> None:
    """Report ``manager``'s live snapshot (version, age, failing reloads) until it is
    closed."""
    _MANAGERS.add(manager)


def track_flags(live: Any) -> None:
    """Report a :class:`~cfgcore.runtime.flags.LiveFlags` (document version and age,
    documents it took or refused) until it is closed (:func:`untrack`)."""
    _FLAG_SETS.add(live)
    _CLOSED.track(live, "flags", (live.store.url,), live.documents)


def track_store(store: Any) -> None:
    """Report a following flag store (connection, version, documents, cache reads)
    until it is closed (:func:`untrack`)."""
    _STORES.add(store)
    _CLOSED.track(store, "store", (store.url, store.document_name), store.stats)


def track_watcher(watcher: Any, *, config_dir: str = "", store: str = "") -> None:
    """Report a file watcher's liveness (the age of its last tick, its stall bound) while
    it runs: ``config_dir`` names a configuration manager's watcher, ``store`` the flag
    store (``file://...``) of a dynamic-config manager's. Stopped, it has no series."""
    with _harvest_lock:
        _WATCHERS[watcher] = (config_dir, store)


def track_writer(writer: Any) -> None:
    """Harvest a :class:`~cfgcore.experiments.writer.BackgroundWriter`'s drop count."""
    with _harvest_lock:
        _WRITERS.setdefault(writer, 0)


def harvest_dropped(writer: Any) -> None:
    """Move ``writer``'s drops (and records it could not write) since the last harvest
    into ``cfgcore_dropped_events_total`` (the request path only increments the
    writer's own integer)."""
    with _harvest_lock:
        seen = _WRITERS.get(writer, 0)
        now = writer.dropped + getattr(writer, "lost", 0)
        _WRITERS[writer] = now
    if now > seen:
        DROPPED.inc(now - seen, stream=writer.name.removeprefix("cfgcore-"))


def _harvest_all() -> list[Family]:
    for writer in list(_WRITERS.keys()):
        harvest_dropped(writer)
    return []


def _family(
    name: str,
    kind: str,
    help: str,
    labels: tuple[str, ...],
    rows: list[Sample],
    combine: Callable[[Iterable[float]], float] | None = None,
) -> Family:
    """A family from ``rows``, one series per label set. Two live objects may share
    labels (two managers of one directory, two store objects of one URL): counters add
    up, ages keep the freshest, other gauges the highest (connected if either is),
    unless ``combine`` says otherwise."""
    if combine is None:
        combine = sum if kind == "counter" else min if name.endswith("age_seconds") else max
    grouped: dict[tuple[tuple[str, str], ...], list[Sample]] = {}
    for row in rows:
        grouped.setdefault(tuple(sorted(row.labels.items())), []).append(row)
    samples = [Sample(same[0].labels, float(combine(s.value for s in same)))
               for same in grouped.values()]  # fmt: skip
    return Family(name, kind, help, labels, samples)


_CONFIG_GAUGES = (
    ("version", "Version of the live configuration snapshot."),
    ("snapshot_age_seconds", "Seconds since the live configuration snapshot was activated."),
    ("reload_failing", "1 while the last activation attempt was rejected (the previous "
     "configuration keeps serving)."),
    ("hot_reload_enabled", "1 while a file watcher follows the configuration directory."),
)  # fmt: skip


def _config_state() -> list[Family]:
    now = time.time()
    rows: list[list[Sample]] = [[] for _ in _CONFIG_GAUGES]
    for m in list(_MANAGERS):
        snap = m._snap
        if not snap.version or m.closed:  # closed: it serves its last version, unfollowed
            continue
        labels = {"config_dir": m.config_dir, "environment": snap.environment}
        values = (
            snap.version,
            max(0.0, now - snap.loaded_at),
            m.last_error is not None,
            m.hot_reload_enabled,
        )
        for row, value in zip(rows, values, strict=True):
            row.append(Sample(labels, float(value)))
    names = ("config_dir", "environment")
    return [
        _family(f"cfgcore_config_{name}", "gauge", help, names, row)
        for (name, help), row in zip(_CONFIG_GAUGES, rows, strict=True)
    ]


_FLAG_GAUGES = (
    ("cfgcore_flags_version", "Version of the live flag document."),
    ("cfgcore_flags_snapshot_age_seconds", "Seconds since the live flag document was swapped in."),
    ("cfgcore_flags", "Flags in the live flag document."),
    ("cfgcore_flags_last_document_rejected", "1 while the newest flag document offered was "
     "refused (the previous one keeps serving)."),
)  # fmt: skip


def _flag_state() -> list[Family]:
    now = time.time()
    rows: list[list[Sample]] = [[] for _ in _FLAG_GAUGES]
    sets = list(_FLAG_SETS)
    for live in sets:
        doc = live.document
        if live.closed or doc is None:  # closed: it serves what it last had, unfollowed
            continue
        labels = {"store": live.store.url}
        values = (
            doc.version,
            max(0.0, now - live.installed_at),
            len(live.source.flags),
            live.document_refused,
        )
        for row, value in zip(rows, values, strict=True):
            row.append(Sample(labels, float(value)))
    totals = _CLOSED.totals("flags", sets, lambda live: (live.store.url,),
                            lambda live: live.documents)  # fmt: skip
    documents = [
        Sample({"store": url, "result": result}, totals[url,].get(result, 0.0))
        for (url,) in totals
        for result in ("ok", "rejected")
    ]
    return [
        *(
            _family(name, "gauge", help, ("store",), row)
            for (name, help), row in zip(_FLAG_GAUGES, rows, strict=True)
        ),
        _family(
            "cfgcore_flag_documents_total",
            "counter",
            "Flag documents offered to a live flag set, by result (ok: compiled and "
            "swapped in; rejected: refused, the previous flags keep serving). Reported "
            "while a flag set of the store is open.",
            ("store", "result"),
            documents,
        ),
    ]


_STORE_GAUGES = {
    "connected": "1 while the store's follower is subscribed to change announcements.",
    "serving_cache": "1 while the flags came from the local cache file because the store "
    "was unreachable, and the store has not been reached since.",
    "version": "Highest document version this process read, wrote or was given.",
    "last_contact_age_seconds": "Seconds since the store last confirmed that the document "
    "served is current (no sample before the first contact).",
}
_STORE_COUNTERS = {
    "reconnects": ("reconnects", "Times the follower lost its connection and reconnected."),
    "writes": ("writes", "Documents this process wrote to the store."),
    "conflicts": ("write_conflicts", "Writes retried because another writer got there first."),
    "backwards": ("version_regressions", "Times the store held an older version than the "
                  "one served (writes lost in a failover)."),
    "cache_reads": ("cache_reads", "Reads served from the local cache file because the "
                    "store was unreachable."),
    "stops_rejected": ("stop_entries_rejected", "Entries of the fleet's guardrail stop "
                       "register refused and passed over (not signed by a trusted key)."),
}  # fmt: skip


def _store_state() -> list[Family]:
    now = time.time()
    gauges: dict[str, list[Sample]] = {name: [] for name in _STORE_GAUGES}
    stores = list(_STORES)
    for store in stores:
        if store.closed:  # closed, not yet collected: it follows nothing any more
            continue
        labels = {"store": store.url, "document": store.document_name}
        gauges["connected"].append(Sample(labels, float(store.connected)))
        gauges["serving_cache"].append(Sample(labels, float(store.serving_cache)))
        gauges["version"].append(Sample(labels, float(store.version)))
        if store.last_contact:
            age = max(0.0, now - store.last_contact)
            gauges["last_contact_age_seconds"].append(Sample(labels, age))
    totals = _CLOSED.totals("store", stores, lambda store: (store.url, store.document_name),
                            lambda store: store.stats)  # fmt: skip
    docs: list[Sample] = []
    counters: dict[str, list[Sample]] = {key: [] for key in _STORE_COUNTERS}
    for (url, document), stats in totals.items():
        labels = {"store": url, "document": document}
        for result in ("accepted", "rejected", "failed"):
            docs.append(Sample({**labels, "result": result}, stats.get(result, 0.0)))
        for key, row in counters.items():
            row.append(Sample(labels, stats.get(key, 0.0)))
    names = ("store", "document")
    out = [
        _family(f"cfgcore_flag_store_{name}", "gauge", _STORE_GAUGES[name], names, row)
        for name, row in gauges.items()
    ]
    out.append(
        _family(
            "cfgcore_flag_store_documents_total",
            "counter",
            "Documents the store's follower accepted, rejected (corrupt, or not "
            "compiling: the last good ones keep serving) or failed to apply (an "
            "unexpected error in a listener: retried at every poll).",
            (*names, "result"),
            docs,
        )  # fmt: skip
    )
    for key, row in counters.items():
        name, help = _STORE_COUNTERS[key]
        out.append(_family(f"cfgcore_flag_store_{name}_total", "counter", help, names, row))
    return out


def _watcher_state() -> list[Family]:
    """Each watcher's liveness, as the health ``freshness`` check reads it: seconds
    since its loop last came round (monotonic clock, as the check), and its bound. A
    watcher started and not stopped is reported even once its thread or task is gone (its
    age then only grows: the alert that watches it fires too); a stopped one is not."""
    now = time.monotonic()
    with _harvest_lock:
        watchers = list(_WATCHERS.items())
    ages: list[Sample] = []
    bounds: list[Sample] = []
    for watcher, (config_dir, store) in watchers:
        if not getattr(watcher, "wanted", watcher.running):
            continue
        labels = {"watcher": watcher.name, "config_dir": config_dir, "store": store}
        ages.append(Sample(labels, max(0.0, now - watcher.last_tick)))
        bounds.append(Sample(labels, float(watcher.stall_after)))
    names = ("watcher", "config_dir", "store")
    return [
        _family(
            "cfgcore_config_watcher_last_tick_age_seconds", "gauge",
            "Seconds since a running file watcher's loop last came round (every 100 ms "
            "while nothing blocks it). Past cfgcore_config_watcher_stall_bound_seconds, "
            "health() reports the manager not ready (freshness). Labelled by config_dir "
            "for a configuration manager's watchers, by store for a dynamic-config "
            "manager's flags file watcher; two watchers with the same labels (two "
            "managers of one directory) give the stalest.",
            names, ages, max,
        ),
        _family(
            "cfgcore_config_watcher_stall_bound_seconds", "gauge",
            "The watcher's stall_after: seconds without a tick after which health() "
            "reports it stuck (stall_after argument, CFGCORE_WATCHER_STALL_SECONDS, or "
            "max(30, 20 x poll_interval)); of two watchers with the same labels, the "
            "smaller.",
            names, bounds, min,
        ),
    ]  # fmt: skip


def _validation_ratio() -> list[Family]:
    passed = VALIDATIONS.value(result="passed")
    total = passed + VALIDATIONS.value(result="failed")
    samples = [Sample({}, passed / total)] if total else []
    return [
        Family(
            "cfgcore_config_validation_success_ratio",
            "gauge",
            "Share of validation-gate runs that passed since the process started "
            "(no sample before the first run).",
            (),
            samples,
        )
    ]


#: ``cfgcore_flag_evaluations_total``'s limit when neither
#: :attr:`EvaluationSeries.limit` nor ``CFGCORE_METRICS_MAX_FLAG_SERIES`` sets one.
DEFAULT_MAX_FLAG_SERIES = 10_000
_MAX_SERIES_ENV = "CFGCORE_METRICS_MAX_FLAG_SERIES"

#: The ``flag``, ``variant`` and ``reason`` of the series that counts the evaluations of
#: the (flag, variant, reason) combinations past the limit.
OVERFLOW = "__cfgcore_overflow__"


def _max_series_from_env() -> int:
    raw = os.environ.get(_MAX_SERIES_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_FLAG_SERIES
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        log.warning("%s=%r is not a number of series (0: no limit): using the default, %d",
                    _MAX_SERIES_ENV, raw, DEFAULT_MAX_FLAG_SERIES)  # fmt: skip
        return DEFAULT_MAX_FLAG_SERIES
    return value


class EvaluationSeries:
    """Which (flag, variant, reason) combinations get a series of their own in
    ``cfgcore_flag_evaluations_total``: at most :attr:`limit`, first come first served.

    The flags come from documents anyone with write access to a flag store or a flags
    file chooses (a fleet's tenants, an import from another system), and each flag adds a
    series per variant and reason served, kept an hour after the flag is deleted: one
    large document, or flags created and deleted by the thousand, multiplied the scrape
    without bound, and past a Prometheus ``sample_limit`` the whole target (health
    gauges included) fails to scrape. Past the limit, the evaluations of each further
    combination are added to the one series whose labels are all :data:`OVERFLOW` (so
    sums and rates over the family stay right), ``cfgcore_flag_evaluation_series_over_limit``
    says how many combinations are counted there, and the first time it happens a
    WARNING names the setting. A combination keeps where it was first counted while its
    totals are kept (see :mod:`cfgcore.observability.evaluations`); once forgotten, it
    frees its place.

    ``limit``: set the attribute, else ``CFGCORE_METRICS_MAX_FLAG_SERIES``, else
    :data:`DEFAULT_MAX_FLAG_SERIES`; 0 means no limit.
    """

    def __init__(self, limit: int | None = None) -> None:
        self._lock = threading.Lock()
        self._limit: int | None = None
        self.limit = limit  # (the setter checks it: "100" raised at the first scrape)
        self._own: dict[tuple[str, str, str], None] = {}  # (insertion ordered set)
        # Combinations past the limit -> their total already added to the overflow.
        self._folded: dict[tuple[str, str, str], int] = {}
        self.overflow = 0
        self._warned = False

    @property
    def limit(self) -> int:
        if self._limit is None:
            self._limit = _max_series_from_env()
        return self._limit

    @limit.setter
    def limit(self, value: int | None) -> None:
        if value is not None:  # (None: from the environment; 0: no limit)
            value = whole_at_least("limit", value, 0, "series")
        self._limit = value

    def samples(self, totals: dict[tuple[str, str, str], int]) -> tuple[list[Sample], int]:
        """The series of ``totals`` (cumulative counts per combination, as
        :meth:`EvaluationTotals.collect` returns them, in first-counted order) and how
        many combinations are counted in the overflow series."""
        limit = self.limit
        with self._lock:
            # Forgotten combinations (deleted flags, idle past the retention) free their
            # place; one that comes back counts from zero, as its own series would.
            if len(self._own) > len(totals) or any(k not in totals for k in self._own):
                self._own = {k: None for k in self._own if k in totals}
            self._folded = {k: n for k, n in self._folded.items() if k in totals}
            own = []
            for key, n in totals.items():
                if key in self._own:
                    own.append((key, n))
                elif key not in self._folded and (not limit or len(self._own) < limit):
                    self._own[key] = None
                    own.append((key, n))
                else:
                    seen = self._folded.get(key, 0)
                    self.overflow += n - seen if n >= seen else n  # (less: counted anew)
                    self._folded[key] = n
            folded, overflow = len(self._folded), self.overflow
            warn = bool(folded) and not self._warned
            self._warned = self._warned or warn
        if warn:
            log.warning(
                "cfgcore_flag_evaluations_total reached its limit of %d series: the "
                "evaluations of further (flag, variant, reason) combinations are counted "
                "under flag=\"%s\" (raise %s, or set it to 0 for no limit)",
                limit, OVERFLOW, _MAX_SERIES_ENV,
            )  # fmt: skip
        samples = [
            Sample({"flag": flag, "variant": variant, "reason": reason}, float(n))
            for (flag, variant, reason), n in sorted(own)
        ]
        if overflow or folded:
            labels = {"flag": OVERFLOW, "variant": OVERFLOW, "reason": OVERFLOW}
            samples.append(Sample(labels, float(overflow)))
        return samples, folded

    def _after_fork_in_child(self) -> None:
        # The totals start from zero in a forked worker: so do the overflow's.
        self._lock = threading.Lock()
        self._own, self._folded, self.overflow = {}, {}, 0


EVALUATION_SERIES = EvaluationSeries()


def _evaluations() -> list[Family]:
    """The compiled core's evaluation counts (harvested from every engine by
    :func:`cfgcore.observability.evaluations.evaluation_totals`), cumulative, at most
    :attr:`EVALUATION_SERIES.limit <EvaluationSeries.limit>` series of them."""
    from cfgcore.details import ERROR_CODES
    from cfgcore.observability.evaluations import evaluation_totals

    totals = evaluation_totals().collect()
    evaluations, folded = EVALUATION_SERIES.samples(totals["evaluations"])
    # Every code from the start, at 0: a rate over a series that appears with its first
    # error would miss that error.
    errors = {code: 0 for code in ERROR_CODES} | totals["errors"]
    return [
        Family(
            "cfgcore_flag_evaluations_total", "counter",
            "Flag evaluations (is_enabled, variant, value, evaluate, one per flag of "
            "evaluate_all, the seed API's calls) by flag, served variant and reason. A "
            "deleted flag's series go once it has not been evaluated for "
            "CFGCORE_EVALUATION_RETAIN_SECONDS (default an hour). At most "
            "CFGCORE_METRICS_MAX_FLAG_SERIES series (default 10000): further "
            f"combinations are counted under flag=\"{OVERFLOW}\".",
            ("flag", "variant", "reason"), evaluations,
        ),
        Family(
            "cfgcore_flag_evaluation_series_over_limit", "gauge",
            "(flag, variant, reason) combinations counted in the overflow series of "
            "cfgcore_flag_evaluations_total because it has CFGCORE_METRICS_MAX_FLAG_SERIES "
            "series already (0 while under the limit).",
            (), [Sample({}, float(folded))],
        ),
        Family(
            "cfgcore_flag_evaluation_errors_total", "counter",
            "Evaluations that hit an error, by code (FLAG_NOT_FOUND calls are counted only "
            "here; the other codes also under the reason the flag was served with).",
            ("code",), [Sample({"code": c}, float(n)) for c, n in sorted(errors.items())],
        ),
    ]  # fmt: skip


for _collector in (
    _harvest_all, _config_state, _flag_state, _store_state, _watcher_state, _validation_ratio,
    _evaluations, _EXPOSURES.family,
):  # fmt: skip
    _R.add_collector(_collector)


@after_fork_in_child
def _reset_after_fork() -> None:
    # A harvest in another thread at fork time would leave the lock held in the child.
    global _harvest_lock
    _harvest_lock = threading.Lock()
    # The writers' counts start at zero in the child too (writer.py): so do the marks
    # of what was harvested from them.
    for writer in list(_WRITERS.keys()):
        _WRITERS[writer] = 0
    _CLOSED._after_fork_in_child()
    _EXPOSURES._after_fork_in_child()
    EVALUATION_SERIES._after_fork_in_child()
