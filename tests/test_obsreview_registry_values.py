"""Counters and histograms of the metric registry keep values Prometheus can use,
whatever a caller hands them: a NaN increment made a counter NaN for good (``amount <
0`` is false for NaN), infinity made it infinite, and a NaN observation made a
histogram's sum NaN for good."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgcore.observability.registry import Registry

# Finite values of a size a count or a duration has (two of 1e308 add up to infinity,
# as any float does), and the values that are no number at all.
_ANY_FLOAT = (
    st.floats(min_value=-1e12, max_value=1e12)
    | st.integers(-(10**6), 10**6)
    | st.sampled_from([math.nan, math.inf, -math.inf])
)


@given(st.lists(_ANY_FLOAT, max_size=30))
def test_a_counter_never_goes_backwards_nor_stops_being_a_number(amounts):
    counter = Registry().counter("c_total", "help")
    previous = 0.0
    for amount in amounts:
        try:
            counter.inc(amount)
        except ValueError:
            assert not 0 <= amount < math.inf  # refused only what it cannot count
        now = counter.value()
        assert math.isfinite(now) and now >= previous
        previous = now


@pytest.mark.parametrize("amount", [math.nan, math.inf, -1, -math.inf])
def test_an_increment_that_is_no_count_is_refused_and_changes_nothing(amount):
    counter = Registry().counter("c_total", "help")
    counter.inc(2)
    with pytest.raises(ValueError, match="c_total: a counter only goes up"):
        counter.inc(amount)
    assert counter.value() == 2


@given(st.lists(_ANY_FLOAT, max_size=30))
def test_a_histogram_sum_and_count_stay_numbers(values):
    reg = Registry()
    hist = reg.histogram("h_seconds", "help")
    accepted = 0
    for value in values:
        try:
            hist.observe(value)
            accepted += 1
        except ValueError:
            assert not math.isfinite(value)
    samples = next(f for f in reg.collect() if f.name == "h_seconds").samples
    if not accepted:
        assert samples == []
        return
    (sample,) = samples
    assert math.isfinite(sample.value) and sample.count == accepted
    counts = [n for _, n in sample.buckets]
    assert counts == sorted(counts) and counts[-1] == accepted
