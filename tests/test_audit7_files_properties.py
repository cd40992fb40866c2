"""Round 7, legacy ``.properties`` files: characters beyond U+FFFF.

Java's ``Properties.store`` (and ``native2ascii``) writes such a character as two
``\\u`` escapes, a UTF-16 surrogate pair (``\\ud83d\\ude00`` for U+1F600). The reader
kept each half as its own (lone surrogate) character, so ``cfgcore migrate`` wrote a
configuration no reader accepts ("\\uD83D\\uDE00"), and ``LegacyConfigMigrator``
returned text that could not be written as UTF-8. A pair is now the one character it
encodes; half a pair is refused with the file and line, as other malformed escapes are.
"""

from __future__ import annotations

import pytest

from cfgcore.config.legacy_formats import read_legacy
from cfgcore.errors import ConfigError
from cfgcore.migration import LegacyConfigMigrator
from cfgcore.yamlio import load_yaml
from tests.conftest import run_cli


def test_a_surrogate_pair_is_the_character_it_encodes(tmp_path):
    src = tmp_path / "app.properties"
    src.write_text("greeting=hi \\ud83d\\ude00\nname=caf\\u00e9\nplain=\\u0041\n")
    entries = {e.key: e.value for e in read_legacy(src)}
    assert entries == {"greeting": "hi \U0001f600", "name": "café", "plain": "A"}
    config = LegacyConfigMigrator(keep_unmapped=True).migrate_from_legacy(str(src))
    assert config["greeting"] == "hi \U0001f600"


@pytest.mark.parametrize("value", ["\\ud83d", "\\ude00", "\\ude00\\ud83d", "a\\ud800b"], ids=str)
def test_half_a_pair_is_refused_with_file_and_line(tmp_path, value):
    src = tmp_path / "app.properties"
    src.write_text(f"ok=1\nbad={value}\n")
    with pytest.raises(ConfigError) as err:
        read_legacy(src)
    (problem,) = err.value.problems
    assert (problem.file, problem.line) == (str(src), 2)
    assert "surrogate" in problem.message


def test_cfgcore_migrate_writes_a_file_that_reads_back(tmp_path, capsys):
    src = tmp_path / "app.properties"
    src.write_text("greeting=\\ud83d\\ude00\n")
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "migrate", str(src), "--out", str(out), "--keep-unmapped")
    assert code == 0, err
    assert load_yaml((out / "base.yaml").read_text(encoding="utf-8")) == {"greeting": "\U0001f600"}
