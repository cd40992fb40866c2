"""``is_enabled`` of a scheduled flag by the kind of clock its engine reads (compiled
evaluator where built): the system clock read in C, a Python clock answering a float,
one answering a datetime with a time zone (read by ``cfgcore._clock``). Median of 7
runs of 200,000 calls, in ns per call (the timeit lambda included).

Run: ``python benchmarks/clock_kinds.py``
"""

from __future__ import annotations

import datetime
import statistics
import timeit

import cfgcore

DOC = {"flags": {"f": {"default": "on", "schedule": {"start": "2020-01-01T00:00:00Z"}}}}
AWARE = datetime.datetime(2031, 1, 1, tzinfo=datetime.timezone.utc)
CLOCKS = (
    ("system clock", None),
    ("float clock", lambda: 2.0e9),
    ("aware datetime clock", lambda: AWARE),
)


def main() -> None:
    engine = cfgcore.Engine.from_snapshot(DOC)
    for name, clock in CLOCKS:
        engine.set_clock(clock)
        assert engine.is_enabled("f") is True
        runs = [
            min(timeit.repeat(lambda: engine.is_enabled("f"), number=200_000, repeat=3))
            / 200_000
            * 1e9
            for _ in range(7)
        ]
        print(f"{name}: {statistics.median(runs):.1f} ns")


if __name__ == "__main__":
    main()
