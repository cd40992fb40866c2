"""The flags a configuration manager serves: the shared live flag set of its store.

Which store (first that applies): the manager's ``flag_store`` or ``flags_file``
argument; ``$CFGCORE_FLAG_STORE``; a ``flags.yaml``/``.yml``/``.json``/``.msgpack`` in
the configuration directory; for the embedded demo directory, ``flags.json`` in the
state directory, seeded from the bundled catalog. That is the dynamic-config manager's
order, so both serve the same store: a fleet that exports a ``redis://`` URL serves it
through ``manager.flags`` and ``cfgcore eval`` too, not the directory's file (which
``cfgcore publish --flags`` sends the store; the choice is logged once at INFO). A
custom directory without a flags file, and no store named, serves no flags: a
service's configuration never silently picks up the demo catalog.

The live set is :func:`cfgcore.runtime.flags.shared_flags` of that store, created on
first use, so a manager that never serves flags never reads a flag file.

A directory without a flags file serves an empty placeholder engine (``manager.flags``,
``manager.engine``), which nothing else may swap. A flags file that appears there later
(a deploy adds ``flags.yaml``) goes live with the next activation that reads it (hot
reload's, ``reload()``, ``load_environment_config``), as the configuration files do,
and its live set *adopts the placeholder*: the file's flags are swapped into the very
engine handed out before, so an OpenFeature provider registered on it, code holding it
and its swap listeners serve them without a restart (the manager's listeners and audit
log get one ``flags`` event). A file that does not compile is refused like any bad
input (``last_error``, an error event, health's ``last_reload`` warning) and the
placeholder keeps serving no flags. One live set serves one store per process, so when
another manager opened that file's set first (a second manager on the directory, a
dynamic-config manager given the path) the placeholder cannot be adopted: the manager
serves that set's engine from then on, and the one it handed out stays empty for good,
said once in the log (WARNING), in ``health()`` (a ``flags_engine`` warning) and by a
provider on it (ERROR, ``error_because: "superseded"``): take ``manager.flags`` again,
or restart.

A flags file an activation refuses once its set is open (it does not decode or
compile) is refused by the set too (:meth:`LiveFlags.judge_read
<cfgcore.runtime.flags.LiveFlags.judge_read>`), as when its own reader refuses it: the
set's ``last_error`` and counts, a provider STALE, the set's other subscribers told
once. The manager reports it as its activation's refusal, not again as a subscriber;
one the set told it of first (a dynamic-config manager's watcher read the file first)
is audited once. The file back to the live document ends the refusal.

The reverse, the flags file removed while the service runs (deleted, moved away, a
link left dangling), emptied, or replaced by something that cannot be read (a
directory), is refused by the reload (``cfgcore.config.builder.flags_file_gone``) and
by the set the same way (:meth:`LiveFlags.judge_refused
<cfgcore.runtime.flags.LiveFlags.judge_refused>`): the flags keep serving, a provider
is STALE naming the file and why, and one removal is one refusal whichever reader
found it. The file put back, as it was or with good flags, ends it. An explicit
``load_environment_config`` accepts the removal for the configuration (which no longer
reads or watches the file), while the engine keeps serving the flags it last held:
dropping every flag to the code's defaults at once is never what a lost file means.
The set stays refused meanwhile (what serves is in no file: a restart serves none); the
file put back goes live again on the same engine.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import weakref
from typing import TYPE_CHECKING, Any, NoReturn

from cfgcore.config.builder import directory_flags_file
from cfgcore.errors import ConfigError, printable_name
from cfgcore.runtime.flagstore import checksum

if TYPE_CHECKING:
    from cfgcore.config.manager import ConfigurationManager
    from cfgcore.runtime.flags import LiveFlags
    from cfgcore.runtime.flagstore import FlagDocument

__all__ = ["ConfigFlags"]

log = logging.getLogger("cfgcore.flags")


class ConfigFlags:
    """One manager's flags; also the builder's view of them and a flag-set subscriber."""

    def __init__(
        self, manager: ConfigurationManager, store_arg: str | None, store_env: str | None
    ) -> None:
        self._manager = weakref.ref(manager)
        self.store_arg = store_arg
        self.store_env = store_env
        self._live: LiveFlags | None = None
        self._empty: Any = None  # the placeholder engine, once handed out
        # Why the placeholder stays empty for good (another manager's set serves its
        # store), or None: health() and a provider on it say so.
        self.superseded: str | None = None
        # The placeholder was adopted since the last activation took note (a flags file
        # that appeared): that activation's listeners and audit log get a flags event.
        self.appeared = False
        self._lock = threading.Lock()
        self._holds = False  # this manager holds self._live (released by close())
        self._closed = False  # close() was called: a set opened from now on is not held
        # What a closed manager still hears of its set (see close()): held here, as the
        # set holds its subscribers weakly.
        self._pairing = _Pairing(manager)
        self.record_usage: bool | None = None  # None: $CFGCORE_USAGE decides
        self._usage: Any = None  # the usage recorder this manager holds (released by close())
        # The refusal the live set told this manager last (audited then): see told().
        self._told: ConfigError | None = None

    def after_fork_in_child(self) -> None:
        """In a forked child (the manager's repair): the lock a parent's thread may have
        held opening the store (a Redis one answers in seconds when it is slow) is the
        child's own; a store not opened by then is opened here when first needed."""
        self._lock = threading.Lock()

    def url(self) -> str | None:
        """Where the flags live: a store path or URL, or None (no flags)."""
        from cfgcore.config.manager import default_config_dir

        manager = self._manager()
        if self.store_arg:
            return self.store_arg
        if self.store_env:
            return self.store_env
        if manager is None:
            return None
        path = directory_flags_file(manager.config_dir)
        if path is not None:
            return path
        if os.path.abspath(manager.config_dir) == os.path.abspath(default_config_dir()):
            from cfgcore.runtime.flagstore import default_state_dir, state_flags_file

            return state_flags_file(default_state_dir())
        return None

    def live(self) -> LiveFlags | None:
        """The shared live flag set (created on first use), or None without flags."""
        if self._live is None:
            url = self.url()
            if url is None:
                return None
            from cfgcore.runtime.flags import shared_flags
            from cfgcore.runtime.flagstore import bundled_seed, open_store

            manager = self._manager()
            manager_environ = manager._environ if manager is not None else None
            if manager is not None and not self.store_arg and url == self.store_env:
                own = directory_flags_file(manager.config_dir)
                if own is not None:
                    from cfgcore.runtime.redis_url import redact_url

                    log.info(
                        "flags from $CFGCORE_FLAG_STORE (%s), not from %s",
                        printable_name(redact_url(url) if "://" in url else url),
                        printable_name(own),
                    )  # fmt: skip

            with self._lock:
                if self._live is None:
                    store = open_store(url, seed=self._seed(bundled_seed(manager_environ)))
                    # (before its first read: a refusal printed then names the
                    # environment this manager serves)
                    _own(store, self)
                    placeholder = self._empty
                    live = shared_flags(store, adopt=placeholder)
                    if live.store is not store:  # (another manager's, shared)
                        _own(live.store, self)
                    live.subscribe(self)
                    self._live, self._holds = live, True
                    if manager is not None:
                        manager._pair_up()  # (its engine, perhaps another one now)
                    if placeholder is not None:
                        self._appeared(placeholder, live, url)
                    self._record_usage()
                    # What the start refused before anyone listened (a guardrail
                    # stop held, a stop register entry refused): audited here too.
                    for refusal in live.take_start_refusals("config"):
                        if manager is not None:
                            manager._error_event(refusal, "load")
        if self._closed:  # (opened by a read after close(): served, never held)
            self._let_go()
        return self._live

    def _appeared(self, placeholder: Any, live: LiveFlags, url: str) -> None:
        """A flags file found after the placeholder was handed out (see the module
        docstring): adopted, or reported as superseded. Either way what the manager
        serves changed: its next activation tells its listeners and audit log."""
        self.appeared = True
        shown = printable_name(url)  # (the directory's name: one line, whatever it holds)
        if live.engine is placeholder:
            log.info(
                "flags file %s appeared: its flags now serve on the engine this manager "
                "handed out", shown,
            )  # fmt: skip
            return
        self.superseded = placeholder._superseded = (
            f"the engine handed out while there was no flags file serves no flags: {shown} "
            "appeared later, and another manager's flag set serves it already (one per "
            "store per process); take manager.flags again, or restart"
        )
        log.warning("%s", self.superseded)

    @property
    def deferred(self) -> bool:
        """Whether the placeholder serves and no live set is open: a flags file found
        now goes live with the next activation (hot reload watches for it)."""
        return self._live is None and self._empty is not None

    def _seed(self, seed: str | None) -> str | None:
        """``seed`` (the bundled catalog, or None in production by the process's
        environment) unless the manager serves production by its own choice
        (``environment="production"``, the environment it loads) from a configuration
        directory of the project's: a missing flags file is refused there too, never
        served as the demo catalog. (The embedded demo set in production, chosen on
        purpose with ``CFGCORE_CONFIG_DIR=embedded``, comes with its catalog.)"""
        from cfgcore.config.manager import default_config_dir

        manager = self._manager()
        if seed is None or manager is None:
            return seed
        if os.path.abspath(manager.config_dir) == os.path.abspath(default_config_dir()):
            return seed
        env = self.serving_environment() or manager._default_environment
        return None if str(env or "").strip().lower() == "production" else seed

    def serving_environment(self) -> str | None:
        """The environment the manager serves (the one its first load builds, until it
        is active), or None: what the repair commands a fleet store prints publish for
        (``RedisFlagStore.add_owner``)."""
        manager = self._manager()
        if manager is None:
            return None
        # (the live snapshot as it is: reading ``environment`` would load one)
        return manager._snap.environment or manager._loading_environment

    def _record_usage(self) -> None:
        """Record when flags are evaluated (:mod:`cfgcore.runtime.usage`), in the state
        directory, as the dynamic-config manager does."""
        from cfgcore.runtime.usage import start_usage_recording

        manager = self._manager()
        environ = manager._environ if manager is not None else None
        self._usage = start_usage_recording(enabled=self.record_usage, environ=environ)

    def engine(self) -> Any:
        """The engine serving the flags (an empty one when there are none; a flags file
        that appears later goes live with the next activation, in that engine)."""
        live = self._live
        if live is not None:
            return live.engine
        if self._empty is not None:
            return self._empty
        live = self.live()
        if live is not None:
            return live.engine
        if self._empty is None:
            from cfgcore.engine import Engine

            with self._lock:
                if self._empty is None:
                    engine = Engine()
                    engine.swap({"version": 1, "flags": {}})
                    # A manager without a flags file serves none: nothing may swap some
                    # in, but a flags file that appears later is adopted (docstring).
                    manager = self._manager()
                    engine._served_by = f"{manager.config_dir if manager else '?'} (no flags file)"
                    self._empty = engine
        return self._empty

    def serving_engine(self) -> Any:
        """The engine serving the flags now, or None before any was handed out; opens
        nothing (:meth:`engine` may open the store)."""
        live = self._live
        return live.engine if live is not None else self._empty

    def close(self) -> None:
        """Let go of the shared live set (the last holder's release stops its watcher
        or fleet follower and closes the store); the engine keeps serving the flags it
        has, and another manager still holding the set may change them: the manager's
        :meth:`~cfgcore.config.manager.ConfigurationManager.pinned` pair follows such a
        change as :attr:`engine` does (its listeners and audit log hear nothing more).
        A set first opened after this (a read of a manager closed before it served
        flags) serves its document and is let go of at once: nothing is left to close."""
        with self._lock:
            self._closed = True
        self._let_go()

    def _let_go(self) -> None:
        with self._lock:  # once: a second close() must not release another's hold
            live, holds, self._holds = self._live, self._holds, False
            usage, self._usage = self._usage, None
        if live is not None and holds:
            live.subscribe(self._pairing)  # (first: no document goes live unpaired)
            remove_owner = getattr(live.store, "remove_owner", None)
            if remove_owner is not None:
                remove_owner(self)
            live.release(self)
        if usage is not None:
            usage.release()

    # -- what the builder reads (config.builder.ConfigBuilder.flags) --------------------

    def _required(self) -> LiveFlags:
        live = self.live()
        if live is None:
            raise ConfigError("this configuration has no flags")
        return live

    @property
    def store(self) -> Any:
        """The store, or None when the manager serves no flags."""
        return None if self.url() is None else self._required().store

    @property
    def document(self) -> FlagDocument | None:
        return self._required().document

    def prepare(self, doc: FlagDocument) -> Any:
        return self._required().prepare(doc)

    def install(self, doc: FlagDocument, compiled: Any, source: str, with_swap: Any = None) -> bool:
        return self._required().install(doc, compiled, source, initiator=self, with_swap=with_swap)

    def judge_read(self, raw: bytes, path: str, source: str) -> Any:
        """The flags file's bytes as the manager's activation read them: see
        :meth:`LiveFlags.judge_read`. A refusal marks the shared set refused (its other
        subscribers hear it: a dynamic-config manager, a provider); this manager reports
        it itself, as the refusal of its activation."""
        return self._required().judge_read(raw, path, source, initiator=self)

    def refuse(self, exc: ConfigError, source: str, data: bytes | None = None) -> NoReturn:
        """Raise the refusal of the flags file an activation refused before decoding it
        (gone or emptied since it went live, unreadable: ``exc``; ``data``: the bytes
        read, None for none), with the shared set standing refused on it as for bytes
        that do not compile (:meth:`LiveFlags.judge_refused`): the last good flags keep
        serving, a provider is STALE. A manager that never opened a set only raises."""
        live = self._live
        if live is None:
            raise exc
        origin = str(getattr(live.store, "path", None) or live.store.url)
        live.judge_refused(exc, origin, source, data=data, initiator=self)

    def back_to_live(self, raw: bytes) -> None:
        """End a refusal the live set stands on when ``raw`` (the flags file as a build
        read it) is the live document again (:meth:`LiveFlags.back_to_live`)."""
        live = self._live
        if live is not None and live.last_error is not None:
            live.back_to_live(checksum(raw))

    def warnings(self) -> tuple[str, ...]:
        """What the live flag document went live with that is told, not refused (a
        rule placed ahead of a running A/B test's split), for its audit entry."""
        live = self._live
        return tuple(str(w) for w in live.live_warnings()) if live is not None else ()

    def told(self, error: ConfigError) -> bool:
        """Whether ``error`` is the refusal the live set told this manager last
        (:meth:`flags_rejected` audited it): the manager's activation that then meets
        the same refusal (a watcher of the flags file got to it first) does not audit it
        a second time."""
        return error is self._told

    # -- subscriber (cfgcore.runtime.flags.FlagSubscriber) -------------------------------

    def flags_serving(self, new: Any) -> None:
        """A flag document went live (right after the engine's swap): the manager's
        pinned pair follows before anything else hears of it."""
        manager = self._manager()
        if manager is not None:
            manager._pair_up()

    def flags_changed(self, old: Any, new: Any, source: str, doc: Any, initiator: Any) -> None:
        """A flag document went live through another path (the dynamic-config API, a
        file watcher, the fleet store): tell the manager's listeners and audit log."""
        manager = self._manager()
        if initiator is self or manager is None:
            return
        event = manager._flags_event(doc.origin or "flags", source, manager._snap)
        # which stored version and who wrote it, for remote changes as for local ones
        event = dataclasses.replace(event, store_version=doc.version, writer=doc.writer)
        manager.audit.record(event)
        manager.events.emit([event])

    def flags_rejected(self, error: ConfigError, source: str, origin: str) -> None:
        """A flag document was refused elsewhere; the live flags keep serving."""
        manager = self._manager()
        if manager is not None:
            manager._error_event(error, source)
            self._told = error


class _Pairing:
    """A closed manager's subscription to its flag set: each document that goes live
    pairs with the manager's configuration for :meth:`pinned()
    <cfgcore.config.manager.ConfigurationManager.pinned>`, as while it was open; changes
    and refusals are no longer told to its listeners or audit log."""

    def __init__(self, manager: ConfigurationManager) -> None:
        self._manager = weakref.ref(manager)

    def flags_serving(self, new: Any) -> None:
        manager = self._manager()
        if manager is not None:
            manager._pair_up()

    def flags_changed(self, old: Any, new: Any, source: str, doc: Any, initiator: Any) -> None:
        return None

    def flags_rejected(self, error: ConfigError, source: str, origin: str) -> None:
        return None


def _own(store: Any, flags: ConfigFlags) -> None:
    """Tell a store that takes owners (a Redis store) that ``flags``' manager serves it."""
    add_owner = getattr(store, "add_owner", None)
    if add_owner is not None:
        add_owner(flags)
