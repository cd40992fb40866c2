"""Hot reload with a real watcher on real files: saves, renames, ConfigMaps, bad files, fork."""

from __future__ import annotations

import asyncio
import os
import select
import shutil
import threading
import time
import warnings

import pytest

from cfgcore.config.manager import ConfigurationManager, default_config_dir
from cfgcore.runtime.atomicio import atomic_write_text
from tests.waiting import wait_for

DEFAULTS = default_config_dir()
FLAGS = os.path.join(os.path.dirname(DEFAULTS), "flags.yaml")
PREMIUM = {"user_id": "12345", "user_segment": "premium", "region": "EU"}


def _copy_set(d):
    d.mkdir(parents=True, exist_ok=True)
    for name in os.listdir(DEFAULTS):
        shutil.copy(os.path.join(DEFAULTS, name), d / name)
    shutil.copy(FLAGS, d / "flags.yaml")


def _with_threshold(text: str, value: float) -> str:
    return text + f"\nanomaly_detection:\n  threshold: {value}\n"


@pytest.fixture
def config_dir(tmp_path):
    d = tmp_path / "config"
    _copy_set(d)
    return d


@pytest.fixture
def manager(config_dir):
    m = ConfigurationManager(config_dir, environ={})
    m.load_environment_config("staging")
    m.enable_hot_reload()
    yield m
    m.close()


def test_plain_write_is_picked_up_with_one_event_per_leaf(manager, config_dir):
    seen = []
    # a plain (truncate, then write) save may be seen empty first: that is rejected
    manager.register_change_listener(lambda e: None if e.is_error else seen.append(e))
    staging = config_dir / "staging.yaml"
    text = staging.read_text()
    staging.write_text(_with_threshold(text, 0.91))
    assert wait_for(lambda: manager.get("anomaly_detection.threshold") == 0.91)
    assert wait_for(lambda: seen)
    assert [(e.config_path, e.old_value, e.new_value, e.source) for e in seen] == [
        ("anomaly_detection.threshold", 0.8, 0.91, "reload")
    ]


def test_editor_style_atomic_rename_save(manager, config_dir):
    staging = config_dir / "staging.yaml"
    original = staging.read_text()
    tmp = config_dir / ".staging.yaml.swp~"
    tmp.write_text(_with_threshold(original, 0.92))
    os.replace(tmp, staging)
    assert wait_for(lambda: manager.get("anomaly_detection.threshold") == 0.92)
    atomic_write_text(staging, _with_threshold(original, 0.93))
    assert wait_for(lambda: manager.get("anomaly_detection.threshold") == 0.93)


def test_half_written_file_is_rejected_then_the_next_good_write_wins(manager, config_dir):
    errors = []
    manager.register_change_listener(lambda e: errors.append(e) if e.is_error else None)
    staging = config_dir / "staging.yaml"
    good = _with_threshold(staging.read_text(), 0.94)
    before = manager.snapshot
    # a writer that got interrupted half way through a flow sequence
    cut = good.index("bootstrap_servers:") + len("bootstrap_servers: [\n  'kafka-staging-1")
    staging.write_text(good[:cut].replace("bootstrap_servers:", "bootstrap_servers: [", 1))
    assert wait_for(lambda: errors)
    assert manager.snapshot is before
    assert "staging.yaml" in errors[0].config_path and errors[0].error is not None
    assert any(e["kind"] == "error" for e in manager.audit.entries())
    staging.write_text(good)
    assert wait_for(lambda: manager.get("anomaly_detection.threshold") == 0.94)
    assert manager.last_error is None


def test_file_that_fails_validation_keeps_the_previous_snapshot(config_dir):
    m = ConfigurationManager(config_dir, environ={})
    m.load_environment_config("production")
    errors = []
    m.register_change_listener(lambda e: errors.append(e) if e.is_error else None)
    m.enable_hot_reload()
    try:
        prod = config_dir / "production.yaml"
        atomic_write_text(prod, prod.read_text().replace("debug: false", "debug: true"))
        assert wait_for(lambda: errors)
        assert m.get("app.debug") is False
        assert "app.debug" in str(errors[0].error) and "production.yaml" in str(errors[0].error)
    finally:
        m.close()


