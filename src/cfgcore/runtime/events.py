"""Change events and listener dispatch.

Shared by everything in cfgcore that changes live state (the configuration manager,
flag reloads, the dynamic-config API, the fleet store):

* :class:`ConfigChangeEvent`: one per changed leaf (or one per failed reload, with
  ``kind == "error"``);
* :class:`EventBus`: registers sync and async listeners, either plain callables or
  objects with an ``on_config_changed(event)`` method (:class:`ChangeListener`), and
  dispatches events so that a listener that raises is logged and never stops the
  others or the caller;
* :func:`deferred_delivery`: what a lock-holding change path (the live flag set's swap)
  wraps around its locked section, so that listeners run once the lock is released.

Async listeners run on an event loop (see :class:`EventBus`); :meth:`EventBus.aclose`
is the close for code running in that loop: it waits for them without blocking it. A
delivery its loop ends before it finished (``asyncio.run`` cancels what is left, a loop
closed before it started it) is counted in ``EventBus.abandoned`` and logged, and its
coroutine closed: never a "coroutine ... was never awaited" warning.

A listener that never returns (or is much slower than the changes) holds up only its
own bus, and what waits for it is bounded: beyond ``MAX_BACKLOG`` batches waiting, the
oldest are dropped (counted in ``EventBus.dropped``, logged once per stall), so a
listener that recovers gets the latest changes, and a stuck one cannot make the
process run out of memory.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import contextvars
import inspect
import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from cfgcore._numbers import wait_seconds
from cfgcore.observability import instruments
from cfgcore.runtime.forks import after_fork_in_child
from cfgcore.runtime.redaction import redact

log = logging.getLogger("cfgcore.events")

#: Batches of events that may wait for a bus's listeners; beyond it the oldest are dropped.
MAX_BACKLOG = 10_000

#: Seconds :meth:`EventBus.close` (and :meth:`EventBus.aclose`) waits, in all, for the
#: events queued before it and the async listeners already scheduled to finish (a stuck
#: listener is left behind).
CLOSE_WAIT = 5.0


@dataclass(frozen=True, slots=True)
class ConfigChangeEvent:
    """One change to live configuration, or one rejected reload.

    ``config_path`` is the dotted key path that changed, a key holding a dot quoted
    (``loggers["uvicorn.access"].level``; :func:`cfgcore.errors.parse_key_path` gives
    its segments); for ``kind == "error"``: the file that was rejected, or ``""``;
    ``source`` says what caused it (``update_config``, ``reload``, ``profile``,
    ``set_active_config``, ``migration``, ...); ``version`` is the snapshot version the
    change belongs to; ``timestamp`` is ``time.time()``.
    ``kind`` is ``change`` (one changed leaf), ``error`` (a rejected input: the exception
    is in ``error``, both values are ``None``), ``flags`` (the flags file was recompiled
    and swapped; ``config_path`` is the file) or ``load`` (audit log only: an environment
    was loaded). ``actor`` names who made a change through the API (None for reloads).
    For a flag document from a store, ``store_version`` is its version
    in the store and ``writer`` who wrote it (``host``, ``pid``, ``actor``, ``time``),
    also when the change was made by another process or machine (``source="redis"``).
    ``warnings``: what the change went live with that is told, not refused (a rule
    placed ahead of a running A/B test's split: docs/experiments.md), one text each.

    >>> e = ConfigChangeEvent("a.b", 1, 2, "update_config", 3, 0.0)
    >>> e.is_error
    False
    """

    config_path: str
    old_value: Any
    new_value: Any
    source: str
    version: int
    timestamp: float
    kind: str = "change"
    error: BaseException | None = None
    environment: str | None = None
    actor: str | None = None  # who made the change ("user@host" by default; see runtime.policy)
    store_version: int | None = None
    writer: Mapping[str, Any] | None = None
    # What the change went live with that is worth telling and is not refused (a rule
    # placed ahead of a running A/B test's split), one line each, key path first.
    warnings: tuple[str, ...] = ()

    @property
    def is_error(self) -> bool:
        """True for a rejected reload or update (``kind == "error"``)."""
        return self.kind == "error"

    def __repr__(self) -> str:
        # Events get logged; listeners read the real values from the attributes.
        return (
            f"ConfigChangeEvent(config_path={self.config_path!r}, "
            f"old_value={redact(self.config_path, self.old_value)!r}, "
            f"new_value={redact(self.config_path, self.new_value)!r}, source={self.source!r}, "
            f"version={self.version}, kind={self.kind!r}, actor={self.actor!r})"
        )


@runtime_checkable
class ChangeListener(Protocol):
    """An object told about changes; ``on_config_changed`` may be sync or ``async``."""

    def on_config_changed(self, event: ConfigChangeEvent) -> Any: ...


#: What ``register_change_listener`` accepts: a callable or a :class:`ChangeListener`.
Listener = Callable[[ConfigChangeEvent], Any] | ChangeListener


class EventBus:
    """Listener registry and dispatcher for :class:`ConfigChangeEvent`.

    A listener is a callable ``f(event)`` or an object with ``on_config_changed(event)``;
    either may be ``async``. Sync listeners run in the emitting thread, in registration
    order. Coroutines are scheduled: on the event loop running in the emitting thread
    if there is one, else on the loop given to :meth:`set_loop`, else on a private
    background loop thread. In async code, close with ``await`` :meth:`aclose`, which
    waits for the deliveries on the caller's loop too. Exceptions (sync or async) are logged on
    ``cfgcore.events`` and never propagate; a SystemExit or KeyboardInterrupt does
    propagate on the caller's own thread, and is logged like an error on cfgcore's
    threads (dispatcher, watchers, the Redis follower), which keep delivering; an async
    listener's is raised on the loop of code that made the change there, and logged on
    any other loop (cfgcore's own, the one given to :meth:`set_loop`), which it would
    end with every delivery on it.

    >>> bus = EventBus()
    >>> seen = []
    >>> _ = bus.register(seen.append)
    >>> bus.emit([ConfigChangeEvent("a", 1, 2, "test", 1, 0.0)])
    >>> seen[0].config_path
    'a'
    """

    def __init__(self) -> None:
        self._listeners: tuple[Any, ...] = ()
        self._lock = threading.Lock()
        # Batches in emit order, run by one thread at a time (_delivering): see _deliver.
        self._outbox: collections.deque[list[ConfigChangeEvent]] = collections.deque()
        self._delivering = threading.Lock()
        self._deliverer: int | None = None  # the thread holding _delivering
        self._loop: asyncio.AbstractEventLoop | None = None
        self._own_loop: asyncio.AbstractEventLoop | None = None
        self._own_thread: threading.Thread | None = None
        # Async deliveries until they end (their ``done`` future: what close waits on).
        self._pending: dict[concurrent.futures.Future[None], _Pending] = {}
        # The dispatcher thread's queue: batches, _DRAIN (deliver the outbox), None (stop).
        self._queue: queue.SimpleQueue[Any] | None = None
        self._inflight = 0
        # Threads in an activation (a count each): its version may be visible before its
        # events are queued (see activating); wait_idle waits for them too.
        self._activating: collections.Counter[int] = collections.Counter()
        self._drain_queued = False  # a _DRAIN waits in _queue (one is enough)
        self.dropped = 0  # batches dropped because MAX_BACKLOG batches were waiting
        self._shedding = False  # dropping since the last time the backlog emptied
        # Async deliveries their event loop ended (cancelled, or closed) before they did.
        self.abandoned = 0
        self._abandon_told = False  # logged at WARNING since the last delivery finished
        # A close waited its whole timeout and left deliveries running (logged then at
        # WARNING): the loop's end cancelling them is no missing aclose().
        self._waited_out = False
        _BUSES.add(self)

    # registration -------------------------------------------------------------------

    def register(self, listener: Listener) -> Listener:
        """Add ``listener`` (returned, so this works as a decorator); duplicates ignored."""
        if not callable(listener) and not callable(getattr(listener, "on_config_changed", None)):
            raise TypeError("a listener is a callable or has an on_config_changed(event) method")
        with self._lock:
            if listener not in self._listeners:
                self._listeners = (*self._listeners, listener)
        return listener

    register_change_listener = register

    def unregister(self, listener: Listener) -> bool:
        """Remove ``listener``; False if it was not registered."""
        with self._lock:
            if listener not in self._listeners:
                return False
            self._listeners = tuple(x for x in self._listeners if x != listener)
            return True

    def __len__(self) -> int:
        return len(self._listeners)

    def set_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Run async listeners on ``loop`` when no loop runs in the emitting thread."""
        self._loop = loop

    # dispatch -----------------------------------------------------------------------

    def emit(self, events: Iterable[ConfigChangeEvent]) -> None:
        """Deliver every event to every listener; never raises.

        Batches reach the listeners in the order they were emitted, one thread at a
        time. The emitting thread delivers its batch before returning, except: inside
        :func:`deferred_delivery` (the batch runs when that section ends, after its
        lock is released), and while another thread is delivering on this bus (that
        thread runs this batch right after its own: a slow listener never holds up
        another thread's change, and a listener that makes a change, or waits for a
        thread that does, sees it delivered after the event it is handling).
        """
        if not self._listeners:
            return
        batch = list(events)
        if not batch:
            return
        self._queue_batch(batch)
        pending = getattr(_DEFERRED, "buses", None)
        if pending is not None:
            pending[self] = None
            return
        self._deliver()

    def _queue_batch(self, batch: list[ConfigChangeEvent]) -> None:
        """Append ``batch`` to the outbox; beyond ``MAX_BACKLOG`` waiting (a listener
        stuck or far slower than the changes), drop the oldest."""
        self._waited_out = False  # (a bus used again after a close)
        outbox = self._outbox
        outbox.append(batch)
        if len(outbox) <= MAX_BACKLOG:
            return
        dropped = 0
        while len(outbox) > MAX_BACKLOG:
            try:
                outbox.popleft()
            except IndexError:  # the delivering thread took it meanwhile
                break
            dropped += 1
        with self._lock:
            self.dropped += dropped
            first, self._shedding = not self._shedding, True
        if first:
            log.error(
                "change listeners of this bus are stuck or too slow: %d batches of events "
                "wait; the oldest are dropped (counted in EventBus.dropped) until they "
                "catch up",
                MAX_BACKLOG,
            )

    def _deliver(self) -> None:
        # If another thread holds _delivering, it checks the outbox again after letting
        # go, so a batch appended meanwhile is never left behind.
        while self._outbox:
            if not self._delivering.acquire(blocking=False):
                return
            self._deliverer = threading.get_ident()
            try:
                while self._outbox:
                    try:
                        batch = self._outbox.popleft()
                    except IndexError:  # dropped meanwhile (_queue_batch)
                        break
                    self._dispatch(batch)
                if self._shedding:
                    with self._lock:
                        self._shedding = False
                    log.warning("change listeners caught up (%d batches dropped in all)",
                                self.dropped)  # fmt: skip
            finally:
                self._deliverer = None
                self._delivering.release()

    def _dispatch(self, events: list[ConfigChangeEvent]) -> None:
        listeners = self._listeners  # a tuple: registration during dispatch is safe
        for event in events:
            for listener in listeners:
                handler = getattr(listener, "on_config_changed", None)
                if not callable(handler):
                    handler = listener
                try:
                    result = handler(event)
                except Exception:
                    log.exception(
                        "config change listener %r failed on %s", listener, event.config_path
                    )
                    instruments.listener_failed("sync")
                    continue
                except BaseException:
                    # A SystemExit or KeyboardInterrupt raised by listener code: it
                    # propagates on the caller's own thread (update_config), but on one
                    # of cfgcore's threads it would end that thread without a word, and
                    # every later change would reach no listener.
                    if not getattr(_SERVICE_THREAD, "on", False):
                        raise
                    log.exception(
                        "config change listener %r raised on %s (ignored on cfgcore's "
                        "thread %s)", listener, event.config_path,
                        threading.current_thread().name,
                    )  # fmt: skip
                    instruments.listener_failed("sync")
                    continue
                if inspect.isawaitable(result):
                    self._schedule(result, listener, event)

    def emit_in_background(self, events: Iterable[ConfigChangeEvent]) -> None:
        """Queue events for delivery on the bus's dispatcher thread and return at once.

        Used where the emitter must not wait for listeners (a hot-reload watcher: a slow
        listener must not delay the next reload). Batches are delivered in order.
        """
        batch = list(events)
        if not batch or not self._listeners:
            return
        self._queue_batch(batch)
        self._deliver_in_background()

    def _deliver_in_background(self) -> None:
        """Deliver the outbox on this bus's dispatcher thread (a background
        :func:`deferred_delivery`): a listener stuck on another bus never holds it up.
        One request waiting is enough (it delivers everything queued by then), so a
        stuck listener does not make requests pile up either."""
        with self._lock:
            if self._drain_queued:
                return
            self._drain_queued = True
            if self._queue is None:
                self._queue = queue.SimpleQueue()
                threading.Thread(
                    target=self._dispatch_loop,
                    args=(self._queue,),
                    name="cfgcore-event-dispatch",
                    daemon=True,
                ).start()
            self._inflight += 1
            self._queue.put(_DRAIN)

    def _dispatch_loop(self, q: queue.SimpleQueue[Any]) -> None:
        mark_service_thread()
        while True:
            item = q.get()
            if item is None:
                return
            try:
                with self._lock:
                    self._drain_queued = False  # batches queued from now on: a new one
                self._deliver()
            finally:
                with self._lock:
                    self._inflight -= 1

    def _schedule(self, awaitable: Any, listener: Any, event: ConfigChangeEvent) -> None:
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        loop = running if running is not None else self._loop
        if loop is None or loop.is_closed() or not loop.is_running():
            loop = self._background_loop()
        pending = _Pending(loop)
        self._pending[done] = pending
        done.add_done_callback(self._delivered)
        delivery = _Delivery(self, awaitable, listener, event, done, pending)
        # Where no code of the caller's waits on it (another loop, or a change made by
        # cfgcore's thread), a SystemExit or KeyboardInterrupt it raises is logged, as a
        # sync listener's on cfgcore's threads: it would end that loop, and every
        # delivery on it (cfgcore's own listener loop, the application's loop).
        delivery.service = running is None or getattr(_SERVICE_THREAD, "on", False)
        if loop is running:
            delivery.start()
            return
        try:
            loop.call_soon_threadsafe(delivery.start)
        except RuntimeError:  # the loop was closed meanwhile: the bus's own loop runs it
            pending.loop = self._background_loop()
            pending.loop.call_soon_threadsafe(delivery.start)

    def _delivered(self, done: concurrent.futures.Future[None]) -> None:
        self._pending.pop(done, None)

    def _reap(self) -> None:
        """Abandon the deliveries whose loop was closed before they finished (a task the
        loop created while it was being shut down): nothing will ever run them."""
        for pending in list(self._pending.values()):
            task, delivery = pending.task, pending.delivery
            if task is None or delivery is None or not pending.loop.is_closed():
                continue
            if not task.done():
                with contextlib.suppress(Exception):  # (a listener ignoring GeneratorExit)
                    task.get_coro().close()  # (a _run that started counts it and ends it)
            delivery.drop()  # (one that never did)

    def _abandon(self, listener: Any, event: ConfigChangeEvent, started: bool) -> None:
        """An async delivery its event loop ended (or cancelled) before it finished:
        counted in ``abandoned``; logged at WARNING once until a delivery finishes."""
        with self._lock:
            self.abandoned += 1
            waited_out = self._waited_out
            first, self._abandon_told = not (self._abandon_told or waited_out), True
        log.log(
            logging.WARNING if first else logging.DEBUG,
            "async config change listener %r did not handle %s: %s (%d such deliveries "
            "on this bus so far; %s)",
            listener, event.config_path,
            "it was cancelled before it finished (its event loop ending)" if started
            else "its event loop ended (or cancelled it) before it ran",
            self.abandoned,
            "left behind by the close that waited for it" if waited_out
            else "in async code, close the manager with 'await manager.aclose()' to wait "
            "for them",
        )  # fmt: skip

    def _background_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._own_loop is None or self._own_loop.is_closed():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=_run_until_stopped,
                    args=(loop,),
                    name="cfgcore-async-listeners",
                    daemon=True,
                )
                thread.start()
                self._own_loop = loop
                self._own_thread = thread
            return self._own_loop

    @contextlib.contextmanager
    def activating(self) -> Iterator[None]:
        """Around an activation that emits on this bus: its snapshot goes live (readers
        see its version) before it audits the change and queues the events, so
        :meth:`wait_idle` waits until it has queued them, then for their delivery. A
        caller who has read the new version and then waits gets its events delivered."""
        me = threading.get_ident()
        with self._lock:
            self._activating[me] += 1
        try:
            yield
        finally:
            with self._lock:
                self._activating[me] -= 1
                if not self._activating[me]:
                    del self._activating[me]

    def _others_activating(self) -> bool:
        """Whether a thread other than the caller is in an activation (:meth:`activating`;
        the caller's own, a listener or hook of it waiting, cannot end while it waits)."""
        mine = threading.get_ident()
        with self._lock:
            return any(t != mine for t in self._activating)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until the activations in progress on other threads have queued their
        events, queued events are delivered and scheduled async listeners finished;
        False if that took longer than ``timeout`` seconds (a finite number >= 0, else
        ValueError: :func:`cfgcore._numbers.wait_seconds`). Listeners scheduled on an
        event loop running in the calling thread are not waited for (they run once the
        caller returns to its loop)."""
        deadline = time.monotonic() + wait_seconds("timeout", timeout)
        while self._queued_elsewhere():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.001)
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        while True:
            self._reap()
            waiting = [f for f, p in list(self._pending.items()) if p.loop is not here]
            if not waiting:
                return True
            for fut in waiting:
                try:
                    fut.result(timeout=max(0.0, deadline - time.monotonic()))
                except Exception:  # still running at the deadline
                    pass
                if time.monotonic() >= deadline and not fut.done():
                    return False

    def _queued_elsewhere(self) -> bool:
        """Events queued, or being queued by an activation on another thread, or being
        delivered by another thread (what close and aclose wait for first)."""
        return bool(
            (self._activating and self._others_activating())
            or self._inflight
            or self._outbox
            or self._delivering.locked()
        )

    def _waits_on_caller(self) -> bool:
        """Whether what :meth:`close` would wait for needs the calling thread: it is
        delivering this bus's events (a listener closing its manager) or runs the bus's
        own loop (an async listener doing so)."""
        me = threading.get_ident()
        thread = self._own_thread
        return self._deliverer == me or (thread is not None and thread.ident == me)

    def close(self, timeout: float = CLOSE_WAIT) -> None:
        """Deliver the events queued so far and let the async listeners already
        scheduled finish, waiting at most ``timeout`` seconds in all (a listener stuck
        longer is left behind, logged); then stop the dispatcher thread and the private
        background loop, if started. A listener that closes its own manager does not
        wait for itself. ``timeout``: a finite number of seconds >= 0, else ValueError
        (and nothing is closed).

        Called from a running event loop, it cannot wait for the deliveries on that
        loop (they run once the caller returns to it): they are left scheduled, and
        any the loop's end then cancels is counted in ``abandoned`` and logged, its
        coroutine closed. Code in an event loop closes with ``await`` :meth:`aclose`."""
        timeout = wait_seconds("timeout", timeout)
        if not self._waits_on_caller() and not self.wait_idle(timeout):
            self._left_behind(timeout)
        thread = self._stop_threads()
        if thread is not None:
            thread.join(5)

    async def aclose(self, timeout: float = CLOSE_WAIT) -> None:
        """:meth:`close` for code running in an event loop (a web app's shutdown, the end
        of ``asyncio.run``): waits, without blocking the loop, until the events queued
        so far are delivered and every async delivery scheduled by then has finished,
        those on the calling loop included, at most ``timeout`` seconds in all (a
        listener stuck longer is left behind, logged, as by :meth:`close`). A listener
        that raises is logged, never raised here; one that awaits this does not wait
        for itself. ``timeout``: as :meth:`close`."""
        timeout = wait_seconds("timeout", timeout)
        deadline = time.monotonic() + timeout
        # The delivery this is awaited from: its task, or (asyncio.wait_for, a task it
        # created) one that carries its context.
        me = _IN_DELIVERY.get(None) or asyncio.current_task()
        here = asyncio.get_running_loop()
        delivering = self._deliverer == threading.get_ident()  # (then: not waited for)
        while True:
            self._reap()
            queued = not delivering and self._queued_elsewhere()
            waiting = [p for p in list(self._pending.values()) if p.task is not me]
            if not queued and not waiting:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._left_behind(timeout)
                break
            local = [p.task for p in waiting if p.loop is here and p.task is not None]
            if not queued and len(local) == len(waiting):
                await asyncio.wait(local, timeout=remaining)  # (never cancels them)
            else:
                # Events still queued, or deliveries on another thread's loop or on
                # their way to this one: looked at again shortly.
                await asyncio.sleep(min(0.002, remaining))
        thread = self._stop_threads()
        if thread is not None:
            await asyncio.to_thread(thread.join, 5)

    def _left_behind(self, timeout: float) -> None:
        self._waited_out = True
        log.warning(
            "closing with change listeners still running after %.1f s: the events "
            "they have not handled are not delivered", timeout,
        )  # fmt: skip

    def _stop_threads(self) -> threading.Thread | None:
        """Stop the dispatcher thread and the private loop; the loop's thread to join
        (None: none, or it is the caller's)."""
        with self._lock:
            q, self._queue = self._queue, None
            self._drain_queued = False  # the next background delivery starts a new thread
        if q is not None:
            q.put(None)
        loop, self._own_loop = self._own_loop, None
        thread, self._own_thread = self._own_thread, None
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile
                loop.call_soon_threadsafe(loop.stop)
            # (Its thread closes it once stopped: an async listener calling close()
            # runs on that thread, which cannot wait for itself.)
            if thread is not None and thread is not threading.current_thread():
                return thread
        return None

    def _after_fork_in_child(self) -> None:
        # The background loop's thread does not exist in the child; start afresh.
        self._lock = threading.Lock()
        self._own_loop = None
        self._own_thread = None
        self._pending = {}
        self._queue = None  # its thread is gone too; undelivered events die with it
        self._inflight = 0
        self._activating = collections.Counter()  # (the parent's threads are not here)
        self._drain_queued = False
        self._shedding = False
        self._outbox = collections.deque()  # the parent's to deliver, not the child's
        self._delivering = threading.Lock()
        self._deliverer = None


ListenerRegistry = EventBus

_DRAIN: Any = object()  # a dispatcher queue item: deliver the bus's outbox

_BUSES: weakref.WeakSet[EventBus] = weakref.WeakSet()


def _reset_buses_after_fork() -> None:
    for bus in list(_BUSES):
        bus._after_fork_in_child()
    _DEFERRED.__dict__.clear()


# The buses with batches held back by the current thread's deferred_delivery section
# (``buses``), and the calls held back with them (``calls``, see run_after_delivery).
_DEFERRED = threading.local()
_NOTIFIER: queue.SimpleQueue[Callable[[], None]] | None = None
_NOTIFIER_LOCK = threading.Lock()


@contextlib.contextmanager
def deferred_delivery(*, background: bool = False) -> Iterator[None]:
    """Hold back the listeners of events emitted in this thread until the section ends.

    A change path that notifies while holding a lock wraps the locked section (``with
    deferred_delivery(), lock:``): what must happen with the swap (state, audit) still
    happens there, and the listeners run after the lock is released, in emit order. With
    ``background=True`` they run on each bus's dispatcher thread instead (a store's
    follower must keep following whatever a listener does, and a listener stuck on one
    bus does not hold up another's). Nested sections deliver with the
    outermost. Calls held back by :func:`run_after_delivery` run after the listeners.
    """
    outer = getattr(_DEFERRED, "buses", None)
    if outer is not None:
        yield
        return
    buses: dict[EventBus, None] = {}
    calls: list[Callable[[], None]] = []
    _DEFERRED.buses, _DEFERRED.calls = buses, calls
    try:
        yield
    finally:
        _DEFERRED.buses = _DEFERRED.calls = None
        for bus in buses:
            if background:
                bus._deliver_in_background()  # each bus its own thread
            else:
                bus._deliver()
        for fn in calls:
            if background:
                _notify_later(fn)
            else:
                _call(fn)


def run_after_delivery(fn: Callable[[], None]) -> None:
    """Call ``fn`` now or, inside this thread's :func:`deferred_delivery` section, when
    the section ends (after its listeners, on the notifier thread for a background
    section). For a subscriber of a change path that calls code of its own users (the
    OpenFeature provider's events): that code never runs under the path's lock. A call
    that raises is logged."""
    calls = getattr(_DEFERRED, "calls", None)
    if calls is None:
        _call(fn)
    else:
        calls.append(fn)


def _call(fn: Callable[[], None]) -> None:
    try:
        fn()
    except Exception:
        log.exception("deferred notification %r failed", fn)
    except BaseException:  # as in EventBus._dispatch
        if not getattr(_SERVICE_THREAD, "on", False):
            raise
        log.exception("deferred notification %r raised (ignored on cfgcore's thread)", fn)


# cfgcore's own threads (event dispatch and notification, file watchers, the Redis
# follower): a listener's SystemExit or KeyboardInterrupt is logged there like any
# error instead of ending the thread.
_SERVICE_THREAD = threading.local()


def mark_service_thread() -> None:
    """Declare the calling thread one of cfgcore's own (see ``_SERVICE_THREAD``)."""
    _SERVICE_THREAD.on = True


def _notify_later(fn: Callable[[], None]) -> None:
    global _NOTIFIER
    with _NOTIFIER_LOCK:
        if _NOTIFIER is None:
            _NOTIFIER = queue.SimpleQueue()
            threading.Thread(
                target=_notify_loop, args=(_NOTIFIER,), name="cfgcore-event-notify", daemon=True
            ).start()
        _NOTIFIER.put(fn)


def _notify_loop(q: queue.SimpleQueue[Callable[[], None]]) -> None:
    mark_service_thread()
    while True:
        _call(q.get())


def _reset_notifier_after_fork() -> None:
    global _NOTIFIER, _NOTIFIER_LOCK
    _NOTIFIER, _NOTIFIER_LOCK = None, threading.Lock()


after_fork_in_child(_reset_notifier_after_fork)


after_fork_in_child(_reset_buses_after_fork)


def _run_until_stopped(loop: asyncio.AbstractEventLoop) -> None:
    """A bus's private listener loop: runs until :meth:`EventBus.close` stops it."""
    try:
        loop.run_forever()
    finally:
        loop.close()


class _Pending:
    """Where an async delivery runs (``loop``) and, once started there, its ``task``
    and ``delivery``."""

    __slots__ = ("loop", "task", "delivery")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.task: asyncio.Task[None] | None = None
        self.delivery: _Delivery | None = None


class _Delivery:
    """One async listener's awaitable on its way to its loop. It owns the awaitable
    until :func:`_run` awaits it. Never awaited (its loop closed with :meth:`start`
    still queued, so only that queue held this; its task cancelled before it ran, as
    ``asyncio.run`` does to what is left when it ends), it closes the coroutine (no
    "never awaited" warning), counts it on the bus and marks it done (:meth:`drop`)."""

    __slots__ = ("bus", "awaitable", "listener", "event", "done", "pending", "service")

    def __init__(
        self,
        bus: EventBus,
        awaitable: Any,
        listener: Any,
        event: ConfigChangeEvent,
        done: concurrent.futures.Future[None],
        pending: _Pending,
    ) -> None:
        self.bus, self.awaitable, self.listener, self.event = bus, awaitable, listener, event
        self.done, self.pending = done, pending
        self.service = False  # a SystemExit it raises is logged, not raised (_run)

    def start(self) -> None:
        """On its loop: start the task that awaits it."""
        task = asyncio.get_running_loop().create_task(_run(self))
        self.pending.task, self.pending.delivery = task, self
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.drop()  # (cancelled before it ran: its awaitable is still here)
        _settle(self.done)

    def drop(self) -> None:
        """Not awaited and never will be: close it, count it, mark it done."""
        awaitable, self.awaitable = self.awaitable, None
        if awaitable is None:
            return
        try:
            if inspect.iscoroutine(awaitable):  # (what would warn "never awaited")
                awaitable.close()
            self.bus._abandon(self.listener, self.event, started=False)
        finally:
            _settle(self.done)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # never raise from a finalizer
            self.drop()


# The task of the async delivery running (in its context, so in the tasks its listener
# creates too: asyncio.wait_for's): an aclose() awaited from it does not wait for it.
_IN_DELIVERY: contextvars.ContextVar[asyncio.Task[Any] | None] = contextvars.ContextVar(
    "cfgcore_in_delivery", default=None
)


async def _run(delivery: _Delivery) -> None:
    _IN_DELIVERY.set(asyncio.current_task())  # (this task's own context)
    awaitable, delivery.awaitable = delivery.awaitable, None
    listener, event, bus = delivery.listener, delivery.event, delivery.bus
    try:
        await awaitable
        bus._abandon_told = False  # the next one abandoned is logged at WARNING again
    except Exception:
        log.exception("async config change listener %r failed on %s", listener, event.config_path)
        instruments.listener_failed("async")
    except (asyncio.CancelledError, GeneratorExit):  # its loop ended (or was closed)
        bus._abandon(listener, event, started=True)
        raise
    except BaseException:
        # A SystemExit or KeyboardInterrupt: out of a task, asyncio raises it out of
        # the loop, which ends with every delivery on it. Raised on the loop of the
        # code that made the change (as a sync listener's is raised to it), logged
        # where that loop is not the caller's (see _schedule).
        if not delivery.service:
            raise
        log.exception(
            "async config change listener %r raised on %s (ignored: the change was not "
            "made on this event loop)", listener, event.config_path,
        )  # fmt: skip
        instruments.listener_failed("async")
    finally:
        _settle(delivery.done)


def _settle(done: concurrent.futures.Future[None]) -> None:
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        done.set_result(None)
