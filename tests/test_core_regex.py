"""A ``matches`` rule cannot freeze the process (issue 10, item 2).

With google-re2 every pattern runs in linear time. Without it, patterns whose
worst case on Python's backtracking engine is not linear are compile errors that
name the flag; the accepted ones evaluate identically on both evaluators.
"""

from __future__ import annotations

import re

import pytest

from cfgcore import _regex
from cfgcore.errors import SnapshotError

CATASTROPHIC = [
    ("(a+)+$", "nested quantifier"),
    ("(a|aa)*$", "alternation under a quantifier"),
    ("(x*)*y", "nested quantifier"),
    ("a+b", "not anchored"),
    ("x.*y", "not anchored"),
    (r"\d*\d*x", "not anchored"),
    ("^a*a*b", "more than one unbounded"),
    (r"^[a-z]+@[a-z]+\.com$", "more than one unbounded"),
    ("^a{1,20}", None),  # bound over 16: counts as open-ended, but anchored alone is fine
    (r"^\d{9}\d{9}\d{9}x", "combinations"),
]
# Refused by RE2 itself: without it, refused alike, with RE2's reason.
RE2_REFUSED = [
    (r"(a)\1", "invalid escape sequence: \\1"),
    ("(?=a)a", "invalid perl operator: (?="),
    ("(?<!a)b", "invalid perl operator: (?<!"),
]
LINEAR = [r"^user-[0-9]+$", r"\d{3}-\d{4}", "premium|free", "^.*@example\\.com$", "e$", "[0-9]"]


def _flag(pattern: str, ignore_case: bool = False) -> dict:
    cond = {"attr": "email", "matches": pattern}
    if ignore_case:
        cond["ignore_case"] = True
    return {"flags": {"f": {"default": "off", "rules": [{"when": cond, "serve": "on"}]}}}


@pytest.fixture
def without_re2(monkeypatch):
    monkeypatch.setattr(_regex, "_re2", None)


def test_re2_runs_every_pattern_when_installed(make):
    re2 = pytest.importorskip("re2", reason="google-re2 ships no wheel for this platform")
    engine = make(_flag("(a+)+$"))  # catastrophic for backtracking, linear on RE2
    pattern = engine.snapshot().tables.objs[0]
    assert type(pattern._regexp).__module__.startswith(re2.__name__)  # RE2 runs it
    assert engine.is_enabled("f", {"email": "a" * 4000 + "b"}) is False
    assert engine.is_enabled("f", {"email": "aaaa"}) is True


@pytest.mark.parametrize(("pattern", "why"), CATASTROPHIC)
def test_without_re2_non_linear_patterns_are_refused_naming_the_flag(
    without_re2, make, pattern, why
):
    if why is None:
        assert make(_flag(pattern)).is_enabled("f", {"email": "a" * 20}) is True
        return
    with pytest.raises(SnapshotError) as err:
        make(_flag(pattern))
    text = str(err.value)
    assert "flags.f.rules[0].when.matches: refused regular expression" in text
    assert why in text and "google-re2" in text


@pytest.mark.parametrize(("pattern", "why"), RE2_REFUSED)
def test_patterns_re2_refuses_are_refused_alike_without_it(monkeypatch, make, pattern, why):
    for hidden in (False, True):
        if hidden:
            monkeypatch.setattr(_regex, "_re2", None)
        elif _regex._re2 is None:
            continue
        with pytest.raises(SnapshotError) as err:
            make(_flag(pattern))
        assert f"flags.f.rules[0].when.matches: invalid regular expression: {why}" in str(err.value)


@pytest.mark.parametrize("pattern", LINEAR)
def test_without_re2_linear_patterns_work_on_both_evaluators(without_re2, make, pattern):
    engine = make(_flag(pattern))
    for value in ["user-123", "555-1234", "premium", "x@example.com", "e", "nothing", "7"]:
        want = re.search(pattern, value) is not None
        assert engine.is_enabled("f", {"email": value}) is want, (pattern, value)


def test_ignore_case_is_checked_too(without_re2, make):
    with pytest.raises(SnapshotError, match="nested quantifier"):
        make(_flag("(A+)+$", ignore_case=True))
    assert make(_flag("^PREMIUM$", ignore_case=True)).is_enabled("f", {"email": "premium"})
