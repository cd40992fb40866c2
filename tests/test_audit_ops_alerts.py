"""Exported alerting rules with text Prometheus would read as templates: a ``{{`` in a
description, a notification address or a severity must not make Prometheus refuse the
whole rule file, and renders as written (checked by promtool)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from cfgcore.observability.alerts import prometheus_rules
from tests.conftest import IN_CI

PROMTOOL = shutil.which("promtool")

ODD = {
    "name": "load_slow",
    "condition": "config_load_time > 0.5",
    "severity": "page{{",
    "description": "p95 over {{ 1s }} {{ broken",
    "notification": ["ops{{team}}@example.com"],
}


@pytest.fixture
def promtool():
    if PROMTOOL is None:
        if IN_CI:
            pytest.fail("promtool is not installed (CI=true)")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return PROMTOOL


def test_template_braces_in_alert_text_are_exported_as_literal_text(promtool, tmp_path):
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump(prometheus_rules({"environment": "prod{{", "alerts": [ODD]})))
    check = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True,
                           text=True, timeout=60)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    # ... and the alert fires with the text as written
    series = "cfgcore_config_load_duration_seconds_bucket"
    spec = {
        "rule_files": [str(rules)],
        "tests": [{
            "interval": "1m",
            "input_series": [
                {"series": f'{series}{{le="1.0",operation="load"}}', "values": "0x10"},
                {"series": f'{series}{{le="+Inf",operation="load"}}', "values": "0+6x10"},
            ],
            "alert_rule_test": [{
                "eval_time": "10m",
                "alertname": "load_slow",
                "exp_alerts": [{
                    "exp_labels": {"severity": "page{{", "environment": "prod{{"},
                    "exp_annotations": {
                        "summary": "load_slow: config_load_time > 0.5",
                        "description": ODD["description"],
                        "notification": "ops{{team}}@example.com",
                    },
                }],
            }],
        }],
    }  # fmt: skip
    test = tmp_path / "rules.test.yml"
    test.write_text(yaml.safe_dump(spec))
    proc = subprocess.run([promtool, "test", "rules", str(test)], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
