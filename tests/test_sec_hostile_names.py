"""The access policy judges the name a change acts on, not what a ``str`` subclass's
own ``__str__`` says: a test name whose ``__str__`` named an allowed experiment
stopped or deleted another one."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

import pytest

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.runtime import policy


class Disguised(str):
    """Text whose ``__str__`` names an experiment the actor may change."""

    def __str__(self) -> str:
        return "checkout_test"


@pytest.fixture(autouse=True)
def _clean(tmp_path, monkeypatch, no_access_policy):
    for var in list(os.environ):
        if var.startswith("CFGCORE"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("CFGCORE_USAGE", "0")
    yield
    policy.set_policy(None)


def _test(name: str) -> ABTestConfiguration:
    now = datetime.now()
    return ABTestConfiguration(
        name,
        "d",
        now - timedelta(days=1),
        now + timedelta(days=5),
        {"control": 50, "b": 50},
        {"control": {}, "b": {}},
        ["ctr"],
    )


@pytest.fixture
def dyn(tmp_path):
    m = DynamicConfigurationManager(str(tmp_path / "flags.yaml"))
    assert m.create_ab_test(_test("payments_test"))
    assert m.create_ab_test(_test("checkout_test"))
    policy.set_policy(
        policy.AccessPolicy(
            {"exp": {"experiment.*": ["checkout_*"], "flag.set": ["checkout_*"]}},
            {"mallory": ["exp"]},
        )
    )
    yield m
    m.close()


@pytest.mark.parametrize("operation", ["stop_ab_test", "delete_ab_test"])
def test_a_disguised_test_name_is_judged_as_the_text_it_holds(dyn, operation):
    before = dyn.list_ab_tests()["payments_test"]
    with pytest.raises(PermissionError, match="payments_test"):
        getattr(dyn, operation)(Disguised("payments_test"), actor="mallory")
    assert dyn.list_ab_tests()["payments_test"] == before
    # The name the actor may change still works, disguised or not.
    assert getattr(dyn, operation)(Disguised("checkout_test"), actor="mallory")


def test_a_disguised_name_in_a_new_test_is_judged_as_the_text_it_holds(dyn):
    with pytest.raises(PermissionError, match="payments_new"):
        dyn.create_ab_test(_test(Disguised("payments_new")), actor="mallory")
    assert "payments_new" not in dyn.list_ab_tests()
