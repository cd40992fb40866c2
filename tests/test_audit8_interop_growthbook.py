"""GrowthBook import, eighth audit: ``$or``/``$nor``/``$and`` whose value is not a list.

GrowthBook's SDK (growthbook 4.0.0's ``evalCondition``) takes ``len()`` of the value of
``$or`` and ``$nor`` and iterates ``$and``'s: null, a number or a boolean raises there,
and an evaluation error fails the whole condition, under a ``$not`` too. cfgcore read a
falsy value as an empty list: ``{"$or": null}`` held for everyone (an empty ``$or``
does), and ``{"$not": {"$nor": null}}`` too. Such a value was then refused; it is now
imported and answered as the SDK answers (false wherever the evaluation reaches it; see
``tests/test_interop_growthbook_logical_values.py``); every other malformed operand is
answered as the SDK answers it too (the sweep below, against the SDK on both evaluators).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest

from cfgcore.interop import InteropError, growthbook

gb_sdk = pytest.importorskip("growthbook")
from growthbook.core import evalCondition  # noqa: E402

ODD = [None, "", "abc", 0, 1, 1.5, True, False, [], [1], ["a", 1], {}, {"a": 1},
       {"$eq": 1}, "1", [[1]], [None]]  # fmt: skip
OPS = ["$eq", "$ne", "$in", "$nin", "$ini", "$nini", "$gt", "$gte", "$lt", "$lte",
       "$exists", "$regex", "$regexi", "$notRegex", "$size", "$type", "$not", "$all",
       "$elemMatch", "$veq", "$vgt", "$vlt", "$inGroup", "$notInGroup"]  # fmt: skip
ATTRS = [{}, {"a": None}, {"a": ""}, {"a": "abc"}, {"a": 0}, {"a": 1}, {"a": 1.0},
         {"a": 1.5}, {"a": True}, {"a": False}, {"a": []}, {"a": [1]}, {"a": ["a", 1]},
         {"a": [[1]]}, {"a": {}}, {"a": {"a": 1}}, {"a": "1"}, {"a": [None]},
         {"a": "ABC"}, {"a": [1, 2]}]  # fmt: skip
GROUPS = {"g": [1, "a"]}


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("growthbook").setLevel(logging.CRITICAL)


def _features(cond: Any) -> dict[str, Any]:
    return {"f": {"defaultValue": 0, "rules": [{"condition": cond, "force": 1}]}}


@pytest.mark.parametrize("op", ["$or", "$nor", "$and"])
@pytest.mark.parametrize("value", [None, 0, 1, False, True, 1.5])
@pytest.mark.parametrize("wrap", ["plain", "not", "or"])
def test_a_logical_operator_whose_value_is_no_list_answers_as_the_sdk(
    make_py_and_c, op, value, wrap
):
    cond: Any = {op: value}
    if wrap == "not":
        cond = {"$not": cond}
    elif wrap == "or":
        cond = {"$or": [{"a": 1}, cond]}
    snap = growthbook.to_snapshot(_features(cond), saved_groups=GROUPS)
    engines = [make(snap) for make in make_py_and_c]
    for attrs in ATTRS:  # the SDK: an evaluation error, the condition fails
        want = evalCondition(copy.deepcopy(attrs), copy.deepcopy(cond), GROUPS)
        a = attrs.get("a")
        one = isinstance(a, (int, float)) and not isinstance(a, bool) and a == 1
        assert want is (wrap == "or" and one)  # only {"a": 1} decides before the error
        for engine in engines:
            assert engine.is_enabled("f", growthbook.context(attrs)) is want, (cond, attrs)


def _conditions() -> list[Any]:
    base = [{"a": {op: v}} for op in OPS for v in ODD]
    base += [{"a": v} for v in ODD] + [{"a.0": v} for v in ODD]
    base += [{key: v} for key in ("$and", "$or", "$nor", "$not") for v in ODD]
    base += [{"a": {"$size": {"$gt": v}}} for v in ODD]
    wrapped = [{"$not": c} for c in base] + [{"$not": {"$or": [{"a": 1}, c]}} for c in base]
    return base + wrapped


def test_malformed_operands_answer_as_the_sdk_or_are_refused(make_py_and_c):
    imported = 0
    for cond in _conditions():
        try:
            snap = growthbook.to_snapshot(_features(copy.deepcopy(cond)), saved_groups=GROUPS)
        except InteropError as exc:
            assert "features.f" in str(exc)
            continue
        imported += 1
        engines = [make(snap) for make in make_py_and_c]
        for attrs in ATTRS:
            want = evalCondition(copy.deepcopy(attrs), copy.deepcopy(cond), GROUPS)
            ctx = growthbook.context(attrs)
            for engine in engines:
                assert engine.is_enabled("f", ctx) is want, (cond, attrs)
    assert imported > 500  # most are answered, not refused


@pytest.mark.parametrize(
    "feature, where",
    [
        ({"defaultValue": 2**64}, "defaultValue: the value of default"),
        ({"defaultValue": 1, "rules": [{"force": {"x": [-(2**63) - 1]}}]},
         r"rules\[0\]\.force\.x\[0\]: the value of rules\[0\]\.x\[0\]"),
    ],
)  # fmt: skip
def test_a_value_past_64_bits_is_an_import_error_naming_the_feature(feature, where):
    # the SDK serves it; cfgcore cannot (its documents hold 64-bit integers). It was
    # imported and refused only when an engine compiled it, for the whole snapshot
    features = {"f": feature, "ok": {"defaultValue": 1}}
    with pytest.raises(InteropError, match=rf"features\.f\.{where}: integer out of range"):
        growthbook.to_snapshot(features)


EXPERIMENT = {"key": "e", "variations": [0, 1, 2]}


@pytest.mark.parametrize(
    "rule, message",
    [
        ({**EXPERIMENT, "coverage": "0.5"}, r"\.coverage: expected a number, got a string"),
        ({"force": 1, "coverage": "0.5"}, r"\.coverage: expected a number, got a string"),
        (
            {"key": "e", "variations": {"a": 1, "b": 2}},
            r"\.variations: variations must be a list, got an obj",
        ),
        (
            {**EXPERIMENT, "meta": [None, 5, {}]},
            r"\.meta\[1\]: meta\[1\] must be an object, got a number",
        ),
        ({**EXPERIMENT, "filters": [{"seed": "s"}]}, r"\.filters\[0\]\.ranges: missing"),
        ({"force": 1, "filters": [{}]}, r"\.filters\[0\]\.ranges: missing"),
    ],
)
def test_a_rule_the_sdk_raises_on_is_refused(rule, message):
    # The SDK's eval_feature raises (TypeError, KeyError) for users it buckets; cfgcore
    # served a value for them (the default, or a variation)
    features = {"f": {"defaultValue": -1, "rules": [rule]}}
    raised = 0
    for i in range(20):
        sdk = gb_sdk.GrowthBook(attributes={"id": f"u{i}"}, features=copy.deepcopy(features))
        try:
            sdk.eval_feature("f")
        except (TypeError, KeyError):
            raised += 1
        finally:
            sdk.destroy()
    assert raised > 0
    with pytest.raises(InteropError, match=rf"features\.f\.rules\[0\]{message}"):
        growthbook.to_snapshot(features)


@pytest.mark.parametrize("index", ["1", 1.0, 1.5, [1]])
def test_a_forced_variation_that_is_no_integer_raises_as_in_the_sdk(index):
    features = {"f": {"defaultValue": -1, "rules": [{"key": "e", "variations": [0, 1, 2]}]}}
    sdk = gb_sdk.GrowthBook(attributes={"id": "u1"}, features=copy.deepcopy(features),
                            forced_variations={"e": index})  # fmt: skip
    try:
        with pytest.raises(TypeError):
            sdk.eval_feature("f")
    finally:
        sdk.destroy()
    # cfgcore forced variation 1 for 1.0 (its equality) and ignored the others
    with pytest.raises(TypeError, match=r"forced_variations\['e'\]: a variation index is an"):
        growthbook.context({"id": "u1"}, forced_variations={"e": index})


@pytest.mark.parametrize("index", [True, False, 0, 2, 3, -1, None])
def test_forced_variations_the_sdk_takes_agree(make_py_and_c, index):
    features = {"f": {"defaultValue": -1, "rules": [{"key": "e", "variations": [0, 1, 2]}]}}
    snap = growthbook.to_snapshot(copy.deepcopy(features))
    sdk = gb_sdk.GrowthBook(attributes={"id": "u1"}, features=copy.deepcopy(features),
                            forced_variations={"e": index})  # fmt: skip
    try:
        want = sdk.eval_feature("f").value
    finally:
        sdk.destroy()
    ctx = growthbook.context({"id": "u1"}, forced_variations={"e": index})
    for make in make_py_and_c:
        assert make(snap).evaluate("f", ctx).value == want
