"""GrowthBook rules reached only by users without a hash value, against the real SDK on
both evaluators.

A force rule whose rollout (``coverage``/``range``) holds every bucket, with no
condition, filters or prerequisites other than gates, serves every user who has a value
for its hash attribute (or its fallback attribute): the SDK (growthbook 4.0.0
``_eval_feature``) goes past it only for users who have neither. Those users skip every
later rule that hashes by those attributes before the SDK reads anything of the hashing
(``_isIncludedInRollout`` and ``_isFilteredOut`` return at an empty hash value,
``_run_experiment`` at step 6), so what such a rule would raise on there (a ``range``
of ``"x"``, a ``seed`` of 5, a filter's null seed, a namespace with a number for its id)
is never raised, and cfgcore must not refuse it. A rule that hashes by another
attribute stays reachable, and so does anything else of a rule (its condition, an
experiment's forced variations).
"""

from __future__ import annotations

import copy
import functools
import itertools
import logging
import re
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from cfgcore.interop import InteropError, growthbook
from tests.fuzz import examples

pytest.importorskip("growthbook")

from tests.growthbook_sdk import (  # noqa: E402  (needs the SDK: after the skip)
    assert_cfgcore_answers,
    contexts,
    sdk_answers,
)

# Rules serving every user with a hash value for their attributes ("force" filled in).
FULL: list[dict[str, Any]] = [
    {"coverage": 1},
    {"coverage": 5, "seed": "s"},
    {"range": [0, 1]},
    {"range": [-1, 2], "hashVersion": 2},
    {"coverage": 1, "hashAttribute": "h"},
    {"coverage": 1, "fallbackAttribute": "fb"},
    {"coverage": 1, "hashAttribute": "h", "fallbackAttribute": "fb"},
    {"coverage": 1, "fallbackAttribute": "fb", "disableStickyBucketing": True},
    {"coverage": 1, "parentConditions": [{"id": "p", "condition": {"value": True}, "gate": True}]},
]
# Rules that hash by one of those attributes, with a hashed part the SDK raises on for a
# user who has a hash value (and reaches it).
HASHED_BROKEN: list[dict[str, Any]] = [
    {"force": "r", "range": "x"},
    {"force": "c", "coverage": "x"},
    {"force": "s", "coverage": 0.5, "seed": 5},
    {"force": "hr", "range": [0], "hashAttribute": "h"},
    {"force": "fr", "range": "x", "fallbackAttribute": "fb"},
    {"force": "fl", "filters": [{"seed": None, "ranges": [[0, 1]]}]},
    {"force": "fh", "filters": [{"attribute": "h", "ranges": "x"}, {"ranges": 3}]},
    {"variations": ["e0", "e1"], "key": "e", "namespace": [1, 0, 1]},
    {"variations": ["g0", "g1"], "key": "g", "ranges": [[0, "x"]], "hashAttribute": "h"},
    {"variations": ["k0", "k1"], "key": "k", "seed": 5},
    {"variations": ["w0", "w1"], "key": "w", "coverage": "x"},
]
# Rules some user passes over (hashed, conditional) or everyone reaches.
OTHER: list[dict[str, Any]] = [
    {"force": "half", "coverage": 0.5},
    {"force": "hhalf", "coverage": 0.5, "hashAttribute": "h"},
    {"force": "fbonly", "coverage": 1, "hashAttribute": "fb"},
    {"force": "nl", "condition": {"country": "NL"}},
    {"variations": ["x0", "x1"], "key": "x"},
    {"variations": ["y0", "y1"], "key": "y", "hashAttribute": "h", "coverage": 0.5},
    {"force": "filt", "filters": [{"attribute": "h", "seed": "z", "ranges": [[0, 0.5]]}]},
    {"force": "pc", "parentConditions": [{"id": "p", "condition": {"value": True}}]},
    {"force": "all"},
]
PARENTS: dict[str, Any] = {
    "p": {"defaultValue": False, "rules": [{"condition": {"country": "NL"}, "force": True}]},
}

