"""Flag usage: when each flag was last evaluated, kept in the state directory.

A process serving flags records, per flag, the last time it was evaluated into
``<state dir>/flag-usage.json`` (:func:`cfgcore.runtime.flagstore.default_state_dir`).
The times come from the process-wide evaluation totals
(:func:`cfgcore.observability.evaluations.evaluation_totals`), which only read the
evaluators' counters: nothing here runs on the evaluation path.

Every process writing to the same state directory merges into the one file: under an
``fcntl`` lock on ``.flag-usage.json.lock`` it reads the file, keeps the later time of
each flag, and replaces the file atomically (:mod:`cfgcore.runtime.atomicio`). The file::

    {"format": 1, "since": 1767225600.0,
     "flags": {"enhanced_anomaly_detection": 1767312000.0, ...}}

``since`` is when recording began (the earliest of every process that wrote it):
``cfgcore flags stale`` judges "not evaluated for N days" only once it covers N days.

A daemon thread merges every ``interval`` seconds (``usage_interval=``, else
``$CFGCORE_USAGE_INTERVAL``, else 60); :meth:`UsageRecorder.flush` runs at exit and
when a manager closes (the last manager of a state directory to close stops its
thread). Both managers start recording when they serve flags, unless
``record_usage=False`` or ``CFGCORE_USAGE=0``. A forked child restarts its own thread
(:mod:`cfgcore.runtime.forks`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from cfgcore.errors import ConfigError, Problem
from cfgcore.runtime.atomicio import FileLock, atomic_write, read_regular
from cfgcore.runtime.forks import after_fork_in_child, at_exit, restart_in_child

__all__ = [
    "DEFAULT_INTERVAL",
    "USAGE_FILE",
    "Usage",
    "UsageRecorder",
    "merge_usage",
    "read_usage",
    "start_usage_recording",
    "usage_path",
]

log = logging.getLogger("cfgcore.usage")

USAGE_FILE = "flag-usage.json"
DEFAULT_INTERVAL = 60.0
FORMAT = 1

Source = Callable[[], Mapping[str, float]]


@dataclass(frozen=True)
class Usage:
    """The content of a usage file: ``flags`` (flag -> epoch seconds of its last
    evaluation) and ``since`` (when recording began; None for no file)."""

    flags: dict[str, float] = field(default_factory=dict)
    since: float | None = None

    def to_bytes(self) -> bytes:
        doc = {"format": FORMAT, "since": self.since, "flags": dict(sorted(self.flags.items()))}
        return json.dumps(doc, indent=1).encode() + b"\n"


def usage_path(state_dir: str | os.PathLike[str] | None = None) -> str:
    """``<state_dir>/flag-usage.json`` (default: the process's state directory)."""
    if state_dir is None:
        from cfgcore.runtime.flagstore import default_state_dir

        state_dir = default_state_dir()
    return os.path.join(os.path.abspath(os.fspath(state_dir)), USAGE_FILE)


def _time(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def read_usage(path: str | os.PathLike[str]) -> Usage:
    """Read a usage file; a missing file is empty usage. ConfigError (file and key
    path) when the file is not a usage file."""
    path = os.fspath(path)
    try:
        # A bounded regular file: a FIFO there blocked the merge (and the process's
        # exit, which merges) for ever, and a link to /dev/zero was read without end.
        doc = json.loads(read_regular(path))
    except FileNotFoundError:
        return Usage()
    except OSError as exc:
        raise ConfigError(f"cannot read usage file: {exc.strerror or exc}", file=path) from None
    except ValueError as exc:
        raise ConfigError(f"not JSON: {exc}", file=path) from None

    def bad(where: str, message: str) -> ConfigError:
        return ConfigError([Problem(path=where, message=message, file=path)])

    if not isinstance(doc, dict) or not isinstance(doc.get("flags", {}), dict):
        raise bad("flags", "expected an object of flag -> epoch seconds")
    if doc.get("format", FORMAT) != FORMAT:
        raise bad("format", f"unknown usage file format {doc.get('format')!r}")
    flags: dict[str, float] = {}
    for key, value in doc.get("flags", {}).items():
        seen = _time(value)
        if seen is None:
            raise bad(f"flags.{key}", f"expected epoch seconds, got {value!r}")
        flags[key] = seen
    since = doc.get("since")
    if since is not None and _time(since) is None:
        raise bad("since", f"expected epoch seconds, got {since!r}")
    return Usage(flags, _time(since))


#: Seconds a usage merge waits for the usage file's lock.
LOCK_TIMEOUT = 10.0


@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    directory, base = os.path.split(path)
    os.makedirs(directory, exist_ok=True)
    # At most LOCK_TIMEOUT: the recorder merges at exit too, and a lock another user
    # holds must not keep the process from exiting (the merge fails, logged).
    lock = FileLock(os.path.join(directory, f".{base}.lock"), mode=0o640, timeout=LOCK_TIMEOUT,
                    restrict=True)  # fmt: skip
    with lock:
        yield


def merge_usage(
    path: str | os.PathLike[str], seen: Mapping[str, float], *, since: float | None = None
) -> Usage:
    """Merge ``seen`` (flag -> epoch seconds) and ``since`` into the file at ``path``:
    the later time per flag, the earlier ``since``. Written atomically under the file's
    lock, and only when something changed. Returns the merged usage.

    A file that is not a usage file is replaced (logged): its times cannot be read
    anyway, and recording must not stop because of it.
    """
    path = os.fspath(path)
    with _locked(path):
        try:
            old = read_usage(path)
        except ConfigError as exc:
            log.warning("replacing an unreadable flag usage file: %s", exc)
            old = Usage(since=None)
        flags = dict(old.flags)
        for key, value in seen.items():
            t = _time(value)
            if isinstance(key, str) and t is not None and t > flags.get(key, -math.inf):
                flags[key] = t
        first = (
            since if old.since is None else old.since if since is None else min(old.since, since)
        )
        merged = Usage(flags, first)
        if merged != old or not os.path.exists(path):
            atomic_write(path, merged.to_bytes())
        return merged


def _evaluation_times() -> Mapping[str, float]:
    """Flag -> last evaluation time, from the process-wide evaluation totals."""
    from cfgcore.observability.evaluations import evaluation_totals

    return evaluation_totals().last_evaluated()


class UsageRecorder:
    """Merges this process's last-evaluated times into one usage file, periodically
    from a daemon thread and on :meth:`flush`/:meth:`close` (and at exit).

    ``source``: ``() -> {flag: epoch seconds}`` (default: the evaluation totals).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        interval: float = DEFAULT_INTERVAL,
        source: Source | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not (isinstance(interval, (int, float)) and interval > 0):
            raise ConfigError(
                f"usage interval must be a positive number of seconds, got {interval!r}"
            )
        self.path = os.path.abspath(os.fspath(path))
        self.interval = float(interval)
        self.source = source if source is not None else _evaluation_times
        self.since = clock()
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._holders = 0  # managers that started it (start_usage_recording) and hold it
        self._restart = False  # in a forked child: start the thread after the repairs

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> UsageRecorder:
        """Start the periodic thread (no-op if running)."""
        with self._lock:
            if not self.running:
                self._stop = threading.Event()
                self._thread = threading.Thread(
                    target=self._run, name="cfgcore-flag-usage", daemon=True
                )
                self._thread.start()
        return self

    def _run(self) -> None:
        stop = self._stop
        while not stop.wait(self.interval):
            self.flush()

    def flush(self) -> bool:
        """Merge the current times into the file now. Never raises: False (reason in
        :attr:`last_error`, logged) if they could not be read or written."""
        try:
            seen = dict(self.source())
            merge_usage(self.path, seen, since=self.since)
        except Exception as exc:  # a full disk or a bad source must not kill the thread
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("cannot record flag usage in %s: %s", self.path, self.last_error)
            return False
        self.last_error = None
        return True

    def close(self) -> None:
        """Stop the thread and flush once more."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self._thread = None
        self.flush()

    def release(self) -> None:
        """One holder (a manager that called :func:`start_usage_recording`) is done:
        flush now; the last holder's release stops the thread (and forgets the
        recorder), so a process that opens and closes managers for many state
        directories does not keep one thread per directory for its lifetime."""
        with _RECORDERS_LOCK:
            self._holders = max(0, self._holders - 1)
            last = self._holders == 0
            if last and _RECORDERS.get(self.path) is self:
                del _RECORDERS[self.path]
        if last:
            self.close()
        else:
            self.flush()

    def _after_fork_in_child(self) -> None:
        # The parent's thread does not exist in the child, and another parent thread
        # may have held the lock: a fresh lock, and a thread of the child's own, started
        # by _restart_in_child once every repair is done (it reads the evaluation
        # totals, whose locks other hooks repair).
        self._restart = self._thread is not None and not self._stop.is_set()
        self._lock = threading.Lock()
        self._thread = None

    def _restart_in_child(self) -> None:
        if self._restart:
            self._restart = False
            self.start()


# One recorder per usage file per process, however many managers serve flags.
_RECORDERS: dict[str, UsageRecorder] = {}
_RECORDERS_LOCK = threading.Lock()


def _env_interval() -> float:
    raw = os.environ.get("CFGCORE_USAGE_INTERVAL", "").strip()
    if not raw:
        return DEFAULT_INTERVAL
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(
            f"CFGCORE_USAGE_INTERVAL: expected a positive number of seconds, got {raw!r}"
        )
    return value


def start_usage_recording(
    state_dir: str | os.PathLike[str] | None = None,
    *,
    enabled: bool | None = None,
    interval: float | None = None,
    environ: Mapping[str, str] | None = None,
) -> UsageRecorder | None:
    """The process's recorder for ``<state_dir>/flag-usage.json``, started on first
    call; None when recording is off (``enabled=False``, else ``CFGCORE_USAGE=0`` in
    ``environ``/``os.environ``). ``interval``: argument, else ``CFGCORE_USAGE_INTERVAL``,
    else 60 seconds (a later call does not change a running recorder's). Each call
    holds the recorder until a matching :meth:`UsageRecorder.release`."""
    if enabled is None:
        enabled = _env_enabled(os.environ if environ is None else environ)
    if not enabled:
        return None
    path = usage_path(state_dir)
    with _RECORDERS_LOCK:
        recorder = _RECORDERS.get(path)
        if recorder is None:
            every = interval if interval is not None else _env_interval()
            recorder = _RECORDERS[path] = UsageRecorder(path, interval=every)
        recorder._holders += 1
    return recorder.start()


def _env_enabled(environ: Mapping[str, str]) -> bool:
    # The spellings cfgcore's other boolean switches accept (cfgcore._env.env_flag,
    # which reads os.environ only; a manager may be given its own environ).
    raw = environ.get("CFGCORE_USAGE")
    if raw is None or not raw.strip():
        return True
    value = raw.strip().lower()
    if value in ("0", "false", "no", "off", "n", "f"):
        return False
    if value not in ("1", "true", "yes", "on", "y", "t"):
        log.warning("CFGCORE_USAGE=%r is not a boolean; recording flag usage", raw)
    return True


def recorders() -> list[UsageRecorder]:
    """Every recorder of this process (tests and debugging)."""
    with _RECORDERS_LOCK:
        return list(_RECORDERS.values())


@at_exit  # the interpreter's exit, and a multiprocessing child's (no atexit there)
def _flush_at_exit() -> None:
    for recorder in recorders():
        recorder.close()


@after_fork_in_child
def _reset_after_fork() -> None:
    global _RECORDERS_LOCK
    _RECORDERS_LOCK = threading.Lock()
    for recorder in list(_RECORDERS.values()):
        recorder._after_fork_in_child()


@restart_in_child
def _restart_after_fork() -> None:
    for recorder in list(_RECORDERS.values()):
        recorder._restart_in_child()
