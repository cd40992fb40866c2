"""The access policy judges the profile that is applied, not how the caller spelled it.

Profiles are looked up ignoring case, and the policy matched the spelling: under a
policy that lets an actor switch to any profile except ``high_*`` (``[!h]*``),
``set_profile("HIGH_VOLUME")`` applied ``high_volume``."""

from __future__ import annotations

import pytest

from cfgcore.runtime import policy
from tests.test_hardening_policy_guards import _clean, _denied, _policy, cfg  # noqa: F401

NOT_HIGH = """\
roles:
  none: {}
  ops:
    config.profile: ["[!h]*"]
actors:
  '*': [none]
  ops-bot: [ops]
"""
ALLOW_LISTED = """\
roles:
  none: {}
  ops:
    config.profile: ["high_volume", "EU", "none"]
actors:
  '*': [none]
  ops-bot: [ops]
"""


@pytest.mark.parametrize("spelling", ["HIGH_VOLUME", "High_Volume", "high_volume"])
def test_a_profile_spelled_otherwise_is_judged_by_its_name(tmp_path, cfg, spelling):  # noqa: F811
    cfg.load_environment_config("staging")
    _policy(tmp_path, NOT_HIGH)
    with pytest.raises(PermissionError, match="config.profile high_volume"):
        cfg.set_profile(spelling, actor="ops-bot")
    assert _denied(cfg)["source"] == "config.profile"
    assert cfg._snap.profile is None  # nothing applied
    cfg.set_profile("LOW_LATENCY", actor="ops-bot")  # allowed: judged as low_latency
    assert cfg._snap.profile is not None and cfg._snap.profile.lower() == "low_latency"


def test_an_allow_list_takes_any_spelling_of_a_listed_profile(tmp_path, cfg):  # noqa: F811
    cfg.load_environment_config("staging")
    _policy(tmp_path, ALLOW_LISTED)
    cfg.set_profile("High_Volume", "eu", actor="ops-bot")
    assert cfg._snap.profile.lower() == "high_volume"
    assert cfg._snap.geographic_profile.lower() == "eu"
    with pytest.raises(PermissionError, match="config.profile low_latency"):
        cfg.set_profile("Low_Latency", actor="ops-bot")
    policy.set_policy(None)
