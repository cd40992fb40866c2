"""GrowthBook rules after a rule that serves every user, against the real SDK on both
evaluators.

The SDK (growthbook 4.0.0, ``_eval_feature``) returns at a force rule without
condition (or with one that holds for everyone), filters, coverage, range or
prerequisites, for every user: it never reads a rule after it, so one it would raise
on does not make it fail. cfgcore imports such a feature without those rules. A rule
that skips some user (a rollout, an experiment: a user without a hash value is in
neither; a condition) leaves the next rule reachable, and a broken one there is still
refused. Hypothesis builds rule lists from the three kinds; where cfgcore imports, its
value and ``on`` must be the SDK's for every user, and where it refuses, the SDK must
raise for one of them (or the refusal is one of cfgcore's stated ones).
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from cfgcore.interop import InteropError, growthbook
from tests.fuzz import examples

gb_sdk = pytest.importorskip("growthbook")

from tests.growthbook_sdk import sdk_answers  # noqa: E402  (needs the SDK: after the skip)

# Rules every user who reaches them returns from (``force`` filled in).
EVERYONE: list[dict[str, Any]] = [
    {},
    {"condition": {}},
    {"condition": {"$and": []}},
    {"condition": {"$or": [{}]}},
    {"condition": {"$or": [{"country": "NL"}, {"$and": []}]}},
    {"condition": {"country": {"$nin": []}}},
    {"condition": {"$nor": [{"$nor": []}]}},
    {"filters": [], "coverage": None, "range": None, "parentConditions": []},
    {"seed": 5},  # a seed is read only to hash: a rule with no rollout never hashes
    {"key": 5},  # a force rule has no experiment key
    # prerequisites that are all gates (a failing one returns null) or test nothing
    {"parentConditions": [{"id": "p", "condition": {"value": True}, "gate": True}]},
    {"parentConditions": [{"id": "p"}, {"condition": {"value": 5}}]},
    {"parentConditions": [{"id": "p", "condition": {"value": False}, "gate": 1}, {"id": "p"}]},
]
# Rules some user passes over.
SOMEONE: list[dict[str, Any]] = [
    {"force": "covered", "coverage": 1},
    {"force": "ranged", "range": [0, 1]},
    {"force": "nl", "condition": {"country": "NL"}},
    {"force": "has", "condition": {"country": {"$exists": True}}},
    {"force": "half", "coverage": 0.5, "seed": "s"},
    {"variations": ["a", "b"], "key": "e"},  # 100% of users with an id
    {"variations": ["a", "b"], "key": "e2", "coverage": 0.4, "hashVersion": 2},
    {"force": "none", "coverage": 0},
    {"force": "pc", "parentConditions": [{"id": "p", "condition": {"value": True}}]},
    {"force": "pcg", "parentConditions": [{"id": "p", "condition": {"value": True}, "gate": 0}]},
    {"force": "odd", "condition": {"$or": None}},  # the SDK: an error, false for everyone
]
# Rules the SDK raises on for some user who reaches them, or that cfgcore refuses.
BROKEN: list[dict[str, Any]] = [
    {"force": 2, "seed": 5, "coverage": 0.5},
    {"force": 2, "filters": 3},
    {"force": 2, "range": "x"},
    {"variations": [1, 2], "namespace": [1, 0, 1]},
    {"variations": [1, 2], "meta": [3, 4]},
    {"variations": [1, 2], "key": 5},
    {"force": 2, "condition": {"country": {"$bogus": 1}}},  # refused: unknown operator
    {"force": 2, "url": "https://example.com"},  # refused: URL targeting
    {"force": 2, "parentConditions": [{"id": "f", "condition": {"value": 1}}]},  # a cycle
    {"force": 2, "parentConditions": [{"id": "bad", "gate": True}]},  # a refused parent
]
# the parent the prerequisites test (on for some users), and one cfgcore refuses
PARENTS: dict[str, Any] = {
    "p": {"defaultValue": False, "rules": [{"condition": {"country": "NL"}, "force": True}]},
    "bad": {"defaultValue": 0, "rules": [{"force": 1, "filters": 3}]},
}
# cfgcore's stated refusals of what the SDK answers (README: "What cannot be lowered")
STATED = (
    "condition operator",
    "is not supported",
    "prerequisite cycle",
    "refused",
)

USERS: list[dict[str, Any]] = [
    {},
    {"id": ""},
    {"country": "NL"},
    {"id": None, "country": "US"},
    {"id": 7, "country": "NL"},
    {"id": True},
    {"id": "u-x", "country": ["NL"]},
    *({"id": f"u{j}", "country": ["NL", "US", None][j % 3]} for j in range(40)),
]
VALUES = st.sampled_from([0, 1, "", "on", True, False, None, 1.5, [], {"k": 1}])


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("growthbook").setLevel(logging.CRITICAL)


def _sdk_answers(features: dict[str, Any]) -> tuple[list[Any], bool]:
    """The SDK's (value, on) for each user, and whether it raised for one."""
    return sdk_answers({**PARENTS, **features}, USERS)


