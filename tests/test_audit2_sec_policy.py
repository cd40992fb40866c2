"""Second security round: an access policy file any local user can rewrite is no policy,
and an edit that keeps the file's mtime is still picked up."""

from __future__ import annotations

import os

import pytest

from cfgcore.errors import ConfigError
from cfgcore.runtime import policy

posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")

POLICY = "roles:\n  admin:\n    '*': ['*']\nactors:\n  alice: [admin]\n"


pytestmark = pytest.mark.usefixtures("no_access_policy")


@pytest.fixture
def policy_path(tmp_path, monkeypatch):
    d = tmp_path / "etc"
    d.mkdir(mode=0o755)
    path = d / "policy.yaml"
    path.write_text(POLICY)
    path.chmod(0o644)
    monkeypatch.setenv("CFGCORE_ACCESS_POLICY", str(path))
    return path


@posix_only
def test_a_world_writable_policy_file_refuses_every_change(policy_path):
    policy.check("alice", "config.update", "a.b")  # allowed while the file is safe
    policy_path.chmod(0o666)
    with pytest.raises(PermissionError, match="writable by every user"):
        policy.check("alice", "config.update", "a.b")
    policy_path.chmod(0o644)
    policy.check("alice", "config.update", "a.b")


@posix_only
def test_a_policy_in_a_world_writable_directory_refuses_every_change(policy_path):
    policy_path.parent.chmod(0o777)  # anyone may replace the file (no sticky bit)
    try:
        with pytest.raises(PermissionError, match="writable by every user"):
            policy.check("alice", "config.update", "a.b")
        policy_path.parent.chmod(0o1777)  # sticky: only the owner may replace it
        policy.check("alice", "config.update", "a.b")
    finally:
        policy_path.parent.chmod(0o755)


def test_an_edit_keeping_the_mtime_is_picked_up(policy_path):
    policy.check("alice", "config.update", "a.b")
    st = os.stat(policy_path)
    policy_path.write_text(POLICY.replace("alice: [admin]", "bob: [admin]"))
    os.utime(policy_path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime, new content
    with pytest.raises(PermissionError, match="alice may not"):
        policy.check("alice", "config.update", "a.b")


@posix_only
def test_set_policy_refuses_a_world_writable_file(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    path.chmod(0o666)
    with pytest.raises(ConfigError, match="writable by every user"):
        policy.set_policy(str(path))
    assert policy.get_policy() is None


EDITOR = """\
roles:
  editor:
    config.update: ["server", "server.*"]
  janitor:
    config.update: ["server", "server.*"]
    config.delete: ["server.cors"]
actors:
  bob: [editor]
  jan: [janitor]
"""


@pytest.fixture
def manager(tmp_path, monkeypatch):
    from cfgcore.config.manager import ConfigurationManager
    from tests.conftest import scaffolded_config

    d = scaffolded_config(tmp_path, monkeypatch, select=None)
    (tmp_path / "editor.yaml").write_text(EDITOR)
    policy.set_policy(str(tmp_path / "editor.yaml"))
    m = ConfigurationManager(str(d), environment="staging", audit_log=str(tmp_path / "a.jsonl"))
    m.load_environment_config("staging")
    yield m
    m.close()


@pytest.mark.parametrize(
    "value",
    [
        {"cors": "__delete__"},  # a nested delete marker
        {"__replace__": True, "port": 8443},  # replacing the map drops server.cors
        {"cors": {"__replace__": True}},  # emptying server.cors
    ],
)
def test_a_delete_inside_an_update_needs_config_delete(manager, value):
    # update_config("server", {"cors": "__delete__"}) removed server.cors for an actor
    # allowed config.update only: the policy saw one config.update of "server".
    before = manager.get("server.cors")
    with pytest.raises(PermissionError, match="bob may not config.delete server"):
        manager.update_config("server", value, actor="bob")
    assert manager.get("server.cors") == before
    denied = [e for e in manager.audit.entries() if e["kind"] == "denied"]
    assert denied and denied[-1]["source"] == "config.delete"


def test_an_actor_allowed_to_delete_may_and_plain_updates_stay_allowed(manager):
    assert manager.update_config("server", {"port": 8443}, actor="bob")
    assert manager.get("server.port") == 8443
    assert manager.update_config("server", {"cors": "__delete__"}, actor="jan")
    assert manager.get("server.cors", None) is None


def test_a_deeply_nested_update_is_judged_without_recursion(manager):
    value: dict = {}
    node = value
    for _ in range(5000):
        node["x"] = {}
        node = node["x"]
    node["y"] = "__delete__"
    with pytest.raises(PermissionError, match="config.delete"):
        manager.update_config("server", value, actor="bob")


def test_a_variable_resolving_to_a_delete_marker_needs_config_delete(manager, monkeypatch):
    # update_config("server.cors", "${EVIL}") with EVIL=__delete__ removed server.cors
    # for an actor allowed only config.update: the policy saw the text before it was
    # resolved.
    monkeypatch.setenv("EVIL", "__delete__")
    before = manager.get("server.cors")
    assert before is not None
    with pytest.raises(PermissionError, match="bob may not config.delete server.cors"):
        manager.update_config("server.cors", "${EVIL}", actor="bob")
    assert manager.get("server.cors") == before
    assert manager.update_config("server.cors", "${EVIL}", actor="jan")  # allowed to delete
    assert manager.get("server.cors", None) is None
