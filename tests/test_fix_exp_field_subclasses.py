"""An A/B test whose fields hold subclasses of str, int or float is stored by value.

``ABTestConfiguration.validate`` accepts a subclass of str, int or float where it
accepts the base type (a ``numpy.float64`` from a computed configuration, a
``StrEnum`` of test and metric names, an application's ``VariantName(str)``), but the
flag document is encoded with msgspec, which refuses such subclasses. So
``create_ab_test`` and ``update_ab_test`` raised msgspec's bare ``TypeError: Encoding
objects of type ... is unsupported`` for a configuration value, a metric name, the
control or the layer, and refused the test with that message for its name, description
or targeting. The test is now stored with each such value as its base type's value, as
``update_config`` stores a configuration value."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.runtime.secrets import needs_resolving
from tests.fuzz import examples


class Text(str):
    pass


class Number(float):
    pass


class Count(int):
    pass


class Name(enum.StrEnum):
    EXP = "exp"
    CTR = "ctr"


NOW = datetime.now(timezone.utc)


def _fields(**changes):
    return {
        "test_name": "exp",
        "description": "t",
        "start_date": NOW - timedelta(days=1),
        "end_date": NOW + timedelta(days=1),
        "traffic_split": {"control": 50.0, "treatment": 50.0},
        "configurations": {"control": {"x": 1}, "treatment": {"x": 2}},
        "success_metrics": ["ctr"],
        **changes,
    }


# One case per field a subclass can sit in; each must be stored as the plain value.
CASES = {
    "test_name": {"test_name": Text("exp")},
    "test_name_strenum": {"test_name": Name.EXP},
    "description": {"description": Text("t")},
    "variant_names": {
        "traffic_split": {Text("control"): 50.0, Text("treatment"): 50.0},
        "configurations": {Text("control"): {"x": 1}, Text("treatment"): {"x": 2}},
    },
    "configuration_float": {"configurations": {"control": {"x": Number(1.5)}, "treatment": {}}},
    "configuration_int": {"configurations": {"control": {"x": Count(3)}, "treatment": {}}},
    "configuration_text": {"configurations": {"control": {"x": Text("a")}, "treatment": {}}},
    "configuration_list": {"configurations": {"control": [Number(1.0)], "treatment": {}}},
    "success_metrics": {"success_metrics": [Text("ctr"), Name.CTR]},
    "guardrail_metrics": {"guardrail_metrics": {Text("errors"): Text("lower_is_better")}},
    "metric_types": {"metric_types": {Text("ctr"): Text("binary")}},
    "control": {"control": Text("control")},
    "layer": {"layer": Text("checkout"), "layer_percentage": Number(50.0)},
    "targeting": {"targeting": {"attr": Text("region"), "in": [Text("EU")]}},
    "targeting_number": {"targeting": {"attr": "n", "gt": Number(1.0)}},
}


def _plain(value):
    """``value`` as the exact base types json gives back (dicts, lists, str, int, float)."""
    if isinstance(value, dict):
        return {str.__str__(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    for base in (bool, str, int, float):
        if isinstance(value, base):
            return base.__new__(base, value) if base is not bool else bool(value)
    return value


def _exact(value):
    """True when ``value`` holds no subclass of a JSON type anywhere."""
    if type(value) in (dict,) or type(value).__name__ == "FrozenDict":
        return all(type(k) is str and _exact(v) for k, v in value.items())
    if type(value) in (list,) or type(value).__name__ == "FrozenList":
        return all(_exact(v) for v in value)
    return value is None or type(value) in (str, int, float, bool)


@pytest.fixture
def manager(tmp_path, impl):
    engine = engine_class(impl).from_snapshot({"flags": {}})
    m = DynamicConfigurationManager(state_dir=tmp_path, engine=engine, record_usage=False)
    yield m
    m.close()


@pytest.mark.parametrize("case", sorted(CASES))
def test_create_stores_subclass_values_by_value(manager, tmp_path, impl, case):
    fields = _fields(**CASES[case])
    assert manager.create_ab_test(ABTestConfiguration(**fields)), manager.last_error
    assert manager.get_ab_test_variant("exp", {"user_id": "u1", "region": "EU", "n": 2}) in (
        "control",
        "treatment",
    )
    record = manager.list_ab_tests()["exp"]
    assert _exact(record) and all(type(k) is str for k in manager.list_ab_tests())
    stored = manager.get_ab_test("exp")
    for name in ("configurations", "traffic_split", "success_metrics", "targeting"):
        assert _plain(getattr(stored, name)) == _plain(fields.get(name))
    manager.close()
    # The document written reads back in a new process (a restart serves the test).
    again = DynamicConfigurationManager(
        state_dir=tmp_path,
        engine=engine_class(impl).from_snapshot({"flags": {}}),
        record_usage=False,
    )
    try:
        assert again.get_ab_test("exp").configurations == _plain(fields["configurations"])
    finally:
        again.close()


@pytest.mark.parametrize("case", [c for c in sorted(CASES) if c.startswith("configuration_")])
def test_update_stores_subclass_configurations_by_value(manager, case):
    assert manager.create_ab_test(ABTestConfiguration(**_fields()))
    configurations = CASES[case]["configurations"]
    assert manager.update_ab_test("exp", {"configurations": configurations}), manager.last_error
    assert manager.get_ab_test("exp").configurations == _plain(configurations)
    assert _exact(manager.get_ab_test_config("exp", "control"))


numbers = st.one_of(
    st.integers(-(2**63), 2**63 - 1).map(Count),
    st.floats(allow_nan=False, allow_infinity=False).map(Number),
    # (Not text the API refuses on purpose: a secret reference such as "${file:", which
    # only the flag file may hold; test_hardening_policy_experiments checks that.)
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
    .filter(lambda s: not needs_resolving(s))
    .map(Text),
)
trees = st.recursive(
    numbers | st.booleans() | st.none(),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=4).map(Text), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(control=st.dictionaries(st.text(max_size=4).map(Text), trees, max_size=3))
def test_any_subclass_configuration_is_stored_as_its_plain_value(manager, control):
    configurations = {"control": control, "treatment": {}}
    assert manager.create_ab_test(ABTestConfiguration(**_fields(configurations=configurations)))
    assert manager.get_ab_test_config("exp", "control") == _plain(control)
