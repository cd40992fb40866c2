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


__all__ = ["InteropError"]
