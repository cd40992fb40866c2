"""Imported flag sets: cfgcore (compiled and reference) against the source system's
own Python SDK, on the same flags and the same users, in one run.

One group per source system; each round evaluates every flag of the set for a batch of
users (a context built once per user, as a request would), and every participant's
answers are checked against cfgcore's before timing. ``extra_info["calls"]`` is the
number of flag evaluations per round (``benchmarks/report.py`` divides by it).

* ``interop-unleash``: Unleash ``getVariant`` (UnleashClient, offline bootstrap).
* ``interop-flagd``: flagd value resolution (``FlagdCore``, flagd's in-process evaluator).
* ``interop-growthbook``: GrowthBook ``eval_feature`` (the ``growthbook`` SDK).

Run::

    python -m pytest benchmarks/bench_interop.py --benchmark-enable \\
        --benchmark-json=interop.json -q
    python benchmarks/report.py interop.json
"""

from __future__ import annotations

import logging
import random
import shutil
import tempfile
from typing import Any

import pytest

from cfgcore._compat import implementations
from cfgcore.engine import engine_class
from cfgcore.interop import flagd, growthbook, unleash

IMPLS = implementations()
USERS = 200
COUNTRIES = ["US", "NL", "DE", "FR", "JP"]


def _users(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "id": f"user-{rng.randint(0, 10**6)}",
            "country": rng.choice(COUNTRIES),
            "age": rng.randint(16, 80),
            "email": rng.choice(["a@example.com", "b@other.org"]),
            "plan": rng.choice(["free", "premium"]),
        }
        for _ in range(USERS)
    ]


USERS_LIST = _users(7)


# -- Unleash --------------------------------------------------------------------------------
def unleash_payload(n: int = 20) -> dict[str, Any]:
    feats = []
    for i in range(n):
        constraints = [
            [],
            [{"contextName": "country", "operator": "IN", "values": ["US", "NL"]}],
            [{"contextName": "age", "operator": "NUM_GT", "value": "30"}],
            [{"contextName": "email", "operator": "STR_ENDS_WITH", "values": ["@example.com"]}],
        ][i % 4]
        strategy: dict[str, Any] = {
            "name": "flexibleRollout",
            "parameters": {
                "rollout": str(10 + 7 * i % 90),
                "stickiness": "default",
                "groupId": f"g{i}",
            },
            "constraints": constraints,
        }
        feat: dict[str, Any] = {"name": f"feature-{i}", "enabled": True, "strategies": [strategy]}
        if i % 2:
            feat["variants"] = [
                {"name": "blue", "weight": 500, "stickiness": "default",
                 "payload": {"type": "string", "value": "b"}},
                {"name": "red", "weight": 500, "stickiness": "default"},
            ]  # fmt: skip
        feats.append(feat)
    return {"version": 2, "features": feats}


def _unleash_ctx(u: dict[str, Any]) -> dict[str, Any]:
    return {"userId": u["id"], "properties": {k: str(v) for k, v in u.items() if k != "id"}}


class UnleashSDK:
    def __init__(self, payload: dict[str, Any]) -> None:
        from UnleashClient import UnleashClient
        from UnleashClient.cache import FileCache
        from UnleashClient.utils import InstanceAllowType

        self.tmp = tempfile.mkdtemp(prefix="cfgcore-bench-interop-")
        cache = FileCache("cfgcore-bench-interop", directory=self.tmp)
        cache.bootstrap_from_dict(payload)
        self.client = UnleashClient(
            url="http://127.0.0.1:9/", app_name="cfgcore-bench", refresh_interval=86_400,
            disable_metrics=True, disable_registration=True, cache=cache,
            multiple_instance_mode=InstanceAllowType.SILENTLY_ALLOW,
        )  # fmt: skip
        self.client.initialize_client(fetch_toggles=False)

    def close(self) -> None:
        self.client.destroy()
        shutil.rmtree(self.tmp, ignore_errors=True)


