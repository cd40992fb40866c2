"""File watching for hot reload (watchfiles), robust to atomic saves, ConfigMaps and fork.

:class:`DirectoryWatcher` watches whole directories, not single files: editors that save
by writing a temp file and renaming it over the original, and Kubernetes ConfigMap
volumes (whose visible files are symlinks through a ``..data`` symlink that is swapped
to a new timestamped directory) replace inodes, which a per-file watch would lose.
Every batch of events, whatever the file names, calls ``on_change``; the caller
re-reads its files through their (symlinked) paths and compares contents, so spurious
events cost a few reads.

Two safety nets make a missed event harmless:

* a *poll* callback runs when the watcher becomes ready and then every
  ``poll_interval`` seconds; the manager compares file fingerprints (inode, size,
  mtime) there and reloads on any difference (also covers network filesystems). When
  stat polling stands in for inotify (out of watches or instances), it runs on every
  tick: watchfiles' stat poll compares whole-second mtimes and misses a file replaced
  within a second of its last write;
* a watched directory deleted and created again, or a symlinked one switched to another
  target, is watched again (an inotify watch stays on the inode it was set on);
* after ``os.fork()`` a watcher that was running in the parent is restarted in the
  child (threads do not survive fork), followed by the same poll, so pre-fork servers
  (gunicorn ``--preload``, uWSGI) never go silently stale.

:class:`AsyncDirectoryWatcher` is the same watcher as a task on a running asyncio loop,
with the same poll and the same tolerance of failures, but not restarted after fork
(see its docstring).

A watcher that is alive but stuck (a reload blocked on a hung network-filesystem read or
a lock, watchfiles not returning) would otherwise go on looking healthy while what it
serves goes stale. Each watcher records when its loop last came round (:attr:`last_tick`,
at least every 100 ms while nothing blocks it, since watchfiles yields on timeout), and
:meth:`DirectoryWatcher.stalled_for` says how long ago that was once it is past
:attr:`stall_after` seconds; the health reports of both managers then say not ready
(:mod:`cfgcore.observability.health`). ``stall_after`` resolves as: the argument, then
``CFGCORE_WATCHER_STALL_SECONDS``, then ``max(30, 20 x poll_interval)`` (30 s leaves a
reload its settle wait, 5 s at most by default, and a slow validation many times over).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import watchfiles

from cfgcore._numbers import finite_number, shown, wait_seconds, whole_number
from cfgcore.config.settle import WATCHER_STOP
from cfgcore.errors import printable_name
from cfgcore.observability import instruments
from cfgcore.runtime.events import mark_service_thread
from cfgcore.runtime.forks import after_fork_in_child

__all__ = [
    "AsyncDirectoryWatcher",
    "DirectoryWatcher",
    "DEFAULT_DEBOUNCE_MS",
    "DEFAULT_STEP_MS",
    "STALL_MIN_SECONDS",
    "STALL_POLLS",
    "check_milliseconds",
    "check_poll_interval",
    "check_stall_after",
    "stall_bound",
]

log = logging.getLogger("cfgcore.hotreload")

# Measured (benchmarks/bench_config.py, reload latency): watchfiles' default debounce of
# 1600 ms dominates everything else; 50 ms groups an editor's write+rename bursts while
# keeping write-to-visible latency well under 100 ms.
DEFAULT_DEBOUNCE_MS = 50
DEFAULT_STEP_MS = 10
_TICK_MS = 100  # how often the watcher thread wakes up to check stop/poll

#: A watcher whose loop has not come round for ``max(STALL_MIN_SECONDS, STALL_POLLS x
#: poll_interval)`` seconds is reported stuck (unless ``stall_after`` or
#: ``CFGCORE_WATCHER_STALL_SECONDS`` says otherwise).
STALL_MIN_SECONDS = 30.0
STALL_POLLS = 20
_STALL_ENV = "CFGCORE_WATCHER_STALL_SECONDS"


def check_stall_after(value: object) -> float:
    """``value`` as a ``stall_after`` bound: a finite number of seconds > 0 (any real
    number by its value: :mod:`cfgcore._numbers`), or a ValueError naming the
    parameter. ``True`` is refused (it would mean one second), and so is infinity: code
    that watches files wants to hear of a stuck watcher; an operator turns the check
    off with ``CFGCORE_WATCHER_STALL_SECONDS=inf``."""
    seconds = finite_number(value)
    if seconds is None or not seconds > 0:
        raise ValueError(f"stall_after must be a finite number of seconds > 0, got {shown(value)}")
    return seconds


def check_poll_interval(value: object) -> float:
    """``value`` as a ``poll_interval``: a finite number of seconds > 0, else ValueError
    naming it (0 polled in a busy loop, ``True`` once a second, ``"0.5"`` raised later
    from the watcher's thread; a poll that should never run is a large interval)."""
    seconds = finite_number(value)
    if seconds is None or not seconds > 0:
        raise ValueError(
            f"poll_interval must be a finite number of seconds > 0, got {shown(value)}"
        )
    return seconds


def check_milliseconds(name: str, value: object) -> int:
    """``value`` as a watcher's ``debounce_ms`` or ``step_ms``: a whole number of
    milliseconds >= 1 (``20``, ``20.0``, ``numpy.int64(20)``), else ValueError naming
    ``name`` (watchfiles takes whole milliseconds; 0 steps in a busy loop)."""
    ms = whole_number(value)
    if ms is None or ms < 1:
        raise ValueError(f"{name} must be a whole number of milliseconds >= 1, got {shown(value)}")
    return ms


def stall_bound(poll_interval: float, given: float | None = None) -> float:
    """Seconds without a tick after which a watcher polling every ``poll_interval``
    seconds is stuck: ``given`` (checked by :func:`check_stall_after`), else
    ``CFGCORE_WATCHER_STALL_SECONDS`` (``inf``: never), else
    ``max(STALL_MIN_SECONDS, STALL_POLLS * poll_interval)``."""
    if given is not None:
        return check_stall_after(given)
    raw = os.environ.get(_STALL_ENV, "").strip()
    if raw:
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if value > 0:  # (inf: never reported stuck, as the argument)
            return value
        log.warning("%s=%r is not a number of seconds > 0: using the default", _STALL_ENV, raw)
    return max(STALL_MIN_SECONDS, STALL_POLLS * check_poll_interval(poll_interval))


class _Liveness:
    """What both watchers share: the time their loop last came round, and the bound."""

    name: str
    paths: list[str]
    stall_after: float
    last_tick: float  # time.monotonic()

    @property
    def running(self) -> bool:
        raise NotImplementedError

    def _tick(self) -> None:
        self.last_tick = time.monotonic()

    def stalled_for(self) -> float | None:
        """Seconds since the watch loop last came round, once that is more than
        :attr:`stall_after` while the watcher runs (a callback or the watch itself is
        blocked); None otherwise."""
        if not self.running:
            return None
        age = time.monotonic() - self.last_tick
        return age if age > self.stall_after else None


def _watch_options(watcher: Any) -> dict[str, Any]:
    """The watchfiles options both watchers (thread and asyncio) use."""
    return {
        "watch_filter": None,  # K8s "..data" and editors' temp files matter here
        "debounce": watcher.debounce_ms,
        "step": watcher.step_ms,
        "rust_timeout": _TICK_MS,
        "yield_on_timeout": True,
        "force_polling": watcher.force_polling,
        "poll_delay_ms": 50,
        "ignore_permission_denied": True,
    }


def _poll_every(watcher: Any) -> float:
    """Seconds between two calls of the poll while a watch runs. Stat polling (the
    fallback without inotify) compares modification times in whole seconds: a file
    replaced within the second it was last written reports nothing, so the poll's
    fingerprints (inode, size, mtime in ns) must do the watching, every tick."""
    if watcher.force_polling:
        return min(watcher.poll_interval, _TICK_MS / 1000)
    return float(watcher.poll_interval)


def _shown(paths: Iterable[str]) -> str:
    """The watched paths for a log line, each escaped: a directory named with a newline
    or an escape sequence forged a line or drove the operator's terminal."""
    return ", ".join(printable_name(p) for p in paths)


def _identities(paths: Iterable[str]) -> dict[str, tuple[int, int] | None]:
    """``(device, inode)`` of the directory each path names now (symlinks followed),
    None for a missing one. An inotify watch follows the inode it was set on: once a
    path names another directory (a deleted directory created again, a symlinked
    directory switched to another release) the watch hears nothing more of it."""
    out: dict[str, tuple[int, int] | None] = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            out[path] = None
        else:
            out[path] = (st.st_dev, st.st_ino)
    return out


def _replaced(changes: Any, roots: dict[str, tuple[int, int] | None]) -> bool:
    """True once a watched path no longer names the directory the watch was set on:
    it was deleted (reported for the path itself; a directory created again may reuse
    the old inode number, so the identity alone cannot tell), or it names another
    directory now (a switched symlink reports nothing at all)."""
    if changes and any(
        change == watchfiles.Change.deleted and path in roots for change, path in changes
    ):
        return True
    return _identities(roots) != roots


class DirectoryWatcher(_Liveness):
    """Background thread calling ``on_change(changes)`` when files under ``paths`` change.

    ``poll`` (optional) is called when the watch is established and every
    ``poll_interval`` seconds afterwards. Exceptions from either callback are logged and
    the watcher keeps running. :meth:`start` waits until the watch is established.
    ``on_fork`` runs in a forked child before the watcher restarts there (the owner
    resets its locks in it: a lock held by another thread at fork time stays held
    forever in the child). ``stall_after``: seconds without a turn of the loop after
    which :meth:`stalled_for` reports the watcher stuck (see :func:`stall_bound`).
    """

    def __init__(
        self,
        paths: Iterable[str],
        on_change: Callable[[set[tuple[Any, str]]], None],
        *,
        poll: Callable[[], None] | None = None,
        debounce_ms: int = DEFAULT_DEBOUNCE_MS,
        step_ms: int = DEFAULT_STEP_MS,
        poll_interval: float = 0.5,
        force_polling: bool | None = None,
        on_fork: Callable[[], None] | None = None,
        name: str = "cfgcore-hot-reload",
        stall_after: float | None = None,
    ) -> None:
        # Checked here, not in the thread: a bad number is the caller's ValueError.
        poll_interval = check_poll_interval(poll_interval)
        self.stall_after = stall_bound(poll_interval, stall_after)
        self.last_tick = time.monotonic()
        self.paths = sorted({os.path.abspath(p) for p in paths})
        self.on_change = on_change
        self.poll = poll
        self.debounce_ms = check_milliseconds("debounce_ms", debounce_ms)
        self.step_ms = check_milliseconds("step_ms", step_ms)
        self.poll_interval = poll_interval
        self.force_polling = force_polling
        self.on_fork = on_fork
        self.name = name
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._wanted = False

    @property
    def running(self) -> bool:
        """True while the watcher thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def wanted(self) -> bool:
        """True from :meth:`start` until :meth:`stop`: the thread should be running."""
        return self._wanted

    def start(self, wait: float | None = 5.0) -> bool:
        """Start the thread (idempotent); wait up to ``wait`` s (a finite number >= 0, else
        ValueError; None or 0: not at all) for the watch to be set up."""
        if wait is not None:
            wait = wait_seconds("wait", wait)
        self._wanted = True
        _LIVE.add(self)
        if not self.running:
            self._stop = threading.Event()
            self._ready = threading.Event()
            self._tick()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        if wait:
            return self._ready.wait(wait)
        return self._ready.is_set()

    def wait_ready(self, timeout: float = 5.0) -> bool:
        """Wait up to ``timeout`` s for the watch started by :meth:`start` to be set up;
        False at once if the watcher is stopped meanwhile (it is not started again).
        ``timeout``: a finite number of seconds >= 0, else ValueError."""
        deadline = time.monotonic() + wait_seconds("timeout", timeout)
        ready, stop = self._ready, self._stop
        while not ready.is_set():
            remaining = deadline - time.monotonic()
            if stop.is_set() or remaining <= 0:
                return False
            ready.wait(min(remaining, _TICK_MS / 1000))
        return True

    def set_paths(self, paths: Iterable[str]) -> None:
        """Watch ``paths`` from now on (from any thread): a running watch that covers
        other paths ends within a tick and starts again on these, after a poll (so what
        changed in between is read). watchfiles cannot change a watch's paths."""
        wanted = sorted({os.path.abspath(p) for p in paths})
        if wanted != self.paths:
            self.paths = wanted  # a new list: the watch loop compares by identity

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop the thread and wait for it (up to ``timeout`` s, a finite number >= 0;
        None or infinity: until it ends; anything else is refused with ValueError, the
        thread left running)."""
        limit = wait_seconds("timeout", timeout, forever=True)
        self._wanted = False
        _LIVE.discard(self)
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(limit)
        self._thread = None

    def _run(self) -> None:
        WATCHER_STOP.set(self._stop)  # a reload's settle wait here ends when stopped
        mark_service_thread()  # a reload's listeners run here
        backoff = 0.1
        while not self._stop.is_set():
            self._tick()
            try:
                if not self._watch():
                    return
                # A watched directory was replaced: watch what its path names now, and
                # read what changed while no watch was on it.
                self._call_poll()
                backoff = 0.1
                continue
            except Exception:  # a vanished directory, inotify limits...
                log.exception("file watcher on %s failed; retrying", _shown(self.paths))
                instruments.watcher_failed("watch")
                if not self.force_polling:
                    # Out of inotify instances/watches is the usual cause: stat polling
                    # needs none and is still correct, only a little slower.
                    log.warning("falling back to polling for %s", _shown(self.paths))
                    self.force_polling = True
                self._call_poll()  # do not miss what changed while we were down
                self._tick()
                if self._stop.wait(backoff):
                    return
                backoff = min(backoff * 2, 5.0)

    def _watch(self) -> bool:
        """Watch until stopped (False), or until a watched path names another directory
        than when the watch began (True: watch again)."""
        last_poll = 0.0
        established = False
        watching = self.paths
        roots = _identities(watching)
        existing = [p for p in watching if roots[p] is not None]
        if not existing:
            if not self._ready.is_set():  # never watched: as any failure to set up
                raise FileNotFoundError(f"nothing to watch: {_shown(watching)}")
            return self._wait_for_paths(roots)
        for changes in watchfiles.watch(
            *existing, stop_event=self._stop, raise_interrupt=False, **_watch_options(self)
        ):
            self._tick()  # (at least every _TICK_MS while nothing here blocks)
            if _replaced(changes, roots) or self.paths is not watching:
                return True  # (set_paths: the inputs live elsewhere now)
            if not established:
                # The watch is on now: read what changed before it was (at the first
                # start, or between the poll after a replaced directory and this
                # watch), which no event of this watch will report.
                established = True
                self._ready.set()
                self._call_poll()
                last_poll = time.monotonic()
            if changes:
                try:
                    self.on_change(changes)
                except BaseException:  # see _call_poll
                    log.exception("hot reload callback failed")
                    instruments.watcher_failed("change")
            if self.poll is not None and time.monotonic() - last_poll >= _poll_every(self):
                self._call_poll()
                last_poll = time.monotonic()
        return False

    def _wait_for_paths(self, roots: dict[str, tuple[int, int] | None]) -> bool:
        """Every watched directory is gone (a directory deleted to be created again):
        poll as usual and watch again once one is back."""
        last_poll = time.monotonic()
        watching = self.paths
        while not self._stop.wait(_TICK_MS / 1000):
            self._tick()
            if self.paths is not watching or _identities(self.paths) != roots:
                return True
            if self.poll is not None and time.monotonic() - last_poll >= self.poll_interval:
                self._call_poll()
                last_poll = time.monotonic()
        return False

    def _call_poll(self) -> None:
        if self.poll is None:
            return
        try:
            self.poll()
        except BaseException:
            # Not only Exception: a SystemExit from code run here (a registered transform
            # or validation rule) would end this thread without a word, and hot reload
            # with it. Nobody else can catch it; a thread's SystemExit exits nothing.
            log.exception("hot reload poll failed")
            instruments.watcher_failed("poll")

    def _after_fork_in_child(self) -> None:
        # The parent's thread is gone in the child; its Rust watcher is unusable (its
        # threads are gone too), so drop it and start a fresh one.
        self._thread = None
        if self.on_fork is not None:
            self.on_fork()
        if self._wanted:
            self.start(wait=None)


class AsyncDirectoryWatcher(_Liveness):
    """:class:`DirectoryWatcher` as a task on the running asyncio loop.

    Same arguments and the same safety nets: ``poll`` runs when the watch is established
    and every ``poll_interval`` seconds; an exception from a callback is logged and the
    watch goes on; a watch that fails (vanished directory, inotify limits...) is logged
    and restarted with backoff, falling back to stat polling. The callbacks are plain
    functions run in a worker thread (``asyncio.to_thread``), so the loop never blocks.

    Not restarted after ``os.fork()``, unlike the thread watcher, by decision: an event
    loop does not survive fork in a usable way (the child has the parent's selector and
    self-pipe but none of its executor threads, and nobody runs the loop), so there is
    nothing to restart the task on. A forked child that wants hot reload runs its own
    loop and starts a new watcher there; owners forget the parent's watcher in the child.
    A callback blocked in its worker thread, or a blocked event loop, stops the ticks
    :meth:`stalled_for` reads, as on the thread watcher.
    """

    def __init__(
        self,
        paths: Iterable[str],
        on_change: Callable[[set[tuple[Any, str]]], None],
        *,
        poll: Callable[[], None] | None = None,
        debounce_ms: int = DEFAULT_DEBOUNCE_MS,
        step_ms: int = DEFAULT_STEP_MS,
        poll_interval: float = 0.5,
        force_polling: bool | None = None,
        name: str = "cfgcore-file-watching",
        stall_after: float | None = None,
    ) -> None:
        # Checked here, not in the thread: a bad number is the caller's ValueError.
        poll_interval = check_poll_interval(poll_interval)
        self.stall_after = stall_bound(poll_interval, stall_after)
        self.last_tick = time.monotonic()
        self.paths = sorted({os.path.abspath(p) for p in paths})
        self.on_change = on_change
        self.poll = poll
        self.debounce_ms = check_milliseconds("debounce_ms", debounce_ms)
        self.step_ms = check_milliseconds("step_ms", step_ms)
        self.poll_interval = poll_interval
        self.force_polling = force_polling
        self.name = name
        self.task: asyncio.Task[None] | None = None
        self.stop_event: asyncio.Event | None = None
        self._ready: asyncio.Event | None = None
        self._wanted = False
        # stop_event for the worker threads the callbacks run in (an asyncio.Event is
        # not thread-safe): a reload's settle wait there ends when the watcher stops.
        self._halt = threading.Event()

    @property
    def running(self) -> bool:
        """True while the watcher task is alive."""
        return self.task is not None and not self.task.done()

    @property
    def wanted(self) -> bool:
        """True from :meth:`start` until :meth:`stop` or :meth:`request_stop`: the task
        should be running. A task that ended otherwise (its event loop finished or
        closed, cancelling it; the task cancelled by other code) no longer follows the
        files, and health says so."""
        return self._wanted

    async def start(self, wait: float | None = 5.0) -> bool:
        """Start the task on the running loop (idempotent); wait up to ``wait`` s (a finite
        number >= 0, else ValueError; None or 0: not at all) for the watch to be set up.
        True once it is."""
        if wait is not None:
            wait = wait_seconds("wait", wait)
        loop = asyncio.get_running_loop()
        self._wanted = True
        if not self.running:
            self.stop_event = asyncio.Event()
            self._ready = asyncio.Event()
            self._halt = threading.Event()
            self._tick()
            self.task = loop.create_task(self._run(), name=self.name)
        assert self._ready is not None and self.task is not None
        if wait and not self._ready.is_set():
            waiter = loop.create_task(self._ready.wait())
            await asyncio.wait(
                {waiter, self.task}, timeout=wait, return_when=asyncio.FIRST_COMPLETED
            )
            waiter.cancel()
        return self._ready.is_set()

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` or :meth:`request_stop` was called for the running task."""
        return self._halt.is_set()

    def set_paths(self, paths: Iterable[str]) -> None:
        """As :meth:`DirectoryWatcher.set_paths`."""
        wanted = sorted({os.path.abspath(p) for p in paths})
        if wanted != self.paths:
            self.paths = wanted

    async def stop(self) -> None:
        """Stop the task and wait for it."""
        task, stop = self.task, self.stop_event
        self._wanted = False
        self._halt.set()
        if stop is not None:
            stop.set()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def request_stop(self) -> None:
        """Ask the task to stop, from any thread (an ``asyncio.Event`` is not thread-safe)."""
        task, stop = self.task, self.stop_event
        self._wanted = False
        self._halt.set()
        if task is not None and stop is not None and not task.done():
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                task.get_loop().call_soon_threadsafe(stop.set)

    async def _run(self) -> None:
        assert self.stop_event is not None
        # The task's own context, copied into each callback's worker thread.
        WATCHER_STOP.set(self._halt)
        backoff = 0.1
        while not self.stop_event.is_set():
            self._tick()
            try:
                if not await self._watch():
                    return
                await self._call(self.poll, "poll")  # as the thread watcher: watch again
                backoff = 0.1
                continue
            except Exception:  # as the thread watcher: log, poll, retry; never die
                log.exception("file watcher on %s failed; retrying", _shown(self.paths))
                instruments.watcher_failed("watch")
                if not self.force_polling:
                    log.warning("falling back to polling for %s", _shown(self.paths))
                    self.force_polling = True
                await self._call(self.poll, "poll")
                self._tick()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.stop_event.wait(), backoff)
                backoff = min(backoff * 2, 5.0)

    async def _watch(self) -> bool:
        """As :meth:`DirectoryWatcher._watch`: True when a watched path names another
        directory than when the watch began."""
        assert self.stop_event is not None and self._ready is not None
        last_poll = 0.0
        established = False
        watching = self.paths
        roots = _identities(watching)
        existing = [p for p in watching if roots[p] is not None]
        if not existing:
            if not self._ready.is_set():
                raise FileNotFoundError(f"nothing to watch: {_shown(watching)}")
            return await self._wait_for_paths(roots)
        async for changes in watchfiles.awatch(
            *existing, stop_event=self.stop_event, **_watch_options(self)
        ):
            self._tick()
            if _replaced(changes, roots) or self.paths is not watching:
                return True
            if not established:  # as the thread watcher: read what preceded the watch
                established = True
                self._ready.set()
                await self._call(self.poll, "poll")
                last_poll = time.monotonic()
            if changes:
                await self._call(self.on_change, "change", changes)
            if self.poll is not None and time.monotonic() - last_poll >= _poll_every(self):
                await self._call(self.poll, "poll")
                last_poll = time.monotonic()
        return False

    async def _wait_for_paths(self, roots: dict[str, tuple[int, int] | None]) -> bool:
        assert self.stop_event is not None
        last_poll = time.monotonic()
        watching = self.paths
        while not self.stop_event.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), _TICK_MS / 1000)
            if self.stop_event.is_set():
                break
            self._tick()
            if self.paths is not watching or _identities(self.paths) != roots:
                return True
            if self.poll is not None and time.monotonic() - last_poll >= self.poll_interval:
                await self._call(self.poll, "poll")
                last_poll = time.monotonic()
        return False

    async def _call(self, func: Callable[..., None] | None, stage: str, *args: Any) -> None:
        if func is None:
            return
        try:
            await asyncio.to_thread(func, *args)
        except asyncio.CancelledError:
            raise  # the task is being stopped
        except BaseException:
            # Not only Exception, as on the thread watcher: a SystemExit from code run in
            # a reload (a registered transform or validation rule) came out of the worker
            # thread into this task, and asyncio re-raises SystemExit out of the event
            # loop: asyncio.run() raised it, and the whole service exited.
            log.exception("hot reload %s failed", "callback" if stage == "change" else stage)
            instruments.watcher_failed(stage)


_LIVE: weakref.WeakSet[DirectoryWatcher] = weakref.WeakSet()


def _restart_watchers_in_child() -> None:
    for watcher in list(_LIVE):
        try:
            watcher._after_fork_in_child()
        except Exception:  # pragma: no cover - never break the child's fork
            log.exception("cannot restart file watcher after fork")


after_fork_in_child(_restart_watchers_in_child)
