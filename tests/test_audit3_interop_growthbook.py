"""GrowthBook ``$regex`` on long values, third audit, against the ``growthbook`` SDK.

cfgcore's ``matches`` reads at most 4,096 characters (MAX_REGEX_INPUT); the SDK searches
any length with Python's ``re``. An unanchored pattern (or one ending in ``$``) never
matched a longer value. ``growthbook.context()`` now returns, for such a value, a
mapping that searches the whole value for the imported pattern when an evaluator reads
its ``#search:`` attribute (RE2, or a pattern already found linear on ``re``).
"""

from __future__ import annotations

import copy
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore._lower import MAX_REGEX_INPUT
from cfgcore.interop import growthbook
from tests.fuzz import examples

gb_mod = pytest.importorskip("growthbook")


def _features(op: str, pattern: str) -> dict:
    rule = {"condition": {"s": {op: pattern}}, "force": True}
    return {"f": {"defaultValue": False, "rules": [rule]}}


def _sdk(features: dict, attrs: dict) -> bool:
    gb = gb_mod.GrowthBook(attributes=copy.deepcopy(attrs), features=copy.deepcopy(features))
    return bool(gb.eval_feature("f").value)


PATTERNS = [
    "ab+c", "x\\d{3}y", "(?:foo|bar)z", "é.", "a$", "[xyz]{2}$", "\\w+q", "k.*m", "ne+dle$",
    "\\s\\S", "^.*needle", "^[a-z ]*Q",
]  # fmt: skip
_INSERTS = ["abbbc", "x123y", "barz", "éx", "needle\n", "neeedle", "zz", "k..m", "w q", "Q", ""]


_FILL = "abcxyz "
# random.choice(_FILL) (``_randbelow(7)``) takes the top 3 bits of one 32-bit word of the
# generator, drawing again on 7; getrandbits(32 * k) gives k such words in the same order
_TOP3 = bytes(_FILL.encode()[b >> 5] if b < 224 else 0 for b in range(256))
_SEVEN = bytes(range(224, 256))


def _filler(rnd: random.Random, n: int) -> str:
    """``"".join(rnd.choice(_FILL) for _ in range(n))``, the same characters and the same
    generator state after, some 50 times faster (a byte per word, drawn in bulk; never
    more words than ``n`` characters still need, so none is drawn that choice would not)."""
    out = []
    need = n
    while need:
        words = rnd.getrandbits(32 * need).to_bytes(4 * need, "little")
        got = words[3::4].translate(_TOP3, _SEVEN)  # each word's top byte; 7s dropped
        out.append(got)
        need -= len(got)
    return b"".join(out).decode()


def test_the_filler_is_what_random_choice_draws():
    for seed in range(20):
        for n in (0, 1, 7, 100, MAX_REGEX_INPUT + 1):
            slow, fast = random.Random(seed), random.Random(seed)
            assert _filler(fast, n) == "".join(slow.choice(_FILL) for _ in range(n))
            assert fast.getstate() == slow.getstate()


def _long_value(rnd: random.Random) -> str:
    n = rnd.choice([MAX_REGEX_INPUT - 3, MAX_REGEX_INPUT + 1, 6000, 20000])
    base = _filler(rnd, n)
    pos = rnd.choice([0, 17, MAX_REGEX_INPUT - 2, MAX_REGEX_INPUT + 5, n])
    value = base[:pos] + rnd.choice(_INSERTS) + base[pos:]
    return value + ("\n" if rnd.random() < 0.2 else "")


@pytest.mark.parametrize("op", ["$regex", "$regexi", "$notRegex", "$notRegexi"])
@pytest.mark.parametrize("pattern", PATTERNS)
def test_regex_on_values_past_the_bound_answers_as_the_sdk(make, op, pattern):
    features = _features(op, pattern)
    engine = make(growthbook.to_snapshot({"features": features}))
    rnd = random.Random(f"{op}{pattern}")
    for _ in range(12):
        value = _long_value(rnd)
        got = engine.is_enabled("f", engine.context(growthbook.context({"s": value})))
        assert got is _sdk(features, {"s": value}), (op, pattern, len(value))


def test_a_match_only_past_the_bound_is_found(make):
    features = _features("$regex", "needle")  # plain text: a string test already
    features2 = _features("$regex", "ne+dle")  # a regex: never matched before
    value = "x" * 10_000 + "needle"
    for feats in (features, features2):
        engine = make(growthbook.to_snapshot({"features": feats}))
        assert _sdk(feats, {"s": value}) is True
        assert engine.is_enabled("f", growthbook.context({"s": value})) is True


def test_short_values_still_give_a_plain_dict():
    assert type(growthbook.context({"s": "short"})) is dict
    long = growthbook.context({"s": "x" * (MAX_REGEX_INPUT + 1)})
    assert isinstance(long, dict) and long["s"] == "x" * (MAX_REGEX_INPUT + 1)
    # a bad or unknown #search: key is no answer, never an error
    assert long.get("#search:not json") is None
    assert long.get('#search:["s", "(", false, false]') is None
    assert long.get('#search:["nope", "x", false, false]') is None


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pattern=st.sampled_from(PATTERNS),
    op=st.sampled_from(["$regex", "$notRegexi"]),
    head=st.integers(0, 3 * MAX_REGEX_INPUT),
    insert=st.sampled_from(_INSERTS),
    nested=st.booleans(),
)
def test_long_values_at_any_place_and_path(make_py_and_c, pattern, op, head, insert, nested):
    value = "y" * head + insert + "z" * 50
    attrs = {"u": {"s": value}} if nested else {"s": value}
    rule = {"condition": {("u.s" if nested else "s"): {op: pattern}}, "force": True}
    features = {"f": {"defaultValue": False, "rules": [rule]}}
    want = _sdk(features, attrs)
    for make in make_py_and_c:
        engine = make(growthbook.to_snapshot({"features": features}))
        assert engine.is_enabled("f", growthbook.context(attrs)) is want
