"""The configuration directory's flags file deleted (or moved away) under a running
service: the reload found no flags file, activated a new version without one and said
nothing, while the last flags kept serving, so health stayed all green and the next
restart would have served no flags at all. The reload is now refused and reported
(last_error, the log, health's last_reload warning) as a configuration file that
disappeared is; the flags keep serving, and putting the file back goes live."""

from __future__ import annotations

import logging
import shutil

import pytest

from cfgcore.config.manager import ConfigurationManager

FLAGS = """\
version: 1
flags:
  beta:
    rules:
      - serve: on
    default: off
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    d = tmp_path / "config"
    d.mkdir()
    (d / "base.yaml").write_text("app: {name: demo}\n")
    (d / "development.yaml").write_text("environment: development\n")
    (d / "flags.yaml").write_text(FLAGS)
    m = ConfigurationManager(str(d), environ={}, record_usage=False)
    m.load_environment_config("development")
    yield d, m
    m.close()


def test_a_deleted_flags_file_is_refused_and_reported(project, caplog):
    d, m = project
    assert m.flags.is_enabled("beta", {"user_id": "u"}) is True
    version = m.debug_info()["version"]
    (d / "flags.yaml").unlink()
    caplog.set_level(logging.ERROR, logger="cfgcore")
    assert m.reload() is False
    assert "flags file disappeared" in str(m.last_error)
    assert str(d / "flags.yaml") in str(m.last_error)
    assert m.debug_info()["version"] == version
    assert m.debug_info()["flags_file"] == str(d / "flags.yaml")
    assert m.flags.is_enabled("beta", {"user_id": "u"}) is True
    warned = [c for c in m.health().readiness if c.status == "warn"]
    assert warned and "flags file disappeared" in warned[0].detail


def test_the_file_put_back_goes_live_again(project, tmp_path):
    d, m = project
    shutil.move(d / "flags.yaml", tmp_path / "flags.bak")
    assert m.reload() is False
    (tmp_path / "flags.bak").write_text(FLAGS.replace("serve: on", "serve: off"))
    shutil.move(tmp_path / "flags.bak", d / "flags.yaml")
    assert m.reload() is True
    assert m.last_error is None
    assert m.flags.is_enabled("beta", {"user_id": "u"}) is False


def test_an_explicit_load_still_accepts_the_removal(project):
    d, m = project
    (d / "flags.yaml").unlink()
    m.load_environment_config("development")
    assert m.debug_info()["flags_file"] is None
