"""The validator: runs the rule set over a config and builds the report."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cfgcore.errors import printable
from cfgcore.validation.alerts import AlertConditionRule
from cfgcore.validation.core import (
    OFF,
    SEVERITIES,
    SEVERITY_RANK,
    ValidationReport,
    ValidationResult,
    ValidationRule,
    _check_severity,
    normalize_environment,
    sort_results,
)
from cfgcore.validation.gdpr import gdpr_rules, geographic_profile
from cfgcore.validation.security import (
    CorsCredentialsRule,
    DebugInProductionRule,
    HttpsRequiredRule,
    PasswordPolicyRule,
    PlaintextSecretRule,
    UrlCredentialsRule,
    WeakAlgorithmRule,
)
from cfgcore.validation.streaming import streaming_rules
from cfgcore.validation.structure import STRUCTURE_RULE_IDS, ReferenceRule, SchemaRule
from cfgcore.validation.walk import TreeRule, TreeWalker, rule_crash

__all__ = ["ConfigValidator", "RuleInfo", "builtin_rules"]


def builtin_rules() -> list[ValidationRule]:
    """A fresh instance of every built-in rule, in the order they run."""
    return [
        SchemaRule(),
        ReferenceRule(),
        WeakAlgorithmRule(),
        PasswordPolicyRule(),
        HttpsRequiredRule(),
        CorsCredentialsRule(),
        DebugInProductionRule(),
        PlaintextSecretRule(),
        UrlCredentialsRule(),
        *gdpr_rules(),
        *streaming_rules(),
        AlertConditionRule(),
    ]


@dataclass(frozen=True)
class RuleInfo:
    """One row of the rule catalogue (``cfgcore validate --list-rules``)."""

    rule_id: str
    pack: str
    severity: str
    env_severity: Mapping[str, str]
    description: str


@dataclass(frozen=True)
class _Plan:
    """The compiled rule set: rebuilt only when rules or overrides change."""

    plain: tuple[ValidationRule, ...]
    walker: TreeWalker | None
    rules_run: int


class ConfigValidator:
    """Runs validation rules over configuration trees (the seed's ValidationEngine).

    Built-in rules (structure, security, GDPR, music streaming) are loaded unless
    ``builtin=False``. Rules can be added (:meth:`add_rule`; same id replaces),
    removed, disabled or re-levelled globally or for one environment
    (:meth:`disable_rule`, :meth:`set_severity`). Safe to use from several threads:
    the compiled rule set is swapped as a whole.

    >>> report = ConfigValidator().validate_config({"auto_scaling": {"min_replicas": 5,
    ...     "max_replicas": 2}}, "demo")
    >>> report.overall_valid, report.blocking[0].key_path
    (False, 'auto_scaling.min_replicas')
    """

    def __init__(
        self, rules: Iterable[ValidationRule] | None = None, *, builtin: bool = True
    ) -> None:
        self._lock = threading.Lock()
        self._rules: dict[str, ValidationRule] = {}
        # (rule_id, environment or None) -> "off" or a severity
        self._overrides: dict[tuple[str, str | None], str] = {}
        for rule in builtin_rules() if builtin else ():
            self._rules[rule.rule_id] = rule
        for rule in rules or ():
            self._check_rule(rule)
            self._rules[rule.rule_id] = rule
        self._plans: dict[str | None, _Plan] = {}

    def _after_fork_in_child(self) -> None:
        """In a forked child: a lock a thread of the parent held at the fork stays held.
        That thread may have been changing the rules or their levels, with the plans
        (built from them) not yet dropped: they are, so the child validates by the rules
        it holds (a rule added at the fork was never run there)."""
        held = self._lock.locked()
        self._lock = threading.Lock()
        if held:
            self._plans = {}

    # --- rule management ------------------------------------------------------------------

    @staticmethod
    def _check_rule(rule: Any) -> None:
        if not isinstance(rule, ValidationRule):
            raise TypeError(f"expected a ValidationRule, got {type(rule).__name__}")

    def add_rule(self, rule: ValidationRule) -> None:
        """Add a rule; a rule with the same ``rule_id`` is replaced (so re-adding is harmless)."""
        self._check_rule(rule)
        with self._lock:
            self._rules[rule.rule_id] = rule
            self._plans = {}

    def remove_rule(self, rule_id: str) -> bool:
        """Remove a rule by id; True if it existed."""
        with self._lock:
            found = self._rules.pop(rule_id, None) is not None
            self._plans = {}
        return found

    def get_rule(self, rule_id: str) -> ValidationRule | None:
        """The rule registered under ``rule_id``, if any."""
        return self._rules.get(rule_id)

    @property
    def rules(self) -> list[ValidationRule]:
        """The registered rules, in run order."""
        return list(self._rules.values())

    def disable_rule(self, rule_id: str, environment: str | None = None) -> None:
        """Silence a rule (or one ``structure.*`` check) everywhere or in one environment."""
        self._override(rule_id, environment, OFF)

    def enable_rule(self, rule_id: str, environment: str | None = None) -> None:
        """Undo :meth:`disable_rule` / :meth:`set_severity` for that scope."""
        env = normalize_environment(environment) if environment is not None else None
        with self._lock:
            self._overrides.pop((rule_id, env), None)
            self._plans = {}

    def set_severity(self, rule_id: str, severity: str, environment: str | None = None) -> None:
        """Re-level a rule's findings everywhere or in one environment (``"off"`` disables)."""
        self._override(rule_id, environment, _check_severity(severity, allow_off=True))

    def _override(self, rule_id: str, environment: str | None, level: str) -> None:
        if rule_id not in self._known_ids():
            raise KeyError(f"unknown validation rule {rule_id!r}")
        env = normalize_environment(environment) if environment is not None else None
        if environment is not None and env is None:
            raise ValueError(f"bad environment name {environment!r}")
        with self._lock:
            self._overrides[(rule_id, env)] = level
            self._plans = {}

    def _known_ids(self) -> set[str]:
        return set(self._rules) | set(STRUCTURE_RULE_IDS)

    def _level_override(self, rule_id: str, env: str | None) -> str | None:
        if env is not None:
            level = self._overrides.get((rule_id, env))
            if level is not None:
                return level
        return self._overrides.get((rule_id, None))

    def rule_catalog(self) -> list[RuleInfo]:
        """Every rule id with its pack, default level, per-environment levels and description."""
        rows = []
        for rule in self._rules.values():
            if isinstance(rule, SchemaRule):
                for rid, (sev, text) in STRUCTURE_RULE_IDS.items():
                    rows.append(RuleInfo(rid, "structure", sev, {}, text))
                continue
            rows.append(
                RuleInfo(
                    rule.rule_id,
                    rule.pack,
                    rule.severity,
                    dict(rule.env_severity),
                    rule.description,
                )
            )
        return rows

    # --- validation -----------------------------------------------------------------------

    def _plan(self, env: str | None) -> _Plan:
        plan = self._plans.get(env)
        if plan is not None:
            return plan
        with self._lock:
            rules = [r for r in self._rules.values() if self._level_override(r.rule_id, env) != OFF]
            tree = [r for r in rules if isinstance(r, TreeRule)]
            plain = tuple(r for r in rules if not isinstance(r, TreeRule))
            plan = _Plan(plain, TreeWalker(tree) if tree else None, len(rules))
            self._plans[env] = plan
        return plan

    def validate_config(
        self,
        config: Any,
        config_name: str = "config",
        environment: str | None = None,
        *,
        context: Mapping[str, Any] | None = None,
    ) -> ValidationReport:
        """Validate ``config`` against every enabled rule; never raises on bad data.

        ``environment`` defaults to the config's own top-level ``environment`` key.
        ``context`` adds entries to the dict every rule receives (for example
        ``{"geographic_profile": "EU"}`` to validate as if the EU profile applied).
        """
        start = time.perf_counter()
        env = normalize_environment(environment)
        if env is None and isinstance(config, Mapping):
            env = normalize_environment(config.get("environment"))
        ctx: dict[str, Any] = {
            "environment": env,
            "config_name": config_name,
            "production": env == "production",
        }
        if context:
            ctx.update(context)
        ctx["geographic_profile"] = geographic_profile(config, ctx)
        plan = self._plan(env)
        results: list[ValidationResult] = []
        unusable = _unusable(config)
        if unusable:
            # A tree activation refuses before any rule (see _unusable): report that
            # reason once, by its path; the rules could not vouch for it (an integer of
            # 5,000 digits made them crash on str()/float()).
            results.extend(unusable)
        elif isinstance(config, Mapping):
            for rule in plan.plain:
                # env_severity of rules that report through create_result (custom rules
                # do): "off" silences the rule unless the validator re-levels it there.
                level = rule.severity_for(env)
                if level == OFF and self._level_override(rule.rule_id, env) is None:
                    continue
                try:
                    found = rule.validate(config, ctx)
                    # Inside the try: a rule written as a generator runs only when its
                    # results are read, and may raise there.
                    items = _only_results(rule, found) if found else []
                except Exception as exc:  # a custom rule's bug must not crash activation
                    results.append(rule_crash(rule, exc))
                    continue
                if items:
                    if level not in (OFF, rule.severity):
                        # create_result's default level is the rule's base severity;
                        # built-in rules already pass severity_for(env) themselves.
                        for r in items:
                            if r.rule_id == rule.rule_id and r.severity == rule.severity:
                                r.severity = level
                    results.extend(items)
            if plan.walker is not None:
                plan.walker.walk(config, ctx, results)
        else:
            # Only the schema can say something useful about a non-mapping tree.
            for rule in plan.plain:
                if isinstance(rule, SchemaRule):
                    results.extend(rule.validate(config, ctx))
        if self._overrides:
            results = self._apply_overrides(results, env)
        return ValidationReport(
            config_name=config_name,
            environment=env,
            results=sort_results(results),
            duration_ms=(time.perf_counter() - start) * 1000.0,
            rules_run=plan.rules_run,
        )

    def validate(
        self, config: Any, environment: str | None = None, config_name: str | None = None
    ) -> ValidationReport:
        """Shorthand for :meth:`validate_config` with the environment first."""
        name = config_name or (normalize_environment(environment) or "config")
        return self.validate_config(config, name, environment)

    def _apply_overrides(
        self, results: list[ValidationResult], env: str | None
    ) -> list[ValidationResult]:
        kept = []
        for r in results:
            level = self._level_override(r.rule_id, env)
            if level == OFF:
                continue
            if level is not None and not r.is_valid:
                r.severity = level
            kept.append(r)
        return kept

    def get_validation_summary(self, report: ValidationReport) -> str:
        """A human-readable summary: verdict, counts, then each finding with its fix."""
        counts = report.counts()
        verdict = "PASSED" if report.overall_valid else "FAILED"
        env = report.environment or "unspecified"
        shown = ", ".join(f"{counts[s]} {s}" for s in SEVERITIES)
        lines = [
            f"Validation of {report.config_name!r} (environment: {env}): {verdict} - {shown} "
            f"[{report.rules_run} rules, {report.duration_ms:.2f} ms]"
        ]
        for r in report.failures:
            lines.append(f"  {r.severity.upper():8} {printable(r.message)} [{r.rule_id}]")
            if r.suggested_fix:
                lines.append(f"           fix: {printable(r.suggested_fix)}")
        return "\n".join(lines)


def _only_results(rule: ValidationRule, found: Any) -> list[ValidationResult]:
    """Accept what a custom rule returned; anything that is not a result is a rule bug.

    So is a result with a severity outside SEVERITIES (built directly rather than by
    ``create_result``): ``"fatal"`` or ``"ERROR"`` would never block, and the config it
    condemns would go live without a word."""
    if isinstance(found, ValidationResult):
        found = [found]
    garbage = "returned something other than a list of ValidationResult"
    try:
        items = list(found)
    except TypeError:
        return [rule_crash(rule, TypeError(), garbage)]
    if not all(isinstance(r, ValidationResult) for r in items):
        return [rule_crash(rule, TypeError(), garbage)]
    for r in items:
        if not (isinstance(r.severity, str) and r.severity in SEVERITY_RANK):
            shown = repr(r.severity)[:40] if isinstance(r.severity, str) else "a non-string"
            return [
                rule_crash(
                    rule,
                    ValueError(),
                    f"returned a result with severity {shown} (expected one of "
                    f"{', '.join(SEVERITIES)})",
                )
            ]
    return items


def _unusable(config: Any) -> list[ValidationResult]:
    """A critical ``structure.limits`` result for each top-level section of ``config``
    that breaks a limit every activation enforces (:func:`cfgcore.config.files.tree_problem`:
    nesting, 64-bit integers, string keys, finite floats, no bytes, sets or complex
    numbers): the first problem of each section, by its key path.

    The same function judges files, transformed layers and ``set_active_config``, so
    validation cannot call "valid" a tree activation refuses, and both name the same
    key path. (It only checked integers: NaN or an ``int`` key in a section the schema
    does not type passed validation and was then refused by activation.)
    """
    from cfgcore.config.files import tree_problem

    if isinstance(config, Mapping) and all(isinstance(k, str) for k in config):
        # Section by section, so a NaN in one section does not hide one in another.
        # (Any mapping: set_active_config copies one into a dict and judges that.)
        found = [tree_problem(value, (key,)) for key, value in config.items()]
    elif isinstance(config, Mapping):
        found = [tree_problem(dict(config))]
    else:
        found = [tree_problem(config)]
    return [
        ValidationResult(
            rule_id="structure.limits",
            severity="critical",
            message=f"{path}: {message}" if path else message,
            key_path=path,
            suggested_fix=f"Use a value that fits at {path or 'the top level'}",
        )
        for path, message in filter(None, found)
    ]
