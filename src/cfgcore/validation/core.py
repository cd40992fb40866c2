"""Validation results, the rule base class and the report.

These are the public building blocks; :mod:`cfgcore.validation_engine` re-exports
them. Severities are plain strings so that the seed's
``result.severity in ['critical', 'error']`` keeps working.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cfgcore.errors import ConfigValidationError, Problem, format_key_path, plain_segment

__all__ = [
    "BLOCKING_SEVERITIES",
    "SEVERITIES",
    "ValidationReport",
    "ValidationResult",
    "ValidationRule",
    "normalize_environment",
]

SEVERITIES = ("critical", "error", "warning", "info")
BLOCKING_SEVERITIES = frozenset({"critical", "error"})
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
# A per-environment level may also be "off": the rule stays silent there.
OFF = "off"

ENVIRONMENTS = ("development", "staging", "production", "test")
_ENV_ALIASES = {
    "dev": "development",
    "develop": "development",
    "local": "development",
    "stage": "staging",
    "stg": "staging",
    "prod": "production",
    "prd": "production",
    "live": "production",
    "testing": "test",
    "ci": "test",
}


def normalize_environment(env: Any) -> str | None:
    """Canonical environment name (``"prod"`` -> ``"production"``), or None if not a name.

    Unknown names are kept (lower-cased) so custom environments still get the default
    levels of every rule.
    """
    if not isinstance(env, str):
        return None
    name = env.strip().lower()
    if not name:
        return None
    return _ENV_ALIASES.get(name, name)


def _check_severity(severity: str, *, allow_off: bool = False) -> str:
    if severity in SEVERITY_RANK or (allow_off and severity == OFF):
        return severity
    allowed = ", ".join(SEVERITIES + ((OFF,) if allow_off else ()))
    raise ValueError(f"unknown severity {severity!r} (expected one of {allowed})")


@dataclass(slots=True)
class ValidationResult:
    """One finding (or, for custom rules that report passes, one passed check).

    ``message`` is self-contained: when ``key_path`` is set it starts with the path,
    so printing ``result.message`` alone (as the seed does) still says where.
    """

    rule_id: str
    severity: str
    message: str
    key_path: str = ""
    suggested_fix: str | None = None
    is_valid: bool = False

    @property
    def blocking(self) -> bool:
        """True for a failed critical/error check: such a result blocks activation."""
        return not self.is_valid and self.severity in BLOCKING_SEVERITIES

    @property
    def detail(self) -> str:
        """The message without its leading ``key_path: `` prefix."""
        prefix = f"{self.key_path}: "
        if self.key_path and self.message.startswith(prefix):
            return self.message[len(prefix) :]
        return self.message

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (the shape ``cfgcore validate --format json`` prints)."""
        return {
            "rule_id": self.rule_id,
            "severity": self.severity,
            "key_path": self.key_path,
            "message": self.message,
            "suggested_fix": self.suggested_fix,
            "is_valid": self.is_valid,
        }

    def __str__(self) -> str:
        return f"[{self.severity}] {self.message} ({self.rule_id})"


class ValidationRule:
    """Base class of every rule, built-in or custom.

    Subclass it and implement :meth:`validate`; report with :meth:`create_result`::

        class CustomBusinessRule(ValidationRule):
            def validate(self, config, context=None):
                limit = config.get("user_limits", {}).get("premium_concurrent_streams", 0)
                if limit < 5:
                    return [self.create_result(False, "Premium users need 5 streams",
                                               suggested_fix="Raise it to 5")]
                return []

        get_config_validator().add_rule(CustomBusinessRule("premium_stream_limit"))

    ``severity`` is the level of the results ``create_result`` makes; ``env_severity``
    maps an environment to another level (or ``"off"``), which is how production is made
    stricter. The validator can re-level or disable any rule per environment too.
    ``context`` passed to :meth:`validate` is a dict with ``environment``,
    ``config_name``, ``geographic_profile`` and ``production``.
    """

    #: Which pack a rule belongs to (``structure``, ``security``, ``gdpr``, ``streaming``).
    pack: str = "custom"
    #: One-line description shown by ``cfgcore validate --list-rules``.
    description: str = ""

    def __init__(
        self,
        rule_id: str,
        severity: str = "error",
        description: str | None = None,
        *,
        env_severity: Mapping[str, str] | None = None,
        key_path: str | tuple[str, ...] | list[str] = "",
    ) -> None:
        if not isinstance(rule_id, str) or not rule_id:
            raise ValueError("a validation rule needs a non-empty string rule_id")
        self.rule_id = rule_id
        self.severity = _check_severity(severity)
        if description is not None:
            self.description = description
        self.env_severity: dict[str, str] = {}
        for env, level in (env_severity or {}).items():
            name = normalize_environment(env)
            if name is None:
                raise ValueError(f"bad environment name {env!r} in env_severity")
            self.env_severity[name] = _check_severity(level, allow_off=True)
        self.key_path = _rendered(key_path)

    def validate(self, config: Mapping[str, Any], context: Any = None) -> list[ValidationResult]:
        """Check ``config`` and return the findings (an empty list when all is well)."""
        raise NotImplementedError(f"{type(self).__name__} must implement validate()")

    def severity_for(self, environment: str | None) -> str:
        """This rule's level in ``environment`` (may be ``"off"``)."""
        if environment is not None:
            level = self.env_severity.get(environment)
            if level is not None:
                return level
        return self.severity

    def create_result(
        self,
        is_valid: bool,
        message: str,
        suggested_fix: str | None = None,
        key_path: str | tuple[str, ...] | list[str] | None = None,
        severity: str | None = None,
    ) -> ValidationResult:
        """A result attributed to this rule (default level: the rule's ``severity``).
        ``key_path`` (and the rule's own) is a dotted text, or a tuple/list of segments
        for keys that hold a dot, shown as ``loggers["uvicorn.access"].level``."""
        path = self.key_path if key_path is None else _rendered(key_path)
        return ValidationResult(
            rule_id=self.rule_id,
            severity=_check_severity(severity) if severity is not None else self.severity,
            message=str(message),
            key_path=path,
            suggested_fix=suggested_fix,
            is_valid=bool(is_valid),
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.rule_id!r}, severity={self.severity!r})"


