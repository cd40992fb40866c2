"""The "per_user" metric kind: for each exposed user of a variant the sum of the
user's values (0 for an exposed user without an event), the variant's value their mean,
compared with the control by Welch's t-test on those totals.

Checked against an independent computation (NumPy and SciPy's ``ttest_ind(equal_var=
False)`` on the per-user totals, zeros included) on hypothesis-generated exposures and
events, through the in-process store, the store rebuilt from the JSON-lines logs, the
manager's two stores and ``cfgcore experiment report --json``; a case where the
continuous kind and this one disagree in direction (fewer buyers spending more); a
guardrail on a per_user metric stopping a test through the real manager; bad kinds
refused with their key path; and the kind carried by every form of the report.
"""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats as sst

from cfgcore.cli import main as cli_main
from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.errors import ConfigError
from cfgcore.experiments.abtest import METRIC_KINDS, check_record
from cfgcore.experiments.analysis import analyze
from cfgcore.experiments.exposures import Exposure
from cfgcore.experiments.metrics import MetricsStore
from tests.fuzz import examples
from tests.test_experiments import NOW, Clock, seed_test
from tests.waiting import wait_for

TEST = "checkout"
VARIANTS = ("control", "treatment")
META = {
    "traffic_split": {"control": 50.0, "treatment": 50.0},
    "control": "control",
    "success_metrics": ["revenue"],
    "metric_types": {"revenue": "per_user"},
}

# Values in quarters (exactly representable, so every per-user total is exact and a
# group without variance is one in both computations), refunds included.
VALUES = st.integers(-40_000, 40_000).map(lambda c: c / 4)
USERS = st.sampled_from([f"u{i}" for i in range(24)])
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("expose"), st.sampled_from(VARIANTS), USERS),
        # (variant, user or None, value, tracked: exposed_only)
        st.tuples(
            st.just("event"), st.sampled_from(VARIANTS), st.one_of(st.none(), USERS), VALUES,
            st.booleans(),
        ),
    ),
    min_size=12,
    max_size=120,
)  # fmt: skip


def _norm(ops: list[tuple]) -> list[tuple]:
    """A tracked event needs a user (the store refuses one without)."""
    out = []
    for op in ops:
        if op[0] == "event" and op[2] is None and op[4]:
            op = (*op[:4], False)
        out.append(op)
    return out


def _reference(ops: list[tuple]) -> dict[str, tuple[np.ndarray, int, int]]:
    """Per variant: the exposed users' totals (0 without an event), the events of those
    users, and the users or anonymous events with events but no exposure there."""
    exposed = {v: {op[2] for op in ops if op[0] == "expose" and op[1] == v} for v in VARIANTS}
    out = {}
    for v in VARIANTS:
        events = [op for op in ops if op[0] == "event" and op[1] == v]
        totals = np.array(
            [math.fsum(e[3] for e in events if e[2] == u) for u in sorted(exposed[v])], float
        )
        counted = sum(1 for e in events if e[2] in exposed[v])
        unexposed = len({e[2] for e in events if e[2] is not None and not e[4]} - exposed[v])
        unexposed += sum(1 for e in events if e[2] is None)
        out[v] = (totals, counted, unexposed)
    return out


def _check_row_against_reference(row, totals: np.ndarray, control: np.ndarray) -> None:
    """One variant's row against NumPy/SciPy on the raw totals."""
    assert row.kind == "per_user"
    assert row.n == len(totals)
    if not len(totals):
        assert math.isnan(row.value)
        return
    assert row.value == pytest.approx(totals.mean(), rel=1e-12, abs=1e-9)
    if len(totals) > 1 and totals.std() > 0:
        low, high = sst.t.interval(0.95, len(totals) - 1, totals.mean(), sst.sem(totals))
        assert (row.low, row.high) == (pytest.approx(low, rel=1e-9), pytest.approx(high, rel=1e-9))
    if row.variant == "control":
        return
    if len(totals) < 2 or len(control) < 2:
        assert row.undefined and row.p_value is None
        return
    if totals.std() == 0 and control.std() == 0:
        assert row.undefined and row.p_value is None
        assert row.difference == pytest.approx(totals.mean() - control.mean(), abs=1e-9)
        return
    want = sst.ttest_ind(totals, control, equal_var=False)
    ci = want.confidence_interval(0.95)
    assert not row.undefined
    assert row.method == "Welch's t-test"
    assert row.difference == pytest.approx(totals.mean() - control.mean(), rel=1e-9, abs=1e-9)
    assert row.statistic == pytest.approx(want.statistic, rel=1e-9, abs=1e-9)
    assert row.p_value == pytest.approx(want.pvalue, rel=1e-7, abs=1e-12)
    assert row.diff_low == pytest.approx(ci.low, rel=1e-9, abs=1e-9)
    assert row.diff_high == pytest.approx(ci.high, rel=1e-9, abs=1e-9)


