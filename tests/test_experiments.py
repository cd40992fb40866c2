"""A/B tests: creation and validation, windows, sticky and independent assignment,
layers, holdout, exposure logging, metrics analysis, guardrail rollback, CLI."""

from __future__ import annotations

import json
import os
import random
import threading
import time
import warnings
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.cli import main as cli_main
from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.errors import ConfigError
from cfgcore.experiments import stats
from cfgcore.experiments.exposures import (
    Exposure,
    ExposureLogger,
    JsonLinesSink,
    MemorySink,
    read_exposures,
)
from tests.fuzz import examples
from tests.waiting import wait_for

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
USERS = [f"user-{i}" for i in range(6000)]
SPLIT = {"control": 50.0, "variant_a": 30.0, "variant_b": 20.0}
CONFIGS = {
    "control": {"algorithm": "matrix_factorization"},
    "variant_a": {"algorithm": "deep_neural_network"},
    "variant_b": {"algorithm": "hybrid_ensemble"},
}


def seed_test(name="recommendation_algorithm_v2", **kw):
    """The seed's A/B test, around a fixed clock."""
    args = dict(
        test_name=name,
        description="Test new collaborative filtering algorithm",
        start_date=NOW - timedelta(days=1),
        end_date=NOW + timedelta(days=14),
        traffic_split=dict(SPLIT),
        configurations={k: dict(v) for k, v in CONFIGS.items()},
        success_metrics=["click_through_rate", "listen_completion_rate"],
    )
    args.update(kw)
    return ABTestConfiguration(**args)


class Clock:
    def __init__(self, t):
        self.t = t.timestamp()

    def __call__(self):
        return self.t


@pytest.fixture
def clock():
    return Clock(NOW)


@pytest.fixture
def manager(tmp_path, impl, clock):
    m = DynamicConfigurationManager(state_dir=tmp_path, engine=engine_class(impl)(), clock=clock)
    yield m
    m.close()


def variants_of(manager, test, users=USERS):
    return {u: manager.get_ab_test_variant(test, {"user_id": u}) for u in users}


def test_seed_ab_example_with_real_clock(tmp_path):
    """The seed's block verbatim: datetime.now() (naive, local) as the start."""
    dynamic_config = DynamicConfigurationManager(state_dir=tmp_path)
    ab_test = ABTestConfiguration(
        test_name="recommendation_algorithm_v2",
        description="Test new collaborative filtering algorithm",
        start_date=datetime.now(),
        end_date=datetime.now() + timedelta(days=14),
        traffic_split={"control": 50.0, "variant_a": 30.0, "variant_b": 20.0},
        configurations={
            "control": {"algorithm": "matrix_factorization"},
            "variant_a": {"algorithm": "deep_neural_network"},
            "variant_b": {"algorithm": "hybrid_ensemble"},
        },
        success_metrics=["click_through_rate", "listen_completion_rate"],
    )
    assert dynamic_config.create_ab_test(ab_test) is True
    user_context = {"user_id": "12345", "user_segment": "premium", "region": "EU"}
    variant = dynamic_config.get_ab_test_variant("recommendation_algorithm_v2", user_context)
    assert variant in SPLIT
    test_config = dynamic_config.get_ab_test_config("recommendation_algorithm_v2", variant)
    assert test_config == CONFIGS[variant]
    test_config["algorithm"] = "mutated"  # a copy: the live configuration is untouched
    assert (
        dynamic_config.get_ab_test_config("recommendation_algorithm_v2", variant)
        == CONFIGS[variant]
    )
    dynamic_config.close()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"traffic_split": {"control": 50.0, "variant_a": 30.0, "variant_b": 10.0}}, "sum to 90"),
        ({"configurations": {"control": {}, "variant_a": {}}}, "configurations.variant_b: missing"),
        ({"end_date": NOW - timedelta(days=2)}, "end_date: must be after start_date"),
        ({"traffic_split": {"control": 100.0}}, "at least two variants"),
        ({"traffic_split": {"control": 150.0, "variant_a": -50.0, "variant_b": 0}}, ">= 0"),
        ({"test_name": "__x"}, "reserved"),
        ({"guardrail_metrics": {"errors": "up"}}, "guardrail_metrics.errors"),
    ],
)
def test_create_ab_test_validation(manager, change, message):
    before = manager.snapshot
    assert manager.create_ab_test(seed_test(**change)) is False
    assert message in manager.last_error
    assert manager.last_problems and manager.last_problems[0].file == manager.flags_file
    assert manager.snapshot is before


