"""Eleventh round (review): a guardrail check judges the run of a test its process
serves, but its rollback stopped whatever the store held by that name. A process that
had not yet taken a newer document (its watcher a moment behind, or none) checked the
earlier run's events and stopped the new run another process had created meanwhile
(the test deleted and created again, a new ``since``): a test with no events yet was
rolled back, held as a guardrail stop, for a harm found in another run. Now the stop
applies only to the run that was judged: a newer run in the store is left alone, and
the process takes it on its next reload. Real files, two managers (each its own flag
set, as two processes) on one directory, the real guardrail check."""

from __future__ import annotations

import glob
from datetime import datetime, timedelta, timezone

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.experiments.abtest import GUARDRAIL_STOPPED_AT
from tests.test_experiments import USERS, _simulate, seed_test, variants_of

TEST = "recommendation_algorithm_v2"
HARMFUL = {"control": 0.02, "variant_a": 0.02, "variant_b": 0.30}


def _test():
    now = datetime.now(timezone.utc)
    return seed_test(
        start_date=now - timedelta(days=1), end_date=now + timedelta(days=14),
        guardrail_metrics={"playback_errors": "lower_is_better"},
    )  # fmt: skip


def _manager(tmp_path, impl):
    return DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl)(), guardrail_check_every=10**9
    )


def test_a_check_of_an_earlier_run_does_not_stop_the_new_run(tmp_path, impl):
    a = _manager(tmp_path, impl)
    try:
        assert a.create_ab_test(_test())
        _simulate(a, TEST, HARMFUL, metric="playback_errors")  # run 1: harmful
        a.metrics.flush()
        b = _manager(tmp_path, impl)
        try:
            assert b.delete_ab_test(TEST)
            assert b.create_ab_test(_test())  # run 2, a new since: no events yet
            run2 = b.list_ab_tests()[TEST]
            assert run2["since"] > 0 and run2["status"] == "active"
            # a has not reloaded: it judges run 1, harmful, and finds the violation...
            assert a.check_guardrails(TEST)
            # ...but run 2 keeps serving, everywhere, and holds no guardrail stop.
            assert b.reload() is False  # nothing new in the store
            record = b.list_ab_tests()[TEST]
            assert record["status"] == "active" and GUARDRAIL_STOPPED_AT not in record
            assert "variant_b" in set(variants_of(b, TEST, USERS[:600]).values())
            assert not glob.glob(f"{b.flags_file}.refused-*")
            assert a.reload() is True  # a takes run 2 and serves it
            assert a.list_ab_tests()[TEST]["since"] == run2["since"]
            assert "variant_b" in set(variants_of(a, TEST, USERS[:600]).values())
            assert a._live.last_error is None
        finally:
            b.close()
    finally:
        a.close()
