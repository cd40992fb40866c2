"""Targeting regexes (``matches``) that cannot freeze the process.

With google-re2 installed (a dependency wherever it ships wheels) every pattern
runs on RE2: linear time in the input, whatever the pattern. Without it, Python's
backtracking ``re`` runs the pattern, and only patterns whose worst case stays
linear there are accepted; :func:`linear_hazard` names what is refused:

* backreferences, lookahead/lookbehind and conditionals;
* a quantifier on a group that contains a quantifier (``(a+)+``), that can match
  the empty string (``(a?)*``) or that can match the same text in more than one
  way (``(a|aa)*``, ``(?:a?b?)+``): exponential backtracking;
* choices that multiply past 256 ways to match the same text at one position:
  alternations whose branches can start with the same character (``(?:a|aa)``:
  22 of them in sequence take over a second on 44 characters), optional items
  (``a?``, each doubles the ways) and bounded quantifiers (``a{0,4}``: five ways);
* an unbounded quantifier (``*``, ``+``, ``{n,}`` or a bound over 16) in a
  pattern not anchored with ``^`` or ``\\A`` (a search retries it from every
  position: quadratic), or more than one in a pattern (``^a*a*b``: polynomial).

An alternation whose branches start with different characters and cannot match
the empty string (``(?:foo|bar)``) adds no way to match: at any position at most
one branch can start. Anchor the pattern and keep one open-ended quantifier
(``^user-[0-9]+$``), or install google-re2.

A pattern means the same with and without google-re2: RE2's syntax and meaning are
the contract, and without RE2 the pattern is rewritten for ``re`` (:func:`_for_re`)
so that ``\\d``, ``\\w``, ``\\s`` and ``\\b`` are ASCII (``\\s`` is ``[\\t\\n\\f\\r ]``),
``$`` (outside ``(?m)``) matches only at the end of the text, never before a final
newline, ``\\z`` is the end of the text, ``[[:alpha:]]`` and the other POSIX classes are
RE2's ASCII ones (a negated one under ``ignore_case`` negated with its case folds,
as RE2 does), ``{,n}`` and counts with a leading zero (``{01}``) are literal text, a
character past the BMP in a class ignoring case matches in both its cases
(:func:`_astral_ranges`), an octal escape (``\\12``, ``\\101``, ``\\777``) is the character
with that code (``re`` reads ``\\12`` as a group reference and refuses ``\\400``), a ``-``
after a class escape in a class (``[\\w-z]``) is itself, ``(?<name>...)`` is a named
group; and
what RE2 refuses is refused with RE2's reason (``\\Z``, ``\\1``, ``\\u00e9``,
look-arounds, ``(?#...)``, possessive ``a*+``, repetition counts over 1000, ``[\\b]``).
Some patterns RE2 accepts stay refused without it (``\\p{L}``, ``\\Q...\\E``,
``\\x{41}``, ``\\C``, ``(?U)``, flags in mid-pattern).
Two corners differ still: RE2 searches UTF-8 bytes, so ``\\B`` alone also matches inside
a character of two or more bytes (``"\\xa0"``), and under ``ignore_case`` Python folds the
Turkish ``İ``/``ı`` to ``i``/``I`` where RE2 does not.
"""

from __future__ import annotations

import functools
import re
import unicodedata
import warnings
from collections.abc import Callable
from typing import Any

from cfgcore import _unicode_tables

try:  # google-re2: linear-time matching, no catastrophic backtracking
    import re2 as _re2  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the platform's wheels
    _re2 = None

try:
    from re import _parser as _sre  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_parse as _sre

OPEN_BOUND = 16  # a quantifier allowing more repetitions than this counts as unbounded
MAX_BOUND_PRODUCT = 256  # most ways a pattern may match the same text at one position
_CAP = 1 << 40  # ways are counted up to this (the bound only needs "more than 256")
_SET_RANGE = 512  # under IGNORECASE a class range wider than this starts with "any" character
_ONE_CHAR = (_sre.LITERAL, _sre.NOT_LITERAL, _sre.IN, _sre.ANY)  # one character each
_REPEATS = tuple(
    op
    for op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", None))
    if op is not None
)


class _Hazard(Exception):
    pass


def linear_hazard(pattern: str, ignore_case: bool = False) -> str | None:
    """Why Python's ``re`` could take more than linear time on ``pattern``, or None."""
    try:
        parsed = _sre.parse(pattern, re.IGNORECASE if ignore_case else 0)
    except (re.error, OverflowError, RecursionError):
        return None  # compiling reports the syntax error itself
    items = list(parsed)
    walk = _Walk(ignore_case)
    try:
        ways = walk.ways(items, inside_repeat=False)
    except _Hazard as exc:
        return str(exc)
    except RecursionError:  # pragma: no cover - sre_parse refuses deeper nesting first
        return "a pattern nested too deeply to check"
    if walk.open:
        first = items[0] if items else None
        anchored = (
            first is not None
            and first[0] is _sre.AT
            and first[1] in (_sre.AT_BEGINNING, _sre.AT_BEGINNING_STRING)
        )
        if not anchored:
            return "an unbounded quantifier in a pattern not anchored with ^ (quadratic search)"
        if walk.open > 1:
            return "more than one unbounded quantifier (polynomial backtracking)"
    if ways > MAX_BOUND_PRODUCT:
        return (
            f"bounded quantifiers, optional items or alternations whose branches can start "
            f"alike allowing over {MAX_BOUND_PRODUCT} combinations (exponential backtracking)"
        )
    return None


