"""Issue 10: the rule packs at their edges.

Each test pins a boundary or a type distinction a realistic one-character change to
validation/{structure,security,gdpr,streaming}.py would move (an int accepting 5.5,
``endswith("localhost")`` letting ``evillocalhost.example`` pass the https rule, a
truthy ``"yes"`` passing as GDPR consent, ``>`` becoming ``>=`` at a limit...).
"""

from __future__ import annotations

import math

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.validation_engine import validate_configuration


def findings(config, env=None, rule=None):
    """``{(rule_id, key_path): message}`` of the failures (of ``rule``, if given)."""
    report = validate_configuration(config, env)
    return {
        (r.rule_id, r.key_path): r.message
        for r in report.failures
        if rule is None or r.rule_id == rule
    }


def severities(config, env=None):
    return {
        (r.rule_id, r.key_path): r.severity for r in validate_configuration(config, env).failures
    }


# --- structure: types and ranges ------------------------------------------------------------


@pytest.mark.parametrize("value", [5.5, 5.0, True, "5"])
def test_an_int_key_refuses_floats_bools_and_strings(value):
    assert ("structure.type", "performance.worker_threads") in findings(
        {"performance": {"worker_threads": value}}
    )


def test_an_int_key_refuses_5_5_through_the_manager(tmp_path):
    (tmp_path / "development.yaml").write_text("performance:\n  worker_threads: 4\n")
    m = ConfigurationManager(tmp_path, environment="development", environ={})
    m.load_environment_config()
    assert m.update_config("performance.worker_threads", 5.5) is False
    assert "expected an integer" in str(m.last_error)
    assert m.update_config("performance.worker_threads", 5) is True


def test_a_float_key_takes_ints_and_floats_not_bools():
    assert not findings({"performance": {"cpu_limit": 2}})
    assert not findings({"performance": {"cpu_limit": 2.5}})
    assert ("structure.type", "performance.cpu_limit") in findings(
        {"performance": {"cpu_limit": True}}
    )


@pytest.mark.parametrize(
    ("key", "ok", "bad"),
    [
        ("server.port", [1, 65535], [0, 65536]),
        ("performance.worker_threads", [1], [0, -1]),
        ("auto_scaling.min_replicas", [0], [-1]),
        ("music_streaming.audio_quality.bitrates.low", [8, 9216], [7, 9217]),
    ],
)
def test_range_bounds_are_inclusive(key, ok, bad):
    def tree(v):
        node = out = {}
        parts = key.split(".")
        for p in parts[:-1]:
            node[p] = {}
            node = node[p]
        node[parts[-1]] = v
        return out

    for v in ok:
        assert ("structure.range", key) not in findings(tree(v)), v
    for v in bad:
        assert ("structure.range", key) in findings(tree(v)), v


def test_nan_is_named_as_nan():
    # Refused as activation refuses it (structure.limits, activation's own text), not
    # as an out-of-range number.
    message = findings({"auto_scaling": {"target_cpu_utilization": math.nan}})
    path = "auto_scaling.target_cpu_utilization"
    assert message == {("structure.limits", path): f"{path}: nan is not a finite number"}


def test_allowed_values_are_case_sensitive_with_a_hint():
    found = findings({"caching_layers": {"l1_cache": {"ttl": 60, "eviction_policy": "LRU"}}})
    message = found[("structure.allowed_values", "caching_layers.l1_cache.eviction_policy")]
    assert "did you mean 'lru'" in message
    assert not findings({"caching_layers": {"l1_cache": {"ttl": 60, "eviction_policy": "lru"}}})


def test_a_list_with_a_minimum_length():
    path = "music_streaming.audio_quality.codecs"
    assert ("structure.range", path) in findings(
        {"music_streaming": {"audio_quality": {"codecs": []}}}
    )
    assert not findings({"music_streaming": {"audio_quality": {"codecs": ["aac"]}}})


def test_a_pattern_must_match_the_whole_value():
    cache = {"ttl": 60}
    for good in ["2GB", "512MiB", "100"]:
        assert not findings({"caching_layers": {"l1_cache": {**cache, "size_limit": good}}}), good
    for bad in ["lots", "2GB of RAM", "x2GB"]:
        found = findings({"caching_layers": {"l1_cache": {**cache, "size_limit": bad}}})
        assert ("structure.format", "caching_layers.l1_cache.size_limit") in found, bad


# --- security -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://evillocalhost.example/audio",
        "http://evillocalhost/audio",
        "http://localhostevil.example/audio",
        "http://127.0.0.1.evil.example/audio",
        "http://10.0.0.5/audio",  # private is not loopback: other machines see it
        "http://[fd00::1]/audio",
        "http://127evil.example/audio",
        "http://localhost.evil.example/audio",
        "HTTP://cdn.example.com/audio",
    ],
)
def test_https_rule_is_not_fooled_by_lookalike_loopback_hosts(url):
    found = findings({"music_streaming": {"cdn": {"base_url": url}}}, "production")
    assert ("security.https_required", "music_streaming.cdn.base_url") in found


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8080/a",
        "http://127.0.0.1/a",
        "http://127.1.2.3/a",
        "http://[::1]:8080/a",
        "http://0.0.0.0:80/a",
        "http://api.localhost/a",
    ],
)
def test_https_rule_exempts_loopback(url):
    assert not findings({"music_streaming": {"cdn": {"base_url": url}}}, "production")


