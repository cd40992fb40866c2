"""cfgcore's metrics after real loads, reloads, flag documents, exposures and followers,
read through cfgcore.metrics.snapshot() and through a Prometheus text-format scrape.

The registry is process-wide, so every test compares values before and after."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import datetime, timedelta

import pytest

import cfgcore.metrics
from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import REASON_CLASSES
from cfgcore.experiments.dynamic import DynamicConfigurationManager
from cfgcore.experiments.writer import BackgroundWriter
from cfgcore.observability.instruments import OPERATIONS
from cfgcore.observability.registry import registry
from cfgcore.runtime.atomicio import atomic_write_text
from tests.redis_server import wait_for


def value(name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` (0 if none)."""
    family = cfgcore.metrics.snapshot()["metrics"][name]
    total = 0.0
    for sample in family["samples"]:
        if all(sample["labels"].get(k) == v for k, v in labels.items()):
            total += sample["value"] if "value" in sample else sample["count"]
    return total


def loads(op: str, result: str, reason: str = "none") -> float:
    return value("cfgcore_config_loads_total", operation=op, result=result, reason=reason)


@pytest.fixture
def manager(bundled_config):
    m = ConfigurationManager(bundled_config, environ={})
    yield m
    m.close()


def test_a_load_counts_times_and_validates(manager):
    before = (loads("load", "ok"), value("cfgcore_config_validations_total", result="passed"))
    hist = value("cfgcore_config_load_duration_seconds", operation="load")
    manager.load_environment_config("staging")
    assert loads("load", "ok") == before[0] + 1
    assert value("cfgcore_config_validations_total", result="passed") == before[1] + 1
    assert value("cfgcore_config_load_duration_seconds", operation="load") == hist + 1
    mine = {"config_dir": manager.config_dir, "environment": "staging"}
    assert value("cfgcore_config_version", **mine) == 1
    assert 0 <= value("cfgcore_config_snapshot_age_seconds", **mine) < 60
    assert value("cfgcore_config_reload_failing", **mine) == 0


def _break_yaml(d):
    (d / "staging.yaml").write_text("music_streaming: [unclosed\n")


def _bad_type(d):
    text = (d / "staging.yaml").read_text()
    (d / "staging.yaml").write_text(text.replace("min_replicas: 2", "min_replicas: many"))


def _empty_file(d):
    (d / "staging.yaml").write_text("")


def _too_deep(d):
    (d / "staging.yaml").write_text("a: " + "[" * 200 + "]" * 200 + "\n")


def _unreadable(d):
    os.remove(d / "staging.yaml")
    os.mkdir(d / "staging.yaml")  # exists, but cannot be read as a file


def _missing_variable(d):
    text = (d / "staging.yaml").read_text()
    (d / "staging.yaml").write_text(text + "\nextra_section:\n  v: ${CFGCORE_TEST_UNSET_VAR}\n")


def _bad_flags(d):
    (d / "flags.yaml").write_text("version: 1\nflags:\n  x:\n    default: 'nope'\n")


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (_break_yaml, "parse"),
        (_bad_type, "validation"),
        (_empty_file, "incomplete"),  # on reload an emptied file is a write in progress
        (_too_deep, "limits"),
        (_unreadable, "io"),
        (_missing_variable, "transform"),
        (_bad_flags, "flags"),
    ],
)
def test_a_rejected_reload_is_counted_under_its_reason_class(
    manager, bundled_config, mutate, reason
):
    manager.load_environment_config("staging")
    before = loads("reload", "rejected", reason)
    ok_before = loads("reload", "ok")
    mutate(bundled_config)
    assert manager.reload() is False
    assert loads("reload", "rejected", reason) == before + 1, manager.last_error
    assert loads("reload", "ok") == ok_before
    mine = {"config_dir": manager.config_dir}
    assert value("cfgcore_config_reload_failing", **mine) == 1
    assert value("cfgcore_config_version", **mine) == 1  # the last good version serves


def test_an_unchanged_reload_and_a_changed_one(manager, bundled_config):
    manager.load_environment_config("staging")
    unchanged, ok = loads("reload", "unchanged"), loads("reload", "ok")
    assert manager.reload() is True
    assert loads("reload", "unchanged") == unchanged + 1
    path = bundled_config / "staging.yaml"
    atomic_write_text(path, path.read_text() + "\nextra: 1\n")
    assert manager.reload() is True
    assert loads("reload", "ok") == ok + 1
    assert value("cfgcore_config_version", config_dir=manager.config_dir) == 2


