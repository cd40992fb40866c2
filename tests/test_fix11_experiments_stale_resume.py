"""Eleventh round (review): a guardrail stop resumed by a process that had not seen it.
``create_ab_test`` (start=True) on a test that this process still served as active,
but that another process's guardrail had stopped meanwhile, was applied to the stored
(stopped) test as a resume: the harmful variant served again, with no ``resume_ab_test``
in the audit log (the change was audited as ``create_ab_test``) and no WARNING, by a
caller that meant to replace a running test, not to resume a stopped one. Now such a
change is refused, naming the test and the guardrail's stop: a resume must be asked for
knowing the stop (``cfgcore experiment start NAME``, or ``create_ab_test`` once this
process serves the stop), and is audited as one. Real files, two managers (each its own
flag set, as two processes) on one directory, the real guardrail check."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.experiments.abtest import GUARDRAIL_STOPPED_AT, RESUMED_AT
from tests.test_experiments import USERS, _simulate, seed_test, variants_of

TEST = "recommendation_algorithm_v2"
HARMFUL = {"control": 0.02, "variant_a": 0.02, "variant_b": 0.30}


def _test(**kw):
    now = datetime.now(timezone.utc)
    return seed_test(
        start_date=now - timedelta(days=1), end_date=now + timedelta(days=14),
        guardrail_metrics={"playback_errors": "lower_is_better"}, **kw,
    )  # fmt: skip


def _manager(tmp_path, impl):
    return DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl)(), guardrail_check_every=10**9
    )


def test_a_replace_by_a_process_that_missed_the_stop_does_not_resume_the_test(tmp_path, impl):
    a = _manager(tmp_path, impl)
    try:
        assert a.create_ab_test(_test())
        b = _manager(tmp_path, impl)
        try:
            _simulate(b, TEST, HARMFUL, metric="playback_errors")
            assert b.check_guardrails(TEST)  # b's guardrail stops it; a has not reloaded
            assert a.list_ab_tests()[TEST]["status"] == "active"
            # a replaces what it believes is the running test (its description).
            assert a.create_ab_test(_test(description="clearer words")) is False
            assert "guardrail" in a.last_error and TEST in a.last_error
            assert f"cfgcore experiment start {TEST}" in a.last_error
            assert b.reload() is False  # the store still holds the stop
            record = b.list_ab_tests()[TEST]
            assert record["status"] == "stopped" and record[GUARDRAIL_STOPPED_AT]
            assert RESUMED_AT not in record
            assert set(variants_of(b, TEST, USERS[:600]).values()) == {"control"}
            audit = b.audit.read(b.audit.path)
            assert not any(e.get("source") == "resume_ab_test" for e in audit)
            assert not any(
                e.get("source") == "create_ab_test" and e.get("new", {}).get(RESUMED_AT)
                for e in audit if isinstance(e.get("new"), dict)
            )  # fmt: skip
            # Once a serves the stop, its create_ab_test is the explicit resume, audited.
            assert a.reload() is True
            assert a.create_ab_test(_test(description="clearer words"))
            assert a.list_ab_tests()[TEST][RESUMED_AT]
            audit = a.audit.read(a.audit.path)
            assert any(e.get("source") == "resume_ab_test" for e in audit)
        finally:
            b.close()
    finally:
        a.close()
