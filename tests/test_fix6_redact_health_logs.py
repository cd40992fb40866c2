"""URL credentials in the health report, cfgcore's log records and ConfigError texts.

Error texts quote what failed: an alert webhook's URL with its token, a Redis URL with
its password. redact_text masks those in free text; the health report (served over
HTTP) and every cfgcore log record and ConfigError message go through it, even when no
secret was resolved in the process.
"""

from __future__ import annotations

import io
import json
import logging

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.observability.health import Check
from cfgcore.runtime import secrets

SLACK_TOKEN = "abcdefghijklmnopqrstuvwx"
SLACK = f"https://hooks.slack.com/services/T000/B000/{SLACK_TOKEN}"
DISCORD_TOKEN = "abcDEF123456xyzSECRETtoken"
DISCORD = f"https://discord.com/api/webhooks/123/{DISCORD_TOKEN}"
REDIS_PASSWORD = "hunter2-not-shown"
REDIS = f"redis://cfgcore:{REDIS_PASSWORD}@redis.internal:6379/0"


def test_a_check_detail_never_shows_a_url_token():
    check = Check("flag_store", "warn", f"alert to {SLACK} failed; store {REDIS} down")
    assert SLACK_TOKEN not in check.detail and REDIS_PASSWORD not in check.detail
    assert "hooks.slack.com/services/T000/B000/" in check.detail  # where, not the token
    assert "redis.internal:6379" in check.detail
    plain = "version 3 of 'staging', see https://docs.example.com/health?page=2"
    assert Check("configuration", "ok", plain).detail == plain


def test_the_health_report_masks_a_last_error_quoting_a_webhook(bundled_config):
    manager = ConfigurationManager(bundled_config, environ={})
    try:
        manager.load_environment_config("staging")
        manager.last_error = ConfigError(f"alert webhook {DISCORD} answered 404")
        report = manager.health()
        served = json.dumps(report.to_dict()) + str(report)
        assert "alert webhook https://discord.com/api/webhooks/123/" in served
        assert DISCORD_TOKEN not in served
    finally:
        manager.close()


@pytest.fixture
def cfgcore_log():
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    logger = logging.getLogger("cfgcore.fix6.redact")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    secrets._install_log_filter()
    assert secrets._FILTER in logger.filters
    yield logger, buf
    logger.removeHandler(handler)


def test_log_records_mask_urls_with_no_secret_resolved(cfgcore_log):
    logger, buf = cfgcore_log
    secrets.forget_secrets()
    logger.warning("alert to %s failed", SLACK)
    try:
        raise RuntimeError(f"POST {DISCORD}: 404")
    except RuntimeError:
        logger.exception("webhook delivery failed")
    logger.info("docs at https://docs.example.com/a?page=2")
    out = buf.getvalue()
    assert SLACK_TOKEN not in out and DISCORD_TOKEN not in out
    assert "alert to https://hooks.slack.com/services/T000/B000/" in out
    assert "RuntimeError: POST https://discord.com/api/webhooks/123/" in out  # traceback kept
    assert "docs at https://docs.example.com/a?page=2" in out


def test_config_error_messages_mask_url_passwords():
    secrets.forget_secrets()
    text = str(ConfigError(f"flag store {REDIS}: connection refused"))
    assert REDIS_PASSWORD not in text
    assert "redis.internal:6379/0: connection refused" in text


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("STRIPE_KEY", "sk_live_51HxAbCdEfGhIjKlMn"),
        ("SENTRY_DSN", "https://f00dfeed1234@o1.ingest.io/5"),
    ],
)
def test_values_of_variables_named_like_keys_are_masked(bundled_config, variable, value):
    # Validation does not call STRIPE_KEY or SENTRY_DSN secrets (no reference demanded),
    # but their values are masked like one: they were, before secret names had one home.
    secrets.forget_secrets()
    staging = bundled_config / "staging.yaml"
    staging.write_text(staging.read_text() + f"\npayments_fix6:\n  upstream: ${{{variable}}}\n")
    manager = ConfigurationManager(bundled_config, environ={variable: value})
    try:
        manager.load_environment_config("staging")
        assert manager.get("payments_fix6.upstream") == value
        assert secrets.mask_text(f"calling {value} failed") == "calling *** failed"
    finally:
        manager.close()


def test_show_json_prints_file_dates_as_iso_8601(cfg_dir_with_dates, capsys):
    from tests.conftest import run_cli

    code, out, _ = run_cli(capsys, "show", "release_fix6", "--format", "json")
    assert code == 0
    assert json.loads(out) == {"at": "2024-01-02T10:00:00+00:00", "day": "2024-05-01"}
    code, out, _ = run_cli(capsys, "get", "release_fix6.at")
    assert (code, out) == (0, '"2024-01-02T10:00:00+00:00"\n')


@pytest.fixture
def cfg_dir_with_dates(bundled_config, monkeypatch):
    staging = bundled_config / "staging.yaml"
    staging.write_text(
        staging.read_text() + "\nrelease_fix6:\n  at: 2024-01-02T10:00:00Z\n  day: 2024-05-01\n"
    )
    monkeypatch.setenv("CFGCORE_CONFIG_DIR", str(bundled_config))
    monkeypatch.setenv("CONFIG_ENVIRONMENT", "staging")
    return bundled_config
