"""The process-wide evaluation totals forget flags that are gone: a flag no live engine's
live snapshot holds, with no count for ``retain`` seconds, loses its totals, its
last-evaluated time and its Prometheus series at the next harvest. A flag an engine
serves is never dropped.

Each test harvests into a private :class:`EvaluationTotals` driven by a fake clock (no
sleeps), on both evaluators (``make``). Flag names are unique to this file: engines of
other tests still alive in the process must not serve them.
"""

from __future__ import annotations

import gc
import json
import math

import pytest

import cfgcore.metrics
from cfgcore.observability import evaluations as evaluations_mod
from cfgcore.observability.evaluations import DEFAULT_RETAIN, EvaluationTotals
from cfgcore.runtime.usage import UsageRecorder, read_usage

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
HOUR = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def on(*keys: str) -> dict:
    return {"flags": {k: {"default": "on"} for k in keys}}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def totals(clock) -> EvaluationTotals:
    return EvaluationTotals(retain=HOUR, clock=clock)


def evaluations_of(totals: EvaluationTotals, flag: str) -> dict:
    return {k: n for k, n in totals.collect()["evaluations"].items() if k[0] == flag}


def test_a_deleted_flag_is_kept_within_retention_and_dropped_after(make, totals, clock):
    e = make(on("retain_deleted", "retain_kept"))
    for _ in range(3):
        e.is_enabled("retain_deleted")
    assert evaluations_of(totals, "retain_deleted") == {("retain_deleted", "on", "STATIC"): 3}
    e.swap(on("retain_kept"))  # deleted
    clock.now = T0 + HOUR  # exactly retain seconds after its last count: kept
    assert evaluations_of(totals, "retain_deleted") == {("retain_deleted", "on", "STATIC"): 3}
    assert totals.last_evaluated()["retain_deleted"] == T0
    clock.now = T0 + HOUR + 1
    assert evaluations_of(totals, "retain_deleted") == {}
    assert "retain_deleted" not in totals.last_evaluated()
    # If it comes back it counts from zero: Prometheus reads a counter reset.
    e.swap(on("retain_deleted", "retain_kept"))
    e.is_enabled("retain_deleted")
    assert evaluations_of(totals, "retain_deleted") == {("retain_deleted", "on", "STATIC"): 1}
    assert totals.last_evaluated()["retain_deleted"] == T0 + HOUR + 1


def test_a_served_flag_is_never_dropped_however_old(make, totals, clock):
    e = make(on("retain_live"))
    e.is_enabled("retain_live")
    totals.collect()
    clock.now = T0 + 10 * 365 * 24 * HOUR  # ten years without an evaluation
    assert evaluations_of(totals, "retain_live") == {("retain_live", "on", "STATIC"): 1}
    assert totals.last_evaluated()["retain_live"] == T0  # the usage file's time holds
    assert e  # the engine (and so its live snapshot) is alive until here


def test_a_flag_another_engine_serves_is_kept(make, totals, clock):
    # Evaluated on one engine that then dropped it, still served by another engine
    # that never evaluated it: it exists, so its totals stay.
    a, b = make(on("retain_shared")), make(on("retain_shared"))
    a.is_enabled("retain_shared")
    totals.collect()
    a.swap({"flags": {}})
    clock.now = T0 + 5 * HOUR
    assert evaluations_of(totals, "retain_shared") == {("retain_shared", "on", "STATIC"): 1}
    b.swap({"flags": {}})
    assert evaluations_of(totals, "retain_shared") == {}


