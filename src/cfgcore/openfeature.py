"""An OpenFeature provider that answers from a cfgcore :class:`~cfgcore.engine.Engine`.

>>> from openfeature import api                                   # doctest: +SKIP
>>> from cfgcore.openfeature import CfgcoreProvider               # doctest: +SKIP
>>> provider = CfgcoreProvider(cfgcore.Engine.from_file("flags.yaml"))  # doctest: +SKIP
>>> api.set_provider_and_wait(provider)                            # doctest: +SKIP
>>> client = api.get_client()                                     # doctest: +SKIP
>>> client.get_boolean_value("enhanced_anomaly_detection", False,
...     EvaluationContext("user-1", {"user_segment": "premium", "region": "EU"}))  # doctest: +SKIP

Needs the ``openfeature-sdk`` package (``pip install 'cfgcore[openfeature]'``).

Semantics of the mapping, which the OpenFeature specification leaves to providers:

* The evaluation context becomes a cfgcore context: its attributes as they are, plus
  ``targeting_key`` (one of the default bucketing attributes, after ``user_id``).
  Pass ``context=`` to map it differently (an importer's own context function).
* The served value must have the requested type: a bool for boolean, a str for
  string, an int (not a bool) for integer, an int or float for float (returned as a
  float), a mapping or array for object. Anything else is ``TYPE_MISMATCH`` with the
  caller's default. Objects come back as plain, mutable ``dict``/``list`` copies.
* A variant whose value is null (an imported flag with no default variant, a flagd
  flag switched off) resolves to the caller's default with no variant and reason
  DEFAULT (DISABLED for a switched-off flag), as flagd does; a float resolution
  returns an integer default as a float, which the SDK's type check requires.
* Reasons are cfgcore's (STATIC, DEFAULT, TARGETING_MATCH, SPLIT, DISABLED, ERROR and
  the non-standard PREREQUISITE_FAILED); error codes are OpenFeature's.
* Flag metadata is the snapshot's ``metadata`` overlaid with the flag's ``metadata``,
  keeping only the scalar entries OpenFeature allows (bool, int, float, str).
* Every snapshot swap on the engine emits ``PROVIDER_CONFIGURATION_CHANGED`` with the
  keys of the flags whose answers may change: added, removed or changed, using a
  changed segment, or with such a flag as a prerequisite (transitively).
* On a manager's engine, a refused flag document (the last good flags keep serving)
  emits ``PROVIDER_STALE``, whichever reader refused it (the flag set's, a
  configuration manager's activation reading its flags file); the next document to go
  live, or the store back to the live one, ``PROVIDER_READY``.
* On a Redis fleet store, a follower that can no longer tell whether it serves the
  store's document emits ``PROVIDER_STALE`` too: disconnected from Redis (or serving
  the cache file because Redis was unreachable at start), unable to apply a newer
  version, or without a confirmation from Redis for ``max_staleness`` seconds (default
  60, as ``health()``) beyond its ``poll`` interval. Once it follows again and is
  current, ``PROVIDER_READY``. The state is checked once a second, off the
  evaluation path.
* When the last manager serving the engine is closed (``close()``: its file watcher or
  Redis follower stopped, its change API gone), nothing will change what the engine
  serves: the provider emits ``PROVIDER_ERROR`` (error code ``GENERAL``, metadata
  ``error_because: "closed"``) and the status is ERROR, also for a provider registered
  later on that engine. Evaluations keep answering from the last snapshot, with their
  usual reasons and no error code, as the manager's own checks do after ``close()``.
  Not ``PROVIDER_FATAL``: the SDK answers every evaluation of a FATAL provider with the
  caller's default, so closing a manager while requests are still served (a shutdown)
  would switch every flag to the defaults written in the code at once; and it is not
  irrecoverable (next point). STALE is kept for what catches up by itself.
* On the empty engine a configuration manager serves while its directory has no
  flags file, a flags file appearing later is swapped into that same engine
  (``PROVIDER_CONFIGURATION_CHANGED``; the provider then follows its flag set). When
  another manager's flag set serves that file already, the engine stays empty for
  good: ``PROVIDER_ERROR`` (error code ``GENERAL``, metadata ``error_because:
  "superseded"``, a message saying to take ``manager.flags`` again or restart).
* A provider follows the engine it was given: when the manager serving that engine is
  closed and another is opened on the same engine (or one is opened on an engine that
  had none), the provider follows the new manager's flag set (its refusals and its
  Redis follower) and is READY (or STALE) again, without being registered again.
* The SDK shuts a replaced provider down on a background thread; if the same provider
  was registered again meanwhile, that late ``shutdown()`` (or ``detach()``) belongs
  to the old registration and leaves the live one announcing (each registration's
  ``attach`` is matched by its own ``shutdown``).
* ``track(event, context, details)`` records ``details.value`` (default 1.0) through
  ``experiments.track_metric`` for each running A/B test measuring ``event``, when
  the provider was given ``experiments=`` (a ``DynamicConfigurationManager``): it
  counts for a test only once the user's exposure to it is logged, and never logs
  one itself; a
  variant of one of its A/B tests served by the provider is logged as that user's
  exposure (once per user), as ``get_ab_test_variant`` logs it, so the report counts
  every user the provider assigned, not only those who recorded a metric.
* The tracking event's id is the ``"event_id"`` attribute of its details
  (:data:`EVENT_ID_ATTRIBUTE`: ``TrackingEventDetails(value, {"event_id":
  "order-8812"})``), given as ``track_metric(..., event_id=)``: a ``track`` retried
  with the same id counts once (per test, user and event name). Text or an integer
  of 1 to 256 characters; any other value records nothing, as ``record_metric``
  refuses it (a warning is logged the first time). Without it cfgcore gives the event
  an id of its own. It is read from the details only: the evaluation context
  describes the subject (the SDK merges the global, transaction and client contexts
  into it, so an id there would be shared by every event tracked in that scope), and
  an ``event_id`` there stays an ordinary context attribute. The details' other
  attributes are not recorded.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import msgspec

try:
    from openfeature.evaluation_context import EvaluationContext
    from openfeature.event import ProviderEventDetails
    from openfeature.exception import ErrorCode
    from openfeature.flag_evaluation import FlagResolutionDetails, Reason
    from openfeature.provider import AbstractProvider, Metadata
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "cfgcore.openfeature needs the OpenFeature SDK: pip install 'cfgcore[openfeature]'"
        f" ({exc})",
        name=__name__,
    ) from None

from cfgcore._numbers import positive_seconds
from cfgcore.details import exact_value, key_text
from cfgcore.errors import printable_name
from cfgcore.runtime.events import run_after_delivery
from cfgcore.runtime.forks import after_fork_in_child, restart_in_child
from cfgcore.snapshot import flag_references, same

if TYPE_CHECKING:  # not in openfeature-sdk 0.8, the oldest the extra allows (no track())
    from openfeature.track import TrackingEventDetails

__all__ = ["DEFAULT_MAX_STALENESS", "EVENT_ID_ATTRIBUTE", "CfgcoreProvider", "default_context"]

_log = logging.getLogger("cfgcore.openfeature")

ContextMapper = Callable[[str | None, Mapping[str, Any]], Any]

#: The attribute of OpenFeature's ``TrackingEventDetails`` that holds the application's
#: id of a tracked event (see :meth:`CfgcoreProvider.track`).
EVENT_ID_ATTRIBUTE = "event_id"

#: ``track`` failures of one kind past the first (logged with its traceback) are counted
#: and said every this many.
TRACK_FAILURES_SAID_EVERY = 1000

_ERROR_CODES = {
    "FLAG_NOT_FOUND": ErrorCode.FLAG_NOT_FOUND,
    "TYPE_MISMATCH": ErrorCode.TYPE_MISMATCH,
    "INVALID_CONTEXT": ErrorCode.INVALID_CONTEXT,
    "PARSE_ERROR": ErrorCode.PARSE_ERROR,
    "GENERAL": ErrorCode.GENERAL,
}


def default_context(targeting_key: str | None, attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The cfgcore context for an OpenFeature evaluation context: its attributes plus
    ``targeting_key``, which is always the context's targeting key: an attribute of that
    name neither overrides it nor stands in for a missing one (OpenFeature's targeting
    key has its own field, which flagd, and a flag exported to flagd, read as
    ``targetingKey``)."""
    ctx = dict(attributes)
    if targeting_key is not None:
        ctx["targeting_key"] = targeting_key
    else:
        ctx.pop("targeting_key", None)
    return ctx


