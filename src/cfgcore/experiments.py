"""Experiment plumbing around the flag core: layers, holdouts, exposures and metrics.

An A/B test is a multivariate flag (see :mod:`cfgcore.dynamic_config`). This module
holds what surrounds it:

* **Layers and holdouts** (:func:`derive_flags`): a layer is a flag split into one
  slice per test plus an unassigned remainder, salted by the layer's name; each test
  of the layer has a prerequisite ``{flag: <layer flag>, variant: <its slice>}``, so a
  user is in at most one test of a layer. A holdout is a slice of users (bucketed by
  its own salt) that no test ever enrols: every test has the prerequisite
  ``__experiments__.eligible``, which is off for the holdout.
* **Exposure logging** (:class:`ExposureLogger`): the first time a user is served a
  variant of a test, an :class:`Exposure` goes into a bounded queue; a background
  thread hands batches to a sink. The hot path does a set lookup and, once per user
  and test, a non-blocking ``put``; when the queue is full the exposure is dropped and
  counted in ``dropped`` (never silently).
* **Sinks**: :class:`JsonLinesSink` (rotating JSON-lines file, built in), any object
  with ``write(batch)`` (and optionally ``flush()``/``close()``), or a plain callable.
* **Metrics** (:class:`MetricsStore`): success-metric events per variant, appended to
  a JSON-lines file so that ``cfgcore experiment report`` (another process) can read
  them, and summarised in memory for guardrail checks.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from cfgcore.snapshot import Condition, Flag, Prerequisite, Rule, Snapshot
from cfgcore.stats import SRM_THRESHOLD, Summary

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no cross-process lock
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "Exposure",
    "ExposureLogger",
    "ExposureSink",
    "JsonLinesSink",
    "MemorySink",
    "MetricsStore",
    "LAYER_PREFIX",
    "ELIGIBLE_FLAG",
    "derive_flags",
    "is_internal_flag",
    "analyze",
    "guardrail_violations",
    "ExperimentReport",
    "MetricResult",
    "layer_flag_key",
    "read_exposures",
    "read_metrics",
]

log = logging.getLogger("cfgcore.experiments")

LAYER_PREFIX = "__layer__."
ELIGIBLE_FLAG = "__experiments__.eligible"
UNASSIGNED = "__unassigned__"
HOLDOUT_SALT = "__experiments__.holdout"


def allocate_layer_slice(
    taken: list[tuple[float, float]], pct: float, prefer: float | None = None
) -> float | None:
    """The lowest offset where a slice of ``pct`` percent fits between the ``taken``
    ``(offset, pct)`` slices of a layer (``prefer`` first, if it fits); None if full."""
    ranges = sorted(taken)

    def fits(start: float) -> bool:
        end = start + pct
        return end <= 100.0 + 1e-9 and all(
            end <= o + 1e-9 or start >= o + p - 1e-9 for o, p in ranges
        )

    if prefer is not None and fits(prefer):
        return prefer
    for start in [0.0, *(o + p for o, p in ranges)]:
        if fits(start):
            return start
    return None


def layer_flag_key(layer: str) -> str:
    """The flag that splits a layer's traffic between its tests."""
    return LAYER_PREFIX + layer


# ----------------------------------------------------------------------------- layers


