"""Unleash import: a variant whose name is no string is refused by key path.

yggdrasil (the engine UnleashClient runs) rejects a whole payload holding a variant
whose ``name`` is missing, null or no string (a number, a boolean, a list): no feature
of it is known, every check answers off. cfgcore imported such a variant and served
its name as it was (``5``, ``None``); a missing name was refused as "malformed:
missing key 'name'" without the variant's path.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from cfgcore.interop import InteropError, unleash

ygg = pytest.importorskip("yggdrasil_engine.engine")

_MISSING = object()
NAMES: list[Any] = [5, None, _MISSING, ["a"], True, 1.5, {"n": 1}]


def _payload(name: Any, where: str) -> dict[str, Any]:
    variant: dict[str, Any] = {"weight": 1000, "stickiness": "default"}
    if name is not _MISSING:
        variant["name"] = name
    feature: dict[str, Any] = {"name": "f", "enabled": True}
    if where == "feature":
        feature |= {"strategies": [{"name": "default"}], "variants": [variant]}
    else:
        feature["strategies"] = [{"name": "default", "variants": [variant]}]
    g = {"name": "g", "enabled": True, "strategies": []}
    return {"version": 2, "features": [feature, g]}


@pytest.mark.parametrize("where", ["feature", "strategy"])
@pytest.mark.parametrize(
    "name", NAMES, ids=["int", "null", "missing", "list", "bool", "float", "obj"]
)
def test_a_variant_name_that_is_no_string_is_refused(name, where):
    payload = _payload(name, where)
    peer = ygg.UnleashEngine()
    peer.take_state(json.dumps(payload))
    # the engine rejected the whole payload: even the untouched feature is unknown
    assert peer.is_enabled("g", {}).is_enabled is False
    path = "variants[0].name" if where == "feature" else "strategies[0].variants[0].name"
    with pytest.raises(InteropError) as err:
        unleash.to_snapshot(copy.deepcopy(payload))
    assert f"features[0]: malformed: {path}: " in str(err.value)
    # as for the other values the engine rejects: on_error="skip" leaves the feature out
    snap = unleash.to_snapshot(copy.deepcopy(payload), on_error="skip")
    assert set(snap.flags) == {"g"}
    assert f"features[0]: malformed: {path}: " in snap.metadata["refused"]["f"]


def test_a_string_name_still_imports(make):
    payload = _payload("", "feature")
    peer = ygg.UnleashEngine()
    peer.take_state(json.dumps(payload))
    engine = make(unleash.to_snapshot(copy.deepcopy(payload)))
    ctx = engine.context(unleash.context({"userId": "u"}))
    assert unleash.get_variant(engine, "f", ctx)["name"] == ""
    assert peer.get_variant("f", {"userId": "u"}).variant.name == ""
