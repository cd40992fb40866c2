"""The seed's feature-flag changes with hostile arguments.

- ``register_custom_feature_flag`` of a key reserved for experiment layers
  (``__layer__.x``) answered True ("created") every time, and no such flag existed:
  deriving the layer flags replaces every flag under that prefix;
- an Enum member whose value is ``""`` registered a flag with an empty key;
- a flag key holding a lone surrogate raised UnicodeEncodeError from the write;
- ``set_feature_flag(..., rollout_percentage=10**400)`` raised OverflowError instead
  of the ConfigError naming ``flags.<key>.rollout_percentage``;
- ``set_flag_dependencies(flag, "other")`` asked for one prerequisite per letter of
  "other" ("unknown flag 'o'" ...).
"""

from __future__ import annotations

import json
from enum import Enum

import pytest

from cfgcore.dynamic_config import DynamicConfigurationManager, FeatureFlag
from cfgcore.engine import engine_class
from cfgcore.errors import ConfigError


@pytest.fixture
def manager(tmp_path, impl):
    engine = engine_class(impl).from_snapshot({"flags": {}})
    m = DynamicConfigurationManager(state_dir=tmp_path, engine=engine, record_usage=False)
    m.set_feature_flag("seed", True)  # the flags file exists from here on
    yield m
    m.close()


def _stored(tmp_path):
    return json.loads((tmp_path / "flags.json").read_text())["flags"]


class Hostile(Enum):
    EMPTY = ""
    SURROGATE = "beta_\udc80"
    LAYER = "__layer__.mine"
    ELIGIBLE = "__experiments__.eligible"


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        (Hostile.EMPTY, "must be a non-empty string"),
        (Hostile.SURROGATE, "not valid Unicode"),
        ("beta_\ud800", "not valid Unicode"),
        (Hostile.LAYER, 'flags["__layer__.mine"]: reserved for experiment layers'),
        ("__layer__.x", 'flags["__layer__.x"]: reserved for experiment layers'),
        (Hostile.ELIGIBLE, "reserved for experiment layers"),
    ],
)
def test_a_custom_flag_that_could_not_be_served_is_refused(manager, tmp_path, flag, message):
    before = _stored(tmp_path)
    with pytest.raises(ConfigError) as err:
        manager.register_custom_feature_flag(flag, enabled=True)
    assert message in str(err.value)
    assert _stored(tmp_path) == before
    # Registering a usable flag still works, and it serves.
    assert manager.register_custom_feature_flag("beta_ok", enabled=True) is True
    assert manager.is_feature_enabled("beta_ok", {"user_id": "u1"}) is True


@pytest.mark.parametrize("flag", ["beta_\ud800", Hostile.SURROGATE])
def test_set_feature_flag_with_a_lone_surrogate_key_is_a_config_error(manager, tmp_path, flag):
    before = _stored(tmp_path)
    with pytest.raises(ConfigError, match="not valid Unicode"):
        manager.set_feature_flag(flag, True)
    assert _stored(tmp_path) == before


@pytest.mark.parametrize("pct", [10**400, -(10**400)])
def test_a_percentage_past_a_float_is_a_config_error_naming_the_path(manager, pct):
    with pytest.raises(ConfigError, match=r"flags\.experimental_ml_models\.rollout_percentage"):
        manager.set_feature_flag(FeatureFlag.EXPERIMENTAL_ML_MODELS, True, pct)


class Dep(Enum):
    DEP = "dep"


@pytest.mark.parametrize("dependency", ["dep", Dep.DEP])
def test_a_single_dependency_is_one_flag_not_one_per_letter(manager, tmp_path, dependency):
    manager.set_feature_flag("dep", False)
    manager.set_flag_dependencies("seed", dependency)
    assert _stored(tmp_path)["seed"]["prerequisites"] == ["dep"]
    assert manager.is_feature_enabled("seed", {"user_id": "u1"}) is False  # "dep" is off
    manager.set_feature_flag("dep", True)
    assert manager.is_feature_enabled("seed", {"user_id": "u1"}) is True
