"""Round 3, the new user: files saved by a Windows editor.

UTF-8 with a byte-order mark and CRLF line endings load as written. A file saved as
UTF-16 or UTF-32 (Notepad's "Unicode") is refused naming the file, line 1 and the
encoding, and says to save it as UTF-8 (it was "not UTF-8 (byte 0)", or for a legacy
file "binary content (NUL byte)"); other bad bytes are named with their line. The
last good configuration stays live.
"""

from __future__ import annotations

import os

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.migration import LegacyConfigMigrator
from tests.conftest import run_cli as run
from tests.conftest import scaffolded_config

ENCODINGS = [("utf-16", "UTF-16"), ("utf-32", "UTF-32"), ("utf-16-be", None)]


def _save(path, text, encoding):
    data = text.encode(encoding)
    if encoding == "utf-16-be":  # as Windows writes "Unicode big endian": with its mark
        data = b"\xfe\xff" + data
    path.write_bytes(data)


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    return scaffolded_config(tmp_path, monkeypatch, "staging")


def test_bom_and_crlf_load_as_written(cfg, capsys):
    staging = cfg / "staging.yaml"
    text = staging.read_text().replace("worker_threads: 8", "worker_threads: 12")
    staging.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    code, out, _ = run(capsys, "get", "performance.worker_threads")
    assert (code, out) == (0, "12\n")


@pytest.mark.parametrize(("encoding", "name"), ENCODINGS)
def test_a_utf16_or_utf32_configuration_file_says_to_save_it_as_utf8(cfg, capsys, encoding, name):
    staging = cfg / "staging.yaml"
    _save(staging, staging.read_text(), encoding)
    name = name or "UTF-16"
    code, out, err = run(capsys, "show")
    assert code == 1 and out == ""
    assert err == (
        f"cfgcore: error: {staging}:1: {name} text (it starts with a {name} byte-order "
        "mark); save it as UTF-8\n"
    )


def test_bad_bytes_are_named_with_their_line(cfg, capsys):
    base = cfg / "base.yaml"
    raw = base.read_bytes()
    lines = raw.split(b"\n")
    lines[3] = lines[3] + b" # caf\xe9"  # Latin-1, on line 4
    base.write_bytes(b"\n".join(lines))
    code, _, err = run(capsys, "validate")
    assert code == 1
    offset = len(b"\n".join(lines[:3])) + 1 + len(lines[3]) - 1
    assert err == f"cfgcore: error: {base}:4: not UTF-8 (byte {offset}); save it as UTF-8\n"


def test_a_utf16_env_file_says_to_save_it_as_utf8(cfg, capsys, monkeypatch):
    env = cfg.parent / "service.env"
    _save(env, "REDIS_URL=redis://r:6379/0\n", "utf-16")
    monkeypatch.setenv("CFGCORE_ENV_FILE", str(env))
    code, _, err = run(capsys, "get", "app.name")
    assert code == 1
    assert f"{env}:1: cannot read the .env file: UTF-16 text" in err and "save it as UTF-8" in err


@pytest.mark.parametrize("suffix", [".ini", ".properties", ".env", ".json", ".yaml"])
def test_a_utf16_legacy_file_is_named_as_utf16_not_binary(tmp_path, suffix):
    src = tmp_path / f"legacy{suffix}"
    _save(src, "[music_streaming]\npremium_bitrate = 320\n", "utf-16")
    with pytest.raises(ConfigError) as exc:
        LegacyConfigMigrator().migrate_from_legacy(str(src))
    assert str(exc.value) == (
        f"{src}:1: UTF-16 text (it starts with a UTF-16 byte-order mark); save it as UTF-8"
    )


def test_hot_reload_keeps_the_last_good_configuration_over_a_utf16_save(cfg):
    manager = ConfigurationManager(cfg, record_usage=False)
    try:
        manager.load_environment_config("staging")
        staging = cfg / "staging.yaml"
        text = staging.read_text().replace("worker_threads: 8", "worker_threads: 12")
        tmp = cfg / ".staging.tmp"
        _save(tmp, text, "utf-16")
        os.replace(tmp, staging)
        assert manager.reload() is False
        assert manager.get("performance.worker_threads") == 8
        assert str(manager.last_error).startswith(f"{staging}:1: UTF-16 text")
        staging.write_text(text)  # saved again, as UTF-8
        assert manager.reload() is True
        assert manager.get("performance.worker_threads") == 12
    finally:
        manager.close()
