"""A host's own write (``LiveFlags.update``: the experiment API, ``set_feature_flag``)
is judged against the fleet's guardrail stop register as the documents it takes from
the store are.

Only documents arriving from the store were: a host serving a test the register holds
stopped (the document that recorded the stop never reached it: replaced by one from
before the stop) wrote its next change, of any flag, with the test's variants served,
for the whole fleet. Now such a write is made with the test stopped as the register
records it (its flag serving the control), as a start writes a store's document back;
the written document then records the stop, so an explicit resume ends it. A real Redis
(tests/redis_server.py), real managers."""

from __future__ import annotations

import time

from cfgcore.experiments.abtest import GUARDRAIL_STOPPED_AT, RESUMED_AT, guardrail_stop
from tests.test_fix10_exp_guardrail_hold import TEST, _guarded_test
from tests.test_fix12_experiments_fleet_hold import _manager, _served
from tests.test_fix13_fleet_stop_register import _host
from tests.test_fleet_stop_resend import _fleet_entry


def _stopped_in_register(stores, redis_server, served):
    """The register holds a guardrail stop of the running test (recorded by another
    host whose document this host never took)."""
    now = time.time()
    record = {**served, "status": "stopped", "stopped_reason": "guardrail: errors",
              "stopped_at": now, GUARDRAIL_STOPPED_AT: now}  # fmt: skip
    writer = stores(redis_server.url + "?namespace=ab&cache=off")
    assert writer.write_stop_register({TEST: (now, record)}) == 1
    return writer, now


def test_an_own_write_is_made_with_the_test_the_register_holds_stopped(
    redis_server, stores, tmp_path, impl, caplog
):
    base = redis_server.url + "?namespace=ab&poll=0.1"
    url, state = _host(base, tmp_path, "a")
    a = _manager(url, state, impl)
    try:
        assert a.create_ab_test(_guarded_test())
        assert "variant_b" in _served(a)
        writer, at = _stopped_in_register(stores, redis_server, dict(a.list_ab_tests()[TEST]))
        # an unrelated change: written, with the test stopped
        a.set_feature_flag("unrelated", True)
        stored = writer.read().snapshot
        assert "unrelated" in stored.flags
        assert guardrail_stop(stored.experiments[TEST]) == at
        assert _served(a) == {"control"}
        assert "fleet's guardrail stop register holds stopped" in caplog.text
        # the document records the stop now: the explicit resume serves the test again
        assert a.create_ab_test(a.get_ab_test(TEST))
        assert a.list_ab_tests()[TEST][RESUMED_AT] >= at
        assert "variant_b" in _served(a)
        assert _fleet_entry(redis_server)[1] is None  # the resume's end, fleet-wide
    finally:
        a.close()


def test_an_own_write_with_no_stop_in_force_is_written_as_asked(
    redis_server, stores, tmp_path, impl
):
    """Deleting the test while the document had it active ends nothing, so creating it
    again is written stopped too; deleting it once its document records the stop ends
    the stop (fleet-wide): the test created again is written active, and a later write
    keeps it so."""
    base = redis_server.url + "?namespace=ab&poll=0.1"
    url, state = _host(base, tmp_path, "a")
    a = _manager(url, state, impl)
    try:
        assert a.create_ab_test(_guarded_test())
        _stopped_in_register(stores, redis_server, dict(a.list_ab_tests()[TEST]))
        assert a.delete_ab_test(TEST)  # (the document had it active: deleting ends nothing)
        assert _fleet_entry(redis_server)[1] is not None  # the register's stop stays
        # created again: the register's stop holds (no end recorded): written stopped
        # (not started: False, see the test below)
        assert a.create_ab_test(_guarded_test()) is False
        assert _served(a) == {"control"}
        assert a.delete_ab_test(TEST)  # now the document holds the stop: its end recorded
        assert _fleet_entry(redis_server)[1] is None
        assert a.create_ab_test(_guarded_test())
        assert "variant_b" in _served(a)
        a.set_feature_flag("unrelated", True)
        assert "variant_b" in _served(a)
    finally:
        a.close()


def test_a_test_created_started_but_written_stopped_is_not_reported_started(
    redis_server, stores, tmp_path, impl
):
    """``create_ab_test(start=True)`` whose write the register holds stopped returns
    False, as a refusal does, with the reason in ``last_error`` / ``last_problems``;
    the test is listed stopped with the register's reason. The document records the
    stop now, so the explicit resume that follows starts it (True, no error)."""
    base = redis_server.url + "?namespace=ab&poll=0.1"
    url, state = _host(base, tmp_path, "a")
    a = _manager(url, state, impl)
    try:
        assert a.create_ab_test(_guarded_test())
        _stopped_in_register(stores, redis_server, dict(a.list_ab_tests()[TEST]))
        assert a.delete_ab_test(TEST)  # (the document had it active: deleting ends nothing)
        assert a.create_ab_test(_guarded_test(), start=True) is False
        assert a.last_error is not None
        assert TEST in a.last_error and "guardrail stop register" in a.last_error
        assert f"cfgcore experiment start {TEST}" in a.last_error
        [problem] = a.last_problems
        assert problem.path == f"experiments.{TEST}.status"
        record = a.list_ab_tests()[TEST]
        assert record["status"] == "stopped" and record["stopped_reason"] == "guardrail: errors"
        assert _served(a) == {"control"}
        # asked stopped and written stopped: what was asked
        assert a.create_ab_test(_guarded_test(), start=False) is True
        assert a.last_error is None
        # the explicit resume starts it
        assert a.create_ab_test(a.get_ab_test(TEST)) is True
        assert a.last_error is None and a.last_problems == []
        assert "variant_b" in _served(a)
    finally:
        a.close()


def test_the_command_line_says_a_test_created_started_was_written_stopped(
    redis_server, stores, tmp_path, impl, capsys
):
    from tests.conftest import run_cli

    base = redis_server.url + "?namespace=ab&poll=0.1"
    url, state = _host(base, tmp_path, "a")
    a = _manager(url, state, impl)
    try:
        assert a.create_ab_test(_guarded_test())
        test = a.get_ab_test(TEST)
        _stopped_in_register(stores, redis_server, dict(a.list_ab_tests()[TEST]))
        assert a.delete_ab_test(TEST)  # (the document had it active: deleting ends nothing)
    finally:
        a.close()
    splits = [arg for v, pct in test.traffic_split.items() for arg in ("--split", f"{v}={pct}")]
    code, out, err = run_cli(
        capsys, "experiment", "create", TEST, *splits, "--start", "--store", url,
        "--state-dir", str(state),
    )  # fmt: skip
    assert code != 0, out
    assert "was written stopped, not started" in err and "guardrail: errors" in err
    assert "(started)" not in out + err
    # the explicit start that follows resumes it
    code, out, err = run_cli(
        capsys, "experiment", "start", TEST, "--store", url, "--state-dir", str(state)
    )
    assert code == 0, err
    assert f"started A/B test {TEST}" in err
