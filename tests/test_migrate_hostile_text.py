"""``cfgcore migrate`` and ``LegacyConfigMigrator`` given legacy files whose names, keys
and values hold what a cfgcore file reads as markup: a line break in the source's name
(the migrated file's header comment names it), a control character in a key (the report
prints it) and the text ``__delete__`` as a value (a marker in a configuration file)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore import ConfigurationManager
from cfgcore.cli import main as cli_main
from cfgcore.config.tree import thaw
from cfgcore.migration import LegacyConfigMigrator
from tests.fuzz import examples


def _load(directory) -> dict:
    """The tree cfgcore serves from ``directory/base.yaml`` (no validation)."""
    (directory / "development.yaml").write_text("{}\n")
    manager = ConfigurationManager(
        str(directory), environment="development", validate=False, environ={}, transforms=()
    )
    return thaw(manager.load_environment_config("development"))


@pytest.mark.parametrize("brk", ["\n", "\r", "\r\n", "\x85", "\u2028", "\u2029"])
def test_a_line_break_in_the_source_name_stays_in_the_header_comment(tmp_path, capsys, brk):
    src = tmp_path / f"legacy{brk}server:{brk}  port: 1{brk}#.properties"
    src.write_text("music_streaming.audio_quality.premium_bitrate=320\n")
    out = tmp_path / "config"
    assert cli_main(["migrate", str(src), "--out", str(out)]) == 0
    capsys.readouterr()
    text = (out / "base.yaml").read_text()
    assert text.splitlines()[0].startswith("# Migrated by cfgcore from legacy\\")
    served = _load(out)
    assert "server" not in served  # was: the name's second line became a key
    assert served["music_streaming"]["audio_quality"]["premium_bitrate"] == 320


def test_the_printed_report_escapes_control_characters_of_keys_and_names(tmp_path, capsys):
    src = tmp_path / "legacy\x1b[2J.properties"
    src.write_text("alpha\\u001b[31mred=1\nbeta\\u000aforged=2\n")
    out = tmp_path / "config"
    assert cli_main(["migrate", str(src), "--out", str(out), "--keep-unmapped"]) == 0
    printed = capsys.readouterr().out
    assert "\x1b" not in printed
    assert "alpha\\x1b[31mred" in printed
    assert "beta\\nforged" in printed
    assert all(line.startswith((str(tmp_path), "  ", "wrote")) for line in printed.splitlines())


_DELETE_TEXTS = ["__delete__", "\\__delete__", "\\\\__delete__"]


@pytest.mark.parametrize("value", _DELETE_TEXTS)
@pytest.mark.parametrize("fmt", ["properties", "ini", "json"])
def test_a_delete_marker_text_is_migrated_as_the_text(tmp_path, capsys, value, fmt):
    if fmt == "properties":  # a backslash is an escape in .properties
        text = "legacy.note=" + value.replace("\\", "\\\\") + "\n"
    elif fmt == "ini":
        text = f"[legacy]\nnote = {value}\n"
    else:
        text = '{"legacy": {"note": "' + value.replace("\\", "\\\\") + '"}}'
    src = tmp_path / f"old.{fmt}"
    src.write_text(text)
    assert LegacyConfigMigrator(keep_unmapped=True).migrate(src).config == {
        "legacy": {"note": value}
    }
    out = tmp_path / "config"
    assert cli_main(["migrate", str(src), "--out", str(out), "--keep-unmapped"]) == 0
    capsys.readouterr()
    assert _load(out)["legacy"] == {"note": value}  # was: the key deleted, or one \ fewer


@pytest.mark.parametrize("value", _DELETE_TEXTS)
def test_a_delete_marker_text_laid_over_a_base_is_the_text(tmp_path, value):
    src = tmp_path / "old.properties"
    src.write_text("legacy.note=" + value.replace("\\", "\\\\") + "\n")
    base = {"legacy": {"note": "before", "kept": 1}, "other": True}
    migrated = LegacyConfigMigrator(keep_unmapped=True, base=base).migrate(src).config
    assert migrated == {"legacy": {"note": value, "kept": 1}, "other": True}


# Texts without "${": the loaded file resolves a reference, and the migration refuses
# a malformed one (the test below).
_texts = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
).filter(lambda text: "${" not in text)


@settings(max_examples=examples(25), deadline=None)
@given(
    value=st.one_of(
        _texts,
        st.builds(
            lambda n, t: "\\" * n + "__delete__" + t, st.integers(0, 3), st.sampled_from(["", "x"])
        ),
    )
)
def test_the_migrated_file_serves_what_the_migration_returned(tmp_path_factory, value):
    """Whatever the migration makes of a legacy text (typed or kept as text), the file
    the command writes serves exactly that."""
    tmp = tmp_path_factory.mktemp("m")
    src = tmp / "old.json"
    src.write_text(json.dumps({"legacy": {"note": value}}))
    expected = LegacyConfigMigrator(keep_unmapped=True).migrate(src).config
    out = tmp / "config"
    assert cli_main(["migrate", str(src), "--out", str(out), "--keep-unmapped", "-q"]) == 0
    assert _load(out) == expected


@pytest.mark.parametrize("placeholder", ["${user.home}", "${ DB_PASSWORD }", "${}", "${a"])
def test_a_value_a_load_refuses_as_a_malformed_reference_fails_the_migration(
    tmp_path, capsys, placeholder
):
    """A legacy placeholder (Spring's ``${user.home}``) passed validation, the command
    said the result validates (exit 0, ``"valid": true``), and loading the file it
    wrote was refused: "malformed reference"."""
    src = tmp_path / "old.properties"
    src.write_text(f"legacy.path={placeholder}/x\nlegacy.home=${{HOME}}\n")
    out = tmp_path / "config"
    assert cli_main(["migrate", str(src), "--out", str(out), "--keep-unmapped"]) == 1
    printed = capsys.readouterr().out
    errors = [line for line in printed.splitlines() if line.startswith("  error")]
    assert len(errors) == 1 and errors[0].startswith("  error      legacy.path: malformed ")
    assert json.loads((out / "migration-report.json").read_text())["valid"] is False