def _thaw(value: Any) -> Any:
    """A mutable deep copy of a served value (the engine shares read-only ones)."""
    if isinstance(value, (MappingProxyType, dict)):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_thaw(v) for v in value]
    return value


def _is_bool(v: Any) -> bool:
    return v is True or v is False


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_object(v: Any) -> bool:
    return isinstance(v, (Mapping, tuple, list))


def _as_is(v: Any) -> Any:
    return v


def _number_as_float(v: Any) -> Any:
    """A caller's number default of a float resolution as a float (``1`` -> ``1.0``):
    the SDK checks a float resolution's value with ``isinstance(value, float)``, so an
    int default coming back as it was turns a DEFAULT answer into TYPE_MISMATCH, where
    flagd's Python evaluator (FlagdCore) returns ``float(default)``. Anything else
    (a bool, an int past a float's range, a subclass whose ``__float__`` raises) as it
    was: it is the caller's own value."""
    if _is_number(v):
        try:
            return float(v)
        except Exception:
            return v
    return v


def _exception_text(exc: Exception) -> str:
    """``Name: message`` of a failure inside a resolution; the name alone when its
    message cannot be made (a ``__str__`` that raises)."""
    try:
        return f"{type(exc).__name__}: {exc}"
    except Exception:
        return type(exc).__name__


def _scalar_metadata(meta: Any) -> dict[str, bool | int | float | str]:
    """The scalar entries of a flag's or the flag set's metadata, each a str, int or
    float subclass (a ``StrEnum`` member of a document built in Python) by its base
    type's value, keys too: OpenFeature serves them to every caller, who would get the
    caller's object, read with its own ``__eq__``, ``__hash__`` and ``__str__``."""
    if not isinstance(meta, Mapping):
        return {}
    stored: Any = meta  # (type(), not isinstance: a faked __class__ is no dict)
    items = dict.items(stored) if issubclass(type(meta), dict) else meta.items()
    return {
        (k if type(k) is str else exact_value(k)): (v if type(v) is bool else exact_value(v))
        for k, v in items
        if issubclass(type(k), str) and issubclass(type(v), (bool, int, float, str))
    }


