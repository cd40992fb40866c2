"""Fifth audit: exposure dedup across test edits and processes.

Before, every ``create_ab_test`` over an existing test (extending its end date,
resuming it after a stop, editing its description) forgot the users already logged:
each one was logged again on its next evaluation, duplicating the whole test's
exposures. And only the manager that deleted a test forgot its users: another one
(another process, or a second manager on the same store) kept them, so when a test
was created again under that name their exposures to the new test were never logged,
and its report, which leaves the deleted test's records out, did not count them.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.experiments.exposures import read_exposures

NOW = datetime.now(timezone.utc)
USERS = [f"user-{i}" for i in range(30)]


def _test(days=9, description=""):
    return ABTestConfiguration(
        "t", description, NOW - timedelta(days=1), NOW + timedelta(days=days),
        {"control": 50.0, "b": 50.0}, {"control": {}, "b": {}}, ["buy"],
    )  # fmt: skip


def _serve(manager):
    for u in USERS:
        assert manager.get_ab_test_variant("t", {"user_id": u}) is not None


def _logged(manager):
    manager.exposures.flush()
    return [e.user for e in read_exposures(manager.exposures.sinks[0].path)]


def test_replacing_or_resuming_a_test_logs_nobody_again(tmp_path):
    m = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
    try:
        assert m.create_ab_test(_test())
        _serve(m)
        assert m.create_ab_test(_test(days=30, description="longer"))  # replaced
        _serve(m)
        assert m.stop_ab_test("t")
        _serve(m)  # control for everyone, nothing logged while stopped
        assert m.create_ab_test(_test(days=30, description="longer"))  # resumed
        _serve(m)
        assert sorted(_logged(m)) == sorted(USERS)
    finally:
        m.close()


def test_another_manager_logs_a_recreated_tests_users_afresh(tmp_path):
    a = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
    b = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
    try:
        assert a.create_ab_test(_test())
        _serve(b)
        assert sorted(_logged(b)) == sorted(USERS)
        assert a.delete_ab_test("t")
        assert a.create_ab_test(_test())
        _serve(b)  # the same users, now in the new test: logged again, by b
        assert sorted(_logged(b)) == sorted(USERS * 2)
        report = a.analyze("t")
        assert sum(report.exposures.values()) == len(USERS)
    finally:
        b.close()
        a.close()
