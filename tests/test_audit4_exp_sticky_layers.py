"""Sticky assignment when a layered test grows, fourth audit. The README says to take
in more or fewer users a test changes ``layer_percentage``, which never moves a user.
A served test whose slice was followed by another test's could not grow where it
started, so its slice was silently moved to the layer's free range: every user it had
enrolled lost their variant (got None) and others were enrolled. Now that change is
refused with the share it would take out; growing in place, shrinking, and tests not
yet served still work, and the users kept keep their variant. Real managers, real
evaluator, many users, hypothesis over slice sizes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from tests.fuzz import examples

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
USERS = [f"user-{i}" for i in range(3000)]


def ab(name, pct, *, layer="home", start=NOW - timedelta(days=1)):
    return ABTestConfiguration(
        test_name=name, description="", start_date=start, end_date=NOW + timedelta(days=30),
        traffic_split={"control": 50, "green": 50}, configurations={"control": {}, "green": {}},
        success_metrics=["conversion"], layer=layer, layer_percentage=pct,
    )  # fmt: skip


@pytest.fixture
def manager():
    m = DynamicConfigurationManager(persist=False, clock=lambda: NOW.timestamp())
    yield m
    m.close()


def served(manager, test):
    return {u: manager.get_ab_test_variant(test, {"user_id": u}) for u in USERS}


def test_growing_a_served_test_that_cannot_grow_in_place_is_refused(manager):
    assert manager.create_ab_test(ab("a", 30))
    assert manager.create_ab_test(ab("b", 20))  # right after a: a cannot grow in place
    before = served(manager, "a")
    assert sum(v is not None for v in before.values()) > 500
    assert not manager.create_ab_test(ab("a", 40))
    assert "layer_percentage" in manager.last_error
    assert "take 100% of its users out of the test" in manager.last_error
    assert served(manager, "a") == before  # every enrolled user keeps their variant
    assert manager.list_ab_tests()["a"]["layer_offset"] == 0.0


def test_moving_a_served_test_to_another_layer_is_refused(manager):
    assert manager.create_ab_test(ab("a", 30))
    before = served(manager, "a")
    assert not manager.create_ab_test(ab("a", 30, layer="search"))
    assert "moving it to layer 'search'" in manager.last_error
    assert served(manager, "a") == before


def test_a_test_not_yet_served_may_move(manager):
    later = NOW + timedelta(days=2)
    assert manager.create_ab_test(ab("a", 30, start=later))
    assert manager.create_ab_test(ab("b", 20))
    assert manager.create_ab_test(ab("a", 40, start=later))
    assert manager.list_ab_tests()["a"]["layer_offset"] == 50.0


@settings(max_examples=examples(25), deadline=None)
@given(
    first=st.integers(5, 60),
    second=st.integers(5, 35),
    new=st.integers(1, 100),
)
def test_a_served_test_keeps_every_user_it_keeps_enrolled(first, second, new):
    m = DynamicConfigurationManager(persist=False, clock=lambda: NOW.timestamp())
    try:
        assert m.create_ab_test(ab("a", first))
        assert m.create_ab_test(ab("b", second))
        before = served(m, "a")
        b_before = served(m, "b")
        accepted = m.create_ab_test(ab("a", new))
        after = served(m, "a")
        assert served(m, "b") == b_before  # another test's users never move
        if not accepted:
            assert after == before
            return
        assert m.list_ab_tests()["a"]["layer_offset"] == 0.0  # grown or shrunk in place
        for u, v in before.items():
            if v is not None:  # enrolled: same variant, or out only if the slice shrank
                assert after[u] == v or (after[u] is None and new < first)
            elif after[u] is not None:  # newly enrolled only if the slice grew
                assert new > first
    finally:
        m.close()
