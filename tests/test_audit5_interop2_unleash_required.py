"""Unleash features missing a field the SDK's engine requires, fifth audit (follow-up),
against yggdrasil (the engine of the Unleash Python SDK).

yggdrasil rejects a whole payload holding a feature without ``enabled`` (or a strategy
without a name, a variant without a weight, a constraint without ``operator``, a
segment without ``constraints``, ...): the SDK then keeps the features it had (none on a
first load, so every feature is unknown and off). cfgcore imported such a feature as
off, or as if the field had a default, and served the rest. Each is now refused on
import naming the key path (the importer's other features still load with
``on_error="skip"``, as for the wrong-typed fields yggdrasil rejects).
"""

from __future__ import annotations

import json

import pytest

from cfgcore import Engine
from cfgcore.interop import InteropError, unleash

ygg = pytest.importorskip("yggdrasil_engine.engine")

GOOD = {"name": "b", "enabled": True, "strategies": [{"name": "default"}]}
D = {"name": "default"}


def _variant(**kw):
    return {"name": "a", "enabled": True, "strategies": [],
            "variants": [{"name": "x", "weight": 1000, **kw}]}  # fmt: skip


def _constraint(**kw):
    return {"name": "a", "enabled": True, "strategies": [{"name": "default", "constraints": [kw]}]}


# (feature a, segments, the key path refused)
REJECTED = [
    ({"name": "a", "strategies": [D]}, None, "features[0].enabled"),
    ({"name": "a", "enabled": None, "strategies": [D]}, None, "features[0].enabled"),
    ({"name": "a", "enabled": True, "strategies": [{}]}, None, "features[0].strategies[0].name"),
    ({"name": "a", "enabled": True, "strategies": [], "variants": [{"name": "x"}]}, None,
     "variants[0].weight"),
    ({"name": "a", "enabled": True, "strategies": [{"name": "default", "variants": [
        {"name": "x", "weight": None}]}]}, None, "strategies[0].variants[0].weight"),
    (_constraint(contextName="userId", values=["1"]), None, "constraints[0].operator"),
    (_constraint(operator="IN", values=["1"]), None, "constraints[0].contextName"),
    ({"name": "a", "enabled": True, "strategies": [{"name": "bogus", "constraints": [
        {"contextName": "userId", "values": ["1"]}]}]}, None, "constraints[0].operator"),
    (_variant(payload={"value": "1"}), None, "variants[0].payload.type"),
    (_variant(payload={"type": "number", "value": 1}), None, "variants[0].payload.value"),
    (_variant(payload="x"), None, "variants[0].payload: expected an object"),
    (_variant(payload=[]), None, "variants[0].payload: expected an object"),
    (_variant(overrides=[{"contextName": "userId"}]), None, "overrides[0].values"),
    (_variant(overrides=[{"values": ["1"]}]), None, "overrides[0].contextName"),
    (dict(GOOD, name="a"), [{"id": 1}], "segments[0].constraints"),
    (dict(GOOD, name="a"), [{"id": 1, "constraints": None}], "segments[0].constraints"),
    (dict(GOOD, name="a"), [{"id": 1, "constraints": [{"contextName": "x", "values": []}]}],
     "segments[0].constraints[0].operator"),
]  # fmt: skip


def _payload(feature, segments):
    doc = {"version": 1, "features": [feature, GOOD]}
    if segments is not None:
        doc["segments"] = segments
    return doc


def _ygg_knows(doc) -> set[str]:
    engine = ygg.UnleashEngine()
    try:
        engine.take_state(json.dumps(doc))
    except Exception:  # (the SDK's custom-strategy reader may raise after the engine)
        pass
    return {n for n in ("a", "b") if engine.is_enabled(n, {"userId": "1"}).is_found}


@pytest.mark.parametrize("feature, segments, path", REJECTED)
def test_what_the_engine_rejects_is_refused_naming_the_field(feature, segments, path):
    doc = _payload(feature, segments)
    assert _ygg_knows(doc) == set()  # the SDK's engine takes none of the payload
    with pytest.raises(InteropError) as info:
        unleash.to_snapshot(doc)
    assert path in str(info.value)
    if segments is None:  # a feature's own field: the others still import when skipping
        snap = unleash.to_snapshot(doc, on_error="skip")
        assert "a" in snap.metadata["refused"] and path in snap.metadata["refused"]["a"]
        assert Engine.from_snapshot(snap).is_enabled("b", unleash.context({"userId": "1"}))


ACCEPTED = [
    {"name": "a", "enabled": False},
    {"name": "a", "enabled": True, "strategies": [], "variants": None},
    {"name": "a", "enabled": True, "strategies": [], "dependencies": [{"feature": "b"}]},
    _variant(payload=None),
    _variant(overrides=None, stickiness=None),
    _constraint(contextName="userId", operator="IN"),
    _constraint(contextName="userId", operator="BOGUS", values=["1"]),
    {"name": "a", "enabled": True, "strategies": [{"name": "default", "constraints": None}]},
]


@pytest.mark.parametrize("feature", ACCEPTED)
def test_what_the_engine_takes_still_imports_and_answers_as_it(feature):
    doc = _payload(feature, [{"id": 1, "constraints": []}])
    assert _ygg_knows(doc) == {"a", "b"}
    engine = ygg.UnleashEngine()
    try:
        engine.take_state(json.dumps(doc))
    except Exception:
        pass
    ours = Engine.from_snapshot(unleash.to_snapshot(doc))
    for user in ("1", "2"):
        want = engine.is_enabled("a", {"userId": user}).is_enabled
        assert ours.is_enabled("a", unleash.context({"userId": user})) == want
