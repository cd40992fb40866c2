"""Refusals that list the files found in one place say it as a sentence does.

Two flags files of one configuration directory were refused with "flags.yaml,
flags.json all exist": "both exist" for two, "a, b and c all exist" for more; so is an
environment's configuration found in two formats. The refusals that name files whose
names differ only by case said "rename it" of two files (renamed both, they would be
ambiguous), a scaffold listed its files without "and", and ``cfgcore migrate`` refused
by the first of the configuration and its report that exist, not naming the other one
that ``--force`` replaces too."""

from __future__ import annotations

import os

import pytest

from cfgcore.cli import main as cli_main
from cfgcore.config.builder import directory_flags_file
from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError, all_exist, listed
from cfgcore.setup import main as setup_main


def test_listed_and_all_exist():
    assert listed([]) == ""
    assert listed(["a"]) == "a"
    assert listed(["a", "b"]) == "a and b"
    assert listed(iter(["a", "b", "c"])) == "a, b and c"
    assert all_exist(["a", "b"]) == "a and b both exist"
    assert all_exist(["a", "b", "c", "d"]) == "a, b, c and d all exist"


@pytest.mark.parametrize(
    ("names", "said"),
    [
        (["flags.yaml", "flags.json"], "flags.yaml and flags.json both exist; keep one"),
        (
            ["flags.yaml", "flags.yml", "flags.json"],
            "flags.yaml, flags.yml and flags.json all exist; keep one",
        ),
    ],
)
def test_two_or_more_flags_files(tmp_path, names, said):
    for name in names:
        (tmp_path / name).write_text("flags: {}\n")
    with pytest.raises(ConfigError) as info:
        directory_flags_file(tmp_path)
    (problem,) = info.value.problems
    assert problem.message == f"ambiguous flags: {said}"
    assert problem.file == str(tmp_path)


@pytest.mark.parametrize(
    ("names", "said"),
    [
        (["staging.yaml", "staging.json"], "staging.yaml and staging.json both exist"),
        (
            ["staging.yaml", "staging.yml", "staging.toml"],
            "staging.yaml, staging.yml and staging.toml all exist",
        ),
    ],
)
def test_an_environment_in_two_or_more_formats(tmp_path, names, said):
    for name in names:
        (tmp_path / name).write_text("{}\n")
    m = ConfigurationManager(str(tmp_path), environ={}, validate=False, record_usage=False)
    try:
        with pytest.raises(ConfigError) as info:
            m.load_environment_config("staging")
    finally:
        m.close()
    (problem,) = info.value.problems
    assert problem.message == f"ambiguous configuration: {said}; keep one"
    assert problem.file == str(tmp_path)


def _case_sensitive(path):
    (path / "Probe").write_text("")
    try:
        return not (path / "probe").exists()
    finally:
        os.remove(path / "Probe")


def test_two_miscased_base_files_are_named_with_a_fix_for_two(tmp_path):
    if not _case_sensitive(tmp_path):
        pytest.skip("a case-insensitive file system")
    (tmp_path / "Base.yaml").write_text("a: 1\n")
    (tmp_path / "BASE.json").write_text('{"a": 2}\n')
    (tmp_path / "staging.yaml").write_text("{}\n")
    m = ConfigurationManager(str(tmp_path), environ={}, validate=False, record_usage=False)
    try:
        with pytest.raises(ConfigError) as info:
            m.load_environment_config("staging")
        message = info.value.problems[0].message
        assert message == (
            "BASE.json and Base.yaml are there, but the base file is named in lower case "
            "and neither is ever read: rename the one to keep base.json or base.yaml"
        )
        with pytest.raises(ConfigError) as info:
            m.load_environment_config("qa")
        message = info.value.problems[0].message
        assert "rename it" not in message
    finally:
        m.close()


def test_two_miscased_environment_files_are_named_with_a_fix_for_two(tmp_path):
    if not _case_sensitive(tmp_path):
        pytest.skip("a case-insensitive file system")
    (tmp_path / "base.yaml").write_text("a: 1\n")
    for name in ("Staging.yaml", "STAGING.yml", "StAgInG.yaml"):
        (tmp_path / name).write_text("{}\n")
    m = ConfigurationManager(str(tmp_path), environ={}, validate=False, record_usage=False)
    try:
        with pytest.raises(ConfigError) as info:
            m.load_environment_config("staging")
    finally:
        m.close()
    message = info.value.problems[0].message
    assert message.endswith(
        "(STAGING.yml, StAgInG.yaml and Staging.yaml are there, but environment files are "
        "named in lower case: rename the one to keep staging.yml or staging.yaml)"
    )


def test_setup_lists_the_files_it_would_not_overwrite(tmp_path, capsys):
    d = tmp_path / "c"
    assert setup_main(["--environment", "staging", "-o", str(d)]) == 0
    capsys.readouterr()
    assert setup_main(["--environment", "staging", "-o", str(d)]) == 1
    assert "base.yaml, staging.yaml and flags.yaml already exist" in capsys.readouterr().err


def test_migrate_names_each_file_it_would_replace(tmp_path, capsys):
    source = tmp_path / "app.ini"
    source.write_text("[music_streaming]\npremium_bitrate = 320\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "base.yaml").write_text("# mine\n")
    (out / "migration-report.json").write_text("{}\n")
    assert cli_main(["migrate", str(source), "--out", str(out)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "cfgcore: error: 2 problems:",
        f"cfgcore: error:   - {out / 'base.yaml'}: already exists (use --force to replace it)",
        f"cfgcore: error:   - {out / 'migration-report.json'}: already exists (use --force "
        "to replace it)",
    ]
    assert (out / "base.yaml").read_text() == "# mine\n"
