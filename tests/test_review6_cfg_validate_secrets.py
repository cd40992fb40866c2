"""``cfgcore validate`` judges which variables are secrets with the variables the build
used, as ``cfgcore setup`` does.

setup's not-ready report ends with "then check: ... cfgcore validate". Setup (and the
health report) decide which ``${VAR}`` references read a secret with the build's
variables, ``CFGCORE_SECRET_VARS`` from the ``.env`` file beside the configuration
directory included; validate asked only the process environment, so a secret named
there and left empty was reported by setup and called valid, without a word, by the
command setup tells the operator to run.
"""

from __future__ import annotations

import json
import os

import pytest

from cfgcore.cli import main
from cfgcore.cli.scaffold import check_ready


@pytest.fixture
def project(monkeypatch, tmp_path):
    for var in list(os.environ):
        if var.startswith(("CFGCORE", "CONFIG_")) or var == "BILLING_DSN_TEXT":
            monkeypatch.delenv(var)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    d = tmp_path / "config"
    d.mkdir()
    (d / "base.yaml").write_text("custom:\n  billing: ${BILLING_DSN_TEXT:-}\n")
    (d / "development.yaml").write_text("{}\n")
    # The .env file beside the configuration directory names the variable a secret.
    (tmp_path / ".env").write_text("CFGCORE_SECRET_VARS=BILLING_DSN_TEXT\n")
    return d


def _empty_secret_paths(d, capsys) -> list[str]:
    argv = ["validate", "--config-dir", str(d), "-e", "development", "--format", "json"]
    assert main(argv) == 0  # a warning: loading accepts ${VAR:-} left empty
    doc = json.loads(capsys.readouterr().out)
    return [r["key_path"] for r in doc["results"] if r["rule_id"] == "secrets.empty"]


def test_secret_variable_named_in_the_env_file_is_reported_by_validate(project, capsys):
    assert [p for p, _ in check_ready(project, "development").empty_secrets] == ["custom.billing"]
    assert _empty_secret_paths(project, capsys) == ["custom.billing"]


def test_filled_from_the_env_file_it_is_not_reported(project, capsys):
    env = project.parent / ".env"
    env.write_text(env.read_text() + "BILLING_DSN_TEXT=pg-billing-0a9f\n")
    assert check_ready(project, "development").empty_secrets == []
    assert _empty_secret_paths(project, capsys) == []
