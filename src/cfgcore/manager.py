"""The configuration manager: layered environments, provenance, updates, hot reload.

>>> from cfgcore import get_config_manager
>>> manager = get_config_manager()
>>> config = manager.load_environment_config("staging")
>>> config["music_streaming"]["audio_quality"]["premium_bitrate"]
320
>>> manager.get("data_sources.kafka_cluster.consumer_configuration.group_id")
'ai-agent-staging-v2'

Layers, lowest first (later layers win; see :mod:`cfgcore.layering` for merge rules):

1. ``base`` file (``base.yaml``/``.yml``/``.json``/``.toml``) in the config directory;
2. the environment file (``staging.yaml``...);
3. the deployment profile (``CONFIG_PROFILE``: built-in or ``profiles/<name>.*``);
4. the geographic profile (``CONFIG_GEOGRAPHIC_PROFILE``: ``EU``, ``US``, ``APAC``...);
5. environment variables ``<PREFIX>__SECTION__KEY=value`` (prefix ``CFGCORE``);
6. runtime updates (:meth:`ConfigurationManager.update_config`, :meth:`set_active_config`).

Settings resolve as explicit argument, then environment variable, then default:
config directory (``CFGCORE_CONFIG_DIR``, default: the embedded music-streaming set),
environment (``CONFIG_ENVIRONMENT``, default ``development``), deployment profile
(``CONFIG_PROFILE``; ``default``/``none``/empty mean none), geographic profile
(``CONFIG_GEOGRAPHIC_PROFILE``), audit log file (``CFGCORE_AUDIT_LOG``).

Every activation (load, reload, update, set_active_config, apply_migrated_config)
builds the complete new state off to the side (files parsed, ``${VAR}`` substituted,
validated, flags compiled) and then swaps it in with one reference assignment, so a
reader sees the old state or the new one, never a mix. A failed activation changes
nothing: the previous state stays live and the reason is in :attr:`last_error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib.resources import files
from typing import Any

import msgspec

from cfgcore.config_utils import _REF as _ENV_REF  # the grammar the transformer substitutes
from cfgcore.config_utils import ConfigurationTransformer
from cfgcore.configuration_profiles import DeploymentProfile, Profile, ProfileManager
from cfgcore.errors import ConfigError, ConfigValidationError, Problem
from cfgcore.events import AuditLog, ConfigChangeEvent, EventBus
from cfgcore.layering import (
    DELETE,
    FORMATS,
    REPLACE,
    FrozenDict,
    Layer,
    Provenance,
    deep_merge,
    diff_trees,
    env_layer,
    explain,
    format_path,
    freeze,
    get_path,
    parse_text,
    split_path,
    thaw,
    type_compatible,
)

__all__ = [
    "ConfigChangeEvent",
    "ConfigSnapshot",
    "ConfigurationManager",
    "ENVIRONMENTS",
    "default_config_dir",
    "get_config_manager",
]

log = logging.getLogger("cfgcore.manager")

ENVIRONMENTS = ("development", "staging", "production", "test")
_FLAG_NAMES = ("flags.yaml", "flags.yml", "flags.json", "flags.msgpack")
_NO_PROFILE = {"", "default", "none", "off"}
_ENV_NAME = re.compile(r"^[a-z0-9_][a-z0-9_.\-]*$")  # a file stem: no paths, no hidden files
_ABSENT: Any = object()
_TYPED: Any = object()  # key of the cached typed view in a snapshot's read cache
_FLAT_CACHE_LIMIT = 65536


def default_config_dir() -> str:
    """The embedded music-streaming configuration set shipped with cfgcore."""
    return str(files("cfgcore").joinpath("defaults", "config"))


def _bundled_flags() -> str:
    return str(files("cfgcore").joinpath("defaults", "flags.yaml"))


@dataclass(frozen=True, slots=True)
class ConfigSnapshot:
    """One immutable, fully built configuration state (what the manager swaps in).

    ``config`` is the frozen merged tree; ``layers`` are kept for provenance;
    ``fingerprint`` is the (inode, size, mtime) of every input file, used by the
    hot-reload poll; ``sources`` the bytes digest of every input, used to skip no-op
    reloads; ``refs`` maps each key whose live value came from an environment variable
    to the reference that produced it (``${KAFKA_PASSWORD}``), so validation judges the
    reference rather than the secret it resolved to; ``env_names`` the environment
    variables the input files reference (their values are part of ``sources``).
    """

    config: FrozenDict
    layers: tuple[Layer, ...]
    version: int
    environment: str
    profile: str | None
    geographic_profile: str | None
    files: tuple[str, ...]
    flags_file: str | None
    fingerprint: tuple[Any, ...]
    sources: tuple[Any, ...]
    loaded_at: float
    refs: Mapping[tuple[Any, ...], str] = field(default_factory=dict, repr=False)
    env_names: frozenset[str] = field(default=frozenset(), repr=False)
    flat: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def runtime(self) -> Layer:
        """The runtime-updates layer (always the top one)."""
        return self.layers[-1]


_EMPTY = ConfigSnapshot(
    config=FrozenDict(),
    layers=(Layer("runtime", "runtime", {}),),
    version=0,
    environment="",
    profile=None,
    geographic_profile=None,
    files=(),
    flags_file=None,
    fingerprint=(),
    sources=(),
    loaded_at=0.0,
)


class _FallbackReport:
    """Stand-in for cfgcore.validation_engine's report when that module is absent."""

    def __init__(self, problems: list[Problem]) -> None:
        self.blocking = problems
        self.results = problems
        self.overall_valid = not problems


def _validation_engine() -> Callable[..., Any] | None:
    try:
        from cfgcore.validation_engine import validate_configuration
    except ImportError:
        return None
    return validate_configuration  # type: ignore[no-any-return]


