"""Unleash import, seventh audit, against yggdrasil (the engine UnleashClient 6 evaluates
with): rollout and percentage texts, userWithId lists with empty entries, dependencies
on a parent enabled without a variant, dependencies on a parent whose rollout has no
groupId, and random features with odd variant weights, stickiness, overrides and
dependencies. Where yggdrasil and the Node SDK answer differently, the import is refused
naming the feature and the key path.
"""

from __future__ import annotations

import functools
import json
import logging
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.interop import InteropError, unleash
from tests.fuzz import examples

engine_mod = pytest.importorskip("yggdrasil_engine.engine")

USERS = [{"userId": f"user-{i}", "sessionId": f"s-{i}"} for i in range(120)]


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("yggdrasil_engine").setLevel(logging.CRITICAL)


def _ygg(payload: dict[str, Any]) -> Any:
    ye = engine_mod.UnleashEngine()
    ye.take_state(json.dumps(payload))
    return ye


def _rollout_payload(strategy: str, text: str, second_default: bool) -> dict[str, Any]:
    key = "rollout" if strategy == "flexibleRollout" else "percentage"
    strategies = [
        {"name": strategy, "parameters": {key: text, "groupId": "g", "stickiness": "userId"}}
    ]
    if second_default:
        strategies.append({"name": "default", "parameters": {}})
    return {"version": 2, "features": [{"name": "f", "enabled": True, "strategies": strategies}]}


# yggdrasil: whole numbers only (any other text is 0 %, past 100 the feature is off);
# the Node SDK: Number() (trimmed, decimals, exponents, hex; NaN is 0 %)
_ROLLOUTS_AGREED = ["0", "1", "50", "+50", "050", "100", "+100", "-5", "-0", "0.5", "-7.5",
                    "", "abc", "50%", "\u0665\u0660", "NaN", "-Infinity"]  # fmt: skip
_ROLLOUTS_DISAGREED = ["33.7", "99.9", "100.0", "50.", " 50", "50 ", "\t50", "50\n", "1e1",
                       "5e1", "0x10", "0b11", "101", "255", "4294967296", "Infinity",
                       "99999999999999999999"]  # fmt: skip


@pytest.mark.parametrize("strategy", ["flexibleRollout", "gradualRolloutUserId"])
@pytest.mark.parametrize("text", _ROLLOUTS_AGREED)
@pytest.mark.parametrize("second_default", [False, True])
def test_a_rollout_text_the_sdks_agree_on_answers_as_yggdrasil(
    make, strategy, text, second_default
):
    snap, wants = _rollout_case(strategy, text, second_default)
    engine = make(snap)
    for ctx, want in zip(USERS, wants, strict=True):
        assert engine.is_enabled("f", unleash.context(ctx)) is want, ctx


@functools.cache
def _rollout_case(strategy: str, text: str, second_default: bool) -> tuple[Any, tuple[bool, ...]]:
    """A rollout payload imported, and yggdrasil's answer for each of USERS: asked once
    for both evaluators (a Snapshot is frozen; the engine's answers depend on its state)."""
    payload = _rollout_payload(strategy, text, second_default)
    ye = _ygg(payload)
    wants = tuple(ye.is_enabled("f", ctx).is_enabled for ctx in USERS)
    return unleash.to_snapshot(payload), wants


@pytest.mark.parametrize("strategy", ["flexibleRollout", "gradualRolloutSessionId"])
@pytest.mark.parametrize("text", _ROLLOUTS_DISAGREED)
def test_a_rollout_text_the_sdks_disagree_on_is_refused_naming_it(strategy, text):
    # before: int(float(text)) imported " 50" and "33.7" as 50 % and 33 % (yggdrasil: 0 %)
    # and "101" as everyone (yggdrasil: the whole feature off)
    payload = _rollout_payload(strategy, text, second_default=True)
    key = "rollout" if strategy == "flexibleRollout" else "percentage"
    with pytest.raises(InteropError) as err:
        unleash.to_snapshot(payload, source="features.json")
    msg = str(err.value)
    assert "features.json" in msg and f"features[0].strategies[0].parameters.{key}" in msg
    assert "not a whole number of percent" in msg


