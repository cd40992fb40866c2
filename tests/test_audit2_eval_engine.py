"""A clock set while a swap is installing a snapshot reaches the live snapshot.

``swap()`` gives the incoming snapshot the engine's clock, then publishes it. A
``set_clock()`` in between (from another thread on the reference evaluator, or from code
that releasing the incoming snapshot's previous clock runs, on both) set the engine's
clock and the *outgoing* snapshot's, so the live snapshot kept the clock read before:
schedules were then judged by the wrong clock until the next swap.
"""

from __future__ import annotations

from cfgcore.engine import engine_class

SCHEDULED = {"flags": {"f": {"default": "on", "schedule": {"start": "2030-01-01T00:00:00Z"}}}}
IN_WINDOW = 2.0e9  # 2033


def in_window() -> float:
    return IN_WINDOW


def test_a_clock_set_during_a_swap_is_the_live_snapshots_clock(impl):
    engine = engine_class(impl).from_snapshot(SCHEDULED)
    incoming = engine.compile(SCHEDULED)

    class Previous:
        """The incoming snapshot's clock before the swap: releasing it sets the clock."""

        def __call__(self) -> float:
            return 0.0

        def __del__(self) -> None:
            engine.set_clock(in_window)

    incoming.clock = Previous()
    engine.swap(incoming)
    assert engine.snapshot() is incoming
    assert incoming.clock is in_window
    assert engine.is_enabled("f") is True  # judged by the clock set last
    engine.swap(SCHEDULED)  # and the engine keeps it for later swaps
    assert engine.snapshot().clock is in_window
