"""cfgcore: embedded configuration, feature-flag and experiment engine.

Hot paths ask a compiled, immutable snapshot "is this flag on / which variant /
which value" in-process; the configuration manager, validation, profiles and the
dynamic-config (A/B) API are built on top of it.

Heavy parts (hot reload, validation, experiments) are imported lazily, so
``import cfgcore`` stays cheap for a service that only evaluates flags.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from cfgcore.errors import (
    ConfigError,
    ConfigValidationError,
    Problem,
    SnapshotError,
    TransformError,
)

__version__ = "0.1.0"

if TYPE_CHECKING:  # type checkers see the typed names; at run time they load lazily
    from cfgcore._compat import IMPLEMENTATION as IMPLEMENTATION
    from cfgcore.details import ErrorCode as ErrorCode
    from cfgcore.details import EvaluationDetails as EvaluationDetails
    from cfgcore.details import Reason as Reason
    from cfgcore.engine import Context as Context
    from cfgcore.engine import Engine as Engine
    from cfgcore.observability.debug import disable_debug_mode as disable_debug_mode
    from cfgcore.observability.debug import enable_debug_mode as enable_debug_mode
    from cfgcore.snapshot import Snapshot as Snapshot
    from cfgcore.snapshot import load_snapshot as load_snapshot

# name -> module that defines it; resolved on first access (PEP 562).
_LAZY = {
    # Which evaluator is live ("c" or "py"); importing it loads the evaluator.
    "IMPLEMENTATION": "cfgcore._compat",
    "Engine": "cfgcore.engine",
    "Context": "cfgcore.engine",
    "EvaluationDetails": "cfgcore.details",
    "Reason": "cfgcore.details",
    "ErrorCode": "cfgcore.details",
    "Snapshot": "cfgcore.snapshot",
    "load_snapshot": "cfgcore.snapshot",
    "ConfigurationManager": "cfgcore.config.manager",
    "get_config_manager": "cfgcore.config.manager",
    "ConfigChangeEvent": "cfgcore.runtime.events",
    "EventBus": "cfgcore.runtime.events",
    "AuditLog": "cfgcore.runtime.audit",
    "ConfigurationTransformer": "cfgcore.config.transforms",
    "DeploymentProfile": "cfgcore.config.profiles",
    "get_profile_manager": "cfgcore.config.profiles",
    "atomic_write": "cfgcore.runtime.atomicio",
    "FlagStore": "cfgcore.runtime.flagstore",
    "open_store": "cfgcore.runtime.flagstore",
    "ValidationRule": "cfgcore.validation_engine",
    "ValidationResult": "cfgcore.validation_engine",
    "ValidationReport": "cfgcore.validation_engine",
    "get_config_validator": "cfgcore.validation_engine",
    "validate_configuration": "cfgcore.validation_engine",
    "DynamicConfigurationManager": "cfgcore.experiments.dynamic",
    "get_dynamic_config_manager": "cfgcore.experiments.dynamic",
    "FeatureFlag": "cfgcore.experiments.dynamic",
    "ABTestConfiguration": "cfgcore.experiments.abtest",
    "enable_debug_mode": "cfgcore.observability.debug",
    "disable_debug_mode": "cfgcore.observability.debug",
}

__all__ = [
    "ConfigError",
    "ConfigValidationError",
    "Problem",
    "SnapshotError",
    "TransformError",
    "__version__",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cfgcore' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
