"""A ``matches`` rule answers the same with and without google-re2.

RE2's syntax and meaning are the contract. Without RE2, Python's ``re`` runs the
pattern rewritten to RE2's meaning: ``\\d``, ``\\w``, ``\\s`` and ``\\b`` are ASCII,
``$`` (outside ``(?m)``) matches only at the very end, ``\\z`` is the end of the text;
what RE2 refuses (``\\Z``, look-arounds, ``a*+``, ...) is refused alike, with RE2's
reason, naming the flag and rule path.
"""

from __future__ import annotations

import pickle

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore import _regex
from cfgcore.errors import SnapshotError
from tests.fuzz import examples

re2 = _regex._re2
needs_re2 = pytest.mark.skipif(re2 is None, reason="google-re2 is not installed")

KELVIN = "\u212a"  # folds to "k"
LONG_S = "\u017f"  # folds to "s"
ARABIC_THREE = "\u0663"  # a Unicode digit
TEXT_CHARS = ["a", "k", "s", "S", "é", "É", ARABIC_THREE, "1", "_", "\n", " ", "\x0b", "\x85",
              "\xa0", KELVIN, LONG_S, "$", "z", "-"]  # fmt: skip
# Not \B: RE2 searches UTF-8 bytes, and finds "no word boundary" inside a character
# of two or more bytes too (\B alone matches "\xa0"), which no str position is.
ATOMS = ["a", "é", ARABIC_THREE, "1", "k", r"\d", r"\w", r"\s", r"\D", r"\W", r"\S", r"\b",
         "$", "^", ".", r"\n", r"\z", r"\A", r"[\d]", r"[^\w]", r"[a\W]", r"[é\S]",
         r"[\D_]", "[[:alpha:]]", "[[:^digit:]]", "[[:space:]]", "[[:word:]]", "[[:upper:]]",
         r"\$", "a{,2}", "(?m:$)", "(?m:^)", "(?s:.)", r"\x0b"]  # fmt: skip
REFUSED = [r"\Z", r"a(?=b)", r"(?<=a)b", r"(?#note)a", "a*+", "a{1001}", r"[\b]", r"(a)\1",
           "(?P=x)", "\\é", r"\u00e9", "(?x)a", "(?>a)", "[[:nope:]]", "a{3,2}"]  # fmt: skip


def _pattern_parts():
    atom = st.sampled_from(ATOMS)
    piece = st.tuples(atom, st.sampled_from(["", "", "?", "*", "+", "{0,2}"])).map("".join)
    return st.lists(piece, min_size=1, max_size=4).map("".join)


def _both(pattern: str, ignore_case: bool, texts: list[str]):
    """What RE2 and the fallback say of ``pattern`` on ``texts``: the answers, or the
    refusal's kind and reason; None when only the fallback's linearity check refused it
    (a documented difference: install google-re2)."""
    out = []
    for engine in (re2, None):
        _regex._re2 = engine
        try:
            compiled = _regex.compile_regex(pattern, ignore_case)
        except ValueError:  # not linear on re: refused only without RE2
            return None
        except Exception as exc:
            out.append(("refused", str(exc)))
            continue
        finally:
            _regex._re2 = re2
        out.append(("answers", [compiled.search(t) is not None for t in texts]))
    return out


@needs_re2
@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pattern=_pattern_parts(),
    ignore_case=st.booleans(),
    texts=st.lists(st.text(st.sampled_from(TEXT_CHARS), max_size=5), min_size=1, max_size=8),
)
def test_fallback_answers_as_re2(pattern, ignore_case, texts):
    got = _both(pattern, ignore_case, texts)
    if got is not None:
        assert got[0] == got[1], (pattern, ignore_case, texts)


SYNTAX = ["(", ")", "|", "(?i)", "(?:", "(?m)", "[", "]", "\\", "{", "}", "{2}", "{1,3}", ",",
          "-", "*", "+", "?", "(?P<n>", "[^", "[:", ":]", "\\x41", "\\0", "\\.", "\\]"]  # fmt: skip


