"""``update_config`` stores the plain value a caller's subclass holds (a str, int or float
subclass as its base value, dict/list subclasses as plain containers, date and time
subclasses as the plain ones), as the other write paths do; a value whose own methods
raise while it is read is a ConfigError naming the key path (False, nothing written),
never that foreign exception."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgcore.config.manager import ConfigurationManager
from cfgcore.config.tree import plain_value
from cfgcore.errors import ConfigError
from cfgcore.runtime.secrets import Secret
from tests.conftest import copy_bundled_config
from tests.texts import any_text


def _boom(self, other):
    raise RuntimeError("foreign __eq__")


MyStr = type("MyStr", (str,), {})
BoomStr = type("BoomStr", (str,), {"__eq__": _boom, "__ne__": _boom, "__hash__": str.__hash__})
BoomInt = type("BoomInt", (int,), {"__eq__": _boom, "__ne__": _boom, "__hash__": int.__hash__})
BoomFloat = type("BoomFloat", (float,), {"__eq__": _boom, "__hash__": float.__hash__})
BoomDict = type("BoomDict", (dict,), {"__eq__": _boom, "__hash__": None})
BoomList = type("BoomList", (list,), {"__eq__": _boom})
BoomDate = type("BoomDate", (dt.date,), {"__eq__": _boom, "__hash__": dt.date.__hash__})


class HostileZone(dt.tzinfo):
    def utcoffset(self, d):
        raise RuntimeError("foreign utcoffset")


@pytest.fixture(scope="module")
def manager(tmp_path_factory):
    cfg = copy_bundled_config(tmp_path_factory.mktemp("upd") / "config")
    m = ConfigurationManager(str(cfg), record_usage=False, environ={})
    m.load_environment_config("staging")
    yield m
    m.close()


def _exact_types(value):
    """Every type in ``value`` (containers walked)."""
    if isinstance(value, dict):
        return {type(value)} | {
            t for k, v in value.items() for t in _exact_types(k) | _exact_types(v)
        }
    if isinstance(value, list | tuple):
        return {type(value)} | {t for v in value for t in _exact_types(v)}
    return {type(value)}


def test_a_str_subclass_is_stored_as_its_plain_text(manager):
    assert manager.update_config("app.name", MyStr("radio")) is True
    got = manager.get("app.name")
    assert got == "radio" and type(got) is str  # was MyStr, as given


@pytest.mark.parametrize(
    ("key", "value", "plain"),
    [
        ("app.name", BoomStr("radio-2"), "radio-2"),
        ("auto_scaling.min_replicas", BoomInt(3), 3),
        ("anomaly_detection.threshold", BoomFloat(0.75), 0.75),
        ("custom.when", BoomDate(2024, 5, 1), dt.date(2024, 5, 1)),
        (
            "custom.section",
            BoomDict({BoomStr("a"): BoomList([BoomInt(1), BoomStr("x")])}),
            {"a": [1, "x"]},
        ),
    ],
)
def test_a_value_whose_eq_raises_is_stored_as_its_plain_value(manager, key, value, plain):
    version = manager.version
    assert manager.update_config(key, value) is True  # raised RuntimeError before
    got = manager.get(key)
    assert manager.version == version + 1
    assert got == plain
    assert not [t for t in _exact_types(got) if t.__module__ == __name__]  # no subclass kept


def test_a_value_that_cannot_be_read_is_a_config_error_naming_the_key(manager):
    manager.update_config("custom.at", "before")
    version = manager.version
    bad = dt.datetime(2024, 5, 1, 9, 0, tzinfo=HostileZone())
    assert manager.update_config("custom.at", bad) is False  # raised RuntimeError before
    assert isinstance(manager.last_error, ConfigError)
    assert "custom.at: the value cannot be read" in str(manager.last_error)
    assert manager.version == version and manager.get("custom.at") == "before"


def test_a_secret_stays_a_secret(manager):
    class MySecret(Secret):
        pass

    assert manager.update_config("custom.note", MySecret("pw-123")) is True
    got = manager.get("custom.note")
    assert type(got) is Secret and got == "pw-123" and repr(got) == "'***'"


_leaf = st.one_of(
    any_text(max_size=5).map(BoomStr),
    st.integers(-(2**63), 2**63 - 1).map(BoomInt),
    st.floats(allow_nan=False, allow_infinity=False).map(BoomFloat),
    st.booleans(),
    st.none(),
    st.dates().map(lambda d: BoomDate(d.year, d.month, d.day)),
)
_tree = st.recursive(
    _leaf,
    lambda inner: (
        st.lists(inner, max_size=4).map(BoomList)
        | st.dictionaries(any_text(max_size=4), inner, max_size=4).map(
            lambda d: BoomDict({BoomStr(k): v for k, v in d.items()})
        )
    ),
    max_leaves=20,
)


def _reference(value):
    """The plain value, built with the base types' own methods."""
    if isinstance(value, dict):
        return {str.__str__(k): _reference(v) for k, v in dict.items(value)}
    if isinstance(value, list):
        return [_reference(v) for v in list.__iter__(value)]
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    return dt.date(value.year, value.month, value.day)


@given(_tree)
def test_plain_value_leaves_no_subclass_and_keeps_every_value(tree):
    got = plain_value(tree)
    assert not [t for t in _exact_types(got) if t.__module__ == __name__]
    assert got == _reference(tree)
