"""Evaluation counters: what each entry point counts, errors per code, read-and-reset,
swaps and pinned snapshots, counting off, threads, and the process-wide totals.

Every test runs on both evaluators (the ``make`` fixture); tests/test_core_differential.py
checks that they count alike on random snapshots and call sequences.
"""

from __future__ import annotations

import gc
import json
import os
import select
import sys
import threading
import warnings
from datetime import datetime, timedelta, timezone

import pytest

from cfgcore.details import EvaluationCounts
from cfgcore.engine import engine_class
from cfgcore.observability.evaluations import evaluation_totals
from tests.conftest import IMPLS

FLAGS = {
    "flags": {
        "plain": {"default": "on"},
        "off": {"default": "on", "enabled": False},
        "rule": {
            "default": "off",
            "rules": [{"when": {"attr": "seg", "eq": "premium"}, "serve": "on"}],
        },
        "rollout": {"default": "off", "rules": [{"rollout": 100, "serve": "on"}]},
        "colour": {
            "variants": {"red": "r", "blue": "b"},
            "default": "red",
            "rules": [{"split": {"red": 0, "blue": 100}}],
        },
        "gated": {"default": "on", "prerequisites": ["rule"]},
        "later": {"default": "on", "schedule": {"start": "2999-01-01T00:00:00Z"}},
    }
}
PREMIUM = {"seg": "premium", "user_id": "u1"}


def counts(engine) -> tuple[dict, dict]:
    got = engine.take_evaluation_counts()
    assert isinstance(got, EvaluationCounts)
    return got.evaluations, got.errors


def test_each_entry_point_counts_the_variant_and_reason_it_served(make):
    e = make(FLAGS)
    assert e.is_enabled("plain") is True
    assert e.is_enabled("off", PREMIUM) is False
    assert e.variant("rule", PREMIUM) == "on"
    assert e.value("rule", {"seg": "free"}) is False
    assert e.evaluate("rollout", e.context(PREMIUM)).reason == "SPLIT"
    assert e.variant("colour", PREMIUM) == "blue"
    assert e.is_enabled("later") is False
    assert counts(e) == (
        {
            ("plain", "on", "STATIC"): 1,
            ("off", "off", "DISABLED"): 1,
            ("rule", "on", "TARGETING_MATCH"): 1,
            ("rule", "off", "DEFAULT"): 1,
            ("rollout", "on", "SPLIT"): 1,
            ("colour", "blue", "SPLIT"): 1,
            ("later", "off", "DISABLED"): 1,
        },
        {},
    )


def test_prerequisites_are_evaluated_but_not_counted(make):
    e = make(FLAGS)
    assert e.is_enabled("gated", PREMIUM) is True
    assert e.is_enabled("gated", {"seg": "free"}) is False
    assert counts(e) == (
        {("gated", "on", "STATIC"): 1, ("gated", "off", "PREREQUISITE_FAILED"): 1},
        {},
    )


def test_errors_are_counted_per_code(make):
    e = make(FLAGS)
    assert e.is_enabled("nope") is False
    assert e.variant(3) is None  # not a str: no flag has that key
    assert e.evaluate("nope").error_code == "FLAG_NOT_FOUND"
    # a default of another kind: the caller gets its default
    assert e.value("colour", PREMIUM, default=7) == 7
    assert e.evaluate("plain", None, default="x").error_code == "TYPE_MISMATCH"
    assert e.is_enabled("colour", PREMIUM) is False  # not a boolean flag
    # not a context: answered with no attributes, and counted
    assert e.variant("rule", ["seg", "premium"]) == "off"
    evaluations, errors = counts(e)
    assert errors == {"FLAG_NOT_FOUND": 3, "TYPE_MISMATCH": 3, "INVALID_CONTEXT": 1}
    assert evaluations == {
        ("colour", "blue", "ERROR"): 2,
        ("plain", "on", "ERROR"): 1,
        ("rule", "off", "DEFAULT"): 1,
    }


def test_a_broken_clock_is_a_general_error(make):
    e = make(FLAGS)

    def broken() -> float:
        raise RuntimeError("clock down")

    e.set_clock(broken)
    assert e.is_enabled("later") is False  # out of window, as documented
    assert e.is_enabled("plain") is True  # no schedule: the clock is not read
    assert counts(e) == (
        {("later", "off", "DISABLED"): 1, ("plain", "on", "STATIC"): 1},
        {"GENERAL": 1},
    )


