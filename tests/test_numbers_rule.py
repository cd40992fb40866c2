"""One rule for every numeric argument of the public API (cfgcore._numbers).

A number is taken by its value: int, float, NumPy scalars, Fraction, Decimal. Refused,
everywhere: bool (True was a holdout or rollout of 1 %), text ("25" was a holdout of
25 % while create_ab_test refused "50"; "2.5%" is a typo to report, not to guess
at), None, complex and other non-numbers, NaN and the infinities, values out of
range. Change calls raise, naming the argument (and the file and key path where there
is one); record_metric and track_metric, on the request path, return False instead.
The same goes for the settings of watchers, stores, logs, queues and metrics: seconds,
milliseconds, sizes, counts and limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore._numbers import finite_number, real_number, whole_number
from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.errors import ConfigError
from cfgcore.experiments import stats
from cfgcore.experiments.metrics import MetricsStore
from cfgcore.observability.evaluations import EvaluationTotals
from cfgcore.observability.instruments import EvaluationSeries
from cfgcore.observability.registry import Registry
from tests.conftest import copy_bundled_config
from tests.fuzz import examples

NOW = datetime.now()

#: What a row needs besides the manager: a configuration manager (made once per test,
#: closed with the manager), a fixture (``Entry.needs``: a Redis server).
RESOURCES: dict[str, Any] = {}


def _test(split: dict[str, Any], name: str = "t", **kw: Any) -> ABTestConfiguration:
    # (a test starting tomorrow has served nobody: any split may replace its own)
    start = NOW - timedelta(days=1) if name == "t" else NOW + timedelta(days=1)
    return ABTestConfiguration(
        name, "", start, start + timedelta(days=2), split, {v: {} for v in split}, ["ctr"], **kw
    )


@pytest.fixture
def manager(tmp_path, impl):
    engine = engine_class(impl).from_snapshot({"flags": {}})
    m = DynamicConfigurationManager(state_dir=tmp_path, engine=engine, record_usage=False)
    assert m.create_ab_test(_test({"control": 50, "b": 50}))
    assert m.create_ab_test(_test({"control": 50, "b": 50}, "later"))
    for i in range(40):  # a binary metric with a rate within (0, 1): sample_size answers
        m.record_metric("t", "ctr", float(i % 3 == 0), user_id=f"u{i}")
    m.metrics.flush(10)
    yield m
    m.close()
    config = RESOURCES.pop("config", None)
    if config is not None:
        config.close()
    RESOURCES.clear()


# -- values -------------------------------------------------------------------------------


def typed(exact: Fraction) -> st.SearchStrategy[Any]:
    """``exact`` as each kind of real number the API takes by value."""
    kinds: list[Any] = [
        float(exact),
        np.float64(float(exact)),
        np.float32(float(exact)),
        exact,
        Decimal(exact.numerator) / Decimal(exact.denominator),
    ]
    if exact.denominator == 1:
        kinds += [int(exact), np.int64(int(exact))]
    return st.sampled_from(kinds)


def values(low: int, high: int, scale: int = 1) -> st.SearchStrategy[Any]:
    """Numbers ``low/scale .. high/scale`` in steps of ``1/scale``, of every kind."""
    return st.integers(low, high).map(lambda k: Fraction(k, scale)).flatmap(typed)


#: Never a number, whatever the argument: bool (an int subclass), text (a number's
#: spelling too), None, non-real numbers, containers, NaN and the infinities.
NOT_NUMBERS = st.one_of(
    st.from_type(bool),
    st.builds(np.bool_, st.booleans()),
    st.from_type(str),
    st.integers(0, 100).map(str),
    st.floats(allow_nan=False).map(str),
    st.sampled_from(["25", "2.5%", "0.05", " 50 ", "nan", "1e3"]),
    st.none(),
    st.from_type(complex),
    st.lists(st.integers(0, 100), min_size=1, max_size=2),
    st.sampled_from([math.nan, -math.inf, math.inf, np.float64("nan"), np.float32("inf"),
                     Decimal("NaN"), Decimal("sNaN"), Decimal("-Infinity")]),
)  # fmt: skip


# -- entry points -------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    name: str
    good: st.SearchStrategy[Any]  # numbers the argument takes
    out_of_range: st.SearchStrategy[Any]  # numbers, but not ones it takes
    call: Callable[[DynamicConfigurationManager, Any], Any]
    # For a change call: the error raised for a refused value and what it names. None
    # for a request-path call, which answers False and never raises.
    error: type[Exception] | None = None
    names: str = ""
    # What a taken value must have done
    took: Callable[[DynamicConfigurationManager, Any, Any], bool] = lambda m, v, r: True
    none_ok: bool = False  # None means "no limit"
    inf_ok: bool = False  # infinity means "no bound"
    bool_ok: bool = False  # a bool is a binary metric's observation, 1 or 0
    needs: str | None = None  # a fixture the row's RESOURCES entry is made from

    def __repr__(self) -> str:
        return self.name


def _rest(v):
    """What the other variant weighs beside ``v`` (for a value that is no number: 50)."""
    number = finite_number(v)
    return 50.0 if number is None else 100 - number


def _split(m, v):
    ok = m.create_ab_test(_test({"control": v, "b": _rest(v)}, "later"))
    return ok if ok else m.last_error


def _update_split(m, v):
    ok = m.update_ab_test("later", {"traffic_split": {"control": _rest(v), "b": v}})
    return ok if ok else m.last_error


def _layer(m, v):
    ok = m.create_ab_test(_test({"control": 50, "b": 50}, "later", layer="L", layer_percentage=v))
    return ok if ok else m.last_error


def _track(m, v):
    assert m.get_ab_test_variant("t", {"user_id": "u1"}) in ("control", "b")
    return m.track_metric("t", "ctr", v, user_id="u1")


def _provider(m, v):
    from cfgcore.openfeature import CfgcoreProvider

    provider = CfgcoreProvider(m.engine, max_staleness=v)
    provider.shutdown()
    return provider


def _usage(m, v, field="interval"):
    from cfgcore.runtime.usage import UsageRecorder

    return UsageRecorder(os.path.join(os.path.dirname(m.flags_file), "usage.json"), **{field: v})


@contextlib.contextmanager
def _quick_wakes():
    """The watchers' loop wakes every 10 ms instead of every 100 ms meanwhile.

    ``start_file_watching`` returns once the watch is set up, which the watcher learns
    the first time its loop wakes (watchfiles yields on its timeout, the wake
    interval): each start waited 100 ms for it, most of each example's time in the
    watcher rows. What those rows check, the settings the watcher took and the
    refusals, does not depend on how often its loop wakes."""
    from cfgcore.config import watcher

    wake = watcher._TICK_MS
    watcher._TICK_MS = 10
    try:
        yield
    finally:
        watcher._TICK_MS = wake


def _watch_flags(m, **kw):
    """The flag-file watcher ``start_file_watching(**kw)`` ran (stopped again)."""

    async def run():
        await m.start_file_watching(**kw)
        try:
            return m._watcher
        finally:
            await m.stop_file_watching()

    with _quick_wakes():
        return asyncio.run(run())


def _config_manager(m):
    from cfgcore.config.manager import ConfigurationManager

    if "config" not in RESOURCES:
        root = os.path.join(os.path.dirname(m.flags_file), "numbers-config")
        config_dir = copy_bundled_config(Path(root))
        RESOURCES["config"] = ConfigurationManager(config_dir, environ={}, validate=False)
    return RESOURCES["config"]


def _watch_config(m, **kw):
    """The configuration watcher ``start_file_watching(**kw)`` ran (stopped again)."""
    cm = _config_manager(m)

    async def run():
        await cm.start_file_watching(**kw)
        try:
            return cm.reloader._async_watcher
        finally:
            await cm.stop_file_watching()

    with _quick_wakes():
        return asyncio.run(run())


def _config_debounce(m, v):
    from cfgcore.config.manager import ConfigurationManager

    cm = ConfigurationManager(os.path.dirname(m.flags_file), debounce_ms=v, environ={})
    cm.close()
    return cm.reloader.debounce_ms


def _watcher(m, **kw):
    from cfgcore.config.watcher import DirectoryWatcher

    return DirectoryWatcher([os.path.dirname(m.flags_file)], lambda _changes: None, **kw)


def _expected_version(m, v):
    """What the store's write took ``v`` as: the version it replaced, or the one it
    expected when the store held another."""
    from cfgcore.runtime.redis_store import RedisFlagStore, VersionConflictError
    from cfgcore.snapshot import Flag, Snapshot

    flags = Snapshot(flags={"gen": Flag(variants={"g": 1}, default="g")})
    with RedisFlagStore(RESOURCES["redis_server"].url + "?namespace=numbers&cache=off") as store:
        try:
            _old, new = store.update(lambda _s: flags, expected_version=v)
        except VersionConflictError as exc:
            return exc.expected
        return new.version - 1


def _exposures(m, **kw):
    from cfgcore.experiments.exposures import ExposureLogger

    logger = ExposureLogger(**kw)
    logger.close()
    return logger


def _sink(m, **kw):
    from cfgcore.experiments.exposures import JsonLinesSink

    return JsonLinesSink(os.path.join(os.path.dirname(m.flags_file), "sink.jsonl"), **kw)


def _audit(m, **kw):
    from cfgcore.runtime.audit import AuditLog

    return AuditLog(**kw)  # (no file: memory only)


def _metrics_store(m, **kw):
    store = MetricsStore(None, **kw)
    store.close()
    return store


def _set(attr):
    def call(m, v):
        setattr(m, attr, v)

    return call


# The refusal of an A/B test names the field: create/update return False with it.
def _false_naming(where):
    def check(result):
        return isinstance(result, str) and where in result

    return check


ENTRIES = [
    Entry("set_holdout_percentage", values(0, 99), st.sampled_from([-1, 100, 1e9, -0.5, 10**400]),
          lambda m, v: m.set_holdout_percentage(v), ConfigError,
          r"flags\.json: metadata\.holdout_percentage: must be a number within \[0, 100\)",
          lambda m, v, r: m.snapshot.metadata.get("holdout_percentage", 0.0) == float(v)),
    Entry("set_feature_flag rollout_percentage", values(0, 100),
          st.sampled_from([-1, 100.5, 1e9, 10**400]),
          lambda m, v: m.set_feature_flag("f", True, v), ConfigError,
          r"flags\.json: flags\.f\.rollout_percentage: must be a number within 0\.\.100"),
    Entry("create_ab_test traffic_split", values(0, 100), st.sampled_from([-1, -0.5]),
          _split, None, "traffic_split.control",
          lambda m, v, r: r is True and m.list_ab_tests()["later"]["traffic_split"]["control"]
          == float(v)),
    Entry("update_ab_test traffic_split", values(0, 100), st.sampled_from([-1, -0.5]),
          _update_split, None, "traffic_split.b", lambda m, v, r: r is True),
    Entry("create_ab_test layer_percentage", values(1, 100), st.sampled_from([0, -1, 100.5]),
          _layer, None, "layer_percentage", lambda m, v, r: r is True),
    Entry("record_metric value", values(-(10**6), 10**6, 100),
          st.sampled_from([1e101, -1e300, 10**200, 10**400]),
          lambda m, v: m.record_metric("t", "ctr", v, user_id="u1"),
          took=lambda m, v, r: r is True, bool_ok=True),
    Entry("track_metric value", values(-(10**6), 10**6, 100), st.sampled_from([1e101, -1e300]),
          _track, took=lambda m, v, r: r is True, bool_ok=True),
    Entry("guardrail_alpha", values(1, 99, 100), st.sampled_from([0, 1, -0.5, 2, 10**400]),
          _set("guardrail_alpha"), ValueError, "guardrail_alpha must be a number within"),
    Entry("guardrail_min_samples", values(0, 10**4), st.sampled_from([-1, 2.5, Fraction(1, 2)]),
          _set("guardrail_min_samples"), ValueError, "guardrail_min_samples must be a whole number",
          lambda m, v, r: m.guardrail_min_samples == int(v)),
    Entry("guardrail_check_every", values(1, 10**4), st.sampled_from([0, -1, 1.5]),
          _set("guardrail_check_every"), ValueError, "guardrail_check_every must be a whole number",
          lambda m, v, r: type(m.guardrail_check_every) is int),
    Entry("analyze confidence", values(1, 99, 100), st.sampled_from([0, 1, -0.5, 2]),
          lambda m, v: m.analyze("t", confidence=v), ValueError,
          r"t: confidence must be within \(0, 1\)"),
    Entry("AnalysisReport.sample_size mde", values(1, 30, 100), st.sampled_from([0, 0.0]),
          lambda m, v: m.analyze("t").sample_size("ctr", v), ValueError,
          "mde must be a finite non-zero number", lambda m, v, r: isinstance(r, int)),
    Entry("sample_size_proportions baseline", values(10, 80, 100), st.sampled_from([0, 1, -1]),
          lambda m, v: stats.sample_size_proportions(v, 0.05), ValueError,
          "baseline must be a number within"),
    Entry("sample_size_proportions mde", values(1, 10, 100), st.sampled_from([0, 0.9, -0.9]),
          lambda m, v: stats.sample_size_proportions(0.5, v), ValueError, "mde"),
    Entry("sample_size_proportions alpha", values(1, 99, 100), st.sampled_from([0, 1, 5]),
          lambda m, v: stats.sample_size_proportions(0.5, 0.05, alpha=v), ValueError,
          "alpha must be a number within"),
    Entry("sample_size_means power", values(1, 99, 100), st.sampled_from([0, 1, -2]),
          lambda m, v: stats.sample_size_means(1.0, 0.5, power=v), ValueError,
          "power must be a number within"),
    Entry("sample_size_means sd", values(1, 1000, 10), st.sampled_from([0, -1]),
          lambda m, v: stats.sample_size_means(v, 0.5), ValueError, "sd must be a finite"),
    Entry("sample_size_means mde", values(1, 1000, 10), st.sampled_from([0, 0.0]),
          lambda m, v: stats.sample_size_means(1.0, v), ValueError, "mde"),
    Entry("two_proportion_ztest n_control", values(5, 10**6), st.sampled_from([0, -3, 7.5]),
          lambda m, v: stats.two_proportion_ztest(1, v, 1, 10), ValueError,
          "control size must be a whole number|at least one observation"),
    Entry("MetricsStore max_users", values(1, 10**6), st.sampled_from([0, -1, 2.5]),
          lambda m, v: MetricsStore(None, max_users=v), ValueError, "max_users must be",
          lambda m, v, r: r.max_users == int(v), none_ok=True),
    Entry("health max_staleness", values(1, 10**4), st.sampled_from([0, -1, -0.5]),
          lambda m, v: m.health(max_staleness=v), ValueError,
          "max_staleness: expected seconds > 0", none_ok=True, inf_ok=True),
    Entry("CfgcoreProvider max_staleness", values(1, 10**4), st.sampled_from([0, -1]),
          _provider, ValueError, "max_staleness: expected seconds > 0",
          lambda m, v, r: r.max_staleness == float(v), inf_ok=True),
    Entry("UsageRecorder interval", values(1, 10**4, 10), st.sampled_from([0, -1]),
          _usage, ConfigError, "usage interval must be a positive number of seconds",
          lambda m, v, r: r.interval == float(v)),
    Entry("UsageRecorder retain_days", values(1, 10**4), st.sampled_from([0, -1]),
          lambda m, v: _usage(m, v, "retain_days"), ConfigError,
          "usage retention must be a positive number of days"),
    # -- watchers: seconds and milliseconds
    Entry("DynamicConfigurationManager.start_file_watching poll_interval", values(1, 100, 10),
          st.sampled_from([0, -1, -0.5]), lambda m, v: _watch_flags(m, poll_interval=v),
          ValueError, "poll_interval must be a finite number of seconds > 0",
          lambda m, v, r: r.poll_interval == float(v)),
    Entry("DynamicConfigurationManager.start_file_watching debounce_ms", values(1, 500),
          st.sampled_from([0, -1, 2.5]), lambda m, v: _watch_flags(m, debounce_ms=v),
          ValueError, "debounce_ms must be a whole number of milliseconds >= 1",
          lambda m, v, r: r.debounce_ms == int(v), none_ok=True),
    Entry("DynamicConfigurationManager.start_file_watching stall_after", values(1, 10**4, 10),
          st.sampled_from([0, -1]), lambda m, v: _watch_flags(m, stall_after=v),
          ValueError, "stall_after must be a finite number of seconds > 0",
          lambda m, v, r: r.stall_after == float(v), none_ok=True),
    Entry("ConfigurationManager.start_file_watching poll_interval", values(1, 100, 10),
          st.sampled_from([0, -1, -0.5]), lambda m, v: _watch_config(m, poll_interval=v),
          ValueError, "poll_interval must be a finite number of seconds > 0",
          lambda m, v, r: r.poll_interval == float(v)),
    Entry("ConfigurationManager debounce_ms", values(1, 500), st.sampled_from([0, -1, 2.5]),
          _config_debounce, ConfigError, "debounce_ms must be a whole number of milliseconds",
          lambda m, v, r: r == int(v) and type(r) is int, none_ok=True),
    Entry("DirectoryWatcher step_ms", values(1, 500), st.sampled_from([0, -1, 2.5]),
          lambda m, v: _watcher(m, step_ms=v), ValueError,
          "step_ms must be a whole number of milliseconds >= 1",
          lambda m, v, r: r.step_ms == int(v)),
    # -- statistics
    Entry("sample_ratio_mismatch threshold", values(1, 99, 100), st.sampled_from([0, 1, -0.5, 2]),
          lambda m, v: stats.sample_ratio_mismatch({"a": 60, "b": 40}, {"a": 50, "b": 50},
                                                   threshold=v),
          ValueError, r"threshold must be a number within \(0, 1\)",
          lambda m, v, r: r.mismatch == (r.p_value < float(v))),
    Entry("msprt_proportions effect", values(1, 100, 100), st.sampled_from([0, -1, -0.5]),
          lambda m, v: stats.msprt_proportions(30, 100, 40, 100, effect=v), ValueError,
          "effect must be a finite number > 0", lambda m, v, r: 0 <= r.p_value <= 1),
    Entry("msprt_means effect", values(1, 100, 100), st.sampled_from([0, -1, -0.5]),
          lambda m, v: stats.msprt_means([1, 2, 3], [2, 3, 5], effect=v), ValueError,
          "effect must be a finite number > 0", lambda m, v, r: 0 <= r.p_value <= 1),
    # -- the fleet store
    Entry("RedisFlagStore.update expected_version", values(0, 5),
          st.sampled_from([-1, 2**53, 2.5, 10**400]), _expected_version, ConfigError,
          r"numbers.*expected_version: must be a whole number from 0 to 2\*\*53 - 1",
          lambda m, v, r: r == int(v) and type(r) is int, none_ok=True, needs="redis_server"),
    # -- the audit log
    Entry("AuditLog keep", values(0, 10**4), st.sampled_from([-1, 2.5]),
          lambda m, v: _audit(m, keep=v), ValueError, "keep must be a whole number of entries",
          lambda m, v, r: r._recent.maxlen == int(v)),
    Entry("AuditLog keep_bytes", values(0, 10**6), st.sampled_from([-1, 0.5]),
          lambda m, v: _audit(m, keep_bytes=v), ValueError,
          "keep_bytes must be a whole number of bytes >= 0",
          lambda m, v, r: r.keep_bytes == int(v), none_ok=True),
    Entry("AuditLog max_bytes", values(0, 10**9), st.sampled_from([-1, 1.5]),
          lambda m, v: _audit(m, max_bytes=v), ValueError,
          "max_bytes must be a whole number of bytes >= 0",
          lambda m, v, r: r.max_bytes == int(v) and type(r.max_bytes) is int, none_ok=True),
    Entry("AuditLog backups", values(0, 100), st.sampled_from([-1, 2.5]),
          lambda m, v: _audit(m, backups=v), ValueError,
          "backups must be a whole number of files >= 0",
          lambda m, v, r: r.backups == int(v) and type(r.backups) is int, none_ok=True),
    Entry("AuditLog lock_timeout", values(0, 600, 10), st.sampled_from([-1, -0.5]),
          lambda m, v: _audit(m, lock_timeout=v), ValueError,
          "lock_timeout must be a finite number of seconds >= 0",
          lambda m, v, r: r.lock_timeout == float(v), none_ok=True),
    # -- metrics
    Entry("EvaluationTotals retain", values(0, 10**6, 10), st.sampled_from([-1, -0.5]),
          lambda m, v: EvaluationTotals(retain=v), ValueError,
          "retain must be a number of seconds >= 0", lambda m, v, r: r.retain == float(v),
          none_ok=True, inf_ok=True),
    Entry("Registry max_label_bytes", values(64, 10**5), st.sampled_from([63, 0, -1, 100.5]),
          lambda m, v: Registry(max_label_bytes=v), ValueError,
          "max_label_bytes must be a whole number of bytes >= 64",
          lambda m, v, r: r.max_label_bytes == int(v), none_ok=True),
    Entry("EvaluationSeries limit", values(0, 10**6), st.sampled_from([-1, 2.5]),
          lambda m, v: EvaluationSeries(limit=v), ValueError,
          "limit must be a whole number of series >= 0",
          lambda m, v, r: r.limit == int(v) and type(r.limit) is int, none_ok=True),
    # -- experiment logs and queues
    Entry("MetricsStore max_pending", values(1, 10**6), st.sampled_from([0, -1, 2.5]),
          lambda m, v: _metrics_store(m, max_pending=v), ValueError,
          "max_pending must be a whole number of events >= 1"),
    Entry("MetricsStore max_pending_bytes", values(1, 10**9), st.sampled_from([0, -1, 2.5]),
          lambda m, v: _metrics_store(m, max_pending_bytes=v), ValueError,
          "max_pending_bytes must be a whole number of bytes >= 1"),
    Entry("ExposureLogger queue_size", values(1, 10**6), st.sampled_from([0, -1, 2.5]),
          lambda m, v: _exposures(m, queue_size=v), ValueError,
          "queue_size must be a whole number of exposures >= 1"),
    Entry("ExposureLogger queue_bytes", values(1, 10**9), st.sampled_from([0, -1, 2.5]),
          lambda m, v: _exposures(m, queue_bytes=v), ValueError,
          "queue_bytes must be a whole number of bytes >= 1"),
    Entry("ExposureLogger batch_size", values(1, 10**4), st.sampled_from([0, -1, 2.5]),
          lambda m, v: _exposures(m, batch_size=v), ValueError,
          "batch_size must be a whole number of exposures >= 1",
          lambda m, v, r: r._writer.batch_size == int(v)),
    Entry("ExposureLogger dedup_limit", values(1, 10**7), st.sampled_from([0, -1, 2.5]),
          lambda m, v: _exposures(m, dedup_limit=v), ValueError,
          "dedup_limit must be a whole number of users >= 1"),
    Entry("ExposureLogger dedup_bytes", values(1, 10**9), st.sampled_from([0, -1, 2.5]),
          lambda m, v: _exposures(m, dedup_bytes=v), ValueError,
          "dedup_bytes must be a whole number of bytes >= 1"),
    Entry("JsonLinesSink max_bytes", values(1, 10**9), st.sampled_from([0, -1, 2.5]),
          lambda m, v: _sink(m, max_bytes=v), ValueError,
          "max_bytes must be a whole number of bytes >= 1",
          lambda m, v, r: r.max_bytes == int(v) and type(r.max_bytes) is int),
    Entry("JsonLinesSink backups", values(0, 100), st.sampled_from([-1, 2.5]),
          lambda m, v: _sink(m, backups=v), ValueError,
          "backups must be a whole number of files >= 0",
          lambda m, v, r: r.backups == int(v) and type(r.backups) is int),
]  # fmt: skip


def _refused(entry: Entry, manager: DynamicConfigurationManager, value: Any) -> None:
    if entry.error is None:  # never raises: False (an A/B test call: with the reason)
        result = entry.call(manager, value)
        if entry.names:
            assert isinstance(result, str) and entry.names in result, (value, result)
        else:
            assert result is False, value
        return
    with pytest.raises(entry.error, match=entry.names):
        entry.call(manager, value)


@pytest.mark.parametrize("entry", ENTRIES, ids=repr)
@settings(max_examples=examples(30), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_numeric_argument_follows_one_rule(manager, entry, data, request):
    if entry.needs:
        RESOURCES[entry.needs] = request.getfixturevalue(entry.needs)
    not_numbers = NOT_NUMBERS.filter(lambda v: v is not None) if entry.none_ok else NOT_NUMBERS
    if entry.bool_ok:
        not_numbers = not_numbers.filter(lambda v: not isinstance(v, bool | np.bool_))
    if entry.inf_ok:
        not_numbers = not_numbers.filter(lambda v: not math.isinf(real_number(v) or 0))
    bad = data.draw(st.one_of(not_numbers, entry.out_of_range), label="refused")
    before = manager.snapshot
    _refused(entry, manager, bad)
    if entry.error is not None or entry.names:
        assert manager.snapshot is before  # a refused change writes nothing
    good = data.draw(entry.good, label="taken")
    result = entry.call(manager, good)
    assert entry.took(manager, good, result), (good, result)


def test_text_is_no_holdout_percentage_and_names_it(manager):
    """The holdout took "25" as 25 % while create_ab_test refused "50": text is the
    caller's to parse (an environment variable's "2.5%" is a typo to report)."""
    for text in ("25", "2.5%"):
        with pytest.raises(ConfigError) as exc:
            manager.set_holdout_percentage(text)
        assert f"metadata.holdout_percentage: must be a number within [0, 100), got {text!r}" in (
            str(exc.value)
        )
    assert "holdout_percentage" not in manager.snapshot.metadata


def test_record_metric_takes_no_text_and_never_raises(manager):
    """ "1.5" was recorded as 1.5; it is refused as NaN is."""
    for value in ("1.5", "1", b"1", None, 1j):
        assert manager.record_metric("t", "ctr", value, user_id="u1") is False
    assert manager.record_metric("t", "ctr", Fraction(1, 2), user_id="u1") is True


def test_a_bool_metric_value_is_a_binary_observation(manager):
    # record_metric("t", "converted", bought): the natural way to record a conversion
    store = manager.metrics
    for i, value in enumerate((True, False, np.bool_(True), np.bool_(False), True)):
        assert manager.record_metric("t", "conv", value, user_id=f"b{i}") is True
        assert manager.track_metric("t", "conv2", value, user_id=f"b{i}") is True
    assert store.flush(10)
    variants = {manager.get_ab_test_variant("t", {"user_id": f"b{i}"}) for i in range(5)}
    n = sum(store.summary("t", v, "conv").n for v in variants)
    total = sum(store.summary("t", v, "conv").mean * store.summary("t", v, "conv").n
                for v in variants)  # fmt: skip
    assert (n, total) == (5, 3.0)


@given(st.one_of(NOT_NUMBERS, st.integers(), st.floats(), st.decimals(), st.fractions()))
def test_the_helpers_agree_on_what_a_number_is(value):
    number = real_number(value)
    if isinstance(value, bool | np.bool_ | str | complex | list) or value is None:
        assert number is None
    finite = finite_number(value)
    assert finite is None or (math.isfinite(finite) and finite == number)
    whole = whole_number(value)
    if whole is not None:
        assert type(whole) is int and not isinstance(value, bool)
        assert finite is not None and float(whole) == finite