def test_flags_file_change_swaps_the_flag_engine(manager, config_dir):
    assert manager.flags.is_enabled("enhanced_anomaly_detection", PREMIUM) is True
    kinds = []
    manager.register_change_listener(lambda e: kinds.append((e.kind, e.config_path)))
    flags = config_dir / "flags.yaml"
    version = manager.version
    atomic_write_text(flags, flags.read_text().replace('serve: "on"', 'serve: "off"', 1))
    assert wait_for(lambda: not manager.flags.is_enabled("enhanced_anomaly_detection", PREMIUM))
    assert wait_for(lambda: kinds == [("flags", str(flags))])  # the config itself did not change
    assert manager.version == version + 1


def test_kubernetes_configmap_symlink_swap(tmp_path):
    # The layout kubelet creates: real files in a timestamped dir, "..data" pointing at it,
    # and the visible names pointing through "..data".
    root = tmp_path / "configmap"
    root.mkdir()
    first = root / "..2026_11_25_10_00_00.000000001"
    _copy_set(first)
    os.symlink(first.name, root / "..data")
    for name in os.listdir(first):
        os.symlink(os.path.join("..data", name), root / name)
    m = ConfigurationManager(root, environ={})
    m.load_environment_config("staging")
    m.enable_hot_reload()
    try:
        assert m.get("anomaly_detection.threshold") == 0.8
        second = root / "..2026_11_25_10_05_00.000000002"
        _copy_set(second)
        staging = second / "staging.yaml"
        staging.write_text(_with_threshold(staging.read_text(), 0.95))
        os.symlink(second.name, root / "..data_tmp")
        os.replace(root / "..data_tmp", root / "..data")  # the atomic swap kubelet does
        shutil.rmtree(first)
        assert wait_for(lambda: m.get("anomaly_detection.threshold") == 0.95)
        assert m.explain("anomaly_detection.threshold").winner.file == str(root / "staging.yaml")
    finally:
        m.close()


def test_a_slow_listener_never_delays_the_next_reload(manager, config_dir):
    release = threading.Event()
    delivered = []

    def slow(event):
        delivered.append(event.new_value)
        release.wait(10)  # e.g. a synchronous call to a metrics backend that hangs

    manager.register_change_listener(slow)
    staging = config_dir / "staging.yaml"
    original = staging.read_text()
    try:
        atomic_write_text(staging, _with_threshold(original, 0.71))
        assert wait_for(lambda: delivered == [0.71])  # the listener is now stuck
        atomic_write_text(staging, _with_threshold(original, 0.72))
        assert wait_for(lambda: manager.get("anomaly_detection.threshold") == 0.72)
        assert delivered == [0.71]
    finally:
        release.set()
    assert wait_for(lambda: delivered == [0.71, 0.72])  # later events still arrive, in order


def test_emptied_file_is_taken_for_a_write_in_progress(manager, config_dir):
    before = manager.snapshot
    (config_dir / "staging.yaml").write_text("")
    assert manager.reload() is False
    assert manager.snapshot is before and "write in progress" in str(manager.last_error)


def test_file_moved_away_mid_save_is_not_a_removal(manager, config_dir):
    before = manager.snapshot
    os.rename(config_dir / "base.yaml", config_dir / "base.yaml~")
    assert manager.reload() is False
    assert manager.snapshot is before and "disappeared" in str(manager.last_error)
    os.rename(config_dir / "base.yaml~", config_dir / "base.yaml")
    assert manager.reload() is True and manager.get("server.port") == 8080


def test_touch_without_change_is_not_a_new_version(manager, config_dir):
    version = manager.version
    staging = config_dir / "staging.yaml"
    os.utime(staging)
    manager.reload()
    assert manager.version == version


def test_poll_catches_a_change_the_watcher_never_saw(config_dir):
    m = ConfigurationManager(config_dir, environ={})
    m.load_environment_config("staging")
    staging = config_dir / "staging.yaml"
    staging.write_text(_with_threshold(staging.read_text(), 0.96))
    m.reloader.poll()  # what the watcher runs when it starts, after fork and periodically
    assert m.get("anomaly_detection.threshold") == 0.96


