"""The regex decisions do not depend on the running Python's Unicode database.

Python's ``unicodedata`` is Unicode 13.0 on 3.10, 14.0 on 3.11, 15.0 on 3.12 and 15.1
on 3.13. The GrowthBook importer wrote Python's Unicode ``\\w`` from it, and the cost
bound measured that class: 886 UTF-8 byte ranges on 3.11, 908 on 3.13, so ``\\w{21}z``
was accepted on 3.11 and refused on 3.13, and a ``(?i)`` pattern holding a letter
3.11 first paired with another case (U+2C2F) measured differently on 3.10. The classes
and case pairs now come from ``cfgcore._unicode_tables`` (one Unicode version). Here:
the tables against the running Python's data, and decisions whose expectations are
computed from the tables (never from the running Python), so they hold on every Python.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore import _regex, _unicode_tables
from cfgcore._regex import (
    MAX_REGEX_COST,
    MAX_REGEX_LIVE,
    RegexCostError,
    compile_regex,
    cost_hazard,
    ranges_text,
    utf8_sequences,
)
from cfgcore._unicode_tables import UNICODE_VERSION, case_variants, contains, ranges
from cfgcore.interop import InteropError, growthbook, unleash
from tests.fuzz import examples

CLASSES = [name for name in _unicode_tables.DEFINITIONS if name != "assigned"]


def _size(rs: Any) -> int:
    """UTF-8 byte-range sequences of code point ranges (what the bound counts)."""
    return sum(len(utf8_sequences(lo, hi)) for lo, hi in rs)


def _points(rs: Any) -> set[int]:
    return {o for lo, hi in rs for o in range(lo, hi + 1)}


# -- the tables, against the running Python ----------------------------------------------


@pytest.mark.skipif(
    unicodedata.unidata_version != UNICODE_VERSION,
    reason=f"this Python's Unicode is {unicodedata.unidata_version}, the tables' "
    f"{UNICODE_VERSION}: checked where both assign a character (below)",
)
def test_the_tables_regenerate_exactly_from_a_python_of_their_unicode_version():
    assert _unicode_tables.generate() == _unicode_tables.current_section()


@pytest.fixture(scope="module")
def assigned_in_both() -> set[int]:
    """Code points both the tables' Unicode and the running Python's assign."""
    table = _points(ranges("assigned"))
    return {o for o in table if unicodedata.category(chr(o)) != "Cn"}


@pytest.mark.parametrize("name", CLASSES)
def test_each_class_is_the_running_pythons_where_both_assign_the_character(name, assigned_in_both):
    test = _unicode_tables.DEFINITIONS[name]
    running = {o for o in assigned_in_both if test(chr(o))}
    assert _points(ranges(name)) & assigned_in_both == running
    # and the tables hold no character their own Unicode leaves unassigned
    assert _points(ranges(name)) <= _points(ranges("assigned"))


def test_case_pairs_are_the_running_pythons_where_both_assign_the_characters(assigned_in_both):
    for o in assigned_in_both:
        running = {ord(v) for v in _unicode_tables.python_case_variants(chr(o))}
        assert set(case_variants(o)) & assigned_in_both == running & assigned_in_both, hex(o)


@pytest.mark.parametrize("name", [*CLASSES, "assigned"])
def test_tables_are_sorted_disjoint_ranges_without_surrogates(name):
    rs = ranges(name)
    assert all(lo <= hi for lo, hi in rs)
    assert all(a[1] + 1 < b[0] for a, b in zip(rs, rs[1:], strict=False))  # merged
    assert not any(lo <= 0xDFFF and hi >= 0xD800 for lo, hi in rs)
    assert all(contains(name, lo) and contains(name, hi) for lo, hi in rs)
    assert not any(contains(name, hi + 1) for _, hi in rs[:-1])


# -- decisions computed from the tables --------------------------------------------------


def _matches(snapshot: Any) -> list[str]:
    """Every ``matches`` pattern in an imported snapshot's rules."""
    found: list[str] = []

    def walk(cond: Any) -> None:
        if cond is None:
            return
        if cond.matches is not None:
            found.append(cond.matches)
        for inner in [*(cond.all or []), *(cond.any or []), cond.not_]:
            walk(inner)

    for flag in snapshot.flags.values():
        for rule in flag.rules:
            walk(rule.when)
    return found


def _growthbook(pattern: str) -> Any:
    rule = {"condition": {"s": {"$regex": pattern}}, "force": True}
    feats = {"f": {"defaultValue": False, "rules": [rule]}}
    return growthbook.to_snapshot({"features": feats})


def _unleash(pattern: str) -> Any:
    payload = {"version": 2, "features": [{"name": "f", "enabled": True, "strategies": [
        {"name": "default", "parameters": {}, "constraints": [
            {"contextName": "x", "operator": "REGEX", "value": pattern}]}]}]}  # fmt: skip
    return unleash.to_snapshot(payload)


