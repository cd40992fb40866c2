"""Every built-in validation rule: one config that makes it fire, one that keeps it quiet.

Each firing config is minimal, so the rule under test must be the *only* failure;
each quiet config differs from it in the one value that matters and must produce
no failure at all.
"""

from __future__ import annotations

import json

import pytest

from cfgcore.errors import ConfigValidationError
from cfgcore.validation.security import weak_algorithms
from cfgcore.validation_engine import ConfigValidator

AQ = "music_streaming.audio_quality"


def _aq(**audio):
    return {"music_streaming": {"audio_quality": audio}}


def _eu(**gdpr):
    return {"geographic_profile": "EU", "gdpr_compliance": gdpr}


# rule_id, environment, firing config, quiet config, key path of the finding
CASES = [
    (
        "observability.alert_condition",
        None,
        {"alerts": [{"name": "a", "condition": "no_such_metric > 1", "severity": "info"}]},
        {"alerts": [{"name": "a", "condition": "config_load_time > 1", "severity": "info"}]},
        "alerts.0.condition",
    ),
    (
        "structure.type",
        None,
        {"auto_scaling": {"max_replicas": "many"}},
        {"auto_scaling": {"max_replicas": 4}},
        "auto_scaling.max_replicas",
    ),
    (
        "structure.required",
        None,
        {"caching_layers": {"l1_cache": {"type": "in_memory"}}},
        {"caching_layers": {"l1_cache": {"type": "in_memory", "ttl": 60}}},
        "caching_layers.l1_cache.ttl",
    ),
    (
        "structure.range",
        None,
        {"recommendation_engine": {"diversity_factor": 1.5}},
        {"recommendation_engine": {"diversity_factor": 0.15}},
        "recommendation_engine.diversity_factor",
    ),
    (
        "structure.allowed_values",
        None,
        _aq(codecs=["aac", "wma"]),
        _aq(codecs=["aac", "opus"]),
        f"{AQ}.codecs.1",
    ),
    (
        "structure.format",
        None,
        {"caching_layers": {"l1_cache": {"ttl": 5, "size_limit": "two gigs"}}},
        {"caching_layers": {"l1_cache": {"ttl": 5, "size_limit": "2GB"}}},
        "caching_layers.l1_cache.size_limit",
    ),
    (
        "structure.unknown_key",
        None,
        {"gdpr_compliance": {"consent_requird": True}},
        {"gdpr_compliance": {"consent_required": True}},
        "gdpr_compliance.consent_requird",
    ),
    (
        "structure.reference",
        None,
        {
            "user_segments": {
                "priority_levels": {"premium": 1},
                "segment_specific_features": {"vip": ["x"]},
            }
        },
        {
            "user_segments": {
                "priority_levels": {"premium": 1},
                "segment_specific_features": {"premium": ["x"]},
            }
        },
        "user_segments.segment_specific_features.vip",
    ),
    (
        "security.weak_algorithm",
        "production",
        {"security": {"encryption": {"algorithm": "RC4"}}},
        {"security": {"encryption": {"algorithm": "AES-256-GCM"}}},
        "security.encryption.algorithm",
    ),
    (
        "security.password_policy",
        "production",
        {"security": {"password_policy": {"min_length": 12, "require_uppercase": True}}},
        {
            "security": {
                "password_policy": {
                    "min_length": 12,
                    "require_uppercase": True,
                    "require_digits": True,
                    "require_special_chars": True,
                }
            }
        },
        "security.password_policy",
    ),
    (
        "security.https_required",
        "production",
        {"api": {"base_url": "http://api.example.com/v1"}},
        {"api": {"base_url": "https://api.example.com/v1"}},
        "api.base_url",
    ),
    (
        "security.cors_credentials",
        None,
        {"server": {"cors": {"allowed_origins": ["*"], "allow_credentials": True}}},
        {"server": {"cors": {"allowed_origins": ["*"], "allow_credentials": False}}},
        "server.cors.allowed_origins",
    ),
    (
        "security.debug_in_production",
        "production",
        {"app": {"debug": True}},
        {"app": {"debug": False}},
        "app.debug",
    ),
    (
        "security.plaintext_secret",
        None,
        {"data_sources": {"postgresql": {"password": "hunter2-very-secret"}}},
        {"data_sources": {"postgresql": {"password": "${POSTGRES_PASSWORD}"}}},
        "data_sources.postgresql.password",
    ),
    (
        "security.url_credentials",
        None,
        {"database": {"url": "postgresql://user:pass@localhost/db"}},
        {"database": {"url": "postgresql://user:${DB_PASSWORD}@localhost/db"}},
        "database.url",
    ),
    (
        "gdpr.retention_limits",
        None,
        {"gdpr_compliance": {"data_retention": {"analytics_data_days": 2000}}},
        {"gdpr_compliance": {"data_retention": {"analytics_data_days": 1095}}},
        "gdpr_compliance.data_retention.analytics_data_days",
    ),
    (
        "gdpr.consent_required",
        None,
        _eu(consent_required=False, right_to_be_forgotten=True),
        _eu(consent_required=True, right_to_be_forgotten=True),
        "gdpr_compliance.consent_required",
    ),
    (
        "gdpr.right_to_be_forgotten",
        None,
        _eu(consent_required=True),
        _eu(consent_required=True, right_to_be_forgotten=True),
        "gdpr_compliance.right_to_be_forgotten",
    ),
    (
        "streaming.bitrate_order",
        None,
        _aq(bitrates={"premium": 128, "high": 256}),
        _aq(bitrates={"premium": 320, "high": 256}),
        f"{AQ}.bitrates.high",
    ),
    (
        "streaming.codec_limits",
        None,
        _aq(codecs=["mp3"], bitrates={"premium": 448}),
        _aq(codecs=["mp3"], bitrates={"premium": 320}),
        f"{AQ}.bitrates.premium",
    ),
    (
        "streaming.experiment_split",
        None,
        {"ab_tests": {"t": {"traffic_split": {"control": 50, "variant_a": 40}}}},
        {"ab_tests": {"t": {"traffic_split": {"control": 60, "variant_a": 40}}}},
        "ab_tests.t.traffic_split",
    ),
    (
        "streaming.experiment_variants",
        None,
        {
            "experiments": [
                {
                    "test_name": "t",
                    "traffic_split": {"control": 50, "variant_a": 50},
                    "configurations": {"control": {}},
                }
            ]
        },
        {
            "experiments": [
                {
                    "test_name": "t",
                    "traffic_split": {"control": 50, "variant_a": 50},
                    "configurations": {"control": {}, "variant_a": {}},
                }
            ]
        },
        "experiments.0.traffic_split.variant_a",
    ),
    (
        "streaming.rollout_range",
        None,
        {"feature_flags": {"f": {"rollout_percentage": 101}}},
        {"feature_flags": {"f": {"rollout_percentage": 100}}},
        "feature_flags.f.rollout_percentage",
    ),
    (
        "streaming.premium_concurrent_streams",
        None,
        {"user_limits": {"premium_concurrent_streams": 4}},
        {"user_limits": {"premium_concurrent_streams": 5}},
        "user_limits.premium_concurrent_streams",
    ),
    (
        "streaming.auto_scaling",
        None,
        {"auto_scaling": {"min_replicas": 5, "max_replicas": 2}},
        {"auto_scaling": {"min_replicas": 2, "max_replicas": 5}},
        "auto_scaling.min_replicas",
    ),
    (
        "streaming.cache_ttl_order",
        "production",
        {"caching_layers": {"l1_cache": {"ttl": 600}, "l2_cache": {"ttl": "5m"}}},
        {"caching_layers": {"l1_cache": {"ttl": 600}, "l2_cache": {"ttl": "15m"}}},
        "caching_layers.l2_cache.ttl",
    ),
]


