"""Fifth audit: "not started" A/B tests and sticky assignment.

A test "created, not started" has served nobody, so its split may still change. But
``cfgcore experiment create`` without ``--start`` (and ``stop_ab_test(name,
NOT_STARTED)``) marked *any* test so, one that had served its variants for weeks
included: the next create could then move 40 % of its users to another variant, which
the sticky-assignment check exists to refuse. And the CLI wrote the test active first
and stopped it in a second change, so a fleet following the store could serve its
variants (and log exposures) in between.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.experiments.abtest import NOT_STARTED
from tests.conftest import run_cli

START = datetime.now(timezone.utc) - timedelta(days=3)


def _test(split):
    return ABTestConfiguration(
        "t", "", START, START + timedelta(days=30), split,
        {k: {} for k in split}, ["buy"],
    )  # fmt: skip


def test_a_served_test_stopped_as_not_started_keeps_its_split(tmp_path):
    m = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
    try:
        assert m.create_ab_test(_test({"control": 50.0, "b": 50.0}))
        assert m.stop_ab_test("t", NOT_STARTED)
        assert m.snapshot.experiments["t"]["stopped_reason"] == "stopped"
        assert not m.create_ab_test(_test({"control": 10.0, "b": 90.0}))
        assert "has served its variants" in m.last_error
        assert m.create_ab_test(_test({"control": 50.0, "b": 50.0}), start=False)
        assert m.snapshot.experiments["t"]["stopped_reason"] == "stopped"
        assert not m.create_ab_test(_test({"control": 10.0, "b": 90.0}))
    finally:
        m.close()


def test_created_not_started_in_one_change_serving_the_control(tmp_path):
    m = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
    try:
        version = m.engine.version
        assert m.create_ab_test(_test({"control": 50.0, "b": 50.0}), start=False)
        assert m.engine.version == version + 1  # no document with the test active
        meta = m.snapshot.experiments["t"]
        assert meta["status"] == "stopped" and meta["stopped_reason"] == NOT_STARTED
        assert {m.get_ab_test_variant("t", {"user_id": f"u{i}"}) for i in range(50)} == {"control"}
        # Never served: its split may still change, and then it starts.
        assert m.create_ab_test(_test({"control": 10.0, "b": 90.0}), start=False)
        assert m.create_ab_test(_test({"control": 10.0, "b": 90.0}))
        assert m.snapshot.experiments["t"]["status"] == "active"
    finally:
        m.close()


def test_the_cli_cannot_free_a_served_tests_split(tmp_path, capsys):
    common = ["--state-dir", str(tmp_path), "--start-date", START.isoformat(), "--days", "30"]
    code, out, err = run_cli(
        capsys, "experiment", "create", "t", "--split", "control=50", "--split", "b=50",
        "--start", *common,
    )  # fmt: skip
    assert code == 0, err
    code, out, err = run_cli(
        capsys, "experiment", "create", "t", "--split", "control=50", "--split", "b=50",
        "--replace", *common,
    )  # fmt: skip
    assert code == 0 and "stopped, as it has served its variants" in out + err
    code, out, err = run_cli(
        capsys, "experiment", "create", "t", "--split", "control=10", "--split", "b=90",
        "--start", "--replace", *common,
    )  # fmt: skip
    assert code != 0 and "has served its variants" in err
