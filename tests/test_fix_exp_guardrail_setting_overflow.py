"""Guardrail settings past a float are refused as every unusable setting is.

``guardrail_min_samples``, ``guardrail_check_every`` and ``guardrail_alpha`` refuse an
unusable value with a ValueError naming the setting, but a number no float holds
(``10**400``, ``Fraction(10**400, 3)``) raised a bare ``OverflowError`` from the check
itself, at construction and from the property setters alike."""

from __future__ import annotations

from fractions import Fraction

import pytest

from cfgcore.dynamic_config import DynamicConfigurationManager

HUGE = [10**400, Fraction(10**400, 3), -(10**400)]
SETTINGS = ["guardrail_min_samples", "guardrail_check_every", "guardrail_alpha"]


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("value", HUGE, ids=["int", "fraction", "negative"])
def test_a_setting_past_a_float_is_refused_at_construction(tmp_path, setting, value):
    with pytest.raises(ValueError, match=setting):
        DynamicConfigurationManager(state_dir=tmp_path, record_usage=False, **{setting: value})
    assert not (tmp_path / "flags.json").exists()


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("value", HUGE, ids=["int", "fraction", "negative"])
def test_a_setting_past_a_float_is_refused_by_its_setter(tmp_path, setting, value):
    m = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
    try:
        before = getattr(m, setting)
        with pytest.raises(ValueError, match=setting):
            setattr(m, setting, value)
        assert getattr(m, setting) == before
    finally:
        m.close()
