"""Third security round: an update that reads a secret environment variable is judged.

``update_config(key, "${VAR}")`` resolves the variable. An actor the policy lets update a
key shown to users (``music_streaming.*``) could copy ``${DB_ADMIN_PASSWORD}`` there and
read it back from the service; reading a secret variable is ``config.reference`` of its
name.
"""

from __future__ import annotations

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.runtime import policy
from cfgcore.runtime.audit import AuditLog
from tests.conftest import scaffolded_config

POLICY = """\
roles:
  catalog:
    config.update: ["music_streaming.*"]
  ops:
    config.update: ["music_streaming.*"]
    config.reference: ["DB_ADMIN_PASSWORD"]
actors:
  mallory: [catalog]
  olivia: [ops]
"""
KEY = "music_streaming.banner_text"

pytestmark = pytest.mark.usefixtures("no_access_policy")


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    monkeypatch.setenv("DB_ADMIN_PASSWORD", "s3cr3t-admin-pw")
    monkeypatch.setenv("RELEASE_NAME", "autumn")
    monkeypatch.setenv("PARTNER_ID", "p-4711")
    d = scaffolded_config(tmp_path, monkeypatch, select=None)
    m = ConfigurationManager(str(d), environment="staging", audit_log=str(tmp_path / "a.jsonl"))
    m.load_environment_config("staging")
    (tmp_path / "policy.yaml").write_text(POLICY)
    policy.set_policy(str(tmp_path / "policy.yaml"))
    yield m
    m.close()


def test_a_secret_variable_needs_config_reference(cfg):
    before = cfg.get(KEY, None)
    with pytest.raises(PermissionError, match="mallory may not config.reference DB_ADMIN_PASSWORD"):
        cfg.update_config(KEY, "${DB_ADMIN_PASSWORD}", actor="mallory")
    with pytest.raises(PermissionError, match="config.reference DB_ADMIN_PASSWORD"):
        cfg.update_config(KEY, {"text": "hi ${DB_ADMIN_PASSWORD:-x}"}, actor="mallory")
    assert cfg.get(KEY, None) == before
    denied = [e for e in AuditLog.read(cfg.audit.path) if e["kind"] == "denied"]
    assert [e["path"] for e in denied][-2:] == ["DB_ADMIN_PASSWORD"] * 2
    assert all("s3cr3t" not in repr(e) for e in AuditLog.read(cfg.audit.path))
    # Granted: the same update goes through.
    assert cfg.update_config(KEY, "${DB_ADMIN_PASSWORD}", actor="olivia")
    assert cfg.get(KEY) == "s3cr3t-admin-pw"


def test_plain_variables_and_listed_secret_variables(cfg, monkeypatch):
    # A variable that is not a secret is read as before.
    assert cfg.update_config(KEY, "${RELEASE_NAME}", actor="mallory")
    assert cfg.get(KEY) == "autumn"
    # One listed in CFGCORE_SECRET_VARS is a secret whatever its name.
    monkeypatch.setenv("CFGCORE_SECRET_VARS", "PARTNER_ID")
    with pytest.raises(PermissionError, match="config.reference PARTNER_ID"):
        cfg.update_config(KEY, "${PARTNER_ID}", actor="mallory")
    assert cfg.get(KEY) == "autumn"


def test_without_a_policy_every_reference_is_allowed(cfg):
    policy.set_policy(None)
    assert cfg.update_config(KEY, "${DB_ADMIN_PASSWORD}", actor="mallory")
    assert cfg.get(KEY) == "s3cr3t-admin-pw"