def _repeat_edge(class_size: int) -> int:
    """The largest n for which an unanchored ``X{n}z`` passes the bound, X a broad
    class of ``class_size`` byte ranges: n live positions x (n x size + the z)."""
    n = 0
    while n + 1 <= MAX_REGEX_LIVE and (n + 1) * ((n + 1) * class_size + 1) <= MAX_REGEX_COST:
        n += 1
    return n


@pytest.mark.parametrize(
    ("importer", "kind", "table"),
    [
        (_growthbook, "\\w", "python_w"),
        (_growthbook, "\\d", "python_d"),
        (_unleash, "\\d", "rust_d"),
    ],
    ids=["growthbook-w", "growthbook-d", "unleash-d"],
)
def test_an_imported_unicode_class_is_the_tables_and_its_edge_follows_from_them(
    importer, kind, table
):
    edge = _repeat_edge(_size(ranges(table)))
    assert 0 < edge < MAX_REGEX_LIVE  # the size decides, not the live positions
    [pattern] = _matches(importer(f"{kind}{{{edge}}}z"))
    assert ranges_text(ranges(table)) in pattern  # the same text on every Python
    assert cost_hazard(pattern, False) is None
    with pytest.raises(InteropError, match="overflow RE2's DFA cache"):
        importer(f"{kind}{{{edge + 1}}}z")


def test_growthbook_w21_is_refused_on_every_python():
    # Python's \w in Unicode 15.1 is 749 ranges, 908 UTF-8 byte ranges: \w{20}z is
    # 20 x 18,161 = 363,220, \w{21}z 21 x 19,069 = 400,449 (over 400,000). It was
    # accepted on Python 3.10-3.12, whose smaller Unicode measured 855-905.
    assert UNICODE_VERSION == "15.1.0" and _size(ranges("python_w")) == 908
    assert _repeat_edge(908) == 20
    _growthbook(r"\w{20}z")
    with pytest.raises(InteropError, match="400,449, over 400,000"):
        _growthbook(r"\w{21}z")


def test_case_pairs_are_measured_from_the_tables():
    # U+2C2F (Glagolitic) has a lower case, U+2C5F, from Unicode 14.0 on: on Python
    # 3.10 it measured one byte range under (?i), two on 3.11. The tables pair them.
    assert case_variants(0x2C2F) == (0x2C5F,)
    dot = _size([(0, 9), (11, 0x10FFFF)])
    letter = _size([(0x2C2F, 0x2C2F), (0x2C5F, 0x2C5F)])
    pattern = "(?i).{100}\u2c2f{1000}\u2c2f{1000}z"
    want_refused = 100 * (100 * dot + 2000 * letter + 1) > MAX_REGEX_COST
    assert want_refused  # 2 ranges a letter; 1 would have passed
    assert 100 * (100 * dot + 2000 * 1 + 1) <= MAX_REGEX_COST
    assert (cost_hazard(pattern, False) is not None) is want_refused
    with pytest.raises(RegexCostError):
        compile_regex(pattern, False)


def test_the_measure_reads_no_case_data_of_the_running_python(monkeypatch):
    # as a Python that knows no case at all would: the measure is unchanged ...
    patterns = ["(?i).{100}\u2c2f{1000}\u2c2f{1000}z", "(?i)[\u2c00-\u2c5f]{128}z"]
    patterns.append("ab" * 200 + "z")
    before = [cost_hazard(p, True) for p in patterns]
    monkeypatch.setattr(_unicode_tables, "python_case_variants", lambda c: set())
    _regex._position_cost.cache_clear()
    assert [cost_hazard(p, True) for p in patterns] == before
    # ... while linear_hazard (without RE2) still adds the running re's own folds
    monkeypatch.setattr(_unicode_tables, "python_case_variants", lambda c: {"x"})
    assert _regex.linear_hazard("^(?:ab|xy)+$", ignore_case=True) is not None
    assert _regex.linear_hazard("^(?:ab|cd)+$", ignore_case=False) is None


# -- a property: what is accepted is within the bound, measured from the tables -----------

_PIECES = {name: "[" + ranges_text(ranges(name)) + "]" for name in CLASSES}


@given(
    st.lists(
        st.tuples(st.sampled_from([*CLASSES, "literal"]), st.integers(1, 40)),
        min_size=1,
        max_size=4,
    ),
    st.booleans(),
)
@settings(max_examples=examples(60), deadline=None)
def test_accepted_patterns_stay_within_the_bound_measured_from_the_tables(items, anchored):
    # an unanchored sequence of X{n} (a table's class, or the letter q) then z; anchored
    # with ^, positions before the first one whose width varies are not live: none here
    pattern = (
        ("^" if anchored else "")
        + "".join(("q" if name == "literal" else _PIECES[name]) + f"{{{n}}}" for name, n in items)
        + "z"
    )
    live = 0 if anchored else sum(n for name, n in items if name != "literal")
    size = sum(n * (1 if name == "literal" else _size(ranges(name))) for name, n in items)
    size += 1 + int(anchored)
    within = live <= MAX_REGEX_LIVE and size * max(live, 1) <= MAX_REGEX_COST
    try:
        compile_regex(pattern, False)
        accepted = True
    except RegexCostError:
        accepted = False
    assert accepted is within, (pattern[:80], live, size)
