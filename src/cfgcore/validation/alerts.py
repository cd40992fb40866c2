"""Alerts pack: every alert in the ``alerts:`` block can become a Prometheus rule.

``observability.alert_condition`` (error, so an unusable alert blocks activation and
fails ``cfgcore validate``): a condition that is not ``METRIC OP NUMBER``, a metric
cfgcore does not export (:data:`cfgcore.observability.alerts.METRICS` lists them), an
alert name Prometheus refuses or one used twice, a ``for`` that is not a duration.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cfgcore.observability.alerts import alert_problems
from cfgcore.validation.core import ValidationResult, ValidationRule

__all__ = ["AlertConditionRule"]


class AlertConditionRule(ValidationRule):
    """Each alert's condition names a known metric and compares it to a number."""

    pack = "observability"
    description = "alert conditions are 'METRIC OP NUMBER' over metrics cfgcore exports"

    def __init__(self) -> None:
        super().__init__("observability.alert_condition", "error")

    def validate(self, config: Mapping[str, Any], context: Any = None) -> list[ValidationResult]:
        return [
            self.create_result(
                False,
                f"{path}: {message}",
                suggested_fix="write the condition as 'METRIC OP NUMBER', e.g. "
                "'feature_flag_error_rate > 0.01' (cfgcore.observability.alerts lists the "
                "metrics)"
                if path.endswith(".condition")
                else None,
                key_path=path,
            )
            for path, message in alert_problems(config)
        ]
