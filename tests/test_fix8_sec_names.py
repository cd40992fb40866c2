"""Credential-like names and values that were not treated as secrets, and shell
variables that were.

* ``basic_auth``, ``auth_header``, ``creds``, ``session_cookie``, ``connection_string``
  (and ``access_jwt``...) are secret names now: masked on every surface and, in
  production, refused as literals, like ``password`` (one rule,
  ``cfgcore.runtime.redaction.is_secret_key``, in every spelling: ``basicAuth``,
  ``BASIC_AUTH``, ``basicauth``). A bare ``jwt`` holding a value is masked; as a
  section (cfgcore's own ``security.jwt``) it is judged entry by entry.
* ``Bearer <token>`` and ``Basic <base64 user:password>`` are masked wherever they
  are written (a value, free text, a log line); the words alone in prose are not.
* ``PWD``/``OLDPWD`` are the shell's working directories, not passwords: the directory
  a service runs in was masked in every log line once a value read ``${PWD}``.
  ``DB_PWD``, ``MYSQL_PWD`` and ``PGPASSWORD`` still are secrets.
"""

from __future__ import annotations

import base64
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.runtime import secrets
from cfgcore.runtime.redaction import REDACTED, is_secret_key, redact, redact_text
from cfgcore.validation_engine import validate_configuration
from tests.fuzz import examples

NEW_NAMES = ["basic_auth", "auth_header", "creds", "session_cookie", "connection_string",
             "access_jwt", "proxy_auth", "db_creds", "authorization_header"]  # fmt: skip


def _spellings(name: str) -> list[str]:
    words = name.split("_")
    camel = words[0] + "".join(w.capitalize() for w in words[1:])
    return [name, name.upper(), camel, "".join(words), "-".join(words)]


@pytest.fixture(autouse=True)
def _clean_registry():
    secrets.forget_secrets()
    yield
    secrets.forget_secrets()


@pytest.mark.parametrize("name", NEW_NAMES)
def test_credential_names_are_secret_in_every_spelling(name):
    for spelled in _spellings(name):
        assert is_secret_key(spelled), spelled
        assert redact(f"svc.{spelled}", "admin:hunter2x") == REDACTED, spelled


@pytest.mark.parametrize("name", ["basic_auth", "session_cookie", "connection_string", "creds"])
def test_production_refuses_them_as_literals_and_takes_references(name):
    literal = validate_configuration({"svc": {name: "admin:hunter2x"}}, "production")
    assert [r.rule_id for r in literal.failures] == ["security.plaintext_secret"]
    assert "hunter2x" not in str([r.message for r in literal.failures])
    ref = validate_configuration({"svc": {name: "${SVC_SECRET}"}}, "production")
    assert not ref.failures


@pytest.mark.parametrize(
    "name",
    ["auth", "cookie", "cookie_name", "session_cookie_name", "auth_method", "oauth",
     "author", "jwt_audience", "connection_timeout", "connection_string_timeout",
     "basic_auth_enabled", "sacred"],
)  # fmt: skip
def test_names_about_them_are_not_secrets(name):
    assert not is_secret_key(name)  # production takes a literal
    if name not in ("auth", "cookie"):  # (masked as a value: test_fix8_sec_redact_values)
        assert redact(f"svc.{name}", "lax") == "lax"


def test_a_bare_jwt_is_masked_as_a_value_and_judged_entry_by_entry_as_a_section():
    assert redact("security.jwt", "eyJhbGciOiJIUzI1NiJ9.e30.sig") == REDACTED
    assert redact("security.jwt", "some-token-text") == REDACTED
    tree = {"jwt": {"algorithm": "RS256", "signing_key": "k-123", "access_token_ttl": "15m"}}
    assert redact("security", tree) == {
        "jwt": {"algorithm": "RS256", "signing_key": REDACTED, "access_token_ttl": "15m"}
    }
    # cfgcore's own defaults have this section: production still takes it.
    ok = validate_configuration({"security": {"jwt": {"algorithm": "RS256"}}}, "production")
    assert not ok.failures


def test_session_key_app_key_and_service_key_stay_secret():
    for name in ("session_key", "app_key", "service_key"):
        assert is_secret_key(name)


# --- Bearer / Basic credentials ----------------------------------------------------------

BASIC = base64.b64encode(b"admin:hunter2x").decode()


@pytest.mark.parametrize(
    "text",
    ["Bearer eyJhbGciOi.eyJzdWIi.c2ln", "Bearer abcdef123456", f"Basic {BASIC}",
     f"bearer {'a' * 24}", f"BASIC {BASIC}"],
)  # fmt: skip
def test_authorization_credentials_are_masked_in_values_and_text(text):
    scheme = text.split()[0]
    assert redact("http.headers.x_custom", text) == f"{scheme} {REDACTED}"
    line = f"upstream said 401 to Authorization: {text}; retrying"
    assert redact_text(line) == f"upstream said 401 to Authorization: {scheme} {REDACTED}; retrying"


@pytest.mark.parametrize(
    "text",
    ["Basic auth is required", "Bearer tokens expire", "Basic authentication failed",
     "Bearer ${API_TOKEN}", "Basic ${BASIC_CREDENTIALS}", "basic plan", "Bearer token"],
)  # fmt: skip
def test_the_scheme_words_in_prose_and_references_stay(text):
    assert redact("ui.message", text) == text
    assert redact_text(text) == text


def test_a_cfgcore_log_line_masks_a_bearer_token(caplog):
    secrets._install_log_filter()
    with caplog.at_level(logging.WARNING, logger="cfgcore.test"):
        logging.getLogger("cfgcore.test").warning("webhook refused %s", "Bearer tok-98765432")
    assert "tok-98765432" not in caplog.text
    assert f"Bearer {REDACTED}" in caplog.text


@settings(max_examples=examples(60), deadline=None)
@given(token=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._~+/", min_size=8,
                     max_size=60).filter(lambda t: any(c.isdigit() for c in t)))  # fmt: skip
def test_any_bearer_token_with_a_digit_is_masked(token):
    out = redact_text(f"Authorization: Bearer {token}=")
    assert token not in out


# --- PWD / OLDPWD --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["PWD", "OLDPWD"])
def test_the_shell_working_directories_are_not_secrets(name):
    assert not secrets.is_secret_variable(name, {})
    secrets.note_variable(name, "/srv/recommender", {})
    assert secrets.mask_text("reading /srv/recommender/config") == "reading /srv/recommender/config"
    # Listed by the operator, it is one.
    assert secrets.is_secret_variable(name, {"CFGCORE_SECRET_VARS": name})


@pytest.mark.parametrize("name", ["DB_PWD", "MYSQL_PWD", "PGPASSWORD", "PASSWORD", "pwd_db_pwd"])
def test_password_variables_still_are(name):
    assert secrets.is_secret_variable(name, {})
    secrets.note_variable(name, "hunter2-xyz", {})
    assert secrets.mask_text("login hunter2-xyz") == "login ***"
