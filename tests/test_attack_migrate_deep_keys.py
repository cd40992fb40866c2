"""``cfgcore migrate`` and ``LegacyConfigMigrator`` given a dotted key with more parts
than a configuration may nest.

A legacy file's dotted keys become the levels of the migrated tree. A nested JSON/YAML
file was refused past the configuration files' limit (``MAX_DEPTH``), but one key of a
``.properties``, INI or ``.env`` file (or one JSON key holding dots) built a tree of any
depth: 5,000 parts ended ``cfgcore migrate`` with ``internal error: RecursionError`` (no
file, no line), and 101 parts wrote a ``base.yaml`` that no load reads. Such a key is now
refused as every bad line of a legacy file is: naming the file, its line and the key
path, and nothing is written.
"""

from __future__ import annotations

import json

import pytest

from cfgcore.cli import main as cli_main
from cfgcore.config.files import MAX_DEPTH, tree_problem
from cfgcore.errors import ConfigError
from cfgcore.migration import LegacyConfigMigrator


def _key(parts: int) -> str:
    return ".".join(["a"] * parts)


# format -> parts -> (file name, text, line of the deep key)
SOURCES = {
    "properties": lambda n: ("legacy.properties", f"x=1\n{_key(n)}=1\n", 2),
    "ini": lambda n: ("legacy.ini", f"[s]\nx=1\n[{_key(n - 1)}]\nk=1\n", 4),
    "env": lambda n: ("legacy.env", "X=1\n" + "__".join(["A"] * n) + "=1\n", 2),
    # (a JSON key past 1,024 characters has no line: YAML's composer, which finds the
    # lines of JSON, takes no longer key)
    "json": lambda n: (
        "legacy.json",
        json.dumps({"x": 1, _key(n): 1}, indent=1),
        3 if n < 500 else None,
    ),
}


@pytest.mark.parametrize("fmt", sorted(SOURCES))
@pytest.mark.parametrize("parts", [MAX_DEPTH + 1, 5000])
def test_a_key_nested_past_the_limit_is_refused_on_its_line(tmp_path, capsys, fmt, parts):
    name, text, line = SOURCES[fmt](parts)
    src = tmp_path / name
    src.write_text(text)
    out = tmp_path / "config"
    assert cli_main(["migrate", str(src), "--out", str(out), "--keep-unmapped"]) == 1
    err = capsys.readouterr().err
    assert "internal error" not in err and "RecursionError" not in err
    where = src if line is None else f"{src}:{line}"
    assert f"{where}: a.a.a.a.a.a.…: nested more than {MAX_DEPTH} levels deep" in err
    assert not out.exists()  # nothing written
    with pytest.raises(ConfigError, match=f"nested more than {MAX_DEPTH} levels"):
        LegacyConfigMigrator(keep_unmapped=True).migrate(str(src))


@pytest.mark.parametrize(
    "value, parts, refused",
    [
        (1, MAX_DEPTH, False),
        ([1], MAX_DEPTH - 1, False),
        ([1], MAX_DEPTH, True),
        ([[1]], MAX_DEPTH - 1, True),
        ({"b": [1]}, MAX_DEPTH - 2, False),
        ({"b": [1]}, MAX_DEPTH - 1, True),
    ],
)
def test_the_limit_is_the_configuration_files_own(tmp_path, value, parts, refused):
    # a dotted key holding a list or an object: its levels count too, exactly as a
    # configuration file's (what migrates is what a load takes)
    src = tmp_path / "legacy.json"
    src.write_text(json.dumps({_key(parts): value}))
    migrator = LegacyConfigMigrator(keep_unmapped=True)
    tree = value
    for _ in range(parts):
        tree = {"a": tree}
    assert (tree_problem(tree) is not None) == refused  # the limit a load applies
    if refused:
        with pytest.raises(ConfigError, match="legacy.json:1: a.a.a.a.a.a.…: nested more"):
            migrator.migrate(str(src))
    else:
        assert tree_problem(migrator.migrate(str(src)).config) is None


def test_a_mapping_that_moves_a_key_past_the_limit_names_the_key(tmp_path):
    src = tmp_path / "legacy.properties"
    src.write_text("x=1\nold.key=1\n")
    mapping = {"keys": {"old.key": _key(MAX_DEPTH + 1)}}
    with pytest.raises(ConfigError, match=r"legacy\.properties:2: a\.a\.a\.a\.a\.a\.…: nested"):
        LegacyConfigMigrator(mapping).migrate(str(src))
