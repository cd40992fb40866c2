"""Unleash variant weights that are negative, or that sum past cfgcore's bucket space.

A negative weight (Unleash writes 0 to 1000) is counted by yggdrasil into the total it
draws its target from; cfgcore skipped it, so ``[1, -1, 5]`` served other variants than
the SDK to most users. Weights summing past 2,147,483,647 were imported into a snapshot
the compiler refused (``flags.f.rules[0].hash.space: must be within 1..2147483647``,
naming no Unleash key). Both are now refused at import, naming the weight or the list.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from cfgcore.interop import InteropError, unleash

engine_mod = pytest.importorskip("yggdrasil_engine.engine")


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("yggdrasil_engine").setLevel(logging.CRITICAL)


def _feature(name: str, weights: list[int], on_strategy: bool) -> dict[str, Any]:
    variants = [{"name": f"v{i}", "weight": w, "stickiness": "default"}
                for i, w in enumerate(weights)]  # fmt: skip
    strategy: dict[str, Any] = {"name": "default"}
    feature: dict[str, Any] = {"name": name, "enabled": True, "strategies": [strategy]}
    if on_strategy:
        strategy["variants"] = variants
    else:
        feature["variants"] = variants
    return feature


@pytest.mark.parametrize("on_strategy", [False, True])
@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([1, -1, 5], "variants[1].weight: -1 is negative"),
        ([-5, 10], "variants[0].weight: -5 is negative"),
        ([2**31 - 1, 1], "the weights sum to 2147483648, past cfgcore's 2,147,483,647"),
        ([2**40, 2**40], "the weights sum to"),
    ],
)
def test_weights_cfgcore_cannot_hold_are_refused_naming_them(weights, message, on_strategy):
    payload = {"version": 2, "features": [_feature("f", weights, on_strategy)]}
    with pytest.raises(InteropError) as exc:
        unleash.to_snapshot(payload)
    assert "features[0]" in str(exc.value) and message in str(exc.value)
    # the other features of the payload still import
    payload["features"].append(_feature("ok", [1, 2], on_strategy))
    snap = unleash.to_snapshot(payload, on_error="skip")
    assert set(snap.flags) == {"ok"} and "f" in snap.metadata["refused"]


@pytest.mark.parametrize("on_strategy", [False, True])
@pytest.mark.parametrize("weights", [[2**31 - 2, 1], [0, 0, 3], [1000, 0], [2**30, 2**30 - 1]])
def test_weights_at_the_limit_answer_as_yggdrasil(make_py_and_c, weights, on_strategy):
    payload = {"version": 2, "features": [_feature("f", weights, on_strategy)]}
    ygg = engine_mod.UnleashEngine()
    ygg.take_state(json.dumps(payload))
    snap = unleash.to_snapshot(payload)
    engines = [make(snap) for make in make_py_and_c]
    for u in range(200):
        ctx = {"userId": f"user-{u}", "sessionId": "s"}
        want = ygg.get_variant("f", ctx).variant.name
        for engine in engines:
            assert unleash.get_variant(engine, "f", unleash.context(ctx))["name"] == want