@pytest.fixture(scope="module")
def validator():
    return ConfigValidator()


@pytest.mark.parametrize(
    ("rule_id", "env", "bad", "good", "path"), CASES, ids=[c[0] for c in CASES]
)
def test_rule_fires_alone(validator, rule_id, env, bad, good, path):
    report = validator.validate_config(bad, "case", env)
    failures = report.failures
    assert [(r.rule_id, r.key_path) for r in failures] == [(rule_id, path)]
    finding = failures[0]
    assert finding.message.startswith(f"{path}: ")
    assert finding.suggested_fix
    assert not finding.is_valid


@pytest.mark.parametrize(
    ("rule_id", "env", "bad", "good", "path"), CASES, ids=[c[0] for c in CASES]
)
def test_rule_stays_quiet(validator, rule_id, env, bad, good, path):
    report = validator.validate_config(good, "case", env)
    assert report.failures == []
    assert report.overall_valid


def test_every_builtin_rule_has_a_case(validator):
    covered = {c[0] for c in CASES}
    catalog = {r.rule_id for r in validator.rule_catalog()}
    assert catalog == covered


# --- details that the table cannot show -----------------------------------------------------


def test_utilisation_range_is_reported_under_the_auto_scaling_rule(validator):
    report = validator.validate_config({"auto_scaling": {"target_cpu_utilization": 0}})
    assert [(r.rule_id, r.key_path) for r in report.failures] == [
        ("streaming.auto_scaling", "auto_scaling.target_cpu_utilization")
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("DES", [("DES", False)]),
        ("des-cbc", [("DES", False)]),
        ("DES-EDE3-CBC", [("3DES", False)]),
        ("3DES", [("3DES", False)]),
        ("TripleDES", [("3DES", False)]),
        ("RC4", [("RC4", False)]),
        ("TLS_RSA_WITH_RC4_128_SHA", [("RC4", False)]),
        ("DES-CBC3-SHA", [("3DES", False)]),
        ("md5", [("MD5", True)]),
        ("HmacMD5", [("MD5", True)]),
        ("SHA-1", [("SHA-1", True)]),
        ("sha1WithRSAEncryption", [("SHA-1", True)]),
        ("AES-256-GCM", []),
        ("SHA-256", []),
        ("RS256", []),
        ("argon2id", []),
        ("bcrypt", []),
        ("describe", []),
    ],
)
def test_weak_algorithm_names(text, expected):
    assert weak_algorithms(text) == expected


