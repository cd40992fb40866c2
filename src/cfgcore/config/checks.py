"""The validation gate: the one place that decides what "valid" means for an activation.

Every activation of the configuration manager (load, reload, update, profile switch,
``set_active_config``) passes the complete new tree through :func:`blocking_problems`.
With :mod:`cfgcore.validation_engine` installed that is the full rule set (the same
report ``cfgcore validate`` prints); without it, a type check against the previous
version. Problems name the file and line that set the key (from provenance).

A value that came from an environment variable (a ``${VAR}`` reference, a
``CFGCORE__`` override, a decrypted secret) is judged twice: as the reference, so the
security rules see that a secret is not written in the file, and as the value it
resolved to, so a port of ``abc`` or ``70000`` from the environment is refused like
the same value in a file (:func:`resolved_findings`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cfgcore.config.environ import parse_env_value, ref_names, with_refs
from cfgcore.config.files import Layer
from cfgcore.config.provenance import explain
from cfgcore.config.state import ConfigSnapshot
from cfgcore.config.tree import diff_trees, get_path, parse_path, type_compatible
from cfgcore.errors import Problem

__all__ = [
    "FallbackReport",
    "blocking_problems",
    "empty_secrets_of",
    "problem",
    "report",
    "resolved_findings",
    "shown_ref",
]

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
            full = engine(view, env)
            blocking = list(full.blocking)
            if refs:
                blocking += [
                    r
                    for r in resolved_findings(lambda tree: engine(tree, env), config, refs, layers)
                    if r.blocking and not _reported(r, blocking)
                ]
        except Exception as exc:
            # A validator that crashes cannot vouch for the config: block, loudly.
            log.exception("validation engine failed")
            return [Problem("", f"validation engine failed: {type(exc).__name__}: {exc}")]
        if not blocking:
            _log_new_typos(full, previous, layers, config)
        return [
            problem(
                r.key_path,
                _strip_prefix(r.message, f"{r.key_path}: ")
                + (f" (fix: {r.suggested_fix})" if r.suggested_fix else ""),
                layers,
                config,
            )
            for r in blocking
        ]
    if not previous.version:
        return []
    return [
        problem(path, f"expected {type(old).__name__}, got {type(new).__name__}", layers, config)
        for path, old, new in diff_trees(previous.config, config)
        if old is not None and new is not None and not type_compatible(old, new)
    ]


_ABSENT = object()


def _log_new_typos(
    report: Any, previous: ConfigSnapshot, layers: Sequence[Layer], config: Mapping[str, Any]
) -> None:
    """Log a WARNING for each key that looks like a misspelt known key (the validation
    warning ``structure.unknown_key``, which has a did-you-mean) and that the live
    configuration did not hold: ``update_config("anomaly_detection.threshhold", 0.9)``
    went live, returned True and said nothing, leaving the threshold as it was. Keys
    already live are not logged again on every reload."""
    for r in getattr(report, "results", ()):
        if r.rule_id != "structure.unknown_key" or r.is_valid or not r.key_path:
            continue
        path = parse_path(r.key_path)
        if previous.version and get_path(previous.config, path, _ABSENT) is not _ABSENT:
            continue
        fix = f" (fix: {r.suggested_fix})" if r.suggested_fix else ""
        message = _strip_prefix(r.message, f"{r.key_path}: ") + fix
        log.warning("%s", problem(r.key_path, message, layers, config))


def report(snap: ConfigSnapshot, config: Mapping[str, Any] | None = None) -> Any:
    """The validation report of ``config`` (default: ``snap``'s own tree)."""
    target = snap.config if config is None else config
    engine = validation_engine()
    if engine is not None:
        env = snap.environment
        if config is not None or not snap.refs:
            return engine(target, env)
        found = engine(with_refs(target, snap.refs), env)
        extra = resolved_findings(lambda tree: engine(tree, env), target, snap.refs, snap.layers)
        found.results.extend(r for r in extra if not _reported(r, found.results))
        return found
    refs = snap.refs if config is None else None
    return FallbackReport(blocking_problems(target, snap.environment, snap, snap.layers, refs))


def empty_secrets_of(
    snap: ConfigSnapshot, environ: Mapping[str, str] | None = None
) -> list[tuple[str, str | None]]:
    """``(key path, reference or None)`` of each secret of a built snapshot that is
    empty (:func:`cfgcore.validation.security.empty_secrets`): a secret-named key, or
    a value read from a secret variable (``CFGCORE_SECRET_VARS`` in ``environ`` names
    more). Activation accepts them (``${VAR:-}`` means "may be unset"); ``cfgcore
    setup`` and ``cfgcore validate`` report them."""
    from cfgcore.runtime.secrets import is_secret_variable
    from cfgcore.validation.security import empty_secrets

    def secret_reference(ref: str) -> bool:
        return any(is_secret_variable(name, environ) for name in ref_names([ref]))

    return empty_secrets(snap.config, snap.refs, secret_reference)


def resolved_findings(
    validate: Callable[[Mapping[str, Any]], Any],
    config: Mapping[str, Any],
    refs: Mapping[tuple[Any, ...], str],
    layers: Sequence[Layer] = (),
) -> list[Any]:
    """The failed results of ``validate(config)`` (a report) at or below a path whose
    value came from the environment, each saying which reference supplied it.

    ``config`` is the resolved tree; the caller validates the reference view
    (:func:`~cfgcore.config.environ.with_refs`) itself. The security pack is left out:
    it judges how a secret is supplied, which only the reference view can answer (the
    resolved value of ``${DB_PASSWORD}`` is, by design, a literal).
    """
    if not refs:
        return []
    # The validator's own spelling of each path (quoted keys), so results match it.
    by_key = {_dotted(path): (path, ref) for path, ref in refs.items()}
    overridden = {path: var for layer in layers for path, var in layer.env_vars.items()}
    out = []
    for r in validate(config).results:
        if r.is_valid or r.rule_id.startswith("security."):
            continue
        key = r.key_path
        # at the path or below it: a child is `k.x`, or `k["x.y"]` for one holding a dot
        found = next((k for k in by_key if key == k or key.startswith((k + ".", k + '["'))), None)
        if found is None:
            continue
        path, ref = by_key[found]
        var = overridden.get(tuple(path))
        if var is not None:
            note = f"set by environment variable {var}"
        else:
            note = f"from {shown_ref(ref)}"
            if r.rule_id == "structure.type" and key == found and ref.startswith("${"):
                value = get_path(config, tuple(path), None)
                if isinstance(value, str) and not isinstance(parse_env_value(value), str):
                    # `port: ${PORT}` substitutes text; the type_conversion step types it.
                    note += "; substitution gives a string: add the type_conversion transform"
        out.append(dataclasses.replace(r, message=f"{r.message} ({note})"))
    return out


def _dotted(path: tuple[Any, ...]) -> str:
    from cfgcore.validation.core import join_path

    key = ""
    for seg in path:
        key = join_path(key, seg)
    return key


def shown_ref(text: str) -> str:
    """How a message names the reference that supplied a value (never a ciphertext)."""
    if text.startswith("ENC["):
        return "an encrypted value"
    if len(text) <= 60:
        return text
    names = sorted(ref_names([text]))
    return ", ".join("${" + n + "}" for n in names) or "a reference"


def _reported(result: Any, already: Sequence[Any]) -> bool:
    return any(
        r.rule_id == result.rule_id and r.key_path == result.key_path and not r.is_valid
        for r in already
    )


def problem(
    key: str, message: str, layers: Sequence[Layer], config: Mapping[str, Any] | None
) -> Problem:
    """A :class:`Problem` naming the file and line that set ``key``, as far as the
    layers know it."""
    file = line = None
    try:
        # The rendered path read back: a key holding a dot is shown quoted
        # (loggers["uvicorn.access"].level), and split on every dot it named no layer.
        prov = explain(list(layers), parse_path(key), config if config is not None else {})
        if prov.winner is not None:
            file, line = prov.winner.file, prov.winner.line
            if file is None and prov.winner.source:
                file = f"<{prov.winner.source}>"
            if prov.winner.env_var:
                file = file if prov.winner.file else "<environment>"
            if prov.winner.env_var and prov.winner.env_var not in message:
                message = f"{message} (set by environment variable {prov.winner.env_var})"
    except Exception:
        pass
    return Problem(path=str(key or ""), message=message, file=file, line=line)


def _strip_prefix(text: str, prefix: str) -> str:
    return text[len(prefix) :] if prefix and text.startswith(prefix) else text