class _MetadataCache:
    """Flag metadata for one compiled snapshot, built per flag on first use."""

    __slots__ = ("snap", "base", "by_flag")

    def __init__(self, snap: Any) -> None:
        self.snap = snap
        source = getattr(snap.tables, "source", None)
        self.base = _scalar_metadata(getattr(source, "metadata", None))
        self.by_flag: dict[str, Mapping[str, bool | int | float | str]] = {}

    def get(self, key: str) -> Mapping[str, bool | int | float | str]:
        meta = self.by_flag.get(key)
        if meta is None:
            source = getattr(self.snap.tables, "source", None)
            flag = source.flags.get(key) if source is not None else None
            meta = {**self.base, **_scalar_metadata(getattr(flag, "metadata", None))}
            # Read-only: every resolution of this flag shares the same mapping.
            meta = MappingProxyType(meta)
            self.by_flag[key] = meta
        return meta


def _changed_flags(old: Any, new: Any) -> list[str]:
    """Keys of the flags whose answers may differ between two compiled snapshots: flags
    added, removed or changed, flags whose conditions use a segment that changed (or a
    segment using one), and flags with a prerequisite among those, transitively. A
    change to a flag's description or tags alone changes no answer and is left out.
    A flag is judged by the variant values its tables serve as well as by its source:
    a document given as Python data holds the caller's values, and one changed in place
    is the same object on both sides (or changed on the old side alone)."""
    a = getattr(getattr(old, "tables", None), "source", None)
    b = getattr(getattr(new, "tables", None), "source", None)
    if a is None or b is None:
        return sorted(set(old.tables.keys) | set(new.tables.keys))
    # Flag-set metadata reaches every flag's details: its scalar entries, the only ones
    # OpenFeature metadata holds (a deleted A/B test's record there changes no answer).
    if not same(_scalar_metadata(a.metadata), _scalar_metadata(b.metadata)):
        return sorted(set(a.flags) | set(b.flags))
    segments = _closure(
        {s for s in set(a.segments) | set(b.segments)
         if not same(a.segments.get(s), b.segments.get(s))},
        {name: _segment_refs([seg]) for name, seg in b.segments.items()},
    )  # fmt: skip
    uses: dict[str, set[str]] = {}
    changed: set[str] = set()
    for key in set(a.flags) | set(b.flags):
        fa, fb = a.flags.get(key), b.flags.get(key)
        if fb is not None:
            uses[key] = flag_references(fb, b.segments)  # prerequisites, in conditions too
            if segments and segments & _segment_refs([r.when for r in fb.rules]):
                changed.add(key)
                continue
        if not same(fa, fb) and not (
            fa is not None and fb is not None and same(_answering(fa), _answering(fb))
        ):
            changed.add(key)
        elif fa is not None and not _serves_same(old.tables, new.tables, key):
            # The same source, yet not the same values served: a variant value given
            # as Python data and changed in place (the old snapshot's, or both's).
            changed.add(key)
    return sorted(_closure(changed, uses))


def _serves_same(a: Any, b: Any, key: str) -> bool:
    """Whether the tables ``a`` and ``b`` serve the same variants (names and values,
    type-strict) for flag ``key``; False where they cannot be compared so."""
    from cfgcore.compiler import served_variants  # loaded: the tables were compiled

    try:
        served_a, served_b = served_variants(a, key), served_variants(b, key)
        if served_a is None or served_b is None:
            return False
        return _ENCODE(served_a) == _ENCODE(served_b)
    except Exception:  # a value MessagePack cannot hold (a bigger integer): announced
        return False


_ENCODE = msgspec.msgpack.Encoder().encode


def _answering(flag: Any) -> Any:
    """``flag`` without the fields no answer reads (description, tags)."""
    return msgspec.structs.replace(flag, description="", tags=[])


def _segment_refs(conditions: list[Any]) -> set[str]:
    """The segments named anywhere in ``conditions`` (a list of Conditions or None)."""
    out: set[str] = set()
    stack = [c for c in conditions if c is not None]
    while stack:
        c = stack.pop()
        if c.segment is not None:
            out.add(c.segment)
        if c.all:
            stack.extend(c.all)
        if c.any:
            stack.extend(c.any)
        if c.not_ is not None:
            stack.append(c.not_)
    return out


def _closure(changed: set[str], uses: Mapping[str, set[str]]) -> set[str]:
    """``changed`` plus every name whose ``uses`` reach one of them."""
    changed = set(changed)
    grew = True
    while grew:
        grew = False
        for name, used in uses.items():
            if name not in changed and used & changed:
                changed.add(name)
                grew = True
    return changed


def _live_generation() -> int:
    """``cfgcore.runtime.flags.generation()``, or 0 before any flag set was opened."""
    flags = sys.modules.get("cfgcore.runtime.flags")
    return flags.generation() if flags is not None else 0


def _live_flags(engine: Any) -> Any:
    """The open live flag set (``cfgcore.runtime.flags.LiveFlags``) serving ``engine``,
    or None: only a manager's engine has one, and it says so in ``_served_by``."""
    if getattr(engine, "_served_by", None) is None:
        return None
    from cfgcore.runtime.flags import live_flags_for

    return live_flags_for(engine)


