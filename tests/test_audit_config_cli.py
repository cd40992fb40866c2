"""Audit of the configuration commands as a user meets them: what ``cfgcore show``,
``get``, ``explain`` and ``eval`` print must be what a service would load."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import run_cli as run
from tests.conftest import scaffolded_config


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    """A scaffolded staging directory, selected through the environment like in a pod."""
    return scaffolded_config(tmp_path, monkeypatch)


def _break_premium_bitrate(cfg):
    base = cfg / "base.yaml"
    text = base.read_text()
    assert "      premium: 320\n" in text
    base.write_text(text.replace("      premium: 320\n", "      premium: high\n", 1))
    line = text[: text.index("      premium: 320\n")].count("\n") + 1
    return f"base.yaml:{line}: music_streaming.audio_quality.bitrates.premium"


@pytest.mark.parametrize(
    "argv",
    [
        ["get", "music_streaming.audio_quality.bitrates.premium"],
        ["show"],
        ["show", "music_streaming.audio_quality", "--format", "json"],
        ["explain", "music_streaming.audio_quality.bitrates.premium"],
        ["eval", "enhanced_anomaly_detection", "--ctx", "user_id=1"],
    ],
)
def test_inspection_refuses_what_a_load_refuses(cfg, capsys, argv):
    where = _break_premium_bitrate(cfg)
    code, out, err = run(capsys, *argv)
    assert code == 1
    assert out == ""  # nothing a script could take for the live value
    assert where in err and "expected an integer" in err
    assert f"cfgcore {argv[0]} --no-validate" in err
    assert all(line.startswith("cfgcore: error: ") for line in err.splitlines())


def test_no_validate_inspects_a_refused_configuration(cfg, capsys):
    _break_premium_bitrate(cfg)
    code, out, _ = run(
        capsys, "get", "music_streaming.audio_quality.bitrates.premium", "--no-validate"
    )
    assert (code, out) == (0, "high\n")
    code, out, err = run(
        capsys, "show", "music_streaming.audio_quality", "--format", "json", "--no-validate"
    )
    assert code == 0 and json.loads(out)["bitrates"]["premium"] == "high"
    assert "not validated" in err
    code, out, _ = run(
        capsys, "explain", "music_streaming.audio_quality.bitrates.premium", "--no-validate"
    )
    assert code == 0 and "base.yaml:" in out


def test_an_override_a_load_refuses_is_refused_naming_the_variable(cfg, capsys, monkeypatch):
    monkeypatch.setenv("CFGCORE__SERVER__PORT", "70000")
    code, out, err = run(capsys, "get", "server.port")
    assert code == 1 and out == ""
    assert "server.port" in err and "CFGCORE__SERVER__PORT" in err
    code, out, _ = run(capsys, "get", "server.port", "--no-validate")
    assert (code, out) == (0, "70000\n")


def test_inspection_writes_no_audit_entries(cfg, capsys, monkeypatch, tmp_path):
    """A read is not a load of the service's configuration: with the service's audit log
    configured, `cfgcore get` run by hand (perhaps as another user) must not append to
    it or create its lock and head files."""
    audit = tmp_path / "logs" / "audit.jsonl"
    audit.parent.mkdir()
    monkeypatch.setenv("CFGCORE_AUDIT_LOG", str(audit))
    for argv in (
        ["get", "environment"],
        ["show"],
        ["explain", "environment"],
        ["eval", "enhanced_anomaly_detection"],
        ["diff", "staging", "staging"],
        ["health"],
        ["alerts", "export"],
    ):
        code, _, err = run(capsys, *argv)
        assert code == 0, (argv, err)
    assert os.listdir(audit.parent) == []


def test_config_management_audit_log_is_not_written_by_inspection(cfg, capsys):
    base = cfg / "base.yaml"
    text = base.read_text()
    assert "  audit_log: null" in text
    base.write_text(text.replace("  audit_log: null", "  audit_log: audit.jsonl", 1))
    code, out, _ = run(capsys, "get", "config_management.audit_log")
    assert (code, out) == (0, "audit.jsonl\n")
    assert not (cfg / "audit.jsonl").exists()
