"""Exposure logging: the first time a user is served a variant of a test.

An :class:`Exposure` goes into a bounded queue; a background thread hands batches to
sinks. The hot path does a set lookup and, once per user and test, a non-blocking
``put``; when the queue is full the exposure is dropped and counted in ``dropped``
(never silently). Sinks: :class:`JsonLinesSink` (rotating JSON-lines file, built in),
any object with ``write(batch)`` (and optionally ``flush()``/``close()``), or a plain
callable (:class:`ExposureSink`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple, Protocol, runtime_checkable

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no cross-process lock
    fcntl = None  # type: ignore[assignment]


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
            write: Any = getattr(sink, "write", None) or sink
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


after_fork_in_child(_reset_loggers_after_fork)
