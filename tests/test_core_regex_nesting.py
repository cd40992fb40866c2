"""A ``matches`` pattern nested more than ``MAX_REGEX_NESTING`` groups deep is refused.

RE2 parses any depth, but Python's parser and compiler and cfgcore's hazard and cost
walks recurse per group: without google-re2 a pattern ~900 groups deep used to fail
with "maximum recursion depth exceeded" (and an Unleash REGEX constraint so deep was
imported as never matching). The bound is counted on the text, so the verdict is the
same with and without RE2 and does not depend on the caller's stack.
"""

from __future__ import annotations

import re
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore import _regex
from cfgcore._regex import MAX_REGEX_NESTING, RegexLimitError, group_depth
from cfgcore.errors import SnapshotError
from cfgcore.interop import InteropError, unleash
from tests.fuzz import examples

DEEP = MAX_REGEX_NESTING + 1


def _nested(n: int, core: str = "a", opener: str = "(") -> str:
    return opener * n + core + ")" * n


def _hosts(monkeypatch):
    """Run with google-re2 (where installed), then without it."""
    if _regex._re2 is not None:
        yield "re2"
    monkeypatch.setattr(_regex, "_re2", None)
    yield "re"


@pytest.mark.parametrize("n", [DEEP, 900, 20_000])
def test_too_deep_is_refused_alike_with_and_without_re2(monkeypatch, n):
    pattern = _nested(n)
    for _host in _hosts(monkeypatch):
        with pytest.raises(RegexLimitError) as err:
            _regex.compile_regex(pattern, False)
        assert str(err.value).startswith(f"groups nested {n:d} deep; at most {MAX_REGEX_NESTING}")


@pytest.mark.parametrize("opener", ["(", "(?:", "(?i:", "(?P<g>"])
def test_at_the_bound_compiles_and_matches_even_from_a_deep_stack(monkeypatch, opener):
    pattern = opener + _nested(MAX_REGEX_NESTING - 1, "ab|cd") + ")"
    assert group_depth(pattern) == MAX_REGEX_NESTING

    def from_depth(k: int):  # a caller 600 frames deep: no recursion error either
        return from_depth(k - 1) if k else _regex.compile_regex(pattern, False)

    assert sys.getrecursionlimit() >= 1000
    for _host in _hosts(monkeypatch):
        compiled = from_depth(600)
        assert compiled.search("xxcd") and compiled.search("ab") and not compiled.search("ac")


def test_the_snapshot_error_names_the_key_path(make):
    cond = {"attr": "s", "matches": _nested(DEEP)}
    with pytest.raises(SnapshotError) as err:
        make({"flags": {"f": {"default": "off", "rules": [{"when": cond, "serve": "on"}]}}})
    text = str(err.value)
    assert "flags.f.rules[0].when.matches: refused regular expression" in text
    assert f"groups nested {DEEP} deep" in text


def test_unleash_regex_too_deep_is_an_import_error_not_never_matching(monkeypatch):
    constraint = {"contextName": "x", "operator": "REGEX", "value": _nested(900)}
    payload = {"version": 2, "features": [{"name": "f", "enabled": True, "strategies": [
        {"name": "default", "parameters": {}, "constraints": [constraint]}]}]}  # fmt: skip
    for _host in _hosts(monkeypatch):
        with pytest.raises(InteropError) as err:
            unleash.to_snapshot(payload)
        text = str(err.value)
        assert "features[0].strategies[0].constraints[0]" in text and "nested 900 deep" in text


def test_parentheses_that_are_not_groups_do_not_count():
    assert group_depth(r"\(" * 300) == 0  # escaped
    assert group_depth("[(]" * 300 + "[()]" + "[^(]") == 0  # inside classes
    assert group_depth("[]()]" + "[^](]" + "[[:alpha:](]") == 0  # "]" first, POSIX items
    assert group_depth(r"\Q" + "(" * 300 + r"\E(a)") == 1  # RE2's literal text
    assert group_depth(r"[\](]") == 0 and group_depth(r"[\]](a)") == 1
    assert group_depth("(a)(b)((c))") == 2


# A pattern built from tokens, its depth known by construction.
_atoms = st.sampled_from(["a", "b", r"\(", r"\)", "[(]", "[)]", "[]()]", "[^)]", r"\d", "."])


@st.composite
def _patterns(draw, depth=0):
    parts, deepest = [], depth
    for _ in range(draw(st.integers(0, 4))):
        if depth < 8 and draw(st.booleans()):
            inner, d = draw(_patterns(depth=depth + 1))
            parts.append(draw(st.sampled_from(["(", "(?:", "(?i:"])) + inner + ")")
            deepest = max(deepest, d)
        else:
            parts.append(draw(_atoms))
    return "".join(parts), deepest


@settings(max_examples=examples(300), deadline=None)
@given(_patterns())
def test_depth_counted_on_the_text_is_the_parsers_depth(case):
    pattern, depth = case
    assert group_depth(pattern) == depth
    re.compile(pattern)  # a valid pattern: the construction is sound
    assert _regex.compile_regex(pattern, False) is not None
