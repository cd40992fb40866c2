"""A custom profile is selected by its name, and a refusal of its file name says so.

README's table of environment variables gave ``CONFIG_PROFILE`` the value
``profiles/<name>.yaml``, and a profile file with a ``name:`` of its own
(``profiles/peak.yaml`` holding ``name: black_friday``) is selected as
``black_friday`` only: ``CONFIG_PROFILE=peak`` (or the file's path) was refused as an
unknown profile with nothing pointing at the file that defines it.
"""

from __future__ import annotations

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError


def _dir(tmp_path, text):
    (tmp_path / "base.yaml").write_text("db: {port: 5432}\n")
    (tmp_path / "development.yaml").write_text("{}\n")
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "peak.yaml").write_text(text)
    return tmp_path


def _load(d, profile):
    m = ConfigurationManager(d, environment="development", profile=profile, environ={})
    m.load_environment_config()
    return m


@pytest.mark.parametrize("asked", ["peak", "PEAK", "profiles/peak.yaml"])
def test_the_file_name_of_a_named_profile_points_at_its_name(tmp_path, asked):
    d = _dir(tmp_path, "kind: deployment\nname: black_friday\noverrides: {db: {port: 7}}\n")
    with pytest.raises(ConfigError) as refused:
        _load(d, asked)
    message = str(refused.value)
    assert f"unknown deployment profile {asked!r}" in message
    assert f"{d / 'profiles' / 'peak.yaml'} defines it as 'black_friday'" in message
    assert _load(d, "black_friday").get("db.port") == 7  # selected by its name


def test_a_profile_path_is_refused_naming_the_name_to_give(tmp_path):
    d = _dir(tmp_path, "kind: deployment\noverrides: {db: {port: 7}}\n")
    assert _load(d, "peak").get("db.port") == 7  # the file name without its extension
    with pytest.raises(ConfigError, match="defines it as 'peak'"):
        _load(d, "profiles/peak.yaml")


def test_a_misspelt_name_still_gets_its_suggestion(tmp_path):
    d = _dir(tmp_path, "kind: deployment\noverrides: {db: {port: 7}}\n")
    with pytest.raises(ConfigError, match=r"did you mean 'peak'\?"):
        _load(d, "peek")
