"""The validation engine as a whole: the seed's API, custom rules, levels, robustness,
the embedded defaults, a deliberately broken production config and the manager hook."""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cfgcore
from cfgcore.config.manager import ConfigurationManager
from cfgcore.config.schema import ConfigSchema
from cfgcore.config.tree import thaw
from cfgcore.configuration_profiles import DeploymentProfile
from cfgcore.errors import ConfigError, ConfigValidationError
from cfgcore.validation.walk import MAX_DEPTH, TreeRule
from cfgcore.validation_engine import (
    SEVERITIES,
    ConfigValidator,
    ValidationReport,
    ValidationResult,
    ValidationRule,
    get_config_validator,
    validate_configuration,
)
from tests.fuzz import examples
from tests.texts import any_text

ENVIRONMENTS = ("development", "staging", "production", "test")
# The installed package's copy, so the suite also runs against a wheel (wheels/build.sh).
DEFAULTS = os.path.join(os.path.dirname(cfgcore.__file__), "defaults", "config")


@pytest.fixture(scope="module")
def manager():
    return ConfigurationManager(environ={})


@pytest.fixture(scope="module")
def _production(manager):
    return manager.build_config("production")


@pytest.fixture
def production(_production):
    """A fresh, mutable copy of the embedded production config for each test."""
    return thaw(_production)


# --- the seed's examples, as written ----------------------------------------------------------


class CustomBusinessRule(ValidationRule):
    """The seed's custom rule, verbatim apart from the import."""

    def validate(self, config, context=None):
        results = []
        premium_limit = config.get("user_limits", {}).get("premium_concurrent_streams", 0)
        if premium_limit < 5:
            results.append(
                self.create_result(
                    False,
                    "Premium users should have at least 5 concurrent streams",
                    suggested_fix="Increase premium_concurrent_streams to at least 5",
                )
            )
        return results


def test_seed_comprehensive_validation_example(manager):
    config = manager.build_config("staging")
    validator = get_config_validator()
    report = validator.validate_config(config, "staging_config")
    assert report.overall_valid
    assert report.config_name == "staging_config"
    assert report.environment == "staging"  # taken from the config's own `environment`
    summary = validator.get_validation_summary(report)
    assert "staging_config" in summary and "PASSED" in summary


def test_seed_integration_test_config_is_valid():
    config = {"music_streaming": {"audio_quality": {"premium_bitrate": 320}}}
    report = validate_configuration(config)
    assert report.overall_valid
    assert report.results == []


def test_seed_custom_rule_on_the_shared_validator():
    validator = get_config_validator()
    validator.add_rule(CustomBusinessRule("premium_stream_limit"))
    try:
        report = validate_configuration({"user_limits": {"premium_concurrent_streams": 2}})
        custom = report.by_rule("premium_stream_limit")
        assert len(custom) == 1
        assert custom[0].severity == "error" and not custom[0].is_valid
        assert custom[0].suggested_fix == "Increase premium_concurrent_streams to at least 5"
        assert not report.overall_valid
        # the seed's rule defaults a missing key to 0, so it fires where the built-in stays quiet
        assert validate_configuration({}).by_rule("premium_stream_limit")
    finally:
        assert validator.remove_rule("premium_stream_limit")
    assert validate_configuration({}).overall_valid


def test_seed_quick_start_loop_over_invalid_results(production):
    production["user_limits"]["premium_concurrent_streams"] = 1
    report = validate_configuration(production, "production")
    messages = [r.message for r in report.results if not r.is_valid]
    assert messages == [
        "user_limits.premium_concurrent_streams: premium users get 1 concurrent stream(s); "
        "at least 5 are promised"
    ]


# --- rules, levels and overrides --------------------------------------------------------------


def test_add_rule_with_same_id_replaces():
    validator = ConfigValidator(builtin=False)
    validator.add_rule(CustomBusinessRule("limit", severity="warning"))
    validator.add_rule(CustomBusinessRule("limit", severity="critical"))
    assert [r.rule_id for r in validator.rules] == ["limit"]
    report = validator.validate_config({})
    assert [r.severity for r in report.results] == ["critical"]


def test_add_rule_rejects_non_rules():
    with pytest.raises(TypeError):
        ConfigValidator().add_rule(lambda config: [])  # type: ignore[arg-type]


