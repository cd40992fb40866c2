"""Targeting regexes (``matches``) that cannot freeze the process.

With google-re2 installed (a dependency wherever it ships wheels) every pattern
runs on RE2: linear time in the input, whatever the pattern. Without it, Python's
backtracking ``re`` runs the pattern, and only patterns whose worst case stays
linear there are accepted; :func:`linear_hazard` names what is refused:

* backreferences, lookahead/lookbehind and conditionals;
* a quantifier on a group that contains a quantifier or an alternation
  (``(a+)+``, ``(a|aa)*``): exponential backtracking;
* an unbounded quantifier (``*``, ``+``, ``{n,}`` or a bound over 16) in a
  pattern not anchored with ``^`` or ``\\A`` (a search retries it from every
  position: quadratic), or more than one in a pattern (``^a*a*b``: polynomial);
* bounded quantifiers whose bounds multiply past 256.

Anchor the pattern and keep one open-ended quantifier (``^user-[0-9]+$``), or
install google-re2.
"""

from __future__ import annotations

import re
from typing import Any

try:  # google-re2: linear-time matching, no catastrophic backtracking
    import re2 as _re2  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the platform's wheels
    _re2 = None

try:
    from re import _parser as _sre  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_parse as _sre

OPEN_BOUND = 16  # a quantifier allowing more repetitions than this counts as unbounded
MAX_BOUND_PRODUCT = 256


def linear_hazard(pattern: str, ignore_case: bool = False) -> str | None:
    """Why Python's ``re`` could take more than linear time on ``pattern``, or None."""
    try:
        parsed = _sre.parse(pattern, re.IGNORECASE if ignore_case else 0)
    except re.error:
        return None  # compiling reports the syntax error itself
    items = list(parsed)
    state = {"open": 0, "product": 1}
    problem = _walk(items, state, inside_repeat=False)
    if problem:
        return problem
    if state["open"]:
        first = items[0] if items else None
        anchored = (
            first is not None
            and first[0] is _sre.AT
            and first[1]
            in (
                _sre.AT_BEGINNING,
                _sre.AT_BEGINNING_STRING,
            )
        )
        if not anchored:
            return "an unbounded quantifier in a pattern not anchored with ^ (quadratic search)"
        if state["open"] > 1:
            return "more than one unbounded quantifier (polynomial backtracking)"
    if state["product"] > MAX_BOUND_PRODUCT:
        return f"bounded quantifiers allowing over {MAX_BOUND_PRODUCT} combinations"
    return None


def _walk(items: list[Any], state: dict[str, int], inside_repeat: bool) -> str | None:
    for op, av in items:
        if op in (_sre.GROUPREF, _sre.GROUPREF_EXISTS):
            return "a backreference"
        if op in (_sre.ASSERT, _sre.ASSERT_NOT):
            return "a lookahead or lookbehind"
        if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", None)):
            low, high, body = av
            if high > 1:
                if inside_repeat:
                    return "a nested quantifier (exponential backtracking)"
                if high == _sre.MAXREPEAT or high > OPEN_BOUND:
                    state["open"] += 1
                else:
                    state["product"] *= high
                problem = _walk(list(body), state, inside_repeat=True)
            else:
                problem = _walk(list(body), state, inside_repeat)
            if problem:
                return problem
        elif op is _sre.BRANCH:
            if inside_repeat:
                return "an alternation under a quantifier (exponential backtracking)"
            for alternative in av[1]:
                problem = _walk(list(alternative), state, inside_repeat)
                if problem:
                    return problem
        elif op is _sre.SUBPATTERN:
            problem = _walk(list(av[-1]), state, inside_repeat)
            if problem:
                return problem
        elif op is getattr(_sre, "ATOMIC_GROUP", None):
            problem = _walk(list(av), state, inside_repeat)
            if problem:
                return problem
    return None


def compile_regex(pattern: str, ignore_case: bool) -> Any:
    """Compile a targeting regex once: RE2 when installed (linear time), else ``re``
    after :func:`linear_hazard` found nothing; raises ValueError naming the hazard."""
    if _re2 is None:
        hazard = linear_hazard(pattern, ignore_case)
        if hazard is not None:
            raise ValueError(
                f"{hazard}; without google-re2 only patterns that run in linear time "
                "are accepted (install google-re2, or anchor with ^ and keep one "
                "open-ended quantifier)"
            )
    if ignore_case:
        pattern = "(?i)" + pattern
    if _re2 is not None:
        return _re2.compile(pattern)
    return re.compile(pattern)