@settings(max_examples=examples(150), deadline=None)
@given(st.text(alphabet=" +-.0123456789eExabInfity\t%\u0665", max_size=6))
def test_any_rollout_text_is_refused_or_answers_as_yggdrasil(make_py_and_c, text):
    payload = _rollout_payload("flexibleRollout", text, second_default=False)
    try:
        snap = unleash.to_snapshot(payload)
    except InteropError:
        return
    ye = _ygg(payload)
    engines = [make(snap) for make in make_py_and_c]
    for ctx in USERS[:40]:
        want = ye.is_enabled("f", ctx).is_enabled
        mapped = unleash.context(ctx)  # one for both evaluators: they only read it
        for engine in engines:
            assert engine.is_enabled("f", mapped) is want, (text, ctx)


@pytest.mark.parametrize("ids", ["", " ", ",", "a,,b", "a, ,b", "a,", "a", "a , b", None])
def test_user_ids_with_empty_entries_list_the_empty_user_id(make, ids):
    # before: empty entries were dropped, so an empty userId never matched (yggdrasil:
    # each id trimmed, the empty ones kept)
    params = {} if ids is None else {"userIds": ids}
    payload = {"version": 2, "features": [
        {"name": "f", "enabled": True, "strategies": [{"name": "userWithId", "parameters": params}]}
    ]}  # fmt: skip
    ye = _ygg(payload)
    engine = make(unleash.to_snapshot(payload))
    contexts = [{"userId": ""}, {}, {"userId": " "}, {"userId": "a"}, {"userId": "b"},
                {"userId": "None"}]  # fmt: skip
    for ctx in contexts:
        want = ye.is_enabled("f", ctx).is_enabled
        assert engine.is_enabled("f", unleash.context(ctx)) is want, ctx


def _dependent(parent: dict[str, Any], dep: dict[str, Any]) -> dict[str, Any]:
    return {"version": 2, "features": [
        {"name": "parent", "enabled": True, **parent},
        {"name": "child", "enabled": True, "strategies": [], "dependencies": [dep]},
    ]}  # fmt: skip


_CONSTRAINED_VARIANTS = {
    "strategies": [
        {"name": "default", "parameters": {},
         "constraints": [{"contextName": "tier", "operator": "IN", "values": ["gold"]}],
         "variants": [{"name": "s", "weight": 1000, "weightType": "variable"}]},
        {"name": "default", "parameters": {}},
    ]
}  # fmt: skip


@pytest.mark.parametrize(
    "parent", [{"strategies": []}, _CONSTRAINED_VARIANTS], ids=["no-variants", "some-users"]
)
def test_a_variant_dependency_on_a_parent_enabled_without_a_variant_is_refused(parent):
    # yggdrasil: satisfied for the users the parent serves no variant (whatever the list);
    # the Node SDK: only if the list names "disabled". Before: imported as never satisfied.
    payload = _dependent(parent, {"feature": "parent", "variants": ["b"]})
    ye = _ygg(payload)
    assert ye.is_enabled("child", {"userId": "u", "properties": {"tier": "x"}}).is_enabled
    with pytest.raises(InteropError) as err:
        unleash.to_snapshot(payload, source="features.json")
    msg = str(err.value)
    assert "features.json" in msg and "features[1].dependencies[0].variants" in msg
    assert "'parent'" in msg and "'disabled'" in msg
    # on_error="skip": the child is left out and listed, the parent imported
    snap = unleash.to_snapshot(payload, on_error="skip")
    assert set(snap.flags) == {"parent"} and "child" in snap.metadata["refused"]