def test_md5_is_weak_for_passwords_but_not_for_checksums(validator):
    bad = {"security": {"password_hashing": {"algorithm": "md5"}}}
    ok = {"storage": {"checksum": {"algorithm": "md5"}}}
    assert [r.rule_id for r in validator.validate_config(bad).failures] == [
        "security.weak_algorithm"
    ]
    assert validator.validate_config(ok).failures == []


def test_cipher_lists_are_checked_item_by_item(validator):
    cfg = {"server": {"tls": {"ciphers": ["ECDHE-RSA-AES128-GCM-SHA256", "DES-CBC3-SHA"]}}}
    failures = validator.validate_config(cfg).failures
    assert [(r.rule_id, r.key_path, "3DES" in r.message) for r in failures] == [
        ("security.weak_algorithm", "server.tls.ciphers.1", True)
    ]


def test_password_policy_without_min_length_fires_on_the_length(validator):
    cfg = {
        "password_policy": {
            "require_uppercase": True,
            "require_lowercase": True,
            "require_digits": True,
        }
    }
    failures = validator.validate_config(cfg, "c", "production").failures
    assert [r.key_path for r in failures] == ["password_policy.min_length"]
    assert "not set" in failures[0].message


def test_https_exempts_loopback_and_is_silent_in_development(validator):
    local = {"metrics": {"push_url": "http://localhost:9091/metrics"}}
    remote = {"metrics": {"push_url": "http://metrics.example.com/push"}}
    assert validator.validate_config(local, "c", "production").failures == []
    assert validator.validate_config(remote, "c", "development").failures == []
    assert validator.validate_config(remote, "c", None).failures == []
    staging = validator.validate_config(remote, "c", "staging").failures
    assert [(r.rule_id, r.severity) for r in staging] == [("security.https_required", "warning")]


def test_http_urls_inside_lists_are_found(validator):
    cfg = {"server": {"cors": {"allowed_origins": ["https://a.example", "http://b.example"]}}}
    failures = validator.validate_config(cfg, "c", "production").failures
    assert [r.key_path for r in failures] == ["server.cors.allowed_origins.1"]


