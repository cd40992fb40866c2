"""Rules that look at keys anywhere in the tree, and the single walk that feeds them.

Security checks (secrets, weak algorithms, CORS, debug, http URLs) and rollout
percentages are not tied to one section: they look at every key. Instead of each
rule walking the tree, the validator walks it once and hands each (key, value) pair
to the rules that declared interest in that key name; the key -> rules decision is
cached, so the per-node cost is one dict lookup for keys nobody cares about.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cfgcore.validation.core import ValidationResult, ValidationRule, join_path

__all__ = ["MAX_DEPTH", "TreeRule", "TreeWalker"]

# Deeper trees are not real configuration; stop before Python's recursion limit.
MAX_DEPTH = 200


class TreeRule(ValidationRule):
    """A rule fed by the shared tree walk.

    Override :meth:`wants_key` (called once per distinct key name, lower-cased with
    ``-`` folded to ``_``) and :meth:`visit`; set ``wants_urls`` to also get every
    string value containing ``://`` through :meth:`visit_url`. Used on its own,
    :meth:`validate` runs a walk with just this rule.
    """

    wants_urls = False

    def wants_key(self, key: str) -> bool:
        """Whether :meth:`visit` should see values stored under this key name."""
        return False

    def visit(
        self,
        path: str,
        key: str,
        value: Any,
        parent: Mapping[Any, Any],
        parent_key: str,
        ctx: dict[str, Any],
        out: list[ValidationResult],
    ) -> None:
        """Inspect one (key, value) pair; append findings to ``out``."""

    def visit_url(
        self, path: str, key: str, value: str, ctx: dict[str, Any], out: list[ValidationResult]
    ) -> None:
        """Inspect one string value that contains ``://``."""

    def validate(self, config: Mapping[str, Any], context: Any = None) -> list[ValidationResult]:
        out: list[ValidationResult] = []
        ctx = dict(context) if isinstance(context, Mapping) else {}
        ctx.setdefault("environment", None)
        TreeWalker([self]).walk(config, ctx, out)
        return out


def _norm(key: str) -> str:
    return key.lower().replace("-", "_")


class TreeWalker:
    """One depth-first pass over a config tree, dispatching to :class:`TreeRule` s.

    A rule that raises is reported (once) as an error result under its own id and
    skipped for the rest of the walk: validation must never crash on odd data.
    """

    __slots__ = ("rules", "url_rules", "_by_key")

    def __init__(self, rules: Sequence[TreeRule]) -> None:
        self.rules = tuple(rules)
        self.url_rules = tuple(r for r in self.rules if r.wants_urls)
        self._by_key: dict[Any, tuple[TreeRule, ...]] = {}

    def _rules_for(
        self, key: Any, broken: set[str], out: list[ValidationResult]
    ) -> tuple[TreeRule, ...]:
        found = self._by_key.get(key)
        if found is None:
            name = _norm(key if type(key) is str else str(key))
            wanted = []
            failed = False
            for r in self.rules:
                try:
                    if r.wants_key(name):
                        wanted.append(r)
                except Exception as exc:  # a custom rule's bug: reported, not raised
                    if r.rule_id not in broken:
                        broken.add(r.rule_id)
                        out.append(rule_crash(r, exc))
                    failed = True
            found = tuple(wanted)
            if failed:  # not cached: every later walk must report the broken rule too
                return found
            if len(self._by_key) > 16384:  # arbitrary user keys must not grow this forever
                self._by_key.clear()
            try:
                self._by_key[key] = found
            except TypeError:
                pass
        return found

    def walk(self, config: Any, ctx: dict[str, Any], out: list[ValidationResult]) -> None:
        broken: set[str] = set()
        self._node(config, "", "", ctx, out, 0, set(), broken)

    def _node(
        self,
        node: Any,
        path: str,
        node_key: str,
        ctx: dict[str, Any],
        out: list[ValidationResult],
        depth: int,
        active: set[int],
        broken: set[str],
    ) -> None:
        if depth > MAX_DEPTH:
            out.append(
                ValidationResult(
                    "structure.depth",
                    "warning",
                    f"{path}: nested deeper than {MAX_DEPTH} levels; not checked further",
                    path,
                    "Flatten the configuration",
                )
            )
            return
        ident = id(node)
        if ident in active:  # a YAML alias that contains itself
            return
        active.add(ident)
        url_rules = self.url_rules
        rules_for = self._rules_for
        if isinstance(node, dict) or isinstance(node, Mapping):
            for key, value in node.items():
                skey = key if type(key) is str else str(key)
                # Paths are built only when a rule or a descent needs one: most leaves
                # interest no rule, and building every path dominated the walk.
                child = None
                for rule in rules_for(key, broken, out):
                    if rule.rule_id not in broken:
                        child = child or join_path(path, skey)
                        self._call(
                            rule,
                            broken,
                            out,
                            rule.visit,
                            child,
                            skey,
                            value,
                            node,
                            node_key,
                            ctx,
                            out,
                        )
                if isinstance(value, str):  # a subclass too: its URL is checked as well
                    if url_rules and "://" in value:
                        child = child or join_path(path, skey)
                        for rule in url_rules:
                            if rule.rule_id not in broken:
                                self._call(
                                    rule, broken, out, rule.visit_url, child, skey, value, ctx, out
                                )
                elif isinstance(value, (dict, list, tuple)) or isinstance(value, Mapping):
                    child = child or join_path(path, skey)
                    self._node(value, child, skey, ctx, out, depth + 1, active, broken)
        elif isinstance(node, (list, tuple)):
            for i, value in enumerate(node):
                if isinstance(value, str):  # a subclass too: its URL is checked as well
                    if url_rules and "://" in value:
                        child = f"{path}.{i}"
                        for rule in url_rules:
                            if rule.rule_id not in broken:
                                self._call(
                                    rule,
                                    broken,
                                    out,
                                    rule.visit_url,
                                    child,
                                    node_key,
                                    value,
                                    ctx,
                                    out,
                                )
                elif isinstance(value, (dict, list, tuple)) or isinstance(value, Mapping):
                    self._node(value, f"{path}.{i}", node_key, ctx, out, depth + 1, active, broken)
        active.discard(ident)

    @staticmethod
    def _call(
        rule: TreeRule, broken: set[str], out: list[ValidationResult], fn: Any, *args: Any
    ) -> None:
        try:
            fn(*args)
        except Exception as exc:  # a rule bug must not take validation down
            broken.add(rule.rule_id)
            out.append(rule_crash(rule, exc))


def rule_crash(
    rule: ValidationRule, exc: BaseException, detail: str | None = None
) -> ValidationResult:
    """The result that stands in for a rule that raised (or returned garbage: ``detail``
    says what, in cfgcore's own words).

    It is an error, so activation is refused: a rule that could not run cannot vouch
    for the config. Only the exception type is shown; its text may quote config values.
    """
    what = detail or f"failed with {type(exc).__name__}"
    return ValidationResult(
        rule_id=rule.rule_id,
        severity="error",
        message=f"rule {rule.rule_id!r} {what}; the config is unchecked",
        key_path="",
        suggested_fix=f"Fix or disable rule {rule.rule_id!r}",
    )
