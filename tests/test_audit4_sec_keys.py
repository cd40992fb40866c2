"""Round 4, key files every local user can read: said, naming the file and its mode."""

from __future__ import annotations

import logging
import os

import pytest

from cfgcore.runtime.audit import audit_keys
from cfgcore.runtime.secrets import Keyring, generate_key


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
