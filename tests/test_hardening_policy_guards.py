"""Every way to change what is served goes through the access policy: switching a live
configuration's environment or profile, and the engine a manager serves its flags with
(which only the flag store may swap). The A/B-test operations are reachable only
through the manager's guarded methods."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import Engine, engine_class
from cfgcore.experiments.abtest import ABTests
from cfgcore.runtime import policy
from cfgcore.runtime.audit import AuditLog
from cfgcore.setup import main as setup_main

DENY_ALL = "roles:\n  none: {}\nactors:\n  '*': [none]\n"
OPS = """\
roles:
  none: {}
  ops:
    config.environment: ["test"]
    config.profile: ["high_volume", "none"]
actors:
  '*': [none]
  ops-bot: [ops]
"""


@pytest.fixture(autouse=True)
def _clean(tmp_path, monkeypatch):
    for var in list(os.environ):
        if var.startswith("CFGCORE") or var.startswith("CONFIG_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CFGCORE_USAGE", "0")
    policy.set_policy(None)
    yield
    policy.set_policy(None)


def _policy(tmp_path, text: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    policy.set_policy(path)


@pytest.fixture
def cfg(tmp_path):
    d = tmp_path / "config"
    assert setup_main(["-e", "staging", "-o", str(d)]) == 0
    (d / "test.yaml").write_text("{}\n")
    m = ConfigurationManager(str(d), environment="staging", audit_log=str(tmp_path / "a.jsonl"))
    yield m
    m.close()


def _denied(m) -> dict:
    entry = AuditLog.read(m.audit.path)[-1]
    assert entry["kind"] == "denied"
    return entry


def test_the_first_load_and_a_reload_of_the_same_environment_are_not_changes(tmp_path, cfg):
    _policy(tmp_path, DENY_ALL)
    assert cfg.load_environment_config("staging")  # a service must be able to start
    assert cfg.load_environment_config("staging")
    assert cfg.reload()


def test_switching_environment_or_profile_is_refused_under_a_deny_all_policy(tmp_path, cfg):
    cfg.load_environment_config("staging")
    before = dict(cfg.section("music_streaming"))
    _policy(tmp_path, DENY_ALL)
    with pytest.raises(PermissionError, match="config.profile high_volume"):
        cfg.set_profile("high_volume", actor="mallory")
    assert _denied(cfg)["source"] == "config.profile"
    with pytest.raises(PermissionError, match="config.profile EU"):
        cfg.set_profile(None, "EU")
    with pytest.raises(PermissionError, match="config.environment test"):
        cfg.load_environment_config("test", actor="mallory")
    assert (_denied(cfg)["source"], _denied(cfg)["actor"]) == ("config.environment", "mallory")
    with pytest.raises(PermissionError, match="config.profile high_volume"):
        cfg.load_environment_config("staging", profile="high_volume")
    snap = cfg._snap
    assert (snap.environment, snap.profile, snap.geographic_profile) == ("staging", None, None)
    assert dict(cfg.section("music_streaming")) == before


def test_an_allowed_actor_switches_and_is_recorded(tmp_path, cfg):
    cfg.load_environment_config("staging")
    _policy(tmp_path, OPS)
    cfg.set_profile("high_volume", actor="ops-bot")
    assert cfg._snap.profile == "high_volume"
    with pytest.raises(PermissionError):
        cfg.set_profile("low_latency", actor="ops-bot")  # not in its list
    cfg.set_profile(None, actor="ops-bot")  # removing one: target "none"
    assert cfg._snap.profile is None
    cfg.load_environment_config("test", actor="ops-bot")
    assert cfg._snap.environment == "test"
    load = [e for e in AuditLog.read(cfg.audit.path) if e["kind"] == "load"][-1]
    assert load["new"] == "test"


def test_no_policy_keeps_every_switch_open(cfg):
    cfg.load_environment_config("staging")
    cfg.set_profile("high_volume")
    assert cfg._snap.profile == "high_volume"
    cfg.load_environment_config("test")  # with the constructor's profiles (none)
    assert (cfg._snap.environment, cfg._snap.profile) == ("test", None)


def test_the_engine_serving_a_store_cannot_be_swapped_around_it(tmp_path, cfg, impl):
    cfg.load_environment_config("staging")
    engine = cfg.flags
    version, served = engine.version, engine.evaluate_all({"user_id": "u1"})
    for attempt in (
        lambda: engine.swap({"flags": {}}),
        lambda: engine.load_file(str(tmp_path / "config" / "flags.yaml")),
    ):
        with pytest.raises(PermissionError, match="serves a manager's flags"):
            attempt()
    assert (engine.version, engine.evaluate_all({"user_id": "u1"})) == (version, served)
    dyn = DynamicConfigurationManager(state_dir=tmp_path / "dyn", engine=engine_class(impl)())
    try:
        with pytest.raises(PermissionError):
            dyn.engine.swap({"flags": {}})
        dyn.set_feature_flag("fresh", True)  # the store's own path still swaps it
        assert dyn.engine.is_enabled("fresh", {"user_id": "u1"})
    finally:
        dyn.close()
    standalone = Engine()  # an engine of your own stays yours
    standalone.swap({"flags": {"x": {"default": "on"}}})
    assert standalone.is_enabled("x", {})


def test_a_manager_without_flags_cannot_have_some_swapped_in(tmp_path):
    d = tmp_path / "noflags"
    d.mkdir()
    (d / "base.yaml").write_text("app: {name: x}\n")
    (d / "development.yaml").write_text("{}\n")
    m = ConfigurationManager(str(d), validate=False)
    try:
        m.load_environment_config()
        with pytest.raises(PermissionError):
            m.flags.swap({"flags": {"x": {"default": "on"}}})
        assert m.flags.evaluate_all({}) == {}
    finally:
        m.close()


def test_the_ab_test_operations_have_no_public_unguarded_door(tmp_path, impl):
    m = DynamicConfigurationManager(state_dir=tmp_path, engine=engine_class(impl)())
    try:
        public = [n for n in dir(m) if not n.startswith("_")]
        assert [n for n in public if isinstance(getattr(m, n, None), ABTests)] == []
        _policy(tmp_path, DENY_ALL)
        now = datetime.now(timezone.utc)
        test = ABTestConfiguration(
            "t", "d", now - timedelta(days=1), now + timedelta(days=1),
            {"control": 50.0, "b": 50.0}, {"control": 1, "b": 2},
        )  # fmt: skip
        for call in (
            lambda: m.create_ab_test(test, actor="intern"),
            lambda: m.stop_ab_test("t", actor="intern"),
            lambda: m.delete_ab_test("t", actor="intern"),
            lambda: m.set_holdout_percentage(10, actor="intern"),
        ):
            with pytest.raises(PermissionError):
                call()
        assert m.list_ab_tests() == {} and "holdout_percentage" not in m.snapshot.metadata
    finally:
        m.close()
