"""The seed's profile API handed something that is not a configuration (``None``
from a lookup that found nothing, a list): it failed with "'NoneType' object is not
iterable" from inside the merge. It is a ConfigError naming the profile and what it
got; a mapping still gets the profile merged over it."""

from __future__ import annotations

import pytest

from cfgcore.configuration_profiles import DeploymentProfile, get_profile_manager
from cfgcore.errors import ConfigError


@pytest.mark.parametrize(("config", "got"), [(None, "null"), ([1], "a list"), ("x", "a str")])
def test_applying_a_profile_to_a_non_mapping_names_what_it_got(config, got):
    pm = get_profile_manager()
    with pytest.raises(ConfigError) as info:
        pm.apply_profile(config, DeploymentProfile.HIGH_VOLUME)
    assert "cannot apply profile 'high_volume'" in str(info.value)
    assert str(info.value).endswith(f"got {got}")
    with pytest.raises(ConfigError, match="cannot apply profile 'EU'"):
        pm.apply_geographic_profile(config, "EU")


def test_a_mapping_still_gets_the_profile():
    pm = get_profile_manager()
    out = pm.apply_profile({"app": {"name": "x"}}, "high_volume")
    assert out["app"] == {"name": "x"}
    assert out["performance"]["worker_threads"] == 32
