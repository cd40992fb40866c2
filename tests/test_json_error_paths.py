"""A JSON syntax error names the key path of where it is, as YAML's does and as every
other bad input does (``development.json:3: database.replicas.1: invalid JSON:
Expecting ',' delimiter (column 33)``): configuration files, flag documents and legacy
files named only the file and line, a flag document not even the line. The path is
read from the text before the decoder's offset (``_json_errors.json_error_path``, for
the standard library's character offsets and msgspec's byte offsets alike): always a
path the document holds, or none."""

from __future__ import annotations

import json
import re

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgcore import _json_errors
from cfgcore._json_errors import _ERROR_PATH_SHOWN, json_error_path
from cfgcore.config.files import parse_text, read_config_file
from cfgcore.errors import ConfigError, Problem, SnapshotError, parse_key_path
from cfgcore.migration import LegacyConfigMigrator
from cfgcore.snapshot import _at_json_byte, decode_snapshot
from tests.key_paths import resolves


def refusal(text: str | bytes) -> tuple[str, int | None, str]:
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    with pytest.raises(ConfigError) as refused:
        parse_text(text, "json", "config/development.json")
    assert len(refused.value.problems) == 1
    problem = refused.value.problems[0]
    return problem.path, problem.line, str(refused.value)


@pytest.mark.parametrize(
    ("text", "path", "line"),
    [
        # a list missing a comma, in a nested object: the item it directly follows
        ('{"database": {"host": "db",\n "replicas": [1, 2 3]}}', "database.replicas.1", 2),
        # where the next item goes: after '[' or ','
        ('{"database": {"replicas": [1, 2, @]}}', "database.replicas.2", 1),
        ('{"database": {"replicas": [@]}}', "database.replicas.0", 1),
        ('{"database": {"replicas": [1,\n  @]}}', "database.replicas.1", 2),
        # the value of a key being read (or a key read whose ':' is missing)
        ('{"database": {"password": "unterminated}}\n', "database.password", 1),
        ('{"database": {"password": "a\\qb"}}', "database.password", 1),
        ('{"database": {"password": "a\tb"}}', "database.password", 1),
        ('{"database": {"port": tru}}', "database.port", 1),
        ('{"database": {"port" 5432}}', "database.port", 1),
        ('{"app": {"name": "x", "port": 1 "user": 2}}', "app.port", 1),
        ('{"app": {"tls": {"on": true} "user": 2}}', "app.tls", 1),
        # inside an object at no key, or the next line: the object
        ('{"database": {"host": "x",\n  port: 5432}}', "database", 2),
        ('{"database": {"host": "x"\n  "port": 5432}}', "database", 2),
        ('{"database": {"ho\x01st": "x"}}', "database", 1),
        # escaped keys are read as the decoder reads them, dotted ones quoted
        ('{"loggers": {"uvicorn.access": {"level": @}}}', 'loggers["uvicorn.access"].level', 1),
        ('{"caf\\u00e9": {"x": @}}', "café.x", 1),
        # the top level: no path
        ('{"a": 1} x', "", 1),
        ('{"a": 1,\n @}', "", 2),
        ('{"a": 1\n "b": 2}', "", 2),
        ("@", "", 1),
    ],
)
def test_the_path_of_where_the_error_is(text, path, line):
    got_path, got_line, message = refusal(text)
    assert (got_path, got_line) == (path, line)


@pytest.mark.parametrize(
    ("text", "at_comma", "at_close"),
    [('{"a": [1, 2,]}', "a.1", "a.2"), ('{"a": {"b": 1,}}', "a.b", "a")],
)
def test_a_trailing_comma_is_named_where_the_decoder_stops(text, at_comma, at_close):
    """Python 3.13's decoder stops at a trailing comma ("Illegal trailing comma before
    end of array"): the path is the item or value the comma follows. Earlier ones stop
    at the closing bracket ("Expecting value"): the place of the item expected there, or
    the object."""
    with pytest.raises(json.JSONDecodeError) as decoder:
        json.loads(text)
    stopped = text[decoder.value.pos]
    assert stopped in ",]}"
    path, line, message = refusal(text)
    assert (path, line) == ((at_comma if stopped == "," else at_close), 1)
    assert decoder.value.msg in message
    where = f"config/development.json:{line}: " + (f"{path}: " if path else "")
    assert message.startswith(where + "invalid JSON: ")
    assert re.search(r"\(column \d+\)$", message)


