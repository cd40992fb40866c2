"""A mistyped environment name (``CONFIG_ENVIRONMENT=developement``, ``-e prod``):
the error listed the environments available but did not say which one was probably
meant, as a mistyped key, profile or command does. It does now, when one stands out."""

from __future__ import annotations

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError


@pytest.fixture
def confdir(tmp_path):
    d = tmp_path / "config"
    d.mkdir()
    for env in ("development", "staging", "production"):
        (d / f"{env}.yaml").write_text("{}\n")
    return d


@pytest.mark.parametrize(
    ("typed", "meant"),
    [("developement", "development"), ("stagin", "staging"), ("prod", "production")],
)
def test_a_mistyped_environment_gets_a_suggestion(confdir, typed, meant):
    m = ConfigurationManager(str(confdir), environ={}, record_usage=False)
    try:
        with pytest.raises(ConfigError) as info:
            m.load_environment_config(typed)
        text = str(info.value)
        assert f"no configuration file for environment {typed!r}" in text
        assert f"(did you mean {meant!r}?)" in text
    finally:
        m.close()


def test_an_unrelated_name_gets_no_guess(confdir):
    m = ConfigurationManager(str(confdir), environ={}, record_usage=False)
    try:
        with pytest.raises(ConfigError) as info:
            m.load_environment_config("qa")
        assert "did you mean" not in str(info.value)
        assert "available: development, production, staging" in str(info.value)
    finally:
        m.close()
