"""File names the configuration manager logs stay one printable line.

A directory is named by whoever made it: one holding a newline forged a second log line
in the manager's INFO and WARNING lines about its configuration directory, its ``.env``
file and its file watcher, an escape sequence reached the operator's terminal, a line
separator or a right-to-left override reordered what the reader saw. Each such line
escapes the name (cfgcore.errors.printable_name).
"""

from __future__ import annotations

import logging
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config.manager import ConfigurationManager
from cfgcore.config.watcher import DirectoryWatcher
from tests.fuzz import examples
from tests.log_records import records
from tests.waiting import wait_for

# A newline and a carriage return (a forged line), an escape sequence (the terminal),
# a line separator and a right-to-left override (what the reader sees reordered).
HOSTILE = "d\n2026-03-01 WARNING forged\r\x1b[2J\u2028\u202eevil"


def one_line(record: logging.LogRecord) -> str:
    message = record.getMessage()
    assert message.isprintable(), ascii(message)
    message.encode("utf-8")  # (raises for a lone surrogate)
    return message


def _project(root: str) -> str:
    """A configuration directory under ``root`` (made), with a development file."""
    config_dir = os.path.join(root, "config")
    os.makedirs(config_dir)
    with open(os.path.join(config_dir, "development.yaml"), "w", encoding="utf-8") as f:
        f.write("app:\n  name: x\n")
    return config_dir


def _dotenv(path: str, text: str, mode: int) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)


def _manager(config_dir: str) -> ConfigurationManager:
    # The process environment (environ=None): only then is a .env file looked for.
    return ConfigurationManager(config_dir, environment="development", record_usage=False)


def test_the_directory_and_env_file_lines_are_printable(tmp_path, monkeypatch):
    """manager.py: the INFO lines naming the configuration directory and .env file."""
    monkeypatch.delenv("CFGCORE_ENV_FILE", raising=False)
    root = os.path.join(tmp_path, HOSTILE)
    config_dir = _project(root)
    _dotenv(os.path.join(root, ".env"), "APP_NAME=x\n", 0o600)
    with records(logging.INFO) as got:
        manager = _manager(config_dir)
        manager.close()
    shown = [one_line(r) for r in got if r.name.startswith("cfgcore")]
    assert any(m.startswith("configuration directory: ") for m in shown), shown
    assert any(m.startswith("environment file: ") for m in shown), shown
    assert any("\\n2026-03-01 WARNING forged" in m for m in shown), shown


def test_an_ignored_env_file_warning_is_printable(tmp_path, monkeypatch):
    """envfile.py: the .env file beside the configuration that anyone may write."""
    monkeypatch.delenv("CFGCORE_ENV_FILE", raising=False)
    root = os.path.join(tmp_path, HOSTILE)
    config_dir = _project(root)
    _dotenv(os.path.join(root, ".env"), "APP_NAME=x\n", 0o666)
    with records(logging.WARNING) as got:
        manager = _manager(config_dir)
        manager.close()
    ignored = [one_line(r) for r in got if r.getMessage().startswith("ignoring ")]
    assert ignored and "\\u202eevil" in ignored[0], ignored


def test_a_process_only_variable_warning_is_printable(tmp_path, monkeypatch):
    """envfile.py: a .env file (named by CFGCORE_ENV_FILE) setting what it may not."""
    root = os.path.join(tmp_path, HOSTILE)
    config_dir = _project(root)
    env_file = os.path.join(root, "app.env")
    _dotenv(env_file, f"CFGCORE_SECRET_DIRS={tmp_path}\nAPP_NAME=x\n", 0o600)
    with records(logging.WARNING) as got:
        monkeypatch.setenv("CFGCORE_ENV_FILE", env_file)
        manager = _manager(config_dir)
        try:
            manager.get("app.name")
        finally:
            manager.close()
    refused = [one_line(r) for r in got if "only the process environment" in r.getMessage()]
    assert refused and "CFGCORE_SECRET_DIRS" in refused[0], refused


def test_a_watcher_failure_is_printable(tmp_path):
    """watcher.py: a watch that cannot start names its paths (here: gone)."""
    gone = os.path.join(tmp_path, HOSTILE, "config")
    watcher = DirectoryWatcher([gone], lambda changes: None, poll_interval=0.05)
    with records(logging.WARNING) as got:
        watcher.start(wait=None)
        try:
            assert wait_for(lambda: any("falling back" in r.getMessage() for r in got))
        finally:
            watcher.stop()
    lines = [r for r in got if "watcher on" in r.getMessage() or "falling back" in r.msg]
    assert len(lines) >= 2, [r.getMessage() for r in got]
    for record in lines:
        assert "\\x1b[2J" in one_line(record)
        if record.exc_info:  # (the traceback a handler writes after the line)
            assert str(record.exc_info[1]).isprintable(), record.exc_info[1]


FLAGS = """\
version: 1
flags:
  beta:
    rules:
      - serve: on
    default: off
"""


def test_a_flags_file_that_appears_is_named_in_printable_lines(tmp_path, monkeypatch):
    """config/flags.py: a flags file found later (adopted: INFO; superseded: WARNING)."""
    monkeypatch.delenv("CFGCORE_ENV_FILE", raising=False)
    config_dir = _project(os.path.join(tmp_path, HOSTILE))
    first, second = _manager(config_dir), _manager(config_dir)
    try:
        placeholders = first.flags, second.flags
        with open(os.path.join(config_dir, "flags.yaml"), "w", encoding="utf-8") as f:
            f.write(FLAGS)
        with records(logging.INFO) as got:
            assert first.reload() and second.reload()
        assert placeholders[0].is_enabled("beta", {"user_id": "u1"})
    finally:
        first.close()
        second.close()
    lines = [one_line(r) for r in got if "flags file" in r.getMessage() or "flags:" in r.msg]
    assert any("appeared" in m and "\\u202eevil" in m for m in lines), lines
    assert any("take manager.flags again" in m for m in lines), lines


_NAME = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"),
    min_size=1,
    max_size=30,
).filter(lambda s: s not in (".", "..") and len(s.encode()) < 200)


@settings(max_examples=examples(20), deadline=None)
@given(name=_NAME)
def test_any_directory_name_logs_printable_lines(tmp_path_factory, name):
    """Every line the manager logs at INFO and above while starting in a directory
    of that name (and ignoring a .env file beside it) is one printable line."""
    root = os.path.join(tmp_path_factory.mktemp("n"), name)
    config_dir = _project(root)
    _dotenv(os.path.join(root, ".env"), "APP_NAME=x\n", 0o666)
    with records(logging.INFO) as got:
        manager = _manager(config_dir)
        manager.close()
    assert got
    for record in got:
        one_line(record)
