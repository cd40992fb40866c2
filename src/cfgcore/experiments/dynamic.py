"""Dynamic configuration: the seed's feature-flag and A/B API on the compiled flag core.

>>> from cfgcore.dynamic_config import get_dynamic_config_manager, FeatureFlag
>>> dynamic_config = get_dynamic_config_manager()                     # doctest: +SKIP
>>> ctx = {"user_id": "12345", "user_segment": "premium", "region": "EU"}
>>> dynamic_config.is_feature_enabled(FeatureFlag.ENHANCED_ANOMALY_DETECTION, ctx)  # doctest: +SKIP
True

Every check is one call into :class:`cfgcore.engine.Engine` (compiled when the
extension is built). Every change made through the API (``set_feature_flag``,
``create_ab_test``, ...) goes through the process's shared flag set
(:mod:`cfgcore.runtime.flags`): it is applied to the newest stored document under the
store's lock (or compare-and-set), compiled off to the side, written atomically and only
then swapped in; on any error the live flags and the store stay as they were.

Where the flags live (first that applies)
    ``store=`` (a path or ``redis://`` URL), ``flags_file=``, ``state_dir=`` (its
    ``flags.json``), ``$CFGCORE_FLAG_STORE``, the flags file of the configuration
    directory (``$CFGCORE_CONFIG_DIR`` or ``./config``, as the configuration manager
    finds it), else ``flags.json`` in the state directory (``$CFGCORE_STATE_DIR``, else
    ``$XDG_STATE_HOME/cfgcore``, ``~/.local/state/cfgcore``). While that file does not
    exist the bundled music-streaming flags are served and nothing is written; the first
    change creates the file. In production (``CONFIG_ENVIRONMENT=production``) a missing
    file is an error instead. A file removed or broken later is reported once and the
    flags it last held keep serving. The installed package is never written. The configuration
    manager of the same process serves the same flags.

    Exposure, metric and audit logs (``flags.exposures.jsonl``, ``flags.metrics.jsonl``,
    ``flags.audit.jsonl``) live next to an explicit ``flags_file``, else in the state
    directory. The state directory is created for them; a flags file's directory is
    never created to write a log (a deploy replacing it would then fail to create it):
    audit entries wait in memory until it exists again.

A/B tests are described in :mod:`cfgcore.experiments.abtest`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import Enum
from typing import Any, cast

from cfgcore._clock import read_stamp
from cfgcore._layout import DEDUP_SHARDS
from cfgcore._numbers import (
    WholeSetting,
    finite_number,
    real_number,
    shown,
    wait_seconds,
    whole_at_least,
)
from cfgcore.config import settle
from cfgcore.details import exact_name, metric_event_parts, serves_variant, user_id_text
from cfgcore.errors import (
    ConfigError,
    Problem,
    child_key_path,
    key_segment,
    printable_name,
)
from cfgcore.experiments.abtest import NO_VARIANT, ABTestConfiguration, ABTests
from cfgcore.experiments.event_ids import event_id_text
from cfgcore.experiments.exposures import (
    UNTAGGED,
    ExposureLogger,
    JsonLinesSink,
    exposure_user,
)
from cfgcore.experiments.features import (
    FeatureFlag,
    UnknownFlagError,
    change_events,
    custom_flag_change,
    delete_change,
    dependencies_change,
    feature_status,
    flag_key,
    rollout_change,
    with_warnings,
)
from cfgcore.experiments.guardrails import Guardrails
from cfgcore.experiments.layers import is_internal_flag
from cfgcore.experiments.metrics import MetricsStore
from cfgcore.experiments.stops import record_stops
from cfgcore.runtime.audit import AuditLog
from cfgcore.runtime.events import ConfigChangeEvent, EventBus, deferred_delivery
from cfgcore.runtime.flags import LiveFlags, shared_flags
from cfgcore.runtime.flagstore import (
    FlagDocument,
    MemoryFlagStore,
    bundled_seed,
    default_state_dir,
    open_store,
    state_flags_file,
)
from cfgcore.runtime.forks import after_fork_in_child, exiting, sigint_at_exit
from cfgcore.runtime.policy import current_actor, guarded
from cfgcore.runtime.usage import start_usage_recording
from cfgcore.snapshot import Prerequisite, Snapshot

__all__ = [
    "ABTestConfiguration",
    "DynamicConfigurationManager",
    "FeatureFlag",
    "NO_VARIANT",
    "get_ab_test_variant",
    "get_dynamic_config_manager",
    "is_feature_enabled",
    "reset_dynamic_config_manager",
]

log = logging.getLogger("cfgcore.dynamic_config")

#: A manager's views of the flag document it serves, one tuple swapped in one
#: assignment (a reader never sees one document's flags with another's tests): the
#: compiled snapshot, each test's exposure dedup shards (False: not logged), the tests
#: that record, each test's run tag (the four a SeedAPI reads, in its order), the
#: decoded document, and every test's record. The engine swaps first (its own readers,
#: the configuration manager's, see the new flags at once); each manager's views follow
#: at once (``flags_serving``), before the flag set's document, health, events and
#: audit say the change is live.
_COMPILED, _SEEN, _RECORDING, _RUNS, _SOURCE, _TESTS = range(6)


def _served(engine: Any, snap: Any, kind: int, name: Any, ctx: Any) -> Any:
    """A check (``kind`` 0) or variant (1) evaluated on ``snap``, through the engine's
    observer (hooks, exposure callbacks, debug mode) when it has one, as the engine's
    own calls evaluate on its live snapshot. Never raises."""
    observer = getattr(engine, "_observer", None)
    if observer is not None:
        return observer.evaluate(snap, kind, name, ctx, None)
    return snap.is_enabled(name, ctx) if kind == 0 else snap.variant(name, ctx)


def _close_exposures(exposures: ExposureLogger) -> None:
    """A manager's exposure log, closed with it (garbage collected, or at the
    interpreter's exit: then a Ctrl-C does not stop the flush half way, see
    :data:`cfgcore.runtime.forks.sigint_at_exit`)."""
    if exiting():
        with sigint_at_exit():
            exposures.close()
    else:
        exposures.close()


def _flag_target(flag: Any) -> str:
    """The flag name the access policy judges (a bad one is reported by the method)."""
    try:
        return flag_key(flag)
    except ConfigError:
        return ""


def _check_guardrail_settings(
    alpha: Any, min_samples: Any, check_every: Any
) -> tuple[float, int, int]:
    """ValueError for guardrail settings that cannot work, before anything is opened: a
    check interval of 0 or None raised from every record_metric of a guarded test (the
    request path), an alpha of 1 or more rolled a harmless test back at its first check
    (p <= 1 always), NaN never did, and a min_samples of None failed every check.
    Returns ``(alpha, min_samples, check_every)`` as a float and ints: a whole float
    (``100.0``, as a setting read from JSON or YAML may be) worked before these checks
    and still does. Numbers by their value (cfgcore._numbers): never a bool or text."""
    return (
        _guardrail_alpha(alpha),
        whole_at_least("guardrail_min_samples", min_samples, 0),
        whole_at_least("guardrail_check_every", check_every, 1),
    )


def _guardrail_alpha(alpha: Any) -> float:
    # A number by its value (cfgcore._numbers): a Decimal too, never a bool or text.
    number = finite_number(alpha)
    if number is None or not 0 < number < 1:
        raise ValueError(f"guardrail_alpha must be a number within (0, 1), not {shown(alpha)}")
    return number


def _name_target(name: Any) -> str:
    """A test name as the access policy judges it: the name, or "" for anything that
    is not one (the method answers False for it). A list or a tuple passed through
    would have been read as the guard's (action, target) pairs."""
    return name if isinstance(name, str) else ""


def _test_name(ab_test: Any) -> str:
    """The name the access policy judges for ``create_ab_test`` (a mapping or junk too:
    create_ab_test itself reports what is wrong with it)."""
    # By their types: an object whose __class__ raises makes isinstance raise.
    name = ab_test.get("test_name") if issubclass(type(ab_test), Mapping) else getattr(
        ab_test, "test_name", None)  # fmt: skip
    return cast(str, name) if issubclass(type(name), str) else ""


def state_paths(flags_file: str) -> dict[str, str]:
    """The files kept next to a flags file: exposures, metrics and audit logs, the
    journal of an ingest writing to both logs (present only while one runs, or after
    one crashed: :func:`cfgcore.experiments.exposures.recover_appends`) and the record
    of the inputs ingests have ingested (:mod:`cfgcore.experiments.ingested`)."""
    base = os.path.splitext(os.path.abspath(flags_file))[0]
    return {name: base + suffix for name, suffix in _STATE_FILES.items()}


