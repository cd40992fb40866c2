"""Exposure logging: the first time a user is served a variant of a test.

An exposure goes into a bounded backlog; a background thread hands batches to sinks.
The hot path does a set lookup and, once per user and test, a lock-free append; when
the backlog is full the exposure is dropped and counted in ``dropped`` (never
silently). Sinks: :class:`JsonLinesSink` (rotating JSON-lines file, built in),
any object with ``write(batch)`` (and optionally ``flush()``/``close()``), or a plain
callable (:class:`ExposureSink`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple, Protocol, runtime_checkable

import msgspec

from cfgcore._layout import DEDUP_SHARDS
from cfgcore.experiments.writer import BackgroundWriter
from cfgcore.observability import instruments
from cfgcore.runtime.atomicio import FileLock
from cfgcore.runtime.forks import after_fork_in_child

log = logging.getLogger("cfgcore.experiments")

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


@runtime_checkable
class BatchSink(Protocol):
    """A sink object: ``write(batch)`` receives each batch of exposures (or metric
    events); optional ``flush()`` and ``close()`` are called when present."""

    def write(self, batch: list[Exposure]) -> Any: ...


#: What the exposure logger accepts as a sink: a :class:`BatchSink` or ``callable(batch)``.
ExposureSink = BatchSink | Callable[[list[Exposure]], Any]


_LINES = msgspec.json.Encoder()


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
        self.skipped = 0  # records left out because JSON cannot hold them
        self._lock = threading.Lock()

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    def _encode_each(self, records: list[dict[str, Any]]) -> bytes:
        """The batch's records that can be encoded, one by one: a record holding a value
        JSON cannot carry (a lone surrogate, an unknown object) is left out and counted
        in ``skipped``, never the rest of its batch."""
        out = []
        for record in records:
            try:
                out.append(_LINES.encode_lines([record]))
            except (TypeError, ValueError, OverflowError):
                self.skipped += 1
                log.warning("%s: left out a record JSON cannot hold: %r", self.path, record)
        return b"".join(out)

    def write(self, batch: Iterable[Exposure | Mapping[str, Any]]) -> None:
        """Append records; rotate first when the file is full."""
        # msgspec writes UTF-8 JSON lines (as json.dumps(ensure_ascii=False) would) about
        # ten times faster: this runs on the writer thread, which shares the GIL with
        # the request threads.
        records = [r.to_json() if isinstance(r, Exposure) else dict(r) for r in batch]
        try:
            data = _LINES.encode_lines(records)
        except (TypeError, ValueError, OverflowError):  # UnicodeEncodeError is a ValueError
            data = self._encode_each(records)
        if not data:
            return
        with self._lock:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            # Pre-fork workers share the file: size check, rotation and append must be
            # one step across processes, or two rotations at once overwrite backups,
            # leave gaps the reader stops at, and fail on a file the other one moved.
            with FileLock(self.path + ".lock"):
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


def shard_limit(dedup_limit: int) -> int:
    """Users one dedup shard holds before it is cleared: ``dedup_limit`` spread over
    the ``DEDUP_SHARDS`` shards, rounded up, at least 1."""
    return max(1, -(-dedup_limit // DEDUP_SHARDS))


class ExposureLogger:
    """Deduplicating, non-blocking exposure logger.

    :meth:`log` is called on the evaluation path. It records each (test, user) once:
    per test, the users already logged are kept in ``DEDUP_SHARDS`` sets picked by the
    id's hash, so that growing them rehashes one small set at a time instead of stalling
    a request on one large set's rehash. A shard that reaches its share of
    ``dedup_limit`` is cleared, so memory stays bounded and a user may then be logged
    again (consumers dedup by user anyway). It appends the exposure to a backlog of at
    most ``queue_size``; a daemon thread writes batches to every sink
    (:class:`~cfgcore.experiments.writer.BackgroundWriter`: the request thread never
    takes a lock or waits for the writer). A full backlog drops the exposure and
    increments :attr:`dropped`.

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
        batch_size: int = 64,
        dedup_limit: int = 1_000_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sinks: list[ExposureSink] = list(sinks)
        self.written = 0
        self.sink_errors = 0
        self._seen: dict[str, tuple[set[Any], ...]] = {}
        self._shard_limit = shard_limit(dedup_limit)
        self._clock = clock
        self._writer = BackgroundWriter(
            self._deliver, name="cfgcore-exposures", max_pending=queue_size, batch_size=batch_size
        )
        # The hot path appends raw tuples; the writer thread builds the Exposure records.
        self._append = self._writer.append
        _LOGGERS.add(self)

    @property
    def logged(self) -> int:
        """Exposures accepted for writing."""
        return self._writer.appended

    @property
    def dropped(self) -> int:
        """Exposures not written: backlog full, or logged after :meth:`close`."""
        return self._writer.dropped

    def _after_fork_in_child(self) -> None:
        # The writer resets itself (cfgcore.experiments.writer); the sinks' locks here.
        for sink in self.sinks:
            reset = getattr(sink, "_after_fork_in_child", None)
            if callable(reset):
                reset()

    def add_sink(self, sink: ExposureSink) -> None:
        """Send future exposures to ``sink`` too."""
        self.sinks = [*self.sinks, sink]

    def seen_shards(self, test: str) -> tuple[set[Any], ...]:
        """The users already logged for ``test``: the live dedup shards, a tuple of
        ``DEDUP_SHARDS`` sets (read them, do not mutate them); a user is in
        ``shards[hash(user) & (DEDUP_SHARDS - 1)]``. Callers on the hot path test
        membership there before calling :meth:`log`."""
        shards = self._seen.get(test)
        if shards is None:
            shards = self._seen.setdefault(test, tuple(set() for _ in range(DEDUP_SHARDS)))
        return shards

    def log(self, test: str, variant: str, user: Any) -> None:
        """Record that ``user`` was served ``variant`` of ``test`` (first time only).

        Never blocks and never raises on the caller's data.
        """
        try:
            shard = self.seen_shards(test)[hash(user) & (DEDUP_SHARDS - 1)]
            if user in shard:
                return
        except Exception:  # an unhashable id, or a str subclass whose __hash__ raises
            return
        if len(shard) >= self._shard_limit:
            shard.clear()  # the same set object: holders of seen_shards() stay in sync
        shard.add(user)
        self._append((test, variant, user, self._clock()))

    def attach(self, api: Any) -> None:
        """Let an evaluator's ``SeedAPI`` record first exposures itself (dedup shards,
        record, this logger's writer), with exactly :meth:`log`'s rules."""
        clock = None if self._clock is time.time else self._clock
        api.log_to(self._append, clock, self._shard_limit)
        self._writer.start()  # now, not on a request's first exposure

    def expose(self, test: str, variant: str, user_context: Any) -> None:
        """:meth:`log` for the user a context names: ``user_id``, else ``targeting_key``
        (what the engine buckets by; a str, or an int that is not a bool). The first
        exposure of a request runs this one frame. Never raises."""
        try:
            user = user_context.get("user_id")
            if type(user) is not str and not _usable_id(user):
                user = user_context.get("targeting_key")
                if not _usable_id(user):
                    return
            shard = self.seen_shards(test)[hash(user) & (DEDUP_SHARDS - 1)]
            if user in shard:
                return
        except Exception:  # a mapping that raises, an id whose __hash__ raises
            return
        if len(shard) >= self._shard_limit:
            shard.clear()
        shard.add(user)
        self._append((test, variant, user, self._clock()))

    def forget(self, test: str) -> None:
        """Empty the dedup shards of ``test`` (when the test is replaced or deleted)."""
        for shard in self._seen.get(test, ()):
            shard.clear()

    def _deliver(self, raw: list[tuple[str, str, Any, float]]) -> None:
        batch = []
        make = tuple.__new__  # Exposure(...) without the namedtuple's Python __new__
        per_variant: dict[tuple[str, str], int] = {}
        for test, variant, user, ts in raw:
            try:
                batch.append(
                    make(Exposure, (test, variant, user if type(user) is str else str(user), ts))
                )
            except Exception:  # a hostile id's __str__: skip that record
                self.sink_errors += 1
                continue
            per_variant[test, variant] = per_variant.get((test, variant), 0) + 1
        # On the writer thread, once per batch: the request path never pays for metrics.
        instruments.exposures_written(per_variant)
        for sink in self.sinks:
            write: Any = getattr(sink, "write", None) or sink
            try:
                write(batch)
            except Exception:
                self.sink_errors += 1
                log.exception("exposure sink %r failed; %d exposures lost", sink, len(batch))
        self.written += len(batch)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every logged exposure reached the sinks; False on timeout."""
        if not self._writer.flush(timeout):
            return False
        for sink in self.sinks:
            f = getattr(sink, "flush", None)
            if callable(f):
                with contextlib.suppress(Exception):
                    f()
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Write what is pending, stop the writer thread and close sinks that have
        ``close()``; exposures logged afterwards are counted as dropped."""
        if self._writer.closed:
            return
        self._writer.close(timeout)
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


def _usable_id(value: Any) -> bool:
    # What the engine buckets by: a str, or an int that is not a bool.
    return isinstance(value, (str, int)) and not isinstance(value, bool)


_LOGGERS: weakref.WeakSet[ExposureLogger] = weakref.WeakSet()


def _reset_loggers_after_fork() -> None:
    for logger in list(_LOGGERS):
        logger._after_fork_in_child()


after_fork_in_child(_reset_loggers_after_fork)
