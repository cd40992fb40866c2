"""``matches`` through google-re2 calls the compiled RE2 program directly.

google-re2's ``search`` builds a match object and maps byte offsets back to characters
(2.9 us of a 3.1 us check); a flag needs only "found or not". cfgcore's wrapper asks
the same RE2 program with the text's UTF-8 and answers exactly as re2's own search.
"""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore import _regex
from tests.fuzz import examples

re2 = pytest.importorskip("re2", reason="google-re2 ships no wheel for this platform")

_PIECES = [
    "a",
    "é",
    "٣",
    "\\d",
    "\\w",
    "\\s",
    "\\b",
    ".",
    "^",
    "$",
    "+",
    "*",
    "?",
    "(a|é)",
    "[a-z]",
    "\n",
]
_TEXT = st.text(alphabet="aAé É٣1 _\n-x", max_size=12)


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.sampled_from(_PIECES), min_size=1, max_size=5), _TEXT, st.booleans())
def test_the_direct_search_answers_as_re2s_own(pieces, text, ignore_case):
    source = "".join(pieces)
    try:
        mine = _regex.compile_regex(source, ignore_case)
    except (ValueError, _regex.re.error):
        return  # refused alike (tested elsewhere)
    theirs = re2.compile("(?i)" + source if ignore_case else source, _regex._RE2_OPTIONS)
    assert (mine.search(text) is not None) == (theirs.search(text) is not None)


def test_it_pickles_as_its_pattern_and_refuses_lone_surrogates_like_re2():
    p = _regex.compile_regex("^user-[0-9]+$", True)
    q = pickle.loads(pickle.dumps(p))
    assert (q.pattern, q.ignore_case) == ("^user-[0-9]+$", True)
    assert q.search("USER-12") and q.search("user-x") is None
    with pytest.raises(UnicodeEncodeError):  # the evaluators read an exception as no match
        p.search("user-1\ud800")
