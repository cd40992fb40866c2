"""Second security round: an access policy file any local user can rewrite is no policy,
and an edit that keeps the file's mtime is still picked up."""

from __future__ import annotations

import os

import pytest

from cfgcore.errors import ConfigError
from cfgcore.runtime import policy

posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")

POLICY = "roles:\n  admin:\n    '*': ['*']\nactors:\n  alice: [admin]\n"


@pytest.fixture(autouse=True)
def _no_policy(monkeypatch):
    monkeypatch.delenv("CFGCORE_ACCESS_POLICY", raising=False)
    policy.set_policy(None)
    policy.set_authorizer(None)
    yield
    policy.set_policy(None)
    policy.set_authorizer(None)


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
