"""Round 3, the new user: a misspelt key goes live (it is only a validation warning),
so it is logged when it first appears, with the file and line (or the API) that set it
and the key it probably meant. ``update_config("anomaly_detection.threshhold", 0.9)``
returned True and said nothing, leaving the real threshold unchanged."""

from __future__ import annotations

import logging

import pytest

from cfgcore.config.manager import ConfigurationManager
from tests.conftest import scaffolded_config


@pytest.fixture
def manager(tmp_path, monkeypatch):
    cfg = scaffolded_config(tmp_path, monkeypatch, "staging")
    m = ConfigurationManager(cfg, record_usage=False)
    yield m
    m.close()


def _typo_warnings(caplog):
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "cfgcore.manager" and r.levelno == logging.WARNING
        and "unknown key" in r.getMessage()
    ]  # fmt: skip


def test_a_misspelt_key_given_to_update_config_is_logged_once(manager, caplog):
    manager.load_environment_config("staging")
    caplog.set_level(logging.WARNING, logger="cfgcore")
    assert manager.update_config("anomaly_detection.threshhold", 0.9) is True
    assert _typo_warnings(caplog) == [
        "<update_config>: anomaly_detection.threshhold: unknown key 'threshhold' in "
        "anomaly_detection (did you mean 'threshold'?) (fix: Rename "
        "anomaly_detection.threshhold to anomaly_detection.threshold)"
    ]
    caplog.clear()
    assert manager.update_config("anomaly_detection.threshold", 0.7) is True
    assert manager.reload() is True
    assert _typo_warnings(caplog) == []  # already live: not logged again


def test_a_new_key_that_is_no_near_miss_is_not_logged(manager, caplog):
    manager.load_environment_config("staging")
    caplog.set_level(logging.WARNING, logger="cfgcore")
    assert manager.update_config("my_service.batch", 5) is True
    assert manager.update_config("anomaly_detection.my_extra_knob", 2) is True
    assert _typo_warnings(caplog) == []


def test_a_misspelt_key_in_a_file_is_logged_with_its_line_at_load(manager, caplog):
    staging = manager.config_dir + "/staging.yaml"
    with open(staging) as f:
        text = f.read()
    with open(staging, "w") as f:
        f.write(text.replace("worker_threads: 8", "worker_thread: 8"))
    caplog.set_level(logging.WARNING, logger="cfgcore")
    manager.load_environment_config("staging")
    line = text.splitlines().index("  worker_threads: 8") + 1
    assert _typo_warnings(caplog) == [
        f"{staging}:{line}: performance.worker_thread: unknown key 'worker_thread' in "
        "performance (did you mean 'worker_threads'?) (fix: Rename "
        "performance.worker_thread to performance.worker_threads)"
    ]
    caplog.clear()
    manager.reload()
    assert _typo_warnings(caplog) == []
