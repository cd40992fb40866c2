"""Unleash REGEX ``\\b``/``\\B`` next to a token that can match a word character or
another one (``\\b.``, ``\\b[a-é]``, ``x\\b.``), fourth audit, against yggdrasil (Rust's
regex crate, whose ``\\b`` is Unicode; RE2's is ASCII).

Such a ``\\b`` stayed RE2's: ``\\b.`` did not match "é" (Rust: it does). Now the token
is split into its word and its other characters, each with what must come before or
after it, at either end of the pattern (or of a top-level branch), on both sides
(``\\b[a-é]+\\b``), and between such a token and one whose word-ness is known.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.interop import unleash
from tests.fuzz import examples

pytest.importorskip("yggdrasil_engine.engine")

# The payload builder, the SDK call, the quiet SDK logger and the engines of a pattern
# (imported and built once per pattern and case flag) of the round-3 tests.
from tests.test_audit3_interop_unleash import _engines_of, _payload, _quiet, _ygg  # noqa: E402, F401

MIXED = [
    "\\b.", "\\b[a-é]", ".\\b", "[a-é]\\b", "\\B.", ".\\B", "\\b.+", ".+\\b", "\\b[a-é]+\\b",
    "\\b[a-é]\\b", "\\B.+\\b", "\\b.\\B", "x\\b.", ".\\bx", "é\\B.", ".\\Bé", "\\b[\\d.]",
    "[-é]\\b", "\\b[^a]", "[^a]\\b", "\\b[^\\d]+\\b", "a|\\b.", ".\\b|q", "\\b.x", "x.\\b",
    "\\b[a-é]+", "\\b\\d+\\b|\\bcat", "[^\\w]\\bx", "\\b[\\u{e0}-\\u{ff}]",
]  # fmt: skip
_WORDS = [
    "", "a", "é", "É", "ß", "-", " ", ".", "\n", "1", "\u0661", "_", "\u0301", "\u0915",
    "\u24b6", "K", "\u212a", "x", "a-", "-é", "é-", "xé", "éx", "x.", ".x", "a é", "é\n",
    "-\u0301", "aé-", "cat", "écat", "caté", "12.5", "q", "\u0915x", "--",
]  # fmt: skip


@pytest.fixture(scope="module")
def engines(make_py_and_c):
    return _engines_of(make_py_and_c)


@pytest.mark.parametrize("pattern", MIXED)
@pytest.mark.parametrize("ci", [False, True])
def test_a_boundary_next_to_a_mixed_token_is_unicode_as_in_yggdrasil(engines, pattern, ci):
    payload = _payload(pattern, ci)
    want = {value: _ygg(payload, value) for value in _WORDS}
    for engine in engines(pattern, ci):
        for value in _WORDS:
            got = engine.is_enabled("f", unleash.context({"properties": {"x": value}}))
            assert got is want[value], (pattern, ci, value)


def test_the_cases_that_differed_before(make):
    # RE2's ASCII \b: "é" is no word character there, so none of these matched
    for pattern, value in [("\\b.", "é"), ("\\b[a-é]", "-é"), ("x\\B.", "xé"),
                           ("\\b[a-é]+\\b", "été"), ("a|\\b.", "\u0915")]:  # fmt: skip
        payload = _payload(pattern)
        assert _ygg(payload, value) is True
        engine = make(unleash.to_snapshot(payload))
        assert engine.is_enabled("f", unleash.context({"properties": {"x": value}})) is True


_ALPHABET = st.sampled_from(
    [
        "a",
        "c",
        "é",
        "É",
        "\u0301",
        "\u0915",
        "1",
        "\u0661",
        "_",
        "-",
        " ",
        ".",
        "\u24b6",
        "\n",
        "x",
        "ß",
        "k",
        "K",
        "\u212a",
    ]  # fmt: skip
)


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pattern=st.sampled_from(MIXED),
    ci=st.booleans(),
    value=st.lists(_ALPHABET, max_size=7).map("".join),
)
def test_mixed_boundaries_agree_with_yggdrasil_on_generated_text(engines, pattern, ci, value):
    want = _ygg(_payload(pattern, ci), value)
    for engine in engines(pattern, ci):
        got = engine.is_enabled("f", unleash.context({"properties": {"x": value}}))
        assert got is want, (pattern, ci, value)
