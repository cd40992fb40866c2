"""Conditions nested about 30 deep, which the GrowthBook and flagd SDKs evaluate, were
refused: the compiler bounds a condition's nesting (MAX_CONDITION_DEPTH) and the
importers added levels of their own (an ``all`` around an ``all``, a negated test as
two levels, an ``else`` branch as the negation of its ``if``). The importers now merge
their own wrappers and move negations onto the tests when that is what makes a
condition fit, answer as the SDKs do, and refuse a deeper one themselves, naming the
flag and where in it, with the bound.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import growthbook as gb_sdk  # the real SDK
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore._lower import MAX_CONDITION_DEPTH
from cfgcore.interop import InteropError, flagd, growthbook
from tests.fuzz import examples

core_mod = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("growthbook").setLevel(logging.CRITICAL)
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)


# -- GrowthBook ---------------------------------------------------------------------------
def _gb_leaf(i: int, kind: int) -> dict[str, Any]:
    return [{"x": i % 3}, {"y": {"$ne": i % 2}}, {"z": {"$in": [i % 3, "a"]}},
            {"x": {"$gt": i % 3}}][kind % 4]  # fmt: skip


def _gb_chain(ops: list[str], leaves: list[int]) -> dict[str, Any]:
    cond: dict[str, Any] = _gb_leaf(0, leaves[0])
    for i, op in enumerate(ops, 1):
        other = _gb_leaf(i, leaves[i % len(leaves)])
        cond = {"$not": cond} if op == "$not" else {op: [cond, other]}
    return cond


def _gb_features(cond: dict[str, Any]) -> dict[str, Any]:
    return {
        "force": {"defaultValue": 0, "rules": [{"condition": cond, "force": 1}]},
        "exp": {"defaultValue": 0, "rules": [{"condition": cond, "key": "e", "coverage": 1,
                                              "variations": [1, 2], "weights": [0.5, 0.5]}]},
    }  # fmt: skip


_ATTRS = st.fixed_dictionaries(
    {}, optional={"id": st.sampled_from(["u1", "u2", "u3"]), "x": st.sampled_from([0, 1, 2, "a"]),
                  "y": st.sampled_from([0, 1, None]), "z": st.sampled_from([0, 2, "a", [1, "a"]])},
)  # fmt: skip


def _gb_agree(make, features: dict[str, Any], users: list[dict[str, Any]]) -> None:
    engine = make(growthbook.to_snapshot(copy.deepcopy(features)))
    for attrs in users:
        sdk = gb_sdk.GrowthBook(attributes=copy.deepcopy(attrs), features=copy.deepcopy(features))
        try:
            for key in features:
                want = sdk.eval_feature(key).value
                got = growthbook.thaw(engine.evaluate(key, growthbook.context(attrs)).value)
                assert got == want, (key, attrs)
        finally:
            sdk.destroy()


_USERS = [{}, {"id": "u1", "x": 0, "y": 1, "z": 2}, {"id": "u2", "x": 2, "y": 0},
          {"id": "u3", "x": "a", "z": [1, "a"]}, {"x": 1, "y": None, "z": "a"}]  # fmt: skip


@pytest.mark.parametrize("depth", [25, 30])
def test_growthbook_and_or_30_deep_is_imported_and_answers_as_the_sdk(make, depth):
    ops = ["$and" if i % 2 else "$or" for i in range(depth)]
    for leaves in ([0, 1], [1, 2, 3], [3]):
        _gb_agree(make, _gb_features(_gb_chain(ops, leaves)), _USERS)


@settings(max_examples=examples(25), deadline=None)
@given(
    st.lists(st.sampled_from(["$and", "$or", "$nor", "$not"]), min_size=20, max_size=31),
    st.lists(st.integers(0, 3), min_size=1, max_size=4),
    st.lists(_ATTRS, min_size=1, max_size=4),
)
def test_growthbook_deep_conditions_answer_as_the_sdk(make_py_and_c, ops, leaves, users):
    features = _gb_features(_gb_chain(ops, leaves))
    try:
        growthbook.to_snapshot(copy.deepcopy(features))
    except InteropError as exc:  # past the bound: refused naming the flag and the rule
        assert "rules[0].condition: conditions nested" in str(exc)
        assert f"at most {MAX_CONDITION_DEPTH + 1} levels" in str(exc)
        return
    for make in make_py_and_c:
        _gb_agree(make, features, users)


def test_growthbook_past_the_bound_is_refused_naming_flag_and_rule():
    ops = ["$and" if i % 2 else "$or" for i in range(40)]
    features = {"ok": {"defaultValue": 1}, **_gb_features(_gb_chain(ops, [1]))}
    with pytest.raises(InteropError) as err:
        growthbook.to_snapshot(features)
    text = str(err.value)
    assert "features.force.rules[0].condition: conditions nested" in text
    assert "features.exp.rules[0].condition" in text and "ok" not in text
    snap = growthbook.to_snapshot(features, on_error="skip")
    assert set(snap.flags) == {"ok"}


def test_growthbook_even_nots_are_merged(make):
    cond: dict[str, Any] = {"x": 1}
    for _ in range(40):
        cond = {"$not": cond}
    _gb_agree(make, _gb_features(cond), _USERS)


# -- flagd --------------------------------------------------------------------------------
VARIANTS = {"on": "on", "off": "off", "mid": "mid"}


def _fd_leaf(i: int, kind: int) -> dict[str, Any]:
    return [{"==": [{"var": "x"}, i % 3]}, {"!=": [{"var": "y"}, i % 2]},
            {"in": [{"var": "z"}, [i % 3, "a"]]}, {">": [{"var": "x"}, i % 3]},
            {"!": {"var": "y"}}][kind % 5]  # fmt: skip


def _fd_chain(ops: list[str], leaves: list[int]) -> dict[str, Any]:
    cond = _fd_leaf(0, leaves[0])
    for i, op in enumerate(ops, 1):
        other = _fd_leaf(i, leaves[i % len(leaves)])
        cond = {"!": [cond]} if op == "!" else {op: [cond, other]}
    return cond


def _fd_doc(cond: dict[str, Any]) -> dict[str, Any]:
    flag = {"state": "ENABLED", "variants": VARIANTS, "defaultVariant": "off"}
    targeting = {"if": [cond, "on", {"==": [{"var": "x"}, 1]}, "mid", "off"]}
    return {"flags": {"f": {**flag, "targeting": targeting}}}


def _fd_agree(make, doc: dict[str, Any], users: list[dict[str, Any]]) -> None:
    engine = make(flagd.to_snapshot(copy.deepcopy(doc)))
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))
    for attrs in users:
        p = core.resolve_string_value("f", "FB", EvaluationContext("u1", copy.deepcopy(attrs)))
        r = flagd.resolve(engine, "f", flagd.context("u1", attrs), "FB")
        assert (r.value, r.variant) == (p.value, p.variant), attrs


@pytest.mark.parametrize("depth", [25, 30])
def test_flagd_and_or_30_deep_is_imported_and_answers_as_flagd(make, depth):
    # before: refused from 30 levels (the else branch's negation, a != as two levels)
    ops = ["and" if i % 2 else "or" for i in range(depth)]
    for leaves in ([0, 1], [1, 2, 3], [4]):
        _fd_agree(make, _fd_doc(_fd_chain(ops, leaves)), _USERS)


@settings(max_examples=examples(25), deadline=None)
@given(
    st.lists(st.sampled_from(["and", "or", "!"]), min_size=20, max_size=31),
    st.lists(st.integers(0, 4), min_size=1, max_size=4),
    st.lists(_ATTRS, min_size=1, max_size=4),
)
def test_flagd_deep_conditions_answer_as_flagd(make_py_and_c, ops, leaves, users):
    doc = _fd_doc(_fd_chain(ops, leaves))
    try:
        flagd.to_snapshot(copy.deepcopy(doc))
    except InteropError as exc:
        assert "flags.f.targeting: conditions nested" in str(exc)
        return
    for make in make_py_and_c:
        _fd_agree(make, doc, users)


def test_flagd_past_the_bound_is_refused_naming_flag():
    ops = ["and" if i % 2 else "or" for i in range(40)]
    with pytest.raises(InteropError, match=r"flags\.f\.targeting: conditions nested \d+ levels"):
        flagd.to_snapshot(_fd_doc(_fd_chain(ops, [1])))