def test_rule_needs_an_id_and_a_known_severity():
    with pytest.raises(ValueError):
        CustomBusinessRule("")
    with pytest.raises(ValueError):
        CustomBusinessRule("x", severity="fatal")


def test_disable_and_relevel_per_environment():
    cfg = {"auto_scaling": {"min_replicas": 5, "max_replicas": 2}}
    validator = ConfigValidator()
    validator.disable_rule("streaming.auto_scaling", environment="development")
    validator.set_severity("streaming.auto_scaling", "warning", environment="staging")
    assert validator.validate_config(cfg, "c", "development").results == []
    staging = validator.validate_config(cfg, "c", "staging")
    assert [r.severity for r in staging.results] == ["warning"] and staging.overall_valid
    assert [r.severity for r in validator.validate_config(cfg, "c", "production").results] == [
        "error"
    ]
    validator.enable_rule("streaming.auto_scaling", environment="development")
    assert len(validator.validate_config(cfg, "c", "development").results) == 1


def test_structure_checks_can_be_disabled_one_by_one():
    validator = ConfigValidator()
    validator.disable_rule("structure.unknown_key")
    cfg = {"gdpr_compliance": {"consent_requird": True, "logs_days": "x"}}
    assert validator.validate_config(cfg).results == []
    validator.set_severity("structure.unknown_key", "info")
    assert [r.severity for r in validator.validate_config(cfg).results] == ["info", "info"]


def test_unknown_rule_ids_and_levels_are_refused():
    validator = ConfigValidator()
    with pytest.raises(KeyError):
        validator.disable_rule("no.such.rule")
    with pytest.raises(ValueError):
        validator.set_severity("streaming.auto_scaling", "fatal")


def test_environment_aliases_and_config_environment():
    cfg = {"environment": "prod", "debug": True}
    report = validate_configuration(cfg)
    assert report.environment == "production"
    assert [r.severity for r in report.results] == ["critical"]
    # an explicit environment wins over the config's own
    assert validate_configuration(cfg, "development").results == []


def test_results_are_ordered_most_severe_first(production):
    production["app"]["debug"] = True  # critical
    production["recommendation_engine"]["diversityfactor"] = 0.1  # warning
    production["user_limits"]["premium_concurrent_streams"] = 1  # error
    report = validate_configuration(production, "production")
    assert [r.severity for r in report.results] == ["critical", "error", "warning"]


def test_report_shape_and_json():
    report = validate_configuration({"auto_scaling": {"min_replicas": 5, "max_replicas": 2}})
    assert isinstance(report, ValidationReport)
    doc = json.loads(json.dumps(report.to_dict()))
    assert doc["overall_valid"] is False
    assert doc["counts"] == {"critical": 0, "error": 1, "warning": 0, "info": 0}
    assert doc["results"][0]["key_path"] == "auto_scaling.min_replicas"
    assert report.blocking == report.failures
    assert report.config_name == "config"
    assert report.duration_ms >= 0 and report.rules_run == len(get_config_validator().rules)


def test_raise_for_blocking_builds_a_config_validation_error():
    report = validate_configuration({"auto_scaling": {"min_replicas": 5, "max_replicas": 2}})
    with pytest.raises(ConfigValidationError) as info:
        report.raise_for_blocking(file="production.yaml")
    (problem,) = info.value.problems
    assert problem.path == "auto_scaling.min_replicas" and problem.file == "production.yaml"
    assert str(problem).startswith("production.yaml: auto_scaling.min_replicas: min_replicas (5)")
    assert "[streaming.auto_scaling]" in str(problem) and "fix:" in str(problem)
    validate_configuration({}).raise_for_blocking(file="x.yaml")  # valid: no exception


def test_passing_results_from_custom_rules_do_not_block():
    class Passing(ValidationRule):
        def validate(self, config, context=None):
            return [self.create_result(True, "all good", key_path="x")]

    validator = ConfigValidator([Passing("passing", severity="critical")], builtin=False)
    report = validator.validate_config({})
    assert report.overall_valid and report.failures == [] and len(report.results) == 1