def derive_flags(snapshot: Snapshot) -> dict[str, Flag]:
    """The layer and holdout flags implied by ``snapshot.experiments`` and its
    ``metadata["holdout_percentage"]``, and each test flag's prerequisites.

    Returns the full new ``flags`` mapping: user flags unchanged, previous derived
    flags replaced, test flags with their layer/holdout prerequisites set. Tests are
    taken in insertion order, so a test added later never moves users of earlier
    tests (their slices keep their cumulative position).
    """
    flags = {k: v for k, v in snapshot.flags.items() if not _is_derived(k)}
    tests = {k: v for k, v in snapshot.experiments.items() if isinstance(v, dict)}
    holdout = float(snapshot.metadata.get("holdout_percentage", 0) or 0)
    derived: dict[str, Flag] = {}
    if holdout > 0:
        derived[ELIGIBLE_FLAG] = Flag(
            default="off",
            rules=[Rule(serve="on", rollout=100.0 - holdout)],
            salt=HOLDOUT_SALT,
            description=f"users outside the {holdout:g}% experiment holdout",
            tags=["experiment-internal"],
        )
    layers: dict[str, list[tuple[float, float, str]]] = {}
    for name, meta in tests.items():
        if meta.get("layer"):
            members = layers.setdefault(meta["layer"], [])
            pct = float(meta.get("layer_percentage", 100.0))
            offset = meta.get("layer_offset")
            if offset is None:  # records written without an offset: pack in order
                offset = max((o + p for o, p, _ in members), default=0.0)
            members.append((float(offset), pct, name))
    for layer, members in layers.items():
        # Each test owns a fixed bucket range [offset, offset + pct) of the layer, so
        # adding or deleting a test never moves the users of another one; gaps are
        # unassigned slices.
        split: dict[str, float] = {}
        variants: dict[str, Any] = {}
        pos = 0.0
        for offset, pct, name in sorted(members):
            if offset > pos + 1e-9:
                gap = f"{UNASSIGNED}{len(split)}"
                split[gap], variants[gap] = offset - pos, None
            split[name], variants[name] = pct, name
            pos = offset + pct
        # The last slice (possibly empty) is also the default: users without a
        # bucketing attribute are in no test of the layer.
        split[UNASSIGNED], variants[UNASSIGNED] = max(100.0 - pos, 0.0), None
        derived[layer_flag_key(layer)] = Flag(
            variants=variants,
            default=UNASSIGNED,
            rules=[Rule(split=split)],
            salt=layer_flag_key(layer),
            description=f"experiment layer {layer!r}: mutually exclusive tests",
            tags=["experiment-internal"],
        )
    for name, meta in tests.items():
        flag = flags.get(name)
        if flag is None:
            continue
        pre: list[str | Prerequisite] = [
            p for p in flag.prerequisites if not _is_derived(p if isinstance(p, str) else p.flag)
        ]
        if meta.get("layer"):
            pre.append(Prerequisite(flag=layer_flag_key(meta["layer"]), variant=name))
        if holdout > 0:
            pre.append(ELIGIBLE_FLAG)
        flags[name] = _replace(flag, prerequisites=pre)
    return {**derived, **flags}


def is_internal_flag(key: str) -> bool:
    """True for flags derived from experiment metadata (layers, holdout)."""
    return key.startswith(LAYER_PREFIX) or key == ELIGIBLE_FLAG


_is_derived = is_internal_flag


def _replace(flag: Flag, **changes: Any) -> Flag:
    import msgspec

    return msgspec.structs.replace(flag, **changes)


# -------------------------------------------------------------------------- exposures


class Exposure(NamedTuple):
    """One user's first exposure to a test: which variant, when (epoch seconds)."""

    test: str
    variant: str
    user: str
    time: float

    def to_json(self) -> dict[str, Any]:
        """The JSON-lines record (``ts`` is epoch seconds)."""
        return {"test": self.test, "variant": self.variant, "user": self.user, "ts": self.time}


ExposureSink = Any  # an object with write(batch: list[Exposure]) or a callable(batch)


class MemorySink:
    """Keeps exposures in a list (tests, notebooks)."""

    def __init__(self) -> None:
        self.exposures: list[Exposure] = []
        self._lock = threading.Lock()

    def write(self, batch: list[Exposure]) -> None:
        """Append a batch."""
        with self._lock:
            self.exposures.extend(batch)


