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

The file stays bounded for a service whose flag names come and go: a merge drops the
flags last evaluated more than ``retain`` seconds ago (``CFGCORE_USAGE_RETAIN_DAYS``,
365 days) and, past MAX_FLAGS (100,000) flags, the least recently evaluated ones, and
records ``"pruned_before": T``: every dropped flag was last evaluated at or before T.
A flag missing from the file was not evaluated after T, so ``cfgcore flags stale``
still judges it unused for any window starting after T, and says it cannot judge a
longer one.

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

from cfgcore._clock import stamp_clock
from cfgcore._numbers import finite_number, shown
from cfgcore.errors import ConfigError, Problem, child_key_path
from cfgcore.runtime.atomicio import (
    FileLock,
    ForeignStateFile,
    read_regular,
    read_state_file,
    write_state_file,
)
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
DAY = 86400.0
RETAIN_DAYS = 365.0  # a flag not evaluated for this long is dropped from the file
MAX_FLAGS = 100_000  # past this many flags, the least recently evaluated are dropped

Source = Callable[[], Mapping[str, float]]


@dataclass(frozen=True)
class Usage:
    """The content of a usage file: ``flags`` (flag -> epoch seconds of its last
    evaluation), ``since`` (when recording began; None for no file) and
    ``pruned_before`` (flags last evaluated at or before it may have been dropped; None:
    none was)."""

    flags: dict[str, float] = field(default_factory=dict)
    since: float | None = None
    pruned_before: float | None = None

    def to_bytes(self) -> bytes:
        doc: dict[str, Any] = {"format": FORMAT, "since": self.since}
        if self.pruned_before is not None:
            doc["pruned_before"] = self.pruned_before
        doc["flags"] = dict(sorted(self.flags.items()))
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


def read_usage(path: str | os.PathLike[str], *, state: bool = False) -> Usage:
    """Read a usage file; a missing file is empty usage. ConfigError (file and key
    path) when the file is not a usage file. ``state``: the state directory's own file
    (the recorder's, or ``cfgcore flags stale`` without ``--usage``): one another user
    may have put there is refused too
    (:func:`cfgcore.runtime.atomicio.foreign_state_file`)."""
    path = os.fspath(path)
    try:
        # A bounded regular file: a FIFO there blocked the merge (and the process's
        # exit, which merges) for ever, and a link to /dev/zero was read without end.
        doc = json.loads((read_state_file if state else read_regular)(path))
    except FileNotFoundError:
        return Usage()
    except ForeignStateFile as exc:
        raise ConfigError(
            f"usage file refused: {exc.why}, so another user may have put it there; "
            f"not read ({exc.fix})",
            file=path,
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read usage file: {exc.strerror or exc}", file=path) from None
    except ValueError as exc:
        raise ConfigError(f"not JSON: {exc}", file=path) from None
    except RecursionError:  # ("[[[[...": a traceback out of `flags stale` and the merges)
        raise ConfigError("not a usage file: nested too deeply", file=path) from None

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
            raise bad(child_key_path("flags", key), f"expected epoch seconds, got {value!r}")
        flags[key] = seen
    since = doc.get("since")
    if since is not None and _time(since) is None:
        raise bad("since", f"expected epoch seconds, got {since!r}")
    pruned = doc.get("pruned_before")
    if pruned is not None and _time(pruned) is None:
        raise bad("pruned_before", f"expected epoch seconds, got {pruned!r}")
    return Usage(flags, _time(since), _time(pruned))


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
    path: str | os.PathLike[str],
    seen: Mapping[str, float],
    *,
    since: float | None = None,
    now: float | None = None,
    retain: float | None = None,
    max_flags: int = MAX_FLAGS,
) -> Usage:
    """Merge ``seen`` (flag -> epoch seconds) and ``since`` into the file at ``path``:
    the later time per flag, the earlier ``since``; then :func:`prune` (flags last
    evaluated ``retain`` seconds or more before ``now``, default the clock; None, the
    default here, keeps every age: the recorders pass theirs; ``max_flags``).
    Written atomically under the file's lock, and only when something changed. Returns
    the merged usage.

    A file that is not a usage file is replaced (logged): its times cannot be read
    anyway, and recording must not stop because of it.
    """
    path = os.fspath(path)
    with _locked(path):
        try:
            old = read_usage(path, state=True)
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
        horizon = None if retain is None else (time.time() if now is None else now) - retain
        merged = prune(Usage(flags, first, old.pruned_before), horizon, max_flags)
        if merged != old or not os.path.exists(path):
            write_state_file(path, merged.to_bytes())
        return merged


