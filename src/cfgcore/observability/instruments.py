"""Every metric cfgcore exports, defined once, and what the change paths call.

The recording calls (:func:`activation`, :func:`validation`, :func:`listener_failed`,
:func:`exposures_written`) sit on change paths only: loads, reloads, validation runs,
the exposure writer thread. State that the components keep anyway (versions, ages, a
follower's connection, documents a flag set or a store took or refused, drop counts)
is read when metrics are collected, from objects registered here weakly
(``track_*``), so a closed store or flag set simply stops being reported: a process
that opens and closes stores (one per tenant, per test, per reconfiguration) does not
keep a series for each store it ever opened. Another store still open under the same
labels keeps its series (its own counts: a counter of two such objects adds up, so it
goes down when one closes, which Prometheus reads as a counter reset).

Label values come from closed or bounded sets: operations and results below, reason
classes (:data:`cfgcore.errors.REASON_CLASSES`), experiment and variant names (bounded
by the flag snapshot), stores and configuration directories (a handful per process).
User ids never appear.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

from cfgcore.errors import REASON_CLASSES, ConfigError
from cfgcore.observability.registry import Family, Sample, registry
from cfgcore.runtime.forks import after_fork_in_child

__all__ = [
    "OPERATIONS",
    "activation",
    "exposures_written",
    "listener_failed",
    "reason_of",
    "track_config_manager",
    "track_flags",
    "track_store",
    "track_writer",
    "validation",
    "watcher_failed",
]

#: What an activation of the configuration manager was: the first ``load`` (or an
#: explicit ``load_environment_config``), a ``reload`` (watcher, poll, ``reload()``, a
#: published configuration), an ``update`` (``update_config``), a ``profile`` switch, a
#: ``replace`` (``set_active_config``, a migration).
OPERATIONS = ("load", "reload", "update", "profile", "replace")

_R = registry()

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
AB_EXPOSURES = _R.counter(
    "cfgcore_ab_exposures_total",
    "A/B test exposures written (each user's first assignment to a test per process).",
    ("experiment", "variant"),
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


def exposures_written(counts: Mapping[tuple[str, str], int]) -> None:
    """Exposures the writer thread delivered, per (experiment, variant)."""
    for (experiment, variant), n in counts.items():
        AB_EXPOSURES.inc(n, experiment=experiment, variant=variant)


# --------------------------------------------------------------------------- live state

_MANAGERS: weakref.WeakSet[Any] = weakref.WeakSet()
_FLAG_SETS: weakref.WeakSet[Any] = weakref.WeakSet()
_STORES: weakref.WeakSet[Any] = weakref.WeakSet()
_WRITERS: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
_harvest_lock = threading.Lock()


def track_config_manager(manager: Any) -> None:
    """Report ``manager``'s live snapshot (version, age, failing reloads) while it lives."""
    _MANAGERS.add(manager)


def track_flags(live: Any) -> None:
    """Report a :class:`~cfgcore.runtime.flags.LiveFlags` (document version and age,
    documents it took or refused) until it is closed."""
    _FLAG_SETS.add(live)


def track_store(store: Any) -> None:
    """Report a following flag store (connection, version, documents, cache reads)
    until it is closed."""
    _STORES.add(store)


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


def _family(name: str, kind: str, help: str, labels: tuple[str, ...], rows: list[Sample]) -> Family:
    """A family from ``rows``, one series per label set. Two live objects may share
    labels (two managers of one directory, two store objects of one URL): counters add
    up, ages keep the freshest, other gauges the highest (connected if either is)."""
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
        if not snap.version:
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
    documents: list[Sample] = []
    for live in list(_FLAG_SETS):
        if live.closed:  # closed, not yet collected: it serves what it last had, unfollowed
            continue
        labels = {"store": live.store.url}
        for result, n in list(live.documents.items()):
            documents.append(Sample({**labels, "result": result}, float(n)))
        doc = live.document
        if doc is None:
            continue
        values = (
            doc.version,
            max(0.0, now - live.installed_at),
            len(live.source.flags),
            live.last_error is not None,
        )
        for row, value in zip(rows, values, strict=True):
            row.append(Sample(labels, float(value)))
    return [
        *(
            _family(name, "gauge", help, ("store",), row)
            for (name, help), row in zip(_FLAG_GAUGES, rows, strict=True)
        ),
        _family(
            "cfgcore_flag_documents_total",
            "counter",
            "Flag documents offered to a live flag set, by result (ok: compiled and "
            "swapped in; rejected: refused, the previous flags keep serving). Counted by "
            "each open flag set: a closed store's series go.",
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
    counters: dict[str, list[Sample]] = {key: [] for key in _STORE_COUNTERS}
    docs: list[Sample] = []
    for store in list(_STORES):
        if store.closed:  # closed, not yet collected: it follows nothing any more
            continue
        labels = {"store": store.url, "document": store.document_name}
        gauges["connected"].append(Sample(labels, float(store.connected)))
        gauges["serving_cache"].append(Sample(labels, float(store.serving_cache)))
        gauges["version"].append(Sample(labels, float(store.version)))
        if store.last_contact:
            age = max(0.0, now - store.last_contact)
            gauges["last_contact_age_seconds"].append(Sample(labels, age))
        stats = store.stats
        for result in ("accepted", "rejected", "failed"):
            docs.append(Sample({**labels, "result": result}, float(stats.get(result, 0))))
        for key, row in counters.items():
            row.append(Sample(labels, float(stats.get(key, 0))))
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


def _evaluations() -> list[Family]:
    """The compiled core's evaluation counts (harvested from every engine by
    :func:`cfgcore.observability.evaluations.evaluation_totals`), cumulative."""
    from cfgcore.details import ERROR_CODES
    from cfgcore.observability.evaluations import evaluation_totals

    totals = evaluation_totals().collect()
    evaluations = [
        Sample({"flag": flag, "variant": variant, "reason": reason}, float(n))
        for (flag, variant, reason), n in sorted(totals["evaluations"].items())
    ]
    # Every code from the start, at 0: a rate over a series that appears with its first
    # error would miss that error.
    errors = {code: 0 for code in ERROR_CODES} | totals["errors"]
    return [
        Family(
            "cfgcore_flag_evaluations_total", "counter",
            "Flag evaluations (is_enabled, variant, value, evaluate, one per flag of "
            "evaluate_all, the seed API's calls) by flag, served variant and reason. A "
            "deleted flag's series go once it has not been evaluated for "
            "CFGCORE_EVALUATION_RETAIN_SECONDS (default an hour).",
            ("flag", "variant", "reason"), evaluations,
        ),
        Family(
            "cfgcore_flag_evaluation_errors_total", "counter",
            "Evaluations that hit an error, by code (FLAG_NOT_FOUND calls are counted only "
            "here; the other codes also under the reason the flag was served with).",
            ("code",), [Sample({"code": c}, float(n)) for c, n in sorted(errors.items())],
        ),
    ]  # fmt: skip


for _collector in (
    _harvest_all, _config_state, _flag_state, _store_state, _validation_ratio, _evaluations,
):  # fmt: skip
    _R.add_collector(_collector)


@after_fork_in_child
def _reset_after_fork() -> None:
    # A harvest in another thread at fork time would leave the lock held in the child.
    global _harvest_lock
    _harvest_lock = threading.Lock()
