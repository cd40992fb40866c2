"""Closing a manager from inside the event loop its async change listeners run on.

A service closes its manager in a FastAPI/Starlette lifespan's shutdown, or at the end
of ``asyncio.run(main())``, and the loop ends right after. ``close()`` could not wait
for the listeners of that loop from inside it: the last events were lost, a delivery
handed to the loop by the watcher's thread blocked ``close()`` (and the loop) for the
whole 5 s wait, and one the loop's end dropped before it started printed "coroutine
... was never awaited". ``await manager.aclose()`` stops the sources, then waits for
every delivery without blocking the loop; a delivery the loop's end cancels or drops
(after a plain ``close()``) is counted in ``events.abandoned`` and logged, its coroutine
closed. Real files, the real watcher and real flag writes; the whole-process scenarios
run in a child under ``-X dev -W error::RuntimeWarning``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path

from cfgcore.config.manager import ConfigurationManager
from cfgcore.dynamic_config import DynamicConfigurationManager, FeatureFlag
from cfgcore.runtime.atomicio import atomic_write_text
from cfgcore.runtime.events import ConfigChangeEvent, EventBus
from tests.waiting import wait_for_async

ROOT = Path(__file__).resolve().parents[1]
SRC = str(ROOT / "src")


def _config_manager(directory: Path) -> ConfigurationManager:
    (directory / "base.yaml").write_text("app:\n  name: svc\n")
    (directory / "development.yaml").write_text("svc:\n  a: 1\n  b: 1\n  c: 1\n")
    m = ConfigurationManager(directory, environment="development", environ={})
    m.load_environment_config()
    return m


def _scenario(name: str, directory: str) -> None:
    """One service run, in a child process (see _child): prints what its listener got."""
    tmp = Path(directory)
    got: list[str] = []

    async def listener(event):
        await asyncio.sleep(0.2)  # still running when the service closes
        got.append(event.config_path)

    if name == "flags":
        dm = DynamicConfigurationManager(state_dir=tmp, record_usage=False)
        dm.register_change_listener(listener)

        async def flags_main():
            dm.set_feature_flag(FeatureFlag.PARENTAL_CONTROLS, False)  # a change
            await dm.aclose()

        asyncio.run(flags_main())
        bus = dm.events
    else:
        m = _config_manager(tmp)
        m.register_change_listener(listener)

        async def main():
            if name == "watch":
                await m.start_file_watching(poll_interval=0.1)
                atomic_write_text(tmp / "development.yaml", "svc:\n  a: 5\n  b: 1\n  c: 1\n")
                assert await wait_for_async(lambda: m.get("svc.a") == 5)
            else:
                m.update_config("svc", {"a": 2, "b": 3, "c": 4})
            if name == "close":
                m.close()  # cannot wait for this loop's listeners: the loop's end cancels them
            else:
                await m.aclose()

        asyncio.run(main())
        bus = m.events
    gc.collect()
    print(json.dumps({"got": sorted(got), "abandoned": getattr(bus, "abandoned", None)}))


def _child(name: str, tmp_path: Path) -> tuple[dict, str]:
    code = (
        "from tests.test_aclose_async_listeners import _scenario; "
        f"_scenario({name!r}, {str(tmp_path)!r})"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, str(ROOT)]),
           "CFGCORE_STATE_DIR": str(tmp_path / "state")}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error::RuntimeWarning", "-c", code],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "never awaited" not in done.stderr, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_aclose_delivers_a_reload_seen_by_the_watcher_before_the_loop_ends(tmp_path):
    result, _ = _child("watch", tmp_path)
    assert result == {"got": ["svc.a"], "abandoned": 0}


def test_aclose_delivers_every_change_made_in_the_loop(tmp_path):
    result, _ = _child("update", tmp_path)
    assert result == {"got": ["svc.a", "svc.b", "svc.c"], "abandoned": 0}


def test_aclose_of_the_dynamic_manager_delivers_a_flag_change(tmp_path):
    result, _ = _child("flags", tmp_path)
    assert result["got"] == [f"flags.{FeatureFlag.PARENTAL_CONTROLS.value}"]
    assert result["abandoned"] == 0


def test_close_in_the_loop_counts_and_logs_what_the_loop_end_cancels(tmp_path):
    # The documented cost of a plain close() in a loop that then ends: told, counted,
    # and no "never awaited" coroutine (the child runs with -W error::RuntimeWarning).
    result, stderr = _child("close", tmp_path)
    assert result == {"got": [], "abandoned": 3}
    assert stderr.count("did not handle") == 1  # once at WARNING, then DEBUG
    assert "await manager.aclose()" in stderr


def test_close_in_the_loop_does_not_wait_for_a_delivery_handed_to_that_loop(tmp_path):
    # A reload's event is delivered by the watcher's dispatcher thread, which hands the
    # listener to this loop: close() waited for it for 5 s, blocking the loop it needs.
    m = _config_manager(tmp_path)
    got: list[str] = []

    async def listener(event):
        await asyncio.sleep(0.3)
        got.append(event.config_path)

    m.register_change_listener(listener)

    async def main() -> float:
        await m.start_file_watching(poll_interval=0.1)
        atomic_write_text(tmp_path / "development.yaml", "svc:\n  a: 7\n  b: 1\n  c: 1\n")
        assert await wait_for_async(lambda: m.get("svc.a") == 7)
        assert await wait_for_async(lambda: m.events._pending)  # handed to this loop
        m.close()
        # close() returned with the delivery still pending (it did not wait for it,
        # which would have held this loop until its timeout and then dropped it)...
        left = [p for p in m.events._pending.values() if not p.loop.is_closed()]
        # ...and it still runs as the loop goes on
        assert await wait_for_async(lambda: got)
        return len(left)

    assert asyncio.run(main()) == 1
    assert got == ["svc.a"]


def test_aclose_logs_a_failing_listener_and_delivers_the_others(tmp_path, caplog):
    m = _config_manager(tmp_path)
    got: list[str] = []

    async def failing(event):
        await asyncio.sleep(0.05)
        raise RuntimeError("listener bug")

    async def fine(event):
        await asyncio.sleep(0.1)
        got.append(event.config_path)

    m.register_change_listener(failing)
    m.register_change_listener(fine)

    async def main():
        m.update_config("svc.b", 9)
        await m.aclose()

    with caplog.at_level(logging.ERROR, logger="cfgcore.events"):
        asyncio.run(main())
    assert got == ["svc.b"]
    assert any("failed on svc.b" in r.getMessage() for r in caplog.records)
    assert m.events.abandoned == 0
    assert m.closed and not m.health().ready


def test_a_listener_awaiting_aclose_does_not_wait_for_itself(tmp_path, caplog):
    m = _config_manager(tmp_path)
    other: list[str] = []
    closed: list[float] = []

    async def closing(event):
        await m.aclose()
        closed.append(len(other))

    async def slow(event):
        await asyncio.sleep(0.2)
        other.append(event.config_path)

    m.register_change_listener(closing)
    m.register_change_listener(slow)

    async def main():
        m.update_config("svc.c", 5)
        assert await wait_for_async(lambda: closed)

    with caplog.at_level(logging.WARNING, logger="cfgcore.events"):
        asyncio.run(main())
    assert closed == [1]  # aclose returned once the other delivery was done
    assert other == ["svc.c"]
    assert not [r for r in caplog.records if "still running" in r.getMessage()]


def _event(path: str = "a.b") -> ConfigChangeEvent:
    return ConfigChangeEvent(path, 1, 2, "test", 1, 0.0)


def test_bus_aclose_waits_for_deliveries_on_another_loop_and_keeps_its_loop_running():
    bus = EventBus()
    got: list[str] = []
    ticks: list[int] = []

    async def listener(event):
        await asyncio.sleep(0.2)
        got.append(event.config_path)

    bus.register(listener)
    # Emitted from a thread without a loop: runs on the bus's own background loop.
    worker = threading.Thread(target=bus.emit, args=([_event("other.loop")],))
    worker.start()
    worker.join()

    async def ticking():
        while True:
            ticks.append(1)
            await asyncio.sleep(0.01)

    async def main():
        ticker = asyncio.get_running_loop().create_task(ticking())
        await bus.aclose()
        ticker.cancel()

    asyncio.run(main())
    assert got == ["other.loop"]
    assert len(ticks) >= 5  # the loop ran while aclose waited


def test_bus_aclose_leaves_a_stuck_listener_behind_with_a_warning(caplog):
    bus = EventBus()

    async def stuck(event):
        await asyncio.sleep(30)

    bus.register(stuck)

    async def main():
        bus.emit([_event()])
        await bus.aclose(timeout=0.2)
        return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    with caplog.at_level(logging.WARNING, logger="cfgcore.events"):
        left = asyncio.run(main())
    assert len(left) == 1  # the stuck delivery was left running, not cancelled by aclose
    assert any("still running after 0.2 s" in r.getMessage() for r in caplog.records)
    assert bus.abandoned == 1  # then cancelled by asyncio.run: counted


def test_a_delivery_dropped_by_its_closing_loop_is_closed_and_counted(caplog):
    # A delivery handed to the application's loop (set_loop, as start_file_watching
    # does) that the loop closes before running it: its coroutine was never awaited
    # (a RuntimeWarning) and close() waited for it until its timeout.
    loop = asyncio.new_event_loop()
    busy, release = threading.Event(), threading.Event()

    def hold():  # the loop is busy (running) while the delivery is handed to it
        busy.set()
        release.wait(10)
        loop.stop()  # it ends before the delivery's turn

    def run():
        loop.call_soon(hold)
        loop.run_forever()
        loop.close()

    thread = threading.Thread(target=run)
    thread.start()
    assert busy.wait(10)
    bus = EventBus()
    bus.set_loop(loop)
    ran: list[str] = []

    async def listener(event):
        ran.append(event.config_path)

    bus.register(listener)
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        bus.emit([_event("dropped")])
        release.set()
        thread.join(10)
        gc.collect()
        pending = len(bus._pending)  # the dropped delivery is settled, not waited for
        idle = bus.wait_idle(2.0)
        bus.close()
    assert ran == []
    assert not [str(w.message) for w in caught if "never awaited" in str(w.message)]
    assert idle and pending == 0
    assert getattr(bus, "abandoned", None) == 1
    assert any("before it ran" in r.getMessage() for r in caplog.records)


def test_a_delivery_cancelled_before_it_ran_is_closed_and_counted(caplog):
    # What asyncio.run does to the tasks left when its main coroutine returns: one
    # cancelled before its first step dropped the listener's coroutine unawaited.
    bus = EventBus()
    ran: list[str] = []

    async def listener(event):
        ran.append(event.config_path)

    bus.register(listener)

    async def main():
        bus.emit([_event("cancelled")])
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        asyncio.run(main())
        gc.collect()
    assert ran == []
    assert not [str(w.message) for w in caught if "never awaited" in str(w.message)]
    assert getattr(bus, "abandoned", None) == 1
    assert bus.wait_idle(1.0)
    assert any("before it ran" in r.getMessage() for r in caplog.records)
