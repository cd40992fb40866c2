"""Round 4, keys: key files every local user can read, and a signed audit log appended
to without its key (CFGCORE_AUDIT_KEY dropped from the environment), and
CFGCORE_SECRET_DIRS opening a system directory to ${file:...}, and a plaintext given to
`cfgcore secrets encrypt` on the command line, are said."""

from __future__ import annotations

import io
import logging
import os

import pytest

from cfgcore.runtime.audit import AuditLog, audit_keys
from cfgcore.runtime.secrets import Keyring, allowed_secret_dirs, generate_key


def _key_file(tmp_path, mode):
    path = tmp_path / "keys"
    path.write_text(generate_key("k1") + "\n")
    os.chmod(path, mode)
    return path


@pytest.mark.parametrize(
    "load",
    [
        lambda path: Keyring.from_file(path),
        lambda path: Keyring.from_environ({"CFGCORE_SECRET_KEY_FILE": str(path)}),
        lambda path: audit_keys({"CFGCORE_AUDIT_KEY_FILE": str(path)}),
    ],
    ids=["from_file", "secret-key-file", "audit-key-file"],
)
def test_a_key_file_every_user_can_read_is_warned_of(tmp_path, caplog, load):
    path = _key_file(tmp_path, 0o644)
    with caplog.at_level(logging.WARNING, logger="cfgcore"):
        assert load(path)  # still loaded: a warning, not a refusal
    [record] = [r for r in caplog.records if "readable by every user" in r.getMessage()]
    assert str(path) in record.getMessage() and "0644" in record.getMessage()


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o400])
def test_a_key_file_others_cannot_read_is_not_warned_of(tmp_path, caplog, mode):
    path = _key_file(tmp_path, mode)
    with caplog.at_level(logging.WARNING, logger="cfgcore"):
        Keyring.from_file(path)
    assert not [r for r in caplog.records if "readable" in r.getMessage()]


def test_appending_without_a_key_to_a_signed_log_is_logged_once(tmp_path, caplog):
    path = tmp_path / "audit.jsonl"
    signed = AuditLog(path, keys=audit_keys({"CFGCORE_AUDIT_KEY": generate_key("k1")}))
    signed.append({"kind": "update", "path": "a", "new": 1})
    with caplog.at_level(logging.WARNING, logger="cfgcore"):
        unsigned = AuditLog(path, keys=())  # CFGCORE_AUDIT_KEY dropped from the environment
        unsigned.append({"kind": "update", "path": "b", "new": 2})
        unsigned.append({"kind": "update", "path": "c", "new": 3})
        AuditLog(path, keys=()).append({"kind": "update", "path": "d", "new": 4})
    said = [r for r in caplog.records if "no audit key is set" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.ERROR
    assert str(path) in said[0].getMessage() and "'k1'" not in said[0].getMessage()
    assert "key k1" in said[0].getMessage()


def test_an_unsigned_log_appended_without_a_key_is_not_warned_of(tmp_path, caplog):
    path = tmp_path / "audit.jsonl"
    with caplog.at_level(logging.WARNING, logger="cfgcore"):
        for name in "ab":
            AuditLog(path, keys=()).append({"kind": "update", "path": name, "new": 1})
    assert not [r for r in caplog.records if "audit key" in r.getMessage()]


@pytest.mark.parametrize("raw", ["/", "/etc", f"/run/secrets{os.pathsep}/", "~"])
def test_secret_dirs_opening_a_system_directory_are_logged(tmp_path, caplog, raw):
    raw = raw.replace("~", os.path.expanduser("~"))
    raw += f"{os.pathsep}{tmp_path}"  # a value no other test used: said once per value
    with caplog.at_level(logging.WARNING, logger="cfgcore"):
        allowed = allowed_secret_dirs({"CFGCORE_SECRET_DIRS": raw})
        assert allowed_secret_dirs({"CFGCORE_SECRET_DIRS": raw}) == allowed
    said = [r for r in caplog.records if "CFGCORE_SECRET_DIRS" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.WARNING


@pytest.mark.parametrize("raw", ["/run/secrets", "/etc/svc/secrets", "", None])
def test_secret_dirs_of_secrets_only_directories_are_not_warned_of(tmp_path, caplog, raw):
    env = {} if raw is None else {"CFGCORE_SECRET_DIRS": f"{raw}{os.pathsep}{tmp_path}"}
    with caplog.at_level(logging.WARNING, logger="cfgcore"):
        allowed_secret_dirs(env)
    assert not [r for r in caplog.records if "CFGCORE_SECRET_DIRS" in r.getMessage()]


def test_secrets_encrypt_warns_of_a_plaintext_on_the_command_line(tmp_path, monkeypatch, capsys):
    from cfgcore.cli import main

    monkeypatch.setenv("CFGCORE_SECRET_KEYS", generate_key("k1"))
    assert main(["secrets", "encrypt", "--path", "db.password", "Hunter2-argv"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("ENC[v2:") and "command line" in err and "standard input" in err
    assert "Hunter2-argv" not in out + err
    monkeypatch.setattr("sys.stdin", io.StringIO("Hunter2-stdin\n"))
    assert main(["secrets", "encrypt", "--path", "db.password"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("ENC[v2:") and err == ""  # read from standard input: no warning
