"""Names from documents, stores and callers stay one printable line in cfgcore's log.

A test, variant, metric or event name holding a newline forged a second log line, an
escape sequence reached the operator's terminal, a line separator or a bidirectional
override reordered what the reader saw. Each warning and error that shows such a name
escapes it (cfgcore.errors.printable_name), as the rounding warnings of the compiler do.
"""

from __future__ import annotations

import json
import logging
import random
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import engine_class
from tests.fuzz import examples
from tests.log_records import records
from tests.texts import any_text, holds_lone_surrogate
from tests.waiting import wait_for

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)
# A newline and a carriage return (a forged line), an escape sequence (the terminal),
# a line separator and a right-to-left override (what the reader sees reordered).
HOSTILE = "t\n2026-03-01 WARNING forged\r\x1b[2J\u2028\u202eevil"
HOSTILE_METRIC = "errors\n\x1b[31m\u2029\u202e"


def one_line(record: logging.LogRecord) -> str:
    message = record.getMessage()
    assert message.isprintable(), ascii(message)
    message.encode("utf-8")  # (raises for a lone surrogate)
    return message


def _test(name: str, **kw: object) -> ABTestConfiguration:
    args: dict[str, object] = dict(
        test_name=name,
        description="",
        start_date=NOW - timedelta(days=1),
        end_date=NOW + timedelta(days=14),
        traffic_split={"control": 50.0, "variant_b": 50.0},
        configurations={"control": {"x": 1}, "variant_b": {"x": 2}},
        success_metrics=["buy"],
    )
    args.update(kw)
    return ABTestConfiguration(**args)  # type: ignore[arg-type]


def test_a_guardrail_rollback_warning_is_one_printable_line(tmp_path, impl):
    """experiments/guardrails.py: the rollback names the test and the metric."""
    manager = DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl)(), clock=lambda: NOW.timestamp()
    )
    try:
        assert manager.create_ab_test(
            _test(HOSTILE, guardrail_metrics={HOSTILE_METRIC: "lower_is_better"})
        ), manager.last_error
        rng = random.Random(1)
        with records() as got:
            for i in range(3000):
                ctx = {"user_id": f"u{i}"}
                variant = manager.get_ab_test_variant(HOSTILE, ctx)
                rate = 0.3 if variant == "variant_b" else 0.02
                if variant is not None and rng.random() < rate:
                    manager.record_metric(HOSTILE, HOSTILE_METRIC, 1.0, user_context=ctx)
            wait_for(lambda: manager.list_ab_tests()[HOSTILE]["status"] == "stopped")
            wait_for(lambda: any("rolled back" in r.msg for r in got))
    finally:
        manager.close()
    rolled = [one_line(r) for r in got if "rolled back" in r.msg]
    assert rolled and "\\n2026-03-01 WARNING forged" in rolled[0]


@settings(max_examples=examples(25), deadline=None)
@given(name=any_text(min_size=1, max_size=30))
def test_a_rejected_change_warning_is_one_printable_line(tmp_path_factory, name):
    """experiments/abtest.py: a change to a test that does not exist names it."""
    manager = DynamicConfigurationManager(
        state_dir=tmp_path_factory.mktemp("s"), record_usage=False
    )
    try:
        with records() as got:
            assert not manager.update_ab_test(name, {"description": "x"})
    finally:
        manager.close()
    assert got
    for record in got:
        one_line(record)


def test_a_refused_tracking_event_warning_is_one_printable_line(tmp_path, impl):
    """openfeature.py: the event named after a test's metric (its document's text)."""
    api = pytest.importorskip("openfeature.api", reason="openfeature-sdk is not installed")
    from openfeature.evaluation_context import EvaluationContext
    from openfeature.track import TrackingEventDetails

    from cfgcore.openfeature import EVENT_ID_ATTRIBUTE, CfgcoreProvider

    manager = DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl)(), record_usage=False
    )
    provider = CfgcoreProvider(manager.engine, experiments=manager)
    now = datetime.now(timezone.utc)
    try:
        assert manager.create_ab_test(
            _test("checkout", start_date=now - timedelta(days=1),
                  end_date=now + timedelta(days=9), success_metrics=[HOSTILE_METRIC])
        ), manager.last_error  # fmt: skip
        domain = f"cfgcore-logsafe-{impl}"
        api.set_provider_and_wait(provider, domain=domain)
        with records() as got:
            api.get_client(domain).track(
                HOSTILE_METRIC,
                EvaluationContext("u1"),
                TrackingEventDetails(1.0, {EVENT_ID_ATTRIBUTE: ""}),
            )
    finally:
        provider.shutdown()
        manager.close()
    [record] = [r for r in got if r.name == "cfgcore.openfeature"]
    assert "\\x1b[31m" in one_line(record)


