"""GDPR pack: retention limits everywhere; consent and erasure under the EU profile.

The retention caps are the platform's policy (user data 7 years = 2555 days, logs 1
year = 365 days, analytics 3 years = 1095 days) and apply to every configuration.
``consent_required`` and ``right_to_be_forgotten`` must be true when the configuration
is under the EU geographic profile (see :func:`geographic_profile`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cfgcore.validation.core import ValidationResult, ValidationRule

__all__ = ["EuSwitchRule", "RetentionRule", "RETENTION_LIMITS_DAYS", "geographic_profile"]

RETENTION_LIMITS_DAYS = {
    "user_data_days": 2555,
    "logs_days": 365,
    "analytics_data_days": 1095,
}
_EU_NAMES = frozenset({"eu", "eea", "europe", "european_union"})


def geographic_profile(config: Any, context: Mapping[str, Any] | None = None) -> str | None:
    """The geographic profile a configuration declares, upper-cased (``"EU"``), or None.

    Looked up in order: ``context["geographic_profile"]``, the top-level
    ``geographic_profile`` key, then ``profile.geographic``.
    """
    value = None
    if context is not None:
        value = context.get("geographic_profile")
    if value is None and isinstance(config, Mapping):
        value = config.get("geographic_profile")
        if value is None:
            profile = config.get("profile")
            if isinstance(profile, Mapping):
                value = profile.get("geographic")
    if isinstance(value, str) and value.strip():
        name = value.strip()
        return "EU" if name.lower() in _EU_NAMES else name.upper()
    return None


def _num(v: Any) -> float | None:
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


class RetentionRule(ValidationRule):
    """Retention periods within the caps of :data:`RETENTION_LIMITS_DAYS`."""

    pack = "gdpr"
    description = "data retention within 2555 (user) / 365 (logs) / 1095 (analytics) days"

    def __init__(self) -> None:
        super().__init__("gdpr.retention_limits", "error")

    def validate(self, config: Mapping[str, Any], context: Any = None) -> list[ValidationResult]:
        gdpr = config.get("gdpr_compliance") if isinstance(config, Mapping) else None
        retention = gdpr.get("data_retention") if isinstance(gdpr, Mapping) else None
        if not isinstance(retention, Mapping):
            return []
        out = []
        for key, limit in RETENTION_LIMITS_DAYS.items():
            days = _num(retention.get(key))
            if days is not None and days > limit:
                path = f"gdpr_compliance.data_retention.{key}"
                out.append(
                    self.create_result(
                        False,
                        f"{path}: {days:g} days exceeds the retention limit of {limit} days",
                        suggested_fix=f"Set {path} to {limit} or less",
                        key_path=path,
                    )
                )
        return out


class EuSwitchRule(ValidationRule):
    """One GDPR switch that must be ``true`` under the EU geographic profile."""

    pack = "gdpr"

    def __init__(self, rule_id: str, field: str, why: str) -> None:
        super().__init__(rule_id, "error", env_severity={"production": "critical"})
        self.field = field
        self.why = why
        self.description = f"gdpr_compliance.{field} is true under the EU geographic profile"

    def validate(self, config: Mapping[str, Any], context: Any = None) -> list[ValidationResult]:
        ctx = context if isinstance(context, Mapping) else None
        if geographic_profile(config, ctx) != "EU":
            return []
        gdpr = config.get("gdpr_compliance") if isinstance(config, Mapping) else None
        value = gdpr.get(self.field) if isinstance(gdpr, Mapping) else None
        if value is True:
            return []
        path = f"gdpr_compliance.{self.field}"
        state = "is missing" if value is None else "is not true"
        env = ctx.get("environment") if ctx else None
        return [
            self.create_result(
                False,
                f"{path}: {self.field} {state}; the EU geographic profile requires it ({self.why})",
                suggested_fix=f"Set {path}: true",
                key_path=path,
                severity=self.severity_for(env),
            )
        ]


def gdpr_rules() -> list[ValidationRule]:
    """The built-in GDPR rules."""
    return [
        RetentionRule(),
        EuSwitchRule("gdpr.consent_required", "consent_required", "GDPR Art. 6/7 consent"),
        EuSwitchRule("gdpr.right_to_be_forgotten", "right_to_be_forgotten", "GDPR Art. 17 erasure"),
    ]