class ConfigurationManager:
    """Loads, layers, validates, serves and hot-reloads one service's configuration.

    Reads are lock-free: :meth:`get` and mapping access (``manager["section"]``) read
    the current snapshot, a frozen tree. Changes (:meth:`update_config`, reloads,
    :meth:`set_active_config`) are serialised by one lock and swapped in atomically.

    Parameters resolve as argument, then environment variable, then default (see the
    module docstring). ``transforms`` are the :class:`ConfigurationTransformer` steps
    applied to every file layer (default: ``env_var_substitution`` only, so sizes and
    durations stay the strings the files contain). ``validate=False`` skips validation
    (not recommended outside tests). ``environ`` replaces ``os.environ`` for ``${VAR}``
    substitution and the ``CFGCORE__`` layer (tests).
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
        environ: Mapping[str, str] | None = None,
        debounce_ms: int | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self._environ = environ
        self.config_dir = os.path.abspath(
            os.fspath(config_dir)
            if config_dir is not None
            else env.get("CFGCORE_CONFIG_DIR") or default_config_dir()
        )
        self._default_environment = environment
        self._default_profile = profile
        self._default_geo = geographic_profile
        self.env_prefix = env_prefix
        self.transforms = tuple(transforms)
        self.transformer = ConfigurationTransformer(env=environ)
        self.transformer.transform({}, self.transforms)  # unknown step names fail here
        self.validate = validate
        # Resolved now: a later chdir (daemons do one) must not move the flags file.
        flags_arg = os.fspath(flags_file) if flags_file is not None else ""
        self._flags_file_arg = os.path.abspath(flags_arg) if flags_arg else None
        audit_path = audit_log if audit_log is not None else env.get("CFGCORE_AUDIT_LOG")
        self.audit = AuditLog(audit_path)
        self._audit_from_config = audit_path is None  # config_management.audit_log decides
        self.events = EventBus()
        self.debounce_ms = debounce_ms
        self.profiles = ProfileManager()
        self._lock = threading.RLock()
        self._snap: ConfigSnapshot = _EMPTY
        self._flags: Any = None
        self._watcher: Any = None
        self._async_watcher: Any = None
        self._async_task: asyncio.Task[None] | None = None
        self._async_stop: asyncio.Event | None = None
        self._debug = False
        self.last_error: ConfigError | None = None
        self._rejected_fingerprint: tuple[Any, ...] | None = None
        self._unchanged_fingerprint: tuple[Any, ...] | None = None
        _MANAGERS.add(self)

    # ------------------------------------------------------------------ reading (hot path)

    def get(self, key: str, default: Any = None) -> Any:
        """Value at dotted ``key`` (``"a.b.0.c"``; digits index lists), else ``default``.

        Never raises. Repeated keys are served from a per-snapshot cache, so a read
        costs one dict lookup after the first.
        """
        try:
            value = self._snap.flat[key]
        except (KeyError, TypeError):
            return self._get_slow(key, default)
        return default if value is _ABSENT else value

    def _get_slow(self, key: Any, default: Any) -> Any:
        try:
            snap = self._snap if self._snap.version else self._ensure_loaded()
            value = get_path(snap.config, split_path(key), _ABSENT)
            if value is not _ABSENT or len(snap.flat) < _FLAT_CACHE_LIMIT:
                snap.flat[key] = value
        except Exception:  # bad key types, failed lazy load: a read never raises
            return default
        return default if value is _ABSENT else value

    def __getitem__(self, key: str) -> Any:
        return self._current().config[key]

    def __contains__(self, key: object) -> bool:
        return key in self._current().config

    def __iter__(self) -> Iterator[str]:
        return iter(self._current().config)

    def __len__(self) -> int:
        return len(self._current().config)

    def keys(self) -> Any:
        """Top-level keys of the active configuration."""
        return self._current().config.keys()

    def items(self) -> Any:
        """Top-level items of the active configuration."""
        return self._current().config.items()

    def values(self) -> Any:
        """Top-level values of the active configuration."""
        return self._current().config.values()

    @property
    def config(self) -> FrozenDict:
        """The active configuration (read-only tree; :func:`cfgcore.layering.thaw` copies)."""
        return self._current().config

    @property
    def snapshot(self) -> ConfigSnapshot:
        """The active snapshot; hold it to read several keys from one consistent version."""
        return self._current()

    @property
    def version(self) -> int:
        """Increments with every activation (0 before the first load)."""
        return self._snap.version

    @property
    def environment(self) -> str:
        """Environment of the active configuration."""
        return self._current().environment

    def section(self, key: str, type: type[Any] | None = None) -> Any:
        """The sub-tree at ``key``; with ``type`` (a msgspec Struct, dataclass...) decoded.

        Decoding uses ``msgspec.convert``; keys the type does not declare are ignored
        by the typed view and stay in the configuration tree.
        """
        value = get_path(self._current().config, split_path(key))
        if type is None:
            return value
        try:
            return msgspec.convert(thaw(value), type=type, str_keys=True)
        except msgspec.ValidationError as exc:
            sub = _msgspec_path(exc)
            raise ConfigError([self._problem(f"{key}.{sub}" if sub else key, str(exc))]) from None

    def typed(self) -> Any:
        """The active configuration as :class:`cfgcore.schema.ConfigSchema` (msgspec Structs).

        A typed view of the known sections, decoded once per snapshot; keys the schema
        does not know are ignored by the view and stay in :attr:`config`.

        >>> typed = get_config_manager().typed()
        >>> typed.music_streaming.audio_quality.premium_bitrate
        320
        """
        from cfgcore.schema import ConfigSchema

        snap = self._current()
        view = snap.flat.get(_TYPED)
        if view is None:
            try:
                view = msgspec.convert(thaw(snap.config), type=ConfigSchema, str_keys=True)
            except msgspec.ValidationError as exc:
                raise ConfigError([self._problem(_msgspec_path(exc), str(exc))]) from None
            snap.flat[_TYPED] = view
        return view

    # ------------------------------------------------------------------ loading

    def load_environment_config(
        self,
        environment: str | None = None,
        *,
        profile: str | DeploymentProfile | None = None,
        geographic_profile: str | None = None,
    ) -> FrozenDict:
        """Build, validate and activate ``environment``'s configuration; return it.

        ``environment``/``profile``/``geographic_profile`` default to the constructor
        arguments, then ``CONFIG_ENVIRONMENT``/``CONFIG_PROFILE``/
        ``CONFIG_GEOGRAPHIC_PROFILE``, then ``development``/none/none. Runtime updates
        survive a reload of the same environment and are dropped when it changes.
        Raises :class:`ConfigError` (file, line and key path in the message); the
        previous configuration then stays active.
        """
        env, prof, geo = self._resolve(environment, profile, geographic_profile)
        with self._lock:
            previous = self._snap
            runtime = previous.runtime if previous.environment == env else None
            try:
                snap, flags = self._build(env, prof, geo, runtime, previous)
                events = self._activate(snap, flags, previous, "load")
            except ConfigError as exc:
                self.last_error = exc
                self._error_event(exc, "load")
                raise
        self._publish(events)
        return snap.config

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
        as the reference that produced it (``${KAFKA_SASL_PASSWORD}``,
        ``${CFGCORE__DB__PORT}``): the tree the manager's own validation judges, so a
        secret supplied the recommended way is not mistaken for a literal one.
        """
        env, prof, geo = self._resolve(environment, profile, geographic_profile)
        snap, _ = self._build(env, prof, geo, None, _EMPTY, with_flags=False)
        if keep_references:
            return _with_refs(snap.config, snap.refs)  # type: ignore[no-any-return]
        return snap.config

    def available_environments(self) -> list[str]:
        """Environment names with a file in the config directory (base excluded)."""
        names = set()
        with contextlib.suppress(OSError):
            for f in os.listdir(self.config_dir):
                stem, ext = os.path.splitext(f)
                if ext.lower() in FORMATS and stem != "base" and not f.startswith("."):
                    if not stem.startswith("flags"):
                        names.add(stem)
        return sorted(names)

    def reload(self, *, source: str = "reload") -> bool:
        """Re-read every input and activate it if it changed and is valid.

        Returns False when the new input was rejected (the previous configuration stays,
        :attr:`last_error` says why, listeners get an ``error`` event); True otherwise.
        Listeners run before this returns; for watcher-triggered reloads they run on the
        event bus's dispatcher thread instead, so a slow listener never delays a reload.
        """
        return self._reload(source, background=False)

    def _reload(self, source: str, *, background: bool) -> bool:
        with self._lock:
            previous = self._snap
            if not previous.version:
                try:
                    self._ensure_loaded()
                except ConfigError:  # last_error and the audit log have it
                    return False
                return True
            fingerprint = ()
            try:
                for _attempt in range(3):
                    # Taken before reading: if the input is rejected, the poll must retry
                    # as soon as the files differ from the bytes that were read, and a fix
                    # saved while we were reading already does.
                    fingerprint = self._fingerprint(previous.environment)
                    snap, flags = self._build(
                        previous.environment,
                        previous.profile,
                        previous.geographic_profile,
                        previous.runtime,
                        previous,
                        skip_if_unchanged=True,
                        fingerprint=fingerprint,
                    )
                    # A file that changed while we read it may have been read half-written;
                    # read again rather than activate a mix.
                    if snap is previous or self._fingerprint(snap.environment) == snap.fingerprint:
                        break
                events = [] if snap is previous else self._activate(snap, flags, previous, source)
            except ConfigError as exc:
                self.last_error = exc
                self._rejected_fingerprint = fingerprint
                events = [self._error_event(exc, source)]
                log.error(
                    "configuration reload rejected; keeping version %d: %s", previous.version, exc
                )
            ok = not (events and events[0].is_error)
        self._publish(events, background=background)
        return ok

    def set_profile(
        self, profile: str | DeploymentProfile | None = None, geographic_profile: str | None = None
    ) -> FrozenDict:
        """Switch the deployment and geographic profile layers of the active config.

        Validated and audited like any activation (source ``profile``); raises
        :class:`ConfigError` and changes nothing for an unknown or invalid profile.
        """
        with self._lock:
            previous = self._current()
            prof = _profile_name(profile)
            geo = _profile_name(geographic_profile)
            try:
                snap, flags = self._build(
                    previous.environment, prof, geo, previous.runtime, previous
                )
                events = self._activate(snap, flags, previous, "profile")
            except ConfigError as exc:
                self.last_error = exc
                self._error_event(exc, "profile")
                raise
        self._publish(events)
        return snap.config

    def _resolve(
        self, environment: Any, profile: Any, geographic_profile: Any
    ) -> tuple[str, str | None, str | None]:
        env_vars = os.environ if self._environ is None else self._environ
        env = environment or self._default_environment or env_vars.get("CONFIG_ENVIRONMENT")
        prof = profile if profile is not None else self._default_profile
        if prof is None:
            prof = env_vars.get("CONFIG_PROFILE")
        geo = geographic_profile if geographic_profile is not None else self._default_geo
        if geo is None:
            geo = env_vars.get("CONFIG_GEOGRAPHIC_PROFILE")
        geo = None if geo is None or str(geo).strip().lower() in _NO_PROFILE else str(geo)
        name = str(env or "development").strip().lower()
        if not _ENV_NAME.match(name):
            raise ConfigError(
                f"invalid environment name {name!r} (letters, digits, '_', '-' and '.')",
                file=self.config_dir,
            )
        return name, _profile_name(prof), geo

    def _ensure_loaded(self) -> ConfigSnapshot:
        if self._snap.version:
            return self._snap
        with self._lock:
            if not self._snap.version:
                self.load_environment_config()
            return self._snap

    def _current(self) -> ConfigSnapshot:
        snap = self._snap
        return snap if snap.version else self._ensure_loaded()

    # ------------------------------------------------------------------ building

    def _find_file(self, stem: str, required: bool) -> str | None:
        found = [
            os.path.join(self.config_dir, stem + ext)
            for ext in FORMATS
            if os.path.exists(os.path.join(self.config_dir, stem + ext))
        ]
        if len(found) > 1:
            raise ConfigError(
                f"ambiguous configuration: {', '.join(os.path.basename(f) for f in found)} "
                "all exist; keep one",
                file=self.config_dir,
            )
        if not found and required:
            available = self.available_environments()
            raise ConfigError(
                f"no configuration file for environment {stem!r} "
                f"(looked for {stem}.yaml/.yml/.json/.toml); "
                f"available: {', '.join(available) or 'none'}",
                file=self.config_dir,
            )
        return found[0] if found else None

    def flags_path(self) -> str | None:
        """The flags file served by :attr:`flags`, or None if there is none."""
        if self._flags_file_arg:
            return os.path.abspath(self._flags_file_arg)
        for name in _FLAG_NAMES:
            path = os.path.join(self.config_dir, name)
            if os.path.exists(path):
                return path
        if os.path.abspath(self.config_dir) == os.path.abspath(default_config_dir()):
            return _bundled_flags()
        return None

    def _profile_dir(self) -> str:
        return os.path.join(self.config_dir, "profiles")

    def _input_paths(self, env: str) -> list[str]:
        paths = [
            os.path.join(self.config_dir, stem + ext) for stem in ("base", env) for ext in FORMATS
        ]
        flags = self.flags_path()
        if flags:
            paths.append(flags)
        pdir = self._profile_dir()
        with contextlib.suppress(OSError):
            paths += [os.path.join(pdir, f) for f in sorted(os.listdir(pdir))]
        return paths

    def _fingerprint(self, env: str) -> tuple[Any, ...]:
        out = []
        for path in self._input_paths(env):
            try:
                st = os.stat(path)  # follows symlinks: a ConfigMap swap changes the inode
            except OSError:
                continue
            out.append((path, st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(out)

    def _build(
        self,
        env: str,
        profile: str | None,
        geo: str | None,
        runtime: Layer | None,
        previous: ConfigSnapshot,
        *,
        with_flags: bool = True,
        skip_if_unchanged: bool = False,
        fingerprint: tuple[Any, ...] | None = None,
    ) -> tuple[Any, Any]:
        """Build a complete new snapshot (and compiled flags) without activating it.

        ``fingerprint`` is the caller's :meth:`_fingerprint`, taken just before this call.
        """
        started = time.perf_counter()
        if fingerprint is None:
            fingerprint = self._fingerprint(env)  # before reading: a later change re-triggers
        base_file = self._find_file("base", required=False)
        env_file = self._find_file(env, required=True)
        texts: list[tuple[str, bytes]] = []
        for path in (base_file, env_file):
            if path is not None:
                texts.append((path, _read_bytes(path)))
        flags_file = self.flags_path() if with_flags else None
        flags_bytes = _read_bytes(flags_file) if flags_file else b""
        profiles_dir = self._profile_dir()
        env_vars = os.environ if self._environ is None else self._environ
        # Unchanged files reference the same variables as last time, so the previous
        # build's names decide whether this one can be skipped.
        sources = (
            tuple((p, hashlib.blake2b(b, digest_size=16).digest()) for p, b in texts),
            hashlib.blake2b(flags_bytes, digest_size=16).digest(),
            self._profile_sources(profiles_dir),
            self._env_digest(env_vars, previous.env_names),
            profile,
            geo,
        )
        if skip_if_unchanged and sources == previous.sources and previous.version:
            # Touched, not changed: the poll must not re-read everything on every tick.
            self._unchanged_fingerprint = fingerprint
            return previous, None
        if skip_if_unchanged and previous.version:
            _reject_truncated(texts, flags_file, flags_bytes, previous)

        problems: list[Problem] = []
        layers: list[Layer] = []
        refs: dict[tuple[Any, ...], tuple[str, Any]] = {}
        env_names: set[str] = set()
        for path, raw in texts:
            try:
                layer = _parse_layer(path, raw)
                layer.kind = "base" if path == base_file else "environment"
                found = _env_refs(layer.data)
                env_names.update(_ref_names(ref for _, ref in found))
                layer.data = self.transformer.transform(layer.data, self.transforms, file=path)
                for ref_path, ref in found:
                    refs[ref_path] = (ref, get_path(layer.data, ref_path, None))
                layers.append(layer)
            except ConfigError as exc:
                problems += exc.problems
        if problems:
            raise ConfigError(problems)

        if profile or geo:
            self._load_custom_profiles(profiles_dir)
        if profile:
            layers.append(self._profile_layer(self.profiles.get_deployment_profile(profile), refs))
        if geo:
            layers.append(self._profile_layer(self.profiles.get_geographic_profile(geo), refs))
        env_names.update(_ref_names(ref for ref, _ in refs.values()))  # profile files' too
        # Recorded with this build's names, which the next reload compares against.
        sources = (*sources[:3], self._env_digest(env_vars, env_names), *sources[4:])

        merged: dict[str, Any] = {}
        for layer in layers:
            merged = deep_merge(merged, layer.data)
        envl = env_layer(env_vars, self.env_prefix, merged)
        if envl.data:
            for ref_path, var in envl.env_vars.items():
                refs[ref_path] = ("${" + var + "}", get_path(envl.data, ref_path, None))
            layers.append(envl)
            merged = deep_merge(merged, envl.data)
        runtime = runtime if runtime is not None else Layer("runtime", "runtime", {})
        # A runtime update made through a reference (update_config(key, "${VAR}")) stays a
        # reference on every rebuild: validation must judge "${VAR}", not the secret.
        for ref_path, ref in previous.refs.items():
            status, value, _ = runtime.lookup(ref_path)
            if status == "set":
                refs[ref_path] = (ref, value)
        layers.append(runtime)
        if runtime.data:
            merged = deep_merge(merged, runtime.data)
        config = freeze(merged)
        live_refs = {
            p: ref for p, (ref, value) in refs.items() if get_path(config, p, _ABSENT) == value
        }

        compiled = None
        if flags_file and with_flags:
            compiled = self._compile_flags(flags_file, flags_bytes, previous)

        snap = ConfigSnapshot(
            config=config,
            layers=tuple(layers),
            version=previous.version + 1,
            environment=env,
            profile=profile,
            geographic_profile=geo,
            files=tuple(p for p, _ in texts),
            flags_file=flags_file,
            fingerprint=fingerprint,
            sources=sources,
            loaded_at=time.time(),
            refs=live_refs,
            env_names=frozenset(env_names),
        )
        if self._debug:
            log.debug(
                "built %s (profile=%s, geo=%s) from %s in %.2f ms",
                env,
                profile,
                geo,
                ", ".join(snap.files),
                (time.perf_counter() - started) * 1e3,
            )
        return snap, compiled

    def _env_digest(self, env_vars: Mapping[str, str], names: Container[str]) -> bytes:
        """Digest of the variables a build reads: the prefixed layer and ``${VAR}`` names."""
        prefix = self.env_prefix
        items = sorted((k, v) for k, v in env_vars.items() if k.startswith(prefix) or k in names)
        # A digest, not the values: environment variables carry secrets.
        return hashlib.blake2b(repr(items).encode(), digest_size=16).digest()

    def _profile_sources(self, directory: str) -> tuple[Any, ...]:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return ()
        out = []
        for name in names:
            path = os.path.join(directory, name)
            # Skip what cannot be read: _read_bytes reports OSError (a ConfigMap's "..data"
            # directory, say) as ConfigError, and only profile files are inputs.
            with contextlib.suppress(ConfigError):
                out.append((name, hashlib.blake2b(_read_bytes(path), digest_size=16).digest()))
        return tuple(out)

    def _load_custom_profiles(self, directory: str) -> None:
        # Rebuilt each time so a custom profile edited on disk is picked up on reload.
        manager = ProfileManager()
        manager.load_directory(directory)
        self.profiles = manager

    def _profile_layer(
        self, profile: Profile, refs: dict[tuple[Any, ...], tuple[str, Any]] | None = None
    ) -> Layer:
        kind = "deployment_profile" if profile.kind == "deployment" else "geographic_profile"
        file = None if profile.source == "builtin" else profile.source
        # Custom profile files are configuration too: ${VAR} works in them, and validation
        # judges the reference, as for the other files.
        raw = thaw(profile.overrides)
        data = self.transformer.transform(raw, self.transforms, file=file)
        if refs is not None:
            for ref_path, ref in _env_refs(raw):
                refs[ref_path] = (ref, get_path(data, ref_path, None))
        return Layer(name=profile.name, kind=kind, data=data, file=file)

    def _compile_flags(self, path: str, raw: bytes, previous: ConfigSnapshot) -> Any:
        from cfgcore.engine import Engine
        from cfgcore.snapshot import decode_snapshot, format_for

        engine = self._flags if self._flags is not None else Engine()
        if self._flags is None:
            self._flags = engine
        if (
            previous.version
            and previous.flags_file == path
            and previous.sources
            and previous.sources[1] == hashlib.blake2b(raw, digest_size=16).digest()
            and engine.snapshot() is not None
        ):
            return None  # unchanged: keep the compiled tables
        snapshot = decode_snapshot(raw, format_for(path), file=path)
        return engine.compile(snapshot, file=path)

    # ------------------------------------------------------------------ validation

    def _check(
        self,
        config: Mapping[str, Any],
        env: str,
        previous: ConfigSnapshot,
        layers: Sequence[Layer] = (),
        refs: Mapping[tuple[Any, ...], str] | None = None,
    ) -> list[Problem]:
        """Blocking problems of ``config``: the validation engine, or the type fallback.

        This is the one place that decides what "valid" means for every activation.
        """
        if not self.validate:
            return []
        engine = _validation_engine()
        if engine is not None:
            view = _with_refs(config, refs or {})
            try:
                report = engine(view, env)
            except Exception as exc:
                # A validator that crashes cannot vouch for the config: block, loudly.
                log.exception("validation engine failed")
                return [Problem("", f"validation engine failed: {type(exc).__name__}: {exc}")]
            return [
                self._problem(
                    r.key_path,
                    _strip_prefix(r.message, f"{r.key_path}: ")
                    + (f" (fix: {r.suggested_fix})" if r.suggested_fix else ""),
                    layers,
                    config,
                )
                for r in report.blocking
            ]
        if not previous.version:
            return []
        return [
            self._problem(
                path, f"expected {type(old).__name__}, got {type(new).__name__}", layers, config
            )
            for path, old, new in diff_trees(previous.config, config)
            if old is not None and new is not None and not type_compatible(old, new)
        ]

    def _problem(
        self,
        key: str,
        message: str,
        layers: Sequence[Layer] = (),
        config: Mapping[str, Any] | None = None,
    ) -> Problem:
        # Name the file and line that set the key, as far as the layers know it.
        file = line = None
        try:
            layers = layers or self._snap.layers
            prov = explain(list(layers), key, config if config is not None else self._snap.config)
            if prov.winner is not None:
                file, line = prov.winner.file, prov.winner.line
                if file is None and prov.winner.source:
                    file = f"<{prov.winner.source}>"
                if prov.winner.env_var:
                    message = f"{message} (set by environment variable {prov.winner.env_var})"
        except Exception:
            pass
        return Problem(path=str(key or ""), message=message, file=file, line=line)

    def validate_config(self, config: Mapping[str, Any] | None = None) -> Any:
        """Validate ``config`` (default: the active one) and return the report.

        The report is the validation engine's ``ValidationReport`` when
        :mod:`cfgcore.validation_engine` is installed; otherwise an object with
        ``overall_valid``, ``blocking`` and ``results`` from the type check. The engine
        validates even when the manager was built with ``validate=False`` (which only
        skips validation of activations).
        """
        snap = self._current()
        target = snap.config if config is None else config
        engine = _validation_engine()
        if engine is not None:
            return engine(_with_refs(target, snap.refs if config is None else {}), snap.environment)
        refs = snap.refs if config is None else None
        return _FallbackReport(self._check(target, snap.environment, snap, snap.layers, refs))

    # ------------------------------------------------------------------ activation

    def _activate(
        self, snap: ConfigSnapshot, flags: Any, previous: ConfigSnapshot, source: str
    ) -> list[ConfigChangeEvent]:
        """Validate ``snap`` and swap it (and ``flags``) in; return the change events."""
        problems = self._check(snap.config, snap.environment, previous, snap.layers, snap.refs)
        if problems:
            err = ConfigValidationError(problems)
            self.last_error = err
            raise err
        if flags is not None:
            self._flags.swap(flags)
        self._snap = snap  # the one assignment readers can observe
        self.last_error = None
        self._unchanged_fingerprint = None
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
                )
            )
        if not previous.version:
            return []  # a first load is not a change; listeners registered later see none
        events = [
            ConfigChangeEvent(
                path, old, new, source, snap.version, now, environment=snap.environment
            )
            for path, old, new in diff_trees(previous.config, snap.config)
        ]
        if flags is not None:
            # One event for the whole flag set; per-flag detail is the flag engine's business.
            events.append(
                ConfigChangeEvent(
                    snap.flags_file or "flags",
                    None,
                    None,
                    source,
                    snap.version,
                    now,
                    kind="flags",
                    environment=snap.environment,
                )  # fmt: skip
            )
        self.audit.record_all(events)
        return events

    def _publish(self, events: list[ConfigChangeEvent], *, background: bool = False) -> None:
        # Outside the lock: a listener may read, or even update, the configuration.
        if events:
            if background:
                self.events.emit_in_background(events)
            else:
                self.events.emit(events)

    def _error_event(self, exc: ConfigError, source: str) -> ConfigChangeEvent:
        files = {p.file for p in exc.problems if p.file}
        event = ConfigChangeEvent(
            ", ".join(sorted(files)),
            None,
            None,
            source,
            self._snap.version,
            time.time(),
            kind="error",
            error=exc,
            environment=self._snap.environment or None,
        )
        self.audit.record(event)
        return event

    # ------------------------------------------------------------------ changing

    def update_config(self, key_path: str, value: Any, *, source: str = "update_config") -> bool:
        """Set ``key_path`` to ``value`` at runtime, validated; True if applied.

        The new configuration is validated as a whole (type-compatible with the current
        value when no validation engine is installed); on failure nothing changes,
        :attr:`last_error` holds the reason and False is returned. Runtime updates sit on
        top of every other layer and survive hot reloads of the same environment.
        The manager's transformations apply to ``value`` as to files, so
        ``update_config("db.password", "${DB_PASSWORD}")`` reads the variable, and the
        value ``"__delete__"`` removes the key.
        """
        path = split_path(key_path)
        with self._lock:
            previous = self._current()
            try:
                if not path or any(p == "" for p in path):
                    raise ConfigError([Problem(str(key_path), "empty key path segment")])
                found = _env_refs(value, path)
                if found or self.transforms != ("env_var_substitution",):
                    wrapped: dict[Any, Any] = {}
                    node = wrapped
                    for seg in path[:-1]:
                        node = node.setdefault(seg, {})
                    node[path[-1]] = value
                    value = get_path(
                        self.transformer.transform(wrapped, self.transforms, file=f"<{source}>"),
                        path,
                    )
                config = _assoc(previous.config, path, freeze(value))
                runtime = _runtime_with(previous.runtime, {path: value}, source)
                refs = _refs_without(previous.refs, [path])
                refs.update(found)
                snap = replace(
                    previous,
                    config=config,
                    layers=(*previous.layers[:-1], runtime),
                    version=previous.version + 1,
                    loaded_at=time.time(),
                    refs=refs,
                    flat={},
                )
                events = self._activate(snap, None, previous, source)
            except ConfigError as exc:
                self.last_error = exc
                self.audit.record(self._failed_event(exc, source, key_path, value, previous))
                return False
        self._publish(events)
        return True

    def _failed_event(
        self, exc: ConfigError, source: str, key: str, value: Any, previous: ConfigSnapshot
    ) -> ConfigChangeEvent:
        old = get_path(previous.config, split_path(key), None)
        return ConfigChangeEvent(
            str(key),
            old,
            value,
            source,
            previous.version,
            time.time(),
            kind="error",
            error=exc,
            environment=previous.environment or None,
        )

    def set_active_config(
        self, config: Mapping[str, Any], *, source: str = "set_active_config"
    ) -> None:
        """Make ``config`` (a complete tree) the active configuration, validated.

        Differences from the current configuration are recorded as runtime overrides,
        so :meth:`explain` still points unchanged keys at their files. Raises
        :class:`ConfigValidationError` and changes nothing if validation fails.
        """
        if not isinstance(config, Mapping):
            raise ConfigError(f"set_active_config needs a mapping, got {type(config).__name__}")
        with self._lock:
            previous = self._current()
            new_tree = freeze(dict(config))
            overrides = _structural_diff(previous.config, new_tree)
            runtime = _runtime_with(previous.runtime, overrides, source)
            snap = replace(
                previous,
                config=new_tree,
                layers=(*previous.layers[:-1], runtime),
                version=previous.version + 1,
                loaded_at=time.time(),
                refs=_refs_without(previous.refs, list(overrides)),
                flat={},
            )
            try:
                events = self._activate(snap, None, previous, source)
            except ConfigError as exc:
                self._error_event(exc, source)  # records the audit entry itself
                raise
        self._publish(events)

    def apply_migrated_config(self, config: Mapping[str, Any]) -> None:
        """:meth:`set_active_config` for a configuration produced by a migration."""
        self.set_active_config(config, source="migration")

    # ------------------------------------------------------------------ provenance, flags

    def explain(self, key: str) -> Provenance:
        """Which layer and file:line (or environment variable, or runtime update) set
        ``key``, and what it overrides. ``str()`` of the result is a readable report."""
        snap = self._current()
        return explain(list(snap.layers), key, snap.config)

    @property
    def flags(self) -> Any:
        """The :class:`cfgcore.engine.Engine` serving this configuration's flags file
        (``flags.yaml``/``.json`` next to the config files; bundled flags for the
        embedded set). Reloaded and swapped together with the configuration."""
        self._current()
        if self._flags is None:
            from cfgcore.engine import Engine

            with self._lock:
                if self._flags is None:
                    self._flags = Engine()
                    self._flags.swap({"version": 1, "flags": {}})
        return self._flags

    engine = flags

    # ------------------------------------------------------------------ listeners

    def register_change_listener(self, listener: Any) -> Any:
        """Add a listener: ``f(event)`` or an object with ``[async] on_config_changed(event)``."""
        return self.events.register(listener)

    def unregister_change_listener(self, listener: Any) -> bool:
        """Remove a listener; False if it was not registered."""
        return self.events.unregister(listener)

    # ------------------------------------------------------------------ hot reload

    def enable_hot_reload(self, *, poll_interval: float = 0.5) -> None:
        """Watch the config directory in a background thread and reload on change.

        Idempotent. Survives ``os.fork()`` (restarted in the child). A rejected file
        keeps the previous configuration and emits an ``error`` event.
        """
        from cfgcore.hotreload import DEFAULT_DEBOUNCE_MS, DirectoryWatcher

        snap = self._current()
        with self._lock:
            if self._watcher is None:
                self._watcher = DirectoryWatcher(
                    self._watch_paths(snap),
                    self._on_files_changed,
                    poll=self._poll,
                    debounce_ms=self._debounce(DEFAULT_DEBOUNCE_MS),
                    poll_interval=poll_interval,
                    on_fork=self._after_fork_in_child,
                )
            watcher = self._watcher
        if not watcher.start():
            log.warning("file watcher on %s did not become ready in time", self.config_dir)

    def disable_hot_reload(self) -> None:
        """Stop the background watcher (if any)."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()

    @property
    def hot_reload_enabled(self) -> bool:
        """True while a watcher (thread or asyncio task) is running."""
        w = self._watcher
        return bool(w is not None and w.running) or (
            self._async_task is not None and not self._async_task.done()
        )

    async def start_file_watching(self, *, poll_interval: float = 0.5) -> None:
        """Watch the config directory from the running asyncio loop (``await`` it).

        Returns once the watch is established; reloads run in a worker thread so the
        loop never blocks, and async listeners run on this loop. As with
        :meth:`enable_hot_reload`, the files are also polled every ``poll_interval``
        seconds, and a failing watch is logged and restarted rather than given up.
        Not restarted after ``os.fork()``: a child runs its own loop and calls this there.
        """
        from cfgcore.hotreload import DEFAULT_DEBOUNCE_MS, AsyncDirectoryWatcher

        if self._async_task is not None and not self._async_task.done():
            return
        snap = await asyncio.to_thread(self._current)
        self.events.set_loop(asyncio.get_running_loop())
        watcher = AsyncDirectoryWatcher(
            self._watch_paths(snap),
            self._on_files_changed,
            poll=self._poll,
            debounce_ms=self._debounce(DEFAULT_DEBOUNCE_MS),
            poll_interval=poll_interval,
        )
        self._async_watcher = watcher
        ready = await watcher.start(wait=None)  # sets the task before we wait on it
        self._async_task, self._async_stop = watcher.task, watcher.stop_event
        if not ready and not await watcher.start():
            log.warning("file watcher on %s did not become ready in time", self.config_dir)

    async def stop_file_watching(self) -> None:
        """Stop the asyncio watcher started by :meth:`start_file_watching`."""
        watcher = self._async_watcher
        self._async_watcher = self._async_task = self._async_stop = None
        if watcher is not None:
            await watcher.stop()

    def _debounce(self, default: int) -> int:
        if self.debounce_ms:
            return self.debounce_ms
        configured = self.get("config_management.reload_debounce_ms")
        if isinstance(configured, int) and not isinstance(configured, bool) and configured > 0:
            return configured
        return default

    def _watch_paths(self, snap: ConfigSnapshot) -> list[str]:
        paths = {self.config_dir}
        if snap.flags_file:
            paths.add(os.path.dirname(snap.flags_file))
        return sorted(paths)

    def _on_files_changed(self, changes: Any) -> None:
        if self._debug:
            log.debug("file changes: %s", sorted(str(p) for _, p in changes))
        self._reload("reload", background=True)

    def _poll(self) -> None:
        snap = self._snap
        if not snap.version:
            return
        current = self._fingerprint(snap.environment)
        # Retry a rejected input only once it changes again, and skip a touched but
        # unchanged one, rather than re-reading every input on every poll.
        quiet = (snap.fingerprint, self._rejected_fingerprint, self._unchanged_fingerprint)
        if current not in quiet:
            self._reload("reload", background=True)

    def _after_fork_in_child(self) -> None:
        # Another thread may have held the lock when the parent forked; that thread does
        # not exist here, so the lock would stay held forever.
        self._lock = threading.RLock()
        # The parent's asyncio watcher belongs to a loop nobody runs here; forget it, so
        # hot_reload_enabled tells the truth and start_file_watching starts a new one.
        self._async_watcher = self._async_task = self._async_stop = None

    # ------------------------------------------------------------------ debugging

    def enable_debug_mode(self) -> dict[str, Any]:
        """Log loads, reloads and file events on ``cfgcore`` at DEBUG; return :meth:`debug_info`."""
        self._debug = True
        root = logging.getLogger("cfgcore")
        root.setLevel(logging.DEBUG)
        if not root.handlers and not logging.getLogger().handlers:
            root.addHandler(logging.StreamHandler())
        info = self.debug_info()
        log.debug("cfgcore debug mode: %s", info)
        return info

    def debug_info(self) -> dict[str, Any]:
        """What is live: directory, environment, profiles, layers, version, flags, watcher."""
        snap = self._current()
        from cfgcore._compat import IMPLEMENTATION

        return {
            "config_dir": self.config_dir,
            "environment": snap.environment,
            "profile": snap.profile,
            "geographic_profile": snap.geographic_profile,
            "version": snap.version,
            "layers": [
                {"name": layer.name, "kind": layer.kind, "file": layer.file}
                for layer in snap.layers
            ],
            "flags_file": snap.flags_file,
            "implementation": IMPLEMENTATION,
            "hot_reload": self.hot_reload_enabled,
            "last_error": str(self.last_error) if self.last_error else None,
        }

    def close(self) -> None:
        """Stop watchers (the thread and the asyncio one) and background listener threads."""
        self.disable_hot_reload()
        if self._async_watcher is not None:
            self._async_watcher.request_stop()  # from any thread
        self.events.close()


# ---------------------------------------------------------------------- helpers


def _reject_truncated(
    texts: list[tuple[str, bytes]], flags_file: str | None, flags_bytes: bytes, previous: Any
) -> None:
    """Refuse a reload that sees a previously non-empty input file empty or missing.

    ``open(path, "w")`` truncates before it writes, and some editors move the original
    away before writing the new file: a watcher (or a slow writer) can show us either
    moment, and the rest still parses, so without this check a save would briefly
    activate a configuration without that file. (To really remove a file, restart or
    call ``load_environment_config`` explicitly.)
    """
    empty = hashlib.blake2b(b"", digest_size=16).digest()
    before = dict(previous.sources[0]) if previous.sources else {}
    now = {path for path, _ in texts}
    for path in before:
        if path not in now:
            raise ConfigError(
                "file disappeared (being replaced?); keeping the previous configuration",
                file=path,
            )
    for path, raw in texts:
        if not raw.strip() and before.get(path, empty) != empty:
            raise ConfigError(
                "file is empty (a write in progress?); keeping the previous configuration",
                file=path,
            )
    if flags_file and not flags_bytes.strip() and previous.sources[1] != empty:
        raise ConfigError(
            "file is empty (a write in progress?); keeping the previous flags", file=flags_file
        )


def _structural_diff(
    old: Mapping[str, Any], new: Mapping[str, Any], prefix: tuple[Any, ...] = ()
) -> dict[tuple[Any, ...], Any]:
    """Overrides turning ``old`` into ``new``: changed values, and DELETE at the highest
    removed key (so a removed section stays removed when the files are re-read)."""
    out: dict[tuple[Any, ...], Any] = {}
    for key, value in old.items():
        path = (*prefix, key)
        if key not in new:
            out[path] = DELETE
        elif isinstance(value, Mapping) and isinstance(new[key], Mapping):
            out.update(_structural_diff(value, new[key], path))
        elif diff_trees(value, new[key]):
            out[path] = new[key]
    for key, value in new.items():
        if key not in old:
            out[(*prefix, key)] = value
    return out


def _env_refs(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], str]]:
    """Paths of string leaves holding a ``${...}`` reference, with the raw text."""
    out: list[tuple[tuple[Any, ...], str]] = []
    if isinstance(tree, dict):
        for k, v in tree.items():
            out += _env_refs(v, (*prefix, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out += _env_refs(v, (*prefix, str(i)))
    elif isinstance(tree, str) and "${" in tree:
        out.append((prefix, tree))
    return out


def _ref_names(texts: Any) -> set[str]:
    """Names of the environment variables that ``${...}`` references in ``texts`` read."""
    return {m["name"] for text in texts for m in _ENV_REF.finditer(text) if m["name"]}


def _with_refs(config: Mapping[str, Any], refs: Mapping[tuple[Any, ...], str]) -> Any:
    """``config`` with each ``refs`` path showing its ``${VAR}`` reference again.

    The validator gets the frozen tree itself (read-only, so it cannot change the live
    configuration, and no copy is paid); only the spines leading to references are
    copied. A reference inside a list falls back to one plain copy of the tree.
    """
    if not refs:
        return config
    out: Any = config
    for path, ref in refs.items():
        if not _all_maps(out, path):
            plain = thaw(config)
            for p, r in refs.items():
                _put(plain, p, r)
            return plain
        out = _assoc(out, path, ref)
    return out


def _all_maps(tree: Any, path: tuple[Any, ...]) -> bool:
    node = tree
    for seg in path[:-1]:
        if not isinstance(node, Mapping) or seg not in node:
            return False
        node = node[seg]
    return isinstance(node, Mapping) and path[-1] in node


def _put(tree: Any, path: tuple[Any, ...], value: Any) -> None:
    """Set ``path`` in a plain (thawed) tree if every parent exists."""
    node = tree
    for seg in path[:-1]:
        if isinstance(node, dict):
            node = node.get(seg)
        elif isinstance(node, list):
            try:
                node = node[int(seg)]
            except (ValueError, IndexError):
                return
        else:
            return
    last = path[-1]
    if isinstance(node, dict) and last in node:
        node[last] = value
    elif isinstance(node, list):
        with contextlib.suppress(ValueError, IndexError):
            node[int(last)] = value


def _refs_without(
    refs: Mapping[tuple[Any, ...], str], changed: Sequence[tuple[Any, ...]]
) -> dict[tuple[Any, ...], str]:
    """``refs`` minus every path at or below a changed path (its value is now literal)."""
    out = dict(refs)
    for path in changed:
        n = len(path)
        for p in list(out):
            if p[:n] == tuple(path):
                del out[p]
    return out


def _msgspec_path(exc: Exception) -> str:
    """``"... - at `$.a.b[0]`"`` -> ``"a.b.0"`` (msgspec names the failing path so)."""
    m = re.search(r"at `\$\.?([^`]*)`", str(exc))
    if not m:
        return ""
    return re.sub(r"\[(\d+)\]", r".\1", m.group(1)).strip(".")


def _strip_prefix(text: str, prefix: str) -> str:
    return text[len(prefix) :] if prefix and text.startswith(prefix) else text


def _profile_name(profile: Any) -> str | None:
    if profile is None:
        return None
    name = profile.value if isinstance(profile, DeploymentProfile) else str(profile)
    return None if name.strip().lower() in _NO_PROFILE else name.strip()


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=path) from None


def _parse_layer(path: str, raw: bytes) -> Layer:
    fmt = FORMATS[os.path.splitext(path)[1].lower()]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 (byte {exc.start})", file=path) from None
    data = parse_text(text, fmt, path)
    name = os.path.basename(path)
    return Layer(name=name, kind="file", data=data, file=path, text=text, fmt=fmt)


def _assoc(
    tree: Mapping[str, Any], path: tuple[Any, ...], value: Any, _above: tuple[Any, ...] = ()
) -> FrozenDict:
    """A new frozen tree with ``path`` set to ``value``; only the spine is copied."""
    head, rest = path[0], path[1:]
    if not rest:
        out = dict(tree)
        if isinstance(value, str) and value == DELETE:  # as a rebuild's merge will do
            out.pop(head, None)
        else:
            out[head] = value
        return FrozenDict(out)
    child = tree.get(head, _ABSENT)
    if child is _ABSENT or child is None:
        child = FrozenDict()
    if not isinstance(child, Mapping):
        raise ConfigError(
            [Problem(format_path((*_above, head)), f"is a {type(child).__name__}, not a section")]
        )
    out = dict(tree)
    out[head] = _assoc(child, rest, value, (*_above, head))
    return FrozenDict(out)


def _runtime_with(runtime: Layer, overrides: Mapping[tuple[Any, ...], Any], source: str) -> Layer:
    """A new runtime layer with ``overrides`` (path -> value or DELETE) recorded."""
    data = runtime.data
    sources = dict(runtime.sources)
    now = time.time()
    for path, value in overrides.items():
        data = _set_in(data, path, thaw(value))
        sources[tuple(path)] = (source, now)
    return Layer("runtime", "runtime", data, sources=sources)


def _set_in(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    # Values are recorded, not merged: a mapping set at runtime replaces the section
    # (what update_config promised is exactly the value given), DELETE stays a marker so
    # it deletes the key from the file layers below on every rebuild.
    out = dict(data)
    node = out
    for seg in path[:-1]:
        nxt = node.get(seg)
        if isinstance(nxt, dict):
            nxt = dict(nxt)
        else:  # absent: merge with the layers below; a marker or scalar: start afresh
            nxt = {} if nxt is None else {REPLACE: True}
        node[seg] = nxt
        node = nxt
    node[path[-1]] = {**value, REPLACE: True} if isinstance(value, dict) else value
    return out


# Reads like a read-only mapping of the active configuration (isinstance checks included).
Mapping.register(ConfigurationManager)

_MANAGERS: weakref.WeakSet[ConfigurationManager] = weakref.WeakSet()
_default: ConfigurationManager | None = None
_default_lock = threading.Lock()


def _reset_after_fork() -> None:
    global _default_lock
    _default_lock = threading.Lock()
    for manager in list(_MANAGERS):
        manager._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def get_config_manager(config_dir: str | os.PathLike[str] | None = None) -> ConfigurationManager:
    """The process-wide :class:`ConfigurationManager` (created on first call).

    ``config_dir`` applies only to the first call; later calls return the same manager.
    """
    global _default
    with _default_lock:
        if _default is None:
            _default = ConfigurationManager(config_dir)
        return _default
