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

Nesting: cfgcore evaluates a condition nested at most :data:`MAX_IMPORTED_DEPTH` (33)
levels deep, counting each test and each and/or/not around it. The importers merge
the levels they add themselves (an and inside an and, a not of a not, the negation an
``else`` branch is, moved onto the tests when that makes a condition fit), so about
30 levels of GrowthBook ``$and``/``$or``/``$nor``/``$not`` or flagd ``and``/``or``/``!``
import; a deeper condition is refused naming the flag, the rule (GrowthBook) or the
targeting (flagd), and the levels it needs.
"""

from __future__ import annotations

from typing import Any

from cfgcore._lower import MAX_CONDITION_DEPTH
from cfgcore.errors import Problem, SnapshotError
from cfgcore.snapshot import Condition


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


def flat_condition(cond: Any, _memo: dict[int, Any] | None = None) -> Any:
    """``cond`` (a lowered condition: dicts, lists, typed Conditions) with what lowering
    nests but does not mean merged: an ``all`` inside an ``all`` and an ``any`` inside
    an ``any`` become one, an ``all``/``any`` of one condition that condition, and a
    ``not`` of a ``not`` what it negates. The answers are the same; the nesting the
    compiler counts (MAX_CONDITION_DEPTH) is the source's, not the importer's wrappers
    on top of it. Parts shared between rules stay shared (never copied per use)."""
    memo: dict[int, Any] = {} if _memo is None else _memo
    if not isinstance(cond, dict):
        return cond  # a test, or a typed Condition an importer shares as it is
    hit = memo.get(id(cond))
    if hit is not None:
        return hit[1]
    out: Any = cond
    if len(cond) == 1 and ("all" in cond or "any" in cond):
        ((kind, children),) = cond.items()
        if isinstance(children, list):
            items: list[Any] = []
            for child in children:
                child = flat_condition(child, memo)
                same = isinstance(child, dict) and len(child) == 1
                if same and isinstance(child.get(kind), list):
                    items.extend(child[kind])
                else:
                    items.append(child)
            out = items[0] if len(items) == 1 else {kind: items}
    elif len(cond) == 1 and "not" in cond:
        inner = flat_condition(cond["not"], memo)
        if isinstance(inner, dict) and len(inner) == 1 and "not" in inner:
            out = inner["not"]
        else:
            out = _negated_test(inner)
    memo[id(cond)] = (cond, out)  # keeps cond alive while its id is a key
    return out


def _negated_test(cond: Any) -> Any:
    """``not cond``: an ``exists`` test turned around (one level, as the compiler
    writes ``exists: false``), anything else under a ``not``."""
    if (
        isinstance(cond, dict)
        and set(cond) == {"attr", "exists"}
        and isinstance(cond["exists"], bool)
    ):
        return {"attr": cond["attr"], "exists": not cond["exists"]}
    return {"not": cond}


def condition_height(cond: Any, _memo: dict[int, Any] | None = None) -> int:
    """Levels of a lowered condition as the compiler counts its nesting (a test is one
    level, ``all``/``any``/``not`` one more than their deepest part). A memo given may
    be kept across conditions (parts they share, such as a saved group's test, are
    measured once): it holds each part it measured, so no id in it is reused."""
    memo: dict[int, Any] = {} if _memo is None else _memo
    hit = memo.get(id(cond))
    if hit is not None:
        return hit[1]
    if isinstance(cond, dict):
        parts = [cond.get("not")] if "not" in cond else (cond.get("all") or cond.get("any") or [])
    elif isinstance(cond, Condition):
        parts = [cond.not_] if cond.not_ is not None else (cond.all or cond.any or [])
    else:
        return 1
    height = 1 + max((condition_height(p, memo) for p in parts if p is not None), default=0)
    memo[id(cond)] = (cond, height)
    return height


def fit_depth(
    cond: Any, memo: dict[int, Any] | None = None, heights: dict[int, Any] | None = None
) -> tuple[Any, str | None]:
    """``cond`` flattened (:func:`flat_condition`) and, if that still nests deeper than
    cfgcore evaluates, with its negations moved onto the tests
    (:func:`negations_inside`); and why it is refused if even that is too deep."""
    cond = flat_condition(cond, memo)
    why = depth_problem(cond, heights)
    if why is None:
        return cond, None
    pushed = negations_inside(cond)
    why_pushed = depth_problem(pushed)
    if why_pushed is None:
        return pushed, None
    return cond, why_pushed  # never more levels than ``cond``


#: The deepest nesting of ``and``/``or``/``not`` (counting the test) an import accepts:
#: the compiler's bound (conditions past it are refused, their evaluation being
#: recursive), once the importer's own wrappers are merged (:func:`flat_condition`).
MAX_IMPORTED_DEPTH = MAX_CONDITION_DEPTH + 1


def negations_inside(cond: Any, negate: bool = False, _memo: dict | None = None) -> Any:
    """``cond`` with each ``not`` moved onto the tests (De Morgan: a ``not`` of an
    ``all`` is an ``any`` of ``not``s; a ``not`` of a ``not`` cancels): the same answers
    (cfgcore's tests are true or false, a missing attribute included), never more
    levels, and one fewer per ``not`` of an ``and``/``or``. Used only for a condition
    that would otherwise nest too deeply: it can hold more nodes (a negated ``any`` of
    three tests is three negated tests)."""
    memo: dict[tuple[int, bool], Any] = {} if _memo is None else _memo
    key = (id(cond), negate)
    hit = memo.get(key)
    if hit is not None:
        return hit[1]
    out: Any
    if isinstance(cond, dict) and len(cond) == 1 and "not" in cond:
        out = negations_inside(cond["not"], not negate, memo)
    elif (
        isinstance(cond, dict)
        and len(cond) == 1
        and ("all" in cond or "any" in cond)
        and isinstance(next(iter(cond.values())), list)
    ):
        ((kind, children),) = cond.items()
        if negate:
            kind = "any" if kind == "all" else "all"
        out = flat_condition({kind: [negations_inside(c, negate, memo) for c in children]})
    else:
        out = _negated_test(cond) if negate else cond
    memo[key] = (cond, out)  # keeps cond alive while its id is a key
    return out


def depth_problem(cond: Any, memo: dict[int, Any] | None = None) -> str | None:
    """Why the lowered condition ``cond`` nests too deeply for cfgcore, or None."""
    height = condition_height(cond, memo)
    if height <= MAX_IMPORTED_DEPTH:
        return None
    return (
        f"conditions nested {height} levels deep once lowered (a test and each "
        f"and/or/not around it; a test the import writes as two, such as a negation, "
        f"counts two): cfgcore evaluates at most {MAX_IMPORTED_DEPTH} levels"
    )


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


__all__ = [
    "MALFORMED", "MAX_IMPORTED_DEPTH", "InteropError", "condition_height", "depth_problem",
    "fit_depth", "flat_condition", "malformed", "negations_inside", "type_name",
]  # fmt: skip