def test_test_name_cannot_hijack_a_feature_flag(manager):
    assert not manager.create_ab_test(seed_test("enhanced_anomaly_detection"))
    assert "feature flag of that name exists" in manager.last_error


def test_split_is_respected_and_sticky(manager):
    assert manager.create_ab_test(seed_test())
    first = variants_of(manager, "recommendation_algorithm_v2")
    counts = {v: sum(1 for x in first.values() if x == v) for v in SPLIT}
    assert not stats.sample_ratio_mismatch(counts, SPLIT).mismatch
    assert variants_of(manager, "recommendation_algorithm_v2") == first  # sticky
    # a variant does not depend on other attributes of the user
    for u in USERS[:200]:
        ctx = {"user_id": u, "user_segment": random.choice(["free", "premium"]), "region": "US"}
        assert manager.get_ab_test_variant("recommendation_algorithm_v2", ctx) == first[u]


def test_assignment_survives_restart(tmp_path, clock):
    m = DynamicConfigurationManager(state_dir=tmp_path, clock=clock)
    assert m.create_ab_test(seed_test())
    before = variants_of(m, "recommendation_algorithm_v2", USERS[:1000])
    m.close()
    again = DynamicConfigurationManager(state_dir=tmp_path, clock=clock)
    assert variants_of(again, "recommendation_algorithm_v2", USERS[:1000]) == before
    assert again.get_ab_test("recommendation_algorithm_v2").traffic_split == SPLIT
    again.close()


def test_tests_are_independent(manager):
    for name in ("t_one", "t_two"):
        assert manager.create_ab_test(
            seed_test(
                name,
                traffic_split={"control": 50.0, "treatment": 50.0},
                configurations={"control": {}, "treatment": {"x": 1}},
            )
        )
    a = variants_of(manager, "t_one")
    b = variants_of(manager, "t_two")
    joint = {}
    for u in USERS:
        joint[(a[u], b[u])] = joint.get((a[u], b[u]), 0) + 1
    # Independent 50/50 x 50/50: each cell about a quarter (chi-square, 3 df).
    r = stats.sample_ratio_mismatch(
        {f"{k[0]}|{k[1]}": v for k, v in joint.items()},
        {f"{x}|{y}": 25.0 for x in ("control", "treatment") for y in ("control", "treatment")},
    )
    assert not r.mismatch, joint


def test_window_serves_no_variant_outside(manager, clock):
    assert manager.create_ab_test(seed_test())
    ctx = {"user_id": "12345"}
    assert manager.get_ab_test_variant("recommendation_algorithm_v2", ctx) is not None
    clock.t = (NOW - timedelta(days=2)).timestamp()
    assert manager.get_ab_test_variant("recommendation_algorithm_v2", ctx) is None
    # users not in the test get the control configuration
    assert manager.get_ab_test_config("recommendation_algorithm_v2", None) == CONFIGS["control"]
    clock.t = (NOW + timedelta(days=14)).timestamp()  # end is exclusive
    assert manager.get_ab_test_variant("recommendation_algorithm_v2", ctx) is None
    clock.t = NOW.timestamp()
    assert manager.get_ab_test_variant("recommendation_algorithm_v2", ctx) is not None


def test_hostile_arguments_never_raise(manager):
    assert manager.create_ab_test(seed_test())
    for name in ([1], {"a": 1}, None, 3):
        assert manager.get_ab_test_variant(name, {"user_id": "1"}) is None
    for ctx in (
        {"user_id": [1]},
        {"user_id": None},
        "text",
        5,
        manager.engine.context({"user_id": "u"}),
    ):
        v = manager.get_ab_test_variant("recommendation_algorithm_v2", ctx)
        assert v is None or v in SPLIT


def test_no_user_id_and_unknown_test_give_none(manager):
    assert manager.create_ab_test(seed_test())
    assert manager.get_ab_test_variant("recommendation_algorithm_v2", {"region": "EU"}) is None
    assert manager.get_ab_test_variant("recommendation_algorithm_v2", None) is None
    assert manager.get_ab_test_variant("nope", {"user_id": "1"}) is None
    assert manager.get_ab_test_variant("enhanced_anomaly_detection", {"user_id": "1"}) is None
    assert manager.get_ab_test_config("nope") is None
    assert manager.get_ab_test_config("recommendation_algorithm_v2", "variant_z") is None


