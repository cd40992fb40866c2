"""The configuration commands of the ``cfgcore`` CLI and ``python -m cfgcore.setup``."""

from __future__ import annotations

import json
import os
import re
import selectors
import subprocess
import sys
import time

import pytest
import yaml

from cfgcore.runtime.atomicio import atomic_write_text
from cfgcore.setup import main as setup_main
from tests.conftest import run_cli as run
from tests.conftest import scaffolded_config

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__import__("cfgcore").__file__)))


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    """A scaffolded staging directory, selected through the environment like in a pod."""
    return scaffolded_config(tmp_path, monkeypatch, "staging", "production")


# The secrets the bundled production configuration reads (``${VAR:-}``): `cfgcore setup
# -e production` reports production not ready (exit 1) while one is empty.
PRODUCTION_SECRETS = {
    var: f"test-{var.lower()}-0123456789"
    for var in (
        "CFGCORE_ENCRYPTION_KEY",
        "JWT_SIGNING_KEY",
        "SPOTIFY_API_SECRET",
        "KAFKA_SASL_PASSWORD",
        "POSTGRES_PASSWORD",
        "ELASTICSEARCH_PASSWORD",
    )
}


def test_setup_scaffolds_and_refuses_to_overwrite(tmp_path, capsys):
    d = tmp_path / "c"
    assert setup_main(["--environment", "staging", "-o", str(d)]) == 0
    assert sorted(os.listdir(d)) == ["base.yaml", "flags.yaml", "staging.yaml"]
    assert setup_main(["--environment", "staging", "-o", str(d)]) == 1
    assert "already exist" in capsys.readouterr().err
    assert setup_main(["--all-environments", "--force", "-o", str(d)]) == 0
    assert len(os.listdir(d)) == 6


def test_setup_adds_an_environment_and_keeps_the_users_files(tmp_path, capsys, monkeypatch):
    # A second environment for a directory already set up: the missing file is written,
    # the edited base.yaml and flags.yaml are kept (only --force overwrote them before).
    for var, value in PRODUCTION_SECRETS.items():  # production is ready only with them
        monkeypatch.setenv(var, value)
    d = tmp_path / "c"
    assert setup_main(["-e", "staging", "-o", str(d)]) == 0
    (d / "base.yaml").write_text("# edited by the team\n" + (d / "base.yaml").read_text())
    flags_before = (d / "flags.yaml").read_bytes()
    capsys.readouterr()
    assert setup_main(["-e", "production", "-o", str(d)]) == 0
    out = capsys.readouterr().out
    assert sorted(os.listdir(d)) == ["base.yaml", "flags.yaml", "production.yaml", "staging.yaml"]
    assert (d / "base.yaml").read_text().startswith("# edited by the team")
    assert (d / "flags.yaml").read_bytes() == flags_before
    assert f"wrote {d / 'production.yaml'}" in out
    assert "kept base.yaml, flags.yaml (already there; --force overwrites)" in out


def test_get_show_and_secret_redaction(cfg, capsys, monkeypatch):
    code, out, _ = run(capsys, "get", "music_streaming.audio_quality.premium_bitrate")
    assert (code, out) == (0, "320\n")
    code, out, _ = run(capsys, "get", "data_sources.kafka_cluster.bootstrap_servers")
    assert json.loads(out) == ["kafka-staging-1.internal:9092", "kafka-staging-2.internal:9092"]
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "hunter2-do-not-print")
    code, out, _ = run(capsys, "show", "--format", "json")
    assert code == 0 and "hunter2-do-not-print" not in out
    assert json.loads(out)["data_sources"]["kafka_cluster"]["sasl_password"] == "***redacted***"
    code, out, err = run(capsys, "show", "music_streaming.audio_quality", "-e", "production")
    assert yaml.safe_load(out)["bitrates"]["premium"] == 320
    # Which directory was chosen and how, on stderr (stdout stays a parseable document).
    assert err == f"# production from {cfg} (CFGCORE_CONFIG_DIR)\n"
    code, out, _ = run(capsys, "get", "data_sources.kafka_cluster.sasl_password")
    assert "hunter2" not in out


