"""A ``matches`` pattern cannot overflow RE2's DFA cache (tens to hundreds of ms a search).

RE2 is linear in the text, but a pattern that keeps many positions alive at once
(``.{1000}z``: 180-234 ms a search on a 4,096-character input, measured) overflows its
DFA cache and falls back to stepping every thread over every byte. ``cost_hazard``
bounds that from the pattern alone (positions a search keeps alive, times the size of
the program in UTF-8 byte ranges), the same with and without google-re2. These tests
check the bound's decisions and its parts, never a timing.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore import _regex
from cfgcore._regex import MAX_REGEX_COST, MAX_REGEX_LIVE, cost_hazard, utf8_sequences
from cfgcore.errors import SnapshotError
from cfgcore.interop import InteropError, growthbook, unleash
from tests.fuzz import examples

# Each measured at 17-284 ms a search of a 4,096-character text (benchmarks/RESULTS.md,
# "Regex cost", and the commit that added the bound); every one must be refused.
MEASURED_SLOW = [
    ".{1000}z",
    "[^z]{1000}z",
    "[^\\x00-\\x7f]{1000}z",
    "a[ab]{446}z",
    "a[ab]{1000}c",
    "[α-ω]{700}z",
    "^.*.{1000}z",  # anchored, but .* lets the rest start anywhere
    "^(?:.?){1000}z",  # anchored, but the copies land at many offsets
    "^(?:.|..){500}z",
    "^(?:[ab]|aa|bb){1000}z",
    "(?m)^.{1000}",  # ^ after every newline: not anchored
    "(?:" + "|".join(format(i, "012b").translate({48: "a", 49: "b"}) for i in range(800)) + ")z",
]
# Targeting patterns people write, and two at the bounds' edge (.{128}z, a[ab]{128}z):
# accepted.
ACCEPTED = [
    r"^user-[0-9]+$",
    r"@example\.com$",
    r"^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$",
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    r"^[0-9a-f]{64}$",
    r"\d{3}-\d{3}-\d{4}",
    r"^(\d{1,3}\.){3}\d{1,3}$",
    r"^.{0,256}$",
    r"^.{1000}z",
    r"(?i)^(?:premium|family|student)$",
    r"^(?:en|fr|de|es|it|pt|nl|sv|da|fi|no|pl)-[A-Z]{2}$",
    r"Mozilla/5\.0 \(iPhone",
    ".{128}z",
    "a[ab]{128}z",
]


def _flag(pattern: str) -> dict:
    cond = {"attr": "s", "matches": pattern}
    return {"flags": {"f": {"default": "off", "rules": [{"when": cond, "serve": "on"}]}}}


@pytest.mark.parametrize("pattern", MEASURED_SLOW)
def test_patterns_measured_slow_are_refused_naming_the_key_path(make, pattern):
    assert cost_hazard(pattern, False) is not None
    with pytest.raises(SnapshotError) as err:
        make(_flag(pattern))
    text = str(err.value)
    assert "flags.f.rules[0].when.matches: refused regular expression" in text
    assert "overflow RE2's DFA cache" in text


@pytest.mark.parametrize("pattern", ACCEPTED)
def test_accepted_patterns_are_accepted_and_answer_as_re2_means_them(make, pattern):
    assert cost_hazard(pattern, False) is None
    engine = make(_flag(pattern))
    ascii_meaning = re.compile(pattern, re.ASCII)  # RE2's \d, \w are ASCII
    for value in ["user-12", "x@example.com", "a" * 300, "a" * 128 + "z", "b" * 129 + "z",
                  "ab" * 70 + "z", "premium", "en-GB", "10.0.0.1", "555-123-4567",
                  "deadbeef-0000-4000-8000-0123456789ab", "Mozilla/5.0 (iPhone"]:  # fmt: skip
        want = ascii_meaning.search(value) is not None
        assert engine.is_enabled("f", {"s": value}) is want, (pattern, value)


@pytest.mark.parametrize("pattern", MEASURED_SLOW + ACCEPTED)
def test_the_decision_is_the_same_with_and_without_re2(monkeypatch, pattern):
    verdict = cost_hazard(pattern, False)
    if _regex._re2 is not None:  # RE2 compiles exactly what the bound lets through
        if verdict is None:
            _regex.compile_regex(pattern, False)
        else:
            with pytest.raises(_regex.RegexCostError) as err:
                _regex.compile_regex(pattern, False)
            assert str(err.value) == verdict
    monkeypatch.setattr(_regex, "_re2", None)
    assert cost_hazard(pattern, False) == verdict  # a function of the pattern alone
    if verdict is not None:  # without RE2 refused too (by the cost, or as non-linear)
        with pytest.raises(ValueError):
            _regex.compile_regex(pattern, False)


def test_the_bound_counts_live_positions_and_program_size():
    assert cost_hazard(f".{{{MAX_REGEX_LIVE}}}z", False) is None
    over = cost_hazard(f".{{{MAX_REGEX_LIVE + 1}}}z", False)
    assert over is not None and f"{MAX_REGEX_LIVE + 1:,} positions" in over
    # nested counts multiply: 13 x 10 copies of '.' is 130 live positions
    assert cost_hazard("(?:.{10}){12}z", False) is None
    assert cost_hazard("(?:.{10}){13}z", False) is not None
    # literals are not live: a long literal run costs its size only
    assert cost_hazard("a{1000}b", False) is None
    # alternatives count as live where the search tries them at every offset ...
    words = [format(i, "010b") for i in range(MAX_REGEX_LIVE + 1)]
    assert cost_hazard("(?:" + "|".join(words) + ")", False) is not None
    # ... and not in an anchored pattern, where one offset tries them
    assert cost_hazard("^(?:" + "|".join(words) + ")$", False) is None
    # a wide Unicode class is a large program: fewer copies fit
    wide = "[" + growthbook._unicode_class("w") + "]"
    assert cost_hazard(wide + "{10}z", False) is None
    message = cost_hazard(wide + "{30}z", False)
    assert message is not None and "byte ranges" in message and f"{MAX_REGEX_COST:,}" in message


def test_case_folded_letters_are_not_live_positions():
    # (?i)x matches x and X only: as selective as a literal, so not broad
    assert cost_hazard("(?i)" + "ab" * 200 + "z", False) is None
    assert cost_hazard("ab" * 200 + "z", True) is None
    assert cost_hazard("[ab]" * 200 + "z", True) is not None


@given(st.integers(0, 0x10FFFF), st.integers(0, 0x10FFFF))
@settings(max_examples=examples(200), deadline=None)
def test_utf8_sequences_match_each_encoded_code_point_exactly_once(a, b):
    lo, hi = min(a, b), max(a, b)
    seqs = utf8_sequences(lo, hi)
    samples = {lo, hi, (lo + hi) // 2, lo - 1, hi + 1, 0x7F, 0x80, 0x7FF, 0x800, 0xFFFF,
               0x10000, 0xD7FF, 0xE000}  # fmt: skip
    samples |= {lo + k for k in range(0, min(hi - lo + 1, 64))}
    for c in samples:
        if not 0 <= c <= 0x10FFFF or 0xD800 <= c <= 0xDFFF:
            continue
        data = chr(c).encode()
        hits = [
            s
            for s in seqs
            if len(s) == len(data) and all(x <= y <= z for y, (x, z) in zip(data, s, strict=True))
        ]
        assert len(hits) == (1 if lo <= c <= hi else 0), (hex(lo), hex(hi), hex(c))


@given(st.sampled_from([".", "[^z]", "[ab]", "[α-ω]", "\\d", "[a-z0-9]"]), st.integers(1, 400))
@settings(max_examples=examples(150), deadline=None)
def test_more_copies_never_turn_a_refusal_into_acceptance(cls, n):
    if cost_hazard(f"{cls}{{{n}}}z", False) is not None:
        assert cost_hazard(f"{cls}{{{n + 1}}}z", False) is not None
        assert cost_hazard(f"x{cls}{{{n}}}z", False) is not None


def test_growthbook_regex_over_the_bound_is_refused_naming_the_feature():
    feats = {"f": {"defaultValue": False, "rules": [{"condition": {"s": {"$regex": r"\w{30}z"}},
                                                     "force": True}]}}  # fmt: skip
    with pytest.raises(InteropError) as err:
        growthbook.to_snapshot({"features": feats})
    assert "features.f" in str(err.value) and "overflow RE2's DFA cache" in str(err.value)
    feats["f"]["rules"][0]["condition"]["s"]["$regex"] = r"^\w{1,64}@"  # anchored: fine
    growthbook.to_snapshot({"features": feats})


def test_unleash_regex_over_the_bound_is_refused_not_silently_never_matching():
    payload = {"version": 2, "features": [{"name": "f", "enabled": True, "strategies": [
        {"name": "default", "parameters": {}, "constraints": [
            {"contextName": "x", "operator": "REGEX", "value": ".{1000}z"}]}]}]}  # fmt: skip
    with pytest.raises(InteropError) as err:
        unleash.to_snapshot(payload)
    text = str(err.value)
    assert "features[0].strategies[0].constraints[0]" in text
    assert "overflow RE2's DFA cache" in text or "google-re2" in text


def test_patterns_only_re2_reads_are_bounded_by_its_program():
    re2 = pytest.importorskip("re2", reason="google-re2 ships no wheel for this platform")
    assert re2 is _regex._re2
    assert _regex.compile_regex(r"\pL+@example", False).search("é@example")
    with pytest.raises(_regex.RegexCostError, match="overflow RE2's DFA cache"):
        _regex.compile_regex(r"\pL{30}z", False)
