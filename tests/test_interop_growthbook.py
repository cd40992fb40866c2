"""GrowthBook import, checked differentially against the real ``growthbook`` Python
package: the same features, saved groups and forced variations, thousands of
generated users, both cfgcore evaluators; value and ``on`` must agree for every one.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import growthbook as gb_sdk  # the real SDK (test extra): the reference for every answer
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.interop import InteropError, growthbook
from cfgcore.interop._hashing import fnv1a32, growthbook_hash
from tests.fuzz import examples

SAVED_GROUPS = {"vips": ["u1", "u7", "u42", 13], "testers": ["u3", "u9"]}
COUNTRIES = ["US", "NL", "DE", "FR", "JP"]


@pytest.fixture(autouse=True)
def _quiet_sdk():
    # the SDK logs a warning for each experiment skipped for a missing hash attribute
    logging.getLogger("growthbook").setLevel(logging.ERROR)


def _features(rng: random.Random) -> dict[str, Any]:
    conditions = [
        {"country": "US"},
        {"country": {"$in": ["NL", "DE"]}},
        {"country": {"$nin": ["JP"]}},
        {"age": {"$gt": 30}},
        {"age": {"$gte": 18, "$lt": 65}},
        {"$or": [{"beta": True}, {"country": "FR"}]},
        {"$nor": [{"beta": True}]},
        {"$and": [{"age": {"$lte": 40}}, {"country": {"$ne": "US"}}]},
        {"email": {"$regex": "@example\\.com$"}},
        {"email": {"$exists": False}},
        {"id": {"$inGroup": "vips"}},
        {"id": {"$notInGroup": "testers"}},
        {"$not": {"country": "DE"}},
        {"tags": {"$size": 2}},
        {"country": {"$ini": ["us", "nl"]}},
        {"company.size": {"$gt": 100}},
        {"version": {"$vgt": "1.2.0"}},
        {"version": {"$vlte": "2.0.0-rc.1"}},
        {"version": {"$veq": "1.10.0"}},
        {"version": {"$vne": "1.2.0"}},
        {"build": {"$vgte": 3}},
        {"country": {"$gt": "FR"}},
        {"country": {"$lte": "NL"}},
        {"email": {"$lt": "b"}},
    ]
    features: dict[str, Any] = {}
    for i in range(14):
        rules: list[dict[str, Any]] = []
        for r in range(rng.randint(1, 4)):
            kind = rng.choice(["force", "rollout", "experiment", "experiment"])
            rule: dict[str, Any] = {}
            if rng.random() < 0.6:
                rule["condition"] = rng.choice(conditions)
            version = rng.choice([1, 2])
            if kind == "force":
                rule["force"] = rng.choice([True, False, "blue", 0, 7, {"a": 1}])
            elif kind == "rollout":
                rule["force"] = rng.choice([True, "green", 3])
                if rng.random() < 0.5:
                    rule["coverage"] = rng.choice([0, 0.1, 0.25, 0.5, 0.333, 1])
                else:
                    lo = rng.choice([0, 0.2, 0.5])
                    rule["range"] = [lo, lo + rng.choice([0.1, 0.3, 0.5])]
                rule["hashVersion"] = version
                rule["hashAttribute"] = rng.choice(["id", "deviceId"])
                if rng.random() < 0.5:
                    rule["fallbackAttribute"] = "deviceId"
                if rng.random() < 0.5:
                    rule["seed"] = f"seed-{i}-{r}"
            else:
                n = rng.randint(2, 4)
                rule["key"] = f"exp-{i}-{r}"
                rule["variations"] = [rng.choice(["a", "b", 1, 2, True, False]) for _ in range(n)]
                if rng.random() < 0.5:
                    raw = [rng.random() + 0.05 for _ in range(n)]
                    rule["weights"] = [w / sum(raw) for w in raw]
                if rng.random() < 0.5:
                    rule["coverage"] = rng.choice([0.2, 0.5, 0.8, 1])
                if rng.random() < 0.3:
                    lo = rng.choice([0, 0.3])
                    rule["namespace"] = [f"ns{i % 3}", lo, lo + 0.5]
                if rng.random() < 0.2:
                    rule["meta"] = [{"key": f"v{j}", "passthrough": j == 1} for j in range(n)]
                if rng.random() < 0.2:
                    rule["filters"] = [
                        {"seed": f"f{i}", "ranges": [[0, 0.6]], "hashVersion": version}
                    ]
                rule["hashVersion"] = version
                if rng.random() < 0.5:
                    rule["seed"] = f"s{i}{r}"
            rules.append(rule)
        features[f"feature-{i}"] = {
            "defaultValue": rng.choice([False, "", "red", 0, 5]),
            "rules": rules,
        }
    return features


def _user(rng: random.Random) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    roll = rng.random()
    if roll < 0.7:
        attrs["id"] = f"u{rng.randint(0, 5000)}"
    elif roll < 0.85:
        attrs["id"] = rng.randint(1, 5000)
    elif roll < 0.9:
        attrs["id"] = ""
    if rng.random() < 0.5:
        attrs["deviceId"] = f"d-{rng.randint(0, 10**6)}"
    if rng.random() < 0.8:
        attrs["country"] = rng.choice(COUNTRIES + ["us"])
    if rng.random() < 0.8:
        attrs["age"] = rng.choice([rng.randint(10, 80), 30.5])
    if rng.random() < 0.5:
        attrs["beta"] = rng.random() < 0.5
    if rng.random() < 0.6:
        attrs["email"] = rng.choice(["a@example.com", "b@other.org", "c@example.com.evil"])
    if rng.random() < 0.3:
        attrs["tags"] = ["x"] * rng.randint(0, 3)
    if rng.random() < 0.3:
        attrs["company"] = {"size": rng.choice([10, 150, 1000])}
    if rng.random() < 0.7:
        attrs["version"] = rng.choice(
            ["1.2.0", "1.2.1", "v1.10.0", "1.10.0", "2.0.0-rc.1", "2.0.0-beta", "2.0.0", "1.2",
             "1.2.0+build", 3, ""]
        )  # fmt: skip
    if rng.random() < 0.5:
        attrs["build"] = rng.choice([1, 3, 4.5, "3", "10"])
    return attrs


def _forced(rng: random.Random, features: dict[str, Any]) -> dict[str, int]:
    keys = [r["key"] for f in features.values() for r in f["rules"] if "variations" in r]
    if not keys or rng.random() < 0.7:
        return {}
    return {rng.choice(keys): rng.randint(0, 3)}  # may be out of range: not in experiment


def _check(makes, features: dict[str, Any], users: int, seed: int) -> int:
    """Each engine ``makes`` builds from the import of ``features`` answers as the SDK
    for ``users`` generated users: one SDK instance per user, its answer for each
    feature compared with every engine's (the SDK evaluated once, not once per engine).
    Returns the comparisons made per engine."""
    rng = random.Random(seed)
    snap = growthbook.to_snapshot(features, saved_groups=SAVED_GROUPS)
    engines = [make(snap) for make in makes]
    compared = 0
    for _ in range(users):
        attrs = _user(rng)
        forced = _forced(rng, features)
        sdk = gb_sdk.GrowthBook(
            attributes=attrs, features=features, saved_groups=SAVED_GROUPS,
            forced_variations=forced,
        )  # fmt: skip
        ctxs = [e.context(growthbook.context(attrs, forced_variations=forced)) for e in engines]
        for key in features:
            want = sdk.eval_feature(key)
            for engine, ctx in zip(engines, ctxs, strict=True):
                got = engine.evaluate(key, ctx)
                value = growthbook.thaw(got.value)
                assert value == want.value and type(value) is type(want.value), (
                    key,
                    attrs,
                    forced,
                    got,
                )
                assert engine.is_enabled(key, ctx) is want.on, (key, attrs, forced)
            compared += 1
        sdk.destroy()
    return compared


def test_differential_against_the_growthbook_sdk(impl, make):
    # thousands of users on the compiled evaluator; the reference evaluator (which the
    # evaluator differential tests already tie to it) on a quarter of them, for time
    users = 2000 if impl.IMPLEMENTATION == "c" else 500
    features = _features(random.Random(11))
    assert _check([make], features, users=users, seed=5) == users * len(features)


@settings(max_examples=examples(8), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32))
def test_generated_feature_sets_agree(make_py_and_c, seed):
    features = _features(random.Random(seed))
    _check(make_py_and_c, features, users=60, seed=seed)


def test_hash_functions_match_the_sdk():
    from growthbook.core import fnv1a32 as sdk_fnv
    from growthbook.core import gbhash

    for text in ["", "a", "user-1", "ünïcødé", "😀x"]:
        assert fnv1a32(text) == sdk_fnv(text)
        for v in (1, 2):
            space = 10000 if v == 2 else 1000
            assert growthbook_hash("seed", text, v) / space == gbhash("seed", text, v)


def test_unsupported_operators_are_import_errors():
    rule = {"condition": {"tags": {"$elemMatch": {"$or": 1}}}, "force": 2}
    features = {"f": {"defaultValue": 1, "rules": [rule]}}
    with pytest.raises(InteropError) as err:
        growthbook.to_snapshot(features)
    assert "features.f" in str(err.value) and "$elemMatch" in str(err.value)


def holds(cond: Any, s: str) -> bool:
    """Whether the condition ``string_order`` lowered to holds for the value ``s``."""
    from cfgcore.compiler import compile_regex

    if "any" in cond:
        return any(holds(c, s) for c in cond["any"])
    if "matches" in cond:
        return compile_regex(cond["matches"], False).search(s) is not None
    if "in" in cond:
        return s in cond["in"]
    return bool(s == cond["eq"])


@settings(max_examples=examples(200), deadline=None)
@given(st.text(alphabet="0123.-v~ab", max_size=6), st.text(alphabet="0123.-v~ab", max_size=6))
def test_string_order_is_exact(attr_value, constant):
    for op, want in (
        ("gt", attr_value > constant),
        ("ge", attr_value >= constant),
        ("lt", attr_value < constant),
        ("le", attr_value <= constant),
    ):
        assert holds(growthbook.string_order("a", op, constant), attr_value) is want


def test_forced_variation_is_a_rule_on_a_reserved_attribute(make):
    features = {
        "f": {
            "defaultValue": "d",
            "rules": [{"key": "exp", "variations": ["a", "b", "c"], "coverage": 0}],
        }
    }
    engine = make(growthbook.to_snapshot(features))
    assert engine.value("f", growthbook.context({"id": "1"})) == "d"
    ctx = growthbook.context({"id": "1"}, forced_variations={"exp": 2})
    assert ctx["$forced:exp"] == 2
    details = engine.evaluate("f", ctx)
    assert details.value == "c" and details.variant == "exp:2"


def test_skip_lists_refused_features():
    rule = {"condition": {"tags": {"$all": [{"$regex": "(?=a)"}]}}, "force": 2}
    snap = growthbook.to_snapshot(
        {"bad": {"defaultValue": 1, "rules": [rule]}, "good": {"defaultValue": 2}},
        on_error="skip",
    )
    assert list(snap.flags) == ["good"]
    assert "$all" in snap.metadata["refused"]["bad"]