@needs_re2
@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    parts=st.lists(st.sampled_from(ATOMS + REFUSED + SYNTAX), min_size=1, max_size=5),
    ignore_case=st.booleans(),
    texts=st.lists(st.text(st.sampled_from(TEXT_CHARS), max_size=5), min_size=1, max_size=4),
)
def test_fallback_refuses_whatever_re2_refuses(parts, ignore_case, texts):
    """Mixed with broken syntax and refused constructs: what RE2 refuses the fallback
    refuses (the wording of a plain syntax error may differ), and where both accept
    they answer alike. (The fallback also refuses RE2-only syntax such as flags in
    mid-pattern: the documented other direction.)"""
    pattern = "".join(parts)
    got = _both(pattern, ignore_case, texts)
    if got is None:
        return
    if got[0][0] == "refused":
        assert got[1][0] == "refused", (pattern, got)
    elif got[1][0] == "answers":
        assert got[0] == got[1], (pattern, ignore_case, texts)


def test_fallback_compiles_without_re_future_warnings(monkeypatch):
    monkeypatch.setattr(_regex, "_re2", None)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compiled = _regex.compile_regex("^[+--]x", False)  # re: "Possible set difference"
    assert compiled.search(",x") is not None  # the range + to -, as RE2 reads it


@needs_re2
@pytest.mark.parametrize("pattern", REFUSED)
def test_fallback_refuses_what_re2_refuses_with_its_reason(pattern):
    got = _both(pattern, False, ["a"])
    assert got is not None and got[0][0] == "refused", got
    assert got[0] == got[1]


@pytest.mark.parametrize(
    ("pattern", "text", "want"),
    [
        (r"^\d+$", ARABIC_THREE, False),
        (r"^\d+$", "42", True),
        (r"^\w+$", "café", False),
        (r"^\w+$", "cafe_1", True),
        (r"\s", "\x0b", False),
        (r"\s", "\u2003", False),
        (r"\s", "\t", True),
        (r"^on$", "on\n", False),
        (r"^on$", "on", True),
        (r"on\z", "on", True),
        (r"(?m)^on$", "x\non\ny", True),
        (r"\bé", "xé", True),  # é is no ASCII word character
        ("a{,2}", "a{,2}", True),
        ("a{,2}", "aa", False),
        ("[[:alpha:]]", "é", False),
    ],
)
@pytest.mark.parametrize("hidden", [False, True], ids=["re2", "re"])
def test_both_evaluators_answer_by_re2_meaning(monkeypatch, make, hidden, pattern, text, want):
    if hidden:
        monkeypatch.setattr(_regex, "_re2", None)
    elif re2 is None:
        pytest.skip("google-re2 is not installed")
    engine = make(_flag(pattern))
    assert engine.is_enabled("f", {"email": text}) is want
    assert engine.snapshot().is_enabled("f", {"email": text}) is want


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"done\Z", r"invalid escape sequence: \Z"),
        (r"^a(?=b)", "invalid perl operator: (?="),
        ("^a*+", "bad repetition operator: *+"),
        ("^a{1001}", "invalid repetition size: {1001}"),
    ],
)
def test_without_re2_what_re2_refuses_is_a_compile_error_naming_flag_and_path(
    monkeypatch, make, pattern, why
):
    monkeypatch.setattr(_regex, "_re2", None)
    with pytest.raises(SnapshotError) as err:
        make(_flag(pattern))
    assert f"flags.f.rules[0].when.matches: invalid regular expression: {why}" in str(err.value)


def test_fallback_pattern_pickles_as_its_text(monkeypatch):
    monkeypatch.setattr(_regex, "_re2", None)
    compiled = _regex.compile_regex(r"^\d+$", True)
    copy = pickle.loads(pickle.dumps(compiled))
    assert copy.search("12") is not None and copy.search(ARABIC_THREE) is None


def _flag(pattern: str) -> dict:
    cond = {"attr": "email", "matches": pattern}
    return {"flags": {"f": {"default": "off", "rules": [{"when": cond, "serve": "on"}]}}}
