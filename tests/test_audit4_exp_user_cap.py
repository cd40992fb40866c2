"""A bound on the per-user memory of reports and guardrails, fourth audit. The
in-memory summaries kept every user of every test (about 55 bytes per user and metric,
twice over with guardrails) with no way to bound them. Now ``max_users`` (the
manager's ``max_tracked_users``) keeps a test's first N users; the exposures and events
of later users are left out, counted in ``untracked``, logged once and shown by the
report, and the results are exactly those of the first N users (no silent bias)."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.experiments.analysis import analyze
from cfgcore.experiments.exposures import Exposure
from cfgcore.experiments.metrics import MetricsStore
from tests.fuzz import examples

META = {"traffic_split": {"control": 50, "green": 50}, "control": "control",
        "success_metrics": ["conversion", "revenue"]}  # fmt: skip

events_st = st.lists(
    st.tuples(
        st.sampled_from(["control", "green"]),
        st.integers(0, 40),  # user
        st.sampled_from(["conversion", "revenue"]),
        st.sampled_from([0.0, 1.0, 2.5, -3.0, 1e6]),
    ),
    max_size=200,
)


def _feed(store, exposures, events):
    store.write([Exposure("t", v, f"u{u}", 0.0) for v, u in exposures])
    for variant, user, metric, value in events:
        value = 1.0 if metric == "conversion" and value else (0.0 if metric == "conversion"
                                                                else value)  # fmt: skip
        store.record("t", variant, metric, value, f"u{user}", 0.0, write=False)


def _fields(results) -> list[tuple]:
    """Each result's fields, a NaN as the text "nan". A variant with no users has NaN for
    its value and interval; NaN != NaN, and from Python 3.13 a dataclass's == compares
    its fields one by one with ==, where before it compared tuples of them, whose
    identity check let the one math.nan object the report uses equal itself."""
    return [
        tuple(
            "nan" if isinstance(v, float) and math.isnan(v) else v
            for v in (getattr(r, f.name) for f in dataclasses.fields(r))
        )
        for r in results
    ]


@settings(max_examples=examples(60), deadline=None)
@given(
    cap=st.integers(1, 30),
    exposures=st.lists(st.tuples(st.sampled_from(["control", "green"]), st.integers(0, 40))),
    events=events_st,
)
def test_a_capped_store_reports_exactly_the_first_n_users(cap, exposures, events):
    capped = MetricsStore(None, max_users=cap)
    _feed(capped, exposures, events)
    # The first `cap` (variant, user) pairs to appear, exposures first (as fed).
    first: list[tuple[str, int]] = []
    for v, u in [*exposures, *((v, u) for v, u, _, _ in events)]:
        if (v, u) not in first and len(first) < cap:
            first.append((v, u))
    admitted = set(first)
    reference = MetricsStore(None)
    _feed(
        reference,
        [e for e in exposures if e in admitted],
        [e for e in events if (e[0], e[1]) in admitted],
    )
    assert capped.tracked("t") == len(admitted) <= cap
    left_out = sum((v, u) not in admitted for v, u in exposures) + sum(
        (v, u) not in admitted for v, u, _, _ in events
    )
    assert capped.untracked.get("t", 0) == left_out  # every one counted, none twice
    assert capped.events + sum((v, u) not in admitted for v, u, _, _ in events) == len(events)
    got, want = analyze("t", META, capped), analyze("t", META, reference)
    assert _fields(got.results) == _fields(want.results)
    assert got.exposures == want.exposures
    assert (got.srm.chi2, got.srm.p_value) == (want.srm.chi2, want.srm.p_value)
    assert got.untracked == left_out and got.max_users == cap


def test_the_report_and_the_log_say_the_cap_was_reached(caplog):
    store = MetricsStore(None, max_users=10)
    with caplog.at_level(logging.WARNING, logger="cfgcore.experiments"):
        for i in range(25):
            store.record("t", "control" if i % 2 else "green", "conversion", 1.0, f"u{i}")
    assert store.tracked("t") == 10 and store.untracked == {"t": 15}
    assert sum("10 users tracked" in r.getMessage() for r in caplog.records) == 1
    report = analyze("t", META, store)
    assert "user cap reached" in report.to_text() and "first 10 users" in report.to_text()
    assert report.to_dict()["user_cap"] == {"max_users": 10, "left_out": 15}
    assert "user cap" not in analyze("t", META, MetricsStore(None)).to_text()
    store.forget("t")
    assert store.untracked == {} and store.tracked("t") == 0


@pytest.mark.parametrize("bad", [0, -1, 1.5, "10", True])
def test_a_cap_that_is_not_a_positive_integer_is_refused(bad):
    with pytest.raises(ValueError, match="max_users"):
        MetricsStore(None, max_users=bad)


NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


def test_the_manager_bounds_its_store_and_its_guardrail_view(tmp_path):
    manager = DynamicConfigurationManager(
        state_dir=tmp_path, clock=lambda: NOW.timestamp(), max_tracked_users=50
    )
    try:
        assert manager.create_ab_test(ABTestConfiguration(
            test_name="t", description="", start_date=NOW - timedelta(days=1),
            end_date=NOW + timedelta(days=1), traffic_split={"control": 50, "green": 50},
            configurations={"control": {}, "green": {}}, success_metrics=["conversion"],
            guardrail_metrics={"errors": "lower_is_better"},
        ))  # fmt: skip
        rng = random.Random(3)
        for i in range(400):
            ctx = {"user_id": f"u{i}"}
            assert manager.get_ab_test_variant("t", ctx) is not None
            manager.record_metric("t", "errors", float(rng.random() < 0.1), user_context=ctx)
        report = manager.analyze("t")
        assert sum(report.exposures.values()) == 50
        assert report.max_users == 50 and report.untracked == 2 * 350  # exposure + event
        shared = manager.guardrails._shared
        assert shared is not None and shared.store.max_users == 50
        assert shared.store.tracked("t") == 50
        assert json.loads(json.dumps(report.to_dict()))["user_cap"]["left_out"] == 700
    finally:
        manager.close()


def test_the_cli_report_takes_the_same_cap(tmp_path, monkeypatch, capsys):
    from tests.conftest import run_cli

    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    code, _, err = run_cli(capsys, "-q", "experiment", "create", "t", "--split",
                           "control=50,b=50", "--start")  # fmt: skip
    assert code == 0, err
    lines = []
    for i in range(30):
        lines.append({"type": "exposure", "test": "t", "user": f"u{i}"})  # assigned variant
        lines.append({"test": "t", "user": f"u{i}", "metric": "ctr", "value": int(i % 3 == 0)})
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in lines))
    code, _, err = run_cli(capsys, "-q", "experiment", "ingest", str(events))
    assert code == 0, err
    code, out, err = run_cli(capsys, "experiment", "report", "t", "--json", "--max-users", "8")
    assert code == 0, err
    data = json.loads(out)
    assert sum(data["exposures"].values()) == 8
    assert data["user_cap"] == {"max_users": 8, "left_out": 2 * 22}
    code, out, _ = run_cli(capsys, "experiment", "report", "t", "--json")
    assert json.loads(out)["user_cap"] == {"max_users": None, "left_out": 0}
    code, _, err = run_cli(capsys, "experiment", "report", "t", "--max-users", "0")
    assert code != 0 and "--max-users must be at least 1" in err
