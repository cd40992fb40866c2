"""Settings from the environment: the seed's names and their CFGCORE_ aliases, .env files
(python-dotenv semantics, the real environment wins) and misspelled CFGCORE__ overrides."""

from __future__ import annotations

import json
import os

import pytest

from cfgcore.config.envfile import EnvironWithFile
from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.setup import main as setup_main
from tests.conftest import run_cli as run


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    d = tmp_path / "config"
    assert setup_main(["-e", "staging", "-e", "production", "-o", str(d)]) == 0
    for var in list(os.environ):
        if var.startswith(("CFGCORE", "CONFIG_")) or var == "REDIS_URL":
            monkeypatch.delenv(var)
    # never the user's real state directory (flag usage is recorded there)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CFGCORE_CONFIG_DIR", str(d))
    return d


REDIS = "caching_layers.l2_cache.url"


def test_prefixed_aliases_select_environment_and_profile(cfg, monkeypatch):
    monkeypatch.setenv("CFGCORE_ENVIRONMENT", "production")
    monkeypatch.setenv("CFGCORE_PROFILE", "low_latency")
    m = ConfigurationManager(validate=False)
    m.load_environment_config()
    assert m.environment == "production" and m.snapshot.profile == "low_latency"
    # the seed's name agreeing with the alias is fine; disagreeing is an error
    monkeypatch.setenv("CONFIG_ENVIRONMENT", "PRODUCTION")
    assert ConfigurationManager(validate=False).load_environment_config()["environment"] == (
        "production"
    )
    monkeypatch.setenv("CONFIG_ENVIRONMENT", "staging")
    with pytest.raises(ConfigError, match="CONFIG_ENVIRONMENT='staging' and CFGCORE_ENVIRONMENT"):
        ConfigurationManager(validate=False).load_environment_config()


def test_env_file_beside_the_config_dir_fills_references(cfg, capsys, monkeypatch):
    (cfg.parent / ".env").write_text(
        "# comment\nexport REDIS_HOST=cache.internal\n"
        "REDIS_URL='redis://${REDIS_HOST}:6379/2'\nCONFIG_ENVIRONMENT=staging\n"
    )
    code, out, _ = run(capsys, "get", REDIS)
    assert (code, out) == (0, "redis://cache.internal:6379/2\n")  # quotes, export, ${} work
    code, out, _ = run(capsys, "get", "environment")
    assert out == "staging\n"
    monkeypatch.setenv("REDIS_URL", "redis://real:6379/0")  # the real environment wins
    assert run(capsys, "get", REDIS)[1] == "redis://real:6379/0\n"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_a_fifo_where_the_env_file_goes_is_refused_and_a_virtualenv_passed_over(cfg):
    beside = cfg.parent / ".env"
    os.mkfifo(beside)
    with pytest.raises(ConfigError) as info:
        ConfigurationManager(validate=False)
    assert str(beside) in str(info.value) and "not a regular file" in str(info.value)
    os.remove(beside)
    beside.mkdir()  # a virtualenv named .env: no .env file
    (beside / "pyvenv.cfg").write_text("home = /usr/bin\n")
    m = ConfigurationManager(validate=False)
    try:
        m.load_environment_config("staging")
        assert m.environment == "staging"
    finally:
        m.close()


def test_env_file_named_by_variable_and_missing_file_is_an_error(
    cfg, tmp_path, capsys, monkeypatch
):
    elsewhere = tmp_path / "secrets" / "app.env"
    elsewhere.parent.mkdir()
    elsewhere.write_text("REDIS_URL=redis://named:1/0\n")
    (cfg.parent / ".env").write_text("REDIS_URL=redis://beside:1/0\n")
    monkeypatch.setenv("CONFIG_ENVIRONMENT", "staging")
    monkeypatch.setenv("CFGCORE_ENV_FILE", str(elsewhere))
    assert run(capsys, "get", REDIS)[1] == "redis://named:1/0\n"
    monkeypatch.setenv("CFGCORE_ENV_FILE", str(tmp_path / "nope.env"))
    code, out, err = run(capsys, "get", REDIS)
    assert (code, out) == (1, "")
    missing = tmp_path / "nope.env"
    assert err == f"cfgcore: error: {missing}: CFGCORE_ENV_FILE names a file that does not exist\n"


def test_embedded_set_reads_no_env_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_CONFIG_DIR", "embedded")
    monkeypatch.delenv("CFGCORE_ENV_FILE", raising=False)
    m = ConfigurationManager(validate=False)
    assert m._environ is None


def test_environ_with_file_rereads_a_changed_file(tmp_path):
    path = tmp_path / ".env"
    path.write_text("A=1\nB=two\n")
    env = EnvironWithFile(str(path), base={"B": "real"})
    assert (env["A"], env["B"], dict(env)) == ("1", "real", {"B": "real", "A": "1"})
    path.write_text("A=changed-and-longer\n")
    assert env["A"] == "changed-and-longer" and "C" not in env
    with pytest.raises(KeyError):
        env["C"]


def test_validate_reports_a_misspelled_override(cfg, capsys, monkeypatch):
    monkeypatch.setenv("CONFIG_ENVIRONMENT", "staging")
    monkeypatch.setenv("CFGCORE__APP__LOG_LEVL", "DEBUG")  # typo
    monkeypatch.setenv("CFGCORE__APP__NAME", "checkout")  # a real override: not reported
    code, out, _ = run(capsys, "validate")
    assert code == 0  # a warning
    lines = [line for line in out.splitlines() if "environment.unknown_override" in line]
    assert len(lines) == 1
    assert "CFGCORE__APP__LOG_LEVL matches no configuration key" in lines[0]
    assert "did you mean 'CFGCORE__APP__LOG_LEVEL'" in lines[0]
    assert "CFGCORE__APP__NAME" not in out.split("did you mean")[0]
    assert run(capsys, "validate", "--strict")[0] == 1
    code, out, _ = run(capsys, "validate", "--format", "json")
    found = [
        r for r in json.loads(out)["results"] if r["rule_id"] == "environment.unknown_override"
    ]
    assert [r["key_path"] for r in found] == ["app.log_levl"]
