"""Configuration validation: typed schema, rule packs, custom rules and reports.

Usage (the seed's API, with the package named ``cfgcore``)::

    from cfgcore.validation_engine import get_config_validator, validate_configuration

    report = get_config_validator().validate_config(config, "staging_config")
    if not report.overall_valid:
        for result in report.results:
            if result.severity in ("critical", "error"):
                print(result.message, result.suggested_fix)
    print(get_config_validator().get_validation_summary(report))

    report = validate_configuration(config, "production")   # stricter in production
    report.raise_for_blocking(file="production.yaml")         # ConfigValidationError

Results
    Every :class:`ValidationResult` has ``rule_id``, ``severity`` (``critical``,
    ``error``, ``warning``, ``info``), ``message`` (starting with the key path),
    ``key_path``, ``suggested_fix`` and ``is_valid``. ``report.overall_valid`` is False
    iff a critical/error result failed; those are ``report.blocking`` and they block
    activation in the configuration manager. Messages never contain a secret.

Rule packs (ids for ``disable_rule`` / ``set_severity``; ``cfgcore validate --list-rules``)
    structure  ``structure.type|required|range|allowed_values|format|unknown_key`` from the
               typed schema in :mod:`cfgcore.schema`, and ``structure.reference``.
               ``structure.limits`` (critical, not a rule one can disable): what every
               activation refuses whatever the schema says (NaN or infinite floats,
               keys that are not strings, bytes, sets, integers beyond 64 bits, nesting
               past 100 levels), checked by the same code, with the key path.
    security   ``security.weak_algorithm``, ``password_policy``, ``https_required``,
               ``cors_credentials``, ``debug_in_production``, ``plaintext_secret``,
               ``url_credentials``.
    gdpr       ``gdpr.retention_limits`` (always), ``gdpr.consent_required`` and
               ``gdpr.right_to_be_forgotten`` (under the EU geographic profile).
    streaming  ``streaming.bitrate_order``, ``codec_limits``, ``experiment_split``,
               ``experiment_variants``, ``rollout_range``, ``premium_concurrent_streams``,
               ``auto_scaling``, ``cache_ttl_order``.

Environment
    ``validate_configuration(config, env)`` uses ``env``; without it, the config's own
    top-level ``environment`` key (aliases such as ``prod`` are normalised). Production is
    stricter: plain-text secrets, weak algorithms, CORS ``*`` with credentials, the EU
    GDPR switches and debug mode become ``critical``; plain ``http://`` URLs are errors
    (warnings in staging, silent in development/test); the password policy and cache TTL
    ordering are warnings only in development/test. The level tables are in each pack's
    module docstring.

EU geographic profile marker
    The EU GDPR checks apply when the configuration has the top-level key
    ``geographic_profile: EU`` (case-insensitive; ``EEA``/``Europe`` count as EU). The
    nested form ``profile: {geographic: EU}`` is accepted too, and a caller may pass
    ``context={"geographic_profile": "EU"}`` to ``validate_config``. Applying the EU
    geographic profile should set ``geographic_profile: EU``.

Custom rules
    Subclass :class:`ValidationRule`, implement ``validate(config, context=None)`` and
    return ``self.create_result(False, message, suggested_fix=...)`` items; register with
    ``get_config_validator().add_rule(MyRule("my_rule_id"))`` (same id replaces). A rule
    that raises is reported as an error result under its id, never as an exception.

Values the schema accepts before and after the manager's transformations: whole-string
``${VAR}`` references stand in for any scalar; sizes may be ``"2GB"`` or bytes, durations
``"30s"`` or seconds; ``null`` means "unset". See :mod:`cfgcore.schema`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from cfgcore.runtime.forks import after_fork_in_child
from cfgcore.validation.core import (
    BLOCKING_SEVERITIES,
    SEVERITIES,
    ValidationReport,
    ValidationResult,
    ValidationRule,
    normalize_environment,
)
from cfgcore.validation.engine import ConfigValidator, RuleInfo, builtin_rules
from cfgcore.validation.gdpr import geographic_profile
from cfgcore.validation.walk import TreeRule

__all__ = [
    "BLOCKING_SEVERITIES",
    "SEVERITIES",
    "ConfigValidator",
    "RuleInfo",
    "TreeRule",
    "ValidationEngine",
    "ValidationReport",
    "ValidationResult",
    "ValidationRule",
    "builtin_rules",
    "geographic_profile",
    "get_config_validator",
    "normalize_environment",
    "validate_configuration",
]

#: The seed calls the component "ValidationEngine"; it is the same class.
ValidationEngine = ConfigValidator

_shared: ConfigValidator | None = None
_shared_lock = threading.Lock()


@after_fork_in_child
def _after_fork_in_child() -> None:
    # A thread of the parent may have held either lock at the fork (building the
    # shared validator, or its plan for an environment during a reload): held for good
    # in the child, whose first load or reload validating would wait for it forever.
    global _shared_lock
    _shared_lock = threading.Lock()
    if _shared is not None:
        _shared._after_fork_in_child()


def get_config_validator() -> ConfigValidator:
    """The process-wide validator (built-in rules plus whatever was added to it).

    The configuration manager validates every candidate config with it, so a custom rule
    added here takes part in every load, reload and update.
    """
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = ConfigValidator()
    return _shared


def validate_configuration(config: Mapping[str, Any], env: str | None = None) -> ValidationReport:
    """Validate ``config`` with the shared validator; ``env`` selects the strictness.

    >>> cfg = {"music_streaming": {"audio_quality": {"premium_bitrate": 320}}}
    >>> validate_configuration(cfg).overall_valid
    True
    """
    name = normalize_environment(env) or (
        normalize_environment(config.get("environment")) if isinstance(config, Mapping) else None
    )
    return get_config_validator().validate_config(
        config, f"{name}_config" if name else "config", env
    )