class _Walk:
    """Counts, for a parsed pattern, the ways a backtracking match attempt at one
    position can go (an upper bound) and the unbounded quantifiers; raises _Hazard."""

    def __init__(self, ignore_case: bool) -> None:
        self.ignore_case = ignore_case
        self.open = 0

    def ways(self, items: list[Any], inside_repeat: bool) -> int:
        total = 1
        for op, av in items:
            total = min(total * self.item_ways(op, av, inside_repeat), _CAP)
        return total

    def item_ways(self, op: Any, av: Any, inside_repeat: bool) -> int:
        if op in (_sre.GROUPREF, _sre.GROUPREF_EXISTS):
            raise _Hazard("a backreference")
        if op in (_sre.ASSERT, _sre.ASSERT_NOT):
            raise _Hazard("a lookahead or lookbehind")
        if op in _REPEATS:
            return self.repeat_ways(av, inside_repeat)
        if op is _sre.BRANCH:
            branches = [list(b) for b in av[1]]
            counts = [self.ways(b, inside_repeat) for b in branches]
            if self.exclusive(branches):
                return max(counts)  # at most one branch can start at any position
            if inside_repeat:
                raise _Hazard("an alternation under a quantifier (exponential backtracking)")
            return min(sum(counts), _CAP)
        if op is _sre.SUBPATTERN:
            return self.ways(list(av[-1]), inside_repeat)
        if op is getattr(_sre, "ATOMIC_GROUP", None):
            return self.ways(list(av), inside_repeat)
        return 1  # one character or a zero-width assertion at a fixed place

    def repeat_ways(self, av: Any, inside_repeat: bool) -> int:
        low, high, body = av
        body = list(body)
        if high <= 1:  # x? or x{1}: the body once, or also not at all
            inner = self.ways(body, inside_repeat)
            return min(inner + (1 if low == 0 else 0), _CAP)
        if inside_repeat:
            raise _Hazard("a nested quantifier (exponential backtracking)")
        inner = self.ways(body, inside_repeat=True)  # raises for a nested quantifier
        if _min_width(body) == 0:
            raise _Hazard(
                "a quantifier over what can match the empty string (exponential backtracking)"
            )
        if inner > 1:
            raise _Hazard(
                "a quantifier over a group that can match the same text in more than one "
                "way (exponential backtracking)"
            )
        if high == _sre.MAXREPEAT or high > OPEN_BOUND:
            self.open += 1
            return 1
        return int(high)  # counted as before (x{9} too), though x{n} has only one way

    def exclusive(self, branches: list[list[Any]], starts: list[int] | None = None) -> bool:
        """Whether no two branches (from their item ``starts[i]`` on, 0 by default) can
        match at the same position:
        each pair differs in a character set at some place after the same literal text,
        and none matches the empty string. Then at most one of them can match anywhere."""
        groups: dict[str, tuple[list[list[Any]], list[int]]] = {}
        sets: list[list[tuple[int, int]]] = []
        for n, b in enumerate(branches):
            i = 0 if starts is None else starts[n]
            while i < len(b) and b[i][0] is _sre.AT:
                i += 1  # zero width
            if i == len(b) or (b[i][0] not in _ONE_CHAR and _min_width(b[i:]) == 0):
                return False
            op, av = b[i]
            if op is _sre.LITERAL and not self.ignore_case:
                same, after = groups.setdefault(chr(av), ([], []))
                same.append(b)
                after.append(i + 1)
                continue
            first = _first_set(b[i:], self.ignore_case)
            if first is None:
                return False
            sets.append(first)
        sets += [[(ord(c), ord(c))] for c in groups]
        flat = sorted(r for one in sets for r in one)
        for (_, hi), (lo, _) in zip(flat, flat[1:], strict=False):
            if lo <= hi:
                return False  # two branches can start with the same character
        for same, after in groups.values():  # the same literal first: the rest must differ
            if len(same) > 1 and not self.exclusive(same, after):
                return False
        return True


def _min_width(items: list[Any]) -> int:
    try:
        return int(_sre.SubPattern(_sre.State(), items).getwidth()[0])
    except Exception:  # pragma: no cover - a shape getwidth does not know: assume empty
        return 0


def _first_set(items: list[Any], ignore_case: bool) -> list[tuple[int, int]] | None:
    """The code points a match of ``items`` can start with, as merged (low, high)
    ranges, or None when that is not known."""
    for op, av in items:
        if op is _sre.AT:
            continue  # zero width
        if op is _sre.LITERAL:
            return _merge([(ord(v), ord(v)) for v in _case_variants(chr(av), ignore_case)])
        if op is _sre.IN:
            return _class_set(av, ignore_case)
        if op is _sre.NOT_LITERAL:
            return _class_set([(_sre.NEGATE, None), (_sre.LITERAL, av)], ignore_case)
        if op is _sre.SUBPATTERN:
            return _first_set(list(av[-1]), ignore_case)
        if op in _REPEATS and av[0] >= 1:
            return _first_set(list(av[2]), ignore_case)
        return None  # any character, an optional item, an alternation: unknown
    return None  # nothing consumes a character


def _class_set(
    av: list[Any], ignore_case: bool, measure: bool = False
) -> list[tuple[int, int]] | None:
    """The code points the parsed class ``av`` matches, or None when that is not known
    (``measure``: case variants as :func:`_case_variants` measures them)."""
    ranges: list[tuple[int, int]] = []
    negate = False
    for op, arg in av:
        if op is _sre.NEGATE:
            negate = True
        elif op is _sre.LITERAL:
            ranges += [(ord(v), ord(v)) for v in _case_variants(chr(arg), ignore_case, measure)]
        elif op is _sre.RANGE:
            lo, hi = arg
            if ignore_case:
                if hi - lo > _SET_RANGE:
                    return None
                for o in range(lo, hi + 1):
                    ranges += [(ord(v), ord(v)) for v in _case_variants(chr(o), True, measure)]
            else:
                ranges.append((lo, hi))
        else:  # a category (\d) or anything else: unknown
            return None
    merged = _merge(ranges)
    if not negate:
        return merged
    if ignore_case:
        return None  # the complement of a case-folded set: not worth being exact
    return complement_ranges(merged)


def complement_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The code points 0-0x10FFFF outside the sorted, disjoint ``ranges``."""
    out, start = [], 0
    for lo, hi in ranges:
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start <= 0x10FFFF:
        out.append((start, 0x10FFFF))
    return out


def _case_closed(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The ASCII ``ranges`` of a POSIX class with every character ``re`` folds into them
    under IGNORECASE: each letter's other case, and the dotted and dotless i, the long
    s and the Kelvin sign where i, s or k is in (RE2 folds the last two alike, and
    not the Turkish i: the documented corner)."""
    letters = {chr(c).lower() for lo, hi in ranges for c in range(lo, hi + 1) if chr(c).isalpha()}
    out = list(ranges)
    out += [(ord(x.upper()), ord(x.upper())) for x in letters]
    out += [(ord(x), ord(x)) for x in letters]
    out += [r for x, r in _FOLDED_INTO.items() if x in letters]
    return _merge(out)


_FOLDED_INTO = {"i": (0x130, 0x131), "s": (0x17F, 0x17F), "k": (0x212A, 0x212A)}


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _case_variants(c: str, ignore_case: bool, measure: bool = False) -> set[str]:
    """Characters a pattern ignoring case may match ``c`` with (a superset): its case
    variants in cfgcore's Unicode tables (:mod:`cfgcore._unicode_tables`, one Unicode
    version, so that a measure is the same on every Python) and, unless ``measure``,
    the running Python's too. :func:`linear_hazard` judges the running ``re``, which
    folds with its own, newer or older, Unicode data: the union keeps it safe, and is
    the tables alone on every Python whose Unicode is not newer than theirs."""
    if not ignore_case:
        return {c}
    out = {c} | {chr(v) for v in _unicode_tables.case_variants(ord(c))}
    if not measure:
        out |= _unicode_tables.python_case_variants(c)
    return out


