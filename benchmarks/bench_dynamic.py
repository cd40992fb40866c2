"""Dynamic-config API speed: flag checks, A/B variants and updates, against peers.

Groups (one operation each; peers in the same group so ratios come from one run):

``dynamic-is-feature-enabled``  ``is_feature_enabled(FeatureFlag.X, ctx)`` on the bundled
    targeted flag (premium segment) with a plain dict context held by the caller; the
    same through a bound ``engine.context`` (the fast path for many checks per request);
    the engine alone; GrowthBook and Unleash on their always-on flag with the SDK context
    built from the dict on every call (``plain_on_dict``) and on their premium-and-EU rule
    flag with a prebuilt context (``rule``).
``dynamic-ab-variant``  ``get_ab_test_variant(test, {"user_id": uid})`` over 10,000 users
    (exposure logging on: after the first pass it is the dedup check), the same with
    exposure logging off, and GrowthBook/Unleash 50/30/20 splits by user id.
``dynamic-set-feature-flag``  ``set_feature_flag`` on a 1,000-flag set: update, derive,
    compile (incremental: only the changed flag, on top of the live tables), atomic
    write with fsync, swap, change event and audit line; the same in memory (no file)
    to show what the write costs.

Run: ``python -m pytest benchmarks/bench_dynamic.py --benchmark-enable -q``
"""

from __future__ import annotations

import itertools
import os
import sys
from datetime import datetime, timedelta, timezone

import msgspec
import pytest

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager, FeatureFlag
from cfgcore.engine import bundled_flags_path
from cfgcore.snapshot import Condition, Flag, Rule, encode_snapshot, load_snapshot

sys.path.insert(0, os.path.dirname(__file__))
from peers import PREMIUM_EU, available_peers, user_ids  # noqa: E402

PEERS = [c for c in available_peers() if c.name in ("growthbook", "unleash")]
TEST = "recommendation_algorithm_v2"
UIDS = user_ids(10_000)
SPLIT_NAMES = ("control", "variant_a", "variant_b")


def _ab_test() -> ABTestConfiguration:
    now = datetime.now(timezone.utc)
    return ABTestConfiguration(
        test_name=TEST,
        description="bench",
        start_date=now - timedelta(days=1),
        end_date=now + timedelta(days=14),
        traffic_split={"control": 50.0, "variant_a": 30.0, "variant_b": 20.0},
        configurations={
            "control": {"algorithm": "matrix_factorization"},
            "variant_a": {"algorithm": "deep_neural_network"},
            "variant_b": {"algorithm": "hybrid_ensemble"},
        },
        success_metrics=["click_through_rate"],
    )


@pytest.fixture(scope="module")
def manager(tmp_path_factory):
    m = DynamicConfigurationManager(state_dir=tmp_path_factory.mktemp("dyn"))
    assert m.create_ab_test(_ab_test())
    yield m
    m.close()


@pytest.fixture(scope="module")
def quiet_manager(tmp_path_factory):
    m = DynamicConfigurationManager(state_dir=tmp_path_factory.mktemp("dynq"), log_exposures=False)
    assert m.create_ab_test(_ab_test())
    yield m
    m.close()


@pytest.fixture(scope="module", params=PEERS, ids=lambda c: c.name)
def peer(request):
    with request.param() as p:
        yield p


def _run(benchmark, fn, *args, fast=True):
    """Many calls per timing so the timer's own cost (~100 ns) does not count."""
    if fast:
        return benchmark.pedantic(fn, args, iterations=2000, rounds=300, warmup_rounds=5)
    return benchmark.pedantic(fn, args, iterations=50, rounds=100, warmup_rounds=2)


def _cycle(fn):
    it = itertools.cycle(UIDS)
    nxt = it.__next__
    return lambda: fn(nxt())


# --- is_feature_enabled --------------------------------------------------------------------


@pytest.mark.benchmark(group="dynamic-is-feature-enabled")
def test_is_feature_enabled_dict(benchmark, manager):
    check = manager.is_feature_enabled
    flag, ctx = FeatureFlag.ENHANCED_ANOMALY_DETECTION, dict(PREMIUM_EU)
    assert _run(benchmark, check, flag, ctx) is True


@pytest.mark.benchmark(group="dynamic-is-feature-enabled")
def test_is_feature_enabled_bound_context(benchmark, manager):
    check = manager.is_feature_enabled
    flag, ctx = FeatureFlag.ENHANCED_ANOMALY_DETECTION, manager.engine.context(PREMIUM_EU)
    assert _run(benchmark, check, flag, ctx) is True