def test_recreating_the_same_test_is_idempotent(manager):
    assert manager.create_ab_test(seed_test())
    version = manager.engine.version
    assert manager.create_ab_test(seed_test())
    assert manager.engine.version == version


def test_targeting_restricts_who_enters(manager):
    assert manager.create_ab_test(seed_test(targeting={"attr": "region", "in": ["EU", "UK"]}))
    eu = manager.get_ab_test_variant(
        "recommendation_algorithm_v2", {"user_id": "1", "region": "EU"}
    )
    us = manager.get_ab_test_variant(
        "recommendation_algorithm_v2", {"user_id": "1", "region": "US"}
    )
    assert eu in SPLIT and us is None


def test_layer_makes_tests_mutually_exclusive(manager):
    two = {
        "traffic_split": {"control": 50.0, "b": 50.0},
        "configurations": {"control": {}, "b": {}},
    }
    assert manager.create_ab_test(seed_test("home_a", layer="home", layer_percentage=40, **two))
    assert manager.create_ab_test(seed_test("home_b", layer="home", layer_percentage=60, **two))
    assert not manager.create_ab_test(seed_test("home_c", layer="home", layer_percentage=10, **two))
    assert "has no free slice of 10%" in manager.last_error
    a = variants_of(manager, "home_a")
    b = variants_of(manager, "home_b")
    both = [u for u in USERS if a[u] is not None and b[u] is not None]
    assert both == []
    in_a = sum(v is not None for v in a.values()) / len(USERS)
    in_b = sum(v is not None for v in b.values()) / len(USERS)
    assert abs(in_a - 0.4) < 0.03 and abs(in_b - 0.6) < 0.03
    # Within the layer slice the split still holds.
    counts = {v: sum(1 for x in a.values() if x == v) for v in ("control", "b")}
    assert not stats.sample_ratio_mismatch(counts, {"control": 50, "b": 50}).mismatch
    # Deleting a test frees its slice; the other test's users do not move.
    assert manager.delete_ab_test("home_a")
    assert variants_of(manager, "home_b") == b
    # The freed slice is reused by a new test, which takes exactly home_a's old users.
    assert manager.create_ab_test(seed_test("home_c", layer="home", layer_percentage=40, **two))
    c = variants_of(manager, "home_c")
    assert {u for u in USERS if c[u] is not None} == {u for u in USERS if a[u] is not None}


def test_internal_flags_are_not_feature_flags(manager):
    assert manager.create_ab_test(seed_test("t1", layer="home", layer_percentage=50))
    manager.set_holdout_percentage(5)
    status = manager.get_feature_flags_status()
    assert not any(k.startswith("__") for k in status) and "t1" not in status
    with pytest.raises(ConfigError, match="reserved"):
        manager.set_feature_flag("__experiments__.eligible", True)


def test_holdout_keeps_users_out_of_every_test(manager):
    assert manager.create_ab_test(seed_test("t1"))
    assert manager.create_ab_test(seed_test("t2"))
    manager.set_holdout_percentage(10)
    v1, v2 = variants_of(manager, "t1"), variants_of(manager, "t2")
    out1 = {u for u, v in v1.items() if v is None}
    out2 = {u for u, v in v2.items() if v is None}
    assert out1 == out2  # the same users are held out of every test
    assert abs(len(out1) / len(USERS) - 0.10) < 0.02
    manager.set_holdout_percentage(0)
    assert all(v is not None for v in variants_of(manager, "t1").values())


def test_exposures_logged_once_per_user_and_test(manager, tmp_path):
    sink = MemorySink()
    manager.exposures.add_sink(sink)
    assert manager.create_ab_test(seed_test())
    assert manager.create_ab_test(seed_test("other"))
    for _ in range(3):
        for u in USERS[:100]:
            manager.get_ab_test_variant("recommendation_algorithm_v2", {"user_id": u})
        manager.get_ab_test_variant("other", {"user_id": "user-1"})
    assert manager.exposures.flush(5)
    assert len(sink.exposures) == 101
    assert {(e.test, e.user) for e in sink.exposures} == {
        *(("recommendation_algorithm_v2", u) for u in USERS[:100]),
        ("other", "user-1"),
    }
    e = next(e for e in sink.exposures if e.user == "user-7" and e.test != "other")
    assert e.variant == manager.get_ab_test_variant(
        "recommendation_algorithm_v2", {"user_id": "user-7"}
    )
    assert e.time == NOW.timestamp()
    # The built-in JSON-lines file holds the same records.
    on_disk = read_exposures(tmp_path / "flags.exposures.jsonl")
    assert sorted(on_disk) == sorted(sink.exposures)
    assert manager.exposures.stats()["dropped"] == 0


