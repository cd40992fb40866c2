"""``cfgcore alerts export`` writes the alerts' notification targets and descriptions
into a Prometheus rule file, whose annotations every Prometheus and Alertmanager user
reads (the /rules and /alerts pages). A webhook URL with its token, or a target
resolved from a secret variable (``${SLACK_WEBHOOK_URL}``), was exported in clear,
while ``cfgcore get alerts`` and ``show`` mask the same values. The annotations are
masked as those commands mask them; the rule file still passes ``promtool``."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from cfgcore.cli import main
from cfgcore.observability.alerts import prometheus_rules
from tests.conftest import IN_CI

TOKEN = "XXXXsecretTOKEN123abc"
WEBHOOK = f"https://hooks.slack.com/services/T000/B000/{TOKEN}"
PAGER = "pk-9f8e7d6c5b4a3f2e"


def _alerts_file(config_dir, notification):
    (config_dir / "staging.yaml").write_text(
        (config_dir / "staging.yaml").read_text()
        + "\nalerts:\n"
        + "  - name: flag_errors\n"
        + "    condition: feature_flag_error_rate > 0.01\n"
        + "    severity: critical\n"
        + f"    description: 'errors; webhook {WEBHOOK} is paged'\n"
        + f"    notification: {notification}\n"
    )


def test_exported_notification_targets_are_masked(bundled_config, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SLACK_WEBHOOK_URL", WEBHOOK)
    monkeypatch.setenv("PAGER_API_KEY", PAGER)
    _alerts_file(bundled_config, '["${SLACK_WEBHOOK_URL}", "${PAGER_API_KEY}", "ops@example.com"]')
    out = tmp_path / "rules.yml"
    args = ["alerts", "export", "--config-dir", str(bundled_config), "-e", "staging"]
    assert main([*args, "--out", str(out)]) == 0
    text = out.read_text()
    assert TOKEN not in text and PAGER not in text
    rule = yaml.safe_load(text)["groups"][0]["rules"][0]
    notification = rule["annotations"]["notification"]
    assert "https://hooks.slack.com/services/T000/B000/" in notification
    assert "ops@example.com" in notification
    assert "errors; webhook https://hooks.slack.com/services/" in rule["annotations"]["description"]
    # What `get` shows of the same value is what the rule file holds.
    assert main(["get", "alerts", "--config-dir", str(bundled_config), "-e", "staging"]) == 0
    shown = capsys.readouterr().out
    assert TOKEN not in shown and PAGER not in shown


def test_rules_built_in_python_mask_webhook_tokens():
    rules = prometheus_rules(
        {
            "alerts": [
                {
                    "name": "a",
                    "condition": "config_load_time > 1",
                    "description": f"see {WEBHOOK}",
                    "notification": [WEBHOOK, "team@example.com"],
                }
            ]
        }
    )
    annotations = rules["groups"][0]["rules"][0]["annotations"]
    assert TOKEN not in repr(annotations)
    assert annotations["notification"].endswith(", team@example.com")


def test_masked_rules_pass_promtool(tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        if IN_CI:
            pytest.fail("promtool is not installed (CI=true)")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    rules = tmp_path / "rules.yml"
    alert = {"name": "a", "condition": "config_load_time > 1", "notification": [WEBHOOK]}
    rules.write_text(yaml.safe_dump(prometheus_rules({"alerts": [alert]})))
    check = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr
