"""Two more places where a ``matches`` pattern meant one thing on RE2 and another on the
fallback (Python's ``re`` with RE2's meaning, where google-re2 is not installed):

* a repetition count written with a leading zero (``a{01}``, ``x{1,02}``, ``a{00}``) is
  no count to RE2, which reads the braces as literal text (``a{01}`` matches the text
  "a{01}" only); the fallback read it as ``a{1}`` and matched "a";
* a negated POSIX class under ``ignore_case`` (``[[:^alpha:]]``, ``[[:^upper:]]``,
  ``[[:^word:]]``), where RE2 takes the class with its case folds and then negates it:
  no letter matches ``(?i)[[:^alpha:]]``. The fallback wrote the complement out as
  ranges, which hold the Kelvin sign and the long s, and ``re`` folded those into
  "k" and "s": ``k``, ``K``, ``s`` and ``S`` matched.

(The dotted and dotless Turkish i, which ``re`` folds and RE2 does not, stay the
documented corner, so they are left out of the texts here.)
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore import _regex
from tests.fuzz import examples
from tests.test_fix8_eval_regex import _both

re2 = _regex._re2
needs_re2 = pytest.mark.skipif(re2 is None, reason="google-re2 is not installed")

KELVIN, LONG_S = "\u212a", "\u017f"
TEXTS = ["a", "A", "k", "K", "s", "S", "z", KELVIN, LONG_S, "1", "_", "-", " ", "\n", "é",
         "a{01}", "a{00}", "a{0010}", "xx", "x{1,02}", "aa"]  # fmt: skip


@needs_re2
@pytest.mark.parametrize(
    "pattern",
    ["a{01}", "a{00}", "^x{1,02}$", "a{0010}", "^a{01,}$", "^a{1,}b{01}", "(?:ab){02}"],
)
def test_a_count_with_a_leading_zero_is_literal_text(pattern):
    got = _both(pattern, False, TEXTS + ["abab", "(?:ab){02}", "ab{02}", "ab"])
    assert got is not None and got[0] == got[1], (pattern, got)


@needs_re2
@pytest.mark.parametrize(
    "pattern, ignore_case",
    [
        ("[[:^alpha:]]", True),
        ("[[:^upper:]]", True),
        ("[[:^lower:]]", True),
        ("[[:^word:]]", True),
        ("[[:^alnum:]]", True),
        ("[[:^graph:]]", True),
        ("[[:^xdigit:]]", True),
        ("(?i)[[:^alpha:]]", False),
        ("(?i:[[:^alpha:]])", False),
        ("(?i:x|(y)[[:^upper:]])", False),
        ("(?-i:[[:^alpha:]])", True),
        ("(?i:(?-i:[[:^alpha:]])[[:^alpha:]])", False),
        ("[^[:^alpha:]]", True),
        ("[1[:^alpha:]]", True),
        ("[k[:^alpha:]]", True),
        ("[[:^alpha:]]", False),
    ],
)
def test_a_negated_posix_class_under_ignore_case_holds_no_letter(pattern, ignore_case):
    texts = TEXTS + ["x" + t for t in TEXTS] + ["y" + t for t in TEXTS]
    got = _both(pattern, ignore_case, texts)
    assert got is not None and got[0] == got[1], (pattern, ignore_case, got)


POSIX = ["alpha", "upper", "lower", "word", "alnum", "xdigit", "digit", "space", "punct",
         "graph", "print", "cntrl", "blank", "ascii"]  # fmt: skip
ITEMS = [f"[[:{n}:]]" for n in POSIX] + [f"[[:^{n}:]]" for n in POSIX] + [
    "[^[:^alpha:]]", "[k[:^upper:]]", "[^s[:^lower:]]", "k", "S", "\\W", "[^a-z]", "x{01}",
    "y{1,02}", "z{0}", "(?i:", "(?-i:", "(", ")", "|", "*", "?",
]  # fmt: skip

JOINED = st.lists(st.sampled_from(TEXTS), max_size=3).map("".join)


@needs_re2
@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    parts=st.lists(st.sampled_from(ITEMS), min_size=1, max_size=5),
    ignore_case=st.booleans(),
    texts=st.lists(JOINED, min_size=1, max_size=6),
)
def test_posix_classes_and_counts_answer_as_on_re2(parts, ignore_case, texts):
    got = _both("".join(parts), ignore_case, texts)
    if got is not None and got[0][0] == "answers" and got[1][0] == "answers":
        assert got[0] == got[1], ("".join(parts), ignore_case, texts)


@pytest.mark.parametrize(
    "pattern, ignore_case, value, found",
    [
        ("^a{01}$", False, "a", False),
        ("^a{01}$", False, "a{01}", True),
        ("^[[:^alpha:]]+$", True, "kS", False),
        ("^[[:^alpha:]]+$", True, "1-2", True),
    ],
)
def test_both_evaluators_answer_as_re2_without_it(make, monkeypatch, pattern, ignore_case, value,
                                                  found):  # fmt: skip
    monkeypatch.setattr(_regex, "_re2", None)  # the fallback, as where google-re2 is absent
    when = {"attr": "a", "matches": pattern, "ignore_case": ignore_case}
    engine = make({"flags": {"m": {"default": "off", "rules": [{"when": when, "serve": "on"}]}}})
    assert engine.is_enabled("m", {"a": value}) is found
    assert engine.is_enabled("m", engine.context({"a": value})) is found