# What one search may cost, on either engine. RE2 runs in time linear in the text, but
# the constant is the pattern's: RE2 searches with a DFA built lazily into a bounded
# cache (about 5 MB of its default 8 MB budget), and a search that needs more DFA
# states than fit falls back to stepping every live NFA thread over every byte. States
# multiply, and grow, with the character positions a pattern keeps alive at once:
# ``x{n}`` writes ``x`` out n times, a position whose class matches many characters
# stays alive on most texts, and so do the branches of an alternation. Measured on
# inputs of the 4,096-character bound, a new one each search (benchmarks/RESULTS.md,
# "Regex cost"): ``.{1000}z`` 234 ms a search, 800 alternatives tried at every offset
# 65 ms, ``a[ab]{446}z`` 29 ms. The bounds are computed from the pattern alone, the
# same with and without google-re2, so that a document compiles alike on every host.
# They do not remove RE2's cold-DFA floor (about 1-2 us per byte of a text that keeps
# producing new states; docs/flags.md).
MAX_REGEX_LIVE = 128  # broad positions + alternatives; a[ab]{446}z measured 27 ms
MAX_REGEX_COST = 400_000  # that x byte ranges; GrowthBook's Unicode \w{20}z: 363,220


_IGNORECASE, _DOTALL = int(re.IGNORECASE), int(re.DOTALL)  # int: fast bit tests


class RegexLimitError(ValueError):
    """A valid pattern cfgcore will not run: too dear to search (:class:`RegexCostError`)
    or nested too deeply (:data:`MAX_REGEX_NESTING`). The same verdict with and without
    google-re2."""


class RegexCostError(RegexLimitError):
    """A pattern whose searches could overflow RE2's DFA cache (see :func:`cost_hazard`)."""


# Groups nested deeper than this are refused, with and without google-re2. RE2 parses
# any depth, but everything else that reads a pattern recurses once or more per group
# (Python's parser and compiler, the hazard and cost walks): without RE2 a pattern some
# 900 groups deep failed with "maximum recursion depth exceeded", at a depth that
# depends on the caller's stack. Real patterns nest a handful of groups.
MAX_REGEX_NESTING = 100


def group_depth(pattern: str) -> int:
    """How deeply the groups of ``pattern`` (RE2 syntax) nest: parentheses outside
    character classes and ``\\Q...\\E`` literals, not escaped. Counted on the text, with
    no recursion, so any pattern can be measured before anything parses it."""
    depth = deepest = 0
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            if pattern.startswith("Q", i + 1):  # literal text up to \E (or the end)
                end = pattern.find("\\E", i + 2)
                i = n if end < 0 else end + 2
            else:
                i += 2
        elif c == "[":
            i = _class_end(pattern, i)
        else:
            if c == "(":
                depth += 1
                deepest = max(deepest, depth)
            elif c == ")" and depth:
                depth -= 1
            i += 1
    return deepest


def _class_end(pattern: str, i: int) -> int:
    """Where the bracketed class opened at ``i`` ends (past its ``]``), read as RE2 and
    :func:`_class_for_re` read it: a ``]`` first is itself, ``[:name:]`` is one item."""
    n = len(pattern)
    j = i + 1
    if j < n and pattern[j] == "^":
        j += 1
    if j < n and pattern[j] == "]":
        j += 1
    while j < n and pattern[j] != "]":
        if pattern[j] == "\\":
            j += 2
        elif pattern.startswith("[:", j) and pattern.find(":]", j + 2) >= 0:
            j = pattern.find(":]", j + 2) + 2
        else:
            j += 1
    return j + 1


def cost_hazard(pattern: str, ignore_case: bool, compiled: Any = None) -> str | None:
    """Why a search with ``pattern`` (RE2 syntax) could overflow RE2's DFA cache, or None.

    Measured on the pattern with its repetitions written out (``x{3}`` as ``xxx``, ``x+``
    once, nested counts multiplied): its size in UTF-8 byte ranges (a literal is one,
    ``.`` ten, a Unicode ``\\w`` class some 900: what RE2's program holds) and its live
    positions: those matching more than one character (up to case) plus its
    alternatives, counted where the search tries them at every offset of the text
    (everywhere unless the pattern is anchored with ``^``, see :func:`_cost`). Refused:
    more than :data:`MAX_REGEX_LIVE` live positions, or live positions x size over
    :data:`MAX_REGEX_COST` (the size alone where none is live). ``compiled`` (RE2's)
    answers for the few patterns only RE2 reads (``\\pL``): its program's size, every
    counted repetition taken as nested and broad.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            parsed = _sre.parse(_for_re(pattern, ignore_case), re.IGNORECASE if ignore_case else 0)
    except (re.error, OverflowError, RecursionError):
        return None if compiled is None else _re2_cost_hazard(pattern, compiled)
    _re2_meaning(parsed, parsed.state.flags)
    return _cost_hazard_of(parsed)


def _cost_hazard_of(parsed: Any) -> str | None:
    """:func:`cost_hazard` of a pattern parsed by ``re`` and given RE2's meaning."""
    items, flags = list(parsed), parsed.state.flags
    first = items[0] if items else None
    anchored = first is not None and (
        (first[0] is _sre.AT and first[1] is _sre.AT_BEGINNING_STRING)
        or (first[0] is _sre.AT and first[1] is _sre.AT_BEGINNING and not flags & re.MULTILINE)
    )
    try:
        size, broad, branches, _ = _cost(items, int(flags), opened=not anchored)
    except RecursionError:  # pragma: no cover - sre_parse refuses deeper nesting first
        return "a pattern nested too deeply to measure"
    return _cost_verdict(size, broad, branches)


def _cost_verdict(size: int, broad: int, branches: int) -> str | None:
    live = broad + branches
    over = "a search could overflow RE2's DFA cache (tens to hundreds of ms on a long value)"
    if live > MAX_REGEX_LIVE:
        return (
            f"{over}: {broad:,} positions matching more than one character and "
            f"{branches:,} alternatives, once repetitions are written out, tried at every "
            f"offset of the text, over {MAX_REGEX_LIVE} (use x+ or x* for a long x{{n}}, "
            "anchor the pattern with ^, or list values with in or contains)"
        )
    if size * max(live, 1) > MAX_REGEX_COST:
        return (
            f"{over}: {live:,} positions and alternatives tried at every offset of the "
            f"text x {size:,} byte ranges, once repetitions are written out, is "
            f"{size * max(live, 1):,}, over {MAX_REGEX_COST:,} (use x+ or x* for a long "
            "x{n}, a narrower class, or anchor the pattern with ^)"
        )
    return None