@st.composite
def rules(draw: Any) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["everyone", "someone", "someone", "broken"]))
        if kind == "everyone":
            rule = dict(draw(st.sampled_from(EVERYONE)))
            rule["force"] = draw(VALUES.filter(lambda v: v is not None))
        else:
            rule = copy.deepcopy(draw(st.sampled_from(SOMEONE if kind == "someone" else BROKEN)))
        out.append((kind, rule))
    return out


@settings(max_examples=examples(150))
@given(drawn=rules(), default=VALUES)
def test_rules_after_one_serving_everyone_are_unread(make_py_and_c, drawn, default):
    rule_list = [rule for _, rule in drawn]
    features = {"f": {"defaultValue": default, "rules": rule_list}}
    want, raised = _sdk_answers(features)
    try:
        snap = growthbook.to_snapshot({**copy.deepcopy(PARENTS), **features}, on_error="skip")
        if "f" not in snap.flags:
            raise InteropError(snap.metadata["refused"]["f"])
    except InteropError as exc:
        # refused for a rule no rule before serves everyone, one the SDK raises on when
        # it reaches it (for some user), or for a stated reason
        k = int(re.search(r"rules\[(\d+)\]", str(exc)).group(1))  # type: ignore[union-attr]
        assert "everyone" not in [kind for kind, _ in drawn[:k]], (rule_list, str(exc))
        alone = {"f": {"defaultValue": default, "rules": [rule_list[k]]}}
        assert _sdk_answers(alone)[1] or any(s in str(exc) for s in STATED), str(exc)
        event("refused")
        return
    event(
        "imported, after a rule serving everyone"
        if "everyone" in [k for k, _ in drawn[:-1]]
        else "imported"
    )
    assert not raised, rule_list
    for make in make_py_and_c:
        engine = make(snap)
        for attrs, w in zip(USERS, want, strict=True):
            ctx = growthbook.context(attrs)
            value = growthbook.thaw(engine.evaluate("f", ctx).value)
            got = (value, type(value), engine.is_enabled("f", ctx))
            assert got == w, (rule_list, attrs)


@pytest.mark.parametrize("serving", EVERYONE)
@pytest.mark.parametrize("broken", BROKEN)
def test_nothing_of_an_unreachable_rule_is_imported(serving, broken):
    head = [{"force": 1, "condition": {"country": "NL"}}, {**serving, "force": 2}]
    full = {"f": {"defaultValue": 0, "rules": [*head, broken, broken]}}
    alone = {"f": {"defaultValue": 0, "rules": head}}
    full_snap = growthbook.to_snapshot({**PARENTS, **full}, on_error="skip")
    alone_snap = growthbook.to_snapshot({**PARENTS, **alone}, on_error="skip")
    assert full_snap.flags == alone_snap.flags
    want, raised = _sdk_answers({"f": {"defaultValue": 0, "rules": [*head, broken]}})
    assert not raised and 1 in {w[0] for w in want} <= {1, 2, None}


@pytest.mark.parametrize("skipping", SOMEONE)
def test_a_broken_rule_after_one_that_skips_a_user_is_refused(skipping):
    broken = {"force": 2, "filters": 3}  # the SDK raises on it for everyone who reaches it
    features = {"f": {"defaultValue": 0, "rules": [skipping, broken]}}
    assert _sdk_answers(features)[1]
    with pytest.raises(InteropError, match=r"features\.f\.rules\[1\]\.filters"):
        growthbook.to_snapshot({"p": PARENTS["p"], **features})


@pytest.mark.parametrize("rule", [5, "x", [], {1: 2}])
def test_a_rule_the_sdk_cannot_build_is_refused_even_unreachable(rule):
    features = {"f": {"defaultValue": 0, "rules": [{"force": 1}, rule]}}
    with pytest.raises(TypeError):  # the SDK builds every rule when features are set
        gb_sdk.GrowthBook(features=copy.deepcopy(features))
    with pytest.raises(InteropError, match=r"features\.f\.rules\[1\]"):
        growthbook.to_snapshot(features)