def test_a_config_file_names_the_path(tmp_path):
    config = tmp_path / "development.json"
    config.write_text('{\n  "database": {\n    "replicas": [1, 2 3]\n  }\n}\n')
    with pytest.raises(ConfigError) as refused:
        read_config_file(str(config))
    assert str(refused.value) == (
        f"{config}:3: database.replicas.1: invalid JSON: Expecting ',' delimiter (column 23)"
    )
    assert refused.value.reason == "parse"


def test_a_flag_document_names_line_and_path():
    """A flag document's error named neither: 'flags.json: invalid JSON: Expecting ','
    delimiter: line 3 column 28 (char 61)'."""
    text = b'{"flags": {\n  "a": {"variants": {"on": true},\n    "rules": [{"x": 1} {}]}}}'
    with pytest.raises(SnapshotError) as refused:
        decode_snapshot(text, "json", file="flags.json")
    (problem,) = refused.value.problems
    assert (problem.path, problem.line) == ("flags.a.rules.0", 3)
    assert str(refused.value) == (
        "flags.json:3: flags.a.rules.0: invalid JSON: Expecting ',' delimiter (column 24)"
    )


def test_a_legacy_json_file_names_the_path(tmp_path):
    path = tmp_path / "old.json"
    path.write_text('{"db": {"pool": {"size": 5,\n "max": }}}')
    with pytest.raises(ConfigError) as refused:
        LegacyConfigMigrator().migrate_from_legacy(str(path))
    assert f"{path}:2: db.pool.max: invalid JSON: Expecting value (column 9)" in str(refused.value)


def test_msgspec_byte_offsets_name_the_path():
    """msgspec says where as a byte: the byte's line and key path are named (a text of
    multi-byte characters before it counts bytes, not characters)."""
    text = '{"flags": {"é": {"variants": {"on": [1, @]}}}}'
    with pytest.raises(msgspec.DecodeError) as refused:
        msgspec.json.decode(text.encode())
    before = Problem(path="", message=str(refused.value), file="flags.json")
    problem = _at_json_byte(before, text)
    assert (problem.path, problem.line) == ("flags.é.variants.on.1", 1)
    assert problem.message == before.message
    # a problem msgspec already placed (a type error's $.path) keeps its path
    placed = Problem(path="flags.x", message="JSON is malformed (byte 3)", file="f")
    assert _at_json_byte(placed, text) == placed


def test_deep_nesting_shows_the_first_keys_then_an_ellipsis():
    depth = 200  # (the standard decoder's own limit is near 1,000)
    text = '{"top": ' + '{"k": ' * depth + "[1, @]" + "}" * depth + "}"
    path, _, _ = refusal(text)
    assert path == "top." + ".".join(["k"] * (_ERROR_PATH_SHOWN - 1)) + ".…"


def test_a_very_long_key_ends_the_path():
    key = "k" * 500
    path, _, message = refusal('{"a": {"' + key + '": [1, @]}}')
    assert path == "a.…"
    assert key not in message


def test_past_the_token_budget_no_path_is_named(monkeypatch):
    """At most _ERROR_PATH_TOKENS tokens are read again: a larger file's error still
    names its file and line, only without the path."""
    monkeypatch.setattr(_json_errors, "_ERROR_PATH_TOKENS", 1000)
    text = '{"big": {"list": [' + "1, " * 600 + "@]}}"
    path, line, message = refusal(text)
    assert (path, line) == ("", 1)
    assert message.startswith("config/development.json:1: invalid JSON: ")
    assert refusal('{"big": {"list": [' + "1, " * 400 + "@]}}")[0] == "big.list.400"
    # strings: each one and the character after it are tokens
    assert refusal('{"big": {"list": [' + '"s", ' * 600 + "@]}}")[0] == ""
    assert refusal('{"big": {"list": [' + '"s", ' * 200 + "@]}}")[0] == "big.list.200"