def _check_report(report, ref) -> None:
    rows = {r.variant: r for r in report.for_metric("revenue")}
    for v in VARIANTS:
        totals, events, unexposed = ref[v]
        _check_row_against_reference(rows[v], totals, ref["control"][0])
        assert (rows[v].events, rows[v].unexposed_users) == (events, unexposed)


def _same_numbers(a, b) -> None:
    """Two reports' rows agree: counts exactly, the rest to rounding (the totals are
    exact, but a table filled in another order sums their squared deviations in
    another order)."""
    for x, y in zip(a.for_metric("revenue"), b.for_metric("revenue"), strict=True):
        assert (x.variant, x.n, x.events, x.unexposed_users, x.undefined) == (
            y.variant, y.n, y.events, y.unexposed_users, y.undefined
        )  # fmt: skip
        for key in ("value", "low", "high", "difference", "statistic", "p_value", "diff_low",
                    "diff_high"):  # fmt: skip
            u, v = getattr(x, key), getattr(y, key)
            assert (u is None) == (v is None), key
            if u is not None:
                assert u == pytest.approx(v, rel=1e-9, abs=1e-12, nan_ok=True), key


@settings(max_examples=examples(150), deadline=None)
@given(ops=OPS, batch=st.integers(1, 7))
def test_store_and_logs_give_welch_on_the_exposed_users_totals(tmp_path_factory, ops, batch):
    ops = _norm(ops)
    ref = _reference(ops)
    # In process: exposures and events in the order given, in batches (events before
    # their user's exposure included; tracked events held until it arrives).
    store = MetricsStore(None)
    for i in range(0, len(ops), batch):
        for op in ops[i : i + batch]:
            if op[0] == "expose":
                store.write([Exposure(TEST, op[1], op[2], 0.0)])
            else:
                _, v, user, value, tracked = op
                assert store.record(TEST, v, "revenue", value, user, exposed_only=tracked)
    live = analyze(TEST, META, store)
    _check_report(live, ref)
    # From the JSON-lines logs, as `cfgcore experiment report` reads them (exposures
    # first, then the events: another order, the same numbers).
    where = tmp_path_factory.mktemp("logs")
    with open(where / "e.jsonl", "w") as f:
        for op in ops:
            if op[0] == "expose":
                f.write(json.dumps({"test": TEST, "variant": op[1], "user": op[2], "ts": 1.0}))
                f.write("\n")
    with open(where / "m.jsonl", "w") as f:
        for op in ops:
            if op[0] == "event":
                line = {"test": TEST, "variant": op[1], "user": op[2], "metric": "revenue",
                        "value": op[3], "ts": 1.0}  # fmt: skip
                if op[4]:
                    line["exposed_only"] = True
                f.write(json.dumps(line) + "\n")
    loaded = MetricsStore.load(where / "m.jsonl", where / "e.jsonl")
    assert loaded.skipped.count == 0
    from_logs = analyze(TEST, META, loaded)
    _check_report(from_logs, ref)
    _same_numbers(from_logs, live)


def test_totals_far_from_zero_keep_their_variance():
    """Totals of about 1e9 that differ by cents: the two-pass variance of the totals
    the table rebuilds (shifted sums) against NumPy's on the raw values."""
    rng = np.random.default_rng(5)
    store = MetricsStore(None)
    raw = {}
    for v in VARIANTS:
        users = [f"{v}-{i}" for i in range(300)]
        store.write([Exposure(TEST, v, u, 0.0) for u in users])
        for u in users:
            values = 1e9 + rng.integers(0, 1000, 3) / 100 + (0.05 if v == "treatment" else 0)
            for x in values:
                store.record(TEST, v, "revenue", float(x), u)
            raw[u] = math.fsum(values)
    for v in VARIANTS:
        totals = np.array([raw[f"{v}-{i}"] for i in range(300)])
        s = store.per_user(TEST, v, "revenue").summary
        assert s.mean == pytest.approx(totals.mean(), rel=1e-14)
        assert s.variance == pytest.approx(totals.var(ddof=1), rel=1e-4)


