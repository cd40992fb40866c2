"""``cfgcore setup -e production`` is not "ready" while a secret is empty.

The bundled defaults read every secret as ``${VAR:-}``: with the variables not
exported, setup printed "next: ... cfgcore show" and exited 0 for production, and the
service started without its database password. Setup now builds each environment it
wrote as the service would, names each empty secret by key path (and the variable that
should fill it), and exits 1 for production; other environments get a warning.
"""

from __future__ import annotations

import json
import os

import pytest

from cfgcore.cli import main
from cfgcore.cli.scaffold import check_ready
from cfgcore.setup import main as setup_main
from cfgcore.validation.security import empty_secrets

SECRETS = {
    "CFGCORE_ENCRYPTION_KEY": "security.encryption.key",
    "JWT_SIGNING_KEY": "security.jwt.signing_key",
    "SPOTIFY_API_SECRET": "security.api_keys.spotify_api_key",
    "KAFKA_SASL_PASSWORD": "data_sources.kafka_cluster.sasl_password",
    "POSTGRES_PASSWORD": "data_sources.postgresql.password",
    "ELASTICSEARCH_PASSWORD": "elasticsearch_cluster.password",
}


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No secret exported, no CFGCORE_/CONFIG_ setting, a private state directory."""
    for var in list(os.environ):
        if var in SECRETS or var.startswith(("CFGCORE", "CONFIG_")):
            monkeypatch.delenv(var)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    return monkeypatch


def export_all(monkeypatch, **overrides):
    for var in SECRETS:
        monkeypatch.setenv(var, overrides.get(var, f"s3cret-{var.lower()}-0123456789"))


def test_production_with_empty_secrets_is_not_ready(tmp_path, clean_env, capsys):
    d = tmp_path / "config"
    assert main(["setup", "-e", "production", "-o", str(d)]) == 1
    out, err = capsys.readouterr()
    # the files are written all the same (the error says so)
    assert sorted(os.listdir(d)) == ["base.yaml", "flags.yaml", "production.yaml"]
    assert "wrote" in out and "next:" not in out
    assert "error: production is not ready (6 problem(s)); the files are written" in err
    for var, path in SECRETS.items():
        assert f"  {path}: secret is empty (from ${{{var}:-}})\n" in err
    assert "CONFIG_ENVIRONMENT=production cfgcore validate" in err
    # the seed's entry point says the same
    capsys.readouterr()
    assert setup_main(["-e", "production", "-o", str(tmp_path / "again")]) == 1
    assert "production is not ready" in capsys.readouterr().err


def test_production_with_every_secret_exported_is_ready(tmp_path, clean_env, capsys):
    export_all(clean_env)
    assert main(["setup", "-e", "production", "-o", str(tmp_path / "config")]) == 0
    out, err = capsys.readouterr()
    assert "not ready" not in err and "secret is empty" not in err
    assert "next: CFGCORE_CONFIG_DIR=" in out and "CONFIG_ENVIRONMENT=production" in out


@pytest.mark.parametrize("blank", ["", "   "])
def test_one_blank_secret_is_named_alone(tmp_path, clean_env, capsys, blank):
    export_all(clean_env, POSTGRES_PASSWORD=blank)
    assert main(["setup", "-e", "production", "-q", "-o", str(tmp_path / "config")]) == 1
    out, err = capsys.readouterr()
    assert out == ""  # -q: no chatter, but the error is still said
    assert "production is not ready (1 problem(s))" in err
    assert "data_sources.postgresql.password: secret is empty" in err
    assert "export POSTGRES_PASSWORD " in err
    assert sum("secret is empty" in line for line in err.splitlines()) == 1


def test_other_environments_get_a_warning(tmp_path, clean_env, capsys):
    d = tmp_path / "config"
    assert main(["setup", "-e", "staging", "-o", str(d)]) == 0
    out, err = capsys.readouterr()
    assert "warning: staging is not ready (6 problem(s))" in err
    assert all(f"{path}: secret is empty" in err for path in SECRETS.values())
    assert "next:" in out and "export the secrets listed above" in out
    # -q: the files, and not a word more (a warning is not an error)
    assert main(["setup", "-e", "development", "-q", "-o", str(d)]) == 0
    assert capsys.readouterr() == ("", "")


def test_the_environment_being_set_up_decides_the_exit_status(tmp_path, clean_env, capsys):
    # Scaffolding a project (staging first, production beside it) warns about
    # production's secrets; setting up production (first) fails on them.
    assert main(["setup", "-e", "staging", "-e", "production", "-o", str(tmp_path / "a")]) == 0
    assert "warning: production is not ready" in capsys.readouterr().err
    assert main(["setup", "-e", "production", "-e", "staging", "-o", str(tmp_path / "b")]) == 1
    assert "error: production is not ready" in capsys.readouterr().err


def test_a_value_from_a_secret_variable_counts_whatever_its_key(tmp_path, clean_env):
    export_all(clean_env)
    d = tmp_path / "config"
    assert setup_main(["-e", "production", "-o", str(d)]) == 0
    prod = d / "production.yaml"
    prod.write_text(
        prod.read_text()
        + "\nintegrations:\n"
        + "  webhook_auth: ${PARTNER_API_TOKEN:-}\n"  # a secret variable, a plain key name
        + "  signing: ${PARTNER_SEAL:-}\n"  # named secret only by CFGCORE_SECRET_VARS
        + "  region: ${PARTNER_REGION:-}\n"  # not a secret: empty is fine
        + "  db_password: ''\n"  # a literal empty secret
    )
    found = check_ready(d, "production")
    assert [path for path, _ in found.empty_secrets] == [
        "integrations.webhook_auth",
        "integrations.db_password",
    ]
    assert found.empty_secrets[0][1] == "${PARTNER_API_TOKEN:-}"
    assert found.empty_secrets[1][1] is None
    assert not found.ready and found.problems == []
    clean_env.setenv("CFGCORE_SECRET_VARS", "PARTNER_SEAL")
    assert "integrations.signing" in [p for p, _ in check_ready(d, "production").empty_secrets]


def test_a_production_that_would_not_load_is_not_ready(tmp_path, clean_env, capsys):
    export_all(clean_env)
    d = tmp_path / "config"
    assert setup_main(["-e", "production", "-o", str(d)]) == 0
    prod = d / "production.yaml"
    text = prod.read_text()
    # a literal secret: validation refuses it in production (security.plaintext_secret)
    prod.write_text(text + "\nintegrations:\n  api_key: abcdefghijklmnop\n")
    found = check_ready(d, "production")
    assert found.empty_secrets == [] and len(found.problems) == 1
    assert "integrations.api_key" in found.problems[0] and "abcdefghijklmnop" not in str(found)
    # a reference that must be set, and is not: the build itself fails
    prod.write_text(text + "\nintegrations:\n  endpoint: ${PARTNER_URL:?set PARTNER_URL}\n")
    found = check_ready(d, "production")
    assert not found.ready and "PARTNER_URL" in " ".join(found.problems)
    assert setup_main(["-e", "production", "--force", "-o", str(d)]) == 0  # defaults again


def test_empty_secrets_judges_keys_as_the_plaintext_rule_does():
    tree = {
        "db": {"password": None, "user": "", "password_policy": {"min_length": 12}},
        "jwt": {"key": "", "access_token_ttl": ""},
        "cache": {"key": ""},  # a cache key is no secret (the rule agrees)
        "tokens": {"token": ["", "x"]},
        "kafka": {"sasl_username": "", "sasl-password": "  "},
    }
    assert empty_secrets(tree) == [
        ("db.password", None),
        ("jwt.key", None),
        ("tokens.token.0", None),
        ("kafka.sasl-password", None),
    ]
    assert empty_secrets({"a": {"b": ""}}, {("a", "b"): "${X}"}, lambda ref: True) == [
        ("a.b", "${X}")
    ]


def test_validate_warns_about_the_same_empty_secrets_without_blocking(tmp_path, clean_env, capsys):
    # setup's error says "then check: cfgcore validate": validate names the same secrets
    # (warnings: loading accepts ${VAR:-} left empty, so validate must not block on it).
    d = tmp_path / "config"
    assert setup_main(["-e", "production", "-o", str(d)]) == 1
    capsys.readouterr()
    argv = ["validate", "--config-dir", str(d), "-e", "production", "--format", "json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    found = [r for r in doc["results"] if r["rule_id"] == "secrets.empty"]
    assert [r["key_path"] for r in found] == [
        p for p, _ in check_ready(d, "production").empty_secrets
    ]
    assert sorted(r["key_path"] for r in found) == sorted(SECRETS.values())
    assert {r["severity"] for r in found} == {"warning"}
    assert all(r["file"].endswith("base.yaml") and r["line"] for r in found)
    export_all(clean_env)
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert not [r for r in doc["results"] if r["rule_id"] == "secrets.empty"]