@pytest.mark.parametrize(
    "parent", [{"strategies": []}, _CONSTRAINED_VARIANTS], ids=["no-variants", "some-users"]
)
@pytest.mark.parametrize("names", [["disabled"], ["s", "disabled"], ["s"]])
def test_variant_dependencies_that_all_sdks_read_alike_answer_as_yggdrasil(make, parent, names):
    if names == ["s"] and not parent["strategies"]:
        names = ["disabled", "s"]
    if names == ["s"]:
        parent = {**parent, "strategies": parent["strategies"][:1]}  # no variant-less users
    payload = _dependent(parent, {"feature": "parent", "variants": names})
    ye = _ygg(payload)
    engine = make(unleash.to_snapshot(payload))
    for tier in ("gold", "x"):
        ctx = {"userId": "u", "properties": {"tier": tier}}
        want = ye.is_enabled("child", ctx).is_enabled
        assert engine.is_enabled("child", unleash.context(ctx)) is want, (names, tier)


@pytest.mark.parametrize("rollout", ["33", "50", "99"])
def test_a_dependency_on_a_rollout_without_group_id_is_refused(rollout):
    # yggdrasil buckets the parent's rollout by the child's name when it checks the
    # dependency (the parent answers differently there than on its own); before, cfgcore
    # imported the parent's own answer
    parent = {"strategies": [{"name": "flexibleRollout", "parameters": {"rollout": rollout}}]}
    payload = _dependent(parent, {"feature": "parent"})
    ye = _ygg(payload)
    assert any(
        ye.is_enabled("parent", c).is_enabled != ye.is_enabled("child", c).is_enabled for c in USERS
    )
    with pytest.raises(InteropError) as err:
        unleash.to_snapshot(payload, source="features.json")
    msg = str(err.value)
    assert "features[1].dependencies[0]" in msg
    assert "features[0].strategies[0].parameters.groupId" in msg


@pytest.mark.parametrize(
    "params",
    [{"rollout": "33", "groupId": "parent"}, {"rollout": "33", "groupId": ""},
     {"rollout": "100"}, {"rollout": "0"}],
)  # fmt: skip
def test_a_dependency_on_a_rollout_with_a_group_id_answers_as_yggdrasil(make, params):
    parent = {"strategies": [{"name": "flexibleRollout", "parameters": params}]}
    for dep in ({"feature": "parent"}, {"feature": "parent", "enabled": False}):
        payload = _dependent(parent, dep)
        ye = _ygg(payload)
        engine = make(unleash.to_snapshot(payload))
        for ctx in USERS:
            want = ye.is_enabled("child", ctx).is_enabled
            assert engine.is_enabled("child", unleash.context(ctx)) is want, (dep, ctx)


# -- random features: odd weights, stickiness, overrides, dependencies ------------------------
VALS = ["", "a", "b", "u1", "u2", "7", "3.5", "10.0.0.1", "NL", "x y", "1.2.3"]


def _variants(rng: random.Random, strategy: bool) -> list[dict[str, Any]]:
    out = []
    for n in rng.sample(["a", "b", "c", "a"], rng.randint(1, 3)):
        v: dict[str, Any] = {
            "name": n,
            "weight": rng.choice([0, 1, 3, 7, 33, 100, 333, 500, 999, 1000]),
            "weightType": rng.choice(["variable", "fix"]),
        }
        if rng.random() < 0.8:
            v["stickiness"] = rng.choice(["default", "userId", "sessionId", "tier"])
        if rng.random() < 0.5:
            v["payload"] = rng.choice([{"type": "string", "value": n},
                                       {"type": "json", "value": '{"k":1}'},
                                       {"type": "number", "value": "5"}])  # fmt: skip
        if not strategy and rng.random() < 0.4:
            field = rng.choice(["userId", "tier", "sessionId", "remoteAddress"])
            v["overrides"] = [{"contextName": field, "values": rng.sample(VALS, 2)}]
        out.append(v)
    if not sum(v["weight"] for v in out):
        out[0]["weight"] = 1  # all-zero weights: yggdrasil panics
    return out


