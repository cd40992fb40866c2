"""One flag store order for both managers: a store named by ``$CFGCORE_FLAG_STORE``
comes before the configuration directory's flags file for the configuration manager
too, as it always did for the dynamic-config manager. A fleet that exports a
``redis://`` URL (README "Running a fleet") over a ``cfgcore setup`` project serves the
fleet's flags through ``manager.flags``, ``cfgcore eval`` and the seed API alike; the
directory's file is what ``cfgcore publish --flags`` sends the store, and what
``cfgcore validate`` checks beside the store. Real files, a real Redis."""

from __future__ import annotations

import json
import logging
import shutil
import threading

import pytest

import cfgcore.config.manager as manager_module
from cfgcore.config.manager import ConfigurationManager, default_config_dir
from cfgcore.experiments.dynamic import (
    DynamicConfigurationManager,
    get_dynamic_config_manager,
    reset_dynamic_config_manager,
)
from tests.conftest import run_cli

FLAG = "enhanced_anomaly_detection"
PREMIUM = {"user_id": "12345", "user_segment": "premium", "region": "EU"}


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A configuration directory whose flags.yaml serves FLAG on for PREMIUM, with
    the state directory in tmp_path and no CFGCORE variable from outside."""
    d = tmp_path / "config"
    shutil.copytree(default_config_dir(), d)
    flags = d.parent / "bundled-flags.yaml"
    shutil.copy(default_config_dir().rsplit("/", 1)[0] + "/flags.yaml", flags)
    shutil.copy(flags, d / "flags.yaml")
    for var in ("CFGCORE_FLAG_STORE", "CFGCORE_CONFIG_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    return d


def _named_store_with_flag_off(path) -> None:
    """A file store at ``path`` holding the bundled flags with FLAG switched off."""
    m = DynamicConfigurationManager(path, log_exposures=False)
    try:
        m.set_feature_flag(FLAG, False)
    finally:
        m.close()


def test_a_named_file_store_serves_both_managers_over_the_directory_file(
    project, tmp_path, monkeypatch, caplog
):
    store = tmp_path / "fleet" / "flags.json"
    _named_store_with_flag_off(store)
    monkeypatch.setenv("CFGCORE_FLAG_STORE", str(store))
    monkeypatch.setenv("CFGCORE_CONFIG_DIR", str(project))
    monkeypatch.setattr(manager_module, "_default", None)
    reset_dynamic_config_manager()
    try:
        with caplog.at_level(logging.INFO, logger="cfgcore.flags"):
            config = manager_module.get_config_manager()
            config.load_environment_config("staging")
        dynamic = get_dynamic_config_manager(log_exposures=False)
        # The directory's flags.yaml has it on; the named store has it off.
        assert config.flags.is_enabled(FLAG, PREMIUM) is False
        assert dynamic.is_feature_enabled(FLAG, PREMIUM) is False
        assert dynamic.engine is config.flags  # one live set, one engine
        assert config.flag_store_url() == str(store)
        told = [r.getMessage() for r in caplog.records if "CFGCORE_FLAG_STORE" in r.getMessage()]
        assert len(told) == 1 and str(store) in told[0] and "flags.yaml" in told[0]
        # A change through either API is the other's at once.
        dynamic.set_feature_flag(FLAG, True)
        assert config.flags.is_enabled(FLAG, PREMIUM) is True
        assert DynamicConfigurationManager(store, log_exposures=False).is_feature_enabled(
            FLAG, PREMIUM
        )  # (written to the named store, read back by a manager of its own)
    finally:
        reset_dynamic_config_manager()
        monkeypatch.setattr(manager_module, "_default", None)


def test_an_explicit_argument_still_comes_before_the_named_store(project, tmp_path):
    store = tmp_path / "fleet" / "flags.json"
    _named_store_with_flag_off(store)
    env = {"CFGCORE_FLAG_STORE": str(store)}
    own = ConfigurationManager(project, environ=env, flags_file=project / "flags.yaml")
    try:
        own.load_environment_config("staging")
        assert own.flag_store_url() == str(project / "flags.yaml")
        assert own.flags.is_enabled(FLAG, PREMIUM) is True
    finally:
        own.close()


def test_a_custom_directory_without_flags_serves_the_named_store(project, tmp_path):
    """Before, such a directory served no flags whatever the variable said."""
    (project / "flags.yaml").unlink()
    store = tmp_path / "fleet" / "flags.json"
    _named_store_with_flag_off(store)
    m = ConfigurationManager(project, environ={"CFGCORE_FLAG_STORE": str(store)})
    try:
        m.load_environment_config("staging")
        assert m.flag_store_url() == str(store)
        assert m.flags.is_enabled("beta_social_features", {"user_id": "1"}) is False
        assert FLAG in m.flags.snapshot().keys
    finally:
        m.close()
    # Without the variable it still serves none.
    bare = ConfigurationManager(project, environ={})
    try:
        bare.load_environment_config("staging")
        assert bare.flag_store_url() is None
        assert list(bare.flags.snapshot().keys) == []
    finally:
        bare.close()


def test_a_fleet_over_a_setup_project_serves_redis_everywhere(
    project, tmp_path, monkeypatch, capsys, redis_server
):
    """README "Running a fleet": export the URL, publish the directory's flags, and the
    configuration manager, the dynamic-config manager and ``cfgcore eval`` all serve
    the fleet's document (the directory's file is not read by them)."""
    url = redis_server.url + "?namespace=music&poll=0.1"
    monkeypatch.setenv("CFGCORE_FLAG_STORE", url)
    monkeypatch.setenv("CFGCORE_CONFIG_DIR", str(project))
    # The directory's file, published to the store while the variable names it.
    code, out, err = run_cli(
        capsys, "publish", "--store", url, "--config-dir", str(project), "-e", "staging", "--flags"
    )
    assert code == 0, err
    # Then the directory's file is edited (FLAG off) but not published: not served.
    text = (project / "flags.yaml").read_text()
    (project / "flags.yaml").write_text(text.replace('serve: "on"', 'serve: "off"', 1))

    config = ConfigurationManager(project, environ={"CFGCORE_FLAG_STORE": url})
    dynamic = DynamicConfigurationManager(store=url, log_exposures=False)
    try:
        config.load_environment_config("staging")
        assert config.flag_store_url() == url
        assert config.flags.is_enabled(FLAG, PREMIUM) is True
        assert dynamic.is_feature_enabled(FLAG, PREMIUM) is True
        code, out, err = run_cli(
            capsys, "eval", FLAG, "--config-dir", str(project), "-e", "staging", "--json",
            "--ctx", "user_id=12345", "user_segment=premium", "region=EU",
        )  # fmt: skip
        assert code == 0, err
        assert json.loads(out)["value"] is True
        # The command's own manager followed the store in a thread; run in-process, it
        # leaves none behind (the two managers here follow it: one thread, theirs).
        followers = [t for t in threading.enumerate() if t.name.startswith("cfgcore-fleet")]
        assert len(followers) == 1
        # A change through the seed API is what manager.flags serves next.
        dynamic.set_feature_flag(FLAG, False)
        assert config.flags.is_enabled(FLAG, PREMIUM) is False
    finally:
        dynamic.close()
        config.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("cfgcore-fleet")]


def test_validate_checks_the_directory_file_beside_the_named_store(
    project, tmp_path, monkeypatch, capsys
):
    store = tmp_path / "fleet" / "flags.json"
    _named_store_with_flag_off(store)
    monkeypatch.setenv("CFGCORE_FLAG_STORE", str(store))
    args = ("validate", "--config-dir", str(project), "-e", "staging")
    code, out, err = run_cli(capsys, *args)
    assert code == 0, out + err
    # The directory's file broken (a default naming no variant): refused, by name,
    # although the store that serves is fine.
    flags = project / "flags.yaml"
    flags.write_text(flags.read_text() + "\n  broken_flag:\n    default: nowhere\n")
    code, out, err = run_cli(capsys, *args)
    assert code == 1
    assert "flags.yaml" in out + err and "broken_flag" in out + err