def test_full_queue_drops_and_counts_without_blocking():
    release = threading.Event()
    got = []

    def slow_sink(batch):
        release.wait(10)
        got.extend(batch)

    logger = ExposureLogger([slow_sink], queue_size=4, batch_size=1)
    for i in range(50):
        logger.log("t", "control", f"u{i}")  # must not block while the sink is stuck
    s = logger.stats()
    assert s["logged"] + s["dropped"] == 50
    assert s["dropped"] >= 50 - 4 - 1  # queue capacity plus the one the writer holds
    release.set()
    assert logger.flush(5)
    assert len(got) == s["logged"]
    logger.close()


def test_failing_sink_is_counted_and_others_still_receive():
    good = MemorySink()

    def bad(batch):
        raise OSError("disk full")

    logger = ExposureLogger([bad, good])
    logger.log("t", "v", "u1")
    assert logger.flush(5)
    assert logger.stats()["sink_errors"] == 1 and len(good.exposures) == 1
    logger.close()


def test_json_lines_sink_rotates(tmp_path):
    path = tmp_path / "exp.jsonl"
    sink = JsonLinesSink(path, max_bytes=2000, backups=2)
    for i in range(200):
        sink.write([Exposure("t", "control", f"user-{i}", 1.0)])
    files = sink.files()
    assert len(files) == 3  # current + 2 backups, the oldest records were dropped
    assert all((tmp_path / f).stat().st_size <= 2000 for f in files)
    recs = read_exposures(path)
    assert recs[-1].user == "user-199"
    users = [int(r.user.split("-")[1]) for r in recs]
    assert users == sorted(users)  # rotated files read oldest first


def test_json_lines_sink_rotation_is_safe_between_workers(tmp_path):
    """Pre-fork workers each have a sink on the same file (separate sinks, separate
    locks, like separate processes). Concurrent rotations used to overwrite backups,
    leave gaps the reader stops at and raise FileNotFoundError (the batch was lost)."""
    path = tmp_path / "exp.jsonl"
    errors = []

    def worker(k):
        sink = JsonLinesSink(path, max_bytes=300, backups=1000)
        for i in range(150):
            try:
                sink.write([Exposure("t", "control", f"{k}-{i}", 1.0)])
            except Exception as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    users = sorted(e.user for e in read_exposures(path))
    assert users == sorted(f"{k}-{i}" for k in range(4) for i in range(150))


def _simulate(manager, test, rates, n_users=4000, metric="click_through_rate", seed=1):
    rng = random.Random(seed)
    for i in range(n_users):
        ctx = {"user_id": f"u{i}"}
        v = manager.get_ab_test_variant(test, ctx)
        if v is not None and rng.random() < rates[v]:
            manager.record_metric(test, metric, 1.0, user_context=ctx)


def test_analysis_binary_and_continuous(manager):
    assert manager.create_ab_test(seed_test())
    test = "recommendation_algorithm_v2"
    _simulate(manager, test, {"control": 0.10, "variant_a": 0.10, "variant_b": 0.20})
    rng = random.Random(7)
    for i in range(1500):
        ctx = {"user_id": f"u{i}"}
        v = manager.get_ab_test_variant(test, ctx)
        mean = 0.7 if v != "variant_a" else 0.6
        manager.record_metric(
            test, "listen_completion_rate", rng.gauss(mean, 0.1), user_context=ctx
        )
    report = manager.analyze(test)
    assert report.control == "control"
    assert not report.srm.mismatch
    ctr = {r.variant: r for r in report.for_metric("click_through_rate")}
    assert ctr["control"].kind == "binary"
    assert ctr["control"].n == report.exposures["control"]  # denominator = exposed users
    assert ctr["control"].low < 0.10 < ctr["control"].high
    assert ctr["variant_b"].p_value < 0.001 and ctr["variant_b"].difference > 0.05
    assert ctr["variant_a"].p_value > 0.001
    lcr = {r.variant: r for r in report.for_metric("listen_completion_rate")}
    assert lcr["control"].kind == "continuous"
    assert lcr["variant_a"].method == "Welch's t-test"
    assert lcr["variant_a"].difference == pytest.approx(-0.1, abs=0.03)
    assert lcr["variant_a"].p_value < 1e-6
    text = report.to_text()
    assert "click_through_rate (binary)" in text and "variant_b" in text


