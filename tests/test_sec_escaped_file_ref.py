"""``$${`` writes a literal ``${`` in configuration. Followed by ``file:`` it became a
``${file:...}`` reference after substitution, and the secrets step read the file into
the key: a value meant as text served a secret file's content. Such a value is now
refused, naming its key path (the secrets step could not tell it from a reference)."""

from __future__ import annotations

import os

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError

SECRET = "file-secret-7f3a"


@pytest.fixture
def setup(tmp_path, monkeypatch):
    for var in list(os.environ):
        if var.startswith("CFGCORE"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("CFGCORE_USAGE", "0")
    sec = tmp_path / "sec"
    sec.mkdir()
    (sec / "db").write_text(SECRET + "\n")
    monkeypatch.setenv("CFGCORE_SECRET_DIRS", str(sec))
    (tmp_path / "c").mkdir()
    return tmp_path, str(sec / "db")


@pytest.mark.parametrize("shape", ["$${{file:{p}}}", "see $${{file:{p}}} for the password"])
def test_an_escaped_file_reference_in_a_file_is_refused_not_read(setup, shape):
    root, secret_file = setup
    value = shape.format(p=secret_file)
    (root / "c" / "staging.yaml").write_text(f"public:\n  note: '{value}'\n")
    m = ConfigurationManager(str(root / "c"))
    try:
        with pytest.raises(ConfigError) as err:
            m.load_environment_config("staging")
        assert "public.note" in str(err.value)
        assert "$${file:" in str(err.value)
        assert SECRET not in str(err.value)
        assert m.get("public.note") is None
    finally:
        m.close()


def test_a_variable_reference_and_a_plain_file_reference_still_work(setup, monkeypatch):
    root, secret_file = setup
    monkeypatch.setenv("GREETING", "hello")
    (root / "c" / "staging.yaml").write_text(
        f"public:\n  note: '${{GREETING}} $${{HOME}}'\ndb:\n  password: '${{file:{secret_file}}}'\n"
    )
    m = ConfigurationManager(str(root / "c"))
    try:
        m.load_environment_config("staging")
        assert m.get("public.note") == "hello ${HOME}"
        assert m.get("db.password") == SECRET
    finally:
        m.close()


def test_an_escaped_file_reference_in_a_runtime_update_is_refused(setup):
    root, secret_file = setup
    (root / "c" / "staging.yaml").write_text("public:\n  note: text\n")
    m = ConfigurationManager(str(root / "c"))
    try:
        m.load_environment_config("staging")
        assert not m.update_config("public.note", f"$${{file:{secret_file}}}")
        assert "$${file:" in str(m.last_error)
        assert m.get("public.note") == "text"
    finally:
        m.close()