# -- flagd ----------------------------------------------------------------------------------
def flagd_document(n: int = 20) -> dict[str, Any]:
    flags = {}
    for i in range(n):
        targeting = [
            {"fractional": [["a", 50], ["b", 30], ["c", 20]]},
            {"if": [{"in": [{"var": "country"}, ["US", "NL"]]}, "b", "a"]},
            {"if": [{"ends_with": [{"var": "email"}, "@example.com"]},
                    {"fractional": [{"var": "email"}, ["a", 1], ["c", 1]]}, "b"]},
            {"if": [{">": [{"var": "age"}, 40]}, "c", {"fractional": [["a", 1], ["b", 3]]}]},
        ][i % 4]  # fmt: skip
        flags[f"flag-{i}"] = {
            "state": "ENABLED",
            "variants": {"a": "A", "b": "B", "c": "C"},
            "defaultVariant": "a",
            "targeting": targeting,
        }
    return {"flags": flags}


# -- GrowthBook -----------------------------------------------------------------------------
def growthbook_features(n: int = 20) -> dict[str, Any]:
    feats: dict[str, Any] = {}
    for i in range(n):
        rules = [
            [{"condition": {"country": {"$in": ["US", "NL"]}}, "force": True}],
            [{"force": True, "coverage": 0.3, "hashVersion": 2}],
            [{"key": f"exp-{i}", "variations": ["a", "b", "c"], "weights": [0.5, 0.3, 0.2],
              "coverage": 0.8, "hashVersion": 2}],
            [{"condition": {"age": {"$gt": 30}}, "key": f"exp-{i}", "variations": [False, True],
              "hashVersion": 1}],
        ][i % 4]  # fmt: skip
        feats[f"feature-{i}"] = {"defaultValue": False if i % 4 != 2 else "a", "rules": rules}
    return feats


# -- the benchmarks -------------------------------------------------------------------------
def _participants() -> list[Any]:
    return [pytest.param(k, id=f"cfgcore-{k}") for k in IMPLS] + [pytest.param("sdk", id="sdk")]


def _bench(benchmark, run, calls: int) -> None:
    benchmark.extra_info["calls"] = calls
    benchmark(run)


@pytest.mark.parametrize("who", _participants())
def test_unleash(benchmark, who):
    benchmark.group = "interop-unleash"
    payload = unleash_payload()
    names = [f["name"] for f in payload["features"]]
    ctxs = [_unleash_ctx(u) for u in USERS_LIST]
    engine = engine_class(IMPLS.get("c") or IMPLS["py"]).from_snapshot(unleash.to_snapshot(payload))
    want = [[unleash.get_variant(engine, n, unleash.context(c)) for n in names] for c in ctxs]
    if who == "sdk":
        sdk = UnleashSDK(payload)
        get = sdk.client.get_variant
        try:
            got = [[get(n, c) for n in names] for c in ctxs]
            assert [[_strip(v) for v in row] for row in got] == want
            _bench(
                benchmark, lambda: [[get(n, c) for n in names] for c in ctxs], USERS * len(names)
            )
        finally:
            sdk.close()
        return
    eng = engine_class(IMPLS[who]).from_snapshot(unleash.to_snapshot(payload))

    def run() -> list:
        out = []
        for c in ctxs:
            ctx = eng.context(unleash.context(c))
            out.append([eng.evaluate(n, ctx).value for n in names])
        return out

    assert [[dict(v) for v in row] for row in run()] == want
    _bench(benchmark, run, USERS * len(names))


def _strip(v: dict[str, Any]) -> dict[str, Any]:
    out = {"name": v["name"], "enabled": v["enabled"], "feature_enabled": v["feature_enabled"]}
    if v.get("payload"):
        out["payload"] = v["payload"]
    return out


@pytest.mark.parametrize("who", _participants())
def test_flagd(benchmark, who):
    benchmark.group = "interop-flagd"
    doc = flagd_document()
    names = list(doc["flags"])
    users = [(u["id"], {k: v for k, v in u.items() if k != "id"}) for u in USERS_LIST]
    engine = engine_class(IMPLS.get("c") or IMPLS["py"]).from_snapshot(flagd.to_snapshot(doc))
    want = [
        [flagd.resolve(engine, n, flagd.context(tk, a)).value for n in names] for tk, a in users
    ]
    if who == "sdk":
        from openfeature.contrib.tools.flagd.core import FlagdCore
        from openfeature.evaluation_context import EvaluationContext

        core = FlagdCore()
        core.set_flags(doc)
        resolve = core.resolve_string_value

        def run_sdk() -> list:
            out = []
            for tk, a in users:
                ctx = EvaluationContext(tk, a)
                out.append([resolve(n, "", ctx).value for n in names])
            return out

        assert run_sdk() == want
        _bench(benchmark, run_sdk, USERS * len(names))
        return
    eng = engine_class(IMPLS[who]).from_snapshot(flagd.to_snapshot(doc))

    def run() -> list:
        out = []
        for tk, a in users:
            ctx = eng.context(flagd.context(tk, a))
            out.append([eng.evaluate(n, ctx).value for n in names])
        return out

    assert run() == want
    _bench(benchmark, run, USERS * len(names))