@pytest.mark.benchmark(group="dynamic-is-feature-enabled")
def test_engine_is_enabled_dict(benchmark, manager):
    check = manager.engine.is_enabled
    assert _run(benchmark, check, "enhanced_anomaly_detection", dict(PREMIUM_EU)) is True


@pytest.mark.benchmark(group="dynamic-is-feature-enabled")
def test_peer_plain_on_dict(benchmark, peer):
    """The peers' always-on flag with the SDK context built from the dict per call (their
    cheapest flag, so this flatters the peer: cfgcore's flag above has a segment rule)."""
    fn = peer.plain_on_dict(PREMIUM_EU)
    assert _run(benchmark, fn, fast=False) is True


@pytest.mark.benchmark(group="dynamic-is-feature-enabled")
def test_peer_rule_prebuilt_context(benchmark, peer):
    fn = peer.rule(PREMIUM_EU)
    assert _run(benchmark, fn, fast=False) is True


# --- get_ab_test_variant -------------------------------------------------------------------


@pytest.mark.benchmark(group="dynamic-ab-variant")
def test_ab_variant_with_exposure_logging(benchmark, manager):
    get = manager.get_ab_test_variant
    for uid in UIDS:  # first exposures happen here; the benchmark measures steady state
        get(TEST, {"user_id": uid})
    assert _run(benchmark, _cycle(lambda uid: get(TEST, {"user_id": uid}))) in (
        "control",
        "variant_a",
        "variant_b",
    )
    assert manager.exposures.stats()["dropped"] == 0


@pytest.mark.benchmark(group="dynamic-ab-variant")
def test_cycle_and_dict_floor(benchmark):
    """The harness's own cost in this group: next user id and a one-key dict."""
    assert _run(benchmark, _cycle(lambda uid: {"user_id": uid}))


@pytest.mark.benchmark(group="dynamic-ab-variant")
def test_engine_variant_dict(benchmark, quiet_manager):
    get = quiet_manager.engine.variant
    assert _run(benchmark, _cycle(lambda uid: get(TEST, {"user_id": uid}))) in SPLIT_NAMES


@pytest.mark.benchmark(group="dynamic-ab-variant")
def test_ab_variant_no_exposure_logging(benchmark, quiet_manager):
    get = quiet_manager.get_ab_test_variant
    assert _run(benchmark, _cycle(lambda uid: get(TEST, {"user_id": uid}))) is not None


@pytest.mark.benchmark(group="dynamic-ab-variant-batch")
def test_ab_variant_bound_context(benchmark, manager):
    """Contexts bound once per request (``manager.engine.context``), as on a hot path that
    checks several flags and tests for the same user. One timing is a pass over the
    10,000 users (``extra_info["calls"]``), so divide by it for the per-call figure."""
    get = manager.get_ab_test_variant
    bound = [manager.engine.context({"user_id": uid}) for uid in UIDS]
    for ctx in bound:  # first exposures happen here; the benchmark measures steady state
        get(TEST, ctx)

    def run():
        for ctx in bound:
            get(TEST, ctx)

    benchmark.extra_info["calls"] = len(bound)
    benchmark(run)
    assert get(TEST, bound[0]) in SPLIT_NAMES


@pytest.mark.benchmark(group="dynamic-ab-variant-batch")
def test_ab_variant_dict_batch(benchmark, manager):
    """The same pass with a plain dict per user (dicts built before timing)."""
    get = manager.get_ab_test_variant
    dicts = [{"user_id": uid} for uid in UIDS]

    def run():
        for ctx in dicts:
            get(TEST, ctx)

    benchmark.extra_info["calls"] = len(dicts)
    benchmark(run)
    assert get(TEST, dicts[0]) in SPLIT_NAMES


@pytest.mark.benchmark(group="dynamic-ab-variant")
def test_peer_split(benchmark, peer):
    assert _run(benchmark, _cycle(peer.split()), fast=False) in SPLIT_NAMES


# --- set_feature_flag on 1,000 flags -------------------------------------------------------


def _thousand_flags(directory, persist):
    """A manager over the bundled flags plus fillers (on, off, 25 % rollout, premium rule)
    up to 1,000 flags, written as its flags file first (one write, not 1,000)."""
    bundled = load_snapshot(bundled_flags_path())
    flags = dict(bundled.flags)
    kinds = [
        Flag(default="on"),
        Flag(default="off"),
        Flag(default="off", rules=[Rule(serve="on", rollout=25)]),
        Flag(default="off", rules=[Rule(when=Condition(segment="premium"), serve="on")]),
    ]
    for i in range(1000 - len(flags)):
        flags[f"flag_{i:04d}"] = kinds[i % len(kinds)]
    path = os.path.join(directory, "flags.json")
    with open(path, "wb") as fh:
        fh.write(encode_snapshot(msgspec.structs.replace(bundled, flags=flags), "json"))
    m = DynamicConfigurationManager(path, persist=persist, log_exposures=False)
    assert len(m.snapshot.flags) == 1000
    return m


