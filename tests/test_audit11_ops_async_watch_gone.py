"""``await manager.start_file_watching()`` runs the watch as a task of the caller's
event loop. When that loop ended (``asyncio.run()`` returning, a loop closed) or other
code cancelled the task, without ``stop_file_watching()``, the files were no longer
followed, yet ``health()`` said ready, ``freshness: loaded on demand (not following
files)``, and the watcher's liveness series left the scrape: the asyncio twin of a hot
reload thread that died, which has always failed readiness. It fails it too now, and
its ``cfgcore_config_watcher_last_tick_age_seconds`` stays (and grows) until it is
stopped or started again."""

from __future__ import annotations

import asyncio

from tests.test_metrics import value

AGE = "cfgcore_config_watcher_last_tick_age_seconds"


def _freshness(m):
    return next(c for c in m.health().readiness if c.name == "freshness")


def _series(m) -> float:
    return value(AGE, watcher="cfgcore-file-watching", config_dir=m.config_dir)


def test_a_watch_whose_loop_ended_is_not_ready_until_stopped_or_started_again(manager):
    async def start():
        await manager.start_file_watching()
        assert manager.hot_reload_enabled and _freshness(manager).status == "ok"

    asyncio.run(start())  # the loop ends: the task is cancelled, never stopped
    check = _freshness(manager)
    assert check.status == "fail" and not manager.health().ready
    assert "cfgcore-file-watching is not running" in check.detail
    assert "stop_file_watching()" in check.detail
    assert _series(manager) > 0  # still exported, its age growing: the alert fires

    asyncio.run(manager.stop_file_watching())  # stopped on purpose: on demand, ready
    assert manager.health().ready
    assert _freshness(manager).detail == "loaded on demand (not following files)"
    assert _series(manager) == 0

    async def watch_then_stop():
        await manager.start_file_watching()
        assert manager.health().ready
        await manager.stop_file_watching()

    asyncio.run(watch_then_stop())
    assert manager.health().ready


def test_a_cancelled_watch_task_is_not_ready_and_a_new_one_recovers(manager):
    async def run():
        await manager.start_file_watching()
        task = manager.reloader._async_task
        task.cancel()  # other code cancelling every task, say
        await asyncio.sleep(0)
        await asyncio.wait({task})
        assert not manager.health().ready and _freshness(manager).status == "fail"
        old = manager.reloader._async_watcher  # (held: not garbage collected meanwhile)
        await asyncio.sleep(0.3)
        await manager.start_file_watching()  # started again: followed again
        assert manager.health().ready and _freshness(manager).status == "ok"
        await asyncio.sleep(0.2)
        # the new watcher's age, not the replaced one's (which only grows)
        assert 0 < _series(manager) < 0.45 and old is not manager.reloader._async_watcher
        await manager.stop_file_watching()

    asyncio.run(run())
    assert manager.health().ready
