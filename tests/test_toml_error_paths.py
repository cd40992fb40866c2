"""A TOML syntax error names the key path of where it is when that can be told simply:
the table the statement on its line belongs to, then the key that line assigns
(``staging.toml:3: db.port: invalid TOML: Invalid value (at line 3, column 8)``); it
named only the file and line. The table is found by parsing the text before the line
again with a probe key (``files._toml_error_path``), so a ``[header]`` inside a
multi-line string or array is never taken for one: a path the document holds, or
none."""

from __future__ import annotations

import json

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cfgcore.config import files
from cfgcore.config.files import parse_text, read_config_file
from cfgcore.errors import ConfigError, parse_key_path


def refusal(text: str) -> tuple[str, int | None, str]:
    with pytest.raises(ConfigError) as refused:
        parse_text(text, "toml", "config/staging.toml")
    assert len(refused.value.problems) == 1
    problem = refused.value.problems[0]
    return problem.path, problem.line, str(refused.value)


@pytest.mark.parametrize(
    ("text", "path", "line"),
    [
        # the key the line assigns, in the table above it
        ("name = 'x'\n[db]\nhost = 'h'\nport = = 3\n", "db.port", 4),
        ("[db]\nport = 3 x\n", "db.port", 2),
        ("[db]\npool = {size = 5, timeout = @}\n", "db.pool", 2),
        ("[db.pool]\nsize = tru\n", "db.pool.size", 2),
        ("port = @\n", "port", 1),
        ('[a.b]\n"c.d".e = @\n', 'a.b["c.d"].e', 2),
        # an array of tables: its last table
        ("[[srv]]\nname = 'a'\n[[srv]]\nname = @\n", "srv.1.name", 4),
        ("[[srv]]\nname = 'a'\n[srv.tls]\non = @\n", "srv.0.tls.on", 4),
        # a header inside a multi-line string or array is not a table
        ("[a]\ns = '''\n[b]\n'''\nk = @\n", "a.k", 5),
        ("[a]\nx = [\n  [1],\n]\nk = @\n", "a.k", 5),
        # an error in the key itself, or in a comment: the table only
        ("[db]\nport = 1\npo rt = 2\n", "db", 3),
        ("[db]\n# \x01\n", "db", 2),
        ('[t]\n"x = y" = @\n', "t", 2),
        # inside a value begun on a line above, or on a header: no path
        ("[a]\nx = [\n  1,\n  @\n]\n", "", 4),
        ("[a]\n[bad\n", "", 2),
        ('[a]\ns = """\nx\n"""q\n', "", 4),
    ],
)
def test_the_path_of_where_the_error_is(text, path, line):
    got_path, got_line, message = refusal(text)
    assert (got_path, got_line) == (path, line)
    where = f"config/staging.toml:{line}: " + (f"{path}: " if path else "")
    assert message.startswith(where + "invalid TOML: ")


def test_a_config_file_names_the_path(tmp_path):
    config = tmp_path / "staging.toml"
    config.write_text("[database]\nhost = 'db'\nreplicas = ['a', 'b' 'c']\n")
    with pytest.raises(ConfigError) as refused:
        read_config_file(str(config))
    assert str(refused.value).startswith(f"{config}:3: database.replicas: invalid TOML: ")
    assert refused.value.reason == "parse"


def test_a_duplicate_key_still_names_the_first_definition():
    """Conflicts keep their own message and path (the definition already there)."""
    path, line, message = refusal("[db]\nport = 1\nport = 2\n")
    assert (path, line) == ("db.port", 3)
    assert "invalid TOML" not in message


def test_past_the_reparse_budget_no_path_is_named(monkeypatch):
    monkeypatch.setattr(files, "_TOML_REPARSED", 100)
    filler = "".join(f"k{i} = {i}\n" for i in range(40))  # 390 characters
    assert refusal("[db]\n" + filler + "port = @\n")[0] == ""
    assert refusal("[db]\n" + filler[:70] + "port = @\n")[0] == "db.port"