def test_context_reaches_custom_rules():
    seen = {}

    class Spy(ValidationRule):
        def validate(self, config, context=None):
            seen.update(context)
            return []

    validator = ConfigValidator([Spy("spy")], builtin=False)
    validator.validate_config({"geographic_profile": "eea"}, "name", "prod")
    assert seen["environment"] == "production" and seen["production"] is True
    assert seen["config_name"] == "name" and seen["geographic_profile"] == "EU"


# --- robustness: a rule bug or odd data never raises ------------------------------------------


def test_a_crashing_rule_is_reported_not_raised():
    class Broken(ValidationRule):
        def validate(self, config, context=None):
            raise RuntimeError("secret-value-in-exception")

    class Garbage(ValidationRule):
        def validate(self, config, context=None):
            return ["not a result"]

    validator = ConfigValidator([Broken("broken"), Garbage("garbage")])
    report = validator.validate_config({"auto_scaling": {"min_replicas": 5, "max_replicas": 2}})
    by_id = {r.rule_id: r for r in report.results}
    assert set(by_id) == {"broken", "garbage", "streaming.auto_scaling"}  # others still ran
    assert by_id["broken"].severity == "error" and not report.overall_valid
    assert "RuntimeError" in by_id["broken"].message
    assert "secret-value-in-exception" not in json.dumps(report.to_dict())


def test_a_crashing_tree_rule_is_reported_once():
    class Boom(TreeRule):
        def wants_key(self, key):
            return True

        def visit(self, path, key, value, parent, parent_key, ctx, out):
            raise ValueError("boom")

    validator = ConfigValidator([Boom("boom")])
    report = validator.validate_config({"a": 1, "b": {"c": 2}})
    assert [r.rule_id for r in report.results] == ["boom"]


@pytest.mark.parametrize("config", [None, [], "text", 42, [1, 2]])
def test_non_mapping_config_is_a_type_finding(config):
    report = validate_configuration(config)  # type: ignore[arg-type]
    assert [r.rule_id for r in report.results] == ["structure.type"]
    assert not report.overall_valid


def test_self_referencing_and_very_deep_trees():
    # Refused as activation refuses them (nested past the loaders' limit), not passed
    # (the loop) or merely warned about (structure.depth): set_active_config refused
    # both while validation called them valid.
    loop: dict = {"a": {}}
    loop["a"]["back"] = loop
    report = validate_configuration(loop)
    assert not report.overall_valid
    assert [r.rule_id for r in report.results] == ["structure.limits"]
    deep: dict = {}
    node = deep
    for _ in range(MAX_DEPTH + 50):
        node["n"] = {}
        node = node["n"]
    report = validate_configuration(deep)
    assert [(r.rule_id, r.severity) for r in report.results] == [("structure.limits", "critical")]


KNOWN = [
    "music_streaming",
    "audio_quality",
    "bitrates",
    "premium",
    "high",
    "codecs",
    "caching_layers",
    "l1_cache",
    "l2_cache",
    "ttl",
    "auto_scaling",
    "min_replicas",
    "max_replicas",
    "gdpr_compliance",
    "data_retention",
    "alerts",
    "ab_tests",
    "traffic_split",
    "configurations",
    "password",
    "api_key",
    "password_policy",
    "min_length",
    "allowed_origins",
    "allow_credentials",
    "debug",
    "algorithm",
    "rollout_percentage",
    "user_limits",
    "geographic_profile",
    "environment",
    "hosts",
    "bootstrap_servers",
    "data_sources",
    "kafka_cluster",
    "elasticsearch_cluster",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    any_text(max_size=12),
    st.sampled_from(
        [
            "${VAR}",
            "${VAR:-x}",
            "http://h.example/x",
            "postgresql://u:p@h/db",
            "3DES",
            "md5",
            "*",
            "EU",
            "production",
            "30s",
            "2GB",
            "lz4",
        ]
    ),
)
keys = st.one_of(st.sampled_from(KNOWN), any_text(max_size=8), st.integers(-3, 3))
trees = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(keys, children, max_size=5),
    ),
    max_leaves=40,
)


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=st.dictionaries(keys, trees, max_size=6), env=st.sampled_from([None, *ENVIRONMENTS]))
def test_arbitrary_data_never_raises(config, env):
    report = validate_configuration(config, env)
    for r in report.results:
        assert isinstance(r, ValidationResult)
        assert r.severity in SEVERITIES and isinstance(r.key_path, str) and r.message
    assert report.overall_valid == (not any(r.blocking for r in report.results))
    json.dumps(report.to_dict())


