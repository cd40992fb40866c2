"""The validation gate: the one place that decides what "valid" means for an activation.

Every activation of the configuration manager (load, reload, update, profile switch,
``set_active_config``) passes the complete new tree through :func:`blocking_problems`.
With :mod:`cfgcore.validation_engine` installed that is the full rule set (the same
report ``cfgcore validate`` prints); without it, a type check against the previous
version. Problems name the file and line that set the key (from provenance).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cfgcore.config.environ import with_refs
from cfgcore.config.files import Layer
from cfgcore.config.provenance import explain
from cfgcore.config.state import ConfigSnapshot
from cfgcore.config.tree import diff_trees, type_compatible
from cfgcore.errors import Problem

__all__ = ["FallbackReport", "blocking_problems", "msgspec_path", "problem", "report"]

log = logging.getLogger("cfgcore.manager")


class FallbackReport:
    """Stand-in for cfgcore.validation_engine's report when that module is absent."""

    def __init__(self, problems: list[Problem]) -> None:
        self.blocking = problems
        self.results = problems
        self.overall_valid = not problems


def validation_engine() -> Callable[..., Any] | None:
    try:
        from cfgcore.validation_engine import validate_configuration
    except ImportError:
        return None
    return validate_configuration  # type: ignore[no-any-return]


def blocking_problems(
    config: Mapping[str, Any],
    env: str,
    previous: ConfigSnapshot,
    layers: Sequence[Layer] = (),
    refs: Mapping[tuple[Any, ...], str] | None = None,
) -> list[Problem]:
    """Blocking problems of ``config``: the validation engine's, or the type fallback's."""
    engine = validation_engine()
    if engine is not None:
        view = with_refs(config, refs or {})
        try:
            found = engine(view, env)
        except Exception as exc:
            # A validator that crashes cannot vouch for the config: block, loudly.
            log.exception("validation engine failed")
            return [Problem("", f"validation engine failed: {type(exc).__name__}: {exc}")]
        return [
            problem(
                r.key_path,
                _strip_prefix(r.message, f"{r.key_path}: ")
                + (f" (fix: {r.suggested_fix})" if r.suggested_fix else ""),
                layers,
                config,
            )
            for r in found.blocking
        ]
    if not previous.version:
        return []
    return [
        problem(path, f"expected {type(old).__name__}, got {type(new).__name__}", layers, config)
        for path, old, new in diff_trees(previous.config, config)
        if old is not None and new is not None and not type_compatible(old, new)
    ]


def report(snap: ConfigSnapshot, config: Mapping[str, Any] | None = None) -> Any:
    """The validation report of ``config`` (default: ``snap``'s own tree)."""
    target = snap.config if config is None else config
    engine = validation_engine()
    if engine is not None:
        return engine(with_refs(target, snap.refs if config is None else {}), snap.environment)
    refs = snap.refs if config is None else None
    return FallbackReport(blocking_problems(target, snap.environment, snap, snap.layers, refs))


def problem(
    key: str, message: str, layers: Sequence[Layer], config: Mapping[str, Any] | None
) -> Problem:
    """A :class:`Problem` naming the file and line that set ``key``, as far as the
    layers know it."""
    file = line = None
    try:
        prov = explain(list(layers), key, config if config is not None else {})
        if prov.winner is not None:
            file, line = prov.winner.file, prov.winner.line
            if file is None and prov.winner.source:
                file = f"<{prov.winner.source}>"
            if prov.winner.env_var:
                message = f"{message} (set by environment variable {prov.winner.env_var})"
    except Exception:
        pass
    return Problem(path=str(key or ""), message=message, file=file, line=line)


def msgspec_path(exc: Exception) -> str:
    """``"... - at `$.a.b[0]`"`` -> ``"a.b.0"`` (msgspec names the failing path so)."""
    m = re.search(r"at `\$\.?([^`]*)`", str(exc))
    if not m:
        return ""
    return re.sub(r"\[(\d+)\]", r".\1", m.group(1)).strip(".")


def _strip_prefix(text: str, prefix: str) -> str:
    return text[len(prefix) :] if prefix and text.startswith(prefix) else text