@pytest.fixture(scope="module")
def big_manager(tmp_path_factory):
    m = _thousand_flags(tmp_path_factory.mktemp("big"), persist=True)
    yield m
    m.close()


@pytest.fixture(scope="module")
def big_memory_manager(tmp_path_factory):
    m = _thousand_flags(tmp_path_factory.mktemp("bigmem"), persist=False)
    yield m
    m.close()


def _toggle(m, values=(10.0, 20.0)):
    pct = itertools.cycle(values)
    return lambda: m.set_feature_flag(FeatureFlag.EXPERIMENTAL_ML_MODELS, True, next(pct))


@pytest.mark.benchmark(group="dynamic-set-feature-flag")
def test_set_feature_flag_1000_persisted(benchmark, big_manager):
    benchmark(_toggle(big_manager))
    assert os.path.exists(big_manager.flags_file)


@pytest.mark.benchmark(group="dynamic-set-feature-flag")
def test_set_feature_flag_1000_in_memory(benchmark, big_memory_manager):
    benchmark(_toggle(big_memory_manager))
    status = big_memory_manager.get_feature_flags_status()["experimental_ml_models"]
    assert status["rollout_percentage"] in (10.0, 20.0)


@pytest.mark.benchmark(group="dynamic-set-feature-flag")
def test_set_feature_flag_1000_persisted_recompile(benchmark, big_manager):
    """50 % <-> 100 % adds/removes the rule's rollout (it changes which attributes the flag
    binds); compiled incrementally like every other change."""
    benchmark(_toggle(big_manager, (50.0, 100.0)))
    assert os.path.exists(big_manager.flags_file)


def _many_tests(n: int) -> bytes:
    """A flag document of ``n`` A/B tests (a flag and a full record each), JSON."""
    import json

    flags, records = {}, {}
    for i in range(n):
        name = f"test_{i}"
        flags[name] = {
            "variants": {"control": {"x": 1}, "treatment": {"x": 2}},
            "default": "control",
            "rules": [{"split": {"control": 50, "treatment": 50}}],
        }
        records[name] = {
            "start_date": "2026-01-01T00:00:00+00:00",
            "end_date": "2027-01-01T00:00:00+00:00",
            "traffic_split": {"control": 50.0, "treatment": 50.0},
            "success_metrics": ["conv", "rev"],
            "guardrail_metrics": {"lat": "lower_is_better"},
            "metric_types": {"conv": "binary", "rev": "continuous"},
            "control": "control",
            "status": "active",
        }
    return json.dumps({"flags": flags, "experiments": records}).encode()


# What a document costs to go live beside its compile: derive() (the derived flags, the
# secret-reference and A/B-record checks; since the twenty-fifth pass every record's
# shape is judged there) and records_problems alone. Load path, not request path.
@pytest.mark.benchmark(group="dynamic-load-2000-tests")
def test_derive_2000_tests(benchmark):
    from cfgcore.runtime.flags import derive
    from cfgcore.snapshot import decode_snapshot

    snap = decode_snapshot(_many_tests(2000), "json")
    out = benchmark(derive, snap, "flags.json")
    assert len(out.flags) >= 2000


@pytest.mark.benchmark(group="dynamic-load-2000-tests")
def test_records_problems_2000_tests(benchmark):
    from cfgcore.experiments.abtest import records_problems
    from cfgcore.snapshot import decode_snapshot

    snap = decode_snapshot(_many_tests(2000), "json")
    assert benchmark(records_problems, snap, "flags.json") == []


# An API write (a flag registered) in a document holding 100 served A/B tests: every
# write is judged for users it would move (one judge of every write path) and for
# tests it drops (retired); a test the write leaves as it was is passed over.
@pytest.mark.benchmark(group="dynamic-write-100-tests")
def test_register_flag_beside_100_tests(benchmark, tmp_path):
    path = tmp_path / "flags.json"
    path.write_bytes(_many_tests(100))
    m = DynamicConfigurationManager(str(path), log_exposures=False, record_usage=False)
    names = (f"flag_{i}" for i in itertools.count())
    try:
        benchmark(lambda: m.register_custom_feature_flag(next(names), enabled=True))
        assert len(m.snapshot.experiments) == 100 and m.is_feature_enabled("flag_0", {})
    finally:
        m.close()
