"""The configuration's ``alerts:`` block as Prometheus alerting rules.

An alert names a metric condition, a severity and who to notify::

    alerts:
      - name: config_validation_failure
        condition: config_validation_success_rate < 0.95
        severity: critical
        notification: ["team-alerts@company.com"]
        for: 5m            # optional: how long the condition must hold

A condition is ``METRIC OP NUMBER`` (``OP``: ``<``, ``<=``, ``>``, ``>=``, ``==``,
``!=``). ``METRIC`` is one of the names below, each a PromQL expression over the
metrics cfgcore exports (rates over :data:`WINDOW`, base units):

==================================  =========================================================
``config_validation_success_rate``  passed / all runs of the validation gate (0..1)
``config_validation_failure_rate``  failed validation-gate runs per second
``config_load_time``                p95 seconds to build, validate and swap a configuration
``config_reload_frequency``         reloads that read changed inputs, per second
``config_reload_failure_rate``      rejected reloads per second
``config_reload_failing``           1 while an instance's last activation was rejected
``config_snapshot_age``             seconds since the live configuration was activated (max)
``config_watcher_stall_ratio``      a file watcher's seconds since its last tick over its
                                    ``stall_after`` (max; at 1 its manager is not ready)
``feature_flag_evaluation_rate``    flag evaluations per second
``feature_flag_error_rate``         evaluations that hit an error / all evaluations (0..1)
``flag_document_rejection_rate``    flag documents refused per second
``flag_store_connected``            1 while every store follower is connected (min)
``ab_test_participation_rate``      new A/B test participants (first exposures) per second
``dropped_event_rate``              exposure and metric events dropped per second
``change_listener_failure_rate``    change listeners that raised, per second
``memory_usage``                    resident memory, bytes (prometheus_client's process
                                    collector)
``cpu_utilization``                 CPU seconds per second (process collector)
==================================  =========================================================

:func:`alert_problems` checks an ``alerts`` block (the validation gate and ``cfgcore
validate`` run it); :func:`prometheus_rules` builds the rule file that ``cfgcore
alerts export`` writes (``promtool check rules`` accepts it).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "METRICS",
    "OPERATORS",
    "WINDOW",
    "Condition",
    "alert_problems",
    "parse_condition",
    "prometheus_rules",
]

#: The range of every rate in :data:`METRICS`.
WINDOW = "5m"


def _rate(selector: str) -> str:
    # `or vector(0)`: a counter nobody has incremented yet has no series, and a sum of
    # nothing would make the whole expression empty instead of 0.
    return f"(sum(rate({selector}[{WINDOW}])) or vector(0))"


_NOT_FOUND = 'cfgcore_flag_evaluation_errors_total{code="FLAG_NOT_FOUND"}'
_CALLS = "(" + _rate("cfgcore_flag_evaluations_total") + " + " + _rate(_NOT_FOUND) + ")"
_VALIDATIONS = "cfgcore_config_validations_total"

#: Alert metric name -> PromQL expression (the table in the module docstring).
METRICS: dict[str, str] = {
    "config_validation_success_rate": (
        _rate(_VALIDATIONS + '{result="passed"}') + " / " + _rate(_VALIDATIONS)
    ),
    "config_validation_failure_rate": _rate(_VALIDATIONS + '{result="failed"}'),
    "config_load_time": (
        "histogram_quantile(0.95, sum by (le) "
        f"(rate(cfgcore_config_load_duration_seconds_bucket[{WINDOW}])))"
    ),
    "config_reload_frequency": _rate(
        'cfgcore_config_loads_total{operation="reload",result!="unchanged"}'
    ),
    "config_reload_failure_rate": _rate(
        'cfgcore_config_loads_total{operation="reload",result="rejected"}'
    ),
    "config_reload_failing": "max(cfgcore_config_reload_failing)",
    "config_snapshot_age": "max(cfgcore_config_snapshot_age_seconds)",
    # (Both gauges have the same labels: one ratio per watcher. No watcher running: no
    # series, so 0, as a rate of nothing.)
    "config_watcher_stall_ratio": (
        "(max(cfgcore_config_watcher_last_tick_age_seconds"
        " / cfgcore_config_watcher_stall_bound_seconds) or vector(0))"
    ),
    "feature_flag_evaluation_rate": _CALLS,
    # Calls that got an error: FLAG_NOT_FOUND calls are counted only as errors, the other
    # codes also under the reason the flag was served with (one call, one error).
    "feature_flag_error_rate": _rate("cfgcore_flag_evaluation_errors_total") + " / " + _CALLS,
    "flag_document_rejection_rate": _rate('cfgcore_flag_documents_total{result="rejected"}'),
    "flag_store_connected": "min(cfgcore_flag_store_connected)",
    "ab_test_participation_rate": _rate("cfgcore_ab_exposures_total"),
    "dropped_event_rate": _rate("cfgcore_dropped_events_total"),
    "change_listener_failure_rate": _rate("cfgcore_change_listener_failures_total"),
    "memory_usage": "max(process_resident_memory_bytes)",
    "cpu_utilization": f"max(rate(process_cpu_seconds_total[{WINDOW}]))",
}

OPERATORS = ("<=", ">=", "==", "!=", "<", ">")
_CONDITION = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op><=|>=|==|!=|<|>)\s*"
    r"(?P<number>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)  # (not \d+\.?\d*: the same texts, but quadratic on a long run of digits that fails)
# Prometheus requires alert names to be valid metric names.
_ALERT_NAME = re.compile(r"^[A-Za-z_:][A-Za-z0-9_:]*$")


@dataclass(frozen=True)
class Condition:
    """A parsed ``METRIC OP NUMBER`` condition."""

    metric: str
    op: str
    threshold: float

    def promql(self) -> str:
        """The PromQL alert expression: the metric's expression compared to the number."""
        return f"{METRICS[self.metric]} {self.op} {self.threshold!r}"