HASH_VALUES = [None, "", 0, True, "v", 7]  # None: the attribute is absent
USERS: list[dict[str, Any]] = []
for _id, _h, _fb in itertools.product(HASH_VALUES, [None, "", "hv", 3], [None, 0, "fv"]):
    _u = {k: v for k, v in (("id", _id), ("h", _h), ("fb", _fb)) if v is not None}
    USERS += [_u, {**_u, "country": "NL"}]
USERS += [{"id": f"u{j}", "h": f"h{j}", "country": ["NL", "US"][j % 2]} for j in range(24)]
USERS += [{"id": None, "h": [1]}, {"id": float("nan")}, {"id": {"a": 1}, "fb": ""}]
FORCED = [{}, {"e": 1}, {"k": 0, "g": 1, "w": 5}, {"x": 9, "y": -1}, {"e": 2}]
VALUES = st.sampled_from([0, 1, "", "on", True, None, [], {"k": 1}])


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("growthbook").setLevel(logging.CRITICAL)


@functools.cache
def _contexts() -> list[Any]:
    """``growthbook.context()`` of every user with every set of forced variations, built
    once for every engine and example (an evaluation reads a context, never changes it;
    some 850 of them took a third of the hypothesis test's time when built per engine)."""
    return contexts(USERS, FORCED)


def _sdk_answers(features: dict[str, Any]) -> tuple[list[Any], bool]:
    """The SDK's answers per user and forced variations, with the gates the rules read."""
    return sdk_answers({**PARENTS, **features}, USERS, FORCED)


def _check(make_py_and_c: Any, rule_list: list[dict[str, Any]], default: Any) -> str:
    """cfgcore's import of ``rule_list`` against the SDK: answers equal where it
    imports; where it refuses, the SDK raises on the refused rule for some user who
    reaches it. Returns what happened."""
    features = {"f": {"defaultValue": default, "rules": rule_list}}
    # (the SDK is asked about the whole list only where cfgcore imports it, and about
    # the refused rule alone only where that is not the list up to it: its answers
    # would be the same)
    try:
        snap = growthbook.to_snapshot({**copy.deepcopy(PARENTS), **copy.deepcopy(features)})
    except InteropError as exc:
        # the rules up to the refused one make the SDK raise for some user; or the
        # refused rule does alone, and a rule before has a condition or prerequisite
        # (cfgcore does not reason about which users conditions together leave)
        k = int(re.search(r"rules\[(\d+)\]", str(exc)).group(1))  # type: ignore[union-attr]
        head = {"f": {"defaultValue": default, "rules": rule_list[: k + 1]}}
        head_raised = _sdk_answers(head)[1]
        if head_raised:
            return "refused"
        alone = {"f": {"defaultValue": default, "rules": [rule_list[k]]}}
        alone_raised = head_raised if k == 0 else _sdk_answers(alone)[1]
        assert alone_raised, (rule_list, str(exc))
        assert any("condition" in r or "parentConditions" in r for r in rule_list[:k]), (
            rule_list,
            str(exc),
        )
        return "refused after conditions"
    want, raised = _sdk_answers(features)
    assert not raised, rule_list
    for make in make_py_and_c:
        assert_cfgcore_answers(
            make(snap), want, USERS, FORCED, note=rule_list, contexts=_contexts()
        )
    return "imported"


def _hashes_by(rule: dict[str, Any]) -> set[str]:
    """The attributes whose hash value ``rule``'s hashing reads."""
    if "filters" in rule:
        return {rule["filters"][0].get("attribute", "id")}
    by = {rule.get("hashAttribute", "id")}
    if "force" in rule and rule.get("fallbackAttribute") and not rule.get("disableStickyBucketing"):
        by.add(rule["fallbackAttribute"])
    return by


# each full rollout with each broken rule hashing only by attributes it serves by
PAIRS = [(f, b) for f in FULL for b in HASHED_BROKEN if _hashes_by(b) <= _hashes_by(f)]


@pytest.mark.parametrize(("full", "broken"), PAIRS, ids=repr)
def test_a_hashed_rule_after_a_full_rollout_is_not_refused(make_py_and_c, full, broken):
    """Only users without a hash value reach ``broken``: the SDK skips its hashing for
    them, so it answers for every user and cfgcore imports with its answers."""
    rule_list = [{**full, "force": "full"}, copy.deepcopy(broken), {"force": "last"}]
    assert _check(make_py_and_c, rule_list, "d") == "imported"


