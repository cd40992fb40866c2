"""``cfgcore eval`` masks a flag payload's secrets as ``get`` masks the configuration's:
a decrypted ``ENC[...]`` value and a secret file's content were printed in clear (text
and ``--json``), whatever key they sat under."""

from __future__ import annotations

import json
import os

import pytest

from cfgcore.runtime.secrets import Keyring, encrypt_value, generate_key
from tests.conftest import run_cli

pytest.importorskip("cryptography")
ENCRYPTED = "payload-secret-41c9"
FILED = "file-secret-8d2e"


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    for var in list(os.environ):
        if var.startswith("CFGCORE"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("CFGCORE_USAGE", "0")
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    key = generate_key("k1")
    monkeypatch.setenv("CFGCORE_SECRET_KEYS", key)
    sec = tmp_path / "sec"
    sec.mkdir()
    (sec / "dsn").write_text(FILED + "\n")
    monkeypatch.setenv("CFGCORE_SECRET_DIRS", str(sec))
    ring = Keyring([key])
    bound = encrypt_value(ENCRYPTED, ring, path="flags.svc.variants.on.endpoint")
    whole = encrypt_value(ENCRYPTED, ring, path="flags.plain.variants.a")
    d = tmp_path / "c"
    d.mkdir()
    (d / "development.yaml").write_text("public: {a: 1}\n")
    (d / "flags.yaml").write_text(
        "version: 1\nflags:\n"
        "  svc:\n    variants:\n"
        f"      on: {{endpoint: '{bound}', backup: '${{file:{sec / 'dsn'}}}', n: 3}}\n"
        "      off: {endpoint: none}\n    default: on\n"
        f"  plain:\n    variants:\n      a: '{whole}'\n      b: other\n    default: a\n"
    )
    return str(d)


@pytest.mark.parametrize("flag", ["svc", "plain"])
@pytest.mark.parametrize("as_json", [False, True])
def test_eval_masks_decrypted_and_file_secrets(config_dir, capsys, flag, as_json):
    argv = ["eval", flag, "--config-dir", config_dir, *(["--json"] if as_json else [])]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert ENCRYPTED not in out + err
    assert FILED not in out + err
    assert "***" in out
    if as_json:
        doc = json.loads(out)
        assert doc["variant"] == ("on" if flag == "svc" else "a")
        if flag == "svc":
            assert doc["value"]["n"] == 3  # what is no secret is shown as it is