@settings(max_examples=examples(100), deadline=None)
@given(
    secret=st.from_regex(r"[A-Za-z0-9]{12,24}", fullmatch=True),
    key=st.sampled_from(["password", "db_password", "api_key", "client_secret", "auth_token"]),
    section=st.sampled_from(["data_sources", "security", "integrations", "elasticsearch_cluster"]),
    env=st.sampled_from(ENVIRONMENTS),
)
def test_secrets_are_never_echoed(secret, key, section, env):
    config = {
        section: {key: secret, "dsn": f"postgresql://app:{secret}@db.internal/x"},
        "bad": {"nested": {key: [secret]}},
    }
    report = validate_configuration(config, env)
    assert {"security.plaintext_secret", "security.url_credentials"} <= {
        r.rule_id for r in report.results
    }
    text = json.dumps(report.to_dict()) + get_config_validator().get_validation_summary(report)
    assert secret not in text


# --- the embedded defaults --------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("geo", [None, "EU", "US", "APAC"])
def test_embedded_defaults_validate_clean(manager, env, geo):
    config = manager.build_config(env, geographic_profile=geo)
    report = validate_configuration(config, env)
    assert report.failures == [], get_config_validator().get_validation_summary(report)


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("profile", list(DeploymentProfile))
def test_deployment_profiles_never_block(manager, env, profile):
    report = validate_configuration(manager.build_config(env, profile=profile), env)
    assert report.blocking == []


def test_typed_schema_decodes_the_production_defaults(production):
    import msgspec

    typed = msgspec.convert(production, ConfigSchema)
    assert typed.music_streaming.audio_quality.bitrates.premium == 320
    assert typed.auto_scaling.max_replicas >= typed.auto_scaling.min_replicas


# --- a deliberately broken production config: each finding exactly once ---------------------


def _broken_production(base):
    cfg = copy.deepcopy(base)
    aq = cfg["music_streaming"]["audio_quality"]
    cfg["app"]["debug"] = True
    cfg["server"]["cors"]["allowed_origins"] = ["*"]
    cfg["security"]["encryption"]["algorithm"] = "3DES"
    cfg["security"]["password_policy"]["min_length"] = 8
    cfg["security"]["api_keys"]["spotify_api_key"] = "sk_live_0123456789"
    cfg["data_sources"]["postgresql"]["dsn"] = "postgresql://music_app:pw123@db/music"
    cfg["music_streaming"]["cdn"]["base_url"] = "http://cdn.music.example.com/audio"
    cfg["geographic_profile"] = "EU"
    cfg["gdpr_compliance"]["consent_required"] = False
    del cfg["gdpr_compliance"]["right_to_be_forgotten"]
    cfg["gdpr_compliance"]["data_retention"]["logs_days"] = 400
    aq["bitrates"]["high"] = 384
    aq["bitrates"]["low"] = "low"
    aq["codecs"] = ["aac", "mp3", "ogg"]
    aq["premium_bitrate"] = 640
    aq["adaptive_streaming"] = "yes"
    cfg["ab_tests"] = {
        "rec_v2": {
            "traffic_split": {"control": 50, "variant_a": 30, "variant_b": 30},
            "configurations": {"control": {}, "variant_a": {}},
        }
    }
    cfg["feature_flags"] = {"new_player": {"rollout_percentage": 150}}
    cfg["user_limits"]["premium_concurrent_streams"] = 3
    cfg["auto_scaling"]["min_replicas"] = 30
    cfg["auto_scaling"]["target_memory_utilization"] = 120
    cfg["caching_layers"]["l3_cache"]["ttl"] = 60
    cfg["caching_layers"]["l1_cache"]["eviction_policy"] = "mru"
    cfg["caching_layers"]["l2_cache"]["size_limit"] = "16 gigabytes"
    cfg["elasticsearch_cluster"]["index_configuration"]["shards"] = 0
    del cfg["health_monitoring"]["comprehensive_health_checks"]["liveness_probe"]["path"]
    cfg["recommendation_engine"]["models"]["content_based"]["metadata_weigth"] = 0.2
    cfg["user_segments"]["segment_specific_features"]["vip"] = ["lossless"]
    return cfg


