"""The metric registry itself: counters, gauges, histograms, collectors, threads."""

from __future__ import annotations

import math
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgcore.observability.registry import Family, Registry, Sample


def _family(reg: Registry, name: str) -> Family:
    return next(f for f in reg.collect() if f.name == name)


def test_counter_counts_per_label_set_and_never_goes_down():
    reg = Registry()
    c = reg.counter("x_total", "help", ("result",))
    c.inc(result="ok")
    c.inc(2, result="ok")
    c.inc(result="bad")
    assert c.value(result="ok") == 3 and c.value(result="bad") == 1
    assert c.value(result="never") == 0
    with pytest.raises(ValueError, match="only goes up"):
        c.inc(-1, result="ok")
    values = {s.labels["result"]: s.value for s in _family(reg, "x_total").samples}
    assert values == {"ok": 3.0, "bad": 1.0}


def test_labels_must_match_the_declared_names():
    reg = Registry()
    c = reg.counter("y_total", "help", ("a", "b"))
    with pytest.raises(ValueError, match="labels"):
        c.inc(a="1")
    with pytest.raises(ValueError, match="missing label"):
        c.inc(a="1", c="2")
    with pytest.raises(ValueError, match="_total"):
        reg.counter("badly_named", "help")


def test_asking_again_returns_the_same_instrument_and_refuses_a_different_one():
    reg = Registry()
    assert reg.counter("z_total", "h", ("a",)) is reg.counter("z_total", "h", ("a",))
    with pytest.raises(ValueError, match="already registered"):
        reg.gauge("z_total", "h", ("a",))
    with pytest.raises(ValueError, match="already registered"):
        reg.counter("z_total", "h", ("b",))


def test_gauge_keeps_the_last_value():
    reg = Registry()
    g = reg.gauge("g", "help")
    assert math.isnan(g.value())
    g.set(3)
    g.set(1.5)
    assert g.value() == 1.5
    assert [s.value for s in _family(reg, "g").samples] == [1.5]


@given(st.lists(st.floats(min_value=0, max_value=20, allow_nan=False), max_size=50))
def test_histogram_buckets_are_cumulative_le_counts(values):
    reg = Registry()
    bounds = (0.5, 1.0, 5.0)
    h = reg.histogram("h_seconds", "help", buckets=bounds)
    for v in values:
        h.observe(v)
    samples = _family(reg, "h_seconds").samples
    if not values:
        assert samples == []
        return
    (sample,) = samples
    expected = [(b, float(sum(1 for v in values if v <= b))) for b in bounds]
    assert list(sample.buckets) == [*expected, (math.inf, float(len(values)))]
    assert sample.count == len(values)
    assert sample.value == pytest.approx(sum(values))


def test_concurrent_increments_are_not_lost():
    reg = Registry()
    c = reg.counter("race_total", "help", ("t",))
    h = reg.histogram("race_seconds", "help")

    def work(i: int) -> None:
        for _ in range(2000):
            c.inc(t=str(i % 2))
            h.observe(0.001)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.value(t="0") + c.value(t="1") == 16000
    assert _family(reg, "race_seconds").samples[0].count == 16000


def test_collectors_run_first_and_a_broken_one_is_skipped(caplog):
    reg = Registry()
    c = reg.counter("pulled_total", "help")
    calls = []

    def harvest() -> list[Family]:
        calls.append(1)
        c.inc()  # brings an instrument up to date before it is copied
        return [Family("live_gauge", "gauge", "help", (), [Sample({}, 7.0)])]

    def broken() -> list[Family]:
        raise RuntimeError("boom")

    reg.add_collector(harvest)
    reg.add_collector(harvest)  # once only
    reg.add_collector(broken)
    families = {f.name: f for f in reg.collect()}
    assert calls == [1]
    assert families["pulled_total"].samples[0].value == 1
    assert families["live_gauge"].samples[0].value == 7
    assert "metrics collector" in caplog.text and "boom" in caplog.text
    reg.remove_collector(harvest)
    reg.collect()
    assert calls == [1]


def test_live_objects_sharing_labels_make_one_series():
    from cfgcore.observability.instruments import _family

    rows = [Sample({"store": "s"}, 0.0), Sample({"store": "s"}, 1.0), Sample({"store": "t"}, 3.0)]
    assert [s.value for s in _family("x_total", "counter", "h", ("store",), rows).samples] == [
        1.0, 3.0]  # fmt: skip
    assert [s.value for s in _family("connected", "gauge", "h", ("store",), rows).samples] == [
        1.0, 3.0]  # fmt: skip
    ages = _family("last_contact_age_seconds", "gauge", "h", ("store",), rows)
    assert [s.value for s in ages.samples] == [0.0, 3.0]  # the freshest
