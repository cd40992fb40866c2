"""ConfigurationManager: embedded defaults, layering, updates, events, audit, validation."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import threading
from collections.abc import Mapping

import msgspec
import pytest

import cfgcore
from cfgcore import get_config_manager
from cfgcore.config.files import FORMATS, read_config_file
from cfgcore.config.manager import ConfigurationManager, default_config_dir
from cfgcore.config.tree import iter_leaves
from cfgcore.errors import ConfigError, ConfigValidationError
from cfgcore.runtime.audit import AuditLog
from cfgcore.runtime.events import ConfigChangeEvent
from cfgcore.runtime.redaction import REDACTED, is_secret_key

DEFAULTS = default_config_dir()
FLAGS = os.path.join(os.path.dirname(DEFAULTS), "flags.yaml")
ENVS = ("development", "staging", "production", "test")
EMBEDDED = {"CFGCORE_CONFIG_DIR": "embedded"}  # the demo set, asked for on purpose


@pytest.fixture
def config_dir(tmp_path):
    """A private copy of the embedded set (config files + flags) that tests may edit."""
    d = tmp_path / "config"
    shutil.copytree(DEFAULTS, d)
    shutil.copy(FLAGS, d / "flags.yaml")
    return d


# ------------------------------------------------------------------ the seed, as written


def test_seed_quick_start_runs_against_the_embedded_defaults():
    manager = get_config_manager()
    config = manager.load_environment_config("staging")
    bitrate = config["music_streaming"]["audio_quality"]["premium_bitrate"]
    assert bitrate == 320
    assert manager.update_config("anomaly_detection.threshold", 0.85) is True
    assert manager.get("anomaly_detection.threshold") == 0.85
    assert cfgcore.get_config_manager() is manager


def test_seed_unit_test_and_usage_example(tmp_path, monkeypatch):
    # As a service would run it: a ./config directory scaffolded by `python -m
    # cfgcore.setup`, found by discovery (production refuses the embedded demo set).
    from cfgcore.cli.scaffold import main as scaffold

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CFGCORE_CONFIG_DIR", raising=False)
    assert scaffold(["--all-environments"]) == 0
    manager = ConfigurationManager()
    assert manager.config_dir == str(tmp_path / "config")
    assert manager.load_environment_config("test")["environment"] == "test"
    production_config = manager.load_environment_config("production")
    report = manager.validate_config(production_config)
    assert report.overall_valid
    from cfgcore.validation_engine import validate_configuration

    assert validate_configuration(production_config, "production").overall_valid
    manager.set_active_config(production_config)
    assert manager.environment == "production"
    premium_limit = production_config.get("user_limits", {}).get("premium_concurrent_streams", 0)
    assert premium_limit >= 5


@pytest.mark.parametrize("env", ENVS)
def test_every_embedded_environment_loads_validates_and_has_every_seed_block(env):
    config = ConfigurationManager(environ=EMBEDDED).load_environment_config(env)
    assert config["environment"] == env
    for block in (
        "music_streaming", "user_segments", "recommendation_engine", "gdpr_compliance",
        "caching_layers", "auto_scaling", "health_monitoring", "elasticsearch_cluster", "alerts",
        "user_limits", "anomaly_detection",
    ):  # fmt: skip
        assert block in config, block
    aq = config["music_streaming"]["audio_quality"]
    assert aq["bitrates"] == {"premium": 320, "high": 256, "normal": 128, "low": 96}
    assert aq["premium_bitrate"] == aq["bitrates"]["premium"]
    assert aq["standard_bitrate"] == aq["bitrates"]["normal"]
    assert "kafka_cluster" in config["data_sources"]
    assert config["app"]["debug"] is (env == "development")


@pytest.mark.parametrize("env", ENVS)
def test_all_transformations_keep_every_environment_valid(env):
    steps = ["env_var_substitution", "type_conversion", "duration_parsing", "size_parsing"]
    m = ConfigurationManager(environ=EMBEDDED, transforms=steps)
    m.load_environment_config(env)
    assert isinstance(m.get("caching_layers.l1_cache.size_limit"), int)
    assert m.get("security.jwt.access_token_ttl") == 900.0
    assert m.get("music_streaming.streaming.max_stream_latency") == 0.25


def test_unknown_transformation_step_fails_at_construction():
    with pytest.raises(ConfigError, match="unknown transformation step"):
        ConfigurationManager(environ={}, transforms=["env_var_substitution", "yaml_magic"])


def test_environment_overlays_differ_where_they_should():
    m = ConfigurationManager(environ={})
    staging, prod = m.build_config("staging"), m.build_config("production")
    assert staging["data_sources"]["kafka_cluster"]["bootstrap_servers"][0] == (
        "kafka-staging-1.internal:9092"
    )
    assert all("prod" in h for h in prod["elasticsearch_cluster"]["hosts"])
    assert prod["server"]["https_only"] is True
    assert all(o.startswith("https://") for o in prod["server"]["cors"]["allowed_origins"])
    assert prod["security"]["password_policy"]["min_length"] > 12


def test_embedded_defaults_hold_no_literal_secrets():
    ref = re.compile(r"^\$\{[A-Z_][A-Z0-9_]*(:-[^}]*)?\}$")
    for name in os.listdir(DEFAULTS):
        layer = read_config_file(os.path.join(DEFAULTS, name))  # raw: before ${VAR} substitution
        for path, value in iter_leaves(layer.data):
            if path and is_secret_key(path) and isinstance(value, str):
                assert ref.match(value), f"{name}: {'.'.join(path)} is a literal secret"
                default = ref.match(value).group(1) or ""
                assert default in ("", ":-") or "://" in default, f"{name}: {path} default"


# ------------------------------------------------------------------ layering and settings


def test_layer_order_base_env_profile_geo_envvars_runtime(tmp_path):
    d = tmp_path / "cfg"
    (d / "profiles").mkdir(parents=True)
    (d / "base.yaml").write_text(
        "k:\n  a: base\n  b: base\n  c: base\n  d: base\n  e: base\n  f: base\n"
    )
    (d / "staging.yaml").write_text("k:\n  b: env\n  c: env\n  d: env\n  e: env\n  f: env\n")
    (d / "profiles" / "p.yaml").write_text(
        "overrides:\n  k: {c: prof, d: prof, e: prof, f: prof}\n  ref: ${PROFILE_REF:-fallback}\n"
    )
    (d / "profiles" / "geo.yaml").write_text(
        "kind: geographic\noverrides:\n  k: {d: geo, e: geo, f: geo}\n"
    )
    environ = {
        "CONFIG_ENVIRONMENT": "staging",
        "CONFIG_PROFILE": "p",
        "CONFIG_GEOGRAPHIC_PROFILE": "geo",
        "CFGCORE__K__E": "envvar",
        "CFGCORE__K__F": "envvar",
    }
    m = ConfigurationManager(d, environ=environ)
    m.load_environment_config()
    assert m.update_config("k.f", "runtime")
    assert dict(m["k"]) == {
        "a": "base", "b": "env", "c": "prof", "d": "geo", "e": "envvar", "f": "runtime",
    }  # fmt: skip
    kinds = [o.kind for o in m.explain("k.f").chain]
    assert kinds == [
        "runtime", "environment_variables", "geographic_profile", "deployment_profile",
        "environment", "base",
    ]  # fmt: skip
    assert m.explain("k.e").winner.env_var == "CFGCORE__K__E"
    assert m.explain("k.c").winner.file.endswith("p.yaml")
    assert m.get("ref") == "fallback"  # ${VAR} works in profile files too
    assert m.explain("k.b").winner.file.endswith("staging.yaml")
    assert m.explain("k.b").winner.line == 2


def test_environment_variable_layer_from_the_issue():
    environ = {"CFGCORE__MUSIC_STREAMING__AUDIO_QUALITY__BITRATES__PREMIUM": "256"}
    m = ConfigurationManager(environ=environ)
    m.load_environment_config("staging")
    assert m.get("music_streaming.audio_quality.bitrates.premium") == 256
    assert "CFGCORE__MUSIC_STREAMING" in str(
        m.explain("music_streaming.audio_quality.bitrates.premium")
    )


def test_settings_resolve_argument_then_environment_then_default(config_dir):
    environ = {"CONFIG_ENVIRONMENT": "production", "CONFIG_PROFILE": "high_volume"}
    m = ConfigurationManager(config_dir, environ=environ)
    m.load_environment_config()
    assert m.environment == "production" and m.snapshot.profile == "high_volume"
    assert m.get("performance.worker_threads") == 32
    m.load_environment_config("test", profile="default")
    assert m.environment == "test" and m.snapshot.profile is None
    assert ConfigurationManager(config_dir, environ={}).environment == "development"


def test_secrets_come_from_environment_variables(config_dir):
    m = ConfigurationManager(config_dir, environ={"KAFKA_SASL_PASSWORD": "hunter2-kafka"})
    m.load_environment_config("staging")
    assert m.get("data_sources.kafka_cluster.sasl_password") == "hunter2-kafka"
    assert m.get("caching_layers.l2_cache.url") == "redis://redis-staging.internal:6379/0"


def test_missing_required_variable_names_file_key_and_variable(config_dir):
    (config_dir / "staging.yaml").write_text(
        (config_dir / "staging.yaml").read_text() + "\nextra:\n  token: ${MUST_EXIST}\n"
    )
    m = ConfigurationManager(config_dir, environ={})
    with pytest.raises(ConfigError) as err:
        m.load_environment_config("staging")
    text = str(err.value)
    assert "staging.yaml" in text and "extra.token" in text and "MUST_EXIST" in text


def test_mixed_formats_and_helpful_file_errors(tmp_path):
    d = tmp_path / "cfg"
    d.mkdir()
    (d / "base.toml").write_text('[server]\nport = 8080\nhost = "0.0.0.0"\n')
    (d / "staging.json").write_text('{"server": {"port": 9090}, "environment": "staging"}')
    m = ConfigurationManager(d, environ={}, validate=False)
    m.load_environment_config("staging")
    assert dict(m["server"]) == {"port": 9090, "host": "0.0.0.0"}
    assert m.flags_path() is None and m.flags.is_enabled("anything", {}) is False
    with pytest.raises(ConfigError, match="no configuration file for environment 'prod'.*staging"):
        m.load_environment_config("prod")
    (d / "staging.yaml").write_text("server: {}\n")
    with pytest.raises(ConfigError, match="ambiguous"):
        m.load_environment_config("staging")
    with pytest.raises(ConfigError, match="invalid environment name"):
        m.load_environment_config("../../etc/passwd")
    assert m.get("server.port") == 9090  # failed loads changed nothing


def test_bad_file_keeps_previous_config_and_names_file_and_line(config_dir):
    m = ConfigurationManager(config_dir, environ={})
    m.load_environment_config("staging")
    version = m.version
    (config_dir / "staging.yaml").write_text("environment: staging\nserver:\n  port: [1,\n")
    with pytest.raises(ConfigError, match=r"staging\.yaml:\d+"):
        m.load_environment_config("staging")
    assert m.version == version and m.get("environment") == "staging"
    assert isinstance(m.last_error, ConfigError)


# ------------------------------------------------------------------ reading


def test_get_reads_paths_lists_and_defaults_without_raising():
    m = ConfigurationManager(environ={})
    m.load_environment_config("staging")
    assert m.get("music_streaming.audio_quality.bitrates.premium") == 320
    assert m.get("alerts.0.name") == "config_validation_failure"
    assert m.get("alerts.9.name", "none") == "none"
    assert m.get("music_streaming.nope", 7) == 7
    assert m.get("music_streaming.audio_quality.premium_bitrate.deeper") is None
    assert m.get(None, "d") == "d" and m.get(42, "d") == "d" and m.get("", "d") is not None
    # repeated reads are cached per snapshot and still follow updates
    assert m.get("anomaly_detection.threshold") == 0.8
    assert m.update_config("anomaly_detection.threshold", 0.9)
    assert m.get("anomaly_detection.threshold") == 0.9
    assert "music_streaming" in m and len(m) == len(m.config) and set(m) == set(m.keys())
    assert isinstance(m, Mapping) and dict(m.items()) == dict(m.config)


def test_active_config_is_read_only():
    m = ConfigurationManager(environ={})
    config = m.load_environment_config("staging")
    with pytest.raises(TypeError, match="read-only"):
        config["music_streaming"]["audio_quality"]["premium_bitrate"] = 1
    with pytest.raises(TypeError):
        m["alerts"].append({})


def test_typed_view_with_msgspec_keeps_unknown_keys():
    class AudioQuality(msgspec.Struct):
        bitrates: dict[str, int]
        codecs: list[str]
        adaptive_streaming: bool
        premium_bitrate: int

    m = ConfigurationManager(environ={})
    m.load_environment_config("staging")
    view = m.section("music_streaming.audio_quality", AudioQuality)
    assert view.premium_bitrate == 320 and "flac" in view.codecs
    assert m.get("music_streaming.audio_quality.quality_adaptation_threshold") == 0.8


def test_typed_view_of_known_sections_is_cached_per_snapshot(config_dir):
    m = ConfigurationManager(config_dir, environ={})
    m.load_environment_config("staging")
    typed = m.typed()
    assert typed.music_streaming.audio_quality.bitrates.premium == 320
    assert typed.data_sources.kafka_cluster.consumer_configuration.group_id == "ai-agent-staging-v2"
    assert m.typed() is typed
    assert m.update_config("music_streaming.audio_quality.premium_bitrate", 321)
    assert m.typed().music_streaming.audio_quality.premium_bitrate == 321


class Probe(msgspec.Struct):
    period: str  # the files say 10 (an int): the typed view must reject it


class Checks(msgspec.Struct):
    liveness_probe: Probe
    readiness_probe: Probe


def test_typed_section_error_names_the_nested_path():
    m = ConfigurationManager(environ={})
    m.load_environment_config("staging")
    with pytest.raises(
        ConfigError, match=r"health_monitoring\.comprehensive_health_checks\.liveness_probe\.period"
    ):
        m.section("health_monitoring.comprehensive_health_checks", Checks)
    with pytest.raises(ConfigError, match=r"base\.yaml:\d+"):
        m.section("health_monitoring.comprehensive_health_checks", Checks)


class Levels(msgspec.Struct):
    priority_levels: dict[str, str]  # the files say premium: 1 (an int)
    segment_specific_features: dict[str, list[int]]


def test_typed_section_error_names_the_key_of_a_mapping_and_its_line():
    """msgspec names no key of a mapping (``$.priority_levels[...]``): the problem was
    rendered ``user_segments["priority_levels["][""][""].]``, without a line."""
    m = ConfigurationManager(environ={})
    m.load_environment_config("staging")
    with pytest.raises(ConfigError) as err:
        m.section("user_segments", Levels)
    (problem,) = err.value.problems
    assert problem.path == "user_segments.priority_levels.premium", str(err.value)
    assert problem.message == "expected str, got int"
    assert problem.file.endswith("base.yaml") and problem.line is not None
    with open(problem.file) as f:
        assert f.read().splitlines()[problem.line - 1].strip() == "premium: 1"
    with pytest.raises(ConfigError) as err:
        m.section(("user_segments", "segment_specific_features"), dict[str, list[int]])
    assert err.value.problems[0].path.startswith("user_segments.segment_specific_features.")
    assert err.value.problems[0].path.endswith("[0]"), str(err.value)


def test_readers_never_see_a_half_applied_update(config_dir):
    m = ConfigurationManager(config_dir, environ={}, validate=False)
    m.load_environment_config("test")
    stop = threading.Event()
    torn = []

    def reader():
        while not stop.is_set():
            c = m.config
            a, b = c["pair"]["a"], c["pair"]["b"]
            if a != b:
                torn.append((a, b))

    m.set_active_config({**m.config, "pair": {"a": 0, "b": 0}})
    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for i in range(1, 300):
        m.set_active_config({**m.config, "pair": {"a": i, "b": i}})
    stop.set()
    for t in threads:
        t.join()
    assert torn == [] and m.get("pair.a") == 299


# ------------------------------------------------------------------ changing


def test_update_config_emits_one_event_per_leaf_and_audits(config_dir, tmp_path):
    audit = tmp_path / "audit.jsonl"
    m = ConfigurationManager(config_dir, environ={}, audit_log=audit)
    m.load_environment_config("staging")
    seen: list[ConfigChangeEvent] = []
    m.register_change_listener(seen.append)
    v = m.version
    assert m.update_config("caching_layers.l1_cache", {"type": "in_memory", "ttl": 60})
    paths = {e.config_path: (e.old_value, e.new_value) for e in seen}
    assert paths == {
        "caching_layers.l1_cache.ttl": (300, 60),
        "caching_layers.l1_cache.size_limit": ("2GB", None),
        "caching_layers.l1_cache.eviction_policy": ("lru", None),
    }
    assert {e.source for e in seen} == {"update_config"} and {e.version for e in seen} == {v + 1}
    entries = AuditLog.read(audit)
    assert [e["kind"] for e in entries] == ["load", "change", "change", "change"]
    assert all(e["environment"] == "staging" for e in entries)


def test_update_config_failure_changes_nothing_and_says_why(config_dir):
    m = ConfigurationManager(config_dir, environ={})
    m.load_environment_config("production")
    seen = []
    m.register_change_listener(seen.append)
    before = m.snapshot
    assert m.update_config("music_streaming.audio_quality.bitrates.premium", "high") is False
    # Listeners hear about the refusal (issue 10), and about nothing else.
    assert m.snapshot is before and [e.kind for e in seen] == ["error"]
    assert "music_streaming.audio_quality.bitrates.premium" in str(m.last_error)
    assert m.update_config("user_limits.premium_concurrent_streams", 2) is False
    assert "premium_concurrent_streams" in str(m.last_error)
    assert m.update_config("music_streaming.audio_quality.premium_bitrate.x", 1) is False
    assert m.update_config("", 1) is False
    assert m.get("user_limits.premium_concurrent_streams") == 6 and m.snapshot is before


def test_update_values_get_the_same_transformations_as_files(config_dir):
    env = {"NEW_KAFKA_PASSWORD": "rotated-s3cret"}
    m = ConfigurationManager(config_dir, environ=env)
    m.load_environment_config("production")
    # a reference is resolved, and validation judges the reference, not the secret
    assert m.update_config("data_sources.kafka_cluster.sasl_password", "${NEW_KAFKA_PASSWORD}")
    assert m.get("data_sources.kafka_cluster.sasl_password") == "rotated-s3cret"
    assert m.update_config("data_sources.kafka_cluster.sasl_password", "${MISSING_VAR}") is False
    assert "MISSING_VAR" in str(m.last_error)
    assert "data_sources.kafka_cluster.sasl_password" in str(m.last_error)
    # a literal secret in production is refused
    assert m.update_config("data_sources.kafka_cluster.sasl_password", "literal-pw") is False
    assert m.get("data_sources.kafka_cluster.sasl_password") == "rotated-s3cret"


def test_type_fallback_when_no_validation_engine(config_dir, monkeypatch):
    import cfgcore.config.checks as checks_module

    monkeypatch.setattr(checks_module, "validation_engine", lambda: None)
    m = ConfigurationManager(config_dir, environ={})
    m.load_environment_config("staging")
    assert m.update_config("anomaly_detection.threshold", 1) is True  # int where float: fine
    assert m.update_config("anomaly_detection.enabled", 1) is False  # int where bool: not
    assert "expected bool, got int" in str(m.last_error)
    assert m.update_config("brand_new.key", "anything") is True


def test_runtime_updates_survive_reload_and_reset_on_environment_change(config_dir):
    m = ConfigurationManager(config_dir, environ={})
    m.load_environment_config("staging")
    assert m.update_config("anomaly_detection.threshold", 0.9)
    (config_dir / "staging.yaml").write_text(
        (config_dir / "staging.yaml").read_text() + "\nanomaly_detection:\n  sample_size: 42\n"
    )
    assert m.reload()
    assert (
        m.get("anomaly_detection.threshold") == 0.9 and m.get("anomaly_detection.sample_size") == 42
    )
    m.load_environment_config("test")
    assert m.get("anomaly_detection.threshold") == 0.8


def test_set_active_config_keeps_provenance_and_deletes(config_dir):
    m = ConfigurationManager(config_dir, environ={})
    config = dict(m.load_environment_config("staging"))
    config["alerts"] = []
    del config["elasticsearch_cluster"]
    seen = []
    m.register_change_listener(seen.append)
    m.set_active_config(config)
    assert m.get("alerts") == [] and "elasticsearch_cluster" not in m
    assert {e.source for e in seen} == {"set_active_config"}
    assert m.explain("alerts").winner.kind == "runtime"
    assert m.explain("elasticsearch_cluster.hosts").winner.status == "deleted"
    assert m.explain("server.port").winner.file.endswith("base.yaml")
    # survives a reload: the runtime layer records the deletion
    (config_dir / "staging.yaml").write_text((config_dir / "staging.yaml").read_text() + "\n# x\n")
    assert m.reload() and "elasticsearch_cluster" not in m


def test_set_active_config_rejects_invalid_and_migration_source(config_dir):
    m = ConfigurationManager(config_dir, environ={})
    config = dict(m.load_environment_config("production"))
    before = m.snapshot
    bad = {**config, "app": {**config["app"], "debug": True}}
    with pytest.raises(ConfigValidationError, match="app.debug"):
        m.set_active_config(bad)
    assert m.snapshot is before
    seen = []
    m.register_change_listener(seen.append)
    m.apply_migrated_config({**config, "migrated": True})
    assert [(e.config_path, e.source) for e in seen] == [("migrated", "migration")]


def test_profile_switch_at_runtime_is_audited(config_dir):
    m = ConfigurationManager(config_dir, environ={})
    m.load_environment_config("production")
    m.set_profile("high_volume", "EU")
    assert m.get("performance.worker_threads") == 32 and m.get("geographic_profile") == "EU"
    assert {e["source"] for e in m.audit.entries()[1:]} == {"profile"}
    # the validation engine's EU GDPR switches now apply: turning consent off is blocked
    assert m.update_config("gdpr_compliance.consent_required", False) is False
    with pytest.raises(ConfigError, match="unknown geographic profile 'MARS'"):
        m.set_profile("high_volume", "MARS")
    assert m.get("geographic_profile") == "EU" and m.audit.entries()[-1]["kind"] == "error"


# ------------------------------------------------------------------ listeners, audit


def test_sync_async_and_failing_listeners(caplog):
    m = ConfigurationManager(environ={})
    m.load_environment_config("staging")
    got_sync, got_async = [], []

    class ConfigurationChangeListener:  # the seed's listener, verbatim shape
        async def on_config_changed(self, event):
            await asyncio.sleep(0)
            got_async.append((event.config_path, event.old_value, event.new_value, event.source))

    def broken(event):
        raise RuntimeError("listener bug")

    m.register_change_listener(broken)
    m.register_change_listener(ConfigurationChangeListener())
    m.register_change_listener(got_sync.append)
    with caplog.at_level(logging.ERROR, logger="cfgcore.events"):
        assert m.update_config("anomaly_detection.threshold", 0.85)
    assert [e.new_value for e in got_sync] == [0.85]
    assert m.events.wait_idle(5)
    assert got_async == [("anomaly_detection.threshold", 0.8, 0.85, "update_config")]
    assert "listener bug" in caplog.text
    assert m.unregister_change_listener(broken) and not m.unregister_change_listener(broken)
    m.close()


def test_async_listener_runs_on_the_callers_loop():
    m = ConfigurationManager(environ={})
    m.load_environment_config("staging")
    loops = []

    async def listener(event):
        loops.append(asyncio.get_running_loop())

    m.register_change_listener(listener)

    async def main():
        assert m.update_config("anomaly_detection.threshold", 0.85)
        for _ in range(100):
            if loops:
                break
            await asyncio.sleep(0.001)
        return asyncio.get_running_loop()

    loop = asyncio.run(main())
    assert loops == [loop]


def test_build_config_can_show_references_instead_of_resolved_secrets(config_dir):
    m = ConfigurationManager(config_dir, environ={"KAFKA_SASL_PASSWORD": "k-s3cret"})
    resolved = m.build_config("staging")
    judged = m.build_config("staging", keep_references=True)
    assert resolved["data_sources"]["kafka_cluster"]["sasl_password"] == "k-s3cret"
    assert judged["data_sources"]["kafka_cluster"]["sasl_password"] == "${KAFKA_SASL_PASSWORD:-}"
    assert judged["server"] == resolved["server"]


def test_secrets_stay_out_of_reprs_and_explanations(config_dir):
    m = ConfigurationManager(config_dir, environ={"POSTGRES_PASSWORD": "pg-s3cret-value"})
    m.load_environment_config("staging")
    assert m.get("data_sources.postgresql.password") == "pg-s3cret-value"
    assert "pg-s3cret-value" not in str(m.explain("data_sources.postgresql.password"))
    assert "pg-s3cret-value" not in str(m.explain("data_sources.postgresql"))
    event = ConfigChangeEvent("db.password", "old-s3cret", "pg-s3cret-value", "test", 1, 0.0)
    assert "s3cret" not in repr(event) and event.new_value == "pg-s3cret-value"


def test_audit_log_and_debounce_from_config_management(config_dir):
    base = config_dir / "base.yaml"
    base.write_text(
        base.read_text()
        .replace("audit_log: null", "audit_log: audit/changes.jsonl")
        .replace("reload_debounce_ms: 50", "reload_debounce_ms: 30")
    )
    (config_dir / "audit").mkdir()
    m = ConfigurationManager(config_dir, environ={})
    m.load_environment_config("staging")
    assert m.update_config("anomaly_detection.threshold", 0.9)
    entries = AuditLog.read(config_dir / "audit" / "changes.jsonl")
    assert [e["kind"] for e in entries] == ["load", "change"]
    assert m.reloader._debounce(50) == 30
    explicit = ConfigurationManager(config_dir, environ={}, audit_log=config_dir / "x.jsonl")
    explicit.load_environment_config("staging")
    assert explicit.audit.path == str(config_dir / "x.jsonl")


def test_audit_log_redacts_secrets(config_dir, tmp_path):
    audit = tmp_path / "audit.jsonl"
    m = ConfigurationManager(config_dir, environ={}, audit_log=audit)
    m.load_environment_config("staging")
    # literal secrets are refused by validation, and the refusal is audited, redacted
    assert not m.update_config("security.jwt.signing_key", "super-secret-signing-key")
    assert "super-secret-signing-key" not in str(m.last_error)
    # the same (empty) value through a reference: not a change, nothing to audit
    assert m.update_config("security.jwt.signing_key", "${JWT_SIGNING_KEY:-}")
    m.update_config("caching_layers.l2_cache.url", "redis://app:pa55word@cache:6379/0")
    raw = audit.read_text()
    assert "super-secret-signing-key" not in raw and "pa55word" not in raw
    entries = [json.loads(line) for line in raw.splitlines()]
    assert [e["path"] for e in entries] == [
        "",
        "security.jwt.signing_key",
        "caching_layers.l2_cache.url",
    ]
    assert entries[1]["kind"] == "error" and entries[1]["new"] == REDACTED
    assert entries[2]["new"] == f"redis://app:{REDACTED}@cache:6379/0"


# ------------------------------------------------------------------ flags, debug


def test_flags_engine_serves_the_directory_flags_file(config_dir):
    m = ConfigurationManager(config_dir, environ={})
    m.load_environment_config("staging")
    premium = {"user_id": "12345", "user_segment": "premium", "region": "EU"}
    assert m.flags.is_enabled("enhanced_anomaly_detection", premium) is True
    assert m.engine is m.flags
    (config_dir / "flags.yaml").write_text(
        "version: 1\nflags:\n  x:\n    default: 'nope'\n  bad: [\n"
    )
    assert m.reload() is False  # both trees rejected together
    assert "flags.yaml" in str(m.last_error)
    assert m.flags.is_enabled("enhanced_anomaly_detection", premium) is True


def test_enable_debug_mode_reports_whats_live(caplog):
    m = ConfigurationManager(environ={})
    m.load_environment_config("staging")
    try:
        info = m.enable_debug_mode()
        assert info["environment"] == "staging"
        assert [layer["kind"] for layer in info["layers"]] == ["base", "environment", "runtime"]
        assert info["implementation"] in ("c", "py")
        with caplog.at_level(logging.DEBUG, logger="cfgcore"):
            m.load_environment_config("staging")
        assert "built staging" in caplog.text
    finally:
        logging.getLogger("cfgcore").setLevel(logging.NOTSET)


def test_lazy_exports():
    assert cfgcore.ConfigurationManager is ConfigurationManager
    assert cfgcore.ConfigChangeEvent is ConfigChangeEvent
    assert set(FORMATS.values()) == {"yaml", "json", "toml"}


# ------------------------------------------------------------------ review: regressions


def test_rejected_set_active_config_is_audited_once(config_dir, tmp_path):
    audit = tmp_path / "audit.jsonl"
    m = ConfigurationManager(config_dir, environ={}, audit_log=audit)
    config = dict(m.load_environment_config("production"))
    bad = {**config, "app": {**config["app"], "debug": True}}
    with pytest.raises(ConfigValidationError):
        m.set_active_config(bad)
    entries = AuditLog.read(audit)
    assert [e["kind"] for e in entries] == ["load", "error"]
    assert [e["kind"] for e in m.audit.entries()] == ["load", "error"]


def test_update_below_a_scalar_or_list_names_the_full_key_path(config_dir):
    m = ConfigurationManager(config_dir, environ={})
    m.load_environment_config("staging")
    assert m.update_config("music_streaming.audio_quality.premium_bitrate.x", 1) is False
    assert "music_streaming.audio_quality.premium_bitrate: " in str(m.last_error)
    assert m.update_config("data_sources.kafka_cluster.bootstrap_servers.0", "k:9092") is False
    assert "data_sources.kafka_cluster.bootstrap_servers: " in str(m.last_error)


def test_redaction_masks_the_whole_password_of_a_url():
    from cfgcore.runtime.redaction import redact

    # urllib and redis-py split user info at the last "@" before the host: "p@ss" is the
    # password there, and none of it may reach a log or the audit trail.
    assert redact("cache.url", "redis://app:p@ss@cache:6379/0") == (
        f"redis://app:{REDACTED}@cache:6379/0"
    )
    assert redact("db.link", "postgres://u:pw@db/app?mail=a@b") == (
        f"postgres://u:{REDACTED}@db/app?mail=a@b"
    )
    assert redact("urls", "redis://a:x@h1,redis://b:y@h2") == (
        f"redis://a:{REDACTED}@h1,redis://b:{REDACTED}@h2"
    )


def test_a_secret_updated_through_a_reference_does_not_block_later_reloads(config_dir):
    m = ConfigurationManager(config_dir, environ={"NEW_KAFKA_PASSWORD": "rotated-s3cret"})
    m.load_environment_config("production")
    assert m.update_config("data_sources.kafka_cluster.sasl_password", "${NEW_KAFKA_PASSWORD}")
    prod = config_dir / "production.yaml"
    prod.write_text(prod.read_text() + "\nanomaly_detection:\n  sample_size: 4242\n")
    # the validator still judges "${NEW_KAFKA_PASSWORD}", not the secret it resolved to
    assert m.reload() is True, m.last_error
    assert m.get("anomaly_detection.sample_size") == 4242
    assert m.get("data_sources.kafka_cluster.sasl_password") == "rotated-s3cret"
    m.load_environment_config("production")
    assert m.get("data_sources.kafka_cluster.sasl_password") == "rotated-s3cret"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_audit_log_is_usable_in_a_child_forked_while_another_thread_was_writing(config_dir):
    import select
    import warnings

    m = ConfigurationManager(config_dir, environ={}, audit_log=config_dir / "audit.jsonl")
    m.load_environment_config("staging")
    writing, release = threading.Event(), threading.Event()

    def writer():  # a thread caught inside AuditLog.record() when the process forks
        with m.audit._lock:
            writing.set()
            release.wait(10)

    t = threading.Thread(target=writer)
    t.start()
    assert writing.wait(5)
    r, w = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # child: the writer thread does not exist here
        code = 1
        try:
            os.close(r)
            done = threading.Event()

            def update():
                m.update_config("anomaly_detection.threshold", 0.9)
                done.set()

            threading.Thread(target=update, daemon=True).start()
            os.write(w, b"1" if done.wait(5) else b"0")
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    try:
        ready, _, _ = select.select([r], [], [], 10)
        answer = os.read(r, 1) if ready else b""
    finally:
        release.set()
        t.join()
        os.close(r)
        os.waitpid(pid, 0)
    assert answer == b"1", "update_config in the forked child hung on the audit log's lock"


def test_a_relative_flags_file_stays_the_same_file_after_a_chdir(config_dir, tmp_path, monkeypatch):
    flags_dir = tmp_path / "flags"
    flags_dir.mkdir()
    (flags_dir / "flags.yaml").write_text("version: 1\nflags:\n  only_here:\n    default: 'on'\n")
    monkeypatch.chdir(tmp_path)
    m = ConfigurationManager(config_dir, environ={}, flags_file="flags/flags.yaml")
    m.load_environment_config("staging")
    monkeypatch.chdir(config_dir)  # a daemon that changes directory after start-up
    assert m.flags_path() == str(flags_dir / "flags.yaml")
    (config_dir / "staging.yaml").write_text(
        (config_dir / "staging.yaml").read_text() + "\nanomaly_detection:\n  sample_size: 7\n"
    )
    assert m.reload() is True, m.last_error
    assert m.flags.is_enabled("only_here", {}) is True


def test_a_relative_audit_log_stays_the_same_file_after_a_chdir(config_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    m = ConfigurationManager(config_dir, environ={}, audit_log="audit.jsonl")
    m.load_environment_config("staging")
    monkeypatch.chdir(config_dir)  # a daemon that changes directory after start-up
    assert m.update_config("anomaly_detection.threshold", 0.9)
    assert [e["kind"] for e in AuditLog.read(tmp_path / "audit.jsonl")] == ["load", "change"]
    assert not (config_dir / "audit.jsonl").exists()


def test_validate_config_validates_even_when_activations_skip_validation(config_dir):
    m = ConfigurationManager(config_dir, environ={}, validate=False)
    config = dict(m.load_environment_config("production"))
    bad = {**config, "app": {**config["app"], "debug": True}}
    report = m.validate_config(bad)  # asked explicitly: a real report, not a blank pass
    assert report.overall_valid is False
    assert any("app.debug" in str(r.key_path) for r in report.blocking)


def test_update_config_with_the_delete_marker_removes_the_key_now_not_after_a_reload(config_dir):
    m = ConfigurationManager(config_dir, environ={})
    m.load_environment_config("staging")
    assert m.update_config("brand_new.section", {"a": 1})
    assert m.update_config("brand_new.section", "__delete__")
    assert m.get("brand_new.section", "absent") == "absent"
    assert m.get("brand_new") == {}
    (config_dir / "staging.yaml").write_text((config_dir / "staging.yaml").read_text() + "\n#\n")
    assert m.reload() is True
    assert m.get("brand_new.section", "absent") == "absent"


def test_reload_before_any_successful_load_returns_false_instead_of_raising(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    m = ConfigurationManager(empty, environ={})
    assert m.reload() is False  # the docstring's contract: rejected input -> False
    assert "no configuration file for environment 'development'" in str(m.last_error)
    assert str(empty) in str(m.last_error)


def test_reload_sees_a_changed_variable_behind_a_reference_in_a_file(config_dir):
    # staging.yaml says sasl_password: ${KAFKA_SASL_PASSWORD}; the variable has no CFGCORE
    # prefix, and a reload must not take "same files, same CFGCORE* variables" for unchanged.
    environ = {"KAFKA_SASL_PASSWORD": "first-secret"}
    m = ConfigurationManager(config_dir, environ=environ)
    m.load_environment_config("staging")
    version = m.version
    environ["UNRELATED_VARIABLE"] = "x"  # not referenced: still nothing to do
    assert m.reload() is True and m.version == version
    environ["KAFKA_SASL_PASSWORD"] = "rotated-secret"
    assert m.reload() is True, m.last_error
    assert m.get("data_sources.kafka_cluster.sasl_password") == "rotated-secret"
    assert m.version == version + 1
    assert m.reload() is True and m.version == version + 1  # and now unchanged again


def test_get_config_manager_refuses_another_directory_once_it_serves_one(tmp_path, monkeypatch):
    """Only the first call's config_dir counts: a later call naming another directory
    got the first directory's manager without a word."""
    import cfgcore.config.manager as manager_module

    first, other = tmp_path / "first", tmp_path / "other"
    for d in (first, other):
        d.mkdir()
        (d / "development.yaml").write_text("app: {name: x}\n")
    monkeypatch.setattr(manager_module, "_default", None)
    manager = manager_module.get_config_manager(first)
    monkeypatch.chdir(tmp_path)
    assert manager_module.get_config_manager() is manager
    assert manager_module.get_config_manager(first) is manager
    assert manager_module.get_config_manager("first") is manager  # the same, relative
    with pytest.raises(ConfigError) as refused:
        manager_module.get_config_manager(other)
    message = str(refused.value)
    assert message.startswith(f"{other}: get_config_manager(): the process-wide manager")
    assert f"already serves {first} (argument)" in message
    assert "ConfigurationManager(config_dir)" in message
    assert manager_module._default is manager
    manager.close()