def test_updates_profiles_and_the_success_ratio(manager):
    manager.load_environment_config("staging")
    failed = loads("update", "rejected", "validation")
    assert manager.update_config("auto_scaling.min_replicas", "many") is False
    assert loads("update", "rejected", "validation") == failed + 1
    profile = loads("profile", "rejected", "profile")
    with pytest.raises(Exception, match="unknown deployment profile"):
        manager.set_profile("no_such_profile")
    assert loads("profile", "rejected", "profile") == profile + 1
    passed = value("cfgcore_config_validations_total", result="passed")
    total = passed + value("cfgcore_config_validations_total", result="failed")
    ratio = value("cfgcore_config_validation_success_ratio")
    assert ratio == pytest.approx(passed / total) and 0 < ratio < 1


def test_listener_failures_are_counted_and_do_not_stop_the_change(manager):
    manager.load_environment_config("staging")

    def broken(event):
        raise RuntimeError("listener bug")

    manager.register_change_listener(broken)
    before = value("cfgcore_change_listener_failures_total", mode="sync")
    assert manager.update_config("extra.key", 1) is True
    assert value("cfgcore_change_listener_failures_total", mode="sync") == before + 1


def test_flag_documents_swapped_and_refused(tmp_path):
    dyn = DynamicConfigurationManager(state_dir=tmp_path)
    try:
        url = dyn.store.url
        ok, bad = (value("cfgcore_flag_documents_total", store=url, result=r)
                   for r in ("ok", "rejected"))  # fmt: skip
        dyn.set_feature_flag("enhanced_anomaly_detection", True, 50.0)
        assert value("cfgcore_flag_documents_total", store=url, result="ok") == ok + 1
        # someone writes a document that does not compile: refused, the live one serves
        atomic_write_text(dyn.flags_file, '{"version": 1, "flags": {"x": {"default": "no"}}}')
        assert dyn.reload() is False
        assert value("cfgcore_flag_documents_total", store=url, result="rejected") == bad + 1
        assert value("cfgcore_flags_last_document_rejected", store=url) == 1
        assert value("cfgcore_flags_version", store=url) == dyn._live.document.version
        assert value("cfgcore_flags", store=url) == len(dyn.snapshot.flags)
    finally:
        dyn.close()


def _ab_test():
    from cfgcore.dynamic_config import ABTestConfiguration

    now = datetime.now()
    return ABTestConfiguration(
        "metrics_test", "exposure counting", now - timedelta(days=1), now + timedelta(days=1),
        {"control": 50, "treatment": 50}, {"control": {"x": 1}, "treatment": {"x": 2}}, ["ctr"],
    )  # fmt: skip


def test_exposures_are_counted_per_experiment_and_variant_never_per_user(tmp_path):
    dyn = DynamicConfigurationManager(state_dir=tmp_path)
    try:
        assert dyn.create_ab_test(_ab_test()) is True
        before = value("cfgcore_ab_exposures_total", experiment="metrics_test")
        served = [dyn.get_ab_test_variant("metrics_test", {"user_id": f"u-{i}"})
                  for i in range(300)]  # fmt: skip
        for i in range(300):  # the same users again: not new participants
            dyn.get_ab_test_variant("metrics_test", {"user_id": f"u-{i}"})
        assert dyn.exposures.flush()
        assert value("cfgcore_ab_exposures_total", experiment="metrics_test") == before + 300
        for variant in ("control", "treatment"):
            got = value("cfgcore_ab_exposures_total", experiment="metrics_test", variant=variant)
            assert got >= served.count(variant)
        text = json.dumps(cfgcore.metrics.snapshot())
        assert "u-1" not in text  # user ids never become labels
    finally:
        dyn.close()


