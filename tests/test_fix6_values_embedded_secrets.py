"""An empty secret variable inside a longer value is reported.

``url: "postgres://app:${DB_PASSWORD:-}@db/x"`` with ``DB_PASSWORD`` not exported
resolves to ``postgres://app:@db/x``: not blank, so the empty-secret check
(``validation.security.empty_secrets``, behind ``cfgcore setup`` and
``cfgcore validate``) said nothing, and the service started with no database
password. Each ``${VAR}`` of a value that must have resolved to blank text is now
reported with the value's key path and that reference alone, when the variable reads
a secret (or the value's key names one).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.cli import main
from cfgcore.cli.scaffold import check_ready
from cfgcore.config.manager import ConfigurationManager
from cfgcore.runtime.secrets import is_secret_variable
from cfgcore.validation.security import empty_secrets
from tests.fuzz import examples


def _secret_ref(ref: str) -> bool:
    from cfgcore.config.environ import ref_names

    return any(is_secret_variable(name, {}) for name in ref_names([ref]))


REDIS = "redis://${DB_USER}:${REDIS_PASSWORD}@${DB_HOST}/0"


@pytest.mark.parametrize(
    ("template", "value", "expected"),
    [
        ("postgres://app:${DB_PASSWORD:-}@db/x", "postgres://app:@db/x", ["${DB_PASSWORD:-}"]),
        ("postgres://app:${DB_PASSWORD:-}@db/x", "postgres://app: @db/x", ["${DB_PASSWORD:-}"]),
        ("postgres://app:${DB_PASSWORD:-}@db/x", "postgres://app:pw@db/x", []),
        # only the empty one, and only secrets (DB_USER, DB_HOST are not)
        (
            "redis://${DB_USER}:${REDIS_PASSWORD}@${DB_HOST}/0",
            "redis://:@/0",
            ["${REDIS_PASSWORD}"],
        ),
        (
            "redis://${DB_USER}:${REDIS_PASSWORD}@${DB_HOST}/0",
            "redis://u:@h/0",
            ["${REDIS_PASSWORD}"],
        ),
        ("Bearer ${API_TOKEN}", "Bearer ", ["${API_TOKEN}"]),
        ("Bearer ${API_TOKEN}", "Bearer abc", []),
        # "$${" is a literal "${", not a reference
        ("$${API_TOKEN}${API_TOKEN:-}", "${API_TOKEN}", ["${API_TOKEN:-}"]),
        # a value the template cannot have given (a later step changed it): nothing
        ("postgres://app:${DB_PASSWORD}@db/x", "something else", []),
        # two references side by side: which one is empty cannot be told
        ("${API_TOKEN}${API_SECRET}", "abc", []),
    ],
)
def test_a_reference_inside_a_value(template, value, expected):
    found = empty_secrets({"svc": {"url": value}}, {("svc", "url"): template}, _secret_ref)
    assert found == [("svc.url", piece) for piece in expected]


def test_a_secret_named_key_reports_any_empty_variable_in_it():
    tree = {"db": {"password": "prod-", "dsn_note": "x"}}
    refs = {("db", "password"): "${ENV_NAME}-${DB_SUFFIX:-}"}
    assert empty_secrets(tree, refs, _secret_ref) == [("db.password", "${DB_SUFFIX:-}")]


def test_a_list_item_is_found_by_its_reference():
    tree = {"brokers": ["kafka://app:@b1/x", "kafka://app:pw@b2/x"]}
    refs = {
        ("brokers", "0"): "kafka://app:${KAFKA_PASSWORD:-}@b1/x",
        ("brokers", "1"): "kafka://app:${KAFKA_PASSWORD_2:-}@b2/x",
    }
    assert empty_secrets(tree, refs, _secret_ref) == [("brokers.0", "${KAFKA_PASSWORD:-}")]


# --- open-ended templates: every report is an empty secret, and none is missed ------------

_literal = st.text(":/@?=.", min_size=1, max_size=3)
_names = st.sampled_from(["DB_PASSWORD", "API_TOKEN", "DB_HOST", "DB_USER", "REDIS_SECRET"])
_values = st.sampled_from(["", " ", "x", "xy z", "  q"])


@settings(max_examples=examples(300), deadline=None)
@given(
    head=st.text(":/@ab", max_size=3),
    parts=st.lists(st.tuples(_names, _values, _literal), min_size=1, max_size=4),
)
def test_reports_are_exactly_the_empty_secret_variables(head, parts):
    # Literals and values share no character, so the value tells each variable's text.
    template = head + "".join("${" + name + ":-}" + lit for name, _, lit in parts)
    value = head + "".join(text + lit for _, text, lit in parts)
    found = empty_secrets(
        {"svc": {"endpoint": value}}, {("svc", "endpoint"): template}, _secret_ref
    )
    if not value.strip():
        return  # a blank value is reported whole (the earlier check)
    expected = [
        ("svc.endpoint", "${" + name + ":-}")
        for name, text, _ in parts
        if not text.strip() and is_secret_variable(name, {})
    ]
    assert found == expected


# --- what setup and validate say -----------------------------------------------------------


@pytest.fixture
def directory(tmp_path, monkeypatch):
    for var in ("DB_PASSWORD", "DB_USER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    d = tmp_path / "config"
    d.mkdir()
    (d / "production.yaml").write_text(
        "environment: production\n"
        "database:\n"
        '  url: "postgres://app:${DB_PASSWORD:-}@db.internal/orders"\n'
    )
    return d


def test_setup_and_validate_report_it(directory, capsys, monkeypatch):
    ready = check_ready(directory, "production", environ={})
    assert ready.empty_secrets == [("database.url", "${DB_PASSWORD:-}")]
    assert ready.lines() == ["database.url: secret is empty (from ${DB_PASSWORD:-})"]
    assert ready.variables() == ["DB_PASSWORD"] and not ready.ready
    main(["validate", "--config-dir", str(directory), "-e", "production"])
    out = capsys.readouterr()
    assert "database.url: secret is empty (from ${DB_PASSWORD:-}) [secrets.empty]" in (
        out.out + out.err
    )
    # exported: nothing to say
    monkeypatch.setenv("DB_PASSWORD", "s3cret-0123456789")
    assert check_ready(directory, "production", environ=dict(os.environ)).empty_secrets == []


# --- a reference's default is not the URL's password ---------------------------------------


@pytest.mark.parametrize(
    ("url", "literal"),
    [
        ("postgres://${DB_USER:-app}:${DB_PASSWORD:-}@replica/x", False),
        ("postgres://${DB_USER:-app}:${DB_PASSWORD}@replica/x", False),
        ("postgres://${DB_USER-app:x}:${DB_PASSWORD:?set it}@replica/x", False),
        ("postgres://${DB_USER:-app}:hunter2@replica/x", True),
        ("postgres://app:hunter2@replica/x", True),
    ],
)
def test_a_url_with_a_defaulted_user_reference_loads_in_production(tmp_path, url, literal):
    # ${DB_USER:-app}'s ":" was read as the URL's user:password separator, so the
    # production load refused the URL as holding a literal password.
    from cfgcore.errors import ConfigError
    from cfgcore.validation_engine import validate_configuration

    (tmp_path / "production.yaml").write_text(f'environment: production\ndb:\n  replica: "{url}"\n')
    report = validate_configuration({"db": {"replica": url}}, "production")
    found = [r.key_path for r in report.failures if r.rule_id == "security.url_credentials"]
    assert found == (["db.replica"] if literal else [])
    environ = {"DB_PASSWORD": "s3cret-0123456789"}
    m = ConfigurationManager(tmp_path, environment="production", environ=environ)
    m.disable_audit()
    try:
        m.load_environment_config()
        loaded = True
    except ConfigError as exc:
        loaded = False
        assert "db.replica" in str(exc) and "hunter2" not in str(exc)
    finally:
        m.close()
    assert loaded != literal
