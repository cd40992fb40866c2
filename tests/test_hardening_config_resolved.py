"""Values from the environment are validated as file values are: a ``${VAR}`` reference and
a ``CFGCORE__`` override are judged by the value they resolve to (type, range, 64 bits),
with an error naming the variable, and a refused reload keeps the last good version."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.cli import main
from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.setup import main as setup_main
from tests.fuzz import examples


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    d = tmp_path / "config"
    assert setup_main(["-e", "test", "-e", "development", "-o", str(d)]) == 0
    for var in list(os.environ):
        if var.startswith(("CFGCORE", "CONFIG_")):
            monkeypatch.delenv(var)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    return d


def _manager(cfg, env, environ, **kw):
    return ConfigurationManager(cfg, environment=env, environ=environ, **kw)


def test_reference_with_wrong_type_is_refused_naming_file_key_and_variable(cfg):
    (cfg / "test.yaml").write_text("server:\n  port: ${MYPORT}\n")
    m = _manager(cfg, "test", {"MYPORT": "abc"})
    with pytest.raises(ConfigError) as err:
        m.load_environment_config("test")
    text = str(err.value)
    assert "test.yaml:2" in text
    assert "server.port" in text
    assert "${MYPORT}" in text
    assert "expected an integer" in text
    assert m.version == 0  # nothing went live


def test_reference_typed_by_type_conversion_loads(cfg):
    (cfg / "test.yaml").write_text("server:\n  port: ${MYPORT}\n")
    m = _manager(
        cfg, "test", {"MYPORT": "8080"}, transforms=("env_var_substitution", "type_conversion")
    )
    assert m.load_environment_config("test")["server"]["port"] == 8080


def test_reference_giving_text_where_a_number_goes_says_how_to_type_it(cfg):
    (cfg / "test.yaml").write_text("server:\n  port: ${MYPORT}\n")
    with pytest.raises(ConfigError, match="type_conversion"):
        _manager(cfg, "test", {"MYPORT": "8080"}).load_environment_config("test")


def _file_verdict(cfg, port):
    (cfg / "test.yaml").write_text(f"server:\n  port: {port}\n")
    try:
        _manager(cfg, "test", {}).load_environment_config("test")
    except ConfigError:
        return False
    return True


@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(port=st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-10, 70000)))
def test_override_verdict_equals_file_verdict(cfg, port):
    in_file = _file_verdict(cfg, port)
    (cfg / "test.yaml").write_text("app:\n  log_level: WARNING\n")
    m = _manager(cfg, "test", {"CFGCORE__SERVER__PORT": str(port)})
    try:
        m.load_environment_config("test")
        from_env = True
    except ConfigError as exc:
        from_env = False
        assert "CFGCORE__SERVER__PORT" in str(exc)
    assert from_env == in_file == (1 <= port <= 65535)


def test_override_beyond_64_bits_is_refused_naming_the_variable(cfg):
    m = _manager(cfg, "development", {"CFGCORE__SERVER__PORT": "9" * 23})
    with pytest.raises(ConfigError) as err:
        m.load_environment_config("development")
    assert "CFGCORE__SERVER__PORT" in str(err.value)
    assert "64 bits" in str(err.value)


def test_refused_override_on_reload_keeps_last_good_version(cfg):
    environ = {"CFGCORE__SERVER__PORT": "8081"}
    m = _manager(cfg, "development", environ)
    m.load_environment_config("development")
    version = m.version
    environ["CFGCORE__SERVER__PORT"] = "70000"
    assert m.reload() is False
    assert m.get("server.port") == 8081
    assert m.version == version
    assert "CFGCORE__SERVER__PORT" in str(m.last_error)
    assert "65535" in str(m.last_error)


def test_secret_reference_still_judged_as_reference(cfg):
    # The security rules judge how a secret is supplied: a password read from the
    # environment is not a literal password in the file.
    (cfg / "test.yaml").write_text(
        "data_sources:\n  kafka_cluster:\n    sasl_password: ${KAFKA_PW}\n"
    )
    m = _manager(cfg, "test", {"KAFKA_PW": "correct-horse-battery-staple"})
    m.load_environment_config("test")
    assert m.validate_config().overall_valid


def test_validate_report_includes_resolved_findings(cfg):
    (cfg / "test.yaml").write_text("server:\n  port: ${MYPORT}\n")
    m = _manager(cfg, "test", {"MYPORT": "80"}, validate=False)
    m.load_environment_config("test")
    report = m.validate_config()
    assert not report.overall_valid
    assert [r.key_path for r in report.blocking] == ["server.port"]


def test_cli_validate_agrees_with_load(cfg, monkeypatch, capsys):
    (cfg / "test.yaml").write_text("server:\n  port: ${MYPORT}\n")
    monkeypatch.setenv("MYPORT", "abc")
    assert main(["validate", "--config-dir", str(cfg), "-e", "test"]) == 1
    out = capsys.readouterr().out
    assert "server.port" in out and "${MYPORT}" in out
    monkeypatch.delenv("MYPORT")
    monkeypatch.setenv("CFGCORE__SERVER__PORT", "70000")
    assert main(["validate", "--config-dir", str(cfg), "-e", "development"]) == 1
    assert "CFGCORE__SERVER__PORT" in capsys.readouterr().out


def test_a_finding_below_a_reference_under_a_key_holding_a_dot_names_the_reference():
    # A finding's key path quotes a key holding a dot (`hosts["db.internal"].port`);
    # one below a value a reference supplied was matched only as `hosts.` + more, so
    # it lost the note saying which variable supplied the value.
    from types import SimpleNamespace

    from cfgcore.config.checks import resolved_findings
    from cfgcore.validation.core import ValidationResult

    below = ValidationResult(rule_id="structure.type", severity="error",
                             message='hosts["db.internal"].port: expected an integer',
                             key_path='hosts["db.internal"].port')  # fmt: skip
    elsewhere = ValidationResult(rule_id="structure.type", severity="error",
                                 message="hostsx.port: expected an integer",
                                 key_path="hostsx.port")  # fmt: skip
    found = resolved_findings(
        lambda config: SimpleNamespace(results=[below, elsewhere]),
        {"hosts": {"db.internal": {"port": "x"}}, "hostsx": {"port": "y"}},
        {("hosts",): "${HOSTS}"},
    )
    assert [r.key_path for r in found] == ['hosts["db.internal"].port']
    assert found[0].message.endswith("(from ${HOSTS})")
