"""How many examples the property tests run: one knob for the whole suite.

Every ``@settings(max_examples=N)`` in tests/ is written ``max_examples=examples(N)``,
and the suite's hypothesis profile (tests/conftest.py) takes ``examples(100)`` for the
tests that set no count. ``N`` is the test's strength relative to the others: what its
author thought the property deserves next to the rest of the suite.

The suite's run (CI's, a developer's before a commit) is a regression guard: it has to
catch a change that breaks what a test checks, and such a change usually breaks the
property on many inputs, which a few dozen examples find; the examples that failed
before are replayed first from hypothesis's database (.hypothesis/) in a checkout that
saw them. Hunting for bugs nobody has seen yet, the rare input, wants many more examples
and runs when nobody waits for it: ``CFGCORE_FUZZ_SCALE=4 python -m pytest -q -n auto``
is the deep run (4 times each count; any positive number scales them). The default
scale, 0.5, halves the examples of the property tests, about 40% of their time and an
eighth of the whole run's.

A count of 25 or less is never scaled down (a small count is already its author's
choice for a test that is costly per example), and a scaled count never drops below 25:
a scale of 0.01 still runs each property on 25 examples (all of a smaller count).
"""

from __future__ import annotations

import os

#: The scale when CFGCORE_FUZZ_SCALE is not set (the suite's own runs and CI's).
DEFAULT_SCALE = 0.5
#: No count is scaled below this (and a smaller count stays as it is).
FLOOR = 25


def _scale() -> float:
    raw = os.environ.get("CFGCORE_FUZZ_SCALE", "").strip()
    if not raw:
        return DEFAULT_SCALE
    try:
        scale = float(raw)
    except ValueError:
        scale = 0.0
    if not scale > 0 or scale == float("inf"):
        raise ValueError(
            f"CFGCORE_FUZZ_SCALE={raw!r}: expected a positive number (4: 4 times the examples)"
        )
    return scale


SCALE = _scale()


def examples(n: int) -> int:
    """``n`` examples scaled by CFGCORE_FUZZ_SCALE, never fewer than ``min(n, FLOOR)``."""
    return max(min(n, FLOOR), round(n * SCALE))
