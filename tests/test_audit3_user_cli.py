"""Round 3, the new user: the command line's wrong usage and wrong paths.

A usage error (an option value that cannot mean anything) exits 2, as README's
"It is made for scripts" promises, instead of running (``watch --timeout nan`` ran
forever) or exiting 1 as if the configuration were at fault. A directory where a file
is expected, or a configuration directory that is missing or is a file, says so and
what to pass instead. ``show`` of a scalar prints the value, not a YAML document end.
"""

from __future__ import annotations

import json
import os

import pytest
import yaml

from cfgcore.cli import build_parser
from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from tests.conftest import run_cli as run
from tests.conftest import scaffolded_config


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    return scaffolded_config(tmp_path, monkeypatch, "staging")


def _usage_error(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("item", ["user_id", "=12345", "region"])
def test_a_malformed_ctx_item_is_a_usage_error_naming_it(capsys, item):
    err = _usage_error(capsys, ["eval", "enhanced_anomaly_detection", "--ctx", "a=1", item])
    assert f"argument --ctx: {item!r}: expected KEY=VALUE" in err


def test_ctx_items_are_typed_as_before(cfg, capsys):
    code, out, _ = run(
        capsys, "eval", "enhanced_anomaly_detection", "--ctx", "user_id=1",
        "user_segment=premium", "region=EU",
    )  # fmt: skip
    assert code == 0
    assert out.startswith("enhanced_anomaly_detection = true  (variant on")


@pytest.mark.parametrize(
    "argv",
    [
        ["watch", "--timeout", "nan"],  # never reached: watched forever
        ["watch", "--timeout", "inf"],
        ["watch", "--timeout", "-5"],
        ["watch", "--timeout", "0"],
        ["watch", "--count", "0"],
        ["watch", "--count", "-1"],  # exited before the first event
        ["health", "--max-staleness", "nan"],
        ["health", "--max-staleness", "-1"],
        ["health", "--max-staleness", "inf"],
    ],
)
def test_meaningless_counts_and_durations_are_usage_errors(capsys, argv):
    err = _usage_error(capsys, argv)
    assert f"argument {argv[1]}: {argv[2]!r}: expected" in err


def test_good_counts_and_durations_still_parse():
    args = build_parser().parse_args(["watch", "--count", "2", "--timeout", "1.5"])
    assert (args.count, args.timeout) == (2, 1.5)
    assert build_parser().parse_args(["watch"]).timeout == 0  # no deadline
    assert build_parser().parse_args(["health", "--max-staleness", "30"]).max_staleness == 30


def test_an_unknown_rule_to_disable_is_a_usage_error_with_suggestions(cfg, capsys):
    code, out, err = run(capsys, "validate", "--disable", "structure.unknown_ky")
    assert code == 2 and out == ""
    assert err.startswith("cfgcore: error: --disable: unknown rule id 'structure.unknown_ky'")
    assert "did you mean 'structure.unknown_key'" in err and "--list-rules" in err
    assert "<input>" not in err


def test_validate_given_a_directory_says_to_use_config_dir(cfg, capsys):
    code, out, err = run(capsys, "validate", str(cfg))
    assert code == 1 and out == ""
    assert err == (
        f"cfgcore: error: {cfg}: is a directory; validate takes configuration files, "
        f"or a configuration directory as --config-dir {cfg} -e ENVIRONMENT\n"
    )


def test_a_missing_configuration_directory_is_named_as_missing(tmp_path, cfg, capsys):
    missing = tmp_path / "no-such-dir"
    code, _, err = run(capsys, "show", "--config-dir", str(missing))
    assert code == 1
    assert err.startswith(f"cfgcore: error: {missing}: configuration directory does not exist")
    assert "CFGCORE_CONFIG_DIR" in err
    with pytest.raises(ConfigError, match="configuration directory does not exist"):
        ConfigurationManager(missing, environ={}).load_environment_config("staging")


def test_a_file_given_as_configuration_directory_is_named_as_a_file(cfg, capsys):
    base = cfg / "base.yaml"
    code, _, err = run(capsys, "get", "app.name", "--config-dir", str(base))
    assert code == 1
    assert err.startswith(f"cfgcore: error: {base}: not a directory")
    assert "base.yaml and the environment files" in err


def test_an_existing_directory_without_the_environment_still_lists_the_others(cfg, capsys):
    code, _, err = run(capsys, "get", "app.name", "-e", "qa")
    assert code == 1
    assert "no configuration file for environment 'qa'" in err and "available: staging" in err


@pytest.mark.parametrize(
    ("key", "value"),
    [("app.debug", False), ("app.name", "music-streaming-platform"), ("server.port", 8080)],
)
def test_show_of_a_scalar_prints_the_value_without_a_document_end(cfg, capsys, key, value):
    code, out, _ = run(capsys, "show", key)
    assert code == 0
    assert "..." not in out
    assert out.count("\n") == 1 and yaml.safe_load(out) == value


def test_show_of_a_section_is_unchanged(cfg, capsys):
    code, out, _ = run(capsys, "show", "app")
    assert code == 0
    assert yaml.safe_load(out)["name"] == "music-streaming-platform"


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_silences_the_informational_lines_on_stderr(cfg, tmp_path, capsys, where):
    # README: "-q also silences the informational lines on stderr"
    def argv(*command):
        return ["-q", *command] if where == "before" else [*command, "-q"]

    code, out, err = run(capsys, *argv("show", "app.name"))
    assert (code, out, err) == (0, "music-streaming-platform\n", "")
    target = tmp_path / "schema.json"
    code, out, err = run(capsys, *argv("schema", "-o", str(target)))
    assert (code, out, err) == (0, "", "") and target.exists()
    code, out, err = run(capsys, *argv("watch", "--timeout", "0.05"))
    assert (code, out, err) == (0, "", "")


def test_without_quiet_the_informational_lines_stay(cfg, tmp_path, capsys):
    code, _, err = run(capsys, "show", "app.name")
    assert code == 0 and err.startswith(f"# staging from {cfg}")
    code, _, err = run(capsys, "watch", "--timeout", "0.05")
    assert code == 0 and err.startswith(f"watching {cfg}")


@pytest.mark.parametrize("var", ["CONFIG_ENVIRONMENT", "CFGCORE_ENVIRONMENT"])
def test_setup_names_the_variable_that_chose_an_environment_without_defaults(
    tmp_path, monkeypatch, capsys, var
):
    for name in ("CONFIG_ENVIRONMENT", "CFGCORE_ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(var, "prod")
    code, out, err = run(capsys, "setup", "-o", str(tmp_path / "c"))
    assert code == 1 and out == ""
    assert err == (
        f"cfgcore: error: <environment>: {var}='prod': no embedded defaults for that "
        f"environment; choose one of development, staging, production, test with -e, "
        f"or unset {var}\n"
    )
    assert not (tmp_path / "c").exists()
    code, out, _ = run(capsys, "setup", "-e", "staging", "-o", str(tmp_path / "c"))
    assert code == 0 and "wrote" in out  # -e wins over the variable, as before


def test_setup_next_hint_quotes_a_directory_with_spaces(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CONFIG_ENVIRONMENT", raising=False)
    monkeypatch.delenv("CFGCORE_ENVIRONMENT", raising=False)
    target = str(tmp_path / "my config")
    code, out, _ = run(capsys, "setup", "-o", target)
    assert code == 0
    assert f"next: CFGCORE_CONFIG_DIR='{target}' CONFIG_ENVIRONMENT=development" in out


@pytest.mark.parametrize("url", ["notaurl", "localhost:8080/health/ready", "ftp://h/x", "http://"])
def test_health_url_that_is_no_http_url_is_a_usage_error(capsys, url):
    err = _usage_error(capsys, ["health", "--url", url])
    assert f"argument --url: {url!r}: expected an http:// or https:// URL" in err


def test_health_url_that_answers_nothing_is_an_error_naming_it(capsys):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/health/ready"
    code, out, err = run(capsys, "health", "--url", url)
    assert code == 1 and out == ""
    assert err.startswith(f"cfgcore: error: {url}: ")


def test_validate_help_says_where_the_environment_comes_from(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["validate", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert (
        "environment (default: $CONFIG_ENVIRONMENT or $CFGCORE_ENVIRONMENT, else development; "
        "with FILES, the" in out
    )
    assert "$CONFIG_PROFILE or $CFGCORE_PROFILE" in out
    assert "$CONFIG_GEOGRAPHIC_PROFILE or $CFGCORE_GEOGRAPHIC_PROFILE" in out


@pytest.mark.parametrize("command", ["validate", "publish"])
def test_help_names_both_spellings_of_each_variable_it_reads(command, capsys):
    """validate and publish read $CFGCORE_ENVIRONMENT, $CFGCORE_PROFILE and
    $CFGCORE_GEOGRAPHIC_PROFILE as the other commands do (the manager resolves them);
    their help named only the CONFIG_ spelling, or none."""
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for name in ("ENVIRONMENT", "PROFILE", "GEOGRAPHIC_PROFILE"):
        assert f"$CONFIG_{name} or $CFGCORE_{name}" in out, name


def test_validate_reads_cfgcore_environment(capsys, monkeypatch, tmp_path):
    for var in list(os.environ):
        if var.startswith(("CFGCORE", "CONFIG_")):
            monkeypatch.delenv(var)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CFGCORE_ENVIRONMENT", "staging")
    code, out, _ = run(capsys, "validate", "--format", "json")
    assert code == 0 and json.loads(out)["environment"] == "staging"
    monkeypatch.setenv("CFGCORE_ENVIRONMENT", "stagin")
    code, out, err = run(capsys, "validate")
    assert code == 1 and "'stagin'" in err and "did you mean 'staging'?" in err
