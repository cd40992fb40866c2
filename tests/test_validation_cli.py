"""``cfgcore validate`` / ``cfgcore schema`` and the exported JSON Schema."""

from __future__ import annotations

import json

import pytest

from cfgcore.cli import main
from cfgcore.config.manager import ConfigurationManager
from cfgcore.config.schema import json_schema, json_schema_text, parse_duration
from cfgcore.config.tree import thaw

jsonschema = pytest.importorskip("jsonschema")


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- validate ---------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ["development", "staging", "production", "test"])
def test_validate_embedded_defaults_exits_zero(env, capsys, monkeypatch):
    if env == "production":
        # Loading refuses production from the embedded set unless it is chosen on
        # purpose, and validate now says so too (tests/test_fix6_valid_activation_agree.py).
        monkeypatch.setenv("CFGCORE_CONFIG_DIR", "embedded")
    assert main(["validate", "--environment", env]) == 0
    out = capsys.readouterr().out
    assert f"{env} ({env}): valid" in out


def test_validate_files_reports_file_line_and_fix(tmp_path, capsys):
    base = _write(tmp_path, "base.yaml", "auto_scaling:\n  min_replicas: 2\n  max_replicas: 5\n")
    prod = _write(
        tmp_path,
        "production.yaml",
        "environment: production\n"
        "auto_scaling:\n"
        "  min_replicas: 9\n"
        "database:\n"
        "  url: postgresql://app:topsecret@db/x\n",
    )
    assert main(["validate", base, prod]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert any(
        line.endswith(
            "production.yaml:3: error: auto_scaling.min_replicas: min_replicas (9) is "
            "greater than max_replicas (5) [streaming.auto_scaling]"
        )
        for line in lines
    ), out
    assert "    fix: Set auto_scaling.min_replicas to 5 or less, or raise max_replicas" in lines
    assert "production.yaml:5: critical: database.url:" in out
    assert "topsecret" not in out
    assert "base.yaml+production.yaml (production): INVALID" in lines[-1]


def test_validate_json_format(tmp_path, capsys):
    cfg = _write(tmp_path, "c.json", json.dumps({"user_limits": {"premium_concurrent_streams": 1}}))
    assert main(["validate", cfg, "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["overall_valid"] is False
    (result,) = doc["results"]
    assert result["rule_id"] == "streaming.premium_concurrent_streams"
    assert result["file"].endswith("c.json") and result["line"] == 1


def test_strict_makes_warnings_fail(tmp_path, capsys):
    cfg = _write(tmp_path, "c.yaml", "auto_scaling:\n  min_replica: 2\n")
    assert main(["validate", cfg]) == 0
    assert main(["validate", cfg, "--strict"]) == 1
    assert "did you mean 'min_replicas'?" in capsys.readouterr().out


def test_disable_a_rule(tmp_path, capsys):
    cfg = _write(tmp_path, "c.yaml", "user_limits:\n  premium_concurrent_streams: 1\n")
    assert main(["validate", cfg, "--disable", "streaming.premium_concurrent_streams"]) == 0
    assert main(["validate", cfg, "--disable", "no.such.rule"]) == 2  # a usage error
    assert "unknown rule id 'no.such.rule'" in capsys.readouterr().err


def test_disable_takes_every_rule_id_a_warning_prints(tmp_path, capsys, monkeypatch):
    """The command's own warnings (an empty secret, a CFGCORE__ variable matching no key)
    print a [rule id] as the engine's do: --disable takes it (it was a usage error,
    "unknown rule id 'secrets.empty'") and --list-rules lists it."""
    import os

    for var in list(os.environ):
        if var.startswith(("CFGCORE", "CONFIG_")):
            monkeypatch.delenv(var)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CFGCORE__SERVER__PROT", "8080")  # meant: SERVER__PORT
    d = tmp_path / "config"
    d.mkdir()
    (d / "base.yaml").write_text("server:\n  port: 80\ndb:\n  password: ${DB_PASSWORD_X:-}\n")
    (d / "development.yaml").write_text("{}\n")
    argv = ["validate", "--config-dir", str(d), "-e", "development", "--format", "json"]

    def findings(*extra: str) -> dict[str, str]:
        assert main([*argv, *extra]) == 0  # warnings only
        doc = json.loads(capsys.readouterr().out)
        return {r["rule_id"]: r["key_path"] for r in doc["results"]}

    found = findings()
    assert found == {"secrets.empty": "db.password", "environment.unknown_override": "server.prot"}
    assert main([*argv, "--strict"]) == 1
    capsys.readouterr()
    for rule_id in found:
        rest = findings("--disable", rule_id)
        assert rest == {k: v for k, v in found.items() if k != rule_id}
    assert main([*argv, "--strict", *(f"--disable={r}" for r in found)]) == 0
    capsys.readouterr()
    assert main(["validate", "--list-rules"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert set(found) <= set(listed)
    assert main([*argv, "--disable", "secrets.emty"]) == 2
    assert "did you mean 'secrets.empty'?" in capsys.readouterr().err


def test_geographic_profile_option_applies_eu_rules(tmp_path, capsys):
    cfg = _write(tmp_path, "c.yaml", "gdpr_compliance:\n  consent_required: false\n")
    assert main(["validate", cfg]) == 0
    assert main(["validate", cfg, "--geographic-profile", "EU"]) == 1
    assert "gdpr.consent_required" in capsys.readouterr().out


def test_unreadable_input_is_one_line_error(tmp_path, capsys):
    bad = _write(tmp_path, "bad.yaml", "a: 1\na: 2\n")
    assert main(["validate", bad]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cfgcore: error:") and "bad.yaml" in err


def test_list_rules(capsys):
    assert main(["validate", "--list-rules"]) == 0
    out = capsys.readouterr().out
    for rule_id in ("structure.unknown_key", "security.plaintext_secret", "gdpr.retention_limits"):
        assert rule_id in out
    assert "production=critical" in out


# --- schema -----------------------------------------------------------------------------------


def test_schema_command_prints_and_writes(tmp_path, capsys):
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json_schema()
    target = tmp_path / "cfgcore.schema.json"
    assert main(["schema", "-o", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == json_schema_text()
    assert [p.name for p in tmp_path.iterdir()] == ["cfgcore.schema.json"]  # no temp left


def test_exported_schema_is_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(json_schema())


@pytest.mark.parametrize("env", ["development", "staging", "production", "test"])
def test_embedded_defaults_pass_the_exported_schema(env):
    config = thaw(ConfigurationManager(environ={}).build_config(env))
    validator = jsonschema.Draft202012Validator(json_schema())
    assert [e.message for e in validator.iter_errors(config)] == []


def test_exported_schema_catches_what_the_engine_catches():
    from cfgcore.validation_engine import validate_configuration

    cfg = {"caching_layers": {"l1_cache": {"ttl": 5, "eviction_policy": "mru"}}}
    errors = list(jsonschema.Draft202012Validator(json_schema()).iter_errors(cfg))
    assert [list(e.absolute_path) for e in errors] == [
        ["caching_layers", "l1_cache", "eviction_policy"]
    ]
    report = validate_configuration(cfg)
    assert [r.key_path for r in report.failures] == ["caching_layers.l1_cache.eviction_policy"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("30s", 30.0), ("5m", 300.0), ("1h30m", 5400.0), ("2d", 172800.0), (7, 7.0)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "", "5 parsecs", True, None, [1]])
def test_parse_duration_rejects(text):
    assert parse_duration(text) is None
