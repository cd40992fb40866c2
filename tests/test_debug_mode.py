"""Debug mode on the configuration side: every reload step logged, secrets redacted, and
nothing computed when the logger is above DEBUG."""

from __future__ import annotations

import logging
import os

import pytest

from cfgcore.config import debuglog
from cfgcore.config.manager import ConfigurationManager
from cfgcore.runtime.atomicio import atomic_write_text
from tests.conftest import copy_bundled_config

PASSWORD = "hunter2-s3cret-value"


@pytest.fixture
def manager(tmp_path):
    d = copy_bundled_config(tmp_path / "config")
    m = ConfigurationManager(d, environ={"REPORTING_DB_PASSWORD": PASSWORD})
    m.load_environment_config("staging")
    yield m
    m.close()
    logging.getLogger("cfgcore").setLevel(logging.NOTSET)


def _edit(manager, extra: str) -> None:
    path = os.path.join(manager.config_dir, "staging.yaml")
    with open(path) as fh:
        atomic_write_text(path, fh.read() + extra)


def test_each_reload_step_is_logged_with_secrets_redacted(manager, caplog):
    manager.enable_debug_mode()
    caplog.set_level(logging.DEBUG, logger="cfgcore")
    _edit(manager, "\nreporting_db:\n  password: ${REPORTING_DB_PASSWORD}\n  pool: 5\n")
    assert manager.reload() is True
    assert manager.get("reporting_db.password") == PASSWORD  # the app gets the secret
    text = caplog.text
    assert "reload staging: read " in text and "staging.yaml (" in text  # files read
    assert "reload staging: merged base.yaml [base" in text  # layers merged, in order
    assert "staging.yaml [environment" in text and "< runtime [runtime" in text
    assert "version 2: validation passed" in text  # validation result
    assert "swap (reload): version 1 -> 2, 2 keys changed" in text  # the swap
    assert "reporting_db.pool: None -> 5" in text
    assert "reporting_db.password: None -> '***redacted***'" in text
    assert PASSWORD not in text


def test_it_turns_on_the_engines_debug_mode_too(manager, caplog):
    import cfgcore

    manager.enable_debug_mode()
    caplog.set_level(logging.DEBUG, logger="cfgcore")
    engine = cfgcore.Engine.bundled()
    engine.is_enabled("enhanced_anomaly_detection", {"user_id": "u1", "api_token": PASSWORD})
    assert "is_enabled enhanced_anomaly_detection -> variant=" in caplog.text
    assert PASSWORD not in caplog.text
    cfgcore.disable_debug_mode()


def test_a_blocked_validation_is_logged_with_its_problems(manager, caplog):
    caplog.set_level(logging.DEBUG, logger="cfgcore")
    assert manager.update_config("auto_scaling.min_replicas", "many") is False
    assert "validation blocked it" in caplog.text and "auto_scaling.min_replicas" in caplog.text


def test_above_debug_no_step_is_even_prepared(manager, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="cfgcore")

    def boom(*args, **kwargs):
        raise AssertionError("debug narration ran above DEBUG")

    for name in ("files_read", "layers_merged", "validated", "swapped"):
        monkeypatch.setattr(debuglog, name, boom)
    _edit(manager, "\nextra: 1\n")
    assert manager.reload() is True
    assert manager.update_config("extra", 2) is True
    assert manager.get("extra") == 2


def test_a_changed_key_holding_a_newline_is_one_escaped_line(manager, caplog):
    """The swap lists one changed key per line: a key holding a newline (YAML "\\n",
    JSON "\\n") is shown escaped, so it cannot forge a line of the log."""
    manager.enable_debug_mode()
    caplog.set_level(logging.DEBUG, logger="cfgcore")
    _edit(manager, '\nforged:\n  "x\\nWARNING cfgcore: forged line\\u202e": 1\n')
    assert manager.reload() is True
    [swap] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("swap (")]
    lines = swap.split("\n")
    assert all(line.startswith("  ") for line in lines[1:]), lines
    assert not any(line.startswith("WARNING") for line in lines)
    assert any("x\\nWARNING cfgcore: forged line\\u202e" in line for line in lines), lines