def _strategy(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(["default", "flexibleRollout", "flexibleRollout", "userWithId",
                       "gradualRolloutUserId", "gradualRolloutSessionId"])  # fmt: skip
    p: dict[str, Any] = {}
    if rng.random() < 0.8:
        p["groupId"] = rng.choice(["g", "f", "", "G:1"])
    if kind == "flexibleRollout":
        p["rollout"] = rng.choice(["0", "1", "50", "100", "33", "7", "+50", "abc", ""])
        if rng.random() < 0.9:
            p["stickiness"] = rng.choice(["default", "userId", "sessionId", "tier",
                                          "remoteAddress"])  # fmt: skip
    if kind.startswith("gradual"):
        p["percentage"] = rng.choice(["0", "50", "100", "33", "abc", ""])
    if kind == "userWithId":
        p["userIds"] = rng.choice(["u1,u2", "u1, u2", " u1 ", "", "7", "a,,b"])
    s: dict[str, Any] = {"name": kind, "parameters": p, "constraints": []}
    if rng.random() < 0.4:
        s["variants"] = _variants(rng, True)
    return s


def _payload(rng: random.Random) -> dict[str, Any]:
    feats = []
    for i in range(3):
        strategies = [_strategy(rng) for _ in range(rng.randint(0, 2))]
        on = rng.random() < 0.9
        f: dict[str, Any] = {"name": f"f{i}", "enabled": on, "strategies": strategies}
        if rng.random() < 0.6:
            f["variants"] = _variants(rng, False)
        if i and rng.random() < 0.4:
            d: dict[str, Any] = {"feature": "f0"}
            r = rng.random()
            if r < 0.3:
                d["enabled"] = False
            elif r < 0.6:
                d["variants"] = rng.sample(["a", "b", "c", "disabled"], rng.randint(1, 2))
            f["dependencies"] = [d]
        feats.append(f)
    return {"version": 2, "features": feats}


def _context(rng: random.Random) -> dict[str, Any]:
    # every stickiness field set: a missing one falls back to a random value (random by
    # design, nothing to compare)
    ctx: dict[str, Any] = {"userId": rng.choice(VALS), "sessionId": rng.choice(VALS),
                           "properties": {"tier": rng.choice(VALS)}}  # fmt: skip
    if rng.random() < 0.5:
        ctx["remoteAddress"] = rng.choice(VALS)
    return ctx


def _peer(ye: Any, name: str, ctx: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    v = ye.get_variant(name, ctx).variant
    out: dict[str, Any] = {"name": v.name, "enabled": v.enabled}
    out["feature_enabled"] = v.feature_enabled
    if v.payload is not None:
        out["payload"] = v.payload if isinstance(v.payload, dict) else dict(vars(v.payload))
    return ye.is_enabled(name, ctx).is_enabled, out


def _thaw(v: Any) -> Any:
    return {k: _thaw(x) for k, x in v.items()} if hasattr(v, "items") else v


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False))
def test_random_features_are_refused_or_agree_with_yggdrasil(make_py_and_c, rng):
    payload = _payload(rng)
    try:
        snap = unleash.to_snapshot(payload)
    except InteropError:
        return
    ye = _ygg(payload)
    engines = [make(snap) for make in make_py_and_c]
    for _ in range(10):
        ctx = _context(rng)
        c = unleash.context(ctx)  # one for every feature and evaluator: they only read it
        for f in payload["features"]:
            want = _peer(ye, f["name"], ctx)
            for engine in engines:
                variant = _thaw(unleash.get_variant(engine, f["name"], c))
                got = (engine.is_enabled(f["name"], c), variant)
                assert got == want, (json.dumps(payload), ctx)


# Context values that are no text (booleans): tests/test_review7_interop_unleash_context.py,
# against UnleashClient itself, which gives its engine str(True) == "True".
