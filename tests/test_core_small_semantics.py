"""Smaller semantics where code and README must agree (issue 10, item 9)."""

from __future__ import annotations

import pytest

from cfgcore.compiler import semver_key
from cfgcore.details import Reason
from cfgcore.errors import SnapshotError


@pytest.mark.parametrize(
    "text",
    ["1.0.0\n", "1.0.0\r\n", "1\u0660.0.0", "\u0661.0.0", "1.0.\u0663", "1.0.0-\u0661", " 1.0.0"],
)
def test_semver_refuses_trailing_newlines_and_non_ascii_digits(text):
    assert semver_key(text) is None


def test_semver_constants_with_a_newline_are_compile_errors(make):
    with pytest.raises(SnapshotError, match="not a semantic version"):
        make({"flags": {"f": {"default": "off", "rules": [
            {"when": {"attr": "v", "semver_eq": "1.0.0\n"}, "serve": "on"}]}}})  # fmt: skip


def test_semver_context_values_must_be_plain_ascii(make):
    engine = make(
        {"flags": {"f": {"default": "off", "rules": [
            {"when": {"attr": "v", "semver_eq": "10.0.0"}, "serve": "on"}]}}}
    )  # fmt: skip
    assert engine.is_enabled("f", {"v": "10.0.0"}) is True
    assert engine.is_enabled("f", {"v": "v10.0.0"}) is True
    for text in ("1\u0660.0.0", "10.0.0\n", "\uff11\uff10.0.0"):
        assert engine.is_enabled("f", {"v": text}) is False, text
        assert engine.is_enabled("f", engine.context({"v": text})) is False, text


def test_a_disabled_boolean_flag_serves_off_and_a_multivariate_one_its_default(make):
    """README: off_variant defaults to "off" for boolean flags, to the default variant
    otherwise."""
    engine = make(
        {
            "flags": {
                "bool": {"enabled": False, "default": "on"},
                "multi": {"enabled": False, "variants": {"a": 1, "b": 2}, "default": "b"},
                "explicit": {"enabled": False, "default": "off", "off_variant": "on"},
            }
        }
    )
    d = engine.evaluate("bool")
    assert (d.variant, d.value, d.reason) == ("off", False, Reason.DISABLED)
    d = engine.evaluate("multi")
    assert (d.variant, d.value, d.reason) == ("b", 2, Reason.DISABLED)
    assert engine.variant("explicit") == "on"


ROLLOUT_50 = {"flags": {"f": {"default": "off", "rules": [{"rollout": 50, "serve": "on"}]}}}


@pytest.mark.parametrize("first", [12345.0, 1.5, True, float("nan"), ["u1"], {"id": 1}, None])
def test_bucketing_skips_attributes_that_are_not_str_or_int(make, first):
    """README: the first bucket_by attribute holding a str or an int is hashed; a float
    user_id (or a bool, a list, None) is skipped and targeting_key decides."""
    engine = make(ROLLOUT_50)
    for i in range(60):
        ctx = {"user_id": first, "targeting_key": f"k-{i}"}
        want = engine.evaluate("f", {"targeting_key": f"k-{i}"})
        assert engine.evaluate("f", ctx) == want
        assert engine.evaluate("f", engine.context(ctx)) == want
    assert engine.evaluate("f", {"user_id": first}).reason == Reason.DEFAULT  # nothing usable


def test_ints_bucket_as_their_decimal_text(make):
    engine = make({"flags": {"f": {"default": "off", "rules": [{"rollout": 50, "serve": "on"}]}}})
    for n in range(200):
        assert engine.is_enabled("f", {"user_id": n}) == engine.is_enabled("f", {"user_id": str(n)})