def test_dropped_events_are_harvested_from_the_writer():
    gate = threading.Event()
    writer = BackgroundWriter(lambda batch: gate.wait(5), name="cfgcore-droptest",
                              max_pending=2, batch_size=1)  # fmt: skip
    try:
        before = value("cfgcore_dropped_events_total", stream="droptest")
        accepted = [writer.append(i) for i in range(10)]
        dropped = accepted.count(False)
        assert dropped >= 7  # one in the writer's hands at most, two waiting
        assert value("cfgcore_dropped_events_total", stream="droptest") == before + dropped
        assert value("cfgcore_dropped_events_total", stream="droptest") == before + dropped
    finally:
        gate.set()
        writer.close()


def test_flag_checks_and_config_reads_never_touch_the_registry(tmp_path, manager, monkeypatch):
    """The hot paths: no registry lock is taken by request threads (exposures are counted
    on the writer thread)."""
    manager.load_environment_config("staging")
    dyn = DynamicConfigurationManager(state_dir=tmp_path)
    try:
        assert dyn.create_ab_test(_ab_test())
        reg = registry()
        takers: list[int] = []
        real = reg.lock

        class Spy:
            def __enter__(self):
                takers.append(threading.get_ident())
                return real.__enter__()

            def __exit__(self, *exc):
                return real.__exit__(*exc)

        monkeypatch.setattr(reg, "lock", Spy())
        for i in range(500):
            manager.get("music_streaming.audio_quality.premium_bitrate")
            manager["music_streaming"]
            dyn.is_feature_enabled("enhanced_anomaly_detection", {"user_id": str(i)})
            dyn.get_ab_test_variant("metrics_test", {"user_id": f"hot-{i}"})
            manager.flags.is_enabled("enhanced_anomaly_detection", {"user_id": str(i)})
        assert threading.get_ident() not in takers
    finally:
        dyn.close()


def test_every_label_comes_from_a_bounded_set(manager):
    manager.load_environment_config("staging")
    manager.update_config("auto_scaling.min_replicas", "many")
    snap = cfgcore.metrics.snapshot()
    json.dumps(snap, allow_nan=False)  # plain JSON, no NaN or infinity
    for sample in snap["metrics"]["cfgcore_config_loads_total"]["samples"]:
        labels = sample["labels"]
        assert labels["operation"] in OPERATIONS
        assert labels["result"] in ("ok", "unchanged", "rejected")
        assert labels["reason"] in (*REASON_CLASSES, "none")
    for name, family in snap["metrics"].items():
        assert name.startswith("cfgcore_")
        if family["type"] == "counter":
            assert name.endswith("_total")
        if family["type"] == "histogram":
            assert name.endswith("_seconds")
        assert not any("user" in label for label in family["labels"])


# --------------------------------------------------------------------------- Prometheus


