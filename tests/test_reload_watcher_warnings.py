"""The WARNING lines hot reload logs about its watch, with a configuration directory
whose name holds a line break and a terminal escape: the readiness timeout (the watch
not set up in time) and the fallback to stat polling (out of inotify watches), for the
thread watcher and the asyncio one. Each names the directory escaped, on one line. A
watch stopped while it was being started logs no readiness warning."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil

import pytest
import watchfiles

from cfgcore.config import reload as reload_module
from cfgcore.config.manager import ConfigurationManager, default_config_dir
from tests.log_records import records
from tests.waiting import wait_for

NAME = "conf\n\x1b[2Jig"
SHOWN = "conf\\n\\x1b[2Jig"


@pytest.fixture
def manager(tmp_path):
    d = tmp_path / NAME
    shutil.copytree(default_config_dir(), d)
    m = ConfigurationManager(str(d), environ={})
    m.load_environment_config("staging")
    yield m
    m.close()


def _gone(manager) -> None:
    """The directory is moved away after the load: nothing to watch, so the watch is
    never set up (the watcher retries; the poll reports the missing files)."""
    os.rename(manager.config_dir, manager.config_dir + "-moved")


def _warnings(got: list[logging.LogRecord], text: str) -> list[str]:
    return [r.getMessage() for r in got if r.levelno == logging.WARNING and text in r.getMessage()]


def _escaped_once(lines: list[str]) -> None:
    assert lines
    for line in lines:
        assert SHOWN in line and "\n" not in line and "\x1b" not in line


def test_thread_watch_not_ready_in_time_is_logged_escaped(manager, monkeypatch):
    monkeypatch.setattr(reload_module, "READY_TIMEOUT", 0.3)  # the wait, not the feature
    _gone(manager)
    with records() as got:
        manager.enable_hot_reload()
    _escaped_once(_warnings(got, "did not become ready in time"))


def test_async_watch_not_ready_in_time_is_logged_escaped(manager, monkeypatch):
    monkeypatch.setattr(reload_module, "READY_TIMEOUT", 0.3)
    _gone(manager)

    async def main():
        await manager.start_file_watching()
        await manager.stop_file_watching()

    with records() as got:
        asyncio.run(main())
    _escaped_once(_warnings(got, "did not become ready in time"))


def test_async_watch_closed_while_starting_logs_no_readiness_warning(manager):
    """close() while start_file_watching waits for a watch that cannot be set up (the
    directory is gone): it returns as soon as the watch ends. It used to log that the
    watcher did not become ready, about a watch stopped on purpose."""
    _gone(manager)

    async def main():
        start = asyncio.ensure_future(manager.start_file_watching())
        while manager.reloader._async_task is None:
            await asyncio.sleep(0.01)
        manager.close()
        await start

    with records() as got:
        asyncio.run(main())
    assert _warnings(got, "did not become ready") == []
    assert not manager.hot_reload_enabled


def _no_inotify(monkeypatch, name: str) -> list[tuple]:
    """watchfiles refusing a native watch as it does when inotify_add_watch gets
    ENOSPC (the OS limit error, raised at the watchfiles boundary: the only way to
    reach the limit without exhausting the machine's watches); stat polling works."""
    real = getattr(watchfiles, name)
    refused = []

    def watch(*paths, force_polling=None, **kw):
        if not force_polling:
            refused.append(paths)
            raise OSError(28, "OS file watch limit reached")
        return real(*paths, force_polling=force_polling, **kw)

    monkeypatch.setattr(watchfiles, name, watch)
    return refused


def test_thread_watch_out_of_inotify_watches_logs_the_fallback_escaped(manager, monkeypatch):
    refused = _no_inotify(monkeypatch, "watch")
    with records() as got:
        manager.enable_hot_reload()
        assert wait_for(lambda: manager.reloader._watcher.force_polling)
    assert refused
    _escaped_once(_warnings(got, "falling back to polling for"))
    assert manager.hot_reload_enabled


def test_async_watch_out_of_inotify_watches_logs_the_fallback_escaped(manager, monkeypatch):
    refused = _no_inotify(monkeypatch, "awatch")

    async def main():
        await manager.start_file_watching()
        assert manager.hot_reload_enabled
        await manager.stop_file_watching()

    with records() as got:
        asyncio.run(main())
    assert refused
    _escaped_once(_warnings(got, "falling back to polling for"))
