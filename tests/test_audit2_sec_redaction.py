"""Second security round: a numeric secret (``password: 84726153``) is redacted on every
surface, like a string one; other numbers stay."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgcore.cli import main
from cfgcore.runtime.audit import AuditLog
from cfgcore.runtime.events import ConfigChangeEvent
from cfgcore.runtime.redaction import REDACTED, redact


@given(st.integers().filter(lambda n: n != 0) | st.floats(allow_nan=False))
def test_a_number_under_a_secret_key_is_redacted(n):
    assert redact("db.password", n) == REDACTED
    assert redact("db", {"api_key": n, "port": n}) == {"api_key": REDACTED, "port": n}
    assert redact(["db", "client_secret"], [n]) == [REDACTED]


@pytest.mark.parametrize("key", ["db.port", "security.password_policy.min_length",
                                 "auth.token_ttl", "db.password_min_length"])  # fmt: skip
def test_numbers_under_other_keys_stay(key):
    assert redact(key, 84726153) == 84726153


def test_booleans_stay_under_a_secret_key():
    assert redact("db.password", True) is True


def test_the_audit_log_and_event_repr_do_not_hold_a_numeric_password(tmp_path):
    path = tmp_path / "audit.jsonl"
    event = ConfigChangeEvent("db.password", 11112222, 84726153, "update_config", 2, 1.7e9)
    AuditLog(path).record(event)
    text = path.read_text()
    assert "84726153" not in text and "11112222" not in text
    assert json.loads(text)["new"] == REDACTED
    assert "84726153" not in repr(event)


def test_cfgcore_show_and_explain_do_not_print_a_numeric_password(tmp_path, capsys):
    (tmp_path / "base.yaml").write_text("db:\n  host: h\n  password: 84726153\n  port: 5432\n")
    (tmp_path / "development.yaml").write_text("app:\n  debug: true\n")
    base = ["--config-dir", str(tmp_path), "-e", "development", "--no-validate"]
    for argv in (["show", *base], ["get", "db", *base], ["explain", "db.password", *base]):
        assert main(argv) == 0, argv
        out = capsys.readouterr().out
        assert "84726153" not in out and REDACTED in out, (argv, out)
    assert main(["get", "db.port", *base]) == 0
    assert capsys.readouterr().out.strip() == "5432"


def test_a_map_or_list_under_a_secret_key_is_redacted_whole():
    # Only the last key was judged: password: {x: "..."} printed x in clear (the path
    # ended in "x"), and so did the audit entry of update_config("db.password", {...}).
    assert redact("db.password", {"x": "hunter3-Secret-99", "n": 5}) == {
        "x": REDACTED,
        "n": REDACTED,
    }
    assert redact("db", {"password": [{"v": "hunter3-Secret-99"}]}) == {
        "password": [{"v": REDACTED}]
    }
    assert redact("security.api_keys", {"spotify": "${SPOTIFY_KEY}"}) == {
        "spotify": "${SPOTIFY_KEY}"  # a reference names a variable, not a secret
    }
    assert redact("db", {"host": "h", "port": 5}) == {"host": "h", "port": 5}


def test_the_audit_log_does_not_hold_a_map_set_under_a_secret_key(tmp_path):
    path = tmp_path / "audit.jsonl"
    events = [
        ConfigChangeEvent("db.password.x", None, "hunter3-Secret-99", "update_config", 2, 1.7e9),
        ConfigChangeEvent("db", {"password": {"x": "hunter3-Secret-99"}}, None, "u", 3, 1.7e9),
    ]
    AuditLog(path).record_all(events)
    text = path.read_text()
    assert "hunter3" not in text
