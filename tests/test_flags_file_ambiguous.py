"""Two flags files in one configuration directory (``flags.yaml`` beside
``flags.json``, say: one left behind by a move to the other) are refused, as two files of
one environment are, naming the directory and both files: at a start, at the reload that
finds the second one (the last good flags serving), and by ``cfgcore validate``. A store
named elsewhere (``flags_file=``, ``$CFGCORE_FLAG_STORE``) is not the directory's: no
refusal."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError

YAML_FLAGS = "flags:\n  f:\n    default: 'on'\n"
JSON_FLAGS = json.dumps({"flags": {"f": {"default": "off"}}})


def _directory(tmp_path, *flag_files):
    d = tmp_path / "config"
    d.mkdir()
    (d / "base.yaml").write_text("app:\n  name: x\n")
    (d / "staging.yaml").write_text("app:\n  debug: true\n")
    for name in flag_files:
        (d / name).write_text(YAML_FLAGS if name.endswith((".yaml", ".yml")) else JSON_FLAGS)
    return d


@pytest.mark.parametrize("second", ["flags.json", "flags.yml"])
def test_a_start_with_two_flags_files_is_refused_naming_both(tmp_path, monkeypatch, second):
    monkeypatch.delenv("CFGCORE_FLAG_STORE", raising=False)
    d = _directory(tmp_path, "flags.yaml", second)
    manager = ConfigurationManager(str(d), environment="staging")
    try:
        with pytest.raises(ConfigError) as info:
            manager.load_environment_config("staging")
        text = str(info.value)
        assert "ambiguous flags" in text and "flags.yaml" in text and second in text
        assert str(d) in text
    finally:
        manager.close()
    os.remove(d / second)  # one left: served
    manager = ConfigurationManager(str(d), environment="staging")
    try:
        manager.load_environment_config("staging")
        assert manager.flags.is_enabled("f", {"user_id": "u"}) is True
    finally:
        manager.close()


def test_the_reload_that_finds_a_second_flags_file_is_refused_the_last_good_serving(
    tmp_path, monkeypatch
):
    monkeypatch.delenv("CFGCORE_FLAG_STORE", raising=False)
    d = _directory(tmp_path, "flags.yaml")
    manager = ConfigurationManager(str(d), environment="staging")
    try:
        manager.load_environment_config("staging")
        assert manager.flags.is_enabled("f", {"user_id": "u"}) is True
        (d / "flags.json").write_text(JSON_FLAGS)
        assert manager.reload() is False
        assert "ambiguous flags" in str(manager.last_error)
        assert manager.flags.is_enabled("f", {"user_id": "u"}) is True
        assert manager.get("app.debug") is True
        os.remove(d / "flags.json")
        (d / "staging.yaml").write_text("app:\n  debug: false\n")
        assert manager.reload() is True
        assert manager.get("app.debug") is False
    finally:
        manager.close()


def test_a_flags_file_named_explicitly_is_not_ambiguous(tmp_path, monkeypatch):
    monkeypatch.delenv("CFGCORE_FLAG_STORE", raising=False)
    d = _directory(tmp_path, "flags.yaml", "flags.json")
    manager = ConfigurationManager(str(d), environment="staging", flags_file=d / "flags.json")
    try:
        manager.load_environment_config("staging")
        assert manager.flags.is_enabled("f", {"user_id": "u"}) is False
    finally:
        manager.close()


def test_validate_names_the_two_flags_files(tmp_path):
    d = _directory(tmp_path, "flags.yaml", "flags.json")
    env = {k: v for k, v in os.environ.items() if k != "CFGCORE_FLAG_STORE"}
    run = subprocess.run(
        [sys.executable, "-m", "cfgcore", "validate", "--config-dir", str(d), "-e", "staging"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert run.returncode != 0
    out = run.stdout + run.stderr
    assert "ambiguous flags" in out and "flags.yaml" in out and "flags.json" in out
