"""Debug mode's context line stays bounded for a mapping whose iteration repeats keys.

The line shows the attributes the flag reads first, then at most 20 others found by
iterating the context, skipping the ones shown already. Skipped keys were not counted,
so a mapping whose ``__iter__`` yielded an attribute the flag reads over and over (an
endless generator, a buggy view) kept the check looping: an evaluation with debug mode
on never returned, on either evaluator. A mapping yields each key once, so at most as
many keys as the flag reads are skipped; past that the rendering stops.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping

import pytest

import cfgcore
from cfgcore.observability import debug

FLAGS = {
    "flags": {"f": {"default": "off", "rules": [{"when": {"attr": "x", "eq": 1}, "serve": "on"}]}}
}


class Repeating(Mapping):
    """Holds x=1 and y=2; its iteration yields ``x`` ``times`` times, then ``y``."""

    def __init__(self, times):
        self.times = times
        self.iterated = 0

    def __getitem__(self, key):
        return {"x": 1, "y": 2}[key]

    def __iter__(self):
        for key in itertools.chain(itertools.repeat("x", self.times), ["y"]):
            self.iterated += 1
            yield key

    def __len__(self):
        return 2


@pytest.fixture
def debug_mode():
    cfgcore.enable_debug_mode()
    try:
        yield
    finally:
        cfgcore.disable_debug_mode()


def test_context_text_stops_on_repeated_keys():
    ctx = Repeating(1_000_000)
    text = debug.context_text(ctx, ["x"])
    assert text.startswith("{'x': 1")
    assert ctx.iterated <= 2


@pytest.mark.parametrize("times", [0, 1, 1_000_000])
def test_an_evaluation_with_debug_mode_returns(make, debug_mode, caplog, times):
    engine = make(FLAGS)
    ctx = Repeating(times)
    with caplog.at_level(logging.DEBUG, logger="cfgcore.evaluation"):
        assert engine.is_enabled("f", ctx)
        assert engine.evaluate_all(ctx) == {"f": True}
    assert ctx.iterated <= 2 * (min(times, 2) + 1)
    shown = [r.getMessage() for r in caplog.records if r.name == "cfgcore.evaluation"]
    assert len(shown) == 2 and all("'x': 1" in line for line in shown)
    if times <= 1:  # a mapping that yields each key once: every attribute shown
        assert all("'y': 2" in line for line in shown)