#: What :func:`state_paths` adds to the flags file's path without its extension.
_STATE_FILES = {
    "exposures": ".exposures.jsonl",
    "metrics": ".metrics.jsonl",
    "audit": ".audit.jsonl",
    "ingest_journal": ".ingest-journal.json",
    "ingested": ".ingested.json",
}


def state_paths_beside(metrics_log: str) -> dict[str, str] | None:
    """:func:`state_paths` of the flags file whose metric log is ``metrics_log`` (the
    exposure log and the ingest's journal beside it, say); None for a metric log not
    named that way."""
    suffix = _STATE_FILES["metrics"]
    if not metrics_log.endswith(suffix):
        return None
    base = os.path.abspath(metrics_log[: -len(suffix)])
    return {name: base + suffix for name, suffix in _STATE_FILES.items()}


def _state_dir(state_dir: str | os.PathLike[str] | None) -> str:
    return os.path.abspath(os.fspath(state_dir)) if state_dir is not None else default_state_dir()


def store_location(
    flags_file: str | os.PathLike[str] | None = None,
    *,
    state_dir: str | os.PathLike[str] | None = None,
    store: str | os.PathLike[str] | None = None,
) -> tuple[str, dict[str, str]]:
    """Where a :class:`DynamicConfigurationManager` given these arguments keeps its
    flags (a path or store URL) and its logs (:func:`state_paths`): for tools that
    read them without serving flags."""
    url = _store_url(store, flags_file, state_dir, _state_dir(state_dir))
    logs_next_to = os.path.abspath(os.fspath(flags_file)) if flags_file is not None else (
        state_flags_file(_state_dir(state_dir)))  # fmt: skip
    return os.fspath(url), state_paths(logs_next_to)


def resolve_flags_file(
    flags_file: str | os.PathLike[str] | None = None,
    state_dir: str | os.PathLike[str] | None = None,
) -> str:
    """Explicit file, else ``<state dir>/flags.json`` (see :func:`default_state_dir`)."""
    if flags_file is not None:
        return os.path.abspath(os.fspath(flags_file))
    directory = os.fspath(state_dir) if state_dir is not None else default_state_dir()
    return state_flags_file(directory)


