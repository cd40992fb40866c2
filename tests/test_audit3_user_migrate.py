"""Round 3, the new user: ``cfgcore migrate`` and ``LegacyConfigMigrator`` on the inputs
a first migration meets: an empty legacy file, and ``--name`` spelled as a file."""

from __future__ import annotations

import pytest
import yaml

from cfgcore.cli import main as cli_main
from cfgcore.errors import ConfigError
from cfgcore.migration import LegacyConfigMigrator

INI = "[music_streaming]\npremium_bitrate = 320\n"


@pytest.mark.parametrize("name", ["legacy.ini", "legacy.env", "legacy.properties",
                                  "legacy.json", "legacy.yaml"])  # fmt: skip
@pytest.mark.parametrize("text", ["", "  \n\n", "\r\n"])
def test_an_empty_legacy_file_is_refused_naming_it(tmp_path, name, text):
    src = tmp_path / name
    src.write_text(text)
    with pytest.raises(ConfigError, match="file is empty") as exc:
        LegacyConfigMigrator().migrate_from_legacy(str(src))
    assert str(exc.value).startswith(f"{src}: file is empty")


def test_migrate_command_writes_nothing_for_an_empty_legacy_file(tmp_path, capsys):
    src = tmp_path / "streaming.ini"
    src.write_text("")
    out = tmp_path / "config"
    assert cli_main(["migrate", str(src), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"cfgcore: error: {src}: file is empty")
    assert not out.exists()  # was: base.yaml holding {} and exit 0


def test_a_legacy_file_of_comments_only_still_migrates_to_nothing(tmp_path):
    src = tmp_path / "legacy.ini"
    src.write_text("; nothing here yet\n")
    assert LegacyConfigMigrator().migrate_from_legacy(str(src)) == {}


@pytest.mark.parametrize(("given", "written"), [("base.yaml", "base.yaml"),
                                                ("staging.yml", "staging.yaml"),
                                                ("staging", "staging.yaml")])  # fmt: skip
def test_name_may_carry_the_yaml_suffix(tmp_path, capsys, given, written):
    src = tmp_path / "streaming.ini"
    src.write_text(INI)
    out = tmp_path / "config"
    assert cli_main(["migrate", str(src), "--out", str(out), "--name", given]) == 0
    stem = written.rsplit(".", 1)[0]
    written_files = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert written_files == sorted([f"{stem}.yaml", "migration-report.json"])
    doc = yaml.safe_load((out / f"{stem}.yaml").read_text())
    assert doc["music_streaming"]["audio_quality"]["premium_bitrate"] == 320


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("../evil", "expected a plain file name"),
        (".hidden", "expected a plain file name"),
        ("", "expected a plain file name"),
        ("base.json", "migrate writes YAML; use --name base"),
        ("staging.toml", "migrate writes YAML; use --name staging"),
        ("flags", "flag document"),
        ("flags.yaml", "flag document"),
        # The builder refuses 'migration-report' as an environment and looks names up
        # in lower case: migrate wrote migration-report.yaml or Prod.yaml, exit 0, and
        # neither could ever be loaded (review round).
        ("migration-report", "migration-report.json is the report migrate writes"),
        ("migration-report.yaml", "migration-report.json is the report migrate writes"),
        ("Prod", "looked up in lower case"),
        ("Base.yaml", "looked up in lower case"),
        ("my env", "lower case letters, digits"),
    ],
)
def test_a_name_that_cannot_be_a_configuration_layer_is_a_usage_error(
    tmp_path, capsys, given, message
):
    src = tmp_path / "streaming.ini"
    src.write_text(INI)
    out = tmp_path / "config"
    with pytest.raises(SystemExit) as exc:
        cli_main(["migrate", str(src), "--out", str(out), "--name", given])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --name: {given!r}: " in err and message in err
    assert not out.exists()


def _migrated(tmp_path):
    src = tmp_path / "streaming.ini"
    src.write_text(INI)
    out = tmp_path / "config"
    assert cli_main(["migrate", str(src), "--out", str(out)]) == 0
    return out


def test_the_migration_report_is_not_listed_as_an_environment(tmp_path, capsys):
    # README: `cfgcore migrate legacy/streaming.ini --map map.yaml --out config/`, then
    # the new directory is used; it was answered "available: migration-report".
    out = _migrated(tmp_path)
    capsys.readouterr()
    code = cli_main(["get", "app", "--config-dir", str(out), "-e", "staging"])
    err = capsys.readouterr().err
    assert code == 1
    assert "available: none" in err and "migration-report" not in err
    assert "write staging.yaml, '{}' for an environment that changes nothing" in err


def test_the_migration_report_cannot_be_loaded_as_an_environment(tmp_path, capsys):
    out = _migrated(tmp_path)
    capsys.readouterr()
    code = cli_main(["show", "--config-dir", str(out), "-e", "migration-report"])
    assert code == 1
    assert "'migration-report' is not an environment" in capsys.readouterr().err


def test_the_migrated_directory_loads_once_it_has_an_environment_file(tmp_path, capsys):
    out = _migrated(tmp_path)
    (out / "staging.yaml").write_text("{}\n")
    capsys.readouterr()
    args = ["get", "music_streaming.audio_quality.premium_bitrate", "--config-dir", str(out)]
    assert cli_main([*args, "-e", "staging"]) == 0
    assert capsys.readouterr().out == "320\n"
    assert cli_main(["get", "app", "--config-dir", str(out), "-e", "qa"]) == 1
    err = capsys.readouterr().err
    assert "available: staging" in err and "changes nothing" not in err