def test_a_restart_holding_a_guardrail_stop_logs_one_printable_line(tmp_path, impl):
    """experiments/stops.py: the flag file put back from before a guardrail stopped a
    test; the next start names the tests it holds stopped."""

    def manager() -> DynamicConfigurationManager:
        return DynamicConfigurationManager(
            state_dir=tmp_path, engine=engine_class(impl)(), guardrail_check_every=10**9
        )

    now = datetime.now(timezone.utc)
    m = manager()
    try:
        assert m.create_ab_test(
            _test(HOSTILE, start_date=now - timedelta(days=1), end_date=now + timedelta(days=9),
                  guardrail_metrics={"errors": "lower_is_better"})
        ), m.last_error  # fmt: skip
        with open(m.flags_file, "rb") as fh:
            before = fh.read()
        rng = random.Random(1)
        for i in range(3000):
            ctx = {"user_id": f"u{i}"}
            variant = m.get_ab_test_variant(HOSTILE, ctx)
            if variant is not None and rng.random() < (0.3 if variant == "variant_b" else 0.02):
                m.record_metric(HOSTILE, "errors", 1.0, user_context=ctx)
        assert m.check_guardrails(HOSTILE)
        path = m.flags_file
    finally:
        m.close()
    with open(path, "wb") as fh:  # a backup put back while no process serves the file
        fh.write(before)
    with records(logging.ERROR) as got:
        again = manager()
        try:
            assert again.list_ab_tests()[HOSTILE]["status"] == "stopped"
        finally:
            again.close()
    held = [one_line(r) for r in got if "would serve again" in r.msg]
    assert held and "\\n2026-03-01 WARNING forged" in held[0]


@settings(max_examples=examples(40), deadline=None)
@given(key=any_text(min_size=1, max_size=20))
def test_a_refused_flag_document_is_one_printable_line_whatever_its_keys(tmp_path_factory, key):
    """runtime/flags.py: the refusal names the flag key; a bidirectional override, which
    the error text keeps (it escapes control characters), is escaped in the log."""
    manager = DynamicConfigurationManager(
        state_dir=tmp_path_factory.mktemp("s"), record_usage=False
    )
    try:
        doc = {"flags": {key: {"default": "nope", "variants": {"a": 1}}}}
        with open(manager.flags_file, "w") as fh:
            json.dump(doc, fh)
        with records(logging.ERROR) as got:
            assert manager.reload() is False
    finally:
        manager.close()
    [record] = [r for r in got if "flag document rejected" in r.msg]
    one_line(record)


def test_a_refused_flag_document_of_several_problems_keeps_one_line_per_problem(tmp_path):
    manager = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
    try:
        doc = {"flags": {f"k\u202e{i}": {"default": "nope", "variants": {"a": 1}} for i in (1, 2)}}
        with open(manager.flags_file, "w") as fh:
            json.dump(doc, fh)
        with records(logging.ERROR) as got:
            assert manager.reload() is False
    finally:
        manager.close()
    [record] = [r for r in got if "flag document rejected" in r.msg]
    lines = record.getMessage().split("\n")
    assert len(lines) == 3 and all(line.isprintable() for line in lines), lines
    assert "k\\u202e1" in lines[1] and "k\\u202e2" in lines[2]


@settings(max_examples=examples(40), deadline=None)
@given(test=any_text(min_size=1, max_size=20))
def test_a_user_cap_warning_is_one_printable_line_whatever_the_test_name(test):
    """experiments/metrics.py: the user cap names the test (a name from the document,
    or from the logs that ``cfgcore experiment report`` reads)."""
    from cfgcore.experiments.metrics import MetricsStore

    store = MetricsStore(None, max_users=1)
    with records() as got:
        taken = [store.record(test, "control", "conversion", 1.0, u) for u in ("u1", "u2")]
    if holds_lone_surrogate(test):
        # a lone surrogate: no test of that name (no file holds it), nothing recorded
        assert taken == [False, False] and got == []
        return
    [record] = got
    assert "(max_users)" in one_line(record)
