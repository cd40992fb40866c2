"""Unleash rollout texts, reviewed (527664c): the rollout of a flexibleRollout (or a
gradual rollout's percentage) read with int() raised ValueError for a text of 4,300
digits and more, so a rollout of many leading zeros that yggdrasil and the Node SDK
both read as 50 % was refused as "a value of the wrong type" without its key path,
and so was a huge number, which is refused now naming ``parameters.rollout``. A whole
number past 2**64 - 1 is 0 % in yggdrasil (it parses a u64), not the whole feature
off as the refusal said. Probed against yggdrasil (UnleashClient 6's engine).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from cfgcore.interop import InteropError, unleash

engine_mod = pytest.importorskip("yggdrasil_engine.engine")

USERS = [{"userId": f"user-{i}"} for i in range(150)]


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("yggdrasil_engine").setLevel(logging.CRITICAL)


def _payload(text: str) -> dict[str, Any]:
    params = {"rollout": text, "groupId": "g", "stickiness": "userId"}
    strategies = [{"name": "flexibleRollout", "parameters": params}, {"name": "default"}]
    strategies[1]["constraints"] = [{"contextName": "appName", "operator": "IN", "values": ["b"]}]
    return {"version": 2, "features": [{"name": "f", "enabled": True, "strategies": strategies}]}


@pytest.mark.parametrize(
    "text",
    [
        "0" * 5000 + "50",
        "0" * 30 + "100",
        "-" + "9" * 5000,
        "-" + "0" * 5000,
        "+" + "0" * 4400 + "7",
    ],
    ids=["zeros-50", "zeros-100", "minus-nines", "minus-zeros", "plus-zeros-7"],
)
def test_a_long_rollout_text_the_sdks_agree_on_answers_as_yggdrasil(make, text):
    payload = _payload(text)
    ye = engine_mod.UnleashEngine()
    ye.take_state(json.dumps(payload))
    engine = make(unleash.to_snapshot(payload))
    for user in USERS:
        for app in ("a", "b"):
            ctx = {**user, "appName": app}
            want = ye.is_enabled("f", ctx).is_enabled
            assert engine.is_enabled("f", unleash.context(ctx)) is want, (text[-8:], ctx)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("9" * 5000, "reads 0 %"),
        ("+" + "9" * 4400, "reads 0 %"),
        ("18446744073709551616", "reads 0 %"),
        ("18446744073709551615", "turns the whole feature off"),
        ("0" * 5000 + "101", "turns the whole feature off"),
    ],
    ids=["nines", "plus-nines", "2**64", "2**64-1", "zeros-101"],
)
def test_a_long_rollout_text_the_sdks_disagree_on_is_refused_naming_it(text, said):
    payload = _payload(text)
    payload["features"].append({"name": "other", "enabled": True, "strategies": []})
    with pytest.raises(InteropError) as err:
        unleash.to_snapshot(payload, source="features.json")
    msg = str(err.value)
    assert "features[0].strategies[0].parameters.rollout" in msg and said in msg, msg
    snap = unleash.to_snapshot(payload, on_error="skip", source="features.json")
    assert set(snap.flags) == {"other"}


@pytest.mark.parametrize("text", ["18446744073709551616", "9" * 30], ids=["2**64", "nines"])
def test_yggdrasil_reads_a_rollout_past_u64_as_0_percent(text):
    # the probe the refusal's words rest on: the other strategy still answers there
    payload = _payload(text)
    ye = engine_mod.UnleashEngine()
    ye.take_state(json.dumps(payload))
    assert ye.is_enabled("f", {"userId": "u", "appName": "b"}).is_enabled is True
    assert not any(ye.is_enabled("f", {**u, "appName": "a"}).is_enabled for u in USERS)