@pytest.mark.parametrize(
    "rule_list",
    [
        # hashed by "h": users with an id (and without h) reach it and raise
        [{"force": "full", "coverage": 1}, {"force": "hr", "range": [0], "hashAttribute": "h"}],
        # the fallback gives users without an id a hash value
        [{"force": "full", "coverage": 1},
         {"force": "fr", "range": "x", "fallbackAttribute": "fb"}],
        # a condition leaves users with an id out of the full rollout
        [{"force": "full", "coverage": 1, "condition": {"country": "NL"}},
         {"force": "r", "range": "x"}],
        # a filter on "h" decides first: users with an h and no id reach the rollout
        [{"force": "full", "coverage": 1, "filters": [{"attribute": "h", "ranges": [[0, 1]]}]},
         {"force": "r", "range": "x"}],
        # a rollout of fewer than every bucket
        [{"force": "full", "coverage": 0.5}, {"force": "r", "range": "x"}],
        # a prerequisite that is no gate skips users with an id
        [{"force": "full", "coverage": 1,
          "parentConditions": [{"id": "p", "condition": {"value": True}}]},
         {"force": "r", "range": "x"}],
    ],
    ids=lambda rules: repr(rules[0]),
)  # fmt: skip
def test_a_hashed_rule_some_hashed_user_reaches_is_still_refused(rule_list):
    """Where some user with a hash value reaches the broken rule, the SDK raises for
    him, and cfgcore refuses the feature naming the rule."""
    features = {"f": {"defaultValue": 0, "rules": rule_list}}
    assert _sdk_answers(features)[1]
    with pytest.raises(InteropError, match=r"features\.f\.rules\[1\]"):
        growthbook.to_snapshot({**copy.deepcopy(PARENTS), **features})


def test_the_forced_variations_of_an_experiment_after_a_full_rollout_still_serve(
    make_py_and_c,
):
    """A user without a hash value is forced into an experiment before the SDK hashes:
    the experiment's forced variations are imported, its broken namespace is not read."""
    rule_list = [
        {"force": "full", "coverage": 1},
        {"variations": ["e0", "e1"], "key": "e", "namespace": [1, 0, 1]},
    ]
    assert _check(make_py_and_c, rule_list, "d") == "imported"
    snap = growthbook.to_snapshot({"f": {"defaultValue": "d", "rules": rule_list}})
    engine = make_py_and_c[0](snap)
    assert engine.evaluate("f", growthbook.context({}, forced_variations={"e": 1})).value == "e1"
    assert engine.evaluate("f", growthbook.context({"id": "u"})).value == "full"


@settings(max_examples=examples(120))
@given(
    drawn=st.lists(
        st.one_of(
            st.sampled_from(FULL).map(lambda r: {**r, "force": "full"}),
            st.sampled_from(HASHED_BROKEN),
            st.sampled_from(OTHER),
        ),
        min_size=1,
        max_size=4,
    ),
    default=VALUES,
)
def test_rule_lists_answer_as_the_sdk_for_users_with_and_without_hash_values(
    make_py_and_c, drawn, default
):
    event(_check(make_py_and_c, copy.deepcopy(drawn), default))


@pytest.mark.parametrize(
    "skipped",
    [
        {"condition": {"country": {"$in": "NL"}}, "force": 2**64},  # $in of no list: never
        {"condition": 5, "force": 2, "range": "x"},  # the SDK: an error, false
        {"filters": [{"hashVersion": 3, "ranges": [[0, 1]]}], "force": 2, "coverage": "x"},
        {"filters": [{"ranges": [[0, 0]]}], "variations": {"no": "list"}},  # no bucket
    ],
    ids=repr,
)
def test_a_rule_nobody_passes_is_read_no_further(make_py_and_c, skipped):
    """A rule whose condition or filters no user passes is skipped by the SDK before it
    reads the rest: what it would raise on there is not refused."""
    assert _check(make_py_and_c, [skipped, {"force": "next"}], "d") == "imported"