def parse_condition(text: Any) -> Condition:
    """Parse ``"config_validation_success_rate < 0.95"``; ValueError says what is wrong.

    >>> parse_condition("feature_flag_error_rate > 0.01")
    Condition(metric='feature_flag_error_rate', op='>', threshold=0.01)
    """
    if not isinstance(text, str):
        raise ValueError(f"expected a string 'METRIC OP NUMBER', got {type(text).__name__}")
    m = _CONDITION.match(text)
    if m is None:
        raise ValueError(
            f"malformed condition {text!r}: expected 'METRIC OP NUMBER' with OP one of "
            f"{', '.join(OPERATORS)}, e.g. 'feature_flag_error_rate > 0.01'"
        )
    metric = m["metric"]
    if metric not in METRICS:
        close = difflib.get_close_matches(metric, METRICS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(
            f"unknown metric {metric!r} in condition {text!r}; {hint}known: {', '.join(METRICS)}"
        )
    return Condition(metric, m["op"], float(m["number"]))


def alert_problems(config: Any, *, export: bool = False) -> list[tuple[str, str]]:
    """``(key path, message)`` for every unusable alert in ``config["alerts"]``: a
    malformed condition, an unknown metric, a name Prometheus refuses, a duplicate
    name, a bad ``for``. Paths are dotted (``alerts.1.condition``).

    ``export``: also the fields a rule file is written from, which the configuration's
    schema checks when it is validated (``cfgcore alerts export`` does not validate the
    rest): ``notification`` a list of texts, ``severity`` and ``description`` texts.
    A ``notification: team@example.com`` was written as ``t, e, a, m, ...``, and a
    number there failed the export with an internal error."""
    alerts = config.get("alerts") if isinstance(config, Mapping) else None
    if alerts is None:
        return []
    if not isinstance(alerts, list | tuple):
        return [("alerts", f"expected a list of alerts, got {type(alerts).__name__}")]
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, alert in enumerate(alerts):
        where = f"alerts.{i}"
        if not isinstance(alert, Mapping):
            out.append((where, f"expected a mapping, got {type(alert).__name__}"))
            continue
        name = alert.get("name")
        if not isinstance(name, str) or not _ALERT_NAME.match(name):
            out.append((f"{where}.name", f"alert name {name!r}: letters, digits and '_' "
                        "(not starting with a digit)"))  # fmt: skip
        elif name in seen:
            out.append((f"{where}.name", f"duplicate alert name {name!r}"))
        else:
            seen.add(name)
        try:
            parse_condition(alert.get("condition"))
        except ValueError as exc:
            out.append((f"{where}.condition", str(exc)))
        if "for" in alert and _duration(alert["for"]) is None:
            out.append((f"{where}.for", f"not a duration: {alert['for']!r} (e.g. 5m, 300)"))
        if export:
            out += _field_problems(alert, where)
    return out


def _field_problems(alert: Mapping[str, Any], where: str) -> list[tuple[str, str]]:
    from cfgcore.validation.structure import describe  # bounded, secrets masked

    out = []
    notify = alert.get("notification")
    if notify is not None:
        if not isinstance(notify, list | tuple):
            hint = f" (write [{describe(notify).removeprefix('string ')}])" if isinstance(
                notify, str) else ""  # fmt: skip
            out.append((f"{where}.notification",
                        f"expected a list of addresses, got {describe(notify)}{hint}"))  # fmt: skip
        else:
            out += [
                (f"{where}.notification.{j}", f"expected a string, got {describe(n)}")
                for j, n in enumerate(notify)
                if not isinstance(n, str)
            ]
    for key in ("severity", "description"):
        value = alert.get(key)
        if value is not None and not isinstance(value, str):
            out.append((f"{where}.{key}", f"expected a string, got {describe(value)}"))
    return out


def _duration(value: Any) -> str | None:
    """A Prometheus duration (``"300s"``) for seconds or ``"5m"``-style text, else None."""
    from cfgcore.config.schema import parse_duration

    seconds = parse_duration(value)
    if seconds is None or seconds < 0:
        return None
    return f"{round(seconds * 1000)}ms" if seconds % 1 else f"{int(seconds)}s"


def _literal(text: str) -> str:
    """``text`` as an alerting rule's label or annotation value that renders as itself.
    Both are Go templates: a ``{{`` in a description or an address would be parsed as an action,
    and one that does not parse makes Prometheus refuse the whole rule file."""
    return text.replace("{{", '{{ "{{" }}')


def prometheus_rules(config: Mapping[str, Any], *, group: str = "cfgcore") -> dict[str, Any]:
    """The Prometheus rule file (as data) for ``config``'s alerts: one group named
    ``group``, one alerting rule per alert, ``severity`` (and ``environment``, when the
    configuration names one) as labels, the condition and notification targets as
    annotations (literal text: a ``{{`` in them is escaped, not run as a template;
    secrets masked as ``cfgcore show`` masks them).
    Raises ValueError listing every problem :func:`alert_problems` finds."""
    from cfgcore.runtime.redaction import redact, redact_text

    problems = alert_problems(config, export=True)
    if problems:
        raise ValueError("; ".join(f"{path}: {message}" for path, message in problems))
    env = config.get("environment")
    rules = []
    for i, alert in enumerate(config.get("alerts") or ()):
        condition = parse_condition(alert["condition"])
        labels = {"severity": _literal(str(alert.get("severity", "warning")))}
        if isinstance(env, str) and env:
            labels["environment"] = _literal(env)
        annotations = {"summary": _literal(f"{alert['name']}: {alert['condition']}")}
        # Annotations are read by every user of Prometheus and Alertmanager: masked as
        # `cfgcore show` masks the same values (webhook tokens, resolved secrets).
        if alert.get("description"):
            annotations["description"] = _literal(redact_text(str(alert["description"])))
        if alert.get("notification"):
            notify = ", ".join(
                str(redact(("alerts", i, "notification", j), n))
                for j, n in enumerate(alert["notification"])
            )
            annotations["notification"] = _literal(notify)
        rule: dict[str, Any] = {"alert": alert["name"], "expr": condition.promql()}
        if "for" in alert:
            rule["for"] = _duration(alert["for"])
        rule["labels"] = labels
        rule["annotations"] = annotations
        rules.append(rule)
    return {"groups": [{"name": group, "rules": rules}]}