def test_asyncio_file_watching_and_async_listener(config_dir):
    m = ConfigurationManager(config_dir, environ={})
    m.load_environment_config("staging")
    staging = config_dir / "staging.yaml"

    async def main():
        got = asyncio.Queue()

        class Listener:
            async def on_config_changed(self, event):
                if not event.is_error:  # a plain save may be seen empty first: rejected
                    await got.put((event.config_path, event.new_value, asyncio.get_running_loop()))

        m.register_change_listener(Listener())
        await m.start_file_watching()
        assert m.hot_reload_enabled
        staging.write_text(_with_threshold(staging.read_text(), 0.97))
        path, value, loop = await asyncio.wait_for(got.get(), 10)
        await m.stop_file_watching()
        return path, value, loop is asyncio.get_running_loop()

    assert asyncio.run(main()) == ("anomaly_detection.threshold", 0.97, True)
    assert not m.hot_reload_enabled


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_watcher_started_before_fork_keeps_working_in_the_child(manager, config_dir):
    staging = config_dir / "staging.yaml"
    original = staging.read_text()
    to_parent_r, to_parent_w = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() in a process with threads; that is the point here.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # child: report what it sees through the pipe, never return into pytest
        code = 1
        try:
            os.close(to_parent_r)
            ok1 = wait_for(lambda: manager.get("anomaly_detection.threshold") == 0.81, 10)
            os.write(to_parent_w, b"1" if ok1 and manager.hot_reload_enabled else b"0")
            ok2 = wait_for(lambda: manager.get("anomaly_detection.threshold") == 0.82, 10)
            os.write(to_parent_w, b"1" if ok2 else b"0")
            code = 0
        finally:
            os._exit(code)
    os.close(to_parent_w)
    try:
        staging.write_text(_with_threshold(original, 0.81))
        assert _read_byte(to_parent_r, 15) == b"1", "child did not see the first change"
        staging.write_text(_with_threshold(original, 0.82))
        assert _read_byte(to_parent_r, 15) == b"1", "child did not see the second change"
        assert wait_for(lambda: manager.get("anomaly_detection.threshold") == 0.82)
    finally:
        os.close(to_parent_r)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def _read_byte(fd, timeout):
    ready, _, _ = select.select([fd], [], [], timeout)
    return os.read(fd, 1) if ready else b""


def test_polling_fallback_sees_changes_without_inotify(tmp_path):
    from cfgcore.config.watcher import DirectoryWatcher

    seen, polls = [], []
    watcher = DirectoryWatcher(
        [str(tmp_path)], seen.append, poll=lambda: polls.append(1), force_polling=True
    )
    assert watcher.start()
    try:
        assert polls  # the poll runs as soon as the watch is up
        (tmp_path / "staging.yaml").write_text("a: 1\n")
        assert wait_for(lambda: any("staging.yaml" in p for batch in seen for _, p in batch))
    finally:
        watcher.stop()
    assert not watcher.running


def test_disable_hot_reload_stops_the_thread(config_dir):
    m = ConfigurationManager(config_dir, environ={})
    m.load_environment_config("staging")
    m.enable_hot_reload()
    assert m.hot_reload_enabled
    m.disable_hot_reload()
    assert not m.hot_reload_enabled


def test_a_touched_but_unchanged_file_is_not_reread_on_every_poll(config_dir, monkeypatch):
    import cfgcore.config.builder as builder_module

    manager = ConfigurationManager(config_dir, environ={})  # no watcher: only our polls read
    manager.load_environment_config("staging")
    staging = config_dir / "staging.yaml"
    os.utime(staging, ns=(1_000_000_000, 1_000_000_000))  # e.g. a checkout or a cp -p
    version = manager.version
    assert manager.reload() is True and manager.version == version
    reads = []
    read_bytes = builder_module.read_bytes
    monkeypatch.setattr(
        builder_module, "read_bytes", lambda path: reads.append(path) or read_bytes(path)
    )
    for _ in range(3):
        manager.reloader.poll()  # what the watcher thread runs every poll_interval
    assert reads == []
    # a real change is still seen by the poll
    staging.write_text(_with_threshold(staging.read_text(), 0.83))
    manager.reloader.poll()
    assert manager.get("anomaly_detection.threshold") == 0.83


def test_close_stops_the_asyncio_watcher_too(config_dir):
    m = ConfigurationManager(config_dir, environ={})
    m.load_environment_config("staging")

    async def main():
        await m.start_file_watching()
        task = m.reloader._async_task
        assert m.hot_reload_enabled
        m.close()  # "Stop watchers and background listener threads."
        await asyncio.wait_for(asyncio.shield(task), 5)
        return m.hot_reload_enabled

    assert asyncio.run(main()) is False


