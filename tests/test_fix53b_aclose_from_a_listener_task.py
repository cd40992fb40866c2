"""``await manager.aclose()`` from an async change listener does not wait for that
listener: it did only when awaited in the listener's own task. Bounded the usual way,
``await asyncio.wait_for(manager.aclose(), 10)`` (which runs it in a task of its own
on Python 3.11), or run as a task the listener awaits (``create_task``, ``gather``), it
waited the whole 5 s for the listener awaiting it, then logged that listener as "still
running" and left behind. It still waits for every other delivery. Real loops, real
managers."""

from __future__ import annotations

import asyncio
import logging

import pytest

from cfgcore.runtime.events import ConfigChangeEvent, EventBus

WAYS = {
    "wait_for": lambda aclose: asyncio.wait_for(aclose(), 10),
    "create_task": lambda aclose: asyncio.get_running_loop().create_task(aclose()),
    "gather": lambda aclose: asyncio.gather(aclose()),
    "own task": lambda aclose: aclose(),
}


@pytest.mark.parametrize("way", list(WAYS))
def test_a_listener_closing_its_bus_does_not_wait_for_itself(way, caplog):
    bus = EventBus()
    took: list[bool] = []
    others: list[str] = []

    async def closing(event):
        await WAYS[way](bus.aclose)
        took.append(True)
        assert others == ["x"]  # (the other listener's delivery was waited for)

    async def other(event):
        await asyncio.sleep(0.2)
        others.append(event.config_path)

    bus.register(closing)
    bus.register(other)

    async def main():
        bus.emit([ConfigChangeEvent("x", 1, 2, "test", 1, 0.0)])
        await asyncio.sleep(0.1)
        while not took:
            await asyncio.sleep(0.05)

    with caplog.at_level(logging.WARNING, logger="cfgcore.events"):
        asyncio.run(asyncio.wait_for(main(), 30))
    # (It waited its whole timeout for itself, then logged itself as still running.)
    assert took == [True]
    assert not [r for r in caplog.records if "still running" in r.getMessage()]


def test_a_managers_listener_bounding_aclose_with_wait_for(tmp_path, caplog):
    from cfgcore.dynamic_config import DynamicConfigurationManager

    m = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
    took: list[bool] = []

    async def listener(event):
        await asyncio.wait_for(m.aclose(), 10)
        took.append(True)

    m.register_change_listener(listener)

    async def main():
        m.set_feature_flag("a", True)
        while not took:
            await asyncio.sleep(0.05)

    try:
        with caplog.at_level(logging.WARNING, logger="cfgcore.events"):
            asyncio.run(asyncio.wait_for(main(), 30))
    finally:
        m.close()
    assert took == [True] and m.closed
    assert not [r for r in caplog.records if "still running" in r.getMessage()]