def _scrape() -> dict[str, dict[tuple, float]]:
    """Text exposition -> prometheus_client's parser -> {sample name: {labels: value}}."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.parser import text_string_to_metric_families

    from cfgcore.observability.prometheus import exposition

    text = exposition(CollectorRegistry()).decode()
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def _get(scraped, name, **labels):
    return sum(v for k, v in scraped.get(name, {}).items() if set(labels.items()) <= set(k))


def test_prometheus_text_round_trip_follows_real_loads(manager, bundled_config):
    pytest.importorskip("prometheus_client")
    first = _scrape()
    manager.load_environment_config("staging")
    _break_yaml(bundled_config)
    assert manager.reload() is False
    second = _scrape()
    key = {"operation": "load", "result": "ok", "reason": "none"}
    assert _get(second, "cfgcore_config_loads_total", **key) == _get(
        first, "cfgcore_config_loads_total", **key) + 1  # fmt: skip
    bad = {"operation": "reload", "result": "rejected", "reason": "parse"}
    assert _get(second, "cfgcore_config_loads_total", **bad) == _get(
        first, "cfgcore_config_loads_total", **bad) + 1  # fmt: skip
    mine = {"config_dir": manager.config_dir}
    assert _get(second, "cfgcore_config_reload_failing", **mine) == 1
    buckets = second["cfgcore_config_load_duration_seconds_bucket"]
    inf = [v for k, v in buckets.items() if ("le", "+Inf") in k and ("operation", "load") in k]
    assert inf == [_get(second, "cfgcore_config_load_duration_seconds_count", operation="load")]
    assert 0 < _get(second, "cfgcore_config_validation_success_ratio") <= 1
    # the same numbers as the plain snapshot
    assert _get(second, "cfgcore_config_loads_total", **bad) == loads("reload", "rejected", "parse")


def test_registering_twice_is_harmless():
    pytest.importorskip("prometheus_client")
    from prometheus_client import CollectorRegistry

    from cfgcore.observability.prometheus import register

    reg = CollectorRegistry()
    assert register(reg) is register(reg)


# --------------------------------------------------------------------------- Redis


def test_follower_state_rejections_and_cache_reads(redis_server, tmp_path):
    from cfgcore.runtime.redis_store import RedisFlagStore

    url = redis_server.url + f"?namespace=m&cache={tmp_path / 'cache.msgpack'}&poll=0.2"
    store = RedisFlagStore(url)
    writer = RedisFlagStore(url)
    try:
        writer.update(lambda s: s)
        live = {"store": store.url, "document": "flags"}
        store.watch(lambda doc: None)
        wait_for(lambda: store.connected)
        assert value("cfgcore_flag_store_connected", **live) == 1
        writer.update(lambda s: s)
        wait_for(lambda: store.version == writer.version)
        assert value("cfgcore_flag_store_version", **live) == writer.version
        assert value("cfgcore_flag_store_documents_total", **live, result="accepted") >= 1
        assert value("cfgcore_flag_store_last_contact_age_seconds", **live) < 30
        # a corrupt document: counted as rejected, the last good one keeps serving
        redis_server.client().hset("{m}:flags", mapping={"version": 99, "checksum": "x"})
        wait_for(lambda: store.stats["rejected"] == 1)
        assert value("cfgcore_flag_store_documents_total", **live, result="rejected") == 1
    finally:
        store.close()
        writer.close()
    redis_server.stop()
    cached = RedisFlagStore(url)
    try:
        cached.read()
        mine = {"store": cached.url, "document": "flags"}
        assert value("cfgcore_flag_store_cache_reads_total", **mine) >= 1
        assert value("cfgcore_flag_store_serving_cache", **mine) == 1
    finally:
        cached.close()


def test_snapshot_age_grows_between_collections(manager):
    manager.load_environment_config("staging")
    mine = {"config_dir": manager.config_dir}
    first = value("cfgcore_config_snapshot_age_seconds", **mine)
    time.sleep(0.05)
    assert value("cfgcore_config_snapshot_age_seconds", **mine) > first


# --------------------------------------------------------------------------- evaluations


def test_flag_evaluations_and_errors_from_the_compiled_core(make):
    engine = make({"version": 1, "flags": {
        "metrics_flag": {"variants": {"on": True, "off": False}, "default": "on"}}})  # fmt: skip
    key = {"flag": "metrics_flag", "variant": "on", "reason": "STATIC"}
    before = value("cfgcore_flag_evaluations_total", **key)
    missing = value("cfgcore_flag_evaluation_errors_total", code="FLAG_NOT_FOUND")
    for _ in range(5):
        assert engine.is_enabled("metrics_flag", {"user_id": "u"}) is True
    engine.is_enabled("metrics_flag_typo", {})
    assert value("cfgcore_flag_evaluations_total", **key) == before + 5
    assert value("cfgcore_flag_evaluation_errors_total", code="FLAG_NOT_FOUND") == missing + 1
    # every error code is reported from the start, at 0 until it happens
    codes = cfgcore.metrics.snapshot()["metrics"]["cfgcore_flag_evaluation_errors_total"]
    assert {s["labels"]["code"] for s in codes["samples"]} >= {
        "FLAG_NOT_FOUND", "TYPE_MISMATCH", "INVALID_CONTEXT", "GENERAL"}  # fmt: skip
    scraped = _scrape() if _has_prometheus() else None
    if scraped is not None:
        assert _get(scraped, "cfgcore_flag_evaluations_total", **key) == before + 5


def test_health_probes_are_not_counted_as_evaluations(manager):
    manager.load_environment_config("staging")
    manager.flags  # noqa: B018
    errors = value("cfgcore_flag_evaluation_errors_total")
    evaluations = value("cfgcore_flag_evaluations_total")
    for _ in range(20):
        assert manager.health().live
    assert value("cfgcore_flag_evaluation_errors_total") == errors
    assert value("cfgcore_flag_evaluations_total") == evaluations


def _has_prometheus() -> bool:
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return False
    return True
