"""The watcher's failure modes, with real files: no inotify, an exception that would end
its thread, stop/start cycles and close() in the middle of a reload."""

from __future__ import annotations

import os
import shutil
import threading

import pytest
import watchfiles

from cfgcore.config.manager import ConfigurationManager, default_config_dir
from cfgcore.runtime.atomicio import atomic_write_text
from tests.waiting import wait_for

DEFAULTS = default_config_dir()
WATCHER_ONLY = 3600.0
THREAD = "cfgcore-hot-reload"


@pytest.fixture
def config_dir(tmp_path):
    d = tmp_path / "config"
    shutil.copytree(DEFAULTS, d)
    return d


def _staging(config_dir, generation: int, name: str = "staging.yaml") -> None:
    with open(os.path.join(DEFAULTS, "staging.yaml"), encoding="utf-8") as f:
        body = f.read()
    atomic_write_text(config_dir / name, body + f"\naudit_gen:\n  env: {generation}\n")


def _manager(config_dir):
    m = ConfigurationManager(config_dir, environ={})
    m.load_environment_config("staging")
    return m


def _follow(manager) -> None:
    manager.enable_hot_reload(poll_interval=WATCHER_ONLY)
    assert wait_for(lambda: manager.reloader.confirmed_at)


def _watcher_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD]


def test_out_of_inotify_watches_falls_back_to_polling_and_keeps_reloading(config_dir, monkeypatch):
    real = watchfiles.watch
    refused = []

    def watch(*paths, force_polling=None, **kw):
        if not force_polling:  # what watchfiles raises when inotify_add_watch gets ENOSPC
            refused.append(paths)
            raise OSError(28, "OS file watch limit reached")
        return real(*paths, force_polling=force_polling, **kw)

    monkeypatch.setattr(watchfiles, "watch", watch)
    # Every version of the file carries a time within one second (a deploy that keeps
    # its files' times, a clock with coarse steps): stat polling compares whole seconds.
    second = 1_600_000_000 * 10**9
    os.utime(config_dir / "staging.yaml", ns=(second, second))
    os.utime(config_dir, ns=(second, second))
    m = _manager(config_dir)
    try:
        m.enable_hot_reload(poll_interval=WATCHER_ONLY)
        assert wait_for(lambda: m.reloader.confirmed_at)
        assert refused and m.reloader._watcher.force_polling is True
        for generation in (1, 2):
            incoming = config_dir.parent / "incoming.yaml"  # renamed in from outside
            _staging(config_dir.parent, generation, name="incoming.yaml")
            stamp = second + generation * 300_000_000
            os.utime(incoming, ns=(stamp, stamp))
            os.replace(incoming, config_dir / "staging.yaml")
            os.utime(config_dir, ns=(second, second))
            assert wait_for(lambda g=generation: m.get("audit_gen.env") == g)
        assert m.hot_reload_enabled
    finally:
        m.close()


def test_a_base_exception_in_a_reload_does_not_end_the_watcher(config_dir, monkeypatch):
    """Code run on the watcher thread (the fingerprint, a registered transform or
    validation rule) raising SystemExit used to end the thread silently: hot reload
    stopped for good and nothing said so."""
    m = _manager(config_dir)
    real = m.builder.fingerprint
    raised = []

    def fingerprint(env):
        if not raised and threading.current_thread().name == THREAD:
            raised.append(env)
            raise SystemExit(3)
        return real(env)

    try:
        _follow(m)
        monkeypatch.setattr(m.builder, "fingerprint", fingerprint)
        _staging(config_dir, 1)
        assert wait_for(lambda: raised)
        assert m.hot_reload_enabled
        _staging(config_dir, 2)  # the next change is seen: the watcher is still there
        assert wait_for(lambda: m.get("audit_gen.env") == 2)
    finally:
        m.close()


def test_stop_start_cycles_leave_one_watcher_and_it_works(config_dir):
    m = _manager(config_dir)
    before = len(_watcher_threads())
    try:
        for _ in range(5):
            m.enable_hot_reload(poll_interval=WATCHER_ONLY)
            m.enable_hot_reload(poll_interval=WATCHER_ONLY)  # idempotent
            assert len(_watcher_threads()) == before + 1
            m.disable_hot_reload()
            assert len(_watcher_threads()) == before
            assert not m.hot_reload_enabled
        _staging(config_dir, 1)  # changed while nobody watched: the first poll reads it
        _follow(m)
        assert wait_for(lambda: m.get("audit_gen.env") == 1)
        _staging(config_dir, 2)
        assert wait_for(lambda: m.get("audit_gen.env") == 2)
    finally:
        m.close()
    assert len(_watcher_threads()) == before


def test_disable_while_enable_is_starting_the_watcher_leaves_no_orphan(config_dir, monkeypatch):
    """disable_hot_reload() from another thread between enable_hot_reload() creating the
    watcher and starting it used to leave a watcher thread nobody could stop: it kept
    reloading after close(), while hot_reload_enabled said False."""
    from cfgcore.config import watcher as watcher_module

    real_start = watcher_module.DirectoryWatcher.start
    starting, disabled = threading.Event(), threading.Event()

    def start(self, wait=5.0):
        starting.set()
        disabled.wait(2)  # a fixed code never lets disable in here: go on after 2 s
        return real_start(self, wait)

    monkeypatch.setattr(watcher_module.DirectoryWatcher, "start", start)
    m = _manager(config_dir)
    before = len(_watcher_threads())
    try:
        enabler = threading.Thread(target=m.enable_hot_reload)
        enabler.start()
        assert starting.wait(15)
        disabler = threading.Thread(target=lambda: (m.disable_hot_reload(), disabled.set()))
        disabler.start()
        enabler.join(30)
        disabler.join(30)
        # Either order is fine (enabled, or enabled then disabled), but what runs must be
        # what the manager says runs, and close() must stop it.
        assert m.hot_reload_enabled == (len(_watcher_threads()) == before + 1)
        m.close()
        assert wait_for(lambda: len(_watcher_threads()) == before)
    finally:
        disabled.set()
        m.close()


def test_close_while_a_reload_runs_finishes_it_and_stops_watching(config_dir, monkeypatch):
    m = _manager(config_dir)
    before = len(_watcher_threads())
    real = m.builder.build
    entered, release = threading.Event(), threading.Event()

    def build(*args, **kwargs):
        if threading.current_thread().name == THREAD:
            entered.set()
            release.wait(15)
        return real(*args, **kwargs)

    try:
        _follow(m)
        monkeypatch.setattr(m.builder, "build", build)
        _staging(config_dir, 1)
        assert entered.wait(15)  # the watcher is reading the files, under the lock
        closer = threading.Thread(target=m.close)
        closer.start()
        release.set()
        closer.join(30)
        assert not closer.is_alive()
        assert wait_for(lambda: len(_watcher_threads()) == before)
        assert not m.hot_reload_enabled
        assert m.get("audit_gen.env") in (None, 1)  # the reload finished or never swapped
        assert m.update_config("anomaly_detection.threshold", 0.5)  # still usable
    finally:
        release.set()
        m.close()
