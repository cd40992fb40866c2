"""The flag engine: load, compile and swap snapshots; evaluate on the hot path.

>>> engine = Engine.from_file("flags.yaml")                      # doctest: +SKIP
>>> ctx = engine.context({"user_id": "12345", "user_segment": "premium", "region": "EU"})
>>> engine.is_enabled("enhanced_anomaly_detection", ctx)        # doctest: +SKIP
True

:class:`Engine` is the live implementation's ``EngineCore`` (compiled, or the
pure-Python reference) plus loading. Evaluation methods come from the core and
never raise on bad data; loading and compiling raise
:class:`~cfgcore.errors.SnapshotError` listing every problem, and leave the live
snapshot untouched.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from functools import cache
from importlib.resources import files
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from cfgcore import _counting
from cfgcore._compat import USE_EXTENSIONS
from cfgcore._compat import impl as _live
from cfgcore._reclaim import retire_if_large
from cfgcore.compiler import Tables, compile_incremental, compile_snapshot
from cfgcore.details import EvaluationCounts
from cfgcore.errors import SnapshotError
from cfgcore.observability import debug as _debug
from cfgcore.runtime.forks import after_fork_in_child
from cfgcore.snapshot import (
    Format,
    Snapshot,
    decode_snapshot,
    problem_lines,
    read_snapshot_file,
    snapshot_from_dict,
)

_log = logging.getLogger(__name__)

# The engine holding each compiled snapshot installed in one (see _EngineAPI._own).
_owners: weakref.WeakKeyDictionary[Any, weakref.ref[Any]] = weakref.WeakKeyDictionary()
_owners_lock = threading.Lock()


@after_fork_in_child
def _renew_owners_lock() -> None:
    # A thread of the parent may have held it at the fork (building or swapping an
    # engine): the child's first engine or swap would wait for it forever.
    global _owners_lock
    _owners_lock = threading.Lock()


# multidict's pattern: type checkers always see the typed reference names (the
# compiled module's stub declares the same API); at run time the live implementation's.
if TYPE_CHECKING or not USE_EXTENSIONS:
    from cfgcore._eval_py import CompiledSnapshot, Context, ContextArg, EngineCore
else:
    from cfgcore._eval_py import ContextArg

    CompiledSnapshot = _live.CompiledSnapshot
    Context = _live.Context
    EngineCore = _live.EngineCore

__all__ = ["CompiledSnapshot", "Context", "ContextArg", "Engine", "bundled_flags_path"]

_E = TypeVar("_E", bound="_EngineAPI")


def bundled_flags_path() -> str:
    """Path of the example flag set shipped with cfgcore (the music-streaming catalog)."""
    # One segment per joinpath(): Traversable takes several only from Python 3.11.
    return str(files("cfgcore").joinpath("defaults").joinpath("flags.yaml"))


class _EngineAPI:
    """Loading and swapping, shared by both implementations' engines."""

    _impl: ModuleType
    # Replaced (copy-on-write) by add_swap_listener; () until the first listener.
    _swap_listeners: tuple[Callable[[Any, Any], None], ...] = ()
    _ledger: _counting.CountLedger
    # Copy-on-write tuples, () until the first add_hook / on_exposure.
    _hooks: tuple[Any, ...] = ()
    _exposure_callbacks: tuple[Callable[[str, str, Any], Any], ...] = ()
    _obs: Any = None  # the Observer, created on first use

    def __init__(self, compiled: CompiledSnapshot | None = None) -> None:
        if compiled is not None:
            compiled = self._own(compiled)
        super().__init__(compiled)  # type: ignore[call-arg]
        if compiled is None:
            self._own(self.snapshot())  # type: ignore[attr-defined]
        self._ledger = _counting.CountLedger(self.snapshot())  # type: ignore[attr-defined]
        _counting.register(self, self._ledger)
        if _debug.enabled():
            self._refresh_observer()

    @classmethod
    def from_snapshot(
        cls: type[_E], snapshot: Snapshot | Mapping[str, Any], *, file: str | None = None
    ) -> _E:
        """An engine serving ``snapshot`` (a decoded Snapshot or plain data)."""
        engine = cls()
        engine.swap(snapshot, file=file)
        return engine

    @classmethod
    def from_bytes(
        cls: type[_E], data: bytes | str, format: Format = "yaml", *, file: str | None = None
    ) -> _E:
        """An engine serving a snapshot given as YAML, JSON or MessagePack bytes (with
        ``file``, its problems name their lines in that text)."""
        with problem_lines(data, format, file):
            return cls.from_snapshot(decode_snapshot(data, format, file=file), file=file)

    @classmethod
    def from_file(cls: type[_E], path: str | os.PathLike[str], format: Format | None = None) -> _E:
        """An engine serving the snapshot file at ``path`` (format from the extension)."""
        name = os.fspath(path)
        data, fmt = read_snapshot_file(name, format)
        with problem_lines(data, fmt, name):  # compile problems name their lines too
            return cls.from_snapshot(decode_snapshot(data, fmt, file=name), file=name)

    @classmethod
    def bundled(cls: type[_E]) -> _E:
        """An engine serving the bundled example flags."""
        return cls.from_file(bundled_flags_path())

    def compile(
        self,
        snapshot: Snapshot | Mapping[str, Any] | Tables,
        *,
        file: str | None = None,
        previous: CompiledSnapshot | Tables | None = None,
    ) -> CompiledSnapshot:
        """Compile without activating; raise SnapshotError listing every problem.

        ``previous`` (a compiled snapshot or its tables, e.g. ``engine.snapshot()``)
        makes the compile incremental: only flags that differ from the snapshot it was
        compiled from are compiled again (see ``compiler.compile_incremental``).
        """
        if isinstance(snapshot, Tables):
            tables = snapshot
        else:
            if not isinstance(snapshot, Snapshot):
                if not isinstance(snapshot, Mapping):
                    raise SnapshotError(
                        f"expected a Snapshot or a mapping, got {type(snapshot).__name__}",
                        file=file,
                    )
                snapshot = snapshot_from_dict(snapshot, file=file)
            prev_tables = getattr(previous, "tables", previous)
            if isinstance(prev_tables, Tables):
                tables = compile_incremental(prev_tables, snapshot, file=file)
            else:
                tables = compile_snapshot(snapshot, file=file)
        return self._impl.CompiledSnapshot(tables)  # type: ignore[no-any-return]

    #: What an engine serving a flag store serves (``manager.flags``, ``dynamic.engine``):
    #: set by its owner (:class:`cfgcore.runtime.flags.LiveFlags`), which alone swaps it.
    _served_by: str | None = None
    #: Set when that owner closed (its store unfollowed): the evaluation totals no longer
    #: count its flags as served, so their series go once idle (``retain``).
    _retired: bool = False
    #: Set on a configuration manager's placeholder (served while its directory had no
    #: flags file) that a flags file appearing later could not be swapped into: why it
    #: stays empty (:mod:`cfgcore.config.flags`; health and the OpenFeature provider).
    _superseded: str | None = None

    def swap(
        self,
        new: Snapshot | Mapping[str, Any] | Tables | CompiledSnapshot,
        *,
        file: str | None = None,
    ) -> CompiledSnapshot:
        """Activate ``new`` (Snapshot, plain data, Tables or a compiled snapshot) in one
        assignment and return the previous compiled snapshot. On any error the live
        snapshot stays as it was.

        Each engine owns its compiled snapshots: their version, clock and evaluation
        counters are the engine's. A compiled snapshot that another engine holds (one
        it serves or served: ``other.snapshot()``) is installed as a private copy
        compiled from the same tables, which ``snapshot()`` then returns; the other
        engine's is left as it was.

        An engine that serves a flag store (a manager's) raises ``PermissionError``: its
        flags change only through the store (the managers' change APIs, or the file),
        which is checked by the access policy, audited and seen by every process.

        The older snapshot of a large engine (2,000 flags or more:
        :data:`cfgcore._reclaim.LARGE_FLAGS`) is freed by the ``cfgcore-reclaim`` thread
        a piece at a time once nothing holds it, the returned reference included: a
        caller that drops it right away (``engine.swap(new)``) no longer frees millions
        of table items in one call on its own thread while request threads wait. One
        kept stays whole and usable; after 5 s the reclaimer leaves it to its holder."""
        if self._served_by is not None:
            raise PermissionError(
                f"{self._served_by}: this engine serves a manager's flags: change them "
                "through the flag store (set_feature_flag, create_ab_test, ... or the file), "
                "not Engine.swap, which the access policy, the audit log and the other "
                "processes would never see"
            )
        old = self._swap(new, file=file)
        retire_if_large(old)
        return old

    def _swap(
        self,
        new: Snapshot | Mapping[str, Any] | Tables | CompiledSnapshot,
        *,
        file: str | None = None,
    ) -> CompiledSnapshot:
        """:meth:`swap` for the engine's owner."""
        if isinstance(new, self._impl.CompiledSnapshot):
            compiled = new
        else:
            compiled = self.compile(new, file=file)  # type: ignore[arg-type]
        compiled = self._own(compiled)
        ledger = self._ledger
        compiled.counting = ledger.counting
        old = self._install(compiled)  # type: ignore[attr-defined]
        ledger.installed(old, compiled)
        for listener in self._swap_listeners:
            # A listener's failure must not undo or block a swap that already happened.
            try:
                listener(old, compiled)
            except Exception:
                _log.exception("swap listener %r failed", listener)
        return old  # type: ignore[no-any-return]

    def _own(self, compiled: Any) -> Any:
        """``compiled``, claimed for this engine; or, when another engine living holds
        it, a copy compiled from its tables (claimed). Installing one object in two
        engines would share its version, clock and counters: the second engine's swap
        would rewrite the first's version and clock, and each count the other's checks."""
        if not isinstance(compiled, self._impl.CompiledSnapshot):
            return compiled  # the core's _install refuses it
        with _owners_lock:
            ref = _owners.get(compiled)
            holder = ref() if ref is not None else None
            if holder is not None and holder is not self:
                compiled = self._impl.CompiledSnapshot(compiled.tables)
            _owners[compiled] = weakref.ref(self)
        return compiled

    def add_swap_listener(self, listener: Callable[[Any, Any], None]) -> Callable[[], None]:
        """Call ``listener(old, new)`` (compiled snapshots) after every :meth:`swap`, on
        the swapping thread; returns a function that removes it. Used by adapters that
        announce changes (the OpenFeature provider's configuration-changed event)."""
        # Copy-on-write tuple: swap() iterates it without a lock while others subscribe.
        self._swap_listeners = (*self._swap_listeners, listener)

        def remove() -> None:
            self._swap_listeners = tuple(f for f in self._swap_listeners if f is not listener)

        return remove

    def take_evaluation_counts(self) -> EvaluationCounts:
        """Read and reset what this engine evaluated since the previous take.

        Counts per ``(flag_key, variant, reason)`` and per error code (see
        :class:`~cfgcore.details.EvaluationCounts`), from the live snapshot and from every
        snapshot swapped out since (requests that pinned one keep counting into it).
        Each snapshot's counters are read and reset in one step that no evaluation on
        another thread can split (GIL builds). Within cfgcore only
        :func:`cfgcore.observability.evaluations.evaluation_totals` calls this; a direct
        caller takes the counts away from those totals.
        """
        return self._ledger.take()

    def set_counting(self, enabled: bool) -> None:
        """Count evaluations (the default) or not: with False, evaluations on this
        engine's snapshots, live and retired, add nothing (to measure what counting costs)."""
        self._ledger.set_counting(bool(enabled), [self.snapshot()])  # type: ignore[attr-defined]

    def add_hook(self, hook: Any) -> Callable[[], None]:
        """Run ``hook`` around every single-flag evaluation; returns a function that
        removes it.

        OpenFeature's hook shape: any of ``before(hook_context, hints)`` (may return
        attributes to merge over the context), ``after(hook_context, details, hints)``,
        ``error(hook_context, exception, hints)`` and ``finally_after(hook_context,
        details, hints)``. A hook never makes an evaluation raise (see
        :mod:`cfgcore.observability.hooks`). With no hook, no exposure callback and debug
        mode off, evaluation costs what it did without them.
        """
        self._hooks = (*self._hooks, hook)
        self._refresh_observer()

        def remove() -> None:
            self._hooks = tuple(h for h in self._hooks if h is not hook)
            self._refresh_observer()

        return remove

    def on_exposure(self, callback: Callable[[str, str, Any], Any]) -> Callable[[], None]:
        """Call ``callback(flag_key, variant, context)`` the first time a unit (the value
        of the attribute the flag buckets by) is served a variant by a rollout, split or
        gate; returns a function that removes it. Deduplicated per (flag, unit, variant)
        in bounded memory; exceptions are swallowed and counted in
        :attr:`exposure_errors` (see :mod:`cfgcore.observability.hooks`).
        """
        self._exposure_callbacks = (*self._exposure_callbacks, callback)
        self._refresh_observer()

        def remove() -> None:
            self._exposure_callbacks = tuple(
                c for c in self._exposure_callbacks if c is not callback
            )
            self._refresh_observer()

        return remove

    @property
    def exposure_errors(self) -> int:
        """Exceptions raised by exposure callbacks (swallowed)."""
        return self._obs.exposure_errors if self._obs is not None else 0

    @property
    def hook_errors(self) -> int:
        """Exceptions raised by hooks (logged; the evaluation went on or gave its default)."""
        return self._obs.hook_errors if self._obs is not None else 0

    def _refresh_observer(self) -> None:
        """Route evaluations through the observed path while hooks, exposure callbacks
        or debug mode are on, and straight to the compiled snapshot otherwise."""
        debug_on = _debug.enabled()
        if not (self._hooks or self._exposure_callbacks or debug_on):
            self._observer = None
            return
        if self._obs is None:
            from cfgcore.observability.hooks import Observer

            self._obs = Observer()
        self._obs.configure(self._hooks, self._exposure_callbacks, debug_on)
        self._observer = self._obs

    def load_file(
        self, path: str | os.PathLike[str], format: Format | None = None
    ) -> CompiledSnapshot:
        """Decode, compile and activate a snapshot file; the old one stays on error."""
        name = os.fspath(path)
        data, fmt = read_snapshot_file(name, format)
        with problem_lines(data, fmt, name):
            return self.swap(decode_snapshot(data, fmt, file=name), file=name)

    @property
    def source(self) -> Snapshot | None:
        """The decoded snapshot the live tables were compiled from."""
        return self.snapshot().tables.source  # type: ignore[attr-defined, no-any-return]

    @property
    def implementation(self) -> str:
        """``"c"`` or ``"py"``: which evaluator this engine runs."""
        return self._impl.IMPLEMENTATION  # type: ignore[no-any-return]


