"""Values under a secret's name that redaction passed through, and bare credential
names holding a value.

* ``redact`` masked strings and numbers under a secret's key but returned bytes, a
  ``Decimal``, a set or any other object as they were, and the audit log writes their
  ``str()`` (``b'hunter2'``): they are masked like a string now.
* A bare ``auth`` (Redis's AUTH password), ``cookie`` (a Cookie header given as an
  evaluation context attribute) or ``jwt`` holding a value is masked; holding a map it
  is a settings section, judged entry by entry (``security.jwt.algorithm`` shows).
"""

from __future__ import annotations

import decimal
import json

import pytest

from cfgcore.observability.debug import context_text
from cfgcore.runtime.audit import AuditLog
from cfgcore.runtime.events import ConfigChangeEvent
from cfgcore.runtime.redaction import REDACTED, redact


@pytest.mark.parametrize(
    "value",
    [b"hunter2xyz", bytearray(b"hunter2xyz"), decimal.Decimal("84726153"), {"hunter2xyz"},
     frozenset({"hunter2xyz"})],
    ids=["bytes", "bytearray", "decimal", "set", "frozenset"],
)  # fmt: skip
def test_any_value_under_a_secret_name_is_masked(value, tmp_path):
    assert "hunter2xyz" not in str(redact("db.password", value))
    assert "84726153" not in str(redact("db.password", value))
    log = AuditLog(tmp_path / "audit.jsonl", keys=())
    log.record(ConfigChangeEvent("db.password", None, value, "api", 1, 0.0))
    text = (tmp_path / "audit.jsonl").read_text()
    assert "hunter2xyz" not in text and "84726153" not in text
    assert json.loads(text)["new"] in (REDACTED, [REDACTED])


def test_other_values_stay():
    assert redact("db.note", b"plain") == b"plain"
    assert redact("db.password", None) is None
    assert redact("db.password", False) is False
    assert redact("db.ratio", decimal.Decimal("0.5")) == decimal.Decimal("0.5")


@pytest.mark.parametrize("name", ["auth", "cookie", "jwt", "AUTH", "Cookie"])
def test_bare_credential_names_holding_a_value_are_masked(name):
    assert redact(f"redis.{name}", "hunter2xyz") == REDACTED


def test_as_a_section_they_are_judged_entry_by_entry():
    tree = {"auth": {"method": "oidc", "client_secret": "s3"}, "cookie": {"secure": "yes"}}
    assert redact("server", tree) == {
        "auth": {"method": "oidc", "client_secret": REDACTED},
        "cookie": {"secure": "yes"},
    }


def test_a_cookie_in_an_evaluation_context_is_masked_in_debug_lines():
    text = context_text({"user_id": "u1", "cookie": "sessionid=abc123xyz", "country": "DE"})
    assert "abc123xyz" not in text
    assert "'u1'" in text and "'DE'" in text
