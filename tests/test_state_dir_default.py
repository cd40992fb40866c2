"""Where cfgcore keeps its state when ``CFGCORE_STATE_DIR`` is not set: never a
relative path (it used to follow the working directory)."""

from __future__ import annotations

import os
import pwd

import pytest

from cfgcore.errors import ConfigError
from cfgcore.runtime.flagstore import default_state_dir


@pytest.fixture(autouse=True)
def _no_setting(monkeypatch):
    monkeypatch.delenv("CFGCORE_STATE_DIR", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)


def test_home_then_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_state_dir() == str(tmp_path / ".local" / "state" / "cfgcore")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_state_dir() == str(tmp_path / "xdg" / "cfgcore")
    monkeypatch.setenv("CFGCORE_STATE_DIR", "relative/state")
    assert default_state_dir() == os.path.abspath("relative/state")


def test_a_relative_xdg_state_home_is_ignored(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_STATE_HOME", "state")  # invalid per the XDG specification
    assert default_state_dir() == str(tmp_path / ".local" / "state" / "cfgcore")


def test_no_home_and_an_unknown_uid_asks_for_the_setting(monkeypatch):
    def unknown(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.setattr(pwd, "getpwuid", unknown)  # a container's random uid
    assert os.path.expanduser("~") == "~"  # what the old code built its path on
    with pytest.raises(ConfigError, match="set CFGCORE_STATE_DIR"):
        default_state_dir()
