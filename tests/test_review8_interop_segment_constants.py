"""A segment inlined at each reference costs its nodes, not its constants' size.

The compiler inlines a segment's conditions at every reference, and budgets that by
nodes (``MAX_INLINED_NODES``); but an ``in`` test of 1,000 values is one node whose
lowering wrote 1,000 ids to the pool, a ``contains`` of 5,000 characters wrote 5,000
bytes and a regex was compiled again, at every reference. An Unleash payload of 3.5 MB
(500 segments of one 1,000-value IN constraint, 20 features of 20 strategies each naming
all 500) took 67 s and 2.5 GB to compile, within every budget. Now such a test is
lowered once and each further reference emits its node on what that wrote (2 s).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from cfgcore.compiler import compile_snapshot
from cfgcore.interop import unleash

VALUES = [str(j) for j in range(1000)]
LONG = "z" * 5000
SEGMENTS = [
    {
        "id": 1,
        "constraints": [
            {"contextName": "x", "operator": "IN", "values": VALUES},
            {"contextName": "ua", "operator": "STR_CONTAINS", "values": [LONG]},
            {"contextName": "r", "operator": "REGEX", "value": "^a[0-9]+$"},
            {"contextName": "y", "operator": "NOT_IN", "values": VALUES[:500]},
        ],
    }
]


def _payload(features: int, strategies: int) -> dict[str, Any]:
    return {
        "version": 2,
        "segments": SEGMENTS,
        "features": [
            {
                "name": f"f{k}",
                "enabled": True,
                "strategies": [
                    {
                        "name": "default",
                        "segments": [1],
                        "constraints": [{"contextName": "k", "operator": "IN", "values": [str(s)]}],
                    }
                    for s in range(strategies)
                ],  # fmt: skip
            }
            for k in range(features)
        ],
    }


def test_each_reference_does_not_copy_the_constants():
    one = compile_snapshot(unleash.to_snapshot(_payload(1, 1)))
    many = compile_snapshot(unleash.to_snapshot(_payload(10, 10)))  # 100 references
    assert len(many.ipool) < len(one.ipool) + 100 * 20  # was 100 times the 1,500 ids
    assert len(many.sbytes) < len(one.sbytes) + 100 * 20  # was 100 times 5,000 bytes
    assert len(many.objs) == len(one.objs)  # the regex compiled once, not 100 times


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("yggdrasil_engine").setLevel(logging.CRITICAL)


CONTEXTS = [
    {"x": "5", "ua": "a" + LONG + "b", "r": "a12", "y": "999", "k": "3"},
    {"x": "5", "ua": "a" + LONG + "b", "r": "a12", "y": "10", "k": "3"},
    {"x": "5000", "ua": "a" + LONG + "b", "r": "a12", "y": "999", "k": "3"},
    {"x": "5", "ua": LONG[:-1], "r": "a12", "y": "999", "k": "3"},
    {"x": "5", "ua": LONG, "r": "b12", "y": "999", "k": "3"},
    {"x": "5", "ua": LONG, "r": "a1", "y": "999", "k": "11"},
]


@pytest.mark.parametrize("props", CONTEXTS)
def test_shared_constants_answer_as_yggdrasil(make_py_and_c, props):
    engine_mod = pytest.importorskip("yggdrasil_engine.engine")
    payload = _payload(4, 10)
    ygg = engine_mod.UnleashEngine()
    ygg.take_state(json.dumps(payload))
    snap = unleash.to_snapshot(payload)
    engines = [make(snap) for make in make_py_and_c]
    ctx = {"userId": "u", "properties": props}
    for f in payload["features"]:
        want = ygg.is_enabled(f["name"], ctx).is_enabled
        for engine in engines:
            assert engine.is_enabled(f["name"], unleash.context(ctx)) is want, (f["name"], props)
