"""Secrets never reach the audit log, events or CLI output in clear."""

from __future__ import annotations

import pytest

from cfgcore.runtime.redaction import REDACTED, redact
from cfgcore.validation.keys import is_secret_key


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("db.password", "hunter2", REDACTED),
        ("db.pwd", "hunter2", REDACTED),
        ("http.authorization", "Bearer abc", REDACTED),
        ("db.password", "${DB_PASSWORD}", "${DB_PASSWORD}"),
        ("db.password", "${DB_PASSWORD:?set it}", "${DB_PASSWORD:?set it}"),
        ("db.password", "${DB_PASSWORD:-hunter2}", f"${{DB_PASSWORD:-{REDACTED}}}"),
        ("db.password", "${DB_PASSWORD-hunter2}", f"${{DB_PASSWORD-{REDACTED}}}"),
        ("db.password", "${DB_PASSWORD:-}", "${DB_PASSWORD:-}"),
        ("security.password_policy", "strict", "strict"),
        ("cache.ttl", 300, 300),
        # Connection strings under keys that do not look secret (issue 10 item 7;
        # ``connection_string`` itself is a secret's name now, masked whole).
        (
            "db.libpq_params",
            "host=db user=app password=pw1 sslmode=require",
            f"host=db user=app password={REDACTED} sslmode=require",
        ),
        (
            "db.ado_params",
            "Server=db;User Id=app;Password=p;w;",
            f"Server=db;User Id=app;Password={REDACTED};w;",
        ),
        (
            "db.url",
            "jdbc:postgresql://db/x?user=app&password=pw2&ssl=true",
            f"jdbc:postgresql://db/x?user=app&password={REDACTED}&ssl=true",
        ),
        (
            "kafka.sasl_jaas_config",
            'PlainLoginModule required username="u" password="pw 3";',
            f'PlainLoginModule required username="u" password="{REDACTED}";',
        ),
        (
            "kafka.sasl_jaas_config",
            'm required password="${KAFKA_SASL_PASSWORD}";',
            'm required password="${KAFKA_SASL_PASSWORD}";',
        ),
        ("db.note", "password_policy=strict", "password_policy=strict"),
        ("db.connection_string", "host=db user=app password=pw1", REDACTED),
    ],
)
def test_redact(key, value, expected):
    assert redact(key, value) == expected


def test_validation_knows_the_same_secret_names():
    assert is_secret_key("pwd") and is_secret_key("db_pwd") and is_secret_key("authorization")
    assert not is_secret_key("password_policy")


def test_a_long_value_holding_a_url_is_masked_in_linear_time():
    # The credentials pattern retried its scheme from every letter of a long run that
    # does not end in credentials: "@" then 200,000 letters then "://" took minutes
    # (20 kB: 1.8 s). A subprocess with a deadline: a regression fails instead of hanging
    # the suite.
    import subprocess
    import sys

    code = (
        "from cfgcore.runtime.redaction import redact\n"
        "v = '@' + 'a' * 200_000 + '://'\n"
        "assert redact('endpoint', v) == v\n"
        "w = 'see ' + 'a' * 200_000 + '://user:pw@host/db'\n"
        "assert redact('endpoint', w).endswith('://user:***redacted***@host/db')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(
    "value",
    [
        "redis://u:pw@h:6379/0",
        "postgres://admin:s3cr3t@db/x and https://a:b@c",
        "x://:p@h",
        "see http://user@host",
        "svn+ssh://me:pw@host/repo",
    ],
)
def test_url_credentials_are_masked_as_before(value):
    import re

    # the pattern before the linear-time rewrite, as the reference for what is masked
    old = re.compile(r"(?P<scheme>[a-z][a-z0-9+.\-]*://)(?P<user>[^:/@\s]*):[^/?#\s]+@", re.I)
    expected = old.sub(rf"\g<scheme>\g<user>:{REDACTED}@", value)
    assert redact("endpoint", value) == expected