EXPECTED_BROKEN = {
    ("security.debug_in_production", "app.debug"): "critical",
    ("security.cors_credentials", "server.cors.allowed_origins"): "critical",
    ("security.weak_algorithm", "security.encryption.algorithm"): "critical",
    ("security.password_policy", "security.password_policy.min_length"): "error",
    ("security.plaintext_secret", "security.api_keys.spotify_api_key"): "critical",
    ("security.url_credentials", "data_sources.postgresql.dsn"): "critical",
    ("security.https_required", "music_streaming.cdn.base_url"): "error",
    ("gdpr.consent_required", "gdpr_compliance.consent_required"): "critical",
    ("gdpr.right_to_be_forgotten", "gdpr_compliance.right_to_be_forgotten"): "critical",
    ("gdpr.retention_limits", "gdpr_compliance.data_retention.logs_days"): "error",
    ("streaming.bitrate_order", "music_streaming.audio_quality.bitrates.high"): "error",
    ("structure.type", "music_streaming.audio_quality.bitrates.low"): "error",
    ("streaming.codec_limits", "music_streaming.audio_quality.premium_bitrate"): "error",
    ("structure.type", "music_streaming.audio_quality.adaptive_streaming"): "error",
    ("streaming.experiment_split", "ab_tests.rec_v2.traffic_split"): "error",
    ("streaming.experiment_variants", "ab_tests.rec_v2.traffic_split.variant_b"): "error",
    ("streaming.rollout_range", "feature_flags.new_player.rollout_percentage"): "error",
    ("streaming.premium_concurrent_streams", "user_limits.premium_concurrent_streams"): "error",
    ("streaming.auto_scaling", "auto_scaling.min_replicas"): "error",
    ("streaming.auto_scaling", "auto_scaling.target_memory_utilization"): "error",
    ("streaming.cache_ttl_order", "caching_layers.l3_cache.ttl"): "error",
    ("structure.allowed_values", "caching_layers.l1_cache.eviction_policy"): "error",
    ("structure.format", "caching_layers.l2_cache.size_limit"): "error",
    ("structure.range", "elasticsearch_cluster.index_configuration.shards"): "error",
    (
        "structure.required",
        "health_monitoring.comprehensive_health_checks.liveness_probe.path",
    ): "error",
    (
        "structure.unknown_key",
        "recommendation_engine.models.content_based.metadata_weigth",
    ): "warning",
    ("structure.reference", "user_segments.segment_specific_features.vip"): "error",
}


def test_broken_production_config_yields_each_finding_exactly_once(production):
    report = validate_configuration(_broken_production(production), "production")
    found = Counter((r.rule_id, r.key_path) for r in report.failures)
    assert found == Counter(EXPECTED_BROKEN.keys())
    assert {(r.rule_id, r.key_path): r.severity for r in report.failures} == EXPECTED_BROKEN
    assert all(r.suggested_fix for r in report.failures)
    assert "sk_live_0123456789" not in json.dumps(report.to_dict())
    assert "pw123" not in json.dumps(report.to_dict())


def test_the_same_broken_config_is_milder_in_development(production):
    cfg = _broken_production(production)
    cfg["environment"] = "development"
    report = validate_configuration(cfg, "development")
    levels = {r.rule_id: r.severity for r in report.failures}
    assert "security.debug_in_production" not in levels
    assert "security.https_required" not in levels
    assert levels["security.plaintext_secret"] == "warning"
    assert levels["security.password_policy"] == "warning"
    assert levels["gdpr.consent_required"] == "error"


# --- the configuration manager validates before activating ----------------------------------


def test_manager_blocks_invalid_update_and_keeps_last_good():
    m = ConfigurationManager(environ={"CFGCORE_CONFIG_DIR": "embedded"})
    m.load_environment_config("production")
    assert not m.update_config("auto_scaling.min_replicas", 50)
    assert m.get("auto_scaling.min_replicas") == 3
    assert isinstance(m.last_error, ConfigError)
    assert "auto_scaling.min_replicas" in str(m.last_error)
    assert m.update_config("auto_scaling.min_replicas", 4)
    assert m.get("auto_scaling.min_replicas") == 4


