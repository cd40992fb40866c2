"""Unleash import: a feature without a ``strategies`` key, and feature variant
``overrides`` and ``dependencies`` of types Unleash's engine rejects.

The client specification (01-simple-examples.json, "Feature.C should be enabled when
strategy missing") has an enabled feature with ``"strategies": []`` on for everyone; no
file of it omits the key. yggdrasil (the engine of the Unleash Python SDK) takes a
feature without the key as one with an empty list: on when ``enabled`` (the SDK's
Python wrapper then raises KeyError reading the payload for custom strategies, after
the engine took it). cfgcore reads a missing key, and null, as an empty list too;
these tests hold it to the specification and to the engine.

The engine rejects a whole payload whose feature variant ``overrides`` or
``dependencies`` have the wrong type (no feature of it known). cfgcore raised inside
the importer for most of them (``malformed: a value of the wrong type (TypeError:
'int' object is not iterable)``) and imported some (``overrides: {}``, ``values:
[1]``, ``dependencies: {}``, ``enabled: "x"``); each is now refused by key path.
"""

from __future__ import annotations

import copy
import json
import os

import pytest

from cfgcore.interop import InteropError, unleash
from tests.conftest import SHARED

ygg = pytest.importorskip("yggdrasil_engine.engine")

SPEC_DIR = os.path.join(SHARED, "conformance", "unleash-client-specification", "specifications")
needs_spec = pytest.mark.skipif(not os.path.isdir(SPEC_DIR), reason="the specification is absent")
B = {"name": "b", "enabled": True, "strategies": [{"name": "default"}]}
USERS = [{"userId": str(i)} for i in range(40)] + [{"userId": "1", "sessionId": "s"}]


def _engine(doc: dict) -> object:
    engine = ygg.UnleashEngine()
    try:
        engine.take_state(json.dumps(doc))
    except Exception:  # the wrapper's custom-strategy reader, after the engine took it
        pass
    return engine


def _ygg_answers(engine: object, name: str, ctx: dict) -> tuple:
    v = engine.get_variant(name, ctx).variant
    variant = {"name": v.name, "enabled": v.enabled, "feature_enabled": v.feature_enabled}
    if v.payload:
        variant["payload"] = dict(v.payload)
    return engine.is_enabled(name, ctx).is_enabled, variant


def _ours(engine: object, name: str, ctx: dict) -> tuple:
    c = unleash.context(ctx)
    return engine.is_enabled(name, c), unleash.get_variant(engine, name, c)


def _without_strategies(state: dict) -> dict:
    state = copy.deepcopy(state)
    for f in state["features"]:
        if f.get("strategies") == []:
            del f["strategies"]
    return state


@needs_spec
@pytest.mark.parametrize("name", ["01-simple-examples.json", "08-variants.json"])
def test_the_specification_holds_with_the_empty_strategies_left_out(make_py_and_c, name):
    with open(os.path.join(SPEC_DIR, name), encoding="utf-8") as fh:
        spec = json.load(fh)
    state = _without_strategies(spec["state"])
    assert any("strategies" not in f for f in state["features"])
    for make in make_py_and_c:
        engine = make(unleash.to_snapshot(state))
        for case in spec.get("tests", []):
            ctx = engine.context(unleash.context(case["context"]))
            assert engine.is_enabled(case["toggleName"], ctx) is case["expectedResult"], case
        for case in spec.get("variantTests", []):
            ctx = engine.context(unleash.context(case["context"]))
            assert unleash.get_variant(engine, case["toggleName"], ctx) == case["expectedResult"]


WITHOUT_STRATEGIES = [
    {"name": "a", "enabled": True},
    {"name": "a", "enabled": False},
    {"name": "a", "enabled": True, "strategies": None},
    {"name": "a", "enabled": True, "variants": [
        {"name": "x", "weight": 500, "payload": {"type": "string", "value": "p"}},
        {"name": "y", "weight": 500, "stickiness": "userId"}]},
    {"name": "a", "enabled": True, "variants": [
        {"name": "x", "weight": 1000, "overrides": [{"contextName": "userId", "values": ["3"]}]},
        {"name": "y", "weight": 0}]},
    {"name": "a", "enabled": True, "dependencies": [{"feature": "b", "enabled": False}]},
    {"name": "a", "enabled": True, "dependencies": [{"feature": "b"}]},
]  # fmt: skip