def _growthbook_sdk_answers(feats: dict[str, Any]) -> list[list[Any]]:
    from growthbook import GrowthBook

    gb = GrowthBook(features=feats)
    try:
        out = []
        for u in USERS_LIST:
            gb.set_attributes(dict(u))  # destroy() clears the dict it holds
            out.append([gb.eval_feature(n).value for n in feats])
        return out
    finally:
        gb.destroy()


@pytest.mark.parametrize("who", _participants())
def test_growthbook(benchmark, who):
    benchmark.group = "interop-growthbook"
    logging.getLogger("growthbook").setLevel(logging.ERROR)
    feats = growthbook_features()
    names = list(feats)
    want = _growthbook_sdk_answers(feats)
    if who == "sdk":
        from growthbook import GrowthBook

        gb = GrowthBook(features=feats)

        def run_sdk() -> list:
            out = []
            for u in USERS_LIST:
                gb.set_attributes(dict(u))  # destroy() clears the dict it holds
                out.append([gb.eval_feature(n).value for n in names])
            return out

        try:
            assert run_sdk() == want
            _bench(benchmark, run_sdk, USERS * len(names))
        finally:
            gb.destroy()
        return
    eng = engine_class(IMPLS[who]).from_snapshot(growthbook.to_snapshot(feats))

    def run() -> list:
        out = []
        for u in USERS_LIST:
            ctx = eng.context(growthbook.context(u))
            out.append([eng.evaluate(n, ctx).value for n in names])
        return out

    assert run() == want
    _bench(benchmark, run, USERS * len(names))


# -- GrowthBook context ---------------------------------------------------------------
# growthbook.context() for a user holding 200 tags, on flags reading the tags as a whole
# ($in, $size, $ini) and other attributes: every key derived (five or so per element),
# or only what the engine's snapshot reads (elements=engine).
@pytest.mark.parametrize("limited", [False, True], ids=["whole", "elements-engine"])
def test_growthbook_context(benchmark, limited):
    benchmark.group = "interop-growthbook-context"
    feats = {
        "in": {"defaultValue": 0, "rules": [{"condition": {"tags": {"$in": ["t5"]}}, "force": 1}]},
        "size": {"defaultValue": 0, "rules": [{"condition": {"tags": {"$size": {"$gt": 3}}},
                                               "force": 1}]},
        "ini": {"defaultValue": 0, "rules": [{"condition": {"tags": {"$ini": ["T7"]}},
                                              "force": 1}]},
        **growthbook_features(8),
    }  # fmt: skip
    eng = engine_class(IMPLS.get("c") or IMPLS["py"]).from_snapshot(growthbook.to_snapshot(feats))
    user = {**USERS_LIST[0], "tags": [f"t{i}" for i in range(200)]}
    options = {"elements": eng} if limited else {}
    want = [eng.evaluate(n, growthbook.context(user)).value for n in feats]
    assert [eng.evaluate(n, growthbook.context(user, **options)).value for n in feats] == want
    _bench(benchmark, lambda: growthbook.context(user, **options), 1)


# flagd.context() and unleash.context() for a user of 40 attributes (names, versions,
# counts, numbers as text, dates, IP addresses, an address object) and, for flagd, 200
# tags: every key derived, or only what the engine's snapshot reads (bucketing=engine,
# engine=engine; the set's flags read country, age, email).
WIDE_USER: dict[str, Any] = {"country": "NL", "plan": "premium", "age": 31, "beta": True,
                             "email": "a@b.example"}  # fmt: skip
for _i in range(6):
    WIDE_USER |= {
        f"name{_i}": f"Some Name {_i}",
        f"ver{_i}": f"{_i}.2.3",
        f"count{_i}": _i * 17,
        f"num{_i}": str(_i * 3.5),
        f"when{_i}": f"2024-0{_i + 1}-05T10:00:00Z",
        f"ip{_i}": f"10.0.0.{_i}",
    }