KEYS = st.text(alphabet="abcxyz_019.- ", min_size=1, max_size=6)
SCALARS = st.one_of(
    st.integers(-1000, 1000),
    st.booleans(),
    st.text(alphabet="abc [x]=y\n#", max_size=10),
    st.lists(st.integers(0, 9), max_size=3),
)
TABLES = st.recursive(
    st.dictionaries(KEYS, SCALARS, max_size=4),
    lambda inner: st.dictionaries(
        KEYS, SCALARS | inner | st.lists(inner, min_size=1, max_size=3), max_size=4
    ),
    max_leaves=20,
)


def _is_tables(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _value(value, multiline: bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        if multiline:
            return "[\n" + "".join(f"  {v},\n" for v in value) + "]"
        return "[" + ", ".join(str(v) for v in value) + "]"
    if "\n" in value and multiline:
        return "'''\n" + value + "'''"  # a multi-line literal: its text holds '[x]' lines
    return json.dumps(value)


def _dump(document, multiline: bool) -> str:
    """TOML text for ``document`` (scalars first, then tables and arrays of tables)."""
    out: list[str] = []

    def table(path, node, header):
        if header:
            out.append(header)
        for key, value in node.items():
            if not isinstance(value, dict) and not _is_tables(value):
                out.append(f"{json.dumps(key)} = {_value(value, multiline)}")
        for key, value in node.items():
            name = ".".join(json.dumps(k) for k in (*path, key))
            if isinstance(value, dict):
                table((*path, key), value, f"[{name}]")
            elif _is_tables(value):
                for item in value:
                    table((*path, key), item, f"[[{name}]]")

    table((), document, "")
    return "\n".join(out) + "\n"


def _resolves(document, segments) -> bool:
    node = document
    for segment in segments:
        if isinstance(node, dict) and segment in node:
            node = node[segment]
        elif isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
            node = node[int(segment)]
        else:
            return False
    return True


@given(document=TABLES, multiline=st.booleans(), data=st.data())
def test_an_injected_error_is_named_by_a_path_of_the_document(document, multiline, data):
    """'@' put anywhere in a document: it still loads (inside a string or a comment),
    or its error names a path whose every key and index is the document's."""
    text = _dump(document, multiline)
    assert parse_text(text, "toml", "c.toml") == document if document else True
    at = data.draw(st.integers(0, len(text)))
    # '@' inside a multi-line string's delimiter ("'@''") leaves the string open to a
    # later delimiter: the text after it has another structure than the document (a
    # later table's key read in an earlier table), so no path of the document can
    # describe it; the path named is then that of the broken text, not checked here.
    assume(not any(text.startswith("'''", i) for i in range(max(0, at - 2), at)))
    broken = text[:at] + "@" + text[at:]
    try:
        parse_text(broken, "toml", "c.toml")
    except ConfigError as refused:
        (problem,) = refused.problems
        segments = parse_key_path(problem.path.removesuffix(".…"))
        assert _resolves(document, segments), (problem.path, broken)


@given(document=TABLES, multiline=st.booleans(), data=st.data())
def test_an_error_at_a_value_names_exactly_its_path(document, multiline, data):
    """An error at the start of a key's value names its table and key."""
    leaves = []
    stack = [((), document)]
    while stack:
        path, node = stack.pop()
        for key, value in node.items():
            if isinstance(value, dict):
                stack.append(((*path, key), value))
            elif _is_tables(value):
                stack += [((*path, key, str(i)), item) for i, item in enumerate(value)]
            else:
                leaves.append((path, node, key))
    if not leaves:
        return
    path, node, key = data.draw(st.sampled_from(leaves))
    node[key] = 987654321
    text = _dump(document, multiline)
    assert text.count("= 987654321\n") == 1
    got, line, _ = refusal(text.replace("= 987654321\n", "= @\n"))
    assert parse_key_path(got) == (*path, key)
    assert line == text[: text.index("= 987654321")].count("\n") + 1


@given(text=st.text(alphabet="ab[]=.'\"\n #{},1@\x01", max_size=200))
def test_any_text_is_a_document_or_a_config_error(text):
    try:
        data = parse_text(text, "toml", "c.toml")
    except ConfigError as refused:
        assert refused.problems and all(p.file == "c.toml" for p in refused.problems)
    else:
        assert isinstance(data, dict)