def _cost(items: list[Any], flags: int, opened: bool) -> tuple[int, int, int, bool]:
    """(size, broad positions, alternatives, opened after) of ``items``, repetitions
    written out. Broad positions and alternatives count only where the search can
    try them at many offsets of the text: everywhere in an unanchored pattern; in one
    anchored with ``^``, from the first item whose width varies (``x*``, ``x{1,5}``,
    ``(?:a|bc)``, and inside a repetition of such a body) on. Before it each position
    is tried at one offset only, so the search keeps few of them alive."""
    size = broad = branches = 0
    for op, av in items:
        if op in _REPEATS:
            low, high, body = av
            open_ended = high == _sre.MAXREPEAT
            copies = max(low, 1) if open_ended else high  # RE2 writes x{2,} as xx+
            body = list(body)
            spread = open_ended or _variable_width(body)  # copies at many offsets
            s, b, n, after = _cost(body, flags, opened or spread)
            size, broad, branches = size + copies * s, broad + copies * b, branches + copies * n
            opened = opened or spread or after or low != high
        elif op is _sre.BRANCH:
            ends = opened
            if opened:
                branches += len(av[1])
            for branch in av[1]:
                s, b, n, after = _cost(list(branch), flags, opened)
                size, broad, branches, ends = size + s, broad + b, branches + n, ends or after
            opened = ends or len({_widths(list(b)) for b in av[1]}) > 1
        elif op is _sre.SUBPATTERN:
            s, b, n, opened = _cost(list(av[-1]), (flags | av[1]) & ~av[2], opened)
            size, broad, branches = size + s, broad + b, branches + n
        elif op is getattr(_sre, "ATOMIC_GROUP", None):  # pragma: no cover - refused before
            s, b, n, opened = _cost(list(av), flags, opened)
            size, broad, branches = size + s, broad + b, branches + n
        elif op is _sre.LITERAL and not flags & _IGNORECASE:
            size += 1  # one byte sequence, matching one character
        elif op in _ONE_CHAR:
            s, b = _position_cost(op, tuple(av) if op is _sre.IN else av, flags)
            size, broad = size + s, broad + (b if opened else 0)
        else:  # an assertion (^, \b): one instruction
            size += 1
    return size, broad, branches, opened


def _widths(items: list[Any]) -> tuple[int, int]:
    try:
        lo, hi = _sre.SubPattern(_sre.State(), items).getwidth()
        return int(lo), int(hi)
    except Exception:  # pragma: no cover - a shape getwidth does not know: variable
        return 0, -1


def _variable_width(items: list[Any]) -> bool:
    lo, hi = _widths(items)
    return lo != hi


@functools.lru_cache(maxsize=1024)
def _position_cost(op: Any, av: Any, flags: int) -> tuple[int, int]:
    """(byte-range sequences, 1 if broad) of one character position (cached: a pattern
    repeats its classes, and GrowthBook's Unicode ``\\w`` has 749 ranges)."""
    ranges = _char_ranges(op, list(av) if op is _sre.IN else av, flags)
    return _utf8_ranges(ranges), _broad(ranges)


def _char_ranges(op: Any, av: Any, flags: int) -> list[tuple[int, int]]:
    """The code points one character position matches (a superset where folding case
    over wide ranges is not worth being exact), case folded as cfgcore's Unicode tables
    fold (:func:`_case_variants`), so that the measure is the same on every Python."""
    ic = bool(flags & _IGNORECASE)
    if op is _sre.LITERAL:
        return _merge([(ord(v), ord(v)) for v in _case_variants(chr(av), ic, measure=True)])
    if op is _sre.NOT_LITERAL:
        folded = _case_variants(chr(av), ic, measure=True)
        return complement_ranges(_merge([(ord(v), ord(v)) for v in folded]))
    if op is _sre.ANY:
        return [(0, 0x10FFFF)] if flags & _DOTALL else [(0, 9), (11, 0x10FFFF)]
    ranges = _class_set(av, ic, measure=True) or _class_set(av, False)
    return ranges if ranges is not None else [(0, 0x10FFFF)]


def _broad(ranges: list[tuple[int, int]]) -> int:
    """1 if ``ranges`` hold two characters that are not one letter's cases, else 0."""
    first = ranges[0][0] if ranges else 0
    if sum(hi - lo + 1 for lo, hi in ranges) > 4:
        return 1
    same = {ord(v) for v in _case_variants(chr(first), True, measure=True)}
    return 0 if all(o in same for lo, hi in ranges for o in range(lo, hi + 1)) else 1


def _utf8_ranges(ranges: list[tuple[int, int]]) -> int:
    """How many UTF-8 byte-range sequences match the code points of ``ranges``."""
    return sum(len(utf8_sequences(lo, hi)) for lo, hi in ranges)


def utf8_sequences(lo: int, hi: int) -> list[tuple[tuple[int, int], ...]]:
    """The code points ``lo``-``hi`` (surrogates left out: they are not text) as UTF-8
    byte-range sequences, each a tuple of (low, high) byte ranges, one per byte: the
    range is cut where the encoded length changes, then wherever a continuation byte
    would not run over its whole range (the construction RE2's compiler uses). Every
    encoded code point matches exactly one sequence, and nothing else does."""
    out: list[tuple[tuple[int, int], ...]] = []
    todo = [(lo, min(hi, 0xD7FF)), (max(lo, 0xE000), hi)] if lo <= 0xDFFF else [(lo, hi)]
    while todo:
        a, b = todo.pop()
        if a > b:
            continue
        edge = next((e for e in (0x7F, 0x7FF, 0xFFFF) if a <= e < b), None)
        if edge is not None:
            todo += [(edge + 1, b), (a, edge)]
            continue
        length = 1 if b <= 0x7F else 2 if b <= 0x7FF else 3 if b <= 0xFFFF else 4
        for i in range(1, length):
            m = (1 << (6 * i)) - 1
            if a & ~m != b & ~m:
                if a & m:
                    todo += [((a | m) + 1, b), (a, a | m)]
                    break
                if b & m != m:
                    todo += [(b & ~m, b), (a, (b & ~m) - 1)]
                    break
        else:
            first, last = chr(a).encode(), chr(b).encode()
            out.append(tuple(zip(first, last, strict=True)))
    return sorted(out)


def _re2_cost_hazard(pattern: str, compiled: Any) -> str | None:
    """:func:`cost_hazard` for a pattern only RE2 reads (``\\pL``, ``\\Q...\\E``): its
    program's size, every counted repetition assumed nested and broad."""
    program_size = getattr(compiled._regexp, "ProgramSize", None)
    if program_size is None:  # pragma: no cover - every google-re2 release has it
        return None
    copies = 1
    for m in _REPEAT.finditer(pattern):
        copies = min(copies * int(m.group(3) or m.group(1) or 1), _CAP)
    broad = copies * max(1, sum(pattern.count(t) for t in (".", "[", "\\p", "\\P", "\\w")))
    return _cost_verdict(int(program_size()), broad, pattern.count("|") + 1)


