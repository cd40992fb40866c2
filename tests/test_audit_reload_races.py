"""Hot reload racing everything else: updates from other threads, listeners, close(),
stop/start cycles and a watcher that cannot use inotify. Real files, real watcher."""

from __future__ import annotations

import os
import shutil
import threading

import pytest

from cfgcore.config.manager import ConfigurationManager, default_config_dir
from cfgcore.runtime.atomicio import atomic_write_text
from tests.waiting import wait_for

DEFAULTS = default_config_dir()
WATCHER_ONLY = 3600.0


@pytest.fixture
def config_dir(tmp_path):
    d = tmp_path / "config"
    shutil.copytree(DEFAULTS, d)
    return d


def _staging(config_dir, generation: int) -> None:
    with open(os.path.join(DEFAULTS, "staging.yaml"), encoding="utf-8") as f:
        body = f.read()
    atomic_write_text(config_dir / "staging.yaml", body + f"\naudit_gen:\n  env: {generation}\n")


def _follow(manager) -> None:
    manager.enable_hot_reload(poll_interval=WATCHER_ONLY)
    assert wait_for(lambda: manager.reloader.confirmed_at)


def test_listeners_see_versions_in_order_when_an_update_follows_watcher_reloads(config_dir):
    """A watcher reload publishes its events on another thread than the reload's; an
    update_config made meanwhile must still reach listeners after them, not before."""
    _staging(config_dir, 0)
    m = ConfigurationManager(config_dir, environ={})
    m.load_environment_config("staging")
    gate = threading.Event()
    seen: list[int] = []

    def listener(event):
        if event.is_error:
            return
        seen.append(event.version)
        if len(seen) == 1:
            gate.wait(15)  # hold the first delivery: later batches queue up behind it

    m.register_change_listener(listener)
    _follow(m)
    try:
        start = m.version
        _staging(config_dir, 1)
        assert wait_for(lambda: seen)  # version start+1 is being delivered, and held
        _staging(config_dir, 2)
        assert wait_for(lambda: m.version == start + 2)  # reloaded; its events wait
        assert m.update_config("anomaly_detection.threshold", 0.42)  # start + 3
        gate.set()
        assert wait_for(lambda: len(seen) == 3)
        assert m.events.wait_idle()
        assert seen == [start + 1, start + 2, start + 3]
    finally:
        gate.set()
        m.close()


def test_reloads_racing_updates_lose_nothing_and_listeners_see_one_order(config_dir):
    _staging(config_dir, 0)
    m = ConfigurationManager(config_dir, environ={})
    m.load_environment_config("staging")
    versions: list[int] = []
    lock = threading.Lock()

    def listener(event):
        if not event.is_error:
            with lock:
                versions.append(event.version)

    m.register_change_listener(listener)
    _follow(m)
    start = m.version
    failures: list[object] = []

    def updater(name: str) -> None:
        for i in range(1, 31):
            if not m.update_config(f"audit_updates.{name}", i):
                failures.append((name, i, m.last_error))

    threads = [threading.Thread(target=updater, args=(n,)) for n in ("a", "b")]
    try:
        for t in threads:
            t.start()
        for generation in range(1, 6):
            _staging(config_dir, generation)
            assert wait_for(lambda g=generation: m.get("audit_gen.env") == g)
        for t in threads:
            t.join()
        assert failures == []
        # every runtime update survived every reload
        assert m.get("audit_updates.a") == 30 and m.get("audit_updates.b") == 30
        assert m.get("audit_gen.env") == 5
        assert m.events.wait_idle()
        # one event per activation (each changes one key), in the order they went live
        assert versions == list(range(start + 1, m.version + 1))
    finally:
        m.close()


def test_a_shared_flag_sets_listeners_run_after_the_manager_lock_is_released(tmp_path):
    """A reload with a new flags file notifies the dynamic-config manager sharing the
    store; its listeners must not run while the configuration manager's lock is held
    (a listener waiting on a thread that updates the configuration would deadlock)."""
    from cfgcore.dynamic_config import DynamicConfigurationManager

    d = tmp_path / "config"
    shutil.copytree(DEFAULTS, d)

    def flags(g: int) -> None:
        atomic_write_text(
            d / "flags.yaml",
            f"version: 1\nflags:\n  gen:\n    variants: {{g{g}: {g}}}\n    default: g{g}\n",
        )

    flags(0)
    m = ConfigurationManager(d, environ={})
    m.load_environment_config("staging")
    dyn = DynamicConfigurationManager(flags_file=d / "flags.yaml", state_dir=tmp_path / "state")
    held: list[bool] = []

    def probe(event):
        result: list[bool] = []

        def try_lock():
            got = m._lock.acquire(blocking=False)
            if got:
                m._lock.release()
            result.append(not got)

        t = threading.Thread(target=try_lock)
        t.start()
        t.join()
        held.append(result[0])

    dyn.register_change_listener(probe)
    try:
        flags(1)
        assert m.reload() is True
        assert wait_for(lambda: held)
        assert held == [False] * len(held)
    finally:
        dyn.close()
        m.close()
