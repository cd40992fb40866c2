"""Fifth audit, experiments: an A/B test deleted and created again under the same name.

The shared exposure and metric logs keep the deleted test's records under its name.
Before, every reader (``analyze``, the guardrails, ``cfgcore experiment report``) counted
them as the new test's: its report mixed the two runs, and a variant the new test does
not have made the sample-ratio check cry mismatch. Now deleting a test remembers when
(``metadata.retired_ab_tests``), a test created again under that name records it as its
``since``, and the readers leave out its records stamped up to then.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone

import pytest

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.experiments.dynamic import state_paths
from cfgcore.experiments.metrics import MetricsStore
from tests.conftest import run_cli

NOW = datetime.now(timezone.utc)


def _test(split, name="t", **kw):
    return ABTestConfiguration(
        name, "", NOW - timedelta(days=1), NOW + timedelta(days=9), split,
        {k: {"v": k} for k in split}, ["buy"], **kw,
    )  # fmt: skip


def _serve(manager, users, buy=True, name="t"):
    for u in users:
        variant = manager.get_ab_test_variant(name, {"user_id": u})
        if buy and variant is not None:
            assert manager.record_metric(name, "buy", 1.0, user_id=u)


@pytest.fixture
def manager(tmp_path):
    m = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
    yield m
    m.close()


def _recreated(manager):
    """A first run (20 buyers, variants control/b), analysed once so the shared-log view
    holds it, deleted, then a second run under the same name (control/c, 12 users,
    none buying)."""
    assert manager.create_ab_test(_test({"control": 50.0, "b": 50.0}))
    _serve(manager, [f"old-{i}" for i in range(20)])
    assert sum(manager.analyze("t").exposures.values()) == 20
    assert manager.delete_ab_test("t")
    assert manager.create_ab_test(_test({"control": 50.0, "c": 50.0}))
    new_users = [f"new-{i}" for i in range(12)]
    _serve(manager, new_users, buy=False)
    variants = {u: manager.get_ab_test_variant("t", {"user_id": u}) for u in new_users}
    return {v: sum(x == v for x in variants.values()) for v in ("control", "c")}


def test_the_report_of_a_recreated_test_counts_only_its_own_records(manager):
    expected = _recreated(manager)
    report = manager.analyze("t")
    assert report.exposures == expected
    assert not report.srm.mismatch and "b" not in report.srm.observed
    for row in report.for_metric("buy"):
        assert row.successes == 0  # the first run's buyers are not this run's


def test_the_cli_report_leaves_the_deleted_tests_records_out(manager, tmp_path, capsys):
    expected = _recreated(manager)
    manager.exposures.flush()
    manager.metrics.flush()
    code, out, err = run_cli(
        capsys, "experiment", "report", "t", "--state-dir", str(tmp_path), "--json"
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["exposures"] == expected and data["srm"]["mismatch"] is False
    assert all(r["successes"] == 0 for r in data["results"])


def test_the_cutoff_is_kept_by_replacing_stopping_and_identical_creates(manager):
    from cfgcore.experiments.abtest import RETIRED, record_cutoffs

    _recreated(manager)
    since = manager.snapshot.experiments["t"]["since"]
    assert manager.snapshot.metadata[RETIRED]["t"] == since
    assert record_cutoffs(manager.snapshot.experiments) == {"t": since}
    version = manager.engine.version
    assert manager.create_ab_test(_test({"control": 50.0, "c": 50.0}))  # identical: no-op
    assert manager.engine.version == version
    changed = _test({"control": 50.0, "c": 50.0})
    changed.description = "longer"
    assert manager.create_ab_test(changed)
    assert manager.snapshot.experiments["t"]["since"] == since
    assert manager.stop_ab_test("t")
    assert manager.snapshot.experiments["t"]["since"] == since
    # A test never deleted has no cutoff: every record of its name is its own.
    assert manager.create_ab_test(_test({"control": 50.0, "b": 50.0}, name="fresh"))
    assert "since" not in manager.snapshot.experiments["fresh"]


def test_a_log_read_with_a_cutoff_keeps_later_records_and_other_tests(tmp_path):
    paths = state_paths(str(tmp_path / "flags.json"))
    with open(paths["exposures"], "w") as fh:
        for test, user, ts in [("t", "a", 10.0), ("t", "b", 20.0), ("u", "c", 5.0)]:
            fh.write(json.dumps({"test": test, "variant": "control", "user": user, "ts": ts}))
            fh.write("\n")
    with open(paths["metrics"], "w") as fh:
        for test, user, ts in [("t", "a", 10.0), ("t", "b", 20.5), ("u", "c", None)]:
            rec = {"test": test, "variant": "control", "metric": "m", "value": 1.0,
                   "user": user}  # fmt: skip
            if ts is not None:
                rec["ts"] = ts
            fh.write(json.dumps(rec) + "\n")
    store = MetricsStore.load(paths["metrics"], paths["exposures"], since={"t": 10.0})
    assert store.exposures("t") == {"control": 1} and store.exposures("u") == {"control": 1}
    assert store.event_count("t", "control", "m") == 1
    assert store.event_count("u", "control", "m") == 1


def test_the_guardrails_do_not_roll_back_a_recreated_test_on_the_old_runs_data(tmp_path):
    manager = DynamicConfigurationManager(
        state_dir=tmp_path, record_usage=False, guardrail_min_samples=20,
        guardrail_check_every=10**9,
    )  # fmt: skip
    try:
        guard = {"guardrail_metrics": {"err": "lower_is_better"}}
        assert manager.create_ab_test(_test({"control": 50.0, "b": 50.0}, **guard))
        for i in range(400):  # b errs every time, control never: a clear harm
            u = f"old-{i}"
            v = manager.get_ab_test_variant("t", {"user_id": u})
            assert manager.record_metric("t", "err", 1.0 if v == "b" else 0.0, user_id=u)
        assert manager.delete_ab_test("t")
        assert manager.create_ab_test(_test({"control": 50.0, "b": 50.0}, **guard))
        for i in range(60):  # the new run: nobody errs
            u = f"new-{i}"
            manager.get_ab_test_variant("t", {"user_id": u})
            assert manager.record_metric("t", "err", 0.0, user_id=u)
        assert manager.check_guardrails("t") == []
        assert manager.snapshot.experiments["t"]["status"] == "active"
    finally:
        manager.close()


def test_deleting_a_test_announces_only_its_flag_to_openfeature(manager):
    pytest.importorskip("openfeature.api", reason="openfeature-sdk is not installed")
    from openfeature import api
    from openfeature.event import ProviderEvent

    from cfgcore.openfeature import CfgcoreProvider

    assert manager.create_ab_test(_test({"control": 50.0, "b": 50.0}))
    provider = CfgcoreProvider(manager.engine, experiments=manager)
    api.set_provider_and_wait(provider, domain="cfgcore-audit5-reused-name")
    client = api.get_client("cfgcore-audit5-reused-name")
    seen: list[list[str]] = []
    done = threading.Event()

    def changed(details):
        seen.append(list(details.flags_changed or []))
        done.set()

    client.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, changed)
    try:
        assert manager.delete_ab_test("t")
        assert done.wait(5)
        assert seen[-1] == ["t"]
    finally:
        client.remove_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, changed)
        provider.shutdown()