def compile_regex(pattern: str, ignore_case: bool) -> Any:
    """Compile a targeting regex once: RE2 when installed (linear time), else ``re``
    after :func:`linear_hazard` found nothing; raises ValueError naming the hazard, or
    re.error naming what RE2 refuses. With and without RE2 a pattern matches the same
    texts and is refused alike (see the module's notes)."""
    depth = group_depth(pattern)
    if depth > MAX_REGEX_NESTING:
        raise RegexLimitError(
            f"groups nested {depth} deep; at most {MAX_REGEX_NESTING} (flatten the pattern)"
        )
    if _re2 is not None:
        try:
            compiled = _re2.compile("(?i)" + pattern if ignore_case else pattern, _RE2_OPTIONS)
        except _re2.error as exc:
            # RE2 says why in bytes (b'missing ): ('): the flag's problem says it in text
            raise re.error(_re2_reason(exc)) from None
        hazard = cost_hazard(pattern, ignore_case, compiled)
        if hazard is not None:
            raise RegexCostError(hazard)
        return _RE2Pattern(compiled, pattern, ignore_case)
    text = _for_re(pattern, ignore_case)  # RE2's meaning, or re.error with RE2's reason
    with warnings.catch_warnings():
        # re's FutureWarning of set operations to come ("--" in a class): the pattern
        # means today's reading, which is RE2's; the flag's author has nothing to change
        warnings.simplefilter("ignore", FutureWarning)
        hazard = linear_hazard(text, ignore_case)
        if hazard is None:
            try:
                parsed = _sre.parse(text, re.IGNORECASE if ignore_case else 0)
            except re.error as exc:
                raise _as_written(exc, pattern, ignore_case) from None
    if hazard is not None:
        raise ValueError(
            f"{hazard}; without google-re2 only patterns that run in linear time "
            "are accepted (install google-re2, or anchor with ^ and keep one "
            "open-ended quantifier)"
        )
    _re2_meaning(parsed, parsed.state.flags)
    hazard = _cost_hazard_of(parsed)
    if hazard is not None:
        raise RegexCostError(hazard)
    return _Pattern(_sre_compile(parsed, parsed.state.flags), pattern, ignore_case)


def _as_written(exc: re.error, pattern: str, ignore_case: bool) -> re.error:
    """``re``'s error of the rewritten ``pattern`` (:func:`_for_re`) at the position in
    ``pattern`` as written where the piece it is in was read from: ``\\101**`` (read
    as ``\\u0041**``) said "multiple repeat at position 7" of a pattern of six."""
    if exc.pos is None:
        return exc
    pieces, at = _rewrite(pattern, ignore_case)
    end = 0
    for piece, origin in zip(pieces, at, strict=True):
        end += len(piece)
        if exc.pos < end:
            return re.error(exc.msg, pattern, origin)
    return re.error(exc.msg, pattern, len(pattern))


class _Pattern:
    """A targeting regex compiled by ``re`` with RE2's meaning (see :func:`_for_re`).
    ``search`` is the compiled pattern's own (no Python frame added per search); it
    pickles as its pattern text, compiled again when loaded."""

    __slots__ = ("ignore_case", "pattern", "search")

    def __init__(self, compiled: re.Pattern[str], pattern: str, ignore_case: bool) -> None:
        self.search = compiled.search
        self.pattern = pattern
        self.ignore_case = ignore_case

    def __reduce__(self) -> tuple[Any, tuple[str, bool]]:
        return compile_regex, (self.pattern, self.ignore_case)

    def __repr__(self) -> str:
        return f"<targeting regex {self.pattern!r}{' (ignore case)' if self.ignore_case else ''}>"


class _RE2Pattern:
    """A targeting regex compiled by RE2. ``search(text)`` answers whether RE2 finds the
    pattern anywhere in ``text`` (a true value, else None): it calls the compiled RE2
    program directly with the text's UTF-8, as google-re2's own ``search`` does
    underneath, without building a match object and its character offsets (2.9 us of a
    3.3 us check through ``re2.search``; about 0.45 us this way). Pickles as its pattern
    text, compiled again when loaded (by RE2, or by ``re`` with RE2's meaning where
    google-re2 is not installed)."""

    __slots__ = ("_match", "_regexp", "ignore_case", "pattern")

    def __init__(self, compiled: Any, pattern: str, ignore_case: bool) -> None:
        self._regexp = compiled
        self._match = compiled._regexp.Match
        self.pattern = pattern
        self.ignore_case = ignore_case

    def search(self, text: str) -> bool | None:
        if type(text) is not str:  # what the evaluators never pass: the wrapper's answer
            return True if self._regexp.search(text) is not None else None
        data = text.encode()  # a lone surrogate raises, as re2's own search does
        return True if self._match(_UNANCHORED, data, 0, len(data))[0][0] != -1 else None

    def __reduce__(self) -> tuple[Any, tuple[str, bool]]:
        return compile_regex, (self.pattern, self.ignore_case)

    def __repr__(self) -> str:
        return f"<targeting regex {self.pattern!r}{' (ignore case)' if self.ignore_case else ''}>"


try:
    from re._compiler import compile as _sre_compile  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.10
    from sre_compile import compile as _sre_compile

