"""A YAML syntax error names the key path of where it is, as every other bad input does
(``development.yaml:52: database.replicas.2: invalid YAML: did not find expected ','
or ']'``); it named only the file and line, which in a long file of repeated blocks
left the reader counting items. The path is read from the text's parse events up to
the error (``yamlio._error_path``): always a path the document holds, or none."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from cfgcore import yamlio
from cfgcore.config.files import read_config_file
from cfgcore.errors import ConfigError, parse_key_path
from cfgcore.yamlio import _ERROR_PATH_EVENTS, _ERROR_PATH_SHOWN, MAX_PARSE_DEPTH, load_yaml
from tests.key_paths import resolves


def refusal(text: str | bytes) -> tuple[str, int | None, str]:
    with pytest.raises(ConfigError) as refused:
        load_yaml(text, file="config/development.yaml")
    assert len(refused.value.problems) == 1
    problem = refused.value.problems[0]
    return problem.path, problem.line, str(refused.value)


@pytest.mark.parametrize(
    ("text", "path", "line"),
    [
        # the new user's case: a flow list missing a comma, in a nested mapping
        ("database:\n  host: db\n  replicas: [a, b, 'c' d]\n", "database.replicas.2", 3),
        # where the next item goes: after a comma, after a block entry's dash
        ("database:\n  replicas: [a, b, @c]\n", "database.replicas.2", 2),
        ("database:\n  replicas:\n    - a\n    - @b\n", "database.replicas.1", 4),
        ("database:\n  replicas: [@a]\n", "database.replicas.0", 2),
        # the value of a key being read
        ("database:\n  password: 'unterminated\n", "database.password", 3),
        ("database:\n  port: @5432\n", "database.port", 2),
        ("app: {name: x, port: 'p' q}\n", "app.port", 1),
        ("a: b: c\n", "a", 1),
        # inside a collection, at no key yet: the collection
        ("database:\n  host: x\n  port 5432\n  user: y\n", "database", 4),
        ("database:\n  host: x\n  @user: y\n", "database", 3),
        # a key back at its mapping's indentation, after a nested mapping the error ends
        # (a lone surrogate's escape, which YAML refuses): its mapping, not that sibling
        ('flags:\n  good:\n    default: "off"\n  "\\uD800":\n    default: x\n', "flags", 4),
        ('a:\n  b:\n    c:\n      d: 1\n  "\\uDCFF": 2\n', "a", 5),
        ('a:\n  b:\n    c: 1\n"\\uD800": 2\n', "", 4),
        ('a:\n  b:\n    c: "x\n  \\uD800"\n', "a.b.c", 4),  # (inside c's value still)
        ("a:\n  good:\n    z: 1\n  @bad: 2\n", "a", 4),
        ("services:\n  - name: a\n  - {name: b, ports: [1, 2}\n", "services.1.ports.1", 3),
        # an alias that names no anchor: the composer's error, at the alias
        ("a: {b: *nowhere}\n", "a.b", 1),
        ("a: [1, *nowhere]\n", "a.1", 1),
        # a key that is no text (a collection, a merge) ends the path at its mapping
        ("m:\n  ? [a]\n  : {b: [}\n", "m", 3),
        ("base: &b {x: 1}\nm:\n  <<: {a: [}\n", "m", 3),
        # the top level: no path
        ("a: 1\nb: 2\n]\n", "", 3),
        ("a: 1\n---\nb: 2\n", "", 2),
        ("@\n", "", 1),
    ],
)
@pytest.mark.parametrize("parser", ["libyaml", "python"])
def test_the_path_of_where_the_error_is(text, path, line, parser, monkeypatch):
    if parser == "python":  # the events read again by PyYAML's own parser, as without libyaml
        monkeypatch.setattr(yamlio, "_BaseLoader", yaml.SafeLoader)
    got_path, got_line, message = refusal(text)
    assert (got_path, got_line) == (path, line)
    where = f"config/development.yaml:{line}: " + (f"{path}: " if path else "")
    assert message.startswith(where + "invalid YAML: ")


def test_a_config_file_names_the_path(tmp_path):
    """The configuration loader reports it as the parse error it is."""
    config = tmp_path / "development.yaml"
    config.write_text("database:\n  replicas: [a, b, 'c' d]\n")
    with pytest.raises(ConfigError) as refused:
        read_config_file(str(config))
    assert str(refused.value) == (
        f"{config}:2: database.replicas.2: invalid YAML: did not find expected ',' or ']'"
    )
    assert refused.value.reason == "parse"


def test_a_dotted_key_is_quoted_as_in_every_message():
    path, _, message = refusal('loggers:\n  "uvicorn.access": {level: @x}\n')
    assert path == 'loggers["uvicorn.access"].level'
    assert parse_key_path(path) == ("loggers", "uvicorn.access", "level")


def test_bytes_name_the_path_too():
    assert refusal(b"database:\n  port: @5432\n")[0] == "database.port"


def test_deep_nesting_shows_the_first_keys_then_an_ellipsis():
    depth = MAX_PARSE_DEPTH - 10
    text = "top:\n  deep: " + "{k: " * depth + "[1, @]" + "}" * depth + "\n"
    path, line, _ = refusal(text)
    assert line == 2
    assert path == "top.deep." + ".".join(["k"] * (_ERROR_PATH_SHOWN - 2)) + ".…"


def test_a_very_long_key_ends_the_path():
    key = "k" * 500  # (a key YAML reads on one line: at most 1,024 characters)
    path, _, message = refusal(f"a:\n  {key}: [1, @]\n")
    assert path == "a.…"
    assert key not in message


def test_past_the_event_budget_no_path_is_named(monkeypatch):
    """The events are read again at most _ERROR_PATH_EVENTS times: a file larger than
    any configuration still gets its file and line, only without the path. (The budget
    made smaller: reading a million events again in pure Python takes seconds.)"""
    assert _ERROR_PATH_EVENTS >= 1_000_000  # (what the module's comment says it allows)
    monkeypatch.setattr(yamlio, "_ERROR_PATH_EVENTS", 10_000)
    items = yamlio._ERROR_PATH_EVENTS + 10
    text = "big:\n  list: [" + "1, " * items + "@]\n"
    path, line, message = refusal(text)
    assert (path, line) == ("", 2)
    assert message.startswith("config/development.yaml:2: invalid YAML: ")


KEYS = st.text(alphabet="abcxyz_019", min_size=1, max_size=6)
SCALARS = st.one_of(
    st.integers(-1000, 1000),
    st.text(alphabet="abc xyz", max_size=8),
    st.booleans(),
    st.none(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=25,
)
DOCUMENTS = st.dictionaries(KEYS, VALUES, min_size=1, max_size=5)


@given(
    document=DOCUMENTS,
    flow=st.sampled_from([False, True, None]),
    breaker=st.sampled_from(["@", "`", "@x: 1", "`y"]),
    data=st.data(),
)
def test_an_injected_error_is_named_by_a_path_of_the_document(document, flow, breaker, data):
    """'@' and '`' start no YAML token: put where a token starts, the text before it
    reads as it did, so every key and index the path names is one of the document's."""
    text = yaml.safe_dump(document, default_flow_style=flow, sort_keys=False, width=10_000)
    starts = [
        i
        for i in range(len(text))
        if i == 0 or text[i - 1] in "\n[{" or text[i - 2 : i] in (", ", ": ", "- ")
    ]
    at = data.draw(st.sampled_from(starts))
    broken = text[:at] + breaker + text[at:]
    path, line, message = refusal(broken)
    assert line == broken.count("\n", 0, at) + 1
    assert message.startswith(f"config/development.yaml:{line}: ")
    segments = parse_key_path(path.removesuffix(".…").removesuffix("…"))
    assert resolves(document, segments), (path, broken)