def test_a_pinned_retired_snapshot_keeps_a_flag_only_while_it_is_evaluated(make, totals, clock):
    # Decision: only live snapshots keep a flag. A request (or a careless caller) may
    # hold a retired snapshot for ever; its evaluations are counts, and each count
    # keeps the flag's totals for another retain seconds. Nothing counted is lost.
    e = make(on("retain_pinned"))
    e.is_enabled("retain_pinned")
    pinned = e.snapshot()
    e.swap({"flags": {}})
    clock.now = T0 + 0.9 * HOUR
    pinned.is_enabled("retain_pinned")  # counted on the retired snapshot
    clock.now = T0 + 1.5 * HOUR  # past retain since the first count, not the last
    assert evaluations_of(totals, "retain_pinned") == {("retain_pinned", "on", "STATIC"): 2}
    clock.now = T0 + 2.6 * HOUR  # idle for retain, though the snapshot is still held
    assert evaluations_of(totals, "retain_pinned") == {}
    pinned.is_enabled("retain_pinned")
    assert evaluations_of(totals, "retain_pinned") == {("retain_pinned", "on", "STATIC"): 1}
    del pinned


def test_the_counts_of_an_engine_that_died_are_dropped_after_retention(make, totals, clock):
    e = make(on("retain_departed"))
    e.is_enabled("retain_departed")
    e.is_enabled("retain_departed")
    del e
    gc.collect()  # its last counts wait in _counting until a harvest takes them
    assert evaluations_of(totals, "retain_departed") == {("retain_departed", "on", "STATIC"): 2}
    clock.now = T0 + HOUR + 1
    assert evaluations_of(totals, "retain_departed") == {}
    assert "retain_departed" not in totals.last_evaluated()


def test_only_the_gone_flags_entries_go(make, totals, clock):
    e = make(
        {
            "flags": {
                "retain_split": {
                    "variants": {"a": 1, "b": 2},
                    "default": "a",
                    "rules": [{"when": {"attr": "seg", "eq": "x"}, "serve": "b"}],
                },
                "retain_neighbour": {"default": "on"},
            }
        }
    )
    e.variant("retain_split", {"seg": "x"})
    e.variant("retain_split", {"seg": "y"})
    e.is_enabled("retain_neighbour")
    e.is_enabled("retain_missing_flag")  # FLAG_NOT_FOUND: an error code, not a flag
    before = totals.collect()
    assert len([k for k in before["evaluations"] if k[0] == "retain_split"]) == 2
    e.swap(on("retain_neighbour"))
    clock.now = T0 + 2 * HOUR
    after = totals.collect()
    assert not [k for k in after["evaluations"] if k[0] == "retain_split"]
    assert after["evaluations"][("retain_neighbour", "on", "STATIC")] == 1
    assert after["errors"]["FLAG_NOT_FOUND"] >= before["errors"]["FLAG_NOT_FOUND"] >= 1


def test_retain_zero_and_infinity(make, clock):
    zero = EvaluationTotals(retain=0, clock=clock)
    e = make(on("retain_edges"))
    e.is_enabled("retain_edges")
    e.swap({"flags": {}})
    assert evaluations_of(zero, "retain_edges")  # counted in this harvest: kept
    clock.now += 0.001
    assert evaluations_of(zero, "retain_edges") == {}

    forever = EvaluationTotals(retain=math.inf, clock=clock)
    f = make(on("retain_edges_inf"))
    f.is_enabled("retain_edges_inf")
    f.swap({"flags": {}})
    forever.collect()
    clock.now += 100 * 365 * 24 * HOUR
    assert evaluations_of(forever, "retain_edges_inf")


def test_the_retention_can_be_changed_on_a_running_totals(make, totals, clock):
    e = make(on("retain_changed"))
    e.is_enabled("retain_changed")
    e.swap({"flags": {}})
    totals.collect()
    clock.now = T0 + 120
    totals.retain = 60
    assert evaluations_of(totals, "retain_changed") == {}


def test_retain_from_the_environment(monkeypatch):
    monkeypatch.setenv("CFGCORE_EVALUATION_RETAIN_SECONDS", "120")
    assert EvaluationTotals().retain == 120
    assert EvaluationTotals(retain=5).retain == 5  # the argument wins
    monkeypatch.setenv("CFGCORE_EVALUATION_RETAIN_SECONDS", "inf")
    assert EvaluationTotals().retain == math.inf
    monkeypatch.delenv("CFGCORE_EVALUATION_RETAIN_SECONDS")
    assert EvaluationTotals().retain == DEFAULT_RETAIN == HOUR


