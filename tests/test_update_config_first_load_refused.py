"""``update_config`` on a manager whose configuration does not load answers False, as
README says it does for a refused value, and logs the load's refusal once: the first
load is tried once, and its ConfigError does not escape the call."""

from __future__ import annotations

import logging

import cfgcore.metrics
from cfgcore.config.manager import ConfigurationManager


def _rejected_loads() -> float:
    samples = cfgcore.metrics.snapshot()["metrics"]["cfgcore_config_loads_total"]["samples"]
    return sum(
        s["value"]
        for s in samples
        if s["labels"]["operation"] == "load" and s["labels"]["result"] == "rejected"
    )


def test_update_config_answers_false_when_the_first_load_is_refused(tmp_path, caplog):
    config = tmp_path / "config"
    config.mkdir()
    (config / "base.yaml").write_text('svc:\n  a: "${MISSING_VALUE}"\n', encoding="utf-8")
    (config / "development.yaml").write_text("{}\n", encoding="utf-8")
    manager = ConfigurationManager(str(config), environ={}, record_usage=False)
    try:
        before = _rejected_loads()
        with caplog.at_level(logging.WARNING, logger="cfgcore"):
            assert manager.update_config("svc.b", 1) is False
        assert _rejected_loads() - before == 1  # one load tried, not a second in the log line
        warnings = [
            r.getMessage()
            for r in caplog.records
            if r.levelno == logging.WARNING and r.getMessage().startswith("update_config(")
        ]
        assert len(warnings) == 1
        assert "'svc.b'" in warnings[0] and "MISSING_VALUE" in warnings[0]
        assert manager.get("svc.b", "unset") == "unset"

        # The file fixed, the same manager loads and takes the update.
        (config / "base.yaml").write_text("svc:\n  a: fixed\n", encoding="utf-8")
        assert manager.update_config("svc.b", 1) is True
        assert manager.get("svc.b") == 1
        assert manager.get("svc.a") == "fixed"
    finally:
        manager.close()