def test_a_fix_written_while_the_rejected_file_was_being_read_is_read(config_dir, monkeypatch):
    # The half-written bytes are refused, but the file moved while it was read: the
    # refusal may not describe it, so the reload reads it again (and finds the fix)
    # instead of reporting it. (Once, a fingerprint taken after the read marked the fix
    # as refused, and without inotify (NFS...) the poll never looked at it again.)
    import cfgcore.config.builder as builder_module

    m = ConfigurationManager(config_dir, environ={})  # no watcher: only our polls read
    m.load_environment_config("staging")
    staging = config_dir / "staging.yaml"
    good = _with_threshold(staging.read_text(), 0.84)
    cut = good.index("bootstrap_servers:") + len("bootstrap_servers: [\n  'kafka-staging-1")
    staging.write_text(good[:cut].replace("bootstrap_servers:", "bootstrap_servers: [", 1))
    read_bytes = builder_module.read_bytes
    fixed = []

    def read_then_fix(path):
        raw = read_bytes(path)
        if path == str(staging) and not fixed:  # the writer saves its fix right after
            atomic_write_text(staging, good)
            fixed.append(path)
        return raw

    monkeypatch.setattr(builder_module, "read_bytes", read_then_fix)
    events: list = []
    m.register_change_listener(events.append)
    assert m.reload() is True  # the half-written bytes were refused, then read again
    assert fixed and m.last_error is None
    assert m.get("anomaly_detection.threshold") == 0.84
    assert not [e for e in events if e.is_error]  # a refusal of bytes gone is no news
    m.reloader.poll()  # what the watcher runs every poll_interval: nothing left to do
    assert m.get("anomaly_detection.threshold") == 0.84 and m.last_error is None


