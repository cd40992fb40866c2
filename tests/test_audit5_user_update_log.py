"""``update_config`` answers False when it refuses a value (the seed's API), and the
spec's own example ignores that answer: a refused update (a port of 70000, a string
where a number belongs) changed nothing and said nothing, so the operator saw a
setting that silently never took. It is now logged at WARNING with the key path and
the reason, as a rejected reload is; an accepted update logs nothing; a secret's value
never appears in the line."""

from __future__ import annotations

import logging

import pytest

from cfgcore.config.manager import ConfigurationManager


@pytest.fixture
def manager(bundled_config):
    m = ConfigurationManager(bundled_config, environ={}, record_usage=False)
    m.load_environment_config("staging")
    yield m
    m.close()


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_refused_update_is_logged_with_key_and_reason(manager, caplog):
    caplog.set_level(logging.WARNING, logger="cfgcore")
    assert manager.update_config("server.port", 70000) is False
    lines = _warnings(caplog)
    assert len(lines) == 1
    assert "update_config('server.port') rejected" in lines[0]
    assert "above the maximum of 65535" in lines[0]
    assert manager.get("server.port") != 70000


def test_an_accepted_update_logs_nothing(manager, caplog):
    caplog.set_level(logging.WARNING, logger="cfgcore")
    assert manager.update_config("anomaly_detection.threshold", 0.9) is True
    assert _warnings(caplog) == []


def test_a_refused_secret_is_not_shown(manager, caplog):
    caplog.set_level(logging.WARNING, logger="cfgcore")
    secret = "Zq9-literal-signing-key-never-logged"
    manager.update_config("security.jwt.signing_key", {"nested": secret, "bad": {1, 2}})
    text = "\n".join(_warnings(caplog))
    assert "security.jwt.signing_key" in text
    assert secret not in text
