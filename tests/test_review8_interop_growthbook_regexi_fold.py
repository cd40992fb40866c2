"""GrowthBook ``$regexi`` and the Turkish i, against the SDK (growthbook 4.0.0 runs
Python's ``re`` with IGNORECASE).

Python's ``re``, ignoring case, takes "I", "i", dotted "İ" (U+0130) and dotless "ı"
(U+0131) for one another; RE2, which cfgcore runs imported regexes on, folds "I" with
"i" alone. ``{"name": {"$regexi": "^I$"}}`` answered False for "ı" and "İ" where the SDK
answers True (and ``^ı$`` False for "i"), on both evaluators. The importer now writes
each of the four, and each class holding one, as all four.
"""

from __future__ import annotations

import copy
import logging
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.interop import InteropError, growthbook
from tests.fuzz import examples

pytest.importorskip("growthbook")
from growthbook.core import evalCondition  # noqa: E402

SUBJECTS = ["I", "i", "\u0130", "\u0131", "", "ix", "Ix", "\u0131x", "\u0130X", "h", "j", "K"]


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("growthbook").setLevel(logging.CRITICAL)


def _check(make_py_and_c, op: str, pattern: str, subjects: list[str]) -> None:
    cond = {"name": {op: pattern}}
    features = {"f": {"defaultValue": False, "rules": [{"condition": cond, "force": True}]}}
    try:
        snap = growthbook.to_snapshot(copy.deepcopy(features))
    except InteropError as exc:  # a refusal is no disagreement, but these all import
        pytest.fail(f"{pattern!r} refused: {exc}")
    engines = [make(snap) for make in make_py_and_c]
    for text in subjects:
        attrs = {"name": text}
        want = evalCondition(copy.deepcopy(attrs), copy.deepcopy(cond), {})
        for engine in engines:
            got = engine.is_enabled("f", growthbook.context(attrs))
            assert got is want, (op, pattern, text)


@pytest.mark.parametrize(
    "pattern",
    ["^I$", "^i$", "^\u0130$", "^\u0131$", "^[h-j]$", "^[^i]$", "^[\u0131]x$", "^\\x49",
     "^(?P<id>i)x$", "^[A-Z]+$", "[\u0100-\u0140]", "^[^\u0100-\u0140]$", "ix|k"],
)  # fmt: skip
@pytest.mark.parametrize("op", ["$regexi", "$notRegexi"])
def test_the_turkish_i_folds_as_the_sdk_folds_it(make_py_and_c, op, pattern):
    _check(make_py_and_c, op, pattern, SUBJECTS)


def test_regex_without_ignore_case_is_unchanged(make_py_and_c):
    _check(make_py_and_c, "$regex", "^I$", SUBJECTS)
    _check(make_py_and_c, "$regex", "^[h-j]$", SUBJECTS)


_PIECES = st.sampled_from(
    ["i", "I", "\u0130", "\u0131", "x", "K", "[i]", "[^i]", "[h-j]", "[^A-Z]", "[\u0131-\u0132]",
     "\\x49", "\\x69", ".", "(?:i|x)", "\\w", "[\\w]", "s", "\u017f"]
)  # fmt: skip
_TEXTS = st.text(alphabet="iI\u0130\u0131xXkK\u212asS\u017f", max_size=3)


@settings(max_examples=examples(60))
@given(
    pieces=st.lists(_PIECES, min_size=1, max_size=3),
    anchored=st.booleans(),
    texts=st.lists(_TEXTS, min_size=1, max_size=6),
)
def test_generated_case_insensitive_patterns_answer_as_the_sdk(
    make_py_and_c, pieces, anchored, texts
):
    pattern = "".join(pieces)
    if anchored:
        pattern = f"^{pattern}$"
    re.compile(pattern, re.IGNORECASE)  # every piece is valid Python
    _check(make_py_and_c, "$regexi", pattern, texts)
