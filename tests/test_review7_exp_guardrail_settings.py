"""Guardrail settings given as whole floats (review of the audit7 refusal).

The refusal of settings that cannot work (check_every 0 or None, alpha outside (0, 1))
also refused ``guardrail_check_every=100.0`` and ``guardrail_min_samples=50.0``, which
had worked (a setting read from JSON, YAML or an environment variable through float()
is one): the manager then failed to start after the upgrade. A whole float is taken as
that integer; 1.5 is still refused.
"""

from __future__ import annotations

import pytest

from cfgcore.dynamic_config import DynamicConfigurationManager


def test_whole_float_settings_still_make_a_manager(tmp_path):
    m = DynamicConfigurationManager(
        state_dir=tmp_path, record_usage=False,
        guardrail_check_every=100.0, guardrail_min_samples=50.0,
    )  # fmt: skip
    try:
        assert m.guardrail_check_every == 100 and type(m.guardrail_check_every) is int
        assert m.guardrail_min_samples == 50 and type(m.guardrail_min_samples) is int
    finally:
        m.close()


@pytest.mark.parametrize("value", [1.5, float("nan"), float("inf"), 0.0])
def test_fractional_or_non_finite_check_intervals_are_still_refused(tmp_path, value):
    with pytest.raises(ValueError, match="guardrail_check_every must be an integer >= 1"):
        DynamicConfigurationManager(
            state_dir=tmp_path, record_usage=False, guardrail_check_every=value
        )
