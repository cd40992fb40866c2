"""A file watcher that is alive but stuck makes its manager not ready.

Readiness asked only whether the watcher's thread was alive. A thread blocked for good
(a reload waiting on a hung network-filesystem read or a lock, watchfiles not
returning) kept the probe green while what the process served went stale. Each watcher
now records when its loop last came round, and past ``stall_after`` seconds (default
``max(30, 20 x poll_interval)``, ``CFGCORE_WATCHER_STALL_SECONDS``) the health report
fails ``freshness``, naming the watcher and how long ago.

Each test blocks a real reload of a real watcher on an Event it holds (a transform step
of the configuration manager, a flag subscriber of the dynamic-config manager), and
waits for the report's state with a deadline: never for a time."""

from __future__ import annotations

import asyncio
import json
import math
import threading
import uuid

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.config.transforms import ConfigurationTransformer
from cfgcore.config.watcher import STALL_MIN_SECONDS, DirectoryWatcher, stall_bound
from cfgcore.experiments.dynamic import DynamicConfigurationManager
from cfgcore.runtime.atomicio import atomic_write, atomic_write_text
from tests.conftest import copy_bundled_config
from tests.waiting import wait_for, wait_for_async

# Small, so the tests do not wait long; the watchers tick every 100 ms or so while
# nothing blocks them, so a free watcher is not reported at this bound on a busy machine
# for more than a moment (the tests wait for states, not for times).
STALL = "1.5"


def _stuck_reason(report) -> str | None:
    found = [r for r in report.reasons if r.startswith("freshness:") and "is stuck" in r]
    return found[0] if found else None


class _Hang:
    """A reload step that blocks, on the watcher's thread, until released."""

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self.entered = threading.Event()
        self.release = threading.Event()

    def wait_here(self) -> None:
        self.entered.set()
        assert self.release.wait(120), "the test never released the reload"


def _blocking_transform(manager: ConfigurationManager, hang: _Hang) -> None:
    """Replace the manager's env-substitution step with one that blocks on a value equal
    to ``hang.marker`` (the manager's own transformer: ``register_step``)."""
    original = ConfigurationTransformer.STEPS["env_var_substitution"]

    def step(value, path, run):
        if value == hang.marker:
            hang.wait_here()
        return original(value, path, run)

    manager.builder.transformer.register_step("env_var_substitution", step)


def _write_marker(config_dir, marker: str) -> None:
    staging = config_dir / "staging.yaml"
    body = staging.read_text(encoding="utf-8")
    atomic_write_text(staging, body + f"\nstuck_watcher_test:\n  marker: {marker}\n")


@pytest.fixture
def config_dir(tmp_path):
    return copy_bundled_config(tmp_path / "config", flags=True)


def test_a_stuck_hot_reload_thread_is_not_ready_until_it_returns(config_dir, monkeypatch):
    monkeypatch.setenv("CFGCORE_WATCHER_STALL_SECONDS", STALL)
    hang = _Hang("hang-" + uuid.uuid4().hex)
    m = ConfigurationManager(str(config_dir), environ={}, record_usage=False)
    try:
        m.load_environment_config("staging")
        _blocking_transform(m, hang)
        m.enable_hot_reload(poll_interval=0.1)
        assert m.reloader._watcher.stall_after == float(STALL)
        assert wait_for(lambda: m.health().ready), m.health()

        _write_marker(config_dir, hang.marker)
        assert hang.entered.wait(30), "the watcher never reloaded the file"
        assert wait_for(lambda: _stuck_reason(m.health()) is not None, timeout=30), m.health()
        report = m.health()
        assert not report.ready
        reason = _stuck_reason(report)
        assert "cfgcore-hot-reload" in reason and str(config_dir) in reason
        assert "s ago (bound 1.5 s" in reason
        assert m.hot_reload_enabled  # its thread is alive: the old check said ready

        hang.release.set()
        assert wait_for(lambda: m.get("stuck_watcher_test.marker") == hang.marker, timeout=30)
        assert wait_for(lambda: m.health().ready, timeout=30), m.health()
        assert _stuck_reason(m.health()) is None
    finally:
        hang.release.set()
        m.close()


