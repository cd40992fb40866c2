"""A guardrail check asked for while one runs is run once more when that one ends.

Checks run on a background thread, one at a time per test; the events that ask for a
check while one runs were dropped, so when they were the test's last, the data that
arrived during the running check was never judged (a harmful variant kept serving until
more events came). Now such asks are coalesced into one more check.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import Engine
from tests.waiting import wait_for

TEST = "checkout"


def _manager(tmp_path) -> DynamicConfigurationManager:
    m = DynamicConfigurationManager(
        state_dir=tmp_path, engine=Engine(), record_usage=False, guardrail_check_every=10**9
    )
    now = datetime.now(timezone.utc)
    assert m.create_ab_test(
        ABTestConfiguration(
            test_name=TEST,
            description="d",
            start_date=now - timedelta(days=1),
            end_date=now + timedelta(days=10),
            traffic_split={"control": 50, "green": 50},
            configurations={"control": {}, "green": {}},
            success_metrics=["conv"],
            guardrail_metrics={"errors": "lower_is_better"},
        )  # fmt: skip
    ), m.last_error
    return m


def _held_checks(m):
    """Every check of the manager recorded; the first held until released."""
    calls: list[str] = []
    entered, release = threading.Event(), threading.Event()
    real = m.check_guardrails

    def check(name):
        calls.append(name)
        if len(calls) == 1:
            entered.set()
            assert release.wait(30)
        return real(name)

    m.check_guardrails = check
    return calls, entered, release


def test_asks_while_a_check_runs_get_one_more_check(tmp_path):
    m = _manager(tmp_path)
    try:
        calls, entered, release = _held_checks(m)
        m.guardrails.check_soon(TEST)
        assert entered.wait(30)
        for _ in range(5):  # asked again and again while the first runs: one more check
            m.guardrails.check_soon(TEST)
        release.set()
        assert wait_for(lambda: TEST not in m.guardrails._running, 30)
        assert calls == [TEST, TEST]
        m.guardrails.check_soon(TEST)  # and the next ask after that is a check again
        assert wait_for(lambda: len(calls) == 3 and TEST not in m.guardrails._running, 30)
    finally:
        m.close()


def test_a_check_nobody_asked_again_for_runs_once(tmp_path):
    m = _manager(tmp_path)
    try:
        calls, entered, release = _held_checks(m)
        m.guardrails.check_soon(TEST)
        assert entered.wait(30)
        release.set()
        assert wait_for(lambda: TEST not in m.guardrails._running, 30)
        assert calls == [TEST]
    finally:
        m.close()


def test_closing_ends_the_checks_asked_for_meanwhile(tmp_path):
    m = _manager(tmp_path)
    calls, entered, release = _held_checks(m)
    m.guardrails.check_soon(TEST)
    assert entered.wait(30)
    m.guardrails.check_soon(TEST)
    closer = threading.Thread(target=m.close)
    closer.start()
    assert wait_for(lambda: m.guardrails._closed.is_set(), 30)
    release.set()
    closer.join(30)
    assert not closer.is_alive()
    assert wait_for(lambda: TEST not in m.guardrails._running, 30)
    assert calls == [TEST]
