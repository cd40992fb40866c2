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
    with pytest.raises(ValueError, match="guardrail_check_every must be a whole number >= 1"):
        DynamicConfigurationManager(
            state_dir=tmp_path, record_usage=False, guardrail_check_every=value
        )


# The settings are attributes of the manager: the constructor's refusal did not cover
# one set afterwards, and guardrail_check_every = 0 raised ZeroDivisionError from every
# record_metric of a guarded test (the request path).


def test_a_setting_changed_later_is_judged_as_the_constructor_judges_it(tmp_path):
    from datetime import datetime, timedelta

    from cfgcore.dynamic_config import ABTestConfiguration

    m = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
    try:
        now = datetime.now()
        assert m.create_ab_test(
            ABTestConfiguration(
                "g", "", now - timedelta(days=1), now + timedelta(days=1),
                {"control": 50, "b": 50}, {"control": {}, "b": {}}, ["ctr"],
                guardrail_metrics={"err": "lower_is_better"},
            )
        )  # fmt: skip
        for name, bad in (("guardrail_check_every", 0), ("guardrail_check_every", None),
                          ("guardrail_min_samples", None), ("guardrail_alpha", 2)):  # fmt: skip
            with pytest.raises(ValueError, match=name):
                setattr(m, name, bad)
        assert m.guardrail_check_every == 100  # the last good setting stays
        m.guardrail_check_every = 1.0
        assert m.guardrail_check_every == 1
        user = {"user_id": "u1"}
        m.get_ab_test_variant("g", user)
        assert m.record_metric("g", "err", 1.0, user_id="u1") is True
    finally:
        m.close()
