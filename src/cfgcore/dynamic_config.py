"""The seed's ``dynamic_config`` module: feature flags and A/B tests.

The implementation lives in :mod:`cfgcore.experiments`; this module keeps the seed's
import path (``from cfgcore.dynamic_config import get_dynamic_config_manager,
FeatureFlag, ABTestConfiguration``).
"""

from cfgcore.experiments.abtest import NO_VARIANT, ABTestConfiguration
from cfgcore.experiments.dynamic import (
    DynamicConfigurationManager,
    FeatureFlag,
    get_ab_test_variant,
    get_dynamic_config_manager,
    is_feature_enabled,
    load_state,
    reset_dynamic_config_manager,
    resolve_flags_file,
    state_paths,
)
from cfgcore.runtime.flagstore import default_state_dir

__all__ = [
    "ABTestConfiguration",
    "DynamicConfigurationManager",
    "FeatureFlag",
    "NO_VARIANT",
    "default_state_dir",
    "get_ab_test_variant",
    "get_dynamic_config_manager",
    "is_feature_enabled",
    "load_state",
    "reset_dynamic_config_manager",
    "resolve_flags_file",
    "state_paths",
]
