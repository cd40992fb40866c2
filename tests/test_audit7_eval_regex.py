"""Seventh audit of ``matches`` patterns under RE2: a refused pattern is reported once,
as the compiler's problem, in words.

RE2's C++ logger also wrote every refused pattern to the process's stderr (``E0000 ...
re2.cc:242] Error parsing '(': missing ): (``, after a one-time absl warning), at each
compile of a document holding one and for each pattern an importer tries, and the
problem quoted RE2's reason as bytes: ``invalid regular expression: b'missing ): ('``.
"""

from __future__ import annotations

import pytest

from cfgcore import _regex
from cfgcore.engine import Engine
from cfgcore.errors import SnapshotError

pytestmark = pytest.mark.skipif(_regex._re2 is None, reason="google-re2 is not installed")

BAD = ["(", "a)", "[z-a]", "a{2,1}", "(?<=a)b", "\\1(a)", "x**"]


@pytest.mark.parametrize("ignore_case", [False, True])
@pytest.mark.parametrize("pattern", BAD)
def test_a_refused_pattern_is_one_problem_in_words_and_nothing_on_stderr(
    capfd, pattern, ignore_case
):
    doc = {
        "flags": {
            "f": {
                "default": "off",
                "rules": [
                    {
                        "when": {"attr": "x", "matches": pattern, "ignore_case": ignore_case},
                        "serve": "on",
                    }
                ],
            }
        }
    }
    capfd.readouterr()
    with pytest.raises(SnapshotError) as info:
        Engine.from_snapshot(doc, file="flags.yaml")
    out, err = capfd.readouterr()
    assert err == "" and out == ""  # the C++ logger writes to file descriptor 2
    (problem,) = info.value.problems
    assert problem.path == "flags.f.rules[0].when.matches"
    assert problem.message.startswith("invalid regular expression: ")
    assert "b'" not in problem.message and 'b"' not in problem.message


def test_accepted_patterns_match_as_before():
    """Only the logging changed: what RE2 accepts still matches as RE2 does."""
    for pattern, ci, text, want in [
        ("^premium$", False, "premium", True),
        ("^premium$", False, "Premium", False),
        ("^premium$", True, "PREMIUM", True),
        ("\\d+", False, "a1", True),
        ("^é", True, "É", True),
    ]:
        compiled = _regex.compile_regex(pattern, ci)
        assert (compiled.search(text) is not None) is want, (pattern, ci, text)
