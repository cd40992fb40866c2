"""Unleash import, seventh audit: what a payload may lower to is bounded. A feature's
variant overrides become one rule per override for each strategy without variants of
its own, so a 200 KB payload (2,000 strategies, 200 overrides) was 400,000 rules and
half a minute to import and compile, and a large hostile one hours. A feature past
MAX_FEATURE_RULES, or the features past MAX_IMPORT_RULES, are refused naming them.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from cfgcore.interop import InteropError, unleash

engine_mod = pytest.importorskip("yggdrasil_engine.engine")


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("yggdrasil_engine").setLevel(logging.CRITICAL)


def _feature(name: str, strategies: int, overrides: int) -> dict[str, Any]:
    return {
        "name": name,
        "enabled": True,
        "strategies": [
            {"name": "default", "parameters": {},
             "constraints": [{"contextName": "tier", "operator": "IN", "values": [f"t{i}"]}]}
            for i in range(strategies)
        ],
        "variants": [
            {"name": f"v{i}", "weight": 1, "weightType": "variable", "stickiness": "userId",
             "overrides": [{"contextName": "userId", "values": [f"u{i}"]}]}
            for i in range(overrides)
        ],
    }  # fmt: skip


def test_many_strategies_and_overrides_within_the_bound_answer_as_yggdrasil(make):
    payload = {"version": 2, "features": [_feature("f", 40, 60)]}  # 2,440 rules
    ye = engine_mod.UnleashEngine()
    ye.take_state(json.dumps(payload))
    engine = make(unleash.to_snapshot(payload))
    for t in (0, 17, 39, 40):
        for u in (0, 31, 59, 60, 99):
            ctx = {"userId": f"u{u}", "properties": {"tier": f"t{t}"}}
            want = ye.get_variant("f", ctx).variant.name
            c = unleash.context(ctx)
            assert engine.evaluate("f", c).value["name"] == want, ctx
            assert engine.is_enabled("f", c) is ye.is_enabled("f", ctx).is_enabled


def test_a_feature_past_the_rule_bound_is_refused_quickly_naming_it():
    payload = {"version": 2, "features": [
        _feature("huge", 2000, 200), {"name": "ok", "enabled": True, "strategies": []}
    ]}  # fmt: skip
    started = time.process_time()
    with pytest.raises(InteropError) as err:
        unleash.to_snapshot(payload, source="features.json")
    msg = str(err.value)
    assert "features.json" in msg and "features[0]:" in msg and "(feature 'huge')" in msg
    assert f"more than {unleash.MAX_FEATURE_RULES:,} rules" in msg
    snap = unleash.to_snapshot(payload, on_error="skip")
    assert set(snap.flags) == {"ok"} and "rules" in snap.metadata["refused"]["huge"]
    # a bound on the work, not a timing assertion: before, 400,000 rules were built
    assert time.process_time() - started < 60


def test_features_past_the_import_bound_are_refused_naming_them(monkeypatch):
    monkeypatch.setattr(unleash, "MAX_IMPORT_RULES", 1_000)
    payload = {"version": 2, "features": [_feature(f"f{i}", 10, 30) for i in range(6)]}
    snap = unleash.to_snapshot(payload, on_error="skip")  # 310 rules each
    assert sorted(snap.flags) == ["f0", "f1", "f2"]
    refused = snap.metadata["refused"]
    assert sorted(refused) == ["f3", "f4", "f5"]
    assert all("more than 1,000 rules in all" in why for why in refused.values())