def _symlink_staging_outside(config_dir, tmp_path):
    """staging.yaml as a symlink to a file in an unwatched directory (a dotfiles checkout):
    inotify on the config directory never sees that file edited in place."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    target = outside / "staging.yaml"
    os.replace(config_dir / "staging.yaml", target)
    os.symlink(target, config_dir / "staging.yaml")
    return target


def test_asyncio_watcher_polls_periodically_for_changes_no_event_reports(config_dir, tmp_path):
    target = _symlink_staging_outside(config_dir, tmp_path)
    m = ConfigurationManager(config_dir, environ={})
    m.load_environment_config("staging")

    async def main():
        await m.start_file_watching()
        try:
            with open(target, "r+") as fh:  # in place: same inode, no event in config_dir
                text = fh.read()
                fh.seek(0)
                fh.write(_with_threshold(text, 0.85))
            deadline = time.monotonic() + 5
            while m.get("anomaly_detection.threshold") != 0.85 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            return m.get("anomaly_detection.threshold")
        finally:
            await m.stop_file_watching()

    assert asyncio.run(main()) == 0.85


def test_asyncio_watcher_survives_an_unexpected_exception(config_dir, caplog):
    m = ConfigurationManager(config_dir, environ={})
    m.load_environment_config("staging")
    staging = config_dir / "staging.yaml"
    original = staging.read_text()
    on_files_changed = m.reloader._on_files_changed
    failures = []

    def fails_once(changes):
        if not failures:
            failures.append(changes)
            raise RuntimeError("boom")  # e.g. a bug, or MemoryError's smaller cousins
        on_files_changed(changes)

    m.reloader._on_files_changed = fails_once

    async def main():
        await m.start_file_watching()
        try:
            atomic_write_text(staging, _with_threshold(original, 0.86))
            deadline = time.monotonic() + 5
            while not failures and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert failures
            atomic_write_text(staging, _with_threshold(original, 0.87))
            while m.get("anomaly_detection.threshold") != 0.87 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            return m.get("anomaly_detection.threshold"), m.hot_reload_enabled
        finally:
            await m.stop_file_watching()

    with caplog.at_level("ERROR", logger="cfgcore.hotreload"):
        assert asyncio.run(main()) == (0.87, True)
    assert "boom" in caplog.text


def test_asyncio_watcher_restarts_a_watch_that_failed(config_dir, monkeypatch, caplog):
    import watchfiles

    real_awatch = watchfiles.awatch
    calls = []

    def awatch_failing_once(*args, **kwargs):
        calls.append(kwargs.get("force_polling"))
        if len(calls) == 1:
            raise OSError(24, "inotify instance limit reached")
        return real_awatch(*args, **kwargs)

    monkeypatch.setattr(watchfiles, "awatch", awatch_failing_once)
    m = ConfigurationManager(config_dir, environ={})
    m.load_environment_config("staging")
    staging = config_dir / "staging.yaml"

    async def main():
        await m.start_file_watching()
        try:
            atomic_write_text(staging, _with_threshold(staging.read_text(), 0.88))
            deadline = time.monotonic() + 5
            while m.get("anomaly_detection.threshold") != 0.88 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            return m.get("anomaly_detection.threshold"), m.hot_reload_enabled
        finally:
            await m.stop_file_watching()

    with caplog.at_level("WARNING", logger="cfgcore.hotreload"):
        assert asyncio.run(main()) == (0.88, True)
    assert calls[:2] == [None, True]  # retried, with stat polling, which needs no inotify
    assert "inotify instance limit" in caplog.text


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_can_start_its_own_asyncio_watcher(config_dir):
    # The asyncio watcher is not carried over fork (the parent's loop is not run in the
    # child); the child must be able to start its own rather than be told one is running.
    m = ConfigurationManager(config_dir, environ={})
    m.load_environment_config("staging")
    staging = config_dir / "staging.yaml"
    original = staging.read_text()
    to_parent_r, to_parent_w = os.pipe()

    async def child_main():
        before = m.hot_reload_enabled
        await m.start_file_watching()
        os.write(to_parent_w, b"0" if before else b"1")  # watching: the parent may write
        deadline = time.monotonic() + 5
        while m.get("anomaly_detection.threshold") != 0.89 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        ok = m.get("anomaly_detection.threshold") == 0.89
        await m.stop_file_watching()
        return ok

    async def parent_main():
        await m.start_file_watching()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
                pid = os.fork()
            if pid == 0:  # child: report through the pipe, never return into pytest
                code = 1
                try:
                    os.close(to_parent_r)
                    ok = asyncio.run(child_main())
                    os.write(to_parent_w, b"1" if ok else b"0")
                    code = 0
                finally:
                    os._exit(code)
            return pid
        finally:
            await m.stop_file_watching()

    pid = asyncio.run(parent_main())
    os.close(to_parent_w)
    try:
        assert _read_byte(to_parent_r, 5) == b"1", "the child was told a watcher was running"
        atomic_write_text(staging, _with_threshold(original, 0.89))
        assert _read_byte(to_parent_r, 5) == b"1", "the child's watcher did not see the change"
    finally:
        os.close(to_parent_r)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_flags_and_configuration_go_live_together_for_other_managers_listeners(tmp_path):
    """A reload with a new flags file swaps the engine and publishes the configuration
    before the flag set's subscribers run: a dynamic-config manager's listener sharing
    the store sees the new flags with the new configuration, not the old one."""
    from cfgcore.dynamic_config import DynamicConfigurationManager

    d = tmp_path / "config"
    shutil.copytree(default_config_dir(), d)
    staging = (d / "staging.yaml").read_text()

    def write(g):
        atomic_write_text(
            d / "staging.yaml", staging + f"\nanomaly_detection:\n  threshold: {g / 1000}\n"
        )
        atomic_write_text(
            d / "flags.yaml",
            f"version: 1\nflags:\n  gen:\n    variants: {{g{g}: {g}}}\n    default: g{g}\n",
        )

    write(0)
    m = ConfigurationManager(d, environ={})
    m.load_environment_config("staging")
    dyn = DynamicConfigurationManager(flags_file=d / "flags.yaml", state_dir=tmp_path / "state")
    try:
        seen = []

        def generation():
            return round(m.get("anomaly_detection.threshold") * 1000), m.flags.value("gen")

        dyn.register_change_listener(lambda e: seen.append(generation()))
        for g in range(1, 6):
            write(g)
            assert m.reload() is True
            assert generation() == (g, g)
        assert seen and all(c == f for c, f in seen)
    finally:
        dyn.close()
        m.close()
