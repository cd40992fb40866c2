"""Twelfth round: a test created again, then the clock steps back. A test deleted and
created again under its name records the deletion time as its ``since``, and every
reader of the shared logs leaves out its records stamped up to then (the deleted
run's). Those stamps are host clocks: a clock stepped back after the new run began
(NTP, a restored VM), or a host behind the one that deleted it, stamped the new run's
first exposures and events before ``since``, and every report and guardrail check left
them out (a harmful new run went unseen by its guardrail). Now a process stamps a
run's records no earlier than just after its ``since`` (the writer threads, which
also write every record queued before it took the new run with its own stamp): the
order of a run's records is the record's, as a stop and its resume already are. Real
files and logs, real managers on a clock set apart, the real CLI report."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.experiments.dynamic import state_paths
from cfgcore.experiments.exposures import ExposureRecord, MetricRecord, read_log
from tests.conftest import run_cli
from tests.fuzz import examples

NOW = datetime.now(timezone.utc)


def _test(split, **kw):
    return ABTestConfiguration(
        "t", "", NOW - timedelta(days=1), NOW + timedelta(days=9), split,
        {k: {"v": k} for k in split}, ["buy"], **kw,
    )  # fmt: skip


def _manager(directory, impl, **kw):
    return DynamicConfigurationManager(
        state_dir=directory, engine=engine_class(impl)(), record_usage=False,
        guardrail_check_every=10**9, **kw,
    )  # fmt: skip


@contextlib.contextmanager
def _clock_ahead(back):
    """This host's clock ``back`` seconds ahead (stepped back when the block ends)."""
    real = time.time
    time.time = lambda: real() + back
    try:
        yield
    finally:
        time.time = real


def _recreated_then_stepped_back(m, back, guard=None):
    """A first run (20 buyers) deleted and created again while the clock is ``back``
    seconds ahead; then the clock steps back and 12 new users are exposed, each
    buying once."""
    kw = {"guardrail_metrics": guard} if guard else {}
    assert m.create_ab_test(_test({"control": 50.0, "b": 50.0}, **kw))
    for i in range(20):
        u = f"old-{i}"
        m.get_ab_test_variant("t", {"user_id": u})
        assert m.record_metric("t", "buy", 1.0, user_id=u)
    with _clock_ahead(back):
        assert m.delete_ab_test("t")
        assert m.create_ab_test(_test({"control": 50.0, "c": 50.0}, **kw))
    for i in range(12):
        u = f"new-{i}"
        assert m.get_ab_test_variant("t", {"user_id": u}) in ("control", "c")
        assert m.record_metric("t", "buy", 1.0, user_id=u)


@settings(max_examples=examples(6), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(back=st.floats(min_value=1.0, max_value=7 * 86_400.0))
def test_a_new_runs_records_count_whatever_the_clock_did(impl, back):
    directory = tempfile.mkdtemp()
    try:
        m = _manager(directory, impl)
        try:
            _recreated_then_stepped_back(m, back)
            report = m.analyze("t")
            assert sum(report.exposures.values()) == 12
            assert sum(row.successes for row in report.for_metric("buy")) == 12
            since = m.list_ab_tests()["t"]["since"]
        finally:
            m.close()
        # The logs as written: the new run's records come after its since, the old
        # run's (20 exposures, 20 events) keep their stamps.
        paths = state_paths(f"{directory}/flags.json")
        for kind, path in ((ExposureRecord, paths["exposures"]), (MetricRecord, paths["metrics"])):
            records = list(read_log(path, kind))
            new = [r for r in records if r.user.startswith("new-")]
            old = [r for r in records if r.user.startswith("old-")]
            assert len(new) == 12 and all(r.ts > since for r in new)
            assert len(old) == 20 and all(r.ts <= since for r in old)
    finally:
        shutil.rmtree(directory)


def test_the_cli_report_counts_the_new_runs_records(tmp_path, impl, capsys):
    m = _manager(tmp_path, impl)
    try:
        _recreated_then_stepped_back(m, 3600.0)
    finally:
        m.close()
    code, out, err = run_cli(
        capsys, "experiment", "report", "t", "--state-dir", str(tmp_path), "--json"
    )
    assert code == 0, err
    data = json.loads(out)
    assert sum(data["exposures"].values()) == 12
    assert sum(r["successes"] for r in data["results"]) == 12


def test_the_guardrail_sees_a_harmful_new_run_after_the_clock_stepped_back(tmp_path, impl):
    m = _manager(tmp_path, impl, guardrail_min_samples=20)
    try:
        guard = {"guardrail_metrics": {"err": "lower_is_better"}}
        assert m.create_ab_test(_test({"control": 50.0, "b": 50.0}, **guard))
        with _clock_ahead(600.0):  # NTP steps it back ten minutes after the re-creation
            assert m.delete_ab_test("t")
            assert m.create_ab_test(_test({"control": 50.0, "b": 50.0}, **guard))
        for i in range(400):  # b errs every time, control never: a clear harm
            u = f"new-{i}"
            v = m.get_ab_test_variant("t", {"user_id": u})
            assert m.record_metric("t", "err", 1.0 if v == "b" else 0.0, user_id=u)
        assert m.check_guardrails("t")
        assert m.list_ab_tests()["t"]["status"] == "stopped"
    finally:
        m.close()
