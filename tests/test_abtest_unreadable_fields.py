"""``create_ab_test`` given a field holding an object whose ``__class__`` raises (a
proxy or a mock gone wrong: every ``isinstance`` check on it raises) answers False
naming the test and the field, as for any other bad field, instead of raising the
object's own exception out of its checks (or out of the access policy's guard)."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import datetime, timedelta, timezone

import pytest

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager


class Boom(Exception):
    pass


class FakeClass:
    @property
    def __class__(self):
        raise Boom("__class__")


NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
GOOD = ABTestConfiguration(
    test_name="t1",
    description="d",
    start_date=NOW,
    end_date=NOW + timedelta(days=3),
    traffic_split={"a": 50, "b": 50},
    configurations={"a": {}, "b": {}},
)


@pytest.fixture
def manager(tmp_path):
    m = DynamicConfigurationManager(state_dir=tmp_path, log_exposures=False)
    yield m
    m.close()


WHY = "a FakeClass object whose __class__ raises Boom: not a value an A/B test can hold"


@pytest.mark.parametrize("field", [f.name for f in fields(ABTestConfiguration)])
def test_a_field_whose_class_raises_is_named(manager, field):
    test = replace(GOOD, **{field: FakeClass()})
    assert manager.create_ab_test(test) is False
    name = "<FakeClass>" if field == "test_name" else "t1"
    # (the store the test would be written to named first, as every A/B refusal names it)
    assert manager.last_error == f"{manager.flags_file}: {name}: {field}: {WHY}"
    assert "t1" not in manager.list_ab_tests()


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"configurations": {"a": {"x": [1, FakeClass()]}, "b": {}}}, "configurations.a.x[1]"),
        ({"traffic_split": {"a": FakeClass(), "b": 50}}, "traffic_split.a"),
        ({"configurations": {"a.b": FakeClass(), "b": {}}}, 'configurations["a.b"]'),
        ({"configurations": {FakeClass(): {}, "b": {}}}, "configurations"),
    ],
)
def test_a_part_whose_class_raises_is_named_by_its_key_path(manager, change, where):
    assert manager.create_ab_test(replace(GOOD, **change)) is False
    assert manager.last_error == f"{manager.flags_file}: t1: {where}: {WHY}"


def test_a_whole_test_whose_class_raises_is_refused(manager):
    assert manager.create_ab_test(FakeClass()) is False  # type: ignore[arg-type]
    assert manager.last_error == (
        f"{manager.flags_file}: expected an ABTestConfiguration, got FakeClass"
    )


def test_a_configuration_holding_itself_is_judged_once(manager):
    looped: dict = {}
    looped["self"] = looped
    assert manager.create_ab_test(replace(GOOD, configurations={"a": looped, "b": {}})) is False
    assert "configurations" in manager.last_error
