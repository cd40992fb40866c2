"""Assignment stays sticky when a test that has served its variants is given a later
start date.

Whether a stored test had served was read from its start date alone: re-creating a
running test with a start date in the future (allowed: dates move nobody) made it one
that "never served", whose split could then change, and moving the start back served
44 % of its enrolled users another variant (their exposures and events already logged
under the first one). The record now keeps ``served_at`` when a test that has served
is replaced (through create_ab_test, ``cfgcore experiment start``, a stop), so every
later change is judged as for a served test, by the API and on reload of a document
edited by hand; a new run (a later ``since``) or a test created again after deletion
starts afresh.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import engine_class
from tests.fuzz import examples

NOW = datetime.now()
YESTERDAY, TOMORROW = NOW - timedelta(days=1), NOW + timedelta(days=1)
USERS = [{"user_id": f"u{i}"} for i in range(300)]


def _test(start, split, name="t"):
    return ABTestConfiguration(
        name, "", start, NOW + timedelta(days=10), split, {k: {} for k in split}, ["ctr"]
    )


@pytest.fixture
def manager(tmp_path, impl):
    engine = engine_class(impl).from_snapshot({"flags": {}})
    m = DynamicConfigurationManager(state_dir=tmp_path, engine=engine, record_usage=False)
    assert m.create_ab_test(_test(YESTERDAY, {"control": 50, "b": 50}))
    yield m
    m.close()


def _assigned(m):
    return [m.get_ab_test_variant("t", u) for u in USERS]


def test_postponing_a_served_test_does_not_free_its_split(manager):
    before = _assigned(manager)
    assert manager.create_ab_test(_test(TOMORROW, {"control": 50, "b": 50}))  # postponed
    assert manager.create_ab_test(_test(TOMORROW, {"control": 90, "b": 10})) is False
    assert "traffic_split: the test has served its variants" in manager.last_error
    assert manager.create_ab_test(_test(YESTERDAY, {"control": 50, "b": 50}))  # resumed
    assert _assigned(manager) == before


def test_stopped_and_started_again_later_it_is_still_a_served_test(manager):
    before = _assigned(manager)
    assert manager.stop_ab_test("t")
    assert manager.create_ab_test(_test(TOMORROW, {"control": 50, "b": 50}), start=False)
    assert manager.list_ab_tests()["t"]["stopped_reason"] != "created, not started"
    assert manager.create_ab_test(_test(TOMORROW, {"b": 50, "control": 50})) is False
    assert manager.create_ab_test(_test(YESTERDAY, {"control": 50, "b": 50}))
    assert _assigned(manager) == before


def test_a_hand_edit_of_the_postponed_test_is_refused_on_reload(manager, tmp_path):
    assert manager.create_ab_test(_test(TOMORROW, {"control": 50, "b": 50}))
    path = tmp_path / "flags.json"
    doc = json.loads(path.read_text())
    doc["experiments"]["t"]["traffic_split"] = {"control": 90.0, "b": 10.0}
    doc["flags"]["t"]["rules"][0]["split"] = {"control": 90.0, "b": 10.0}
    path.write_text(json.dumps(doc))
    assert manager.reload() is False
    assert manager.list_ab_tests()["t"]["traffic_split"] == {"control": 50.0, "b": 50.0}


def test_a_test_that_never_served_may_still_change_its_split(manager):
    assert manager.create_ab_test(_test(TOMORROW, {"control": 50, "b": 50}, name="later"))
    assert manager.create_ab_test(_test(TOMORROW, {"control": 80, "b": 20}, name="later"))
    assert "served_at" not in manager.list_ab_tests()["later"]


def test_a_test_created_again_after_deletion_starts_afresh(manager):
    assert manager.create_ab_test(_test(TOMORROW, {"control": 50, "b": 50}))
    assert manager.delete_ab_test("t")
    assert manager.create_ab_test(_test(TOMORROW, {"control": 90, "b": 10}))
    assert "served_at" not in manager.list_ab_tests()["t"]
    assert manager.create_ab_test(_test(TOMORROW, {"control": 80, "b": 20}))


def test_creating_the_same_served_test_again_writes_nothing(manager, tmp_path):
    assert manager.create_ab_test(_test(TOMORROW, {"control": 50, "b": 50}))
    stored = (tmp_path / "flags.json").read_bytes()
    assert manager.create_ab_test(_test(TOMORROW, {"control": 50, "b": 50}))
    assert (tmp_path / "flags.json").read_bytes() == stored


# -- any sequence of API changes keeps every enrolled user in their variant ----------------

_SPLITS = [
    {"control": 50, "b": 50},
    {"control": 90, "b": 10},
    {"b": 50, "control": 50},
    {"control": 50, "b": 50, "c": 0},
    {"control": 50, "b": 25, "c": 25},
]
_STARTS = [YESTERDAY, TOMORROW, NOW - timedelta(days=30)]
_steps = st.lists(
    st.one_of(
        st.tuples(st.just("create"), st.sampled_from(range(len(_SPLITS))),
                  st.sampled_from(range(len(_STARTS))), st.booleans()),
        st.tuples(st.just("stop")),
    ),
    min_size=1,
    max_size=6,
)  # fmt: skip


@settings(max_examples=examples(25), deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=_steps)
def test_no_sequence_of_changes_moves_an_enrolled_user(tmp_path_factory, steps):
    m = DynamicConfigurationManager(
        state_dir=tmp_path_factory.mktemp("state"), record_usage=False, log_exposures=False
    )
    try:
        assert m.create_ab_test(_test(YESTERDAY, {"control": 50, "b": 50}))
        enrolled = {u["user_id"]: m.get_ab_test_variant("t", u) for u in USERS[:120]}
        for step in steps:
            if step[0] == "stop":
                m.stop_ab_test("t")
            else:
                _, split, start, started = step
                m.create_ab_test(_test(_STARTS[start], _SPLITS[split]), start=started)
            for u in USERS[:120]:
                now = m.get_ab_test_variant("t", u)
                assert now in (None, enrolled[u["user_id"]], "control"), (step, now)
                if m.list_ab_tests()["t"].get("status") == "active" and now is not None:
                    assert now == enrolled[u["user_id"]], (steps, u, now)
    finally:
        m.close()


# -- by hand: two edits of the flags file ---------------------------------------------------
# Postponing by hand (first edit) was accepted and forgot that the test had served, so
# a second edit changing the split went live and, the start moved back, 44 % of the
# users were served another variant. A document that makes a served test look as if it
# never served is refused unless it keeps served_at.


def _edit(path, change):
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def _start(when):
    def change(doc):
        doc["experiments"]["t"]["start_date"] = when
        doc["flags"]["t"]["schedule"]["start"] = when

    return change


def test_postponing_by_hand_must_keep_served_at(manager, tmp_path, caplog):
    before = _assigned(manager)
    path = tmp_path / "flags.json"
    later = (NOW + timedelta(days=1)).astimezone().isoformat()
    _edit(path, _start(later))
    assert manager.reload() is False
    assert "experiments.t.served_at: A/B test 't' has served its variants" in caplog.text
    assert "keep served_at:" in caplog.text
    assert _assigned(manager) == before  # the last good document serves

    def keep(doc):
        _start(later)(doc)
        doc["experiments"]["t"]["served_at"] = 1.0

    _edit(path, keep)
    assert manager.reload() is True  # postponed, remembering that it served
    assert all(v is None for v in _assigned(manager))

    def split(doc):
        doc["experiments"]["t"]["traffic_split"] = {"control": 90.0, "b": 10.0}
        doc["flags"]["t"]["rules"][0]["split"] = {"control": 90.0, "b": 10.0}

    _edit(path, split)
    assert manager.reload() is False  # still a served test: its split is sticky