def test_metric_for_user_outside_test_is_ignored(manager, clock):
    assert manager.create_ab_test(seed_test())
    assert not manager.record_metric("recommendation_algorithm_v2", "x", 1.0, user_id=None)
    clock.t = (NOW - timedelta(days=5)).timestamp()
    assert not manager.record_metric("recommendation_algorithm_v2", "x", 1.0, user_id="u1")
    assert manager.metrics.events == 0


def test_guardrail_rollback_stops_test(manager):
    events = []
    manager.register_change_listener(events.append)
    test = "recommendation_algorithm_v2"
    assert manager.create_ab_test(
        seed_test(guardrail_metrics={"playback_errors": "lower_is_better"})
    )
    events.clear()
    # variant_b crashes playback for 30 % of its users, the others for 2 %.
    _simulate(
        manager,
        test,
        {"control": 0.02, "variant_a": 0.02, "variant_b": 0.30},
        metric="playback_errors",
    )
    # the periodic check runs off the recording thread: wait for it, with a deadline
    # (the stop goes live, then its change events are delivered: wait for both)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (
        manager.list_ab_tests()[test]["status"] == "stopped"
        and len([e for e in events if e.source == "guardrail_rollback"]) >= 2
    ):
        time.sleep(0.01)
    info = manager.list_ab_tests()[test]
    assert info["status"] == "stopped"
    assert "playback_errors worse in variant_b" in info["stopped_reason"]
    assert "variant_a" not in info["stopped_reason"]
    # all traffic to control, sticky for everyone
    assert set(variants_of(manager, test, USERS[:500]).values()) == {"control"}
    rollback = [e for e in events if e.source == "guardrail_rollback"]
    assert {e.config_path for e in rollback} == {f"flags.{test}", f"experiments.{test}"}
    audit = manager.audit.read(manager.audit.path)
    assert any(a["source"] == "guardrail_rollback" for a in audit)
    # the stop is persisted: a restart keeps serving control
    again = DynamicConfigurationManager(manager.flags_file, clock=manager._clock)
    assert again.get_ab_test_variant(test, {"user_id": "user-3"}) == "control"
    again.close()


def test_guardrail_does_not_fire_without_a_real_difference(manager):
    test = "recommendation_algorithm_v2"
    assert manager.create_ab_test(
        seed_test(guardrail_metrics={"playback_errors": "lower_is_better"})
    )
    rates = {"control": 0.05, "variant_a": 0.05, "variant_b": 0.05}
    _simulate(manager, test, rates, metric="playback_errors")
    assert manager.check_guardrails(test) == []
    assert manager.list_ab_tests()[test]["status"] == "active"


def test_cli_report_and_plot(manager, capsys, tmp_path):
    test = "recommendation_algorithm_v2"
    assert manager.create_ab_test(seed_test())
    _simulate(manager, test, {"control": 0.10, "variant_a": 0.12, "variant_b": 0.2})
    manager.exposures.flush()
    out_png = tmp_path / "out.png"
    rc = cli_main(
        ["experiment", "report", test, "--flags", manager.flags_file, "--plot", str(out_png)]
    )
    out = capsys.readouterr().out
    assert rc == 0
    in_process = manager.analyze(test)
    for v in SPLIT:
        assert f"{v:<16}" in out
    assert f"{in_process.exposures['variant_b']:>10}" in out
    assert "sample ratio check" in out
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rc = cli_main(
        ["experiment", "report", test, "--flags", manager.flags_file, "--json", "--mde", "0.02"]
    )
    data = json.loads(capsys.readouterr().out)
    assert data["exposures"] == in_process.exposures
    base = in_process.for_metric("click_through_rate")[0].value
    expected = stats.sample_size_proportions(base, 0.02)
    assert data["sample_size_per_variant"]["click_through_rate"] == expected
    assert rc == 0
    rc = cli_main(["experiment", "report", "nope", "--flags", manager.flags_file])
    err = capsys.readouterr().err
    assert rc == 1 and "nope: no such A/B test" in err and manager.flags_file in err
    assert cli_main(["experiment", "list", "--flags", manager.flags_file]) == 0
    assert test in capsys.readouterr().out


