"""The read side of the configuration manager: lock-free reads of the live snapshot.

:class:`ConfigView` is the base of :class:`~cfgcore.config.manager.ConfigurationManager`:
``manager.get("a.b")``, ``manager["a"]``, ``section``, ``typed``, ``explain`` and
``debug_info`` read whichever snapshot is live (one reference, swapped atomically by the
change path), so they never take a lock and never raise on a bad key.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import msgspec

from cfgcore._env import NO_EXTENSIONS, extension_missing
from cfgcore._msgspec_errors import msgspec_problem
from cfgcore.config import checks
from cfgcore.config.provenance import Provenance, explain
from cfgcore.config.state import ConfigSnapshot
from cfgcore.config.tree import (
    FrozenDict,
    did_you_mean,
    format_path,
    get_path,
    key_paths,
    split_path,
    thaw,
)
from cfgcore.errors import ConfigError, ConfigKeyError, Problem

__all__ = ["ConfigView"]

log = logging.getLogger("cfgcore.manager")


class PyLiveReads:
    """``manager[key]`` and ``manager.get(key)`` in Python: the reference for
    ``cfgcore._tree.LiveReads``, which serves both without a Python frame."""

    _snap: ConfigSnapshot

    def _ensure_loaded(self) -> ConfigSnapshot:
        raise NotImplementedError

    def _get_slow(self, key: Any, default: Any) -> Any:
        raise NotImplementedError

    def get(self, key: str | tuple[Any, ...] | list[Any], default: Any = None) -> Any:
        """Value at dotted ``key`` (``"a.b.0.c"``; digits index lists), else ``default``.
        A tuple or list of segments names a key that holds a dot:
        ``get(("loggers", "uvicorn.access", "level"))``, as does the text cfgcore shows
        for that path: ``get('loggers["uvicorn.access"].level')``.

        Never raises. Repeated keys are served from a per-snapshot cache, so a read
        costs one dict lookup after the first.
        """
        if type(key) is not str and not _cacheable(key):
            # Only a key the cache may hold is looked up in it: the cache compares with
            # ==, and ("l", True) found the answer cached for ("l", 1) (the list's item,
            # where True names none), or a str subclass's own __eq__ another key's.
            return self._get_slow(key, default)
        try:
            value = self._snap.flat[key]
        except Exception:  # missing, or a key that cannot be hashed: the slow path
            return self._get_slow(key, default)
        return default if value is ABSENT else value

    def __getitem__(self, key: str) -> Any:
        snap = self._snap  # _current() inlined: this is the request path
        if not snap.version:
            snap = self._ensure_loaded()
        try:
            return snap.config[key]
        except KeyError:
            raise self._missing(key) from None

    def _missing(self, key: Any) -> KeyError:
        """The KeyError for a top-level key that is not set (subclasses name it)."""
        return KeyError(key)


if TYPE_CHECKING or NO_EXTENSIONS:
    LiveReads = PyLiveReads
    ABSENT: Any = object()
else:
    try:
        from cfgcore._tree import ABSENT, LiveReads
    except ImportError as exc:  # the Python reads, said once (cfgcore._env)
        extension_missing("cfgcore._tree", exc)
        LiveReads = PyLiveReads
        ABSENT = object()

_TYPED: Any = object()  # key of the cached typed view in a snapshot's read cache
_FLAT_CACHE_LIMIT = 65536


class ConfigView(LiveReads):
    """Reads of the live configuration snapshot (``_snap``); see the module docstring."""

    _snap: ConfigSnapshot
    config_dir: str
    config_dir_source: str
    last_error: ConfigError | None

    builder: Any

    @property
    def hot_reload_enabled(self) -> bool:
        raise NotImplementedError

    def _ensure_loaded(self) -> ConfigSnapshot:
        raise NotImplementedError

    def _missing(self, key: Any) -> KeyError:
        """``manager["nope"]``: a :class:`ConfigKeyError` (a KeyError) naming the key,
        the environment and the closest keys that are set."""
        snap = self._snap if self._snap.version else self._ensure_loaded()
        return missing_key(key, snap, top_level=True)

    def flag_store_url(self) -> str | None:
        raise NotImplementedError

    def _current(self) -> ConfigSnapshot:
        snap = self._snap
        return snap if snap.version else self._ensure_loaded()

    def _get_slow(self, key: Any, default: Any) -> Any:
        try:
            snap = self._snap if self._snap.version else self._ensure_loaded()
            value = get_path(snap.config, split_path(key), ABSENT)
            if (value is not ABSENT or len(snap.flat) < _FLAT_CACHE_LIMIT) and _cacheable(key):
                snap.flat[key] = value
        except Exception:  # bad key types, failed lazy load: a read never raises
            return default
        return default if value is ABSENT else value

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
        """The active configuration (read-only tree; :func:`cfgcore.config.tree.thaw` copies)."""
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

    def section(self, key: str | tuple[Any, ...] | list[Any], type: type[Any] | None = None) -> Any:
        """The sub-tree at ``key`` (dotted, or a tuple/list of segments as :meth:`get`
        takes); with ``type`` (a msgspec Struct, dataclass...) decoded with
        ``msgspec.convert`` (keys the type does not declare are ignored)."""
        snap = self._current()
        try:
            value = get_path(snap.config, split_path(key))
        except (KeyError, TypeError, IndexError, ValueError):
            raise missing_key(key, snap) from None
        if type is None:
            return value
        plain = thaw(value)
        try:
            return msgspec.convert(plain, type=type, str_keys=True)
        except msgspec.ValidationError as exc:
            where = format_path(split_path(key))
            raise ConfigError([_typed_problem(exc, where, plain, snap, type)]) from None

    def typed(self) -> Any:
        """The active configuration as :class:`cfgcore.config.schema.ConfigSchema`.

        A typed view of the known sections, decoded once per snapshot; keys the schema
        does not know are ignored by the view and stay in :attr:`config`.

        >>> typed = get_config_manager().typed()
        >>> typed.music_streaming.audio_quality.premium_bitrate
        320
        """
        from cfgcore.config.schema import ConfigSchema

        snap = self._current()
        view = snap.flat.get(_TYPED)
        if view is None:
            plain = thaw(snap.config)
            try:
                view = msgspec.convert(plain, type=ConfigSchema, str_keys=True)
            except msgspec.ValidationError as exc:
                raise ConfigError([_typed_problem(exc, "", plain, snap, ConfigSchema)]) from None
            snap.flat[_TYPED] = view
        return view

    def explain(self, key: str | tuple[Any, ...] | list[Any]) -> Provenance:
        """Which layer and file:line (or environment variable, or runtime update) set
        ``key`` (dotted, or a tuple/list of segments as :meth:`get` takes), and what it
        overrides. ``str()`` of the result is a readable report."""
        snap = self._current()
        try:
            return explain(list(snap.layers), key, snap.config)
        except Exception:  # a key of no path form (5, None), an unhashable segment
            return Provenance(key=_shown_key(key), found=False, value=None, winner=None, chain=())

    def enable_debug_mode(self) -> dict[str, Any]:
        """Log every activation step on ``cfgcore`` at DEBUG and return :meth:`debug_info`.

        Each load, reload and update then tells the files it read, the layers it merged
        (lowest first), the validation verdict and the swap with every changed key, old
        and new values redacted (:mod:`cfgcore.config.debuglog`); file-watcher events
        too. Setting the ``cfgcore`` logger to DEBUG yourself does the same; above DEBUG
        none of it is computed. It also turns on the flag engines' debug mode
        (:func:`cfgcore.enable_debug_mode`: one line per evaluation, until
        ``cfgcore.disable_debug_mode()``).
        """
        from cfgcore.observability.debug import enable_debug_mode

        enable_debug_mode()
        root = logging.getLogger("cfgcore")
        root.setLevel(logging.DEBUG)
        if not root.handlers and not logging.getLogger().handlers:
            root.addHandler(logging.StreamHandler())
        info = self.debug_info()
        log.debug("cfgcore debug mode: %s", info)
        return info

    def debug_info(self) -> dict[str, Any]:
        """What is live: directory (and how it was chosen), environment, profiles,
        layers, version, flags, the ``.env`` file read, watcher."""
        snap = self._current()
        from cfgcore._compat import IMPLEMENTATION

        return {
            "config_dir": self.config_dir,
            "config_dir_source": self.config_dir_source,
            "environment": snap.environment,
            "profile": snap.profile,
            "geographic_profile": snap.geographic_profile,
            "version": snap.version,
            "layers": [
                {"name": layer.name, "kind": layer.kind, "file": layer.file}
                for layer in snap.layers
            ],
            "flags_file": snap.flags_file,
            # The .env file the live version read (builder: sources' last entry).
            "env_file": _env_file_read(snap),
            "flag_store": self.flag_store_url(),
            "implementation": IMPLEMENTATION,
            "hot_reload": self.hot_reload_enabled,
            "last_error": str(self.last_error) if self.last_error else None,
        }


def _env_file_read(snap: ConfigSnapshot) -> str | None:
    found = snap.sources[6] if len(snap.sources) > 6 else None
    return found[0] if found and found[1] != "missing" else None


def missing_key(key: Any, snap: ConfigSnapshot, *, top_level: bool = False) -> ConfigKeyError:
    """The error for a key path that is not set: names it, its environment and the
    closest key paths that are set. With ``top_level`` (``manager[key]``, which reads
    one top-level key), a key path that is set says so and how to read it, instead of
    "not set" with itself as the closest key."""
    shown = key if isinstance(key, str) else _shown_path(key)
    # Named after the environment's file: the place to add the key.
    file = snap.files[-1] if snap.files else None
    if top_level and _is_set(snap.config, key):
        message = (
            f"a key path, and manager[...] reads one top-level key: "
            f"use get({shown!r}), or one [...] per key"
        )
        return ConfigKeyError([Problem(shown, message, file=file)])
    hint = did_you_mean(shown, key_paths(snap.config))
    where = f"environment {snap.environment!r}" if snap.environment else "the configuration"
    return ConfigKeyError([Problem(shown, f"not set in {where}{hint}", file=file)])


def _cacheable(key: Any) -> bool:
    """Whether ``get``'s read cache may keep ``key``: a ``str``, or a tuple of ``str``
    segments (those types exactly). The cache compares keys with ``==``, for which
    ``("l", True)``, ``("l", 1.0)``, ``("l", Decimal(1))`` and ``("l", 1)`` are one key:
    whichever was read first had its answer served for the others (``True`` indexes no
    list). A tuple holding an int is therefore read by the slow path every time (its
    text form, ``"l.1"``, is cached), so that the compiled read, which looks any key up
    in the cache, finds no entry such a key could equal."""
    if type(key) is str:
        return True
    return type(key) is tuple and all(type(seg) is str for seg in key)


def _shown_path(key: Any) -> str:
    """A key path given as segments, as messages show it (never raises)."""
    try:
        return format_path(split_path(key))
    except Exception:
        return repr(key)


def _shown_key(key: Any) -> str:
    """:func:`_shown_path`, or the key's type where even its ``repr`` raises."""
    try:
        return _shown_path(key)
    except Exception:
        return f"<{type(key).__name__}>"


def _is_set(config: Any, key: Any) -> bool:
    """Whether ``key`` read as a key path (``"a.b"``, a tuple) names a value."""
    try:
        path = split_path(key)
        return bool(path) and get_path(config, path, ABSENT) is not ABSENT
    except Exception:  # a key of no path form (an int, an unhashable segment)
        return False


def _typed_problem(
    exc: msgspec.ValidationError, where: str, plain: Any, snap: ConfigSnapshot, typ: Any
) -> Problem:
    """The problem msgspec found decoding ``plain`` (the value at the rendered key path
    ``where``) as ``typ``: its key path (the keys of a mapping named, not ``[...]``), and
    the file and line that set it."""
    found = msgspec_problem(exc, None, prefix=where, data=plain, type_=typ)
    return checks.problem(found.path, found.message, snap.layers, snap.config)
