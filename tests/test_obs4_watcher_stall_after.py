"""``stall_after`` on ``enable_hot_reload``, ``start_file_watching`` (both managers).

Each watcher is held to its own bound: one blocked past its ``stall_after`` makes its
manager not ready, while another blocked as long with a larger bound stays ready, even
past ``CFGCORE_WATCHER_STALL_SECONDS``, which the argument overrides. A value that is
not a finite number of seconds > 0 (a bool included) is a ValueError naming the
parameter, and starts no watcher.

Reloads are blocked on Events the test holds (a transform step, a flag subscriber),
and every wait is for a state with a deadline."""

from __future__ import annotations

import asyncio
import math
import time
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgcore.config.manager import ConfigurationManager
from cfgcore.config.watcher import check_stall_after
from cfgcore.experiments.dynamic import DynamicConfigurationManager
from cfgcore.runtime.atomicio import atomic_write
from tests.conftest import copy_bundled_config
from tests.test_obs3_watcher_stuck import (
    _blocking_transform,
    _BlockingSubscriber,
    _flags,
    _Hang,
    _stuck_reason,
    _write_marker,
)
from tests.waiting import wait_for, wait_for_async

ENV = 1.5  # CFGCORE_WATCHER_STALL_SECONDS in these tests
SHORT = 2.5  # the bound of the watcher that must be reported
LONG = 3600.0  # the bound of the one that must not

BAD = [True, False, 0, -1, -0.5, math.nan, math.inf, -math.inf, "30", None.__class__, [5]]


def _tick_age(watcher) -> float:
    return time.monotonic() - watcher.last_tick


