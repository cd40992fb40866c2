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
from tests.test_alerts import promtool  # noqa: F401 - the fixture

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


def test_a_metric_given_twice_is_exported_once_and_logged_once(caplog):
    from cfgcore.observability.registry import Family, Sample

    reg = Registry()
    reg.add_collector(lambda: [Family("dup_total", "counter", "first", (), [Sample({}, 1.0)])])
    reg.add_collector(lambda: [Family("dup_total", "counter", "second", (), [Sample({}, 2.0)])])
    with caplog.at_level("WARNING", logger="cfgcore.metrics"):
        for _ in range(3):
            families = reg.collect()
            assert [(f.name, f.help) for f in families] == [("dup_total", "first")]
    assert caplog.text.count("metric dup_total is given twice") == 1


_RELOADED = """
import importlib, sys
import cfgcore.observability.instruments as instruments
importlib.reload(instruments)  # what a notebook's autoreload does to an edited module
from cfgcore.config.manager import ConfigurationManager
manager = ConfigurationManager(sys.argv[1], environ={})
manager.load_environment_config("staging")
manager.flags
from prometheus_client import CollectorRegistry
from cfgcore.observability.prometheus import exposition
sys.stdout.buffer.write(exposition(CollectorRegistry()))
manager.close()
"""


def test_a_reloaded_instruments_module_still_gives_a_valid_scrape(bundled_config, promtool):  # noqa: F811
    # Reloading the module added its collectors a second time: every cfgcore gauge was
    # named twice, and Prometheus (and promtool) refuse such a scrape whole.
    pytest.importorskip("prometheus_client")
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.run(
        [sys.executable, "-c", _RELOADED, str(bundled_config)],
        capture_output=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    assert b"cfgcore_config_version{" in run.stdout
    check = subprocess.run(
        [promtool, "check", "metrics"], input=run.stdout, capture_output=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr.decode(errors="replace")