@pytest.mark.parametrize(
    ("env", "level"),
    [
        ("development", "warning"),
        ("test", "warning"),
        ("staging", "error"),
        ("production", "critical"),
    ],
)
def test_plaintext_secret_level_by_environment(validator, env, level):
    cfg = {"api": {"api_key": "sk_live_abcdef123456"}}
    report = validator.validate_config(cfg, "c", env)
    assert [(r.rule_id, r.severity) for r in report.failures] == [
        ("security.plaintext_secret", level)
    ]
    assert report.overall_valid is (level == "warning")


@pytest.mark.parametrize(
    ("env", "levels"),
    [("development", []), ("test", []), ("staging", ["warning"]), ("production", ["critical"])],
)
def test_debug_level_by_environment(validator, env, levels):
    report = validator.validate_config({"debug": True}, "c", env)
    assert [r.severity for r in report.failures] == levels


def test_cache_ttl_order_is_a_warning_in_development(validator):
    cfg = {"caching_layers": {"l1_cache": {"ttl": 600}, "l2_cache": {"ttl": 60}}}
    dev = validator.validate_config(cfg, "c", "development")
    prod = validator.validate_config(cfg, "c", "production")
    assert [r.severity for r in dev.failures] == ["warning"] and dev.overall_valid
    assert [r.severity for r in prod.failures] == ["error"] and not prod.overall_valid


@pytest.mark.parametrize(
    "value",
    [
        "${DB_PASSWORD}",
        "${DB_PASSWORD:?set DB_PASSWORD}",
        "${DB_PASSWORD:-}",
        "enc:AQICAHh2...",
        "ENC[AES256_GCM,data:abc]",
        "vault:secret/data/db#password",
        "",
        None,
    ],
)
def test_secret_references_and_ciphertext_are_accepted(validator, value):
    cfg = {"db": {"password": value}}
    assert validator.validate_config(cfg, "c", "production").failures == []


@pytest.mark.parametrize("value", ["changeme", "${DB_PASSWORD:-changeme}", 12345678, "pa ss word"])
def test_literal_secrets_and_literal_defaults_are_flagged(validator, value):
    report = validator.validate_config({"db": {"db_password": value}}, "c", "production")
    assert [r.rule_id for r in report.failures] == ["security.plaintext_secret"]


def test_key_named_key_is_a_secret_only_under_crypto_parents(validator):
    crypto = {"security": {"encryption": {"key": "0123456789abcdef"}}}
    cache = {"cache": {"key": "user:{id}"}}
    assert [r.key_path for r in validator.validate_config(crypto).failures] == [
        "security.encryption.key"
    ]
    assert validator.validate_config(cache).failures == []


SECRETS = ["hunter2-very-secret", "sk_live_abcdef123456", "Zq8sPpW0rd"]


def test_no_output_ever_contains_a_secret(validator):
    cfg = {
        "environment": "production",
        "db": {"password": SECRETS[0], "url": f"postgresql://app:{SECRETS[2]}@db/x"},
        "api": {"api_key": SECRETS[1]},
        # a secret of the wrong type in a schema field: the type error must not echo it
        "elasticsearch_cluster": {"hosts": ["es:9200"], "password": 98765432},
    }
    report = validator.validate_config(cfg)
    assert not report.overall_valid
    rendered = [
        json.dumps(report.to_dict()),
        validator.get_validation_summary(report),
        *(str(r) for r in report.results),
    ]
    with pytest.raises(ConfigValidationError) as info:
        report.raise_for_blocking(file="production.yaml")
    rendered.append(str(info.value))
    for text in rendered:
        for secret in [*SECRETS, "98765432"]:
            assert secret not in text
    assert "postgresql://app:***@db/x" in rendered[0]


def test_http_url_held_by_a_secret_key_is_not_echoed(validator):
    """A webhook token or secret that is an http URL: https_required still fires, but
    its message must not print the secret (plaintext_secret says 'value not shown')."""
    token = "http://hooks.example.com/services/T00/B00/XoXoSeCrEt"
    report = validator.validate_config(
        {"environment": "production", "alerts": {"webhook_token": token}}
    )
    https = [r for r in report.results if r.rule_id == "security.https_required"]
    assert [r.key_path for r in https] == ["alerts.webhook_token"]
    rendered = [json.dumps(report.to_dict()), validator.get_validation_summary(report)]
    for text in rendered:
        assert "XoXoSeCrEt" not in text
