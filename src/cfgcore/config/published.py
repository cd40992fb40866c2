"""Following a configuration published to a Redis store (``cfgcore publish``).

``ConfigurationManager(config_source="redis://...")`` serves configurations that
``cfgcore publish`` built and validated elsewhere, for fleets without a shared config
volume. Each published environment is written (atomically) into a private directory in
the state directory as ``ENV.json``, and the manager builds from that directory exactly
as from any other: the ``${VAR}`` references the publisher kept are resolved from this
machine's environment, the ``CFGCORE__`` layer and runtime updates apply, and the result
is validated before it goes live. A new version in the store is written there and
reloaded (events with ``source="redis"``); one that fails validation is refused, its
file is put back, and the last good configuration keeps serving. The directory doubles
as the cache: a process started while Redis is down serves what it last followed.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import weakref
from typing import TYPE_CHECKING, Any

import msgspec

from cfgcore.errors import ConfigError
from cfgcore.runtime.atomicio import atomic_write, read_regular
from cfgcore.runtime.events import deferred_delivery
from cfgcore.runtime.flagstore import default_state_dir

if TYPE_CHECKING:
    from cfgcore.config.manager import ConfigurationManager

__all__ = ["PublishedSource"]

log = logging.getLogger("cfgcore.config")


class PublishedSource:
    """The published environments one manager follows, materialised in :attr:`dir`."""

    def __init__(self, manager: ConfigurationManager, url: str) -> None:
        from cfgcore.runtime.redis_store import parse_redis_url

        parsed = parse_redis_url(url)  # ConfigError for a bad URL, before anything else
        self.url = url
        self.shown = parsed.redacted()
        tag = hashlib.sha256(self.shown.encode()).hexdigest()[:12]
        self.dir = os.path.join(default_state_dir(), "fleet", f"config-{parsed.namespace}-{tag}")
        self._manager = weakref.ref(manager)
        self._stores: dict[str, Any] = {}
        self._lock = threading.Lock()

    def path(self, env: str) -> str:
        return os.path.join(self.dir, f"{env}.json")

    def sync(self, env: str) -> None:
        """Make sure ``env`` is followed and its newest published version is on disk."""
        from cfgcore.runtime.redis_store import RedisConfigStore

        with self._lock:
            if env in self._stores:
                return
            store = RedisConfigStore(self.url, env)
            try:
                doc = store.read()
            except ConfigError as exc:
                if not os.path.exists(self.path(env)):
                    store.close()
                    raise
                log.warning("%s: %s; serving the last followed %s", self.shown, exc, env)
            else:
                if doc.version == 0:
                    store.close()
                    raise ConfigError(
                        f"nothing published for environment {env!r} "
                        "(cfgcore publish --store URL -e ENV)",
                        file=self.shown,
                    )
                self._write(env, doc)
            store.watch(lambda d: self._on_document(env, d), on_error=self._on_error)
            self._stores[env] = store

    def store(self, env: str) -> Any:
        """The store followed for ``env``, or None before it is synced."""
        return self._stores.get(env)

    def _write(self, env: str, doc: Any) -> bytes | None:
        """Write ``doc``'s tree to ``ENV.json``; return what was there before."""
        before = None
        with contextlib.suppress(OSError):  # a FIFO or device there is no earlier file
            before = read_regular(self.path(env))
        os.makedirs(self.dir, exist_ok=True)
        atomic_write(self.path(env), msgspec.json.encode(doc.snapshot.config))
        return before

    def _on_document(self, env: str, doc: Any) -> None:
        manager = self._manager()
        if manager is None:
            return
        # Under the manager's change lock (re-entrant): no other change can build from
        # the new file until it is either live or put back. Listeners run once that
        # lock is released (the reload's own delivery section nests in this one); they
        # ran under it: a slow listener held up update_config() in every thread, and
        # one waiting for a thread that changes the configuration never returned. They
        # run on the bus's dispatcher thread, not this follower's: a slow listener holds
        # up no later published version.
        with deferred_delivery(background=True), manager._lock:
            before = self._write(env, doc)
            if manager.environment != env:
                return  # on disk for when that environment is loaded
            try:
                accepted = manager.reload(source="redis")
            except ConfigError:
                accepted = False
            if not accepted:
                # Refused (the manager audited it): put the last good file back, so a
                # later rebuild (update_config, a profile switch) starts from it.
                if before is not None:
                    atomic_write(self.path(env), before)
                raise manager.last_error or ConfigError("refused", file=self.shown)

    def _on_error(self, exc: Exception) -> None:
        manager = self._manager()
        if manager is not None:
            error = exc if isinstance(exc, ConfigError) else ConfigError(str(exc), file=self.shown)
            manager._error_event(error, "redis")

    def close(self) -> None:
        with self._lock:
            for store in self._stores.values():
                store.close()
            self._stores.clear()
