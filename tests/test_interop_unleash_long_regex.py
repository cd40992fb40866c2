"""Unleash import: a REGEX constraint searches a value of any length, as yggdrasil does.

cfgcore's ``matches`` reads at most 4,096 characters (a longer value never matches);
Unleash's engine (yggdrasil, which UnleashClient runs) searches the whole value. A
``userId`` of 5,000 characters starting with "a" failed ``^a`` here and passed it there.
The importer now also tests a ``#search:`` attribute that ``unleash.context()`` answers
for such a value, searching the whole text with the pattern the import accepted.
"""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore._lower import MAX_REGEX_INPUT
from cfgcore.interop import unleash
from tests.fuzz import examples

ygg = pytest.importorskip("yggdrasil_engine.engine")

PATTERNS = ["^a", "z$", "(?i)Z$", "a{3}z", "^a+$", "b", "^[a-z]+\\d$", "é", "^$", "\\w+z$"]
LONG = "a" * 5000 + "z"
VALUES = [
    LONG,
    "b" + LONG,
    LONG + "\n",
    LONG + "7",
    "é" * 5000,
    LONG[:MAX_REGEX_INPUT],
    LONG[: MAX_REGEX_INPUT + 1],
    "x" * (MAX_REGEX_INPUT - 1) + "az",
]


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("yggdrasil_engine").setLevel(logging.CRITICAL)


def _payload(constraints: list[dict[str, Any]]) -> dict[str, Any]:
    strategy = {
        "name": "flexibleRollout",
        "parameters": {"rollout": "100", "groupId": "f", "stickiness": "default"},
        "constraints": constraints,
    }
    return {"version": 2, "features": [{"name": "f", "enabled": True, "strategies": [strategy]}]}


def _yggdrasil(payload: dict[str, Any]) -> Any:
    engine = ygg.UnleashEngine()
    engine.take_state(json.dumps(payload))
    return engine


def _check(make: Any, payload: dict[str, Any], contexts: list[dict[str, Any]]) -> list[bool]:
    peer = _yggdrasil(payload)
    engine = make(unleash.to_snapshot(copy.deepcopy(payload)))
    answers = []
    for ctx in contexts:
        want = peer.is_enabled("f", copy.deepcopy(ctx)).is_enabled
        for built in (unleash.context(ctx), unleash.context(ctx, engine=engine)):
            assert engine.is_enabled("f", engine.context(built)) is want, (ctx, built.keys())
            assert engine.is_enabled("f", built) is want
        answers.append(want)
    return answers


@pytest.mark.parametrize("inverted", [False, True])
@pytest.mark.parametrize("ci", [False, True])
@pytest.mark.parametrize("field", ["userId", "tier"])
def test_a_long_value_is_searched_whole(make, inverted, ci, field):
    for pattern in PATTERNS:
        constraint = {"contextName": field, "operator": "REGEX", "value": pattern}
        constraint |= {"inverted": inverted, "caseInsensitive": ci}
        contexts = [
            {"userId": "u", "properties": {field: v}} if field != "userId" else {"userId": v}
            for v in VALUES
        ]
        answers = _check(make, _payload([constraint]), contexts)
        if pattern == "^a" and not inverted:
            # the peer matches a long value starting with "a" (what cfgcore missed)
            assert answers[0] is True and answers[1] is False


def test_a_long_value_beside_other_constraints(make):
    constraints = [
        {"contextName": "userId", "operator": "REGEX", "value": "z$"},
        {"contextName": "tier", "operator": "STR_STARTS_WITH", "values": ["A"],
         "caseInsensitive": True},
        {"contextName": "n", "operator": "NUM_GT", "value": "5"},
    ]  # fmt: skip
    contexts = [
        {"userId": LONG, "properties": {"tier": "a" * 6000, "n": "7"}},
        {"userId": LONG, "properties": {"tier": "b", "n": "7"}},
        {"userId": LONG + "\n", "properties": {"tier": "a", "n": 9}},
        {"userId": "z", "properties": {"tier": "a", "n": "7"}},
    ]
    assert _check(make, _payload(constraints), contexts) == [True, False, False, True]


@settings(max_examples=examples(40), deadline=None)
@given(
    pattern=st.sampled_from(PATTERNS),
    inverted=st.booleans(),
    ci=st.booleans(),
    parts=st.lists(
        st.tuples(st.sampled_from(list("abzAé7\n ")), st.integers(500, 3000)),
        min_size=1,
        max_size=4,
    ),
)
def test_long_values_answer_as_yggdrasil(make_py_and_c, pattern, inverted, ci, parts):
    value = "".join(ch * n for ch, n in parts)
    constraint = {"contextName": "userId", "operator": "REGEX", "value": pattern}
    payload = _payload([constraint | {"inverted": inverted, "caseInsensitive": ci}])
    peer = _yggdrasil(payload)
    want = peer.is_enabled("f", {"userId": value}).is_enabled
    snap = unleash.to_snapshot(copy.deepcopy(payload))
    for make in make_py_and_c:
        engine = make(snap)
        ctx = {"userId": value}
        for built in (unleash.context(ctx), unleash.context(ctx, engine=engine)):
            assert engine.is_enabled("f", engine.context(built)) is want, len(value)
