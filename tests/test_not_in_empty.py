"""``not_in: []``: no value is among no constants, so any usable value holds it.

An emptied block list (``not_in: []`` written by a tool that lists blocked users) used
to hold for no value at all, so a rule "serve on to everyone not blocked" turned off for
everyone the day the list emptied; with ``ignore_case`` it held for any string. Both
evaluators now answer it as "the attribute has a usable value" (a string with
``ignore_case``), the same values a one-constant ``not_in`` of each type admits.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.texts import any_text

VALUES = st.one_of(
    any_text(max_size=8),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)


def _flag(when: dict[str, Any]) -> dict[str, Any]:
    return {"variants": {"on": True, "off": False}, "default": "off",
            "rules": [{"when": when, "serve": "on"}]}  # fmt: skip


# "any usable value", spelt with operators whose meaning is settled: a value outside a
# one-constant list of its type (constants no drawn value equals), or a boolean
USABLE = {"any": [
    {"attr": "c", "not_in": ["\U0010fffe never drawn"]},
    {"attr": "c", "not_in": [-1.2345e-300]},
    {"attr": "c", "in": [True, False]},
]}  # fmt: skip
DOC = {"flags": {
    "empty": _flag({"attr": "c", "not_in": []}),
    "empty_ci": _flag({"attr": "c", "not_in": [], "ignore_case": True}),
    "usable": _flag(USABLE),
    "usable_text": _flag({"attr": "c", "not_in": ["\U0010fffe never drawn"], "ignore_case": True}),
    "in_empty": _flag({"attr": "c", "in": []}),
}}  # fmt: skip


@given(value=VALUES)
def test_not_in_nothing_holds_for_every_usable_value_on_both_evaluators(make_py_and_c, value):
    answers = []
    for build in make_py_and_c:
        engine = build(DOC)
        for ctx in ({"c": value}, engine.context({"c": value})):
            got = {k: engine.is_enabled(k, ctx) for k in DOC["flags"]}
            assert got["empty"] is got["usable"], (value, got)
            assert got["empty_ci"] is got["usable_text"], (value, got)
            assert got["in_empty"] is False
            answers.append(got)
    assert all(a == answers[0] for a in answers)


def test_an_emptied_block_list_excludes_nobody_and_still_needs_a_value(make):
    engine = make(DOC)
    for value in ("u1", "", 0, 2.5, math.inf, True, False):
        assert engine.is_enabled("empty", {"c": value}) is True, value
    for value in (None, math.nan, [1], {"a": 1}, "\ud800"):
        assert engine.is_enabled("empty", {"c": value}) is False, value
    assert engine.is_enabled("empty", {}) is False  # a missing value holds no operator
    assert engine.is_enabled("empty_ci", {"c": "U1"}) is True
    assert engine.is_enabled("empty_ci", {"c": 1}) is False  # ignore_case: strings only