def test_https_rule_skips_json_schema_style_dollar_keys():
    assert not findings({"$schema": "http://json-schema.org/draft-07/schema#"}, "production")


def test_https_rule_is_an_error_in_production_a_warning_in_staging():
    cfg = {"music_streaming": {"cdn": {"base_url": "http://cdn.example.com"}}}
    key = ("security.https_required", "music_streaming.cdn.base_url")
    assert severities(cfg, "production")[key] == "error"
    assert severities(cfg, "staging")[key] == "warning"
    assert key not in severities(cfg, "development")


def test_password_policy_boundaries():
    base = {"require_uppercase": True, "require_digits": True, "require_special_chars": True}
    rule = "security.password_policy"
    assert not findings({"security": {"password_policy": {**base, "min_length": 12}}}, rule=rule)
    assert findings({"security": {"password_policy": {**base, "min_length": 11}}}, rule=rule)
    # Three character classes are enough; two are not; a truthy non-bool is not "on".
    two = {"min_length": 12, "require_uppercase": True, "require_digits": True}
    assert findings({"security": {"password_policy": two}}, rule=rule)
    fake = {**two, "require_special_chars": "no"}
    assert findings({"security": {"password_policy": fake}}, rule=rule)


@pytest.mark.parametrize("credentials", [True, "true", " TRUE "])
@pytest.mark.parametrize("origins", ["*", ["*"], ["https://a.example", "*"]])
def test_cors_wildcard_with_credentials(origins, credentials):
    cfg = {"server": {"cors": {"allowed_origins": origins, "allow_credentials": credentials}}}
    assert findings(cfg, "production", rule="security.cors_credentials")


@pytest.mark.parametrize("credentials", [False, "false", "no", None])
def test_cors_wildcard_without_credentials_is_fine(credentials):
    cfg = {"server": {"cors": {"allowed_origins": "*", "allow_credentials": credentials}}}
    assert not findings(cfg, "production", rule="security.cors_credentials")


def test_debug_rule_needs_a_known_environment_and_a_true_value():
    assert not findings({"app": {"debug": True}}, rule="security.debug_in_production")
    assert findings({"app": {"debug": "true"}}, "production", rule="security.debug_in_production")
    for off in [False, "false", "off"]:
        cfg = {"app": {"debug": off}}
        assert not findings(cfg, "production", rule="security.debug_in_production"), off


@pytest.mark.parametrize(
    ("algorithm", "named"),
    [("DES-EDE3-CBC", "3DES"), ("DES-CBC", "DES"), ("SHA-1", "SHA-1"), ("sha1", "SHA-1")],
)
def test_weak_algorithms_are_named(algorithm, named):
    cfg = {"security": {"password_hashing": {"algorithm": algorithm}}}
    found = findings(cfg, "production", rule="security.weak_algorithm")
    assert found and all(named in m for m in found.values()), found


# --- GDPR -----------------------------------------------------------------------------------

EU = {"geographic_profile": "EU"}


@pytest.mark.parametrize("value", ["yes", "true", 1, [True], {"on": True}])
@pytest.mark.parametrize("field", ["consent_required", "right_to_be_forgotten"])
def test_gdpr_switches_must_be_the_boolean_true(field, value):
    other = "right_to_be_forgotten" if field == "consent_required" else "consent_required"
    cfg = {**EU, "gdpr_compliance": {field: value, other: True}}
    assert (f"gdpr.{field}", f"gdpr_compliance.{field}") in findings(cfg, "production")
    cfg["gdpr_compliance"][field] = True
    assert not findings(cfg, "production", rule=f"gdpr.{field}")


@pytest.mark.parametrize("name", ["EU", "eu", " Europe ", "EEA"])
def test_eu_profile_names_are_case_insensitive(name):
    cfg = {"geographic_profile": name, "gdpr_compliance": {"right_to_be_forgotten": True}}
    assert findings(cfg, "production", rule="gdpr.consent_required")


def test_gdpr_switch_severity_by_environment():
    cfg = {**EU, "gdpr_compliance": {"right_to_be_forgotten": True}}
    key = ("gdpr.consent_required", "gdpr_compliance.consent_required")
    assert severities(cfg, "production")[key] == "critical"
    assert severities(cfg, "staging")[key] == "error"


@pytest.mark.parametrize(
    ("key", "limit"),
    [("user_data_days", 2555), ("logs_days", 365), ("analytics_data_days", 1095)],
)
def test_retention_limits_are_inclusive(key, limit):
    rule = "gdpr.retention_limits"

    def cfg(days):
        return {"gdpr_compliance": {"data_retention": {key: days}}}

    assert not findings(cfg(limit), rule=rule)
    assert findings(cfg(limit + 1), rule=rule)


