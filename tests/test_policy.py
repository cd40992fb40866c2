"""Actors and the access policy: who changed what, and who may (issue 14)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.errors import ConfigError
from cfgcore.runtime import policy
from cfgcore.runtime.audit import AuditLog, default_actor, verify
from cfgcore.setup import main as setup_main
from tests.conftest import scaffolded_config

POLICY = """\
roles:
  catalog:
    config.update: ["music_streaming.*"]
    flag.set: ["catalog_*"]
  experimenter:
    "experiment.*": ["checkout_*"]
actors:
  alice@*: [catalog]
  carol: [catalog, experimenter]
"""


pytestmark = pytest.mark.usefixtures("no_access_policy")


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    d = scaffolded_config(tmp_path, monkeypatch, select=None)
    m = ConfigurationManager(str(d), environment="staging", audit_log=str(tmp_path / "a.jsonl"))
    m.load_environment_config("staging")
    yield m
    m.close()


@pytest.fixture
def dyn(tmp_path, impl):
    m = DynamicConfigurationManager(state_dir=tmp_path / "state", engine=engine_class(impl)())
    yield m
    m.close()


@pytest.fixture
def policy_file(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


def _test(name: str) -> ABTestConfiguration:
    now = datetime.now(timezone.utc)
    return ABTestConfiguration(
        test_name=name, description="d", start_date=now - timedelta(days=1),
        end_date=now + timedelta(days=30), traffic_split={"control": 50.0, "b": 50.0},
        configurations={"control": {"x": 1}, "b": {"x": 2}},
    )  # fmt: skip


def test_actor_is_carried_by_events_audit_and_store(cfg, dyn):
    seen: list = []
    cfg.register_change_listener(seen.append)
    assert cfg.update_config("music_streaming.audio_quality.premium_bitrate", 256, actor="alice@x")
    assert seen[-1].actor == "alice@x"
    assert cfg.audit.entries()[-1]["actor"] == "alice@x"
    assert cfg.update_config("music_streaming.audio_quality.premium_bitrate", 192)
    assert seen[-1].actor == default_actor() and "@" in default_actor()

    flag_events: list = []
    dyn.register_change_listener(flag_events.append)
    dyn.set_feature_flag("catalog_search", True, 30.0, actor="bob")
    assert dyn.store.read().writer["actor"] == "bob"
    assert flag_events[-1].actor == "bob" and flag_events[-1].config_path == "flags.catalog_search"
    assert dyn.audit.entries()[-1]["actor"] == "bob"
    assert verify(cfg.audit.path).ok


def test_a_denied_change_changes_nothing_and_is_audited(cfg, dyn, policy_file):
    policy.set_policy(str(policy_file))
    key = "server.port"
    before_cfg, before_version = cfg.get(key), cfg.version
    with pytest.raises(PermissionError, match=r"alice@h may not config.update server.port"):
        cfg.update_config(key, 9999, actor="alice@h")
    with pytest.raises(PermissionError, match="config.delete"):
        cfg.update_config(key, "__delete__", actor="alice@h")
    tree = cfg.config.copy()
    tree["server"] = {**tree["server"], "port": 1}
    with pytest.raises(PermissionError, match="config.replace server.port"):
        cfg.set_active_config(tree, actor="carol")
    assert cfg.get(key) == before_cfg and cfg.version == before_version
    denied = [e for e in AuditLog.read(cfg.audit.path) if e["kind"] == "denied"]
    assert [e["source"] for e in denied] == ["config.update", "config.delete", "config.replace"]
    assert denied[0]["actor"] == "alice@h" and denied[0]["path"] == key

    dyn.set_feature_flag("catalog_seed", True, actor="alice@h")  # allowed: the store exists
    store_bytes = Path(dyn.flags_file).read_bytes()
    doc = dyn.store.read()
    flags_before = dyn.get_feature_flags_status()
    for call in (
        lambda: dyn.set_feature_flag("search_v2", True, actor="alice@h"),
        lambda: dyn.set_feature_flag("catalog_x", True, actor="mallory"),
        lambda: dyn.create_ab_test(_test("pricing_test"), actor="carol"),
        lambda: dyn.stop_ab_test("checkout_y", actor="alice@h"),
        lambda: dyn.delete_ab_test("checkout_y", actor="alice@h"),
        lambda: dyn.set_holdout_percentage(5, actor="carol"),
    ):
        with pytest.raises(PermissionError):
            call()
    assert Path(dyn.flags_file).read_bytes() == store_bytes
    assert dyn.store.read().version == doc.version
    assert dyn.get_feature_flags_status() == flags_before
    assert [e["kind"] for e in dyn.audit.entries()][-6:] == ["denied"] * 6

    # What the policy allows goes through.
    assert cfg.update_config("music_streaming.audio_quality.premium_bitrate", 256, actor="alice@h")
    dyn.set_feature_flag("catalog_search", True, actor="alice@h")
    assert dyn.is_feature_enabled("catalog_search", {"user_id": "u1"})
    assert dyn.create_ab_test(_test("checkout_flow"), actor="carol")
    assert dyn.stop_ab_test("checkout_flow", actor="carol")
    assert verify(cfg.audit.path).ok


def test_no_policy_allows_everything_and_a_hook_decides_when_set(cfg):
    assert cfg.update_config("server.port", 8081, actor="anyone")
    calls = []

    def authorize(actor, action, target):
        calls.append((actor, action, target))
        return actor == "svc-deployer"

    policy.set_authorizer(authorize)
    with pytest.raises(PermissionError, match="authorize hook"):
        cfg.update_config("server.port", 8082, actor="intern")
    assert cfg.update_config("server.port", 8083, actor="svc-deployer")
    assert cfg.get("server.port") == 8083
    assert calls == [("intern", "config.update", "server.port"),
                     ("svc-deployer", "config.update", "server.port")]  # fmt: skip


def test_policy_from_the_environment_is_checked_like_config(cfg, tmp_path, monkeypatch):
    bad = tmp_path / "bad.yaml"
    bad.write_text("roles:\n  r:\n    config.updat: ['*']\nactors:\n  bob: [nobody]\n")
    with pytest.raises(ConfigError) as err:
        policy.load_policy(bad)
    text = str(err.value)
    assert 'bad.yaml:3: roles.r["config.updat"]: matches no action' in text
    assert "bad.yaml:5: actors.bob[0]: unknown role 'nobody'" in text
    typo = tmp_path / "typo.yaml"
    typo.write_text("roles: {}\nactor: {}\n")
    with pytest.raises(ConfigError, match="typo.yaml"):
        policy.load_policy(typo)
    # A policy that cannot be read refuses changes rather than allowing them.
    monkeypatch.setenv("CFGCORE_ACCESS_POLICY", str(bad))
    with pytest.raises(PermissionError, match="access policy unusable"):
        cfg.update_config("server.port", 1, actor="bob")
    good = tmp_path / "good.yaml"
    good.write_text(POLICY)
    monkeypatch.setenv("CFGCORE_ACCESS_POLICY", str(good))
    with pytest.raises(PermissionError):
        cfg.update_config("server.port", 1, actor="bob")
    assert cfg.update_config("music_streaming.audio_quality.premium_bitrate", 128, actor="carol")


def test_a_denied_publish_writes_nothing(redis_server, tmp_path, capsys, monkeypatch):
    from cfgcore.cli import main

    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    config = tmp_path / "pub"
    assert setup_main(["-e", "staging", "-o", str(config)]) == 0
    capsys.readouterr()
    policy_path = tmp_path / "policy.yaml"
    policy_path.write_text(  # the OS identity running the CLI may act as anyone
        "roles:\n  release:\n    config.publish: ['staging']\n"
        "  runner:\n    actor.assume: ['*']\n"
        f"actors:\n  ci: [release]\n  '{default_actor()}': [runner]\n"
    )
    monkeypatch.setenv("CFGCORE_ACCESS_POLICY", str(policy_path))
    url = redis_server.url + "?namespace=deny&cache=off"
    argv = ["publish", "--store", url, "--config-dir", str(config), "-e", "staging"]
    assert main([*argv, "--actor", "intern"]) == 1
    assert "intern may not config.publish staging" in capsys.readouterr().err
    assert redis_server.client().keys("{deny}:*") == []
    assert main([*argv, "--actor", "ci"]) == 0, capsys.readouterr().err
    assert redis_server.client().keys("{deny}:*") != []


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("roles:\n  r:\n    flag.set: x\n", 'bad.yaml:3: roles.r["flag.set"]: expected array'),
        ("roles:\n  r:\n    flag.set: [1]\n", 'roles.r["flag.set"][0]: expected str, got int'),
        (
            "roles: {r: {'*': ['*']}}\nactors:\n  a@b.c: [r]\n  d@e.f: r\n",
            'bad.yaml:4: actors["d@e.f"]: expected array, got str',
        ),
    ],
)
def test_a_policy_of_the_wrong_shape_names_the_key_and_line(tmp_path, text, where):
    """msgspec names no key of a mapping (``roles[...][...]``, with its own wording
    repeated): the problem names the role, the action pattern or the actor as written
    (quoted where it holds a dot, as an e-mail address does) and the line."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError) as err:
        policy.load_policy(bad)
    assert where in str(err.value), str(err.value)
