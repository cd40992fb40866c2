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