class JsonLinesSink:
    """Append exposures (or any JSON-able records) to a JSON-lines file, rotating it.

    When the file exceeds ``max_bytes`` it is renamed to ``<name>.1`` (older ones shift
    to ``.2`` ... ``.<backups>``, the oldest is deleted) and a new file is started, so
    disk use stays bounded. Each batch is one ``write`` on an ``O_APPEND`` descriptor:
    a reader never sees a partial record from another process.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, max_bytes: int = 50 * 1024 * 1024, backups: int = 5
    ) -> None:
        self.path = os.fspath(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    def write(self, batch: Iterable[Exposure | Mapping[str, Any]]) -> None:
        """Append records; rotate first when the file is full."""
        data = "".join(
            json.dumps(r.to_json() if isinstance(r, Exposure) else dict(r), ensure_ascii=False)
            + "\n"
            for r in batch
        ).encode("utf-8")
        if not data:
            return
        with self._lock:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            # Pre-fork workers share the file: size check, rotation and append must be
            # one step across processes, or two rotations at once overwrite backups,
            # leave gaps the reader stops at, and fail on a file the other one moved.
            lock_fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if fcntl is not None:
                    fcntl.flock(lock_fd, fcntl.LOCK_EX)
                try:
                    size = os.path.getsize(self.path)
                except OSError:
                    size = 0
                if size and size + len(data) > self.max_bytes:
                    self._rotate()
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, data)
                finally:
                    os.close(fd)
            finally:
                os.close(lock_fd)  # releases the flock

    def _rotate(self) -> None:
        if self.backups <= 0:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            return
        for i in range(self.backups - 1, 0, -1):
            src = f"{self.path}.{i}"
            if os.path.exists(src):
                os.replace(src, f"{self.path}.{i + 1}")
        os.replace(self.path, f"{self.path}.1")

    def files(self) -> list[str]:
        """The current file and its rotated predecessors, oldest first."""
        olds = [f"{self.path}.{i}" for i in range(self.backups, 0, -1)]
        return [p for p in [*olds, self.path] if os.path.exists(p)]


def _iter_jsonl(path: str, rotated: bool = True) -> Iterator[dict[str, Any]]:
    paths = [path]
    if rotated:
        i = 1
        while os.path.exists(f"{path}.{i}"):
            paths.insert(0, f"{path}.{i}")
            i += 1
    for p in paths:
        try:
            fh = open(p, encoding="utf-8")
        except FileNotFoundError:
            continue
        with fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line cut by a crash: skip it, keep the rest
                if isinstance(rec, dict):
                    yield rec


def read_exposures(path: str | os.PathLike[str]) -> list[Exposure]:
    """Every exposure in a JSON-lines file and its rotated predecessors."""
    out = []
    for r in _iter_jsonl(os.fspath(path)):
        try:
            out.append(Exposure(str(r["test"]), str(r["variant"]), str(r["user"]), float(r["ts"])))
        except (KeyError, TypeError, ValueError):
            continue
    return out


class ExposureLogger:
    """Deduplicating, non-blocking exposure logger.

    :meth:`log` is called on the evaluation path. It records each (test, user) once
    (a set per test; when a set reaches ``dedup_limit`` users it is cleared, so memory
    stays bounded and a user may then be logged again: consumers dedup by user anyway),
    and puts the exposure in a queue of ``queue_size``; a daemon thread writes batches
    to every sink. A full queue drops the exposure and increments :attr:`dropped`.

    >>> sink = MemorySink()
    >>> logger = ExposureLogger([sink])
    >>> logger.log("t", "control", "u1"); logger.log("t", "control", "u1")
    >>> logger.flush(); len(sink.exposures)
    True
    1
    >>> logger.close()
    """

    def __init__(
        self,
        sinks: Iterable[ExposureSink] = (),
        *,
        queue_size: int = 100_000,
        batch_size: int = 1000,
        dedup_limit: int = 1_000_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sinks: list[ExposureSink] = list(sinks)
        self.dropped = 0
        self.logged = 0
        self.written = 0
        self.sink_errors = 0
        self._seen: dict[str, set[str]] = {}
        self._queue: queue.Queue[Exposure | None] = queue.Queue(queue_size)
        self._batch = batch_size
        self._dedup_limit = dedup_limit
        self._clock = clock
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        _LOGGERS.add(self)

    def _after_fork_in_child(self) -> None:
        # The writer thread does not exist in a forked child, and a lock held by another
        # thread at fork time would stay held forever: start afresh, keep the counters.
        # Exposures still queued in the parent are the parent's to write.
        self._queue = queue.Queue(self._queue.maxsize)
        self._start_lock = threading.Lock()
        self._thread = None
        for sink in self.sinks:
            reset = getattr(sink, "_after_fork_in_child", None)
            if callable(reset):
                reset()

    def add_sink(self, sink: ExposureSink) -> None:
        """Send future exposures to ``sink`` too."""
        self.sinks = [*self.sinks, sink]

    def seen_set(self, test: str) -> set[Any]:
        """The users already logged for ``test``: the live dedup set (read it, do not
        mutate it); callers on the hot path test membership before calling :meth:`log`."""
        seen = self._seen.get(test)
        if seen is None:
            seen = self._seen.setdefault(test, set())
        return seen

    def log(self, test: str, variant: str, user: Any) -> None:
        """Record that ``user`` was served ``variant`` of ``test`` (first time only).

        Never blocks and never raises on the caller's data.
        """
        seen = self._seen.get(test)
        if seen is None:
            seen = self._seen.setdefault(test, set())
        try:
            if user in seen:
                return
        except Exception:  # an unhashable id, or a str subclass whose __hash__ raises
            return
        if len(seen) >= self._dedup_limit:
            seen.clear()  # the same set object: holders of seen_set() stay in sync
        seen.add(user)
        if self._closed:  # nothing will write it any more: count it, do not queue it
            self.dropped += 1
            return
        if self._thread is None:
            self._start()
        try:
            self._queue.put_nowait(Exposure(test, variant, str(user), self._clock()))
            self.logged += 1
        except queue.Full:
            self.dropped += 1

    def forget(self, test: str) -> None:
        """Empty the dedup set of ``test`` (when the test is replaced or deleted)."""
        seen = self._seen.get(test)
        if seen is not None:
            seen.clear()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._closed:
                t = threading.Thread(target=self._run, name="cfgcore-exposures", daemon=True)
                t.start()
                self._thread = t

    def _run(self) -> None:
        q = self._queue
        while True:
            item = q.get()
            batch: list[Exposure] = []
            stop = item is None
            if item is not None:
                batch.append(item)
            while not stop and len(batch) < self._batch:
                try:
                    nxt = q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                else:
                    batch.append(nxt)
            if batch:
                self._deliver(batch)
            for _ in range(len(batch) + (1 if stop else 0)):
                q.task_done()
            if stop:
                return

    def _deliver(self, batch: list[Exposure]) -> None:
        for sink in self.sinks:
            write = getattr(sink, "write", None) or sink
            try:
                write(batch)
            except Exception:
                self.sink_errors += 1
                log.exception("exposure sink %r failed; %d exposures lost", sink, len(batch))
        self.written += len(batch)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued exposure reached the sinks; False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            thread = self._thread
            if time.monotonic() >= deadline or thread is None or not thread.is_alive():
                return not self._queue.unfinished_tasks
            time.sleep(0.001)
        for sink in self.sinks:
            f = getattr(sink, "flush", None)
            if callable(f):
                with contextlib.suppress(Exception):
                    f()
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Flush, stop the writer thread and close sinks that have ``close()``."""
        if self._closed:
            return
        self._closed = True
        thread = self._thread
        if thread is not None:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    self._queue.put(None, timeout=max(0.0, deadline - time.monotonic()))
                    break
                except queue.Full:
                    if time.monotonic() >= deadline:
                        break
            thread.join(max(0.0, deadline - time.monotonic()))
        for sink in self.sinks:
            c = getattr(sink, "close", None)
            if callable(c):
                with contextlib.suppress(Exception):
                    c()

    def stats(self) -> dict[str, int]:
        """Counters: ``logged`` (queued), ``written``, ``dropped``, ``sink_errors``."""
        return {
            "logged": self.logged,
            "written": self.written,
            "dropped": self.dropped,
            "sink_errors": self.sink_errors,
        }


