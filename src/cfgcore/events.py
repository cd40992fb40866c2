"""Change events, listener dispatch and the audit log.

These pieces are shared by everything in cfgcore that changes live state (the
configuration manager, flag reloads, the dynamic-config API):

* :class:`ConfigChangeEvent`: one per changed leaf (or one per failed reload, with
  ``kind == "error"``);
* :class:`EventBus`: registers sync and async listeners, either plain callables or
  objects with an ``on_config_changed(event)`` method, and dispatches events so that a
  listener that raises is logged and never stops the others or the caller;
* :class:`AuditLog`: an append-only JSON-lines record of every change, with
  secret-looking values redacted (:func:`redact`).
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import json
import logging
import os
import queue
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "AuditLog",
    "ConfigChangeEvent",
    "EventBus",
    "ListenerRegistry",
    "REDACTED",
    "is_secret_key",
    "redact",
]

log = logging.getLogger("cfgcore.events")

REDACTED = "***redacted***"


@dataclass(frozen=True, slots=True)
class ConfigChangeEvent:
    """One change to live configuration, or one rejected reload.

    ``config_path`` is the dotted key path that changed (for ``kind == "error"``: the
    file that was rejected, or ``""``); ``source`` says what caused it (``update_config``,
    ``reload``, ``profile``, ``set_active_config``, ``migration``, ...); ``version`` is
    the snapshot version the change belongs to; ``timestamp`` is ``time.time()``.
    ``kind`` is ``change`` (one changed leaf), ``error`` (a rejected input: the exception
    is in ``error``, both values are ``None``), ``flags`` (the flags file was recompiled
    and swapped; ``config_path`` is the file) or ``load`` (audit log only: an environment
    was loaded).

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
            f"version={self.version}, kind={self.kind!r})"
        )


Listener = Callable[[ConfigChangeEvent], Any] | Any


class EventBus:
    """Listener registry and dispatcher for :class:`ConfigChangeEvent`.

    A listener is a callable ``f(event)`` or an object with ``on_config_changed(event)``;
    either may be ``async``. Sync listeners run in the emitting thread, in registration
    order. Coroutines are scheduled: on the event loop running in the emitting thread
    if there is one, else on the loop given to :meth:`set_loop`, else on a private
    background loop thread. Exceptions (sync or async) are logged on
    ``cfgcore.events`` and never propagate.

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
        self._loop: asyncio.AbstractEventLoop | None = None
        self._own_loop: asyncio.AbstractEventLoop | None = None
        self._own_thread: threading.Thread | None = None
        self._pending: set[Any] = set()
        self._queue: queue.SimpleQueue[list[ConfigChangeEvent] | None] | None = None
        self._inflight = 0
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
        """Deliver every event to every listener; never raises."""
        listeners = self._listeners  # a tuple: registration during dispatch is safe
        if not listeners:
            return
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
        with self._lock:
            if self._queue is None:
                self._queue = queue.SimpleQueue()
                threading.Thread(
                    target=self._dispatch_loop,
                    args=(self._queue,),
                    name="cfgcore-event-dispatch",
                    daemon=True,
                ).start()
            self._inflight += 1
            self._queue.put(batch)

    def _dispatch_loop(self, q: queue.SimpleQueue[list[ConfigChangeEvent] | None]) -> None:
        while True:
            batch = q.get()
            if batch is None:
                return
            try:
                self.emit(batch)
            finally:
                with self._lock:
                    self._inflight -= 1

    def _schedule(self, awaitable: Any, listener: Any, event: ConfigChangeEvent) -> None:
        coro = _guard(awaitable, listener, event)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None:
            task = running.create_task(coro)
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
            return
        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running():
            loop = self._background_loop()
        fut = asyncio.run_coroutine_threadsafe(coro, loop)
        self._pending.add(fut)
        fut.add_done_callback(self._pending.discard)

    def _background_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._own_loop is None or self._own_loop.is_closed():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="cfgcore-async-listeners", daemon=True
                )
                thread.start()
                self._own_loop = loop
                self._own_thread = thread
            return self._own_loop

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until queued events are delivered and scheduled async listeners finished
        (call it from a thread without a running loop)."""
        deadline = time.monotonic() + timeout
        while self._inflight:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.001)
        while self._pending:
            if time.monotonic() >= deadline:
                return False
            for fut in list(self._pending):
                if hasattr(fut, "result") and not isinstance(fut, asyncio.Task):
                    try:
                        fut.result(timeout=max(0.0, deadline - time.monotonic()))
                    except Exception:  # already logged by _guard
                        pass
                else:
                    time.sleep(0.001)
        return True

    def close(self) -> None:
        """Stop the dispatcher thread and the private background loop, if started."""
        q, self._queue = self._queue, None
        if q is not None:
            q.put(None)
        loop, self._own_loop = self._own_loop, None
        thread, self._own_thread = self._own_thread, None
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None:
                thread.join(5)
            if not loop.is_running():
                loop.close()

    def _after_fork_in_child(self) -> None:
        # The background loop's thread does not exist in the child; start afresh.
        self._lock = threading.Lock()
        self._own_loop = None
        self._own_thread = None
        self._pending = set()
        self._queue = None  # its thread is gone too; undelivered events die with it
        self._inflight = 0


ListenerRegistry = EventBus

_BUSES: weakref.WeakSet[EventBus] = weakref.WeakSet()


def _reset_buses_after_fork() -> None:
    for bus in list(_BUSES):
        bus._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_buses_after_fork)


