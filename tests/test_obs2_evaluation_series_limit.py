"""``cfgcore_flag_evaluations_total`` has at most a set number of series; the rest are
counted in one overflow series.

Flag names come from whoever writes the flag store (a fleet's tenants, an import): one
document with many flags, or flags created and deleted by the thousand (each kept an
hour), gave the scrape a series per (flag, variant, reason) without bound, until a
Prometheus ``sample_limit`` refused the whole target. Now past
``CFGCORE_METRICS_MAX_FLAG_SERIES`` (default 10,000) further combinations are counted
under ``flag="__cfgcore_overflow__"``, so the family's sum is still every evaluation, and
``cfgcore_flag_evaluation_series_over_limit`` says how many combinations are there."""

from __future__ import annotations

import logging
import subprocess
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.observability.instruments import (
    DEFAULT_MAX_FLAG_SERIES,
    EVALUATION_SERIES,
    OVERFLOW,
    EvaluationSeries,
)
from tests.fuzz import examples
from tests.test_alerts import promtool  # noqa: F401 - the fixture

prometheus_client = pytest.importorskip("prometheus_client")

from prometheus_client import CollectorRegistry  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from cfgcore.observability.prometheus import exposition  # noqa: E402


def _scrape():
    text = exposition(CollectorRegistry())
    families = {f.name: f for f in text_string_to_metric_families(text.decode())}
    series = {
        (s.labels["flag"], s.labels["variant"], s.labels["reason"]): s.value
        for s in families["cfgcore_flag_evaluations"].samples
        if s.name == "cfgcore_flag_evaluations_total"
    }
    over = families["cfgcore_flag_evaluation_series_over_limit"].samples[0].value
    return text, series, over


@pytest.fixture
def limited():
    """The process-wide series limit set to 3 more than the series already exported
    (other tests of this worker evaluated flags), restored afterwards."""
    before = EVALUATION_SERIES._limit
    _, series, _ = _scrape()
    EVALUATION_SERIES.limit = len([k for k in series if k[0] != OVERFLOW]) + 3
    EVALUATION_SERIES._warned = False  # (warned once per process)
    yield
    EVALUATION_SERIES.limit = before


def test_past_the_limit_evaluations_go_to_the_overflow(make, limited, promtool, caplog):  # noqa: F811
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    flags = {f"{prefix}{i}": {"variants": {"on": True}, "default": "on"} for i in range(10)}
    engine = make({"flags": flags})
    _, series, over = _scrape()
    overflow_before = series.get((OVERFLOW, OVERFLOW, OVERFLOW), 0.0)
    calls = 0
    with caplog.at_level(logging.WARNING, logger="cfgcore.metrics"):
        for round_ in range(1, 4):
            for i, key in enumerate(flags):
                for _ in range(i + 1):
                    assert engine.is_enabled(key, {})
                    calls += 1
            text, series, over = _scrape()
            mine = {k: v for k, v in series.items() if k[0].startswith(prefix)}
            overflow = series[OVERFLOW, OVERFLOW, OVERFLOW] - overflow_before
            assert len(mine) == 3  # the limit: three places were left
            assert over >= 7  # (other workers' leftovers may be there too)
            assert sum(mine.values()) + overflow == calls  # every evaluation counted
            # The same three keep their series from one scrape to the next.
            if round_ == 1:
                first = set(mine)
            assert set(mine) == first
            assert len(series) <= EVALUATION_SERIES.limit + 1
    assert any("reached its limit" in r.getMessage() for r in caplog.records)
    proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                          timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")


def test_the_default_limit_and_the_environment(monkeypatch, caplog):
    monkeypatch.delenv("CFGCORE_METRICS_MAX_FLAG_SERIES", raising=False)
    assert EvaluationSeries().limit == DEFAULT_MAX_FLAG_SERIES == 10_000
    monkeypatch.setenv("CFGCORE_METRICS_MAX_FLAG_SERIES", "250")
    assert EvaluationSeries().limit == 250
    monkeypatch.setenv("CFGCORE_METRICS_MAX_FLAG_SERIES", "lots")
    with caplog.at_level(logging.WARNING, logger="cfgcore.metrics"):
        assert EvaluationSeries().limit == DEFAULT_MAX_FLAG_SERIES
    assert "CFGCORE_METRICS_MAX_FLAG_SERIES='lots'" in caplog.text
    with pytest.raises(ValueError):
        EvaluationSeries().limit = -1


def test_no_limit_with_zero():
    series = EvaluationSeries(limit=0)
    totals = {(f"f{i}", "on", "STATIC"): 1 for i in range(50_000)}
    samples, folded = series.samples(totals)
    assert len(samples) == 50_000 and folded == 0


_KEYS = st.tuples(st.sampled_from("abcdef"), st.sampled_from("xy"), st.just("STATIC"))


@settings(max_examples=examples(200), deadline=None)
@given(
    limit=st.integers(1, 6),
    rounds=st.lists(st.dictionaries(_KEYS, st.integers(0, 50), max_size=8), max_size=12),
)
def test_the_family_is_a_counter_whatever_the_order(limit, rounds):
    """Totals grow, and combinations are forgotten (absent) and come back from zero, as
    EvaluationTotals does: every series stays monotonic while present, the overflow never
    goes down, there are never more than ``limit`` own series, and the sum of what
    was exported grows by what was counted."""
    series = EvaluationSeries(limit=limit)
    totals: dict[tuple[str, str, str], int] = {}
    last: dict[tuple[str, str, str], float] = {}
    counted = 0
    exported_before = 0.0
    for step in rounds:
        for key in list(totals):
            if key not in step:
                del totals[key]  # forgotten
        for key, n in step.items():
            totals[key] = totals.get(key, 0) + n
            counted += n
        samples, folded = series.samples(dict(totals))
        values = {(s.labels["flag"], s.labels["variant"], s.labels["reason"]): s.value
                  for s in samples}  # fmt: skip
        own = {k: v for k, v in values.items() if k[0] != OVERFLOW}
        assert len(own) <= limit
        assert folded == len(totals) - len(own)
        assert values.get((OVERFLOW,) * 3, 0.0) >= last.get((OVERFLOW,) * 3, 0.0)
        for key, value in own.items():
            assert value == totals[key]
        # What went to the overflow, plus what the own series hold, plus what forgotten
        # own series held when last exported, is every count.
        gone = sum(v for k, v in last.items() if k[0] != OVERFLOW and k not in own)
        exported_before += gone
        assert exported_before + sum(values.values()) == counted
        last = values
