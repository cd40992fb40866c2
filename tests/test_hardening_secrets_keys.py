"""Hardening: key-parsing errors never print key material (audit finding 1).

A mistyped separator in ``CFGCORE_SECRET_KEYS`` (``;`` or ``|`` instead of ``,``) or a
key-file line with a trailing comment holding ``:`` used to put whole keys into the
"key id" of the error, which became the manager's ``last_error`` (``/health/ready``)
and the audit log's ``error`` field.
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.observability.health import wsgi_app
from cfgcore.runtime.secrets import Keyring, SecretKey, encrypt_value, generate_key
from tests.fuzz import examples


def _material(key: str) -> str:
    return key.rsplit(":", 1)[1]


def _leaks(text: str, materials: list[str]) -> list[str]:
    """Every 8-character piece of key material found in ``text``."""
    return [m[i : i + 8] for m in materials for i in range(len(m) - 7) if m[i : i + 8] in text]


def _ready_body(manager: ConfigurationManager) -> str:
    app = wsgi_app(manager)
    chunks = app({"REQUEST_METHOD": "GET", "PATH_INFO": "/health/ready"}, lambda s, h: None)
    return b"".join(chunks).decode()


def test_wrong_separator_names_the_position_not_the_keys(tmp_path, monkeypatch):
    """The auditor's repro: the keys reach neither /health/ready nor the audit log."""
    (tmp_path / "c").mkdir()
    k1, k2 = generate_key("k1"), generate_key("k2")
    (tmp_path / "c" / "base.yaml").write_text(
        f"environment: staging\napp:\n  note: '{encrypt_value('x', Keyring([k1]))}'\n"
    )
    (tmp_path / "c" / "staging.yaml").write_text("environment: staging\n")
    monkeypatch.setenv("CFGCORE_SECRET_KEYS", f"{k2};{k1}")
    monkeypatch.delenv("CFGCORE_SECRET_KEY_FILE", raising=False)
    monkeypatch.setenv("CFGCORE_USAGE", "0")
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "s"))
    audit = tmp_path / "a.jsonl"
    m = ConfigurationManager(str(tmp_path / "c"), audit_log=str(audit))
    with pytest.raises(ConfigError) as err:
        m.load_environment_config("staging")
    text = str(err.value)
    assert re.search(r"base\.yaml(:\d+)?: app\.note: key 1 of CFGCORE_SECRET_KEYS:", text)
    assert "separate keys with ','" in text
    outputs = {"error": text, "health": _ready_body(m), "audit": audit.read_text()}
    assert "key 1 of CFGCORE_SECRET_KEYS" in outputs["health"]
    assert "key 1 of CFGCORE_SECRET_KEYS" in outputs["audit"]
    for name, out in outputs.items():
        assert not _leaks(out, [_material(k1), _material(k2)]), name
    m.close()


_SEPARATORS = [";", "|", ":", "/", "+", " # old: ", "=", "\\", "!", "&&"]


@settings(max_examples=examples(60), deadline=None)
@given(
    ids=st.lists(
        st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_.\-]{1,30}", fullmatch=True)),
        min_size=2,
        max_size=4,
    ),
    separator=st.sampled_from(_SEPARATORS),
    good_before=st.integers(0, 2),
)
def test_no_key_error_contains_key_material(ids, separator, good_before):
    """Whatever the separator mistake, position and id only: no 8 characters of a key."""
    keys = [generate_key(i) if i else generate_key() for i in ids]
    good = [generate_key("ok") for _ in range(good_before)]
    inline = ",".join([*good, separator.join(keys)])
    with pytest.raises(ConfigError) as err:
        Keyring.from_environ({"CFGCORE_SECRET_KEYS": inline})
    text = str(err.value)
    position = re.search(r"key (\d+) of CFGCORE_SECRET_KEYS: ", text)
    assert position and int(position[1]) > good_before  # the good keys parsed
    assert not _leaks(text, [_material(k) for k in keys + good])


def test_key_file_errors_name_the_line(tmp_path):
    k1, k2 = generate_key("k1"), generate_key("k2")
    path = tmp_path / "keys"
    path.write_text(f"# keys, newest first\n{k2}\n{k1}  # retired: 2026-01\n")
    with pytest.raises(ConfigError) as err:
        Keyring.from_file(path)
    text = str(err.value)
    assert f"{path}:3: " in text
    assert not _leaks(text, [_material(k1), _material(k2)])


def test_a_key_file_error_keeps_its_file_and_line_in_a_load_error(tmp_path, monkeypatch):
    (tmp_path / "c").mkdir()
    k1 = generate_key("k1")
    keys = tmp_path / "keys"
    keys.write_text(f"{k1} # note: old\n")
    (tmp_path / "c" / "staging.yaml").write_text(
        f"environment: staging\napp:\n  note: '{encrypt_value('x', Keyring([k1]))}'\n"
    )
    monkeypatch.delenv("CFGCORE_SECRET_KEYS", raising=False)
    monkeypatch.setenv("CFGCORE_SECRET_KEY_FILE", str(keys))
    monkeypatch.setenv("CFGCORE_USAGE", "0")
    m = ConfigurationManager(str(tmp_path / "c"))
    with pytest.raises(ConfigError) as err:
        m.load_environment_config("staging")
    where = rf"staging\.yaml(:\d+)?: app\.note: {re.escape(str(keys))}:1: "
    assert re.search(where, str(err.value))
    assert not _leaks(str(err.value), [_material(k1)])
    m.close()


def test_a_short_well_formed_id_is_still_shown_and_a_long_one_is_not():
    with pytest.raises(ValueError, match=r"key '2026q4' is not urlsafe base64"):
        SecretKey.parse("2026q4:tooshort")
    fragment = _material(generate_key())[:30]  # looks like an id, may be key material
    with pytest.raises(ValueError) as err:
        SecretKey.parse(f"{fragment}:tooshort")
    assert fragment not in str(err.value)


def test_an_unreadable_key_file_is_named_and_a_fifo_does_not_hang(tmp_path):
    import os

    fifo = tmp_path / "keys"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="cannot read key file: not a regular file") as err:
        Keyring.from_file(fifo)
    assert str(fifo) in str(err.value)
    bad = tmp_path / "latin1"
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match=r"key file: UTF-16 text .*; save it as UTF-8$"):
        Keyring.from_file(bad)


def test_health_json_stays_json(tmp_path, monkeypatch):
    """Sanity for the helper above: /health/ready is the JSON the test greps."""
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "staging.yaml").write_text("environment: staging\n")
    monkeypatch.setenv("CFGCORE_USAGE", "0")
    m = ConfigurationManager(str(tmp_path / "c"))
    m.load_environment_config("staging")
    assert isinstance(json.loads(_ready_body(m)), dict)
    m.close()