async def _guard(awaitable: Any, listener: Any, event: ConfigChangeEvent) -> None:
    try:
        await awaitable
    except Exception:
        log.exception("async config change listener %r failed on %s", listener, event.config_path)


# --------------------------------------------------------------------------- redaction

_SECRET_KEY = re.compile(
    r"(pass(word|wd|phrase)?|pwd|authorization|secret|token|api[_-]?key|apikey|private[_-]?key|credential"
    r"|signing[_-]?key|access[_-]?key|encryption[_-]?key|client[_-]?secret|dsn|^key$|_key$)",
    re.IGNORECASE,
)
# The password runs to the last "@" before the path, as urllib and redis-py read it.
_URL_CREDENTIALS = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.\-]*://)(?P<user>[^:/@\s]*):[^/?#\s]+@", re.I
)
_TOKEN_VALUE = re.compile(
    r"^(-----BEGIN [A-Z ]*PRIVATE KEY-----|sk_(live|test)_|ghp_|gho_|xox[abp]-"
    r"|AKIA[0-9A-Z]{16}|eyJ[\w-]+\.)"
)
# A whole-value ${VAR}, ${VAR:-default}, ${VAR-default} or ${VAR:?message} reference.
_WHOLE_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}$")
_SAFE_KEY_SUFFIX = ("_enabled", "_required", "_ttl", "_days", "_length", "_policy", "_algorithm")


def is_secret_key(path: str | Iterable[Any]) -> bool:
    """Does the key path name a secret (password, token, api_key, private key, ...)?

    Only the last segment is judged, and names that describe a setting about secrets
    (``token_ttl``, ``password_policy``, ``min_length``...) are not secrets.
    """
    last = path.rsplit(".", 1)[-1] if isinstance(path, str) else str(list(path)[-1])
    low = last.lower()
    if low.endswith(_SAFE_KEY_SUFFIX) or low in ("key_id", "sharding_strategy"):
        return False
    return bool(_SECRET_KEY.search(low))


def redact(path: str | Iterable[Any], value: Any) -> Any:
    """``value`` with secrets replaced by :data:`REDACTED` (recursively for trees).

    A non-empty string is redacted when its key looks secret or the text itself looks
    like a credential (private key, well-known token prefixes); passwords inside URLs
    (``redis://user:pw@host``) are masked. Numbers, booleans and empty strings stay.
    """
    key = path if isinstance(path, str) else ".".join(str(p) for p in path)
    if isinstance(value, dict):
        return {k: redact(f"{key}.{k}" if key else str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(key, v) for v in value]
    if isinstance(value, str) and value:
        if (key and is_secret_key(key)) or _TOKEN_VALUE.match(value):
            ref = _WHOLE_REF.match(value)
            if ref is not None:
                # An unresolved ${VAR} reference names a variable, not a secret, but a
                # ${VAR:-default} carries its default in clear: mask that part.
                name, op, default = ref.groups()
                if op in (":-", "-") and default:
                    return f"${{{name}{op}{REDACTED}}}"
                return value
            return REDACTED
        if "@" in value and "://" in value:
            return _URL_CREDENTIALS.sub(rf"\g<scheme>\g<user>:{REDACTED}@", value)
    return value


# --------------------------------------------------------------------------- audit log


class AuditLog:
    """Append-only record of configuration changes, as JSON lines.

    Each entry holds ``ts`` (ISO 8601 UTC), ``kind``, ``source``, ``path``, ``old``,
    ``new``, ``version`` and, for errors, ``error``; values are passed through
    :func:`redact`. Each entry is written with one ``write`` on an ``O_APPEND`` file, so
    concurrent processes never interleave inside a line. The last ``keep`` entries are
    also kept in memory (:meth:`entries`).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, keep: int = 1000) -> None:
        # Resolved now: a later chdir (daemons do one) must not move the log.
        self.path = os.path.abspath(path) if path is not None else None
        self._recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=keep)
        self._lock = threading.Lock()
        _AUDIT_LOGS.add(self)

    def record(self, event: ConfigChangeEvent) -> dict[str, Any]:
        """Append one event; returns the (redacted) entry. Never raises on I/O errors."""
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(event.timestamp, tz=timezone.utc).isoformat(),
            "kind": event.kind,
            "source": event.source,
            "path": event.config_path,
            "old": redact(event.config_path, event.old_value),
            "new": redact(event.config_path, event.new_value),
            "version": event.version,
        }
        if event.environment is not None:
            entry["environment"] = event.environment
        if event.error is not None:
            entry["error"] = str(event.error)
        line = (json.dumps(entry, default=str, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            self._recent.append(entry)
            if self.path is not None:
                try:
                    fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
                    try:
                        os.write(fd, line)
                    finally:
                        os.close(fd)
                except OSError:
                    log.exception("cannot append to audit log %s", self.path)
        return entry

    def record_all(self, events: Iterable[ConfigChangeEvent]) -> None:
        """:meth:`record` each event."""
        for event in events:
            self.record(event)

    def entries(self) -> list[dict[str, Any]]:
        """The most recent entries kept in memory, oldest first."""
        with self._lock:
            return list(self._recent)

    @staticmethod
    def read(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
        """Read every entry of an audit log file."""
        with open(path, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]


_AUDIT_LOGS: weakref.WeakSet[AuditLog] = weakref.WeakSet()


def _reset_audit_logs_after_fork() -> None:
    # A thread that was appending when the parent forked does not exist in the child,
    # so the lock it held would stay held forever there.
    for audit in list(_AUDIT_LOGS):
        audit._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_audit_logs_after_fork)
