"""Hot reload with real files and the real watcher: a rejection clears once the inputs read
back as the live version, and a persistent rejection is reported once, not on every poll."""

from __future__ import annotations

import logging
import os
import shutil

import pytest

import cfgcore.metrics
from cfgcore.config.manager import ConfigurationManager, default_config_dir
from tests.waiting import wait_for


def reload_failing(manager) -> float:
    family = cfgcore.metrics.snapshot()["metrics"]["cfgcore_config_reload_failing"]
    mine = {"config_dir": manager.config_dir, "environment": manager.environment}
    return sum(
        s["value"]
        for s in family["samples"]
        if all(s["labels"].get(k) == v for k, v in mine.items())
    )


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    for var in list(os.environ):
        if var.startswith(("CFGCORE__", "CONFIG_")):
            monkeypatch.delenv(var)
    d = tmp_path / "config"
    d.mkdir()
    for name in ("base.yaml", "development.yaml"):
        shutil.copy(os.path.join(default_config_dir(), name), d / name)
    return d


def test_reverting_a_broken_file_clears_the_error(config_dir):
    path = config_dir / "development.yaml"
    m = ConfigurationManager(config_dir, environment="development", environ={})
    try:
        m.load_environment_config("development")
        good = path.read_text()
        m.enable_hot_reload(poll_interval=0.05)
        path.write_text("app: [\n")
        assert wait_for(lambda: m.last_error is not None)
        assert reload_failing(m) == 1
        assert m.health().reasons
        path.write_text(good)  # back to what is live: nothing to swap, but all is well
        assert wait_for(lambda: m.last_error is None)
        assert m.reload() is True
        assert m.last_error is None
        assert m.health().reasons == []
        assert reload_failing(m) == 0
        assert m.version == 1
    finally:
        m.close()


def test_explicit_reload_after_revert_clears_the_error(config_dir):
    path = config_dir / "development.yaml"
    m = ConfigurationManager(config_dir, environment="development", environ={})
    m.load_environment_config("development")
    good = path.read_text()
    path.write_text("app: [\n")
    assert m.reload() is False
    assert "development.yaml:2" in str(m.last_error)
    path.write_text(good)
    assert m.reload() is True
    assert m.last_error is None


def _configmap(tmp_path):
    """A Kubernetes ConfigMap volume: files are links through a ``..data`` link."""
    d = tmp_path / "cm"
    (d / "..v1").mkdir(parents=True)
    for name in ("base.yaml", "development.yaml"):
        shutil.copy(os.path.join(default_config_dir(), name), d / "..v1" / name)
        os.symlink(os.path.join("..data", name), d / name)
    os.symlink("..v1", d / "..data")
    return d


def _repoint(d, target):
    tmp = d / "..data_tmp"
    os.symlink(target, tmp)
    os.replace(tmp, d / "..data")  # the atomic swap kubelet does


def test_dangling_configmap_link_is_reported_once_until_it_changes(tmp_path, caplog):
    d = _configmap(tmp_path)
    m = ConfigurationManager(d, environment="development", environ={})
    caplog.set_level(logging.DEBUG, logger="cfgcore.manager")

    def rejections():
        return [
            r
            for r in caplog.records
            if r.levelno >= logging.ERROR and "reload rejected" in r.getMessage()
        ]

    try:
        m.load_environment_config("development")
        m.enable_hot_reload(poll_interval=0.02)
        _repoint(d, "..missing")
        assert wait_for(lambda: m.last_error is not None)
        assert "cannot read: No such file or directory" in str(m.last_error)
        # Many polls later the same missing input is still refused, and said once.
        seen = m.reloader.confirmed_at
        for _ in range(5):
            assert wait_for(lambda s=seen: m.reloader.confirmed_at > s)
            seen = m.reloader.confirmed_at
        assert len(rejections()) == 1
        assert m.version == 1

        _repoint(d, "..v1")  # recovered: same content as live
        assert wait_for(lambda: m.last_error is None)
        _repoint(d, "..missing")  # broken again: a new report
        assert wait_for(lambda: len(rejections()) == 2)
    finally:
        m.close()
