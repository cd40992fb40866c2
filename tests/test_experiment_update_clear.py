"""Removing a stored A/B test's guardrails, success metrics or declared metric types.

``cfgcore experiment update`` could replace these fields but never empty them: once a
test had a guardrail (one that keeps stopping it wrongly, say) or a metric no longer
tracked, its owner could only replace the whole test. ``--clear-guardrails``,
``--clear-metrics`` and ``--clear-metric-types`` remove them, as ``update_ab_test(name,
{"guardrail_metrics": {}})`` (the field's empty value) does in the API; nothing else of
the test changes: no enrolled user moves, its state and history stay, the events
already recorded stay in every report. Real CLI, real flag files and logs, the real
manager reading what was written."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.experiments.abtest import GUARDRAIL_STOPPED_AT
from cfgcore.runtime.audit import AuditLog, default_actor
from cfgcore.runtime.policy import AccessPolicy, set_policy
from tests.fuzz import examples
from tests.test_experiment_cli_update import (
    _cli,
    _error_line,
    _full,
    _quiet_state,  # noqa: F401  (autouse: no stray state from the environment)
    _record,
    _variants,
)
from tests.test_experiments import _simulate
from tests.test_fix10_exp_guardrail_hold import HARMFUL, TEST, _guarded_test

#: option -> the record field it empties
CLEARS = {
    "--clear-guardrails": "guardrail_metrics",
    "--clear-metrics": "success_metrics",
    "--clear-metric-types": "metric_types",
}


def _cleared(before, fields):
    """``before`` with ``fields`` emptied as a record stores "none": success_metrics
    as [], the mappings left out."""
    after = {k: v for k, v in before.items() if k not in fields}
    if "success_metrics" in fields:
        after["success_metrics"] = []
    return after


def _assignments(flags, name="checkout", n=3000):
    m = DynamicConfigurationManager(str(flags), record_usage=False)
    try:
        return [m.get_ab_test_variant(name, {"user_id": f"u{i}", "region": "EU"}) for i in range(n)]
    finally:
        m.close()


def _updates(audit):
    return [e for e in AuditLog.read(str(audit)) if e.get("source") == "update_ab_test"]


@settings(
    max_examples=examples(20),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    clears=st.sets(st.sampled_from(sorted(CLEARS)), min_size=1),
    started=st.booleans(),
    also=st.sampled_from([(), ("--description", "narrowed"), ("--layer-percentage", "20")]),
)
def test_each_clear_empties_its_field_and_only_that(capsys, clears, started, also):
    with tempfile.TemporaryDirectory() as tmp:
        flags = Path(tmp) / "flags.json"
        _full(capsys, flags, *(("--start",) if started else ()))
        before, variants = _record(flags), _variants(flags)
        code, _, err = _cli(capsys, flags, "update", "checkout", *sorted(clears), *also)
        assert code == 0, err
        fields = {CLEARS[c] for c in clears}
        assert "updated A/B test checkout" in err
        assert all(f in err for f in fields)
        expected = _cleared(before, fields)
        if also:
            field = also[0].removeprefix("--").replace("-", "_")
            expected[field] = _record(flags)[field]
        assert _record(flags) == expected  # its state (running / not started) included
        assert _variants(flags) == variants
        # Again: nothing left to clear, nothing written.
        written = flags.read_bytes()
        code, _, err = _cli(capsys, flags, "update", "checkout", *sorted(clears))
        assert code == 0, err
        assert "unchanged" in err and flags.read_bytes() == written


def test_clearing_moves_no_user_and_is_audited_and_judged_by_the_policy(tmp_path, capsys):
    flags = tmp_path / "flags.json"
    _full(capsys, flags, "--start")
    served = _assignments(flags)
    assert {"control", "green"} <= set(served)
    before = flags.read_bytes()
    me = default_actor()
    set_policy(AccessPolicy({"runner": {"experiment.stop": ["*"]},
                             "owner": {"experiment.create": ["check*"]},
                             "lead": {"actor.assume": ["carol"]}},
                            {me: ["runner", "lead"], "carol": ["owner"]}))  # fmt: skip
    try:
        code, _, err = _cli(capsys, flags, "update", "checkout", *CLEARS)
        assert code == 1 and "may not experiment.create checkout" in _error_line(err)
        assert flags.read_bytes() == before
        code, _, err = _cli(capsys, flags, "update", "checkout", *CLEARS, "--actor", "carol")
        assert code == 0, err
    finally:
        set_policy(None)
    assert _assignments(flags) == served
    record = _record(flags)
    assert record["status"] == "active" and record["success_metrics"] == []
    assert "guardrail_metrics" not in record and "metric_types" not in record
    (entry,) = _updates(tmp_path / "flags.audit.jsonl")
    assert entry["actor"] == "carol"
    said = json.dumps(entry)
    assert "errors" in said and "lower_is_better" in said  # what was removed is on record


def test_a_guardrail_that_keeps_stopping_the_test_is_removed(tmp_path, capsys):
    m = DynamicConfigurationManager(
        state_dir=tmp_path, record_usage=False, guardrail_check_every=10**9
    )
    try:
        assert m.create_ab_test(_guarded_test())
        _simulate(m, TEST, HARMFUL, metric="playback_errors")
        assert m.check_guardrails(TEST)  # the real check stops it
        flags = m.flags_file
    finally:
        m.close()
    stopped = _record(flags, TEST)
    code, out, err = _cli(capsys, flags, "report", TEST, "--json")
    assert code == 0, err
    rows = json.loads(out)["results"]
    code, _, err = _cli(capsys, flags, "update", TEST, "--clear-guardrails")
    assert code == 0, err
    # Still stopped with its stop's record: removing the guardrail resumes nothing.
    assert "stopped" in err and f"cfgcore experiment start {TEST}" in err
    after = _record(flags, TEST)
    assert after == _cleared(stopped, {"guardrail_metrics"})
    assert after[GUARDRAIL_STOPPED_AT] == stopped[GUARDRAIL_STOPPED_AT]
    # The events recorded stay readable: the same rows as before.
    code, out, err = _cli(capsys, flags, "report", TEST, "--json")
    assert code == 0, err
    assert json.loads(out)["results"] == rows
    # Resumed explicitly, the same data no longer stops it.
    assert _cli(capsys, flags, "start", TEST)[0] == 0
    m = DynamicConfigurationManager(
        state_dir=tmp_path, record_usage=False, guardrail_check_every=10**9
    )
    try:
        assert m.check_guardrails(TEST) == []
        assert m.list_ab_tests()[TEST]["status"] == "active"
        served = {m.get_ab_test_variant(TEST, {"user_id": f"u{i}"}) for i in range(300)}
        assert "variant_b" in served
    finally:
        m.close()


def test_metrics_recorded_stay_in_the_report_once_undeclared(tmp_path, capsys):
    m = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
    try:
        assert m.create_ab_test(ABTestConfiguration(
            "t", "d", "2026-01-01T00:00:00Z", "2099-01-01T00:00:00Z",
            {"control": 50, "b": 50}, {"control": {}, "b": {}},
            ["conversion", "revenue"], guardrail_metrics={"errors": "lower_is_better"},
            metric_types={"conversion": "binary", "revenue": "per_user"},
        ))  # fmt: skip
        for i in range(400):
            ctx = {"user_id": f"u{i}"}
            assert m.get_ab_test_variant("t", ctx) is not None
            m.record_metric("t", "conversion", i % 3 == 0, user_context=ctx)
            if i % 2:
                m.record_metric("t", "revenue", 5.0 + i % 7, user_context=ctx)
            m.record_metric("t", "errors", i % 11 == 0, user_context=ctx)
        flags = m.flags_file
    finally:
        m.close()

    def report():
        code, out, err = _cli(capsys, flags, "report", "t", "--json")
        assert code == 0, err
        return {(r["metric"], r["variant"]): r for r in json.loads(out)["results"]}

    before = report()
    assert {m for m, _ in before} == {"conversion", "revenue", "errors"}
    code, _, err = _cli(capsys, flags, "update", "t", *CLEARS)
    assert code == 0, err
    after = report()
    assert set(after) == set(before)
    for key, row in before.items():
        if key[0] == "revenue":
            # No longer declared per_user: read as its values say (continuous), the
            # same events of the same users.
            assert after[key]["kind"] == "continuous"
            assert after[key]["events"] == row["events"]
        else:
            assert after[key] == row


BAD = [
    (("--metric", ""), "--metric", "--clear-metrics"),
    (("--metric", "  "), "--metric", "--clear-metrics"),
    (("--guardrail", ""), "--guardrail", "--clear-guardrails"),
    (("--metric-type", ""), "--metric-type", "--clear-metric-types"),
    (("--clear-guardrails", "--guardrail", "errors=lower_is_better"), "--guardrail",
     "--clear-guardrails"),
    (("--clear-metrics", "--metric", "ctr"), "--metric", "--clear-metrics"),
    (("--clear-metric-types", "--metric-type", "ctr=binary"), "--metric-type",
     "--clear-metric-types"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "option", "hint"), BAD, ids=[" ".join(a) for a, _, _ in BAD])
def test_a_bad_value_is_one_line_naming_the_option_and_writes_nothing(
    tmp_path, capsys, argv, option, hint
):
    flags = tmp_path / "flags.json"
    before = _full(capsys, flags, "--start")
    code, _, err = _cli(capsys, flags, "update", "checkout", *argv)
    assert code == 2
    line = _error_line(err)
    assert option in line and hint in line
    assert flags.read_bytes() == before


@pytest.mark.parametrize("option", ["--metric", "--guardrail", "--metric-type"])
def test_create_refuses_an_empty_value_naming_the_option(tmp_path, capsys, option):
    flags = tmp_path / "flags.json"
    code, _, err = _cli(capsys, flags, "create", "t", "--split", "a=50,b=50", option, "")
    assert code == 2 and option in _error_line(err)
    assert not flags.exists()


def test_the_api_clears_with_the_fields_empty_value(tmp_path):
    flags = tmp_path / "flags.json"
    m = DynamicConfigurationManager(str(flags), record_usage=False)
    try:
        assert m.create_ab_test(ABTestConfiguration(
            "t", "d", "2026-01-01T00:00:00Z", "2099-01-01T00:00:00Z",
            {"control": 50, "b": 50}, {"control": {}, "b": {}}, ["ctr"],
            guardrail_metrics={"errors": "lower_is_better"}, metric_types={"ctr": "binary"},
        ))  # fmt: skip
        assert m.stop_ab_test("t", "paused")
        version = m.store.read().version
        for field, empty in (("guardrail_metrics", "{}"), ("metric_types", "{}"),
                             ("success_metrics", "[]")):  # fmt: skip
            assert not m.update_ab_test("t", {field: None})
            assert f"t: {field}:" in m.last_error and f"{empty} removes" in m.last_error
        assert m.store.read().version == version  # nothing written
        assert m.update_ab_test(
            "t", {"guardrail_metrics": {}, "metric_types": {}, "success_metrics": []}
        )
        test = m.get_ab_test("t")
        assert (test.guardrail_metrics, test.metric_types, test.success_metrics) == ({}, {}, [])
        record = m.list_ab_tests()["t"]
        assert record["status"] == "stopped" and record["stopped_reason"] == "paused"
    finally:
        m.close()
    assert len(_updates(tmp_path / "flags.audit.jsonl")) == 1


def test_help_names_the_clear_options(capsys):
    from cfgcore.cli import main

    with pytest.raises(SystemExit) as info:
        main(["experiment", "update", "--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for option in CLEARS:
        assert option in text