WIDE_USER["address"] = {"city": "Amsterdam", "zip": "1011AB", "street": "Dam 1"}


@pytest.mark.parametrize("limited", [False, True], ids=["whole", "bucketing-engine"])
def test_flagd_context(benchmark, limited):
    benchmark.group = "interop-flagd-context"
    doc = flagd_document()
    eng = engine_class(IMPLS.get("c") or IMPLS["py"]).from_snapshot(flagd.to_snapshot(doc))
    user = {**WIDE_USER, "tags": [f"t{i}" for i in range(200)]}
    options = {"bucketing": eng} if limited else {}
    want = [flagd.resolve(eng, n, flagd.context("u1", user)).value for n in doc["flags"]]
    got = [flagd.resolve(eng, n, flagd.context("u1", user, **options)).value for n in doc["flags"]]
    assert got == want
    _bench(benchmark, lambda: flagd.context("u1", user, **options), 1)


@pytest.mark.parametrize("limited", [False, True], ids=["whole", "engine"])
def test_unleash_context(benchmark, limited):
    benchmark.group = "interop-unleash-context"
    payload = unleash_payload()
    eng = engine_class(IMPLS.get("c") or IMPLS["py"]).from_snapshot(unleash.to_snapshot(payload))
    ctx = {"userId": "42", "properties": {k: v if isinstance(v, str) else str(v)
                                          for k, v in WIDE_USER.items()}}  # fmt: skip
    options = {"engine": eng} if limited else {}
    names = [f["name"] for f in payload["features"]]
    want = [unleash.get_variant(eng, n, unleash.context(ctx)) for n in names]
    assert [unleash.get_variant(eng, n, unleash.context(ctx, **options)) for n in names] == want
    _bench(benchmark, lambda: unleash.context(ctx, **options), 1)


# -- GrowthBook saved group ---------------------------------------------------------------
# One feature gated on a large saved group (``{"id": {"$inGroup": "beta"}}``). cfgcore
# lowers GrowthBook's ``isIn`` to a scalar ``in`` plus ``has_any`` for an array attribute:
# one attribute read and one sorted-table lookup, whatever the group's size, where the
# SDK scans a list. (It used to be one membership attribute per listed value, a cost that
# grew with the group: benchmarks/RESULTS.md keeps both figures.)
GROUP_SIZE = 10_000


def _saved_group() -> tuple[dict[str, Any], dict[str, list[str]], list[dict[str, Any]]]:
    members = [f"user-{i}" for i in range(0, 2 * GROUP_SIZE, 2)]
    feats = {
        "beta_player": {
            "defaultValue": False,
            "rules": [{"condition": {"id": {"$inGroup": "beta"}}, "force": True}],
        }
    }
    users = [{"id": f"user-{3 * i}", "plan": "free"} for i in range(USERS)]  # half members
    return feats, {"beta": members}, users


def _saved_group_sdk(feats: dict[str, Any], groups: dict[str, list[str]], users: list) -> Any:
    """The GrowthBook SDK's round over ``users`` (a function), and its GrowthBook."""
    from growthbook import GrowthBook

    gb = GrowthBook(features=feats, saved_groups=groups)

    def run_sdk() -> list:
        out = []
        for u in users:
            gb.set_attributes(dict(u))  # destroy() clears the dict it holds
            out.append(gb.eval_feature("beta_player").value)
        return out

    return run_sdk, gb


@pytest.mark.parametrize("who", _participants())
def test_growthbook_saved_group(benchmark, who):
    benchmark.group = "interop-growthbook-saved-group"
    logging.getLogger("growthbook").setLevel(logging.ERROR)
    feats, groups, users = _saved_group()
    run_sdk, gb = _saved_group_sdk(feats, groups, users)
    try:
        want = run_sdk()
        assert 0 < sum(want) < len(want)  # members and non-members both
        if who == "sdk":
            _bench(benchmark, run_sdk, len(users))
            return
    finally:
        gb.destroy()
    payload = {"features": feats, "savedGroups": groups}
    eng = engine_class(IMPLS[who]).from_snapshot(growthbook.to_snapshot(payload))

    def run() -> list:
        return [
            eng.evaluate("beta_player", eng.context(growthbook.context(u))).value for u in users
        ]

    assert run() == want
    _bench(benchmark, run, len(users))