def test_a_stuck_asyncio_file_watcher_is_not_ready_until_it_returns(config_dir, monkeypatch):
    monkeypatch.setenv("CFGCORE_WATCHER_STALL_SECONDS", STALL)
    hang = _Hang("hang-" + uuid.uuid4().hex)
    m = ConfigurationManager(str(config_dir), environ={}, record_usage=False)

    async def scenario():
        m.load_environment_config("staging")
        _blocking_transform(m, hang)
        await m.start_file_watching(poll_interval=0.1)
        try:
            assert await wait_for_async(lambda: m.health().ready), m.health()
            _write_marker(config_dir, hang.marker)
            assert await wait_for_async(hang.entered.is_set, timeout=30)
            # The reload blocks in a worker thread; the loop (and this probe) runs on.
            assert await wait_for_async(
                lambda: _stuck_reason(m.health()) is not None, timeout=30
            ), m.health()
            assert not m.health().ready
            assert "cfgcore-file-watching" in _stuck_reason(m.health())
            hang.release.set()
            assert await wait_for_async(
                lambda: m.get("stuck_watcher_test.marker") == hang.marker, timeout=30
            )
            assert await wait_for_async(lambda: m.health().ready, timeout=30), m.health()
        finally:
            hang.release.set()
            await m.stop_file_watching()

    try:
        asyncio.run(scenario())
    finally:
        hang.release.set()
        m.close()


class _BlockingSubscriber:
    """A flag subscriber (``LiveFlags.subscribe``) whose ``flags_changed`` blocks on the
    dynamic-config manager's watcher thread until released: a listener stuck on a lock."""

    def __init__(self, hang: _Hang) -> None:
        self.hang = hang

    def flags_changed(self, old, new, source, doc, initiator) -> None:
        if threading.current_thread().name == "cfgcore-dynamic-flags":
            self.hang.wait_here()

    def flags_rejected(self, error, source, origin) -> None:
        pass


def _flags(value: bool) -> bytes:
    flag = {"variants": {"on": True, "off": False}, "default": "on" if value else "off"}
    return json.dumps({"flags": {"stuck_watcher_test": flag}}).encode()


def test_a_stuck_flags_file_watcher_is_not_ready_until_it_returns(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_WATCHER_STALL_SECONDS", STALL)
    flags_file = tmp_path / "flags" / "flags.json"
    flags_file.parent.mkdir()
    atomic_write(flags_file, _flags(False))
    hang = _Hang("")
    subscriber = _BlockingSubscriber(hang)  # (held weakly by the flag set: kept here)
    m = DynamicConfigurationManager(
        flags_file=str(flags_file), state_dir=tmp_path / "state", record_usage=False
    )

    async def scenario():
        await m.start_file_watching(debounce_ms=20, poll_interval=0.1)
        try:
            assert m._watcher.stall_after == float(STALL)
            assert await wait_for_async(lambda: m.health().ready), m.health()
            m._live.subscribe(subscriber)
            atomic_write(flags_file, _flags(True))
            assert await wait_for_async(hang.entered.is_set, timeout=30)
            assert await wait_for_async(
                lambda: _stuck_reason(m.health()) is not None, timeout=30
            ), m.health()
            report = m.health()
            assert not report.ready
            assert "cfgcore-dynamic-flags" in _stuck_reason(report)
            assert m._watcher.running  # alive: the old check said ready
            hang.release.set()
            assert await wait_for_async(lambda: m.health().ready, timeout=30), m.health()
            assert m.is_feature_enabled("stuck_watcher_test", {"user_id": "u"}) is True
        finally:
            hang.release.set()
            await m.stop_file_watching()

    try:
        asyncio.run(scenario())
    finally:
        hang.release.set()
        m.close()


def test_the_stall_bound_resolves_argument_then_environment_then_poll_interval(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.delenv("CFGCORE_WATCHER_STALL_SECONDS", raising=False)
    assert stall_bound(0.5) == STALL_MIN_SECONDS
    assert stall_bound(10) == 200.0  # 20 polls
    assert stall_bound(10, 4) == 4.0
    monkeypatch.setenv("CFGCORE_WATCHER_STALL_SECONDS", "7.5")
    assert stall_bound(10) == 7.5
    assert stall_bound(10, 4) == 4.0
    monkeypatch.setenv("CFGCORE_WATCHER_STALL_SECONDS", "inf")
    assert stall_bound(0.5) == math.inf  # never reported stuck
    for bad in ("soon", "0", "-3", "-inf", "nan"):
        monkeypatch.setenv("CFGCORE_WATCHER_STALL_SECONDS", bad)
        assert stall_bound(0.5) == STALL_MIN_SECONDS, bad
    assert "CFGCORE_WATCHER_STALL_SECONDS" in caplog.text
    for bad in (0, -1, math.nan):
        with pytest.raises(ValueError, match="stall_after"):
            stall_bound(0.5, bad)
    watcher = DirectoryWatcher([str(tmp_path)], lambda changes: None, stall_after=2)
    assert watcher.stall_after == 2.0
    assert watcher.stalled_for() is None  # not started: not stuck
