"""Exact number ordering on top of cfgcore's double comparisons.

GrowthBook's Python SDK and flagd's Python evaluator order Python numbers exactly (an
int of any size against an int or a float); cfgcore's ``lt``/``le``/``gt``/``ge``
compare doubles, and an int past a double's range is no number to it. Rounding to a
double is monotonic, so where the doubles differ their order is the exact one; only a
value that rounds to the constant's double ``d`` needs more: the sign of ``x - d``
(kept by :func:`derive` as ``<attr>#res`` for ints past 2**53, 0 for every other
number) against ``n - d`` decides. An int past a double's range (``<attr>#big``, its
sign) is beyond every constant.
"""

from __future__ import annotations

import math
import operator
from typing import Any

RES = "#res"  # an int past 2**53: itself minus its nearest double
BIG = "#big"  # an int past a double's range: its sign
EXACT = 2**53  # every int up to this size is a double exactly
_HUGE = 2**1100  # past every double: stands for any int that is
_ORDER = {"gt": operator.gt, "ge": operator.ge, "lt": operator.lt, "le": operator.le}


def derive(out: dict[str, Any], attr: str, value: Any) -> None:
    """Add the derived attributes :func:`ordered` reads for ``value`` at ``attr``."""
    if isinstance(value, bool) or not isinstance(value, int):
        return
    if -EXACT <= value <= EXACT:
        return
    try:
        res = int(value) - int(float(value))
    except OverflowError:
        out[attr + BIG] = 1 if value > 0 else -1
        return
    if res:
        out[attr + RES] = res


def unholdable(n: Any) -> str | None:
    """Why cfgcore cannot hold the number constant ``n`` (None when it can)."""
    if isinstance(n, int) and not isinstance(n, bool):
        try:
            float(n)
        except OverflowError:
            return f"the number {str(n)[:24]}... is out of a double's range"
    return None


def ordered(attr: str, name: str, n: int | float) -> dict[str, Any]:
    """The condition ``attr <name> n`` (name: gt, ge, lt or le) with Python's exact
    answer for every number :func:`derive` saw; raises ValueError for a constant cfgcore
    cannot hold (NaN is the caller's: it orders with nothing)."""
    why = unholdable(n)
    if why is not None:
        raise ValueError(why)
    test = _ORDER[name]
    d = float(n)
    rn = n - int(d) if isinstance(n, int) and math.isfinite(d) else 0
    if rn and abs(d) >= 2**106:
        # the residuals would round as doubles too: one more level of ties
        raise ValueError(f"the integer {n} is past 2**106 and not a double")
    parts: list[Any] = [{"attr": attr, name: d}]
    if abs(d) >= EXACT:  # below, a value that rounds to d is d (its residual is 0)
        parts = [{"attr": attr, name[0] + "t": d}]  # strictly past d: past n too
        tie = {"all": [{"attr": attr, "ge": d}, {"attr": attr, "le": d}]}
        res: list[Any] = [{"attr": attr + RES, name: rn}]
        if test(0, rn):
            res.append({"not": {"attr": attr + RES, "exists": True}})
        parts.append({"all": [tie, {"any": res}]})
    for sign in (1, -1):
        if test(sign * _HUGE, n):
            parts.append({"attr": attr + BIG, "eq": sign})
    return parts[0] if len(parts) == 1 else {"any": parts}