@pytest.mark.parametrize("raw", ["soon", "-5", "nan", "1h"])
def test_an_unusable_environment_value_is_named_and_the_default_used(monkeypatch, caplog, raw):
    # The totals are made lazily (a scrape, the usage thread): a typo is said, not raised.
    monkeypatch.setenv("CFGCORE_EVALUATION_RETAIN_SECONDS", raw)
    with caplog.at_level("WARNING", logger="cfgcore"):
        assert EvaluationTotals().retain == DEFAULT_RETAIN
    assert any(
        "CFGCORE_EVALUATION_RETAIN_SECONDS" in r.getMessage() and repr(raw) in r.getMessage()
        for r in caplog.records
    )


@pytest.mark.parametrize("bad", [-1, math.nan, "3600", True])
def test_an_unusable_argument_is_refused(bad):
    with pytest.raises(ValueError, match="retain"):
        EvaluationTotals(retain=bad)


def test_a_dropped_flags_time_stays_in_the_usage_file(make, totals, clock, tmp_path):
    # The usage file merges the later time per flag and never forgets one: dropping a
    # deleted flag from the totals does not change what `cfgcore flags stale` reads.
    path = tmp_path / "flag-usage.json"
    recorder = UsageRecorder(path, source=totals.last_evaluated, clock=clock)
    e = make(on("retain_usage_gone", "retain_usage_live"))
    e.is_enabled("retain_usage_gone")
    e.is_enabled("retain_usage_live")
    assert recorder.flush()
    e.swap(on("retain_usage_live"))
    clock.now = T0 + 2 * HOUR
    assert "retain_usage_gone" not in totals.last_evaluated()
    assert recorder.flush()
    flags = read_usage(path).flags
    assert flags["retain_usage_gone"] == T0
    assert flags["retain_usage_live"] == T0


def _series(name: str) -> set[str]:
    family = cfgcore.metrics.snapshot()["metrics"][name]
    return {s["labels"]["flag"] for s in family["samples"]}


def test_the_prometheus_series_of_a_dropped_flag_disappear(make, totals, clock, monkeypatch):
    # The process's totals are the metrics' source: this test's totals stand in for them.
    monkeypatch.setattr(evaluations_mod, "_TOTALS", totals)
    e = make(on("retain_metric_gone", "retain_metric_live"))
    e.is_enabled("retain_metric_gone")
    e.is_enabled("retain_metric_live")
    assert {"retain_metric_gone", "retain_metric_live"} <= _series("cfgcore_flag_evaluations_total")
    e.swap(on("retain_metric_live"))
    clock.now = T0 + 2 * HOUR
    flags = _series("cfgcore_flag_evaluations_total")
    assert "retain_metric_live" in flags and "retain_metric_gone" not in flags
    # and through prometheus_client's exposition, when it is installed
    prometheus = pytest.importorskip("prometheus_client")
    from prometheus_client.parser import text_string_to_metric_families

    from cfgcore.observability.prometheus import exposition

    text = exposition(prometheus.CollectorRegistry()).decode()
    scraped = {
        s.labels["flag"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "cfgcore_flag_evaluations_total"
    }
    assert scraped.get("retain_metric_live") == 1.0
    assert "retain_metric_gone" not in scraped
    assert json.dumps(cfgcore.metrics.snapshot())  # still plain data


@pytest.mark.parametrize("bad", ["600", -1, math.nan, True])
def test_a_bad_retain_set_later_is_refused_where_it_is_set(bad):
    totals = EvaluationTotals(retain=60)
    with pytest.raises(ValueError, match="retain must be a number of seconds"):
        totals.retain = bad
    assert totals.retain == 60  # unchanged
    assert set(totals.collect()) == {"evaluations", "errors"}  # and a harvest still runs
