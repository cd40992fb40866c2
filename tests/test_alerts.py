"""Alert conditions: parsing, validation at load and in `cfgcore validate`, and the export
to Prometheus rules, checked by promtool (syntax, and behaviour on sample series)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from cfgcore.cli import main
from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigValidationError
from cfgcore.observability.alerts import (
    METRICS,
    OPERATORS,
    alert_problems,
    parse_condition,
    prometheus_rules,
)
from tests.conftest import IN_CI, copy_bundled_config
from tests.texts import any_text

PROMTOOL = shutil.which("promtool")


@pytest.fixture
def promtool():
    if PROMTOOL is None:
        if IN_CI:
            pytest.fail("promtool is not installed (CI=true; .ci/run installs Debian's prometheus)")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return PROMTOOL


@pytest.fixture
def config_dir(tmp_path):
    return copy_bundled_config(tmp_path / "config")


def _set_condition(config_dir, old: str, new: str) -> None:
    path = config_dir / "base.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


# --------------------------------------------------------------------------- parsing


@given(
    st.sampled_from(sorted(METRICS)),
    st.sampled_from(OPERATORS),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from(["", " ", "  "]),
)
def test_every_known_metric_op_number_parses(metric, op, number, space):
    cond = parse_condition(f"{space}{metric}{space}{op}{space}{number!r}{space}")
    assert (cond.metric, cond.op, cond.threshold) == (metric, op, float(repr(number)))
    assert cond.promql().startswith(METRICS[metric])
    assert cond.promql().endswith(f" {op} {float(repr(number))!r}")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("config_load_time", "malformed condition"),
        ("config_load_time >", "malformed condition"),
        ("config_load_time > high", "malformed condition"),
        ("config_load_time => 1", "malformed condition"),
        ("config_load_time > 1 and cpu_utilization > 1", "malformed condition"),
        ("rate(x[5m]) > 1", "malformed condition"),
        ("feature_flag_eror_rate > 0.01", "did you mean 'feature_flag_error_rate'"),
        ("memory > 1", "unknown metric 'memory'"),
        (42, "expected a string"),
        (None, "expected a string"),
    ],
)
def test_unusable_conditions_say_why(text, message):
    with pytest.raises(ValueError, match=message):
        parse_condition(text)


@given(any_text(max_size=40))
def test_arbitrary_text_parses_or_raises_value_error(text):
    try:
        cond = parse_condition(text)
    except ValueError:
        return
    assert cond.metric in METRICS and cond.op in OPERATORS


def test_alert_problems_name_each_key_path():
    config = {
        "alerts": [
            {"name": "ok_alert", "condition": "config_load_time > 1", "severity": "info"},
            {"name": "bad-name", "condition": "nope > 1", "severity": "info"},
            {"name": "ok_alert", "condition": "config_load_time >", "for": "soon"},
            "not a mapping",
        ]
    }
    found = dict(alert_problems(config))
    assert set(found) == {
        "alerts.1.name", "alerts.1.condition", "alerts.2.name", "alerts.2.condition",
        "alerts.2.for", "alerts.3",
    }  # fmt: skip
    assert "duplicate" in found["alerts.2.name"]
    assert alert_problems({"alerts": "x"}) == [("alerts", "expected a list of alerts, got str")]
    assert alert_problems({}) == []


# --------------------------------------------------------------------------- the gate


def test_an_unknown_metric_is_refused_at_load_with_file_line_and_key_path(config_dir):
    _set_condition(config_dir, "feature_flag_error_rate > 0.01", "feature_flag_eror_rate > 0.01")
    m = ConfigurationManager(config_dir, environ={})
    with pytest.raises(ConfigValidationError) as info:
        m.load_environment_config("staging")
    message = str(info.value)
    assert "base.yaml:241: alerts.1.condition: unknown metric 'feature_flag_eror_rate'" in message
    assert m.version == 0


def test_a_malformed_condition_in_a_reload_keeps_the_last_good_one(config_dir):
    m = ConfigurationManager(config_dir, environ={})
    try:
        m.load_environment_config("staging")
        _set_condition(config_dir, "config_validation_success_rate < 0.95", "success < < 1")
        assert m.reload() is False
        assert "alerts.0.condition: malformed condition" in str(m.last_error)
        assert m.get("alerts.0.condition") == "config_validation_success_rate < 0.95"
    finally:
        m.close()


def test_cfgcore_validate_reports_the_alert(config_dir, capsys):
    _set_condition(config_dir, "feature_flag_error_rate > 0.01", "feature_flag_error_rate >> 1")
    code = main(["validate", "--config-dir", str(config_dir), "-e", "staging"])
    out = capsys.readouterr().out
    assert code == 1
    assert "base.yaml:241: error: alerts.1.condition: malformed condition" in out
    assert "[observability.alert_condition]" in out


# --------------------------------------------------------------------------- export


def test_export_to_stdout_and_an_atomic_file_round_trips_as_yaml(config_dir, tmp_path, capsys):
    assert main(["alerts", "export", "--config-dir", str(config_dir), "-e", "staging"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    out = tmp_path / "rules" / "cfgcore.rules.yml"
    out.parent.mkdir()
    args = ["alerts", "export", "--config-dir", str(config_dir), "-e", "staging", "--out"]
    assert main([*args, str(out)]) == 0
    assert "wrote 2 alerting rules" in capsys.readouterr().err
    written = yaml.safe_load(out.read_text())
    assert written == printed
    config = ConfigurationManager(config_dir, environ={}).build_config("staging")
    assert written == prometheus_rules(config, group="cfgcore-staging")
    (rule_a, rule_b) = written["groups"][0]["rules"]
    assert rule_a["alert"] == "config_validation_failure"
    assert rule_a["labels"] == {"severity": "critical", "environment": "staging"}
    assert rule_a["annotations"]["notification"] == "team-alerts@company.com"
    assert "cfgcore_flag_evaluation_errors_total" in rule_b["expr"]
    assert [p for p in os.listdir(out.parent)] == ["cfgcore.rules.yml"]  # no temp left


def test_export_refuses_a_bad_alert_and_writes_nothing(config_dir, tmp_path, capsys):
    _set_condition(config_dir, "feature_flag_error_rate > 0.01", "flag_errors > 0.01")
    out = tmp_path / "rules.yml"
    code = main(["alerts", "export", "--config-dir", str(config_dir), "-e", "staging",
                 "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and not out.exists()
    assert "base.yaml:241: alerts.1.condition: unknown metric 'flag_errors'" in err


def test_for_is_exported_as_a_prometheus_duration():
    config = {
        "alerts": [
            {"name": "a", "condition": "config_load_time > 2", "severity": "warning", "for": "5m"},
            {"name": "b", "condition": "memory_usage > 1e9", "severity": "info", "for": 90},
            {"name": "c", "condition": "cpu_utilization > 0.9", "severity": "info", "for": 1.5},
        ]
    }
    rules = prometheus_rules(config)["groups"][0]["rules"]
    assert [r["for"] for r in rules] == ["300s", "90s", "1500ms"]
    assert "environment" not in rules[0]["labels"]


def _export(config_dir, tmp_path, extra_alerts: str = "") -> str:
    if extra_alerts:
        path = config_dir / "base.yaml"
        path.write_text(path.read_text().replace("alerts:\n", "alerts:\n" + extra_alerts, 1))
    out = tmp_path / "cfgcore.rules.yml"
    assert main(["alerts", "export", "--config-dir", str(config_dir), "-e", "staging",
                 "--out", str(out)]) == 0  # fmt: skip
    return str(out)


EVERY_METRIC = "".join(
    f"  - name: every_{i}\n    condition: {name} > 1\n    severity: info\n    for: 2m\n"
    for i, name in enumerate(sorted(METRICS))
)


def test_promtool_accepts_the_exported_rules(promtool, config_dir, tmp_path):
    rules = _export(config_dir, tmp_path, EVERY_METRIC)
    proc = subprocess.run([promtool, "check", "rules", rules], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(METRICS) + 2} rules found" in proc.stdout


def test_promtool_fires_the_rules_on_the_series_cfgcore_exports(promtool, config_dir, tmp_path):
    """promtool evaluates the exported expressions on sample series named as cfgcore
    exports them: a failing validation and a high flag error rate fire, healthy
    series do not."""
    rules_path = _export(config_dir, tmp_path)
    with open(rules_path) as fh:
        rules = {r["alert"]: r for r in yaml.safe_load(fh)["groups"][0]["rules"]}

    def expect(name):
        r = rules[name]
        return [{"exp_labels": {**r["labels"], "alertname": name},
                 "exp_annotations": r["annotations"]}]  # fmt: skip

    evaluation = {"cfgcore_flag_evaluations_total{flag=\"a\",variant=\"on\",reason=\"STATIC\"}":
                  "0+100x10"}  # fmt: skip
    cases = [
        ({'cfgcore_config_validations_total{result="passed"}': "0+10x10",
          'cfgcore_config_validations_total{result="failed"}': "0+1x10"},
         {"config_validation_failure": expect("config_validation_failure")}),
        ({'cfgcore_config_validations_total{result="passed"}': "0+10x10"},
         {"config_validation_failure": []}),
        ({**evaluation, 'cfgcore_flag_evaluation_errors_total{code="FLAG_NOT_FOUND"}': "0+5x10"},
         {"feature_flag_high_error_rate": expect("feature_flag_high_error_rate")}),
        ({**evaluation, 'cfgcore_flag_evaluation_errors_total{code="FLAG_NOT_FOUND"}': "0x10"},
         {"feature_flag_high_error_rate": []}),
        (evaluation, {"feature_flag_high_error_rate": []}),  # no error series at all
    ]  # fmt: skip
    tests = [
        {
            "interval": "1m",
            "input_series": [{"series": s, "values": v} for s, v in series.items()],
            "alert_rule_test": [
                {"eval_time": "10m", "alertname": name, "exp_alerts": exp}
                for name, exp in expected.items()
            ],
        }
        for series, expected in cases
    ]
    spec = tmp_path / "rules.test.yml"
    spec.write_text(yaml.safe_dump({"rule_files": [rules_path], "tests": tests}))
    proc = subprocess.run([promtool, "test", "rules", str(spec)], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_export_of_one_rule_says_one_rule(config_dir, tmp_path, capsys):
    """One alert: "wrote 1 alerting rule", not "rules"."""
    base = config_dir / "base.yaml"
    doc = yaml.safe_load(base.read_text())
    doc["alerts"] = doc["alerts"][:1]
    base.write_text(yaml.safe_dump(doc))
    out = tmp_path / "one.rules.yml"
    args = ["alerts", "export", "--config-dir", str(config_dir), "-e", "staging", "--out"]
    assert main([*args, str(out)]) == 0
    assert "wrote 1 alerting rule to" in capsys.readouterr().err
    assert len(yaml.safe_load(out.read_text())["groups"][0]["rules"]) == 1


def test_the_alerts_list_set_whole_by_cfgcore_alerts_is_served(config_dir):
    """docs/configuration.md: a list element cannot be set alone, so CFGCORE__ALERTS is
    set to the whole list as JSON; the alert rule judges the list the variable gives,
    not the ``${CFGCORE__ALERTS}`` reference validation shows in its place."""
    alerts = [
        {"name": "errors", "condition": "feature_flag_error_rate > 0.01", "severity": "warning"}
    ]
    m = ConfigurationManager(config_dir, environ={"CFGCORE__ALERTS": json.dumps(alerts)})
    try:
        m.load_environment_config("staging")
        assert m.get("alerts.0.name") == "errors"
    finally:
        m.close()
    bad = [{"name": "errors", "condition": "feature_flag_eror_rate > 0.01", "severity": "warning"}]
    m = ConfigurationManager(config_dir, environ={"CFGCORE__ALERTS": json.dumps(bad)})
    with pytest.raises(ConfigValidationError) as info:
        m.load_environment_config("staging")
    message = str(info.value)
    assert "alerts.0.condition: unknown metric 'feature_flag_eror_rate'" in message
    assert "set by environment variable CFGCORE__ALERTS" in message
    assert "expected a list of alerts" not in message
