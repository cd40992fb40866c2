"""An environment file that exists but cannot be read (a looping or dangling link, a
directory in its place) is reported with the OS's reason and its name, never as "no
configuration file", and is not listed as an available environment."""

from __future__ import annotations

import os
import shutil

import pytest

from cfgcore.cli import main
from cfgcore.config.manager import ConfigurationManager, default_config_dir
from cfgcore.errors import ConfigError


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    for var in list(os.environ):
        if var.startswith(("CFGCORE__", "CONFIG_")):
            monkeypatch.delenv(var)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    d = tmp_path / "config"
    d.mkdir()
    for name in ("base.yaml", "staging.yaml"):
        shutil.copy(os.path.join(default_config_dir(), name), d / name)
    return d


def _load(d, env="development"):
    return ConfigurationManager(d, environment=env, environ={}).load_environment_config(env)


def test_looping_link_reports_the_os_error(config_dir):
    os.symlink("development.yaml", config_dir / "development.yaml")
    with pytest.raises(ConfigError) as err:
        _load(config_dir)
    text = str(err.value)
    assert f"{config_dir / 'development.yaml'}: cannot read: Too many levels of symbolic" in text
    assert "no configuration file" not in text
    m = ConfigurationManager(config_dir, environ={})
    assert m.available_environments() == ["staging"]


def test_dangling_link_reports_the_os_error_and_target(config_dir):
    os.symlink("gone/development.yaml", config_dir / "development.yaml")
    with pytest.raises(ConfigError, match=r"development\.yaml: cannot read: No such file"):
        _load(config_dir)


def test_dangling_base_file_is_not_silently_skipped(config_dir):
    shutil.copy(os.path.join(default_config_dir(), "development.yaml"), config_dir)
    os.remove(config_dir / "base.yaml")
    os.symlink("gone/base.yaml", config_dir / "base.yaml")
    with pytest.raises(ConfigError, match=r"base\.yaml: cannot read"):
        _load(config_dir)


def test_directory_in_place_of_the_file(config_dir):
    (config_dir / "development.yaml").mkdir()
    with pytest.raises(ConfigError, match=r"development\.yaml: cannot read: Is a directory"):
        _load(config_dir)


def test_cli_names_the_file(config_dir, capsys):
    os.symlink("development.yaml", config_dir / "development.yaml")
    assert main(["show", "--config-dir", str(config_dir), "-e", "development"]) != 0
    err = capsys.readouterr().err
    assert "development.yaml: cannot read" in err
    assert "available" not in err


def test_truly_missing_environment_still_lists_the_available_ones(config_dir):
    with pytest.raises(ConfigError, match="no configuration file .*available: staging"):
        _load(config_dir)