# RE2's Perl classes (ASCII) and POSIX classes, as code point ranges.
_DIGIT = [(0x30, 0x39)]
_WORD = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]
_SPACE = [(0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)]
_POSIX = {
    "alnum": [(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)],
    "alpha": [(0x41, 0x5A), (0x61, 0x7A)],
    "ascii": [(0x00, 0x7F)],
    "blank": [(0x09, 0x09), (0x20, 0x20)],
    "cntrl": [(0x00, 0x1F), (0x7F, 0x7F)],
    "digit": _DIGIT,
    "graph": [(0x21, 0x7E)],
    "lower": [(0x61, 0x7A)],
    "print": [(0x20, 0x7E)],
    "punct": [(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
    "space": [(0x09, 0x0D), (0x20, 0x20)],
    "upper": [(0x41, 0x5A)],
    "word": _WORD,
    "xdigit": [(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
}
_CATEGORIES = {
    _sre.CATEGORY_DIGIT: (_DIGIT, False),
    _sre.CATEGORY_NOT_DIGIT: (_DIGIT, True),
    _sre.CATEGORY_WORD: (_WORD, False),
    _sre.CATEGORY_NOT_WORD: (_WORD, True),
    _sre.CATEGORY_SPACE: (_SPACE, False),
    _sre.CATEGORY_NOT_SPACE: (_SPACE, True),
}
# What re's IGNORECASE folds into [0-9A-Z_a-z]: dotted and dotless i, long s, Kelvin.
_FOLDS_INTO_WORD = [(0x130, 0x131), (0x17F, 0x17F), (0x212A, 0x212A)]
_PERL_FLAGS = "imsU-"  # what RE2 accepts in (?flags) and (?flags:...)
_MAX_REPEAT = 1000  # RE2's largest repetition count
# RE2's {n}, {n,} and {n,m}: ASCII digits without a leading zero ("{01}" and "{1,02}"
# are literal text to RE2, as is "{,2}")
_REPEAT = re.compile(r"\{(0|[1-9][0-9]*)(,(0|[1-9][0-9]*)?)?\}")
_ASCII_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
# Escapes of letters and digits ``re`` knows and RE2 refuses (``re``: group
# references, \\Z, \\u/\\U/\\N code points); \\z is RE2's \\Z, rewritten.
_RE_ONLY_ESCAPES = frozenset("ZuUN123456789")
_OCTAL = "01234567"
# What RE2 accepts in a group's name (its IsValidCaptureName)
_NAME_CATEGORIES = frozenset(("Lu", "Ll", "Lt", "Lm", "Lo", "Nl", "Mn", "Mc", "Nd", "Pc"))
_CLASS_ESCAPES = frozenset("dDwWsS")  # a class escape in a class: a "-" after it is itself


def _octal_code(pattern: str, i: int) -> tuple[int, int] | None:
    """RE2's octal escape at ``i`` (``\\0`` and up to two more octal digits, or ``\\1``
    to ``\\7`` and one or two more: ``\\12`` is a newline, ``\\101`` is ``A``, ``\\777``
    is U+01FF): its code and where it ends; None if there is none there (a lone ``\\1``
    is a backreference, which RE2 refuses)."""
    j = i + 1
    digits = pattern[j : j + 3]
    if not digits or digits[0] not in _OCTAL:
        return None
    if digits[0] != "0" and (len(digits) < 2 or digits[1] not in _OCTAL):
        return None
    end = j + 1
    while end < min(j + 3, len(pattern)) and pattern[end] in _OCTAL:
        end += 1
    return int(pattern[j:end], 8), end


def _octal_for_re(pattern: str, i: int) -> tuple[str, int] | None:
    """:func:`_octal_code` written as ``re`` reads the same character whatever follows
    (``\\u0041``: re reads ``\\12`` as a reference to group 12, refuses ``\\400`` and
    above, and would read ``\\0`` and a digit after it as one escape), and where it
    ends."""
    octal = _octal_code(pattern, i)
    return None if octal is None else (f"\\u{octal[0]:04x}", octal[1])


def ranges_text(ranges: Any) -> str:
    """The inside of a bracketed class (``[...]``) matching the sorted, disjoint
    (low, high) ``ranges`` (which hold no surrogate)."""
    return "".join(
        _class_char(lo) + ("-" + _class_char(hi) if hi > lo else "") for lo, hi in ranges
    )


def _for_re(pattern: str, ignore_case: bool = False) -> str:
    """``pattern`` (RE2 syntax) rewritten where Python's ``re`` reads the text otherwise:
    ``\\z`` to ``\\Z``, ``{,`` and counts with a leading zero to literal braces, POSIX
    classes to their ranges (a negated one where the case is ignored without the
    letters that fold into it, see :func:`_case_closed`), a ``[`` inside a class
    escaped; raises ``re.error`` with RE2's reason for what RE2 refuses and ``re`` would
    accept. The other classes and ``$`` are done on the parsed pattern
    (:func:`_re2_meaning`)."""
    return "".join(_rewrite(pattern, ignore_case)[0])


def _rewrite(pattern: str, ignore_case: bool) -> tuple[list[str], list[int]]:
    """:func:`_for_re` as pieces of text, and where in ``pattern`` each was read from
    (so that ``re``'s position of an error is told in the pattern as written)."""
    out: list[str] = []
    at: list[int] = []
    i, n = 0, len(pattern)
    # Whether the case is ignored in each open group, innermost last: (?i) and (?-i)
    # change it for the rest of their group, (?i:...) within the group it opens.
    cases = [ignore_case]
    last_repeat = ""  # the quantifier just read: a "+" after it is possessive in re
    assertion = -1  # where in ``out`` the assertion just read is (RE2 repeats one)
    start = 0  # where the step that wrote the last pieces read from
    while i < n:
        at.extend([start] * (len(out) - len(at)))
        start = i
        c = pattern[i]
        repeat = ""
        if assertion >= 0 and (c in "*+?" or (c == "{" and _REPEAT.match(pattern, i))):
            out[assertion] = f"(?:{out[assertion]})"  # re: "nothing to repeat" else
        assertion = -1
        octal = _octal_for_re(pattern, i) if c == "\\" else None
        if octal is not None:
            out.append(octal[0])
            i = octal[1]
        elif c == "\\" and i + 1 < n:
            e = pattern[i + 1]
            if e in _RE_ONLY_ESCAPES or (e not in _ASCII_LETTERS and ord(e) > 0x7F):
                raise re.error(f"invalid escape sequence: \\{e}")
            out.append("\\Z" if e == "z" else pattern[i : i + 2])
            if e in "bBAz":
                assertion = len(out) - 1
            i += 2
        elif c in "^$":
            out.append(c)
            assertion = len(out) - 1
            i += 1
        elif c == "[":
            i = _class_for_re(pattern, i, out, cases[-1])
        elif c == "(" and pattern.startswith("(?", i):
            j = _group_for_re(pattern, i, out)
            case = cases[-1]
            named = pattern.startswith(("(?<", "(?P<"), i)
            if not named and pattern[j : j + 1] in (":", ")"):  # flags
                on, _, off = pattern[i + 2 : j].partition("-")
                case = ("i" in on or case) and "i" not in off
                if pattern[j] == ")":  # for the rest of the enclosing group
                    cases[-1] = case
            cases.append(case)  # popped at the group's ")" ((?i)'s own included)
            i = j
        elif c in "()":
            if c == "(":
                cases.append(cases[-1])
            elif len(cases) > 1:
                cases.pop()
            out.append(c)
            i += 1
        elif c == "{":
            m = _REPEAT.match(pattern, i)
            if m is None or pattern.startswith("{,", i):
                out.append("\\{")  # RE2: literal unless {n}, {n,} or {n,m}
                i += 1
            else:
                low, high = int(m.group(1)), m.group(3)
                if low > _MAX_REPEAT or (high and (int(high) > _MAX_REPEAT or int(high) < low)):
                    raise re.error(f"invalid repetition size: {m.group(0)}")
                out.append(m.group(0))
                repeat = m.group(0)
                i = m.end()
        elif c in "*+?":
            if c == "+" and last_repeat:
                raise re.error(f"bad repetition operator: {last_repeat}+")
            out.append(c)
            repeat = c if not last_repeat else ""  # "*?" is lazy: no further operator
            i += 1
        else:
            out.append(c)
            i += 1
        last_repeat = repeat
    at.extend([start] * (len(out) - len(at)))
    return out, at


def _group_for_re(pattern: str, i: int, out: list[str]) -> int:
    """Copy the ``(?`` at ``i`` if RE2 reads it (a named group, flags, a
    non-capturing group); else raise RE2's ``invalid perl operator``."""
    rest = pattern[i + 2 : i + 4]
    if rest.startswith("P") and rest != "P<":
        raise re.error("invalid perl operator: (?P")
    if rest in ("<=", "<!"):
        raise re.error(f"invalid perl operator: (?{rest}")
    if rest.startswith(("<", "P<")):
        # A named group, (?P<name>...) or (?<name>...): RE2's names (letters, marks,
        # decimal and letter numbers, "_"; one name may name two groups) are not all
        # Python's, and a search never reads a group: an ordinary group in re.
        start = pattern.index("<", i) + 1
        end = pattern.find(">", start)
        name = pattern[start:end] if end >= 0 else ""
        if not name or not all(unicodedata.category(c) in _NAME_CATEGORIES for c in name):
            shown = pattern[i : end + 1] if end >= 0 else pattern[i:]
            raise re.error(f"invalid named capture group: {shown}")
        out.append("(?:")
        return end + 1
    j = i + 2
    while j < len(pattern) and pattern[j] in _PERL_FLAGS:
        j += 1
    if j == len(pattern) or pattern[j] not in ":)":
        raise re.error(f"invalid perl operator: {pattern[i : j + 1]}")
    out.append(pattern[i:j])
    return j


def _class_for_re(pattern: str, i: int, out: list[str], ignore_case: bool = False) -> int:
    """Copy the bracketed class at ``i`` (rewritten for re, see :func:`_for_re`);
    ``ignore_case``: whether the case is ignored where it stands.

    Read item by item as RE2 reads a class: a POSIX class (``[:alpha:]``), a class
    escape (``\\d``), or one character, with ``-`` and a second character after it a
    range. A character is written so that ``re`` reads it alone whatever follows
    (``\\x00``, ``\\-``), and a range is checked here, named as written: the POSIX
    class written out, an octal escape or a ``-`` after a class must not join with
    its neighbours (``[[:blank:]-z]`` is a tab, a space, ``-`` and ``z``; re would
    read the range `` -z``; ``[!-[:alpha:]]`` is the range ``!-[`` and more)."""
    n = len(pattern)
    j = i + 1
    if j < n and pattern[j] == "^":
        j += 1
    parts = [pattern[i:j]]
    first = True  # a "]" first is itself
    while j < n and (first or pattern[j] != "]"):
        first = False
        if pattern.startswith("[:", j) and pattern.find(":]", j + 2) >= 0:
            end = pattern.find(":]", j + 2)
            name = pattern[j + 2 : end]
            negate = name.startswith("^")
            ranges = _POSIX.get(name[1:] if negate else name)
            if ranges is None:
                raise re.error(f"invalid character class range: {pattern[j : end + 2]}")
            if negate:
                # RE2 negates the class with its case folds where the case is ignored
                # ((?i)[[:^alpha:]] holds no letter); the complement written out would
                # hold the Kelvin sign and the long s, which re folds into k and s
                ranges = complement_ranges(_case_closed(ranges) if ignore_case else ranges)
            parts.append(ranges_text(ranges))
            j = end + 2
            continue
        if pattern[j] == "\\" and pattern[j + 1 : j + 2] in _CLASS_ESCAPES:
            parts.append(pattern[j : j + 2])  # \d, \w, \s and their negations
            j += 2
            continue
        start = j
        low, text, j = _class_char_for_re(pattern, j)
        if pattern.startswith("-", j) and j + 1 < n and pattern[j + 1] != "]":
            high, high_text, j = _class_char_for_re(pattern, j + 1)
            if low is not None and high is not None and high < low:
                raise re.error(f"invalid character class range: {pattern[start:j]}")
            text += "-" + high_text
        parts.append(text)
    out.extend(parts)
    return j  # at the closing "]" (copied by the caller's next step), or the end


_CLASS_CONTROL = {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}


def _class_char_for_re(pattern: str, j: int) -> tuple[int | None, str, int]:
    """The character of a class at ``j`` as RE2 reads it (a character, an octal, hex,
    control or punctuation escape): its code (None where RE2 alone reads it, such as
    ``\\x{41}`` or ``\\pL``: re refuses it), its text for re, and where it ends. Raises
    RE2's reason for an escape RE2 refuses."""
    c = pattern[j]
    if c != "\\":
        return ord(c), _class_text(ord(c)), j + 1
    octal = _octal_code(pattern, j)
    if octal is not None:
        return octal[0], _class_text(octal[0]), octal[1]
    if j + 1 == len(pattern):
        raise re.error("trailing \\")
    e = pattern[j + 1]
    if e in _CLASS_CONTROL:
        return _CLASS_CONTROL[e], _class_text(_CLASS_CONTROL[e]), j + 2
    if e == "x" and _HEX2.match(pattern, j + 2):
        code = int(pattern[j + 2 : j + 4], 16)
        return code, _class_text(code), j + 4
    if e in "xpP":  # \x{41}, \pL: RE2's alone, refused by re
        return None, pattern[j : j + 2], j + 2
    if e.isascii() and not e.isalnum():
        return ord(e), _class_text(ord(e)), j + 2
    raise re.error(f"invalid escape sequence: \\{e}")


def _class_text(o: int) -> str:
    """The character ``o`` in a class, as ``re`` reads it alone whatever follows."""
    if o < 0x20 or o == 0x7F:
        return f"\\x{o:02x}"
    ch = chr(o)
    return "\\" + ch if ch in "\\]^-[&~|" else ch


_HEX2 = re.compile("[0-9A-Fa-f]{2}")


def _re2_meaning(items: Any, flags: int) -> None:
    """Rewrite the parsed pattern ``items`` in place to RE2's meaning: ASCII
    ``\\d``/``\\w``/``\\s``/``\\b``, ``$`` at the end of the text only (outside
    ``(?m)``)."""
    data = items.data
    for k, (op, av) in enumerate(data):
        if op is _sre.AT:
            if av is _sre.AT_END and not flags & re.MULTILINE:
                data[k] = (op, _sre.AT_END_STRING)
            elif av in (_sre.AT_BOUNDARY, _sre.AT_NON_BOUNDARY):
                ascii_only = _sre.SubPattern(items.state, [(op, _sre.AT_BOUNDARY)])
                if av is _sre.AT_NON_BOUNDARY:  # re's \\B never matches an empty text
                    no_boundary = (_sre.ASSERT_NOT, (1, ascii_only))
                    ascii_only = _sre.SubPattern(items.state, [no_boundary])
                data[k] = (_sre.SUBPATTERN, (None, re.ASCII, 0, ascii_only))
        elif op is _sre.IN:
            if flags & re.IGNORECASE:
                data[k] = (op, _astral_ranges(_ascii_set(av, True)))
            else:
                data[k] = (op, _ascii_set(av, False))
        elif op is _sre.SUBPATTERN:
            group, add, remove, body = av
            inner = flags & ~re.UNICODE if add & re.ASCII else flags
            _re2_meaning(body, (inner | add) & ~remove)
        elif op in _REPEATS:
            _re2_meaning(av[2], flags)
        elif op is _sre.BRANCH:
            for branch in av[1]:
                _re2_meaning(branch, flags)
        elif op is getattr(_sre, "ATOMIC_GROUP", None):  # pragma: no cover - refused before
            _re2_meaning(av, flags)


def _astral_ranges(av: list[Any]) -> list[Any]:
    """A parsed class ignoring case with each character past the BMP as a range of that
    one character. Python's ``re`` (3.10 to 3.14 alike) compiles such a character in a
    class of more than one item as it is written, not lowercased, and compares it with
    the lowercased character of the text: ``(?i)[A\U00010400]`` never matched the
    Deseret capital it names, and ``(?i)[^A\U00010400]`` did (the capitals of Deseret,
    Osage, Old Hungarian, Warang Citi, Medefaidrin, Vithkuqi and Adlam). A range is
    compared ignoring case in both of its cases, as RE2 compares the character."""
    return [(_sre.RANGE, (arg, arg)) if op is _sre.LITERAL and arg > 0xFFFF else (op, arg)
            for op, arg in av]  # fmt: skip


def _ascii_set(av: list[Any], ignore_case: bool) -> list[Any]:
    """A parsed class with its categories as RE2's ASCII ranges. A lone negated
    category stays a negated class (``\\W``: not a word character), so that under
    IGNORECASE a character folding into the class (the Kelvin sign) stays out of
    it, as in RE2; in a class with more (``[a\\W]``) such characters are left out of
    the complement, or re would match their folds (``k``) too."""
    cats = [arg for op, arg in av if op is _sre.CATEGORY]
    if not cats:
        return av
    if len(av) == 1:
        ranges, negate = _CATEGORIES[cats[0]]
        head = [(_sre.NEGATE, None)] if negate else []
        return head + [(_sre.RANGE, r) for r in ranges]
    out = []
    for op, arg in av:
        if op is _sre.CATEGORY:
            ranges, negate = _CATEGORIES[arg]
            if negate:
                folds = ignore_case and arg is _sre.CATEGORY_NOT_WORD
                ranges = complement_ranges(_merge(ranges + (_FOLDS_INTO_WORD if folds else [])))
            out += [(_sre.RANGE, r) for r in ranges]
        else:
            out.append((op, arg))
    return out


def _re2_options() -> Any:
    # RE2's defaults, except that a pattern it refuses is not also logged to stderr
    # (an "E0000 ... re2.cc] Error parsing" line from its C++ logger for each refused
    # pattern, at every compile of a document holding one): the refusal is the
    # compiler's problem, reported with its flag and key path.
    options = _re2.Options()
    options.log_errors = False
    return options


def _re2_reason(exc: Exception) -> str:
    reason = exc.args[0] if len(exc.args) == 1 else str(exc)
    if isinstance(reason, bytes):
        return reason.decode("utf-8", "replace")
    return str(reason)


_RE2_OPTIONS = _re2_options() if _re2 is not None else None
_UNANCHORED = _re2._Anchor.UNANCHORED if _re2 is not None else None


def class_ranges(inside: Callable[[int], bool]) -> str:
    """The inside of a character class (``[...]``) holding every code point (surrogates
    left out) for which ``inside`` is true, as ranges: how the importers spell another
    engine's ``\\d``/``\\w``/``\\s`` for RE2, whose own classes are ASCII."""
    return "".join(
        _class_char(low) + ("-" + _class_char(high) if high > low else "")
        for low, high in code_point_ranges(inside)
    )


def _class_char(o: int) -> str:
    if o < 0x20 or o == 0x7F:
        return f"\\x{o:02x}"
    ch = chr(o)
    return "\\" + ch if ch in "\\]^-[" else ch


def code_point_ranges(inside: Callable[[int], bool]) -> list[tuple[int, int]]:
    """The code points (surrogates left out) for which ``inside`` is true, as sorted
    (low, high) ranges."""
    out: list[tuple[int, int]] = []
    start = None
    for o in range(0x110001):
        hit = o <= 0x10FFFF and not 0xD800 <= o <= 0xDFFF and inside(o)
        if hit and start is None:
            start = o
        elif not hit and start is not None:
            out.append((start, o - 1))
            start = None
    return out


def token_ranges(token: str) -> list[tuple[int, int]] | None:
    """The code points the one-character pattern ``token`` (a literal, ``.``, an
    escape or a bracketed class, in Python's syntax, no flags) matches, as merged
    (low, high) ranges, or None when that is not known (a category, a look-around)."""
    try:
        items = list(_sre.parse(token))
    except (re.error, OverflowError, RecursionError):
        return None
    if len(items) != 1:
        return None
    op, av = items[0]
    if op is _sre.ANY:  # without DOTALL: anything but a newline
        return [(0, 9), (11, 0x10FFFF)]
    if op in (_sre.LITERAL, _sre.IN, _sre.NOT_LITERAL):
        return _first_set([items[0]], False)
    return None


def intersect_ranges(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The code points in both merged range lists ``a`` and ``b``."""
    out: list[tuple[int, int]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def ranges_class(ranges: list[tuple[int, int]]) -> str:
    """A bracketed class matching exactly ``ranges`` (surrogates left out), read alike
    by RE2, Python's re and Rust's regex crate; one matching nothing for none."""
    parts = []
    for lo, hi in ranges:
        for a, b in ((lo, min(hi, 0xD7FF)), (max(lo, 0xE000), hi)):
            if a <= b:
                parts.append(_class_char(a) + ("-" + _class_char(b) if b > a else ""))
    if not parts:
        return "[^" + _class_char(0) + "-" + _class_char(0x10FFFF) + "]"
    return "[" + "".join(parts) + "]"
