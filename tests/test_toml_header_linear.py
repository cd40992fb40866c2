"""TOML table headers named in a duplicate-key refusal are read in linear time.

The lines above a TOML conflict were matched against
``^\\s*\\[\\[?\\s*(.+?)\\s*\\]\\]?\\s*(#.*)?$``, which tries every split of a line's runs
of white space before it gives up: a line of a multi-line string made of "[", 800
spaces, "]", 800 spaces and "x" took 17 s, one of a few thousand hours, and the
refusal of the file (and a hot reload with it) waited for it. ``_toml_header`` reads
what the pattern captured, in one pass: these tests hold it to the pattern's answer on
every short line over the characters that matter, and check the refusal of a file
holding such lines."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config.files import _toml_header
from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from tests.fuzz import examples

PATTERN = re.compile(r"^\s*\[\[?\s*(.+?)\s*\]\]?\s*(#.*)?$")


def _pattern(line):
    m = PATTERN.match(line)
    return None if m is None else m.group(1)


@settings(max_examples=examples(4000))
@given(st.text(alphabet="[]# \ta.\"'\u3000\x0b", max_size=12))
def test_the_name_is_the_patterns(line):
    assert _toml_header(line) == _pattern(line)


@pytest.mark.parametrize(
    "line",
    ["[a]", " [[a.b]] # c", "[ ]", "[[]]", "[[ a ]]]", "[a] ] # ]", "[]]", "[[a]", "[a]x",
     "\u3000[ \"a.b\" ]\t", "[a # b]", "#[a]", "[", ""],
)  # fmt: skip
def test_known_lines(line):
    assert _toml_header(line) == _pattern(line)


def test_long_lines_are_read(tmp_path):
    spaces = " " * 5000
    assert _toml_header("[" + spaces + "]" + spaces + "x") is None
    assert _toml_header("[" + spaces + "a" + spaces + "]" + spaces + "# c") == "a"
    assert _toml_header("[[" + spaces + "x") is None
    # A file refused for a duplicate key, with such lines in a multi-line string above.
    (tmp_path / "base.toml").write_text(
        'note = """\n' + ("[" + spaces + "]" + spaces + "x\n") * 20 + '"""\n'
        "[db]\nhost = 'a'\nhost = 'b'\n"
    )
    manager = ConfigurationManager(config_dir=tmp_path, environment="base")
    with pytest.raises(ConfigError) as refused:
        manager.load_environment_config()
    assert "db.host" in str(refused.value) and "base.toml" in str(refused.value)
