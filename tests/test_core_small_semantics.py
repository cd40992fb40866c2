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


ROLLOUT = {"flags": {"f": {"default": "off", "rules": [{"rollout": 100, "serve": "on"}]}}}


@pytest.mark.parametrize("first", [12345.0, 1.5, True, float("nan"), ["u1"], {"id": 1}])
def test_the_first_present_bucketing_attribute_decides(make, first):
    """A present user_id that cannot be bucketed (a float, a bool, a list...) makes
    the rollout not apply: it does not fall through to targeting_key."""
    engine = make(ROLLOUT)
    ctx = {"user_id": first, "targeting_key": "k-1"}
    assert engine.evaluate("f", ctx).reason == Reason.DEFAULT
    assert engine.evaluate("f", engine.context(ctx)).reason == Reason.DEFAULT
    # absent (or None) user_id: the next attribute is used
    for ctx in ({"targeting_key": "k-1"}, {"user_id": None, "targeting_key": "k-1"}):
        assert engine.evaluate("f", ctx).reason == Reason.SPLIT
    assert engine.evaluate("f", {"user_id": 12345}).reason == Reason.SPLIT  # ints: decimal


def test_ints_bucket_as_their_decimal_text(make):
    engine = make({"flags": {"f": {"default": "off", "rules": [{"rollout": 50, "serve": "on"}]}}})
    for n in range(200):
        assert engine.is_enabled("f", {"user_id": n}) == engine.is_enabled("f", {"user_id": str(n)})
