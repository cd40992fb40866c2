"""``cfgcore experiment`` finds the tests where the service's manager serves them from.

In a project made by ``cfgcore setup`` the service serves ``config/flags.yaml``; the
CLI wrote ``$CFGCORE_STATE_DIR/flags.json``, so a test created on the command line
never reached the service (and ``$CFGCORE_FLAG_STORE`` was ignored)."""

from __future__ import annotations

import pytest

from cfgcore.dynamic_config import DynamicConfigurationManager
from tests.conftest import run_cli

SPLIT = ("--split", "control=50,treatment=50")


@pytest.fixture
def project(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name in ("CFGCORE_CONFIG_DIR", "CFGCORE_FLAG_STORE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    assert run_cli(capsys, "setup", "-e", "staging", "-q")[0] == 0
    return tmp_path


def _served(**kwargs):
    manager = DynamicConfigurationManager(log_exposures=False, record_usage=False, **kwargs)
    try:
        return manager.get_ab_test("checkout"), manager.flags_file
    finally:
        manager.close()


def test_a_test_created_in_a_setup_project_is_the_one_the_service_serves(project, capsys):
    code, out, err = run_cli(capsys, "experiment", "create", "checkout", *SPLIT, "--start")
    assert code == 0, err
    test, served_from = _served()
    assert served_from == str(project / "config" / "flags.yaml")
    assert test is not None and test.traffic_split == {"control": 50.0, "treatment": 50.0}
    assert not (project / "state" / "flags.json").exists()
    code, out, err = run_cli(capsys, "experiment", "list")
    assert code == 0 and "checkout" in out, err


def test_the_flag_store_variable_is_followed(project, tmp_path, monkeypatch, capsys):
    store = tmp_path / "elsewhere" / "flags.json"
    store.parent.mkdir()
    monkeypatch.setenv("CFGCORE_FLAG_STORE", str(store))
    code, _, err = run_cli(capsys, "experiment", "create", "checkout", *SPLIT)
    assert code == 0, err
    assert store.exists() and _served()[1] == str(store)
    assert _served()[0] is not None
    assert "checkout" not in (project / "config" / "flags.yaml").read_text()


def test_explicit_locations_still_win(project, tmp_path, capsys):
    mine = tmp_path / "mine.json"
    code, _, err = run_cli(capsys, "experiment", "create", "checkout", *SPLIT, "--flags", str(mine))
    assert code == 0, err
    assert _served(flags_file=mine)[0] is not None and _served()[0] is None
    state = tmp_path / "other-state"
    code, _, err = run_cli(
        capsys, "experiment", "create", "checkout", *SPLIT, "--state-dir", str(state)
    )
    assert code == 0, err
    assert _served(state_dir=state)[0] is not None
    code, out, _ = run_cli(capsys, "experiment", "list", "--store", str(mine))
    assert code == 0 and "checkout" in out


def test_a_refused_split_is_said_once_and_blames_the_command_line(project, capsys):
    code, out, err = run_cli(capsys, "experiment", "create", "t", "--split", "a=50")
    assert code == 1
    assert "WARNING" not in err and "flags.yaml" not in err and "flags.json" not in err
    assert err.count("needs at least two variants") == 1
    assert "t: traffic_split: weights sum to 50, not 100" in err


def test_split_may_be_repeated_and_a_variant_given_twice_is_refused(project, capsys):
    args = ("experiment", "create", "checkout", "--split", "control=50", "--split", "green=50")
    code, _, err = run_cli(capsys, *args)
    assert code == 0, err
    assert _served()[0].traffic_split == {"control": 50.0, "green": 50.0}
    code, _, err = run_cli(capsys, "experiment", "create", "x", "--split", "a=50,b=20,a=30")
    assert code == 2 and "--split: 'a' given twice" in err
