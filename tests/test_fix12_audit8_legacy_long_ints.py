"""A legacy file holding an integer past Python's digit limit migrates with an answer
naming the file and key (audit 8).

``int()`` refuses a literal of more than ``sys.get_int_max_str_digits()`` digits
(4,300). A flat JSON legacy file holding one, or a ``.properties``/``.ini``/``.env``
value typed as an int, ended ``cfgcore migrate`` with ``cfgcore: error: Exceeds the
limit (4300 digits) for integer string conversion ...; use sys.set_int_max_str_digits()
to increase the limit``: no file, no key, and advice that leads nowhere. Now the JSON
literal is refused as configuration files refuse it (file, line, key path), and a text
value that cannot be typed is reported as untyped, as any other."""

from __future__ import annotations

import sys

import pytest

from cfgcore.cli import main as cli_main
from cfgcore.errors import ConfigError
from cfgcore.migration import LegacyConfigMigrator

LONG = "9" * (sys.get_int_max_str_digits() + 1)


def test_a_json_literal_is_named_with_its_file_line_and_key(tmp_path):
    src = tmp_path / "legacy.json"
    src.write_text('{"server": {\n  "name": "' + LONG + '",\n  "port": ' + LONG + "}}")
    with pytest.raises(ConfigError) as err:
        LegacyConfigMigrator().migrate_from_legacy(src)
    assert str(err.value) == (
        f"{src}:3: server.port: integer out of range (configuration integers must fit in 64 bits)"
    )


@pytest.mark.parametrize(
    "name, text",
    [
        ("legacy.properties", f"server.port={LONG}\nextra.count={LONG}\n"),
        ("legacy.ini", f"[server]\nport = {LONG}\n[extra]\ncount = {LONG}\n"),
        ("legacy.env", f"SERVER_PORT={LONG}\nEXTRA_COUNT={LONG}\n"),
    ],
    ids=["properties", "ini", "env"],
)
def test_a_text_value_past_the_limit_is_reported_untyped(tmp_path, capsys, name, text):
    src = tmp_path / name
    src.write_text(text)
    out = tmp_path / "config"
    assert cli_main(["migrate", str(src), "--out", str(out)]) == 1  # does not validate
    captured = capsys.readouterr()
    assert "set_int_max_str_digits" not in captured.out + captured.err
    assert "untyped    server.port: '99999" in captured.out
    assert "is not an int within 64 bits" in captured.out
    migration = LegacyConfigMigrator().migrate(src)
    assert migration.config["server"]["port"] == LONG  # kept as written, not typed
    assert "server.port" in migration.report.untyped