def prune(usage: Usage, horizon: float | None, max_flags: int = MAX_FLAGS) -> Usage:
    """``usage`` without the flags last evaluated at or before ``horizon`` (None: no age
    limit) and, past ``max_flags``, without the least recently evaluated (those sharing
    the newest dropped time go together); ``pruned_before`` moves to the latest time
    dropped so far. A flag at or before an earlier ``pruned_before`` (a process merging
    a time the file already dropped) is dropped again."""
    cut = usage.pruned_before
    times = usage.flags.values()
    if horizon is not None and any(t <= horizon for t in times):
        cut = horizon if cut is None else max(cut, horizon)
    kept = [t for t in times if cut is None or t > cut]
    if len(kept) > max_flags:
        boundary = sorted(kept, reverse=True)[max(max_flags, 0)]  # the newest dropped
        cut = boundary if cut is None else max(cut, boundary)
    if cut is None:
        return usage
    flags = {k: t for k, t in usage.flags.items() if t > cut}
    return Usage(flags, usage.since, cut)


def _evaluation_times() -> Mapping[str, float]:
    """Flag -> last evaluation time, from the process-wide evaluation totals."""
    from cfgcore.observability.evaluations import evaluation_totals

    return evaluation_totals().last_evaluated()


class UsageRecorder:
    """Merges this process's last-evaluated times into one usage file, periodically
    from a daemon thread and on :meth:`flush`/:meth:`close` (and at exit).

    ``source``: ``() -> {flag: epoch seconds}`` (default: the evaluation totals);
    ``retain_days``: flags not evaluated for this long are dropped from the file
    (:func:`prune`).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        interval: float = DEFAULT_INTERVAL,
        source: Source | None = None,
        clock: Callable[[], float] = time.time,
        retain_days: float = RETAIN_DAYS,
    ) -> None:
        # Numbers by their value, never a bool or text (cfgcore._numbers).
        every, days = finite_number(interval), finite_number(retain_days)
        if every is None or not every > 0:
            raise ConfigError(
                f"usage interval must be a positive number of seconds, got {shown(interval)}"
            )
        if days is None or not days > 0:
            raise ConfigError(
                f"usage retention must be a positive number of days, got {shown(retain_days)}"
            )
        self.retain_days = days
        self._clock = clock = stamp_clock(clock)
        self.path = os.path.abspath(os.fspath(path))
        self.interval = every
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
            merge_usage(
                self.path, seen, since=self.since, now=self._clock(),
                retain=self.retain_days * DAY,
            )  # fmt: skip
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


def _positive(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _env_number(environ: Mapping[str, str], name: str, default: float, unit: str) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not _positive(value):
        raise ConfigError(f"{name}: expected a positive number of {unit}, got {raw!r}")
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
    else 60 seconds; retention: ``CFGCORE_USAGE_RETAIN_DAYS``, else 365 days (a later
    call changes neither for a running recorder). Each call holds the recorder until a
    matching :meth:`UsageRecorder.release`."""
    env = os.environ if environ is None else environ
    if enabled is None:
        enabled = _env_enabled(env)
    if not enabled:
        return None
    path = usage_path(state_dir)
    with _RECORDERS_LOCK:
        recorder = _RECORDERS.get(path)
        if recorder is None:
            every = (
                interval
                if interval is not None
                else _env_number(env, "CFGCORE_USAGE_INTERVAL", DEFAULT_INTERVAL, "seconds")
            )
            days = _env_number(env, "CFGCORE_USAGE_RETAIN_DAYS", RETAIN_DAYS, "days")
            recorder = _RECORDERS[path] = UsageRecorder(path, interval=every, retain_days=days)
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