_LOGGERS: weakref.WeakSet[ExposureLogger] = weakref.WeakSet()


def _reset_loggers_after_fork() -> None:
    for logger in list(_LOGGERS):
        logger._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_loggers_after_fork)


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

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = os.fspath(path) if path is not None else None
        self._sink = JsonLinesSink(self.path) if self.path else None
        self._data: dict[tuple[str, str, str], _VariantMetrics] = {}
        self._exposed: dict[tuple[str, str], set[str]] = {}
        self._lock = threading.Lock()
        self.events = 0

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
    ) -> None:
        """Add one observation of ``metric`` for a user in ``variant`` of ``test``."""
        value = float(value)
        with self._lock:
            key = (test, variant, metric)
            vm = self._data.get(key)
            if vm is None:
                vm = self._data[key] = _VariantMetrics()
            vm.summary = vm.summary.add(value)
            if value not in (0.0, 1.0):
                vm.binary = False
            if value and user is not None:
                vm.users.add(str(user))
            self.events += 1
        if write and self._sink is not None:
            self._sink.write(
                [
                    {
                        "test": test,
                        "variant": variant,
                        "user": user,
                        "metric": metric,
                        "value": value,
                        "ts": time.time() if ts is None else ts,
                    }
                ]
            )

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
        with the running count of events read, exposures first."""
        store = cls(None)
        store.path = os.fspath(path)
        seen = 0
        if exposures is not None:
            batch = read_exposures(exposures)
            store.write(batch)
            seen = len(batch)
            if progress is not None:
                progress(seen)
        for r in _iter_jsonl(os.fspath(path)):
            seen += 1
            if progress is not None:
                progress(seen)
            with contextlib.suppress(KeyError, TypeError, ValueError):
                store.record(
                    str(r["test"]), str(r["variant"]), str(r["metric"]), float(r["value"]),
                    None if r.get("user") is None else str(r["user"]), write=False,
                )  # fmt: skip
        return store

    def metrics(self, test: str) -> list[str]:
        """Metric names seen for ``test``."""
        with self._lock:
            return sorted({m for (t, _, m) in self._data if t == test})

    def conversions(self, test: str, variant: str, metric: str) -> int:
        """Distinct users with a non-zero value of ``metric`` in ``variant``."""
        vm = self._data.get((test, variant, metric))
        return len(vm.users) if vm else 0

    def summary(self, test: str, variant: str, metric: str) -> Summary:
        """Running moments of ``metric`` in ``variant``."""
        vm = self._data.get((test, variant, metric))
        return vm.summary if vm else Summary()

    def is_binary(self, test: str, metric: str) -> bool:
        """True if every recorded value of ``metric`` was 0 or 1."""
        with self._lock:
            return all(
                vm.binary for (t, _, m), vm in self._data.items() if t == test and m == metric
            )

    def forget(self, test: str) -> None:
        """Drop the in-memory summaries of ``test`` (the file is kept)."""
        with self._lock:
            for key in [k for k in self._data if k[0] == test]:
                del self._data[key]
            for ekey in [k for k in self._exposed if k[0] == test]:
                del self._exposed[ekey]


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every metric event of a metrics file and its rotated predecessors."""
    return list(_iter_jsonl(os.fspath(path)))


