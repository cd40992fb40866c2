"""Without google-re2, a bracketed class is read item by item as RE2 reads it.

A POSIX class written out as ranges, an octal escape, or a ``-`` after a class must not
join with what follows it in the text ``re`` reads: ``[[:blank:]-z]`` is a tab, a space,
``-`` and ``z`` (not the range from the space to ``z``), ``[\\0[:word:]]`` is NUL and the
word characters (not ``\\00`` and the range ``0``-``9`` from NUL), and ``[!-[:alpha:]]``
is the range ``!``-``[`` followed by ``:alph`` and a literal ``]``. A bad range is refused
with RE2's reason naming it as written, not the rewritten text (``a-\\u``).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore import _regex
from cfgcore.snapshot import snapshot_from_dict
from tests.fuzz import examples
from tests.test_fix8_eval_regex import _both

re2 = _regex._re2
needs_re2 = pytest.mark.skipif(re2 is None, reason="google-re2 is not installed")

TEXTS = ["\t", " ", "-", "z", "a", "A", "q", "!", ",", "0", "9", "_", "\n", "\x00", "k", "K",
         "\u212a", "[", "]", ":", "\\", "é", "\U00010400", "\U00010428", "!]", "[]",
         "p]"]  # fmt: skip

JOINED = [r"[[:blank:]-z]", r"[[:blank:]--z]", r"[^[:blank:]-z]", r"[[:space:]-z]",
          r"[!-[:alpha:]]", r"[--[:alpha:]]", r"[\00[:word:]]", r"[\0[:digit:]]",
          r"[^\0[:alnum:]]", r"[\w-[:digit:]]", r"[[:alpha:]-[:digit:]]", r"[\12[:xdigit:]]",
          r"[a\0-\12]", r"[]-a]", r"[^]-a]", r"[\x41-\x5a]", r"[\t-\r]", r"[&&~~||]"]  # fmt: skip


@needs_re2
@pytest.mark.parametrize("ignore_case", [False, True])
@pytest.mark.parametrize("pattern", JOINED)
def test_fallback_class_items_do_not_join(pattern, ignore_case):
    got = _both(pattern, ignore_case, TEXTS)
    assert got is not None and got[0][0] == "answers" and got[0] == got[1], (pattern, got)


@needs_re2
@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"[a-\12]", r"invalid character class range: a-\12"),
        (r"[z-\101]", r"invalid character class range: z-\101"),
        (r"[a-\]]", r"invalid character class range: a-\]"),
        (r"[a-\d]", r"invalid escape sequence: \d"),
        (r"[\q]", r"invalid escape sequence: \q"),
        (r"[\8]", r"invalid escape sequence: \8"),
    ],
)
def test_fallback_bad_class_refused_with_re2s_reason(pattern, reason):
    got = _both(pattern, False, ["a"])
    assert got == [("refused", reason), ("refused", reason)], got


def test_a_flag_with_such_a_class_evaluates_as_re2_without_it(make, monkeypatch):
    monkeypatch.setattr(_regex, "_re2", None)
    snap = snapshot_from_dict(
        {"flags": {"f": {"variants": {"on": 1, "off": 0, "nul": 2}, "default": "off", "rules": [
            {"when": {"attr": "c", "matches": r"^[[:blank:]-z]$"}, "serve": "on"},
            {"when": {"attr": "c", "matches": r"^[\0[:digit:]]$"}, "serve": "nul"}]}}}
    )  # fmt: skip
    engine = make(snap)
    assert [engine.variant("f", {"c": c}) for c in ("-", "z", " ", "q", "\x00", "7", ":")] == [
        "on", "on", "on", "off", "nul", "nul", "off"]  # fmt: skip


CLASS_ITEMS = ["a", "z", "K", "-", "-", "]", "[", "^", ":", "!", "0", r"\w", r"\W", r"\d", r"\s",
               r"\0", r"\00", r"\12", r"\101", r"\55", r"\135", r"\777", r"\x41", r"\t", r"\-",
               r"\]", "[:alpha:]", "[:^alpha:]", "[:blank:]", "[:digit:]", "[:word:]",
               "[:punct:]", "\U00010400", "\u212a", "é"]  # fmt: skip


@needs_re2
@settings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=st.lists(st.sampled_from(CLASS_ITEMS), min_size=1, max_size=5),
    negate=st.booleans(),
    ignore_case=st.booleans(),
    tail=st.sampled_from(["", "]", "x", "-]"]),
)
def test_fallback_classes_answer_as_re2(items, negate, ignore_case, tail):
    pattern = "[" + ("^" if negate else "") + "".join(items) + "]" + tail
    got = _both(pattern, ignore_case, TEXTS)
    if got is None or got[0][0] == "refused":  # refusals: wording may differ (re's own)
        return
    assert got[0] == got[1], (pattern, ignore_case)


@pytest.mark.parametrize(
    ("pattern", "where"),
    [
        (r"\101**", "multiple repeat at position 5"),  # read as \u0041**: position 7
        (r"(?<n>a))", "unbalanced parenthesis at position 7"),  # as (?:a)): position 5
        (r"(?P<long_name>a)\q", "bad escape \\q at position 16"),
        (r"[[:alpha:]]\0**", "multiple repeat at position 14"),
    ],
)
def test_fallback_error_positions_are_the_patterns_as_written(monkeypatch, pattern, where):
    monkeypatch.setattr(_regex, "_re2", None)
    with pytest.raises(Exception) as err:
        _regex.compile_regex(pattern, False)
    assert str(err.value) == where