@dataclass
class ValidationReport:
    """Everything one validation run found.

    ``overall_valid`` is False iff some critical/error result is not valid; those are
    listed in ``blocking``. Results are ordered most severe first.
    """

    config_name: str
    environment: str | None
    results: list[ValidationResult] = field(default_factory=list)
    duration_ms: float = 0.0
    rules_run: int = 0

    @property
    def overall_valid(self) -> bool:
        """False iff a critical or error check failed."""
        return not any(r.blocking for r in self.results)

    @property
    def blocking(self) -> list[ValidationResult]:
        """The failed critical/error results: the reasons activation is refused."""
        return [r for r in self.results if r.blocking]

    @property
    def failures(self) -> list[ValidationResult]:
        """Every result that is not valid, whatever its severity."""
        return [r for r in self.results if not r.is_valid]

    def counts(self) -> dict[str, int]:
        """Number of failed results per severity (every severity present as a key)."""
        out = dict.fromkeys(SEVERITIES, 0)
        for r in self.results:
            if not r.is_valid:
                out[r.severity] = out.get(r.severity, 0) + 1
        return out

    def by_rule(self, rule_id: str) -> list[ValidationResult]:
        """Results produced under ``rule_id``."""
        return [r for r in self.results if r.rule_id == rule_id]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: name, environment, validity, counts and every result."""
        return {
            "config_name": self.config_name,
            "environment": self.environment,
            "overall_valid": self.overall_valid,
            "counts": self.counts(),
            "duration_ms": round(self.duration_ms, 3),
            "rules_run": self.rules_run,
            "results": [r.to_dict() for r in self.results],
        }

    def raise_for_blocking(self, file: str | None = None) -> None:
        """Raise :class:`ConfigValidationError` listing every blocking result, if any.

        ``file`` names the source in each problem (``production.yaml: path: message``).
        """
        blocking = self.blocking
        if not blocking:
            return
        raise ConfigValidationError(
            [Problem(path=r.key_path, message=_problem_text(r), file=file) for r in blocking],
            file=file,
        )


def _problem_text(result: ValidationResult) -> str:
    text = f"{result.detail} [{result.rule_id}]"
    if result.suggested_fix:
        text += f" (fix: {result.suggested_fix})"
    return text


def sort_results(results: Iterable[ValidationResult]) -> list[ValidationResult]:
    """Most severe first; within a level, keep discovery order (stable sort)."""
    return sorted(results, key=lambda r: SEVERITY_RANK.get(r.severity, len(SEVERITIES)))


def join_path(parent: str, key: Any) -> str:
    """``parent.key``; list items are ``parent.0`` (the form ``manager.get``/``explain`` take).

    A key that would be ambiguous in dotted form (holding a dot or ``[``, or empty) is
    quoted as every key path cfgcore shows is: ``parent["uvicorn.access"]``
    (:func:`cfgcore.errors.format_key_path`).
    """
    if isinstance(key, str) and not plain_segment(key):
        return parent + format_key_path((key,))
    text = key if type(key) is str else str(key)
    return f"{parent}.{text}" if parent else text


def _rendered(key_path: Any) -> Any:
    """A rule's or result's ``key_path``: a tuple/list of segments rendered as key paths
    are shown; anything else as given."""
    if type(key_path) is tuple or type(key_path) is list:
        return format_key_path(key_path)
    return key_path
