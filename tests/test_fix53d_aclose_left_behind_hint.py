"""A listener ``aclose()`` waited out is not then blamed on a missing ``aclose()``.

docs/configuration.md: ``aclose()`` waits 5 s at most, "a listener stuck longer is left
behind and logged at WARNING". The loop's end then cancels that listener, and the bus
logged it again at WARNING as an abandoned delivery, telling the application, which
had just awaited ``aclose()``, to "close the manager with 'await manager.aclose()' to
wait for them". A delivery left behind by a close's wait is still counted in
``abandoned``, logged at DEBUG (the close's WARNING named it), and not told to call
what was called; one abandoned by a bare ``close()`` in the loop keeps the hint."""

from __future__ import annotations

import asyncio
import logging

from cfgcore.runtime.events import ConfigChangeEvent, EventBus


def _event() -> ConfigChangeEvent:
    return ConfigChangeEvent("database.pool_size", 1, 2, "test", 1, 0.0)


async def _stuck(event):
    await asyncio.sleep(30)


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_listener_aclose_left_behind_is_not_told_to_call_aclose(caplog):
    bus = EventBus()
    bus.register(_stuck)

    async def main():
        bus.emit([_event()])
        await bus.aclose(timeout=0.2)

    with caplog.at_level(logging.DEBUG, logger="cfgcore.events"):
        asyncio.run(main())  # its end cancels the stuck delivery
    told = _warnings(caplog)
    assert len(told) == 1 and "still running after 0.2 s" in told[0], told
    assert bus.abandoned == 1
    assert not any("aclose()" in r.getMessage() for r in caplog.records)
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any("left behind by the close" in m for m in debug), debug


def test_close_in_the_loop_still_names_aclose(caplog):
    bus = EventBus()
    bus.register(_stuck)

    async def main():
        bus.emit([_event()])
        await asyncio.sleep(0.05)  # the delivery started
        bus.close()  # in the loop: cannot wait for it

    with caplog.at_level(logging.WARNING, logger="cfgcore.events"):
        asyncio.run(main())
    assert bus.abandoned == 1
    assert any("await manager.aclose()" in m for m in _warnings(caplog))
