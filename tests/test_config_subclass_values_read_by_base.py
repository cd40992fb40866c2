"""A runtime value is judged by what it holds, not by its own container methods.

``update_config`` and ``set_active_config`` accept a caller's dict, list or tuple
subclass and store what it holds as plain containers. The check before that (the
files' own judge, the expansion bound, the self-containment test) read a subclass
through its own ``__iter__``, ``items`` and ``values``: one that raised made the call
raise its exception instead of answering, and one that lied had a different value
judged than the one stored (a refused float hidden from the check went live).
"""

from __future__ import annotations

import math
import os

import pytest

import cfgcore
from cfgcore.config.manager import ConfigurationManager

BUNDLED = os.path.join(os.path.dirname(cfgcore.__file__), "defaults", "config")


class RaisingDict(dict):
    def __iter__(self):
        raise RuntimeError("__iter__")

    def items(self):
        raise RuntimeError("items")

    def keys(self):
        raise RuntimeError("keys")

    def values(self):
        raise RuntimeError("values")

    def get(self, *args):
        raise RuntimeError("get")


class RaisingList(list):
    def __iter__(self):
        raise RuntimeError("__iter__")


class RaisingTuple(tuple):
    def __iter__(self):
        raise RuntimeError("__iter__")


class LyingDict(dict):
    """Shows the check an empty mapping."""

    def __iter__(self):
        return iter(())

    def items(self):
        return iter(())

    def values(self):
        return iter(())


@pytest.fixture(scope="module")
def manager():
    m = ConfigurationManager(BUNDLED, environment="development", record_usage=False)
    m.load_environment_config("development")
    yield m
    m.close()


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (RaisingDict(a=1), {"a": 1}),
        (RaisingList([1, 2]), [1, 2]),
        (RaisingTuple((1, "x")), [1, "x"]),
        ({"x": RaisingDict(b=[RaisingList([3])])}, {"x": {"b": [[3]]}}),
    ],
)
def test_a_subclass_whose_methods_raise_is_stored_as_what_it_holds(manager, value, stored):
    assert manager.update_config("app.extra", value) is True
    assert manager.get("app.extra") == stored
    manager.set_active_config({**manager.config, "extra": value})
    assert manager.get("extra") == stored


@pytest.mark.parametrize("bad", [math.nan, object(), 2**70])
def test_a_value_a_subclass_hides_from_its_own_methods_is_refused(manager, bad):
    before = manager.get("app.extra")
    assert manager.update_config("app.extra", LyingDict(hidden=bad)) is False
    assert "app.extra.hidden" in str(manager.last_error)
    assert manager.get("app.extra") == before