@given(document=DOCUMENTS, data=st.data())
def test_the_value_of_a_key_is_named_exactly(document, data):
    """An error at the start of a key's value names that key's whole path."""
    paths = []
    stack = [((), document)]
    while stack:
        prefix, node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            here = (*prefix, str(key))
            if isinstance(node, dict) and not isinstance(value, dict | list):
                paths.append(here)
            if isinstance(value, dict | list):
                stack.append((here, value))
    target = data.draw(st.sampled_from(paths)) if paths else None
    if target is None:
        return
    node = document
    for segment in target[:-1]:
        node = node[int(segment)] if isinstance(node, list) else node[segment]
    node[target[-1]] = "MARKER"
    text = yaml.safe_dump(document, default_flow_style=data.draw(st.booleans()), sort_keys=False)
    path, _, _ = refusal(text.replace("MARKER", "@MARKER"))
    assert parse_key_path(path) == target


@given(
    text=st.text(alphabet="ab:-[]{},'\"@&*!|>?#%\n  \t1", max_size=200),
)
def test_any_text_is_a_config_error_or_a_document(text):
    """Never anything else, whatever the error: the path is only words for it."""
    try:
        load_yaml(text, file="f.yaml")
    except ConfigError as refused:
        for problem in refused.problems:
            assert isinstance(problem.path, str)
