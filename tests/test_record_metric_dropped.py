"""``record_metric`` says False for an event it did not record.

The metric writer drops events when its backlog is full (or it is closed) and counts
them; ``record_metric`` answered True for them anyway and counted them toward the next
guardrail check (8.0 M True answers for 7.9 M dropped events under 8 threads). Both
evaluators' SeedAPI and the manager's own method body now answer False and count
nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager


def _test() -> ABTestConfiguration:
    now = datetime.now(timezone.utc)
    return ABTestConfiguration(
        test_name="exp",
        description="t",
        start_date=now - timedelta(days=1),
        end_date=now + timedelta(days=1),
        traffic_split={"control": 50.0, "treatment": 50.0},
        configurations={"control": {}, "treatment": {}},
        success_metrics=["ctr"],
        guardrail_metrics={"errors": "lower_is_better"},
    )


@pytest.mark.parametrize("body", ["seed api", "method"])
def test_a_dropped_metric_event_is_false_and_not_counted(tmp_path, impl, body):
    from cfgcore.engine import engine_class

    engine = engine_class(impl).from_snapshot({"flags": {}})
    m = DynamicConfigurationManager(state_dir=tmp_path, engine=engine, record_usage=False)
    try:
        assert m.create_ab_test(_test())
        record = (
            m.record_metric
            if body == "seed api"
            else DynamicConfigurationManager.record_metric.__get__(m)
        )
        if body == "seed api":
            assert record.__self__ is m._api  # served by the evaluator's SeedAPI
        assert record("exp", "errors", 1.0, user_id="u1") is True
        assert m.guardrails.metric_events.get("exp") == 1
        queue = m.metrics._writer._queue
        queue.max_pending = 0  # the backlog is full: every new event is dropped
        before = m.metrics.dropped
        answers = [record("exp", "errors", 1.0, user_id=f"u{i}") for i in range(5)]
        assert answers == [False] * 5
        assert m.metrics.dropped == before + 5
        assert m.guardrails.metric_events.get("exp") == 1  # dropped events do not count
        queue.max_pending = 100_000
        assert record("exp", "errors", 1.0, user_id="u2") is True
        assert m.guardrails.metric_events.get("exp") == 2
    finally:
        m.close()
