"""The served-A/B-test document check tells time by the experiment API's clock.

A flag document that would move users a served A/B test has enrolled is refused on
reload unless it restarts the test (a later ``experiments.<test>.since``). Before, that
check judged "has this test served?" by the wall clock while the experiment API (which
refuses the same change made through it) judged it by the manager's ``clock=``: under a
simulated clock the two disagreed, a hand edit the API would refuse went live, one the
API allows was refused, and the ``since`` the refusal suggested was wall-clock time.
Now the live flag set reads the clock its engine serves schedules by, which the
manager's ``clock=`` sets. Real files, the real manager and evaluator.
"""

from __future__ import annotations

import json
import math
import time
from datetime import datetime, timedelta, timezone

import pytest

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.runtime.atomicio import atomic_write

UTC = timezone.utc
DAY = 86400.0
USERS = [f"user-{i}" for i in range(400)]


def ab(start: float, split=None) -> ABTestConfiguration:
    split = split or {"control": 50, "green": 50}
    begin = datetime.fromtimestamp(start, UTC)
    return ABTestConfiguration(
        test_name="checkout", description="", start_date=begin,
        end_date=begin + timedelta(days=30), traffic_split=split,
        configurations={v: {"v": v} for v in split}, success_metrics=["conversion"],
    )  # fmt: skip


def resplit(m, split) -> None:
    """Rewrite the flags file as an operator would (atomically): a new split."""
    with open(m.flags_file, encoding="utf-8") as fh:
        doc = json.load(fh)
    doc["experiments"]["checkout"]["traffic_split"] = split
    doc["flags"]["checkout"]["rules"][0]["split"] = split
    atomic_write(m.flags_file, json.dumps(doc).encode())


def served(m):
    return {u: m.get_ab_test_variant("checkout", {"user_id": u}) for u in USERS}


@pytest.fixture
def manager_at(tmp_path):
    opened = []

    def make(now: float) -> DynamicConfigurationManager:
        m = DynamicConfigurationManager(
            flags_file=str(tmp_path / "flags.json"), clock=lambda: now, record_usage=False
        )
        opened.append(m)
        return m

    yield make
    for m in opened:
        m.close()


def test_a_test_served_by_the_managers_clock_keeps_its_users(manager_at):
    wall = time.time()
    now = wall + 20 * DAY  # the simulation is 20 days ahead
    m = manager_at(now)
    assert m.create_ab_test(ab(start=wall + 10 * DAY))  # yet to start by the wall clock
    before = served(m)
    assert set(before.values()) == {"control", "green"}  # serving, by the manager's clock
    # the API refuses to move its users...
    assert not m.create_ab_test(ab(start=wall + 10 * DAY, split={"control": 30, "green": 70}))
    # ...and so does the reload of a hand edit that does the same
    resplit(m, {"control": 30, "green": 70})
    assert not m.reload()
    assert served(m) == before
    error = str(m._live.last_error)
    assert "A/B test 'checkout' has served its variants" in error
    assert f"experiments.checkout.since: {math.floor(now)}" in error  # the simulated time


def test_a_test_not_yet_served_by_the_managers_clock_may_change(manager_at):
    wall = time.time()
    m = manager_at(wall - 20 * DAY)  # the simulation is 20 days behind
    assert m.create_ab_test(ab(start=wall - 10 * DAY))  # started by the wall clock
    assert set(served(m).values()) == {None}  # not yet, by the manager's clock
    resplit(m, {"control": 30, "green": 70})
    assert m.reload(), m._live.last_error  # as the API would allow
    assert m._live.last_error is None
    assert m.get_ab_test("checkout").traffic_split == {"control": 30, "green": 70}


def test_a_clock_given_to_the_live_set_judges_its_first_document(tmp_path, caplog):
    """``LiveFlags(store, clock=...)`` sets the engine's clock before the first load, so
    the start's judgement (here: against the document's own records) uses it too."""
    import logging

    from cfgcore.runtime.flags import LiveFlags
    from cfgcore.runtime.flagstore import FileFlagStore

    wall = time.time()
    m = manager_at_path(tmp_path, wall + 20 * DAY)
    try:
        assert m.create_ab_test(ab(start=wall + 10 * DAY))
    finally:
        m.close()
    with open(tmp_path / "flags.json", encoding="utf-8") as fh:
        doc = json.load(fh)
    doc["flags"]["checkout"]["rules"][0]["split"] = {"control": 30, "green": 70}
    atomic_write(str(tmp_path / "flags.json"), json.dumps(doc).encode())

    def errors_at_start(clock):
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="cfgcore.flags"):
            live = LiveFlags(FileFlagStore(tmp_path / "flags.json"), clock=clock)
        live.close()
        return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]

    assert any(
        "flags.checkout.rules[0].split" in e for e in errors_at_start(lambda: wall + 20 * DAY)
    )
    assert errors_at_start(None) == []  # by the wall clock it has not served yet


def manager_at_path(tmp_path, now: float) -> DynamicConfigurationManager:
    return DynamicConfigurationManager(
        flags_file=str(tmp_path / "flags.json"), clock=lambda: now, record_usage=False
    )