@settings(max_examples=examples(30), deadline=None)
@given(
    weights=st.lists(st.integers(1, 97), min_size=2, max_size=4),
    user=st.text(min_size=1, max_size=12),
)
def test_any_valid_split_serves_one_of_its_variants(tmp_path_factory, weights, user):
    rest = 100 - sum(weights[:-1])
    if rest <= 0:
        return
    split = {f"v{i}": float(w) for i, w in enumerate([*weights[:-1], rest])}
    m = DynamicConfigurationManager(
        state_dir=tmp_path_factory.getbasetemp() / "none", persist=False, log_exposures=False
    )
    t = seed_test(
        "h",
        start_date=datetime(2020, 1, 1, tzinfo=timezone.utc),
        end_date=datetime(2100, 1, 1, tzinfo=timezone.utc),
        traffic_split=split,
        configurations={k: {"k": k} for k in split},
    )
    assert m.create_ab_test(t), m.last_error
    v = m.get_ab_test_variant("h", {"user_id": user})
    assert v in split
    assert m.get_ab_test_config("h", v) == {"k": v}
    m.close()


def test_create_ab_test_accepts_a_mapping_and_rejects_junk(manager):
    spec = seed_test().__dict__.copy()
    assert manager.create_ab_test(spec) is True
    assert manager.create_ab_test({"test_name": "x", "bogus": 1}) is False
    assert "bogus" in manager.last_error
    assert manager.create_ab_test(42) is False
    assert "ABTestConfiguration" in manager.last_error


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_exposure_logging_keeps_working_in_a_forked_child(manager, tmp_path):
    """Pre-fork servers: the writer threads run in the child, started before its first
    request (as the manager starts them when it is built: no request waits for a thread
    to start)."""
    writers = (manager.exposures._writer, manager.metrics._writer)
    assert all(w._thread is not None and w._thread.is_alive() for w in writers)
    assert manager.create_ab_test(seed_test())
    manager.get_ab_test_variant("recommendation_algorithm_v2", {"user_id": "parent"})
    assert manager.exposures.flush(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12: fork with threads
        pid = os.fork()
    if pid == 0:  # child: report through the exit status only
        code = 1
        try:
            if not all(w._thread is not None and w._thread.is_alive() for w in writers):
                os._exit(3)
            manager.get_ab_test_variant("recommendation_algorithm_v2", {"user_id": "child"})
            manager.set_feature_flag("child_flag", True)  # the manager's lock is usable
            code = 0 if manager.exposures.flush(5) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    users = {e.user for e in read_exposures(tmp_path / "flags.exposures.jsonl")}
    assert users == {"parent", "child"}


def test_unhashable_user_id_bucketed_by_targeting_key_never_raises(manager):
    """user_id unusable (a list), targeting_key usable: the engine buckets by the
    targeting key, and the exposure path must neither raise nor log the list."""
    sink = MemorySink()
    manager.exposures.add_sink(sink)
    assert manager.create_ab_test(seed_test())
    ctx = {"user_id": ["x"], "targeting_key": "tk-1"}
    v = manager.get_ab_test_variant("recommendation_algorithm_v2", ctx)
    assert v in SPLIT
    assert manager.get_ab_test_variant("recommendation_algorithm_v2", ctx) == v
    assert manager.exposures.flush(5)
    assert [(e.user, e.variant) for e in sink.exposures] == [("tk-1", v)]

    class Nasty(str):  # a usable string to the engine, but its hash raises
        def __hash__(self):
            raise RuntimeError("no hash")

    v = manager.get_ab_test_variant("recommendation_algorithm_v2", {"user_id": Nasty("n-1")})
    assert v is None or v in SPLIT


def test_listener_editing_its_event_does_not_edit_the_live_test(manager):
    def meddle(event):
        for value in (event.old_value, event.new_value):
            if isinstance(value, dict):
                value.pop("control", None)
                value.get("traffic_split", {}).clear()
                value["holdout_percentage"] = 99

    manager.register_change_listener(meddle)
    assert manager.create_ab_test(seed_test())
    manager.set_holdout_percentage(5)
    record = manager.list_ab_tests()["recommendation_algorithm_v2"]
    assert record["control"] == "control" and record["traffic_split"] == SPLIT
    assert manager.snapshot.metadata == {"holdout_percentage": 5.0}
    report = manager.analyze("recommendation_algorithm_v2")
    assert report.control == "control" and report.split == SPLIT


def test_cli_plot_to_a_bad_path_is_a_clear_error(manager, capsys, tmp_path):
    assert manager.create_ab_test(seed_test())
    manager.exposures.flush()
    for bad in (tmp_path / "missing" / "out.png", tmp_path / "out.unknown-format"):
        rc = cli_main(
            ["experiment", "report", "recommendation_algorithm_v2", "--flags",
             manager.flags_file, "--plot", str(bad)]
        )  # fmt: skip
        err = capsys.readouterr().err
        assert rc == 1
        assert err.startswith(f"cfgcore: error: {bad}: cannot write the plot")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"description": None}, "description: must be a string"),
        ({"guardrail_metrics": None}, "guardrail_metrics: must be a mapping"),
        ({"metric_types": None}, "metric_types: must be a mapping"),
        ({"success_metrics": None}, "success_metrics: must be a list"),
        ({"success_metrics": "ctr"}, "success_metrics: must be a list"),
        ({"control": ["control"]}, "control:"),
    ],
)
def test_create_ab_test_rejects_wrong_types_instead_of_raising_or_persisting(
    manager, change, message
):
    """JSON payloads carry nulls: create_ab_test must return False (not raise), and
    must never persist a flags file the manager then cannot load at startup
    (description None used to be written as null: 'expected str, got null')."""
    assert manager.create_ab_test(seed_test(**change)) is False
    assert message in manager.last_error
    manager.set_feature_flag("x", True)  # persist the state
    again = DynamicConfigurationManager(manager.flags_file)
    again.close()