class DynamicConfigurationManager:
    """Feature flags and A/B tests with atomic, persisted updates.

    ``store`` / ``flags_file`` / ``state_dir``: where the flags live (module docstring).
    JSON is the default file format because it is encoded in well under a millisecond.
    ``persist=False`` keeps every change in this process (nothing is written).
    ``exposure_sinks``: extra sinks for exposures (the rotating JSON-lines file is
    always used when persisting). ``log_exposures=False`` turns exposure logging off.
    ``engine``: an :class:`~cfgcore.engine.Engine` to use (tests pass one per evaluator).
    ``clock``: ``() -> epoch seconds`` for schedules and timestamps (tests).
    ``guardrail_alpha`` / ``guardrail_min_samples`` / ``guardrail_check_every``: the
    chance of rolling back a harmless test however often it is checked (one-sided,
    always-valid sequential tests, split over variants and metrics), the per-variant
    sample floor and how many metric events of a test pass between automatic checks.
    ``record_usage``: record when each flag was last evaluated in the state directory's
    ``flag-usage.json`` (:mod:`cfgcore.runtime.usage`; default on unless
    ``CFGCORE_USAGE=0``; never with ``persist=False``); ``usage_interval``: seconds
    between writes (default ``$CFGCORE_USAGE_INTERVAL``, else 60).
    ``max_tracked_users``: the most users per A/B test whose events the in-memory
    summaries (reports, guardrail checks) keep; the first to appear are kept and the
    exposures and events of later users are left out and counted (None: no cap; see
    :mod:`cfgcore.experiments.metrics` for the memory per user and why this does not
    bias the comparison).
    """

    settle_ms = WholeSetting(0, "milliseconds")  # see the flag-file watcher in __init__
    max_settle_wait_ms = WholeSetting(0, "milliseconds")
    # (see the class docstring; checked when set: a check interval of 0 raised
    # ZeroDivisionError from every record_metric of a guarded test)
    guardrail_min_samples = WholeSetting(0)
    guardrail_check_every = WholeSetting(1)

    def __init__(
        self,
        flags_file: str | os.PathLike[str] | None = None,
        *,
        state_dir: str | os.PathLike[str] | None = None,
        store: str | os.PathLike[str] | None = None,
        persist: bool = True,
        engine: Any = None,
        exposure_sinks: Iterable[Any] = (),
        log_exposures: bool = True,
        clock: Callable[[], float] | None = None,
        guardrail_alpha: float = 0.01,
        guardrail_min_samples: int = 100,
        guardrail_check_every: int = 100,
        record_usage: bool | None = None,
        usage_interval: float | None = None,
        max_tracked_users: int | None = None,
    ) -> None:
        guardrail_alpha, guardrail_min_samples, guardrail_check_every = _check_guardrail_settings(
            guardrail_alpha, guardrail_min_samples, guardrail_check_every
        )
        if max_tracked_users is not None:
            # Checked here, before the store opens, and named as the caller wrote it.
            max_tracked_users = whole_at_least("max_tracked_users", max_tracked_users, 1)
        self.persist = persist
        state = _state_dir(state_dir)
        url, paths = store_location(flags_file, state_dir=state_dir, store=store)
        flag_store = open_store(url, seed=bundled_seed())
        self.flags_file = getattr(flag_store, "path", flag_store.url)
        self.format = getattr(flag_store, "format", "msgpack")
        self._lock = threading.RLock()
        self._clock = clock
        self.events = EventBus()
        # Logs beside an explicit flags_file live in the deployment's directory, which
        # they never create: a deploy replacing it ("rm -rf dir && mkdir dir") failed on
        # the mkdir once the report of the flags file's removal had made it again. The
        # state directory is cfgcore's own, created for the first entry.
        own_dir = flags_file is None
        self.audit = AuditLog(paths["audit"] if persist else None, create_dir=own_dir)
        self.metrics = MetricsStore(
            paths["metrics"] if persist else None,
            max_users=max_tracked_users,
            create_dir=own_dir,
        )
        self._guardrail_alpha = guardrail_alpha
        self.guardrail_min_samples = guardrail_min_samples
        self.guardrail_check_every = guardrail_check_every
        # Private: its methods change flags unchecked; the guarded create_ab_test,
        # stop_ab_test, delete_ab_test and set_holdout_percentage below call them.
        self._ab_tests = ABTests(self)
        self.guardrails = Guardrails(self)
        self.last_error: str | None = None
        self.last_problems: list[Problem] = []
        # The fields the last update_ab_test changed in the stored test (empty: it
        # changed nothing, or was refused).
        self.last_changed: tuple[str, ...] = ()
        self._custom: dict[str, Any] = {}
        self._watcher: Any = None
        # The flag-file watcher reads the file once unchanged for settle_ms, or as it
        # is once it has kept changing for max_settle_wait_ms (0: no bound), as the
        # configuration manager's hot reload does (cfgcore.config.settle).
        self.settle_ms = settle.DEFAULT_SETTLE_MS
        self.max_settle_wait_ms = settle.DEFAULT_MAX_SETTLE_WAIT_MS

        sinks = list(exposure_sinks)
        if persist:
            sinks.insert(0, JsonLinesSink(paths["exposures"], create_dir=own_dir))
        self.exposures = ExposureLogger(sinks, clock=clock or time.time) if log_exposures else None
        if self.exposures is not None:
            self.exposures.add_sink(self.metrics)  # per-variant exposure counts for analysis
            # A user's exposure reaches its log before the metric events recorded after
            # it: a report's cut of the two logs never has the event without it.
            self.metrics.write_after(self.exposures)
            weakref.finalize(self, _close_exposures, self.exposures)

        if engine is not None and clock is not None:
            engine.set_clock(clock)
        if persist:
            # A document changed while no process served it is judged against the
            # guardrail stops in force (the stop register, this audit log) before it is
            # served (a running process judges a change against the document it serves).
            self._live: LiveFlags = shared_flags(
                flag_store, engine=engine, clock=clock, audit=self.audit.path
            )
        else:  # changes stay in this process: a private set over a copy of the document
            first = flag_store.read()
            flag_store.close()
            self._live = LiveFlags(
                MemoryFlagStore(first.snapshot, origin=first.origin), engine=engine, clock=clock
            )
            self._live.acquire()
        self._holds_live = True  # released once, by close()
        #: True once :meth:`close` was called (reads serve on; health is not ready).
        self.closed = False
        self._engine = self._live.engine
        if clock is not None and engine is None:
            self._engine.set_clock(clock)
        # The request path (below): the evaluator's SeedAPI, which holds this manager's
        # views; None until then (and for an engine of no evaluator's EngineCore).
        self._api: Any = None
        self._install_source(self._live.source)
        self._live.subscribe(self)
        # What the start refused before this manager listened (a guardrail stop held, a
        # stop register entry refused): audited like a running process's refusals.
        for refusal in self._live.take_start_refusals("flags"):
            self._emit_error(refusal, "load")
        # What the start wrote to the store before this manager listened (a retirement
        # of A/B tests dropped while no process of this host served it): audited too.
        for old, new, doc in self._live.take_start_writes():
            self._emit(old, new, "retire_ab_test", doc)
        _MANAGERS.add(self)
        self.usage = (
            start_usage_recording(state, enabled=record_usage, interval=usage_interval)
            if persist
            else None
        )
        # The seed calls a request makes (is_feature_enabled, get_ab_test_variant,
        # record_metric), served without a Python frame by the evaluator's SeedAPI
        # (same semantics as the methods below, which document them); a subclass that
        # overrides one keeps its override.
        impl = getattr(type(self._engine), "_impl", None)
        seed_api = getattr(impl, "SeedAPI", None)
        if seed_api is not None and isinstance(self._engine, impl.EngineCore):  # type: ignore[union-attr]
            # The logger's own method (one frame, no reference back to the manager).
            expose = self.exposures.expose if self.exposures is not None else _no_exposure
            api = seed_api(self._engine, {}, expose)
            api.views = self._views  # (from here on the views live in the SeedAPI)
            self._api = api
            if self.exposures is not None:
                # First exposures of str/int user ids are queued by the SeedAPI itself.
                self.exposures.attach(self._api)
            # record_metric's collaborators; the guardrails by a weak method, so the
            # SeedAPI holds no reference back to its manager.
            self._api.metrics_to(
                self.metrics.queue,
                self.metrics.record,
                weakref.WeakMethod(self.guardrails.counted),
                event_id_text,
                UNTAGGED,
            )
            # The request path's writers run before the first request needs them.
            self.metrics.start()
            cls, base = type(self), DynamicConfigurationManager
            if cls.is_feature_enabled is base.is_feature_enabled:
                self.is_feature_enabled = self._api.is_feature_enabled  # type: ignore[method-assign]
            if cls.get_ab_test_variant is base.get_ab_test_variant:
                self.get_ab_test_variant = self._api.get_ab_test_variant  # type: ignore[method-assign]
                # record_metric looks the variant up through get_ab_test_variant: served
                # by the SeedAPI only when neither is overridden.
                if cls.record_metric is base.record_metric:
                    self.record_metric = self._api.record_metric  # type: ignore[method-assign]

    @property
    def store(self) -> Any:
        """The :class:`~cfgcore.runtime.flagstore.FlagStore` the flags live in."""
        return self._live.store

    def _install_source(self, snapshot: Snapshot) -> None:
        """Serve ``snapshot`` (the document the engine has just swapped in) with its
        tests: this manager's views of it go live in one assignment, with the
        compiled snapshot they were made from (the ``_COMPILED, ...`` tuple)."""
        compiled = self._engine.snapshot()
        before: dict[str, Any] = self._views[_TESTS] if hasattr(self, "_plain_views") else {}
        tests = {k: v for k, v in snapshot.experiments.items() if isinstance(v, dict)}
        try:
            # A test gone (deleted here, in another process or in the file), or one
            # created again under its name (another "since"): the users logged were
            # that test's; the new one logs each of its users afresh, and its in-memory
            # summaries (``metrics``) start empty, as after delete_ab_test. A test
            # replaced or resumed keeps them (its users keep their variants): logging
            # them again would only duplicate their exposures. (The logger gives such
            # a test new dedup shards: requests still served by the earlier views
            # fill the old ones, never the new run's.)
            for name, meta in before.items():
                now = tests.get(name)
                if now is None or now.get("since") != meta.get("since"):
                    if self.exposures is not None:
                        self.exposures.forget(name)
                    self.metrics.forget(name)
            self._stamp_runs(tests)
        finally:
            # Whatever failed above, the views go live: without them this manager
            # would serve the earlier document for good.
            self._serve(compiled, snapshot, tests)

    def _serve(self, compiled: Any, snapshot: Snapshot, tests: dict[str, Any]) -> None:
        # The run every record of a test is tagged with (its since as this document
        # holds it), resolved once per document: a request looks it up with the test.
        # Readers attribute tagged records by it, not by their stamps, so a host still
        # serving an earlier run (whatever its clock says) adds nothing to a later one.
        from cfgcore.experiments.abtest import record_runs

        runs = record_runs(tests)
        # A stopped test (stop_ab_test, a guardrail rollback) serves its control to
        # everyone and collects nothing more: no exposures (its users would all be
        # logged in control) and no metric events (a user of another variant would be
        # credited to control), so its report covers the data up to the stop.
        recording = {k: v for k, v in tests.items() if v.get("status") != "stopped"}
        logger = self.exposures
        seen: dict[str, Any] = {
            k: (logger.seen_shards(k) if logger is not None and k in recording else False)
            for k in tests
        }
        views = (compiled, seen, recording, runs, snapshot, tests)
        api = self._api
        if api is not None:
            api.views = views  # one assignment: a request reads the old or the new views
        self._plain_views = views
        # The writers' own run tags (ExposureLogger.log, an expose given no views'
        # runs, MetricsStore.record): right after the views, so that a request the
        # earlier views serve until then tags its records with its own run. (The
        # SeedAPI's exposures, and those it hands to expose, carry their views' run.)
        if logger is not None:
            logger.runs = runs
        self.metrics.runs = runs

    @property
    def _views(self) -> tuple[Any, ...]:
        """What this manager serves, as one tuple (``_COMPILED, ...``): the SeedAPI's
        when there is one (the request path's own), else this manager's."""
        api = self._api
        return api.views if api is not None else self._plain_views  # type: ignore[no-any-return]

    @property
    def _source(self) -> Snapshot:
        return self._views[_SOURCE]  # type: ignore[no-any-return]

    @property
    def _tests(self) -> dict[str, Any]:
        return self._views[_TESTS]  # type: ignore[no-any-return]

    @property
    def _recording(self) -> dict[str, Any]:
        return self._views[_RECORDING]  # type: ignore[no-any-return]

    @property
    def _seen(self) -> dict[str, Any]:
        return self._views[_SEEN]  # type: ignore[no-any-return]

    def _stamp_runs(self, tests: dict[str, Any]) -> None:
        """Tell the writers the lowest stamp of each test created again after a
        deletion: just after its ``since``, so that a clock stepped back since (or
        behind the host that deleted the earlier run) never stamps this run's records
        as the earlier run's, which every reader leaves out (``record_cutoffs``).

        Set without waiting for the writers: a floor applies to the records of its own
        run only (tagged with that ``since``, ``_floored_run``), so the earlier run's
        records still queued (tagged with their run) keep their stamps however late
        they are written. (Flushing first held the manager's views of the new
        document back by up to 2 s while the engine already served it.)"""
        from cfgcore.experiments.abtest import record_cutoffs

        floors = {n: math.nextafter(s, math.inf) for n, s in record_cutoffs(tests).items()}
        writers = [w for w in (self.exposures, getattr(self, "metrics", None)) if w is not None]
        for writer in writers:
            before = getattr(writer, "floors", None)
            if before is not None and before != floors:
                writer.floors = floors

    @property
    def engine(self) -> Any:
        """The flag engine serving every check."""
        return self._engine

    @property
    def snapshot(self) -> Snapshot:
        """The decoded snapshot that is live now."""
        return self._source

    # -- hot path ------------------------------------------------------------------

    def is_feature_enabled(self, flag: Any, user_context: Mapping[str, Any] | None = None) -> bool:
        """True if ``flag`` (FeatureFlag, any Enum member or a flag name) is on for
        ``user_context``; False for unknown flags. Never raises.

        ``user_context`` is a dict, or ``manager.engine.context(dict)`` bound once per
        request: each attribute is then read once per request instead of on every check
        (benchmarks/RESULTS.md). An instance serves this through the evaluator's
        ``SeedAPI`` (same semantics, no Python frame); this body is the reference.
        """
        # Enum members carry their value in _value_; a str has no such attribute.
        try:
            name = getattr(flag, "_value_", flag)
        except Exception:  # a _value_ that raises: no such flag, as the SeedAPI says
            return False
        return _served(self._engine, self._views[_COMPILED], 0, name, user_context)  # type: ignore[no-any-return]

    def get_ab_test_variant(
        self, test_name: str, user_context: Mapping[str, Any] | None = None
    ) -> str | None:
        """The variant of ``test_name`` for this user, or None when the user is not in the
        test (outside its window, holdout, other test of its layer, no user id, unknown
        test). A stopped test (guardrail rollback, :meth:`stop_ab_test`) serves its control
        to everyone and logs no more exposures. The first assignment per user is sent to
        the exposure log. Never raises."""
        # One lookup answers "is it a test" and gives the exposure dedup shards (False
        # when exposure logging is off): the steady state is a set membership test.
        name = exact_name(test_name)  # a str subclass by its value; its hash never runs
        if name is None:
            return None
        test_name = name
        views = self._views  # one read: the test and its flag from one document
        seen = views[_SEEN].get(test_name)
        if seen is None:
            return None
        v = _served(self._engine, views[_COMPILED], 1, test_name, user_context)
        # NO_VARIANT inlined (no global lookup); a None from the engine falls through
        # as None, and `None == str` is a cheap False.
        if v == "__none__" or v is None:
            return None
        if seen is not False:
            try:
                uid = user_context["user_id"]  # type: ignore[index]
                if type(uid) is not str:
                    uid = user_id_text(uid)  # 42 and "42": one user (the logger's key)
                if uid not in seen[hash(uid) & (DEDUP_SHARDS - 1)]:
                    self._expose(test_name, v, user_context, views)
            except Exception:  # no user_id key, a Context object, an unhashable id
                self._expose(test_name, v, user_context, views)
        return v

    def log_exposure(self, test_name: Any, variant: Any, user_context: Any) -> None:
        """Log that the user ``user_context`` names was served ``variant`` of the A/B
        test ``test_name`` by a path other than :meth:`get_ab_test_variant` (the
        OpenFeature provider given ``experiments=`` evaluates the test's flag itself):
        once per user, as :meth:`get_ab_test_variant` logs it. Without this the users
        the provider assigned would be missing from the report, and their tracking
        events (:meth:`track_metric`) would count for nobody. Nothing for a flag that is not a
        test, a stopped test, no variant or exposure logging off. Never raises."""
        try:
            name = exact_name(test_name)
            if name is None or exact_name(variant) in (None, NO_VARIANT):
                return
            views = self._views  # one read: the test's dedup and run from one document
            seen = views[_SEEN].get(name)
            if seen is not None and seen is not False:
                self._expose(name, variant, user_context, views)
        except Exception:  # a hostile variant or context: no exposure, no raise
            return

    def _expose(
        self, test_name: str, variant: str, user_context: Any, views: tuple[Any, ...]
    ) -> None:
        # Logs the id the engine bucketed by: user_id unless it is not a usable id
        # (None, a list, ...), then targeting_key (the engine's default bucket_by), in
        # the dedup shards and with the run of ``views``, the document that served it.
        if self.exposures is not None:
            self.exposures.expose(
                test_name,
                variant,
                user_context,
                seen=views[_SEEN].get(test_name),
                runs=views[_RUNS],
            )

    # -- feature flags -------------------------------------------------------------

    @guarded("flag.set", lambda self, flag, *a, **kw: _flag_target(flag))
    def set_feature_flag(
        self,
        flag: Any,
        enabled: bool,
        rollout_percentage: float = 100.0,
        *,
        actor: str | None = None,
    ) -> None:
        """Switch ``flag`` on or off and set the share of eligible users who get it.

        Targeting rules stay: ``rollout_percentage`` applies to the users they let
        through (bucketed by user id, salted by the flag name, so raising it only adds
        users). An unknown flag is created (on for everyone, then rolled out). Raises
        ConfigError (nothing changes) on a bad percentage (anything but a number
        within 0..100: a bool, text such as ``"50"``, None, NaN), an ``enabled`` that
        is not True/False (``"false"`` would be truthy), or a non-boolean flag.
        """
        key = flag_key(flag)
        self._refuse_internal(key)
        self._refuse_non_switch(key, enabled)
        # A number by its value, never a bool (float(True) rolled the flag out to 1 % of
        # users) nor text ("50" is the caller's to parse: cfgcore._numbers).
        pct = real_number(rollout_percentage)
        if pct is None or not 0.0 <= pct <= 100.0:
            raise self._refused(
                (key, "rollout_percentage"),
                f"must be a number within 0..100, got {shown(rollout_percentage)}",
            )

        self._mutate(rollout_change(key, bool(enabled), pct, self._where), "set_feature_flag")

    @property
    def _where(self) -> str | None:
        """What a refused change names as its file: the flag store the manager writes
        (:attr:`flags_file`); None for one that keeps its changes in this process
        (``persist=False``), which writes no file: its refusals are key paths and
        messages, as a problem about a value passed in code is
        (:class:`~cfgcore.errors.Problem`)."""
        return self.flags_file if self.persist else None

    def _refused(self, path: tuple[Any, ...], message: str) -> ConfigError:
        """The refusal of an argument: the key path ``flags.KEY...`` it would have
        changed (``path``: the flag key, then the fields and indexes below it, a key
        the dotted form cannot show quoted) and ``message``, naming :attr:`_where`."""
        at = child_key_path("flags", path[0]) + "".join(map(key_segment, path[1:]))
        return ConfigError([Problem(path=at, message=message, file=self._where)])

    def _named(self, problems: Iterable[Problem]) -> list[Problem]:
        """``problems`` with every name of the store they were found in (none, its URL,
        its file, the document a ``persist=False`` manager's private copy started from,
        ``memory://...``) replaced by :attr:`_where`: a refusal names the store once,
        as the user knows it, and a ``persist=False`` manager's none. A problem that
        names another file (a secret reference's) keeps it."""
        store = self._live.store
        ours = {None, self.flags_file, store.url, getattr(store, "path", None)}
        if store.kind == "memory":
            ours.add(getattr(store, "origin", None))
        where = self._where
        return [dataclasses.replace(p, file=where) if p.file in ours else p for p in problems]

    def _refuse_internal(self, key: str) -> None:
        if is_internal_flag(key):
            raise self._refused((key,), "reserved for experiment layers")

    def _refuse_non_switch(self, key: str, enabled: Any) -> None:
        # bool("false") is True: a flag switched "off" from a form or a CLI string would
        # go on for everyone. Only true/false (or 1/0) are switches.
        if type(enabled) is not bool and not (type(enabled) is int and enabled in (0, 1)):
            raise self._refused((key, "enabled"), f"must be true or false, got {enabled!r}")

    @guarded("flag.set", lambda self, flag, *a, **kw: _flag_target(flag))
    def register_custom_feature_flag(
        self, flag: Any, *, description: str = "", enabled: bool = False, actor: str | None = None
    ) -> bool:
        """Add a boolean flag (an Enum member or a name), off unless ``enabled``.

        Returns True if the flag was created, False if it already existed (unchanged).
        An ``enabled`` that is not True/False (``"false"`` would be truthy) raises
        ConfigError.
        """
        key = flag_key(flag)
        # derive_flags replaces such flags: it was "created" (True) and never served.
        self._refuse_internal(key)
        # null would be persisted and refused on load; a str subclass is stored as the
        # text it holds (msgspec refuses to write one), a lone surrogate is no text.
        text = exact_name(description)
        if text is None:
            raise self._refused((key, "description"), "must be a string (no lone surrogate)")
        description = text
        self._refuse_non_switch(key, enabled)
        if isinstance(flag, Enum):
            self._custom[key] = flag
        if key in self._source.flags:
            return False

        self._mutate(custom_flag_change(key, description, enabled), "register_custom_feature_flag")
        return True

    @guarded("flag.set", lambda self, flag, *a, **kw: _flag_target(flag))
    def set_flag_dependencies(
        self, flag: Any, depends_on: Iterable[Any], *, actor: str | None = None
    ) -> None:
        """Make ``flag`` require every flag of ``depends_on`` to be on (prerequisites).

        A ``(flag, variant)`` pair requires that variant instead. Unknown flags and
        dependency cycles raise ConfigError and change nothing.
        """
        key = flag_key(flag)
        pres: list[str | Prerequisite] = []
        at = (key, "prerequisites")
        if isinstance(depends_on, str | Enum):
            # One flag: a str iterated by character asked for a flag per letter.
            depends_on = [depends_on]
        elif not isinstance(depends_on, Iterable):
            raise self._refused(
                at,
                f"expected flags (or (flag, variant) pairs), got a {type(depends_on).__name__}",
            )
        for i, dep in enumerate(depends_on):
            if isinstance(dep, tuple):
                if len(dep) != 2:
                    raise self._refused(
                        (*at, i),
                        f"expected a flag or a (flag, variant) pair, got a tuple of {len(dep)}",
                    )
                # A variant is named as a flag is: an Enum member by its value, a str
                # subclass by its text (str() of either named another variant).
                name = dep[1].value if isinstance(dep[1], Enum) else dep[1]
                variant = exact_name(name)
                if variant is None:
                    got = repr(name)[:60] if type(name) is str else f"a {type(name).__name__}"
                    raise self._refused(
                        (*at, i, "variant"),
                        "must be a variant name (a string, no lone surrogate), "
                        f"got {printable_name(got)}",
                    )
                pres.append(Prerequisite(flag=flag_key(dep[0]), variant=variant))
            else:
                pres.append(flag_key(dep))

        self._mutate(dependencies_change(key, pres, self._where), "set_flag_dependencies")

    @guarded("flag.delete", lambda self, flag, **kw: _flag_target(flag))
    def delete_feature_flag(self, flag: Any, *, actor: str | None = None) -> bool:
        """Remove ``flag`` from the flag store, for this process and every other one
        serving the store. Returns False if there is no such flag.

        Refused while another flag or an A/B test lists it as a prerequisite, or when
        it is an A/B test's own flag (:meth:`delete_ab_test` removes those): raises
        :class:`~cfgcore.experiments.features.FlagInUseError` naming the dependents,
        and nothing is written. Audited and announced like any flag change.
        """
        key = flag_key(flag)
        self._refuse_internal(key)
        try:
            self._mutate(delete_change(key, self._where), "delete_feature_flag")
        except UnknownFlagError:
            return False
        self._custom.pop(key, None)
        return True

    def get_feature_flags_status(self) -> dict[str, dict[str, Any]]:
        """Every boolean feature flag: ``enabled``, ``rollout_percentage``, ``targeted``
        (has conditions), ``prerequisites``, ``description``, ``tags``."""
        return feature_status(self._source, self._tests)

    # -- A/B tests (cfgcore.experiments.abtest.ABTests does the work) ---------------

    @guarded("experiment.create", lambda self, ab_test, **kw: _test_name(ab_test))
    def create_ab_test(
        self,
        ab_test: ABTestConfiguration,
        *,
        start: bool = True,
        actor: str | None = None,
        replace: bool = True,
    ) -> bool:
        """Create (or replace) an A/B test; False if it is invalid, with the reason in
        :attr:`last_error` (and :attr:`last_problems`). Creating a test identical to the
        live one is a no-op that returns True. ``start=False`` creates it stopped, serving
        its control until it is created again with ``start=True`` (``cfgcore experiment
        create`` without ``--start``).

        ``replace=False`` (``cfgcore experiment create`` without ``--replace``) never
        writes over a stored test of that name: the same test is a no-op (True) in
        whatever state it is, unless ``start`` would start it while stopped; any other
        is refused (False) naming the stored fields it would drop or change. A replacement
        keeps only what ``ab_test`` holds: to change some fields of a running test, use
        :meth:`update_ab_test`.

        False too, with the reason in :attr:`last_error`, when the test was written but
        not started: the fleet's guardrail stop register holds it stopped (a Redis store;
        see docs/fleet.md). It is then listed stopped with the register's reason, its
        document records the stop, and creating it again with ``start=True`` (``cfgcore
        experiment start NAME``) resumes it, audited."""
        return self._ab_tests.create(ab_test, start=start, replace=replace)

    @guarded("experiment.create", lambda self, test_name, *a, **kw: _name_target(test_name))
    def update_ab_test(
        self,
        test_name: str,
        changes: Mapping[str, Any],
        *,
        derive: Callable[[ABTestConfiguration], Mapping[str, Any]] | None = None,
        actor: str | None = None,
    ) -> bool:
        """Change only the fields ``changes`` names of the stored test ``test_name``
        (any :class:`ABTestConfiguration` field but ``test_name``) and keep the rest: its
        other fields and its state. A running test keeps running; one not started, or
        stopped by hand or by its guardrail, stays stopped with its reason (nothing but
        :meth:`create_ab_test` with ``start=True``, ``cfgcore experiment start``,
        resumes it). ``configurations`` replaces only the variants it names. A field's
        empty value removes it: ``{"guardrail_metrics": {}}`` (a guardrail that keeps
        stopping the test wrongly; a test it stopped stays stopped), ``{"success_metrics":
        []}``, ``{"metric_types": {}}`` (the kinds are then inferred), ``{"targeting":
        None}``; the events recorded stay in every report. Judged as a
        replacement is (the fields validated, no enrolled user moved: raising
        ``layer_percentage`` only adds users), audited as ``update_ab_test``, under the
        access policy's ``experiment.create``. False with the reason in
        :attr:`last_error` for an unknown test or a refused change. The fields it
        changed in the stored test are in :attr:`last_changed` (the change is made to
        the newest stored document, which this process may not serve yet: those are
        what changed there).

        ``derive``: for changes that depend on the test (an end date counted from its
        start, a configuration for each variant it does not have yet), a function
        given that stored test (an :class:`ABTestConfiguration`, on the newest stored
        document under the store's lock, where the change is judged: not the test
        this process serves, which another process may have changed since) and
        returning more changes ``{field: value}``, checked as ``changes`` are and made
        over them. It may be called more than once (a store that retries a write) and
        should only compute; a :class:`ConfigError` it raises refuses the update
        (False), any other exception is raised to the caller; nothing is written then.

        >>> manager.update_ab_test("checkout", {"layer_percentage": 20})  # doctest: +SKIP
        True
        >>> manager.update_ab_test("checkout", {"guardrail_metrics": {}})  # doctest: +SKIP
        True
        >>> manager.update_ab_test("checkout", {}, derive=lambda test: {  # doctest: +SKIP
        ...     "end_date": test.start_date + timedelta(days=7)})
        True
        """
        return self._ab_tests.update(test_name, changes, derive=derive)

    def get_ab_test(self, test_name: str) -> ABTestConfiguration | None:
        """The configuration of a live test, or None. A stored record of the wrong
        shape (edited by hand) raises ConfigError naming the file and the field."""
        return self._ab_tests.get(test_name)

    def list_ab_tests(self) -> dict[str, dict[str, Any]]:
        """``{test: stored record}`` (status, split, dates, metrics, layer ...)."""
        return self._ab_tests.list()

    def get_ab_test_config(
        self, test_name: str, variant: str | None = None
    ) -> dict[str, Any] | None:
        """A copy of ``variant``'s configuration; the control's when ``variant`` is None
        (the user is not in the test). None for an unknown test or variant."""
        return self._ab_tests.config(test_name, variant)

    @guarded("experiment.stop", lambda self, test_name, *a, **kw: _name_target(test_name))
    def stop_ab_test(
        self,
        test_name: str,
        reason: str = "stopped",
        *,
        source: str = "stop_ab_test",
        actor: str | None = None,
    ) -> bool:
        """Send all of the test's traffic to control (the window still applies).
        Made on the newest stored document, under the store's lock, which this process
        may not serve yet (another process created the test a moment ago) or may have
        refused: False, nothing written, when that document holds no such test (what
        this process serves is not asked). A ConfigError naming the file and key path
        when the store refuses the write: the stored document's own problem, which
        the stop keeps (repair it, or delete the test that has it)."""
        return self._ab_tests.stop(test_name, reason, source=source)

    @guarded("experiment.delete", lambda self, test_name, **kw: _name_target(test_name))
    def delete_ab_test(self, test_name: str, *, actor: str | None = None) -> bool:
        """Remove a test and its flag, recording its retirement (its exposures and
        metric events stay in the logs, left out of a test created again under its
        name). Made on the newest stored document, under the store's lock, as
        :meth:`stop_ab_test` is: False, nothing written, when that document holds no
        such test (another process deleted it since this one read the store; said in
        :attr:`last_error` and :attr:`last_problems`, as a refused create or update
        is: naming the store, or no file for a manager that keeps its changes in this
        process, ``persist=False``);
        ConfigError naming the file and key path when the store refuses the write."""
        return self._ab_tests.delete(test_name)

    @guarded("experiment.holdout", lambda self, percentage, **kw: "holdout")
    def set_holdout_percentage(self, percentage: float, *, actor: str | None = None) -> None:
        """Keep ``percentage`` percent of users out of every A/B test (0 removes the
        holdout). Holdout users get no variant from any test. ``percentage`` is a number
        within [0, 100) (a NumPy scalar, Fraction or Decimal too); a bool, text such as
        ``"25"``, None or NaN is a ConfigError naming ``metadata.holdout_percentage``."""
        self._ab_tests.set_holdout_percentage(percentage)

    # -- metrics and analysis ------------------------------------------------------

    def record_metric(
        self,
        test_name: str,
        metric: str,
        value: float = 1.0,
        *,
        user_context: Mapping[str, Any] | None = None,
        user_id: str | None = None,
        variant: str | None = None,
        event_id: str | int | None = None,
    ) -> bool:
        """Record one observation of ``metric`` for a user of ``test_name``.

        The variant is looked up from ``user_context`` (or ``{"user_id": user_id}``)
        unless given, through :meth:`get_ab_test_variant`: naming the test says the
        user takes part in it here, so a user not exposed yet is assigned and exposed
        as that call does (once). An event that is not about one test (a purchase that
        several tests measure: OpenFeature's ``track``) goes through
        :meth:`track_metric`, which exposes nobody. Returns False (nothing recorded)
        when the user is not in the test, when the test is stopped (its report covers
        the data up to the stop), when ``value`` is not a finite real number (a bool,
        text such as ``"1.5"``, None, NaN or an infinity: :mod:`cfgcore._numbers`) or is
        beyond ``MAX_METRIC_VALUE``, when the test, metric or given variant is not a
        str, when the given variant is not one the test serves (a misspelt one, or
        ``__none__``), or when the event was
        dropped (the metric writer's backlog is full or closed: counted in
        ``metrics.dropped``). Every ``guardrail_check_every`` recorded events of a
        test with guardrails, the guardrails are checked (:meth:`check_guardrails`).

        ``event_id``: the application's id of the event (an order number, a message id;
        a str or int of 1 to 256 characters, else False before the lookup), so that a
        call retried is one event: an event whose test, user, metric and id were
        recorded before counts once, in this process's summaries and in every report
        (:mod:`cfgcore.experiments.event_ids`). Without one, cfgcore gives each event an
        id of its own as it writes it.
        """
        parts = metric_event_parts(test_name, metric, value, user_context, user_id)
        if parts is None:
            return False  # before the lookup: no exposure is logged
        eid = None
        if event_id is not None:
            try:
                eid = event_id_text(event_id)
            except Exception:  # (as the SeedAPI: a hostile id is no id)
                eid = None
            if eid is None:
                return False
        ctx, user_id, name, metric_name, number = parts
        given = variant is not None
        if variant is None:
            variant = self.get_ab_test_variant(name, ctx)
            if variant is None:
                return False
        else:
            variant = exact_name(variant)
            if variant is None:
                return False
        views = self._views
        meta = views[_RECORDING].get(name)
        if meta is None:
            return False  # no such test, or a stopped one
        if given and not serves_variant(meta, variant):
            return False  # a variant the test does not have (a typo): no report counts it
        # Returns at once: summaries and the metrics file are updated off-thread. The
        # event goes straight to the writer's queue (MetricsStore.record's own fast path).
        queue = self.metrics.queue
        # Not recorded (the writer's backlog full, closed, or the value refused): False,
        # and not counted toward the next guardrail check.
        if queue is not None:
            event: tuple[Any, ...] = (name, variant, metric_name, number, user_id, time.time())
            run = views[_RUNS].get(name, UNTAGGED)
            if eid is not None:  # nine items: the run slot, then the id
                event = (*event, False, run, eid)
            elif run is not UNTAGGED:  # tagged with its run (MetricsStore.runs)
                event = (*event, False, run)
            if queue(event) is False:
                return False
        elif eid is not None:
            if (
                self.metrics.record(name, variant, metric_name, number, user_id, event_id=eid)
                is False
            ):
                return False
        elif self.metrics.record(name, variant, metric_name, number, user_id) is False:
            return False
        if meta.get("guardrail_metrics"):
            self.guardrails.counted(name, meta)
        return True

    def track_metric(
        self,
        test_name: str,
        metric: str,
        value: float = 1.0,
        *,
        user_context: Mapping[str, Any] | None = None,
        user_id: str | None = None,
        event_id: str | int | None = None,
    ) -> bool:
        """Record one observation of ``metric`` that counts for ``test_name`` only if
        the user is exposed to the test: an event of the application that any number
        of tests may measure (OpenFeature's ``track``), not a claim that the user took
        part in this one.

        Attribution as experiment platforms make it: the event is filed under the
        variant the user is assigned (sticky: the one an exposure names) and marked
        ``exposed_only`` in the metric log; every report (this process's summaries,
        :meth:`analyze` over the shared logs, ``cfgcore experiment report``) counts it
        once the user's exposure to that variant is logged, by any process, before or
        after the event (until then it is held aside, outside every result). It never
        logs an exposure: a user who tracked events but never saw the test adds
        neither to its exposures nor to its results. False (nothing recorded) when the
        user is not in the test, the test is stopped or unknown, there is no user id
        (nothing to join with an exposure), the value is refused or the event dropped,
        as for :meth:`record_metric`. Never raises on bad data.

        With exposure logging off (``log_exposures=False``) no exposure is ever logged
        to join with: the event counts for the user's assigned variant at once, as
        :meth:`record_metric`'s do (the reports' users are then those with an event;
        the assignment is the test's random split, so the variants compare fairly).

        ``event_id``: the application's id of the event (an order number, a message
        id; a str or int of 1 to 256 characters, else False), so that a call retried
        is one event: every report counts the user's events of ``metric`` in the test
        with one id once (:mod:`cfgcore.experiments.event_ids`). Without one, cfgcore
        gives each event an id of its own as it writes it.
        """
        parts = metric_event_parts(test_name, metric, value, user_context, user_id)
        if parts is None:
            return False
        eid = None
        if event_id is not None:
            eid = event_id_text(event_id)
            if eid is None:
                return False
        ctx, user, name, metric_name, number = parts
        views = self._views  # one read: the test, its flag and its run from one document
        joined = views[_SEEN].get(name) is not False  # False: exposure logging off
        if joined and user_id is None:
            try:
                # (a key equal to "user_id" whose __eq__ raises: no user of its own)
                as_is = type(ctx) is dict and type(ctx.get("user_id")) is str
            except Exception:
                as_is = False
            if not as_is:
                # Filed under the user its exposure is (user_id, else targeting_key
                # when the user_id is no id the engine buckets by), or the two never
                # join. (An exact str user_id in a dict, the common case, is that user
                # already.)
                user = exposure_user(ctx)
        meta = views[_RECORDING].get(name)
        if meta is None or (joined and user is None):
            return False
        try:
            # the engine's answer: no exposure
            variant = _served(self._engine, views[_COMPILED], 1, name, ctx)
        except Exception:  # a hostile context: no variant, as the engine would say
            return False
        if variant is None or variant == NO_VARIANT:
            return False
        queue = self.metrics.queue
        if queue is not None:
            event: tuple[Any, ...]
            run = views[_RUNS].get(name, UNTAGGED)
            if eid is not None:
                event = (name, variant, metric_name, number, user, time.time(), joined, run, eid)
            elif run is not UNTAGGED:  # tagged with its run (MetricsStore.runs)
                event = (name, variant, metric_name, number, user, time.time(), joined, run)
            elif joined:
                event = (name, variant, metric_name, number, user, time.time(), True)
            else:
                event = (name, variant, metric_name, number, user, time.time())
            if queue(event) is False:
                return False
        elif not self.metrics.record(
            name, variant, metric_name, number, user, exposed_only=joined, event_id=eid
        ):
            return False
        if meta.get("guardrail_metrics"):
            self.guardrails.counted(name, meta)
        return True

    def analyze(self, test_name: str, *, confidence: float = 0.95) -> Any:
        """Per-variant results of a test: see :func:`cfgcore.experiments.analysis.analyze`.

        With a state directory, every process's events as the shared logs hold them (as
        ``cfgcore experiment report`` reads them); a test analysed once is then kept up
        to date from the logs (per-user state for it, about 40-80 bytes per user and
        metric), and log lines it could not use are counted and named in the report's
        ``unusable_lines`` / ``unusable_examples``. Without one (``persist=False``), this
        process's events. ConfigError, naming the file and the key path, for an unknown
        test or a stored record of the wrong shape (a ``traffic_split`` that is no
        mapping, say)."""
        return self.guardrails.analyze(test_name, confidence=confidence)

    def check_guardrails(self, test_name: str) -> list[str]:
        """Stop the test if a guardrail metric is significantly worse in a variant
        (one-sided always-valid sequential test: a harmless test is rolled back with
        probability at most ``guardrail_alpha`` however often it is checked; once every
        variant has ``guardrail_min_samples`` users). Returns the violations
        found."""
        return self.guardrails.check(test_name)

    # -- listeners and events -----------------------------------------------------

    def register_change_listener(self, listener: Any) -> Any:
        """Call ``listener`` (callable or object with ``on_config_changed``, sync or async)
        with a ConfigChangeEvent for every changed flag or test."""
        return self.events.register(listener)

    def unregister_change_listener(self, listener: Any) -> bool:
        """Stop calling ``listener``."""
        return self.events.unregister(listener)

    # The guardrail settings stay settable, judged as the constructor judges them: a
    # check interval of 0 set later raised ZeroDivisionError from every record_metric of
    # a guarded test (the request path).
    @property
    def guardrail_alpha(self) -> float:
        """See the class docstring."""
        return self._guardrail_alpha

    @guardrail_alpha.setter
    def guardrail_alpha(self, value: float) -> None:
        self._guardrail_alpha = _guardrail_alpha(value)

    def _now(self) -> float:
        # An event's time: a clock that fails stamps by the system clock, so that the
        # change that went live is still audited and told (and the steps after it run).
        return read_stamp(self._clock) if self._clock is not None else time.time()

    def flags_serving(self, new: Snapshot) -> None:
        """The flag set's engine has just swapped ``new`` in: serve it (this manager's
        views of it go live in one assignment), before the set says it is live."""
        self._install_source(new)

    def flags_changed(
        self, old: Snapshot, new: Snapshot, source: str, doc: FlagDocument, initiator: Any
    ) -> None:
        """Every flag document that goes live (through this manager, the configuration
        manager, a file edit or the fleet store): refresh the test records (told first
        by :meth:`flags_serving`), then emit one event per changed flag or test."""
        if self._source is not new:
            self._install_source(new)
        over = self._live.written_over
        # Rules the document places ahead of a running test's split (logged by the
        # flag set): audited on the change of the flag that holds them.
        warned = list(self._live.warnings)
        if over is None:
            self._emit(old, new, source, doc, warned)
        else:
            # A change made through cfgcore on a stored document this process did not
            # serve (a newer one not read yet, one it refused): audited as the change
            # it made to that document, and the document's own difference from what
            # served as the store's (its writer's, as a reload tells it).
            stored_doc, stored = over
            warned = self._emit(old, stored, self._live.store.kind, stored_doc, warned, rest=False)
            self._emit(stored, new, source, doc, warned)
        self.guardrails.flags_changed(new)
        # Stops held across restarts whatever becomes of the audit log.
        record_stops(self._live.store, self.audit.path, old, new)

    def flags_rejected(self, error: ConfigError, source: str, origin: str) -> None:
        """A flag document was refused; the live flags keep serving."""
        self._emit_error(error, source)
        self.guardrails.flags_rejected(error)

    def _emit(
        self,
        old: Snapshot,
        new: Snapshot,
        source: str,
        doc: FlagDocument | None = None,
        warnings: Sequence[Problem] = (),
        *,
        rest: bool = True,
    ) -> list[Problem]:
        """Audit and announce the change from ``old`` to ``new``, ``warnings`` on the
        events of the flags they concern (``rest``: those of an unchanged flag on the
        first event); returns the warnings left unplaced."""
        actor = (doc.writer.get("actor") if doc is not None else None) or current_actor()
        events = change_events(old, new, source, self._engine.version, self._now(), actor, doc)
        events, left = with_warnings(events, warnings, rest=rest)
        self.audit.record_all(events)
        self.events.emit(events)
        return left

    def _emit_error(self, exc: BaseException, source: str) -> None:
        event = ConfigChangeEvent(
            self.flags_file, None, None, source, self._engine.version, self._now(),
            kind="error", error=exc, actor=current_actor(),
        )  # fmt: skip
        self.audit.record(event)
        self.events.emit([event])

    # -- the update path ----------------------------------------------------------

    def _mutate(
        self, change: Callable[[Snapshot], Snapshot], source: str, *, actor: str | None = None
    ) -> Snapshot:
        """Apply ``change`` through the flag store: to its newest document, under its lock
        (or compare-and-set), compiled incrementally, written atomically, then swapped in.
        Raises ConfigError and changes nothing when the result does not compile. Returns
        the snapshot written (which may differ from what ``change`` made: a test the
        fleet's guardrail stop register holds stopped is written stopped)."""
        who = actor or current_actor()
        try:
            return self._live.update(change, source=source, actor=who, initiator=self)[1]
        except ConfigError as exc:
            # Named as this manager's other refusals are (the store's URL, memory://...
            # for persist=False, is no name its user knows); the same exception.
            named = self._named(exc.problems)
            if named != exc.problems:
                exc.relocate(named)
            raise

    def save(self) -> None:
        """Write the live flags to the store now (atomically)."""
        self._live.update(lambda snap: snap, source="save")

    def reload(self) -> bool:
        """Re-read the store; swap its document in if it changed and is valid.

        A bad document keeps the live flags and emits an error event (``kind="error"``)
        naming the file and every problem. Returns True if new flags went live.
        """
        return self._live.refresh("reload")

    def health(self, *, max_staleness: float | None = None) -> Any:
        """Liveness (a trivial evaluation against the live snapshot) and readiness (a
        flag document compiled and, for a Redis store, followed or confirmed within
        ``max_staleness`` seconds, default 60) with the checks behind each: a
        :class:`cfgcore.observability.health.HealthReport`. Not ready once closed."""
        from cfgcore.observability.health import flags_health

        return flags_health(self._live, max_staleness, manager=self)

    # -- file watching --------------------------------------------------------------

    async def start_file_watching(
        self,
        *,
        debounce_ms: int | None = None,
        poll_interval: float = 0.5,
        stall_after: float | None = None,
    ) -> None:
        """Watch the flags file and reload it on change (returns once watching).

        Runs a background watcher thread (watchfiles, via the shared hot-reload
        watcher); async change listeners run on the calling event loop.

        ``stall_after``: seconds without a turn of the watcher's loop (a reload or a
        flag subscriber blocked on a lock) after which :meth:`health` reports not
        ready; a finite number > 0, else ValueError. Default:
        ``CFGCORE_WATCHER_STALL_SECONDS``, else ``max(30, 20 x poll_interval)``. Given
        again to a running watcher, it applies from then on. ``poll_interval``: a
        finite number of seconds > 0; ``debounce_ms``: a whole number of milliseconds
        >= 1 (default 50); else ValueError, even for a watcher already running.
        """
        from cfgcore.config.watcher import (
            DEFAULT_DEBOUNCE_MS,
            DirectoryWatcher,
            check_milliseconds,
            check_poll_interval,
            check_stall_after,
        )
        from cfgcore.observability import instruments

        # Checked before anything starts, and when the watcher already runs (which
        # keeps its settings): a bad number is refused whenever it is given.
        debounce = (
            DEFAULT_DEBOUNCE_MS if debounce_ms is None
            else check_milliseconds("debounce_ms", debounce_ms)
        )  # fmt: skip
        poll_interval = check_poll_interval(poll_interval)
        bound = None if stall_after is None else check_stall_after(stall_after)
        self.events.set_loop(asyncio.get_running_loop())
        if self._watcher is not None and self._watcher.running:
            if bound is not None:
                self._watcher.stall_after = bound
            return
        directory = os.path.dirname(self.flags_file)
        os.makedirs(directory, exist_ok=True)
        self._watcher = DirectoryWatcher(
            [directory],
            lambda _changes: None if self._watched_reload() else None,
            poll=lambda: None if self._watched_reload() else None,
            debounce_ms=debounce,
            poll_interval=poll_interval,
            name="cfgcore-dynamic-flags",
            stall_after=bound,
        )
        instruments.track_watcher(self._watcher, store=self._live.store.url)
        await asyncio.to_thread(self._watcher.start)

    def _watched_reload(self) -> bool:
        """:meth:`reload` for the watcher: waits until the file has settled, so a flags
        file written in place in chunks never serves its first chunk (issue 10)."""
        # The change listeners run on the notifier thread: a slow or stuck listener
        # must not hold up the watcher's next reload (as the fleet follower's).
        with deferred_delivery(background=True):
            return self._live.refresh(
                "reload", settle_ms=self.settle_ms, max_wait_ms=self.max_settle_wait_ms
            )

    async def stop_file_watching(self) -> None:
        """Stop watching the flags file."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            await asyncio.to_thread(watcher.stop)

    def flush(self, timeout: float = 5.0) -> bool:
        """Write what the background writers hold: the exposures logged and the metric
        events recorded so far (the exposures first: the metric log's reports count
        them), then audit entries waiting for the audit log's lock. True when all of it
        was written within ``timeout`` seconds (a finite number >= 0, else ValueError).
        Unlike :meth:`close`, the manager goes on serving and recording."""
        timeout = wait_seconds("timeout", timeout)
        deadline = time.monotonic() + timeout
        written = self.exposures is None or self.exposures.flush(timeout)
        written = self.metrics.flush(max(0.0, deadline - time.monotonic())) and written
        return self.audit.flush(max(0.0, deadline - time.monotonic())) and written

    def close(self) -> None:
        """Stop the watcher, flush the exposure log and let go of the flag set: the
        last manager of a store to close stops its fleet follower and closes its
        connections. Evaluation keeps serving the last flags; changes need a new
        manager, and :meth:`health` is not ready from now on."""
        self.closed = True
        self._stop_sources()
        self.events.close()
        self._release_usage()

    async def aclose(self) -> None:
        """:meth:`close` for code running in an event loop (a FastAPI/Starlette lifespan's
        shutdown, the end of ``asyncio.run(main())``): ``await manager.aclose()``.

        Does what :meth:`close` does (the blocking parts in a worker thread), but waits
        for the change listeners without blocking the loop: the events of the changes
        made by then reach every listener and each async listener's call returns before
        it does (5 s at most in all: a listener stuck longer is left behind, logged), so
        none is lost when the loop ends right after, as it may be after :meth:`close`
        (which cannot wait for this loop's listeners from inside it). A listener that
        raises is logged, as ever, never raised here; one that awaits this does not
        wait for itself."""
        self.closed = True
        await asyncio.to_thread(self._stop_sources)
        await self.events.aclose()
        await asyncio.to_thread(self._release_usage)

    def _stop_sources(self) -> None:
        """Stop the watcher, let go of the flag set, and write and close the logs."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()
        with self._lock:
            holds, self._holds_live = self._holds_live, False
        if holds:
            self._live.release(self)
        if self.exposures is not None:
            self.exposures.close()
        self.metrics.close()  # after the exposures, which it counts
        self.guardrails.close()  # the shared logs it tails

    def _release_usage(self) -> None:
        usage, self.usage = self.usage, None
        if usage is not None:
            usage.release()


_MANAGERS: weakref.WeakSet[DynamicConfigurationManager] = weakref.WeakSet()


def _no_exposure(test_name: str, variant: str, user_context: Any) -> None:
    """Exposure logging is off (the dedup map holds False then: never called)."""


def _reset_managers_after_fork() -> None:
    # A pre-fork server may fork while another thread holds a manager's lock (an update
    # in flight); that lock would stay held forever in the child.
    # The update path also takes the audit log's lock, and record_metric the metrics
    # store's (which only the exposure logger resets, when exposures are logged).
    # And the process-wide manager's, held while a thread builds it (opening its store,
    # seconds for a slow Redis): each worker forked meanwhile hung at its first
    # is_feature_enabled(); it builds its own (the parent's was not done).
    global _MANAGER_LOCK
    _MANAGER_LOCK = threading.Lock()
    for manager in list(_MANAGERS):
        manager._lock = threading.RLock()
        manager.audit._lock = threading.Lock()
        manager.metrics._after_fork_in_child()
        manager.guardrails.after_fork_in_child()


after_fork_in_child(_reset_managers_after_fork)


def _store_url(store: Any, flags_file: Any, state_dir: Any, state: str) -> str | os.PathLike[str]:
    """Where the manager's flags live: the first of ``store``, ``flags_file``,
    ``state_dir``, ``$CFGCORE_FLAG_STORE``, the discovered configuration directory's
    flags file, the default state directory (see the module docstring)."""
    if store is not None:
        return os.fspath(store)
    if flags_file is not None:
        return os.path.abspath(os.fspath(flags_file))
    if state_dir is None:
        named = os.environ.get("CFGCORE_FLAG_STORE")
        if named:
            return named
        from cfgcore.config.builder import directory_flags_file
        from cfgcore.config.manager import EMBEDDED, discover_config_dir

        directory, how = discover_config_dir()
        if how != EMBEDDED:
            path = directory_flags_file(directory)
            if path is not None:
                return path
    return state_flags_file(state)


_MANAGER: DynamicConfigurationManager | None = None
_MANAGER_LOCK = threading.Lock()
# What the process-wide manager was built with: every argument (the first call's, else
# the constructor's default) and where its paths led then (_where), for later calls.
_MANAGER_ARGS: dict[str, Any] = {}
_MANAGER_WHERE: dict[str, str] = {}
_PATH_ARGS = ("flags_file", "state_dir", "store")
_CONSTRUCTOR = inspect.signature(DynamicConfigurationManager.__init__)


def _resolved(location: str | os.PathLike[str]) -> str:
    text = os.fspath(location)
    return text if "://" in text else os.path.realpath(text)


def _where(path_args: Mapping[str, Any]) -> dict[str, str]:
    """Where a manager given these path arguments keeps its flags, its logs and its
    state (usage file), links resolved: two spellings of one place compare equal."""
    url, paths = store_location(
        path_args.get("flags_file"), state_dir=path_args.get("state_dir"),
        store=path_args.get("store"),
    )  # fmt: skip
    return {
        "flags": _resolved(url),
        "logs": os.path.dirname(_resolved(paths["audit"])),
        "state directory": _resolved(_state_dir(path_args.get("state_dir"))),
    }


def _same_argument(name: str, given: Any, built: Any) -> bool:
    if name == "exposure_sinks":  # the sink objects themselves, in order
        return len(given) == len(built) and all(a is b for a, b in zip(given, built, strict=True))
    if name in ("engine", "clock"):
        return given is built
    try:
        return bool(given == built)
    except Exception:  # an argument whose == fails is not the one the manager has
        return False


def _differences(given: Mapping[str, Any]) -> list[str]:
    """What of ``given`` differs from what the process-wide manager was built with."""
    differ = [
        f"{name}={given[name]!r} (the manager's: {_MANAGER_ARGS[name]!r})"
        for name in given
        if name not in _PATH_ARGS and not _same_argument(name, given[name], _MANAGER_ARGS[name])
    ]
    paths = {name: given[name] for name in _PATH_ARGS if name in given}
    if paths:
        # The paths given over the first call's own: the places such a manager would use.
        built = {n: _MANAGER_ARGS[n] for n in _PATH_ARGS if _MANAGER_ARGS[n] is not None}
        where = _where({**built, **paths})
        places = [
            f"{what} {where[what]} (the manager's: {_MANAGER_WHERE[what]})"
            for what in where
            if where[what] != _MANAGER_WHERE[what]
        ]
        if places:
            named = ", ".join(
                f"{name}={value if value is None else os.fspath(value)!r}"
                for name, value in paths.items()
            )
            differ.append(f"{named} leads to {'; '.join(places)}")
    return differ


def get_dynamic_config_manager(**kwargs: Any) -> DynamicConfigurationManager:
    """The process-wide manager, created on first call with these arguments (as for
    :class:`DynamicConfigurationManager`).

    A later call without arguments returns it; so does one whose arguments are those
    it was built with (paths compared by where they lead, objects such as ``engine``
    and ``clock`` by identity; an argument the first call left out is compared with
    its default). A later call with an argument that differs raises
    :class:`ConfigError` naming it (it returned the first manager without a word):
    build a :class:`DynamicConfigurationManager` of its own for other settings.
    """
    global _MANAGER, _MANAGER_ARGS, _MANAGER_WHERE
    manager = _MANAGER
    if manager is not None and not kwargs:
        return manager
    bound = _CONSTRUCTOR.bind(None, **kwargs)  # an unknown argument: TypeError, as built
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    del arguments["self"]
    if "exposure_sinks" in kwargs:  # kept to compare with; an iterator is read once
        arguments["exposure_sinks"] = kwargs["exposure_sinks"] = tuple(kwargs["exposure_sinks"])
    with _MANAGER_LOCK:
        if _MANAGER is None:
            where = _where(arguments)
            _MANAGER = DynamicConfigurationManager(**kwargs)
            _MANAGER_ARGS, _MANAGER_WHERE = arguments, where
            return _MANAGER
        differ = _differences({name: arguments[name] for name in kwargs})
        if differ:
            raise ConfigError(
                "get_dynamic_config_manager(): the process-wide manager was built with "
                f"other arguments: {'; '.join(differ)}; arguments apply only to the first "
                "call: use DynamicConfigurationManager(...) for a manager of its own"
            )
        return _MANAGER


def is_feature_enabled(flag: Any, user_context: Mapping[str, Any] | None = None) -> bool:
    """:meth:`DynamicConfigurationManager.is_feature_enabled` on the process-wide manager
    (the seed's module-level form: ``if is_feature_enabled(FeatureFlag.X, ctx): ...``)."""
    manager = _MANAGER  # no get_dynamic_config_manager() frame on the hot path
    if manager is None:
        manager = get_dynamic_config_manager()
    return manager.is_feature_enabled(flag, user_context)


def get_ab_test_variant(
    test_name: str, user_context: Mapping[str, Any] | None = None
) -> str | None:
    """:meth:`DynamicConfigurationManager.get_ab_test_variant` on the process-wide manager."""
    manager = _MANAGER
    if manager is None:
        manager = get_dynamic_config_manager()
    return manager.get_ab_test_variant(test_name, user_context)


def reset_dynamic_config_manager() -> None:
    """Close and forget the process-wide manager (tests; a changed state directory)."""
    global _MANAGER, _MANAGER_ARGS, _MANAGER_WHERE
    with _MANAGER_LOCK:
        manager, _MANAGER = _MANAGER, None
        _MANAGER_ARGS, _MANAGER_WHERE = {}, {}
    if manager is not None:
        manager.close()


def load_state(flags_file: str) -> Snapshot:
    """Decode a dynamic-config flags file (for tools such as the CLI)."""
    return open_store(flags_file).read().snapshot
