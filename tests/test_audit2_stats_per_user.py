"""Experiment metrics are analysed per user, the independent unit, not per event.

A listener logs ``listen_completion_rate`` once per track: the events of one user are
correlated, and a test treating them as independent observations reports p-values far
too small. These tests replay null experiments (the same distribution in every arm)
through the real metrics store and analysis, check the store's per-user numbers
against a reference computed from the raw per-user values, and check binary metrics
are a share of users and absurd values are refused, counted.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.experiments import stats
from cfgcore.experiments.analysis import analyze
from cfgcore.experiments.exposures import MAX_METRIC_VALUE, Exposure
from cfgcore.experiments.metrics import MetricsStore
from tests.fuzz import examples
from tests.test_experiments import NOW, Clock, seed_test

TEST = "t"
META = {
    "traffic_split": {"control": 50, "treatment": 50},
    "control": "control",
    "success_metrics": ["completion"],
    "metric_types": {"completion": "continuous"},
}


def _binomial_upper(n: int, p: float, z: float = 3.5) -> float:
    """A rate a Binomial(n, p) count exceeds with probability well under 0.1 %."""
    return p + z * math.sqrt(p * (1 - p) / n) + 1 / n


def _null_experiment(rng: np.random.Generator, users: int = 60) -> list[tuple]:
    """Metric events of one A/A experiment: each user has their own level (a random
    effect as large as the event noise) and records 2 to 14 correlated events."""
    events = []
    for arm in ("control", "treatment"):
        level = rng.normal(0.0, 1.0, users)
        counts = rng.integers(2, 15, users)
        for u in range(users):
            for x in level[u] + rng.normal(0.0, 1.0, counts[u]):
                events.append((TEST, arm, "completion", float(x), f"{arm}-{u}", 0.0))
    return events


def test_null_false_positive_rate_is_alpha_per_user_not_per_event():
    alpha, reps = 0.05, 300
    rng = np.random.default_rng(20261201)
    per_user = per_event = 0
    for _ in range(reps):
        events = _null_experiment(rng)
        store = MetricsStore(None)
        store._apply(events)
        row = analyze(TEST, META, store).for_metric("completion")[1]
        assert row.n == 60  # users, not events
        per_user += row.p_value < alpha
        # What the analysis did before: every event an independent observation.
        values = {arm: [e[3] for e in events if e[1] == arm] for arm in ("control", "treatment")}
        old = stats.welch_ttest(values["control"], values["treatment"])
        per_event += old.p_value < alpha
    bound = _binomial_upper(reps, alpha)
    assert per_user / reps <= bound
    assert per_event / reps > bound  # the old analysis: far above alpha (about 0.4 here)


@settings(max_examples=examples(60), deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 12), st.floats(-1e6, 1e6, allow_nan=False)),
        min_size=1,
        max_size=80,
    ),
    st.integers(1, 9),
)
def test_store_summary_is_the_delta_method_on_the_raw_per_user_values(events, batch):
    store = MetricsStore(None)
    rows = [(TEST, "v", "m", x, f"u{u}", 0.0) for u, x in events]
    for i in range(0, len(rows), batch):
        store._apply(rows[i : i + batch])
    users = sorted({u for u, _ in events})
    sums = [math.fsum(x for v, x in events if v == u) for u in users]
    counts = [sum(1 for v, _ in events if v == u) for u in users]
    want = stats.ratio_summary(sums, counts)
    got = store.summary(TEST, "v", "m")
    assert got.n == want.n == len(users)
    assert store.event_count(TEST, "v", "m") == len(events)
    assert got.mean == pytest.approx(want.mean, rel=1e-9, abs=1e-6)
    assert got.variance == pytest.approx(want.variance, rel=1e-6, abs=1e-3)
    # and the reference is the textbook delta method, from numpy
    s, c = np.array(sums), np.array(counts, dtype=float)
    r = s.sum() / c.sum()
    if len(users) > 1:
        cov = np.cov(np.vstack([s, c]), ddof=1)
        delta = (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / c.mean() ** 2
        assert want.variance == pytest.approx(delta, rel=1e-6, abs=1e-3)


def test_one_event_per_user_is_the_ordinary_mean_and_variance():
    values = [3.0, 5.5, -1.0, 8.25, 4.0]
    store = MetricsStore(None)
    store._apply([(TEST, "v", "m", x, f"u{i}", 0.0) for i, x in enumerate(values)])
    s = store.summary(TEST, "v", "m")
    assert (s.n, s.mean) == (5, pytest.approx(np.mean(values)))
    assert s.variance == pytest.approx(np.var(values, ddof=1))


def test_the_user_table_keeps_every_user_through_its_growth():
    # 5,000 users over several resizes, exposures and two metrics interleaved.
    rng = np.random.default_rng(7)
    store = MetricsStore(None)
    exposed = {f"user-{i}" for i in range(0, 5000, 2)}
    store.write([Exposure(TEST, "v", u, 0.0) for u in sorted(exposed)[:1000]])
    events, sums, converted = [], {}, set()
    for i in rng.integers(0, 5000, 20000).tolist():
        u = f"user-{i}"
        x = float(i % 3 == 0)
        events.append((TEST, "v", "conv", x, u, 0.0))
        events.append((TEST, "v", "amount", float(i), u, 0.0))
        sums[u] = sums.get(u, 0.0) + i
        if x:
            converted.add(u)
    store._apply(events[: len(events) // 2])
    store.write([Exposure(TEST, "v", u, 0.0) for u in sorted(exposed)[1000:]])
    store._apply(events[len(events) // 2 :])
    assert store.exposed(TEST, "v") == len(exposed)
    assert store.users(TEST, "v") == len(exposed | set(sums))
    assert store.conversions(TEST, "v", "conv") == len(converted)
    counts = {u: 0 for u in sums}
    for e in events[1::2]:
        counts[e[4]] += 1
    want = stats.ratio_summary(list(sums.values()), [counts[u] for u in sums])
    got = store.summary(TEST, "v", "amount")
    assert got.n == len(sums) and got.mean == pytest.approx(want.mean, rel=1e-12)
    assert got.variance == pytest.approx(want.variance, rel=1e-9)


def test_binary_metric_is_the_share_of_users_who_converted():
    """Four users exposed here; u5 and u6 were exposed by another process (their
    exposure is in its log) and converted. The old rate min(conversions, exposed) /
    exposed = 3/4; the share of users who converted is 3 of 6."""
    store = MetricsStore(None)
    store.write([Exposure(TEST, "treatment", f"u{i}", 0.0) for i in (1, 2, 3, 4)])
    store.write([Exposure(TEST, "control", f"c{i}", 0.0) for i in range(6)])
    for user, value in [("u1", 1.0), ("u1", 1.0), ("u2", 0.0), ("u5", 1.0), ("u6", 1.0)]:
        store.record(TEST, "treatment", "conv", value, user, write=False)
    store.record(TEST, "control", "conv", 1.0, "c0", write=False)
    meta = {**META, "metric_types": {"conv": "binary"}, "success_metrics": ["conv"]}
    row = analyze(TEST, meta, store).for_metric("conv")[1]
    assert (row.successes, row.n, row.value) == (3, 6, 0.5)


def test_a_user_converting_many_times_is_one_conversion():
    store = MetricsStore(None)
    store.write([Exposure(TEST, "v", u, 0.0) for u in ("a", "b")])
    for _ in range(5):
        store.record(TEST, "v", "conv", 1.0, "a", write=False)
    assert (store.conversions(TEST, "v", "conv"), store.users(TEST, "v")) == (1, 2)


def test_absurd_values_are_refused_and_counted_never_overflowing(tmp_path):
    store = MetricsStore(None)
    assert store.record(TEST, "v", "m", 1e154, "a", write=False) is False
    assert store.record(TEST, "v", "m", -2 * MAX_METRIC_VALUE, "a", write=False) is False
    assert store.refused == 2
    # Values up to the limit: a finite variance, interval and p-value (Welch's degrees
    # of freedom square the variances of the means: 1e200 ** 2 overflowed).
    for i, x in enumerate([1e100, -1e100, 5e99, 0.0, 3e99]):
        assert store.record(TEST, "control", "m", x, f"c{i}", write=False)
        assert store.record(TEST, "treatment", "m", x / 2, f"t{i}", write=False)
    row = analyze(TEST, {**META, "success_metrics": ["m"]}, store).for_metric("m")[1]
    assert all(math.isfinite(x) for x in (row.low, row.high, row.diff_low, row.diff_high))
    assert 0 < row.p_value <= 1
    # A log line holding such a value is an unusable line, named.
    path = tmp_path / "m.jsonl"
    good = {"test": TEST, "variant": "v", "metric": "m", "user": "u"}
    path.write_text(
        json.dumps({**good, "value": 2.0}) + "\n" + json.dumps({**good, "value": 1e154}) + "\n"
    )
    loaded = MetricsStore.load(path)
    assert loaded.summary(TEST, "v", "m").n == 1
    assert loaded.skipped.count == 1 and f"{path}:2:" in loaded.skipped.first[0]


def test_the_request_path_drops_absurd_values_counted_and_unwritten(tmp_path, impl):
    m = DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl)(), clock=Clock(NOW)
    )
    try:
        assert m.create_ab_test(seed_test("t1"))
        for i in range(20):
            m.record_metric("t1", "listen_completion_rate", 0.5, user_id=f"u{i}")
        # Refused at the call (False, as for a NaN), never queued: before the seventh
        # audit the call answered True and the writer dropped it (counted in refused).
        assert m.record_metric("t1", "listen_completion_rate", 1e154, user_id="u0") is False
        m.metrics.flush()
        assert m.metrics.refused == 0
        lines = Path(m.metrics.path).read_text().splitlines()
        assert len(lines) == 20 and all(json.loads(x)["value"] == 0.5 for x in lines)
        text = m.analyze("t1").to_text()
        assert "0.5" in text
    finally:
        m.close()


def test_live_analysis_counts_users_not_events(tmp_path, impl):
    m = DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl)(), clock=Clock(NOW)
    )
    try:
        assert m.create_ab_test(seed_test("t1"))
        users = [f"user-{i}" for i in range(300)]
        for u in users:
            for x in (0.2, 0.4, 0.9):
                m.record_metric("t1", "listen_completion_rate", x, user_id=u)
        report = m.analyze("t1")
        rows = report.for_metric("listen_completion_rate")
        assert sum(r.n for r in rows) == len(users)
        assert all(r.events == 3 * r.n for r in rows)  # and the report says how many events
        assert all(r.value == pytest.approx(0.5) for r in rows if r.n)
        loaded = MetricsStore.load(m.metrics.path, m.exposures.sinks[0].path)
        again = analyze("t1", m.list_ab_tests()["t1"], loaded)
        assert [r.n for r in again.for_metric("listen_completion_rate")] == [r.n for r in rows]
    finally:
        m.close()


def test_welch_of_values_near_the_limit_matches_the_scaled_data():
    # t, df and p do not depend on the unit: the same as SciPy on the data / 1e100.
    from scipy import stats as sps

    a, b = [1e100, -1e100, 5e99, 2e99], [2e99, -3e99, 1e100]
    r = stats.welch_ttest(a, b)
    ref = sps.ttest_ind([x / 1e100 for x in b], [x / 1e100 for x in a], equal_var=False)
    assert r.statistic == pytest.approx(float(ref.statistic), rel=1e-9)
    assert r.df == pytest.approx(float(ref.df), rel=1e-9)
    assert r.p_value == pytest.approx(float(ref.pvalue), rel=1e-9)


def test_ingest_refuses_an_absurd_value_naming_the_line(checkout_test, tmp_path, capsys):
    from tests.conftest import run_cli

    metric = {"test": "checkout", "user": "u1", "variant": "green", "metric": "conversion"}
    events = tmp_path / "ev.jsonl"
    events.write_text(
        json.dumps({**metric, "value": 1}) + "\n" + json.dumps({**metric, "value": 1e154}) + "\n"
    )
    code, _, err = run_cli(capsys, "experiment", "ingest", str(events))
    assert code == 1
    assert f"{events}:2: value: beyond +-1e+100, got 1e+154" in err
    lines = (checkout_test / "flags.metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["value"] for x in lines] == [1]


def test_guardrail_false_rollback_rate_with_correlated_events_stays_within_alpha():
    """The guardrail's always-valid test, looked at every 200 events while users'
    correlated events arrive in random order: per user, harmless experiments are rolled
    back at most alpha of the time; on the events as independent values (the old
    store) far more often."""
    from cfgcore.experiments.analysis import guardrail_violations

    meta = {
        "traffic_split": {"control": 50, "treatment": 50},
        "control": "control",
        "guardrail_metrics": {"completion": "higher_is_better"},
        "metric_types": {"completion": "continuous"},
    }

    def moments(x: np.ndarray) -> stats.Summary:
        return stats.Summary(len(x), float(x.mean()), float(((x - x.mean()) ** 2).sum()))

    alpha, reps = 0.05, 300
    rng = np.random.default_rng(20261202)
    per_user = per_event = 0
    for _ in range(reps):
        events = _null_experiment(rng, users=100)
        events = [events[i] for i in rng.permutation(len(events))]
        values = np.array([e[3] for e in events])
        control = np.array([e[1] == "control" for e in events])
        store = MetricsStore(None)
        user_hit = event_hit = False
        for k in range(200, len(events) + 1, 200):
            store._apply(events[k - 200 : k])
            user_hit = user_hit or bool(
                guardrail_violations(TEST, meta, store, alpha=alpha, min_samples=20)
            )
            c, t = moments(values[:k][control[:k]]), moments(values[:k][~control[:k]])
            event_hit = event_hit or stats.msprt_means(c, t, "smaller").p_value <= alpha
        per_user += user_hit
        per_event += event_hit
    bound = _binomial_upper(reps, alpha)
    assert per_user / reps <= bound
    assert per_event / reps > bound  # about 0.14 here
