"""Import flags from other flag systems into cfgcore snapshots.

Each importer lowers its source format into an ordinary :class:`cfgcore.snapshot.Snapshot`
(the same flat tables, evaluated by the same compiled core) and the source system's
exact bucketing becomes a rule-level :class:`cfgcore.snapshot.Hashing` scheme, so every
user keeps the variant they had:

* :mod:`cfgcore.interop.unleash` -- the Unleash client features API payload;
* :mod:`cfgcore.interop.flagd` -- flagd flag definitions (JSONLogic targeting);
* :mod:`cfgcore.interop.growthbook` -- GrowthBook features JSON.

Each module has ``to_snapshot(...)`` (raises :class:`InteropError` naming the flag
and the construct it cannot lower) and ``context(...)`` (maps the source's
evaluation context to cfgcore attributes). On the imported flags
``engine.is_enabled(name, ctx)`` answers the source's enabled/on question and
``engine.evaluate(name, ctx)`` gives the served variant and its value, both from
one evaluation.
"""

from __future__ import annotations

from cfgcore.errors import Problem, SnapshotError


class InteropError(SnapshotError):
    """A source flag set could not be lowered: every problem names the flag and the construct."""


def problems_error(problems: list[Problem], source: str | None) -> InteropError:
    return InteropError(problems, file=source)


#: What lowering code raises when a value deep in a source document has the wrong type
#: (a string where a list belongs, null where an object does), is out of range (a
#: rollout of 1e400) or is nested past the stack. The importers catch these around each
#: flag, so the flag is refused with its path (:func:`malformed` says why) rather than
#: the whole import ending in a traceback.
MALFORMED = (
    AttributeError, TypeError, KeyError, IndexError, ValueError, OverflowError, RecursionError,
)  # fmt: skip


def malformed(exc: BaseException) -> str:
    """The reason to give for a flag whose lowering raised one of :data:`MALFORMED`."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, KeyError):
        return f"malformed: missing key {str(exc)[:60]}"
    if isinstance(exc, OverflowError):
        return f"malformed: a number out of range ({str(exc)[:80]})"
    return f"malformed: a value of the wrong type ({type(exc).__name__}: {str(exc)[:80]})"


def type_name(value: object) -> str:
    """A JSON-ish name for ``value``'s type, for "expected X, got Y" messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


__all__ = ["MALFORMED", "InteropError", "malformed", "type_name"]
