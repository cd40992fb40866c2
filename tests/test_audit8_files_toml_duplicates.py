"""A TOML configuration file that repeats a key is refused naming the key path and the
line, as YAML and JSON files are (README: "repeats a key (YAML, JSON and TOML alike)").
tomllib's own message named neither the key nor, for a repeat on the last line of a
file without a final newline, the line: `base.toml: invalid TOML: Cannot overwrite a
value (at end of document)`."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore import ConfigurationManager
from cfgcore.errors import ConfigError
from tests.fuzz import examples


def _problem(tmp_path, text):
    (tmp_path / "base.toml").write_text(text)
    (tmp_path / "development.yaml").write_text("{}\n")
    m = ConfigurationManager(tmp_path, environment="development", environ={}, validate=False)
    with pytest.raises(ConfigError) as info:
        m.load_environment_config()
    [problem] = info.value.problems
    assert problem.file == str(tmp_path / "base.toml")
    return problem


@pytest.mark.parametrize(
    ("text", "path", "line"),
    [
        ("a = 1\na = 2\nb = 3\n", "a", 2),
        ("a = 1\na = 2", "a", 2),  # no final newline: tomllib says "at end of document"
        ("x.a = 1\nx.a = 2\n", "x.a", 2),
        ("[db.main]\nhost = 'x'\nport = 1\nhost = 'y'\n", "db.main.host", 4),
        ("[db] # primary\nhost = 'x'\n\nhost = 'y'\n", "db.host", 4),
        ("[x]\na = 1\n[x]\nb = 2\n", "x", 3),
        ("[[srv]]\nname = 'a'\n[[srv]]\nname = 'b'\nname = 'c'\n", "srv.1.name", 5),
        ('[a."b.c"]\nx = 1\n[a."b.c"]\n', 'a["b.c"]', 3),  # a key holding a dot shown quoted
        ('s = "\\u2028"\nk = 1\r\nk = 2\r\n', "k", 3),
    ],
)
def test_a_repeated_key_is_named_with_its_line(tmp_path, text, path, line):
    problem = _problem(tmp_path, text)
    assert problem.path == path
    assert problem.line == line
    assert "duplicate key" in problem.message


def test_a_table_line_inside_a_string_is_not_taken_for_a_table(tmp_path):
    # the key path is checked against what the lines above define: no wrong path
    problem = _problem(tmp_path, 's = """\n[fake]\n"""\na = 1\na = 2\n')
    assert problem.path in ("a", "")
    assert problem.line == 5


def test_other_toml_errors_keep_tomllib_s_text(tmp_path):
    # (an inline table extended is named by key path: test_files_toml_redefinitions.py)
    problem = _problem(tmp_path, "a = 1\nb = = 2\n")
    assert problem.line == 2 and "invalid TOML" in problem.message


_names = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)


@settings(max_examples=examples(40), deadline=None)
@given(
    table=st.lists(_names, max_size=2),
    before=st.lists(_names, max_size=3, unique=True),
    key=_names,
    newline=st.booleans(),
)
def test_any_repeated_key_in_any_table_is_named(tmp_path_factory, table, before, key, newline):
    tmp = tmp_path_factory.mktemp("toml")
    lines = [f"[{'.'.join(table)}]"] if table else []
    lines += [f"{k} = 1" for k in before if k != key]
    lines += [f"{key} = 1", f"{key} = 2"]
    problem = _problem(tmp, "\n".join(lines) + ("\n" if newline else ""))
    assert problem.path == ".".join([*table, key])
    assert problem.line == len(lines)
