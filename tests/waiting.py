"""Waiting for what another thread does (watchers, writer threads, SDK event handlers)
with a deadline: poll, never a fixed sleep. Each returns the predicate's last answer,
so ``assert wait_for(...)`` fails when the condition is still false at the deadline.
(The deadline only matters when a test fails; machines here are shared and slow.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, every: float = 0.005) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()


async def wait_for_async(
    predicate: Callable[[], Any], timeout: float = 15.0, every: float = 0.01
) -> Any:
    """:func:`wait_for` that keeps the event loop running while it waits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(every)
    return predicate()
