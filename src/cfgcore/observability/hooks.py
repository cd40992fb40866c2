"""Hooks and exposure callbacks on an engine's evaluations.

Hooks have OpenFeature's shape: an object with any of ``before``, ``after``, ``error``
and ``finally_after`` (subclass :class:`Hook` or not):

>>> class Audit(Hook):
...     def before(self, hook_context, hints):
...         return {"tenant": "acme"}  # extra attributes, merged over the context
...     def after(self, hook_context, details, hints):
...         print(hook_context.flag_key, details.variant, details.reason)
>>> remove = engine.add_hook(Audit())                                # doctest: +SKIP
>>> engine.is_enabled("new_checkout", {"user_id": "u1"})           # doctest: +SKIP
new_checkout on TARGETING_MATCH
True

The stages run as OpenFeature runs them: ``before`` in registration order (each may
return a mapping of attributes merged over the context, and later hooks see the merged
attributes), then the evaluation, then ``after`` in reverse order, or ``error`` (in
reverse order) when the flag was not found or the default's type did not match, and
``finally_after`` always. A hook never breaks an evaluation: an exception in ``before``
or ``after`` is logged, runs the ``error`` hooks and returns the caller's default
(False for ``is_enabled``, None for ``variant``); an exception in ``error`` or
``finally_after`` is logged. Hooks see single-flag evaluations (``is_enabled``,
``variant``, ``value``, ``evaluate``, and the seed API's calls); ``evaluate_all`` is a
bulk read and runs no hook.

Exposure callbacks (``engine.on_exposure(callback)``) are called as
``callback(flag_key, variant, context)`` when a single-flag evaluation was decided by a
rollout, a split or a gate (reason ``SPLIT``), once per (flag, unit, variant), where the
unit is the value of the attribute the flag bucketed by (as text). The dedup set holds
at most :data:`EXPOSURE_DEDUP_LIMIT` triples per engine (about 15 MB at most) and starts
over when full, so a unit may then be reported again; two threads serving the same
triple at the same moment may both report it. A callback's exception is counted in
``engine.exposure_errors`` (the first one per engine is logged).

None of this costs anything until a hook, a callback or debug mode is added: the
engine's evaluation methods test one attribute and take the compiled path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from itertools import islice
from typing import Any

from cfgcore.details import ErrorCode, EvaluationDetails, Reason, key_text
from cfgcore.observability import debug

__all__ = ["EXPOSURE_DEDUP_LIMIT", "EvaluationError", "Hook", "HookContext", "Observer"]

log = logging.getLogger("cfgcore.hooks")

#: At most this many (flag, unit, variant) triples are remembered per engine.
EXPOSURE_DEDUP_LIMIT = 100_000

#: A failing hook's traceback is logged at most once per this many seconds for each hook
#: and stage; the failures in between are counted (``engine.hook_errors``) and the next
#: line says how many. A hook that raises on every evaluation logged a traceback for each
#: one: ~180 us and ~450 bytes of log per call, which took a busy service down.
HOOK_LOG_INTERVAL = 60.0

# The single-flag methods by the kind the evaluators' _observe takes.
METHODS = ("is_enabled", "variant", "value", "evaluate")


class HookContext:
    """What a hook knows about the evaluation in progress.

    ``attrs`` is a copy of the context's attributes (with what ``before`` hooks merged so
    far); ``default_value`` is the caller's default (False for ``is_enabled``).
    """

    __slots__ = ("flag_key", "default_value", "attrs", "snapshot_version", "method")

    def __init__(
        self,
        flag_key: str,
        default_value: Any,
        attrs: dict[str, Any],
        snapshot_version: int,
        method: str = "evaluate",
    ) -> None:
        self.flag_key = flag_key
        self.default_value = default_value
        self.attrs = attrs
        self.snapshot_version = snapshot_version
        self.method = method

    def __repr__(self) -> str:
        return (
            f"HookContext(flag_key={self.flag_key!r}, method={self.method!r}, "
            f"snapshot_version={self.snapshot_version})"
        )


class Hook:
    """A hook with every stage a no-op: subclass it and override the stages you need
    (any object with some of these methods works as well)."""

    def before(self, hook_context: HookContext, hints: dict[str, Any]) -> Mapping[str, Any] | None:
        """Before the evaluation; may return attributes to merge over the context."""
        return None

    def after(
        self, hook_context: HookContext, details: EvaluationDetails, hints: dict[str, Any]
    ) -> None:
        """After a successful evaluation."""

    def error(self, hook_context: HookContext, exception: Exception, hints: dict[str, Any]) -> None:
        """When the evaluation failed (flag not found, type mismatch) or a hook raised."""

    def finally_after(
        self, hook_context: HookContext, details: EvaluationDetails | None, hints: dict[str, Any]
    ) -> None:
        """Always, last (``details`` is None when a hook failed before the evaluation)."""


class EvaluationError(Exception):
    """What ``error`` hooks receive when the evaluation itself failed; ``error_code`` is
    ``FLAG_NOT_FOUND`` or ``TYPE_MISMATCH`` and ``details`` the answer given."""

    def __init__(self, details: EvaluationDetails) -> None:
        super().__init__(f"{details.flag_key}: {details.error_code}: {details.error_message}")
        self.error_code = details.error_code
        self.details = details


def _attrs(ctx: Any) -> dict[str, Any]:
    """A copy of a context's attributes ({} for None, or anything that is not one). A
    mapping that is no dict is copied as ``dict()`` copies it (``keys()``, then each
    value), for at most ``len()`` keys: one whose iteration never ends (an endless
    generator as ``__iter__``) is read no further."""
    try:
        attrs = getattr(ctx, "attrs", None) if not isinstance(ctx, dict) else ctx
        if isinstance(attrs, dict):
            return dict(attrs)
        if not isinstance(ctx, Mapping):
            return {}
        return {key: ctx[key] for key in islice(ctx.keys(), len(ctx))}
    except Exception:  # a hostile mapping: no readable attributes
        return {}


class Observer:
    """An engine's observed evaluation path: hooks, exposure callbacks, debug lines.

    The engine sets it as its ``_observer`` while any of them is on; ``configure``
    replaces the tuples in single assignments, so a concurrent evaluation sees the old
    set or the new one.
    """

    __slots__ = ("hooks", "exposure_callbacks", "debug", "_seen", "exposures",
                 "exposure_errors", "hook_errors", "_hook_logged")  # fmt: skip

    def __init__(self) -> None:
        self.hooks: tuple[Any, ...] = ()
        self.exposure_callbacks: tuple[Callable[[str, str, Any], Any], ...] = ()
        self.debug = False
        self._seen: set[tuple[str, str, str]] = set()
        self.exposures = 0
        self.exposure_errors = 0
        self.hook_errors = 0
        # (id(hook), stage) -> [when its traceback was last logged, failures not logged]
        self._hook_logged: dict[tuple[int, str], list[float]] = {}

    def configure(
        self, hooks: tuple[Any, ...], callbacks: tuple[Callable[..., Any], ...], debug_on: bool
    ) -> None:
        self.hooks = hooks
        self.exposure_callbacks = callbacks
        self.debug = debug_on

    @property
    def active(self) -> bool:
        return bool(self.hooks or self.exposure_callbacks or self.debug)

    # -- evaluation ----------------------------------------------------------------
    def evaluate(self, snap: Any, kind: int, key: Any, ctx: Any, default: Any) -> Any:
        """``is_enabled``/``variant``/``value``/``evaluate`` (``kind`` 0-3) of ``key``."""
        if self.hooks:
            return self._hooked(snap, kind, key, ctx, default)
        answer, details, bucket, unit = snap._observe(kind, key, ctx, default)
        self._report(snap, kind, details, bucket, unit, ctx)
        return answer

    def evaluate_all(self, snap: Any, ctx: Any) -> dict[str, Any]:
        """``evaluate_all``: no hooks, no exposures; one debug line."""
        values: dict[str, Any] = snap.evaluate_all(ctx)
        if self.debug:
            debug.log_all(len(values), snap.version, ctx, snap)
        return values

    def _report(self, snap: Any, kind: int, details: Any, bucket: Any, unit: Any, ctx: Any) -> None:
        if self.debug:
            debug.log_evaluation(METHODS[kind], details, bucket, ctx, snap)
        if unit is not None and self.exposure_callbacks and details.error_code is None:
            self._expose(details.flag_key, details.variant, unit, ctx)

    def _expose(self, flag: str, variant: str, unit: str, ctx: Any) -> None:
        seen = self._seen
        key = (flag, unit, variant)
        if key in seen:
            return
        if len(seen) >= EXPOSURE_DEDUP_LIMIT:
            seen.clear()  # bounded: start over (consumers dedup by unit anyway)
        seen.add(key)
        self.exposures += 1
        for callback in self.exposure_callbacks:
            try:
                callback(flag, variant, ctx)
            except Exception:
                self.exposure_errors += 1
                if self.exposure_errors == 1:
                    log.exception("exposure callback %r failed (further failures are counted)",
                                  callback)  # fmt: skip

    # -- hooks ---------------------------------------------------------------------
    def _hooked(self, snap: Any, kind: int, key: Any, ctx: Any, default: Any) -> Any:
        hooks = self.hooks
        hc = HookContext(
            key_text(key), False if kind == 0 else default, _attrs(ctx), snap.version, METHODS[kind]
        )
        hints: dict[str, Any] = {}
        details: EvaluationDetails | None = None
        current: Any = None  # the hook running, for the log line if it raises
        stage = "before"
        try:
            for current in hooks:
                before = getattr(current, "before", None)
                if before is not None:
                    extra = before(hc, hints)
                    if extra:
                        hc.attrs = {**hc.attrs, **dict(extra)}
                        ctx = dict(hc.attrs)  # evaluated with the merged attributes
            current, stage = None, "evaluation"
            answer, details, bucket, unit = snap._observe(kind, key, ctx, default)
            self._report(snap, kind, details, bucket, unit, ctx)
            if details.error_code is not None:
                self._stage(hooks, "error", hc, EvaluationError(details), hints)
            else:
                stage = "after"
                for current in reversed(hooks):
                    after = getattr(current, "after", None)
                    if after is not None:
                        after(hc, details, hints)
        except Exception as exc:
            self._hook_failed(
                current, stage, "hook failed evaluating %r (%r, %s stage); the caller gets "
                "its default", hc.flag_key, current, stage,
            )  # fmt: skip
            self._stage(hooks, "error", hc, exc, hints)
            details = EvaluationDetails(
                flag_key=hc.flag_key,
                value=hc.default_value,
                variant=None,
                reason=Reason.ERROR,
                error_code=ErrorCode.GENERAL,
                error_message=f"hook failed: {type(exc).__name__}",
                snapshot_version=snap.version,
            )
            answer = details if kind == 3 else None if kind == 1 else hc.default_value
        self._stage(hooks, "finally_after", hc, details, hints)
        return answer

    def _stage(self, hooks: tuple[Any, ...], stage: str, hc: HookContext, arg: Any,
               hints: dict[str, Any]) -> None:  # fmt: skip
        """The error or finally stage: every hook, in reverse order; failures logged."""
        for hook in reversed(hooks):
            try:
                fn = getattr(hook, stage, None)
                if fn is not None:
                    fn(hc, arg, hints)
            except Exception:
                self._hook_failed(hook, stage, "hook %r failed in its %s stage", hook, stage)

    def _hook_failed(self, hook: Any, stage: str, message: str, *args: Any) -> None:
        """Count a hook's failure and log ``message % args`` with its traceback, at
        most once per :data:`HOOK_LOG_INTERVAL` for each hook and stage, saying how
        many failures went unlogged since."""
        self.hook_errors += 1
        now = time.monotonic()
        key = (id(hook), stage)
        seen = self._hook_logged.get(key)
        if seen is not None and now - seen[0] < HOOK_LOG_INTERVAL:
            seen[1] += 1
            return
        if len(self._hook_logged) >= 1000:  # hooks added and removed by the thousand
            self._hook_logged.clear()
        unlogged = int(seen[1]) if seen is not None else 0
        self._hook_logged[key] = [now, 0]
        if unlogged:
            message += f" ({unlogged} more failures of this hook and stage since the last line)"
        else:
            message += " (logged at most once a minute; engine.hook_errors counts them all)"
        log.exception(message, *args)
