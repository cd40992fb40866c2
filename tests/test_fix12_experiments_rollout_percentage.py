"""``set_feature_flag``'s ``rollout_percentage`` takes a number, nothing that only converts.

Before: ``True`` was taken as 1% (``float(True)``), so a switch passed in the percentage's
place rolled the flag out to one user in a hundred; a number whose ``__float__`` raised
escaped as that exception instead of the ConfigError naming the path (nothing written),
and so did one whose ``__repr__`` raised once refused.
"""

from __future__ import annotations

import pytest

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.errors import ConfigError


@pytest.fixture
def manager(tmp_path, impl):
    engine = engine_class(impl).from_snapshot({"flags": {}})
    m = DynamicConfigurationManager(state_dir=tmp_path, engine=engine, record_usage=False)
    m.set_feature_flag("seed", True)  # the flags file exists from here on
    yield m
    m.close()


class Boom(Exception):
    pass


class RaisingFloat(float):
    def __float__(self):
        raise Boom("float")

    def __repr__(self):
        raise Boom("repr")


class RaisingNumber:
    def __float__(self):
        raise Boom("float")

    def __repr__(self):
        raise Boom("repr")


@pytest.mark.parametrize(
    "pct",
    [True, False, RaisingFloat(50.0), RaisingNumber()],
    ids=["True", "False", "float-subclass", "object"],
)
def test_a_percentage_that_is_no_number_is_refused_and_nothing_changes(manager, tmp_path, pct):
    before = (tmp_path / "flags.json").read_bytes()
    with pytest.raises(ConfigError, match=r"flags\.seed\.rollout_percentage: must be a number"):
        manager.set_feature_flag("seed", True, pct)
    assert (tmp_path / "flags.json").read_bytes() == before


@pytest.mark.parametrize("pct", [0, 25, 37.5, 100.0])
def test_numbers_within_range_still_apply(manager, tmp_path, pct):
    manager.set_feature_flag("seed", True, pct)
    on = sum(manager.is_feature_enabled("seed", {"user_id": f"u{i}"}) for i in range(2000))
    assert abs(on / 2000 - pct / 100) < 0.05