@pytest.mark.parametrize("piece", [16, 1 << 16])
def test_pieces_and_long_lines_read_the_same(monkeypatch, piece):
    """The text is read in pieces cut at line breaks; a line longer than four pieces
    (minified JSON) is read a token at a time, no further than the budget."""
    monkeypatch.setattr(_json_errors, "_PIECE", piece)
    monkeypatch.setattr(_json_errors, "_ERROR_PATH_TOKENS", 1000)
    lines = '{"a": [\n' + "".join(f'  {{"k": {i}, "s": "x"}},\n' for i in range(30))
    assert json_error_path(lines + "  @", len(lines) + 2) == "a.30"
    one_line = '{"a": {"list": [' + "1, " * 400
    assert json_error_path(one_line + "@]}}", len(one_line)) == "a.list.400"
    past = '{"a": {"list": [' + "1, " * 600
    assert json_error_path(past + "@]}}", len(past)) == ""


@pytest.mark.parametrize(
    "prefix",
    [
        '{"a": 1 2',  # a value where none may be
        '{"a" "b"',
        '{"a": [1}',  # a collection closed by the other bracket
        "[1]]",
        '{"a": "b\\',  # a lone backslash before the end
        '{"a", ',
        ":",
    ],
)
def test_text_that_is_no_json_prefix_names_no_path(prefix):
    """Offsets the decoders never report (the text before them is not JSON) give no
    path rather than a guessed one."""
    assert json_error_path(prefix + "@", len(prefix)) == ""
    assert json_error_path(prefix.encode() + b"@", len(prefix.encode())) == ""


