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
import datetime as _dt
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

__all__ = ["PublishedSource", "decode_temporal", "encode_temporal"]

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
                try:
                    self._write(env, doc)
                except ConfigError as exc:  # a value it cannot read back (decode_temporal)
                    if not os.path.exists(self.path(env)):
                        store.close()
                        raise
                    log.warning("%s: %s; serving the last followed %s", self.shown, exc, env)
            store.watch(lambda d: self._on_document(env, d), on_error=self._on_error)
            self._stores[env] = store

    def store(self, env: str) -> Any:
        """The store followed for ``env``, or None before it is synced."""
        return self._stores.get(env)

    def _write(self, env: str, doc: Any) -> bytes | None:
        """Write ``doc``'s tree to ``ENV.json``; return what was there before.
        ConfigError (nothing written) for a date or time value it cannot read back."""
        from cfgcore.config.files import typed_json

        # Dates and times back to their types, in a copy that keeps them (files.py).
        data = typed_json(decode_temporal(doc.snapshot.config, self.shown))
        before = None
        with contextlib.suppress(OSError):  # a FIFO or device there is no earlier file
            before = read_regular(self.path(env))
        os.makedirs(self.dir, exist_ok=True)
        atomic_write(self.path(env), data)
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
            try:
                before = self._write(env, doc)
            except ConfigError as exc:  # nothing written: a value it cannot read back
                self._on_error(exc)
                raise
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


# Dates and times in a published document. A configuration travels to followers as
# msgpack, which has no date, datetime or time of its own (msgspec's timestamp
# extension keeps the instant but not the offset, and naive values become text), and
# the tree was once flattened to text: a follower's ``get("d")`` returned "2024-05-01"
# where the publisher's returned a date. Each such leaf now travels as a msgpack
# extension value (code below, payload its ISO 8601 text, offset kept as written), which
# no value of a YAML, JSON or TOML file can be mistaken for. A document published by an
# earlier release holds text there and is served as text, as before. A follower of an
# earlier release cannot read the extension values: upgrade followers first.
_EXT_KINDS: dict[int, Any] = {1: _dt.date, 2: _dt.datetime, 3: _dt.time}


def encode_temporal(tree: Any) -> Any:
    """``tree`` (plain data) with every date, datetime and time leaf replaced by its
    msgpack extension value, for :class:`PublishedConfig`'s ``config``."""
    if isinstance(tree, dict):
        return {k: encode_temporal(v) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return [encode_temporal(v) for v in tree]
    if isinstance(tree, _dt.date | _dt.time):
        code = 2 if isinstance(tree, _dt.datetime) else 1 if isinstance(tree, _dt.date) else 3
        return msgspec.msgpack.Ext(code, tree.isoformat().encode())
    return tree


def decode_temporal(tree: Any, origin: str, path: tuple[Any, ...] = ()) -> Any:
    """``tree`` as the publisher served it: each extension value back to its date,
    datetime or time. ConfigError naming ``origin`` and the key path for one that is
    not (another code, or a payload that is no ISO 8601 text of its kind)."""
    if isinstance(tree, dict):
        return {k: decode_temporal(v, origin, (*path, k)) for k, v in tree.items()}
    if isinstance(tree, list):
        return [decode_temporal(v, origin, (*path, i)) for i, v in enumerate(tree)]
    if isinstance(tree, msgspec.msgpack.Ext):
        kind = _EXT_KINDS.get(tree.code)
        try:
            if kind is None:
                raise ValueError(f"unknown extension code {tree.code}")
            value = kind.fromisoformat(bytes(tree.data).decode())
            # date.fromisoformat would take a datetime's text in some versions: exact type
            if type(value) is not kind:
                raise ValueError(f"not a {kind.__name__}")
        except (ValueError, UnicodeDecodeError) as exc:
            from cfgcore.errors import Problem

            where = ".".join(str(p) for p in path)
            raise ConfigError(
                [Problem(where, f"published value is not a date or time ({exc})", file=origin)]
            ) from None
        return value
    return tree
