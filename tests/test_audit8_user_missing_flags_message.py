"""`cfgcore export` (any command reading a flag store it was not given a seed for) on
a flag file that does not exist said "in production the bundled demo flags are never
served in its place" on a developer's machine, in development: the production reason
is given only in production now."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli


@pytest.mark.parametrize("environment", [None, "development", "production"])
def test_a_missing_flag_file_is_explained_for_the_environment(
    tmp_path, monkeypatch, capsys, environment
):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("CFGCORE_ENVIRONMENT", raising=False)
    if environment is None:
        monkeypatch.delenv("CONFIG_ENVIRONMENT", raising=False)
    else:
        monkeypatch.setenv("CONFIG_ENVIRONMENT", environment)
    missing = tmp_path / "flags.yaml"
    code, _out, err = run_cli(capsys, "export", "--format", "flagd", "--flags", str(missing))
    assert code == 1
    assert f"{missing}: flag file does not exist" in err
    assert ("in production" in err) is (environment == "production")