def test_register_custom_flag_with_a_null_description_keeps_the_file_loadable(manager):
    with pytest.raises(ConfigError, match="description"):
        manager.register_custom_feature_flag("custom_x", description=None)
    manager.set_feature_flag("x", True)
    DynamicConfigurationManager(manager.flags_file).close()


def test_periodic_guardrail_check_never_blocks_the_recording_thread(tmp_path, clock):
    """record_metric hands the Nth event's guardrail check to a background thread."""
    m = DynamicConfigurationManager(state_dir=tmp_path, clock=clock, guardrail_check_every=1)
    test = "recommendation_algorithm_v2"
    assert m.create_ab_test(seed_test(guardrail_metrics={"playback_errors": "lower_is_better"}))
    release, started = threading.Event(), threading.Event()
    calls = []

    def slow_check(name):
        calls.append(name)
        started.set()
        release.wait(10)
        return []

    m.check_guardrails = slow_check  # a stuck check: statistics or a slow disk
    user = next(u for u in USERS if m.get_ab_test_variant(test, {"user_id": u}) is not None)
    assert m.record_metric(test, "playback_errors", 1.0, user_context={"user_id": user})
    assert started.wait(10)
    t0 = time.monotonic()
    for _ in range(50):  # the check is still stuck; recording goes on, no second check
        assert m.record_metric(test, "playback_errors", 1.0, user_context={"user_id": user})
    assert time.monotonic() - t0 < 5 and calls == [test]
    release.set()
    m.close()


def test_stop_of_a_test_deleted_meanwhile_returns_false(manager):
    manager._tests["ghost"] = {"status": "active"}  # known to the check, gone from the flags
    assert manager.stop_ab_test("ghost") is False


def test_exposures_after_close_are_counted_as_dropped_and_flush_does_not_wait():
    written = []
    logger = ExposureLogger([written.extend])
    logger.log("t", "control", "u1")
    assert logger.flush(5) and len(written) == 1
    logger.close()
    logger.log("t", "control", "u2")  # a request racing a shutdown
    assert logger.stats()["dropped"] == 1
    t0 = time.monotonic()
    assert logger.flush(5) is True
    assert time.monotonic() - t0 < 1
    assert len(written) == 1


def test_holdout_edited_by_hand_in_the_file_applies_on_reload(manager):
    """The holdout flag is derived from metadata: a hand edit of the file must apply."""
    assert manager.create_ab_test(seed_test("t1"))
    assert all(v is not None for v in variants_of(manager, "t1").values())
    from cfgcore.snapshot import decode_snapshot, encode_snapshot

    path = manager.flags_file
    with open(path, "rb") as fh:
        snap = decode_snapshot(fh.read(), manager.format, file=path)
    edited = type(snap)(
        version=snap.version,
        flags=snap.flags,
        segments=snap.segments,
        experiments=snap.experiments,
        metadata={**snap.metadata, "holdout_percentage": 20},
    )
    with open(path, "wb") as fh:
        fh.write(encode_snapshot(edited, manager.format))
    assert manager.reload() is True
    held = sum(v is None for v in variants_of(manager, "t1").values())
    assert abs(held / len(USERS) - 0.20) < 0.03


