"""An async change listener raising SystemExit (or KeyboardInterrupt) where the change
was not made on its event loop: asyncio raises it out of the loop the task runs on.
On cfgcore's own listener loop, that loop ended with every delivery on it (another
listener's event lost, then "cancelled ... its event loop ending" blamed on a missing
``aclose()``), and asyncio printed "Task exception was never retrieved" instead of a
line on ``cfgcore.events``; on the application's loop (``set_loop``: the loop of
``await start_file_watching()``), a change made by a thread ended ``asyncio.run()``.
It is logged and counted now, as a sync listener's is on cfgcore's threads; raised on
the loop of code that made the change itself, as before (a sync listener's propagates
to it too). Real loops and threads."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from cfgcore.runtime.events import ConfigChangeEvent, EventBus


def _event(path="x", version=1):
    return ConfigChangeEvent(path, 1, 2, "test", version, 0.0)


@pytest.mark.parametrize("exc", [SystemExit, KeyboardInterrupt])
def test_cfgcores_listener_loop_keeps_delivering(exc, caplog):
    bus = EventBus()
    seen: list[str] = []

    async def slow(event):
        await asyncio.sleep(0.05)
        seen.append(event.config_path)

    async def exits(event):
        raise exc(3)

    bus.register(slow)
    bus.register(exits)
    try:
        with caplog.at_level(logging.ERROR, logger="cfgcore.events"):
            bus.emit([_event("x")])  # (no loop here: cfgcore's listener loop)
            assert bus.wait_idle(5)
            loop = bus._own_loop
            bus.emit([_event("y", 2)])
            assert bus.wait_idle(5)
        assert seen == ["x", "y"]  # (x was lost with the loop)
        assert bus._own_loop is loop and not loop.is_closed()
        assert bus.abandoned == 0
        told = [r for r in caplog.records if r.name == "cfgcore.events"]
        assert len(told) == 2 and all("exits" in r.getMessage() for r in told)
    finally:
        bus.close()


def test_the_applications_loop_survives_a_change_made_by_a_thread(caplog):
    bus = EventBus()
    seen: list[str] = []

    async def listener(event):
        if event.config_path == "exit":
            raise SystemExit(4)
        seen.append(event.config_path)

    bus.register(listener)

    async def main():
        bus.set_loop(asyncio.get_running_loop())
        for path in ("exit", "after"):
            t = threading.Thread(target=bus.emit, args=([_event(path)],))
            t.start()
            await asyncio.to_thread(t.join)
        await bus.aclose()

    with caplog.at_level(logging.ERROR, logger="cfgcore.events"):
        asyncio.run(main())  # (raised SystemExit)
    assert seen == ["after"]
    assert any("raised on exit" in r.getMessage() for r in caplog.records)


def test_raised_on_the_loop_of_the_code_that_made_the_change():
    bus = EventBus()

    async def listener(event):
        raise SystemExit(5)

    bus.register(listener)

    async def main():
        bus.emit([_event()])  # (made on this loop, as update_config from a handler)
        await asyncio.sleep(0.1)

    with pytest.raises(SystemExit):
        asyncio.run(main())
    bus.close()