def _fewer_buyers_spending_more(store: MetricsStore, users: int = 5000) -> None:
    """Half the control's users buy about 10; a fifth of the treatment's buy about 20:
    the treatment's baskets are twice as large, its revenue per user 20 % lower."""
    rng = np.random.default_rng(20261205)
    for v, share, basket in (("control", 0.5, 10.0), ("treatment", 0.2, 20.0)):
        ids = [f"{v}-{i}" for i in range(users)]
        store.write([Exposure(TEST, v, u, 0.0) for u in ids])
        for u in ids:
            if rng.random() < share:
                store.record(TEST, v, "revenue", float(rng.normal(basket, 2.0)), u)


def test_per_user_and_continuous_disagree_when_fewer_buy_more():
    store = MetricsStore(None)
    _fewer_buyers_spending_more(store)
    per_user = analyze(TEST, META, store).for_metric("revenue")[1]
    continuous = analyze(
        TEST, {**META, "metric_types": {"revenue": "continuous"}}, store
    ).for_metric("revenue")[1]
    # The mean per event (order value) says the treatment earns more...
    assert continuous.kind == "continuous"
    assert continuous.difference > 9 and continuous.p_value < 1e-6
    # ...revenue per exposed user says it earns less: 20 % fewer per user shown it.
    assert per_user.kind == "per_user"
    assert per_user.n == 5000  # every exposed user, buyers or not
    assert per_user.difference == pytest.approx(-1.0, abs=0.4)
    assert per_user.diff_high < 0 and per_user.p_value < 1e-3
    # and never inferred: undeclared, the same values are a continuous metric
    inferred = analyze(TEST, {**META, "metric_types": {}}, store).for_metric("revenue")[1]
    assert inferred.kind == "continuous" and inferred.difference == continuous.difference


def test_exposed_users_without_events_are_zeros_and_the_unexposed_are_left_out():
    store = MetricsStore(None)
    store.write([Exposure(TEST, "control", u, 0.0) for u in ("a", "b", "c", "d")])
    store.record(TEST, "control", "revenue", 10.0, "a")
    store.record(TEST, "control", "revenue", 6.0, "a")
    store.record(TEST, "control", "revenue", 8.0, "b")
    store.record(TEST, "control", "revenue", 99.0, "never-exposed")
    store.record(TEST, "control", "revenue", 99.0, None)  # no user: its own unit
    store.record(TEST, "control", "revenue", 50.0, "late", exposed_only=True)  # held
    pu = store.per_user(TEST, "control", "revenue")
    assert (pu.summary.n, pu.summary.mean, pu.events, pu.unexposed) == (4, 6.0, 3, 2)
    assert pu.summary.variance == pytest.approx(np.var([16.0, 8.0, 0.0, 0.0], ddof=1))
    # the held event counts once its user's exposure arrives
    store.write([Exposure(TEST, "control", "late", 0.0)])
    pu = store.per_user(TEST, "control", "revenue")
    assert (pu.summary.n, pu.summary.mean, pu.events) == (5, 74.0 / 5, 4)
    # a metric nobody recorded: every exposed user at 0
    assert store.per_user(TEST, "control", "minutes").summary.n == 5
    assert store.per_user(TEST, "control", "minutes").summary.mean == 0.0


def test_max_users_counts_the_first_users_their_zeros_included():
    store = MetricsStore(None, max_users=3)
    store.write([Exposure(TEST, "control", u, 0.0) for u in ("a", "b", "c", "d", "e")])
    for u in ("a", "d", "e"):
        store.record(TEST, "control", "revenue", 12.0, u)
    pu = store.per_user(TEST, "control", "revenue")
    assert (pu.summary.n, pu.summary.mean, pu.events, pu.unexposed) == (3, 4.0, 1, 0)
    assert store.untracked[TEST] == 4  # d and e: their exposures and events


# ----------------------------------------------------------------- the real manager


def _manager(path, impl, **kw) -> DynamicConfigurationManager:
    return DynamicConfigurationManager(
        state_dir=path, engine=engine_class(impl)(), clock=Clock(NOW), **kw
    )


def _per_user_test(**kw) -> ABTestConfiguration:
    args = dict(
        traffic_split={"control": 50.0, "treatment": 50.0},
        configurations={"control": {"algo": "a"}, "treatment": {"algo": "b"}},
        success_metrics=["revenue"],
        metric_types={"revenue": "per_user"},
    )
    args.update(kw)
    return seed_test(TEST, **args)


