"""Targeting regexes without google-re2, third audit: Python's backtracking ``re`` runs
them, so ``_regex.linear_hazard`` must refuse every pattern whose choices multiply,
not only quantified groups. ``'^' + '(?:a|aa)' * 22 + 'c'`` against ``'a' * 44`` (each
alternation can take one or two characters) and ``'^' + 'a?' * 22 + 'a' * 22`` against
``'a' * 22`` (Thompson's example) run for over a second on ``re`` and double with every
further item; both were accepted.
"""

from __future__ import annotations

import re

import pytest

from cfgcore import _regex
from cfgcore.errors import SnapshotError
from cfgcore.interop import InteropError, growthbook, unleash


@pytest.fixture
def without_re2(monkeypatch):
    monkeypatch.setattr(_regex, "_re2", None)


def _flag(pattern: str, ignore_case: bool = False) -> dict:
    cond = {"attr": "email", "matches": pattern}
    if ignore_case:
        cond["ignore_case"] = True
    return {"flags": {"f": {"default": "off", "rules": [{"when": cond, "serve": "on"}]}}}


# Each backtracks exponentially on Python's re (ambiguous choices in sequence or under a
# quantifier); the old check accepted all of them.
EXPONENTIAL = [
    "^" + "(?:a|aa)" * 22 + "c",  # overlapping alternations in sequence
    "^" + "a?" * 22 + "a" * 22,  # optional items in sequence
    "^" + "(?:a|ab)" * 12 + "(?:b|ba)" * 12 + "x",
    "^(?:a?a?)+c",  # a quantified group that can match the empty string
    "^(a?)*$",
    "^(?:x?y?)*z",
    "^(?:a?){16}a{16}$",
    "(?:cat|ca)(?:t|tt)" * 9,  # unanchored, bounded, still multiplying
]


@pytest.mark.parametrize("pattern", EXPONENTIAL)
def test_without_re2_multiplying_choices_are_refused_naming_the_flag(without_re2, make, pattern):
    assert _regex.linear_hazard(pattern) is not None
    with pytest.raises(SnapshotError) as err:
        make(_flag(pattern))
    text = str(err.value)
    assert "flags.f.rules[0].when.matches: refused regular expression" in text
    assert "exponential backtracking" in text and "google-re2" in text


def test_case_folding_counts_as_the_same_start(without_re2):
    # 'k', 'K' and the Kelvin sign are one character to re.IGNORECASE
    assert _regex.linear_hazard("^(?:kx|\u212ay)+$") is None
    assert _regex.linear_hazard("^(?:kx|\u212ay)+$", ignore_case=True) is not None
    assert _regex.linear_hazard("^(?:Ab|ac)+$", ignore_case=True) is not None
    assert _regex.linear_hazard("^(?:ab|cd)+$", ignore_case=True) is None


# Linear on re: alternations whose branches start differently (at most one can match at
# a position), single optional items, bounded repeats of one way to match.
LINEAR = [
    "^(?:foo|bar)+$",
    "^(?:ab|ac)+$",
    "^(?:[^a]x|ay)+$",
    "^https?://[a-z]+$",
    "^(?:GET|PUT|POST) /",
    "\\bcat\\b",
    "^[a-z]+(?:-beta|-rc)?$",
    "^(?:ab|cd){2}-\\d{4}$",
]
_VALUES = ["foobar", "abac", "zxay", "https://x", "PUT /a", "a cat", "x-rc", "abcd-5555",
           "", "fooba", "a" * 30, "ab" * 20 + "!"]  # fmt: skip


@pytest.mark.parametrize("pattern", LINEAR)
def test_without_re2_linear_patterns_run_on_both_evaluators(without_re2, make, pattern):
    assert _regex.linear_hazard(pattern) is None
    engine = make(_flag(pattern))
    for value in _VALUES:
        want = re.search(pattern, value) is not None
        assert engine.is_enabled("f", {"email": value}) is want, (pattern, value)


def test_growthbook_import_refuses_a_multiplying_regex_naming_the_feature(without_re2):
    pattern = "^" + "(?:a|aa)" * 22 + "c"
    feats = {"f": {"defaultValue": False, "rules": [{"condition": {"s": {"$regex": pattern}},
                                                     "force": True}]}}  # fmt: skip
    with pytest.raises(InteropError) as err:
        growthbook.to_snapshot({"features": feats})
    assert "features.f" in str(err.value) and "exponential backtracking" in str(err.value)


def test_unleash_import_refuses_a_regex_it_cannot_run_instead_of_never_matching(without_re2):
    # yggdrasil matches 'a' * 44 + 'c' (Rust's regex is linear); the old importer made
    # the constraint "never matches" without a word
    pattern = "^" + "(?:a|aa)" * 22 + "c"
    payload = {"version": 2, "features": [{"name": "f", "enabled": True, "strategies": [
        {"name": "default", "parameters": {}, "constraints": [
            {"contextName": "x", "operator": "REGEX", "value": pattern}]}]}]}  # fmt: skip
    with pytest.raises(InteropError) as err:
        unleash.to_snapshot(payload)
    text = str(err.value)
    assert "features[0].strategies[0].constraints[0]" in text and "google-re2" in text


def test_growthbook_string_order_regexes_stay_accepted_without_re2(without_re2, make):
    # $gt/$lt are lowered to one alternation of up to 257 branches that differ in the
    # character after a common prefix: one way to match, accepted as before
    feats = {"f": {"defaultValue": False, "rules": [{"condition": {"s": {"$gt": "m" * 200}},
                                                     "force": True}]}}  # fmt: skip
    engine = make(growthbook.to_snapshot({"features": feats}))
    for value, want in [("m" * 200 + "a", True), ("m" * 199 + "n", True), ("m" * 200, False)]:
        assert engine.is_enabled("f", growthbook.context({"s": value})) is want
