"""``close()`` delivers what was emitted before it: the async listeners already
scheduled run to their end (bounded by a timeout), so a service that changes a flag
and shuts down still notifies its monitoring. Before, close() stopped the private
listener loop at once, and a coroutine scheduled just before it never ran (the
specification's change-listener example lost its metric about 1 run in 20)."""

from __future__ import annotations

import asyncio
import logging
import threading

from cfgcore.experiments.dynamic import DynamicConfigurationManager
from cfgcore.runtime.events import ConfigChangeEvent, EventBus


def _event(path: str = "a.b") -> ConfigChangeEvent:
    return ConfigChangeEvent(path, 1, 2, "test", 1, 0.0)


def test_close_lets_a_scheduled_async_listener_finish():
    bus = EventBus()
    done: list[str] = []

    async def listener(event):
        await asyncio.sleep(0.2)  # still running when close() is called
        done.append(event.config_path)

    bus.register(listener)
    bus.emit([_event("x.y")])
    bus.close()
    assert done == ["x.y"]


def test_close_delivers_events_queued_for_the_dispatcher_thread():
    bus = EventBus()
    gate = threading.Event()
    seen: list[str] = []

    def listener(event):
        gate.wait(10)
        seen.append(event.config_path)

    bus.register(listener)
    bus.emit_in_background([_event("one")])
    bus.emit_in_background([_event("two")])
    threading.Timer(0.1, gate.set).start()
    bus.close()
    assert seen == ["one", "two"]


def test_a_stuck_async_listener_is_left_behind_with_a_warning(caplog):
    bus = EventBus()
    release = threading.Event()

    async def stuck(event):
        while not release.is_set():
            await asyncio.sleep(0.01)

    bus.register(stuck)
    bus.emit([_event()])
    with caplog.at_level(logging.WARNING, logger="cfgcore.events"):
        bus.close(timeout=0.2)
    release.set()
    assert any("still running after 0.2 s" in r.getMessage() for r in caplog.records)


def test_a_listener_closing_its_own_bus_does_not_wait_for_itself(caplog):
    bus = EventBus()
    closed: list[bool] = []

    def listener(event):
        bus.close(timeout=0.2)  # it is the delivery close() would wait for
        closed.append(True)

    bus.register(listener)
    with caplog.at_level(logging.WARNING, logger="cfgcore.events"):
        bus.emit([_event()])
    assert closed == [True]
    assert not [r for r in caplog.records if "still running" in r.getMessage()]


def test_an_async_listener_closing_its_own_bus_does_not_wait_for_itself(caplog):
    bus = EventBus()
    closed = threading.Event()

    async def listener(event):
        bus.close(timeout=0.2)  # on the bus's own loop: waiting would wait for itself
        closed.set()

    bus.register(listener)
    with caplog.at_level(logging.WARNING, logger="cfgcore.events"):
        bus.emit([_event()])
        assert closed.wait(10)
    assert not [r for r in caplog.records if "still running" in r.getMessage()]


def test_close_from_async_code_does_not_wait_for_its_own_loop(caplog):
    seen: list[str] = []

    async def main():
        bus = EventBus()

        async def listener(event):
            seen.append(event.config_path)

        bus.register(listener)
        bus.emit([_event("on.this.loop")])  # a task on this loop: runs once we yield
        bus.close(timeout=0.2)
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    with caplog.at_level(logging.WARNING, logger="cfgcore.events"):
        asyncio.run(main())
    assert seen == ["on.this.loop"]
    assert not [r for r in caplog.records if "still running" in r.getMessage()]


def test_a_flag_change_then_close_notifies_an_async_listener(tmp_path):
    manager = DynamicConfigurationManager(tmp_path / "flags.yaml", state_dir=tmp_path)
    flag = sorted(manager._live.source.flags)[0]
    got: list[str] = []

    class Listener:
        async def on_config_changed(self, event):
            await asyncio.sleep(0.1)
            got.append(event.config_path)

    manager.register_change_listener(Listener())
    manager.set_feature_flag(flag, True, 50.0)
    manager.close()
    assert f"flags.{flag}" in got