def _tests_measuring(experiments: Mapping[str, Any], metric: Any) -> list[str]:
    """The running (not stopped) A/B tests with ``metric`` among their success or
    guardrail metrics."""
    out = []
    for name, meta in experiments.items():
        if not isinstance(meta, Mapping) or meta.get("status") == "stopped":
            continue
        success = meta.get("success_metrics") or ()
        guardrails = meta.get("guardrail_metrics") or {}
        if (isinstance(success, list) and metric in success) or (
            isinstance(guardrails, Mapping) and metric in guardrails
        ):
            out.append(name)
    return out


#: Seconds without a confirmation from Redis (beyond the store's poll interval) after
#: which a provider on a fleet store is STALE (the default of ``health()`` too).
DEFAULT_MAX_STALENESS = 60.0


def _follows(store: Any) -> bool:
    """Whether ``store`` is followed over a connection (a Redis store's follower)."""
    return getattr(store, "kind", None) == "redis"


def _closed_message(url: str) -> str:
    """Why a closed store's flags will not change again (the ERROR's message)."""
    return (
        f"nothing keeps it current: {url} is no longer followed (the flag store was "
        "closed); a manager opened on this engine follows it again"
    )


def _follower_problem(store: Any, bound: float) -> tuple[str, str] | None:
    """Why a followed store's follower cannot vouch that this process serves the
    store's current document, as ``(code, message)``; None if it can (or the store is
    not followed over a connection)."""
    if not _follows(store):
        return None
    url = getattr(store, "url", "the flag store")
    if getattr(store, "closed", False):
        return ("closed", _closed_message(url))
    why = f" ({store.last_error})" if getattr(store, "last_error", None) else ""
    if not getattr(store, "connected", False):
        # (A follower still making its first connection, with a document read from
        # Redis just before, is neither.)
        if getattr(store, "serving_cache", False):
            return ("cache", f"Redis at {url} unreachable, serving its cache file{why}")
        if getattr(store, "lost_since", None) is not None:
            return ("disconnected", f"not following {url}, reconnecting{why}")
    failing = getattr(store, "failing_version", None)
    if failing is not None:
        return ("behind", f"{url} holds version {failing}, not applied here{why}")
    confirmed = getattr(store, "confirmed_at", None)
    allowed = bound + float(getattr(store, "poll", 0.0))
    if confirmed is not None and time.monotonic() - confirmed > allowed:
        age = time.monotonic() - confirmed
        return (
            "unconfirmed",
            f"{url} has not confirmed the document for {age:.0f} s (bound {allowed:g} s)",
        )
    return None


class _Monitor:
    """One daemon thread for the process: once a second, each registered provider
    re-checks what serves its engine (:meth:`CfgcoreProvider._announce_status`), so a
    lost connection, a follower gone quiet or a manager opened on its engine is
    announced even when nothing is evaluated. A check reads a few attributes; only a
    provider whose flag set was closed looks for a new one, and only after a set was
    opened in the process since it last looked."""

    EVERY = 1.0

    def __init__(self) -> None:
        self._providers: weakref.WeakSet[CfgcoreProvider] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, provider: CfgcoreProvider) -> None:
        with self._lock:
            self._providers.add(provider)
            self._start_locked()

    def _start_locked(self) -> None:
        if self._providers and (self._thread is None or not self._thread.is_alive()):
            self._thread = threading.Thread(
                target=self._run, name="cfgcore-openfeature-status", daemon=True
            )
            self._thread.start()

    def unwatch(self, provider: CfgcoreProvider) -> None:
        with self._lock:
            self._providers.discard(provider)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.EVERY)
            with self._lock:
                providers = list(self._providers)
                if not providers:
                    self._thread = None  # the next watch() starts a new one
                    return
            for provider in providers:
                try:
                    provider._announce_status()
                except Exception:  # an SDK handler's failure must not end monitoring
                    _log.exception("provider status check failed")

    def after_fork(self) -> None:
        self._lock = threading.Lock()
        self._thread = None
        # A thread of the parent (this monitor, a follower announcing) may have held a
        # provider's locks at the fork: the child's providers get new ones.
        for provider in list(_PROVIDERS):
            provider._lock = threading.Lock()
            provider._status_lock = threading.RLock()

    def restart(self) -> None:
        with self._lock:
            self._start_locked()


_MONITOR = _Monitor()
_PROVIDERS: weakref.WeakSet[CfgcoreProvider] = weakref.WeakSet()  # for after_fork
after_fork_in_child(_MONITOR.after_fork)
restart_in_child(_MONITOR.restart)


