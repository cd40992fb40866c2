"""One judge of what a configuration value may be, for every way in.

``set_active_config`` took any object as a value (``object()``, a ``Decimal``, a
mapping proxy), served it, and wrote its repr to the audit log, while ``update_config``
refused the same value, and refused the dates and times a TOML or YAML file gives
(``2024-05-01``, ``09:00:00``), so a value read from a file could not be written
back at runtime. Files, ``update_config``, ``set_active_config`` and
``validate_configuration`` now all ask ``config.files.tree_problem``: what a file can
hold (dates and times included) is accepted everywhere and served as the file gives
it; anything else is refused everywhere, by its key path.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.config.manager import ConfigurationManager
from cfgcore.config.tree import diff_trees, thaw, value_problem
from cfgcore.errors import ConfigError
from cfgcore.validation_engine import validate_configuration
from tests.fuzz import examples

UTC = dt.timezone.utc
DAY = dt.date(2024, 5, 1)
CLOCK = dt.time(9, 30)
MOMENT = dt.datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
LOCAL = dt.datetime(2024, 5, 1, 9, 30)

TOML = """environment = "development"
[custom]
day = 2024-05-01
clock = 09:30:00
moment = 2024-05-01T09:30:00Z
local = 2024-05-01T09:30:00
"""


@pytest.fixture
def manager(tmp_path):
    (tmp_path / "development.toml").write_text(TOML)
    m = ConfigurationManager(
        tmp_path, environment="development", environ={}, audit_log=tmp_path / "audit.log"
    )
    m.load_environment_config()
    yield m
    m.close()


def test_a_toml_file_serves_its_dates_and_times(manager):
    assert manager.get("custom.day") == DAY and type(manager.get("custom.day")) is dt.date
    assert manager.get("custom.clock") == CLOCK
    assert manager.get("custom.moment") == MOMENT
    assert manager.get("custom.local") == LOCAL and manager.get("custom.local").tzinfo is None


def test_yaml_timestamps_are_the_same_values(tmp_path):
    (tmp_path / "development.yaml").write_text(
        "custom:\n  day: 2024-05-01\n  moment: 2024-05-01T09:30:00Z\n"
    )
    m = ConfigurationManager(tmp_path, environment="development", environ={})
    m.disable_audit()
    m.load_environment_config()
    assert m.get("custom.day") == DAY and m.get("custom.moment") == MOMENT
    m.close()


@pytest.mark.parametrize(
    "value", [DAY, CLOCK, MOMENT, LOCAL, [DAY, MOMENT], {"from": DAY, "at": CLOCK}]
)
def test_what_a_file_holds_every_way_in_accepts(manager, value):
    new_day = dt.date(2025, 1, 2)
    assert manager.update_config("custom.day", new_day), manager.last_error
    assert manager.get("custom.day") == new_day
    assert manager.update_config("custom.value", value), manager.last_error
    assert thaw(manager.get("custom.value")) == value
    tree = thaw(manager.config)
    tree["custom"]["other"] = value
    manager.set_active_config(tree)
    assert thaw(manager.get("custom.other")) == value
    report = validate_configuration(tree, "development")
    assert not [r for r in report.blocking if r.rule_id == "structure.limits"]


class Opaque:
    pass


HOSTILE = [
    object(),
    Opaque(),
    Decimal("1.5"),
    Fraction(1, 3),
    dt.timedelta(seconds=5),
    MappingProxyType({"a": 1}),
    range(3),
    b"raw",
    bytearray(b"x"),
    {1, 2},
    1j,
]


@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: type(v).__name__)
def test_what_no_file_holds_every_way_in_refuses_by_key_path(manager, value):
    before = manager.version
    kind = type(value).__name__
    # update_config
    assert not manager.update_config("custom.bad", value)
    assert manager.last_error.problems[0].path == "custom.bad"
    assert f"a {kind} is not a configuration value" in str(manager.last_error)
    # set_active_config, the value deep in a section
    tree = thaw(manager.config)
    tree["custom"]["list"] = [1, {"bad": value}]
    with pytest.raises(ConfigError) as refused:
        manager.set_active_config(tree)
    assert refused.value.problems[0].path == "custom.list.1.bad"
    assert f"a {kind} is not a configuration value" in str(refused.value)
    assert manager.version == before and manager.get("custom.list", None) is None
    # validation says the same, by the same key path
    report = validate_configuration(tree, "development")
    assert not report.overall_valid
    [found] = [r for r in report.blocking if r.rule_id == "structure.limits"]
    assert found.key_path == "custom.list.1.bad"
    assert value_problem(tree) == (found.key_path, found.message.split(": ", 1)[1])


def test_the_audit_log_records_no_repr_of_a_refused_object(manager, tmp_path):
    manager.set_active_config({**thaw(manager.config), "custom": {"day": DAY}})
    with pytest.raises(ConfigError):
        manager.set_active_config({"custom": {"x": Opaque()}})
    text = (tmp_path / "audit.log").read_text()
    assert "Opaque object at" not in text


def test_dates_are_served_and_audited_consistently(manager, tmp_path):
    seen = []
    manager.register_change_listener(seen.append)
    assert manager.update_config("custom.day", dt.date(2025, 1, 2))
    assert manager.update_config("custom.moment", dt.datetime(2025, 1, 2, 8, tzinfo=UTC))
    # listeners get the values themselves
    assert [(e.config_path, e.old_value, e.new_value) for e in seen] == [
        ("custom.day", DAY, dt.date(2025, 1, 2)),
        ("custom.moment", MOMENT, dt.datetime(2025, 1, 2, 8, tzinfo=UTC)),
    ]
    # the audit log writes them as ISO 8601 text
    entries = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    changes = [(e["path"], e["old"], e["new"]) for e in entries if e["kind"] == "change"]
    assert ("custom.day", "2024-05-01", "2025-01-02") in changes
    assert ("custom.moment", "2024-05-01T09:30:00Z", "2025-01-02T08:00:00Z") in changes
    # a date and the same day as a datetime are different values (the diff says so)
    assert diff_trees({"d": DAY}, {"d": dt.datetime(2024, 5, 1)}) != []
    assert diff_trees({"d": DAY}, {"d": dt.date(2024, 5, 1)}) == []


# --- every way in agrees, on open-ended trees ---------------------------------------------

_file_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
    st.dates(),
    st.times(),
    st.datetimes(timezones=st.none() | st.just(UTC)),
)
_other_leaves = st.one_of(
    st.builds(object),
    st.decimals(allow_nan=False),
    st.timedeltas(),
    st.binary(max_size=2),
    st.builds(Opaque),
)
_values = st.recursive(
    st.one_of(_file_leaves, _file_leaves, _other_leaves),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text("abc", max_size=2), inner, max_size=3)
    ),
    max_leaves=8,
)


def _has_other(value):
    if isinstance(value, dict):
        return any(_has_other(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_other(v) for v in value)
    return not isinstance(value, type(None) | bool | int | float | str | dt.date | dt.time)


@settings(
    max_examples=examples(80),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(value=_values)
def test_update_replace_and_validation_agree(manager, value):
    tree = {"environment": "development", "custom": {"v": value}}
    updated = manager.update_config("custom.v", value)
    try:
        manager.set_active_config(tree)
        replaced = True
    except ConfigError:
        replaced = False
    report = validate_configuration(tree, "development")
    limits = [r for r in report.blocking if r.rule_id == "structure.limits"]
    assert updated == replaced == (not limits) == (not _has_other(value))
    if replaced:
        assert thaw(manager.get("custom.v")) == value
