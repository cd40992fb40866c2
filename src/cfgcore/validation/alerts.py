"""Alerts pack: every alert in the ``alerts:`` block can become a Prometheus rule.

``observability.alert_condition`` (error, so an unusable alert blocks activation and
fails ``cfgcore validate``): a condition that is not ``METRIC OP NUMBER``, a metric
cfgcore does not export (:data:`cfgcore.observability.alerts.METRICS` lists them), an
alert name Prometheus refuses or one used twice, a ``for`` that is not a duration.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cfgcore.config.schema import ENV_REF_PATTERN
from cfgcore.observability.alerts import alert_problems
from cfgcore.validation.core import ValidationResult, ValidationRule

_ENV_REF = re.compile(ENV_REF_PATTERN)

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
            if not _from_reference(config, path)
        ]


def _from_reference(config: Mapping[str, Any], path: str) -> bool:
    """Whether ``path`` (``alerts.1.condition``) is at or below a whole ``${VAR}``
    reference. Validation shows a value a variable supplies (``CFGCORE__ALERTS``, the
    only way to set the list from the environment) as its reference; the value itself
    is judged when the resolved tree is, as the structure rules leave references."""
    node: Any = config
    for seg in path.split("."):
        if isinstance(node, Mapping):
            node = node.get(seg)
        elif isinstance(node, list | tuple) and seg.isdigit() and int(seg) < len(node):
            node = node[int(seg)]
        else:
            return False
        if isinstance(node, str) and _ENV_REF.match(str(node)):
            return True
    return False