class CfgcoreProvider(AbstractProvider):
    """OpenFeature provider backed by a cfgcore engine (in-process, compiled core).

    ``engine`` is a :class:`cfgcore.engine.Engine` (either implementation); the
    provider evaluates whatever snapshot it serves at the time of each call.
    ``context(targeting_key, attributes)`` maps an OpenFeature evaluation context to
    the cfgcore context (default: :func:`default_context`). ``resolve(engine, key,
    ctx, default)`` replaces the engine's answer with an importer's, for flags that
    must answer as their source system does; it returns an object with ``value``,
    ``variant``, ``reason``, ``error_code`` and ``metadata`` (``cfgcore.interop.flagd``
    has ``context`` and ``resolve`` for imported flagd flags). ``name`` is the provider
    name in OpenFeature's metadata and events. ``experiments`` (a
    ``DynamicConfigurationManager``) receives the tracking events (:meth:`track`) and
    the exposures of its A/B tests' variants served here (once per user, as
    ``get_ab_test_variant`` logs them).
    ``max_staleness``: seconds a Redis fleet store's follower may go without a
    confirmation from Redis, beyond its ``poll`` interval, before the provider is
    STALE (a disconnected follower is STALE at once).

    Status (see the module docstring): READY while the flags served are the store's
    (or the engine is a plain one); STALE while they may not be (a refused document,
    a follower that cannot vouch for them) and cfgcore is catching up by itself; ERROR
    once the store's last manager closed, until a manager is opened on the engine.
    Evaluations answer from the engine's snapshot in every status.
    """

    def __init__(
        self,
        engine: Any,
        *,
        context: ContextMapper | None = None,
        resolve: Callable[[Any, str, Any, Any], Any] | None = None,
        name: str = "cfgcore",
        experiments: Any = None,
        max_staleness: float = DEFAULT_MAX_STALENESS,
    ) -> None:
        super().__init__()
        self.max_staleness = positive_seconds("max_staleness", max_staleness)
        self._engine = engine
        self._context = context or default_context
        self._answer = resolve
        self._metadata = Metadata(name=name)
        self._experiments = experiments
        self._log_exposure: Callable[[str, str, Any], None] | None = getattr(
            experiments, "log_exposure", None
        )
        # The one reading of an event id (cfgcore.experiments.event_ids), imported only
        # for a provider that tracks: a flags-only one loads no experiments module.
        self._event_id_text: Callable[[Any], str | None] | None = None
        if experiments is not None:
            from cfgcore.experiments.event_ids import event_id_text

            self._event_id_text = event_id_text
        self._warned_event_id = False  # a refused event id was logged once
        self._track_failures: dict[str, int] = {}  # track() failures by exception kind
        self._track_failures_lock = threading.Lock()
        self._meta_cache: _MetadataCache | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._lock = threading.Lock()
        # The live flag set serving the engine (a manager's: a file or fleet store),
        # whose refused documents make the provider STALE; None for a bare engine.
        self._live: Any = None
        self._generation = -1  # live flag sets opened when _live was last looked up
        # What was last announced: (the refusal, the follower's problem); (None, None)
        # is READY.
        self._announced: tuple[Any, str | None] = (None, None)
        # Reentrant: an SDK handler run by the announcement may evaluate a flag.
        self._status_lock = threading.RLock()
        # Registrations (attach() calls) not yet ended by their shutdown(): the SDK may
        # shut an old registration down after the provider was registered again.
        self._registrations = 0
        self._shut_since_attach = False  # a shutdown() came after the last attach()
        self._old_detach = False  # the next detach() is an old registration's
        _PROVIDERS.add(self)

    @property
    def engine(self) -> Any:
        """The engine this provider evaluates."""
        return self._engine

    # ------------------------------------------------------------------ lifecycle

    def get_metadata(self) -> Metadata:
        """OpenFeature provider metadata (its name)."""
        return self._metadata

    def attach(self, on_emit: Callable[..., None]) -> None:
        """Called by the OpenFeature API on registration: from now on every snapshot
        swap on the engine is announced as a configuration change. Subscribing here
        rather than in :meth:`initialize` (which the SDK may run on a background thread)
        means no swap after ``set_provider`` returns goes unannounced."""
        with self._lock:
            super().attach(on_emit)
            self._registrations += 1
            # A registration ended (shutdown) but not yet detached: the SDK's detach()
            # for it may still come, after this registration; it must not end this one.
            self._old_detach = self._shut_since_attach
            self._shut_since_attach = False
            if self._unsubscribe is None:
                self._unsubscribe = self._engine.add_swap_listener(self._on_swap)
                live = _live_flags(self._engine)
                # With no open set, the first resolution (or the monitor) looks again
                # and announces what it finds: an engine whose set was closed is ERROR.
                self._generation = _live_generation() if live is not None else -1
                if live is not None:
                    live.subscribe(self)  # held weakly
                self._live = live
                self._announced = (None, None)  # the SDK makes us READY; a refusal
                # standing now is announced by the first resolution (see _resolve), a
                # follower's problem by the monitor
                # Watched whatever serves the engine now: a manager closed and another
                # opened on the engine may follow a Redis store (see _follow_engine).
                _MONITOR.watch(self)

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        """Called by the SDK after :meth:`attach`; it announces READY once this returns.
        A refusal announced in between (a document refused by the watcher's thread, or
        the status monitor's check) would be overridden by that READY and, being
        announced already, never told again: forget it here, so the next resolution or
        the monitor's next check (within a second) announces STALE after READY. The
        same for an engine whose flag set was closed (ERROR): with no open set, the next
        check looks for one again and announces what it finds."""
        with self._status_lock:
            self._announced = (None, None)
            with self._lock:  # (as _follow_engine sets it)
                live = self._live
                if live is None or live.closed:
                    self._generation = -1

    def detach(self) -> None:
        """Stop announcing swaps (the engine itself keeps serving). A detach() that
        belongs to a registration ended before the provider was registered again (the
        SDK's late shutdown thread) changes nothing."""
        with self._lock:
            if self._old_detach:
                self._old_detach = False
                return
            self._registrations = 0
            self._shut_since_attach = False
            self._stop_listening()
            super().detach()

    def shutdown(self) -> None:
        """Stop announcing swaps (the engine itself keeps serving) once every
        registration has ended: a late shutdown of an old registration (the SDK shuts a
        replaced provider down on a background thread, possibly after it was registered
        again) leaves the live one announcing."""
        with self._lock:
            self._registrations = max(0, self._registrations - 1)
            self._shut_since_attach = True
            if self._registrations == 0:
                self._stop_listening()

    def _stop_listening(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        _MONITOR.unwatch(self)
        live, self._live = self._live, None
        if live is not None:
            live.unsubscribe(self)

    def _follow_engine(self) -> Any:
        """The live flag set serving the engine now, subscribed to: when the one this
        provider followed was closed (its manager closed) and another opened on the same
        engine (a new manager), the provider follows that one, so its refusals and its
        follower's state are announced; a closed set stays only while no other serves.
        Looked up only after a new set was opened in the process (cheap per call), and
        what the look found is announced (READY or STALE on a new set, ERROR on none)."""
        live = self._live
        if (live is not None and not live.closed) or self._unsubscribe is None:
            return live
        gen = _live_generation()
        if gen == self._generation:
            return live
        with self._lock:
            if self._unsubscribe is None or self._live is not live:
                return self._live  # detached meanwhile, or another call rebound it
            self._generation = gen
            new = _live_flags(self._engine)
            if new is not None and new is not live:
                if live is not None:
                    live.unsubscribe(self)
                new.subscribe(self)  # held weakly
                self._live = live = new
        self._announce_status()  # (outside the lock: it calls here, which returns at once)
        return live

    def _on_swap(self, old: Any, new: Any) -> None:
        # The SDK runs its event handlers (the application's code) in the emitting
        # thread: after the swapping path's lock is released (run_after_delivery), so a
        # slow handler never holds up the next flag change.
        details = ProviderEventDetails(
            flags_changed=_changed_flags(old, new),
            message=f"cfgcore snapshot {new.version} is live",
            metadata={"snapshot_version": new.version},
        )
        run_after_delivery(lambda: self.emit_provider_configuration_changed(details))

    # The live flag set's subscriber interface (cfgcore.runtime.flags.FlagSubscriber).

    def flags_changed(self, old: Any, new: Any, source: str, doc: Any, initiator: Any) -> None:
        """A document went live (its swap was announced already): READY again if a
        refused one had made the provider STALE."""
        self._announce_status()

    def flags_rejected(self, error: Any, source: str, origin: str) -> None:
        """A document was refused and the last good flags keep serving: STALE."""
        self._announce_status()

    def flags_recovered(self) -> None:
        """The store is back to the live document (no swap): READY again. Called by a
        flag set that tells its subscribers so; otherwise the next resolution notices."""
        self._announce_status()

    def flags_closed(self) -> None:
        """The flag set was closed (its last manager's ``close()``): ERROR, unless
        another set serves the engine already."""
        self._announce_status()

    def _announce_status(self) -> None:
        """Emit STALE while the flag set stands on a refusal (the store holds flags
        that cannot be served: what serves is no longer the source of truth) or its
        Redis follower cannot vouch for what serves (:func:`_follower_problem`), READY
        once neither holds. Each state change is announced once; a new refusal while
        STALE is announced too (its message says what was refused).

        ERROR once the engine's flag set is closed (or was, before this registration),
        or its store is: no watcher, follower or change API will move the engine off
        its last snapshot, which keeps answering. Non-fatal: a set opened on the
        engine (a new manager) ends it."""
        self._follow_engine()
        with self._status_lock:
            live = self._live
            problem: tuple[str, str] | None
            if live is None:
                superseded = getattr(self._engine, "_superseded", None)
                if superseded is not None:
                    # A manager's placeholder that another flag set left empty for good
                    # (cfgcore.config.flags): only re-taking the engine serves flags.
                    error, problem = None, ("superseded", superseded)
                elif not getattr(self._engine, "_retired", False):
                    return  # a plain engine: nothing follows it, nothing to announce
                else:
                    url = getattr(self._engine, "_served_by", None) or "the flag store"
                    error, problem = None, ("closed", _closed_message(url))
            elif live.closed:
                error, problem = live.last_error, ("closed", _closed_message(live.store.url))
            else:
                error = live.last_error
                problem = _follower_problem(live.store, self.max_staleness)
            state = (error, problem[0] if problem is not None else None)
            if state[0] is self._announced[0] and state[1] == self._announced[1]:
                return
            self._announced = state
            version = self._engine.version
            if problem is not None and problem[0] in ("closed", "superseded"):
                failed = ProviderEventDetails(
                    message=f"snapshot {version} keeps answering, but {problem[1]}",
                    error_code=ErrorCode.GENERAL,
                    metadata={"snapshot_version": version, "error_because": problem[0]},
                )
                run_after_delivery(lambda: self.emit_provider_error(failed))
                return
            if error is None and problem is None:
                ready = ProviderEventDetails(
                    message=f"cfgcore snapshot {version} is the store's document again",
                    metadata={"snapshot_version": version},
                )
                run_after_delivery(lambda: self.emit_provider_ready(ready))
                return
            reasons = []
            if error is not None:
                reasons.append(f"flag document refused: {error}")
            if problem is not None:
                reasons.append(problem[1])
            why = f"snapshot {version} keeps serving; " + "; ".join(reasons)
            stale = ProviderEventDetails(
                message=why,
                metadata={"snapshot_version": version, "stale_because": state[1] or "refused"},
            )
            run_after_delivery(lambda: self.emit_provider_stale(stale))

    # ------------------------------------------------------------------ tracking

    def track(
        self,
        tracking_event_name: str,
        evaluation_context: EvaluationContext | None = None,
        tracking_event_details: TrackingEventDetails | None = None,
    ) -> None:
        """OpenFeature tracking: an event named after a metric of running A/B tests is
        recorded for each of them through ``experiments.track_metric``, with the
        event's ``value`` (1.0 when it has none). Without ``experiments=`` (a
        ``DynamicConfigurationManager``), or for an event no running test measures, it
        does nothing. Never raises.

        Attribution: an event counts for a test only for a user exposed to that test
        (as experiment platforms attribute it). Several tests may measure one event
        name, and a user may have seen only some of them: tracking must not enrol the
        user in the others. So ``track`` never logs an exposure; each event is filed
        under the user's assigned variant, marked to count only once that user's
        exposure to the test is logged. The join is made where the reports read the
        logs, not here: an exposure logged by another process (a pre-fork worker, the
        service that served the variant) counts, and so does one logged after the
        event. An ``experiments`` object without ``track_metric`` gets
        ``record_metric``, with its own semantics.

        The event's id: ``tracking_event_details.attributes["event_id"]``
        (:data:`EVENT_ID_ATTRIBUTE`), the application's id of the event (an order
        number, a message id), passed on as ``event_id=``, so a retried ``track`` is
        one event in every report. Text or an integer of 1 to 256 characters; any
        other value (empty, too long, another type) records nothing, as
        ``record_metric`` refuses such an id (logged as a warning once per provider).
        Without it cfgcore gives the event an id of its own. An ``event_id`` in the
        evaluation context is not read as one (see the module docstring).

        >>> client.track("purchase", EvaluationContext("user-1"),
        ...     TrackingEventDetails(42.0, {"event_id": "order-8812"}))  # doctest: +SKIP
        """
        manager = self._experiments
        if manager is None:
            return
        try:
            tests = _tests_measuring(manager.snapshot.experiments, tracking_event_name)
            if not tests:
                return
            eid = None
            if tracking_event_details is None:
                value = None
            else:
                value = tracking_event_details.value
                attributes = tracking_event_details.attributes
                if attributes and (type(attributes) is dict or isinstance(attributes, Mapping)):
                    given = attributes.get(EVENT_ID_ATTRIBUTE)
                    if given is not None:  # (None: no id, as record_metric's default)
                        assert self._event_id_text is not None  # (set with experiments=)
                        eid = self._event_id_text(given)
                        if eid is None:
                            self._refused_event_id(tracking_event_name, given)
                            return
            ctx = evaluation_context or EvaluationContext()
            user = self._context(ctx.targeting_key, ctx.attributes)
            record = getattr(manager, "track_metric", None) or manager.record_metric
            if value is None:
                value = 1.0
            if eid is None:  # (no keyword: an experiments object of an older signature)
                for test in tests:
                    record(test, tracking_event_name, value, user_context=user)
            else:
                for test in tests:
                    record(test, tracking_event_name, value, user_context=user, event_id=eid)
        except Exception as exc:  # a context mapper's or a manager's failure: never raise
            self._track_failed(tracking_event_name, exc)

    def _track_failed(self, event: Any, exc: Exception) -> None:
        """Log a ``track`` that failed: with its traceback the first time for each kind
        of exception, then a count every :data:`TRACK_FAILURES_SAID_EVERY` (a failure
        on every event, a hostile name, would otherwise write a traceback per call)."""
        kind = type(exc).__qualname__
        with self._track_failures_lock:
            seen = self._track_failures[kind] = self._track_failures.get(kind, 0) + 1
        # key_text: a name whose own repr raises must not break the log record
        name = printable_name(key_text(event))
        if seen == 1:
            _log.error(
                "tracking event %s not recorded (further %s failures are counted, said "
                "every %d)", name, kind, TRACK_FAILURES_SAID_EVERY, exc_info=exc,
            )  # fmt: skip
        elif seen % TRACK_FAILURES_SAID_EVERY == 0:
            _log.error("%d tracking events not recorded so far (%s), the last %s",
                       seen, kind, name)  # fmt: skip

    def _refused_event_id(self, event: Any, given: Any) -> None:
        """Say once per provider that a tracking event was not recorded for its id:
        ``track`` returns nothing the application could check, and a warning per event
        could flood the log of a service that sends them all so."""
        if self._warned_event_id:
            return
        self._warned_event_id = True
        from cfgcore.experiments.event_ids import MAX_EVENT_ID

        if isinstance(given, str):  # (never the value itself: it may be anything, huge)
            what = f"a {type(given).__name__} of {len(given)} character(s)"
        else:
            what = f"a value of type {type(given).__name__}"
        _log.warning(
            "tracking event %s not recorded: its %r attribute is %s, not an event id (text"
            " or an integer of 1 to %d characters); later events refused so are not logged",
            printable_name(key_text(event)),  # (a test's metric name: its document's text)
            EVENT_ID_ATTRIBUTE,
            what,
            MAX_EVENT_ID,
        )

    # ------------------------------------------------------------------ resolution

    def _flag_metadata(self, snap: Any, key: str) -> Mapping[str, bool | int | float | str]:
        cache = self._meta_cache
        if cache is None or cache.snap is not snap:
            cache = self._meta_cache = _MetadataCache(snap)
        return cache.get(key)

    def _resolve(
        self,
        key: str,
        default: Any,
        evaluation_context: EvaluationContext | None,
        accepts: Callable[[Any], bool],
        convert: Callable[[Any], Any],
        type_name: str,
        fallback: Callable[[Any], Any] = _as_is,
    ) -> FlagResolutionDetails[Any]:
        live = self._live
        if live is None or live.closed:
            live = self._follow_engine()  # a new manager on the engine (see there)
        if live is not None and live.last_error is not self._announced[0]:
            # A refusal (or its end) not announced yet: a set that stood on one when
            # the provider was registered, or a store back to the live document, which
            # the flag set clears without telling its subscribers.
            self._announce_status()
        if type(key) is not str:  # a str subclass by its value: its own methods never run
            key = exact_value(key)
        try:
            if evaluation_context is None:
                ctx: Any = None
            else:
                ctx = self._context(evaluation_context.targeting_key, evaluation_context.attributes)
            if self._answer is not None:
                return self._resolve_with(key, default, ctx, accepts, convert, type_name, fallback)
            # One pinned snapshot answers the value and the metadata of this call.
            snap = self._engine.snapshot()
            d = snap.evaluate(key, ctx)
            if d.error_code is not None:
                return FlagResolutionDetails(
                    value=default,
                    reason=Reason.ERROR,
                    error_code=_ERROR_CODES.get(d.error_code, ErrorCode.GENERAL),
                    error_message=f"{key_text(key)}: {d.error_message or d.error_code}",
                )
            meta = self._flag_metadata(snap, key)
            value = d.value
            if value is None:
                # A null variant defers to the caller's default (flagd's semantics): the
                # answer is a fallback, so DEFAULT, unless the flag is switched off.
                reason = Reason.DISABLED if d.reason == "DISABLED" else Reason.DEFAULT
                return FlagResolutionDetails(
                    value=fallback(default), reason=reason, flag_metadata=meta
                )
            if not accepts(value):
                return FlagResolutionDetails(
                    value=default,
                    reason=Reason.ERROR,
                    error_code=ErrorCode.TYPE_MISMATCH,
                    error_message=(
                        f"{key}: variant {d.variant!r} serves "
                        f"{type(_thaw(value)).__name__}, not {type_name}"
                    ),
                    flag_metadata=meta,
                )
            if self._log_exposure is not None and d.variant is not None:
                # An A/B test's variant served here is an exposure, as through
                # get_ab_test_variant (logged once per user; nothing for other flags).
                self._log_exposure(key, d.variant, ctx)
            return FlagResolutionDetails(
                value=convert(value), reason=d.reason, variant=d.variant, flag_metadata=meta
            )
        except Exception as exc:  # a context mapper's failure: never let it escape
            return FlagResolutionDetails(
                value=default,
                reason=Reason.ERROR,
                error_code=ErrorCode.GENERAL,
                error_message=f"{key_text(key)}: {_exception_text(exc)}",
            )

    def _resolve_with(
        self,
        key: str,
        default: Any,
        ctx: Any,
        accepts: Callable[[Any], bool],
        convert: Callable[[Any], Any],
        type_name: str,
        fallback: Callable[[Any], Any],
    ) -> FlagResolutionDetails[Any]:
        """The answer of an importer's ``resolve`` (the source system's semantics),
        checked against the requested type like the engine's own answers."""
        assert self._answer is not None
        r = self._answer(self._engine, key, ctx, None)
        meta = MappingProxyType(_scalar_metadata(getattr(r, "metadata", None)))
        if r.error_code is not None:
            return FlagResolutionDetails(
                value=default,
                reason=Reason.ERROR,
                error_code=_ERROR_CODES.get(str(r.error_code), ErrorCode.GENERAL),
                error_message=f"{key_text(key)}: {r.error_code}",
                flag_metadata=meta,
            )
        if r.value is None:
            return FlagResolutionDetails(
                value=fallback(default), reason=r.reason, flag_metadata=meta
            )
        if not accepts(r.value):
            return FlagResolutionDetails(
                value=default,
                reason=Reason.ERROR,
                error_code=ErrorCode.TYPE_MISMATCH,
                error_message=f"{key}: variant {r.variant!r} is not {type_name}",
                flag_metadata=meta,
            )
        return FlagResolutionDetails(
            value=convert(r.value), reason=r.reason, variant=r.variant, flag_metadata=meta
        )

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        """Resolve a boolean flag."""
        return self._resolve(
            flag_key, default_value, evaluation_context, _is_bool, _as_is, "a boolean"
        )

    def resolve_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[str]:
        """Resolve a string flag."""
        return self._resolve(
            flag_key, default_value, evaluation_context, _is_str, _as_is, "a string"
        )

    def resolve_integer_details(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[int]:
        """Resolve an integer flag (a float value is a type mismatch)."""
        return self._resolve(
            flag_key, default_value, evaluation_context, _is_int, _as_is, "an integer"
        )

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        """Resolve a float flag (integer values, and an integer default served in
        place of a null variant, are returned as floats)."""
        return self._resolve(
            flag_key,
            default_value,
            evaluation_context,
            _is_number,
            float,
            "a float",
            _number_as_float,
        )

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[Any] | Mapping[str, Any],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[Any] | Mapping[str, Any]]:
        """Resolve an object flag as a plain ``dict`` (or ``list``) the caller may change."""
        return self._resolve(
            flag_key, default_value, evaluation_context, _is_object, _thaw, "an object"
        )
