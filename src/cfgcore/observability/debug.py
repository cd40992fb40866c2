"""Debug mode: every engine evaluation logs one line explaining it.

>>> import logging, cfgcore
>>> cfgcore.enable_debug_mode()                                       # doctest: +SKIP
>>> engine.is_enabled("new_checkout", {"user_id": "u1", "api_token": "sk_live_x"})  # doctest: +SKIP
DEBUG cfgcore.evaluation: is_enabled new_checkout -> variant=on reason=SPLIT rule=0
bucket=4217 version=3 context={'user_id': 'u1', 'api_token': ***redacted***}
>>> cfgcore.disable_debug_mode()                                      # doctest: +SKIP

While it is on, the ``cfgcore`` logger is at DEBUG (a stderr handler is added if no
handler would print the lines) and each ``is_enabled``, ``variant``, ``value`` and
``evaluate`` on an :class:`~cfgcore.engine.Engine` (and the seed API's calls) logs, on
the ``cfgcore.evaluation`` logger: the call, the flag, the variant, the reason, the
deciding rule's index, the bucket when a rollout or split decided, the snapshot version,
and the context's attributes. Attribute values are masked as
:func:`cfgcore.runtime.redaction.redact` masks configuration values, and every value of
an attribute whose name looks secret (``api_token``, ``password``...) is masked whatever
its type. ``evaluate_all`` logs one line (how many flags, the version, the context).

Off (the default), it costs nothing: it uses the same switch as hooks, one attribute
test per evaluation.
"""

from __future__ import annotations

import logging
import reprlib
import sys
import threading
from typing import Any

from cfgcore import _counting

__all__ = ["disable_debug_mode", "enable_debug_mode", "enabled"]

log = logging.getLogger("cfgcore.evaluation")
_ROOT = logging.getLogger("cfgcore")
_LOCK = threading.Lock()
_ENABLED = False
_SAVED_LEVEL = logging.NOTSET
_HANDLER: logging.Handler | None = None
_REPR = reprlib.Repr()
_REPR.maxstring = 80
_REPR.maxother = 80


def enabled() -> bool:
    """Whether debug mode is on."""
    return _ENABLED


def enable_debug_mode() -> None:
    """Log one line per engine evaluation, explaining it (see the module docstring)."""
    global _ENABLED, _SAVED_LEVEL, _HANDLER
    with _LOCK:
        if not _ENABLED:
            _SAVED_LEVEL = _ROOT.level
            _ROOT.setLevel(logging.DEBUG)
            if not _ROOT.hasHandlers():  # nobody configured logging: show the lines anyway
                _HANDLER = logging.StreamHandler(sys.stderr)
                _HANDLER.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
                _ROOT.addHandler(_HANDLER)
            _ENABLED = True
    _refresh_engines()


def disable_debug_mode() -> None:
    """Stop the per-evaluation lines; the ``cfgcore`` logger gets its level back."""
    global _ENABLED, _HANDLER
    with _LOCK:
        if _ENABLED:
            _ROOT.setLevel(_SAVED_LEVEL)
            if _HANDLER is not None:
                _ROOT.removeHandler(_HANDLER)
                _HANDLER = None
            _ENABLED = False
    _refresh_engines()


def _refresh_engines() -> None:
    for engine in _counting.engines():
        refresh = getattr(engine, "_refresh_observer", None)
        if refresh is not None:
            refresh()


# -- the lines -------------------------------------------------------------------------


def _safe_repr(value: Any) -> str:
    try:
        return _REPR.repr(value)
    except Exception:  # a value whose __repr__ raises
        return f"<unrepresentable {type(value).__name__}>"


def context_text(ctx: Any) -> str:
    """The context's attributes for a log line, secrets masked; never raises."""
    from cfgcore.observability.hooks import _attrs
    from cfgcore.runtime.redaction import REDACTED, is_secret_key, redact

    if ctx is not None and not isinstance(ctx, dict) and not hasattr(ctx, "attrs"):
        try:
            from collections.abc import Mapping

            if not isinstance(ctx, Mapping):
                return f"<not a context: {type(ctx).__name__}>"
        except Exception:
            return "<not a context>"
    parts = []
    for name, value in _attrs(ctx).items():
        try:
            text = str(name)
            shown = (
                REDACTED if value not in (None, "") and is_secret_key(text) else redact(text, value)
            )
        except Exception:
            text, shown = _safe_repr(name), REDACTED  # cannot judge it: mask it
        parts.append(f"{_safe_repr(text)}: {shown if shown is REDACTED else _safe_repr(shown)}")
    return "{" + ", ".join(parts) + "}"


def log_evaluation(method: str, details: Any, bucket: int | None, ctx: Any) -> None:
    """One line for one single-flag evaluation."""
    if not log.isEnabledFor(logging.DEBUG):
        return
    try:
        rule = "-" if details.rule_index is None else details.rule_index
        extra = "" if bucket is None else f" bucket={bucket}"
        if details.error_code:
            extra += f" error={details.error_code}"
        log.debug(
            "%s %s -> variant=%s reason=%s rule=%s%s version=%s context=%s",
            method, details.flag_key, details.variant, details.reason, rule, extra,
            details.snapshot_version, context_text(ctx),
        )  # fmt: skip
    except Exception:  # the explanation must never break the evaluation
        log.debug("%s: could not describe an evaluation", method)


def log_all(count: int, version: int, ctx: Any) -> None:
    """One line for one ``evaluate_all``."""
    if log.isEnabledFor(logging.DEBUG):
        try:
            log.debug("evaluate_all -> %d flags version=%s context=%s", count, version,
                      context_text(ctx))  # fmt: skip
        except Exception:
            log.debug("evaluate_all: could not describe an evaluation")
