"""Unleash import: a variant that is no object, or whose ``stickiness`` is no string,
is refused by its key path.

yggdrasil (the engine UnleashClient runs) rejects a whole payload holding such a
variant (no feature of it is known). cfgcore imported a variant that is no object as
none, and a number as stickiness failed later, in the snapshot it had built, naming a
path of that snapshot (``flags.f.rules[0].hash.by[0]: expected str, got int``) instead
of the payload's. A null stickiness is the default one, there as here.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from cfgcore.interop import InteropError, unleash

ygg = pytest.importorskip("yggdrasil_engine.engine")

G = {"name": "g", "enabled": True, "strategies": []}


def _payload(variants: list[Any], where: str) -> dict[str, Any]:
    feature: dict[str, Any] = {"name": "f", "enabled": True}
    if where == "feature":
        feature |= {"strategies": [{"name": "default"}], "variants": variants}
    else:
        feature["strategies"] = [{"name": "default", "variants": variants}]
    return {"version": 2, "features": [feature, G]}


def _peer(payload: dict[str, Any]) -> Any:
    engine = ygg.UnleashEngine()
    engine.take_state(json.dumps(payload))
    return engine


B = {"name": "b", "weight": 500, "stickiness": "default"}


def _a(stickiness: Any) -> dict[str, Any]:
    return {"name": "a", "weight": 500, "stickiness": stickiness}


REFUSED = [
    ([B, _a(5)], "[1].stickiness: expected a string, got a number"),
    ([_a([]), B], "[0].stickiness: expected a string, got a list"),
    ([_a(True), B], "[0].stickiness: expected a string, got a boolean"),
    ([B, 5], "[1]: expected an object, got a number"),
    (["a", B], "[0]: expected an object, got a string"),
]


@pytest.mark.parametrize("where", ["feature", "strategy"])
@pytest.mark.parametrize("variants, message", REFUSED, ids=range(len(REFUSED)))
def test_what_the_engine_rejects_is_refused_by_key_path(variants, message, where):
    payload = _payload(variants, where)
    assert _peer(payload).is_enabled("g", {}).is_enabled is False  # the whole payload
    path = "variants" if where == "feature" else "strategies[0].variants"
    with pytest.raises(InteropError) as err:
        unleash.to_snapshot(copy.deepcopy(payload))
    assert f"features[0]: malformed: {path}{message}" in str(err.value)
    snap = unleash.to_snapshot(copy.deepcopy(payload), on_error="skip")
    assert set(snap.flags) == {"g"}


@pytest.mark.parametrize("where", ["feature", "strategy"])
def test_a_null_stickiness_is_the_default_one(make, where):
    variants = [{"name": "a", "weight": 500, "stickiness": None}, {**B, "stickiness": None}]
    payload = _payload(variants, where)
    peer = _peer(payload)
    engine = make(unleash.to_snapshot(copy.deepcopy(payload)))
    served = set()
    for i in range(40):
        ctx = {"userId": f"u{i}"}
        want = peer.get_variant("f", ctx).variant.name
        got = unleash.get_variant(engine, "f", engine.context(unleash.context(ctx)))["name"]
        assert got == want
        served.add(want)
    assert served == {"a", "b"}