def test_explain_names_layer_file_line_and_env_var(cfg, capsys, monkeypatch):
    code, out, _ = run(capsys, "explain", "data_sources.kafka_cluster.bootstrap_servers")
    assert code == 0
    lines = out.splitlines()
    assert "staging.yaml:" in lines[1] and "set by" in lines[1]
    assert "base.yaml:" in lines[2] and "overrides" in lines[2]
    monkeypatch.setenv("CFGCORE__MUSIC_STREAMING__AUDIO_QUALITY__BITRATES__PREMIUM", "256")
    code, out, _ = run(capsys, "explain", "music_streaming.audio_quality.bitrates.premium")
    assert "= 256" in out and "$CFGCORE__MUSIC_STREAMING__AUDIO_QUALITY__BITRATES__PREMIUM" in out
    code, out, err = run(capsys, "explain", "music_streaming.audio_quality.bitrates.premum")
    assert code == 1 and out == ""
    assert err.startswith(
        "cfgcore: error: music_streaming.audio_quality.bitrates.premum: not set in environment "
        "'staging'; no layer defines it (did you mean "
        "'music_streaming.audio_quality.bitrates.premium'"
    )
    assert len(err.splitlines()) == 1


def test_diff_between_environments(cfg, capsys):
    code, out, err = run(capsys, "diff", "staging", "production")
    assert code == 1  # like diff(1): they differ
    assert "~ environment: staging -> production" in out
    assert "~ app.log_level: INFO -> WARNING" in out
    assert "music_streaming.audio_quality" not in out  # identical in both: not listed
    assert "difference(s) between staging and production" in err
    code, out, err = run(capsys, "diff", "staging", "staging")
    assert (code, out) == (0, "")
    code, out, err = run(capsys, "diff", "staging", "production", "-q")
    assert code == 1 and out and err == ""


def test_unknown_key_names_the_environment_and_suggests_close_keys(cfg, capsys):
    code, out, err = run(capsys, "get", "music_streaming.audio_quality.premium_bitrat")
    assert code == 1 and out == ""
    assert err.startswith(
        "cfgcore: error: music_streaming.audio_quality.premium_bitrat: not set in environment "
        "'staging' (did you mean 'music_streaming.audio_quality.premium_bitrate'"
    )
    assert ".yaml" not in err  # no unrelated file named
    # the right leaf under the wrong section is found by its last part
    code, _, err = run(capsys, "get", "audio_quality.premium_bitrate")
    assert "'music_streaming.audio_quality.premium_bitrate'" in err


def test_unknown_flag_exits_1_naming_the_flags_file_with_did_you_mean(cfg, capsys):
    flags = cfg / "flags.yaml"
    code, out, err = run(capsys, "eval", "enhanced_anomaly_detectoin", "--ctx", "user_id=1")
    assert (code, out) == (1, "")
    assert err == (
        f"cfgcore: error: enhanced_anomaly_detectoin: unknown flag in {flags} "
        "(did you mean 'enhanced_anomaly_detection'?)\n"
    )
    code, _, err = run(capsys, "eval", "zzzz")
    assert code == 1 and err == f"cfgcore: error: zzzz: unknown flag in {flags}\n"


def test_unknown_flag_served_from_the_bundled_demo_flags_says_so(tmp_path, monkeypatch, capsys):
    """No flags file written yet: the bundled demo flags serve, and the error names them
    (a user evaluating a flag of their own otherwise saw only 'unknown flag')."""
    from cfgcore.engine import bundled_flags_path

    for var in list(os.environ):
        if var.startswith(("CFGCORE", "CONFIG_")):
            monkeypatch.delenv(var)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "eval", "my_checkout_flag")
    assert code == 1
    assert err == f"cfgcore: error: my_checkout_flag: unknown flag in {bundled_flags_path()}\n"


def test_eval_flag_with_typed_context(cfg, capsys):
    code, out, _ = run(
        capsys, "eval", "enhanced_anomaly_detection", "--json", "--ctx", "user_id=12345",
        "user_segment=premium",
    )  # fmt: skip
    doc = json.loads(out)
    assert code == 0 and doc["value"] is True and doc["variant"] == "on"
    code, out, _ = run(capsys, "eval", "enhanced_anomaly_detection", "--ctx", "user_segment=free")
    assert "enhanced_anomaly_detection = false" in out