@settings(
    max_examples=examples(12),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["see", "buy", "track"]), st.integers(0, 39), VALUES, st.booleans()
        ),
        max_size=80,
    )
)
def test_manager_store_and_cli_report_agree_with_scipy(tmp_path_factory, impl, capsys, ops):
    """Users see the test (an exposure), buy (record_metric: exposed by the call) or
    are tracked (track_metric: counts only if they are exposed, before or after)."""
    state = tmp_path_factory.mktemp("state")
    m = _manager(state, impl)
    try:
        assert m.create_ab_test(_per_user_test())
        seen: dict[str, str] = {}
        tracked: list[tuple[str, float]] = []
        bought: list[tuple[str, float]] = []
        for what, i, value, _ in ops:
            user = f"user-{i}"
            if what == "see":
                seen[user] = m.get_ab_test_variant(TEST, {"user_id": user})
            elif what == "buy":
                assert m.record_metric(TEST, "revenue", value, user_id=user)
                seen[user] = m.get_ab_test_variant(TEST, {"user_id": user})
                bought.append((user, value))
            else:
                assert m.track_metric(TEST, "revenue", value, user_id=user)
                tracked.append((user, value))
        m.exposures.flush()
        m.metrics.flush()
        meta = m.list_ab_tests()[TEST]
        in_process = analyze(TEST, meta, m.metrics)
        shared = m.analyze(TEST)  # the manager's view of the shared logs
    finally:
        m.close()
    ref = {}
    for v in VARIANTS:
        users = sorted(u for u, w in seen.items() if w == v)
        events = [(u, x) for u, x in bought + tracked if u in users]
        totals = np.array([math.fsum(x for w, x in events if w == u) for u in users], float)
        ref[v] = (totals, len(events), 0)
    _check_report(in_process, ref)
    _check_report(shared, ref)
    capsys.readouterr()
    assert cli_main(["experiment", "report", TEST, "--state-dir", str(state), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {r["variant"]: r for r in data["results"] if r["metric"] == "revenue"}
    for r in in_process.for_metric("revenue"):
        got = rows[r.variant]
        assert got["kind"] == "per_user"
        assert (got["n"], got["events"], got["unexposed_users"]) == (r.n, r.events, 0)
        for key in ("value", "difference", "statistic", "p_value", "diff_low", "diff_high"):
            want = getattr(r, key)
            if want is None or not math.isfinite(want):
                assert got[key] is None
            else:
                assert got[key] == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_cli_report_text_json_plot_and_sample_size_carry_the_kind(tmp_path, impl, capsys):
    m = _manager(tmp_path, impl)
    try:
        assert m.create_ab_test(_per_user_test())
        rng = random.Random(3)
        for i in range(400):
            user = f"user-{i}"
            v = m.get_ab_test_variant(TEST, {"user_id": user})
            if rng.random() < (0.5 if v == "control" else 0.2):
                m.record_metric(TEST, "revenue", rng.gauss(10 if v == "control" else 20, 2),
                                user_id=user)  # fmt: skip
        m.exposures.flush()
        m.metrics.flush()
    finally:
        m.close()
    # events of a user whose exposure never reached the logs: left out, and said
    with open(tmp_path / "flags.metrics.jsonl", "a") as f:
        line = {"test": TEST, "variant": "treatment", "user": "ghost", "metric": "revenue",
                "value": 1000.0, "ts": NOW.timestamp()}  # fmt: skip
        f.write(json.dumps(line) + "\n")
    capsys.readouterr()
    plot = tmp_path / "report.png"
    args = ["experiment", "report", TEST, "--state-dir", str(tmp_path), "--mde", "1"]
    assert cli_main([*args, "--plot", str(plot)]) == 0
    text = capsys.readouterr().out
    assert "metric revenue (per_user)" in text
    assert "per user" in text.splitlines()[text.splitlines().index("metric revenue (per_user)") + 1]
    assert "NOTE treatment: 1 user(s) with events but no logged exposure left out" in text
    assert "per_user metrics: n counts exposed users" in text
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli_main([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {r["variant"]: r for r in data["results"]}
    assert {r["kind"] for r in rows.values()} == {"per_user"}
    assert rows["treatment"]["unexposed_users"] == 1 and rows["control"]["unexposed_users"] == 0
    assert rows["control"]["n"] + rows["treatment"]["n"] == 400  # every exposed user
    assert sum(data["exposures"].values()) == 400
    # the sample size is of exposed users, from the sd of their totals
    loaded = MetricsStore.load(tmp_path / "flags.metrics.jsonl", tmp_path / "flags.exposures.jsonl")
    sd = math.sqrt(loaded.per_user(TEST, "control", "revenue").summary.variance)
    want = math.ceil(2 * (sst.norm.ppf(0.975) + sst.norm.ppf(0.8)) ** 2 * sd**2)
    assert data["sample_size_per_variant"]["revenue"] == pytest.approx(want, abs=1)


def test_a_guardrail_on_a_per_user_metric_stops_the_test(tmp_path, impl):
    """variant_b halves who listens and lengthens each session: minutes per listener
    rise (a continuous guardrail would see no harm), minutes per exposed user fall,
    and the per_user guardrail rolls the test back."""
    m = _manager(tmp_path, impl)
    try:
        assert m.create_ab_test(
            seed_test(
                TEST,
                success_metrics=["minutes"],
                guardrail_metrics={"minutes": "higher_is_better"},
                metric_types={"minutes": "per_user"},
            )
        )
        rng = random.Random(11)
        share = {"control": 0.6, "variant_a": 0.6, "variant_b": 0.2}
        length = {"control": 30.0, "variant_a": 30.0, "variant_b": 45.0}
        for i in range(3000):
            user = f"listener-{i}"
            v = m.get_ab_test_variant(TEST, {"user_id": user})
            if v is not None and rng.random() < share[v]:
                m.record_metric(TEST, "minutes", rng.gauss(length[v], 5.0), user_id=user)
        assert wait_for(lambda: m.list_ab_tests()[TEST]["status"] == "stopped", 30)
        reason = m.list_ab_tests()[TEST]["stopped_reason"]
        assert "minutes worse in variant_b" in reason and "variant_a" not in reason
        assert {m.get_ab_test_variant(TEST, {"user_id": f"listener-{i}"}) for i in range(50)} == {
            "control"
        }
        # The same data judged as a continuous metric: variant_b looks better there.
        report = m.analyze(TEST)
        meta = {**m.list_ab_tests()[TEST], "metric_types": {"minutes": "continuous"}}
        store = m.guardrails.shared_store(frozenset({TEST}))
        b = {r.variant: r for r in analyze(TEST, meta, store).for_metric("minutes")}["variant_b"]
        assert b.difference > 10
        per_user = {r.variant: r for r in report.for_metric("minutes")}["variant_b"]
        assert per_user.kind == "per_user" and per_user.difference < -5
    finally:
        m.close()


# ------------------------------------------------------------------ declaring kinds


@pytest.mark.parametrize("kind", ["per-user", "PER_USER", "mean", "", 1, None])
def test_a_bad_kind_is_refused_naming_its_key_path(tmp_path, impl, kind):
    test = _per_user_test(metric_types={"revenue": kind})
    problems = test.validate()
    assert len(problems) == 1
    assert problems[0].startswith(f"{TEST}: metric_types.revenue: must be one of ")
    assert "'per_user'" in problems[0]
    m = _manager(tmp_path, impl)
    try:
        assert m.create_ab_test(test) is False
        assert "metric_types.revenue" in m.last_error
    finally:
        m.close()
    # a stored record with one: a ConfigError naming the file and the key path
    with pytest.raises(ConfigError, match=r"metric_types\.revenue"):
        check_record(TEST, {**META, "metric_types": {"revenue": kind}}, "flags.json")


def test_per_user_is_accepted_stored_and_read_back(tmp_path, impl):
    assert METRIC_KINDS == ("binary", "continuous", "per_user")
    m = _manager(tmp_path, impl)
    try:
        assert m.create_ab_test(_per_user_test())
        assert m.list_ab_tests()[TEST]["metric_types"] == {"revenue": "per_user"}
    finally:
        m.close()
    doc = json.loads((tmp_path / "flags.json").read_text())
    assert doc["experiments"][TEST]["metric_types"] == {"revenue": "per_user"}
    again = _manager(tmp_path, impl)  # a restart judges the stored document
    try:
        assert again.list_ab_tests()[TEST]["metric_types"] == {"revenue": "per_user"}
        assert again.get_ab_test_variant(TEST, {"user_id": "u1"}) in VARIANTS
    finally:
        again.close()
