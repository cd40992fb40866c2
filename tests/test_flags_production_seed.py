"""A missing flags file is never served as the bundled demo catalog in production:
neither when the process's environment says production (``CONFIG_ENVIRONMENT``) nor
when the manager is given it (``environment="production"``), which had served the demo
catalog with no word while the process's environment named none."""

from __future__ import annotations

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError


@pytest.fixture
def config(tmp_path, monkeypatch):
    for var in ("CONFIG_ENVIRONMENT", "CFGCORE_ENVIRONMENT", "CFGCORE_FLAG_STORE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    d = tmp_path / "config"
    d.mkdir()
    (d / "base.yaml").write_text("app:\n  name: x\n")
    (d / "production.yaml").write_text("app:\n  debug: false\n")
    (d / "staging.yaml").write_text("app:\n  debug: true\n")
    return d


@pytest.mark.parametrize("given", ["argument", "process"])
def test_production_refuses_a_missing_flags_file(config, monkeypatch, given):
    if given == "process":
        monkeypatch.setenv("CONFIG_ENVIRONMENT", "production")
    manager = ConfigurationManager(
        config,
        environment="production" if given == "argument" else None,
        flags_file=config / "flagz.yaml",  # (a typo: there is no such file)
        validate=False,
        record_usage=False,
    )
    try:
        with pytest.raises(ConfigError) as info:
            manager.load_environment_config()
        assert "flagz.yaml" in str(info.value) and "does not exist" in str(info.value)
    finally:
        manager.close()


def test_staging_serves_the_bundled_catalog_for_a_missing_flags_file(config):
    manager = ConfigurationManager(
        config,
        environment="staging",
        flags_file=config / "flagz.yaml",
        validate=False,
        record_usage=False,
    )
    try:
        manager.load_environment_config()
        ctx = {"user_id": "u1", "user_segment": "premium"}
        assert manager.flags.is_enabled("enhanced_anomaly_detection", ctx) is True
    finally:
        manager.close()


def test_validate_of_production_refuses_a_missing_flags_file(config, capsys, monkeypatch):
    from tests.conftest import run_cli

    monkeypatch.setenv("CFGCORE_FLAG_STORE", str(config / "flagz.yaml"))
    code, out, err = run_cli(capsys, "validate", "--config-dir", str(config), "-e", "production")
    assert code == 1
    assert "flagz.yaml" in out + err and "does not exist" in out + err
    code, out, err = run_cli(capsys, "validate", "--config-dir", str(config), "-e", "staging")
    assert code == 0, out + err  # (staging: the bundled catalog serves in its place)
