"""Unleash import, seventh audit: a strategy referring to a segment the payload does
not hold. yggdrasil (UnleashClient 6's engine) turns the whole feature off for it, the
Node SDK only that strategy; cfgcore answered as the Node SDK. Where the two agree
(every strategy refers to a missing segment, or the feature is disabled) the feature
is imported, off; elsewhere it is refused naming the reference.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from cfgcore.interop import InteropError, unleash

engine_mod = pytest.importorskip("yggdrasil_engine.engine")

SEGMENTS = [{"id": 1, "constraints": []}]


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("yggdrasil_engine").setLevel(logging.CRITICAL)


def _payload(strategies: list[dict[str, Any]], enabled: bool = True) -> dict[str, Any]:
    feature = {"name": "f", "enabled": enabled, "strategies": strategies}
    other = {"name": "ok", "enabled": True, "strategies": []}
    return {"version": 2, "features": [feature, other], "segments": SEGMENTS}


def _ygg(payload: dict[str, Any], ctx: dict[str, Any]) -> bool:
    ye = engine_mod.UnleashEngine()
    ye.take_state(json.dumps(payload))
    return bool(ye.is_enabled("f", ctx).is_enabled)


@pytest.mark.parametrize(
    ("strategies", "where"),
    [
        ([{"name": "default", "segments": [99]}, {"name": "default"}], "strategies[0].segments[0]"),
        ([{"name": "default"}, {"name": "default", "segments": [1, 99]}],
         "strategies[1].segments[1]"),
        ([{"name": "userWithId", "parameters": {"userIds": "u"}, "segments": [7]},
          {"name": "flexibleRollout", "parameters": {"rollout": "100", "groupId": "f"}}],
         "strategies[0].segments[0]"),
    ],
)  # fmt: skip
def test_a_missing_segment_beside_another_strategy_is_refused(strategies, where):
    payload = _payload(strategies)
    assert _ygg(payload, {"userId": "u"}) is False  # the other strategy would hold
    with pytest.raises(InteropError) as err:
        unleash.to_snapshot(payload, source="features.json")
    msg = str(err.value)
    assert "features.json" in msg and f"features[0].{where}" in msg
    assert "a segment the payload does not hold" in msg
    snap = unleash.to_snapshot(payload, on_error="skip")
    assert set(snap.flags) == {"ok"}


@pytest.mark.parametrize(
    ("strategies", "enabled"),
    [
        ([{"name": "default", "segments": [99]}], True),  # the specification's F9 case
        ([{"name": "default", "segments": [98]}, {"name": "default", "segments": [1, 99]}], True),
        ([{"name": "default", "segments": [99]}, {"name": "default"}], False),
        ([{"name": "default", "segments": [1]}, {"name": "default"}], True),
    ],
)
def test_where_the_sdks_agree_the_feature_answers_as_yggdrasil(make, strategies, enabled):
    payload = _payload(strategies, enabled)
    engine = make(unleash.to_snapshot(payload))
    for ctx in ({"userId": "u"}, {}, {"userId": "v", "properties": {"x": "1"}}):
        assert engine.is_enabled("f", unleash.context(ctx)) is _ygg(payload, ctx)