def test_experiment_list_survives_a_hand_edited_split(tmp_path, capsys):
    from cfgcore.snapshot import Snapshot, encode_snapshot

    path = tmp_path / "flags.json"
    snap = Snapshot(
        experiments={
            "t": {"traffic_split": {"control": "fifty", "b": 50}},
            "u": {"traffic_split": 7},
        }
    )
    path.write_bytes(encode_snapshot(snap, "json"))
    assert cli_main(["experiment", "list", "--flags", str(path)]) == 0
    out = capsys.readouterr().out
    assert "control 'fifty'" in out and "b 50%" in out and "u  [active]" in out


def test_report_of_a_test_without_data_prints_no_nan(manager):
    assert manager.create_ab_test(seed_test())
    text = manager.analyze("recommendation_algorithm_v2").to_text()
    assert "nan" not in text and "control" in text


def test_a_stopped_test_collects_nothing_more(tmp_path, impl):
    """After stop_ab_test (or a guardrail rollback) everyone gets control, and nothing
    is collected: a later conversion of a user who saw another variant would be
    credited to control, and every new user logged as a control exposure would make
    the report cry sample-ratio mismatch."""
    from datetime import datetime, timedelta, timezone

    from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
    from cfgcore.engine import engine_class

    now = datetime.now(timezone.utc)
    m = DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl).from_snapshot({"flags": {}})
    )
    try:
        assert m.create_ab_test(ABTestConfiguration(
            "t", "", now - timedelta(days=1), now + timedelta(days=9),
            {"control": 50.0, "b": 50.0}, {"control": {}, "b": {}}, ["buy"]))  # fmt: skip
        users = [{"user_id": f"u{i}"} for i in range(400)]
        before = {u["user_id"]: m.get_ab_test_variant("t", u) for u in users}
        assert set(before.values()) == {"control", "b"}
        for u in users[:100]:
            assert m.record_metric("t", "buy", 1.0, user_context=u) is True
        m.stop_ab_test("t")
        assert {m.get_ab_test_variant("t", u) for u in users} == {"control"}
        assert not any(m.record_metric("t", "buy", 1.0, user_context=u) for u in users)
        for i in range(400, 800):
            assert m.get_ab_test_variant("t", {"user_id": f"u{i}"}) == "control"
        assert m.exposures is not None and m.exposures.flush(10)
        assert m.exposures.stats()["written"] == 400  # the users seen before the stop
        report = m.analyze("t")
        got = {v.variant: v for v in report.for_metric("buy")}
        first = [before[u["user_id"]] for u in users[:100]]
        assert got["b"].successes == first.count("b")
        assert got["control"].successes == first.count("control")
        assert not report.srm.mismatch
    finally:
        m.close()


def test_a_guardrail_rollback_is_not_subject_to_the_access_policy(manager, tmp_path):
    """The rollback is the test's own rule, set by whoever created it: a policy that
    denies this process's user everything still lets a harmful variant be rolled
    back, and the audit log names the actor "guardrail"."""
    from cfgcore.runtime import policy

    test = "recommendation_algorithm_v2"
    assert manager.create_ab_test(
        seed_test(guardrail_metrics={"playback_errors": "lower_is_better"})
    )
    deny_all = tmp_path / "policy.yaml"
    deny_all.write_text("roles:\n  none: {}\nactors:\n  '*': [none]\n")
    policy.set_policy(str(deny_all))
    try:
        with pytest.raises(PermissionError):
            manager.stop_ab_test(test)  # a person under this policy may not stop it
        _simulate(
            manager, test, {"control": 0.02, "variant_a": 0.02, "variant_b": 0.30},
            metric="playback_errors",
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and manager.list_ab_tests()[test]["status"] != "stopped":
            time.sleep(0.01)
        assert manager.list_ab_tests()[test]["status"] == "stopped"
    finally:
        policy.set_policy(None)

    # The audit entry follows the swap that made the test "stopped" (the rollback runs
    # on the metric writer's thread): wait for it rather than read the log at once.
    def rollbacks():
        audit = manager.audit.read(manager.audit.path)
        return [a for a in audit if a.get("source") == "guardrail_rollback"]

    assert wait_for(rollbacks, timeout=20)
    assert {a.get("actor") for a in rollbacks()} == {"guardrail"}
