"""What one ``matches`` search costs on RE2, for patterns on both sides of the bound.

The compiler refuses patterns a search could spend tens of milliseconds on
(``cfgcore._regex.cost_hazard``: live positions and program size, measured from the
pattern). This file times one search of a 4,096-character input (the longest a
``matches`` condition reads) for the patterns that motivated the bound, compiled
straight by RE2 past it, and for accepted patterns at the bound's edge, each on the
adversarial kind of text that was worst for it among those tried (mixed Unicode, letters
and digits of many scripts, a two-letter alphabet), a new text each round. It checks each answer
against google-re2's own ``search`` (and Python's ``re`` where it runs in linear time)
and each verdict of the bound.

Run::

    python -m pytest benchmarks/bench_regex_cost.py --benchmark-enable -q \
        --benchmark-columns=min,median,max
"""

from __future__ import annotations

import random
import re

import pytest

from cfgcore import _regex
from cfgcore.interop import growthbook, unleash

if _regex._re2 is None:  # pragma: no cover - platforms without google-re2 wheels
    pytest.skip("google-re2 is not installed: nothing to time", allow_module_level=True)

LENGTH = 4096  # the longest input a matches condition searches
WORD = "[" + growthbook._unicode_class("w") + "]"  # GrowthBook's Python \w
DIGIT = "[" + growthbook._unicode_class("d") + "]"
_TEXT = [chr(c) for c in range(0x20, 0x30000) if not 0xD800 <= c <= 0xDFFF]


def _text(kind: str, seed: int) -> str:
    rng = random.Random(f"{kind}-{seed}")
    if kind == "unicode":  # printable-range code points of 1 to 4 UTF-8 bytes
        return "".join(rng.choice(_TEXT) for _ in range(LENGTH))
    if kind == "ab":
        return "".join(rng.choice("ab") for _ in range(LENGTH))
    if kind == "alnum":  # letters and digits of many scripts, 1 to 3 bytes
        return "".join(rng.choice(_ALNUM) for _ in range(LENGTH))
    if kind == "digits":  # decimal digits of every script, a space now and then
        return "".join(rng.choice(_DIGITS) for _ in range(LENGTH))
    raise ValueError(kind)


_ALNUM = [c for c in _TEXT[: 0x3000 - 0x20] if c.isalnum()]
_DIGITS = [c for c in _TEXT if c.isdecimal()] + [" "]
ROUNDS = 25  # each round searches a text the pattern has not seen (its DFA cache is warm
# from the earlier ones): what a service sees, one new user's value per request


def _words(n: int) -> str:
    rng = random.Random(n)  # random 12-letter words: a trie RE2 cannot share much of
    return "|".join("".join(rng.choice("ab") for _ in range(12)) for _ in range(n))


# (label, pattern, the text that was worst for it, refused by the bound)
CASES = [
    ("dot x1000", ".{1000}z", "unicode", True),
    ("not-z x1000", "[^z]{1000}z", "unicode", True),
    ("a then [ab] x446", "a[ab]{446}z", "ab", True),
    ("unicode \\w x30", WORD + "{30}z", "alnum", True),
    ("unicode \\d x200", DIGIT + "{200}z", "digits", True),
    ("800 words over ab", f"(?:{_words(800)})z", "ab", True),
    ("^ then (.?) x1000", "^(?:.?){1000}z", "unicode", True),
    ("dot x128", ".{128}z", "unicode", False),
    ("a then [ab] x128", "a[ab]{128}z", "ab", False),
    # (x20, not 21, and x75, not 80: CPython 3.13's larger Unicode classes put {21}
    # and {80} just over the bound)
    ("unicode \\w x20", WORD + "{20}z", "alnum", False),
    ("unicode \\d x75", DIGIT + "{75}z", "digits", False),
    ("128 words over ab", f"(?:{_words(128)})z", "ab", False),
    ("^ then dot x1000", "^.{1000}z", "unicode", False),
    ("unleash \\B.+\\b", unleash._rust_regex(r"\B.+\b", False), "unicode", False),
    ("^user-[0-9]+$", "^user-[0-9]+$", "unicode", False),
    ("@example\\.com$", r"@example\.com$", "unicode", False),
]


@pytest.mark.parametrize(("label", "pattern", "kind", "refused"), CASES, ids=[c[0] for c in CASES])
def test_one_search_of_4096_characters(benchmark, label, pattern, kind, refused):
    verdict = _regex.cost_hazard(pattern, False)
    assert (verdict is not None) is refused, (label, verdict)
    compiled = _regex._re2.compile(pattern, _regex._RE2_OPTIONS)  # past the bound
    search = _regex._RE2Pattern(compiled, pattern, False).search
    # (a smoke run, --benchmark-disable as in the test suite, searches one fresh text)
    texts = [_text(kind, n) for n in range(ROUNDS + 3 if benchmark.enabled else 3)]
    for text in texts[:2]:  # what the benchmark times is checked first
        want = compiled.search(text) is not None  # google-re2's own search
        if _regex.linear_hazard(pattern) is None:  # and re where it cannot backtrack away
            assert (re.search(pattern, text) is not None) is want
        assert (search(text) is True) is want
    fresh = iter(texts[2:])
    benchmark.extra_info["refused"] = refused
    benchmark.extra_info["program_size"] = compiled._regexp.ProgramSize()
    benchmark.pedantic(search, setup=lambda: ((next(fresh),), {}), rounds=ROUNDS)