@cache
def engine_class(impl: ModuleType) -> type:
    """The Engine class for one evaluator implementation (tests use both)."""
    if impl is _live:
        return Engine
    return type(
        "Engine",
        (_EngineAPI, impl.EngineCore),
        {"_impl": impl, "__module__": __name__, "__doc__": _EngineAPI.__doc__},
    )


class Engine(_EngineAPI, EngineCore):
    """Feature-flag engine: one live compiled snapshot, swapped atomically.

    Evaluation (never raises on bad data): ``is_enabled(key, ctx)``,
    ``variant(key, ctx)``, ``value(key, ctx, default)``, ``evaluate(key, ctx,
    default)`` (details), ``evaluate_all(ctx)``; ``ctx`` is a dict or a
    :meth:`context`. Loading: :meth:`from_file`, :meth:`from_bytes`,
    :meth:`from_snapshot`, :meth:`swap`, :meth:`load_file`. Pin one version for a
    request with :meth:`snapshot`.
    """

    _impl = _live


# The compiled evaluator's per-request methods, as C method descriptors of Engine itself:
# CPython then calls engine.is_enabled(...) through its specialised path (see
# cfgcore._eval._own_methods). The reference evaluator's methods are Python functions.
if hasattr(_live, "_own_methods"):
    _live._own_methods(
        Engine, ("is_enabled", "variant", "value", "evaluate", "evaluate_all", "context")
    )
