"""GrowthBook hashing attributes and experiment keys that are not text, against the real
SDK on both evaluators.

growthbook 4.0.0 reads a user's hash value with ``attributes.get(hashAttribute)``
(``_getOrigHashValue``; ``id`` when the attribute is null), then, where that gives none,
``attributes.get(fallbackAttribute)`` if the fallback is truthy: a number or boolean is
a key like any other (JSON attributes, whose keys are text, hold nothing under it; a
Python dict may: ``{5: "x"}``, found by ``5``, ``5.0``; ``True`` finds ``1``), a list
or an object is unhashable and raises TypeError there. An experiment's ``key`` (the
feature's key when falsy) is looked up in the user's overrides and forced variations
(dict lookups: a list raises for everyone who reaches the experiment) and joined to
the hash value only where no ``seed`` is given (``seed or key``: a number raises there),
which the SDK does only for users with a hash value.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.interop import InteropError, growthbook
from tests.fuzz import examples

pytest.importorskip("growthbook")

from tests.growthbook_sdk import assert_cfgcore_answers, sdk_answers  # noqa: E402  (needs the SDK: after the skip)

USERS: list[dict[Any, Any]] = [
    {},
    {"id": "u1"},
    {"id": "u2", "h": "x"},
    {"h": "y"},
    {"fb": "z"},
    {"id": 0, "fb": 7},
    {5: "five"},
    {1: "one", "id": "u3"},
    {0: "zero"},
    {2.5: "half"},
    {"5": "text five"},
] + [{"id": f"u{j}", 5: f"n{j}", 1: j + 1} for j in range(12)]
# a user with a value under every key the generated rules hash by
USERS.append(
    {k: f"k{k}" for k in [*range(-3, 7), 2.5, float("inf"), "", "id", "h", "fb", "5", "e"]}
)
FORCED: list[dict[Any, Any]] = [{}, {5: 1}, {"5": 1}, {True: 0}, {1: 1}, {"f": 1}, {2.5: 1}]
ODD = [5, 5.0, 1, True, False, 0, 0.0, "", None, 2.5, "5", "h", "fb"]
UNHASHABLE = [[1], {"a": 1}, []]


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("growthbook").setLevel(logging.CRITICAL)


def _sdk(features: dict[str, Any]) -> tuple[list[Any], bool]:
    """The SDK's (value, type, on) per user and forced variations; whether it raised."""
    return sdk_answers(features, USERS, FORCED)


def _agree(make_py_and_c: Any, rules: list[Any]) -> str:
    """cfgcore answers as the SDK for every user where it imports; it refuses only where
    the SDK raises for some user. Returns "imported" or "refused"."""
    features = {"f": {"defaultValue": "d", "rules": rules}}
    want, raised = _sdk(features)
    try:
        snap = growthbook.to_snapshot(copy.deepcopy(features))
    except InteropError as exc:
        k = int(re.search(r"features\.f\.rules\[(\d+)\]", str(exc)).group(1))  # type: ignore[union-attr]
        # the SDK raises for some user; or it would on the refused rule alone, which a
        # partial rollout before it keeps from every user here (cfgcore does not reason
        # about which users rollouts together leave)
        alone = _sdk({"f": {"defaultValue": "d", "rules": [rules[k]]}})[1]
        assert raised or (alone and k > 0), (rules, str(exc))
        return "refused"
    assert not raised, rules
    for make in make_py_and_c:
        assert_cfgcore_answers(make(snap), want, USERS, FORCED, note=rules)
    return "imported"


@pytest.mark.parametrize("attr", ODD, ids=repr)
@pytest.mark.parametrize(
    "rule",
    [
        {"force": "F", "coverage": 1},
        {"force": "F", "range": [0, 0.5], "seed": "s"},
        {"variations": ["a", "b"], "key": "e"},
        {"force": "F", "filters": [{"seed": "q", "ranges": [[0, 0.7]]}]},
    ],
    ids=repr,
)
def test_a_hash_attribute_that_is_no_text_is_a_key_like_any_other(make_py_and_c, rule, attr):
    """A number or boolean names the attribute held under that key (none, for JSON's
    text keys): the SDK answers, so cfgcore imports with its answers."""
    rule = copy.deepcopy(rule)
    if "filters" in rule:
        rule["filters"][0]["attribute"] = attr
    else:
        rule["hashAttribute"] = attr
    assert _agree(make_py_and_c, [rule, {"force": "last"}]) == "imported"