def test_manager_reload_rejects_an_invalid_file_and_keeps_last_good(tmp_path):
    shutil.copy(os.path.join(DEFAULTS, "base.yaml"), tmp_path / "base.yaml")
    prod = tmp_path / "production.yaml"
    prod.write_text("environment: production\n", encoding="utf-8")
    m = ConfigurationManager(tmp_path, environ={})
    m.load_environment_config("production")
    prod.write_text(
        "environment: production\nauto_scaling:\n  min_replicas: 99\n", encoding="utf-8"
    )
    assert m.reload() is False
    assert m.get("auto_scaling.min_replicas") == 3
    assert "production.yaml:3: auto_scaling.min_replicas" in str(m.last_error)
    prod.write_text("environment: production\nauto_scaling:\n  min_replicas: 9\n", encoding="utf-8")
    assert m.reload() is True
    assert m.get("auto_scaling.min_replicas") == 9


def test_manager_set_active_and_migrated_configs_are_validated():
    m = ConfigurationManager(environ={"CFGCORE_CONFIG_DIR": "embedded"})
    good = m.load_environment_config("production")
    bad = thaw(good)
    bad["app"]["debug"] = True
    with pytest.raises(ConfigValidationError):
        m.set_active_config(bad)
    with pytest.raises(ConfigValidationError):
        m.apply_migrated_config(bad)
    assert m.get("app.debug") is False


def test_manager_applies_eu_rules_under_the_eu_profile():
    m = ConfigurationManager(environ={"CFGCORE_CONFIG_DIR": "embedded"})
    m.load_environment_config("production", geographic_profile="EU")
    assert m.get("geographic_profile") == "EU"
    assert not m.update_config("gdpr_compliance.consent_required", False)
    assert m.get("gdpr_compliance.consent_required") is True
    plain = ConfigurationManager(environ={"CFGCORE_CONFIG_DIR": "embedded"})
    plain.load_environment_config("production")
    assert plain.update_config("gdpr_compliance.consent_required", False)


def test_custom_rule_on_shared_validator_takes_part_in_activation():
    m = ConfigurationManager(environ={})
    m.load_environment_config("staging")
    validator = get_config_validator()
    validator.add_rule(CustomBusinessRule("premium_stream_limit"))
    try:
        assert not m.update_config("user_limits.premium_concurrent_streams", 4)
    finally:
        validator.remove_rule("premium_stream_limit")
    assert m.update_config("user_limits.premium_concurrent_streams", 4) is False  # built-in
    assert m.update_config("user_limits.premium_concurrent_streams", 8)


def test_nan_and_infinity_are_range_errors():
    cfg = {"recommendation_engine": {"diversity_factor": math.nan}, "anomaly_detection": {}}
    cfg["anomaly_detection"]["threshold"] = math.inf
    report = validate_configuration(cfg)
    assert sorted(r.key_path for r in report.failures) == [
        "anomaly_detection.threshold",
        "recommendation_engine.diversity_factor",
    ]


def test_custom_rule_env_severity_is_applied():
    """ValidationRule(env_severity=...) is 'how production is made stricter': a custom
    rule reporting through create_result must get its per-environment level, and
    'off' must silence it there (unless the validator re-levels it)."""

    class Streams(ValidationRule):
        def validate(self, config, context=None):
            return [self.create_result(False, "x: too few streams", key_path="x")]

    validator = ConfigValidator(builtin=False)
    validator.add_rule(
        Streams("custom.streams", "warning", env_severity={"prod": "critical", "dev": "off"})
    )
    levels = {
        env: [r.severity for r in validator.validate_config({"x": 1}, "c", env).results]
        for env in ("production", "development", "staging")
    }
    assert levels == {"production": ["critical"], "development": [], "staging": ["warning"]}
    assert not validator.validate_config({"x": 1}, "c", "production").overall_valid
    validator.set_severity("custom.streams", "error", environment="development")
    dev = validator.validate_config({"x": 1}, "c", "development")
    assert [r.severity for r in dev.results] == ["error"]