def segment_condition(attr: str, values: list[str]) -> Condition:
    """A condition ``attr in values`` (helper for targeting a test to a population)."""
    return Condition(attr=attr, in_=list(values))


# --------------------------------------------------------------------------- analysis


@dataclass(frozen=True)
class MetricResult:
    """One metric in one variant, compared with the control.

    ``kind`` is ``"binary"`` (``value`` = conversion rate = ``successes / n`` with ``n``
    the exposed users) or ``"continuous"`` (``value`` = mean of ``n`` observations).
    ``difference``, ``statistic`` and ``p_value`` compare with the control (None for
    the control itself or when there is too little data).
    """

    metric: str
    variant: str
    kind: str
    n: int
    value: float
    low: float
    high: float
    successes: int | None = None
    difference: float | None = None
    diff_low: float | None = None
    diff_high: float | None = None
    statistic: float | None = None
    p_value: float | None = None
    method: str = ""


@dataclass
class ExperimentReport:
    """Analysis of one A/B test (:func:`analyze`)."""

    test: str
    control: str
    variants: list[str]
    split: dict[str, float]
    exposures: dict[str, int]
    srm: Any
    results: list[MetricResult]
    status: str = "active"
    confidence: float = 0.95

    def for_metric(self, metric: str) -> list[MetricResult]:
        """The rows of one metric, in variant order."""
        return [r for r in self.results if r.metric == metric]

    def sample_size(self, metric: str, mde: float, *, relative: bool = False) -> int | None:
        """Users (observations) per variant needed to detect a change of ``mde`` in
        ``metric`` from the control's current rate (binary) or standard deviation
        (continuous), at alpha 0.05 two-sided and power 0.8. None without data."""
        from cfgcore import stats

        control = next((r for r in self.for_metric(metric) if r.variant == self.control), None)
        if control is None or control.n < 2 or not math.isfinite(control.value):
            return None
        if control.kind == "binary":
            if not 0 < control.value < 1:
                return None
            return stats.sample_size_proportions(control.value, mde, relative=relative)
        # The t interval's half width gives back the standard deviation of the control.
        sd = (control.high - control.low) / 2 / _t_quantile(self.confidence, control.n)
        sd *= math.sqrt(control.n)
        shift = mde * control.value if relative else mde
        if sd <= 0 or shift == 0:
            return None
        return stats.sample_size_means(sd, shift)

    def to_text(self) -> str:
        """A plain-text table (what ``cfgcore experiment report`` prints)."""
        pct = round(self.confidence * 100)
        lines = [f"A/B test {self.test} (status: {self.status}, control: {self.control})"]
        lines.append(f"{'variant':<16}{'split %':>9}{'exposed':>10}")
        for v in self.variants:
            lines.append(f"{v:<16}{self.split.get(v, 0):>9g}{self.exposures.get(v, 0):>10}")
        srm = self.srm
        verdict = "MISMATCH: do not trust the results" if srm.mismatch else "ok"
        lines.append(
            f"sample ratio check (mismatch if p < {SRM_THRESHOLD:g}): "
            f"chi2={srm.chi2:.3f} p={srm.p_value:.3g} -> {verdict}"
        )
        metrics = list(dict.fromkeys(r.metric for r in self.results))
        for m in metrics:
            rows = self.for_metric(m)
            lines.append("")
            lines.append(f"metric {m} ({rows[0].kind})")
            head = "rate" if rows[0].kind == "binary" else "mean"
            lines.append(
                f"{'variant':<16}{'n':>8}{head:>10}{f'{pct}% CI':>22}{'diff':>10}"
                f"{f'{pct}% CI of diff':>24}{'p':>10}"
            )
            for r in rows:
                if r.n == 0:  # no observations yet: say so instead of printing nan
                    lines.append(f"{r.variant:<16}{r.n:>8}{'-':>10}{'-':>22}")
                    continue
                ci = f"[{r.low:.4g}, {r.high:.4g}]"
                diff = "" if r.difference is None else f"{r.difference:+.4g}"
                dci = "" if r.diff_low is None else f"[{r.diff_low:+.4g}, {r.diff_high:+.4g}]"
                p = "" if r.p_value is None else f"{r.p_value:.3g}"
                lines.append(
                    f"{r.variant:<16}{r.n:>8}{r.value:>10.4g}{ci:>22}{diff:>10}{dci:>24}{p:>10}"
                )
        if len(self.variants) > 2 and metrics:
            lines.append("")
            lines.append(
                "p-values are per comparison with the control (no multiple-testing correction)."
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``--json`` in the CLI)."""
        from dataclasses import asdict

        return {
            "test": self.test,
            "control": self.control,
            "status": self.status,
            "split": self.split,
            "exposures": self.exposures,
            "srm": {
                "chi2": self.srm.chi2,
                "p_value": self.srm.p_value,
                "mismatch": self.srm.mismatch,
                "threshold": SRM_THRESHOLD,
            },
            "results": [asdict(r) for r in self.results],
        }

    def plot(self, path: str | os.PathLike[str]) -> str:
        """Draw each metric per variant with its confidence interval into ``path`` (PNG,
        SVG or PDF by extension). Needs matplotlib (``pip install 'cfgcore[plot]'``)."""
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError:  # pragma: no cover - depends on the installed extras
            from cfgcore.errors import ConfigError

            raise ConfigError("plotting needs matplotlib: pip install 'cfgcore[plot]'") from None
        metrics = list(dict.fromkeys(r.metric for r in self.results)) or ["(no metrics)"]
        # Figure + Agg canvas directly: no pyplot, so the caller's backend is untouched.
        fig = Figure(figsize=(max(4.0, 1.6 * len(self.variants) + 2), 3.2 * len(metrics)))
        FigureCanvasAgg(fig)
        for i, m in enumerate(metrics):
            ax = fig.add_subplot(len(metrics), 1, i + 1)
            rows = self.for_metric(m)
            xs = list(range(len(rows)))
            vals = [r.value for r in rows]
            lo = [max(0.0, r.value - r.low) if math.isfinite(r.low) else 0.0 for r in rows]
            hi = [max(0.0, r.high - r.value) if math.isfinite(r.high) else 0.0 for r in rows]
            colors = ["#555555" if r.variant == self.control else "#1f77b4" for r in rows]
            for x, v, a, b, c in zip(xs, vals, lo, hi, colors, strict=True):
                ax.errorbar([x], [v], yerr=[[a], [b]], fmt="o", capsize=6, color=c)
            # Each variant's difference from the control and its p-value, beside the point.
            for x, r in zip(xs, rows, strict=True):
                if r.variant == self.control or r.difference is None:
                    continue
                p = "-" if r.p_value is None else f"{r.p_value:.3g}"
                ax.annotate(
                    f"{r.difference:+.3g} vs {self.control}\np={p}",
                    (x, r.value),
                    xytext=(10, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=8,
                )
            ax.set_xticks(xs, [r.variant for r in rows])
            ax.margins(x=0.3)  # room for the annotations right of the last point
            kind = rows[0].kind if rows else ""
            label = "conversion rate" if kind == "binary" else "mean"
            ax.set_ylabel(label)
            ax.set_title(f"{self.test}: {m} ({round(self.confidence * 100)}% CI)")
            if rows and rows[0].variant == self.control:
                ax.axhline(rows[0].value, color="#999999", linestyle="--", linewidth=0.8)
        fig.tight_layout()
        out = os.fspath(path)
        try:
            fig.savefig(out)
        except (OSError, ValueError) as exc:  # no such directory, unknown extension
            from cfgcore.errors import ConfigError

            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise ConfigError(f"cannot write the plot: {reason}", file=out) from None
        return out


def _t_quantile(confidence: float, n: int) -> float:
    from scipy import stats as st

    return float(st.t.ppf(0.5 + confidence / 2, n - 1))


def _kind(meta: Mapping[str, Any], store: MetricsStore, test: str, metric: str) -> str:
    kind = (meta.get("metric_types") or {}).get(metric)
    if kind in ("binary", "continuous"):
        return str(kind)
    return "binary" if store.is_binary(test, metric) else "continuous"


def _row(
    store: MetricsStore, test: str, variant: str, metric: str, kind: str, confidence: float
) -> tuple[MetricResult, Any]:
    from cfgcore import stats

    if kind == "binary":
        n = store.exposed(test, variant) or store.summary(test, variant, metric).n
        x = min(store.conversions(test, variant, metric), n)
        if n == 0:
            return MetricResult(metric, variant, kind, 0, math.nan, math.nan, math.nan, 0), (0, 0)
        ci = stats.proportion_ci(x, n, confidence)
        return MetricResult(metric, variant, kind, n, ci.estimate, ci.low, ci.high, x), (x, n)
    s = store.summary(test, variant, metric)
    ci = stats.mean_ci(s, confidence)
    return MetricResult(metric, variant, kind, s.n, ci.estimate, ci.low, ci.high), s


def _compare(kind: str, c: Any, v: Any, alternative: str, confidence: float) -> Any:
    from cfgcore import stats

    if kind == "binary":
        (xc, nc), (xv, nv) = c, v
        if nc == 0 or nv == 0:
            return None
        return stats.two_proportion_ztest(xc, nc, xv, nv, alternative, confidence)
    if c.n < 2 or v.n < 2:
        return None
    return stats.welch_ttest(c, v, alternative, confidence)


def analyze(
    test: str, meta: Mapping[str, Any], store: MetricsStore, *, confidence: float = 0.95
) -> ExperimentReport:
    """Per-variant results of ``test`` from its stored record and a metrics store.

    Binary metrics: conversion rate with a Wilson interval and a two-proportion z-test
    against the control. Continuous metrics: mean with a t interval and Welch's t-test.
    The exposure counts are checked against the configured split (sample ratio
    mismatch, chi-square).
    """
    from cfgcore import stats

    split = {str(k): float(v) for k, v in (meta.get("traffic_split") or {}).items()}
    control = str(meta.get("control") or next(iter(split), "control"))
    variants = [control, *[v for v in split if v != control]]
    exposures = {v: store.exposed(test, v) for v in variants}
    metrics = list(
        dict.fromkeys(
            [*meta.get("success_metrics", []), *(meta.get("guardrail_metrics") or {}),
             *store.metrics(test)]
        )
    )  # fmt: skip
    results: list[MetricResult] = []
    for m in metrics:
        kind = _kind(meta, store, test, m)
        base_row, base = _row(store, test, control, m, kind, confidence)
        results.append(base_row)
        for v in variants[1:]:
            row, data = _row(store, test, v, m, kind, confidence)
            cmp = _compare(kind, base, data, "two-sided", confidence)
            if cmp is not None:
                row = MetricResult(
                    **{**row.__dict__, "difference": cmp.difference, "diff_low": cmp.ci[0],
                       "diff_high": cmp.ci[1], "statistic": cmp.statistic,
                       "p_value": cmp.p_value, "method": cmp.method}
                )  # fmt: skip
            results.append(row)
    return ExperimentReport(
        test=test,
        control=control,
        variants=variants,
        split=split,
        exposures=exposures,
        srm=stats.sample_ratio_mismatch(exposures, split),
        results=results,
        status=str(meta.get("status", "active")),
        confidence=confidence,
    )


def guardrail_violations(
    test: str,
    meta: Mapping[str, Any],
    store: MetricsStore,
    *,
    alpha: float = 0.01,
    min_samples: int = 100,
) -> list[str]:
    """Guardrail metrics that are significantly worse (one-sided, ``alpha``) in some
    variant than in the control, once both have ``min_samples`` observations."""
    split = meta.get("traffic_split") or {}
    control = str(meta.get("control") or next(iter(split), "control"))
    found = []
    for metric, direction in (meta.get("guardrail_metrics") or {}).items():
        kind = _kind(meta, store, test, metric)
        # "worse" is an increase when lower is better, a decrease otherwise.
        alternative = "larger" if direction == "lower_is_better" else "smaller"
        c_row, c = _row(store, test, control, metric, kind, 0.95)
        if c_row.n < min_samples:
            continue
        for v in split:
            if v == control:
                continue
            v_row, d = _row(store, test, v, metric, kind, 0.95)
            if v_row.n < min_samples:
                continue
            cmp = _compare(kind, c, d, alternative, 0.95)
            if cmp is not None and cmp.p_value < alpha:
                found.append(
                    f"{metric} worse in {v} ({v_row.value:.4g} vs {c_row.value:.4g} in "
                    f"{control}, p={cmp.p_value:.2g})"
                )
    return found
