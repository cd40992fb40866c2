"""A test's traffic allocation without a layer. ``layer_percentage`` is the only way to
take in part of the users (README, "A/B tests from the command line"), and it works
within a layer; given without one it was dropped silently: a test created with
``layer_percentage=10`` served all its users, and nothing said so. It is now refused,
naming the field and how to allocate traffic (a layer of the test's own)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from tests.fuzz import examples

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
USERS = [f"user-{i}" for i in range(2000)]


def ab(pct, *, layer=None):
    return ABTestConfiguration(
        test_name="t", description="", start_date=NOW - timedelta(days=1),
        end_date=NOW + timedelta(days=30), traffic_split={"control": 50, "green": 50},
        configurations={"control": {}, "green": {}}, success_metrics=["conversion"],
        layer=layer, layer_percentage=pct,
    )  # fmt: skip


@pytest.fixture
def manager():
    m = DynamicConfigurationManager(persist=False, clock=lambda: NOW.timestamp())
    yield m
    m.close()


@settings(max_examples=examples(25), deadline=None)
@given(pct=st.floats(min_value=0.001, max_value=99.999) | st.sampled_from([0, -5, 150]))
def test_a_share_of_traffic_without_a_layer_is_refused_not_dropped(pct):
    problems = ab(pct).validate()
    assert any(p.startswith("t: layer_percentage:") and "layer" in p for p in problems), problems


def test_create_refuses_it_and_serves_nobody(manager):
    assert not manager.create_ab_test(ab(10))
    assert "layer_percentage" in manager.last_error
    assert "t" not in manager.list_ab_tests()
    assert manager.get_ab_test_variant("t", {"user_id": "u1"}) is None


def test_the_whole_traffic_without_a_layer_is_still_fine(manager):
    assert ab(100).validate() == []
    assert manager.create_ab_test(ab(100.0)), manager.last_error
    assert all(manager.get_ab_test_variant("t", {"user_id": u}) for u in USERS)


def test_a_layer_of_the_tests_own_takes_the_share_asked(manager):
    assert manager.create_ab_test(ab(10, layer="t")), manager.last_error
    enrolled = sum(manager.get_ab_test_variant("t", {"user_id": u}) is not None for u in USERS)
    assert 120 < enrolled < 280  # 10 % of 2,000 users, far beyond sampling noise