# --- streaming ------------------------------------------------------------------------------

AQ = "music_streaming.audio_quality"


def _aq(**kw):
    return {"music_streaming": {"audio_quality": kw}}


def test_equal_bitrate_tiers_are_ordered():
    rates = {"premium": 320, "high": 320, "normal": 160, "low": 160}
    assert not findings(_aq(bitrates=rates), rule="streaming.bitrate_order")
    assert findings(_aq(bitrates={**rates, "high": 321}), rule="streaming.bitrate_order")
    assert not findings(_aq(premium_bitrate=320, standard_bitrate=320))
    assert findings(_aq(premium_bitrate=320, standard_bitrate=321), rule="streaming.bitrate_order")


def test_codec_limits_are_inclusive():
    rule = "streaming.codec_limits"
    assert not findings(_aq(codecs=["mp3"], premium_bitrate=320), rule=rule)
    assert findings(_aq(codecs=["mp3"], premium_bitrate=321), rule=rule)
    assert not findings(_aq(codecs=["aac"], premium_bitrate=8), rule=rule)
    assert not findings(_aq(codecs=["ogg"], premium_bitrate=32), rule=rule)
    assert findings(_aq(codecs=["ogg"], premium_bitrate=31), rule=rule)


def test_experiment_split_sums_to_exactly_100():
    rule = "streaming.experiment_split"

    def cfg(split):
        configs = dict.fromkeys(split, {})
        return {"ab_tests": {"t": {"traffic_split": split, "configurations": configs}}}

    assert not findings(cfg({"control": 100, "variant_a": 0}), rule=rule)
    assert not findings(cfg({"control": 33.3, "variant_a": 66.7}), rule=rule)
    assert findings(cfg({"control": 50, "variant_a": 49.5}), rule=rule)
    assert findings(cfg({"control": 50, "variant_a": 50.5}), rule=rule)
    assert findings(cfg({"control": 101, "variant_a": -1}), rule=rule)


@pytest.mark.parametrize(("pct", "ok"), [(0, True), (100, True), (-0.5, False), (100.5, False)])
def test_rollout_percentage_bounds(pct, ok):
    cfg = {"feature_flags": {"f": {"rollout_percentage": pct}}}
    assert bool(findings(cfg, rule="streaming.rollout_range")) is not ok


def test_premium_streams_minimum_is_inclusive_and_ignores_bools():
    rule = "streaming.premium_concurrent_streams"
    assert not findings({"user_limits": {"premium_concurrent_streams": 5}}, rule=rule)
    assert findings({"user_limits": {"premium_concurrent_streams": 4}}, rule=rule)
    # A boolean is a type error, not "1 stream".
    found = findings({"user_limits": {"premium_concurrent_streams": True}})
    assert ("structure.type", "user_limits.premium_concurrent_streams") in found
    assert (rule, "user_limits.premium_concurrent_streams") not in found


def test_equal_replica_bounds_and_cache_ttls_are_fine():
    assert not findings({"auto_scaling": {"min_replicas": 3, "max_replicas": 3}})
    assert findings(
        {"auto_scaling": {"min_replicas": 4, "max_replicas": 3}}, rule="streaming.auto_scaling"
    )
    same = {"l1_cache": {"ttl": 60}, "l2_cache": {"ttl": 60}, "l3_cache": {"ttl": "1m"}}
    assert not findings({"caching_layers": same}, "production")
    shorter = {**same, "l3_cache": {"ttl": 59}}
    assert findings({"caching_layers": shorter}, "production", rule="streaming.cache_ttl_order")


def test_range_bounds_hold_for_int_subclasses():
    """An IntEnum constant (type is not exactly int) takes the full range check."""
    import enum

    class Ports(enum.IntEnum):
        LOWEST = 1
        HIGHEST = 65535
        TOO_HIGH = 65536

    assert not findings({"server": {"port": Ports.LOWEST}})
    assert not findings({"server": {"port": Ports.HIGHEST}})
    assert ("structure.range", "server.port") in findings({"server": {"port": Ports.TOO_HIGH}})
    assert ("structure.range", "server.port") in findings({"server": {"port": Ports(1) - 1}})


def test_whole_env_references_pass_allowed_values_and_patterns():
    """``${VAR}`` is judged after substitution, for enums and patterns as for types."""
    cfg = {
        "app": {"log_level": "${LOG_LEVEL}"},
        "caching_layers": {"l1_cache": {"ttl": 60, "eviction_policy": "${EVICTION:-lru}"}},
        "performance": {"memory_limit": "${MEMORY_LIMIT}"},
    }
    assert not findings(cfg, "production")
    cfg["app"]["log_level"] = "prefix-${LOG_LEVEL}"  # not a whole reference
    assert ("structure.allowed_values", "app.log_level") in findings(cfg, "production")