def test_eval_prints_object_values_as_json(cfg, capsys):
    code, out, _ = run(capsys, "eval", "recommendation_algorithm_v2", "--ctx", "user_id=42")
    value = out.split(" = ", 1)[1].split("  (variant", 1)[0]
    assert code == 0 and json.loads(value)["algorithm"] in {
        "matrix_factorization", "deep_neural_network", "hybrid_ensemble",
    }  # fmt: skip
    code, out, _ = run(
        capsys, "eval", "recommendation_algorithm_v2", "--json", "--ctx", "user_id=42"
    )
    assert isinstance(json.loads(out)["value"], dict)


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["get", "nope.key"], {}, r"^cfgcore: error: nope\.key: not set in environment 'staging'"),
        (["get", "server.port"], {"CFGCORE__SERVER__PORT": "abc"}, "CFGCORE__SERVER__PORT"),
        (["get", "environment", "-e", "qa"], {}, "no configuration file for environment 'qa'"),
        (["show", "--profile", "turbo"], {}, "unknown deployment profile 'turbo'"),
    ],
)
def test_errors_are_one_line_with_nonzero_exit(cfg, capsys, monkeypatch, argv, env, expected):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    code, out, err = run(capsys, *argv)
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert re.search(expected, err)


def test_missing_variable_error_names_file_key_and_variable(cfg, capsys):
    staging = cfg / "staging.yaml"
    staging.write_text(staging.read_text() + "\nextra:\n  api_token: ${PAYMENT_API_TOKEN}\n")
    code, _, err = run(capsys, "get", "environment")
    assert code == 1
    assert "staging.yaml" in err and "extra.api_token" in err and "PAYMENT_API_TOKEN" in err


def test_python_dash_m_entry_points(cfg):
    env = {**os.environ, "PYTHONPATH": SRC}
    out = subprocess.run(
        [sys.executable, "-m", "cfgcore", "get", "environment"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert out.stdout == "staging\n"
    target = cfg.parent / "scaffolded"
    subprocess.run(
        [sys.executable, "-m", "cfgcore.setup", "--environment", "staging", "-o", str(target)],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert sorted(os.listdir(target)) == ["base.yaml", "flags.yaml", "staging.yaml"]


def test_watch_prints_changes_as_they_happen(cfg):
    env = {**os.environ, "PYTHONPATH": SRC, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cfgcore", "watch", "--count", "1", "--timeout", "30"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        sel = selectors.DefaultSelector()
        sel.register(proc.stderr, selectors.EVENT_READ)
        deadline = time.monotonic() + 30
        banner = ""
        while "watching" not in banner and time.monotonic() < deadline:
            if sel.select(timeout=1):
                banner += proc.stderr.readline()
        assert "watching" in banner
        staging = cfg / "staging.yaml"
        atomic_write_text(
            staging, staging.read_text() + "\nanomaly_detection:\n  threshold: 0.87\n"
        )
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert "reload anomaly_detection.threshold: 0.8 -> 0.87" in out


def test_setup_reads_config_environment_as_the_manager_does(tmp_path, monkeypatch, capsys):
    # The manager accepts CONFIG_ENVIRONMENT=" Production" (stripped, lower-cased).
    monkeypatch.setenv("CONFIG_ENVIRONMENT", " Production")
    for var, value in PRODUCTION_SECRETS.items():  # production is ready only with them
        monkeypatch.setenv(var, value)
    d = tmp_path / "c"
    assert setup_main(["-o", str(d)]) == 0, capsys.readouterr().err
    assert sorted(os.listdir(d)) == ["base.yaml", "flags.yaml", "production.yaml"]


def test_eval_in_a_directory_without_flags_says_so(tmp_path, capsys, monkeypatch):
    # "unknown flag" alone sent a user hunting for a typo when the directory simply has
    # no flags file (or an empty one).
    d = tmp_path / "c"
    d.mkdir()
    (d / "base.yaml").write_text("app:\n  x: 1\n")
    (d / "staging.yaml").write_text("{}\n")
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    code, _, err = run(capsys, "eval", "--config-dir", str(d), "-e", "staging", "new_feature")
    assert code == 1
    assert "new_feature: unknown flag (this configuration serves no flags" in err
    (d / "flags.yaml").write_text("flags: {}\n")
    code, _, err = run(capsys, "eval", "--config-dir", str(d), "-e", "staging", "new_feature")
    assert code == 1 and f"unknown flag ({d / 'flags.yaml'} holds no flags)" in err
