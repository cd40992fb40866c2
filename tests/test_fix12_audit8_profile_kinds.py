"""A profile selected as the other kind says which kind it is (audit 8).

``CONFIG_PROFILE=eu`` (a geographic profile), or a custom ``profiles/peak.yaml`` of
``kind: geographic`` selected as the deployment profile, answered "unknown deployment
profile 'peak' ... (custom profiles are files in this directory)" while the file was
right there: the reader was sent looking for a file, not for the other setting."""

from __future__ import annotations

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.configuration_profiles import get_profile_manager
from cfgcore.errors import ConfigError
from tests.conftest import scaffolded_config


@pytest.mark.parametrize(
    "setting, name, message",
    [
        ("CONFIG_PROFILE", "peak", "unknown deployment profile 'peak' (it is a geographic "
         "profile: select it as CONFIG_GEOGRAPHIC_PROFILE)"),
        ("CONFIG_PROFILE", "EU", "unknown deployment profile 'EU' (it is a geographic "
         "profile: select it as CONFIG_GEOGRAPHIC_PROFILE)"),
        ("CONFIG_GEOGRAPHIC_PROFILE", "high_volume", "unknown geographic profile "
         "'high_volume' (it is a deployment profile: select it as CONFIG_PROFILE)"),
    ],
)  # fmt: skip
def test_a_profile_of_the_other_kind_is_named_as_such(
    tmp_path, monkeypatch, setting, name, message
):
    directory = scaffolded_config(tmp_path, monkeypatch)
    (directory / "profiles").mkdir(exist_ok=True)
    (directory / "profiles" / "peak.yaml").write_text("kind: geographic\noverrides: {}\n")
    monkeypatch.setenv(setting, name)
    m = ConfigurationManager(directory, record_usage=False)
    try:
        with pytest.raises(ConfigError) as err:
            m.load_environment_config("staging")
    finally:
        m.close()
    assert message in str(err.value)
    assert str(directory / "profiles") in str(err.value)  # where custom profiles live


def test_the_profile_api_says_the_same():
    profiles = get_profile_manager()
    with pytest.raises(ConfigError, match=r"'us' \(it is a geographic profile"):
        profiles.get_deployment_profile("us")
    with pytest.raises(ConfigError, match=r"'low_latency' \(it is a deployment profile"):
        profiles.get_geographic_profile("low_latency")