@pytest.mark.parametrize("fb", ODD + [[], {}], ids=repr)
def test_a_fallback_attribute_that_is_no_text(make_py_and_c, fb):
    rule = {"force": "F", "coverage": 1, "hashAttribute": "h", "fallbackAttribute": fb}
    assert _agree(make_py_and_c, [rule, {"force": "last"}]) == "imported"


@pytest.mark.parametrize("attr", UNHASHABLE[:2], ids=repr)
@pytest.mark.parametrize("where", ["hashAttribute", "fallbackAttribute", "filter"])
def test_an_unhashable_hash_attribute_is_still_refused(make_py_and_c, attr, where):
    """A list or an object raises TypeError in the SDK's lookup for every user who reaches
    the hashing (the fallback: every user without a value for the hash attribute)."""
    if where == "filter":
        rule: dict[str, Any] = {"force": "F", "filters": [{"attribute": attr, "ranges": [[0, 1]]}]}
    else:
        rule = {"force": "F", "coverage": 0.5, "hashAttribute": "h", where: attr}
    assert _agree(make_py_and_c, [rule]) == "refused"


@pytest.mark.parametrize("key", ODD + UNHASHABLE, ids=repr)
@pytest.mark.parametrize("seed", [None, "s"], ids=repr)
def test_an_experiment_key_that_is_no_text(make_py_and_c, key, seed):
    """A number or boolean key is the key forced variations are looked up by (``5`` and
    ``5.0`` alike, ``True`` as ``1``); it is joined to the hash value only without a seed,
    where the SDK raises for users with a hash value, and cfgcore refuses."""
    rule: dict[str, Any] = {"variations": ["a", "b"], "key": key}
    if seed is not None:
        rule["seed"] = seed
    got = _agree(make_py_and_c, [rule])
    if isinstance(key, str) or not key:
        assert got == "imported"
    elif isinstance(key, (list, dict)):
        assert got == "refused"  # every user reaching it raises
    else:
        assert got == ("imported" if seed else "refused")


@pytest.mark.parametrize("key", ODD + UNHASHABLE, ids=repr)
def test_an_experiment_key_only_hashless_users_reach(make_py_and_c, key):
    """After a rollout holding every bucket by ``id`` only users without an id reach the
    experiment: the SDK returns before joining its key (step 6 of ``_run_experiment``),
    but still looks it up in their forced variations (a list raises there)."""
    rules = [{"force": "full", "coverage": 1}, {"variations": ["a", "b"], "key": key}]
    got = _agree(make_py_and_c, rules)
    assert got == ("refused" if isinstance(key, (list, dict)) and key else "imported")


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 6),
    st.sampled_from([0.0, 1.0, 5.0, 2.5, float("inf")]),
    st.sampled_from(["", "id", "h", "fb", "5", "e"]),
)


@settings(max_examples=examples(25), deadline=None)
@given(
    hash_attr=SCALARS,
    fb=SCALARS,
    key=SCALARS,
    seed=st.sampled_from([None, "", "s"]),
    cov=st.sampled_from([None, 1, 0.5]),
)
def test_odd_hashing_names_answer_as_the_sdk(make_py_and_c, hash_attr, fb, key, seed, cov):
    rules: list[Any] = []
    if cov is not None:
        rules.append({"force": "r", "coverage": cov, "hashAttribute": hash_attr,
                      "fallbackAttribute": fb})  # fmt: skip
    rules.append({"variations": ["a", "b", "c"], "key": key, "seed": seed,
                  "hashAttribute": hash_attr})  # fmt: skip
    _agree(make_py_and_c, rules)
