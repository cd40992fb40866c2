"""One definition of a secret's key name.

Validation (``validation.keys.is_secret_key``: exact names and ``_suffix`` endings)
and redaction (``runtime.redaction.is_secret_key``: a pattern anywhere in the name)
each had their own. They disagreed both ways that matter: ``dbPassword: hunter2``,
``clientSecret``, ``privateKey``, ``accessToken``, ``passphrase``, ``credential``
were masked but passed validation in production as plain text (and an empty one was
not reported by ``cfgcore setup``), while redaction's pattern also called
``partition_key``, ``max_tokens``, ``tokenizer`` and ``bypass_cache`` secrets. There is
now one function (``runtime.redaction.is_secret_key``, re-exported by
``validation.keys``) and ``names_secret`` (a bare ``key`` under ``jwt``, ``tls``...):
what validation's plain-text rule and the empty-secret report call a secret is what
redaction masks. Redaction also masks, as a precaution, names that may hold one
(``*_key``, ``*_dsn``, plurals such as ``secrets:``) without validation demanding a
reference for them.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.runtime import redaction
from cfgcore.runtime.redaction import REDACTED, names_secret, redact
from cfgcore.validation import keys, security
from cfgcore.validation.security import PlaintextSecretRule, empty_secrets
from cfgcore.validation_engine import validate_configuration
from tests.fuzz import examples

# Names both old definitions called secrets: still secrets.
OLD_BOTH = [
    "password", "passwd", "pwd", "pass", "authorization", "secret", "token", "api_key",
    "apikey", "api-key", "api_secret", "api_token", "access_token", "refresh_token",
    "auth_token", "bearer_token", "client_secret", "private_key", "secret_key",
    "access_key", "secret_access_key", "signing_key", "encryption_key", "master_key",
    "webhook_secret", "credentials", "db_password", "kafka_sasl_password", "db_pwd",
    "x_api_key", "apiKey", "PASSWORD", "DB-PASSWORD", "spotify_api_key",
]  # fmt: skip
# Secrets only redaction knew (validation let them through as plain text).
REDACTION_ONLY = [
    "passphrase", "credential", "dbPassword", "clientSecret", "privateKey",
    "accessToken", "secretAccessKey", "hmac_key", "session_key", "password2",
    "ssl_passphrase", "adminPassword",
]  # fmt: skip
# Not secrets: settings about one, keys that are no credential, counts.
NOT_SECRETS = [
    "password_policy", "token_ttl", "secret_enabled", "api_key_required",
    "token_expiry_days", "min_length", "key_id", "sharding_strategy", "partition_key",
    "sort_key", "routing_key", "cache_key", "public_key", "primary_key", "tokenizer",
    "passthrough", "bypass_cache", "compass", "secret_name", "secretName", "token_url",
    "password_file", "max_tokens", "prompt_tokens", "allow_credentials",
    "supports_credentials", "key", "redis_url", "timeout",
]  # fmt: skip


def test_one_function_two_names():
    assert keys.is_secret_key is redaction.is_secret_key
    assert keys.names_secret is redaction.names_secret is security.names_secret
    assert keys.SECRET_KEY_PARENTS is redaction.SECRET_KEY_PARENTS


@pytest.mark.parametrize("name", OLD_BOTH + REDACTION_ONLY)
def test_secret_names(name):
    assert keys.is_secret_key(name) and names_secret(name, "db")


@pytest.mark.parametrize("name", NOT_SECRETS)
def test_not_secret_names(name):
    assert not keys.is_secret_key(name) and not names_secret(name, "app")


def test_a_bare_key_is_one_under_a_secret_parent():
    assert (
        names_secret("key", "jwt")
        and names_secret("KEY", "tls")
        and names_secret("key", "encryption")
    )
    assert not names_secret("key", "cache") and not names_secret("key", "")


@pytest.mark.parametrize("name", REDACTION_ONLY)
def test_a_literal_under_a_name_only_redaction_knew_now_fails_production(name):
    tree = {"database": {name: "hunter2-literal"}}
    report = validate_configuration(tree, "production")
    found = [r for r in report.failures if r.rule_id == "security.plaintext_secret"]
    assert [r.key_path for r in found] == [f"database.{name}"]
    assert found[0].severity == "critical" and "hunter2" not in found[0].message
    assert redact(f"database.{name}", "hunter2-literal") == REDACTED
    assert empty_secrets({"database": {name: ""}}) == [(f"database.{name}", None)]


@pytest.mark.parametrize("name", NOT_SECRETS)
def test_a_setting_named_near_a_secret_is_not_a_plaintext_secret(name):
    tree = {"app": {name: "user_id"}, "llm": {name: 4096}}
    report = validate_configuration(tree, "production")
    assert not [r for r in report.failures if r.rule_id == "security.plaintext_secret"]
    assert empty_secrets({"app": {name: ""}}) == []


def test_sections_of_secrets_are_masked_whole_and_judged_entry_by_entry():
    tree = {"secrets": {"provider": "vault", "db_password": "${DB_PASSWORD}"}}
    assert redact("", tree) == {"secrets": {"provider": REDACTED, "db_password": "${DB_PASSWORD}"}}
    report = validate_configuration(tree, "production")
    assert not [r for r in report.failures if r.rule_id == "security.plaintext_secret"]
    assert redact("llm.max_tokens", 4096) == 4096


# --- open-ended names: validation, the empty-secret report and redaction agree ------------

_WORDS = [
    "db", "api", "password", "pass", "pwd", "secret", "token", "tokens", "key", "keys",
    "private", "public", "access", "signing", "client", "max", "allow", "credentials",
    "credential", "passphrase", "name", "file", "url", "ttl", "policy", "enabled", "id",
    "sort", "partition", "auth", "authorization", "hmac", "jwt", "session", "dsn", "x",
]  # fmt: skip


@st.composite
def _names(draw):
    words = draw(st.lists(st.sampled_from(_WORDS), min_size=1, max_size=4))
    style = draw(st.sampled_from(["snake", "kebab", "camel", "upper", "lower"]))
    if style == "snake":
        return "_".join(words)
    if style == "kebab":
        return "-".join(words)
    if style == "upper":
        return "_".join(words).upper()
    if style == "lower":
        return "".join(words)
    return words[0] + "".join(w.capitalize() for w in words[1:])


@settings(max_examples=examples(400), deadline=None)
@given(name=_names(), parent=st.sampled_from(["jwt", "tls", "db", "app", "cache"]))
def test_validation_setup_and_redaction_agree_on_any_name(name, parent):
    secret = names_secret(name, parent)
    tree = {"svc": {parent: {name: "literal-value-0123"}}}
    flagged = [
        r.key_path
        for r in PlaintextSecretRule().validate(tree, {"environment": "production"})
        if not r.is_valid
    ]
    assert (flagged == [f"svc.{parent}.{name}"]) == secret, (name, parent, flagged)
    empty = empty_secrets({"svc": {parent: {name: ""}}})
    assert (empty == [(f"svc.{parent}.{name}", None)]) == secret
    masked = redact(f"svc.{parent}.{name}", "literal-value-0123") == REDACTED
    if secret:
        assert masked  # every secret validation knows is masked
    # and the spelling does not matter
    assert keys.is_secret_key(name) == keys.is_secret_key(name.replace("-", "_"))


# The previous validation definition, as a reference: every name it called a secret
# still is one (unless a word says the name counts or switches something).
_OLD_EXACT = frozenset(
    "password passwd pwd pass authorization secret token api_key apikey api_secret "
    "api_token access_token refresh_token auth_token bearer_token client_secret "
    "private_key secret_key access_key secret_access_key signing_key encryption_key "
    "master_key webhook_secret credentials".split()
)
_OLD_SUFFIXES = tuple(
    "_" + s
    for s in "password passwd pwd secret token api_key apikey private_key secret_key "
    "access_key signing_key encryption_key master_key".split()
)


def _old_validation(name: str) -> bool:
    low = name.lower().replace("-", "_")
    return low in _OLD_EXACT or low.endswith(_OLD_SUFFIXES)


@settings(max_examples=examples(400), deadline=None)
@given(name=_names())
def test_no_secret_the_old_validation_knew_is_lost(name):
    switches = {"max", "allow", "enabled"} & set(redaction.key_words(name))
    if _old_validation(name) and not switches:
        assert keys.is_secret_key(name), name