@pytest.mark.parametrize("feature", WITHOUT_STRATEGIES)
def test_a_feature_without_strategies_answers_as_the_engine(make_py_and_c, feature):
    doc = {"version": 1, "features": [feature, B]}
    peer = _engine(doc)
    for make in make_py_and_c:
        engine = make(unleash.to_snapshot(copy.deepcopy(doc)))
        for ctx in USERS:
            assert _ours(engine, "a", ctx) == _ygg_answers(peer, "a", ctx), (feature, ctx)
    # ... and as the same feature with an empty list
    listed = {"strategies": [], **feature} if "strategies" not in feature else feature
    for make in make_py_and_c:
        with_list = make(unleash.to_snapshot({"version": 1, "features": [listed, B]}))
        engine = make(unleash.to_snapshot(copy.deepcopy(doc)))
        for ctx in USERS:
            assert _ours(engine, "a", ctx) == _ours(with_list, "a", ctx)


def _variant(**kw: object) -> dict:
    return {"name": "a", "enabled": True, "strategies": [],
            "variants": [{"name": "x", "weight": 1000, **kw}]}  # fmt: skip


def _dep(**kw: object) -> dict:
    return {"name": "a", "enabled": True, "strategies": [], "dependencies": [kw]}


REJECTED = [
    (_variant(overrides=5), "variants[0].overrides: expected a list, got a number"),
    (_variant(overrides={}), "variants[0].overrides: expected a list, got an object"),
    (_variant(overrides=""), "variants[0].overrides: expected a list, got a string"),
    (_variant(overrides=[1]), "variants[0].overrides[0]: expected an object, got a number"),
    (_variant(overrides=[None]), "variants[0].overrides[0]: expected an object, got null"),
    (_variant(overrides=[{"contextName": 1, "values": ["1"]}]),
     "variants[0].overrides[0].contextName: expected a string, got a number"),
    (_variant(overrides=[{"contextName": "userId", "values": "1"}]),
     "variants[0].overrides[0].values: expected a list of strings, got a string"),
    (_variant(overrides=[{"contextName": "userId", "values": [1]}]),
     "variants[0].overrides[0].values[0]: expected a string, got a number"),
    (_variant(overrides=[{"contextName": "userId", "values": [None]}]),
     "variants[0].overrides[0].values[0]: expected a string, got null"),
    ({**_dep(feature="b"), "dependencies": True}, "dependencies: expected a list, got a boolean"),
    ({**_dep(feature="b"), "dependencies": {}}, "dependencies: expected a list, got an object"),
    ({**_dep(feature="b"), "dependencies": ["b"]},
     "dependencies[0]: expected an object, got a string"),
    (_dep(enabled=True), "dependencies[0].feature: expected a string, got nothing"),
    (_dep(feature=None), "dependencies[0].feature: expected a string, got null"),
    (_dep(feature="b", enabled="x"), "dependencies[0].enabled: expected a boolean, got a string"),
    (_dep(feature="b", variants=1), "dependencies[0].variants: expected a list of strings"),
    (_dep(feature="b", variants={}), "dependencies[0].variants: expected a list of strings"),
    (_dep(feature="b", variants=[1]), "dependencies[0].variants[0]: expected a string"),
]  # fmt: skip


@pytest.mark.parametrize("feature, message", REJECTED)
def test_what_the_engine_rejects_is_refused_by_key_path(feature, message):
    doc = {"version": 1, "features": [feature, B]}
    peer = _engine(doc)
    assert not peer.is_enabled("b", {"userId": "1"}).is_found  # the whole payload refused
    with pytest.raises(InteropError) as info:
        unleash.to_snapshot(copy.deepcopy(doc))
    text = str(info.value)
    assert f"features[0].{message}" in text and "wrong type" not in text, text
    snap = unleash.to_snapshot(copy.deepcopy(doc), on_error="skip")
    assert set(snap.flags) == {"b"}


ACCEPTED = [
    _variant(overrides=None),
    _variant(overrides=[{"contextName": "userId", "values": ["1"], "extra": 1}]),
    {"name": "a", "enabled": True, "strategies": [{"name": "default", "variants": [
        {"name": "x", "weight": 1000, "overrides": 5}]}]},  # not read on strategy variants
    {**_dep(feature="b"), "dependencies": None},
    _dep(feature="b", enabled=None),
    _dep(feature="b", variants=None),
    _dep(feature="b", variants=[]),
]  # fmt: skip


@pytest.mark.parametrize("feature", ACCEPTED)
def test_what_the_engine_takes_answers_as_it(make_py_and_c, feature):
    doc = {"version": 1, "features": [feature, B]}
    peer = _engine(doc)
    assert peer.is_enabled("a", {"userId": "1"}).is_found
    for make in make_py_and_c:
        engine = make(unleash.to_snapshot(copy.deepcopy(doc)))
        for ctx in USERS:
            assert _ours(engine, "a", ctx) == _ygg_answers(peer, "a", ctx), (feature, ctx)
