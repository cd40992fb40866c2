"""Second security round: security rules judge values the way the application reads
them (type confusion: ``debug: 1``, ``allow_credentials: "yes"``, ``"https://a, *"``)."""

from __future__ import annotations

import pytest

from cfgcore.validation_engine import ConfigValidator


@pytest.fixture(scope="module")
def validator():
    return ConfigValidator()


def _found(validator, config, env="production"):
    return [(r.rule_id, r.key_path) for r in validator.validate_config(config, "c", env).failures]


@pytest.mark.parametrize("on", [True, 1, 2.5, "true", "1", "yes", "on", " ON ", "Enabled", "y"])
def test_debug_switched_on_in_any_spelling_is_found(validator, on):
    # Only True and "true" were seen: `debug: 1` or "on" (on for cfgcore's own
    # environment parsing and for Python's truthiness) passed validation.
    assert _found(validator, {"admin_panel": {"debug": on}}) == [
        ("security.debug_in_production", "admin_panel.debug")
    ]


@pytest.mark.parametrize("off", [False, 0, 0.0, "false", "0", "no", "off", "", None])
def test_debug_switched_off_stays_quiet(validator, off):
    assert _found(validator, {"admin_panel": {"debug": off}}) == []


@pytest.mark.parametrize(
    ("origins", "credentials"),
    [
        ("*", "yes"),
        (["https://a.example", "*"], 1),
        ("https://a.example, *", True),
        ("https://a.example *", "on"),
        ([" * "], "true"),
    ],
)
def test_cors_wildcard_with_credentials_in_any_spelling_is_found(validator, origins, credentials):
    config = {"api": {"cors": {"allowed_origins": origins, "allow_credentials": credentials}}}
    assert _found(validator, config) == [("security.cors_credentials", "api.cors.allowed_origins")]


@pytest.mark.parametrize(
    ("origins", "credentials"),
    [
        ("https://a.example, https://b.example", True),
        ("https://*.example.com", True),  # a subdomain pattern is not "any origin"
        ("*", "no"),
        (["*"], 0),
    ],
)
def test_cors_without_both_stays_quiet(validator, origins, credentials):
    config = {"api": {"cors": {"allowed_origins": origins, "allow_credentials": credentials}}}
    assert _found(validator, config) == []


@pytest.mark.parametrize(
    ("key", "value", "name"),
    [
        ("security.password_hash_algorithm", "MD-5", "MD5"),
        ("security.password_hash_algorithm", "hmac-md-5", "MD5"),
        ("security.encryption.algorithm", "RC-4", "RC4"),
        ("security.encryption.algorithm", "rc4", "RC4"),
    ],
)
def test_weak_algorithms_spelled_with_a_hyphen_are_found(validator, key, value, name):
    # "SHA-1" was already read as SHA-1; "MD-5" and "RC-4" split into two words and passed.
    section, *rest = key.split(".")
    config: dict = {section: {}}
    node = config[section]
    for part in rest[:-1]:
        node = node.setdefault(part, {})
    node[rest[-1]] = value
    report = validator.validate_config(config, "c", "production")
    found = [r for r in report.failures if r.rule_id == "security.weak_algorithm"]
    assert [r.key_path for r in found] == [key] and name in found[0].message


@pytest.mark.parametrize(
    "value",
    [
        ["hunter2-Secret-99"],
        {"value": "hunter2-Secret-99"},
        {"primary": {"v": ["hunter2-Secret-99"]}},
        [12345678],
        {"v": "${DB_PASSWORD:-hunter2}"},
    ],
)
def test_a_literal_secret_inside_a_list_or_map_is_found(validator, value):
    # literal_secret_kind judged only strings and numbers: wrapping the secret in a list
    # or a map under its key passed security.plaintext_secret.
    report = validator.validate_config({"db": {"password": value}}, "c", "production")
    found = [(r.rule_id, r.key_path) for r in report.failures]
    assert ("security.plaintext_secret", "db.password") in found
    assert "hunter2" not in " ".join(r.message for r in report.failures)


@pytest.mark.parametrize(
    "value", [["${DB_PASSWORD}"], {"value": "${DB_PASSWORD}"}, {"v": None}, [], {}]
)
def test_references_inside_a_list_or_map_stay_quiet(validator, value):
    report = validator.validate_config({"db": {"password": value}}, "c", "production")
    assert [r for r in report.failures if r.rule_id == "security.plaintext_secret"] == []


def test_a_deeply_nested_secret_map_is_judged_without_recursion():
    value: dict = {}
    node = value
    for _ in range(5000):
        node["x"] = {}
        node = node["x"]
    node["y"] = "hunter2-Secret-99"
    from cfgcore.validation.keys import literal_secret_kind

    assert literal_secret_kind(value) == "a literal value inside a map"
