"""The configuration manager: layered environments, provenance, updates, hot reload.

>>> from cfgcore import get_config_manager
>>> manager = get_config_manager()
>>> config = manager.load_environment_config("staging")
>>> config["music_streaming"]["audio_quality"]["premium_bitrate"]
320
>>> manager.get("data_sources.kafka_cluster.consumer_configuration.group_id")
'ai-agent-staging-v2'

The layers and their order are described in :mod:`cfgcore.config.builder`.

Settings resolve as explicit argument, then environment variable, then default:
config directory (argument, ``CFGCORE_CONFIG_DIR``, ``./config`` when it holds
environment files, else the embedded music-streaming set, which production refuses
unless asked for: see :func:`discover_config_dir`), environment
(``CONFIG_ENVIRONMENT``, default ``development``), deployment profile
(``CONFIG_PROFILE``; ``default``/``none``/empty mean none), geographic profile
(``CONFIG_GEOGRAPHIC_PROFILE``), audit log file (``CFGCORE_AUDIT_LOG``), flag store
(``flag_store`` argument, ``flags_file``, ``$CFGCORE_FLAG_STORE``, the directory's
``flags.*``; for the embedded set, the state directory seeded from the bundled catalog:
the dynamic-config manager's order, so both serve one store).

Every activation (load, reload, update, profile switch, set_active_config) takes one
path, :meth:`ConfigurationManager._apply`: under the lock, build the complete new state
off to the side, validate it, swap it in with one reference assignment, then publish
the change events outside the lock. A reader sees the old state or the new one, never
a mix. A failed activation changes nothing: the previous state stays live and the
reason is in :attr:`last_error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from importlib.resources import files
from typing import Any

from cfgcore._encoding import utf8_encodable
from cfgcore.config import checks, debuglog
from cfgcore.config.builder import ConfigBuilder, profile_name
from cfgcore.config.envfile import (
    ENV_FILE_VAR,
    EnvironWithFile,
    env_file_beside,
    env_file_for,
)
from cfgcore.config.environ import env_refs, ref_names, refs_without, with_refs
from cfgcore.config.files import (
    _NOT_UNICODE,
    FORMATS,
    MAX_DEPTH,
    children,
    expands_too_far,
    tree_problem,
)
from cfgcore.config.flags import ConfigFlags
from cfgcore.config.profiles import DeploymentProfile
from cfgcore.config.reload import ReloadController
from cfgcore.config.state import EMPTY, ConfigSnapshot, runtime_snapshot
from cfgcore.config.tree import (
    DELETE,
    REPLACE,
    FrozenDict,
    assoc,
    diff_trees,
    format_path,
    freeze,
    freeze_served,
    get_path,
    plain_value,
    split_path,
)
from cfgcore.config.tree import structural_diff as _structural_diff
from cfgcore.config.view import ConfigView
from cfgcore.errors import ConfigError, ConfigValidationError, Problem, printable_name
from cfgcore.observability import instruments
from cfgcore.runtime.audit import AuditLog
from cfgcore.runtime.events import ConfigChangeEvent, EventBus, deferred_delivery
from cfgcore.runtime.forks import after_fork_in_child
from cfgcore.runtime.policy import check, config_change, current_actor, guarded
from cfgcore.runtime.secrets import is_secret_variable

__all__ = [
    "ConfigChangeEvent",
    "ConfigSnapshot",
    "ConfigurationManager",
    "ENVIRONMENTS",
    "default_config_dir",
    "discover_config_dir",
    "get_config_manager",
]

log = logging.getLogger("cfgcore.manager")

ENVIRONMENTS = ("development", "staging", "production", "test")
EMBEDDED = "embedded defaults"


def default_config_dir() -> str:
    """The embedded music-streaming configuration set shipped with cfgcore."""
    # One segment per joinpath(): Traversable takes several only from Python 3.11.
    return str(files("cfgcore").joinpath("defaults").joinpath("config"))


def bundled_flags() -> str:
    """The bundled music-streaming flag catalog (the seed of the state directory)."""
    return str(files("cfgcore").joinpath("defaults").joinpath("flags.yaml"))


def discover_config_dir(environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """``(directory, how it was chosen)``: ``$CFGCORE_CONFIG_DIR`` (``embedded`` names the
    embedded set on purpose), else ``./config`` when it holds an environment file, else
    the embedded defaults (``how`` is then :data:`EMBEDDED`)."""
    env = os.environ if environ is None else environ
    named = (env.get("CFGCORE_CONFIG_DIR") or "").strip()
    if named.lower() == "embedded":
        return default_config_dir(), "CFGCORE_CONFIG_DIR=embedded"
    if named:
        return os.path.abspath(os.path.expanduser(named)), "CFGCORE_CONFIG_DIR"
    local = os.path.abspath("config")
    for stem in ("base", *ENVIRONMENTS):
        if any(os.path.isfile(os.path.join(local, stem + ext)) for ext in FORMATS):
            return local, "./config"
    return default_config_dir(), EMBEDDED


class ConfigurationManager(ConfigView):
    """Loads, layers, validates, serves and hot-reloads one service's configuration.

    Reads are lock-free: :meth:`get` and mapping access (``manager["section"]``) read
    the current snapshot, a frozen tree. Changes are serialised by one lock and swapped
    in atomically. ``transforms`` are the :class:`ConfigurationTransformer` steps applied
    to every file layer (default: ``env_var_substitution`` only). ``validate=False``
    skips validation of activations (not recommended outside tests). ``environ``
    replaces ``os.environ`` for ``${VAR}`` substitution and the ``CFGCORE__`` layer.
    ``flag_store`` (a path or a ``redis://`` URL) or ``flags_file`` choose where the
    flags served by :attr:`flags` live; the dynamic-config manager of the same process
    shares them. ``config_source`` (a ``redis://`` URL, instead of ``config_dir``) serves
    the configurations ``cfgcore publish`` put there and follows every new version
    (:mod:`cfgcore.config.published`). ``record_usage=False`` (or ``CFGCORE_USAGE=0``)
    does not record when each flag was last evaluated (:mod:`cfgcore.runtime.usage`).
    ``debounce_ms``: how long the hot-reload watcher groups file events, a whole
    number of milliseconds >= 1 (else ConfigError); default
    ``config_management.reload_debounce_ms``, else 50.
    """

    def __init__(
        self,
        config_dir: str | os.PathLike[str] | None = None,
        *,
        environment: str | None = None,
        profile: str | DeploymentProfile | None = None,
        geographic_profile: str | None = None,
        env_prefix: str = "CFGCORE",
        transforms: Sequence[str] = ("env_var_substitution",),
        validate: bool = True,
        audit_log: str | os.PathLike[str] | None = None,
        flags_file: str | os.PathLike[str] | None = None,
        flag_store: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
        debounce_ms: int | None = None,
        config_source: str | None = None,
        record_usage: bool | None = None,
    ) -> None:
        if debounce_ms is not None:
            from cfgcore.config.watcher import check_milliseconds

            try:
                debounce_ms = check_milliseconds("debounce_ms", debounce_ms)
            except ValueError as exc:  # (this constructor's error for a bad argument)
                raise ConfigError(str(exc)) from None
        env = os.environ if environ is None else environ
        self._published: Any = None
        # The flag document (and compiled tables) a followed configuration was published
        # with, while the follower reloads it under the lock (config/published.py).
        self._paired_flags: Any = None
        if config_source is not None:
            # Published by `cfgcore publish` to a store (config/published.py)
            from cfgcore.config.published import PublishedSource

            if config_dir is not None:
                raise ConfigError("give config_dir or config_source, not both")
            self._published = PublishedSource(self, config_source)
            config_dir, self.config_dir_source = self._published.dir, "config_source"
            self.config_dir = os.path.abspath(config_dir)
        elif config_dir is not None:
            self.config_dir, self.config_dir_source = os.path.abspath(config_dir), "argument"
        else:
            self.config_dir, self.config_dir_source = discover_config_dir(env)
        log.info(
            "configuration directory: %s (%s)",
            printable_name(self.config_dir),
            self.config_dir_source,
        )
        if environ is None:
            # A .env file ($CFGCORE_ENV_FILE, or beside the config directory) fills in
            # variables the process environment lacks (config/envfile.py).
            embedded = self.config_dir == default_config_dir()
            env_file = env_file_for(env, self.config_dir, embedded)
            named = bool((env.get(ENV_FILE_VAR) or "").strip())
            if env_file is not None:
                log.info("environment file: %s", printable_name(env_file))
            if env_file is not None and named:
                environ = EnvironWithFile(env_file, named=True)
            elif not named and not embedded:
                # Beside the directory, whether one is there or not (yet): a .env file
                # created there later is read by the next build, as any input that
                # appears (the watch and the poll take its path among the inputs').
                environ = EnvironWithFile(env_file_beside(self.config_dir), optional=True)
        self._environ = environ
        self._default_environment = environment
        # The environment a load builds, until it is live or refused (None otherwise):
        # the one the manager serves before its first load is active (config/flags.py).
        self._loading_environment: str | None = None
        self._default_profile = profile
        self._default_geo = geographic_profile
        self.env_prefix = env_prefix
        self.builder = ConfigBuilder(
            self.config_dir, env_prefix=env_prefix, transforms=transforms, environ=environ
        )
        self.validate = validate
        # Resolved now: a later chdir (daemons do one) must not move the flags file.
        self._flag_store_arg = flag_store if flag_store is None else os.fspath(flag_store)
        if flags_file is not None:
            self._flag_store_arg = os.path.abspath(os.fspath(flags_file))
        self._flag_store_env = env.get("CFGCORE_FLAG_STORE")
        self._flags = ConfigFlags(self, self._flag_store_arg, self._flag_store_env)
        self._flags.record_usage = record_usage
        self.builder.flags = self._flags
        audit_path = audit_log if audit_log is not None else env.get("CFGCORE_AUDIT_LOG")
        self.audit = AuditLog(audit_path)
        self._audit_from_config = audit_path is None  # config_management.audit_log decides
        self.events = EventBus()
        self.reloader = ReloadController(self, debounce_ms)
        self.closed = False  # close() was called: reads serve, nothing follows changes
        self._lock = threading.RLock()
        self._snap: ConfigSnapshot = EMPTY
        # What pinned() answers: (snapshot, the engine, its compiled snapshot) paired
        # where both are live together (see _pair_up), read in one step.
        self._pair: tuple[ConfigSnapshot, Any, Any] | None = None
        self._pair_lock = threading.Lock()
        self.last_error: ConfigError | None = None
        # (snapshot, its empty secrets): the health report works them out once per
        # activated version (observability/health.py).
        self._empty_secrets_memo: tuple[ConfigSnapshot, list[str]] | None = None
        _MANAGERS.add(self)
        instruments.track_config_manager(self)

    transformer = property(lambda self: self.builder.transformer)
    transforms = property(lambda self: self.builder.transforms)
    profiles = property(lambda self: self.builder.profiles)

    # ------------------------------------------------------------------ the change path

    def _apply(
        self,
        source: str,
        build: Callable[[ConfigSnapshot], tuple[ConfigSnapshot, Any]],
        *,
        previous: ConfigSnapshot | None = None,
        failed: Callable[[ConfigError, ConfigSnapshot], ConfigChangeEvent | None] | None = None,
        background: bool = False,
        operation: str = "update",
    ) -> ConfigSnapshot:
        """The one activation path: lock, build from the live snapshot, validate, swap,
        then publish outside the lock. On :class:`ConfigError` nothing changes,
        :attr:`last_error` and the audit log record it (``failed`` returns the audited
        error event, or None for one reported already; default :meth:`_error_event`),
        listeners get that event, and the error is re-raised. Every attempt is counted
        and timed under ``operation`` (:data:`cfgcore.observability.instruments.OPERATIONS`)."""
        refused: tuple[ConfigError, ConfigChangeEvent | None] | None = None
        # Events join the bus's queue under the lock, so listeners get them in the order
        # the versions went live, whichever thread activated them; they run once the
        # lock is released (a listener may read, or even update, the configuration),
        # on the notifier thread for a watcher's reload: a slow listener never delays
        # the next reload. A flag set's subscribers (another manager's listeners) wait
        # for the same moment.
        with deferred_delivery(background=background), self._lock, self.events.activating():
            started = time.perf_counter()
            prev = self._current() if previous is None else previous
            try:
                snap, flags = build(prev)
                events = [] if snap is prev else self._activate(snap, flags, prev, source)
            except ConfigError as exc:
                self.last_error = exc
                error = failed(exc, prev) if failed is not None else self._error_event(exc, source)
                refused = (exc, error)
            except PermissionError as exc:  # the access policy: nothing changed
                instruments.activation(operation, started, error=exc)
                raise
            instruments.activation(
                operation,
                started,
                error=refused[0] if refused is not None else None,
                unchanged=refused is None and snap is prev,
            )
            # Listeners hear about every refused activation too (``failed`` returns None
            # for a watcher's re-read of an input already refused, and reported, as is).
            if refused is not None:
                events = [] if refused[1] is None else [refused[1]]
            self.events.emit(events)
        if refused is not None:
            raise refused[0]
        return snap

    def _activate(
        self, snap: ConfigSnapshot, flags: Any, previous: ConfigSnapshot, source: str
    ) -> list[ConfigChangeEvent]:
        """Validate ``snap`` and swap it (and ``flags``) in; return the change events."""
        if self.validate:
            started = time.perf_counter()
            problems = checks.blocking_problems(
                snap.config, snap.environment, previous, snap.layers, snap.refs
            )
            seconds = time.perf_counter() - started
            instruments.validation(not problems, seconds)
            if log.isEnabledFor(logging.DEBUG):
                debuglog.validated(snap.version, problems, seconds)
            if problems:
                raise ConfigValidationError(problems)
        if flags is None and self._published is not None:
            # A published file another process of this host wrote: with its flags
            # (config/published.py), or refused (ConfigError) when not the stored pair.
            flags = self._published.pair_for_build(snap, source)

        def publish() -> None:
            self._snap = snap  # the one assignment readers can observe
            self._pair_up()

        # With a new flags document the configuration goes live right after the engine
        # swap, before the flag set's subscribers (another manager's listeners) run:
        # readers and listeners never see the new flags with the old configuration.
        flags_changed = flags is not None and self._flags.install(
            flags[0], flags[1], source, with_swap=publish
        )
        if self._flags.appeared:
            # A flags file appeared since the last activation, whose build swapped it
            # into the placeholder engine (config/flags.py): a change of the flags.
            self._flags.appeared, flags_changed = False, True
        if log.isEnabledFor(logging.DEBUG):
            debuglog.swapped(previous, snap, source)
        publish()  # (again, harmlessly, when the flags went live with it)
        self.reloader.follow_inputs(snap)  # a new secret file's directory, say
        self.last_error = None
        if snap.sources is not previous.sources:  # (built from the inputs: no runtime update)
            self.reloader.refused = None
        self.reloader.unchanged_fingerprint = None
        # A refusal describes inputs that are no longer what is live: the same
        # fingerprint again later is a new break, not the refused input left as it was.
        # A file missing (deleted, a dangling or looping link) leaves no entry, so
        # deleting base.yaml a second time after a good version went live gave the
        # very fingerprint of the first deletion, and the poll skipped it unreported.
        self.reloader.rejected_fingerprint = None
        if snap.sources is not previous.sources:
            self.reloader.reported_error = None
        # (A runtime update leaves the inputs as they were: the refusal reported stays
        # told, so reading them again, which the update may have made valid, sends no
        # second error event nor audit entry for the same refusal.)
        if self._audit_from_config:
            target = get_path(snap.config, ("config_management", "audit_log"), None)
            self.audit.path = (
                os.path.join(self.config_dir, target)
                if isinstance(target, str) and target
                else None
            )
        now = snap.loaded_at
        if not previous.version or previous.environment != snap.environment:
            self.audit.record(
                ConfigChangeEvent(
                    "",
                    previous.environment or None,
                    snap.environment,
                    source,
                    snap.version,
                    now,
                    kind="load",
                    environment=snap.environment,
                )  # fmt: skip
            )
        if not previous.version:
            return []  # a first load is not a change; listeners registered later see none
        events = [
            ConfigChangeEvent(
                path, old, new, source, snap.version, now, environment=snap.environment
            )
            for path, old, new in diff_trees(previous.config, snap.config)
        ]
        actor = current_actor()
        if actor is not None:
            events = [dataclasses.replace(e, actor=actor) for e in events]
        if flags_changed:
            # One event for the whole flag set; per-flag detail is the flag engine's business.
            events.append(self._flags_event(snap.flags_file or "flags", source, snap))
        self.audit.record_all(events)
        return events

    def _flags_event(self, origin: str, source: str, snap: ConfigSnapshot) -> ConfigChangeEvent:
        return ConfigChangeEvent(
            origin, None, None, source, snap.version, time.time(), kind="flags",
            environment=snap.environment or None, warnings=self._flags.warnings(),
        )  # fmt: skip

    def _error_event(self, exc: ConfigError, source: str) -> ConfigChangeEvent:
        """The error event of a refusal, audited, unless it is the flag set's refusal
        it told this manager of already (audited then: the flags file refused by a
        watcher of it before this manager's own activation read it)."""
        found = {p.file for p in exc.problems if p.file}
        event = ConfigChangeEvent(
            ", ".join(sorted(found)), None, None, source, self._snap.version, time.time(),
            kind="error", error=exc, environment=self._snap.environment or None,
        )  # fmt: skip
        if not self._flags.told(exc):
            self.audit.record(event)
        return event

    # ------------------------------------------------------------------ loading

    @guarded("config.environment")
    def load_environment_config(
        self,
        environment: str | None = None,
        *,
        profile: str | DeploymentProfile | None = None,
        geographic_profile: str | None = None,
        actor: str | None = None,
    ) -> FrozenDict:
        """Build, validate and activate ``environment``'s configuration; return it.

        ``environment``/``profile``/``geographic_profile`` default to the constructor
        arguments, then ``CONFIG_ENVIRONMENT``/``CONFIG_PROFILE``/
        ``CONFIG_GEOGRAPHIC_PROFILE``, then ``development``/none/none. Runtime updates
        survive a reload of the same environment and are dropped when it changes.
        Raises :class:`ConfigError` (file, line and key path in the message); the
        previous configuration then stays active.

        The first load, and loading the active environment and profiles again, are
        reads. Switching a live configuration to another environment or profile is a
        change ``actor`` makes: the access policy must allow ``config.environment`` (the
        environment) and ``config.profile`` (each profile switched to); otherwise
        ``PermissionError``, audited, and nothing changes.
        """
        env, prof, geo = self._resolve(environment, profile, geographic_profile)

        def build(prev: ConfigSnapshot) -> tuple[ConfigSnapshot, Any]:
            self._loading_environment = env  # (until it is live, or refused: below)
            self._refuse_embedded_in_production(env)
            if prev.version and prev.environment != env:
                check(current_actor() or "", "config.environment", env, self.audit)
            if self._published is not None:
                # newest published version on disk (read with the flags the flag set
                # serves, as the store held them at one moment), followed
                self._published.sync(env)
            runtime = prev.runtime if prev.environment == env else None
            snap, flags = self.builder.build(env, prof, geo, runtime, prev, source="load")
            self._check_profiles(prev, snap)
            return snap, flags

        try:
            return self._apply("load", build, previous=self._snap, operation="load").config
        finally:
            # (the snapshot names it once live: a fleet store's follower, which may
            # report between the build and the swap, found neither in that window)
            self._loading_environment = None

    def _refuse_embedded_in_production(self, env: str) -> None:
        # A production service silently serving the demo catalog is the worst outcome.
        if env == "production" and self.config_dir_source == EMBEDDED:
            raise ConfigError(
                "production refuses the embedded demo configuration: set CFGCORE_CONFIG_DIR "
                "to your config directory (or to 'embedded' to use the demo set on purpose)",
                file=self.config_dir,
            )

    def build_config(
        self,
        environment: str | None = None,
        *,
        profile: str | DeploymentProfile | None = None,
        geographic_profile: str | None = None,
        keep_references: bool = False,
    ) -> FrozenDict:
        """Build an environment's configuration without validating or activating it.

        ``keep_references=True`` shows every value that came from an environment variable
        as the reference that produced it (``${KAFKA_SASL_PASSWORD}``): the tree the
        manager's own validation judges.
        """
        snap = self._build_unactivated(environment, profile, geographic_profile)
        if keep_references:
            return with_refs(snap.config, snap.refs)  # type: ignore[no-any-return]
        return snap.config

    def _build_unactivated(
        self, environment: str | None, profile: Any, geographic_profile: Any
    ) -> ConfigSnapshot:
        """The snapshot :meth:`build_config` shows: resolved values and their references
        (``cfgcore validate`` judges both, as activation does: :mod:`.checks`)."""
        env, prof, geo = self._resolve(environment, profile, geographic_profile)
        # No fingerprint: it would open the live flags, which a build without flags
        # must not need (cfgcore validate reports flags that do not compile itself).
        snap, _ = self.builder.build(env, prof, geo, None, EMPTY, with_flags=False, fingerprint=())
        return snap  # type: ignore[no-any-return]

    def available_environments(self) -> list[str]:
        """Environment names with a file in the config directory (base excluded)."""
        return self.builder.available_environments()

    def flags_path(self) -> str | None:
        """The flags file served by :attr:`flags`, or None if there is none."""
        if self._flags.deferred:
            return None  # (one appearing goes live with the next activation)
        self._flags.live()
        return self.builder.flags_path()

    def reload(self, *, source: str = "reload") -> bool:
        """Re-read every input and activate it if it changed and is valid.

        Returns False when the new input was rejected (the previous configuration stays,
        :attr:`last_error` says why, listeners get an ``error`` event); True otherwise.
        Listeners run before this returns; for watcher-triggered reloads they run on the
        event bus's dispatcher thread instead, so a slow listener never delays a reload.
        """
        return self._reload(source, background=False)

    def _reload(self, source: str, *, background: bool) -> bool:
        return self.reloader.reload(source, background=background)

    @guarded("config.profile")
    def set_profile(
        self,
        profile: str | DeploymentProfile | None = None,
        geographic_profile: str | None = None,
        *,
        actor: str | None = None,
    ) -> FrozenDict:
        """Switch the deployment and geographic profile layers of the active config.

        Validated and audited like any activation (source ``profile``); raises
        :class:`ConfigError` and changes nothing for an unknown or invalid profile, and
        ``PermissionError`` (audited) when the access policy does not allow ``actor``
        ``config.profile`` on each profile switched to (``none`` to remove one).

        The switch re-reads every input, so it is refused like a hot reload when one the
        live version read is gone, a link leading nowhere or emptied (``base.yaml``, the
        environment file, the flags file, the ``.env`` file): the profile would
        otherwise go live over a configuration missing that layer.
        ``load_environment_config`` is the way to accept such a removal on purpose.
        """
        prof, geo = profile_name(profile), profile_name(geographic_profile)

        def build(prev: ConfigSnapshot) -> tuple[ConfigSnapshot, Any]:
            snap, flags = self.builder.build(
                prev.environment, prof, geo, prev.runtime, prev, guard=True, source="profile"
            )
            self._check_profiles(prev, snap)
            return snap, flags

        return self._apply("profile", build, operation="profile").config

    def _check_profiles(self, prev: ConfigSnapshot, snap: ConfigSnapshot) -> None:
        """``config.profile`` on each profile layer a live configuration switches (the
        first load is not a change)."""
        if not prev.version:
            return
        for kind, old, new in (
            ("deployment", prev.profile, snap.profile),
            ("geographic", prev.geographic_profile, snap.geographic_profile),
        ):
            if old != new:
                target = self._profile_target(kind, new)
                check(current_actor() or "", "config.profile", target, self.audit)

    def _profile_target(self, kind: str, name: str | None) -> str:
        """What the policy judges for switching to profile ``name``: the name of the
        profile that is applied, as it is defined (``high_volume``, ``EU``), not as the
        caller spelled it: profiles are looked up ignoring case, so judging the spelling
        let ``HIGH_VOLUME`` past a policy that refuses ``h*``."""
        if not name:
            return "none"
        profiles = self.builder.profiles
        getter = (
            profiles.get_deployment_profile if kind == "deployment"
            else profiles.get_geographic_profile
        )  # fmt: skip
        try:
            return getter(name).name
        except ConfigError:
            return name  # not a profile the build applied: judged as spelled

    def _resolve(
        self, environment: Any, profile: Any, geographic_profile: Any
    ) -> tuple[str, str | None, str | None]:
        return self.builder.resolve(
            environment or self._default_environment,
            profile if profile is not None else self._default_profile,
            geographic_profile if geographic_profile is not None else self._default_geo,
        )

    def _ensure_loaded(self) -> ConfigSnapshot:
        if self._snap.version:
            return self._snap
        with self._lock:
            if not self._snap.version:
                self.load_environment_config()
            return self._snap

    # ------------------------------------------------------------------ validation

    def validate_config(self, config: Mapping[str, Any] | None = None) -> Any:
        """Validate ``config`` (default: the active one) and return the report: the
        validation engine's ``ValidationReport`` (or, without that module, an object with
        ``overall_valid``, ``blocking`` and ``results`` from the type check). It validates
        even when the manager was built with ``validate=False``."""
        return checks.report(self._current(), config)

    # ------------------------------------------------------------------ changing

    @guarded("config.update", lambda self, key_path, value, **kw: _update_checks(key_path, value))
    def update_config(
        self,
        key_path: str | tuple[str, ...] | list[str],
        value: Any,
        *,
        source: str = "update_config",
        actor: str | None = None,
    ) -> bool:
        """Set ``key_path`` to ``value`` at runtime, validated; True if applied.

        A dotted ``key_path`` nests (``"c.d"`` is key ``d`` under ``c``); a tuple or list
        of segments names keys that hold a dot: ``update_config(("loggers",
        "uvicorn.access", "level"), "DEBUG")``, as does the text cfgcore shows for that
        path, ``'loggers["uvicorn.access"].level'`` (:func:`~cfgcore.config.tree.split_path`).

        On failure nothing changes, :attr:`last_error` holds the reason and False is
        returned. Runtime updates sit on top of every other layer and survive hot
        reloads of the same environment. The manager's transformations apply to
        ``value`` as to files, so ``update_config("db.password", "${DB_PASSWORD}")``
        reads the variable, and the value ``"__delete__"`` removes the key.

        ``actor`` (default ``user@host``) is recorded in the event and the audit log; with
        an access policy (:mod:`cfgcore.runtime.policy`) a change it does not allow raises
        ``PermissionError`` and changes nothing.
        """
        if isinstance(key_path, str) and type(key_path) is not str:
            # Judged, split and named as the text it holds: a subclass's own methods
            # (split, encode, __eq__) may say anything to the policy and the audit log.
            key_path = str.__str__(key_path)
        path = _update_path(key_path)

        def build(prev: ConfigSnapshot) -> tuple[ConfigSnapshot, Any]:
            if not path:
                raise ConfigError(
                    [
                        Problem(
                            "",
                            "the key path must be a non-empty dotted string or a tuple of "
                            f"text segments, got {_shown(key_path)}",
                            file=f"<{source}>",
                        )
                    ]
                )
            if any(p == "" for p in path):
                raise ConfigError([Problem(_target(key_path), "empty key path segment")])
            if REPLACE in path:
                # Never a key of the served tree: set as one, it was served until the
                # next rebuild read the runtime layer's marker and wiped its section.
                raise ConfigError(
                    [
                        Problem(
                            _target(key_path),
                            f"{REPLACE} is the merge marker, never a configuration key "
                            "(update_config replaces the value at its key path already)",
                            file=f"<{source}>",
                        )
                    ]
                )
            _refuse_unusable(value, path, source)
            # Stored as the plain value it holds, as a file's would be: a caller's
            # subclass answered later reads and diffs with its own methods.
            new = _plain_or_refused(value, key_path, source)
            found = env_refs(new, path)
            # Reading a secret variable into a key is a change of its own: an actor
            # allowed to update a key shown to users must not be able to copy
            # ${DB_ADMIN_PASSWORD} into it (config.reference, target: the name).
            for name in sorted(ref_names(text for _, text in found)):
                if is_secret_variable(name):
                    check(current_actor() or "", "config.reference", name, self.audit)
            if found or self.transforms != ("env_var_substitution",):
                wrapped: dict[Any, Any] = {}
                node = wrapped
                for seg in path[:-1]:
                    node = node.setdefault(seg, {})
                node[path[-1]] = new
                new = get_path(
                    self.transformer.transform(wrapped, self.transforms, file=f"<{source}>"),
                    path,
                )
                # A ${VAR} may resolve to "__delete__" (or a map with markers): the
                # policy judges what the update does, not how it was written.
                for action, target in config_change(_policy_target(key_path), new):
                    check(current_actor() or "", action, target, self.audit)
            refs = refs_without(prev.refs, [path])
            refs.update(found)
            return runtime_snapshot(
                prev,
                assoc(
                    prev.config,
                    path,
                    freeze(new),
                    literal=not (isinstance(new, str) and new == DELETE),
                ),
                {path: new},
                source,
                refs,
            ), None

        def failed(exc: ConfigError, prev: ConfigSnapshot) -> ConfigChangeEvent:
            old = get_path(prev.config, path, None) if path else None
            # A value refused for its shape (too deep, a huge int, a set, non-str keys)
            # cannot be written to the audit log or shown to a listener as it is: record
            # its type instead.
            try:
                shown = plain_value(value) if tree_problem(value) is None else _REFUSED
            except Exception:  # its own methods raise: not shown
                shown = _REFUSED
            if shown is _REFUSED:
                shown = f"<refused {type(value).__name__}>"
            event = ConfigChangeEvent(
                _target(key_path), old, shown, source, prev.version, time.time(), kind="error",
                error=exc, environment=prev.environment or None, actor=current_actor(),
            )  # fmt: skip
            self.audit.record(event)
            return event

        try:
            self._apply(source, build, failed=failed, operation="update")
        except ConfigError as exc:
            # The seed's API answers False; a caller that ignores it (the spec's example
            # does) must still see why in the log, as a rejected reload is seen. The
            # version is the live one as it is: when the refusal was the first load's
            # (the configuration does not load), reading it through _current() loaded
            # it again and raised that second refusal out of this handler.
            log.warning(
                "update_config(%r) rejected; keeping version %d: %s",
                key_path,
                self._snap.version,
                exc,
            )
            return False
        return True

    @guarded("config.replace")
    def set_active_config(
        self,
        config: Mapping[str, Any],
        *,
        source: str = "set_active_config",
        actor: str | None = None,
    ) -> None:
        """Make ``config`` (a complete tree) the active configuration, validated.

        Differences from the current configuration are recorded as runtime overrides,
        so :meth:`explain` still points unchanged keys at their files. Raises
        :class:`ConfigValidationError` and changes nothing if validation fails, and
        ``PermissionError`` if the access policy refuses ``actor`` any changed key.
        """
        if not isinstance(config, Mapping):
            raise ConfigError(f"set_active_config needs a mapping, got {type(config).__name__}")

        def build(prev: ConfigSnapshot) -> tuple[ConfigSnapshot, Any]:
            plain = dict(config)
            _refuse_unusable(plain, (), source)
            # Stored as plain containers and values, as update_config stores its value:
            # a caller's subclass is never served (nor asked again) with its own methods.
            new_tree = freeze_served(_plain_or_refused(plain, (), source))
            overrides = _structural_diff(prev.config, new_tree)
            for changed in overrides:  # PermissionError: nothing changes, the denial is audited
                check(current_actor() or "", "config.replace", _policy_target(changed), self.audit)
            refs = refs_without(prev.refs, list(overrides))
            return runtime_snapshot(prev, new_tree, overrides, source, refs), None

        self._apply(source, build, operation="replace")

    def apply_migrated_config(self, config: Mapping[str, Any]) -> None:
        """:meth:`set_active_config` for a configuration produced by a migration."""
        self.set_active_config(config, source="migration")

    # ------------------------------------------------------------------ provenance, flags

    @property
    def flags(self) -> Any:
        """The :class:`cfgcore.engine.Engine` serving this configuration's flags, shared
        with the process's dynamic-config manager (see :mod:`cfgcore.config.flags`).
        A directory flags file is reloaded and swapped together with the configuration."""
        self._current()
        return self._flags.engine()

    engine = flags

    def pinned(self) -> tuple[ConfigSnapshot, Any]:
        """The active snapshot and the flags served with it, pinned together: a request
        that reads configuration and flags from these two sees one pair, even while a
        new configuration and its flags are being swapped in (reading ``get()`` and then
        :attr:`flags` may straddle that swap). The flags are the engine's pinned
        snapshot (``engine.snapshot()``: ``is_enabled``, ``evaluate``...).

        Never waits on a change under way: the pair is set in one assignment each time
        either half goes live (:meth:`_pair_up`), so a request reads it while a large
        flag document compiles or a fleet store is written, and gets the pair that
        served before until the new one is live whole.

        After :meth:`close` it keeps answering, never raising (a closing process still
        serves the requests under way), and what it answers is what :meth:`get` and
        :attr:`flags` serve: the configuration this manager last activated (no watcher
        follows the files any more) and the flags its engine serves, which another
        manager still holding the same store may change (paired as before)."""
        pair, flags = self._pair, self._flags
        if pair is not None and pair[0].version and pair[1] is not None:
            live = flags._live  # (serving_engine() inlined: this is the request path)
            if pair[1] is (live.engine if live is not None else flags._empty):
                return pair[0], pair[2]  # one pair, read once
        self._current()  # (loads first: never under the flag set's lock)
        engine = self._flags.engine()
        pair = self._pair
        if pair is None or pair[1] is not engine:
            # First use, or the manager's engine is another object since (a flags
            # file appeared): paired now, under the set's lock, as a swap pairs them.
            live = self._flags._live
            with live._lock if live is not None else contextlib.nullcontext():
                pair = self._pair_up()
            if pair[1] is not engine:  # (replaced meanwhile: this call's own pair)
                return pair[0], engine.snapshot()
        return pair[0], pair[2]

    def _pair_up(self) -> tuple[ConfigSnapshot, Any, Any]:
        """Pair the live configuration with the flags live now, for :meth:`pinned`.
        Run where either half goes live: right after a configuration's assignment
        (with a flag document: right after the engine's swap, under the flag set's
        lock, before anything else hears of it), right after a flag document's swap
        (``flags_serving``, for a document that went live without a configuration), and
        when the manager's engine changes (a flags file appeared). Each reads both
        halves as they are under its own lock, so the last to run pairs the latest."""
        with self._pair_lock:
            engine = self._flags.serving_engine()
            pair = (self._snap, engine, engine.snapshot() if engine is not None else None)
            self._pair = pair
        return pair

    def flag_store_url(self) -> str | None:
        """Where :attr:`flags` live: a store path or URL, or None (no flags)."""
        return self._flags.url()

    # ------------------------------------------------------------------ health

    def health(self, *, max_staleness: float | None = None) -> Any:
        """Liveness and readiness of this manager, with the checks behind each
        (:class:`cfgcore.observability.health.HealthReport`; ``str()`` is readable).

        Ready means a configuration is loaded and passed validation and, when it follows
        files or a store, was confirmed current within ``max_staleness`` seconds
        (argument, else ``health_monitoring.max_staleness``, else 60). A rejected reload
        leaves it ready (the last good version serves) with a ``warn`` check, as does a
        secret left empty in production (named by key path). Reads live state only: it
        never loads.

        >>> report = get_config_manager().health()   # doctest: +SKIP
        >>> report.ready, report.reasons              # doctest: +SKIP
        (True, [])
        """
        from cfgcore.observability.health import config_health

        return config_health(self, max_staleness)

    def disable_audit(self) -> None:
        """Write no audit entries (kept in memory only), whatever ``CFGCORE_AUDIT_LOG``
        or ``config_management.audit_log`` say: for tools that only inspect a
        configuration (``cfgcore show``), whose loads are not the service's."""
        self._audit_from_config = False
        self.audit.path = None

    # ------------------------------------------------------------------ listeners

    def register_change_listener(self, listener: Any) -> Any:
        """Add a listener: ``f(event)`` or an object with ``[async] on_config_changed(event)``."""
        return self.events.register(listener)

    def unregister_change_listener(self, listener: Any) -> bool:
        """Remove a listener; False if it was not registered."""
        return self.events.unregister(listener)

    # ------------------------------------------------------------------ hot reload

    def enable_hot_reload(
        self, *, poll_interval: float = 0.5, stall_after: float | None = None
    ) -> None:
        """Watch the config directory in a background thread and reload on change.

        Idempotent. Survives ``os.fork()`` (restarted in the child). A rejected file
        keeps the previous configuration and emits an ``error`` event.

        ``stall_after``: seconds without a turn of the watcher's loop (a reload blocked
        on a hung read or a lock) after which :meth:`health` reports not ready; a finite
        number > 0, else ValueError. Default: ``CFGCORE_WATCHER_STALL_SECONDS``, else
        ``max(30, 20 x poll_interval)``. Given again to a running watcher, it applies
        from then on. ``cfgcore_config_watcher_last_tick_age_seconds`` exports the age
        it is compared with, to alert before readiness flips. ``poll_interval``: a
        finite number of seconds > 0, else ValueError (even for a running watcher)::

            manager.enable_hot_reload(stall_after=120)  # validation rules call out
        """
        self.reloader.enable(poll_interval=poll_interval, stall_after=stall_after)

    def disable_hot_reload(self) -> None:
        """Stop the background watcher (if any)."""
        self.reloader.disable()

    @property
    def hot_reload_enabled(self) -> bool:
        """True while a watcher (thread or asyncio task) is running."""
        return self.reloader.enabled

    async def start_file_watching(
        self, *, poll_interval: float = 0.5, stall_after: float | None = None
    ) -> None:
        """Watch the config directory from the running asyncio loop (``await`` it).

        Returns once the watch is established; reloads run in a worker thread so the
        loop never blocks, and async listeners run on this loop. The files are also
        polled every ``poll_interval`` seconds, and a failing watch is logged and
        restarted. Not restarted after ``os.fork()``: a child calls this in its own loop.
        ``stall_after``: as in :meth:`enable_hot_reload`.
        """
        await self.reloader.start_async(poll_interval=poll_interval, stall_after=stall_after)

    async def stop_file_watching(self) -> None:
        """Stop the asyncio watcher started by :meth:`start_file_watching`."""
        await self.reloader.stop_async()

    def _after_fork_in_child(self) -> None:
        # Another thread may have held the lock when the parent forked; that thread does
        # not exist here, so the lock would stay held forever.
        self._lock = threading.RLock()
        self._pair_lock = threading.Lock()  # (pinned()'s pair: set at every activation)
        self.reloader.after_fork_in_child()
        # Their locks are held across Redis reads (opening the flag store, following a
        # published environment): a worker forked meanwhile hung at close() and at the
        # activation that needs them.
        self._flags.after_fork_in_child()
        if self._published is not None:
            self._published.after_fork_in_child()

    def close(self) -> None:
        """Stop watchers (the thread and the asyncio one) and background listener threads,
        and let go of the flag set (its fleet follower stops with the last manager).
        Reads (:meth:`get`, :attr:`flags`, :meth:`pinned`) keep serving the last
        configuration and the flags its engine serves, and never raise for the close;
        :meth:`health` reports not ready from here on (a closing process should get no
        new traffic). A read that opens the flag set after this (the manager never
        served flags before) serves its document without holding the set open."""
        self.closed = True
        self._stop_sources()
        self.events.close()

    async def aclose(self) -> None:
        """:meth:`close` for code running in an event loop (a FastAPI/Starlette lifespan's
        shutdown, the end of ``asyncio.run(main())``): ``await manager.aclose()``.

        Stops the watchers (awaiting the asyncio one this loop runs, and the reload it
        is running), the flag set and a published environment's follower, then waits,
        without blocking the loop, until the events of the changes made by then have
        reached every listener and each async listener's call has returned (5 s at most
        in all: a listener stuck longer is left behind, logged). So none is lost when
        the loop ends right after, as it may be after :meth:`close` (which cannot wait
        for this loop's listeners from inside it). A listener that raises is logged, as
        ever, never raised here; one that awaits this does not wait for itself.
        What stays usable after it is what stays after :meth:`close`."""
        self.closed = True
        await self.reloader.stop_async_here()
        # Joins the watcher thread, may talk to Redis: off the loop, which meanwhile
        # runs the listeners those threads hand to it.
        await asyncio.to_thread(self._stop_sources)
        await self.events.aclose()

    def _stop_sources(self) -> None:
        """Stop everything that makes changes on its own (watchers, the fleet follower
        with the last manager of the flag set, a published environment's follower)."""
        self.reloader.close()
        self._flags.close()
        if self._published is not None:
            self._published.close()


def _update_checks(key_path: Any, value: Any) -> list[tuple[str, str]]:
    """The policy checks of ``update_config(key_path, value)`` (``config_change``). A
    dict that contains itself, or holds one container in so many places that it expands
    past what a value may (one dict at both keys of each of 60 levels: 2**60 key paths),
    is checked as a plain update: ``config_change`` walks every key path of a map, so
    the call hung (and grew until memory ran out); the update itself refuses both
    (``tree_problem``). Any other value, however deep, is judged path by path."""
    if isinstance(value, dict) and (_contains_itself(value) or expands_too_far(value)):
        return [("config.update", _policy_target(key_path))]
    # Judged as the plain value the update stores (a value the update refuses for its
    # shape, as it is). One whose own methods raise while it is judged is checked as a
    # plain update: the update refuses it, naming the key path.
    try:
        if tree_problem(value) is None:
            value = plain_value(value)
        return config_change(_policy_target(key_path), value)
    except Exception:
        return [("config.update", _policy_target(key_path))]


_REFUSED = object()


def _plain_or_refused(value: Any, key_path: Any, source: str) -> Any:
    """:func:`plain_value` of an update's ``value``; a ConfigError naming the key path
    when the value's own methods raise while it is read."""
    try:
        return plain_value(value)
    except Exception as exc:
        raise ConfigError(
            [
                Problem(
                    _target(key_path),
                    f"the value cannot be read: its {type(value).__name__} raised "
                    f"{type(exc).__name__}",
                    file=f"<{source}>",
                )
            ]
        ) from None


def _contains_itself(value: Any) -> bool:
    """Whether a container in ``value`` contains itself: depth-first, iterative, each
    container once (so a value sharing one dict in many places is not walked per path)."""
    on_path: set[int] = set()
    finished: set[int] = set()
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        node, leaving = stack.pop()
        if leaving:
            on_path.discard(id(node))
            finished.add(id(node))
            continue
        if id(node) in on_path:
            return True
        if id(node) in finished:
            continue
        on_path.add(id(node))
        stack.append((node, True))
        for child in children(node):
            if isinstance(child, dict | list | tuple):
                stack.append((child, False))
    return False


def _update_path(key_path: Any) -> tuple[str, ...]:
    """The segments ``update_config`` sets: a dotted text split on every dot, a tuple or
    list of text segments as they are; ``()`` for anything else (refused)."""
    if isinstance(key_path, str):
        return split_path(key_path)
    if type(key_path) is tuple or type(key_path) is list:
        path = split_path(key_path)
        if all(type(seg) is str for seg in path):
            return path
    return ()


def _shown(key_path: Any) -> str:
    """``repr(key_path)`` for a message; never raises (a caller's object may)."""
    try:
        return repr(key_path)
    except Exception:
        return f"a {type(key_path).__name__}"


def _escaped(text: str) -> str:
    """``text`` with a lone surrogate escaped: the audit log could not write it, and
    raised."""
    if str.isascii(text) or utf8_encodable(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _target(key_path: Any) -> str:
    """``key_path`` as the audit log, listeners and messages name it: a dotted text as
    given, segments rendered (``loggers["uvicorn.access"].level``: :func:`format_path`),
    and a text in that rendered form as the segments it names."""
    if isinstance(key_path, str):
        text = str.__str__(key_path)  # the text a subclass holds, not what it says
        if '["' in text:
            return _escaped(format_path(split_path(text)))
        return _escaped(text)
    if type(key_path) is tuple or type(key_path) is list:
        try:
            return _escaped(format_path(split_path(key_path)))
        except Exception:  # a segment whose own methods raise
            pass
    return _shown(key_path)


def _policy_target(key_path: Any) -> str:
    """``key_path`` as the access policy judges it: the dotted text, segments joined with
    dots whatever they hold. Policy targets are ``fnmatch`` patterns over dotted paths
    (``loggers.*``, where ``*`` crosses dots), in which ``[`` opens a character class:
    a rendered ``loggers["uvicorn.access"]`` escaped every rule written for the
    ``loggers`` section, so a key holding a dot is judged as its dotted spelling; so
    is one named by a text in that rendered form (:func:`split_path` reads it)."""
    if isinstance(key_path, str) and str.__contains__(key_path, '["'):
        key_path = split_path(key_path)  # (a plain dotted text is judged as given)
    if type(key_path) is tuple or type(key_path) is list:
        try:
            return _escaped(
                ".".join(str.__str__(s) if isinstance(s, str) else str(s) for s in key_path)
            )
        except Exception:
            return _shown(key_path)
    return _target(key_path)


def _refuse_unusable(value: Any, path: tuple[Any, ...], source: str) -> None:
    """Refuse a runtime value a configuration file could not hold, by its key path:
    the files' own judge (:func:`~cfgcore.config.files.tree_problem`: nesting, 64-bit
    integers, string keys, finite floats, and only text, numbers, booleans, null,
    dates and times, lists and mappings as values), so ``update_config`` and
    ``set_active_config`` accept a date a TOML file gives and refuse an arbitrary
    object alike."""
    found = tree_problem(value, tuple(path))
    if found is None and not all(
        isinstance(p, str) and (str.isascii(p) or utf8_encodable(p)) for p in path
    ):
        # The value's keys are judged by tree_problem; the path's own segments here.
        found = _escaped(format_path(path)), f"key path {_NOT_UNICODE}"
    if found is None and len(path) > MAX_DEPTH:
        # A key path deeper than a file may nest (thousands of segments exhausted the
        # stack while the update was applied: RecursionError, not False).
        shown = format_path(path[:6]) + ".…"
        found = shown, f"key path nests more than {MAX_DEPTH} levels deep"
    if found is not None:
        where, message = found
        raise ConfigError([Problem(where, message, file=f"<{source}>")])


# Reads like a read-only mapping of the active configuration (isinstance checks included).
Mapping.register(ConfigurationManager)

_MANAGERS: weakref.WeakSet[ConfigurationManager] = weakref.WeakSet()
_default: ConfigurationManager | None = None
_default_lock = threading.Lock()


@after_fork_in_child
def _reset_after_fork() -> None:
    global _default_lock
    _default_lock = threading.Lock()
    for manager in list(_MANAGERS):
        manager._after_fork_in_child()


def get_config_manager(config_dir: str | os.PathLike[str] | None = None) -> ConfigurationManager:
    """The process-wide :class:`ConfigurationManager` (created on first call).

    ``config_dir`` applies only to the first call; later calls return the same manager.
    A later call naming another directory than the one it serves raises
    :class:`ConfigError` (it returned the manager of the other directory without a
    word): build a :class:`ConfigurationManager` of its own for a second directory.
    """
    global _default
    with _default_lock:
        if _default is None:
            _default = ConfigurationManager(config_dir)
        elif config_dir is not None and os.path.abspath(config_dir) != _default.config_dir:
            raise ConfigError(
                f"get_config_manager(): the process-wide manager already serves "
                f"{_default.config_dir} ({_default.config_dir_source}); config_dir applies "
                "only to the first call: use ConfigurationManager(config_dir) for another "
                "directory",
                file=os.path.abspath(config_dir),
            )
        return _default
