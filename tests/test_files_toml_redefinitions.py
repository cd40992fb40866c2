"""A TOML configuration file that defines a table over a value (``a = 1`` then ``[a]``),
extends an inline table or an array written as a value, or redeclares a table dotted
keys made, is refused naming the key path and the line, as a repeated key is. The error
was tomllib's text with the line and no key: ``invalid TOML: Cannot overwrite a value
(at line 2, column 3)``, ``Cannot mutate immutable namespace ('a',)``.
"""

from __future__ import annotations

import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore import ConfigurationManager
from cfgcore.errors import ConfigError
from tests.fuzz import examples

# What cfgcore reads TOML with: the standard library's tomllib (3.11+), else tomli (a
# dependency on 3.10).
if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


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
    ("text", "path", "line", "message"),
    [
        # a table over a value
        ("a = 1\n[a]\nb = 2\n", "a", 2, "table [a] over a value: a is a number already"),
        ("a = 1\n[a]", "a", 2, "table [a] over a value"),  # tomllib: "at end of document"
        ("[x]\na = 'v'\n[x.a]\n", "x.a", 3, "table [x.a] over a value: x.a is a string"),
        ("a.b = true\n[a.b]\n", "a.b", 2, "table [a.b] over a value: a.b is a boolean"),
        ("[[s]]\nx = 1\n[s.x]\n", "s.0.x", 3, "table [s.x] over a value: s.0.x is a number"),
        # a dotted key over a value
        ("a = 1\na.b = 2\n", "a", 2, "dotted key a.b over a value: a is a number already"),
        ("[t]\nx = 1\nx.y = 2\n", "t.x", 3, "dotted key x.y over a value: t.x is a number"),
        ("[t]\na.b = 1\na.b.c = 2\n", "t.a.b", 3, "dotted key a.b.c over a value"),
        # an array of tables over a table or a value, a table over an array of tables
        ("[a]\nb = 1\n[[a]]\n", "a", 3, "array of tables [[a]] over a table: a is a table"),
        ("a = 1\n[[a]]\n", "a", 2, "array of tables [[a]] over a value"),
        ("[[a]]\n[a]\n", "a", 2, "table [a] over an array: a is an array already"),
        # an inline table or an array written as a value extended
        ("a = {b = 1}\na.c = 2\n", "a", 2, "dotted key a.c extends an inline table"),
        ("a = {b = 1}\n[a]\nc = 2\n", "a", 2, "table [a] over an inline table: a is an inline "
                                               "table (line 1)"),
        ("a = {b = 1}\n[a.c]\n", "a", 2, "table [a.c] extends an inline table"),
        ("[[s]]\n[[s]]\nx = {a = 1}\nx.b = 2", "s.1.x", 4, "dotted key x.b extends an inline"),
        ("a = [{b = 1}]\n[[a]]\n", "a", 2, "array of tables [[a]] extends an array written as "
                                           "a value"),
        # a table dotted keys made, declared again
        ("a.b = 1\n[a]\nc = 2\n", "a", 2, "table [a] over a table: dotted keys define a "
                                          "(line 1)"),
        ("[t]\nx.y = 1\n[t.x]\nz = 1\n", "t.x", 3, "dotted keys define t.x (line 2)"),
        # a table declared twice stays a duplicate key
        ("[a]\n[a]\n", "a", 2, "duplicate key (TOML tables must not repeat a key)"),
    ],
)  # fmt: skip
def test_a_redefinition_is_named_with_its_key_path_and_line(tmp_path, text, path, line, message):
    problem = _problem(tmp_path, text)
    assert (problem.path, problem.line) == (path, line)
    assert message in problem.message
    assert "invalid TOML" not in problem.message


# -- generated documents --------------------------------------------------------------------
_NAME = st.sampled_from(["a", "b", "c"])
_KEY = st.lists(_NAME, min_size=1, max_size=3).map(".".join)
_VALUE = st.sampled_from(["1", "'s'", "true", "{x = 1}", "[1]", "[{x = 1}]", "{}"])
_LINE = st.one_of(
    _KEY.map(lambda k: f"[{k}]"),
    _KEY.map(lambda k: f"[[{k}]]"),
    st.tuples(_KEY, _VALUE).map(lambda kv: f"{kv[0]} = {kv[1]}"),
)

_CONFLICTS = ("Cannot overwrite a value", "Cannot declare ", "Cannot mutate immutable")


def _full_key(lines: list[str], n: int) -> list[str]:
    """The key path line ``n`` (from 1) defines, table and key, without array indices."""
    table: list[str] = []
    for raw in lines[: n - 1]:
        if raw.startswith("["):
            table = raw.strip("[]").split(".")
    here = lines[n - 1]
    if here.startswith("["):
        return here.strip("[]").split(".")
    return [*table, *here.split(" = ")[0].split(".")]


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(_LINE, min_size=2, max_size=6))
def test_every_redefinition_names_a_key_the_lines_above_define(tmp_path_factory, lines):
    text = "\n".join(lines) + "\n"
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        if not str(exc).startswith(_CONFLICTS):
            return
    else:
        return
    problem = _problem(tmp_path_factory.mktemp("toml"), text)
    assert "invalid TOML" not in problem.message
    assert problem.line is not None
    # the path is a prefix of the key that line defines (array of tables indices aside),
    # and something the lines above define
    names = [p for p in problem.path.split(".") if not p.isdigit()]
    assert names == _full_key(lines, problem.line)[: len(names)], (problem, lines)
    node = tomllib.loads("\n".join(lines[: problem.line - 1]) + "\n")
    for part in problem.path.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