def test_evaluate_all_counts_every_flag_once_per_call(make):
    e = make(FLAGS)
    ctx = e.context(PREMIUM)
    for _ in range(3):
        e.evaluate_all(ctx)
    e.evaluate_all(42)  # not a context
    evaluations, errors = counts(e)
    assert errors == {"INVALID_CONTEXT": 1}
    assert evaluations[("plain", "on", "STATIC")] == 4  # constant: attributed at take
    assert evaluations[("off", "off", "DISABLED")] == 4
    assert evaluations[("rule", "on", "TARGETING_MATCH")] == 3
    assert evaluations[("rule", "off", "DEFAULT")] == 1
    assert evaluations[("gated", "on", "STATIC")] == 3
    assert sum(evaluations.values()) == 4 * len(FLAGS["flags"])


def test_take_resets_and_reports_versions(make):
    e = make(FLAGS)
    assert e.take_evaluation_counts() == EvaluationCounts({}, {}, ())
    e.is_enabled("plain")
    assert e.take_evaluation_counts().versions == (e.version,)
    assert e.take_evaluation_counts().evaluations == {}


def test_counts_survive_swaps_and_pinned_snapshots(make):
    e = make(FLAGS)
    e.is_enabled("plain")
    pinned = e.snapshot()
    e.swap({"flags": {"plain": {"default": "off"}}})
    e.is_enabled("plain")
    pinned.is_enabled("plain")  # a request still on the old version
    got = e.take_evaluation_counts()
    assert got.evaluations == {("plain", "on", "STATIC"): 2, ("plain", "off", "STATIC"): 1}
    assert got.versions == (1, 2)
    # Counted on a retired snapshot after the take, then the snapshot dies: still kept.
    pinned.variant("plain")
    del pinned
    gc.collect()
    e.swap({"flags": {}})  # harvests retired counters whose snapshot died
    got = e.take_evaluation_counts()
    assert got.evaluations == {("plain", "on", "STATIC"): 1}
    assert got.versions == (1,)


def test_retired_counters_are_dropped_once_harvested(make):
    e = make(FLAGS)
    for i in range(50):
        e.swap({"flags": {"plain": {"default": "on" if i % 2 else "off"}}})
        e.is_enabled("plain")
    gc.collect()
    e.take_evaluation_counts()
    assert len(e._ledger._tracked) <= 2  # only snapshots still alive are kept


def test_installs_reported_out_of_order_lose_nothing(make):
    # Two threads swapping at once may report their installs in either order; the
    # snapshot that ended up live must still be harvested.
    e = make(FLAGS)
    s2, s3 = e.compile(FLAGS), e.compile(FLAGS)
    s1 = e._install(s2)
    e._install(s3)
    e._ledger.installed(s2, s3)  # the second swap reports first
    e._ledger.installed(s1, s2)
    e.is_enabled("plain")
    assert e.snapshot() is s3
    assert counts(e)[0] == {("plain", "on", "STATIC"): 1}


def test_counting_can_be_switched_off_and_on(make):
    e = make(FLAGS)
    pinned = e.snapshot()
    e.set_counting(False)
    e.is_enabled("plain")
    e.is_enabled("nope")
    e.evaluate_all()
    e.swap(FLAGS)  # a new snapshot keeps the setting
    e.is_enabled("plain")
    pinned.is_enabled("plain")
    assert counts(e) == ({}, {})
    e.set_counting(True)
    e.is_enabled("plain")
    e.evaluate_all()
    evaluations, _ = counts(e)
    assert evaluations[("plain", "on", "STATIC")] == 2


def test_seed_api_calls_are_counted(impl, tmp_path):
    from cfgcore.experiments.abtest import ABTestConfiguration
    from cfgcore.experiments.dynamic import DynamicConfigurationManager

    engine = engine_class(impl)()
    manager = DynamicConfigurationManager(state_dir=tmp_path, engine=engine)
    try:
        now = datetime.now(timezone.utc)
        test = ABTestConfiguration(
            test_name="checkout_v2",
            description="counted",
            start_date=now - timedelta(days=1),
            end_date=now + timedelta(days=14),
            traffic_split={"control": 50.0, "treatment": 50.0},
            configurations={"control": {"v": 1}, "treatment": {"v": 2}},
            success_metrics=["conversion"],
        )
        assert manager.create_ab_test(test)
        user = {"user_id": "12345", "user_segment": "premium", "region": "EU"}
        flag = engine.evaluate("enhanced_anomaly_detection", user)
        engine.take_evaluation_counts()
        assert manager.is_feature_enabled("enhanced_anomaly_detection", user) == flag.value
        assert manager.is_feature_enabled("no_such_flag") is False
        served = manager.get_ab_test_variant("checkout_v2", user)
        assert served in ("control", "treatment")
        evaluations, errors = counts(engine)
        assert errors == {"FLAG_NOT_FOUND": 1}
        assert evaluations[("enhanced_anomaly_detection", flag.variant, flag.reason)] == 1
        assert [k for k in evaluations if k[0] == "checkout_v2"] == [
            ("checkout_v2", served, "SPLIT")
        ]
    finally:
        manager.close()


