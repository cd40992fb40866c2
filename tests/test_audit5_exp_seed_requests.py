"""The seed API's request path on both evaluators (and the manager's own method body):

- ``record_metric(..., variant=V)`` for a variant the test does not serve (a typo, or
  ``__none__``) answered True, and no report counted the event;
- a first exposure the writer dropped (its backlog full) still marked the user as
  logged in the compiled and reference ``SeedAPI``, so the user's exposure was never
  logged (the ``ExposureLogger`` paths already retried it)."""

from __future__ import annotations

import pytest

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import engine_class
from tests.test_record_metric_dropped import _test  # the same two-variant test


@pytest.fixture
def manager(tmp_path, impl):
    engine = engine_class(impl).from_snapshot({"flags": {}})
    m = DynamicConfigurationManager(state_dir=tmp_path, engine=engine, record_usage=False)
    assert m.create_ab_test(_test())
    yield m
    m.close()


@pytest.mark.parametrize("body", ["seed api", "method"])
def test_an_explicit_variant_the_test_does_not_serve_is_not_recorded(manager, body):
    record = (
        manager.record_metric
        if body == "seed api"
        else DynamicConfigurationManager.record_metric.__get__(manager)
    )
    assert record("exp", "ctr", 1.0, user_id="u1", variant="treatment") is True
    assert record("exp", "ctr", 1.0, user_id="u2", variant="Treatment") is False
    assert record("exp", "ctr", 1.0, user_id="u3", variant="__none__") is False
    assert record("exp", "ctr", 1.0, user_id="u4") is True  # looked up: served
    assert manager.metrics.flush(10)
    assert manager.metrics.users("exp", "treatment") >= 1
    assert manager.metrics.users("exp", "Treatment") == 0
    assert manager.metrics.users("exp", "__none__") == 0


def test_a_dropped_first_exposure_is_logged_at_the_next_evaluation(manager, tmp_path):
    queue = manager.exposures._writer._queue
    queue.max_pending = 0  # the backlog is full: the first exposure is dropped
    v = manager.get_ab_test_variant("exp", {"user_id": "late"})
    assert v in ("control", "treatment")
    queue.max_pending = 100_000
    assert manager.get_ab_test_variant("exp", {"user_id": "late"}) == v
    assert manager.exposures.flush(10)
    from cfgcore.experiments.exposures import read_exposures

    logged = [
        e for e in read_exposures(str(tmp_path / "flags.exposures.jsonl")) if e.user == "late"
    ]
    assert len(logged) == 1 and logged[0].variant == v