KEYS = st.text(alphabet='abcxyz_019. "\\é\n', min_size=1, max_size=6)
SCALARS = st.one_of(
    st.integers(-1000, 1000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet='abc xyz"\\é\t', max_size=8),
    st.booleans(),
    st.none(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=25,
)
DOCUMENTS = st.dictionaries(KEYS, VALUES, min_size=1, max_size=5)
LAYOUTS = st.fixed_dictionaries(
    {"indent": st.sampled_from([None, 2, "\t"]), "ensure_ascii": st.booleans()}
)


def names_the_document(document, segments, broken: str, message: str) -> bool:
    """Every key and index of the path is the document's; or, where the decoder stopped
    at a key with no ":" after it, the path names that key in the object that holds it,
    as it names a key whose colon a person left out (``{"a": 1, "b" 2}``: ``b``). The
    inserted character can make such a key of a text: a "]" that closes a list early
    turns the list's next text item into a key of the object around the list."""
    if resolves(document, segments):
        return True
    if "':'" not in message:  # json's "Expecting ':' delimiter", msgspec's "expected ':'"
        return False
    *parent, key = segments or [""]
    quoted = (json.dumps(key, ensure_ascii=flag) for flag in (True, False))
    return resolves(document, parent) and any(q in broken for q in quoted)


@given(
    document=DOCUMENTS,
    layout=LAYOUTS,
    breaker=st.sampled_from(["@", "`", "x", "]", "}", ",", ":", "\x01", "1"]),
    data=st.data(),
)
def test_an_injected_error_is_named_by_a_path_of_the_document(document, layout, breaker, data):
    """A character put anywhere in a document: it still loads (inside a string, a
    digit in a number), or its error names the line of the decoder's offset and a path
    whose every key and index is the document's."""
    text = json.dumps(document, **layout)
    at = data.draw(st.integers(0, len(text)))
    broken = text[:at] + breaker + text[at:]
    try:
        parse_text(broken, "json", "c.json")
    except ConfigError as refused:
        (problem,) = refused.problems
        path = problem.path
        assert str(refused).startswith(f"c.json:{problem.line}: ")
        segments = parse_key_path(path.removesuffix(".…").removesuffix("…"))
        assert names_the_document(document, segments, broken, str(refused)), (path, broken)
        raw = broken.encode()  # msgspec's byte offsets: the same guarantee
        try:
            msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            m = re.search(r"\(byte (\d+)\)$", str(exc))
            if m is not None:
                path = json_error_path(raw, int(m.group(1)))
                segments = parse_key_path(path.removesuffix(".…").removesuffix("…"))
                assert names_the_document(document, segments, broken, str(exc)), (
                    path,
                    broken,
                    str(exc),
                )


def test_a_text_item_a_bracket_turns_into_a_key_is_named_as_that_key():
    """A "]" closing a list early: the list's next text item is read as a key of the
    object around it, with no ":" after it. The error names that key where it stands
    (as for a colon left out), on the line the decoder stopped at (the one after it)."""
    text = json.dumps({'".yy': [-1000, 1.25e16, ""]}, indent="\t")
    at = text.index(",", text.index("1.25e+16"))  # before the number's comma
    broken = text[:at] + "]" + text[at:]
    with pytest.raises(ConfigError) as refused:
        parse_text(broken, "json", "c.json")
    (problem,) = refused.value.problems
    assert (problem.path, problem.line) == ('[""]', 6), str(refused.value)
    assert names_the_document(
        {'".yy': []}, parse_key_path(problem.path), broken, str(refused.value)
    )


def _leaf_paths(document) -> list[tuple[str, ...]]:
    paths = []
    stack = [((), document)]
    while stack:
        prefix, node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            here = (*prefix, str(key))
            if isinstance(value, dict | list):
                stack.append((here, value))
            else:
                paths.append(here)
    return paths


@given(document=DOCUMENTS, layout=LAYOUTS, data=st.data())
def test_an_error_at_a_value_names_exactly_its_path(document, layout, data):
    """An error where a value starts (an object's or an array's) names that value's
    whole path, from the standard decoder's character offset and msgspec's byte
    offset alike."""
    paths = _leaf_paths(document)
    if not paths:
        return
    target = data.draw(st.sampled_from(paths))
    node = document
    for segment in target[:-1]:
        node = node[int(segment)] if isinstance(node, list) else node[segment]
    node[int(target[-1]) if isinstance(node, list) else target[-1]] = "\x00MARKER"
    text = json.dumps(document, **layout)
    marker = '"\\u0000MARKER"'
    assert text.count(marker) == 1
    broken = text.replace(marker, "@")
    path, line, _ = refusal(broken)
    assert parse_key_path(path) == target
    assert line == broken.count("\n", 0, broken.index("@")) + 1
    raw = broken.encode()
    with pytest.raises(msgspec.DecodeError, match=r"\(byte \d+\)$") as refused:
        msgspec.json.decode(raw)
    at = int(re.search(r"\(byte (\d+)\)$", str(refused.value)).group(1))
    assert parse_key_path(json_error_path(raw, at)) == target


@given(text=st.text(alphabet='ab{}[],:"\\ \n\t1.e-@tn\x00é', max_size=200))
def test_any_text_is_a_document_or_a_config_error(text):
    try:
        data = parse_text(text, "json", "c.json")
    except ConfigError as refused:
        assert refused.problems and all(p.file == "c.json" for p in refused.problems)
    else:
        assert isinstance(data, dict)


@given(
    text=st.text(alphabet='ab{}[],:"\\ \n\t1.e-@tn\x00é', max_size=200),
    at=st.integers(-5, 205),
    as_bytes=st.booleans(),
)
def test_the_scan_never_raises(text, at, as_bytes):
    """Any text and any offset (one past the end, inside a multi-byte character): a
    path or none, never an exception."""
    data = text.encode() if as_bytes else text
    assert isinstance(json_error_path(data, at), str)


@pytest.mark.parametrize("space", [" ", "\t", "\r\n", "\n"])
def test_a_text_ending_in_a_long_run_of_white_space(space):
    """Its path is the one the text has without it (tokens were sought from each of the
    run's characters in turn: 30 s for 40,000 spaces, hours for a few megabytes)."""
    for doc in ('{"a": {"b": 1,', '{"a": [1, {"c": ', '{"a": "x'):
        short = json_error_path(doc + space, len(doc + space))
        long = doc + space * 200_000
        assert json_error_path(long, len(long)) == short != ""
        assert json_error_path(long.encode(), len(long)) == short
