"""Unleash import: a variant's payload is served as Unleash's engine serves it.

yggdrasil (the engine UnleashClient runs) reads a variant payload's ``type`` and
``value`` and serves only those: a payload written with more keys (an export from
another tool, a field of a newer server) comes back without them. cfgcore served the
payload as written, extra keys and all.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from cfgcore.interop import unleash

ygg = pytest.importorskip("yggdrasil_engine.engine")

PAYLOADS: list[dict[str, Any]] = [
    {"type": "string", "value": "s", "extra": 1},
    {"value": "v", "type": "json", "description": "d", "nested": {"a": [1]}},
    {"type": "number", "value": "7", "type2": "x"},
    {"type": "string", "value": "s"},
]


def _peer_payload(payload: dict[str, Any], ctx: dict[str, Any]) -> Any:
    engine = ygg.UnleashEngine()
    engine.take_state(json.dumps(payload))
    p = engine.get_variant("f", ctx).variant.payload
    return p if p is None or isinstance(p, dict) else dict(vars(p))


@pytest.mark.parametrize("where", ["feature", "strategy"])
@pytest.mark.parametrize("given", PAYLOADS, ids=range(len(PAYLOADS)))
def test_a_payload_is_its_type_and_value(make, given, where):
    variant = {"name": "a", "weight": 1000, "stickiness": "default", "payload": given}
    feature: dict[str, Any] = {"name": "f", "enabled": True}
    if where == "feature":
        feature |= {"strategies": [{"name": "default"}], "variants": [variant]}
    else:
        feature["strategies"] = [{"name": "default", "variants": [variant]}]
    payload = {"version": 2, "features": [feature]}
    engine = make(unleash.to_snapshot(copy.deepcopy(payload)))
    ctx = {"userId": "u"}
    got = unleash.get_variant(engine, "f", engine.context(unleash.context(ctx)))
    want = _peer_payload(payload, ctx)
    assert want == {"type": given["type"], "value": given["value"]}
    assert dict(got["payload"]) == want