@pytest.mark.skipif(
    not getattr(sys, "_is_gil_enabled", lambda: True)(), reason="exact only with a GIL"
)
def test_no_count_is_lost_to_concurrent_takes_under_the_gil():
    if "c" not in IMPLS:
        pytest.skip("the compiled extension is not built")
    e = engine_class(IMPLS["c"]).from_snapshot(FLAGS)
    per_thread, n_threads = 20_000, 4
    taken: list[EvaluationCounts] = []
    done = threading.Event()

    def evaluate() -> None:
        ctx = e.context(PREMIUM)
        for i in range(per_thread):
            e.is_enabled("rule", ctx)
            if i % 1000 == 0:
                e.swap(FLAGS)  # takes and swaps race the evaluations

    def take() -> None:
        while not done.is_set():
            taken.append(e.take_evaluation_counts())

    # The process-wide totals may harvest this engine too (the usage recorder's thread
    # and metrics collections do, from earlier tests): whatever they took is counted
    # there, so every increment is in one of the takes or in the totals' difference.
    key = ("rule", "on", "TARGETING_MATCH")
    before = evaluation_totals().collect()["evaluations"].get(key, 0)
    taker = threading.Thread(target=take)
    taker.start()
    workers = [threading.Thread(target=evaluate) for _ in range(n_threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    done.set()
    taker.join()
    taken.append(e.take_evaluation_counts())
    harvested = evaluation_totals().collect()["evaluations"].get(key, 0) - before
    total = sum(t.evaluations.get(key, 0) for t in taken) + harvested
    assert total == per_thread * n_threads
    assert len(taken) > 2


def test_totals_accumulate_every_engine_and_remember_when_flags_were_used(make):
    totals = evaluation_totals()
    before = totals.collect()["evaluations"]
    a, b = make(FLAGS), make(FLAGS)
    a.is_enabled("plain")
    b.is_enabled("plain")
    b.variant("colour", PREMIUM)
    b.is_enabled("nope")
    got = totals.collect()
    assert (
        got["evaluations"][("plain", "on", "STATIC")] - before.get(("plain", "on", "STATIC"), 0)
        == 2
    )
    assert got["errors"]["FLAG_NOT_FOUND"] >= 1
    last = totals.last_evaluated()
    assert last["plain"] >= last.get("rule", 0)
    assert "colour" in last
    # monotonic: a later collect never reports less
    a.is_enabled("plain")
    again = totals.collect()
    assert all(again["evaluations"][k] >= n for k, n in got["evaluations"].items())
    assert (
        again["evaluations"][("plain", "on", "STATIC")]
        == got["evaluations"][("plain", "on", "STATIC")] + 1
    )


def test_an_engine_that_dies_leaves_its_counts_in_the_totals(make):
    totals = evaluation_totals()
    key = ("departed_flag", "on", "STATIC")
    before = totals.collect()["evaluations"].get(key, 0)
    e = make({"flags": {"departed_flag": {"default": "on"}}})
    e.is_enabled("departed_flag")
    e.is_enabled("departed_flag")
    del e
    gc.collect()
    assert totals.collect()["evaluations"].get(key, 0) == before + 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")
def test_a_forked_worker_counts_from_zero(make):
    # What the parent counted before the fork (and had not harvested) is the parent's
    # to report; the worker reporting it too would count it once per worker.
    from cfgcore.observability import instruments

    e = make(FLAGS)
    totals = evaluation_totals()
    totals.collect()
    for _ in range(3):
        assert e.is_enabled("plain") is True
    assert e.is_enabled("nope") is False
    validations = instruments.VALIDATIONS.value(result="passed")
    instruments.validation(True, 0.01)  # a counter and a histogram of the registry
    r, w = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads running
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            assert e.is_enabled("plain") is True  # the worker's own evaluation
            got = totals.collect()
            seconds = [
                s.value
                for f in instruments.registry().collect()
                if f.name == "cfgcore_config_validation_duration_seconds"
                for s in f.samples
            ]
            answer = [
                got["evaluations"].get(("plain", "on", "STATIC"), 0),
                got["errors"].get("FLAG_NOT_FOUND", 0),
                instruments.VALIDATIONS.value(result="passed"),
                sum(seconds),
            ]
            os.write(w, json.dumps(answer).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    try:
        ready, _, _ = select.select([r], [], [], 20)
        child = json.loads(os.read(r, 4096)) if ready else None
    finally:
        os.close(r)
        _, status = os.waitpid(pid, 0)
    assert status == 0 and child == [1, 0, 0.0, 0.0]
    # The parent still reports what it counted.
    got = totals.collect()
    assert got["evaluations"].get(("plain", "on", "STATIC"), 0) >= 3
    assert got["errors"].get("FLAG_NOT_FOUND", 0) >= 1
    assert instruments.VALIDATIONS.value(result="passed") == validations + 1