def test_each_hot_reload_watcher_is_held_to_its_own_stall_after(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_WATCHER_STALL_SECONDS", str(ENV))
    managers, hangs = [], []
    try:
        for name, bound in (("long", LONG), ("short", SHORT)):
            config_dir = copy_bundled_config(tmp_path / name, flags=True)
            m = ConfigurationManager(str(config_dir), environ={}, record_usage=False)
            m.load_environment_config("staging")
            hang = _Hang(f"hang-{name}-" + uuid.uuid4().hex)
            _blocking_transform(m, hang)
            m.enable_hot_reload(poll_interval=0.1, stall_after=bound)
            assert m.reloader._watcher.stall_after == bound
            assert wait_for(lambda m=m: m.health().ready), m.health()
            managers.append(m)
            hangs.append(hang)
        (long_m, short_m), (long_hang, short_hang) = managers, hangs

        # The long-bound watcher blocks first, so it has been blocked longer than the
        # short one once that one is reported.
        _write_marker(tmp_path / "long", long_hang.marker)
        assert long_hang.entered.wait(30), "the watcher never reloaded the file"
        _write_marker(tmp_path / "short", short_hang.marker)
        assert short_hang.entered.wait(30), "the watcher never reloaded the file"

        assert wait_for(lambda: _stuck_reason(short_m.health()) is not None, timeout=30)
        assert f"bound {SHORT:g} s" in _stuck_reason(short_m.health())
        assert not short_m.health().ready
        long_watcher = long_m.reloader._watcher
        assert _tick_age(long_watcher) > SHORT > ENV  # past the environment's bound too
        report = long_m.health()
        assert report.ready, report
        assert _stuck_reason(report) is None

        for hang in hangs:
            hang.release.set()
        assert wait_for(lambda: short_m.health().ready, timeout=30), short_m.health()
    finally:
        for hang in hangs:
            hang.release.set()
        for m in managers:
            m.close()


def test_each_flags_file_watcher_is_held_to_its_own_stall_after(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_WATCHER_STALL_SECONDS", str(ENV))
    hangs = {name: _Hang("") for name in ("long", "short")}
    subscribers = {name: _BlockingSubscriber(hang) for name, hang in hangs.items()}
    managers: dict[str, DynamicConfigurationManager] = {}
    for name in hangs:
        flags_file = tmp_path / name / "flags.json"
        flags_file.parent.mkdir()
        atomic_write(flags_file, _flags(False))
        managers[name] = DynamicConfigurationManager(
            flags_file=str(flags_file), state_dir=tmp_path / f"state-{name}", record_usage=False
        )

    async def scenario():
        for name, bound in (("long", LONG), ("short", SHORT)):
            m = managers[name]
            await m.start_file_watching(debounce_ms=20, poll_interval=0.1, stall_after=bound)
            assert m._watcher.stall_after == bound
            assert await wait_for_async(lambda m=m: m.health().ready), m.health()
        for name in ("long", "short"):
            managers[name]._live.subscribe(subscribers[name])
            atomic_write(tmp_path / name / "flags.json", _flags(True))
            assert await wait_for_async(hangs[name].entered.is_set, timeout=30)

        short, long_ = managers["short"], managers["long"]
        assert await wait_for_async(lambda: _stuck_reason(short.health()) is not None, timeout=30)
        assert f"bound {SHORT:g} s" in _stuck_reason(short.health())
        assert _tick_age(long_._watcher) > SHORT > ENV
        report = long_.health()
        assert report.ready, report

        for hang in hangs.values():
            hang.release.set()
        assert await wait_for_async(lambda: short.health().ready, timeout=30), short.health()

    try:
        asyncio.run(scenario())
    finally:
        for hang in hangs.values():
            hang.release.set()
        for m in managers.values():
            m.close()


def test_the_asyncio_watcher_takes_stall_after(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_WATCHER_STALL_SECONDS", str(ENV))
    config_dir = copy_bundled_config(tmp_path / "config", flags=True)
    m = ConfigurationManager(str(config_dir), environ={}, record_usage=False)

    async def scenario():
        m.load_environment_config("staging")
        await m.start_file_watching(poll_interval=0.1, stall_after=LONG)
        try:
            assert m.reloader._async_watcher.stall_after == LONG
        finally:
            await m.stop_file_watching()

    try:
        asyncio.run(scenario())
    finally:
        m.close()


def test_enabling_again_with_another_stall_after_applies_it(tmp_path, monkeypatch):
    monkeypatch.delenv("CFGCORE_WATCHER_STALL_SECONDS", raising=False)
    config_dir = copy_bundled_config(tmp_path / "config", flags=True)
    m = ConfigurationManager(str(config_dir), environ={}, record_usage=False)
    try:
        m.load_environment_config("staging")
        m.enable_hot_reload(poll_interval=0.1)
        watcher = m.reloader._watcher
        assert watcher.stall_after == 30.0
        m.enable_hot_reload(poll_interval=0.1, stall_after=LONG)
        assert m.reloader._watcher is watcher and watcher.stall_after == LONG
        m.enable_hot_reload(poll_interval=0.1)  # no argument: the bound set stays
        assert watcher.stall_after == LONG
    finally:
        m.close()


@pytest.mark.parametrize("bad", BAD, ids=repr)
def test_a_bad_stall_after_is_refused_and_starts_no_watcher(tmp_path, bad):
    config_dir = copy_bundled_config(tmp_path / "config", flags=True)
    m = ConfigurationManager(str(config_dir), environ={}, record_usage=False)
    flags_file = tmp_path / "flags" / "flags.json"
    flags_file.parent.mkdir()
    atomic_write(flags_file, _flags(False))
    d = DynamicConfigurationManager(
        flags_file=str(flags_file), state_dir=tmp_path / "state", record_usage=False
    )

    async def scenario():
        with pytest.raises(ValueError, match="stall_after"):
            await m.start_file_watching(stall_after=bad)
        with pytest.raises(ValueError, match="stall_after"):
            await d.start_file_watching(stall_after=bad)

    try:
        m.load_environment_config("staging")
        with pytest.raises(ValueError, match="stall_after"):
            m.enable_hot_reload(stall_after=bad)
        asyncio.run(scenario())
        assert not m.hot_reload_enabled
        assert m.reloader._watcher is None and m.reloader._async_watcher is None
        assert d._watcher is None
    finally:
        m.close()
        d.close()


@given(
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.booleans(),
        st.text(max_size=5),
        st.none(),
    )
)
def test_check_stall_after_takes_exactly_the_finite_positive_numbers(value):
    valid = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )
    if valid:
        assert check_stall_after(value) == float(value)
    else:
        with pytest.raises(ValueError, match="stall_after"):
            check_stall_after(value)
